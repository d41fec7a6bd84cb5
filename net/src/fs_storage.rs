//! The production [`Storage`]: files by name under one root directory of the real filesystem.
//!
//! It owns three things the core must not know about: a bounded cache of open file handles
//! (so that appends and reads do not reopen files), the creation of parent directories, and
//! the bookkeeping that makes a new file's directory entry durable. A file created since its
//! directory was last fsynced marks that directory (and every directory created on its path
//! marks its own parent) as dirty; [`Storage::sync`] of the file fsyncs the file and then the
//! dirty directories on its path, so that a `Flushed` for a new segment means the segment is
//! still there after a power cut, not merely its bytes in an unreachable inode.
//!
//! The lock is never held across a `write`, `fsync`, `read` or `open`: the node task appends
//! while the flusher syncs, and group commit is worth nothing if the append waits for the
//! fsync.
//!
//! # The descriptor budget
//! Every descriptor the storage opens counts against one cap, `max_open_files`
//! (`keel serve` sizes it from RLIMIT_NOFILE): cached handles, opens in progress,
//! the directories [`Storage::sync`] and [`Storage::list`] open, [`Storage::replace`]'s
//! scratch file, and handles being closed. Nothing else in it holds one (only the data
//! directory's lock file, one more, outside the cap). When the cap is reached, an open first
//! closes the least recently used handle that no operation is using and that has nothing
//! waiting for a sync; handles in use (a read, or a flusher's fsync, running on another
//! thread) are never closed under their user, so the count is exact, not "the cache plus
//! whatever clones are still out there".
//!
//! A handle written through since its last sync is the exception that needs care: Linux
//! reports a writeback error only to descriptors open when it happened (and loses it if the
//! inode leaves memory), so closing such a handle and reopening it for the flusher's fsync
//! could turn an `EIO` into a false `Flushed`. Such handles are therefore closed only after
//! an fsync of their own, and only when no synced handle is left to close: the cache syncs
//! the victim (outside the lock, while the name is marked *closing*, so no other thread can
//! open or sync that file meanwhile: they wait for the outcome) and then closes it. If that
//! fsync fails, the failure is kept against the file name and every later append, truncate
//! or sync of the file returns it, so the flusher reports it as the log's `FlushFailed` (and
//! the log stops taking writes), exactly as if its own fsync had failed. Only removing or
//! replacing the file forgets it (nothing of the old contents is left to make durable).
//!
//! So the pinned exception cannot blow the budget: with 10,000 partitions all written at once
//! and a cache of 256, the cache holds 256 handles and each further new file costs one early
//! fsync (on the thread that needed the slot) instead of a descriptor. That is the degraded
//! mode the budget buys; the flusher's later fsync of such a file reopens it and finds little
//! left to write.
//!
//! It also holds the root's [`DataDirLock`] (data_dir.rs) for as long as it lives, so two
//! brokers never share one directory; [`Storage::list`] hides the lock file.
//!
//! Names ending in `.tmp` are [`Storage::replace`]'s scratch files: [`Storage::list`] hides
//! them, so a replace cut short by a crash leaves nothing the core would mistake for data.

use crate::data_dir::{DataDirError, DataDirLock, LOCK_FILE};
use bytes::{Bytes, BytesMut};
use keel_core::storage::Storage;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How many descriptors [`FsStorage::open`] uses at most, when nobody sized the budget.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// The suffix of [`Storage::replace`]'s scratch files.
const TMP_SUFFIX: &str = ".tmp";

/// Files under a root directory. Cloning shares the handle cache and the directory bookkeeping.
#[derive(Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

/// The handle cache's numbers, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCacheStats {
    /// Descriptors the storage holds now (cached handles and those opening or closing).
    pub open_files: usize,
    /// Its cap.
    pub max_open_files: usize,
    /// Opens of existing files the cache did not hold (first opens after start-up
    /// included, creations not): what a too-small cache costs.
    pub reopens: u64,
    /// Handles closed with writes not yet synced, after the fsync that made that safe.
    pub synced_closes: u64,
}

struct Inner {
    root: PathBuf,
    max_open: usize,
    state: Mutex<State>,
    /// Signalled whenever a slot may have become free or a closing file closed.
    freed: Condvar,
    /// Held for the storage's life: no second broker can open the same root meanwhile.
    _lock: DataDirLock,
}

struct Cached {
    file: Arc<File>,
    /// The tick of its last use: its key in `State::lru`.
    tick: u64,
    /// Unique per opened handle, so that a lease never releases a later handle of the name.
    id: u64,
    /// Written through (or truncated) since its last sync: closed only after an fsync.
    unsynced: bool,
    /// Operations using it now: never closed while above 0.
    in_use: u32,
}

/// A failed fsync of a handle the cache closed: what the file's later writes and syncs say.
#[derive(Clone)]
struct Failure {
    kind: io::ErrorKind,
    message: String,
}

#[derive(Default)]
struct State {
    /// Open handles by file name.
    handles: HashMap<String, Cached>,
    /// The same handles by last use, oldest first: the eviction order.
    lru: BTreeMap<u64, String>,
    tick: u64,
    /// Descriptors held outside `handles`: opens in progress, directories, scratch files,
    /// and handles being synced before they close.
    transient: usize,
    /// Names whose handle is being synced before it closes: their users wait.
    closing: BTreeSet<String>,
    /// Names whose handle failed the fsync before its close (see the module docs).
    failed: BTreeMap<String, Failure>,
    /// Threads waiting for a free slot or a closing file.
    waiters: usize,
    /// Handles forgotten while in use, by id, with their users: still open (and counted in
    /// `transient`) until the last one is done.
    zombies: BTreeMap<u64, u32>,
    /// Bumped by every `forget`, so an open racing a remove or replace is not cached.
    forgets: u64,
    reopens: u64,
    synced_closes: u64,
    /// Directories with entries created since they were last fsynced, each with the
    /// generation of its latest change (so a sync that raced a new entry keeps the mark).
    dirty_dirs: BTreeMap<PathBuf, u64>,
    generation: u64,
}

/// What an operation does with a handle: writes mark it unsynced and are refused after a
/// failed close-time fsync; syncs are refused then too; reads are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Write,
    Sync,
}

impl FsStorage {
    /// Opens (creating it if needed) the storage rooted at `root`, using at most
    /// [`DEFAULT_MAX_OPEN_FILES`] descriptors. Takes the directory's lock before reading
    /// anything and checks it can be written ([`DataDirLock`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage, DataDirError> {
        FsStorage::with_max_open_files(root, DEFAULT_MAX_OPEN_FILES)
    }

    /// Like [`FsStorage::open`] with a cap of `max_open` (at least 2: a handle and a
    /// directory being synced) descriptors.
    pub fn with_max_open_files(
        root: impl Into<PathBuf>,
        max_open: usize,
    ) -> Result<FsStorage, DataDirError> {
        let root = root.into();
        let lock = DataDirLock::acquire(&root)?;
        Ok(FsStorage {
            inner: Arc::new(Inner {
                root,
                max_open: max_open.max(2),
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
                _lock: lock,
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// How many descriptors the storage holds right now (for tests of the bound).
    pub fn open_files(&self) -> usize {
        self.lock().open_files()
    }

    /// The cache's numbers now.
    pub fn file_cache_stats(&self) -> FileCacheStats {
        let state = self.lock();
        FileCacheStats {
            open_files: state.open_files(),
            max_open_files: self.inner.max_open,
            reopens: state.reopens,
            synced_closes: state.synced_closes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked while holding it; the state is a cache and
        // a set of marks, both still meaningful, so carry on.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for [`Inner::freed`], counted in `waiters` so that releases know to signal.
    fn wait<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.waiters += 1;
        let mut state = self
            .inner
            .freed
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
        state.waiters -= 1;
        state
    }

    /// The path of `file`, refusing names that could escape the root.
    fn path(&self, file: &str) -> io::Result<PathBuf> {
        let rel = Path::new(file);
        let valid = !file.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid storage file name {file:?}"),
            ));
        }
        Ok(self.inner.root.join(rel))
    }

    /// Runs `f` on the handle of `file`, opening it (and with `create`, creating it and its
    /// directories) if needed; the handle cannot be closed while `f` runs.
    fn with_handle<T>(
        &self,
        file: &str,
        create: bool,
        purpose: Use,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> io::Result<T> {
        let (handle, id) = self.acquire(file, create, purpose)?;
        let result = f(&handle);
        // The clone goes before the lease, so a handle not in use has no clone outside.
        drop(handle);
        self.release(file, id);
        result
    }

    /// Ends a lease taken by [`FsStorage::acquire`].
    fn release(&self, file: &str, id: u64) {
        let mut state = self.lock();
        if let Some(cached) = state.handles.get_mut(file).filter(|c| c.id == id) {
            cached.in_use -= 1;
        } else if let Some(users) = state.zombies.get_mut(&id) {
            // Forgotten while in use: its descriptor closes now, with its last user.
            *users -= 1;
            if *users == 0 {
                state.zombies.remove(&id);
                state.transient -= 1;
            }
        }
        if state.waiters > 0 {
            self.inner.freed.notify_all();
        }
    }

    /// Leases the handle of `file` (see [`FsStorage::with_handle`]): the handle and the
    /// lease's id.
    fn acquire(&self, file: &str, create: bool, purpose: Use) -> io::Result<(Arc<File>, u64)> {
        let path = self.path(file)?;
        loop {
            let mut state = self.lock();
            loop {
                if purpose != Use::Read {
                    if let Some(failure) = state.failed.get(file) {
                        return Err(failure.error(file));
                    }
                }
                if !state.closing.contains(file) {
                    break;
                }
                state = self.wait(state);
            }
            if let Some(leased) = state.lease(file, purpose) {
                return Ok(leased);
            }
            let state = self.reserve(state);
            let forgets = state.forgets;
            drop(state);
            let opened = if create {
                self.open_or_create(&path)
            } else {
                open_existing(&path).map(|f| (f, false))
            };
            let mut state = self.lock();
            state.transient -= 1;
            if state.waiters > 0 {
                self.inner.freed.notify_all();
            }
            let (opened, created) = opened?;
            if !created {
                state.reopens += 1;
            }
            if state.handles.contains_key(file)
                || state.closing.contains(file)
                || state.forgets != forgets
            {
                // Another thread opened it meanwhile, or it was removed or replaced while
                // this open ran (this handle may name the old inode): start again.
                continue;
            }
            let slots = state.open_files();
            debug_assert!(slots < self.inner.max_open, "{slots} open at the cap");
            return Ok(state.insert(file.to_string(), opened, purpose));
        }
    }

    /// Takes one descriptor slot (`transient += 1`), closing handles to make room: a synced
    /// one not in use if there is one, else an unsynced one after its fsync (see the module
    /// docs), else waits for an operation to finish.
    fn reserve<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        loop {
            if state.open_files() < self.inner.max_open {
                state.transient += 1;
                return state;
            }
            let (clean, unsynced) = state.victims();
            if let Some(tick) = clean {
                // Not in use, so no clone is out: this closes the descriptor.
                drop(state.remove_at(tick));
                continue;
            }
            let Some(tick) = unsynced else {
                state = self.wait(state);
                continue;
            };
            let Some((name, cached)) = state.remove_at(tick) else {
                continue;
            };
            state.closing.insert(name.clone());
            state.transient += 1;
            drop(state);
            let synced = cached.file.sync_data();
            #[cfg(test)]
            let synced = match state_hooks::take_close_sync_failure() {
                true => Err(io::Error::other("EIO (injected)")),
                false => synced,
            };
            drop(cached);
            state = self.lock();
            state.transient -= 1;
            state.closing.remove(&name);
            state.synced_closes += 1;
            if let Err(e) = synced {
                tracing::error!(file = %name, error = %e, "fsync before closing a file failed; its log will fail at its next write or flush");
                state.failed.insert(
                    name,
                    Failure {
                        kind: e.kind(),
                        message: e.to_string(),
                    },
                );
            }
            self.inner.freed.notify_all();
        }
    }

    /// Runs `f` with one descriptor slot taken for a file or directory it opens and closes
    /// itself (directories to sync or list, scratch files).
    fn with_slot<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        drop(self.reserve(self.lock()));
        let result = f();
        let mut state = self.lock();
        state.transient -= 1;
        if state.waiters > 0 {
            self.inner.freed.notify_all();
        }
        result
    }

    /// Opens `path` for appending, creating it and any missing parent directories, and marks
    /// each directory that gained an entry as dirty. Says whether it created the file.
    fn open_or_create(&self, path: &Path) -> io::Result<(File, bool)> {
        let create = || {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create_new(true)
                .open(path)
        };
        let created = match create() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return open_existing(path).map(|f| (f, false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_dirs(parent_of(path))?;
                match create() {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return open_existing(path).map(|f| (f, false))
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.lock().mark_dirty(parent_of(path));
        Ok((created, true))
    }

    /// Creates `dir` and its missing ancestors under the root, marking the parent of each
    /// directory created as dirty.
    fn create_dirs(&self, dir: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut cur = dir;
        while cur != self.inner.root && !cur.exists() {
            missing.push(cur.to_path_buf());
            cur = parent_of(cur);
        }
        for d in missing.iter().rev() {
            match std::fs::create_dir(d) {
                Ok(()) => self.lock().mark_dirty(parent_of(d)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Fsyncs the dirty directories between `path`'s parent and the root (and `path`'s parent
    /// in any case when `force_parent`), deepest first.
    fn sync_dirs(&self, path: &Path, force_parent: bool) -> io::Result<()> {
        let mut todo: Vec<(PathBuf, Option<u64>)> = Vec::new();
        {
            let state = self.lock();
            let mut dir = parent_of(path);
            let mut first = true;
            loop {
                let generation = state.dirty_dirs.get(dir).copied();
                if generation.is_some() || (first && force_parent) {
                    todo.push((dir.to_path_buf(), generation));
                }
                first = false;
                if dir == self.inner.root || !dir.starts_with(&self.inner.root) {
                    break;
                }
                dir = parent_of(dir);
            }
        }
        for (dir, generation) in todo {
            self.with_slot(|| File::open(&dir)?.sync_all())?;
            if let Some(generation) = generation {
                let mut state = self.lock();
                if state.dirty_dirs.get(&dir) == Some(&generation) {
                    state.dirty_dirs.remove(&dir);
                }
            }
        }
        Ok(())
    }
}

impl Failure {
    fn error(&self, file: &str) -> io::Error {
        io::Error::new(
            self.kind,
            format!(
                "{file}: an fsync before its handle was closed failed ({}); its unsynced writes may be lost",
                self.message
            ),
        )
    }
}

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Descriptors held: cached handles and transient ones.
    fn open_files(&self) -> usize {
        self.handles.len() + self.transient
    }

    /// The cached handle of `file` leased for `purpose`, now the most recently used.
    fn lease(&mut self, file: &str, purpose: Use) -> Option<(Arc<File>, u64)> {
        let tick = self.next_tick();
        let cached = self.handles.get_mut(file)?;
        let old = std::mem::replace(&mut cached.tick, tick);
        cached.in_use += 1;
        // Marked before the write, so that a sync racing it cannot clear the mark after.
        cached.unsynced |= purpose == Use::Write;
        let leased = (cached.file.clone(), cached.id);
        self.lru.remove(&old);
        self.lru.insert(tick, file.to_string());
        Some(leased)
    }

    /// Caches a handle just opened, leased for `purpose`.
    fn insert(&mut self, file: String, handle: File, purpose: Use) -> (Arc<File>, u64) {
        let tick = self.next_tick();
        let handle = Arc::new(handle);
        self.lru.insert(tick, file.clone());
        self.handles.insert(
            file,
            Cached {
                file: handle.clone(),
                tick,
                id: tick,
                unsynced: purpose == Use::Write,
                in_use: 1,
            },
        );
        (handle, tick)
    }

    /// The ticks of the least recently used handle not in use with nothing to sync, and of
    /// the least recently used one not in use with writes to sync.
    fn victims(&self) -> (Option<u64>, Option<u64>) {
        let mut unsynced = None;
        for (&tick, name) in &self.lru {
            let Some(cached) = self.handles.get(name) else {
                continue;
            };
            if cached.in_use > 0 {
                continue;
            }
            if !cached.unsynced {
                return (Some(tick), unsynced);
            }
            unsynced.get_or_insert(tick);
        }
        (None, unsynced)
    }

    fn remove_at(&mut self, tick: u64) -> Option<(String, Cached)> {
        let name = self.lru.remove(&tick)?;
        let cached = self.handles.remove(&name)?;
        Some((name, cached))
    }

    /// Drops the cached handle of `file` (its users keep theirs until done) and any failure
    /// kept against the name: the file is gone or replaced whole.
    fn forget(&mut self, file: &str) {
        self.forgets += 1;
        self.failed.remove(file);
        if let Some(cached) = self.handles.remove(file) {
            self.lru.remove(&cached.tick);
            if cached.in_use > 0 {
                self.zombies.insert(cached.id, cached.in_use);
                self.transient += 1;
            }
        }
    }

    fn set_unsynced(&mut self, file: &str, unsynced: bool) {
        if let Some(cached) = self.handles.get_mut(file) {
            cached.unsynced = unsynced;
        }
    }

    fn mark_dirty(&mut self, dir: &Path) {
        self.generation += 1;
        self.dirty_dirs.insert(dir.to_path_buf(), self.generation);
    }
}

fn open_existing(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).append(true).open(path)
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(path)
}

/// Writes all of `bufs` with vectored writes, looping over partial writes.
fn write_all_vectored(mut out: &File, bufs: &[&[u8]]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = bufs
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| IoSlice::new(b))
        .collect();
    let mut rest: &mut [IoSlice<'_>] = &mut slices;
    while !rest.is_empty() {
        match out.write_vectored(rest) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the file took no bytes",
                ))
            }
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Storage for FsStorage {
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
        // An empty append only creates the file (a new segment's files): its handle has no
        // data to fsync before it may be closed, and its directory entry is the dirty
        // directory's to sync. Otherwise creating 10,000 partitions with a 256-handle cache
        // fsynced every evicted empty file, one by one on the core's thread.
        let purpose = if bufs.iter().all(|b| b.is_empty()) {
            Use::Read
        } else {
            Use::Write
        };
        self.with_handle(file, true, purpose, |handle| {
            write_all_vectored(handle, bufs)
        })
    }

    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        self.with_handle(file, false, Use::Read, |handle| {
            let file_len = handle.metadata()?.len();
            // Never allocate more than the file can give.
            let len = len.min(usize::try_from(file_len.saturating_sub(pos)).unwrap_or(usize::MAX));
            let mut buf = BytesMut::zeroed(len);
            let mut filled = 0;
            while filled < len {
                match handle.read_at(&mut buf[filled..], pos + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            Ok(buf.freeze())
        })
    }

    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        match std::fs::metadata(self.path(file)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        // A write like any other: the new length must reach the disk before the handle may
        // close, so the cut is synced (and its failure seen) like appended bytes.
        self.with_handle(file, false, Use::Write, |handle| {
            if handle.metadata()?.len() > len {
                handle.set_len(len)?;
            }
            Ok(())
        })
    }

    fn remove(&self, file: &str) -> io::Result<()> {
        let path = self.path(file)?;
        self.lock().forget(file);
        match std::fs::remove_file(&path) {
            // A removal is a directory change like a creation: it is durable only once the
            // directory is fsynced, which the next sync of any file in it now does. Without
            // this, segments cut by a truncation come back after a power loss.
            Ok(()) => {
                self.lock().mark_dirty(parent_of(&path));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let path = if dir.is_empty() {
            self.inner.root.clone()
        } else {
            self.path(dir.trim_end_matches('/'))?
        };
        // The directory stays open while it is read: a descriptor like any other.
        let mut names = self.with_slot(|| {
            let entries = match std::fs::read_dir(path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut names = Vec::new();
            for entry in entries {
                let name = entry?.file_name();
                // Names that are not UTF-8 were not written by Keel.
                let Some(name) = name.to_str() else { continue };
                // The lock file is the storage's own, not the core's.
                let own_lock = dir.is_empty() && name == LOCK_FILE;
                if !own_lock && !name.ends_with(TMP_SUFFIX) {
                    names.push(name.to_string());
                }
            }
            Ok(names)
        })?;
        names.sort();
        Ok(names)
    }

    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        let path = self.path(file)?;
        let mut tmp_name = path.clone().into_os_string();
        tmp_name.push(TMP_SUFFIX);
        let tmp = PathBuf::from(tmp_name);
        self.create_dirs(parent_of(&path))?;
        self.with_slot(|| {
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            out.write_all(contents)?;
            out.sync_all()
        })?;
        // The cached handle (if any) names the old inode: drop it before the rename.
        self.lock().forget(file);
        std::fs::rename(&tmp, &path)?;
        self.sync_dirs(&path, true)
    }

    fn sync(&self, file: &str) -> io::Result<()> {
        let path = self.path(file)?;
        self.with_handle(file, false, Use::Sync, |handle| {
            // Cleared before the fsync: a write that lands meanwhile marks it again.
            self.lock().set_unsynced(file, false);
            handle.sync_data().inspect_err(|_| {
                self.lock().set_unsynced(file, true);
            })
        })?;
        self.sync_dirs(&path, false)
    }

    fn volume_bytes(&self) -> Option<(u64, u64)> {
        let stats = rustix::fs::statvfs(&self.inner.root).ok()?;
        let unit = stats.f_frsize;
        Some((
            stats.f_blocks.saturating_mul(unit),
            stats.f_bavail.saturating_mul(unit),
        ))
    }
}

/// Test hooks: a close-time fsync failure cannot be provoked on a real filesystem.
#[cfg(test)]
mod state_hooks {
    use std::cell::Cell;

    thread_local! {
        static FAIL_CLOSE_SYNC: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes this thread's next fsync before a close fail.
    pub fn fail_next_close_sync() {
        FAIL_CLOSE_SYNC.with(|f| f.set(true));
    }

    pub fn take_close_sync_failure() -> bool {
        FAIL_CLOSE_SYNC.with(|f| f.replace(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("keel-fs-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn append_creates_directories_and_reads_back() {
        let dir = TempDir::new("append");
        let disk = FsStorage::open(&dir.0).unwrap();
        disk.append("orders-0/00000000000000000000.log", &[b"he", b"", b"llo"])
            .unwrap();
        disk.append("orders-0/00000000000000000000.log", &[b" world"])
            .unwrap();
        assert_eq!(
            &disk
                .read_at("orders-0/00000000000000000000.log", 1, 4)
                .unwrap()[..],
            b"ello"
        );
        assert_eq!(
            &disk
                .read_at("orders-0/00000000000000000000.log", 6, 100)
                .unwrap()[..],
            b"world"
        );
        assert_eq!(
            disk.read_at("orders-0/00000000000000000000.log", 100, 10)
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            disk.len("orders-0/00000000000000000000.log").unwrap(),
            Some(11)
        );
        assert_eq!(disk.len("orders-0/nope").unwrap(), None);
        assert_eq!(
            disk.read_at("nope", 0, 1).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            std::fs::read(dir.0.join("orders-0/00000000000000000000.log")).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn large_vectored_append_is_complete() {
        let dir = TempDir::new("large");
        let disk = FsStorage::open(&dir.0).unwrap();
        let a = vec![1u8; 3 << 20];
        let b = vec![2u8; 5 << 20];
        let bufs: Vec<&[u8]> = (0..200)
            .map(|i| if i % 2 == 0 { &a[..1000] } else { &b[..] })
            .collect();
        disk.append("big", &bufs).unwrap();
        let expected: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        assert_eq!(disk.len("big").unwrap(), Some(expected));
    }

    #[test]
    fn truncate_remove_and_list() {
        let dir = TempDir::new("list");
        let disk = FsStorage::open(&dir.0).unwrap();
        disk.append("b-0/1.log", &[b"x"]).unwrap();
        disk.append("a-0/2.log", &[b"y"]).unwrap();
        disk.append("a-0/1.log", &[b"hello"]).unwrap();
        disk.append("meta", &[b"z"]).unwrap();
        assert_eq!(disk.list("").unwrap(), vec!["a-0", "b-0", "meta"]);
        assert_eq!(disk.list("a-0").unwrap(), vec!["1.log", "2.log"]);
        assert_eq!(disk.list("nope").unwrap(), Vec::<String>::new());
        disk.truncate("a-0/1.log", 2).unwrap();
        disk.truncate("a-0/1.log", 10).unwrap();
        assert_eq!(disk.len("a-0/1.log").unwrap(), Some(2));
        disk.remove("a-0/1.log").unwrap();
        disk.remove("a-0/1.log").unwrap();
        assert_eq!(disk.list("a-0").unwrap(), vec!["2.log"]);
        // Appending after a remove creates a fresh file, not a write to the unlinked inode.
        disk.append("a-0/1.log", &[b"new"]).unwrap();
        assert_eq!(std::fs::read(dir.0.join("a-0/1.log")).unwrap(), b"new");
    }

    #[test]
    fn the_volume_has_a_size_and_room() {
        let dir = TempDir::new("volume");
        let disk = FsStorage::open(&dir.0).unwrap();
        let (total, usable) = disk.volume_bytes().expect("statvfs of a real directory");
        assert!(total > 0 && usable <= total, "{total} {usable}");
    }

    #[test]
    fn replace_is_visible_and_hides_its_scratch_file() {
        let dir = TempDir::new("replace");
        let disk = FsStorage::open(&dir.0).unwrap();
        disk.append("meta/checkpoint", &[b"old contents"]).unwrap();
        disk.replace("meta/checkpoint", b"new").unwrap();
        assert_eq!(
            &disk.read_at("meta/checkpoint", 0, 100).unwrap()[..],
            b"new"
        );
        // A cached append handle must not write to the replaced inode.
        disk.append("meta/checkpoint", &[b"+"]).unwrap();
        assert_eq!(
            std::fs::read(dir.0.join("meta/checkpoint")).unwrap(),
            b"new+"
        );
        std::fs::write(dir.0.join("meta/other.tmp"), b"torn").unwrap();
        assert_eq!(disk.list("meta").unwrap(), vec!["checkpoint"]);
        disk.replace("fresh/dir/file", b"x").unwrap();
        assert_eq!(disk.len("fresh/dir/file").unwrap(), Some(1));
    }

    #[test]
    fn a_removal_is_made_durable_by_the_next_sync_in_its_directory() {
        let dir = TempDir::new("remove");
        let disk = FsStorage::open(&dir.0).unwrap();
        for f in ["t-0/a.log", "t-0/b.log"] {
            disk.append(f, &[b"x"]).unwrap();
            disk.sync(f).unwrap();
        }
        assert!(!disk.lock().dirty_dirs.contains_key(&dir.0.join("t-0")));
        disk.remove("t-0/b.log").unwrap();
        assert!(
            disk.lock().dirty_dirs.contains_key(&dir.0.join("t-0")),
            "a removal must reach the directory's next fsync (truncated segments must stay gone)"
        );
        disk.append("t-0/a.log", &[b"y"]).unwrap();
        disk.sync("t-0/a.log").unwrap();
        assert!(!disk.lock().dirty_dirs.contains_key(&dir.0.join("t-0")));
    }

    #[test]
    fn sync_clears_the_dirty_directories_on_the_path() {
        let dir = TempDir::new("sync");
        let disk = FsStorage::open(&dir.0).unwrap();
        disk.append("t-0/a.log", &[b"x"]).unwrap();
        disk.append("u-0/b.log", &[b"x"]).unwrap();
        {
            let state = disk.lock();
            assert!(state.dirty_dirs.contains_key(&dir.0));
            assert!(state.dirty_dirs.contains_key(&dir.0.join("t-0")));
            assert!(state.dirty_dirs.contains_key(&dir.0.join("u-0")));
        }
        disk.sync("t-0/a.log").unwrap();
        {
            let state = disk.lock();
            assert!(
                !state.dirty_dirs.contains_key(&dir.0),
                "the root gained t-0 and is synced"
            );
            assert!(!state.dirty_dirs.contains_key(&dir.0.join("t-0")));
            assert!(
                state.dirty_dirs.contains_key(&dir.0.join("u-0")),
                "not on the synced path"
            );
        }
        // An append to an existing file dirties nothing.
        disk.append("t-0/a.log", &[b"y"]).unwrap();
        assert!(!disk.lock().dirty_dirs.contains_key(&dir.0.join("t-0")));
        assert_eq!(
            disk.sync("missing").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn handle_cache_is_bounded() {
        let dir = TempDir::new("lru");
        let disk = FsStorage::with_max_open_files(&dir.0, 3).unwrap();
        for i in 0..10 {
            disk.append(&format!("f{i}"), &[b"abc"]).unwrap();
            disk.sync(&format!("f{i}")).unwrap();
            assert!(disk.open_files() <= 3);
        }
        // The most recently used stay; evicted files reopen transparently.
        for i in 0..10 {
            assert_eq!(&disk.read_at(&format!("f{i}"), 0, 3).unwrap()[..], b"abc");
        }
        assert_eq!(disk.open_files(), 3);
    }

    #[test]
    fn handles_with_unsynced_writes_are_synced_before_they_close_and_the_cap_holds() {
        let dir = TempDir::new("unsynced");
        let disk = FsStorage::with_max_open_files(&dir.0, 3).unwrap();
        // Every file written and none synced: the cache may not grow past its cap, so it
        // syncs the least recently used before closing it.
        for i in 0..10 {
            disk.append(&format!("t-0/f{i}"), &[b"abc"]).unwrap();
            assert!(disk.open_files() <= 3, "{} open", disk.open_files());
        }
        let stats = disk.file_cache_stats();
        assert_eq!(stats.open_files, 3);
        assert_eq!(stats.synced_closes, 7, "{stats:?}");
        // A synced handle goes first: f9 was synced, so a new file closes it and not an
        // unsynced one.
        disk.sync("t-0/f9").unwrap();
        disk.append("t-0/g", &[b"x"]).unwrap();
        assert_eq!(disk.file_cache_stats().synced_closes, 7);
        // Every file reads back, and the flusher's later syncs (reopening) succeed.
        for i in 0..10 {
            let f = format!("t-0/f{i}");
            assert_eq!(&disk.read_at(&f, 0, 3).unwrap()[..], b"abc");
            disk.sync(&f).unwrap();
            assert!(disk.open_files() <= 3);
        }
        assert!(disk.file_cache_stats().reopens >= 7);
        assert!(
            disk.lock().dirty_dirs.is_empty(),
            "the syncs still made the new entries durable"
        );
    }

    #[test]
    fn files_only_created_close_without_an_fsync_and_their_entries_stay_dirty() {
        let dir = TempDir::new("created");
        let disk = FsStorage::with_max_open_files(&dir.0, 3).unwrap();
        for i in 0..10 {
            disk.append(&format!("t-0/f{i}"), &[]).unwrap();
            assert!(disk.open_files() <= 3, "{} open", disk.open_files());
        }
        assert_eq!(disk.file_cache_stats().synced_closes, 0);
        assert!(disk.lock().dirty_dirs.contains_key(&dir.0.join("t-0")));
        // Written later, a file is unsynced like any other: the cache keeps it over the
        // files only created, and syncs it before it would close it.
        disk.append("t-0/f0", &[b"abc"]).unwrap();
        for i in 0..3 {
            disk.append(&format!("t-0/g{i}"), &[b"x"]).unwrap();
        }
        assert_eq!(disk.file_cache_stats().synced_closes, 1);
        disk.sync("t-0/f1").unwrap();
        assert!(disk.lock().dirty_dirs.is_empty());
        assert_eq!(&disk.read_at("t-0/f0", 0, 3).unwrap()[..], b"abc");
    }

    #[test]
    fn a_failed_fsync_before_a_close_fails_the_files_later_writes_and_syncs() {
        let dir = TempDir::new("closefail");
        let disk = FsStorage::with_max_open_files(&dir.0, 2).unwrap();
        disk.append("a", &[b"lost?"]).unwrap();
        disk.append("b", &[b"x"]).unwrap();
        // Opening c must close a, which has unsynced writes; that fsync fails.
        state_hooks::fail_next_close_sync();
        disk.append("c", &[b"y"]).unwrap();
        assert!(!disk.lock().handles.contains_key("a"));
        // The flusher's sync of a reports the failure (its log fails), and so does a write.
        let e = disk.sync("a").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.to_string().contains("EIO (injected)"), "{e}");
        assert!(disk.append("a", &[b"more"]).is_err());
        assert!(disk.truncate("a", 0).is_err());
        assert!(disk.sync("a").is_err(), "sticky: fsyncgate");
        // Reading what is there still works; other files are unaffected.
        assert_eq!(&disk.read_at("a", 0, 5).unwrap()[..], b"lost?");
        disk.sync("b").unwrap();
        // Replaced whole (a checkpoint) or removed, the name is usable again.
        disk.replace("a", b"new").unwrap();
        disk.append("a", &[b"+"]).unwrap();
        disk.sync("a").unwrap();
        assert_eq!(std::fs::read(dir.0.join("a")).unwrap(), b"new+");
    }

    #[test]
    fn a_handle_in_use_is_not_closed_and_a_full_cache_waits_for_it() {
        let dir = TempDir::new("inuse");
        let disk = FsStorage::with_max_open_files(&dir.0, 2).unwrap();
        disk.append("a", &[b"x"]).unwrap();
        disk.append("b", &[b"x"]).unwrap();
        // Two operations under way (a read of a, a flusher's fsync of b, say).
        let (_, a) = disk.acquire("a", false, Use::Read).unwrap();
        let (_, b) = disk.acquire("b", false, Use::Sync).unwrap();
        let other = disk.clone();
        let opener = std::thread::spawn(move || other.append("c", &[b"y"]));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!opener.is_finished(), "no slot: the open waits");
        assert_eq!(disk.open_files(), 2);
        disk.release("a", a);
        opener.join().unwrap().unwrap();
        assert!(disk.lock().handles.contains_key("b"), "still in use");
        assert!(!disk.lock().handles.contains_key("a"));
        assert_eq!(disk.open_files(), 2);
        disk.release("b", b);
    }

    #[test]
    fn a_handle_removed_while_in_use_counts_until_its_user_is_done() {
        let dir = TempDir::new("zombie");
        let disk = FsStorage::with_max_open_files(&dir.0, 4).unwrap();
        disk.append("a", &[b"x"]).unwrap();
        let (_, a) = disk.acquire("a", false, Use::Read).unwrap();
        disk.remove("a").unwrap();
        assert_eq!(
            disk.open_files(),
            1,
            "the reader still holds the descriptor"
        );
        disk.release("a", a);
        assert_eq!(disk.open_files(), 0);
    }

    #[test]
    fn directories_and_scratch_files_count_against_the_cap() {
        let dir = TempDir::new("slots");
        let disk = FsStorage::with_max_open_files(&dir.0, 2).unwrap();
        for i in 0..5 {
            disk.append(&format!("d{i}/f"), &[b"x"]).unwrap();
        }
        // Each sync opens the file's directories too; each replace a scratch file.
        for i in 0..5 {
            disk.sync(&format!("d{i}/f")).unwrap();
            disk.replace(&format!("d{i}/cp"), b"c").unwrap();
            assert_eq!(disk.list(&format!("d{i}")).unwrap(), vec!["cp", "f"]);
            assert!(disk.open_files() <= 2);
        }
    }

    #[test]
    fn names_cannot_escape_the_root() {
        let dir = TempDir::new("escape");
        let disk = FsStorage::open(&dir.0).unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x", "", "./a"] {
            assert_eq!(
                disk.append(bad, &[b"x"]).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn clones_share_state() {
        let dir = TempDir::new("clone");
        let disk = FsStorage::open(&dir.0).unwrap();
        let other = disk.clone();
        disk.append("f", &[b"abc"]).unwrap();
        assert_eq!(other.open_files(), 1);
        other.sync("f").unwrap();
        assert!(disk.lock().dirty_dirs.is_empty());
    }
}
