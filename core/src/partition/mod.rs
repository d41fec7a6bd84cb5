//! `partition`: one replica of one partition on this node. It owns the log, the high
//! watermark, the idempotent producers' state, whether the log still takes writes, and the
//! writes waiting for it to be durable; the broker's handlers (broker/produce.rs, the
//! offsets writes of broker/group.rs, broker/fetch.rs) decide *what* to write and answer,
//! and call it to append, to flush and to learn what a flush released.
//!
//! A single node is each partition's leader and only replica, so here "committed" is
//! "flushed": the high watermark is the durable offset, and the leader epoch is fixed until
//! replication brings elections (issue 13), when this module gains the partition's Raft
//! group and the high watermark becomes its commit index.

use crate::ids::{LeaderEpoch, Offset, PartitionId};
use crate::log::{AppendInfo, LogError, PartitionLog};
use crate::metadata::TopicMeta;
use crate::node::NodeConfig;
use crate::node::WaitId;
use crate::producer::{ProducedBatch, ProducerStates};
use std::collections::{BTreeMap, BTreeSet};
use std::io;

mod table;
pub use table::{PartitionTable, CHECK_WINDOW};

/// Identifies one open partition log for the lifetime of a node run, so that a `Flushed`
/// that arrives after its topic was deleted (and maybe re-created) finds nothing to release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId(pub u64);

/// The leader epoch of every partition on a single node, stamped into stored batches and
/// answered in Metadata, ListOffsets and fetch validation.
pub const SINGLE_NODE_LEADER_EPOCH: LeaderEpoch = LeaderEpoch(0);

/// Whether a partition takes writes is its log's health: held once, in the log.
pub use crate::log::Health;

/// A topic's settings that Produce enforces, from its own configs over the node's defaults;
/// taken when a log opens and again whenever the topic's configs change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProduceLimits {
    pub max_message_bytes: usize,
    pub timestamp_after_max_ms: i64,
    /// In-sync replicas an acks=-1 write needs; a single node is its partitions' only one.
    pub min_insync_replicas: i64,
    /// compression.type: the codec produced batches are stored in; `None` for `producer`.
    pub recompression: Option<crate::compression::Recompression>,
}

impl ProduceLimits {
    pub fn of(config: &NodeConfig, topic: &TopicMeta) -> Self {
        let configs = &topic.configs;
        ProduceLimits {
            max_message_bytes: crate::config::int_config(
                configs,
                "max.message.bytes",
                config.max_message_bytes as i64,
            )
            .max(0) as usize,
            timestamp_after_max_ms: crate::config::int_config(
                configs,
                "message.timestamp.after.max.ms",
                config.timestamp_after_max_ms,
            ),
            min_insync_replicas: crate::config::int_config(configs, "min.insync.replicas", 1),
            recompression: crate::compression::Recompression::of(configs),
        }
    }
}

/// A partition log as opened from storage, with the producer state rebuilt from it.
pub struct LoadedLog {
    pub log: PartitionLog,
    pub producers: ProducerStates,
    pub producer_snapshot: Option<i64>,
}

/// Why an append failed; the partition's [`Health`] already says what it means for later
/// writes.
#[derive(Debug)]
pub enum AppendFailure {
    /// Out of space: the batch may be partly on disk until the log's cut is durable, so the
    /// caller answers it as retriable; later writes are refused until the log reopens.
    OutOfSpace { error: LogError, reason: String },
    /// Any other storage error: the log takes no more writes.
    Failed(LogError),
}

/// Something parked on a partition until its high watermark reaches an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Waiter {
    /// An acks=-1 produce, until its batch is committed.
    Produce(WaitId),
    /// A fetch short of min_bytes, until more than it saw is committed.
    Fetch(WaitId),
    /// A write to `__consumer_offsets` (an offset commit, a group's membership), until it
    /// is committed; the group coordinator holds what to apply and answer then.
    OffsetsWrite(WaitId),
}

/// One partition's waiters, keyed by the high watermark each needs: the one queue that
/// produce acknowledgements, parked fetches and the offsets topic's writes share. On a
/// single node the high watermark is the flushed offset; with replication it becomes the
/// commit index, and the waiters stay as they are.
#[derive(Debug, Default)]
pub struct Waiters {
    by_offset: BTreeSet<(Offset, Waiter)>,
    offset_of: BTreeMap<Waiter, Offset>,
}

impl Waiters {
    /// Parks `waiter` until the high watermark is at least `offset` (again: moved).
    pub fn add(&mut self, offset: Offset, waiter: Waiter) {
        self.remove(waiter);
        self.by_offset.insert((offset, waiter));
        self.offset_of.insert(waiter, offset);
    }

    pub fn remove(&mut self, waiter: Waiter) -> bool {
        match self.offset_of.remove(&waiter) {
            Some(offset) => self.by_offset.remove(&(offset, waiter)),
            None => false,
        }
    }

    /// Removes and returns, in offset order, every waiter the high watermark `hw` satisfies.
    pub fn release(&mut self, hw: Offset) -> Vec<Waiter> {
        let mut released = Vec::new();
        while let Some(&(offset, waiter)) = self.by_offset.first() {
            if offset > hw {
                break;
            }
            self.by_offset.pop_first();
            self.offset_of.remove(&waiter);
            released.push(waiter);
        }
        released
    }

    /// Removes and returns every waiter, in offset order.
    pub fn drain(&mut self) -> Vec<Waiter> {
        self.offset_of.clear();
        std::mem::take(&mut self.by_offset)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Waiter> + '_ {
        self.by_offset.iter().map(|&(_, w)| w)
    }

    fn check(&self) -> Result<(), String> {
        let indexed = self
            .by_offset
            .iter()
            .all(|(offset, w)| self.offset_of.get(w) == Some(offset));
        if self.by_offset.len() != self.offset_of.len() || !indexed {
            return Err("waiter index out of sync".into());
        }
        Ok(())
    }
}

/// Whether a partition needs a Flush now.
#[derive(Debug, PartialEq, Eq)]
pub enum FlushNeed {
    /// Nothing unflushed, or the log failed.
    None,
    /// A flush is in flight: the writes since are covered by the next one (group commit).
    AfterInFlight,
    /// Flush these files up to this offset; the partition now counts it as in flight.
    Now { upto: Offset, files: Vec<String> },
}

/// One replica of one partition: owns its log, high watermark, leader epoch, flush in
/// flight, waiters, producer state and produce limits. See the module doc.
pub struct Partition {
    /// Which partition this is: the node keys its partitions by it.
    pub id: PartitionId,
    /// The topic's name, for log lines, the log directory and the wire.
    pub topic: String,
    pub log_id: LogId,
    pub log: PartitionLog,
    /// Everything below it is durable and may be served: a consumer never sees a record a
    /// crash could take back. Never moves backwards.
    pub high_watermark: Offset,
    /// The leader epoch stamped into appended batches and checked against requests.
    pub leader_epoch: LeaderEpoch,
    /// The `upto` of the Flush in flight, if any; at most one per log, so writes that arrive
    /// meanwhile are covered together by the next one (group commit).
    pub flush_in_flight: Option<Offset>,
    /// What waits for the high watermark to move.
    pub waiters: Waiters,
    /// Idempotent producers' epochs and recent batches (broker/idempotence.rs).
    pub producers: ProducerStates,
    /// The offset of the newest producer snapshot on disk, if any.
    pub producer_snapshot: Option<i64>,
    /// The topic's settings that Produce enforces.
    pub limits: ProduceLimits,
}

impl Partition {
    /// A partition over a log just opened: what is past the recovery point is served only
    /// once a flush has made it durable. A log whose recovery found no room opens out of
    /// space (its health says so).
    pub fn open(
        id: PartitionId,
        topic: &str,
        log_id: LogId,
        loaded: LoadedLog,
        limits: ProduceLimits,
    ) -> Partition {
        let LoadedLog {
            log,
            producers,
            producer_snapshot,
        } = loaded;
        let high_watermark = Offset(
            log.recovery_point()
                .clamp(log.log_start_offset(), log.log_end_offset()),
        );
        Partition {
            id,
            topic: topic.to_string(),
            log_id,
            log,
            high_watermark,
            leader_epoch: SINGLE_NODE_LEADER_EPOCH,
            flush_in_flight: None,
            waiters: Waiters::default(),
            producers,
            producer_snapshot,
            limits,
        }
    }

    /// Whether appends may go to this log now: it neither failed nor ran out of space.
    pub fn takes_writes(&self) -> bool {
        *self.log.health() == Health::Healthy
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.log.health(), Health::Failed(_))
    }

    /// Why the log takes no writes, if it ran out of space.
    pub fn out_of_space(&self) -> Option<&str> {
        match self.log.health() {
            Health::OutOfSpace(reason) => Some(reason),
            _ => None,
        }
    }

    /// Why the log takes no more writes until a restart, if it failed.
    pub fn failure(&self) -> Option<&str> {
        match self.log.health() {
            Health::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Stops the log for good (until a restart); a failure overrides running out of space.
    pub fn fail(&mut self, reason: String) {
        self.log.stop(reason);
    }

    /// Appends one validated batch in the partition's leader epoch. A failure stops the
    /// log (its health says why).
    pub fn append(
        &mut self,
        records: &bytes::Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendFailure> {
        debug_assert!(self.takes_writes());
        self.log
            .append(records, now_ms, self.leader_epoch.0)
            .map_err(|error| {
                if is_out_of_space(&error) {
                    let reason = disk_full(&error);
                    AppendFailure::OutOfSpace { error, reason }
                } else {
                    if !self.is_failed() {
                        // A refusal the log answered from a state the partition did not
                        // know of: every other failure stopped the log already.
                        self.fail(format!("append failed: {error}"));
                    }
                    AppendFailure::Failed(error)
                }
            })
    }

    /// [`Partition::append`] of a produced batch: its producer, if it has one, is recorded
    /// where the batch landed, and on a roll the producer state is snapshotted, so that an
    /// open after a crash replays at most the segments since (Kafka's snapshot on roll).
    pub fn append_produced(
        &mut self,
        records: &bytes::Bytes,
        now_ms: i64,
        producer: Option<&ProducedBatch>,
    ) -> Result<AppendInfo, AppendFailure> {
        let info = self.append(records, now_ms)?;
        if let Some(b) = producer {
            self.producers.record(b, info.base_offset, info.last_offset);
        }
        if info.rolled {
            self.producer_snapshot = crate::broker::snapshot_producers(
                &mut self.log,
                &self.producers,
                self.producer_snapshot,
            );
        }
        Ok(info)
    }

    /// Parks `waiter` until the high watermark reaches `offset` (false: it already has,
    /// answer now).
    pub fn wait_for(&mut self, offset: Offset, waiter: Waiter) -> bool {
        if offset <= self.high_watermark {
            return false;
        }
        self.waiters.add(offset, waiter);
        true
    }

    /// Whether the log needs a Flush; `Now` marks it in flight.
    pub fn flush_need(&mut self) -> FlushNeed {
        if self.is_failed() {
            return FlushNeed::None;
        }
        if self.flush_in_flight.is_some() {
            return FlushNeed::AfterInFlight;
        }
        let upto = Offset(self.log.log_end_offset());
        let files = self.log.unflushed_files();
        if upto <= self.high_watermark && files.is_empty() {
            return FlushNeed::None;
        }
        self.flush_in_flight = Some(upto);
        FlushNeed::Now { upto, files }
    }

    /// The driver made the log durable up to `upto`: the high watermark moves (a stale
    /// `Flushed`, for less than is known durable, moves nothing) and the writes it covers
    /// are released, in offset order. Nothing for a failed log.
    pub fn on_flushed(&mut self, upto: Offset) -> Vec<Waiter> {
        self.flush_in_flight = None;
        if self.is_failed() {
            return Vec::new();
        }
        let upto = upto.min(Offset(self.log.log_end_offset()));
        self.log.mark_flushed(upto.0);
        self.high_watermark = self.high_watermark.max(upto);
        self.waiters.release(self.high_watermark)
    }

    /// The driver's Flush failed: the log takes no more writes, and every waiter is
    /// returned: none will be satisfied.
    pub fn on_flush_failed(&mut self, error: &str) -> Vec<Waiter> {
        self.flush_in_flight = None;
        self.fail(format!("fsync failed: {error}"));
        self.waiters.drain()
    }

    /// Writes the log's checkpoint if it is stale. A failure is only logged: the old
    /// checkpoint stays true, it just makes the next recovery scan and flush more.
    pub fn checkpoint(&mut self) {
        let (topic, index) = (&self.topic, self.id.index);
        if self.is_failed() {
            return;
        }
        match self.log.checkpoint() {
            Ok(_) => {}
            // The broker logs running out of space once (broker/disk.rs), not once a log.
            Err(e) if is_out_of_space(&e) => {
                tracing::debug!(topic, partition = index, error = %e, "no room for a log checkpoint");
            }
            Err(e) => {
                tracing::warn!(topic, partition = index, error = %e, "log checkpoint write failed");
            }
        }
    }

    /// Asserts the partition's invariants (debug and simulation builds).
    pub fn check(&self) {
        let (topic, index) = (&self.topic, self.id.index);
        assert!(
            self.log.log_start_offset() <= self.high_watermark.0
                && self.high_watermark.0 <= self.log.log_end_offset(),
            "{topic}-{index}: log_start {} <= high_watermark {} <= log_end {} violated",
            self.log.log_start_offset(),
            self.high_watermark,
            self.log.log_end_offset()
        );
        if let Err(e) = self.waiters.check() {
            panic!("{topic}-{index}: {e}");
        }
        self.producers.check_invariants();
    }
}

/// Whether a storage error means the disk is full (ENOSPC) or a quota is used up (EDQUOT).
pub fn is_out_of_space(e: &LogError) -> bool {
    matches!(e, LogError::Storage(io) if matches!(
        io.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ))
}

/// What a produce to a log stopped by ENOSPC is told; `why` is the log's reason.
pub fn disk_full(why: &dyn std::fmt::Display) -> String {
    format!(
        "the broker's disk is full ({why}): this partition takes writes again by itself once \
         space is freed"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_released_in_offset_order_once_the_high_watermark_reaches_them() {
        let mut w = Waiters::default();
        w.add(Offset(5), Waiter::Produce(1));
        w.add(Offset(3), Waiter::Fetch(2));
        w.add(Offset(5), Waiter::Fetch(3));
        w.add(Offset(9), Waiter::Produce(4));
        assert_eq!(w.release(Offset(2)), vec![]);
        assert_eq!(
            w.release(Offset(5)),
            vec![Waiter::Fetch(2), Waiter::Produce(1), Waiter::Fetch(3)]
        );
        // Parking again moves a waiter; removing it twice finds it once.
        w.add(Offset(7), Waiter::Fetch(3));
        w.add(Offset(12), Waiter::Fetch(3));
        assert!(w.remove(Waiter::Fetch(3)));
        assert!(!w.remove(Waiter::Fetch(3)));
        assert_eq!(w.check(), Ok(()));
        assert_eq!(w.drain(), vec![Waiter::Produce(4)]);
        assert_eq!(w.release(Offset(i64::MAX)), vec![]);
    }
}
