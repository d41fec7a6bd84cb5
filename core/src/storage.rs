//! The Storage boundary: the only way the core touches persistent bytes.
//!
//! Files are named by `/`-separated relative paths (`orders-0/00000000000000000000.log`).
//! Writes land in a cache (the OS page cache for the filesystem implementation) and are not
//! durable until [`Storage::sync`] returns. The core never calls `sync` itself: it asks the
//! driver for a flush through `Output::Flush` and learns of durability through
//! `Input::Flushed`, so that the driver can group-commit many appends in one fsync, off the
//! core's thread. Implementations: the filesystem one in keel-net, [`MemStorage`] here (tests),
//! and the simulator's faulty disk in keel-sim.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

/// Files by name. Methods take `&self` so one handle can be shared by the core (which
/// appends and reads) and the driver (which syncs); implementations synchronise internally.
pub trait Storage: Send + Sync {
    /// Appends the concatenation of `bufs` at the end of `file`, creating it if missing.
    /// Vectored so that a batch whose header the broker rewrote is written without first
    /// being copied into one buffer.
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()>;

    /// Reads up to `len` bytes at `pos`; fewer only at the end of the file.
    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes>;

    /// The file's current length, or `None` if it does not exist.
    fn len(&self, file: &str) -> io::Result<Option<u64>>;

    /// Cuts `file` to `len` bytes (no-op if already shorter).
    fn truncate(&self, file: &str, len: u64) -> io::Result<()>;

    /// Deletes `file` (no error if it is already gone).
    fn remove(&self, file: &str) -> io::Result<()>;

    /// Names of the files directly inside `dir` (`""` for the root), sorted, without the
    /// directory prefix. Directories are listed as their own names.
    fn list(&self, dir: &str) -> io::Result<Vec<String>>;

    /// Replaces `file` with `contents` atomically: after a crash either the old or the new
    /// contents are there, never a mix. Durable on return.
    ///
    /// The one deliberate exception to "nothing is durable until `Flushed`": the core calls
    /// it for small files that must be durable before it may go on, and that are written
    /// rarely, far from the produce path: the topic metadata (before CreateTopics is
    /// answered or a new log is used; metadata.rs), a producer-id block (before an id from it
    /// is handed out; broker/idempotence.rs), a log's recovery-point checkpoint (once per
    /// checkpoint round and at clean shutdown, never per append; log/mod.rs), an index that
    /// recovery rebuilt, and a compaction's swap of a cleaned segment (log/compaction.rs).
    /// Each blocks the core's thread for one fsync; routing them through Flush would park
    /// every answer that depends on them. The metadata write moves into the metadata Raft
    /// log, durable through Flush like every log, when the cluster arrives (issue 13).
    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()>;

    /// Makes everything written to `file` so far (and its directory entry) durable.
    /// Called by drivers, never by the core.
    fn sync(&self, file: &str) -> io::Result<()>;

    /// The size of the volume holding the storage and the bytes still usable on it, if the
    /// implementation knows (DescribeLogDirs reports them; -1 otherwise).
    fn volume_bytes(&self) -> Option<(u64, u64)> {
        None
    }
}

/// A plain in-memory disk with no faults: what is written is kept, and `sync` is a no-op
/// apart from being counted. Cloning shares the same files.
#[derive(Clone, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Default)]
struct MemInner {
    files: BTreeMap<String, Vec<u8>>,
    syncs: u64,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many `sync` calls this disk has seen; lets tests check group commit.
    pub fn sync_count(&self) -> u64 {
        self.lock().syncs
    }

    /// The bytes of `file`, for tests that corrupt or inspect data at rest.
    pub fn contents(&self, file: &str) -> Option<Vec<u8>> {
        self.lock().files.get(file).cloned()
    }

    /// Overwrites `file` wholesale, for tests that plant torn or corrupt data.
    pub fn set_contents(&self, file: &str, data: Vec<u8>) {
        self.lock().files.insert(file.to_string(), data);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        // A poisoned lock means a test already panicked while holding it; keep going so the
        // original panic is the one reported.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn not_found(file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file: {file}"))
}

/// Lists the direct children of `dir` among `names`; shared by the in-memory disks.
pub fn list_children<'a>(names: impl Iterator<Item = &'a String>, dir: &str) -> Vec<String> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    let mut out: Vec<String> = names
        .filter_map(|name| name.strip_prefix(prefix.as_str()))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
        .collect();
    out.dedup();
    out
}

impl Storage for MemStorage {
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
        let mut inner = self.lock();
        let data = inner.files.entry(file.to_string()).or_default();
        for buf in bufs {
            data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        let inner = self.lock();
        let data = inner.files.get(file).ok_or_else(|| not_found(file))?;
        let start = (pos as usize).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(Bytes::copy_from_slice(&data[start..end]))
    }

    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        Ok(self.lock().files.get(file).map(|d| d.len() as u64))
    }

    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        let mut inner = self.lock();
        let data = inner.files.get_mut(file).ok_or_else(|| not_found(file))?;
        data.truncate(len as usize);
        Ok(())
    }

    fn remove(&self, file: &str) -> io::Result<()> {
        self.lock().files.remove(file);
        Ok(())
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        let inner = self.lock();
        Ok(list_children(inner.files.keys(), dir))
    }

    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        let mut inner = self.lock();
        inner.files.insert(file.to_string(), contents.to_vec());
        inner.syncs += 1;
        Ok(())
    }

    fn sync(&self, file: &str) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.files.contains_key(file) {
            return Err(not_found(file));
        }
        inner.syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shows_direct_children_sorted() {
        let disk = MemStorage::new();
        disk.append("b-0/1.log", &[b"x"]).unwrap();
        disk.append("a-0/2.log", &[b"y"]).unwrap();
        disk.append("a-0/1.log", &[b"y"]).unwrap();
        disk.append("meta", &[b"z"]).unwrap();
        assert_eq!(disk.list("").unwrap(), vec!["a-0", "b-0", "meta"]);
        assert_eq!(disk.list("a-0").unwrap(), vec!["1.log", "2.log"]);
    }

    #[test]
    fn vectored_append_and_read_back() {
        let disk = MemStorage::new();
        disk.append("f", &[b"he", b"llo"]).unwrap();
        assert_eq!(&disk.read_at("f", 1, 3).unwrap()[..], b"ell");
        assert_eq!(&disk.read_at("f", 3, 100).unwrap()[..], b"lo");
        disk.truncate("f", 2).unwrap();
        assert_eq!(disk.len("f").unwrap(), Some(2));
    }
}
