//! Producer snapshots: files `{offset:020}.snapshot` beside the segments, each holding the
//! partition's idempotent-producer table as of `offset` (Kafka keeps the same files, in its
//! own format). The log only stores, lists, reads and removes them; what is inside is
//! `producer::ProducerStates`' business (broker/idempotence.rs encodes and decodes it).
//!
//! A snapshot at `offset` is a statement about the log below `offset`, so one above the log
//! end describes bytes the log no longer has: [`PartitionLog::truncate_to`] removes every
//! snapshot above its cut before cutting, and the reader at open ignores and removes those
//! above the recovered log end (a crash took the tail they described). Each is written
//! with `Storage::replace`, whole or not at all; a stale one whose removal a crash undid
//! can only reappear above the log end again, because data up to it must be flushed, which
//! makes the directory (and so the removal) durable first.

use super::segment::join;
use super::{LogError, PartitionLog, ProducerBatch};
use crate::record;
use bytes::Bytes;

/// How many snapshots a log keeps: the newest, and one older in case a crash takes the
/// tail the newest describes.
const SNAPSHOTS_KEPT: usize = 2;

const SUFFIX: &str = ".snapshot";

/// The offset a snapshot file name stands for.
pub(super) fn parse_snapshot_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    i64::try_from(stem.parse::<u64>().ok()?).ok()
}

impl PartitionLog {
    fn snapshot_file(&self, offset: i64) -> String {
        join(&self.dir, &format!("{offset:020}{SUFFIX}"))
    }

    /// Offsets of the producer snapshots in the log's directory, newest first.
    pub fn producer_snapshot_offsets(&self) -> Result<Vec<i64>, LogError> {
        let mut offsets: Vec<i64> = self
            .storage
            .list(&self.dir)?
            .iter()
            .filter_map(|name| parse_snapshot_name(name))
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        Ok(offsets)
    }

    /// The contents of the snapshot at `offset`, if it exists.
    pub fn read_producer_snapshot(&self, offset: i64) -> Result<Option<Bytes>, LogError> {
        Ok(super::read_whole(
            &*self.storage,
            &self.snapshot_file(offset),
        )?)
    }

    /// Stores a snapshot at `offset` (durable on return) and removes all but the newest
    /// [`SNAPSHOTS_KEPT`]. A snapshot is an optimisation of the next open: callers log a
    /// failure and go on.
    pub fn write_producer_snapshot(&self, offset: i64, contents: &[u8]) -> Result<(), LogError> {
        self.storage
            .replace(&self.snapshot_file(offset), contents)?;
        for old in self
            .producer_snapshot_offsets()?
            .into_iter()
            .skip(SNAPSHOTS_KEPT)
        {
            self.remove_producer_snapshot(old)?;
        }
        Ok(())
    }

    pub fn remove_producer_snapshot(&self, offset: i64) -> Result<(), LogError> {
        Ok(self.storage.remove(&self.snapshot_file(offset))?)
    }

    /// Removes every snapshot above `offset`: they describe bytes the log is about to lose.
    pub(super) fn remove_producer_snapshots_above(&self, offset: i64) -> Result<(), LogError> {
        for stale in self.producer_snapshot_offsets()? {
            if stale > offset {
                self.remove_producer_snapshot(stale)?;
            }
        }
        Ok(())
    }

    /// Calls `f` with the producer fields of every stored batch that carries a producer id
    /// and ends at or after `from` (and at or after the log start), in offset order to the
    /// log end. Reads batch headers only (no CRC check, no record decoding): what
    /// rebuilding idempotent-producer state at open needs, from a snapshot's offset or from
    /// the start.
    pub fn producer_batches_from(
        &self,
        from: i64,
        mut f: impl FnMut(ProducerBatch),
    ) -> Result<(), LogError> {
        let from = from.max(self.log_start_offset);
        for segment in self.segments.values() {
            if segment.next_offset <= from {
                continue;
            }
            let (pos, expected) = segment.scan_start_for(from);
            self.walk_segment(segment, pos, expected, |b| {
                if b.producer_id >= 0 && b.last_offset >= from {
                    f(ProducerBatch {
                        producer_id: b.producer_id,
                        producer_epoch: b.producer_epoch,
                        base_sequence: b.base_sequence,
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        is_control: b.attributes & record::ATTR_CONTROL != 0,
                    });
                }
                true
            })?;
        }
        Ok(())
    }
}
