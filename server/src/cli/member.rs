//! One member of a classic consumer group, as `keel consume --group` runs it: join (with the
//! range assignor, assigning the whole group when this member is elected leader), sync,
//! heartbeat between fetches, commit positions, leave on exit. Every call goes to the
//! coordinator found with FindCoordinator; NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE send
//! it looking again. A rebalance (seen in a heartbeat or commit answer) means rejoining; the
//! positions then restart from the committed offsets, so delivery is at least once.

use super::cluster::Cluster;
use super::errors::CliError;
use bytes::Bytes;
use keel_net::client::group::{range_assign, Assignment, Subscription, RANGE_ASSIGNOR};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the coordinator waits for a silent member before evicting it.
pub const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long a rebalance may take (members rejoining).
pub const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Heartbeats go this often (a third of the session timeout, as Kafka's default).
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(3_000);
/// Join attempts before giving up (each answered with a retriable error).
const JOIN_ATTEMPTS: u32 = 30;

/// What a commit or heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    /// Still a member of the current generation.
    Member,
    /// The group is rebalancing or dropped this member: rejoin.
    Rejoin,
}

/// A joined member.
pub struct Member {
    pub group: String,
    topic: String,
    member_id: String,
    generation: i32,
    /// Partitions of the topic assigned to this member in the current generation.
    pub assigned: Vec<i32>,
    last_heartbeat: Instant,
}

impl Member {
    /// Joins `group` subscribed to `topic` and waits for this member's assignment.
    pub async fn join(cluster: &mut Cluster, group: &str, topic: &str) -> Result<Member, CliError> {
        let mut member = Member {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            assigned: Vec::new(),
            last_heartbeat: Instant::now(),
        };
        member.rejoin(cluster).await?;
        Ok(member)
    }

    /// Runs join → sync until this member holds an assignment of a stable generation.
    pub async fn rejoin(&mut self, cluster: &mut Cluster) -> Result<(), CliError> {
        let subscription = Subscription {
            topics: vec![self.topic.clone()],
            user_data: None,
        }
        .encode();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > JOIN_ATTEMPTS {
                return Err(CliError::Other(format!(
                    "{}: no stable group membership after {JOIN_ATTEMPTS} attempts",
                    self.group
                )));
            }
            let coordinator = cluster.coordinator_addr(&self.group).await?;
            let client = cluster.host_port(&coordinator).await?;
            let joined = client
                .join_group(
                    &self.group,
                    &self.member_id,
                    SESSION_TIMEOUT_MS,
                    REBALANCE_TIMEOUT_MS,
                    &[(RANGE_ASSIGNOR, subscription.clone())],
                )
                .await;
            let joined = match joined {
                Ok(j) => j,
                Err(e) => {
                    cluster.reset_connections();
                    return Err(CliError::request(format!("JoinGroup to {coordinator}"))(e));
                }
            };
            match joined.error_code {
                0 => {}
                // MEMBER_ID_REQUIRED (KIP-394): join again with the id the broker chose.
                79 => {
                    self.member_id = joined.member_id;
                    continue;
                }
                // UNKNOWN_MEMBER_ID: our id expired; join as new.
                25 => {
                    self.member_id.clear();
                    continue;
                }
                // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
                // REBALANCE_IN_PROGRESS: look up the coordinator again and retry.
                14 | 15 | 16 | 27 => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                code => return Err(CliError::kafka(&self.group, code, None)),
            }
            self.member_id = joined.member_id.clone();
            self.generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                self.assign(cluster, &joined.members).await?
            } else {
                Vec::new()
            };
            let client = cluster.host_port(&coordinator).await?;
            let synced = client
                .sync_group(
                    &self.group,
                    self.generation,
                    &self.member_id,
                    joined.protocol_name.as_deref(),
                    &assignments,
                    Duration::from_millis(REBALANCE_TIMEOUT_MS as u64),
                )
                .await;
            let synced = match synced {
                Ok(s) => s,
                Err(e) => {
                    cluster.reset_connections();
                    return Err(CliError::request(format!("SyncGroup to {coordinator}"))(e));
                }
            };
            match synced.error_code {
                0 => {}
                25 => {
                    self.member_id.clear();
                    continue;
                }
                14 | 15 | 16 | 22 | 27 => continue,
                code => return Err(CliError::kafka(&self.group, code, None)),
            }
            let assignment = if synced.assignment.is_empty() {
                Assignment::default()
            } else {
                Assignment::decode(&synced.assignment).map_err(|e| {
                    CliError::Other(format!(
                        "{}: the group leader sent an unreadable assignment: {e}",
                        self.group
                    ))
                })?
            };
            let mut assigned: Vec<i32> = assignment
                .topic_partitions()
                .into_iter()
                .filter(|(t, _)| *t == self.topic)
                .map(|(_, p)| p)
                .collect();
            assigned.sort_unstable();
            assigned.dedup();
            self.assigned = assigned;
            self.last_heartbeat = Instant::now();
            return Ok(());
        }
    }

    /// The leader's duty: the range assignment of every member's subscription.
    async fn assign(
        &self,
        cluster: &mut Cluster,
        members: &[keel_net::codec::JoinGroupResponseMember],
    ) -> Result<Vec<(String, Bytes)>, CliError> {
        let mut subscriptions = Vec::new();
        for m in members {
            let s = Subscription::decode(&m.metadata).map_err(|e| {
                CliError::Other(format!(
                    "{}: member {} sent an unreadable subscription: {e}",
                    self.group, m.member_id
                ))
            })?;
            subscriptions.push((m.member_id.clone(), s));
        }
        let mut counts = BTreeMap::new();
        for (_, s) in &subscriptions {
            for t in &s.topics {
                if counts.contains_key(t) {
                    continue;
                }
                // A topic another member subscribes to that does not exist is left out.
                if let Ok(info) = cluster.topic(t, false).await {
                    counts.insert(t.clone(), info.partitions.len() as i32);
                }
            }
        }
        Ok(range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(id, a)| (id, a.encode()))
            .collect())
    }

    /// The committed offsets of the assigned partitions (-1: none committed).
    pub async fn committed(&self, cluster: &mut Cluster) -> Result<BTreeMap<i32, i64>, CliError> {
        let coordinator = cluster.coordinator_addr(&self.group).await?;
        let client = cluster.host_port(&coordinator).await?;
        let result = client
            .offset_fetch(&self.group, &[(self.topic.as_str(), &self.assigned)])
            .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!("OffsetFetch to {coordinator}"))(
                    e,
                ));
            }
        };
        let code = result.first_error();
        if code != 0 {
            return Err(CliError::kafka(&self.group, code, None));
        }
        Ok(self
            .assigned
            .iter()
            .map(|&p| (p, result.offset(&self.topic, p)))
            .collect())
    }

    /// Commits `positions` (the next offset to read per partition) in this generation.
    pub async fn commit(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<GroupStatus, CliError> {
        if positions.is_empty() {
            return Ok(GroupStatus::Member);
        }
        let offsets: Vec<(&str, i32, i64, &str)> = positions
            .iter()
            .map(|(&p, &o)| (self.topic.as_str(), p, o, ""))
            .collect();
        let coordinator = cluster.coordinator_addr(&self.group).await?;
        let client = cluster.host_port(&coordinator).await?;
        let results = client
            .offset_commit(&self.group, self.generation, &self.member_id, &offsets)
            .await;
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!(
                    "OffsetCommit to {coordinator} (its outcome is unknown)"
                ))(e));
            }
        };
        for r in results {
            match r.error_code {
                0 => {}
                22 | 25 | 27 => return Ok(GroupStatus::Rejoin),
                code => {
                    return Err(CliError::kafka(
                        format!("{}: {}/{}", self.group, r.topic, r.partition),
                        code,
                        None,
                    ))
                }
            }
        }
        Ok(GroupStatus::Member)
    }

    /// Heartbeats if one is due.
    pub async fn heartbeat_if_due(
        &mut self,
        cluster: &mut Cluster,
    ) -> Result<GroupStatus, CliError> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(GroupStatus::Member);
        }
        let coordinator = cluster.coordinator_addr(&self.group).await?;
        let client = cluster.host_port(&coordinator).await?;
        let code = match client
            .heartbeat(&self.group, self.generation, &self.member_id)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                cluster.reset_connections();
                return Err(CliError::request(format!("Heartbeat to {coordinator}"))(e));
            }
        };
        self.last_heartbeat = Instant::now();
        match code {
            0 => Ok(GroupStatus::Member),
            14 | 15 | 16 | 22 | 25 | 27 => Ok(GroupStatus::Rejoin),
            code => Err(CliError::kafka(&self.group, code, None)),
        }
    }

    /// Leaves the group so that the others rebalance at once rather than after the session
    /// timeout. Best effort: the member is leaving anyway.
    pub async fn leave(&mut self, cluster: &mut Cluster) {
        if self.member_id.is_empty() {
            return;
        }
        let Ok(coordinator) = cluster.coordinator_addr(&self.group).await else {
            return;
        };
        if let Ok(client) = cluster.host_port(&coordinator).await {
            if client
                .leave_group(&self.group, &self.member_id)
                .await
                .is_err()
            {
                cluster.reset_connections();
            }
        }
    }
}
