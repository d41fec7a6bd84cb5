//! Retention (`cleanup.policy=delete`) and the log start offset: which whole segments leave
//! the log, by age (`retention.ms`), by size (`retention.bytes`) or because DeleteRecords
//! moved the log start offset past them, and the `segment.ms` roll that makes an active
//! segment old enough to go.
//!
//! # Kafka's rules, as kept here
//! (apache/kafka `UnifiedLog.deleteOldSegments` / `deletableSegments`, `LogSegment.shouldRoll`)
//! - Segments leave only from the front, in order: a pass takes the longest prefix of
//!   segments each of which is expired by time (`now - largest timestamp > retention.ms`),
//!   or by size (the log stays `>= retention.bytes` without it, counting what this pass
//!   already deleted), or lies wholly below the log start offset. Kafka runs the three rules
//!   as three passes; one pass over their union deletes the same prefix except when
//!   timestamps go backwards between segments, where it may take more.
//! - Only segments wholly below `upto` (the high watermark) go, and never an empty active
//!   segment. When every segment goes, the active one included, a new empty active segment
//!   is first rolled at the log end, so the log end offset never moves back.
//! - retention.ms/bytes apply only with `cleanup.policy=delete` (`LogConfig::cleanup_delete`);
//!   a compacted log (Keel refuses `compact,delete`) only follows the log start offset.
//! - The log start offset becomes the first remaining segment's base offset (or stays where
//!   DeleteRecords put it, if higher). It is written to the checkpoint (`log-checkpoint`,
//!   Kafka's log-start-offset-checkpoint), which `Storage::replace` makes durable, *before*
//!   any file is removed: a crash in between leaves segments below the log start, which
//!   reopening hides and the next pass removes.
//! - A segment rolls at append when the incoming batch's maxTimestamp is more than
//!   `segment.ms` after the active segment's first batch's maxTimestamp.
//!
//! # Durability of a removal
//! A removal is a directory change, durable only once the directory is fsynced. The log
//! marks its active `.log` file unflushed after removing files, so the next Flush syncs a
//! file in the directory, which syncs the directory (see keel-net's `fs_storage.rs`).
//!
//! Records without timestamps (-1): as Kafka falls back to the segment file's modification
//! and creation times, retention measures such a segment from the broker time of its last
//! append and `segment.ms` from the time it was rolled. The Storage boundary does not
//! expose file times, so a segment loaded at open counts from the first moment the log
//! sees it after the open: never earlier than Kafka would drop or roll it.

use super::{Checkpoint, LogError, PartitionLog};
use crate::record::{BatchHeader, HEADER_LEN};

/// What one [`PartitionLog::apply_retention`] or [`PartitionLog::advance_log_start`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whole segments removed.
    pub segments_deleted: usize,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Whether every segment had expired, so a new empty active segment was rolled first.
    pub rolled: bool,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// One retention pass at `now_ms` (the core's clock) over the segments wholly below
    /// `upto` (the caller's high watermark; never past the recovery point), by the rules in
    /// the module doc and the log's `retention_ms` / `retention_bytes`.
    pub fn apply_retention(&mut self, now_ms: i64, upto: i64) -> Result<RetentionReport, LogError> {
        self.refuse_if_failed()?;
        let upto = upto.min(self.recovery_point).min(self.log_end_offset());
        let by_policy = self.config.cleanup_delete;
        let retention_ms = self.config.retention_ms;
        let total = self.size_bytes();
        // How far the log is over retention.bytes, less what this pass already deletes.
        let mut over_bytes = match self.config.retention_bytes {
            limit if limit >= 0 && by_policy => total as i128 - limit as i128,
            _ => i128::MIN,
        };
        let active_base = self.active().base_offset;
        for s in self.segments.values_mut() {
            s.last_modified_ms.get_or_insert(now_ms);
        }
        let mut count = 0;
        for s in self.segments.values() {
            let is_active = s.base_offset == active_base;
            if s.next_offset > upto || (is_active && s.is_empty()) {
                break;
            }
            // Kafka's `largestTimestamp`: the records' if they have one, else the file's.
            let age_from = match s.max_timestamp {
                Some(m) if m >= 0 => Some(m),
                _ => s.last_modified_ms,
            };
            let by_time = by_policy
                && retention_ms >= 0
                && age_from.is_some_and(|t| now_ms.saturating_sub(t) > retention_ms);
            let by_size = over_bytes != i128::MIN && over_bytes - s.size as i128 >= 0;
            let below_start = !is_active && s.next_offset <= self.log_start_offset;
            if !(by_time || by_size || below_start) {
                break;
            }
            if over_bytes != i128::MIN {
                over_bytes -= s.size as i128;
            }
            count += 1;
        }
        if count == 0 {
            return Ok(RetentionReport {
                log_start_offset: self.log_start_offset,
                ..RetentionReport::default()
            });
        }
        let rolled = count == self.segments.len();
        if rolled {
            // The active segment expired too: Kafka never leaves a log without one, so a new
            // empty one starts at the log end, which therefore never moves back.
            let end = self.log_end_offset();
            self.roll(end, end)?;
        }
        let first_kept = *self
            .segments
            .keys()
            .nth(count)
            .expect("an active segment stays after the deleted prefix");
        let mut report = self.remove_oldest(count, first_kept.max(self.log_start_offset))?;
        report.rolled = rolled;
        if report.segments_deleted > 0 {
            tracing::info!(dir = %self.dir, ?report, "retention deleted old segments");
        }
        Ok(report)
    }

    /// DeleteRecords at the log level: moves the log start offset up to `offset` (a no-op if
    /// it is already there or beyond) and removes the segments wholly below it, except the
    /// active one. The new log start is durable when this returns. `offset` must not exceed
    /// the recovery point (the caller checks it against the high watermark, which is never
    /// beyond it): OffsetOutOfRange otherwise, as for a negative offset.
    pub fn advance_log_start(&mut self, offset: i64) -> Result<RetentionReport, LogError> {
        self.refuse_if_failed()?;
        let limit = self.recovery_point.min(self.log_end_offset());
        if offset < 0 || offset > limit {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: limit,
            });
        }
        let start = offset.max(self.log_start_offset);
        let active_base = self.active().base_offset;
        let count = self
            .segments
            .values()
            .take_while(|s| s.base_offset != active_base && s.next_offset <= start)
            .count();
        self.remove_oldest(count, start)
    }

    /// Whether the active segment must roll before a batch with maxTimestamp
    /// `incoming_timestamp` is appended at broker time `now_ms`, by `segment_ms` (see the
    /// module doc).
    pub(super) fn active_too_old(
        &self,
        incoming_timestamp: i64,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let active = self.active();
        if active.is_empty() || self.config.segment_ms < 0 {
            return Ok(false);
        }
        let first = match active.first_batch_timestamp {
            Some(ts) => ts,
            // Loaded without a walk from byte 0 (a trusted segment that truncation made
            // active): read the first header, as Kafka's `loadFirstBatchTimestamp` does.
            None => {
                let bytes = self.storage.read_at(&active.log_file, 0, HEADER_LEN)?;
                BatchHeader::new(&bytes)
                    .map_err(|e| self.corrupt(active, 0, e.to_string()))?
                    .max_timestamp()
            }
        };
        // Kafka's `timeWaitedForRoll`: by the records' timestamps if the first batch has
        // one, else by the broker's clock since the segment was created.
        Ok(if first >= 0 {
            incoming_timestamp.saturating_sub(first) > self.config.segment_ms
        } else {
            active
                .created_ms
                .is_some_and(|created| now_ms.saturating_sub(created) > self.config.segment_ms)
        })
    }

    /// Makes `log_start` the durable log start offset (if it is higher), then removes the
    /// first `count` segments, which must all lie wholly below it and exclude the active one.
    fn remove_oldest(&mut self, count: usize, log_start: i64) -> Result<RetentionReport, LogError> {
        assert!(count < self.segments.len(), "the active segment stays");
        if log_start > self.log_start_offset {
            assert!(log_start <= self.recovery_point);
            let c = Checkpoint {
                recovery_point: self.recovery_point,
                log_start_offset: log_start,
            };
            // A failed replace left the old checkpoint whole: nothing changed, so the log
            // keeps taking writes and the caller reports the error.
            self.write_checkpoint(c)?;
            self.log_start_offset = log_start;
        }
        let doomed: Vec<i64> = self.segments.keys().take(count).copied().collect();
        let mut report = RetentionReport::default();
        for base in doomed {
            let segment = self.segments.remove(&base).expect("listed above");
            assert!(segment.next_offset <= self.log_start_offset);
            report.segments_deleted += 1;
            report.bytes_deleted += segment.size;
            // The data file first: indexes left behind by a crash are removed at open as
            // orphans, while a data file left without indexes would be scanned.
            for file in segment.files() {
                self.unflushed.remove(file);
                if let Err(e) = self.storage.remove(file) {
                    return Err(self.fail(e, "removing a segment past retention"));
                }
            }
        }
        if report.segments_deleted > 0 {
            let end = self.log_end_offset();
            let active = self.active().log_file.clone();
            let watermark = self.unflushed.entry(active).or_insert(end);
            *watermark = (*watermark).max(end);
        }
        report.log_start_offset = self.log_start_offset;
        self.check();
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
