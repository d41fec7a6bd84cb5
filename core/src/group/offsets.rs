//! Committed offsets: the records they are stored as in `__consumer_offsets`, in Kafka's own
//! binary formats so that Kafka's tools can read them, and the cache OffsetFetch answers
//! from.
//!
//! A record's key is Kafka's `OffsetCommitKey` (version 1: group, topic, partition) and its
//! value `OffsetCommitValue` (version 3: offset, leader epoch, metadata, commit timestamp),
//! or null: a tombstone that deletes the key (OffsetDelete, DeleteGroups), which compaction
//! will eventually drop. Strings are Kafka's non-null `string`: an i16 length and UTF-8.
//!
//! A group's membership is stored beside its offsets, as Kafka stores it: key
//! `GroupMetadataKey` (version 2: group) and value `GroupMetadataValue` (version 3: protocol
//! type, generation, protocol, leader, state timestamp, and each member with its
//! subscription and assignment), or null once the group is gone. Keys of other record types
//! (KIP-848's consumer-group records) are skipped on load.

use crate::record::{
    builder, BatchHeader, ATTR_COMPRESSION_MASK, ATTR_CONTROL, HEADER_LEN, RECORDS_COUNT_AT,
};
use bytes::Bytes;
use std::collections::BTreeMap;

/// The key version Kafka writes for offset commits (0 and 1 share one layout).
pub const OFFSET_KEY_VERSION: i16 = 1;
/// The value version written: the newest non-flexible one, with a leader epoch.
pub const OFFSET_VALUE_VERSION: i16 = 3;
/// The most a compressed batch of the offsets topic inflates to when loaded.
const MAX_LOAD_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Which committed offset a record is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

/// A committed offset with what Kafka stores beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One change to the committed offsets: a commit, or a deletion (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    pub key: OffsetKey,
    pub value: Option<CommittedOffset>,
}

/// The key version Kafka writes for a group's membership.
pub const GROUP_KEY_VERSION: i16 = 2;
/// The value version written: the newest non-flexible one, with static members.
pub const GROUP_VALUE_VERSION: i16 = 3;

/// A group's membership as of its last completed rebalance: what a restarted coordinator
/// resumes from, so that members keep their ids, generation and assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    /// In join order.
    pub members: Vec<MemberMetadata>,
}

/// One member as `GroupMetadataValue` stores it: only the chosen protocol's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's stored membership, or its removal (`value: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub group: String,
    pub value: Option<GroupMetadata>,
}

/// A key decoded from the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedKey {
    Offset(OffsetKey),
    Group(String),
    /// A record type Keel does not keep (KIP-848 records).
    Other(i16),
}

/// Whether a string fits Kafka's i16-length `string` encoding.
pub fn encodable(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    assert!(encodable(s), "callers check string lengths before encoding");
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn encode_key(key: &OffsetKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 + key.group.len() + 2 + key.topic.len() + 4);
    out.extend_from_slice(&OFFSET_KEY_VERSION.to_be_bytes());
    put_string(&mut out, &key.group);
    put_string(&mut out, &key.topic);
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

pub fn encode_value(value: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + value.metadata.len() + 8);
    out.extend_from_slice(&OFFSET_VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_string(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Whether every string of a group's metadata fits Kafka's encoding (the byte fields come
/// from requests whose sizes are bounded far below i32).
pub fn group_encodable(g: &GroupMetadata) -> bool {
    encodable(&g.protocol_type)
        && g.protocol.as_deref().is_none_or(encodable)
        && g.leader.as_deref().is_none_or(encodable)
        && g.members.iter().all(|m| {
            encodable(&m.member_id)
                && m.group_instance_id.as_deref().is_none_or(encodable)
                && encodable(&m.client_id)
                && encodable(&m.client_host)
        })
}

pub fn encode_group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 + group.len());
    out.extend_from_slice(&GROUP_KEY_VERSION.to_be_bytes());
    put_string(&mut out, group);
    out
}

pub fn encode_group_value(g: &GroupMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&GROUP_VALUE_VERSION.to_be_bytes());
    put_string(&mut out, &g.protocol_type);
    out.extend_from_slice(&g.generation.to_be_bytes());
    put_nullable_string(&mut out, g.protocol.as_deref());
    put_nullable_string(&mut out, g.leader.as_deref());
    out.extend_from_slice(&g.current_state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(g.members.len() as i32).to_be_bytes());
    for m in &g.members {
        put_string(&mut out, &m.member_id);
        put_nullable_string(&mut out, m.group_instance_id.as_deref());
        put_string(&mut out, &m.client_id);
        put_string(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.buf.len() - self.pos < n {
            return Err("truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, &'static str> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, &'static str> {
        self.nullable_string()?.ok_or("null string")
    }
    fn nullable_string(&mut self) -> Result<Option<String>, &'static str> {
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| "negative string length")?;
        let s = String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "invalid UTF-8")?;
        Ok(Some(s))
    }
    fn bytes(&mut self) -> Result<Bytes, &'static str> {
        let len = usize::try_from(self.i32()?).map_err(|_| "null or negative bytes length")?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
    fn done(&self) -> Result<(), &'static str> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err("trailing bytes")
        }
    }
}

pub fn decode_key(bytes: &[u8]) -> Result<DecodedKey, &'static str> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.i16()?;
    if version == GROUP_KEY_VERSION {
        let group = r.string()?;
        r.done()?;
        return Ok(DecodedKey::Group(group));
    }
    if !(0..=1).contains(&version) {
        return Ok(DecodedKey::Other(version));
    }
    let group = r.string()?;
    let topic = r.string()?;
    let partition = r.i32()?;
    r.done()?;
    Ok(DecodedKey::Offset(OffsetKey {
        group,
        topic,
        partition,
    }))
}

/// Decodes value versions 0 to 3 (4 is flexible and only newer Kafka writes it).
pub fn decode_value(bytes: &[u8]) -> Result<CommittedOffset, &'static str> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err("unsupported offset commit value version");
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        let _expire_timestamp = r.i64()?;
    }
    r.done()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// Decodes group metadata value versions 0 to 3 (4 is flexible and only newer Kafka
/// writes it). The member count is not trusted: members are read while bytes remain.
pub fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadata, &'static str> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err("unsupported group metadata value version");
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let count = usize::try_from(count).map_err(|_| "negative member count")?;
    let mut members = Vec::new();
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let session_timeout_ms;
        let rebalance_timeout_ms;
        if version >= 1 {
            rebalance_timeout_ms = r.i32()?;
            session_timeout_ms = r.i32()?;
        } else {
            session_timeout_ms = r.i32()?;
            rebalance_timeout_ms = session_timeout_ms;
        }
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.done()?;
    Ok(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// One uncompressed batch holding a group's stored membership (or its tombstone).
pub fn build_group_batch(record: &GroupRecord, timestamp_ms: i64) -> Bytes {
    builder::build_batch(&[builder::Record {
        key: Some(encode_group_key(&record.group)),
        value: record.value.as_ref().map(encode_group_value),
        headers: vec![],
        timestamp_ms,
    }])
}

/// One uncompressed batch holding `mutations` in order, stamped `timestamp_ms`.
/// `mutations` must not be empty.
pub fn build_batch(mutations: &[Mutation], timestamp_ms: i64) -> Bytes {
    let records: Vec<builder::Record> = mutations
        .iter()
        .map(|m| builder::Record {
            key: Some(encode_key(&m.key)),
            value: m.value.as_ref().map(encode_value),
            headers: vec![],
            timestamp_ms,
        })
        .collect();
    builder::build_batch(&records)
}

/// One record of a stored batch: its offset, key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// The records of one stored v2 batch (whose CRC the log verified), decompressing it if
/// needed. Control batches hold no offsets and yield nothing. Bounded by the batch bytes:
/// neither `recordsCount` nor a record length is trusted.
pub fn batch_records(batch: &[u8]) -> Result<Vec<StoredRecord>, String> {
    let header = BatchHeader::new(batch).map_err(|e| e.to_string())?;
    if header.total_len() != batch.len() as i64 {
        return Err("batch length disagrees with its bytes".into());
    }
    if header.attributes() & ATTR_CONTROL != 0 {
        return Ok(Vec::new());
    }
    let count = i32::from_be_bytes(
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4]
            .try_into()
            .expect("4 bytes"),
    );
    if count < 0 {
        return Err("negative recordsCount".into());
    }
    let codec = header.attributes() & ATTR_COMPRESSION_MASK;
    let section: Bytes = if codec == crate::compression::NONE {
        Bytes::copy_from_slice(&batch[HEADER_LEN..])
    } else {
        crate::compression::decompress(codec, &batch[HEADER_LEN..], MAX_LOAD_BATCH_BYTES)
            .map(Bytes::from)
            .map_err(|e| e.to_string())?
    };
    let base = header.base_offset();
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..count {
        let len = read_varint(&section, &mut pos)?;
        let len = usize::try_from(len).map_err(|_| "negative record length".to_string())?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= section.len())
            .ok_or_else(|| "record overruns the batch".to_string())?;
        let mut at = pos + 1; // attributes: one unused byte
        if at > end {
            return Err("empty record".into());
        }
        let _timestamp_delta = read_varint(&section[..end], &mut at)?;
        let offset_delta = read_varint(&section[..end], &mut at)?;
        let key = read_bytes(&section, end, &mut at)?;
        let value = read_bytes(&section, end, &mut at)?;
        out.push(StoredRecord {
            offset: base + offset_delta,
            key,
            value,
        });
        pos = end;
    }
    Ok(out)
}

fn read_bytes(section: &Bytes, end: usize, at: &mut usize) -> Result<Option<Bytes>, String> {
    let len = read_varint(&section[..end], at)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    let stop = at
        .checked_add(len)
        .filter(|&s| s <= end)
        .ok_or_else(|| "key or value overruns its record".to_string())?;
    let b = section.slice(*at..stop);
    *at = stop;
    Ok(Some(b))
}

/// A zigzag varint (Kafka's varlong, which covers varints too).
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i64, String> {
    let mut raw = 0u64;
    for i in 0..10 {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| "varint runs past the end".to_string())?;
        *pos += 1;
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long".into())
}

/// Committed offsets as far as they are durable, and the keys with writes still in flight.
#[derive(Debug, Default)]
pub struct OffsetCache {
    committed: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// Per group and partition: how many appended writes are not yet durable (or failed).
    pending: BTreeMap<String, BTreeMap<(String, i32), u32>>,
}

impl OffsetCache {
    /// Applies a durable change; later records win, tombstones delete.
    pub fn apply(&mut self, m: &Mutation) {
        let tp = (m.key.topic.clone(), m.key.partition);
        match &m.value {
            Some(v) => {
                self.committed
                    .entry(m.key.group.clone())
                    .or_default()
                    .insert(tp, v.clone());
            }
            None => {
                if let Some(offsets) = self.committed.get_mut(&m.key.group) {
                    offsets.remove(&tp);
                    if offsets.is_empty() {
                        self.committed.remove(&m.key.group);
                    }
                }
            }
        }
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.committed
            .get(group)?
            .get(&(topic.to_string(), partition))
    }

    /// Every durable offset of `group`, by topic and partition.
    pub fn group_offsets(
        &self,
        group: &str,
    ) -> impl Iterator<Item = (&(String, i32), &CommittedOffset)> {
        self.committed.get(group).into_iter().flatten()
    }

    pub fn has_offsets(&self, group: &str) -> bool {
        self.committed.contains_key(group)
    }

    pub fn has_pending(&self, group: &str) -> bool {
        self.pending.contains_key(group)
    }

    /// Groups with durable offsets.
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.committed.keys()
    }

    pub fn add_pending(&mut self, key: &OffsetKey) {
        *self
            .pending
            .entry(key.group.clone())
            .or_default()
            .entry((key.topic.clone(), key.partition))
            .or_insert(0) += 1;
    }

    pub fn remove_pending(&mut self, key: &OffsetKey) {
        let Some(keys) = self.pending.get_mut(&key.group) else {
            return;
        };
        let tp = (key.topic.clone(), key.partition);
        if let Some(n) = keys.get_mut(&tp) {
            *n -= 1;
            if *n == 0 {
                keys.remove(&tp);
            }
        }
        if keys.is_empty() {
            self.pending.remove(&key.group);
        }
    }

    pub fn is_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending
            .get(group)
            .is_some_and(|k| k.contains_key(&(topic.to_string(), partition)))
    }

    /// Every key of `group` that is durable or has a write in flight: what deleting the
    /// group must tombstone, so that no commit in flight outlives the deletion on reload.
    pub fn all_keys(&self, group: &str) -> Vec<(String, i32)> {
        let mut keys: Vec<(String, i32)> = self
            .committed
            .get(group)
            .into_iter()
            .flat_map(|m| m.keys().cloned())
            .chain(
                self.pending
                    .get(group)
                    .into_iter()
                    .flat_map(|m| m.keys().cloned()),
            )
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Forgets everything (the offsets topic was deleted).
    pub fn clear(&mut self) {
        self.committed.clear();
        self.pending.clear();
    }

    pub fn len(&self) -> usize {
        self.committed.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.committed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> OffsetKey {
        OffsetKey {
            group: "my-group".into(),
            topic: "orders".into(),
            partition: 3,
        }
    }

    fn value() -> CommittedOffset {
        CommittedOffset {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        }
    }

    /// The exact bytes of Kafka's OffsetCommitKey v1 and OffsetCommitValue v3 (from the
    /// message schemas OffsetCommitKey.json and OffsetCommitValue.json).
    #[test]
    fn key_and_value_use_kafkas_layouts() {
        let mut k = vec![0, 1, 0, 8];
        k.extend_from_slice(b"my-group");
        k.extend_from_slice(&[0, 6]);
        k.extend_from_slice(b"orders");
        k.extend_from_slice(&[0, 0, 0, 3]);
        assert_eq!(encode_key(&key()), k);
        let mut v = vec![0, 3];
        v.extend_from_slice(&42i64.to_be_bytes());
        v.extend_from_slice(&7i32.to_be_bytes());
        v.extend_from_slice(&[0, 4]);
        v.extend_from_slice(b"meta");
        v.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(encode_value(&value()), v);
        assert_eq!(decode_key(&k), Ok(DecodedKey::Offset(key())));
        assert_eq!(decode_value(&v), Ok(value()));
    }

    #[test]
    fn older_value_versions_and_other_keys_decode() {
        // v1: offset, metadata, commit timestamp, expire timestamp.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&(-1i64).to_be_bytes());
        let d = decode_value(&v1).unwrap();
        assert_eq!(
            (d.offset, d.leader_epoch, d.commit_timestamp_ms),
            (5, -1, 9)
        );
        assert_eq!(
            decode_key(&[0, 2, 0, 1, b'g']),
            Ok(DecodedKey::Group("g".into()))
        );
        assert_eq!(decode_key(&[0, 11, 0, 1, b'g']), Ok(DecodedKey::Other(11)));
    }

    fn group() -> GroupMetadata {
        GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 77,
            members: vec![
                MemberMetadata {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 300,
                    session_timeout_ms: 100,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"as"),
                },
                MemberMetadata {
                    member_id: "m2".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 300,
                    session_timeout_ms: 100,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    /// The exact bytes of Kafka's GroupMetadataKey v2 and GroupMetadataValue v3 (from the
    /// message schemas GroupMetadataKey.json and GroupMetadataValue.json).
    #[test]
    fn group_metadata_uses_kafkas_layouts() {
        assert_eq!(encode_group_key("g"), [0, 2, 0, 1, b'g']);
        let mut v = vec![0, 3, 0, 8];
        v.extend_from_slice(b"consumer");
        v.extend_from_slice(&4i32.to_be_bytes());
        v.extend_from_slice(&[0, 5]);
        v.extend_from_slice(b"range");
        v.extend_from_slice(&[0, 2]);
        v.extend_from_slice(b"m1");
        v.extend_from_slice(&77i64.to_be_bytes());
        v.extend_from_slice(&2i32.to_be_bytes());
        // m1: id, instance, client id, host, rebalance timeout, session timeout, bytes.
        v.extend_from_slice(&[0, 2]);
        v.extend_from_slice(b"m1");
        v.extend_from_slice(&[0, 2]);
        v.extend_from_slice(b"i1");
        v.extend_from_slice(&[0, 1, b'c', 0, 2, b'/', b'h']);
        v.extend_from_slice(&300i32.to_be_bytes());
        v.extend_from_slice(&100i32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 3]);
        v.extend_from_slice(b"sub");
        v.extend_from_slice(&[0, 0, 0, 2]);
        v.extend_from_slice(b"as");
        // m2: a dynamic member (null instance id) with empty bytes.
        v.extend_from_slice(&[0, 2]);
        v.extend_from_slice(b"m2");
        v.extend_from_slice(&[0xff, 0xff]);
        v.extend_from_slice(&[0, 1, b'c', 0, 2, b'/', b'h']);
        v.extend_from_slice(&300i32.to_be_bytes());
        v.extend_from_slice(&100i32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_group_value(&group()), v);
        assert_eq!(decode_group_value(&v), Ok(group()));
        for n in 0..v.len() {
            assert!(decode_group_value(&v[..n]).is_err(), "cut at {n}");
        }
        // An empty group: no protocol, no leader, no members.
        let empty = GroupMetadata {
            protocol: None,
            leader: None,
            members: vec![],
            ..group()
        };
        assert_eq!(decode_group_value(&encode_group_value(&empty)), Ok(empty));
        // A lying member count is an error, not an allocation.
        let mut lie = encode_group_value(&GroupMetadata {
            members: vec![],
            ..group()
        });
        let at = lie.len() - 4;
        lie[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_group_value(&lie).is_err());
    }

    /// Version 0 (no rebalance timeout, no state timestamp, no instance ids), as Kafka
    /// before 0.10.1 wrote it.
    #[test]
    fn group_metadata_v0_decodes() {
        let mut v = vec![0, 0, 0, 8];
        v.extend_from_slice(b"consumer");
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&[0, 5]);
        v.extend_from_slice(b"range");
        v.extend_from_slice(&[0, 1, b'm']);
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        v.extend_from_slice(&10_000i32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let g = decode_group_value(&v).unwrap();
        assert_eq!(g.current_state_timestamp_ms, -1);
        let m = &g.members[0];
        assert_eq!(
            (
                m.session_timeout_ms,
                m.rebalance_timeout_ms,
                m.group_instance_id.clone()
            ),
            (10_000, 10_000, None)
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let k = encode_key(&key());
        for n in 0..k.len() {
            assert!(decode_key(&k[..n]).is_err());
        }
        let v = encode_value(&value());
        for n in 0..v.len() {
            assert!(decode_value(&v[..n]).is_err());
        }
    }

    #[test]
    fn batches_round_trip_with_tombstones() {
        let m = vec![
            Mutation {
                key: key(),
                value: Some(value()),
            },
            Mutation {
                key: key(),
                value: None,
            },
        ];
        let batch = build_batch(&m, 5);
        let records = batch_records(&batch).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].offset, 1);
        assert_eq!(
            decode_key(records[0].key.as_ref().unwrap()),
            Ok(DecodedKey::Offset(key()))
        );
        assert_eq!(
            decode_value(records[0].value.as_ref().unwrap()),
            Ok(value())
        );
        assert_eq!(records[1].value, None);
        // Corrupt record lengths inside a batch are errors, not panics.
        for cut in HEADER_LEN..batch.len() {
            let mut b = batch.to_vec();
            b[cut] = 0x7f;
            let _ = batch_records(&b);
        }
    }

    #[test]
    fn the_cache_keeps_the_last_write_and_tombstones_delete() {
        let mut c = OffsetCache::default();
        let mut v = value();
        c.apply(&Mutation {
            key: key(),
            value: Some(v.clone()),
        });
        v.offset = 50;
        c.apply(&Mutation {
            key: key(),
            value: Some(v.clone()),
        });
        assert_eq!(c.get("my-group", "orders", 3).unwrap().offset, 50);
        c.apply(&Mutation {
            key: key(),
            value: None,
        });
        assert!(c.get("my-group", "orders", 3).is_none());
        assert!(!c.has_offsets("my-group"));
        c.add_pending(&key());
        c.add_pending(&key());
        c.remove_pending(&key());
        assert!(c.is_pending("my-group", "orders", 3));
        assert_eq!(c.all_keys("my-group"), vec![("orders".to_string(), 3)]);
        c.remove_pending(&key());
        assert!(!c.has_pending("my-group"));
    }

    mod decoders {
        use super::*;
        use proptest::prelude::*;

        fn member() -> impl Strategy<Value = MemberMetadata> {
            (
                "[a-z0-9-]{0,40}",
                proptest::option::of("[a-z0-9-]{1,20}"),
                "[a-z]{0,10}",
                "/[0-9.]{0,15}",
                any::<i32>(),
                any::<i32>(),
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec(any::<u8>(), 0..64),
            )
                .prop_map(
                    |(id, instance, client, host, rebalance, session, sub, assign)| {
                        MemberMetadata {
                            member_id: id,
                            group_instance_id: instance,
                            client_id: client,
                            client_host: host,
                            rebalance_timeout_ms: rebalance,
                            session_timeout_ms: session,
                            subscription: Bytes::from(sub),
                            assignment: Bytes::from(assign),
                        }
                    },
                )
        }

        proptest! {
            /// Whatever a disk hands back, the loaders answer with a value or an error.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = decode_key(&bytes);
                let _ = decode_value(&bytes);
                let _ = decode_group_value(&bytes);
                let _ = batch_records(&bytes);
            }

            #[test]
            fn group_metadata_round_trips(
                protocol_type in "[a-z]{0,10}",
                generation in any::<i32>(),
                protocol in proptest::option::of("[a-z-]{1,20}"),
                leader in proptest::option::of("[a-z0-9-]{1,20}"),
                timestamp in any::<i64>(),
                members in proptest::collection::vec(member(), 0..5),
            ) {
                let g = GroupMetadata {
                    protocol_type,
                    generation,
                    protocol,
                    leader,
                    current_state_timestamp_ms: timestamp,
                    members,
                };
                prop_assert_eq!(decode_group_value(&encode_group_value(&g)), Ok(g));
            }
        }
    }
}
