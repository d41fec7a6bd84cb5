//! `disk`: the simulator's in-memory disk, [`SimDisk`], which implements the core's
//! [`Storage`] and injects every storage fault the core must survive, deterministically,
//! from its own seeded ChaCha8 stream.
//!
//! # Model
//! Each file is its *durable* bytes (what is on the platter) plus the ordered list of
//! operations written since its last successful sync (appends, truncates, removes; see
//! `file.rs`). Reads see the latest state, durable plus pending, like a page cache.
//!
//! - [`Storage::sync`] makes the file's pending operations durable, including its own
//!   directory entry. A file's directory entry is durable once it was synced or written with
//!   `replace`; a file created and never synced has none.
//! - [`Storage::remove`] is a pending operation of the directory, as on a real filesystem,
//!   where an unlink survives a power cut only once the directory is fsynced. The directory
//!   is fsynced exactly when keel-net's `FsStorage` does it: by every `replace` in it, and
//!   by a `sync` of any file in it after a file was created in it. Until then a crash may
//!   resurrect a removed file with its durable contents (in `TearAnywhere` and `LoseAll`).
//! - [`Storage::replace`] is a write to a scratch file, its fsync, a rename and a directory
//!   fsync: atomic and durable on return, and it makes pending removals in its directory
//!   durable too. When its fsync fault fires it returns `EIO` with either nothing done (the
//!   scratch file's fsync failed) or the rename done but not durable (a crash then leaves
//!   the old or the new contents, never a mix).
//! - A crash ([`SimDisk::crash`]) keeps, per file, a prefix of its pending operations
//!   measured in units (one per byte written, one per create, truncate, remove or rename):
//!   none (`LoseAll`: power cut), all (`KeepAll`: the process died but the kernel wrote
//!   everything back, so even never-synced files survive), or a uniformly random prefix
//!   (`TearAnywhere`). A never-synced file whose kept prefix does not reach its creation
//!   vanishes. Durable bytes are never touched by a crash.
//!
//! # Faults
//! - **Failed fsync** (`fsync_error_probability`): `sync` returns `EIO` and, like Linux after
//!   a failed writeback, the kernel drops the pages it could not write: from then on the
//!   data of every pending write reads as what the platter holds (zeros past the durable
//!   end), and a later successful sync makes *that* durable ("fsyncgate": the later fsync
//!   succeeds, the data is gone). The caller is never told the data is durable, and it must
//!   treat the failure as fatal for what it wrote; a log that carries on writing would
//!   later vouch for a hole.
//! - **Latent read error** (`read_error_probability`): `read_at` of a non-empty range
//!   returns `EIO`; each read draws anew, so a retry may succeed.
//! - **Misdirected write** (`misdirected_write_probability`): a non-empty `append` lands at
//!   a wrong position of the same file (over earlier bytes, or past the end leaving a hole
//!   of zeros) and reports success. Only `append` is misdirected: in Keel that is segment
//!   data (CRC-checked by recovery) and the segments' `.index`/`.timeindex` files (derived
//!   data that recovery sanity-checks and rebuilds), never a `replace`d checkpoint.
//! - **Disk full** (`capacity_bytes`): the disk holds at most that many bytes (the sum of
//!   the files' current lengths); an `append` or `replace` that would exceed it fails with
//!   `ENOSPC` (raw OS error 28, [`io::ErrorKind::StorageFull`]) and writes nothing. A
//!   `replace` needs room for the new contents next to the old ones, like its scratch file.
//!   [`Storage::volume_bytes`] reports `(capacity_bytes, capacity_bytes - used)`, what a
//!   statvfs of the data directory would show, so the node's free-space floor sees the disk
//!   fill. A disk that never had a capacity reports nothing (no floor, as before floors);
//!   one whose capacity was lifted (`set = {}`, the heal) reports [`UNBOUNDED_VOLUME_BYTES`]
//!   rather than going silent, since a node would otherwise keep its last, full, sample
//!   forever and never leave its low-space state.
//! - **Bit rot** ([`SimDisk::flip_bit_at_rest`]): one bit of durable data flips; reads see
//!   it at once (the page was evicted and read back).
//! - **Slow disk** (`sync_latency_ms`): only reported by [`SimDisk::sync_latency`]; the
//!   caller sleeps in simulated time.
//!
//! Apart from bit flips and misdirected writes, nothing destroys data that a sync reported
//! durable. Every fault is recorded as a [`DiskEvent`] (see [`SimDisk::take_events`]).
//!
//! # Determinism
//! One `ChaCha8Rng` seeded at construction, behind the disk's one mutex; files in a
//! `BTreeMap`; no clock. A probability of zero (or one) draws nothing, so a healed disk does
//! not consume randomness. The same seed and the same calls give the same faults.

mod file;
#[cfg(test)]
mod log_tests;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use file::{File, Op};
use keel_core::storage::{list_children, Storage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// `EIO` on Linux.
const EIO: i32 = 5;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;
/// The longest hole a misdirected write leaves past the end of a file.
const MAX_MISDIRECTED_HOLE_BYTES: u64 = 4096;
/// The volume size [`Storage::volume_bytes`] reports once a capacity was lifted: 1 TiB,
/// far above any floor a scenario sets and above the default floor's 1 GiB cap.
pub const UNBOUNDED_VOLUME_BYTES: u64 = 1 << 40;
/// How many events [`SimDisk::take_events`] can have waiting; beyond, new ones are counted
/// in [`DiskStats::events_dropped`] instead (the harness drains them every step).
pub const MAX_PENDING_EVENTS: usize = 100_000;

/// Fault rates and settings; all probabilities are per operation, drawn from the disk's own
/// ChaCha8 RNG, seeded at construction, so a run replays exactly from its seed.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskFaults {
    /// `sync()` (and `replace()`) returns `EIO`; the data it covered is not made durable and
    /// its pages are dropped (see the module doc).
    pub fsync_error_probability: f64,
    /// `read_at()` returns `EIO` (a latent sector error, transient: a retry may succeed).
    pub read_error_probability: f64,
    /// An append lands at a wrong position of the same file while appearing successful.
    pub misdirected_write_probability: f64,
    /// Total bytes the disk holds; beyond, `append` and `replace` fail with `ENOSPC` and
    /// write nothing. `None`: unlimited.
    pub capacity_bytes: Option<u64>,
    /// Min and max simulated time one sync takes; only reported by
    /// [`SimDisk::sync_latency`].
    pub sync_latency_ms: (u64, u64),
}

/// What a crash does to writes not yet synced, per file, chosen independently for each file
/// (so a write can be lost in one file and kept in another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum CrashLoss {
    /// Power cut: every pending write is lost; never-synced files vanish.
    #[serde(alias = "lose_all", alias = "lose-all")]
    LoseAll,
    /// The process died but the kernel wrote everything back: nothing is lost.
    #[serde(alias = "keep_all", alias = "keep-all")]
    KeepAll,
    /// Keep a random prefix of the pending bytes (and creates, truncates, removes).
    #[serde(alias = "tear_anywhere", alias = "tear-anywhere")]
    TearAnywhere,
    /// Pick one of the three per file.
    #[serde(alias = "mixed")]
    Mixed,
}

/// A fault the disk injected, for the run's timeline and trace hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum DiskEvent {
    /// A sync (or replace) returned `EIO`; the pending data's pages were dropped.
    SyncFailed { file: String },
    /// A read returned `EIO`.
    ReadFailed { file: String, pos: u64 },
    /// An append meant for `intended` (the end of the file) landed at `actual`.
    Misdirected {
        file: String,
        intended: u64,
        actual: u64,
    },
    /// An append or replace needing `needed` more bytes was refused with `ENOSPC`.
    Full { file: String, needed: u64 },
    /// Bit `bit` (0 = least significant) of the durable byte at `pos` flipped.
    BitFlip { file: String, pos: u64, bit: u8 },
    /// A crash lost all `bytes` pending units of the file (bytes written, plus one per
    /// create, truncate, remove or rename).
    CrashLost { file: String, bytes: u64 },
    /// A crash kept the first `kept` pending units and lost the `lost` after them.
    CrashTorn { file: String, kept: u64, lost: u64 },
    /// A crash kept all `bytes` pending units.
    CrashKept { file: String, bytes: u64 },
    /// The file existed before the crash and does not after it (its directory entry was
    /// never durable).
    CrashVanished { file: String },
}

impl fmt::Display for DiskEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskEvent::SyncFailed { file } => {
                write!(f, "fsync {file}: EIO, unsynced pages dropped")
            }
            DiskEvent::ReadFailed { file, pos } => write!(f, "read {file}@{pos}: EIO"),
            DiskEvent::Misdirected {
                file,
                intended,
                actual,
            } => write!(
                f,
                "append to {file} misdirected: meant for byte {intended}, landed at {actual}"
            ),
            DiskEvent::Full { file, needed } => {
                write!(f, "write to {file} of {needed} bytes: ENOSPC")
            }
            DiskEvent::BitFlip { file, pos, bit } => {
                write!(f, "bit {bit} of byte {pos} of {file} flipped at rest")
            }
            DiskEvent::CrashLost { file, bytes } => {
                write!(f, "crash lost {bytes} unsynced units of {file}")
            }
            DiskEvent::CrashTorn { file, kept, lost } => write!(
                f,
                "crash tore {file}: kept {kept} unsynced units, lost {lost}"
            ),
            DiskEvent::CrashKept { file, bytes } => {
                write!(f, "crash kept {bytes} unsynced units of {file}")
            }
            DiskEvent::CrashVanished { file } => {
                write!(f, "crash: {file} vanished (never synced)")
            }
        }
    }
}

/// Counters of what the disk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DiskStats {
    /// Successful syncs, including the one inside each successful `replace`.
    pub syncs: u64,
    /// Syncs and replaces that returned `EIO`.
    pub failed_syncs: u64,
    /// Bytes accepted by `append` and `replace`.
    pub bytes_written: u64,
    pub misdirected_writes: u64,
    pub read_errors: u64,
    /// Appends and replaces refused with `ENOSPC`.
    pub enospc_refusals: u64,
    pub bit_flips: u64,
    pub crashes: u64,
    /// Events not kept because [`MAX_PENDING_EVENTS`] were waiting.
    pub events_dropped: u64,
}

/// The simulator's faulty in-memory disk. Cloning shares the same disk. See the module doc.
#[derive(Clone)]
pub struct SimDisk {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    rng: ChaCha8Rng,
    faults: DiskFaults,
    /// By name, including removed files whose removal is not durable yet.
    files: BTreeMap<String, File>,
    /// Directories with a file created in them since they were last fsynced.
    dirty_dirs: BTreeSet<String>,
    events: Vec<DiskEvent>,
    stats: DiskStats,
    /// Whether `capacity_bytes` was ever set: from then on the disk is a measurable volume.
    bounded_once: bool,
}

impl SimDisk {
    pub fn new(seed: u64, faults: DiskFaults) -> SimDisk {
        SimDisk {
            inner: Arc::new(Mutex::new(Inner {
                rng: ChaCha8Rng::seed_from_u64(seed),
                files: BTreeMap::new(),
                dirty_dirs: BTreeSet::new(),
                bounded_once: faults.capacity_bytes.is_some(),
                events: Vec::new(),
                stats: DiskStats::default(),
                faults,
            })),
        }
    }

    /// Changes the fault rates from now on (e.g. healing: `DiskFaults::default()`).
    pub fn set_faults(&self, faults: DiskFaults) {
        let mut inner = self.lock();
        inner.bounded_once |= faults.capacity_bytes.is_some();
        inner.faults = faults;
    }

    pub fn faults(&self) -> DiskFaults {
        self.lock().faults.clone()
    }

    /// The process died: for every file, pending (unsynced) writes are lost, kept or torn per
    /// `loss` (see the module doc); afterwards every file is durable as it stands. Returns
    /// what happened, by file name; the same events also go to [`SimDisk::take_events`].
    pub fn crash(&self, loss: CrashLoss) -> Vec<DiskEvent> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.stats.crashes += 1;
        let mut events = Vec::new();
        for (name, file) in inner.files.iter_mut() {
            if file.pending.is_empty() {
                continue;
            }
            let mode = match loss {
                CrashLoss::Mixed => match inner.rng.gen_range(0..3u8) {
                    0 => CrashLoss::LoseAll,
                    1 => CrashLoss::KeepAll,
                    _ => CrashLoss::TearAnywhere,
                },
                other => other,
            };
            let total = file.pending_units();
            let kept = match mode {
                CrashLoss::LoseAll => 0,
                CrashLoss::KeepAll => total,
                _ => inner.rng.gen_range(0..=total),
            };
            let existed = file.current.is_some();
            file.settle(kept);
            let file_name = name.clone();
            events.push(if existed && file.current.is_none() && kept < total {
                DiskEvent::CrashVanished { file: file_name }
            } else if kept == 0 {
                DiskEvent::CrashLost {
                    file: file_name,
                    bytes: total,
                }
            } else if kept == total {
                DiskEvent::CrashKept {
                    file: file_name,
                    bytes: total,
                }
            } else {
                DiskEvent::CrashTorn {
                    file: file_name,
                    kept,
                    lost: total - kept,
                }
            });
        }
        inner.files.retain(|_, f| !f.is_gone());
        inner.dirty_dirs.clear();
        for event in &events {
            inner.record(event.clone());
        }
        events
    }

    /// Flips one random bit in durable (synced) data of a random non-empty existing file
    /// whose name matches `filter` (e.g. only `.log` segment files); returns the event, or
    /// `None` if there is no such data.
    pub fn flip_bit_at_rest(&self, filter: impl Fn(&str) -> bool) -> Option<DiskEvent> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let candidates: Vec<&String> = inner
            .files
            .iter()
            .filter(|(name, f)| {
                f.current.is_some()
                    && f.durable.as_ref().is_some_and(|d| !d.is_empty())
                    && filter(name)
            })
            .map(|(name, _)| name)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let name = candidates[inner.rng.gen_range(0..candidates.len())].clone();
        let file = inner.files.get_mut(&name).expect("a candidate exists");
        let durable = file.durable.as_mut().expect("candidates have durable data");
        let pos = inner.rng.gen_range(0..durable.len());
        let bit = inner.rng.gen_range(0..8u8);
        durable[pos] ^= 1 << bit;
        // The page was evicted and read back: the cache shows the flip unless a pending
        // write covers it.
        file.current = file.after_cut(u64::MAX);
        inner.stats.bit_flips += 1;
        let event = DiskEvent::BitFlip {
            file: name,
            pos: pos as u64,
            bit,
        };
        inner.record(event.clone());
        Some(event)
    }

    /// How long the next sync takes, drawn uniformly from `sync_latency_ms` (inclusive).
    pub fn sync_latency(&self) -> Duration {
        let mut inner = self.lock();
        let (a, b) = inner.faults.sync_latency_ms;
        let (lo, hi) = (a.min(b), a.max(b));
        if lo == hi {
            return Duration::from_millis(lo);
        }
        Duration::from_millis(inner.rng.gen_range(lo..=hi))
    }

    /// Every fault injected so far, in order, drained: storage-call faults, crashes and bit
    /// flips (the last two are also returned by [`SimDisk::crash`] and
    /// [`SimDisk::flip_bit_at_rest`]; a timeline should take them from one place).
    pub fn take_events(&self) -> Vec<DiskEvent> {
        std::mem::take(&mut self.lock().events)
    }

    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }

    /// The length of the file's durable contents, or `None` if it has no durable entry.
    pub fn durable_len(&self, file: &str) -> Option<u64> {
        let inner = self.lock();
        inner
            .files
            .get(file)
            .and_then(|f| f.durable.as_ref())
            .map(|d| d.len() as u64)
    }

    /// Bytes written to the file since its last sync (0 for an unknown file).
    pub fn pending_len(&self, file: &str) -> u64 {
        self.lock().files.get(file).map_or(0, File::pending_bytes)
    }

    /// The names of every existing file, sorted.
    pub fn files(&self) -> Vec<String> {
        self.lock()
            .files
            .iter()
            .filter(|(_, f)| f.current.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The bytes reads of `file` see, for tests and checks; `None` if it does not exist.
    pub fn contents(&self, file: &str) -> Option<Vec<u8>> {
        self.lock().files.get(file).and_then(|f| f.current.clone())
    }

    /// The file's durable bytes, what a `LoseAll` crash would leave.
    pub fn durable_contents(&self, file: &str) -> Option<Vec<u8>> {
        self.lock().files.get(file).and_then(|f| f.durable.clone())
    }

    /// Bytes the disk holds now (what `capacity_bytes` limits).
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a thread panicked while holding it; the disk's state is
        // still consistent between calls, so let the original panic be the one reported.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn check(&self) {
        for (name, file) in &self.lock().files {
            file.check(name);
        }
    }
}

impl Inner {
    /// True with probability `p`; draws nothing when `p` is 0 or 1.
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.rng.gen_bool(p)
        }
    }

    fn record(&mut self, event: DiskEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push(event);
        } else {
            self.stats.events_dropped += 1;
        }
    }

    fn used_bytes(&self) -> u64 {
        self.files
            .values()
            .filter_map(|f| f.current.as_ref())
            .map(|c| c.len() as u64)
            .sum()
    }

    /// Refuses a write of `needed` more bytes with `ENOSPC` if it does not fit.
    fn reserve(&mut self, file: &str, needed: u64) -> io::Result<()> {
        let Some(capacity) = self.faults.capacity_bytes else {
            return Ok(());
        };
        if self.used_bytes().saturating_add(needed) <= capacity {
            return Ok(());
        }
        self.stats.enospc_refusals += 1;
        self.record(DiskEvent::Full {
            file: file.to_string(),
            needed,
        });
        Err(io::Error::from_raw_os_error(ENOSPC))
    }

    /// An fsync of `dir`: pending removals in it become durable.
    fn sync_dir(&mut self, dir: &str) {
        for (name, file) in self.files.iter_mut() {
            if dir_of(name) == dir {
                file.make_removal_durable();
            }
        }
        self.files.retain(|_, f| !f.is_gone());
        self.dirty_dirs.remove(dir);
    }

    /// Where a misdirected append of `len` bytes to a file of `file_len` bytes lands, or
    /// `None` if it cannot go anywhere else within `room` spare bytes.
    fn misdirect(&mut self, file_len: u64, len: u64, room: u64) -> Option<u64> {
        let hole_max = MAX_MISDIRECTED_HOLE_BYTES.min(room.saturating_sub(len));
        let over = file_len > 0;
        let past = hole_max > 0;
        let over_chosen = match (over, past) {
            (false, false) => return None,
            (true, false) => true,
            (false, true) => false,
            (true, true) => self.rng.gen_bool(0.5),
        };
        if over_chosen {
            // Over earlier bytes: with `pos + len > file_len` it also grows the file, and
            // never beyond what the intended write would have.
            Some(self.rng.gen_range(0..file_len))
        } else {
            Some(file_len + self.rng.gen_range(1..=hole_max))
        }
    }
}

/// The directory part of a file name (`""` for the root).
fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn not_found(file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file: {file}"))
}

impl Storage for SimDisk {
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        inner.reserve(file, len)?;
        let exists = inner.files.get(file).is_some_and(|f| f.current.is_some());
        if !exists {
            inner
                .files
                .entry(file.to_string())
                .or_default()
                .push(Op::Create);
            inner.dirty_dirs.insert(dir_of(file).to_string());
        }
        if len == 0 {
            return Ok(());
        }
        let file_len = inner.files[file].current.as_ref().map_or(0, |c| c.len()) as u64;
        let mut actual = file_len;
        if inner.chance(inner.faults.misdirected_write_probability) {
            let room = inner
                .faults
                .capacity_bytes
                .map_or(u64::MAX, |c| c.saturating_sub(inner.used_bytes()));
            if let Some(pos) = inner.misdirect(file_len, len, room) {
                actual = pos;
                inner.stats.misdirected_writes += 1;
                inner.record(DiskEvent::Misdirected {
                    file: file.to_string(),
                    intended: file_len,
                    actual,
                });
            }
        }
        let data = bufs.concat();
        let op = if actual == file_len {
            Op::Append(data)
        } else {
            Op::WriteAt { pos: actual, data }
        };
        inner.files.get_mut(file).expect("created above").push(op);
        inner.stats.bytes_written += len;
        Ok(())
    }

    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        let mut inner = self.lock();
        let data = inner
            .files
            .get(file)
            .and_then(|f| f.current.as_ref())
            .ok_or_else(|| not_found(file))?;
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        let out = Bytes::copy_from_slice(&data[start..end]);
        let p = inner.faults.read_error_probability;
        if !out.is_empty() && inner.chance(p) {
            inner.stats.read_errors += 1;
            inner.record(DiskEvent::ReadFailed {
                file: file.to_string(),
                pos,
            });
            return Err(io::Error::from_raw_os_error(EIO));
        }
        Ok(out)
    }

    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        let inner = self.lock();
        Ok(inner
            .files
            .get(file)
            .and_then(|f| f.current.as_ref())
            .map(|c| c.len() as u64))
    }

    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        let mut inner = self.lock();
        let f = inner
            .files
            .get_mut(file)
            .filter(|f| f.current.is_some())
            .ok_or_else(|| not_found(file))?;
        if f.current.as_ref().is_some_and(|c| c.len() as u64 > len) {
            f.push(Op::Truncate(len));
        }
        Ok(())
    }

    fn remove(&self, file: &str) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get_mut(file).filter(|f| f.current.is_some()) {
            f.push(Op::Remove);
            if f.is_gone() {
                inner.files.remove(file);
            }
            // As on the real filesystem (FsStorage): the removal becomes durable with the next
            // fsync of the directory, which the next sync of any file in it performs.
            inner.dirty_dirs.insert(dir_of(file).to_string());
        }
        Ok(())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let inner = self.lock();
        let names = inner
            .files
            .iter()
            .filter(|(_, f)| f.current.is_some())
            .map(|(name, _)| name);
        Ok(list_children(names, dir))
    }

    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.reserve(file, contents.len() as u64)?;
        if inner.chance(inner.faults.fsync_error_probability) {
            inner.stats.failed_syncs += 1;
            inner.record(DiskEvent::SyncFailed {
                file: file.to_string(),
            });
            // The scratch file's fsync failed (nothing happened), or the rename happened
            // and the directory fsync failed (not durable: old or new after a crash).
            if inner.rng.gen_bool(0.5) {
                inner
                    .files
                    .entry(file.to_string())
                    .or_default()
                    .push(Op::Replace(contents.to_vec()));
                inner.stats.bytes_written += contents.len() as u64;
            }
            return Err(io::Error::from_raw_os_error(EIO));
        }
        let f = inner.files.entry(file.to_string()).or_default();
        f.durable = Some(contents.to_vec());
        f.current = f.durable.clone();
        f.pending.clear();
        inner.sync_dir(dir_of(file));
        inner.stats.syncs += 1;
        inner.stats.bytes_written += contents.len() as u64;
        Ok(())
    }

    /// `(capacity, capacity - used)` while a capacity is set; see the module doc for a
    /// disk without one. Draws nothing from the RNG.
    fn volume_bytes(&self) -> Option<(u64, u64)> {
        let inner = self.lock();
        let total = match inner.faults.capacity_bytes {
            Some(capacity) => capacity,
            None if inner.bounded_once => UNBOUNDED_VOLUME_BYTES,
            None => return None,
        };
        Some((total, total.saturating_sub(inner.used_bytes())))
    }

    fn sync(&self, file: &str) -> io::Result<()> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if inner.files.get(file).is_none_or(|f| f.current.is_none()) {
            return Err(not_found(file));
        }
        if inner.chance(inner.faults.fsync_error_probability) {
            inner.stats.failed_syncs += 1;
            inner.record(DiskEvent::SyncFailed {
                file: file.to_string(),
            });
            inner
                .files
                .get_mut(file)
                .expect("checked above")
                .drop_pages();
            return Err(io::Error::from_raw_os_error(EIO));
        }
        inner
            .files
            .get_mut(file)
            .expect("checked above")
            .make_durable();
        let dir = dir_of(file);
        if inner.dirty_dirs.contains(dir) {
            inner.sync_dir(dir);
        }
        inner.stats.syncs += 1;
        Ok(())
    }
}
