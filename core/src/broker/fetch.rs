//! Fetch: serve stored batches up to the high watermark, exactly as stored, and park a fetch
//! that found fewer than min_bytes until more data is durable or max_wait_ms passes. A
//! fetch's session (fetch_session.rs) decides what is read and what the answer lists.

use super::PendingFetch;
use crate::api::{
    ConnId, FetchPartitionResponse, FetchRequest, FetchResponse, FetchTopicResponse, RequestId,
    Response,
};
use crate::error::ErrorCode;
use crate::ids::{Offset, PartitionId};
use crate::log::LogError;
use crate::node::{Node, WaitId, MAX_PARKED_FETCHES};
use crate::partition::Waiter;
use bytes::Bytes;
use std::time::Duration;

impl Node {
    pub(crate) fn fetch(&mut self, conn: ConnId, id: RequestId, request: FetchRequest) {
        let (request, session) = match self
            .fetch_sessions
            .resolve(request, self.now, &mut self.rng)
        {
            Ok(resolved) => resolved,
            Err(code) => {
                let response = FetchResponse {
                    error_code: code,
                    ..FetchResponse::default()
                };
                self.respond(conn, id, Response::Fetch(response));
                return;
            }
        };
        let (response, bytes, any_error) = self.read_fetch(&request);
        let min_bytes = request.min_bytes.max(0) as usize;
        let wait_ms = request.max_wait_ms.max(0) as u64;
        if bytes >= min_bytes
            || any_error
            || wait_ms == 0
            || self.fetch_waits.len() >= MAX_PARKED_FETCHES
        {
            let response = self.fetch_sessions.answer(session, response);
            self.respond(conn, id, Response::Fetch(response));
            return;
        }
        let wait = self.next_wait_id();
        let deadline = self.now + Duration::from_millis(wait_ms);
        // Woken when any of its partitions commits past what this read saw. A partition
        // that does not exist yet answers at the deadline.
        for topic in &request.topics {
            for fp in &topic.partitions {
                if let Some(p) = self.partition_named_mut(&topic.name, fp.partition_index) {
                    let seen = Offset(fp.fetch_offset).max(p.high_watermark);
                    p.wait_for(seen.next(), Waiter::Fetch(wait));
                }
            }
        }
        self.timers
            .set(crate::node::NodeTimer::Parked(wait), deadline);
        self.fetch_waits.insert(
            wait,
            PendingFetch {
                conn,
                id,
                request,
                session,
            },
        );
    }

    /// Partition `key` committed past what parked fetch `wait` last saw of it: answer the
    /// fetch if it now has enough, or park it again on this partition.
    pub(crate) fn wake_fetch(&mut self, wait: WaitId, key: PartitionId) {
        let Some(f) = self.fetch_waits.get(&wait) else {
            return;
        };
        let min_bytes = f.request.min_bytes.max(0) as usize;
        let (response, bytes, any_error) = self.read_fetch(&f.request);
        if bytes >= min_bytes || any_error {
            if let Some(f) = self.remove_fetch_wait(wait) {
                let response = self.fetch_sessions.answer(f.session, response);
                self.respond(f.conn, f.id, Response::Fetch(response));
            }
        } else if let Some(p) = self.partitions.get_mut(&key) {
            let next = p.high_watermark.next();
            p.wait_for(next, Waiter::Fetch(wait));
        }
    }

    /// Answers a parked fetch with whatever is there now.
    pub(crate) fn complete_fetch(&mut self, wait: WaitId) {
        let Some(f) = self.remove_fetch_wait(wait) else {
            return;
        };
        let (response, _, _) = self.read_fetch(&f.request);
        let response = self.fetch_sessions.answer(f.session, response);
        self.respond(f.conn, f.id, Response::Fetch(response));
    }

    pub(crate) fn remove_fetch_wait(&mut self, wait: WaitId) -> Option<PendingFetch> {
        let f = self.fetch_waits.remove(&wait)?;
        self.timers.cancel(&crate::node::NodeTimer::Parked(wait));
        for topic in &f.request.topics {
            for fp in &topic.partitions {
                if let Some(p) = self.partition_named_mut(&topic.name, fp.partition_index) {
                    p.waiters.remove(Waiter::Fetch(wait));
                }
            }
        }
        Some(f)
    }

    /// Reads what a fetch asks for: returns the response, the record bytes in it, and whether
    /// any partition carries an error (which answers the fetch at once, as Kafka does).
    ///
    /// Limits: `partition_max_bytes` per partition and `max_bytes` overall, except that the
    /// first batch of the first partition with data is returned whole even if it is larger
    /// (KIP-74), so a consumer can always make progress.
    fn read_fetch(&self, request: &FetchRequest) -> (FetchResponse, usize, bool) {
        let mut response = FetchResponse::default();
        let mut remaining = if request.max_bytes <= 0 {
            i32::MAX as usize
        } else {
            request.max_bytes as usize
        };
        let mut total = 0usize;
        let mut any_error = false;
        for topic in &request.topics {
            let mut topic_response = FetchTopicResponse {
                name: topic.name.clone(),
                partitions: Vec::new(),
            };
            // The topic's id once per topic, not once per partition.
            let topic_id = self.metadata.topics.get(&topic.name).map(|t| t.id);
            for fp in &topic.partitions {
                let mut out = FetchPartitionResponse {
                    partition_index: fp.partition_index,
                    error_code: ErrorCode::NONE,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    records: Bytes::new(),
                };
                let id = topic_id.map(|topic| PartitionId {
                    topic,
                    index: fp.partition_index,
                });
                match id.and_then(|id| self.partitions.get(&id)) {
                    None => {
                        out.error_code =
                            self.missing_partition_error(&topic.name, fp.partition_index)
                    }
                    Some(p) => {
                        let hw = p.high_watermark.0;
                        out.high_watermark = hw;
                        let planted = crate::bugs::active(
                            self.config.planted_bug,
                            crate::bugs::PlantedBug::FetchBeyondHighWatermark,
                        );
                        let serve_upto = if planted { p.log.log_end_offset() } else { hw };
                        out.last_stable_offset = hw;
                        out.log_start_offset = p.log.log_start_offset();
                        if let Some(code) =
                            leader_epoch_error(fp.current_leader_epoch, p.leader_epoch.0)
                        {
                            out.error_code = code;
                        } else if fp.fetch_offset < p.log.log_start_offset()
                            || fp.fetch_offset > p.log.log_end_offset()
                        {
                            out.error_code = ErrorCode::OFFSET_OUT_OF_RANGE;
                        } else if fp.fetch_offset < serve_upto {
                            let limit = remaining.min(fp.partition_max_bytes.max(0) as usize);
                            let first = total == 0;
                            if limit > 0 || first {
                                match p.log.read(fp.fetch_offset, limit, serve_upto) {
                                    // Past the first partition with data, a batch that does not
                                    // fit waits for the next fetch.
                                    Ok(bytes) if first || bytes.len() <= limit => {
                                        remaining = remaining.saturating_sub(bytes.len());
                                        total += bytes.len();
                                        out.records = bytes;
                                    }
                                    Ok(_) => {}
                                    Err(LogError::OffsetOutOfRange { .. }) => {
                                        out.error_code = ErrorCode::OFFSET_OUT_OF_RANGE
                                    }
                                    Err(e) => {
                                        if let Some(held_back) = self.throttle.borrow_mut().allow(
                                            "fetch-read",
                                            &topic.name,
                                            self.now,
                                        ) {
                                            tracing::error!(topic = %topic.name, partition = fp.partition_index, error = %e, held_back, "fetch read failed");
                                        }
                                        out.error_code = ErrorCode::KAFKA_STORAGE_ERROR;
                                    }
                                }
                            }
                        }
                    }
                }
                any_error |= !out.error_code.is_ok();
                topic_response.partitions.push(out);
            }
            response.topics.push(topic_response);
        }
        (response, total, any_error)
    }
}

/// KIP-320 fencing: a client naming a later epoch than ours knows of a leader we do not
/// (UNKNOWN_LEADER_EPOCH); an earlier one is stale (FENCED_LEADER_EPOCH); -1 means "don't
/// check".
pub(crate) fn leader_epoch_error(requested: i32, ours: i32) -> Option<ErrorCode> {
    match requested {
        e if e < 0 => None,
        e if e > ours => Some(ErrorCode::UNKNOWN_LEADER_EPOCH),
        e if e < ours => Some(ErrorCode::FENCED_LEADER_EPOCH),
        _ => None,
    }
}
