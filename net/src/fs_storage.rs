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
//! The lock is never held across a `write`, `fsync` or `read`: the node task appends while the
//! flusher syncs, and group commit is worth nothing if the append waits for the fsync.
//!
//! A handle with writes not yet synced is not evicted (the cache may then exceed its cap for
//! a while): Linux reports a writeback error only to descriptors open when it happened, so a
//! file closed and reopened between its write and its fsync could have an `EIO` go unseen.
//!
//! It also holds the root's [`DataDirLock`] (data_dir.rs) for as long as it lives, so two
//! brokers never share one directory; [`Storage::list`] hides the lock file.
//!
//! Names ending in `.tmp` are [`Storage::replace`]'s scratch files: [`Storage::list`] hides
//! them, so a replace cut short by a crash leaves nothing the core would mistake for data.

use crate::data_dir::{DataDirError, DataDirLock, LOCK_FILE};
use bytes::{Bytes, BytesMut};
use keel_core::storage::Storage;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many files [`FsStorage::open`] keeps open at most.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// The suffix of [`Storage::replace`]'s scratch files.
const TMP_SUFFIX: &str = ".tmp";

/// Files under a root directory. Cloning shares the handle cache and the directory bookkeeping.
#[derive(Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    max_open: usize,
    state: Mutex<State>,
    /// Held for the storage's life: no second broker can open the same root meanwhile.
    _lock: DataDirLock,
}

struct Cached {
    file: Arc<File>,
    /// The tick of its last use: its key in `State::lru`.
    tick: u64,
    /// Written through since its last sync: not to be evicted.
    unsynced: bool,
}

#[derive(Default)]
struct State {
    /// Open handles by file name.
    handles: HashMap<String, Cached>,
    /// The same handles by last use, oldest first: the eviction order.
    lru: BTreeMap<u64, String>,
    tick: u64,
    /// Directories with entries created since they were last fsynced, each with the
    /// generation of its latest change (so a sync that raced a new entry keeps the mark).
    dirty_dirs: BTreeMap<PathBuf, u64>,
    generation: u64,
}

impl FsStorage {
    /// Opens (creating it if needed) the storage rooted at `root`, caching at most
    /// [`DEFAULT_MAX_OPEN_FILES`] open files. Takes the directory's lock before reading
    /// anything and checks it can be written ([`DataDirLock`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<FsStorage, DataDirError> {
        FsStorage::with_max_open_files(root, DEFAULT_MAX_OPEN_FILES)
    }

    /// Like [`FsStorage::open`] with a cap of `max_open` (at least 1) cached handles.
    pub fn with_max_open_files(
        root: impl Into<PathBuf>,
        max_open: usize,
    ) -> Result<FsStorage, DataDirError> {
        let root = root.into();
        let lock = DataDirLock::acquire(&root)?;
        Ok(FsStorage {
            inner: Arc::new(Inner {
                root,
                max_open: max_open.max(1),
                state: Mutex::new(State::default()),
                _lock: lock,
            }),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// How many file handles are cached right now (for tests of the bound).
    pub fn open_files(&self) -> usize {
        self.lock().handles.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked while holding it; the state is a cache and
        // a set of marks, both still meaningful, so carry on.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The cached handle of `file`, opening it (and with `create`, creating it and its
    /// directories) if needed.
    fn handle(&self, file: &str, create: bool) -> io::Result<Arc<File>> {
        {
            let mut state = self.lock();
            if let Some(handle) = state.touch(file) {
                return Ok(handle);
            }
        }
        let path = self.path(file)?;
        let handle = Arc::new(if create {
            self.open_or_create(&path)?
        } else {
            open_existing(&path)?
        });
        let mut state = self.lock();
        // Another thread may have opened it meanwhile; keep one handle per file.
        if let Some(existing) = state.touch(file) {
            return Ok(existing);
        }
        state.insert(file.to_string(), handle.clone(), self.inner.max_open);
        Ok(handle)
    }

    /// Opens `path` for appending, creating it and any missing parent directories, and marks
    /// each directory that gained an entry as dirty.
    fn open_or_create(&self, path: &Path) -> io::Result<File> {
        let create = || {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create_new(true)
                .open(path)
        };
        let created = match create() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return open_existing(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.create_dirs(parent_of(path))?;
                match create() {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        return open_existing(path)
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.lock().mark_dirty(parent_of(path));
        Ok(created)
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
            File::open(&dir)?.sync_all()?;
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

impl State {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The cached handle of `file`, now the most recently used.
    fn touch(&mut self, file: &str) -> Option<Arc<File>> {
        let tick = self.next_tick();
        let cached = self.handles.get_mut(file)?;
        let old = std::mem::replace(&mut cached.tick, tick);
        let handle = cached.file.clone();
        self.lru.remove(&old);
        self.lru.insert(tick, file.to_string());
        Some(handle)
    }

    fn insert(&mut self, file: String, handle: Arc<File>, max_open: usize) {
        while self.handles.len() >= max_open {
            // The least recently used handle with nothing waiting for a sync.
            let victim = self
                .lru
                .iter()
                .find(|(_, name)| self.handles.get(*name).is_some_and(|c| !c.unsynced))
                .map(|(tick, _)| *tick);
            let Some(tick) = victim else { break };
            // A clone held by a reader or a sync keeps the file open until it is done.
            if let Some(name) = self.lru.remove(&tick) {
                self.handles.remove(&name);
            }
        }
        let tick = self.next_tick();
        self.lru.insert(tick, file.clone());
        self.handles.insert(
            file,
            Cached {
                file: handle,
                tick,
                unsynced: false,
            },
        );
    }

    fn forget(&mut self, file: &str) {
        if let Some(cached) = self.handles.remove(file) {
            self.lru.remove(&cached.tick);
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
        let handle = self.handle(file, true)?;
        // Marked before the write, so that a sync racing it cannot clear the mark after.
        self.lock().set_unsynced(file, true);
        write_all_vectored(&handle, bufs)
    }

    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        let handle = self.handle(file, false)?;
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
    }

    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        match std::fs::metadata(self.path(file)?) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        let handle = self.handle(file, false)?;
        if handle.metadata()?.len() > len {
            handle.set_len(len)?;
        }
        Ok(())
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
        names.sort();
        Ok(names)
    }

    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        let path = self.path(file)?;
        let mut tmp_name = path.clone().into_os_string();
        tmp_name.push(TMP_SUFFIX);
        let tmp = PathBuf::from(tmp_name);
        self.create_dirs(parent_of(&path))?;
        {
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            out.write_all(contents)?;
            out.sync_all()?;
        }
        // The cached handle (if any) names the old inode: drop it before the rename.
        self.lock().forget(file);
        std::fs::rename(&tmp, &path)?;
        self.sync_dirs(&path, true)
    }

    fn sync(&self, file: &str) -> io::Result<()> {
        let path = self.path(file)?;
        let handle = self.handle(file, false)?;
        // Cleared before the fsync: a write that lands meanwhile marks it again.
        self.lock().set_unsynced(file, false);
        if let Err(e) = handle.sync_data() {
            self.lock().set_unsynced(file, true);
            return Err(e);
        }
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
    fn handles_with_unsynced_writes_are_not_evicted() {
        let dir = TempDir::new("unsynced");
        let disk = FsStorage::with_max_open_files(&dir.0, 2).unwrap();
        for i in 0..4 {
            disk.append(&format!("f{i}"), &[b"abc"]).unwrap();
        }
        assert_eq!(
            disk.open_files(),
            4,
            "every handle still has a write to sync"
        );
        for i in 0..4 {
            disk.sync(&format!("f{i}")).unwrap();
        }
        disk.append("f4", &[b"x"]).unwrap();
        disk.sync("f4").unwrap();
        disk.read_at("f1", 0, 1).unwrap();
        assert_eq!(
            disk.open_files(),
            2,
            "synced handles are evicted down to the cap"
        );
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
