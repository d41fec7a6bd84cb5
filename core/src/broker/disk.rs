//! The data directory's free space as the driver last measured it, and the free-space floor
//! below which the node refuses new data (produce, topic creation) before writing any of it.
//!
//! The driver samples the filesystem (statvfs) on a timer and feeds `Input::DiskSpace`.
//! Between samples the node subtracts what it appended itself, so a burst of produces that
//! crosses the floor is refused at once rather than a second later. The state has
//! hysteresis: the node enters low space when the estimate drops below the floor, and
//! leaves it only when a *sample* shows the floor plus [`RESUME_MARGIN_DIVISOR`]'s share
//! free again, so it does not flap on every retention pass. Small writes that keep clients
//! working ([`WriteClass::Reserved`]: offset commits, auto-created topics' metadata) keep a
//! reserve of their own: they are refused only below half the floor.
//!
//! Redpanda's equivalent (storage_min_free_bytes) answers clients with an indirect "broker
//! not available"; Kafka has no floor and takes the log directory offline on ENOSPC. Here the
//! refusal names the floor and what is free (see [`DiskSpace::refusal`]).

use crate::error::ErrorCode;
use crate::ids::PartitionId;
use crate::node::Node;
use crate::partition::LoadedLog;

/// The default floor's absolute cap: 1 GiB, as Redpanda's storage_min_free_bytes.
pub const DEFAULT_FLOOR_CAP: u64 = 1 << 30;

/// The default floor's share of the filesystem: 1/20 (5 %), as Redpanda's
/// storage_space_alert_free_threshold_percent.
const DEFAULT_FLOOR_DIVISOR: u64 = 20;

/// Writes resume once a sample shows `floor + floor / RESUME_MARGIN_DIVISOR` free.
pub const RESUME_MARGIN_DIVISOR: u64 = 10;

/// What a write is, for the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteClass {
    /// Produce, CreateTopics, CreatePartitions: stop at the floor.
    Data,
    /// Small writes that keep clients working, which may use the half of the floor below
    /// it: offset commits (a consumer that cannot commit re-reads what it processed) and
    /// the metadata of an auto-created topic (so a producer to a new topic meets Produce's
    /// prompt refusal instead of a Metadata error librdkafka ignores until its message
    /// timeout).
    Reserved,
    /// The offsets topic's creation: its metadata and empty logs, a few KiB, admitted at
    /// any free space (a real ENOSPC still undoes it whole). Without the topic no group
    /// finds its coordinator, and librdkafka waits for one until a commit times out
    /// (COORDINATOR_NOT_AVAILABLE is retriable), where with it the commit meets the
    /// reserve's prompt refusal.
    Internal,
}

/// A change of the low-space state, for the node to log once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    EnteredLowSpace,
    LeftLowSpace,
}

/// One statvfs sample: the filesystem's size and the bytes an unprivileged writer may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sample {
    free: u64,
    total: u64,
}

/// What a metrics scrape or `/health` shows of the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskReport {
    /// Free bytes as the node estimates them now (last sample less its appends since).
    pub free_bytes: u64,
    pub total_bytes: u64,
    pub floor_bytes: u64,
    pub low_space: bool,
}

/// The free-space floor and the node's view of free space. Before the first sample nothing
/// is refused: an implementation of `Storage` that cannot measure (tests' MemStorage)
/// never gets a floor.
#[derive(Debug)]
pub struct DiskSpace {
    /// `--min-free-bytes`; `None` for the default (the smaller of 1 GiB and 5 %).
    configured_floor: Option<u64>,
    sample: Option<Sample>,
    /// Bytes this node appended since the last sample.
    written_since_sample: u64,
    low: bool,
}

impl DiskSpace {
    pub fn new(configured_floor: Option<u64>) -> Self {
        DiskSpace {
            configured_floor,
            sample: None,
            written_since_sample: 0,
            low: false,
        }
    }

    /// The floor in bytes for a filesystem of `total` bytes.
    pub fn floor_for(configured: Option<u64>, total: u64) -> u64 {
        configured.unwrap_or_else(|| DEFAULT_FLOOR_CAP.min(total / DEFAULT_FLOOR_DIVISOR))
    }

    fn floor(&self) -> u64 {
        let total = self.sample.map_or(0, |s| s.total);
        Self::floor_for(self.configured_floor, total)
    }

    fn estimate(&self) -> Option<u64> {
        self.sample
            .map(|s| s.free.saturating_sub(self.written_since_sample))
    }

    /// A new measurement: the estimate restarts from it, and the state may change.
    pub fn on_sample(&mut self, free: u64, total: u64) -> Option<Transition> {
        self.sample = Some(Sample { free, total });
        self.written_since_sample = 0;
        let floor = self.floor();
        if self.low {
            let resume = floor.saturating_add(floor / RESUME_MARGIN_DIVISOR);
            if free >= resume {
                self.low = false;
                return Some(Transition::LeftLowSpace);
            }
            None
        } else {
            self.enter_if_below()
        }
    }

    /// The node appended `bytes`: the estimate drops, and may cross the floor.
    pub fn on_written(&mut self, bytes: u64) -> Option<Transition> {
        self.written_since_sample = self.written_since_sample.saturating_add(bytes);
        if self.low {
            return None;
        }
        self.enter_if_below()
    }

    fn enter_if_below(&mut self) -> Option<Transition> {
        let estimate = self.estimate()?;
        if estimate < self.floor() {
            self.low = true;
            return Some(Transition::EnteredLowSpace);
        }
        None
    }

    /// True while the node refuses new data.
    pub fn is_low(&self) -> bool {
        self.low
    }

    /// Whether a write of `class` may go ahead now. Data stops while the node is in low
    /// space; offset commits only once the estimate is below half the floor.
    pub fn admits(&self, class: WriteClass) -> bool {
        match class {
            WriteClass::Data => !self.low,
            WriteClass::Reserved => match self.estimate() {
                Some(free) if self.low => free >= self.floor() / 2,
                _ => true,
            },
            WriteClass::Internal => true,
        }
    }

    /// The `error_message` a refused write gets: what is free, the floor, and when writes
    /// resume, so that an operator reading a client's error knows what to do.
    pub fn refusal(&self) -> String {
        let floor = self.floor();
        let free = self.estimate().unwrap_or(0);
        let total = self.sample.map_or(0, |s| s.total);
        let resume = floor.saturating_add(floor / RESUME_MARGIN_DIVISOR);
        format!(
            "the broker's disk is below its free-space floor: {} free of {}, floor {} \
             (min.free.bytes); writes resume by themselves once {} is free",
            human_bytes(free),
            human_bytes(total),
            human_bytes(floor),
            human_bytes(resume)
        )
    }

    /// The state for metrics and `/health`; `None` before the first sample.
    pub fn report(&self) -> Option<DiskReport> {
        let sample = self.sample?;
        Some(DiskReport {
            free_bytes: self.estimate().unwrap_or(0),
            total_bytes: sample.total,
            floor_bytes: self.floor(),
            low_space: self.low,
        })
    }
}

/// `bytes` in binary units with one decimal (`3.2 MiB`), for messages people read.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

// --- The node's side: samples in; refusals, state-change lines and reopens out. ---

/// The code a write refused for space gets. See README ("When the disk fills") for what
/// each client shows.
pub(super) const NO_SPACE: ErrorCode = ErrorCode::POLICY_VIOLATION;

/// One line per change of the low-space state, not one per refused request.
pub(crate) fn log_transition(disk: &DiskSpace, transition: Option<Transition>) {
    let Some(report) = disk.report() else {
        return;
    };
    let (free, floor) = (
        human_bytes(report.free_bytes),
        human_bytes(report.floor_bytes),
    );
    match transition {
        Some(Transition::EnteredLowSpace) => tracing::warn!(
            %free, %floor, total = %human_bytes(report.total_bytes),
            "the disk is below the free-space floor: refusing produce and topic creation until space is freed"
        ),
        Some(Transition::LeftLowSpace) => {
            tracing::info!(%free, %floor, "the disk is above the free-space floor again: writes resume")
        }
        None => {}
    }
}

impl Node {
    /// A statvfs sample from the driver: the floor's state may change, and logs stopped by
    /// ENOSPC reopen once there is room to recover them.
    pub(crate) fn on_disk_sample(&mut self, free_bytes: u64, total_bytes: u64) {
        let transition = self.disk.on_sample(free_bytes, total_bytes);
        log_transition(&self.disk, transition);
        if self.disk.admits(WriteClass::Reserved) {
            self.reopen_out_of_space_logs();
        }
    }

    /// The disk as the node sees it, for metrics and `/health`; `None` before the driver's
    /// first sample.
    pub fn disk_report(&self) -> Option<DiskReport> {
        self.disk.report()
    }

    /// Reopens every log an ENOSPC stopped and that has no flush in flight (the flush's
    /// answer is still owed to the old log's waiters): recovery cuts the partial write
    /// the failed append may have left, and the log takes writes again.
    fn reopen_out_of_space_logs(&mut self) {
        let stopped: Vec<PartitionId> = self
            .partitions
            .values()
            .filter(|p| p.out_of_space().is_some() && p.flush_in_flight.is_none())
            .map(|p| p.id)
            .collect();
        for key in stopped {
            self.reopen_partition(key);
        }
    }

    fn reopen_partition(&mut self, key: PartitionId) {
        let topic = self
            .partitions
            .get(&key)
            .and_then(|p| self.metadata.topics.get(&p.topic))
            .cloned();
        let Some(topic) = topic else {
            return;
        };
        let name = topic.name.as_str();
        let loaded = match self.load_partition_log(&topic, key.index) {
            Ok(loaded) => loaded,
            Err(e) => {
                if let Some(held_back) = self.throttle.borrow_mut().allow("reopen", name, self.now)
                {
                    tracing::warn!(topic = %name, partition = key.index, error = %e, held_back, "a log stopped by a full disk could not be reopened yet; retrying at the next measurement");
                }
                return;
            }
        };
        let Some(p) = self.partitions.get_mut(&key) else {
            return;
        };
        let LoadedLog {
            mut log,
            producers,
            producer_snapshot,
        } = loaded;
        let durable = p.high_watermark.0;
        if log.log_end_offset() < durable {
            // Flushed bytes did not come back: the disk lies or fails; never serve less.
            let reason = format!(
                "reopened after ENOSPC, the log ends at {} below its durable offset {durable}",
                log.log_end_offset()
            );
            tracing::error!(topic = %name, partition = key.index, %reason, "durable data lost; the log takes no more writes");
            p.fail(reason);
            return;
        }
        log.mark_flushed(durable);
        if name == crate::group::OFFSETS_TOPIC && log.log_end_offset() > durable {
            // The coordinator already answered and forgot the writes above the durable
            // offset (`on_partition_failed`); replaying them later would commit offsets it
            // reported as failed.
            if let Err(e) = log.truncate_to(durable) {
                tracing::warn!(partition = key.index, error = %e, "could not cut {} after ENOSPC; retrying", crate::group::OFFSETS_TOPIC);
                return;
            }
        }
        let end = log.log_end_offset();
        p.log = log;
        let mut producers = producers;
        producers.keep_refused(&p.producers);
        p.producers = producers;
        p.producer_snapshot = producer_snapshot;
        if end > durable {
            self.partitions.mark_dirty(key);
        }
        self.throttle.borrow_mut().reset("reopen", name);
        tracing::info!(topic = %name, partition = key.index, log_end_offset = end, "a log stopped by a full disk reopened and takes writes again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_default_floor_is_the_smaller_of_one_gib_and_five_percent() {
        assert_eq!(DiskSpace::floor_for(None, 100 * MIB), 5 * MIB);
        assert_eq!(DiskSpace::floor_for(None, 1 << 40), 1 << 30);
        assert_eq!(DiskSpace::floor_for(Some(7), 1 << 40), 7);
    }

    #[test]
    fn nothing_is_refused_before_the_first_sample() {
        let mut disk = DiskSpace::new(Some(10 * MIB));
        assert_eq!(disk.on_written(u64::MAX), None);
        assert!(disk.admits(WriteClass::Data));
        assert_eq!(disk.report(), None);
    }

    #[test]
    fn appends_between_samples_cross_the_floor_at_once() {
        let mut disk = DiskSpace::new(Some(10 * MIB));
        assert_eq!(disk.on_sample(12 * MIB, 100 * MIB), None);
        assert_eq!(disk.on_written(MIB), None);
        assert!(disk.admits(WriteClass::Data));
        assert_eq!(disk.on_written(MIB + 1), Some(Transition::EnteredLowSpace));
        assert!(!disk.admits(WriteClass::Data));
        assert_eq!(disk.on_written(MIB), None, "one transition per episode");
    }

    #[test]
    fn writes_resume_only_above_the_floor_plus_a_margin() {
        let mut disk = DiskSpace::new(Some(10 * MIB));
        assert_eq!(
            disk.on_sample(5 * MIB, 100 * MIB),
            Some(Transition::EnteredLowSpace)
        );
        assert_eq!(disk.on_sample(10 * MIB, 100 * MIB), None);
        assert_eq!(disk.on_sample(11 * MIB - 1, 100 * MIB), None);
        assert!(disk.is_low());
        assert_eq!(
            disk.on_sample(11 * MIB, 100 * MIB),
            Some(Transition::LeftLowSpace)
        );
        assert!(disk.admits(WriteClass::Data));
    }

    #[test]
    fn offset_commits_keep_half_the_floor_in_reserve() {
        let mut disk = DiskSpace::new(Some(10 * MIB));
        disk.on_sample(6 * MIB, 100 * MIB);
        assert!(!disk.admits(WriteClass::Data));
        assert!(disk.admits(WriteClass::Reserved));
        disk.on_written(MIB + 1);
        assert!(!disk.admits(WriteClass::Reserved));
        assert!(disk.admits(WriteClass::Internal));
    }

    #[test]
    fn a_zero_floor_never_refuses() {
        let mut disk = DiskSpace::new(Some(0));
        assert_eq!(disk.on_sample(0, 100 * MIB), None);
        assert!(disk.admits(WriteClass::Data));
        assert!(disk.admits(WriteClass::Reserved));
    }

    #[test]
    fn the_refusal_says_what_is_free_and_when_writes_resume() {
        let mut disk = DiskSpace::new(None);
        disk.on_sample(2 * MIB, 64 * MIB);
        let message = disk.refusal();
        assert!(
            message.contains("2.0 MiB free of 64.0 MiB, floor 3.2 MiB"),
            "{message}"
        );
        assert!(message.contains("once 3.5 MiB is free"), "{message}");
        assert_eq!(human_bytes(512), "512 B");
    }
}
