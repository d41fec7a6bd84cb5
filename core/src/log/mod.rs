//! `log`: one partition's segmented log of Kafka v2 record batches, stored byte for byte as
//! a fetch returns them, with its indexes, its recovery after a crash, and the bookkeeping
//! that tells the driver which files hold writes not yet durable.
//!
//! # Files
//! In the log's directory: `{base_offset:020}.log` (batches), `.index` and `.timeindex`
//! (sparse indexes, see `index.rs`), `log-checkpoint`, a small file replaced atomically
//! that holds the recovery point and the log start offset, and `{offset:020}.snapshot`,
//! producer state as of an offset, which the log keeps but does not read (`snapshots.rs`).
//!
//! # Durability
//! The core never syncs. Every write is recorded in [`PartitionLog::unflushed_files`] with
//! the log end offset it belongs to; the driver fsyncs those files and reports back through
//! [`PartitionLog::mark_flushed`], which advances the *recovery point*: everything below it
//! is durable. The checkpoint is rewritten when the recovery point crosses into a new
//! segment and whenever the owner asks ([`PartitionLog::checkpoint`]: the broker does on a
//! timer and at clean shutdown, as Kafka writes its recovery-point-offset-checkpoint), so a
//! reopen scans (and CRC-checks) at most the segments from the one holding the recovery
//! point on, and loads the indexes of older segments after a sanity check; after a clean
//! shutdown the recovery point is the log end and the reopen has nothing to flush.
//!
//! Contract for the caller: a flush that was requested before [`PartitionLog::truncate_to`]
//! must not be reported after it, since offsets above the cut are reused by later appends
//! and the log cannot tell the old bytes' flush from the new ones'.
//!
//! # Recovery
//! Batches after the recovery point are verified one by one (complete, magic 2, CRC-32C,
//! contiguous offsets); the log is cut at the first bad one and every later segment is
//! deleted, so a torn or corrupt tail is never served. Indexes of those segments are rebuilt
//! (they are derived data). Older segments are trusted, but their indexes must parse and
//! their last index interval is walked and CRC-checked, which bounds the work by one index
//! interval per segment while still catching a segment that does not end where the next one
//! begins.
//!
//! # Recovery on a full disk
//! Recovery's own writes need room: a rebuilt index is written with `Storage::replace` (a
//! scratch copy next to the old file), and so is a corrected checkpoint. Out of space, the
//! log still opens, so that a broker starts on a full disk, and it reports
//! [`RecoveryReport::out_of_space`]; its owner must keep it from taking writes until it is
//! reopened with room. A rebuilt index that cannot be written stays in memory and the stale
//! files (both indexes of the segment) are cut to nothing (two empty indexes are always true,
//! only slower: lookups walk from the segment start). The log must not take writes meanwhile, since entries appended to a
//! truncated index would leave it without its prefix, and a time index without its prefix
//! no longer bounds the batches before its entries. A corrected checkpoint that cannot be
//! written matters only if the old one claims more than the log holds (a cut below it):
//! then writes past the cut could later be taken for durable. An old checkpoint that is
//! merely behind stays (it is true) and the log may take writes.
//!
//! # Failure
//! A storage error while writing leaves the log possibly holding a partial write. Like
//! PostgreSQL after "fsyncgate", the log then refuses every later write ([`LogError::Failed`])
//! until it is reopened and recovered; reads of data it already indexed continue.
//!
//! # Retention
//! Whole segments leave from the front by `retention.ms`, `retention.bytes` or DeleteRecords,
//! and the log start offset follows, durably (`retention.rs`).
//!
//! Known limit: `partitionLeaderEpoch` (like `baseOffset`) lies outside the batch CRC in
//! Kafka's format, so a bit flip there goes unnoticed (a flip in `baseOffset` is caught by
//! the offset contiguity check).

mod compaction;
mod index;
mod records;
mod retention;
mod segment;
mod snapshots;
#[cfg(test)]
mod tests;

use crate::record::{
    self, BatchError, BatchHeader, ATTRIBUTES_AT, ATTR_LOG_APPEND_TIME, CRC_AT, HEADER_LEN,
    LEADER_EPOCH_AT, MAGIC_AT, MAX_TIMESTAMP_AT,
};
use crate::storage::Storage;
use bytes::Bytes;
pub use compaction::{key_hash, keyless_records, CompactionReport, MAX_COMPACTION_KEYS};
use index::{
    encode_offset_entry, encode_time_entry, OffsetIndex, TimeIndex, OFFSET_ENTRY_LEN,
    TIME_ENTRY_LEN,
};
pub use retention::RetentionReport;
use segment::{join, walk, Segment, WalkedBatch};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::Arc;

/// Name of the checkpoint file inside the log directory.
const CHECKPOINT_FILE: &str = "log-checkpoint";
const CHECKPOINT_MAGIC: &[u8; 4] = b"KLCP";
const CHECKPOINT_VERSION: u8 = 1;
/// magic + version + recovery point + log start offset + CRC-32.
const CHECKPOINT_LEN: usize = 4 + 1 + 8 + 8 + 4;
/// The rewritten prefix of an appended batch: baseOffset, batchLength, partitionLeaderEpoch,
/// magic. Everything after it is written from the caller's buffer untouched.
const PREFIX_LEN: usize = MAGIC_AT + 1;
const _: () = assert!(PREFIX_LEN == 17 && PREFIX_LEN <= CRC_AT);

/// How timestamps of appended batches are kept (Kafka's `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are stored as sent.
    #[default]
    CreateTime,
    /// The broker stamps each batch with its append time (attributes bit 3, maxTimestamp).
    LogAppendTime,
}

/// Per-log settings (Kafka's topic configs of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment before a batch would make the active one larger than this.
    /// Clamped to `1..=i32::MAX` so file positions fit the index's u32.
    pub segment_bytes: u64,
    /// Bytes of log between offset index entries.
    pub index_interval_bytes: u64,
    pub message_timestamp_type: TimestampType,
    /// Planted bug (simulator only): recovery skips batch CRCs.
    pub skip_recovery_crc: bool,
    /// `cleanup.policy` includes `compact`: the cleaner thins sealed segments and producers
    /// must key every record.
    pub compacted: bool,
    /// Sealed segments may hold offset gaps, because the topic is or once was compacted
    /// (`TopicMeta::compacted_once`). For every other log a gap is corruption and recovery
    /// cuts there: a batch's base offset is outside its CRC, so continuity is its check.
    pub gaps_allowed: bool,
    /// `cleanup.policy` includes `delete` (Kafka's `LogConfig.delete`): `retention_ms` and
    /// `retention_bytes` apply.
    pub cleanup_delete: bool,
    /// Roll the active segment before appending a batch whose maxTimestamp is more than this
    /// many ms after the active segment's first batch's (Kafka's `segment.ms`).
    pub segment_ms: i64,
    /// Delete a segment once its largest timestamp is more than this many ms before
    /// now (Kafka's `retention.ms`); negative: no time limit.
    pub retention_ms: i64,
    /// Delete the oldest segments while the log stays at least this large without them
    /// (Kafka's `retention.bytes`); negative: no size limit.
    pub retention_bytes: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            message_timestamp_type: TimestampType::CreateTime,
            skip_recovery_crc: false,
            compacted: false,
            gaps_allowed: false,
            cleanup_delete: true,
            segment_ms: 604_800_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The timestamp the broker assigned, or -1 unless the log uses LogAppendTime.
    pub log_append_time_ms: i64,
    pub max_timestamp: i64,
    /// The batch opened a new segment (the active one rolled first).
    pub rolled: bool,
}

/// The idempotent-producer fields of one stored batch (see
/// [`PartitionLog::producer_batches_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub is_control: bool,
}

/// What [`PartitionLog::open`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the log: a torn or corrupt tail and every segment after it.
    pub truncated_bytes: u64,
    /// Why the log was cut, if it was.
    pub reason: Option<String>,
    /// Segments after recovery.
    pub segments: usize,
    pub log_end_offset: i64,
    /// Set when recovery could not write what it must for lack of space (ENOSPC or EDQUOT):
    /// the log is open and everything in it is served, but it must take no writes until it
    /// is reopened with room (see "Recovery on a full disk" in the module doc).
    pub out_of_space: Option<String>,
}

/// Why a log operation failed, sorted by whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A storage call failed. From a write, this also put the log in the failed state.
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
    /// An earlier write failed, so the log may hold a partial write and takes no more writes
    /// until it is reopened (and recovered). KAFKA_STORAGE_ERROR.
    #[error("log {dir} takes no more writes after a storage error: {reason}")]
    Failed { dir: String, reason: String },
    /// A read outside `[log_start_offset, log_end_offset]`. OFFSET_OUT_OF_RANGE.
    #[error("offset {requested} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// Bytes that recovery verified no longer parse: bit rot or a misdirected write since.
    #[error("corrupt log data in {file} at byte {position}: {reason}")]
    Corrupt {
        file: String,
        position: u64,
        reason: String,
    },
    /// `append` got something that is not one whole v2 batch: the caller skipped
    /// `record::validate_produced_batch`.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// `truncate_to` a negative offset.
    #[error("cannot truncate to offset {0}")]
    InvalidOffset(i64),
}

/// The durable part of the log's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    recovery_point: i64,
    log_start_offset: i64,
}

/// One partition's segmented log. See the module doc.
/// The most a timestamp lookup inflates one compressed batch to.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Whether a log takes writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// An append or recovery ran out of space (ENOSPC or a quota): no writes, but what the
    /// log holds is still flushed and served, and its owner reopens it from disk once
    /// space is back (broker/disk.rs `reopen_out_of_space_logs`). Nothing is in doubt.
    OutOfSpace(String),
    /// A write or fsync failed, or the log could not be read whole: no more writes until a
    /// restart recovers it from what is really on disk (fsyncgate).
    Failed(String),
}

/// One partition's log: owns its segments and their files, the recovery point and log start
/// offset, what is not yet flushed, and whether it still takes writes ([`Health`]).
pub struct PartitionLog {
    storage: Arc<dyn Storage>,
    dir: String,
    config: LogConfig,
    /// By base offset; never empty; contiguous: each segment starts where the previous ends.
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// Everything below it is durable (reported by the driver).
    recovery_point: i64,
    /// What the checkpoint file holds, if it holds anything valid.
    checkpointed: Option<Checkpoint>,
    /// Files with writes not yet reported durable → the log end offset after the last one.
    unflushed: BTreeMap<String, i64>,
    /// Whether the log takes writes, and why not: the one record of it, which the
    /// partition that owns the log reads.
    health: Health,
    /// Compaction cleans the first cleanable segment at or above this base offset next.
    cleaner_cursor: i64,
}

/// A file name in a log directory that the log recognises as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnFile {
    Log(i64),
    Index(i64),
    TimeIndex(i64),
    Checkpoint,
}

fn parse_own_file(name: &str) -> Option<OwnFile> {
    if name == CHECKPOINT_FILE {
        return Some(OwnFile::Checkpoint);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let base = i64::try_from(stem.parse::<u64>().ok()?).ok()?;
    match ext {
        "log" => Some(OwnFile::Log(base)),
        "index" => Some(OwnFile::Index(base)),
        "timeindex" => Some(OwnFile::TimeIndex(base)),
        _ => None,
    }
}

fn encode_checkpoint(c: Checkpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_LEN);
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.push(CHECKPOINT_VERSION);
    out.extend_from_slice(&c.recovery_point.to_be_bytes());
    out.extend_from_slice(&c.log_start_offset.to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(out.len(), CHECKPOINT_LEN);
    out
}

fn decode_checkpoint(b: &[u8]) -> Option<Checkpoint> {
    if b.len() != CHECKPOINT_LEN || &b[..4] != CHECKPOINT_MAGIC || b[4] != CHECKPOINT_VERSION {
        return None;
    }
    let body = CHECKPOINT_LEN - 4;
    let crc = u32::from_be_bytes(b[body..].try_into().ok()?);
    if crc32fast::hash(&b[..body]) != crc {
        return None;
    }
    let recovery_point = i64::from_be_bytes(b[5..13].try_into().ok()?);
    let log_start_offset = i64::from_be_bytes(b[13..21].try_into().ok()?);
    (recovery_point >= 0 && log_start_offset >= 0).then_some(Checkpoint {
        recovery_point,
        log_start_offset,
    })
}

/// What [`PartitionLog::scan_segment`] found.
struct Scanned {
    segment: Segment,
    /// What stopped the scan before the file's end (a torn or corrupt batch), if anything.
    problem: Option<String>,
    /// Why a rebuilt index could not be written (out of space), if it could not.
    unwritten_index: Option<String>,
}

/// ENOSPC or EDQUOT: nothing already written is in doubt.
fn out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Makes index `file` hold `contents`, rebuilt by recovery, unless it already does. Out of
/// space, returns why instead, and the caller cuts the stale file (see `scan_segment`).
fn rewrite_index(storage: &dyn Storage, file: &str, contents: &[u8]) -> io::Result<Option<String>> {
    if read_whole(storage, file)?.as_deref() == Some(contents) {
        return Ok(None);
    }
    match storage.replace(file, contents) {
        Ok(()) => Ok(None),
        Err(e) if out_of_space(&e) => Ok(Some(format!("rewriting {file}: {e}"))),
        Err(e) => Err(e),
    }
}

/// Reads a whole (small) file; `None` if it does not exist.
fn read_whole(storage: &dyn Storage, file: &str) -> io::Result<Option<Bytes>> {
    let Some(len) = storage.len(file)? else {
        return Ok(None);
    };
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
    storage.read_at(file, 0, len).map(Some)
}

impl PartitionLog {
    /// Opens and recovers the log in `dir`, creating an empty one (base offset 0, or the
    /// checkpointed log start offset) if there is none. See the module doc for what
    /// recovery checks. Fails only on storage errors: corruption is cut and reported.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &str,
        config: LogConfig,
    ) -> Result<(Self, RecoveryReport), LogError> {
        let dir = dir.trim_end_matches('/').to_string();
        let config = LogConfig {
            segment_bytes: config.segment_bytes.clamp(1, i32::MAX as u64),
            ..config
        };
        let names = match storage.list(&dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut bases = BTreeSet::new();
        let mut index_bases = BTreeSet::new();
        let mut has_checkpoint = false;
        let mut leftovers = Vec::new();
        for name in &names {
            match parse_own_file(name) {
                Some(OwnFile::Log(base)) => {
                    bases.insert(base);
                }
                Some(OwnFile::Index(base)) | Some(OwnFile::TimeIndex(base)) => {
                    index_bases.insert(base);
                }
                Some(OwnFile::Checkpoint) => has_checkpoint = true,
                None => {
                    // A `.tmp` next to one of our names is a leftover of an interrupted
                    // atomic replace; anything else is not ours and stays.
                    let interrupted = name.strip_suffix(".tmp");
                    if interrupted.and_then(parse_own_file).is_some()
                        || interrupted
                            .and_then(snapshots::parse_snapshot_name)
                            .is_some()
                    {
                        leftovers.push(join(&dir, name));
                    }
                }
            }
        }
        for base in index_bases.difference(&bases) {
            // Indexes whose segment is gone (an interrupted delete): derived data of nothing.
            leftovers.push(segment::index_file_name(&dir, *base));
            leftovers.push(segment::time_index_file_name(&dir, *base));
        }
        for file in &leftovers {
            storage.remove(file)?;
        }
        let checkpointed = if has_checkpoint {
            let found = read_whole(&*storage, &join(&dir, CHECKPOINT_FILE))?
                .and_then(|b| decode_checkpoint(&b));
            if found.is_none() {
                tracing::warn!(dir = %dir, "log checkpoint unreadable; recovering every segment");
            }
            found
        } else {
            None
        };

        let mut log = PartitionLog {
            storage,
            dir,
            config,
            segments: BTreeMap::new(),
            log_start_offset: 0,
            recovery_point: 0,
            checkpointed,
            unflushed: BTreeMap::new(),
            health: Health::Healthy,
            cleaner_cursor: 0,
        };
        let mut report = RecoveryReport::default();
        log.recover_segments(&bases.into_iter().collect::<Vec<_>>(), &mut report)?;
        if log.segments.is_empty() {
            let base = checkpointed.map_or(0, |c| c.log_start_offset);
            let segment = Segment::empty(&log.dir, base);
            for file in segment.files() {
                log.storage.append(file, &[])?;
                log.unflushed.insert(file.to_string(), base);
            }
            log.segments.insert(base, segment);
        }

        let first_base = *log
            .segments
            .keys()
            .next()
            .expect("recovery leaves at least one segment");
        let log_end = log.log_end_offset();
        log.log_start_offset = checkpointed
            .map_or(first_base, |c| c.log_start_offset)
            .clamp(first_base, log_end);
        log.recovery_point = checkpointed
            .map_or(first_base, |c| c.recovery_point)
            .clamp(log.log_start_offset, log_end);
        if let Some(c) = checkpointed.filter(|c| c.recovery_point > log_end) {
            // Bytes the driver once reported durable are gone: a lying or failing disk.
            let lost = format!(
                "checkpointed recovery point {} is beyond the recovered log end {log_end}",
                c.recovery_point
            );
            tracing::error!(dir = %log.dir, %lost, "durable data lost");
            report.reason.get_or_insert(lost);
        }
        if log.recovery_point == log_end && report.truncated_bytes == 0 {
            // Everything recovered was already durable and nothing was cut: nothing to flush.
            log.unflushed.clear();
        }
        let now = Checkpoint {
            recovery_point: log.recovery_point,
            log_start_offset: log.log_start_offset,
        };
        if !has_checkpoint && now.recovery_point == first_base && now.log_start_offset == first_base
        {
            // No file says what this checkpoint would: recovery from the first segment. A
            // new log, then, costs no replace (three fsyncs) until its recovery point moves,
            // which kept CreateTopics of 10,000 partitions blocking the node for a minute.
            log.checkpointed = Some(now);
        } else if checkpointed != Some(now) {
            match log.write_checkpoint(now) {
                Ok(()) => {}
                Err(e) if out_of_space(&e) => {
                    // See "Recovery on a full disk" in the module doc.
                    let claims_more = checkpointed.is_some_and(|c| {
                        c.recovery_point > now.recovery_point
                            || c.log_start_offset > now.log_start_offset
                    });
                    if claims_more {
                        log.checkpointed = None;
                        tracing::warn!(dir = %log.dir, error = %e, "no room to correct a checkpoint that claims more than the log holds: the log takes no writes until it is reopened with room");
                        report
                            .out_of_space
                            .get_or_insert(format!("correcting the log checkpoint: {e}"));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        report.segments = log.segments.len();
        report.log_end_offset = log_end;
        log.check();
        if let Some(why) = &report.out_of_space {
            log.health = Health::OutOfSpace(why.clone());
        }
        Ok((log, report))
    }

    /// Loads or scans each segment in order, cutting the log at the first bad batch.
    fn recover_segments(
        &mut self,
        bases: &[i64],
        report: &mut RecoveryReport,
    ) -> Result<(), LogError> {
        // The segment holding the recovery point and all later ones were not known durable:
        // scan them. Without a checkpoint, scan everything.
        let first_scanned = match self.checkpointed {
            Some(c) => bases
                .iter()
                .rev()
                .find(|&&b| b <= c.recovery_point)
                .copied(),
            None => None,
        }
        .unwrap_or(i64::MIN);
        let storage = Arc::clone(&self.storage);
        let mut cut = false;
        for (i, &base) in bases.iter().enumerate() {
            let log_file = segment::log_file_name(&self.dir, base);
            let file_len = storage.len(&log_file)?.unwrap_or(0);
            if cut {
                report.truncated_bytes += file_len;
                let dead = Segment::empty(&self.dir, base);
                for file in dead.files() {
                    storage.remove(file)?;
                }
                continue;
            }
            let next_base = bases.get(i + 1).copied();
            let mut loaded = None;
            if base < first_scanned {
                let next = next_base
                    .expect("a segment below the recovery point's segment has a successor");
                loaded = self.load_trusted(base, next, file_len)?;
            }
            let scanned = loaded.is_none();
            let segment = match loaded {
                Some(segment) => segment,
                None => {
                    let Scanned {
                        segment,
                        problem,
                        unwritten_index,
                    } = self.scan_segment(base, file_len, next_base.is_some())?;
                    if let Some(why) = unwritten_index {
                        tracing::warn!(segment = %segment.log_file, %why, "no room for a rebuilt index: kept in memory, the log takes no writes until it is reopened with room");
                        report.out_of_space.get_or_insert(why);
                    }
                    if let Some(problem) = problem {
                        report.truncated_bytes += file_len - segment.size;
                        report.reason = Some(format!(
                            "{} at byte {}: {problem}",
                            segment.log_file, segment.size
                        ));
                        cut = true;
                    }
                    segment
                }
            };
            if !cut {
                if let Some(next) = next_base.filter(|&n| n != segment.next_offset) {
                    report.reason = Some(format!(
                        "{} ends at offset {} but the next segment starts at {next}",
                        segment.log_file, segment.next_offset
                    ));
                    cut = true;
                }
            }
            if scanned {
                // Not known durable, or cut: the driver must fsync these before anything
                // in them counts.
                for file in segment.files() {
                    self.unflushed.insert(file.to_string(), i64::MIN);
                }
            }
            self.segments.insert(base, segment);
        }
        if let Some(reason) = &report.reason {
            tracing::warn!(dir = %self.dir, truncated_bytes = report.truncated_bytes, %reason, "log recovery cut the log");
        }
        // Watermarks of recovery's writes: the recovered log end (so a flush of it clears them).
        let log_end = self.log_end_offset_or(0);
        for w in self.unflushed.values_mut() {
            *w = log_end;
        }
        Ok(())
    }

    /// Loads a segment below the recovery point: its indexes must parse against the file
    /// and its last index interval must walk cleanly to the next segment's base offset.
    /// `None` means it must be scanned instead.
    fn load_trusted(
        &self,
        base: i64,
        next_base: i64,
        file_len: u64,
    ) -> Result<Option<Segment>, LogError> {
        let span = next_base - base;
        if span <= 0 || span > u32::MAX as i64 + 1 || file_len > u32::MAX as u64 {
            return Ok(None);
        }
        let mut segment = Segment::empty(&self.dir, base);
        let storage = &*self.storage;
        let (Some(index), Some(time_index)) = (
            read_whole(storage, &segment.index_file)?,
            read_whole(storage, &segment.time_index_file)?,
        ) else {
            tracing::info!(segment = %segment.log_file, "index file missing; rebuilding");
            return Ok(None);
        };
        match (
            OffsetIndex::parse(&index, file_len, span as u64),
            TimeIndex::parse(&time_index, span as u64),
        ) {
            (Ok(index), Ok(time_index)) => {
                segment.offset_index = index;
                segment.time_index = time_index;
            }
            (Err(why), _) | (_, Err(why)) => {
                tracing::info!(segment = %segment.log_file, why, "index file not sane; rebuilding");
                return Ok(None);
            }
        }
        let gaps = self.config.gaps_allowed;
        if let Some(problem) = segment.reload_tail(storage, file_len, next_base, true, gaps)? {
            tracing::warn!(segment = %segment.log_file, %problem, "segment below the recovery point fails its tail check; scanning it");
            return Ok(None);
        }
        Ok(Some(segment))
    }

    /// Scans a whole segment, verifying every batch; cuts the file after the last good one
    /// and rewrites the indexes if they differ from the rebuilt ones (out of space, see
    /// [`rewrite_index`]). Returns the problem that stopped the scan, if any.
    /// `sealed`: the segment has a successor, so compaction may have left offset gaps in it.
    fn scan_segment(&self, base: i64, file_len: u64, sealed: bool) -> Result<Scanned, LogError> {
        let storage = &*self.storage;
        let mut segment = Segment::empty(&self.dir, base);
        let interval = self.config.index_interval_bytes;
        let log_file = segment.log_file.clone();
        let verify_crc = !(cfg!(feature = "planted-bugs") && self.config.skip_recovery_crc);
        let end = walk(
            storage,
            &log_file,
            base,
            0,
            file_len,
            base,
            verify_crc,
            sealed && self.config.gaps_allowed,
            |b| {
                segment.track_batch(b, interval);
                true
            },
        )?;
        assert_eq!(
            (end.pos, end.next_offset),
            (segment.size, segment.next_offset)
        );
        if end.pos < file_len {
            storage.truncate(&log_file, end.pos)?;
        }
        let index = segment.offset_index.encode();
        let time_index = segment.time_index.encode();
        let mut unwritten = rewrite_index(storage, &segment.index_file, &index)?;
        if unwritten.is_none() {
            unwritten = rewrite_index(storage, &segment.time_index_file, &time_index)?;
        }
        if unwritten.is_some() {
            // Both go, so that neither stale file is trusted, and the offset index does not
            // outlive the time index: the time index's last entry bounds the batches before
            // the last offset index entry, so an offset index without it would let a reopen
            // understate the segment's max timestamp. Two empty indexes are always true.
            for file in [&segment.index_file, &segment.time_index_file] {
                match storage.truncate(file, 0) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Ok(Scanned {
            segment,
            problem: end.problem,
            unwritten_index: unwritten,
        })
    }

    /// Appends one batch the caller already validated (`record::validate_produced_batch`):
    /// assigns offsets from the log end by rewriting baseOffset, sets partitionLeaderEpoch,
    /// rolls first if the active segment is non-empty and would exceed `segment_bytes` or is
    /// older than `segment_ms` by the batch's timestamp (`retention.rs`), and
    /// updates the indexes. With CreateTime the batch is not copied: the rewritten 17-byte
    /// prefix and the caller's remaining bytes go to storage as two slices. With
    /// LogAppendTime, attributes and maxTimestamp change, so the CRC is recomputed over a copy.
    pub fn append(
        &mut self,
        batch: &Bytes,
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.refuse_if_failed()?;
        let header = BatchHeader::new(batch)?;
        if header.total_len() != batch.len() as i64 {
            return Err(BatchError::BadLength {
                expected: header.total_len().max(0) as usize,
                actual: batch.len(),
            }
            .into());
        }
        if header.magic() != 2 {
            return Err(BatchError::BadMagic(header.magic()).into());
        }
        if header.last_offset_delta() < 0 {
            return Err(BatchError::Invalid("negative lastOffsetDelta").into());
        }
        let base_offset = self.log_end_offset();
        let last_offset = base_offset + header.last_offset_delta() as i64;
        let watermark = last_offset + 1;
        let len = batch.len() as u64;

        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let incoming_timestamp = if log_append_time {
            now_ms
        } else {
            header.max_timestamp()
        };
        let active = self.active();
        let too_big = active.size + len > self.config.segment_bytes;
        let too_many_offsets = last_offset - active.base_offset > u32::MAX as i64;
        let rolled = !active.is_empty()
            && (too_big || too_many_offsets || self.active_too_old(incoming_timestamp, now_ms)?);
        if rolled {
            self.roll(base_offset, watermark)?;
        }

        let storage = Arc::clone(&self.storage);
        let active = self
            .segments
            .values()
            .next_back()
            .expect("a log has a segment");
        let written = if log_append_time {
            let mut owned = batch.to_vec();
            owned[..8].copy_from_slice(&base_offset.to_be_bytes());
            owned[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
                .copy_from_slice(&leader_epoch.to_be_bytes());
            let attributes = header.attributes() | ATTR_LOG_APPEND_TIME;
            owned[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
            owned[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
            let crc = record::batch_crc(&owned);
            owned[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
            storage.append(&active.log_file, &[&owned])
        } else {
            let mut prefix = [0u8; PREFIX_LEN];
            prefix[..8].copy_from_slice(&base_offset.to_be_bytes());
            prefix[8..12].copy_from_slice(&batch[8..12]);
            prefix[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
                .copy_from_slice(&leader_epoch.to_be_bytes());
            prefix[MAGIC_AT] = batch[MAGIC_AT];
            storage.append(&active.log_file, &[&prefix, &batch[PREFIX_LEN..]])
        };
        let (batch_file, batch_pos) = (active.log_file.clone(), active.size);
        if let Err(e) = written {
            let cut = [(batch_file.as_str(), Some(batch_pos))];
            return Err(self.fail_append(e, "appending a batch", &cut));
        }
        let max_timestamp = incoming_timestamp;
        let walked = WalkedBatch {
            pos: active.size,
            len,
            base_offset,
            last_offset,
            max_timestamp,
            attributes: header.attributes(),
            producer_id: header.producer_id(),
            producer_epoch: header.producer_epoch(),
            base_sequence: header.base_sequence(),
        };
        let interval = self.config.index_interval_bytes;
        let active = self
            .segments
            .values_mut()
            .next_back()
            .expect("a log has a segment");
        let update = active.track_batch(&walked, interval);
        active.created_ms.get_or_insert(now_ms);
        active.last_modified_ms = Some(now_ms);
        let (log_file, index_file, time_file) = (
            active.log_file.clone(),
            active.index_file.clone(),
            active.time_index_file.clone(),
        );
        self.unflushed.insert(log_file, watermark);
        // Data before index: a crash between them leaves an index missing an entry, which
        // is still correct (sparse); the opposite could point past the data.
        // A failed index write cuts back the batch and every index entry of this append
        // (a torn one included), so that no entry is left pointing past the data. Index
        // files hold whole fixed-size entries, so where to cut is worked out only on failure:
        // the hot path pays no extra call.
        if let Some(entry) = update.offset_entry {
            // The active segment's indexes are not synced with its data: recovery rebuilds
            // them from the segment for everything past the recovery point, so an fsync per
            // produce would buy nothing. They are synced once, when the segment rolls.
            if let Err(e) = storage.append(&index_file, &[&encode_offset_entry(entry)]) {
                let doing = "appending an offset index entry";
                let cut = [
                    (batch_file.as_str(), Some(batch_pos)),
                    (
                        index_file.as_str(),
                        self.entries_before(&index_file, OFFSET_ENTRY_LEN, 0),
                    ),
                ];
                return Err(self.fail_append(e, doing, &cut));
            }
        }
        if let Some(entry) = update.time_entry {
            if let Err(e) = storage.append(&time_file, &[&encode_time_entry(entry)]) {
                let doing = "appending a time index entry";
                let offset_written = usize::from(update.offset_entry.is_some());
                let cut = [
                    (batch_file.as_str(), Some(batch_pos)),
                    (
                        index_file.as_str(),
                        self.entries_before(&index_file, OFFSET_ENTRY_LEN, offset_written),
                    ),
                    (
                        time_file.as_str(),
                        self.entries_before(&time_file, TIME_ENTRY_LEN, 0),
                    ),
                ];
                return Err(self.fail_append(e, doing, &cut));
            }
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            max_timestamp,
            rolled,
        })
    }

    /// Closes the active segment's time index, queues both of its indexes for their one sync
    /// (the segment is now sealed; once the recovery point passes it, its indexes are trusted
    /// at open), and starts a segment at `base`.
    fn roll(&mut self, base: i64, watermark: i64) -> Result<(), LogError> {
        let storage = Arc::clone(&self.storage);
        let active = self
            .segments
            .values_mut()
            .next_back()
            .expect("a log has a segment");
        if let Some(entry) = active.roll_time_entry() {
            let file = active.time_index_file.clone();
            if let Err(e) = storage.append(&file, &[&encode_time_entry(entry)]) {
                return Err(self.fail(e, "closing a time index"));
            }
        }
        for file in [active.index_file.clone(), active.time_index_file.clone()] {
            self.unflushed.insert(file, watermark);
        }
        let segment = Segment::empty(&self.dir, base);
        for file in segment.files() {
            if let Err(e) = storage.append(file, &[]) {
                return Err(self.fail(e, "creating a segment"));
            }
            self.unflushed.insert(file.to_string(), watermark);
        }
        self.segments.insert(base, segment);
        Ok(())
    }

    /// A write of `append` failed: cuts each file of `cut` back to its length before the
    /// append (the segment to where the batch began, and the indexes), so
    /// that a reopen does not keep a batch whose caller was told it failed (recovery keeps
    /// any whole batch, even one whose index entry could not be written). If the cut fails
    /// too, that failure is what is reported, so an ENOSPC whose batch may remain is not
    /// mistaken for one that wrote nothing.
    fn fail_append(&mut self, e: io::Error, doing: &str, cut: &[(&str, Option<u64>)]) -> LogError {
        let failed_cut = cut.iter().find_map(|(file, len)| match len {
            Some(len) => self.storage.truncate(file, *len).err(),
            None => Some(io::Error::other(format!("the length of {file} is unknown"))),
        });
        let e = match failed_cut {
            None => e,
            Some(cut) => io::Error::other(format!(
                "{e}; cutting the partial batch back failed too: {cut}"
            )),
        };
        self.fail(e, doing)
    }

    /// The length `file` (an index of whole `entry_len`-byte entries) had before this
    /// append wrote `written` whole entries and maybe a torn one; `None` if it cannot be read.
    fn entries_before(&self, file: &str, entry_len: usize, written: usize) -> Option<u64> {
        let len = self.storage.len(file).ok()??;
        let whole = len - len % entry_len as u64;
        whole.checked_sub((written * entry_len) as u64)
    }

    /// Puts the log in the failed state after a write error.
    fn fail(&mut self, e: io::Error, doing: &str) -> LogError {
        let reason = format!("{doing}: {e}");
        if out_of_space(&e) {
            // Not in doubt, and the broker logs running out of space once (broker/disk.rs).
            tracing::debug!(dir = %self.dir, %reason, "log stops taking writes");
            if self.health == Health::Healthy {
                self.health = Health::OutOfSpace(reason);
            }
        } else {
            tracing::error!(dir = %self.dir, %reason, "log stops taking writes");
            self.health = Health::Failed(reason);
        }
        LogError::Storage(e)
    }

    /// Whole stored batches starting with the one that contains `offset`, from one segment,
    /// up to `max_bytes` but always at least that first batch (KIP-74), and none whose base
    /// offset is `>= upto` (the high watermark). Empty if `offset >= upto`.
    /// OffsetOutOfRange if `offset` lies outside `[log_start_offset, log_end_offset]`.
    pub fn read(&self, offset: i64, max_bytes: usize, upto: i64) -> Result<Bytes, LogError> {
        self.check_range(offset)?;
        let upto = upto.min(self.log_end_offset());
        if offset >= upto {
            return Ok(Bytes::new());
        }
        let segment = self.segment_for(offset);
        let (pos, expected) = segment.scan_start_for(offset);
        // One read serves the walk and the answer: read-ahead covers the index interval
        // between the scan start and `offset`, then `max_bytes`, never past the segment.
        let ahead = max_bytes
            .saturating_add(self.config.index_interval_bytes as usize)
            .saturating_add(record::HEADER_LEN)
            .min(usize::try_from(segment.size.saturating_sub(pos)).unwrap_or(usize::MAX));
        let mut reader = segment::Reader::new(&*self.storage, &segment.log_file, ahead);
        let mut start = None;
        let mut end = 0u64;
        let walked = self.walk_segment_with(&mut reader, segment, pos, expected, |b| {
            if b.last_offset < offset {
                return true;
            }
            if b.base_offset >= upto {
                return false;
            }
            let first = *start.get_or_insert(b.pos);
            if b.pos > first && (b.pos + b.len - first) as usize > max_bytes {
                return false;
            }
            end = b.pos + b.len;
            true
        });
        // A damaged header further on ends the walk early; the whole batches found before it
        // are still served (the damage is reported when a read starts at it).
        let start = match (start, walked) {
            (Some(start), _) => start,
            (None, Err(e)) => return Err(e),
            (None, Ok(walked)) => {
                return Err(self.corrupt(
                    segment,
                    walked,
                    format!("no batch holds offset {offset}"),
                ))
            }
        };
        let len = (end - start) as usize;
        let bytes = reader.get(start, len)?;
        if bytes.len() != len {
            return Err(self.corrupt(
                segment,
                end,
                format!("short read: {} of {len} bytes", bytes.len()),
            ));
        }
        // Data at rest can rot after it was verified: check every batch before it leaves, so
        // a corrupt batch is never served (most clients do not check CRCs themselves). The
        // good batches before a bad one are still served; the bad one is an error.
        let mut good = 0usize;
        while good < bytes.len() {
            let rest = &bytes[good..];
            let total = BatchHeader::new(rest).map(|h| h.total_len()).unwrap_or(0);
            let ok = total > 0
                && total as usize <= rest.len()
                && record::verify_batch(&rest[..total as usize]).is_ok();
            if !ok {
                if good > 0 {
                    break;
                }
                tracing::error!(dir = %self.dir, position = start, "a stored batch fails its CRC: not serving it");
                return Err(self.corrupt(segment, start, "stored batch fails its CRC-32C".into()));
            }
            good += total as usize;
        }
        Ok(bytes.slice(..good))
    }

    /// ListOffsets by timestamp: the first offset below `upto` whose record timestamp is
    /// `>= ts`, with that timestamp; `None` if there is none. Segments whose max timestamp is
    /// below `ts` are skipped; within a segment the time index gives where to start, then
    /// batch headers (maxTimestamp) are walked. An uncompressed CreateTime batch is searched
    /// record by record for the exact answer; a compressed one is decompressed (bounded by
    /// [`MAX_DECOMPRESSED_BYTES`]) and searched the same way, as Kafka does. For a
    /// LogAppendTime batch every record carries maxTimestamp, so the base offset is exact.
    pub fn offset_for_timestamp(&self, ts: i64, upto: i64) -> Result<Option<(i64, i64)>, LogError> {
        let upto = upto.min(self.log_end_offset());
        let lso = self.log_start_offset;
        if lso >= upto {
            return Ok(None);
        }
        let first = self.segment_for(lso).base_offset;
        for segment in self.segments.range(first..).map(|(_, s)| s) {
            if segment.base_offset >= upto {
                break;
            }
            if segment.max_timestamp.is_none_or(|m| m < ts) {
                continue;
            }
            let from_time = match segment.time_index.lookup_below(ts) {
                Some(e) => segment.base_offset + e.rel as i64,
                None => segment.base_offset,
            };
            let (pos, expected) = segment.scan_start_for(from_time.max(lso));
            let mut found: Result<Option<(i64, i64)>, LogError> = Ok(None);
            let mut done = false;
            self.walk_segment(segment, pos, expected, |b| {
                if b.base_offset >= upto {
                    done = true;
                    return false;
                }
                if b.last_offset < lso || b.max_timestamp < ts {
                    return true;
                }
                if b.attributes & ATTR_LOG_APPEND_TIME != 0 {
                    found = Ok(Some((b.base_offset.max(lso), b.max_timestamp)));
                    return false;
                }
                found = self.search_records(segment, b, ts, lso, upto);
                // Continue only if this batch held no answer (its maxTimestamp overstated).
                matches!(found, Ok(None))
            })?;
            if done || !matches!(found, Ok(None)) {
                return found;
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (KIP-734): the first offset below `upto` holding the largest
    /// record timestamp, with that timestamp; `None` for an empty range. The maximum comes
    /// from batch maxTimestamps (segment maxima for whole segments; for the segment holding
    /// `upto`, the time index up to its last offset index point, then batch headers), so a
    /// batch that straddles `upto` or the log start offset counts whole; the offset is then
    /// found exactly by [`Self::offset_for_timestamp`].
    pub fn max_timestamp_offset(&self, upto: i64) -> Result<Option<(i64, i64)>, LogError> {
        let upto = upto.min(self.log_end_offset());
        let lso = self.log_start_offset;
        if lso >= upto {
            return Ok(None);
        }
        let first = self.segment_for(lso).base_offset;
        let mut max: Option<i64> = None;
        let mut raise = |ts: i64| max = Some(max.map_or(ts, |m| m.max(ts)));
        for segment in self.segments.range(first..).map(|(_, s)| s) {
            if segment.base_offset >= upto {
                break;
            }
            if segment.next_offset <= upto {
                if let Some(m) = segment.max_timestamp {
                    raise(m);
                }
                continue;
            }
            // The segment holding `upto`: the time index bounds everything up to the last
            // offset index point below `upto`; walk the batch headers from there.
            let (pos, expected) = segment.scan_start_for(upto - 1);
            if let Some(t) = segment.time_index.lookup_by_rel(segment.rel(expected)) {
                raise(t.ts);
            }
            self.walk_segment(segment, pos, expected, |b| {
                if b.base_offset >= upto {
                    return false;
                }
                raise(b.max_timestamp);
                true
            })?;
        }
        match max {
            Some(ts) => self.offset_for_timestamp(ts, upto),
            None => Ok(None),
        }
    }

    /// The first record of an uncompressed batch at or after `lso`, below `upto`, with a
    /// timestamp `>= ts`.
    fn search_records(
        &self,
        segment: &Segment,
        b: &WalkedBatch,
        ts: i64,
        lso: i64,
        upto: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let bytes = self
            .storage
            .read_at(&segment.log_file, b.pos, b.len as usize)?;
        let corrupt = |why: &str| {
            self.corrupt(
                segment,
                b.pos,
                format!("batch at offset {}: {why}", b.base_offset),
            )
        };
        let header = BatchHeader::new(&bytes).map_err(|e| corrupt(&e.to_string()))?;
        let base_ts = header.base_timestamp();
        let codec = header.compression();
        let inflated;
        let iter = if codec == crate::compression::NONE {
            records::records(&bytes).map_err(corrupt)?
        } else {
            match crate::compression::decompress(
                codec,
                &bytes[HEADER_LEN..],
                MAX_DECOMPRESSED_BYTES,
            ) {
                Ok(data) => inflated = data,
                // Stored batches passed their CRC, so this is a producer's bad payload or one
                // too large to inflate here: answer at batch granularity rather than fail.
                Err(e) => {
                    tracing::warn!(dir = %self.dir, offset = b.base_offset, error = %e, "cannot search a compressed batch by timestamp; answering its base offset");
                    return Ok(Some((b.base_offset.max(lso), b.max_timestamp)));
                }
            }
            records::records_in(&inflated, header.records_count()).map_err(corrupt)?
        };
        for meta in iter {
            let meta = meta.map_err(corrupt)?;
            let offset = b.base_offset + meta.offset_delta as i64;
            let record_ts = base_ts.wrapping_add(meta.timestamp_delta);
            if offset >= upto {
                break;
            }
            if offset >= lso && record_ts >= ts {
                return Ok(Some((offset, record_ts)));
            }
        }
        Ok(None)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Everything below this offset was reported durable.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Why the log stopped taking writes, if it did, for whatever reason.
    pub fn failure(&self) -> Option<&str> {
        match &self.health {
            Health::Healthy => None,
            Health::OutOfSpace(reason) | Health::Failed(reason) => Some(reason),
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// `Err(LogError::Failed)` once the log stopped taking writes: every write path asks.
    fn refuse_if_failed(&self) -> Result<(), LogError> {
        match self.failure() {
            Some(reason) => Err(LogError::Failed {
                dir: self.dir.clone(),
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Stops the log for good (until a restart recovers it): its owner learned that what
    /// it wrote may not be on disk (a failed fsync, data that did not come back). A
    /// failure overrides running out of space.
    pub fn stop(&mut self, reason: String) {
        self.health = Health::Failed(reason);
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies a changed topic config to the open log. Size and time limits take effect at
    /// the next append or retention pass; data already written is not rewritten.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = LogConfig {
            segment_bytes: config.segment_bytes.clamp(1, i32::MAX as u64),
            ..config
        };
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The bytes of every segment's batches (what Kafka reports as a partition's size).
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Base offsets of the segments, in order.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// Files with writes not yet reported durable, sorted, for the caller's Flush output.
    /// A flush of them now makes everything below [`Self::log_end_offset`] durable.
    pub fn unflushed_files(&self) -> Vec<String> {
        self.unflushed.keys().cloned().collect()
    }

    /// The driver reported that everything below `offset` is durable: advances the recovery
    /// point, forgets files whose writes all lie below it, and persists the checkpoint when
    /// the recovery point entered a later segment (so a reopen does not rescan the ones it
    /// left). A failed checkpoint write is only logged: the old checkpoint stays valid, it
    /// just makes the next recovery scan more.
    pub fn mark_flushed(&mut self, offset: i64) {
        let offset = offset.min(self.log_end_offset());
        self.recovery_point = self.recovery_point.max(offset);
        self.unflushed.retain(|_, watermark| *watermark > offset);
        if matches!(self.health, Health::Failed(_)) {
            // The files may hold a partial write; recovery must rescan from the old point.
            return;
        }
        let durable_segment = self.segment_for(self.recovery_point).base_offset;
        let checkpointed_segment = self
            .checkpointed
            .map(|c| self.segment_for(c.recovery_point).base_offset);
        if checkpointed_segment.is_none_or(|c| durable_segment > c) {
            let c = Checkpoint {
                recovery_point: self.recovery_point,
                log_start_offset: self.log_start_offset,
            };
            if let Err(e) = self.write_checkpoint(c) {
                tracing::warn!(dir = %self.dir, error = %e, "log checkpoint write failed");
            }
        }
    }

    /// Whether the checkpoint file is behind the log's recovery point or log start offset,
    /// so that [`Self::checkpoint`] would write. A failed log never is (see there).
    pub fn checkpoint_stale(&self) -> bool {
        !matches!(self.health, Health::Failed(_))
            && self.checkpointed != Some(self.current_checkpoint())
    }

    /// Persists the recovery point and log start offset if the checkpoint file is behind
    /// them, like Kafka's recovery-point-offset-checkpoint, which is written periodically and
    /// at clean shutdown: a reopen then trusts every segment below the one holding the
    /// recovery point, and when that is the log end it has nothing to flush. The recovery
    /// point only ever holds what the driver reported durable, so the file never claims more.
    /// One durable replace, and only for a log whose checkpoint is stale, so a round over
    /// idle logs writes nothing. Returns whether it wrote. A failed log writes nothing: its
    /// files may hold a partial write, so its next recovery must scan from the old point. A
    /// failed write (ENOSPC, say) leaves the old checkpoint, still true, in place.
    pub fn checkpoint(&mut self) -> Result<bool, LogError> {
        if !self.checkpoint_stale() {
            return Ok(false);
        }
        self.write_checkpoint(self.current_checkpoint())?;
        Ok(true)
    }

    fn current_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            recovery_point: self.recovery_point,
            log_start_offset: self.log_start_offset,
        }
    }

    /// Removes every file in the log's directory (topic deletion).
    pub fn delete(self) -> Result<(), LogError> {
        let names = match self.storage.list(&self.dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        for name in names {
            self.storage.remove(&join(&self.dir, &name))?;
        }
        Ok(())
    }

    /// Cuts the log so that it ends at `offset`: every batch containing an offset `>= offset`
    /// goes (an offset inside a batch cuts that whole batch, as in Kafka, so the log then ends
    /// at its base offset). No-op if `offset >= log_end_offset`. Below the log start offset,
    /// the log is emptied and restarts at `offset`. The recovery point is lowered (and
    /// checkpointed) before any byte is cut, so a crash midway never leaves a checkpoint that
    /// vouches for bytes that are gone.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), LogError> {
        self.refuse_if_failed()?;
        if offset < 0 {
            return Err(LogError::InvalidOffset(offset));
        }
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        self.remove_producer_snapshots_above(offset)?;
        if offset < self.log_start_offset {
            return self.truncate_fully(offset);
        }
        // Where to cut: the batch containing `offset`.
        let segment = self.segment_for(offset);
        let (pos, expected) = segment.scan_start_for(offset);
        let mut cut_at = None;
        let walked = self.walk_segment(segment, pos, expected, |b| {
            if b.last_offset >= offset {
                cut_at = Some((b.pos, b.base_offset));
                return false;
            }
            true
        })?;
        let Some((cut_pos, new_end)) = cut_at else {
            return Err(self.corrupt(segment, walked, format!("no batch holds offset {offset}")));
        };
        let segment_base = segment.base_offset;
        let checkpoint = Checkpoint {
            recovery_point: self.recovery_point.min(new_end),
            log_start_offset: self.log_start_offset.min(new_end),
        };
        // Only a checkpoint that would vouch for cut bytes (or name a stale log start) must
        // be rewritten; a lower one stays true.
        let stale = self.checkpointed.is_none_or(|c| {
            c.recovery_point > checkpoint.recovery_point
                || c.log_start_offset != checkpoint.log_start_offset
        });
        if stale {
            self.write_checkpoint(checkpoint)?;
        }
        self.recovery_point = checkpoint.recovery_point;
        self.log_start_offset = checkpoint.log_start_offset;

        let later: Vec<i64> = self
            .segments
            .range(segment_base + 1..)
            .map(|(b, _)| *b)
            .collect();
        for base in later {
            let dead = self.segments.remove(&base).expect("listed above");
            for file in dead.files() {
                self.unflushed.remove(file);
                if let Err(e) = self.storage.remove(file) {
                    return Err(self.fail(e, "removing a truncated segment"));
                }
            }
        }
        let storage = Arc::clone(&self.storage);
        let segment = self
            .segments
            .get_mut(&segment_base)
            .expect("the cut segment exists");
        segment.offset_index.truncate_at_pos(cut_pos);
        segment
            .time_index
            .truncate_at_rel((new_end - segment_base) as u64);
        let cut = storage
            .truncate(&segment.log_file, cut_pos)
            .and_then(|()| {
                storage.truncate(
                    &segment.index_file,
                    (segment.offset_index.len() * index::OFFSET_ENTRY_LEN) as u64,
                )
            })
            .and_then(|()| {
                storage.truncate(
                    &segment.time_index_file,
                    (segment.time_index.len() * index::TIME_ENTRY_LEN) as u64,
                )
            })
            .and_then(|()| segment.reload_tail(&*storage, cut_pos, new_end, false, false));
        let files: Vec<String> = segment.files().iter().map(|f| f.to_string()).collect();
        match cut {
            Err(e) => return Err(self.fail(e, "truncating a segment")),
            Ok(Some(problem)) => {
                return Err(self.fail(
                    io::Error::new(io::ErrorKind::InvalidData, problem),
                    "reloading a truncated segment",
                ))
            }
            Ok(None) => {}
        }
        for file in files {
            self.unflushed.insert(file, new_end);
        }
        self.check();
        Ok(())
    }

    /// Empties the log and restarts it at `offset` (below the log start offset).
    fn truncate_fully(&mut self, offset: i64) -> Result<(), LogError> {
        let checkpoint = Checkpoint {
            recovery_point: offset,
            log_start_offset: offset,
        };
        self.write_checkpoint(checkpoint)?;
        let old = std::mem::take(&mut self.segments);
        self.recovery_point = offset;
        self.log_start_offset = offset;
        // Keep the in-memory log whole even if a removal fails below.
        self.segments
            .insert(offset, Segment::empty(&self.dir, offset));
        self.unflushed.clear();
        for segment in old.values() {
            for file in segment.files() {
                if let Err(e) = self.storage.remove(file) {
                    return Err(self.fail(e, "removing a segment"));
                }
            }
        }
        let fresh = Segment::empty(&self.dir, offset);
        for file in fresh.files() {
            if let Err(e) = self.storage.append(file, &[]) {
                return Err(self.fail(e, "creating a segment"));
            }
            self.unflushed.insert(file.to_string(), offset);
        }
        self.check();
        Ok(())
    }

    /// Asserts the log's own invariants: segments contiguous with increasing base offsets,
    /// only the active one may be empty, indexes inside their segments, and
    /// `first base <= log_start <= recovery_point <= log_end`, with the checkpoint never
    /// ahead of the recovery point.
    pub fn check(&self) {
        assert!(!self.segments.is_empty(), "log {} has no segment", self.dir);
        let first = self.segments.values().next().expect("checked non-empty");
        let log_end = self.log_end_offset();
        assert!(
            first.base_offset <= self.log_start_offset
                && self.log_start_offset <= self.recovery_point
                && self.recovery_point <= log_end,
            "log {}: first base {} <= log start {} <= recovery point {} <= log end {} violated",
            self.dir,
            first.base_offset,
            self.log_start_offset,
            self.recovery_point,
            log_end
        );
        if let Some(c) = self.checkpointed {
            assert!(
                c.recovery_point <= self.recovery_point,
                "log {}: checkpoint {c:?} ahead of recovery point {}",
                self.dir,
                self.recovery_point
            );
        }
        let mut expected_base = None;
        let last_base = *self.segments.keys().next_back().expect("checked non-empty");
        for (&base, s) in &self.segments {
            assert_eq!(base, s.base_offset, "segment keyed by its base offset");
            if let Some(expected) = expected_base {
                assert_eq!(
                    base, expected,
                    "log {}: segments must be contiguous",
                    self.dir
                );
            }
            assert!(s.next_offset >= base);
            assert_eq!(
                s.size == 0,
                s.next_offset == base,
                "segment {} size/offsets disagree",
                s.log_file
            );
            assert_eq!(s.size == 0, s.max_timestamp.is_none());
            assert!(
                base == last_base || s.size > 0,
                "only the active segment may be empty: {}",
                s.log_file
            );
            assert!(s.next_offset - base <= u32::MAX as i64 + 1);
            let span = s.offset_span();
            // Entries are strictly increasing (asserted by `push`, checked by `parse`), so
            // the last ones bound all: this check stays O(segments) per call.
            if let Some(e) = s.offset_index.last() {
                assert!(
                    (e.pos as u64) < s.size && (e.rel as u64) < span,
                    "{}: index entry {e:?} outside",
                    s.log_file
                );
            }
            if let Some(e) = s.time_index.last() {
                assert!(
                    (e.rel as u64) < span && s.max_timestamp.is_some_and(|m| e.ts <= m),
                    "{}: time index entry {e:?} outside (max timestamp {:?})",
                    s.log_file,
                    s.max_timestamp
                );
            }
            expected_base = Some(s.next_offset);
        }
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    /// The segment holding `offset` (or the first one, for an offset before it).
    fn segment_for(&self, offset: i64) -> &Segment {
        self.segments
            .range(..=offset)
            .next_back()
            .or_else(|| self.segments.iter().next())
            .map(|(_, s)| s)
            .expect("a log always has a segment")
    }

    fn log_end_offset_or(&self, empty: i64) -> i64 {
        self.segments
            .values()
            .next_back()
            .map_or(empty, |s| s.next_offset)
    }

    fn check_range(&self, offset: i64) -> Result<(), LogError> {
        let (log_start, log_end) = (self.log_start_offset, self.log_end_offset());
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        Ok(())
    }

    /// Walks a segment's batch headers from an index position for a lookup (no CRC: that
    /// was recovery's job). Any inconsistency is corruption that appeared since. Returns the
    /// position the walk stopped at.
    fn walk_segment(
        &self,
        segment: &Segment,
        pos: u64,
        expected: i64,
        f: impl FnMut(&WalkedBatch) -> bool,
    ) -> Result<u64, LogError> {
        let mut reader =
            segment::Reader::for_lookup(&*self.storage, &segment.log_file, segment.size - pos);
        self.walk_segment_with(&mut reader, segment, pos, expected, f)
    }

    /// [`Self::walk_segment`] through the caller's reader (see [`Self::read`]).
    fn walk_segment_with(
        &self,
        reader: &mut segment::Reader<'_>,
        segment: &Segment,
        pos: u64,
        expected: i64,
        f: impl FnMut(&WalkedBatch) -> bool,
    ) -> Result<u64, LogError> {
        let end = segment::walk_with(
            reader,
            segment.base_offset,
            pos,
            segment.size,
            expected,
            false,
            self.gaps_allowed(segment),
            f,
        )?;
        match end.problem {
            Some(problem) => Err(self.corrupt(segment, end.pos, problem)),
            None => Ok(end.pos),
        }
    }

    /// Whether `segment` may hold offset gaps: a sealed segment of a log that is or was
    /// compacted may have been thinned; the active one never is, nor any segment of a log
    /// that was never compacted.
    fn gaps_allowed(&self, segment: &Segment) -> bool {
        self.config.gaps_allowed && segment.base_offset != self.active().base_offset
    }

    fn corrupt(&self, segment: &Segment, position: u64, reason: String) -> LogError {
        LogError::Corrupt {
            file: segment.log_file.clone(),
            position,
            reason,
        }
    }

    fn write_checkpoint(&mut self, c: Checkpoint) -> io::Result<()> {
        self.storage
            .replace(&join(&self.dir, CHECKPOINT_FILE), &encode_checkpoint(c))?;
        self.checkpointed = Some(c);
        Ok(())
    }
}
