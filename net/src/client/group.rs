//! Consumer-group calls of [`Client`](super::Client): coordinator lookup, membership and
//! committed offsets; and the client side of Kafka's "consumer" embedded protocol (the
//! Subscription and Assignment bytes carried opaquely by JoinGroup and SyncGroup) with the
//! range assignor, so that the simulator's group workload and `keel consume --group` share
//! one implementation.
//!
//! Each call fills the request for whichever version the handshake settled on (e.g.
//! FindCoordinator v4+ asks for a batch of `coordinator_keys`, OffsetFetch v8+ batches
//! `groups`, LeaveGroup v3+ names `members`) and hands back the answer in a shape that does
//! not depend on the version. Errors the broker reports are data (Kafka error codes); a
//! [`ClientError`] means the call itself failed, and for a commit that includes the case
//! where the outcome is unknown ([`ClientError::Timeout`]).
//!
//! The calls do not drive the protocol: the caller runs the join → sync → heartbeat loop and
//! reacts to the error codes (a JoinGroup answered MEMBER_ID_REQUIRED (79) must be repeated
//! with the member id it carries, KIP-394).

use super::{unexpected_opt, Client, ClientError};
use crate::codec::{self, ApiKey, RequestBody, ResponseBody};
use crate::network::Stream;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `protocol_type` of consumer groups.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The name of the range assignor (Kafka's `RangeAssignor`, librdkafka's "range").
pub const RANGE_ASSIGNOR: &str = "range";

/// Where a group's coordinator is, from FindCoordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorInfo {
    /// The coordinator's node id.
    pub node_id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: i32,
    /// 0, or the Kafka error code (e.g. COORDINATOR_NOT_AVAILABLE, 15).
    pub error_code: i16,
}

/// One partition's committed offset, from OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset; -1 when the group has none for the partition.
    pub offset: i64,
    /// The metadata committed with it.
    pub metadata: Option<String>,
    /// 0, or the partition's error code.
    pub error_code: i16,
}

/// The answer to OffsetFetch for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFetchResult {
    /// The group-level error code (v2+; 0 otherwise). Under an error the partitions are
    /// meaningless.
    pub error_code: i16,
    /// One entry per partition in the answer.
    pub partitions: Vec<CommittedOffset>,
}

impl OffsetFetchResult {
    /// The first non-zero error code, group-level first.
    pub fn first_error(&self) -> i16 {
        if self.error_code != 0 {
            return self.error_code;
        }
        self.partitions
            .iter()
            .map(|p| p.error_code)
            .find(|&e| e != 0)
            .unwrap_or(0)
    }

    /// The committed offset of `topic`/`partition` (-1 if none or absent).
    pub fn offset(&self, topic: &str, partition: i32) -> i64 {
        self.partitions
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
            .map_or(-1, |p| p.offset)
    }
}

/// One partition's outcome of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitResult {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// 0, or the partition's error code.
    pub error_code: i16,
}

impl<S: Stream> Client<S> {
    /// Finds the coordinator of consumer group `group`.
    pub async fn find_coordinator(&mut self, group: &str) -> Result<CoordinatorInfo, ClientError> {
        let version = self.version_of(ApiKey::FindCoordinator)?;
        let request = if version >= 4 {
            codec::FindCoordinatorRequest {
                key_type: codec::find_coordinator::COORDINATOR_TYPE_GROUP,
                coordinator_keys: vec![group.to_string()],
                ..Default::default()
            }
        } else {
            codec::FindCoordinatorRequest {
                key: group.to_string(),
                key_type: codec::find_coordinator::COORDINATOR_TYPE_GROUP,
                ..Default::default()
            }
        };
        match self
            .call(RequestBody::FindCoordinator(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::FindCoordinator(r)) if version >= 4 => {
                let c = r
                    .coordinators
                    .into_iter()
                    .find(|c| c.key == group)
                    .ok_or_else(|| {
                        ClientError::Unexpected("no coordinator for the group".into())
                    })?;
                Ok(CoordinatorInfo {
                    node_id: c.node_id,
                    host: c.host,
                    port: c.port,
                    error_code: c.error_code,
                })
            }
            Some(ResponseBody::FindCoordinator(r)) => Ok(CoordinatorInfo {
                node_id: r.node_id,
                host: r.host,
                port: r.port,
                error_code: r.error_code,
            }),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Joins (or rejoins) consumer group `group` with protocol type "consumer". `member_id`
    /// is empty on a first join. `protocols` are (assignor name, metadata) in preference
    /// order; the metadata of a consumer is an encoded [`Subscription`]. The broker may hold
    /// the answer until the rebalance completes, so the deadline is the request timeout plus
    /// `rebalance_timeout_ms`.
    pub async fn join_group(
        &mut self,
        group: &str,
        member_id: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        protocols: &[(&str, Bytes)],
    ) -> Result<codec::JoinGroupResponse, ClientError> {
        let request = codec::JoinGroupRequest {
            group_id: group.to_string(),
            session_timeout_ms,
            // v0 has no rebalance timeout: the broker uses the session timeout.
            rebalance_timeout_ms,
            member_id: member_id.to_string(),
            group_instance_id: None,
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocols: protocols
                .iter()
                .map(|(name, metadata)| codec::JoinGroupRequestProtocol {
                    name: name.to_string(),
                    metadata: metadata.clone(),
                })
                .collect(),
            reason: None,
        };
        let extra = Duration::from_millis(u64::try_from(rebalance_timeout_ms.max(0)).unwrap_or(0));
        match self.call(RequestBody::JoinGroup(request), extra).await? {
            Some(ResponseBody::JoinGroup(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Sends SyncGroup for `generation`: the leader passes every member's assignment (an
    /// encoded [`Assignment`]), the others an empty slice. `protocol_name` is the one
    /// JoinGroup chose (sent from v5). Followers wait for the leader, so the deadline is the
    /// request timeout plus `wait`. Returns the answer; its `assignment` is this member's.
    pub async fn sync_group(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        protocol_name: Option<&str>,
        assignments: &[(String, Bytes)],
        wait: Duration,
    ) -> Result<codec::SyncGroupResponse, ClientError> {
        let request = codec::SyncGroupRequest {
            group_id: group.to_string(),
            generation_id: generation,
            member_id: member_id.to_string(),
            group_instance_id: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: protocol_name.map(str::to_string),
            assignments: assignments
                .iter()
                .map(
                    |(member_id, assignment)| codec::SyncGroupRequestAssignment {
                        member_id: member_id.clone(),
                        assignment: assignment.clone(),
                    },
                )
                .collect(),
        };
        match self.call(RequestBody::SyncGroup(request), wait).await? {
            Some(ResponseBody::SyncGroup(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Heartbeats `member_id` of `generation`; returns the error code (0, or e.g.
    /// REBALANCE_IN_PROGRESS (27): rejoin).
    pub async fn heartbeat(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
    ) -> Result<i16, ClientError> {
        let request = codec::HeartbeatRequest {
            group_id: group.to_string(),
            generation_id: generation,
            member_id: member_id.to_string(),
            group_instance_id: None,
        };
        match self
            .call(RequestBody::Heartbeat(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::Heartbeat(r)) => Ok(r.error_code),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Leaves the group politely; returns the error code (the top-level one, else the
    /// member's from v3).
    pub async fn leave_group(&mut self, group: &str, member_id: &str) -> Result<i16, ClientError> {
        let version = self.version_of(ApiKey::LeaveGroup)?;
        let request = if version >= 3 {
            codec::LeaveGroupRequest {
                group_id: group.to_string(),
                members: vec![codec::MemberIdentity {
                    member_id: member_id.to_string(),
                    group_instance_id: None,
                    reason: None,
                }],
                ..Default::default()
            }
        } else {
            codec::LeaveGroupRequest {
                group_id: group.to_string(),
                member_id: member_id.to_string(),
                ..Default::default()
            }
        };
        match self
            .call(RequestBody::LeaveGroup(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::LeaveGroup(r)) if r.error_code != 0 => Ok(r.error_code),
            Some(ResponseBody::LeaveGroup(r)) => Ok(r
                .members
                .iter()
                .map(|m| m.error_code)
                .find(|&e| e != 0)
                .unwrap_or(0)),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Commits `offsets` as (topic, partition, offset, metadata) for `member_id` of
    /// `generation` (a simple consumer outside any generation passes -1 and ""). The offset
    /// committed is the next one to consume. Returns one result per partition answered.
    /// A [`ClientError::Timeout`] leaves the commit's outcome unknown.
    pub async fn offset_commit(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &[(&str, i32, i64, &str)],
    ) -> Result<Vec<CommitResult>, ClientError> {
        // Group the partitions by topic, keeping the caller's topic order.
        let mut topics: Vec<codec::OffsetCommitRequestTopic> = Vec::new();
        for &(topic, partition, offset, metadata) in offsets {
            let partition = codec::OffsetCommitRequestPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: -1,
                committed_metadata: Some(metadata.to_string()),
            };
            match topics.iter_mut().find(|t| t.name == topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(codec::OffsetCommitRequestTopic {
                    name: topic.to_string(),
                    partitions: vec![partition],
                    ..Default::default()
                }),
            }
        }
        let request = codec::OffsetCommitRequest {
            group_id: group.to_string(),
            generation_id_or_member_epoch: generation,
            member_id: member_id.to_string(),
            group_instance_id: None,
            // v2-4: -1 keeps the broker's retention.
            retention_time_ms: -1,
            topics,
        };
        match self
            .call(RequestBody::OffsetCommit(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::OffsetCommit(r)) => Ok(r
                .topics
                .into_iter()
                .flat_map(|t| {
                    let name = t.name;
                    t.partitions.into_iter().map(move |p| CommitResult {
                        topic: name.clone(),
                        partition: p.partition_index,
                        error_code: p.error_code,
                    })
                })
                .collect()),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Fetches the committed offsets of `group` for `topics` as (topic, partitions).
    pub async fn offset_fetch(
        &mut self,
        group: &str,
        topics: &[(&str, &[i32])],
    ) -> Result<OffsetFetchResult, ClientError> {
        let version = self.version_of(ApiKey::OffsetFetch)?;
        let request = if version >= 8 {
            codec::OffsetFetchRequest {
                groups: vec![codec::OffsetFetchRequestGroup {
                    group_id: group.to_string(),
                    member_id: None,
                    member_epoch: -1,
                    topics: Some(
                        topics
                            .iter()
                            .map(|&(name, partitions)| codec::OffsetFetchRequestTopics {
                                name: name.to_string(),
                                partition_indexes: partitions.to_vec(),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }],
                require_stable: false,
                ..Default::default()
            }
        } else {
            codec::OffsetFetchRequest {
                group_id: group.to_string(),
                topics: Some(
                    topics
                        .iter()
                        .map(|&(name, partitions)| codec::OffsetFetchRequestTopic {
                            name: name.to_string(),
                            partition_indexes: partitions.to_vec(),
                        })
                        .collect(),
                ),
                require_stable: false,
                ..Default::default()
            }
        };
        match self
            .call(RequestBody::OffsetFetch(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::OffsetFetch(r)) if version >= 8 => {
                let g = r
                    .groups
                    .into_iter()
                    .find(|g| g.group_id == group)
                    .ok_or_else(|| {
                        ClientError::Unexpected("no such group in the response".into())
                    })?;
                Ok(OffsetFetchResult {
                    error_code: g.error_code,
                    partitions: g
                        .topics
                        .into_iter()
                        .flat_map(|t| {
                            let name = t.name;
                            t.partitions.into_iter().map(move |p| CommittedOffset {
                                topic: name.clone(),
                                partition: p.partition_index,
                                offset: p.committed_offset,
                                metadata: p.metadata,
                                error_code: p.error_code,
                            })
                        })
                        .collect(),
                })
            }
            Some(ResponseBody::OffsetFetch(r)) => Ok(OffsetFetchResult {
                error_code: r.error_code,
                partitions: r
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name;
                        t.partitions.into_iter().map(move |p| CommittedOffset {
                            topic: name.clone(),
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            metadata: p.metadata,
                            error_code: p.error_code,
                        })
                    })
                    .collect(),
            }),
            other => Err(unexpected_opt(other)),
        }
    }
}

/// Why consumer-protocol bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerProtocolError {
    /// The bytes ended inside a field.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A length was negative where null is not allowed, or a string was not UTF-8.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Version 0 bytes were followed by more.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// ConsumerProtocolSubscription: what a consumer subscribes to, sent as its JoinGroup
/// protocol metadata. Encoded at version 0 (topics, user data); later versions (owned
/// partitions, generation, rack) are read up to their version-0 prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// Opaque user data, or null.
    pub user_data: Option<Bytes>,
}

/// ConsumerProtocolAssignment: the partitions the leader gives one member, relayed by
/// SyncGroup. Encoded at version 0; later versions are read up to their version-0 prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// (topic, partitions), topics in order.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// Opaque user data, or null.
    pub user_data: Option<Bytes>,
}

impl Subscription {
    /// The version-0 bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        put_len(&mut out, self.topics.len());
        for topic in &self.topics {
            put_string(&mut out, topic);
        }
        put_bytes(&mut out, self.user_data.as_ref());
        out.freeze()
    }

    /// Reads the bytes of any version (only the version-0 fields are kept).
    pub fn decode(bytes: &[u8]) -> Result<Subscription, ConsumerProtocolError> {
        let mut r = ProtocolReader { buf: bytes };
        let version = r.i16("version")?;
        if version < 0 {
            return Err(ConsumerProtocolError::Invalid("version"));
        }
        let n = r.len("topics")?;
        let mut topics = Vec::with_capacity(n.min(r.buf.len() / 2));
        for _ in 0..n {
            topics.push(r.string("topic")?);
        }
        let user_data = r.bytes("user data")?;
        r.finish(version)?;
        Ok(Subscription { topics, user_data })
    }
}

impl Assignment {
    /// The version-0 bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        put_len(&mut out, self.partitions.len());
        for (topic, partitions) in &self.partitions {
            put_string(&mut out, topic);
            put_len(&mut out, partitions.len());
            for &p in partitions {
                out.put_i32(p);
            }
        }
        put_bytes(&mut out, self.user_data.as_ref());
        out.freeze()
    }

    /// Reads the bytes of any version (only the version-0 fields are kept). Empty bytes are
    /// an empty assignment, as Kafka's consumer reads them (a member that got none).
    pub fn decode(bytes: &[u8]) -> Result<Assignment, ConsumerProtocolError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = ProtocolReader { buf: bytes };
        let version = r.i16("version")?;
        if version < 0 {
            return Err(ConsumerProtocolError::Invalid("version"));
        }
        let n = r.len("topics")?;
        let mut partitions = Vec::with_capacity(n.min(r.buf.len() / 2));
        for _ in 0..n {
            let topic = r.string("topic")?;
            let m = r.len("partitions")?;
            let mut ps = Vec::with_capacity(m.min(r.buf.len() / 4));
            for _ in 0..m {
                ps.push(r.i32("partition")?);
            }
            partitions.push((topic, ps));
        }
        let user_data = r.bytes("user data")?;
        r.finish(version)?;
        Ok(Assignment {
            partitions,
            user_data,
        })
    }

    /// Every assigned (topic, partition), in order.
    pub fn topic_partitions(&self) -> Vec<(String, i32)> {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
            .collect()
    }
}

/// Kafka's range assignor: for each topic, the members subscribed to it sorted by member id
/// get consecutive ranges of its partitions, the first `partitions % members` one extra.
/// `members` are (member_id, subscription); `partition_counts` the partitions of each topic
/// (a subscribed topic missing from it is skipped). Every member gets an entry, possibly
/// empty.
pub fn range_assign(
    members: &[(String, Subscription)],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut assignments: BTreeMap<String, Assignment> = members
        .iter()
        .map(|(id, _)| (id.clone(), Assignment::default()))
        .collect();
    let mut by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, subscription) in members {
        for topic in &subscription.topics {
            by_topic
                .entry(topic.as_str())
                .or_default()
                .push(id.as_str());
        }
    }
    for (topic, mut subscribers) in by_topic {
        let Some(&count) = partition_counts.get(topic) else {
            continue;
        };
        subscribers.sort_unstable();
        subscribers.dedup();
        let count = usize::try_from(count.max(0)).unwrap_or(0);
        let per_member = count / subscribers.len();
        let extra = count % subscribers.len();
        let mut next = 0usize;
        for (i, id) in subscribers.into_iter().enumerate() {
            let n = per_member + usize::from(i < extra);
            if n == 0 {
                continue;
            }
            // `count` came from an i32, so every index fits one.
            let range: Vec<i32> = (next..next + n).map(|p| p as i32).collect();
            next += n;
            if let Some(a) = assignments.get_mut(id) {
                a.partitions.push((topic.to_string(), range));
            }
        }
    }
    assignments
}

fn put_len(out: &mut BytesMut, n: usize) {
    out.put_i32(i32::try_from(n).expect("a consumer-protocol array fits an i32"));
}

fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i16(i16::try_from(s.len()).expect("a topic name fits an i16 length"));
    out.put_slice(s.as_bytes());
}

fn put_bytes(out: &mut BytesMut, b: Option<&Bytes>) {
    match b {
        None => out.put_i32(-1),
        Some(b) => {
            put_len(out, b.len());
            out.put_slice(b);
        }
    }
}

/// A bounds-checked reader over consumer-protocol bytes.
struct ProtocolReader<'a> {
    buf: &'a [u8],
}

impl ProtocolReader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ConsumerProtocolError> {
        if self.buf.len() < n {
            return Err(ConsumerProtocolError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, ConsumerProtocolError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, ConsumerProtocolError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn len(&mut self, what: &'static str) -> Result<usize, ConsumerProtocolError> {
        usize::try_from(self.i32(what)?).map_err(|_| ConsumerProtocolError::Invalid(what))
    }

    fn string(&mut self, what: &'static str) -> Result<String, ConsumerProtocolError> {
        let n =
            usize::try_from(self.i16(what)?).map_err(|_| ConsumerProtocolError::Invalid(what))?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ConsumerProtocolError::Invalid(what))
    }

    fn bytes(&mut self, what: &'static str) -> Result<Option<Bytes>, ConsumerProtocolError> {
        let n = self.i32(what)?;
        if n < 0 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| ConsumerProtocolError::Invalid(what))?;
        Ok(Some(Bytes::copy_from_slice(self.take(n, what)?)))
    }

    /// Version 0 must end here; later versions carry fields we do not read.
    fn finish(self, version: i16) -> Result<(), ConsumerProtocolError> {
        if version == 0 && !self.buf.is_empty() {
            return Err(ConsumerProtocolError::Trailing(self.buf.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trips() {
        let s = Subscription {
            topics: vec!["a".into(), "bb".into()],
            user_data: Some(Bytes::from_static(b"xyz")),
        };
        assert_eq!(Subscription::decode(&s.encode()).unwrap(), s);
        let empty = Subscription::default();
        assert_eq!(Subscription::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn assignment_round_trips() {
        let a = Assignment {
            partitions: vec![("t".into(), vec![0, 2, 5]), ("u".into(), vec![])],
            user_data: None,
        };
        assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        assert_eq!(Assignment::decode(&[]).unwrap(), Assignment::default());
    }

    /// Version 0 as Kafka's ConsumerProtocol writes it, byte for byte
    /// (ConsumerProtocolSubscription.json: version, topics, user_data).
    #[test]
    fn subscription_v0_bytes() {
        let s = Subscription {
            topics: vec!["ab".into()],
            user_data: None,
        };
        let expected: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(&s.encode()[..], expected);
    }

    #[test]
    fn decoding_rejects_truncation_and_v0_trailing_bytes_but_reads_later_versions() {
        let bytes = Subscription {
            topics: vec!["topic".into()],
            user_data: None,
        }
        .encode();
        for cut in 0..bytes.len() {
            assert!(Subscription::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert_eq!(
            Subscription::decode(&trailing),
            Err(ConsumerProtocolError::Trailing(1))
        );
        // A v1 subscription (owned partitions follow) keeps its v0 prefix.
        let mut v1 = trailing;
        v1[1] = 1;
        v1.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Subscription::decode(&v1).unwrap().topics, vec!["topic"]);
        assert!(Assignment::decode(&[0, 0, 0xff, 0xff, 0xff, 0xfe]).is_err());
    }

    #[test]
    fn range_assignor_matches_kafka() {
        let sub = |topics: &[&str]| Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            user_data: None,
        };
        let members = vec![
            ("m2".to_string(), sub(&["t", "u"])),
            ("m1".to_string(), sub(&["t", "u"])),
            ("m3".to_string(), sub(&["t"])),
        ];
        let counts: BTreeMap<String, i32> = [("t".to_string(), 7), ("u".to_string(), 1)]
            .into_iter()
            .collect();
        let a = range_assign(&members, &counts);
        assert_eq!(
            a["m1"].partitions,
            vec![("t".to_string(), vec![0, 1, 2]), ("u".to_string(), vec![0])]
        );
        assert_eq!(a["m2"].partitions, vec![("t".to_string(), vec![3, 4])]);
        assert_eq!(a["m3"].partitions, vec![("t".to_string(), vec![5, 6])]);
        // Every partition exactly once.
        let mut all: Vec<(String, i32)> = a.values().flat_map(|a| a.topic_partitions()).collect();
        all.sort();
        assert_eq!(all.len(), 8);
        all.dedup();
        assert_eq!(all.len(), 8);
    }

    /// Every version of every group call the client may negotiate, against the real driver
    /// and coordinator: round k speaks version k of each API, clamped to what we advertise,
    /// so each request shape (FindCoordinator key vs coordinator_keys, OffsetFetch per group
    /// vs batched, LeaveGroup member vs members, ...) is filled and answered correctly.
    #[tokio::test(flavor = "current_thread")]
    async fn every_version_of_the_group_calls_works_against_the_driver() {
        use crate::client::ClientOptions;
        use crate::driver::{self, DriverOptions};
        use crate::network::{SyncMode, Tokio};
        use keel_core::group::GroupConfig;
        use keel_core::node::NodeConfig;
        use keel_core::storage::{MemStorage, Storage};
        use std::sync::Arc;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = NodeConfig {
            advertised_port: i32::from(addr.port()),
            auto_create_topics: false,
            group: GroupConfig {
                offsets_topic_num_partitions: 2,
                initial_rebalance_delay_ms: 0,
                ..GroupConfig::default()
            },
            ..NodeConfig::default()
        };
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let options = DriverOptions {
            max_request_bytes: 1024 * 1024,
            max_inflight_per_connection: 8,
            seed: 7,
            sync_mode: SyncMode::Inline,
            wall_clock_at_start: driver::wall_clock_now(),
        };
        let server = tokio::spawn(driver::run(
            listener,
            node,
            storage,
            options,
            std::future::pending(),
        ));
        let client_options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        let mut c = Client::connect(&Tokio, addr, client_options).await.unwrap();
        let created = c.create_topics(&[("t", 2)], 5_000).await.unwrap();
        assert_eq!(created.topics[0].error_code, 0);

        let group_apis = [
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::LeaveGroup,
            ApiKey::OffsetCommit,
            ApiKey::OffsetFetch,
        ];
        for round in 0..=9i16 {
            for key in group_apis {
                let (min, max) = codec::supported_range(key);
                c.versions.insert(key, round.clamp(min, max));
            }
            let versions = c.versions.clone();
            let at = |key: ApiKey| versions[&key];
            let shown = format!("round {round}: {:?}", group_apis.map(at));
            let group = format!("g{round}");

            let coordinator = c.find_coordinator(&group).await.unwrap();
            assert_eq!(coordinator.error_code, 0, "{shown}");
            assert_eq!(coordinator.port, i32::from(addr.port()), "{shown}");

            let subscription = Subscription {
                topics: vec!["t".into()],
                user_data: None,
            };
            let protocols = [(RANGE_ASSIGNOR, subscription.encode())];
            let mut join = c
                .join_group(&group, "", 10_000, 10_000, &protocols)
                .await
                .unwrap();
            if at(ApiKey::JoinGroup) >= 4 {
                // KIP-394: the first join only hands out the member id.
                assert_eq!(join.error_code, 79, "{shown}");
                let member_id = join.member_id.clone();
                join = c
                    .join_group(&group, &member_id, 10_000, 10_000, &protocols)
                    .await
                    .unwrap();
            }
            assert_eq!(join.error_code, 0, "{shown}");
            let member_id = join.member_id.clone();
            assert!(!member_id.is_empty(), "{shown}");
            assert_eq!(join.leader, member_id, "{shown}");
            assert_eq!(
                join.protocol_name.as_deref(),
                Some(RANGE_ASSIGNOR),
                "{shown}"
            );
            let members: Vec<(String, Subscription)> = join
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        Subscription::decode(&m.metadata).unwrap(),
                    )
                })
                .collect();
            assert_eq!(members, vec![(member_id.clone(), subscription)], "{shown}");
            let counts = [("t".to_string(), 2)].into_iter().collect();
            let assignments: Vec<(String, Bytes)> = range_assign(&members, &counts)
                .into_iter()
                .map(|(id, a)| (id, a.encode()))
                .collect();
            let generation = join.generation_id;
            let sync = c
                .sync_group(
                    &group,
                    generation,
                    &member_id,
                    join.protocol_name.as_deref(),
                    &assignments,
                    Duration::ZERO,
                )
                .await
                .unwrap();
            assert_eq!(sync.error_code, 0, "{shown}");
            let assignment = Assignment::decode(&sync.assignment).unwrap();
            assert_eq!(
                assignment.topic_partitions(),
                vec![("t".into(), 0), ("t".into(), 1)]
            );
            assert_eq!(
                c.heartbeat(&group, generation, &member_id).await.unwrap(),
                0
            );

            let none = c.offset_fetch(&group, &[("t", &[0, 1])]).await.unwrap();
            assert_eq!(none.first_error(), 0, "{shown}");
            assert_eq!(
                (none.offset("t", 0), none.offset("t", 1)),
                (-1, -1),
                "{shown}"
            );
            let results = c
                .offset_commit(
                    &group,
                    generation,
                    &member_id,
                    &[("t", 0, 5, "five"), ("t", 1, 7, "")],
                )
                .await
                .unwrap();
            assert_eq!(results.len(), 2, "{shown}");
            assert!(
                results.iter().all(|r| r.error_code == 0),
                "{shown}: {results:?}"
            );
            let fetched = c.offset_fetch(&group, &[("t", &[0, 1])]).await.unwrap();
            assert_eq!(fetched.first_error(), 0, "{shown}");
            assert_eq!(
                (fetched.offset("t", 0), fetched.offset("t", 1)),
                (5, 7),
                "{shown}"
            );
            let p0 = fetched
                .partitions
                .iter()
                .find(|p| p.partition == 0)
                .unwrap();
            assert_eq!(p0.metadata.as_deref(), Some("five"), "{shown}");
            // A commit from a stale generation is fenced.
            let stale = c
                .offset_commit(&group, generation + 1, &member_id, &[("t", 0, 9, "")])
                .await
                .unwrap();
            assert_eq!(stale[0].error_code, 22, "{shown}");

            assert_eq!(
                c.leave_group(&group, &member_id).await.unwrap(),
                0,
                "{shown}"
            );
            assert_eq!(
                c.heartbeat(&group, generation, &member_id).await.unwrap(),
                25,
                "{shown}: UNKNOWN_MEMBER_ID after leaving"
            );
        }
        server.abort();
    }
}
