//! Committed offsets: the records they are stored as in `__consumer_offsets`, in Kafka's own
//! binary formats so that Kafka's tools can read them, and the cache OffsetFetch answers
//! from.
//!
//! A record's key is Kafka's `OffsetCommitKey` (version 1: group, topic, partition) and its
//! value `OffsetCommitValue` (version 3: offset, leader epoch, metadata, commit timestamp),
//! or null: a tombstone that deletes the key (OffsetDelete, DeleteGroups), which compaction
//! will eventually drop. Strings are Kafka's non-null `string`: an i16 length and UTF-8.
//! Keys of other record types (version 2 is Kafka's GroupMetadata) are skipped on load.

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

/// A key decoded from the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedKey {
    Offset(OffsetKey),
    /// A record type Keel does not keep (group metadata, KIP-848 records).
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
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| "null or negative string length")?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "invalid UTF-8")
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
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']), Ok(DecodedKey::Other(2)));
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
}
