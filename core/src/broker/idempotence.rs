//! Idempotent producers on the node: InitProducerId, the durable producer-id block, and
//! each partition's producer state rebuilt from its log at open. The checks themselves are
//! in `crate::producer`; produce.rs applies them to every batch with a producer id.
//!
//! # Producer ids survive restarts
//! Ids come from [`ProducerIdBlock`]: before handing out an id beyond the reserved block,
//! the node writes the new block end (+1000) to `producer-id-block` with
//! `Storage::replace`, which is durable on return; a restart resumes at the stored end, so
//! the at most 999 ids reserved but unused before a crash are skipped, never reused. The
//! file is also checked against the largest producer id found in the logs. A damaged file
//! stops the node from opening (ids could otherwise repeat and merge two producers'
//! sequences); a missing one means no id was ever handed out.
//!
//! # Producer state survives restarts
//! [`rebuild_producers`] starts from the newest usable producer snapshot (see
//! `log/snapshots.rs`) and replays the stored batch headers after it (headers only, 61 bytes
//! a batch), or replays the whole log when there is none. The node writes a snapshot when a
//! segment rolls and for every log at a clean shutdown (as Kafka does), so a clean restart
//! reads no batch at all and a crash restart only the segments written since the last roll.
//! A snapshot that does not decode is removed and the next older one (or the full walk)
//! used; one above the recovered log end describes a tail the crash took and is removed.
//! What recovery cut is forgotten with the batches, so a retry of a cut batch is appended
//! again, at its new offset, which is correct.
//!
//! # InitProducerId
//! - `transactional_id` set: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53), as FindCoordinator
//!   answers for a transactional id (broker/group.rs `refuse_transactions`). Keel has no
//!   transaction coordinator; 53 is fatal at once in librdkafka and the Java client, where
//!   a retriable code would keep the producer retrying for its whole timeout.
//! - producer id and epoch both -1: a new id, epoch 0.
//! - a producer id this node handed out with its epoch (v3+, KIP-360): the epoch is bumped;
//!   at [`MAX_PRODUCER_EPOCH`] a new id is handed out instead. A producer id this node never
//!   handed out gets a new id. Kafka itself gives a null-transactional-id producer a new id
//!   every time; bumping keeps the id and fences the previous epoch on every partition.
//! - exactly one of the two -1: INVALID_REQUEST.

use crate::api::{ConnId, InitProducerIdRequest, InitProducerIdResponse};
use crate::error::ErrorCode;
use crate::log::{LogError, PartitionLog};
use crate::node::{Node, OpenError};
use crate::producer::{
    ProducerIdBlock, ProducerStates, MAX_PRODUCERS_PER_PARTITION, MAX_PRODUCER_EPOCH,
    PRODUCER_ID_FILE,
};

/// Rebuilds a partition's producer state from its newest usable snapshot and the stored
/// batch headers after it; also returns that snapshot's offset.
pub(crate) fn rebuild_producers(
    log: &mut PartitionLog,
    planted: Option<crate::bugs::PlantedBug>,
) -> Result<(ProducerStates, Option<i64>), LogError> {
    let (mut states, snapshot) = match latest_snapshot(log) {
        Some((offset, states)) => (states, Some(offset)),
        None => (ProducerStates::default(), None),
    };
    if snapshot.is_some()
        && crate::bugs::active(
            planted,
            crate::bugs::PlantedBug::ProducerStateFromSnapshotOnly,
        )
    {
        return Ok((states, snapshot));
    }
    let from = snapshot.unwrap_or_else(|| log.log_start_offset());
    log.producer_batches_from(from, |b| states.replay(&b))?;
    Ok((states, snapshot))
}

/// The newest snapshot at or below the log end that decodes; snapshots found unusable on
/// the way are removed (a failure to remove one is only logged: it is tried again at the
/// next open).
fn latest_snapshot(log: &mut PartitionLog) -> Option<(i64, ProducerStates)> {
    let dir = log.dir().to_string();
    let offsets = match log.producer_snapshot_offsets() {
        Ok(offsets) => offsets,
        Err(e) => {
            tracing::warn!(%dir, error = %e, "cannot list producer snapshots; replaying the whole log");
            return None;
        }
    };
    let end = log.log_end_offset();
    for offset in offsets {
        let unusable = if offset > end {
            format!("it is above the log end {end}")
        } else {
            match log.read_producer_snapshot(offset) {
                Ok(Some(bytes)) => {
                    match ProducerStates::decode_snapshot(&bytes, MAX_PRODUCERS_PER_PARTITION) {
                        Ok((at, states)) if at == offset => return Some((offset, states)),
                        Ok((at, _)) => format!("it says offset {at}"),
                        Err(reason) => reason,
                    }
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%dir, offset, error = %e, "cannot read a producer snapshot");
                    continue;
                }
            }
        };
        tracing::warn!(%dir, offset, %unusable, "removing an unusable producer snapshot");
        if let Err(e) = log.remove_producer_snapshot(offset) {
            tracing::warn!(%dir, offset, error = %e, "cannot remove a producer snapshot");
        }
    }
    None
}

/// Writes a snapshot of `states` as of the log end, unless `last` already is one there;
/// returns the snapshot offset now on disk. A failure is logged and changes nothing.
pub(crate) fn snapshot_producers(
    log: &mut PartitionLog,
    states: &ProducerStates,
    last: Option<i64>,
) -> Option<i64> {
    let end = log.log_end_offset();
    // An empty log without producers has nothing to replay, snapshot or not: a clean stop
    // of a broker with 10,000 never-written partitions wrote (and fsynced) 10,000 of them.
    let nothing_to_keep = states.is_empty() && end == log.log_start_offset();
    if last == Some(end) || log.failure().is_some() || nothing_to_keep {
        return last;
    }
    match log.write_producer_snapshot(end, &states.encode_snapshot(end)) {
        Ok(()) => Some(end),
        Err(e) => {
            tracing::warn!(dir = %log.dir(), offset = end, error = %e, "cannot write a producer snapshot");
            last
        }
    }
}

impl Node {
    pub(crate) fn init_producer_id(
        &mut self,
        conn: ConnId,
        r: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let answer = |error_code, producer_id, producer_epoch| InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code,
            producer_id,
            producer_epoch,
        };
        if let Some(transactional_id) = &r.transactional_id {
            self.refuse_transactions(conn, transactional_id, "InitProducerId");
            return answer(ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
        }
        let bump = match (r.producer_id, r.producer_epoch) {
            (-1, -1) => None,
            (id, epoch) if id >= 0 && epoch >= 0 => {
                let ours = match &self.quorum {
                    // Any broker of the cluster may have handed it out.
                    Some(q) => id < q.image().next_producer_id,
                    None => id < self.producer_ids.next,
                };
                (ours && epoch < MAX_PRODUCER_EPOCH).then_some((id, epoch + 1))
            }
            (id, epoch) => {
                tracing::debug!(
                    producer_id = id,
                    producer_epoch = epoch,
                    "InitProducerId with an inconsistent producer id and epoch"
                );
                return answer(ErrorCode::INVALID_REQUEST, -1, -1);
            }
        };
        if let Some((id, epoch)) = bump {
            return answer(ErrorCode::NONE, id, epoch);
        }
        if self.quorum.is_some() {
            return match self.cluster_producer_id() {
                Some(id) => answer(ErrorCode::NONE, id, 0),
                // Retriable: the block is on its way from the controller.
                None => answer(ErrorCode::COORDINATOR_NOT_AVAILABLE, -1, -1),
            };
        }
        match self.allocate_producer_id() {
            Ok(id) => answer(ErrorCode::NONE, id, 0),
            Err(e) => {
                if let Some(held_back) =
                    self.throttle
                        .borrow_mut()
                        .allow("producer-ids", "", self.now)
                {
                    tracing::error!(error = %e, held_back, "could not persist a producer id block");
                }
                answer(ErrorCode::COORDINATOR_NOT_AVAILABLE, -1, -1)
            }
        }
    }

    /// A producer id never handed out before, not even before a restart.
    fn allocate_producer_id(&mut self) -> std::io::Result<i64> {
        if let Some(id) = self.producer_ids.take() {
            return Ok(id);
        }
        let end = self.producer_ids.next_block_end();
        self.storage
            .replace(PRODUCER_ID_FILE, &ProducerIdBlock::encode(end))?;
        self.producer_ids.extend(end);
        Ok(self
            .producer_ids
            .take()
            .expect("a freshly reserved block has ids"))
    }

    /// At open, after the partitions: resumes producer ids past the stored block end and
    /// past every producer id found in the logs.
    /// The block end the producer-id file records (0 without one): no id at or above it
    /// was handed out by this single node.
    pub(crate) fn stored_producer_id_block_end(&self) -> Result<i64, OpenError> {
        match self.storage.len(PRODUCER_ID_FILE)? {
            None => Ok(0),
            Some(len) => {
                let bytes = self.storage.read_at(PRODUCER_ID_FILE, 0, len as usize)?;
                ProducerIdBlock::decode(&bytes).map_err(|reason| OpenError::Metadata {
                    file: PRODUCER_ID_FILE.to_string(),
                    reason,
                })
            }
        }
    }

    pub(crate) fn load_producer_ids(&mut self) -> Result<(), OpenError> {
        if self.quorum.is_some() {
            // A cluster broker takes its blocks from the controller (node/cluster.rs).
            self.producer_ids = ProducerIdBlock::default();
            return Ok(());
        }
        let stored = self.stored_producer_id_block_end()?;
        let seen = self
            .partitions
            .values()
            .filter_map(|p| p.producers.max_producer_id())
            .max()
            .map_or(0, |id| id + 1);
        if seen > stored {
            tracing::warn!(
                stored,
                seen,
                "the logs hold producer ids past the stored block end"
            );
        }
        self.producer_ids = ProducerIdBlock::resume(stored.max(seen));
        Ok(())
    }
}
