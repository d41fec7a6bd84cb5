//! [`FaultyStorage`] owns the storage faults of the core's tests (a capacity that runs out,
//! writes that fail with EIO or ENOSPC, torn writes, a crash after the Nth call of a kind) and
//! the record of what the code under test asked of the disk; the files live in a
//! [`MemStorage`] that the test may read and corrupt behind the faults' back.
//!
//! The simulator's disk (keel-sim) injects faults at random from a seed; this one injects
//! exactly the fault a test names, when it names it, so that the test can assert exact
//! outcomes. Every knob is off by default: a fresh `FaultyStorage` behaves as its
//! `MemStorage`.

use crate::storage::{MemStorage, Storage};
use bytes::Bytes;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A storage call that a [`Fault`] can fail: the two that write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Append,
    Replace,
}

/// What a faulted call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Writes nothing and fails with EIO: the device is broken.
    Eio,
    /// Writes nothing and fails with ENOSPC.
    NoSpace,
    /// Writes the first half of the first slice, then fails with EIO: a torn append.
    /// (A `replace` is atomic: torn, it writes nothing.)
    Torn,
}

/// One injected fault: which calls it fails and how.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The call it fails (`None`: both).
    op: Option<Op>,
    /// Only calls on files whose name starts with this ("": every file).
    under: String,
    /// How many matching calls pass before this fault fails every later one.
    after: u64,
    /// Matching calls seen so far, failed ones included.
    seen: u64,
    failure: Failure,
}

impl Fault {
    /// Fails every `op` from now on with `failure`.
    pub fn every(op: Op, failure: Failure) -> Fault {
        Fault {
            op: Some(op),
            under: String::new(),
            after: 0,
            seen: 0,
            failure,
        }
    }

    /// Fails every append and every replace from now on with `failure`.
    pub fn every_write(failure: Failure) -> Fault {
        Fault {
            op: None,
            ..Fault::every(Op::Append, failure)
        }
    }

    /// Only calls on files whose name starts with `prefix`.
    pub fn under(mut self, prefix: &str) -> Fault {
        self.under = prefix.to_string();
        self
    }

    /// Lets the first `calls` matching calls pass: a crash half-way through a sequence.
    pub fn after(mut self, calls: u64) -> Fault {
        self.after = calls;
        self
    }

    /// Counts a call of `op` on `file`; the failure if this fault fails it.
    fn strikes(&mut self, op: Op, file: &str) -> Option<Failure> {
        if self.op.is_some_and(|o| o != op) || !file.starts_with(&self.under) {
            return None;
        }
        self.seen += 1;
        (self.seen > self.after).then_some(self.failure)
    }
}

/// One append as the storage saw it: the file and (address, length) of each slice, so that a
/// test can tell the caller's buffer from a copy.
pub type AppendShape = (String, Vec<(usize, usize)>);

/// The calls that succeeded since the storage was made or [`FaultyStorage::clear_calls`].
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub appends: Vec<AppendShape>,
    pub reads: u64,
    pub bytes_read: u64,
    pub replaces: u64,
}

/// A [`MemStorage`] with faults switched on and off by the test. Cloning shares the files,
/// the faults and the record.
#[derive(Clone, Default)]
pub struct FaultyStorage {
    files: MemStorage,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    /// Bytes appends and replaces may write in all (`None`: unbounded). Removals and
    /// truncations give nothing back: a test raises the capacity to model space freed by
    /// someone else.
    capacity: Option<u64>,
    /// Bytes written by appends and successful replaces, the accounting `capacity` bounds.
    written: u64,
    calls: Calls,
}

impl FaultyStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Faults over the files already in `files`.
    pub fn over(files: MemStorage) -> Self {
        FaultyStorage {
            files,
            state: Arc::default(),
        }
    }

    /// The files, behind the faults' back: for reading, corrupting and syncing them.
    pub fn files(&self) -> &MemStorage {
        &self.files
    }

    /// Adds `fault`; it acts until [`FaultyStorage::heal`].
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every fault (the capacity stays).
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// Bounds the bytes written in all: an append that does not fit writes what fits (a
    /// torn tail, as a real filesystem may leave) and fails with ENOSPC; a replace that does
    /// not fit writes nothing and fails with ENOSPC. `None` lifts the bound.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Bytes written so far by appends and replaces.
    pub fn written_bytes(&self) -> u64 {
        self.lock().written
    }

    pub fn calls(&self) -> Calls {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls = Calls::default();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // As MemStorage: a poisoned lock means a test already panicked; report that panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Counts the call against every fault; the first fault's failure that strikes it.
    fn failure(&mut self, op: Op, file: &str) -> Option<Failure> {
        self.faults
            .iter_mut()
            .filter_map(|f| f.strikes(op, file))
            .fold(None, |first, f| first.or(Some(f)))
    }

    /// How many of `len` bytes fit under the capacity.
    fn room(&self, len: u64) -> u64 {
        match self.capacity {
            Some(capacity) => capacity.saturating_sub(self.written).min(len),
            None => len,
        }
    }
}

fn eio() -> io::Error {
    io::Error::other("injected EIO")
}

fn enospc() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "injected ENOSPC")
}

impl Storage for FaultyStorage {
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
        let mut state = self.lock();
        match state.failure(Op::Append, file) {
            Some(Failure::Eio) => return Err(eio()),
            Some(Failure::NoSpace) => return Err(enospc()),
            Some(Failure::Torn) => {
                if let Some(first) = bufs.first() {
                    let half = &first[..first.len() / 2];
                    state.written += half.len() as u64;
                    self.files.append(file, &[half])?;
                }
                return Err(eio());
            }
            None => {}
        }
        let len: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let fits = state.room(len);
        state.written += fits;
        if fits < len {
            let all = bufs.concat();
            self.files.append(file, &[&all[..fits as usize]])?;
            return Err(enospc());
        }
        self.files.append(file, bufs)?;
        let shape = bufs
            .iter()
            .map(|b| (b.as_ptr() as usize, b.len()))
            .collect();
        state.calls.appends.push((file.to_string(), shape));
        Ok(())
    }

    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        let out = self.files.read_at(file, pos, len)?;
        let mut state = self.lock();
        state.calls.reads += 1;
        state.calls.bytes_read += out.len() as u64;
        Ok(out)
    }

    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        self.files.len(file)
    }

    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        self.files.truncate(file, len)
    }

    fn remove(&self, file: &str) -> io::Result<()> {
        self.files.remove(file)
    }

    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.files.list(dir)
    }

    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        match state.failure(Op::Replace, file) {
            Some(Failure::Eio | Failure::Torn) => return Err(eio()),
            Some(Failure::NoSpace) => return Err(enospc()),
            None => {}
        }
        let len = contents.len() as u64;
        if state.room(len) < len {
            return Err(enospc());
        }
        state.written += len;
        self.files.replace(file, contents)?;
        state.calls.replaces += 1;
        Ok(())
    }

    fn sync(&self, file: &str) -> io::Result<()> {
        self.files.sync(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_faults_it_is_its_mem_storage() {
        let disk = FaultyStorage::new();
        disk.append("f", &[b"he", b"llo"]).unwrap();
        disk.replace("g", b"x").unwrap();
        assert_eq!(disk.files().contents("f"), Some(b"hello".to_vec()));
        assert_eq!(&disk.read_at("f", 1, 3).unwrap()[..], b"ell");
        let calls = disk.calls();
        assert_eq!((calls.reads, calls.bytes_read, calls.replaces), (1, 3, 1));
        assert_eq!(calls.appends.len(), 1);
        assert_eq!(disk.written_bytes(), 6);
    }

    #[test]
    fn a_capacity_tears_the_append_that_crosses_it_and_refuses_a_replace_whole() {
        let disk = FaultyStorage::new();
        disk.set_capacity(Some(4));
        disk.append("f", &[b"ab"]).unwrap();
        let e = disk.append("f", &[b"cd", b"ef"]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.files().contents("f"), Some(b"abcd".to_vec()));
        assert_eq!(
            disk.replace("g", b"x").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(disk.files().contents("g"), None);
        assert_eq!(disk.calls().appends.len(), 1, "only the append that fit");
        disk.set_capacity(None);
        disk.replace("g", b"x").unwrap();
    }

    #[test]
    fn a_fault_strikes_its_op_under_its_prefix_after_its_count_until_healed() {
        let disk = FaultyStorage::new();
        disk.inject(Fault::every(Op::Replace, Failure::Eio).under("a/").after(1));
        disk.replace("a/1", b"x").unwrap();
        disk.replace("b/1", b"x").unwrap();
        disk.append("a/2", &[b"x"]).unwrap();
        assert!(disk.replace("a/1", b"y").is_err());
        assert!(disk.replace("a/1", b"y").is_err(), "and every later one");
        assert_eq!(disk.files().contents("a/1"), Some(b"x".to_vec()));
        disk.heal();
        disk.replace("a/1", b"y").unwrap();
        disk.inject(Fault::every_write(Failure::NoSpace).under("b/"));
        assert!(disk.append("b/1", &[b"x"]).is_err());
        assert!(disk.replace("b/1", b"y").is_err());
        disk.append("a/1", &[b"x"]).unwrap();
    }

    #[test]
    fn a_torn_append_writes_half_its_first_slice_and_no_space_writes_nothing() {
        let disk = FaultyStorage::new();
        disk.inject(Fault::every(Op::Append, Failure::Torn));
        assert!(disk.append("f", &[b"abcd", b"ef"]).is_err());
        assert_eq!(disk.files().contents("f"), Some(b"ab".to_vec()));
        disk.heal();
        disk.inject(Fault::every(Op::Append, Failure::NoSpace));
        let e = disk.append("f", &[b"x"]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.files().contents("f"), Some(b"ab".to_vec()));
    }
}
