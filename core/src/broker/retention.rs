//! Retention on the node: the timer that runs a retention pass over every partition log
//! (Kafka's `log.retention.check.interval.ms`), and DeleteRecords (key 21). What a pass
//! deletes and how the log start offset is kept is `log/retention.rs`; this file owns when
//! it runs, against which bound (the high watermark), and the Kafka answers.
//!
//! Time comes only from the node's `now`: record timestamps are compared with
//! `now.as_millis()`, which the driver anchors to the wall clock (`time.rs`).
//!
//! Segment removals are directory changes: after a pass or a DeleteRecords that removed
//! files, the partition is marked dirty so the next Flush syncs its directory. The new log
//! start offset itself is durable before anything is removed or answered (the log's
//! checkpoint is written with `Storage::replace`).

use crate::api::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult, DELETE_RECORDS_HIGH_WATERMARK,
};
use crate::error::ErrorCode;
use crate::log::LogError;
use crate::node::Node;
use crate::partition::Partition;
use crate::time::Instant;
use std::time::Duration;

impl Node {
    pub(crate) fn retention_deadline(&self) -> Instant {
        let interval = self.config.log_retention_check_interval_ms.max(1);
        self.now + Duration::from_millis(interval)
    }

    /// Whether the retention timer needs a wake-up: only while some log could lose a
    /// segment (so a node with nothing stored sleeps).
    pub(crate) fn retention_wanted(&self) -> bool {
        self.partitions.values().any(retention_candidate)
    }

    /// One retention pass over every partition, bounded by its high watermark. Failures
    /// are logged; a storage failure also put the log in its failed state, which produce
    /// reports.
    pub(crate) fn run_retention(&mut self) {
        let now_ms = self.now.as_millis();
        let mut removed = Vec::new();
        for p in self.partitions.values_mut() {
            if !retention_candidate(p) {
                continue;
            }
            let key = p.id;
            match p.log.apply_retention(now_ms, p.high_watermark.0) {
                Ok(report) if report.segments_deleted > 0 => {
                    tracing::info!(topic = %p.topic, partition = key.index, ?report, "retention");
                    // The directory's entries changed: its next flush makes that durable.
                    removed.push(key);
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(held_back) =
                        self.throttle
                            .borrow_mut()
                            .allow("retention", &p.topic, self.now)
                    {
                        tracing::warn!(topic = %p.topic, partition = key.index, error = %e, held_back, "retention failed");
                    }
                }
            }
        }
        for key in removed {
            self.partitions.mark_dirty(key);
        }
    }

    /// DeleteRecords: per partition, moves the log start offset to `offset` (-1: the high
    /// watermark), as Kafka's `Partition.deleteRecordsOnLeader` does. Errors: an unknown
    /// partition (UNKNOWN_TOPIC_OR_PARTITION), a topic without `cleanup.policy=delete`
    /// (POLICY_VIOLATION), an offset below -1 or above the high watermark
    /// (OFFSET_OUT_OF_RANGE), a failed log (KAFKA_STORAGE_ERROR). The answer's low watermark
    /// is the new log start offset, already durable: with one replica there is nothing to
    /// wait for, so `timeout_ms` is not needed.
    pub(crate) fn delete_records(
        &mut self,
        request: DeleteRecordsRequest,
    ) -> DeleteRecordsResponse {
        let mut response = DeleteRecordsResponse::default();
        for topic in request.topics {
            let mut topic_result = DeleteRecordsTopicResult {
                name: topic.name.clone(),
                partitions: Vec::with_capacity(topic.partitions.len()),
            };
            for dp in topic.partitions {
                let key = self.partition_id(&topic.name, dp.partition_index);
                let outcome = match key.and_then(|key| self.partitions.get_mut(&key)) {
                    None => Err(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                    Some(p) => delete_records_in(p, dp.offset),
                };
                let (low_watermark, error_code) = match outcome {
                    Ok((start, removed)) => {
                        if removed {
                            // Some: only a known partition answers Ok.
                            if let Some(key) = key {
                                self.partitions.mark_dirty(key);
                            }
                        }
                        (start, ErrorCode::NONE)
                    }
                    Err(code) => (-1, code),
                };
                topic_result.partitions.push(DeleteRecordsPartitionResult {
                    partition_index: dp.partition_index,
                    low_watermark,
                    error_code,
                });
            }
            response.topics.push(topic_result);
        }
        response
    }
}

/// Whether a retention pass could remove anything from `p`: a healthy log with data, or
/// with segments wholly below its log start offset (which even compacted logs drop).
fn retention_candidate(p: &Partition) -> bool {
    let log = &p.log;
    !p.is_failed()
        && log.failure().is_none()
        && (log.segment_count() > 1
            || (log.config().cleanup_delete && log.log_end_offset() > log.log_start_offset()))
}

/// One partition of a DeleteRecords: the new log start offset and whether files went.
fn delete_records_in(p: &mut Partition, offset: i64) -> Result<(i64, bool), ErrorCode> {
    if p.is_failed() || p.log.failure().is_some() {
        return Err(ErrorCode::KAFKA_STORAGE_ERROR);
    }
    if !p.log.config().cleanup_delete {
        return Err(ErrorCode::POLICY_VIOLATION);
    }
    let hw = p.high_watermark.0;
    let offset = match offset {
        DELETE_RECORDS_HIGH_WATERMARK => hw,
        o if o < 0 || o > hw => return Err(ErrorCode::OFFSET_OUT_OF_RANGE),
        o => o,
    };
    match p.log.advance_log_start(offset) {
        Ok(report) => Ok((report.log_start_offset, report.segments_deleted > 0)),
        // The high watermark never passes the recovery point, so this is not expected;
        // answered as Kafka would answer an offset it cannot take.
        Err(LogError::OffsetOutOfRange { .. }) => Err(ErrorCode::OFFSET_OUT_OF_RANGE),
        Err(e) => {
            tracing::error!(dir = %p.log.dir(), error = %e, "DeleteRecords failed");
            Err(ErrorCode::KAFKA_STORAGE_ERROR)
        }
    }
}
