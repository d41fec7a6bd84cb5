//! `controller`: the cluster's metadata as a state machine fed by the metadata Raft log
//! (Kafka's KRaft `__cluster_metadata`): which brokers are registered, with the address
//! clients reach them at and their rack; which topics exist, with their ids, partition
//! counts and configs; and on which brokers each partition's replicas live. Every broker of the cluster is a voter of the
//! metadata quorum ([`quorum`]) and applies the same committed records in the same order,
//! so every broker holds the same [`ClusterImage`]; the quorum's leader is the active
//! controller, the only one that appends.
//!
//! A record batch is one Raft entry and applies atomically: every record is checked
//! against the image first, and a batch that fails a check changes nothing (its proposer
//! learns why). Checks use only the image and the records, so every broker reaches the
//! same verdict.
//!
//! Records are laid out with keel-raft's varints ([`keel_raft::codec`]), a tag byte per
//! variant, fields in declaration order; decoding bounds every count by the bytes left.

pub mod quorum;

use crate::api::TopicId;
use crate::error::ErrorCode;
use crate::ids::NodeId;
use crate::metadata::TopicMeta;
use keel_raft::codec::{put, put_bytes, DecodeError, Reader};
use std::collections::BTreeMap;

/// The directory of the metadata quorum's Raft log (hard state, snapshot, entries), named
/// as Kafka names its metadata log. No topic may be called `__cluster_metadata`
/// (metadata.rs), so it never collides with a partition's directory.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// The metadata log's topic name, as DescribeQuorum asks for it (partition 0).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Kafka's NOT_CONTROLLER: the request reached a broker that is not the active controller.
pub const NOT_CONTROLLER: ErrorCode = ErrorCode(41);

/// Kafka's STALE_BROKER_EPOCH: a registration from a process older than the one registered.
pub const STALE_BROKER_EPOCH: ErrorCode = ErrorCode(77);

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A broker (re)started and says where clients reach it. A registration replaces the
    /// broker's earlier one only if it comes from a later process (a higher
    /// `incarnation`), so a late retry of an old process's registration cannot undo a
    /// restart's.
    RegisterBroker(BrokerRegistration),
    /// A topic is created with `replicas[p]` the brokers of partition `p`, the first of
    /// them its preferred leader.
    CreateTopic {
        topic: TopicMeta,
        replicas: Vec<Vec<NodeId>>,
    },
    /// A topic is deleted, with every partition.
    DeleteTopic { id: TopicId },
    /// A topic grows by `replicas.len()` partitions, placed as listed.
    CreatePartitions {
        id: TopicId,
        replicas: Vec<Vec<NodeId>>,
    },
    /// A topic's own configs become `configs` (the whole set, as AlterConfigs sets it).
    SetTopicConfigs {
        id: TopicId,
        configs: BTreeMap<String, String>,
    },
    /// A block of `size` producer ids for `broker`'s process `incarnation`, taken from the
    /// cluster's next free id when it applies (Kafka's AllocateProducerIds): no two
    /// brokers, and no two processes of one broker, hand out the same id.
    AllocateProducerIds {
        broker: NodeId,
        incarnation: u64,
        size: i64,
    },
    /// The controller has not heard from the broker's process `incarnation` within the
    /// session timeout: clients are no longer sent to it.
    FenceBroker { id: NodeId, incarnation: u64 },
    /// The controller hears from a fenced broker's process again.
    UnfenceBroker { id: NodeId, incarnation: u64 },
}

/// The producer ids a broker process may hand out: `first..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub incarnation: u64,
    pub first: i64,
    pub end: i64,
}

/// The most ids one block may hold.
pub const MAX_PRODUCER_ID_BLOCK: i64 = 1_000_000;

/// What the metadata log knows of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: NodeId,
    /// The start time of the broker's process, in nanoseconds of the driver's clock: a
    /// restart registers with a higher one (Kafka's incarnation id, ordered).
    pub incarnation: u64,
    /// Where clients connect (the advertised listener).
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Producer ids below this were handed out before the broker joined the cluster (a
    /// single node's, node/upgrade.rs): no block starts below it once it registered.
    pub producer_floor: i64,
}

/// The cluster's metadata as of some applied index: the same on every broker that applied
/// the same prefix of the metadata log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
    /// Every topic by name, as the single node's metadata file holds them.
    pub topics: BTreeMap<String, TopicMeta>,
    /// Each topic's replica lists, by partition.
    pub replicas: BTreeMap<TopicId, Vec<Vec<NodeId>>>,
    /// The first producer id no block holds yet.
    pub next_producer_id: i64,
    /// Each broker's latest producer-id block.
    pub producer_blocks: BTreeMap<NodeId, ProducerIdBlock>,
    /// The metadata quorum's voters, set by the quorum from its log's membership (not a
    /// record): producer ids are granted only once every voter registered, so that no
    /// block is cut below a joining single node's ids.
    pub voters: std::collections::BTreeSet<NodeId>,
    /// Registered brokers the controller does not hear from (Kafka's fenced brokers).
    pub fenced: std::collections::BTreeSet<NodeId>,
}

/// Why a batch of records was refused: a Kafka error code and a message for the client.
pub type Refusal = (ErrorCode, String);

impl ClusterImage {
    /// Applies one committed batch: all of it, or (if any record fails its check) none.
    pub fn apply(&mut self, records: &[MetadataRecord]) -> Result<(), Refusal> {
        let mut next = self.clone();
        for record in records {
            next.apply_one(record)?;
        }
        *self = next;
        Ok(())
    }

    fn apply_one(&mut self, record: &MetadataRecord) -> Result<(), Refusal> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                if r.id.0 < 0 {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("broker id {} is negative", r.id),
                    ));
                }
                match self.brokers.get(&r.id) {
                    // A retry of a registration already applied.
                    Some(old) if old.incarnation == r.incarnation => return Ok(()),
                    Some(old) if old.incarnation > r.incarnation => {
                        return Err((
                            STALE_BROKER_EPOCH,
                            format!("broker {} has registered since, from a later process", r.id),
                        ))
                    }
                    _ => {}
                }
                self.next_producer_id = self.next_producer_id.max(r.producer_floor);
                self.brokers.insert(r.id, r.clone());
                // A process registering is a process alive.
                self.fenced.remove(&r.id);
                Ok(())
            }
            MetadataRecord::CreateTopic { topic, replicas } => {
                if self.topics.contains_key(&topic.name) {
                    return Err((
                        ErrorCode::TOPIC_ALREADY_EXISTS,
                        format!("Topic '{}' already exists.", topic.name),
                    ));
                }
                if topic.id.is_zero() || self.replicas.contains_key(&topic.id) {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("topic id of '{}' is zero or taken", topic.name),
                    ));
                }
                if topic.partitions <= 0 || replicas.len() != topic.partitions as usize {
                    return Err((
                        ErrorCode::INVALID_PARTITIONS,
                        format!(
                            "{} partitions with {} replica lists",
                            topic.partitions,
                            replicas.len()
                        ),
                    ));
                }
                self.check_replicas(&topic.name, replicas)?;
                self.topics.insert(topic.name.clone(), topic.clone());
                self.replicas.insert(topic.id, replicas.clone());
                Ok(())
            }
            MetadataRecord::AllocateProducerIds {
                broker,
                incarnation,
                size,
            } => {
                if !(1..=MAX_PRODUCER_ID_BLOCK).contains(size) || !self.brokers.contains_key(broker)
                {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("a block of {size} producer ids for broker {broker}"),
                    ));
                }
                if let Some(v) = self.voters.iter().find(|v| !self.brokers.contains_key(v)) {
                    return Err((
                        ErrorCode::COORDINATOR_NOT_AVAILABLE,
                        format!("no producer ids until every voter registered; {v} has not"),
                    ));
                }
                let first = self.next_producer_id;
                let end = first.checked_add(*size).ok_or((
                    ErrorCode::INVALID_REQUEST,
                    "producer ids are exhausted".to_string(),
                ))?;
                self.next_producer_id = end;
                self.producer_blocks.insert(
                    *broker,
                    ProducerIdBlock {
                        incarnation: *incarnation,
                        first,
                        end,
                    },
                );
                Ok(())
            }
            MetadataRecord::CreatePartitions { id, replicas } => {
                let topic = self.topic_by_id(*id)?.clone();
                self.check_replicas(&topic.name, replicas)?;
                let count = topic.partitions as usize + replicas.len();
                let count = i32::try_from(count).map_err(|_| {
                    (
                        ErrorCode::INVALID_PARTITIONS,
                        "too many partitions".to_string(),
                    )
                })?;
                self.topics.insert(
                    topic.name.clone(),
                    TopicMeta {
                        partitions: count,
                        ..topic
                    },
                );
                self.replicas
                    .entry(*id)
                    .or_default()
                    .extend(replicas.iter().cloned());
                Ok(())
            }
            MetadataRecord::SetTopicConfigs { id, configs } => {
                let topic = self.topic_by_id(*id)?.clone();
                self.topics
                    .insert(topic.name.clone(), topic.with_configs(configs.clone()));
                Ok(())
            }
            MetadataRecord::FenceBroker { id, incarnation }
            | MetadataRecord::UnfenceBroker { id, incarnation } => {
                if self.brokers.get(id).map(|b| b.incarnation) != Some(*incarnation) {
                    return Err((
                        STALE_BROKER_EPOCH,
                        format!("broker {id} has registered since"),
                    ));
                }
                if matches!(record, MetadataRecord::FenceBroker { .. }) {
                    self.fenced.insert(*id);
                } else {
                    self.fenced.remove(id);
                }
                Ok(())
            }
            MetadataRecord::DeleteTopic { id } => {
                if self.replicas.remove(id).is_none() {
                    return Err((
                        ErrorCode::UNKNOWN_TOPIC_ID,
                        "This server does not host this topic ID.".to_string(),
                    ));
                }
                self.topics.retain(|_, t| t.id != *id);
                Ok(())
            }
        }
    }

    fn topic_by_id(&self, id: TopicId) -> Result<&TopicMeta, Refusal> {
        self.topics.values().find(|t| t.id == id).ok_or((
            ErrorCode::UNKNOWN_TOPIC_ID,
            "This server does not host this topic ID.".to_string(),
        ))
    }

    /// Each list names distinct registered brokers, at least one.
    fn check_replicas(&self, topic: &str, replicas: &[Vec<NodeId>]) -> Result<(), Refusal> {
        for (p, brokers) in replicas.iter().enumerate() {
            let mut seen = std::collections::BTreeSet::new();
            if brokers.is_empty()
                || !brokers
                    .iter()
                    .all(|b| self.brokers.contains_key(b) && seen.insert(*b))
            {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "replica list {p} of '{topic}' is {brokers:?}: not distinct registered \
                         brokers"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The replicas of partition `index` of topic `id`.
    pub fn replicas_of(&self, id: TopicId, index: i32) -> Option<&[NodeId]> {
        let lists = self.replicas.get(&id)?;
        lists.get(usize::try_from(index).ok()?).map(Vec::as_slice)
    }

    /// The image as snapshot bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = vec![IMAGE_VERSION];
        put(&mut w, self.brokers.len() as u64);
        for b in self.brokers.values() {
            put_registration(&mut w, b);
        }
        put(&mut w, self.topics.len() as u64);
        for t in self.topics.values() {
            put_topic(
                &mut w,
                t,
                self.replicas.get(&t.id).map_or(&[][..], Vec::as_slice),
            );
        }
        put(&mut w, self.fenced.len() as u64);
        for id in &self.fenced {
            put_i32(&mut w, id.0);
        }
        put(&mut w, self.next_producer_id as u64);
        put(&mut w, self.producer_blocks.len() as u64);
        for (broker, b) in &self.producer_blocks {
            put_i32(&mut w, broker.0);
            put(&mut w, b.incarnation);
            put(&mut w, b.first as u64);
            put(&mut w, b.end as u64);
        }
        w
    }

    /// An image from snapshot bytes (empty bytes: the empty image of a new cluster).
    pub fn decode(bytes: &[u8]) -> Result<ClusterImage, DecodeError> {
        if bytes.is_empty() {
            return Ok(ClusterImage::default());
        }
        let mut r = Reader::new(bytes);
        match r.u8()? {
            IMAGE_VERSION => {}
            tag => {
                return Err(DecodeError::Tag {
                    what: "image version",
                    tag,
                })
            }
        }
        let mut image = ClusterImage::default();
        for _ in 0..r.count(MIN_REGISTRATION_BYTES)? {
            let b = registration(&mut r)?;
            image.brokers.insert(b.id, b);
        }
        for _ in 0..r.count(MIN_TOPIC_BYTES)? {
            let (t, replicas) = topic(&mut r)?;
            image.replicas.insert(t.id, replicas);
            image.topics.insert(t.name.clone(), t);
        }
        for _ in 0..r.count(1)? {
            image.fenced.insert(NodeId(i32_of(&mut r)?));
        }
        image.next_producer_id = i64_of(&mut r)?;
        for _ in 0..r.count(4)? {
            let broker = NodeId(i32_of(&mut r)?);
            let block = ProducerIdBlock {
                incarnation: r.var()?,
                first: i64_of(&mut r)?,
                end: i64_of(&mut r)?,
            };
            image.producer_blocks.insert(broker, block);
        }
        r.finish()?;
        Ok(image)
    }
}

const IMAGE_VERSION: u8 = 1;
/// name length, id, partitions, config count, compacted flag, replica list count.
const MIN_TOPIC_BYTES: usize = 21;
/// id, incarnation, host length, port, rack flag, producer floor.
const MIN_REGISTRATION_BYTES: usize = 6;

/// Encodes one batch of records (one Raft entry, or one `Forward`).
#[must_use]
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    let mut w = Vec::new();
    put(&mut w, records.len() as u64);
    for record in records {
        match record {
            MetadataRecord::RegisterBroker(b) => {
                w.push(0);
                put_registration(&mut w, b);
            }
            MetadataRecord::CreateTopic { topic, replicas } => {
                w.push(1);
                put_topic(&mut w, topic, replicas);
            }
            MetadataRecord::DeleteTopic { id } => {
                w.push(2);
                w.extend_from_slice(&id.0);
            }
            MetadataRecord::AllocateProducerIds {
                broker,
                incarnation,
                size,
            } => {
                w.push(3);
                put_i32(&mut w, broker.0);
                put(&mut w, *incarnation);
                put(&mut w, *size as u64);
            }
            MetadataRecord::CreatePartitions { id, replicas } => {
                w.push(6);
                w.extend_from_slice(&id.0);
                put_replicas(&mut w, replicas);
            }
            MetadataRecord::SetTopicConfigs { id, configs } => {
                w.push(7);
                w.extend_from_slice(&id.0);
                put_configs(&mut w, configs);
            }
            MetadataRecord::FenceBroker { id, incarnation } => {
                w.push(4);
                put_i32(&mut w, id.0);
                put(&mut w, *incarnation);
            }
            MetadataRecord::UnfenceBroker { id, incarnation } => {
                w.push(5);
                put_i32(&mut w, id.0);
                put(&mut w, *incarnation);
            }
        }
    }
    w
}

/// Decodes one batch; trailing bytes are an error.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    let mut r = Reader::new(bytes);
    // The smallest record, a fencing: a tag, an id and an incarnation.
    let n = r.count(3)?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        records.push(match r.u8()? {
            0 => MetadataRecord::RegisterBroker(registration(&mut r)?),
            1 => {
                let (topic, replicas) = topic(&mut r)?;
                MetadataRecord::CreateTopic { topic, replicas }
            }
            2 => MetadataRecord::DeleteTopic {
                id: topic_id(&mut r)?,
            },
            3 => MetadataRecord::AllocateProducerIds {
                broker: NodeId(i32_of(&mut r)?),
                incarnation: r.var()?,
                size: i64_of(&mut r)?,
            },
            4 => MetadataRecord::FenceBroker {
                id: NodeId(i32_of(&mut r)?),
                incarnation: r.var()?,
            },
            5 => MetadataRecord::UnfenceBroker {
                id: NodeId(i32_of(&mut r)?),
                incarnation: r.var()?,
            },
            6 => MetadataRecord::CreatePartitions {
                id: topic_id(&mut r)?,
                replicas: replicas(&mut r)?,
            },
            7 => MetadataRecord::SetTopicConfigs {
                id: topic_id(&mut r)?,
                configs: configs(&mut r)?,
            },
            tag => {
                return Err(DecodeError::Tag {
                    what: "metadata record",
                    tag,
                })
            }
        });
    }
    r.finish()?;
    Ok(records)
}

fn put_i32(w: &mut Vec<u8>, v: i32) {
    put(w, u64::from(v as u32));
}

fn i32_of(r: &mut Reader<'_>) -> Result<i32, DecodeError> {
    u32::try_from(r.var()?)
        .map(|v| v as i32)
        .map_err(|_| DecodeError::Varint)
}

fn i64_of(r: &mut Reader<'_>) -> Result<i64, DecodeError> {
    i64::try_from(r.var()?).map_err(|_| DecodeError::Varint)
}

fn string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    String::from_utf8(r.bytes()?).map_err(|_| DecodeError::Tag {
        what: "utf-8",
        tag: 0,
    })
}

fn put_registration(w: &mut Vec<u8>, b: &BrokerRegistration) {
    put_i32(w, b.id.0);
    put(w, b.incarnation);
    put_bytes(w, b.host.as_bytes());
    put_i32(w, b.port);
    match &b.rack {
        None => w.push(0),
        Some(rack) => {
            w.push(1);
            put_bytes(w, rack.as_bytes());
        }
    }
    put(w, b.producer_floor.max(0) as u64);
}

fn put_topic(w: &mut Vec<u8>, t: &TopicMeta, replicas: &[Vec<NodeId>]) {
    put_bytes(w, t.name.as_bytes());
    w.extend_from_slice(&t.id.0);
    put_i32(w, t.partitions);
    put_configs(w, &t.configs);
    w.push(u8::from(t.compacted_once));
    put_replicas(w, replicas);
}

fn put_configs(w: &mut Vec<u8>, configs: &BTreeMap<String, String>) {
    put(w, configs.len() as u64);
    for (k, v) in configs {
        put_bytes(w, k.as_bytes());
        put_bytes(w, v.as_bytes());
    }
}

fn put_replicas(w: &mut Vec<u8>, replicas: &[Vec<NodeId>]) {
    put(w, replicas.len() as u64);
    for list in replicas {
        put(w, list.len() as u64);
        for b in list {
            put_i32(w, b.0);
        }
    }
}

fn configs(r: &mut Reader<'_>) -> Result<BTreeMap<String, String>, DecodeError> {
    let mut configs = BTreeMap::new();
    for _ in 0..r.count(2)? {
        let k = string(r)?;
        configs.insert(k, string(r)?);
    }
    Ok(configs)
}

fn replicas(r: &mut Reader<'_>) -> Result<Vec<Vec<NodeId>>, DecodeError> {
    let mut replicas = Vec::new();
    for _ in 0..r.count(1)? {
        let mut list = Vec::new();
        for _ in 0..r.count(1)? {
            list.push(NodeId(i32_of(r)?));
        }
        replicas.push(list);
    }
    Ok(replicas)
}

fn topic_id(r: &mut Reader<'_>) -> Result<TopicId, DecodeError> {
    let mut id = [0u8; 16];
    for b in &mut id {
        *b = r.u8()?;
    }
    Ok(TopicId(id))
}

fn topic(r: &mut Reader<'_>) -> Result<(TopicMeta, Vec<Vec<NodeId>>), DecodeError> {
    let name = string(r)?;
    let id = topic_id(r)?;
    let partitions = i32_of(r)?;
    let configs = configs(r)?;
    let compacted_once = r.bool()?;
    let replicas = replicas(r)?;
    let topic = TopicMeta {
        name,
        id,
        partitions,
        configs,
        compacted_once,
    };
    Ok((topic, replicas))
}

/// Replica lists for a new topic of `partitions` partitions with `factor` replicas each
/// over `brokers` (sorted, distinct, at least `factor` of them): partition `p`'s
/// replicas are the `factor` brokers from position `start + p` on, round the ring, so
/// leaders and replicas spread evenly, and brokers on racks alternate racks first
/// (Kafka's rack-aware assignment: brokers are ordered rack by rack, interleaved).
pub fn place_replicas(
    brokers: &[(NodeId, Option<String>)],
    partitions: i32,
    factor: usize,
    start: usize,
) -> Vec<Vec<NodeId>> {
    // Interleave racks: a, b, c, a, b, c, ... so that consecutive brokers differ in rack.
    let mut by_rack: BTreeMap<Option<&str>, Vec<NodeId>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    let mut ring = Vec::with_capacity(brokers.len());
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    for depth in 0..deepest {
        for ids in by_rack.values() {
            if let Some(&id) = ids.get(depth) {
                ring.push(id);
            }
        }
    }
    let n = ring.len().max(1);
    (0..partitions.max(0) as usize)
        .map(|p| {
            (0..factor.min(ring.len()))
                .map(|k| ring[(start + p + k) % n])
                .collect()
        })
        .collect()
}

fn registration(r: &mut Reader<'_>) -> Result<BrokerRegistration, DecodeError> {
    Ok(BrokerRegistration {
        id: NodeId(i32_of(r)?),
        incarnation: r.var()?,
        host: string(r)?,
        port: i32_of(r)?,
        rack: match r.u8()? {
            0 => None,
            1 => Some(string(r)?),
            tag => return Err(DecodeError::Tag { what: "rack", tag }),
        },
        producer_floor: i64_of(r)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registration() -> impl Strategy<Value = BrokerRegistration> {
        (
            0..100i32,
            prop_oneof![0..10u64, any::<u64>()],
            "[a-z.]{0,12}",
            prop_oneof![0..10i32, any::<i32>()],
            proptest::option::of("[a-z0-9]{1,6}"),
        )
            .prop_map(|(id, incarnation, host, port, rack)| BrokerRegistration {
                id: NodeId(id),
                incarnation,
                host,
                port,
                rack,
                producer_floor: 0,
            })
    }

    fn topic() -> impl Strategy<Value = MetadataRecord> {
        (
            "[a-z]{1,8}",
            any::<[u8; 16]>(),
            1..4i32,
            proptest::collection::btree_map("[a-z.]{1,8}", "[a-z0-9]{0,4}", 0..3),
            any::<bool>(),
        )
            .prop_map(|(name, id, partitions, configs, compacted_once)| {
                MetadataRecord::CreateTopic {
                    topic: TopicMeta {
                        name,
                        id: TopicId(id),
                        partitions,
                        configs,
                        compacted_once,
                    },
                    replicas: (0..partitions)
                        .map(|p| vec![NodeId(p), NodeId(p + 1)])
                        .collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn topic_records_round_trip(records in proptest::collection::vec(prop_oneof![
            topic(),
            any::<[u8; 16]>().prop_map(|id| MetadataRecord::DeleteTopic { id: TopicId(id) }),
            (0..9i32, any::<u64>(), 0..i64::MAX).prop_map(|(b, incarnation, size)| {
                MetadataRecord::AllocateProducerIds { broker: NodeId(b), incarnation, size }
            }),
            (any::<[u8; 16]>(), proptest::collection::btree_map("[a-z.]{1,6}", "[0-9]{0,3}", 0..3))
                .prop_map(|(id, configs)| MetadataRecord::SetTopicConfigs { id: TopicId(id), configs }),
            any::<[u8; 16]>().prop_map(|id| MetadataRecord::CreatePartitions {
                id: TopicId(id),
                replicas: vec![vec![NodeId(1)], vec![NodeId(2), NodeId(3)]],
            }),
            (0..9i32, any::<u64>(), any::<bool>()).prop_map(|(b, incarnation, fence)| {
                let id = NodeId(b);
                if fence {
                    MetadataRecord::FenceBroker { id, incarnation }
                } else {
                    MetadataRecord::UnfenceBroker { id, incarnation }
                }
            }),
        ], 0..5)) {
            let bytes = encode_records(&records);
            prop_assert_eq!(decode_records(&bytes), Ok(records.clone()));
            for cut in 0..bytes.len() {
                prop_assert!(decode_records(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn records_and_images_round_trip(regs in proptest::collection::vec(registration(), 0..6)) {
            let records: Vec<_> = regs.iter().cloned().map(MetadataRecord::RegisterBroker).collect();
            let bytes = encode_records(&records);
            prop_assert_eq!(decode_records(&bytes), Ok(records.clone()));
            for cut in 0..bytes.len() {
                prop_assert!(decode_records(&bytes[..cut]).is_err());
            }
            let mut image = ClusterImage::default();
            for r in &records {
                // A repeated id with a lower incarnation is refused, which is fine here.
                let _ = image.apply(std::slice::from_ref(r));
            }
            prop_assert_eq!(ClusterImage::decode(&image.encode()), Ok(image));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_records(&bytes);
            let _ = ClusterImage::decode(&bytes);
        }
    }

    #[test]
    fn topics_need_registered_brokers_and_free_names_and_images_keep_them() {
        let mut image = ClusterImage::default();
        for id in 1..=3 {
            image
                .apply(&[MetadataRecord::RegisterBroker(BrokerRegistration {
                    id: NodeId(id),
                    incarnation: 1,
                    host: "h".into(),
                    port: 9092,
                    rack: None,
                    producer_floor: 0,
                })])
                .unwrap();
        }
        let create = |name: &str, id: u8, replicas: Vec<Vec<NodeId>>| MetadataRecord::CreateTopic {
            topic: TopicMeta::new(
                name,
                TopicId([id; 16]),
                replicas.len() as i32,
                BTreeMap::new(),
            ),
            replicas,
        };
        let ok = create("t", 1, vec![vec![NodeId(1)], vec![NodeId(2)]]);
        image.apply(&[ok]).unwrap();
        let again = create("t", 2, vec![vec![NodeId(3)]]);
        assert_eq!(
            image.apply(&[again]).unwrap_err().0,
            ErrorCode::TOPIC_ALREADY_EXISTS
        );
        let stranger = create("u", 3, vec![vec![NodeId(9)]]);
        assert_eq!(
            image.apply(&[stranger]).unwrap_err().0,
            ErrorCode::INVALID_REPLICA_ASSIGNMENT
        );
        let twice = create("u", 3, vec![vec![NodeId(1), NodeId(1)]]);
        assert_eq!(
            image.apply(&[twice]).unwrap_err().0,
            ErrorCode::INVALID_REPLICA_ASSIGNMENT
        );
        assert_eq!(
            image.replicas_of(TopicId([1; 16]), 1),
            Some(&[NodeId(2)][..])
        );
        assert_eq!(ClusterImage::decode(&image.encode()), Ok(image.clone()));
        image
            .apply(&[MetadataRecord::DeleteTopic {
                id: TopicId([1; 16]),
            }])
            .unwrap();
        assert!(image.topics.is_empty() && image.replicas.is_empty());
        let gone = image.apply(&[MetadataRecord::DeleteTopic {
            id: TopicId([1; 16]),
        }]);
        assert_eq!(gone.unwrap_err().0, ErrorCode::UNKNOWN_TOPIC_ID);
    }

    #[test]
    fn placement_spreads_leaders_and_replicas_and_alternates_racks() {
        let brokers: Vec<(NodeId, Option<String>)> = (1..=3).map(|i| (NodeId(i), None)).collect();
        let lists = place_replicas(&brokers, 6, 3, 0);
        for (p, list) in lists.iter().enumerate() {
            assert_eq!(list.len(), 3);
            assert_eq!(list[0], NodeId(p as i32 % 3 + 1), "leaders rotate");
        }
        let racked: Vec<(NodeId, Option<String>)> = [(1, "a"), (2, "a"), (3, "b"), (4, "b")]
            .iter()
            .map(|&(i, r)| (NodeId(i), Some(r.to_string())))
            .collect();
        for list in place_replicas(&racked, 8, 2, 1) {
            let rack = |id: NodeId| racked.iter().find(|b| b.0 == id).unwrap().1.clone();
            assert_ne!(
                rack(list[0]),
                rack(list[1]),
                "two replicas on one rack: {list:?}"
            );
        }
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let ok = BrokerRegistration {
            id: NodeId(1),
            incarnation: 7,
            host: "h".into(),
            port: 9092,
            rack: None,
            producer_floor: 0,
        };
        let bad = BrokerRegistration {
            id: NodeId(-3),
            ..ok.clone()
        };
        let mut image = ClusterImage::default();
        let batch = [
            MetadataRecord::RegisterBroker(ok.clone()),
            MetadataRecord::RegisterBroker(bad),
        ];
        assert_eq!(
            image.apply(&batch).unwrap_err().0,
            ErrorCode::INVALID_REQUEST
        );
        assert!(image.brokers.is_empty());
        image
            .apply(&[MetadataRecord::RegisterBroker(ok.clone())])
            .unwrap();
        // A restart's registration replaces the old one; a retry of it changes nothing.
        let restarted = BrokerRegistration {
            incarnation: 8,
            port: 9093,
            ..ok.clone()
        };
        image
            .apply(&[MetadataRecord::RegisterBroker(restarted.clone())])
            .unwrap();
        image
            .apply(&[MetadataRecord::RegisterBroker(restarted.clone())])
            .unwrap();
        assert_eq!(image.brokers[&NodeId(1)], restarted);
        // The old process's late retry is refused.
        let late = image.apply(&[MetadataRecord::RegisterBroker(ok)]);
        assert_eq!(late.unwrap_err().0, STALE_BROKER_EPOCH);
        assert_eq!(image.brokers[&NodeId(1)], restarted);
    }
}
