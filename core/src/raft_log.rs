//! `raft_log`: [`StorageLog`], a [`RaftLog`] kept in memory and made durable in keel-core's [`Storage`],
//! three files in one directory, written only by [`FlushJob`]s (never by the trait's
//! methods, which cannot fail):
//!
//! - `hard_state`: term and vote, checksummed, written with `Storage::replace` (atomic,
//!   durable on return) and always before the log, so a log never holds a term its hard
//!   state has not seen (the `Persist` contract);
//! - `snapshot`: the latest snapshot, checksummed, by `replace` too;
//! - `log`: entry records `len (u32 LE) | crc32c (u32 LE, over len and body) | index (u64 LE)
//!   | term (u64 LE) | entry data`, appended; a truncation of the suffix cuts the file.
//!
//! Recovery ([`StorageLog::open`]) trusts only what checksums and order prove: it reads
//! records while each checks out and follows its predecessor (next index, no lower term),
//! cuts the file at the first that does not (a torn or lost tail), drops entries that do not
//! continue the snapshot, and drops entries of a term above the durable hard state (written
//! back by the kernel without their hard state; never acknowledged, since acknowledgements
//! wait for the flush, which writes the hard state first). A damaged hard state is an error,
//! not a fresh start: trusting zeros could grant a second vote in a term.
//!
//! Compaction keeps the file as it is (entries below the snapshot are skipped on recovery);
//! rewriting it is left for when a partition's log is its Raft log.

use crate::storage::Storage;
use keel_raft::codec::{self, DecodeError};
use keel_raft::{Entry, HardState, Index, LogTail, NodeId, RaftLog, Snapshot, SnapshotMeta, Term};
use std::io;

const HARD_STATE_VERSION: u8 = 1;
const RECORD_HEADER_BYTES: usize = 8;
/// index, term, and at least a data tag.
const MIN_RECORD_BODY_BYTES: usize = 17;
/// A record longer than this is damage, not an entry.
const MAX_RECORD_BYTES: usize = 64 << 20;

/// Why a durable log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The storage failed.
    #[error("raft log storage: {0}")]
    Io(#[from] io::Error),
    /// The hard state file is damaged: refusing to start from it.
    #[error("raft hard state file is damaged")]
    HardState,
    /// The snapshot file is damaged.
    #[error("raft snapshot file is damaged: {0}")]
    Snapshot(DecodeError),
}

/// One flush: the writes that make everything the log holds durable, taken by
/// [`StorageLog::take_flush`] and run, in order, by the driver's flusher.
#[derive(Debug, Default)]
pub struct FlushJob {
    dir: String,
    hard_state: Option<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
    truncate_to: Option<u64>,
    append: Vec<u8>,
}

impl FlushJob {
    /// Writes and syncs: the hard state first, then the snapshot, then the log.
    pub fn run(&self, storage: &dyn Storage) -> io::Result<()> {
        self.write(storage)?;
        for file in self.files_to_sync() {
            storage.sync(&file)?;
        }
        Ok(())
    }

    /// Writes without syncing the log: the hard state and snapshot by `replace` (durable on
    /// return), then the log's truncation and appends into the page cache. A broker node
    /// does this itself and asks its driver to sync [`FlushJob::files_to_sync`] (the
    /// core's `Output::Flush`); the job is durable once they are synced.
    pub fn write(&self, storage: &dyn Storage) -> io::Result<()> {
        if let Some(hs) = &self.hard_state {
            storage.replace(&format!("{}/hard_state", self.dir), hs)?;
        }
        if let Some(s) = &self.snapshot {
            storage.replace(&format!("{}/snapshot", self.dir), s)?;
        }
        let log = format!("{}/log", self.dir);
        if let Some(len) = self.truncate_to {
            if storage.len(&log)?.is_some() {
                storage.truncate(&log, len)?;
            }
        }
        if !self.append.is_empty() {
            storage.append(&log, &[&self.append])?;
        }
        Ok(())
    }

    /// The files [`FlushJob::write`] leaves to be synced.
    #[must_use]
    pub fn files_to_sync(&self) -> Vec<String> {
        if self.truncate_to.is_some() || !self.append.is_empty() {
            vec![format!("{}/log", self.dir)]
        } else {
            Vec::new()
        }
    }

    /// Whether the job writes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.truncate_to.is_none()
            && self.append.is_empty()
    }
}

/// A Raft log in memory (keel-raft's [`LogTail`] owns the entries and their index
/// arithmetic) whose durable copy lives in a [`Storage`] directory; this type owns only the
/// file's layout and the writes still to be flushed.
pub struct StorageLog {
    dir: String,
    tail: LogTail,
    /// The index of the file's first record and each record's offset, as the file will be
    /// once the pending writes are done.
    file_first: Index,
    offsets: Vec<u64>,
    file_len: u64,
    /// Pending: cut the file to this length first, then append `pending` (which starts at
    /// `pending_at`).
    truncate_to: Option<u64>,
    pending: Vec<u8>,
    pending_at: u64,
    snapshot_dirty: bool,
    written_hs: Option<HardState>,
}

impl StorageLog {
    /// Opens (or creates) the log in `dir`, recovering as the module doc says; returns it
    /// with the durable hard state. A new log starts from `initial` membership.
    pub fn open(
        storage: &dyn Storage,
        dir: &str,
        initial: SnapshotMeta,
    ) -> Result<(StorageLog, HardState), OpenError> {
        let hs_file = format!("{dir}/hard_state");
        let hard_state = match read_all(storage, &hs_file)? {
            None => HardState::default(),
            Some(b) => decode_hard_state(&b).ok_or(OpenError::HardState)?,
        };
        let snapshot = match read_all(storage, &format!("{dir}/snapshot"))? {
            None => Snapshot {
                meta: initial,
                data: Vec::new(),
            },
            Some(b) => {
                if b.len() < 4 || crc32c::crc32c(&b[4..]).to_le_bytes() != b[..4] {
                    return Err(OpenError::Snapshot(DecodeError::Truncated));
                }
                codec::decode_snapshot(&b[4..]).map_err(OpenError::Snapshot)?
            }
        };
        let log_file = format!("{dir}/log");
        let bytes = read_all(storage, &log_file)?.unwrap_or_default();
        let mut records: Vec<(Entry, u64)> = Vec::new();
        let mut pos = 0usize;
        while let Some((entry, len)) = decode_record(&bytes[pos..]) {
            if let Some((prev, _)) = records.last() {
                if entry.index != prev.index.next() || entry.term < prev.term {
                    break;
                }
            }
            records.push((entry, pos as u64));
            pos += len;
        }
        let mut valid_len = pos as u64;
        // Entries must continue the snapshot: either the file holds the snapshot's last entry
        // with its term, or it starts right after it.
        let s = &snapshot.meta;
        let continues = match records.first() {
            None => true,
            Some((first, _)) if first.index == s.index.next() => true,
            Some((first, _)) if first.index <= s.index => records
                .get((s.index.0 - first.index.0) as usize)
                .is_some_and(|(e, _)| e.term == s.term),
            Some(_) => false,
        };
        if !continues {
            records.clear();
            valid_len = 0;
        }
        // Entries of a term the hard state never saw were never acknowledged: drop them.
        if let Some(cut) = records.iter().position(|(e, _)| e.term > hard_state.term) {
            valid_len = records[cut].1;
            records.truncate(cut);
        }
        if valid_len < bytes.len() as u64 {
            storage.truncate(&log_file, valid_len)?;
            storage.sync(&log_file)?;
        }
        let file_first = records.first().map_or(s.index.next(), |(e, _)| e.index);
        let offsets = records.iter().map(|(_, o)| *o).collect();
        let entries = records
            .into_iter()
            .map(|(e, _)| e)
            .filter(|e| e.index > s.index)
            .collect();
        let log = StorageLog {
            dir: dir.to_string(),
            tail: LogTail::new(snapshot, entries),
            file_first,
            offsets,
            file_len: valid_len,
            truncate_to: None,
            pending: Vec::new(),
            pending_at: valid_len,
            snapshot_dirty: false,
            written_hs: Some(hard_state),
        };
        Ok((log, hard_state))
    }

    /// Takes the writes that make the log and `hard_state` durable. Run the jobs in the
    /// order taken; then the node's `persisted` may be called for what this one covers.
    pub fn take_flush(&mut self, hard_state: HardState) -> FlushJob {
        let mut job = FlushJob {
            dir: self.dir.clone(),
            ..FlushJob::default()
        };
        if self.written_hs != Some(hard_state) {
            job.hard_state = Some(encode_hard_state(hard_state));
            self.written_hs = Some(hard_state);
        }
        if self.snapshot_dirty {
            job.snapshot = Some(self.encoded_snapshot());
            self.snapshot_dirty = false;
        }
        job.truncate_to = self.truncate_to.take();
        job.append = std::mem::take(&mut self.pending);
        self.pending_at = self.file_len;
        job
    }

    /// Writes the snapshot now if it changed (by `replace`, durable on return), leaving
    /// the entries' writes to the next flush. For a snapshot the caller took of its own
    /// state (`compact`), which covers only applied, so already durable, entries: a
    /// restart then starts from it rather than from the entries before it.
    pub fn write_snapshot(&mut self, storage: &dyn Storage) -> io::Result<()> {
        if !self.snapshot_dirty {
            return Ok(());
        }
        storage.replace(&format!("{}/snapshot", self.dir), &self.encoded_snapshot())?;
        self.snapshot_dirty = false;
        Ok(())
    }

    fn encoded_snapshot(&self) -> Vec<u8> {
        let mut b = vec![0; 4];
        codec::encode_snapshot(&mut b, self.tail.snapshot());
        let crc = crc32c::crc32c(&b[4..]);
        b[..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn cut_file(&mut self, len: u64) {
        if len >= self.pending_at {
            self.pending.truncate((len - self.pending_at) as usize);
        } else {
            self.truncate_to = Some(self.truncate_to.map_or(len, |t| t.min(len)));
            self.pending.clear();
            self.pending_at = len;
        }
        self.file_len = len;
    }
}

impl RaftLog for StorageLog {
    fn snapshot_meta(&self) -> &SnapshotMeta {
        self.tail.snapshot_meta()
    }

    fn snapshot(&self) -> Snapshot {
        self.tail.snapshot().clone()
    }

    fn last_index(&self) -> Index {
        self.tail.last_index()
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        self.tail.term_at(index)
    }

    fn entries(&self, from: Index, to: Index, max_bytes: u64) -> Vec<Entry> {
        self.tail.entries(from, to, max_bytes)
    }

    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        self.tail.append(entries);
        if self.offsets.is_empty() {
            self.file_first = first.index;
        }
        for e in entries {
            let before = self.pending.len();
            encode_record(e, &mut self.pending);
            self.offsets.push(self.file_len);
            self.file_len += (self.pending.len() - before) as u64;
        }
    }

    fn truncate_suffix(&mut self, from: Index) {
        if !self.tail.truncate_suffix(from) {
            return;
        }
        let in_file = (from.0 - self.file_first.0) as usize;
        if let Some(&offset) = self.offsets.get(in_file) {
            self.offsets.truncate(in_file);
            self.cut_file(offset);
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let next = snapshot.meta.index.next();
        if !self.tail.install_snapshot(snapshot) {
            // Nothing in the file continues the new snapshot.
            self.offsets.clear();
            self.file_first = next;
            self.cut_file(0);
        }
        self.snapshot_dirty = true;
    }

    fn compact(&mut self, snapshot: Snapshot) {
        if self.tail.compact(snapshot) {
            self.snapshot_dirty = true;
        }
    }
}

fn read_all(storage: &dyn Storage, file: &str) -> io::Result<Option<Vec<u8>>> {
    let Some(len) = storage.len(file)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        let chunk = storage.read_at(file, out.len() as u64, 1 << 20)?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

fn encode_record(e: &Entry, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&e.index.0.to_le_bytes());
    body.extend_from_slice(&e.term.0.to_le_bytes());
    codec::encode_entry_data(&mut body, &e.data);
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &body);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&body);
}

/// One record off the front of `b` and its length in bytes, if it checks out.
fn decode_record(b: &[u8]) -> Option<(Entry, usize)> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    if !(MIN_RECORD_BODY_BYTES..=MAX_RECORD_BYTES).contains(&len) {
        return None;
    }
    let crc = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    let body = b.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len)?;
    if crc32c::crc32c_append(crc32c::crc32c(&b[..4]), body) != crc {
        return None;
    }
    let index = Index(u64::from_le_bytes(body[..8].try_into().ok()?));
    let term = Term(u64::from_le_bytes(body[8..16].try_into().ok()?));
    let data = codec::decode_entry_data(&body[16..]).ok()?;
    Some((Entry { index, term, data }, RECORD_HEADER_BYTES + len))
}

fn encode_hard_state(hs: HardState) -> Vec<u8> {
    let mut b = vec![HARD_STATE_VERSION];
    b.extend_from_slice(&hs.term.0.to_le_bytes());
    match hs.vote {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            b.extend_from_slice(&v.0.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode_hard_state(b: &[u8]) -> Option<HardState> {
    let (body, crc) = b.split_at_checked(b.len().checked_sub(4)?)?;
    if crc32c::crc32c(body).to_le_bytes() != crc || body.first() != Some(&HARD_STATE_VERSION) {
        return None;
    }
    let term = Term(u64::from_le_bytes(body.get(1..9)?.try_into().ok()?));
    let vote = match (body.get(9)?, body.len()) {
        (0, 10) => None,
        (1, 18) => Some(NodeId(u64::from_le_bytes(body[10..18].try_into().ok()?))),
        _ => return None,
    };
    Some(HardState { term, vote })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use keel_raft::{EntryData, Membership};

    fn e(i: u64, t: u64) -> Entry {
        Entry {
            index: Index(i),
            term: Term(t),
            data: EntryData::Normal(vec![i as u8; 3]),
        }
    }

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            index: Index(0),
            term: Term(0),
            membership: Membership::voters([NodeId(1), NodeId(2), NodeId(3)]),
        }
    }

    fn hs(t: u64, v: Option<u64>) -> HardState {
        HardState {
            term: Term(t),
            vote: v.map(NodeId),
        }
    }

    fn reopen(disk: &MemStorage) -> (StorageLog, HardState) {
        StorageLog::open(disk, "raft", meta()).unwrap()
    }

    fn all(log: &StorageLog) -> Vec<(u64, u64)> {
        log.entries(Index(1), log.last_index(), u64::MAX)
            .iter()
            .map(|e| (e.index.0, e.term.0))
            .collect()
    }

    #[test]
    fn appends_truncations_and_the_hard_state_survive_a_reopen() {
        let disk = MemStorage::new();
        let (mut log, h) = reopen(&disk);
        assert_eq!(h, HardState::default());
        log.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        log.take_flush(hs(1, Some(2))).run(&disk).unwrap();
        log.truncate_suffix(Index(2));
        log.append(&[e(2, 2), e(3, 2)]);
        log.truncate_suffix(Index(3));
        log.append(&[e(3, 3)]);
        log.take_flush(hs(3, None)).run(&disk).unwrap();
        let (log2, h2) = reopen(&disk);
        assert_eq!(h2, hs(3, None));
        assert_eq!(all(&log2), vec![(1, 1), (2, 2), (3, 3)]);
        assert_eq!(all(&log2), all(&log));
    }

    #[test]
    fn a_torn_tail_is_cut_and_entries_above_the_hard_state_are_dropped() {
        let disk = MemStorage::new();
        let (mut log, _) = reopen(&disk);
        log.append(&[e(1, 1), e(2, 1)]);
        log.take_flush(hs(1, None)).run(&disk).unwrap();
        let mut bytes = disk.contents("raft/log").unwrap();
        let whole = bytes.len();
        bytes.truncate(whole - 2);
        disk.set_contents("raft/log", bytes);
        let (log2, _) = reopen(&disk);
        assert_eq!(all(&log2), vec![(1, 1)]);
        // A later append lands after the cut, not after the torn bytes.
        let (mut log3, _) = reopen(&disk);
        log3.append(&[e(2, 2)]);
        // Written back without its hard state (the flush's hard state is skipped here).
        log3.written_hs = Some(hs(2, None));
        log3.take_flush(hs(2, None)).run(&disk).unwrap();
        let (log4, _) = reopen(&disk);
        assert_eq!(all(&log4), vec![(1, 1)], "term 2 above hard state term 1");
    }

    #[test]
    fn a_flipped_bit_ends_the_trusted_prefix_and_a_damaged_hard_state_refuses() {
        let disk = MemStorage::new();
        let (mut log, _) = reopen(&disk);
        log.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        log.take_flush(hs(1, None)).run(&disk).unwrap();
        let mut bytes = disk.contents("raft/log").unwrap();
        let second = bytes.len() / 3 + 10;
        bytes[second] ^= 4;
        disk.set_contents("raft/log", bytes);
        assert_eq!(all(&reopen(&disk).0), vec![(1, 1)]);
        let mut h = disk.contents("raft/hard_state").unwrap();
        h[2] ^= 1;
        disk.set_contents("raft/hard_state", h);
        assert!(matches!(
            StorageLog::open(&disk, "raft", meta()),
            Err(OpenError::HardState)
        ));
    }

    #[test]
    fn an_installed_snapshot_replaces_a_conflicting_log() {
        let disk = MemStorage::new();
        let (mut log, _) = reopen(&disk);
        log.append(&[e(1, 1), e(2, 1)]);
        log.take_flush(hs(1, None)).run(&disk).unwrap();
        let snap = Snapshot {
            meta: SnapshotMeta {
                index: Index(5),
                term: Term(2),
                ..meta()
            },
            data: vec![7],
        };
        log.install_snapshot(snap.clone());
        log.append(&[e(6, 2)]);
        log.take_flush(hs(2, None)).run(&disk).unwrap();
        let (log2, _) = reopen(&disk);
        assert_eq!(log2.snapshot(), snap);
        assert_eq!(log2.last_index(), Index(6));
        assert_eq!(log2.term_at(Index(6)), Some(Term(2)));
        assert_eq!(log2.term_at(Index(2)), None);
    }
}
