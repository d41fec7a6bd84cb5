//! Known bugs, planted on purpose behind the `planted-bugs` cargo feature, so the simulator
//! can show that it catches each of them within a bounded number of seeds. Without the
//! feature every check here is a constant `false` and compiles away.

/// A bug a node can be told to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PlantedBug {
    /// Answer acks=-1 produces as soon as they are appended, before their fsync.
    AckBeforeFlush,
    /// Recovery does not verify batch CRCs, so a corrupt tail that still looks whole is kept.
    SkipRecoveryChecksum,
    /// Advance the high watermark at append time, past data not yet durable.
    HighWatermarkPastFlushed,
    /// Serve fetches up to the log end offset instead of the high watermark.
    FetchBeyondHighWatermark,
    /// At start, truncate each log to its last checkpointed recovery point, discarding data
    /// that was durable and acknowledged after it, so later appends reuse those offsets.
    ReuseOffsetAfterTruncation,
    /// Answer OffsetCommit (and serve the offsets to OffsetFetch) as soon as the offsets are
    /// appended to `__consumer_offsets`, before their fsync: a crash takes back committed
    /// offsets. Read by the group coordinator from `GroupConfig::planted_bug`.
    CommitBeforeFlush,
    /// At open, take idempotent-producer state from the newest producer snapshot alone,
    /// without replaying the batches stored after it: a retry of one of those is refused
    /// as out of sequence, and the producer, bumping its epoch, writes it a second time.
    ProducerStateFromSnapshotOnly,
    /// An incremental fetch answers a session's partition only when its high watermark, log
    /// start or error changed, leaving out one whose only news is records to serve: a
    /// consumer behind a high watermark that stopped moving never gets them.
    IncrementalFetchDropsRecords,
    /// An incremental fetch does not take a partition's new fetch position into its session,
    /// so the session keeps reading from where it was opened.
    FetchSessionKeepsStalePosition,
}

impl PlantedBug {
    pub const ALL: [PlantedBug; 9] = [
        PlantedBug::AckBeforeFlush,
        PlantedBug::SkipRecoveryChecksum,
        PlantedBug::HighWatermarkPastFlushed,
        PlantedBug::FetchBeyondHighWatermark,
        PlantedBug::ReuseOffsetAfterTruncation,
        PlantedBug::CommitBeforeFlush,
        PlantedBug::ProducerStateFromSnapshotOnly,
        PlantedBug::IncrementalFetchDropsRecords,
        PlantedBug::FetchSessionKeepsStalePosition,
    ];
}

/// Whether `bug` is planted in a node configured with `planted`.
#[inline(always)]
pub fn active(planted: Option<PlantedBug>, bug: PlantedBug) -> bool {
    cfg!(feature = "planted-bugs") && planted == Some(bug)
}
