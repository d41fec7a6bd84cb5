//! `producer`: idempotent-producer state, as values. [`ProducerStates`] is one partition's
//! table of producers (epoch, last sequence, the last five batches for duplicate detection);
//! [`ProducerIdBlock`] is the node's producer-id allocator and the codec of the small file
//! that keeps ids unique across restarts. No IO here: broker/idempotence.rs glues both to
//! the node, its logs and its storage.
//!
//! # The checks (KAFKA.md §4, Kafka's ProducerAppendInfo / ProducerStateEntry)
//! For a batch with producerId ≥ 0, against the producer's entry in the partition:
//! - an older epoch → INVALID_PRODUCER_EPOCH (47);
//! - a newer epoch → the batch's firstSeq must be 0, else OUT_OF_ORDER_SEQUENCE_NUMBER (45);
//! - the same epoch → a batch whose (firstSeq, lastSeq) matches one of the last
//!   [`BATCHES_TO_RETAIN`] batches is a duplicate: not appended, answered with the original
//!   base offset and no error; otherwise firstSeq must be lastSeq + 1, wrapping from
//!   `i32::MAX` to 0, else OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! A batch refused for good with nothing written (below the free-space floor) leaves a hole
//! in the producer's sequences: aiokafka, like Kafka's own clients before KIP-360, does not
//! reuse a failed batch's sequences, so without more its next batch would be
//! OUT_OF_ORDER_SEQUENCE_NUMBER for as long as the producer lives. The entry remembers the
//! hole ([`ProducerStates::refused`]), and a batch starting anywhere in it or just past it is
//! in sequence: nothing of the hole is in the log, so nothing is lost by skipping it. The
//! hole is not in snapshots; after a restart such a batch gets 45 as in Kafka.
//!
//! A producer the partition does not know is accepted when its firstSeq is 0 (a new
//! producer, or a new epoch). With any other firstSeq it gets UNKNOWN_PRODUCER_ID (59): its
//! state was evicted (see below) or lost with a log tail a crash cut, and clients answer 59
//! by resetting their sequence (librdkafka bumps its epoch, KIP-360). Kafka ≥ 2.5 instead
//! accepts any sequence from an unknown producer; Keel is stricter because, unlike Kafka, it
//! evicts producers by count, and accepting would silently lose the gap.
//!
//! # Bounds
//! A partition keeps at most `max_producers` entries; inserting one more evicts the producer
//! least recently used, by the offset of its last batch (Kafka expires producers after
//! `producer.id.expiration.ms` instead; Keel has no clock in its data path for that).

use crate::error::ErrorCode;
use crate::log::ProducerBatch;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`: why clients cap in-flight requests
/// per connection at 5 with idempotence.
pub const BATCHES_TO_RETAIN: usize = 5;

/// Default bound on producers remembered per partition.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;

/// Ids handed out per write of the producer-id file (Kafka's `PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The last epoch an id may be bumped to; past it a new id is allocated (Kafka: an epoch
/// of `Short.MAX_VALUE - 1` or more gets a new producer id).
pub const MAX_PRODUCER_EPOCH: i16 = i16::MAX - 1;

/// One appended batch of a producer, kept for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// One producer's state in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// The last [`BATCHES_TO_RETAIN`] batches of `epoch`, oldest first; never empty.
    pub batches: VecDeque<BatchMetadata>,
    /// Sequences `first ..= last` just past the last batch, of batches refused with nothing
    /// written (see the module doc); cleared by the next append.
    pub refused: Option<(i32, i32)>,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    /// Whether a batch of this epoch starting at `first_seq` follows the last batch, either
    /// directly or across the hole of refused sequences.
    fn follows(&self, first_seq: i32) -> bool {
        in_sequence(self.last_seq(), first_seq)
            || self.refused.is_some_and(|(first, last)| {
                (first as i64..=last as i64 + 1).contains(&(first_seq as i64))
            })
    }
}

/// The producer fields of a batch offered for append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducedBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    /// lastOffsetDelta: the batch covers sequences first_seq ..= first_seq + delta (wrapping).
    pub last_offset_delta: i32,
}

impl ProducedBatch {
    /// Kafka's `DefaultRecordBatch.incrementSequence(baseSequence, lastOffsetDelta)`.
    pub fn last_seq(&self) -> i32 {
        increment_sequence(self.first_seq, self.last_offset_delta)
    }
}

/// What to do with a produced batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Append it, then [`ProducerStates::record`] where it landed.
    Append,
    /// A retry of a batch already in the log at these offsets: answer with them, no error,
    /// append nothing.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// Refuse it.
    Reject { error: ErrorCode, message: String },
}

/// `seq + delta`, wrapping past `i32::MAX` to 0 (sequences are non-negative).
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    debug_assert!(seq >= 0 && delta >= 0);
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Kafka's `inSequence`: `next` directly follows `last`.
pub fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (next == 0 && last == i32::MAX)
}

/// One partition's idempotent producers. See the module doc.
#[derive(Debug, Clone)]
pub struct ProducerStates {
    max_producers: usize,
    producers: BTreeMap<i64, ProducerEntry>,
    /// (last offset, producer id) for every entry: the eviction order.
    by_last_use: BTreeSet<(i64, i64)>,
}

impl Default for ProducerStates {
    fn default() -> Self {
        ProducerStates::new(MAX_PRODUCERS_PER_PARTITION)
    }
}

impl ProducerStates {
    pub fn new(max_producers: usize) -> Self {
        assert!(
            max_producers > 0,
            "a producer table holds at least one producer"
        );
        ProducerStates {
            max_producers,
            producers: BTreeMap::new(),
            by_last_use: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The largest producer id with state here.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producers.keys().next_back().copied()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Decides what to do with a produced batch whose producer id is ≥ 0. Changes nothing.
    pub fn check(&self, b: &ProducedBatch) -> Verdict {
        debug_assert!(b.producer_id >= 0);
        let reject = |error, message| Verdict::Reject { error, message };
        if b.first_seq < 0 || b.last_offset_delta < 0 {
            return reject(
                ErrorCode::INVALID_RECORD,
                "a batch with a producerId needs a baseSequence".into(),
            );
        }
        let Some(entry) = self.producers.get(&b.producer_id) else {
            if b.first_seq == 0 {
                return Verdict::Append;
            }
            return reject(
                ErrorCode::UNKNOWN_PRODUCER_ID,
                format!(
                    "this partition has no state for producer {} (epoch {}), so sequence {} cannot be checked; reset the sequence",
                    b.producer_id, b.epoch, b.first_seq
                ),
            );
        };
        if b.epoch < entry.epoch {
            return reject(
                ErrorCode::INVALID_PRODUCER_EPOCH,
                format!(
                    "producer {} epoch {} is older than the current epoch {}",
                    b.producer_id, b.epoch, entry.epoch
                ),
            );
        }
        if b.epoch > entry.epoch {
            if b.first_seq != 0 {
                return reject(
                    ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                    format!(
                        "invalid sequence number for new epoch {} of producer {}: {} (must be 0; current epoch {})",
                        b.epoch, b.producer_id, b.first_seq, entry.epoch
                    ),
                );
            }
            return Verdict::Append;
        }
        let last_seq = b.last_seq();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|m| m.first_seq == b.first_seq && m.last_seq == last_seq)
        {
            return Verdict::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            };
        }
        if !entry.follows(b.first_seq) {
            return reject(
                ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                format!(
                    "out of order sequence number for producer {} epoch {}: {} (incoming seq), {} (current end seq)",
                    b.producer_id, b.epoch, b.first_seq, entry.last_seq()
                ),
            );
        }
        Verdict::Append
    }

    /// Records a batch that is now in the log at `base_offset ..= last_offset`: after an
    /// append that [`Self::check`] allowed, and for every stored batch when rebuilding at
    /// open (no checks then: the log is the truth). A batch of an older epoch than the
    /// entry's is ignored; a newer epoch starts the entry afresh.
    pub fn record(&mut self, b: &ProducedBatch, base_offset: i64, last_offset: i64) {
        debug_assert!(b.producer_id >= 0 && base_offset <= last_offset);
        let meta = BatchMetadata {
            first_seq: b.first_seq,
            last_seq: b.last_seq(),
            base_offset,
            last_offset,
        };
        if let Some(entry) = self.producers.get_mut(&b.producer_id) {
            if b.epoch < entry.epoch {
                return;
            }
            self.by_last_use
                .remove(&(entry.last_offset(), b.producer_id));
            if b.epoch > entry.epoch {
                entry.epoch = b.epoch;
                entry.batches.clear();
            }
            if entry.batches.len() == BATCHES_TO_RETAIN {
                entry.batches.pop_front();
            }
            entry.batches.push_back(meta);
            entry.refused = None;
            self.by_last_use.insert((last_offset, b.producer_id));
            return;
        }
        while self.producers.len() >= self.max_producers {
            let (_, evicted) = self
                .by_last_use
                .pop_first()
                .expect("by_last_use has one entry per producer");
            self.producers.remove(&evicted);
            tracing::debug!(
                producer_id = evicted,
                "evicted the least recently used producer state"
            );
        }
        self.producers.insert(
            b.producer_id,
            ProducerEntry {
                epoch: b.epoch,
                batches: VecDeque::from([meta]),
                refused: None,
            },
        );
        self.by_last_use.insert((last_offset, b.producer_id));
    }

    /// Notes that `b`, which [`Self::check`] let through, was refused with nothing written
    /// and for good (the client will not resend its sequences): a later batch of the same
    /// epoch may skip them. Sequences that wrap past `i32::MAX` are not remembered.
    pub fn refused(&mut self, b: &ProducedBatch) {
        let Some(entry) = self.producers.get_mut(&b.producer_id) else {
            return;
        };
        let last_seq = b.last_seq();
        if b.epoch != entry.epoch || last_seq < b.first_seq || !entry.follows(b.first_seq) {
            return;
        }
        let first = entry.refused.map_or(b.first_seq, |(first, _)| first);
        let last = entry
            .refused
            .map_or(last_seq, |(_, last)| last.max(last_seq));
        entry.refused = Some((first.min(b.first_seq), last));
    }

    /// After this table was rebuilt from a reopened log, takes over the holes `old` knew of
    /// for producers whose last batch is still the same: the log's reopen (after ENOSPC)
    /// must not make a producer's next batch past its refused ones out of order.
    pub fn keep_refused(&mut self, old: &ProducerStates) {
        for (pid, was) in &old.producers {
            let Some(hole) = was.refused else {
                continue;
            };
            if let Some(entry) = self.producers.get_mut(pid) {
                if entry.epoch == was.epoch && entry.last_seq() == was.last_seq() {
                    entry.refused = Some(hole);
                }
            }
        }
    }

    /// Rebuild helper: records one stored batch as the log holds it.
    pub fn replay(&mut self, b: &ProducerBatch) {
        if b.producer_id < 0 || b.is_control || b.base_sequence < 0 {
            return;
        }
        let delta = (b.last_offset - b.base_offset).clamp(0, i32::MAX as i64) as i32;
        let produced = ProducedBatch {
            producer_id: b.producer_id,
            epoch: b.producer_epoch,
            first_seq: b.base_sequence,
            last_offset_delta: delta,
        };
        self.record(&produced, b.base_offset, b.last_offset);
    }

    /// Structural invariants (debug and simulation builds).
    pub fn check_invariants(&self) {
        assert!(self.producers.len() <= self.max_producers);
        assert_eq!(self.producers.len(), self.by_last_use.len());
        debug_assert!(self.producers.iter().all(|(&pid, e)| {
            !e.batches.is_empty()
                && e.batches.len() <= BATCHES_TO_RETAIN
                && self.by_last_use.contains(&(e.last_offset(), pid))
        }));
    }
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"KPSS";
const SNAPSHOT_VERSION: u8 = 1;
/// magic + version + offset + producer count.
const SNAPSHOT_HEADER_LEN: usize = 4 + 1 + 8 + 4;
/// producer id + epoch + batch count.
const SNAPSHOT_ENTRY_LEN: usize = 8 + 2 + 1;
/// first seq + last seq + base offset + last offset.
const SNAPSHOT_BATCH_LEN: usize = 4 + 4 + 8 + 8;

impl ProducerStates {
    /// The table as of `offset` (every batch below it recorded, none after), for a producer
    /// snapshot file: magic, version, offset, then each producer with its retained batches,
    /// then a CRC-32C of everything before it.
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let batches: usize = self.producers.values().map(|e| e.batches.len()).sum();
        let mut out = Vec::with_capacity(
            SNAPSHOT_HEADER_LEN
                + self.producers.len() * SNAPSHOT_ENTRY_LEN
                + batches * SNAPSHOT_BATCH_LEN
                + 4,
        );
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.push(SNAPSHOT_VERSION);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (pid, entry) in &self.producers {
            out.extend_from_slice(&pid.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a producer snapshot into its offset and a table bounded by `max_producers`
    /// (a snapshot with more is refused, not trusted). `Err` says why it is unusable.
    pub fn decode_snapshot(b: &[u8], max_producers: usize) -> Result<(i64, Self), String> {
        let body_len = b
            .len()
            .checked_sub(4)
            .filter(|&n| n >= SNAPSHOT_HEADER_LEN)
            .ok_or("too short")?;
        let (body, crc) = b.split_at(body_len);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().expect("4 bytes")) {
            return Err("checksum mismatch".into());
        }
        if &body[..4] != SNAPSHOT_MAGIC || body[4] != SNAPSHOT_VERSION {
            return Err("bad magic or version".into());
        }
        let mut at = 5;
        let mut take = |n: usize| -> Result<&[u8], String> {
            let s = body.get(at..at + n).ok_or("truncated")?;
            at += n;
            Ok(s)
        };
        let offset = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
        let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        if offset < 0 || count > max_producers {
            return Err(format!(
                "offset {offset} or producer count {count} out of range"
            ));
        }
        let mut states = ProducerStates::new(max_producers);
        for _ in 0..count {
            let pid = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
            let epoch = i16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
            let n = take(1)?[0] as usize;
            if pid < 0 || n == 0 || n > BATCHES_TO_RETAIN || states.producers.contains_key(&pid) {
                return Err(format!(
                    "producer {pid} with {n} batches is not a valid entry"
                ));
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                let first_seq = i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
                let last_seq = i32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
                let base_offset = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
                let last_offset = i64::from_be_bytes(take(8)?.try_into().expect("8 bytes"));
                if base_offset > last_offset || last_offset >= offset {
                    return Err(format!("producer {pid}: a batch outside the snapshot"));
                }
                batches.push_back(BatchMetadata {
                    first_seq,
                    last_seq,
                    base_offset,
                    last_offset,
                });
            }
            let entry = ProducerEntry {
                epoch,
                batches,
                refused: None,
            };
            states.by_last_use.insert((entry.last_offset(), pid));
            states.producers.insert(pid, entry);
        }
        if at != body.len() {
            return Err("trailing bytes".into());
        }
        Ok((offset, states))
    }
}

/// The node's producer-id allocator: ids below `next` have been handed out, ids below
/// `block_end` are reserved by the durable file, so a restart (which resumes at the file's
/// `block_end`) never hands out an id twice. The file is written once per
/// [`PRODUCER_ID_BLOCK_SIZE`] ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerIdBlock {
    pub next: i64,
    pub block_end: i64,
}

/// Name of the producer-id file at the storage root (not a `{topic}-{n}` name, so never
/// taken for a partition directory).
pub const PRODUCER_ID_FILE: &str = "producer-id-block";
const FILE_MAGIC: &[u8; 4] = b"KPID";
const FILE_VERSION: u8 = 1;
/// magic + version + block end + CRC-32.
const FILE_LEN: usize = 4 + 1 + 8 + 4;

impl ProducerIdBlock {
    /// Resumes after a restart: every id below `block_end` may have been handed out.
    pub fn resume(block_end: i64) -> Self {
        assert!(block_end >= 0);
        ProducerIdBlock {
            next: block_end,
            block_end,
        }
    }

    /// The next id, if the reserved block has one left; otherwise the caller must make
    /// [`Self::next_block_end`] durable and call [`Self::extend`] first.
    pub fn take(&mut self) -> Option<i64> {
        if self.next >= self.block_end {
            return None;
        }
        let id = self.next;
        self.next += 1;
        Some(id)
    }

    /// The block end to persist before handing out more ids.
    pub fn next_block_end(&self) -> i64 {
        self.block_end.max(self.next) + PRODUCER_ID_BLOCK_SIZE
    }

    /// Records that `block_end` is durable.
    pub fn extend(&mut self, block_end: i64) {
        assert!(block_end >= self.block_end && block_end >= self.next);
        self.block_end = block_end;
    }

    /// The file's bytes for `block_end`: magic, version, block end, CRC-32 of the rest.
    pub fn encode(block_end: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(FILE_LEN);
        out.extend_from_slice(FILE_MAGIC);
        out.push(FILE_VERSION);
        out.extend_from_slice(&block_end.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        debug_assert_eq!(out.len(), FILE_LEN);
        out
    }

    /// Parses the file; `Err` says why it is unusable.
    pub fn decode(b: &[u8]) -> Result<i64, String> {
        if b.len() != FILE_LEN || &b[..4] != FILE_MAGIC || b[4] != FILE_VERSION {
            return Err(format!("{PRODUCER_ID_FILE}: bad length, magic or version"));
        }
        let body = FILE_LEN - 4;
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&b[body..]);
        if crc32fast::hash(&b[..body]) != u32::from_be_bytes(crc) {
            return Err(format!("{PRODUCER_ID_FILE}: checksum mismatch"));
        }
        let mut end = [0u8; 8];
        end.copy_from_slice(&b[5..13]);
        let end = i64::from_be_bytes(end);
        if end < 0 {
            return Err(format!("{PRODUCER_ID_FILE}: negative block end {end}"));
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, first_seq: i32, count: i32) -> ProducedBatch {
        ProducedBatch {
            producer_id: pid,
            epoch,
            first_seq,
            last_offset_delta: count - 1,
        }
    }

    #[test]
    fn snapshots_round_trip_and_refuse_damage() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&batch(1, 2, i * 3, 3), i as i64 * 3, i as i64 * 3 + 2);
        }
        s.record(&batch(9, 0, 0, 1), 21, 21);
        let bytes = s.encode_snapshot(22);
        let (offset, back) = ProducerStates::decode_snapshot(&bytes, 10).unwrap();
        assert_eq!(offset, 22);
        assert_eq!(back.get(1), s.get(1));
        assert_eq!(back.get(9), s.get(9));
        assert_eq!(back.get(1).unwrap().batches.len(), BATCHES_TO_RETAIN);
        back.check_invariants();
        // The eviction order came back too: one more producer in a table of two evicts 1.
        let (_, mut small) = ProducerStates::decode_snapshot(&bytes, 2).unwrap();
        small.record(&batch(5, 0, 0, 1), 22, 22);
        assert!(small.get(1).is_none() && small.get(9).is_some());
        // Too many producers for the bound, any cut, any flipped bit: refused.
        assert!(ProducerStates::decode_snapshot(&bytes, 1).is_err());
        for n in 0..bytes.len() {
            assert!(ProducerStates::decode_snapshot(&bytes[..n], 10).is_err());
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                ProducerStates::decode_snapshot(&bad, 10).is_err(),
                "byte {i}"
            );
        }
        // A snapshot that names batches at or past its own offset contradicts itself.
        let ahead = s.encode_snapshot(21);
        assert!(ProducerStates::decode_snapshot(&ahead, 10).is_err());
        let empty = ProducerStates::default().encode_snapshot(0);
        assert!(ProducerStates::decode_snapshot(&empty, 10)
            .unwrap()
            .1
            .is_empty());
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(i32::MAX, 1));
        assert!(in_sequence(4, 5));
    }

    #[test]
    fn a_rebuilt_table_keeps_the_holes_of_producers_whose_last_batch_is_unchanged() {
        let mut old = ProducerStates::default();
        old.record(&batch(1, 0, 0, 2), 0, 1);
        old.record(&batch(2, 0, 0, 1), 2, 2);
        old.refused(&batch(1, 0, 2, 3));
        old.refused(&batch(2, 0, 1, 1));
        // The reopened log lost producer 2's last batch (cut as unsynced): its hole no
        // longer starts where its sequences end, so it is not kept.
        let mut rebuilt = ProducerStates::default();
        rebuilt.record(&batch(1, 0, 0, 2), 0, 1);
        rebuilt.keep_refused(&old);
        assert_eq!(rebuilt.check(&batch(1, 0, 5, 1)), Verdict::Append);
        assert_eq!(rebuilt.get(1).unwrap().refused, Some((2, 4)));
        assert!(rebuilt.get(2).is_none());
    }

    #[test]
    fn a_batch_may_skip_the_sequences_of_batches_refused_with_nothing_written() {
        let reject_45 = |v: Verdict| {
            assert!(
                matches!(
                    v,
                    Verdict::Reject {
                        error: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                        ..
                    }
                ),
                "{v:?}"
            )
        };
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, 0, 2), 0, 1);
        reject_45(s.check(&batch(1, 0, 4, 1)));
        // Two batches refused in a row (seq 2..=3, then 4..=4), as aiokafka sends them.
        for refused in [batch(1, 0, 2, 2), batch(1, 0, 4, 1)] {
            assert_eq!(s.check(&refused), Verdict::Append);
            s.refused(&refused);
        }
        // A batch past the hole, a resend of a refused one, or one inside it: in sequence.
        for first_seq in [5, 2, 3] {
            assert_eq!(s.check(&batch(1, 0, first_seq, 1)), Verdict::Append);
        }
        // Not beyond it, nor for another epoch's sequences.
        reject_45(s.check(&batch(1, 0, 6, 1)));
        let next_epoch = batch(1, 1, 3, 1);
        s.refused(&next_epoch);
        reject_45(s.check(&next_epoch));
        // An append closes the hole.
        s.record(&batch(1, 0, 5, 1), 2, 2);
        assert_eq!(s.get(1).unwrap().refused, None);
        reject_45(s.check(&batch(1, 0, 3, 1)));
        assert_eq!(s.check(&batch(1, 0, 6, 1)), Verdict::Append);
        s.check_invariants();
    }

    #[test]
    fn only_the_last_five_batches_are_deduplicated() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            let b = batch(1, 0, i * 2, 2);
            assert_eq!(s.check(&b), Verdict::Append);
            s.record(&b, i as i64 * 2, i as i64 * 2 + 1);
        }
        // Batch 0 (seq 0..=1) fell out of the window; batch 1 (seq 2..=3) is still there.
        assert!(matches!(
            s.check(&batch(1, 0, 0, 2)),
            Verdict::Reject {
                error: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                ..
            }
        ));
        assert_eq!(
            s.check(&batch(1, 0, 2, 2)),
            Verdict::Duplicate {
                base_offset: 2,
                last_offset: 3
            }
        );
        // Same first sequence, different length: not a duplicate, and out of order.
        assert!(matches!(
            s.check(&batch(1, 0, 2, 1)),
            Verdict::Reject { .. }
        ));
        s.check_invariants();
    }

    #[test]
    fn the_least_recently_used_producer_is_evicted_and_then_unknown() {
        let mut s = ProducerStates::new(2);
        s.record(&batch(1, 0, 0, 1), 0, 0);
        s.record(&batch(2, 0, 0, 1), 1, 1);
        s.record(&batch(1, 0, 1, 1), 2, 2);
        s.record(&batch(3, 0, 0, 1), 3, 3);
        assert!(s.get(2).is_none());
        assert_eq!(s.len(), 2);
        assert!(matches!(
            s.check(&batch(2, 0, 1, 1)),
            Verdict::Reject {
                error: ErrorCode::UNKNOWN_PRODUCER_ID,
                ..
            }
        ));
        assert_eq!(s.check(&batch(2, 1, 0, 1)), Verdict::Append);
        s.check_invariants();
    }

    #[test]
    fn id_blocks_round_trip_and_reject_damage() {
        let bytes = ProducerIdBlock::encode(3000);
        assert_eq!(ProducerIdBlock::decode(&bytes), Ok(3000));
        let mut bad = bytes.clone();
        bad[7] ^= 1;
        assert!(ProducerIdBlock::decode(&bad).is_err());
        let mut ids = ProducerIdBlock::resume(3000);
        assert_eq!(ids.take(), None);
        assert_eq!(ids.next_block_end(), 4000);
        ids.extend(4000);
        assert_eq!(ids.take(), Some(3000));
        assert_eq!(ids.take(), Some(3001));
    }
}
