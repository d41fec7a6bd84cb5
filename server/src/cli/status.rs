//! `keel cluster status`: a cluster's brokers (address, rack, live or fenced), its active
//! controller and the metadata quorum's voters with each one's lag behind the controller,
//! and the partitions without a leader or with fewer in-sync replicas than replicas. Read
//! from DescribeCluster (with fenced brokers), DescribeQuorum (asked of the controller)
//! and Metadata, so it also describes any KRaft Kafka cluster.

use super::cluster::Cluster;
use super::errors::CliError;
use super::{print_json, ConnArgs, Output};
use keel_net::codec::{
    self, DescribeClusterRequest, DescribeQuorumPartition, DescribeQuorumRequest,
    DescribeQuorumTopic, RequestBody, ResponseBody,
};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;

/// `keel cluster ...`
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster commands.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers and their liveness, the controller and voters with their lag, and the
    /// partitions without a leader or under-replicated.
    Status {
        /// `json`: {"clusterId","controllerId","brokers":[{"id","host","port","rack",
        /// "fenced"}],"quorum":{"leaderId","leaderEpoch","highWatermark","voters":[{"id",
        /// "logEndOffset","lag","lastFetchMsAgo"}]},"offlinePartitions":[..],
        /// "underReplicatedPartitions":[..]}.
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    cluster_id: String,
    controller_id: i32,
    brokers: Vec<Broker>,
    quorum: Option<Quorum>,
    offline_partitions: Vec<String>,
    under_replicated_partitions: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Broker {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    fenced: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Quorum {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<Voter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Voter {
    id: i32,
    log_end_offset: i64,
    lag: i64,
    last_fetch_ms_ago: Option<i64>,
}

pub fn run(args: ClusterArgs) -> ExitCode {
    super::run("cluster status", execute(args))
}

async fn execute(args: ClusterArgs) -> Result<(), CliError> {
    let mut cluster = Cluster::connect(&args.conn).await?;
    let ClusterCommand::Status { output } = args.command;
    let status = status(&mut cluster).await?;
    match output {
        Output::Json => print_json(&status),
        Output::Text => {
            print_status(&status);
            Ok(())
        }
    }
}

async fn status(cluster: &mut Cluster) -> Result<Status, CliError> {
    let described = match cluster
        .any()
        .await?
        .call(
            RequestBody::DescribeCluster(DescribeClusterRequest {
                include_fenced_brokers: true,
                ..Default::default()
            }),
            Duration::ZERO,
        )
        .await
    {
        Ok(Some(ResponseBody::DescribeCluster(r))) => r,
        Ok(_) => return Err(CliError::Other("DescribeCluster: unexpected answer".into())),
        Err(e) => return Err(CliError::request("DescribeCluster")(e)),
    };
    if described.error_code != 0 {
        return Err(CliError::kafka(
            "DescribeCluster",
            described.error_code,
            described.error_message,
        ));
    }
    let metadata = cluster.metadata(None, false).await?;
    let quorum = if described.controller_id >= 0 {
        quorum(cluster, described.controller_id).await?
    } else {
        None
    };
    let mut offline = Vec::new();
    let mut under = Vec::new();
    for t in &metadata.topics {
        let name = t.name.clone().unwrap_or_default();
        for p in &t.partitions {
            let id = format!("{name}-{}", p.partition_index);
            if p.leader_id < 0 {
                offline.push(id);
            } else if p.isr_nodes.len() < p.replica_nodes.len() {
                under.push(id);
            }
        }
    }
    offline.sort();
    under.sort();
    Ok(Status {
        cluster_id: described.cluster_id,
        controller_id: described.controller_id,
        brokers: described
            .brokers
            .into_iter()
            .map(|b| Broker {
                id: b.broker_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
                fenced: b.is_fenced,
            })
            .collect(),
        quorum,
        offline_partitions: offline,
        under_replicated_partitions: under,
    })
}

/// DescribeQuorum of the controller; `None` from a cluster without one (a single node).
async fn quorum(cluster: &mut Cluster, controller: i32) -> Result<Option<Quorum>, CliError> {
    let request = RequestBody::DescribeQuorum(DescribeQuorumRequest {
        topics: vec![DescribeQuorumTopic {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![DescribeQuorumPartition { partition_index: 0 }],
        }],
    });
    let client = cluster.node(controller).await?;
    if client.version(codec::ApiKey::DescribeQuorum).is_none() {
        return Ok(None);
    }
    let response = match client.call(request, Duration::ZERO).await {
        Ok(Some(ResponseBody::DescribeQuorum(r))) => r,
        Ok(_) => return Err(CliError::Other("DescribeQuorum: unexpected answer".into())),
        Err(e) => {
            cluster.reset_connections();
            return Err(CliError::request("DescribeQuorum")(e));
        }
    };
    let Some(p) = response
        .topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
    else {
        return Ok(None);
    };
    // A single node has no metadata quorum; a controller that just lost its role points
    // elsewhere: either way there is no full answer to show.
    if p.error_code != 0 {
        return Ok(None);
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let voters = p
        .current_voters
        .iter()
        .map(|v| Voter {
            id: v.replica_id,
            log_end_offset: v.log_end_offset,
            // -1: the controller has not heard from it this term, so the lag is unknown.
            lag: if v.log_end_offset < 0 {
                -1
            } else {
                (p.high_watermark - v.log_end_offset).max(0)
            },
            last_fetch_ms_ago: (v.last_fetch_timestamp >= 0)
                .then(|| (now_ms - v.last_fetch_timestamp).max(0)),
        })
        .collect();
    Ok(Some(Quorum {
        leader_id: p.leader_id,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters,
    }))
}

fn print_status(s: &Status) {
    say!("cluster {}", s.cluster_id);
    match &s.quorum {
        Some(q) => say!(
            "controller {} (epoch {}, metadata high watermark {})",
            q.leader_id,
            q.leader_epoch,
            q.high_watermark
        ),
        None if s.controller_id >= 0 => say!("controller {}", s.controller_id),
        None => say!("controller none elected"),
    }
    say!("brokers");
    for b in &s.brokers {
        say!(
            "  {}\t{}:{}\track {}\t{}",
            b.id,
            b.host,
            b.port,
            b.rack.as_deref().unwrap_or("-"),
            if b.fenced { "FENCED" } else { "live" }
        );
    }
    if let Some(q) = &s.quorum {
        say!("voters");
        for v in &q.voters {
            let heard = v
                .last_fetch_ms_ago
                .map_or("never heard".to_string(), |ms| format!("heard {ms} ms ago"));
            if v.log_end_offset < 0 {
                say!("  {}\tlog end unknown\t{heard}", v.id);
            } else {
                say!(
                    "  {}\tlog end {}\tlag {}\t{heard}",
                    v.id,
                    v.log_end_offset,
                    v.lag
                );
            }
        }
    }
    say!(
        "partitions without a leader: {}",
        s.offline_partitions.len()
    );
    for p in &s.offline_partitions {
        say!("  {p}");
    }
    say!(
        "under-replicated partitions: {}",
        s.under_replicated_partitions.len()
    );
    for p in &s.under_replicated_partitions {
        say!("  {p}");
    }
}
