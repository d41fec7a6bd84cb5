//! Producer snapshots: files `{offset:020}.snapshot` beside the segments, each holding the
//! partition's idempotent-producer table as of `offset` (Kafka keeps the same files, in its
//! own format). The log only stores, lists, reads and removes them; what is inside is
//! `producer::ProducerStates`' business (broker/idempotence.rs encodes and decodes it).
//!
//! A snapshot at `offset` is a statement about the log below `offset`, so one above the log
//! end describes bytes the log no longer has: [`PartitionLog::truncate_to`] removes every
//! snapshot above its cut before cutting, and the reader at open ignores and removes those
//! above the recovered log end (a crash took the tail they described).
//!
//! Writing one costs no fsync of its own: it is appended like log data and listed among the
//! log's unflushed files at the current log end, so the flush that makes the data below it
//! durable syncs it too. A crash before that may leave it torn or missing, which the reader's
//! checksum and its fallback to an older snapshot (or the whole log) absorb. A stale one
//! whose removal a crash undid can only reappear above the log end again, because data up
//! to it must be flushed, which makes the directory (and so the removal) durable first.

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

    /// Stores a snapshot at `offset`, durable with the next flush of the log (see the
    /// module doc), and removes all but the newest [`SNAPSHOTS_KEPT`]. A snapshot is an
    /// optimisation of the next open: callers log a failure and go on.
    pub fn write_producer_snapshot(
        &mut self,
        offset: i64,
        contents: &[u8],
    ) -> Result<(), LogError> {
        let file = self.snapshot_file(offset);
        if self.storage.len(&file)?.is_some() {
            self.storage.remove(&file)?;
        }
        self.storage.append(&file, &[contents])?;
        self.unflushed.insert(file, self.log_end_offset());
        for old in self
            .producer_snapshot_offsets()?
            .into_iter()
            .skip(SNAPSHOTS_KEPT)
        {
            self.remove_producer_snapshot(old)?;
        }
        Ok(())
    }

    pub fn remove_producer_snapshot(&mut self, offset: i64) -> Result<(), LogError> {
        let file = self.snapshot_file(offset);
        self.unflushed.remove(&file);
        Ok(self.storage.remove(&file)?)
    }

    /// Removes every snapshot above `offset`: they describe bytes the log is about to lose.
    pub(super) fn remove_producer_snapshots_above(&mut self, offset: i64) -> Result<(), LogError> {
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

#[cfg(test)]
mod tests {
    use super::super::LogConfig;
    use super::*;
    use crate::storage::{MemStorage, Storage};
    use std::sync::Arc;

    /// A snapshot is synced by the log's next flush, not on its own; only two are kept, and
    /// a cut below one removes it.
    #[test]
    fn snapshots_ride_the_next_flush_and_only_two_stay() {
        let disk = MemStorage::new();
        let shared: Arc<dyn Storage> = Arc::new(disk.clone());
        let (mut log, _) = PartitionLog::open(shared, "t-0", LogConfig::default()).unwrap();
        let records = [crate::record::builder::Record {
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![],
            timestamp_ms: 1,
        }];
        let batch = crate::record::builder::build_batch(&records);
        let syncs = disk.sync_count();
        for _ in 0..3 {
            log.append(&batch, 1, 0).unwrap();
            let end = log.log_end_offset();
            log.write_producer_snapshot(end, b"state").unwrap();
            let file = format!("t-0/{end:020}.snapshot");
            assert!(log.unflushed_files().contains(&file));
            assert_eq!(disk.contents(&file).as_deref(), Some(&b"state"[..]));
        }
        assert_eq!(disk.sync_count(), syncs, "no sync of its own");
        assert_eq!(log.producer_snapshot_offsets().unwrap(), vec![3, 2]);
        assert!(!log
            .unflushed_files()
            .iter()
            .any(|f| f.ends_with("1.snapshot")));
        log.mark_flushed(3);
        assert!(log.unflushed_files().is_empty());
        log.truncate_to(2).unwrap();
        assert_eq!(log.producer_snapshot_offsets().unwrap(), vec![2]);
    }
}
