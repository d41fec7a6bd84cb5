//! `keel group list|describe|delete|reset-offsets`: consumer groups through ListGroups (asked
//! of every broker, as each lists only the groups it coordinates), DescribeGroups and
//! OffsetFetch at the coordinator, ListOffsets at the leaders for the lag, DeleteGroups at
//! each group's coordinator (refused by the broker while the group has members), and
//! OffsetCommit outside any generation to reset offsets, refused while the group has members
//! (as Kafka's `kafka-consumer-groups --reset-offsets` refuses).

use super::cluster::{Cluster, TopicInfo};
use super::errors::CliError;
use super::time::parse_time_ms;
use super::topic::offsets_of;
use super::{print_json, ConnArgs, Output};
use keel_core::api::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use keel_net::client::group::Assignment;
use keel_net::codec::ApiKey;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

/// `keel group ...`
#[derive(clap::Args, Debug)]
pub struct GroupArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The group commands.
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups, one per line.
    List {
        /// Print each group's state and protocol type too.
        #[arg(long)]
        state: bool,
        /// `json`: {"groups":[{"groupId","state","protocolType"}]} (state and protocol type
        /// always; null where the broker sent none).
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
    /// Show a group's state, members, and committed offset, log end and lag per partition.
    Describe {
        /// The group id.
        group: String,
        /// `json`: {"groupId","state","protocolType","protocol","members":[{"memberId",
        /// "clientId","host","assignment":[{"topic","partitions"}]}],"offsets":[{"topic",
        /// "partition","currentOffset","logEndOffset","lag","memberId","clientId","host"}]};
        /// unknown values are null.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete consumer groups and their committed offsets (only groups without members).
    Delete {
        /// The group ids.
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (only while the group has no members).
    #[command(group(
        clap::ArgGroup::new("target")
            .required(true)
            .args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])
    ))]
    ResetOffsets {
        /// The group id.
        group: String,
        /// The topic whose offsets to reset.
        #[arg(long)]
        topic: String,
        /// Only these partitions (repeatable) [default: every partition].
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        partition: Vec<i32>,
        /// To the log start offset.
        #[arg(long)]
        to_earliest: bool,
        /// To the log end offset.
        #[arg(long)]
        to_latest: bool,
        /// To this offset (clamped to the log's range).
        #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
        to_offset: Option<i64>,
        /// To the first offset at or after this time: epoch milliseconds or RFC 3339.
        #[arg(long, value_name = "MS_OR_RFC3339")]
        to_datetime: Option<String>,
        /// By this many offsets from the committed one (negative moves back), clamped.
        #[arg(long, allow_negative_numbers = true)]
        shift_by: Option<i64>,
        /// Show the new offsets without committing them (the default).
        #[arg(long, conflicts_with = "execute")]
        dry_run: bool,
        /// Commit the new offsets.
        #[arg(long)]
        execute: bool,
    },
}

/// Runs a `keel group` command.
pub fn run(args: GroupArgs) -> ExitCode {
    let name = match &args.command {
        GroupCommand::List { .. } => "group list",
        GroupCommand::Describe { .. } => "group describe",
        GroupCommand::Delete { .. } => "group delete",
        GroupCommand::ResetOffsets { .. } => "group reset-offsets",
    };
    super::run(name, execute(args))
}

async fn execute(args: GroupArgs) -> Result<(), CliError> {
    let mut cluster = Cluster::connect(&args.conn).await?;
    match args.command {
        GroupCommand::List { state, output } => list(&mut cluster, state, output).await,
        GroupCommand::Describe { group, output } => {
            let described = describe(&mut cluster, &group).await?;
            match output {
                Output::Json => print_json(&described),
                Output::Text => {
                    print_description(&described);
                    Ok(())
                }
            }
        }
        GroupCommand::Delete { groups } => delete(&mut cluster, &groups).await,
        GroupCommand::ResetOffsets {
            group,
            topic,
            partition,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            dry_run: _,
            execute,
        } => {
            let target = match (to_earliest, to_latest, to_offset, to_datetime, shift_by) {
                (true, ..) => Target::Earliest,
                (_, true, ..) => Target::Latest,
                (_, _, Some(o), ..) => Target::Offset(o),
                (_, _, _, Some(t), _) => Target::Time(
                    parse_time_ms(&t).map_err(|e| CliError::Usage(format!("--to-datetime {e}")))?,
                ),
                (_, _, _, _, Some(n)) => Target::Shift(n),
                _ => return Err(CliError::Usage("give one --to-* or --shift-by".into())),
            };
            reset(&mut cluster, &group, &topic, &partition, target, execute).await
        }
    }
}

/// `keel group list -o json`.
#[derive(Debug, Serialize)]
struct GroupList {
    groups: Vec<ListedGroup>,
}

/// One group of `keel group list -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedGroup {
    group_id: String,
    state: Option<String>,
    protocol_type: Option<String>,
}

/// `None` for the empty string a broker sends for "unknown".
fn known(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

async fn list(cluster: &mut Cluster, with_state: bool, output: Output) -> Result<(), CliError> {
    cluster.metadata(Some(&[]), false).await?;
    let mut groups: BTreeMap<String, (String, String)> = BTreeMap::new();
    for id in cluster.broker_ids() {
        let addr = cluster.broker_addr(id);
        let result = cluster.node(id).await?.list_groups().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!("ListGroups to {addr}"))(e));
            }
        };
        if response.error_code != 0 {
            return Err(CliError::kafka(
                format!("broker {addr}"),
                response.error_code,
                None,
            ));
        }
        for g in response.groups {
            groups.insert(g.group_id, (g.group_state, g.protocol_type));
        }
    }
    if output == Output::Json {
        let groups = groups
            .into_iter()
            .map(|(group_id, (state, protocol_type))| ListedGroup {
                group_id,
                state: known(state),
                protocol_type: known(protocol_type),
            })
            .collect();
        return print_json(&GroupList { groups });
    }
    for (id, (state, protocol_type)) in groups {
        if with_state {
            let state = if state.is_empty() { "-" } else { &state };
            let protocol_type = if protocol_type.is_empty() {
                "-"
            } else {
                &protocol_type
            };
            say!("{id}\t{state}\t{protocol_type}");
        } else {
            say!("{id}");
        }
    }
    Ok(())
}

/// A described group: its state and members, at the coordinator.
async fn describe_at_coordinator(
    cluster: &mut Cluster,
    group: &str,
) -> Result<keel_net::codec::DescribedGroup, CliError> {
    let coordinator = cluster.coordinator_addr(group).await?;
    let result = cluster
        .host_port(&coordinator)
        .await?
        .describe_group(group)
        .await;
    let described = match result {
        Ok(d) => d,
        Err(e) => {
            cluster.reset_connections();
            return Err(CliError::request(format!(
                "DescribeGroups to {coordinator}"
            ))(e));
        }
    };
    if described.error_code != 0 {
        return Err(CliError::kafka(
            group,
            described.error_code,
            described.error_message,
        ));
    }
    Ok(described)
}

/// What `keel group describe` shows of one group, in either output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDescription {
    group_id: String,
    state: Option<String>,
    protocol_type: Option<String>,
    /// The assignor the members agreed on (DescribeGroups' protocol_data).
    protocol: Option<String>,
    members: Vec<MemberDescription>,
    offsets: Vec<OffsetDescription>,
}

/// One member of a [`GroupDescription`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MemberDescription {
    member_id: String,
    client_id: Option<String>,
    host: Option<String>,
    /// `None` when the assignment is not a consumer protocol one (or does not decode).
    assignment: Option<Vec<AssignedTopic>>,
}

/// A topic's partitions in a member's assignment.
#[derive(Debug, Serialize)]
struct AssignedTopic {
    topic: String,
    partitions: Vec<i32>,
}

/// One partition row of a [`GroupDescription`]: a committed offset, an assigned partition,
/// or both.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OffsetDescription {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    member_id: Option<String>,
    client_id: Option<String>,
    host: Option<String>,
}

/// Gathers what `keel group describe` shows of `group`.
async fn describe(cluster: &mut Cluster, group: &str) -> Result<GroupDescription, CliError> {
    let described = describe_at_coordinator(cluster, group).await?;
    let coordinator = cluster.coordinator_addr(group).await?;
    let result = cluster
        .host_port(&coordinator)
        .await?
        .offset_fetch_all(group)
        .await;
    let committed = match result {
        Ok(c) => c,
        Err(e) => {
            cluster.reset_connections();
            return Err(CliError::request(format!("OffsetFetch to {coordinator}"))(
                e,
            ));
        }
    };
    if committed.error_code != 0 {
        return Err(CliError::kafka(group, committed.error_code, None));
    }
    let consumer = described.protocol_type == "consumer";
    let assignments: Vec<Option<Assignment>> = described
        .members
        .iter()
        .map(|m| {
            Some(&m.member_assignment)
                .filter(|a| consumer && !a.is_empty())
                .and_then(|a| Assignment::decode(a).ok())
        })
        .collect();
    // (topic, partition) → (member id, client id, host), from the members' assignments.
    let mut owners: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for (m, a) in described.members.iter().zip(&assignments) {
        for (t, p) in a.iter().flat_map(Assignment::topic_partitions) {
            owners.insert(
                (t, p),
                (
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                ),
            );
        }
    }
    let mut rows: BTreeMap<(String, i32), i64> = committed
        .partitions
        .iter()
        .filter(|c| c.offset >= 0 && c.error_code == 0)
        .map(|c| ((c.topic.clone(), c.partition), c.offset))
        .collect();
    for key in owners.keys() {
        rows.entry(key.clone()).or_insert(-1);
    }
    if rows.is_empty() && described.members.is_empty() && described.group_state == "Dead" {
        return Err(CliError::kafka(
            group,
            69,
            Some(format!("Consumer group '{group}' does not exist.")),
        ));
    }
    let topics: BTreeSet<String> = rows.keys().map(|(t, _)| t.clone()).collect();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for t in topics {
        let Ok(info) = cluster.topic(&t, false).await else {
            continue;
        };
        let parts: Vec<i32> = rows
            .keys()
            .filter(|(rt, p)| *rt == t && info.has(*p))
            .map(|(_, p)| *p)
            .collect();
        if let Ok(found) = offsets_of(cluster, &info, &parts, LATEST_TIMESTAMP).await {
            ends.extend(found.into_iter().map(|(p, o)| ((t.clone(), p), o)));
        }
    }
    let offsets = rows
        .into_iter()
        .map(|((topic, partition), offset)| {
            let current = Some(offset).filter(|&o| o >= 0);
            let end = ends.get(&(topic.clone(), partition)).copied();
            let owner = owners.get(&(topic.clone(), partition)).cloned();
            let (member_id, client_id, host) = match owner {
                Some((m, c, h)) => (Some(m), known(c), known(h)),
                None => (None, None, None),
            };
            OffsetDescription {
                lag: current.zip(end).map(|(o, e)| (e - o).max(0)),
                topic,
                partition,
                current_offset: current,
                log_end_offset: end,
                member_id,
                client_id,
                host,
            }
        })
        .collect();
    let members = described
        .members
        .into_iter()
        .zip(assignments)
        .map(|(m, a)| MemberDescription {
            member_id: m.member_id,
            client_id: known(m.client_id),
            host: known(m.client_host),
            assignment: a.map(|a| {
                a.partitions
                    .into_iter()
                    .map(|(topic, partitions)| AssignedTopic { topic, partitions })
                    .collect()
            }),
        })
        .collect();
    Ok(GroupDescription {
        group_id: group.to_string(),
        state: known(described.group_state),
        protocol_type: known(described.protocol_type),
        protocol: known(described.protocol_data),
        members,
        offsets,
    })
}

/// Prints a group as `keel group describe` does (Kafka's `kafka-consumer-groups --describe`
/// table, after a header line; then the members).
fn print_description(g: &GroupDescription) {
    let group = &g.group_id;
    let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".to_string());
    let num_or_dash = |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    say!(
        "Group: {group}\tState: {}\tProtocolType: {}\tProtocol: {}\tMembers: {}",
        or_dash(&g.state),
        or_dash(&g.protocol_type),
        or_dash(&g.protocol),
        g.members.len()
    );
    say!("");
    say!("GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID");
    for row in &g.offsets {
        // An assigned member's empty client id or host prints as "-" too.
        let (member, host, client) = match &row.member_id {
            Some(m) => (m.clone(), or_dash(&row.host), or_dash(&row.client_id)),
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
        };
        say!(
            "{group}\t{}\t{}\t{}\t{}\t{}\t{member}\t{host}\t{client}",
            row.topic,
            row.partition,
            num_or_dash(row.current_offset),
            num_or_dash(row.log_end_offset),
            num_or_dash(row.lag),
        );
    }
    if !g.members.is_empty() {
        say!("");
        say!("MEMBER\tCLIENT-ID\tHOST\tASSIGNMENT");
        for m in &g.members {
            let assignment = match &m.assignment {
                Some(topics) if !topics.is_empty() => {
                    let parts: Vec<String> = topics
                        .iter()
                        .map(|t| {
                            let ps: Vec<String> = t.partitions.iter().map(i32::to_string).collect();
                            format!("{}:{}", t.topic, ps.join(","))
                        })
                        .collect();
                    parts.join(" ")
                }
                _ => "-".to_string(),
            };
            say!(
                "{}\t{}\t{}\t{assignment}",
                m.member_id,
                or_dash(&m.client_id),
                or_dash(&m.host)
            );
        }
    }
}

/// Deletes each group at its coordinator. Every group is tried; each failure is one line
/// on stderr naming the group and Kafka's error (NON_EMPTY_GROUP while it has members,
/// GROUP_ID_NOT_FOUND), and the command fails if any did.
async fn delete(cluster: &mut Cluster, groups: &[String]) -> Result<(), CliError> {
    let mut failures = Vec::new();
    for group in groups {
        match delete_one(cluster, group).await {
            Ok(()) => say!("Deleted group {group}."),
            Err(e) => failures.push(e),
        }
    }
    let last = failures.pop();
    for e in failures {
        eprintln!("keel group delete: {e}");
    }
    last.map_or(Ok(()), Err)
}

async fn delete_one(cluster: &mut Cluster, group: &str) -> Result<(), CliError> {
    let coordinator = cluster.coordinator_addr(group).await?;
    let client = cluster.host_port(&coordinator).await?;
    if client.version(ApiKey::DeleteGroups).is_none() {
        return Err(CliError::Other(format!(
            "{group}: the broker at {coordinator} does not support DeleteGroups"
        )));
    }
    let result = client.delete_groups(&[group]).await;
    let results = match result {
        Ok(r) => r,
        Err(e) => {
            cluster.reset_connections();
            return Err(CliError::request(format!(
                "DeleteGroups to {coordinator} (its outcome is unknown)"
            ))(e));
        }
    };
    match results.iter().find(|(g, _)| g == group) {
        Some((_, 0)) => Ok(()),
        Some(&(_, code)) => Err(CliError::kafka(group, code, None)),
        None => Err(CliError::Other(format!(
            "{group}: the broker's DeleteGroups answer left the group out"
        ))),
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
    Shift(i64),
}

async fn reset(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    partitions: &[i32],
    target: Target,
    execute: bool,
) -> Result<(), CliError> {
    let described = describe_at_coordinator(cluster, group).await?;
    if !described.members.is_empty() {
        return Err(CliError::Other(format!(
            "{group}: assignments can only be reset if the group is inactive, but the current \
             state is {} with {} member(s)",
            dash(&described.group_state),
            described.members.len()
        )));
    }
    let info: TopicInfo = cluster.topic(topic, false).await?;
    let parts: Vec<i32> = if partitions.is_empty() {
        info.partitions.iter().map(|p| p.partition).collect()
    } else {
        for &p in partitions {
            if !info.has(p) {
                return Err(CliError::kafka(format!("{topic}/{p}"), 3, None));
            }
        }
        partitions.to_vec()
    };
    let starts = offsets_of(cluster, &info, &parts, EARLIEST_TIMESTAMP).await?;
    let ends = offsets_of(cluster, &info, &parts, LATEST_TIMESTAMP).await?;
    let clamp = |p: i32, o: i64| o.clamp(starts[&p], ends[&p].max(starts[&p]));
    let new: BTreeMap<i32, i64> = match target {
        Target::Earliest => starts.clone(),
        Target::Latest => ends.clone(),
        Target::Offset(o) => parts.iter().map(|&p| (p, clamp(p, o))).collect(),
        Target::Time(t) => {
            let found = offsets_of(cluster, &info, &parts, t).await?;
            found
                .into_iter()
                .map(|(p, o)| (p, if o < 0 { ends[&p] } else { o }))
                .collect()
        }
        Target::Shift(n) => {
            let coordinator = cluster.coordinator_addr(group).await?;
            let result = cluster
                .host_port(&coordinator)
                .await?
                .offset_fetch(group, &[(topic, &parts)])
                .await;
            let committed = match result {
                Ok(c) => c,
                Err(e) => {
                    cluster.reset_connections();
                    return Err(CliError::request(format!("OffsetFetch to {coordinator}"))(
                        e,
                    ));
                }
            };
            let code = committed.first_error();
            if code != 0 {
                return Err(CliError::kafka(group, code, None));
            }
            parts
                .iter()
                .map(|&p| {
                    let current = committed.offset(topic, p);
                    // No committed offset: shift from the log end, as Kafka's tool does.
                    let from = if current < 0 { ends[&p] } else { current };
                    (p, clamp(p, from.saturating_add(n)))
                })
                .collect()
        }
    };
    say!("GROUP\tTOPIC\tPARTITION\tNEW-OFFSET");
    for (p, o) in &new {
        say!("{group}\t{topic}\t{p}\t{o}");
    }
    if !execute {
        eprintln!("Dry run: nothing committed (add --execute to commit these offsets).");
        return Ok(());
    }
    let offsets: Vec<(&str, i32, i64, &str)> =
        new.iter().map(|(&p, &o)| (topic, p, o, "")).collect();
    let coordinator = cluster.coordinator_addr(group).await?;
    let result = cluster
        .host_port(&coordinator)
        .await?
        .offset_commit(group, -1, "", &offsets)
        .await;
    let results = match result {
        Ok(r) => r,
        Err(e) => {
            cluster.reset_connections();
            return Err(CliError::request(format!(
                "OffsetCommit to {coordinator} (its outcome is unknown)"
            ))(e));
        }
    };
    for r in results {
        if r.error_code != 0 {
            return Err(CliError::kafka(
                format!("{group}: {}/{}", r.topic, r.partition),
                r.error_code,
                None,
            ));
        }
    }
    eprintln!("Committed the new offsets of {} partition(s).", new.len());
    Ok(())
}
