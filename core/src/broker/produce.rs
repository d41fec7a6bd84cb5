//! Produce: validate each partition's batch as a Kafka broker must, recompress it when the
//! topic's compression.type names a codec, append it, and answer at once (acks=0/1) or once
//! the write is durable (acks=-1). A refused batch says which records were bad (KIP-467).

use super::{PartitionKey, PendingProduce, WriteClass};
use crate::api::{
    ConnId, ProducePartitionResponse, ProduceRequest, ProduceResponse, ProduceTopicResponse,
    RecordError, RequestId, Response,
};
use crate::bugs::PlantedBug;
use crate::error::ErrorCode;
use crate::ids::{Offset, PartitionId};
use crate::node::{Node, WaitId, MAX_PARKED_PRODUCES};
use crate::partition::{AppendFailure, Waiter};
use crate::producer::{ProducedBatch, Verdict};
use crate::record::{validate_produced_batch, BatchError, BatchHeader};
use std::collections::BTreeSet;
use std::time::Duration;

/// In-sync replicas of every partition: a single node is each partition's only replica.
const IN_SYNC_REPLICAS: i64 = 1;

impl Node {
    pub(crate) fn produce(&mut self, conn: ConnId, id: RequestId, request: ProduceRequest) {
        let acks = request.acks;
        let valid_acks = (-1..=1).contains(&acks);
        let mut response = ProduceResponse::default();
        let mut outstanding = BTreeSet::new();
        let wait = self.next_wait_id;
        let too_many_waits = self.produce_waits.len() >= MAX_PARKED_PRODUCES;
        for (t, topic) in request.topics.into_iter().enumerate() {
            let mut topic_response = ProduceTopicResponse {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            for (i, partition) in topic.partitions.into_iter().enumerate() {
                let index = partition.partition_index;
                let result = if !valid_acks {
                    ProducePartitionResponse::error(index, ErrorCode::INVALID_REQUIRED_ACKS, None)
                } else if request.transactional_id.is_some() {
                    ProducePartitionResponse::error(
                        index,
                        ErrorCode::INVALID_REQUEST,
                        Some(super::group::TRANSACTIONS_UNSUPPORTED.into()),
                    )
                } else if topic.name == crate::group::OFFSETS_TOPIC {
                    // Kafka's ReplicaManager refuses client writes to internal topics; the
                    // group coordinator appends there directly (broker/group.rs).
                    ProducePartitionResponse::error(
                        index,
                        ErrorCode::INVALID_TOPIC_EXCEPTION,
                        Some(format!("Cannot append to internal topic {}", topic.name)),
                    )
                } else if acks == -1 && too_many_waits {
                    ProducePartitionResponse::error(
                        index,
                        ErrorCode::REQUEST_TIMED_OUT,
                        Some("too many writes are waiting for durability".into()),
                    )
                } else {
                    let key = (topic.name.clone(), index);
                    // Resolved once: the append and the wait for durability use it.
                    let id = self.partition_id(&key.0, key.1);
                    let r = self.append_partition(&key, id, acks, partition.records.as_ref());
                    if r.error_code.is_ok()
                        && acks == -1
                        && !self.planted(PlantedBug::AckBeforeFlush)
                    {
                        let needed = r.base_offset_end;
                        // A duplicate may name a batch that is already durable (answer now) or
                        // one still waiting behind later writes.
                        if let Some(p) = id.and_then(|id| self.partitions.get_mut(&id)) {
                            if p.wait_for(Offset(needed), Waiter::Produce(wait)) {
                                outstanding.insert((t, i));
                            }
                        }
                    }
                    r.response
                };
                topic_response.partitions.push(result);
            }
            response.topics.push(topic_response);
        }
        if outstanding.is_empty() {
            self.respond(conn, id, Response::Produce(response));
            return;
        }
        let wait_id: WaitId = self.next_wait_id();
        debug_assert_eq!(wait_id, wait);
        let timeout_ms = request.timeout_ms.max(0) as u64;
        let deadline = self.now + Duration::from_millis(timeout_ms);
        self.timers
            .set(crate::node::NodeTimer::Parked(wait_id), deadline);
        self.produce_waits.insert(
            wait_id,
            PendingProduce {
                conn,
                id,
                response,
                outstanding,
            },
        );
    }

    /// One partition's write became durable (or failed): answer the produce once all of its
    /// partitions are settled.
    pub(crate) fn release_ack(&mut self, wait: WaitId, key: &PartitionKey, error: ErrorCode) {
        let Some(p) = self.produce_waits.get_mut(&wait) else {
            return;
        };
        let done: Vec<(usize, usize)> = p
            .outstanding
            .iter()
            .copied()
            .filter(|&(t, i)| {
                p.response.topics[t].name == key.0
                    && p.response.topics[t].partitions[i].partition_index == key.1
            })
            .collect();
        for (t, i) in done {
            p.outstanding.remove(&(t, i));
            if !error.is_ok() {
                let part = &mut p.response.topics[t].partitions[i];
                part.error_code = error;
                part.error_message = Some("the write could not be made durable".into());
            }
        }
        if p.outstanding.is_empty() {
            if let Some(p) = self.produce_waits.remove(&wait) {
                self.timers.cancel(&crate::node::NodeTimer::Parked(wait));
                self.respond(p.conn, p.id, Response::Produce(p.response));
            }
        }
    }

    fn append_partition(
        &mut self,
        key: &PartitionKey,
        id: Option<PartitionId>,
        acks: i16,
        records: Option<&bytes::Bytes>,
    ) -> AppendOutcome {
        let index = key.1;
        let fail = |code: ErrorCode, msg: String| AppendOutcome {
            error_code: code,
            base_offset_end: -1,
            response: ProducePartitionResponse::error(index, code, Some(msg)),
        };
        let found = id.and_then(|id| Some((id, self.partitions.get_mut(&id)?)));
        let Some((id, p)) = found else {
            return fail(
                self.missing_partition_error(&key.0, key.1),
                format!(
                    "This server does not host this topic-partition: {}-{}",
                    key.0, key.1
                ),
            );
        };
        if let Some(reason) = p.failure() {
            return fail(ErrorCode::KAFKA_STORAGE_ERROR, reason.to_string());
        }
        // Kafka refuses an acks=all write before appending it when the partition has fewer
        // in-sync replicas than min.insync.replicas; this node is each partition's only one.
        if acks == -1 && p.limits.min_insync_replicas > IN_SYNC_REPLICAS {
            return fail(
                ErrorCode::NOT_ENOUGH_REPLICAS,
                format!(
                    "The size of the current ISR ({IN_SYNC_REPLICAS}) is insufficient to satisfy the min.isr requirement of {} for partition {}-{}",
                    p.limits.min_insync_replicas, key.0, key.1
                ),
            );
        }
        let Some(records) = records else {
            return fail(
                ErrorCode::INVALID_RECORD,
                "a produce must carry a record batch".into(),
            );
        };
        if records.len() > p.limits.max_message_bytes {
            return fail(
                ErrorCode::MESSAGE_TOO_LARGE,
                format!(
                    "the batch of {} bytes exceeds max.message.bytes {}",
                    records.len(),
                    p.limits.max_message_bytes
                ),
            );
        }
        let header = match validate_produced_batch(records) {
            Ok(h) => h,
            Err(e) => return fail(batch_error_code(records, &e), e.to_string()),
        };
        let now_ms = self.now.as_millis();
        if !header.is_log_append_time()
            && header.max_timestamp() > now_ms.saturating_add(p.limits.timestamp_after_max_ms)
        {
            return fail(
                ErrorCode::INVALID_TIMESTAMP,
                format!(
                    "timestamp {} is more than message.timestamp.after.max.ms={} after the broker's time {now_ms}",
                    header.max_timestamp(),
                    p.limits.timestamp_after_max_ms
                ),
            );
        }
        if header.is_log_append_time() {
            return fail(
                ErrorCode::INVALID_TIMESTAMP,
                "a producer may not set the LogAppendTime attribute".into(),
            );
        }
        if p.log.config().compacted {
            match crate::log::keyless_records(records) {
                Ok(keyless) if keyless.is_empty() => {}
                Ok(keyless) => return keyless_refusal(index, key, &keyless),
                Err(e) => return fail(ErrorCode::CORRUPT_MESSAGE, e),
            }
        }
        let producer = (header.producer_id() >= 0).then(|| ProducedBatch {
            producer_id: header.producer_id(),
            epoch: header.producer_epoch(),
            first_seq: header.base_sequence(),
            last_offset_delta: header.last_offset_delta(),
        });
        if let Some(b) = &producer {
            match p.producers.check(b) {
                Verdict::Append => {}
                Verdict::Duplicate {
                    base_offset,
                    last_offset,
                } => {
                    tracing::debug!(topic = %key.0, partition = key.1, producer_id = b.producer_id, base_offset, "duplicate batch not appended");
                    return AppendOutcome {
                        error_code: ErrorCode::NONE,
                        base_offset_end: last_offset + 1,
                        response: ProducePartitionResponse {
                            partition_index: index,
                            error_code: ErrorCode::NONE,
                            base_offset,
                            log_append_time_ms: -1,
                            log_start_offset: p.log.log_start_offset(),
                            error_message: None,
                            record_errors: Vec::new(),
                        },
                    };
                }
                Verdict::Reject { error, message } => return fail(error, message),
            }
        }
        // compression.type other than producer: store the batch in the topic's codec, as
        // Kafka's LogValidator does; a batch already in it is stored as sent.
        let recompressed = match p.limits.recompression {
            None => None,
            Some(to) => match crate::compression::recompress_batch(records, to, MAX_INFLATED_BYTES)
            {
                Ok(rebuilt) => rebuilt.map(bytes::Bytes::from),
                Err(e) => return fail(recompress_error_code(&e), e.to_string()),
            },
        };
        if let Some(rebuilt) = &recompressed {
            // Kafka checks max.message.bytes again on the batch it rebuilt.
            if rebuilt.len() > p.limits.max_message_bytes {
                return fail(
                    ErrorCode::MESSAGE_TOO_LARGE,
                    format!(
                        "the batch recompressed to compression.type is {} bytes, over max.message.bytes {}",
                        rebuilt.len(),
                        p.limits.max_message_bytes
                    ),
                );
            }
        }
        let records = recompressed.as_ref().unwrap_or(records);
        // Below the free-space floor, or on a log stopped by ENOSPC, nothing new is written
        // (broker/disk.rs); a duplicate, answered above, writes nothing and still gets its
        // answer. The refused sequences may be skipped by the producer's next batch.
        let no_space = match p.out_of_space() {
            Some(reason) => Some(crate::partition::disk_full(&reason)),
            None => (!self.disk.admits(WriteClass::Data)).then(|| self.disk.refusal()),
        };
        if let Some(reason) = no_space {
            if let Some(b) = &producer {
                p.producers.refused(b);
            }
            return fail(super::disk::NO_SPACE, reason);
        }
        match p.append_produced(records, now_ms, producer.as_ref()) {
            Ok(info) => {
                let transition = self.disk.on_written(records.len() as u64);
                super::disk::log_transition(&self.disk, transition);
                if crate::bugs::active(
                    self.config.planted_bug,
                    PlantedBug::HighWatermarkPastFlushed,
                ) {
                    p.high_watermark = Offset(p.log.log_end_offset());
                }
                let log_start = p.log.log_start_offset();
                self.partitions.mark_dirty(id);
                AppendOutcome {
                    error_code: ErrorCode::NONE,
                    base_offset_end: info.last_offset + 1,
                    response: ProducePartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode::NONE,
                        base_offset: info.base_offset,
                        log_append_time_ms: info.log_append_time_ms,
                        log_start_offset: log_start,
                        error_message: None,
                        record_errors: Vec::new(),
                    },
                }
            }
            Err(AppendFailure::OutOfSpace { error, reason }) => {
                if let Some(held_back) =
                    self.throttle.borrow_mut().allow("enospc", &key.0, self.now)
                {
                    tracing::warn!(topic = %key.0, partition = key.1, %error, held_back, "the disk is full: the log takes no writes until space is freed, then reopens");
                }
                // This batch may be partly on disk (the log cuts it, but a crash before
                // that cut is durable could bring it back): retriable, not a refusal. The
                // retry meets the stopped log and is refused without writing anything.
                fail(ErrorCode::KAFKA_STORAGE_ERROR, reason)
            }
            Err(AppendFailure::Failed(error)) => {
                tracing::error!(topic = %key.0, partition = key.1, %error, "append failed; the log takes no more writes");
                fail(ErrorCode::KAFKA_STORAGE_ERROR, error.to_string())
            }
        }
    }
}

/// The most a produced batch may inflate to when the broker recompresses it: Kafka's
/// `message.max.bytes` default is about 1 MiB, and records compress rarely beyond 64:1.
const MAX_INFLATED_BYTES: usize = 64 << 20;

/// A batch with keyless records for a compacted topic: INVALID_RECORD with one record error
/// per keyless record and Kafka's summary as the message (LogValidator `validateKey` and
/// `processRecordErrors`, KIP-467).
fn keyless_refusal(index: i32, key: &PartitionKey, keyless: &[usize]) -> AppendOutcome {
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {}-{}.",
        key.0, key.1
    );
    let record_errors: Vec<RecordError> = keyless
        .iter()
        .map(|&i| RecordError {
            batch_index: i32::try_from(i).expect("a batch's record index fits its i32 count"),
            message: Some(message.clone()),
        })
        .collect();
    let shown: Vec<String> = record_errors
        .iter()
        .take(3)
        .map(|e| {
            format!(
                "RecordError(batchIndex={}, message='{message}')",
                e.batch_index
            )
        })
        .collect();
    let summary = format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        record_errors.len(),
        shown.join(", ")
    );
    let mut response =
        ProducePartitionResponse::error(index, ErrorCode::INVALID_RECORD, Some(summary));
    response.record_errors = record_errors;
    AppendOutcome {
        error_code: ErrorCode::INVALID_RECORD,
        base_offset_end: -1,
        response,
    }
}

/// A batch that could not be recompressed is the producer's fault.
fn recompress_error_code(e: &crate::compression::RecompressError) -> ErrorCode {
    use crate::compression::RecompressError;
    match e {
        RecompressError::Decompress(_) => ErrorCode::CORRUPT_MESSAGE,
        RecompressError::Records(_) => ErrorCode::INVALID_RECORD,
        RecompressError::TooLarge => ErrorCode::MESSAGE_TOO_LARGE,
    }
}

struct AppendOutcome {
    error_code: ErrorCode,
    /// The offset after the appended batch: what must be durable before acks=-1 is answered.
    base_offset_end: i64,
    response: ProducePartitionResponse,
}

/// Kafka's answer to each way a produced batch can be wrong (KAFKA.md §4).
fn batch_error_code(records: &[u8], e: &BatchError) -> ErrorCode {
    match e {
        BatchError::BadLength { .. } => {
            // A valid first batch followed by more bytes: Produce v3+ allows exactly one batch.
            let more_than_one = BatchHeader::new(records)
                .map(|h| {
                    h.total_len() >= crate::record::HEADER_LEN as i64
                        && (h.total_len() as usize) < records.len()
                })
                .unwrap_or(false);
            if more_than_one {
                ErrorCode::INVALID_RECORD
            } else {
                ErrorCode::CORRUPT_MESSAGE
            }
        }
        BatchError::BadCrc { .. } => ErrorCode::CORRUPT_MESSAGE,
        BatchError::BadMagic(_) => ErrorCode::INVALID_RECORD,
        BatchError::Invalid(_) => ErrorCode::INVALID_RECORD,
    }
}
