//! Key compaction (`cleanup.policy=compact`): rewrites one sealed segment at a time so that it
//! keeps only the latest record of each key, and drops a key's tombstone once it is older
//! than `delete.retention.ms`. Offsets never change.
//!
//! # What survives
//! A pass first maps every key in the durable part of the log (below the recovery point) to
//! the offset of its latest record, then rewrites one segment that is sealed and wholly
//! durable. A record survives if it has no key (produce refuses those on compacted topics,
//! as Kafka does, but a topic made compacted later may hold some: they are kept rather than
//! lost), or if it is
//! its key's latest record, unless it is a tombstone whose batch maxTimestamp is at least
//! `delete.retention.ms` before `now` and no older record of its key remains anywhere in the
//! log (otherwise dropping the tombstone would resurrect that older value). Control batches
//! are kept whole. Only durable records supersede: a later record that a crash could still
//! take away never deletes an earlier one.
//!
//! # Re-encoding
//! A batch that loses no record is kept byte for byte (compressed or not). A batch that loses
//! some is re-encoded *uncompressed* with its original header (baseOffset, lastOffsetDelta,
//! timestamps, producer id/epoch/sequence), the surviving records copied unchanged (their
//! offset and timestamp deltas are relative to that header), and a new length, count and
//! CRC: simpler than re-compressing, at the cost of disk space for compressed topics. A batch
//! that loses every record is dropped, except the last batch of the segment, which is kept
//! as an empty batch (recordsCount 0, as Kafka's cleaner does for producer state) so that the
//! segment still ends where the next one begins and recovery's boundary check holds.
//!
//! # Crash safety
//! Both index files are first replaced by empty ones, then the `.log` file by its cleaned
//! content, then the indexes by the rebuilt ones; `Storage::replace` is atomic and durable.
//! A crash at any point leaves either the old segment or the new one, with indexes that are
//! either right or empty (an empty index makes recovery walk and CRC-check the whole
//! segment). The core is single-threaded, so a read sees either the old or the new segment.
//! Offset gaps inside sealed segments are accepted by recovery (`segment::walk`'s
//! `allow_gaps`); the active segment is never compacted and stays strictly contiguous.
//!
//! # Bounds
//! The key map holds a 128-bit FNV-1a hash of each key (a collision, about 2^-64 likely for
//! 2^32 keys, could drop a record whose key merely shares a hash) with its latest offset:
//! about 64 bytes per distinct key in a `BTreeMap`, at most [`MAX_COMPACTION_KEYS`] keys
//! (about 64 MiB); a log with more distinct keys is not compacted and a warning says so. A
//! pass reads the durable log once (batch by batch, each compressed batch inflated to at most
//! [`super::MAX_DECOMPRESSED_BYTES`]) and rewrites one segment, held in memory whole (at most
//! `segment.bytes`).
//!
//! Known limits: every pass rebuilds the map from the whole log (no dirty-ratio bookkeeping,
//! so `min.cleanable.dirty.ratio` and the compaction lags are ignored); transactional data
//! batches are compacted like any other (aborted records are not told apart); and
//! `truncate_to` into a compacted segment is supported only at batch boundaries without a
//! gap before them (compaction touches only segments below the recovery point, which
//! truncation does not reach in normal operation).

use super::records::{keyed_records, KeyedRecord};
use super::segment::{Segment, WalkedBatch};
use super::{LogError, PartitionLog, MAX_DECOMPRESSED_BYTES};
use crate::record::{
    self, BatchHeader, ATTRIBUTES_AT, ATTR_COMPRESSION_MASK, BATCH_LENGTH_AT, CRC_AT, HEADER_LEN,
    LOG_OVERHEAD, RECORDS_COUNT_AT,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;

/// The most distinct keys one compaction pass maps (see the module doc).
pub const MAX_COMPACTION_KEYS: usize = 1_000_000;

/// What one [`PartitionLog::compact_one`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Base offset of the segment examined, if any was cleanable.
    pub segment: Option<i64>,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Of those, tombstones removed.
    pub tombstones_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A key's latest durable record, and whether an older record of it exists.
#[derive(Debug, Clone, Copy)]
struct KeyState {
    latest: i64,
    has_older: bool,
}

/// 128-bit FNV-1a: stable across builds and platforms, unlike `std`'s hashers.
pub fn key_hash(key: &[u8]) -> u128 {
    const OFFSET_BASIS: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h = OFFSET_BASIS;
    for &b in key {
        h ^= b as u128;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// Why a produced batch cannot go into a compacted log: Kafka refuses a record without a key
/// there, since compaction could never decide which value of it is the latest. The index in
/// the batch of every keyless record (empty if every record has a key), which Produce v8+
/// reports as `record_errors` (KIP-467), as Kafka's `LogValidator.validateKey` does.
pub fn keyless_records(batch: &[u8]) -> Result<Vec<usize>, String> {
    let header = BatchHeader::new(batch).map_err(|e| e.to_string())?;
    if header.is_control() {
        return Ok(Vec::new());
    }
    let section = records_section(batch)?;
    let records = keyed_records(&section, header.records_count()).map_err(str::to_string)?;
    Ok(records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| i)
        .collect())
}

/// The records section of a whole batch, inflated if compressed.
fn records_section(batch: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let header = BatchHeader::new(batch).map_err(|e| e.to_string())?;
    let codec = header.compression();
    if codec == crate::compression::NONE {
        return Ok(Cow::Borrowed(&batch[HEADER_LEN..]));
    }
    crate::compression::decompress(codec, &batch[HEADER_LEN..], MAX_DECOMPRESSED_BYTES)
        .map(Cow::Owned)
        .map_err(|e| e.to_string())
}

/// Encodes a batch with `original`'s header and `kept` as its (uncompressed) records.
fn reencode(original: &[u8], kept: &[KeyedRecord<'_>]) -> Vec<u8> {
    let body: usize = kept.iter().map(|r| r.raw.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + body);
    out.extend_from_slice(&original[..HEADER_LEN]);
    for r in kept {
        out.extend_from_slice(r.raw);
    }
    let batch_length = i32::try_from(out.len() - LOG_OVERHEAD)
        .expect("a re-encoded batch is no larger than the original");
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = i16::from_be_bytes([original[ATTRIBUTES_AT], original[ATTRIBUTES_AT + 1]])
        & !ATTR_COMPRESSION_MASK;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let count = i32::try_from(kept.len()).expect("count bounded by the original's");
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = record::batch_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

impl PartitionLog {
    /// One compaction step: cleans the next sealed, wholly durable segment after the one
    /// cleaned last (wrapping around), as the module doc describes. Does nothing if no
    /// segment is cleanable or the log has too many distinct keys. `now_ms` is the core's
    /// clock; tombstones whose batch is `delete_retention_ms` old by it may go.
    pub fn compact_one(
        &mut self,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> Result<CompactionReport, LogError> {
        // Gaps are legal only in a log that allows them; thinning any other log would
        // leave gaps its own recovery takes for corruption.
        assert!(
            self.config.gaps_allowed,
            "compact_one on a log that does not allow offset gaps"
        );
        self.refuse_if_failed()?;
        let active_base = self.active().base_offset;
        let durable = self.recovery_point;
        let cleanable: Vec<i64> = self
            .segments
            .values()
            .filter(|s| s.base_offset != active_base && s.next_offset <= durable)
            .map(|s| s.base_offset)
            .collect();
        let Some(&target) = cleanable
            .iter()
            .find(|&&b| b >= self.cleaner_cursor)
            .or(cleanable.first())
        else {
            return Ok(CompactionReport::default());
        };
        self.cleaner_cursor = target + 1;
        let mut report = CompactionReport {
            segment: Some(target),
            ..Default::default()
        };
        let Some(keys) = self.build_key_map(durable)? else {
            tracing::warn!(dir = %self.dir, max = MAX_COMPACTION_KEYS, "too many distinct keys to compact");
            return Ok(report);
        };

        let segment = &self.segments[&target];
        let old_next_offset = segment.next_offset;
        report.bytes_before = segment.size;
        let batches = self.segment_batches(segment)?;
        let last_index = batches.len().saturating_sub(1);
        let mut cleaned: Vec<u8> = Vec::with_capacity(segment.size as usize);
        let mut kept_batches: Vec<(u64, WalkedBatch)> = Vec::with_capacity(batches.len());
        for (i, b) in batches.iter().enumerate() {
            let bytes = self.read_batch(segment, b)?;
            let out: Cow<'_, [u8]> = if b.attributes & record::ATTR_CONTROL != 0 {
                Cow::Borrowed(&bytes[..])
            } else {
                let section =
                    records_section(&bytes).map_err(|why| self.corrupt(segment, b.pos, why))?;
                let count = BatchHeader::new(&bytes)
                    .map_err(|e| self.corrupt(segment, b.pos, e.to_string()))?
                    .records_count();
                let records = keyed_records(&section, count)
                    .map_err(|why| self.corrupt(segment, b.pos, why.to_string()))?;
                let expired = b.max_timestamp.saturating_add(delete_retention_ms) <= now_ms;
                let mut kept = Vec::with_capacity(records.len());
                for r in &records {
                    let offset = b.base_offset + r.offset_delta as i64;
                    let keep = match r.key {
                        None => true,
                        Some(key) => match keys.get(&key_hash(key)) {
                            Some(k) if k.latest == offset => {
                                let drop_tombstone = r.is_tombstone && expired && !k.has_older;
                                report.tombstones_removed += drop_tombstone as u64;
                                !drop_tombstone
                            }
                            // Superseded, or (absent) past the durable part: only the former
                            // can happen in a segment below the recovery point.
                            Some(_) => false,
                            None => true,
                        },
                    };
                    if keep {
                        kept.push(*r);
                    }
                }
                report.records_removed += (records.len() - kept.len()) as u64;
                if kept.len() == records.len() {
                    Cow::Borrowed(&bytes[..])
                } else if kept.is_empty() && i != last_index {
                    continue;
                } else {
                    Cow::Owned(reencode(&bytes, &kept))
                }
            };
            let pos = cleaned.len() as u64;
            cleaned.extend_from_slice(&out);
            kept_batches.push((
                pos,
                WalkedBatch {
                    pos,
                    len: out.len() as u64,
                    ..*b
                },
            ));
        }
        if report.records_removed == 0 {
            report.bytes_after = report.bytes_before;
            return Ok(report);
        }
        report.bytes_after = cleaned.len() as u64;

        let mut fresh = Segment::empty(&self.dir, target);
        let interval = self.config.index_interval_bytes;
        for (_, b) in &kept_batches {
            fresh.track_batch(b, interval);
        }
        assert_eq!(
            fresh.next_offset, old_next_offset,
            "compaction keeps the segment's last batch, so its end"
        );
        let storage = std::sync::Arc::clone(&self.storage);
        // Empty indexes first: until the rebuilt ones land, recovery walks the whole segment.
        let swapped = storage
            .replace(&fresh.index_file, &[])
            .and_then(|()| storage.replace(&fresh.time_index_file, &[]))
            .and_then(|()| storage.replace(&fresh.log_file, &cleaned));
        if let Err(e) = swapped {
            return Err(self.fail(e, "swapping in a compacted segment"));
        }
        let (index, time_index) = (fresh.offset_index.encode(), fresh.time_index.encode());
        let (index_file, time_index_file) =
            (fresh.index_file.clone(), fresh.time_index_file.clone());
        self.segments.insert(target, fresh);
        let indexed = storage
            .replace(&index_file, &index)
            .and_then(|()| storage.replace(&time_index_file, &time_index));
        if let Err(e) = indexed {
            return Err(self.fail(e, "writing a compacted segment's indexes"));
        }
        tracing::debug!(dir = %self.dir, segment = target, ?report, "compacted a segment");
        self.check();
        Ok(report)
    }

    /// Latest durable offset of every key below `durable`; `None` past [`MAX_COMPACTION_KEYS`].
    fn build_key_map(&self, durable: i64) -> Result<Option<BTreeMap<u128, KeyState>>, LogError> {
        let mut keys: BTreeMap<u128, KeyState> = BTreeMap::new();
        for segment in self.segments.values() {
            if segment.base_offset >= durable {
                break;
            }
            for b in self.segment_batches(segment)? {
                if b.last_offset >= durable {
                    break;
                }
                if b.attributes & record::ATTR_CONTROL != 0 {
                    continue;
                }
                let bytes = self.read_batch(segment, &b)?;
                let section =
                    records_section(&bytes).map_err(|why| self.corrupt(segment, b.pos, why))?;
                let count = BatchHeader::new(&bytes)
                    .map_err(|e| self.corrupt(segment, b.pos, e.to_string()))?
                    .records_count();
                let records = keyed_records(&section, count)
                    .map_err(|why| self.corrupt(segment, b.pos, why.to_string()))?;
                for r in records {
                    let Some(key) = r.key else { continue };
                    let offset = b.base_offset + r.offset_delta as i64;
                    match keys.get_mut(&key_hash(key)) {
                        Some(k) => {
                            k.latest = offset;
                            k.has_older = true;
                        }
                        None => {
                            if keys.len() >= MAX_COMPACTION_KEYS {
                                return Ok(None);
                            }
                            keys.insert(
                                key_hash(key),
                                KeyState {
                                    latest: offset,
                                    has_older: false,
                                },
                            );
                        }
                    }
                }
            }
        }
        Ok(Some(keys))
    }

    /// Every batch header of a segment, in order (at most size / 61 of them).
    fn segment_batches(&self, segment: &Segment) -> Result<Vec<WalkedBatch>, LogError> {
        let mut out = Vec::new();
        self.walk_segment(segment, 0, segment.base_offset, |b| {
            out.push(*b);
            true
        })?;
        Ok(out)
    }

    /// One whole stored batch, CRC-checked: compaction rewrites what it reads, so it must
    /// not launder bytes that rotted since recovery.
    fn read_batch(&self, segment: &Segment, b: &WalkedBatch) -> Result<bytes::Bytes, LogError> {
        let bytes = self
            .storage
            .read_at(&segment.log_file, b.pos, b.len as usize)?;
        if bytes.len() as u64 != b.len {
            return Err(LogError::Storage(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("short read of {} at {}", segment.log_file, b.pos),
            )));
        }
        record::verify_batch(&bytes).map_err(|e| self.corrupt(segment, b.pos, e.to_string()))?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LogConfig, PartitionLog};
    use super::*;
    use crate::record::builder::{build_batch, Record};
    use crate::record::split_batches;
    use crate::storage::{MemStorage, Storage};
    use crate::testing::{Failure, Fault, FaultyStorage, Op};
    use bytes::Bytes;
    use std::sync::Arc;

    const DIR: &str = "compacted-0";
    const RETENTION_MS: i64 = 1_000;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            compacted: true,
            gaps_allowed: true,
            ..LogConfig::default()
        }
    }

    /// One batch of `(key, value)` records (value `None`: a tombstone) at time `ts`.
    fn batch(records: &[(&str, Option<&str>)], ts: i64) -> Bytes {
        let records: Vec<Record> = records
            .iter()
            .map(|(k, v)| Record {
                key: Some(k.as_bytes().to_vec()),
                value: v.map(|v| v.as_bytes().to_vec()),
                headers: vec![],
                timestamp_ms: ts,
            })
            .collect();
        build_batch(&records)
    }

    /// Rewrites an uncompressed batch as a gzip one, as a producer would have sent it.
    fn gzip(plain: &Bytes) -> Bytes {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain[HEADER_LEN..]).unwrap();
        let mut b = plain[..HEADER_LEN].to_vec();
        b.extend_from_slice(&gz.finish().unwrap());
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&len.to_be_bytes());
        b[ATTRIBUTES_AT + 1] |= crate::compression::GZIP as u8;
        let crc = record::batch_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }

    /// Every record the log serves, as (offset, key, value), read through `read` (which
    /// CRC-checks) and parsed; also asserts that offsets strictly increase.
    fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out: Vec<(i64, String, Option<String>)> = Vec::new();
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let bytes = log.read(offset, 1 << 20, end).expect("read");
            let (batches, covered) = split_batches(&bytes);
            assert_eq!(covered, bytes.len());
            for b in batches {
                let h = record::verify_batch(&b).expect("served batches pass their CRC");
                let section = records_section(&b).unwrap();
                for r in keyed_records(&section, h.records_count()).unwrap() {
                    let o = h.base_offset() + r.offset_delta as i64;
                    assert!(out.last().is_none_or(|l| l.0 < o), "offsets increase");
                    assert!(o <= h.last_offset());
                    out.push((
                        o,
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        (!r.is_tombstone).then(|| {
                            let raw = keyed_value(r.raw);
                            String::from_utf8(raw).unwrap()
                        }),
                    ));
                }
                offset = h.last_offset() + 1;
            }
        }
        out
    }

    /// The value of a raw record (test helper: re-parses it as a one-record section).
    fn keyed_value(raw: &[u8]) -> Vec<u8> {
        // Decode with the builder's layout: len, attrs, tsDelta, offDelta, key, value.
        let mut pos = 0;
        let varint = |pos: &mut usize| {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let b = raw[*pos];
                *pos += 1;
                v |= ((b & 0x7f) as u64) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    return ((v >> 1) as i64) ^ -((v & 1) as i64);
                }
            }
        };
        varint(&mut pos);
        pos += 1;
        varint(&mut pos);
        varint(&mut pos);
        let klen = varint(&mut pos);
        pos += klen.max(0) as usize;
        let vlen = varint(&mut pos);
        raw[pos..pos + vlen as usize].to_vec()
    }

    /// The latest (offset, value) of every key in `records`.
    fn latest(
        records: &[(i64, String, Option<String>)],
    ) -> BTreeMap<String, (i64, Option<String>)> {
        records
            .iter()
            .map(|(o, k, v)| (k.clone(), (*o, v.clone())))
            .collect()
    }

    /// A log with 5 keys updated 40 times, 3 records per batch, several segments, all
    /// durable. `compress` gzips every other batch.
    fn updates(disk: &Arc<dyn Storage>, compress: bool) -> PartitionLog {
        let (mut log, _) = PartitionLog::open(Arc::clone(disk), DIR, config()).unwrap();
        let keys = ["a", "b", "c", "d", "e"];
        for round in 0..40 {
            let vals: Vec<String> = (0..3).map(|i| format!("v{round}-{i}")).collect();
            let recs: Vec<(&str, Option<&str>)> = (0..3)
                .map(|i| (keys[(round * 3 + i) % 5], Some(vals[i].as_str())))
                .collect();
            let b = batch(&recs, 100 + round as i64);
            let b = if compress && round % 2 == 0 {
                gzip(&b)
            } else {
                b
            };
            log.append(&b, 0, 1).unwrap();
        }
        log.mark_flushed(log.log_end_offset());
        assert!(log.segment_count() > 3);
        log
    }

    /// Runs passes until one full round over the segments removes nothing.
    fn compact_fully(log: &mut PartitionLog, now_ms: i64) {
        for _ in 0..10 {
            let mut removed = 0;
            for _ in 0..log.segment_count() {
                removed += log
                    .compact_one(now_ms, RETENTION_MS)
                    .unwrap()
                    .records_removed;
            }
            if removed == 0 {
                return;
            }
        }
        panic!("compaction did not converge");
    }

    fn check_compacted(before: &[(i64, String, Option<String>)], log: &PartitionLog) {
        let after = read_all(log);
        assert_eq!(
            latest(before),
            latest(&after),
            "every key keeps its latest value"
        );
        let active_base = *log.segment_base_offsets().last().unwrap();
        for (o, k, v) in &after {
            assert!(
                before.contains(&(*o, k.clone(), v.clone())),
                "offset {o} keeps its record"
            );
            // Only the active segment (never compacted) may keep a superseded value.
            assert!(
                latest(before)[k].0 == *o || *o >= active_base,
                "{o} {k} superseded"
            );
        }
        assert!(after.len() < before.len());
    }

    #[test]
    fn many_updates_compact_to_the_latest_value_per_key_with_offsets_unchanged() {
        for compress in [false, true] {
            let disk: Arc<dyn Storage> = Arc::new(MemStorage::new());
            let mut log = updates(&disk, compress);
            let before = read_all(&log);
            let (end, segments) = (log.log_end_offset(), log.segment_base_offsets());
            compact_fully(&mut log, 0);
            assert_eq!(log.log_end_offset(), end);
            assert_eq!(log.segment_base_offsets(), segments);
            check_compacted(&before, &log);
            // Fetches at every offset (including gaps) return whole valid batches.
            for o in 0..end {
                let b = log.read(o, 1, end).unwrap();
                let h = record::verify_batch(&split_batches(&b).0[0])
                    .unwrap()
                    .last_offset();
                assert!(h >= o);
            }
            // Reopen (checkpoint trusts the compacted segments) and rebuild from scratch.
            let served = read_all(&log);
            drop(log);
            let (log, report) = PartitionLog::open(Arc::clone(&disk), DIR, config()).unwrap();
            assert_eq!(report.truncated_bytes, 0);
            assert_eq!(read_all(&log), served);
            drop(log);
            for name in disk.list(DIR).unwrap() {
                if name.ends_with("index") || name == "log-checkpoint" {
                    disk.remove(&format!("{DIR}/{name}")).unwrap();
                }
            }
            let (log, report) = PartitionLog::open(Arc::clone(&disk), DIR, config()).unwrap();
            assert_eq!(report.truncated_bytes, 0, "{report:?}");
            assert_eq!(read_all(&log), served);
        }
    }

    #[test]
    fn tombstones_go_after_delete_retention_ms_and_not_before() {
        let disk: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let (mut log, _) = PartitionLog::open(Arc::clone(&disk), DIR, config()).unwrap();
        log.append(
            &batch(&[("gone", Some("old")), ("kept", Some("x"))], 100),
            0,
            1,
        )
        .unwrap();
        log.append(&batch(&[("gone", None)], 200), 0, 1).unwrap();
        for i in 0..30 {
            log.append(&batch(&[("filler", Some(&format!("{i}")))], 300), 0, 1)
                .unwrap();
        }
        log.mark_flushed(log.log_end_offset());
        let tombstone = (2, "gone".to_string(), None);
        compact_fully(&mut log, 200 + RETENTION_MS - 1);
        let after = read_all(&log);
        assert!(
            after.contains(&tombstone),
            "kept before delete.retention.ms"
        );
        assert!(!after.iter().any(|r| r.2.as_deref() == Some("old")));
        compact_fully(&mut log, 200 + RETENTION_MS);
        let after = read_all(&log);
        assert!(!after.iter().any(|r| r.1 == "gone"), "{after:?}");
        assert!(after.contains(&(1, "kept".to_string(), Some("x".to_string()))));
    }

    #[test]
    fn undurable_records_supersede_nothing() {
        let disk: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let mut log = updates(&disk, false);
        let before = read_all(&log);
        let durable = log.recovery_point();
        // Newer values of every key, not yet flushed: a crash could take them away.
        for _ in 0..10 {
            log.append(&batch(&[("a", Some("n")), ("b", Some("n"))], 500), 0, 1)
                .unwrap();
        }
        compact_fully(&mut log, 0);
        let after: Vec<_> = read_all(&log)
            .into_iter()
            .filter(|r| r.0 < durable)
            .collect();
        assert_eq!(latest(&before), latest(&after));
    }

    #[test]
    fn a_crash_at_any_step_of_a_swap_reopens_with_every_latest_value() {
        for allowed in 0..=5 {
            let mem = MemStorage::new();
            let plain: Arc<dyn Storage> = Arc::new(mem.clone());
            let before = read_all(&updates(&plain, true));
            // Every replace after the first `allowed` fails: a crash half-way through a
            // segment swap (each replace is atomic and durable, so what it left is exactly
            // what a reopen finds).
            let stopping = FaultyStorage::over(mem.clone());
            stopping.inject(Fault::every(Op::Replace, Failure::Eio).after(allowed));
            let stopping: Arc<dyn Storage> = Arc::new(stopping);
            let (mut log, _) = PartitionLog::open(stopping, DIR, config()).unwrap();
            let result = log.compact_one(0, RETENTION_MS);
            assert_eq!(result.is_err(), allowed < 5, "step {allowed}");
            drop(log);
            let (log, report) = PartitionLog::open(Arc::clone(&plain), DIR, config()).unwrap();
            assert_eq!(report.truncated_bytes, 0, "step {allowed}: {report:?}");
            let after = read_all(&log);
            assert_eq!(latest(&before), latest(&after), "step {allowed}");
            assert!(after.iter().all(|r| before.contains(r)));
        }
    }

    #[test]
    fn the_key_hash_is_stable() {
        // Pinned: the map's correctness does not depend on it, but a changed hash would
        // silently change which keys collide.
        assert_eq!(key_hash(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_ne!(key_hash(b"a"), key_hash(b"b"));
    }
}
