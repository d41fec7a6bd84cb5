//! The log boundary: the `RaftLog` trait through which the node reads and writes its log in
//! index ranges; `LogTail`, the in-memory table of a snapshot point and the entries after it
//! that every in-memory log keeps; and `MemLog`, an in-memory implementation that keeps flushed
//! and unflushed state apart so tests can crash it.
//!
//! Writes through the trait go to the caller's buffers, not to disk: the node asks for
//! durability with `Output::Persist` and learns it with `RaftNode::persisted`. The trait is
//! synchronous on purpose (DESIGN.md: storage is the one synchronous boundary; durability is
//! the asynchronous part).

use crate::membership::Membership;
use crate::message::{Entry, Snapshot, SnapshotMeta};
use crate::types::{Index, Term};

/// A Raft log: a compacted prefix (the snapshot) followed by entries `first_index()..=last_index()`.
pub trait RaftLog {
    /// What the compacted prefix covers (index 0, term 0 and the initial membership for a new
    /// group).
    fn snapshot_meta(&self) -> &SnapshotMeta;

    /// The latest snapshot, data included (sent to followers that lag behind the prefix).
    fn snapshot(&self) -> Snapshot;

    /// The index of the last entry (the snapshot's index when there is none after it).
    fn last_index(&self) -> Index;

    /// The term at `index`, for the snapshot index and every held entry; `None` outside.
    fn term_at(&self, index: Index) -> Option<Term>;

    /// Entries `from..=to` (clamped to what is held), stopping once `max_bytes` is passed but
    /// always returning at least one entry when the range is non-empty.
    fn entries(&self, from: Index, to: Index, max_bytes: u64) -> Vec<Entry>;

    /// Appends entries contiguous from `last_index() + 1`. Not durable until flushed.
    fn append(&mut self, entries: &[Entry]);

    /// Removes every entry at `from` and after (`from` is above the snapshot index).
    fn truncate_suffix(&mut self, from: Index);

    /// Replaces the prefix with a snapshot received from the leader: entries after the
    /// snapshot are kept if the log holds the snapshot's last entry, else all are dropped.
    fn install_snapshot(&mut self, snapshot: Snapshot);

    /// Replaces the prefix up to `snapshot.meta.index` (≤ the applied index) with a snapshot the
    /// caller took of its own state; later entries stay.
    fn compact(&mut self, snapshot: Snapshot);

    /// The first entry after the snapshot.
    fn first_index(&self) -> Index {
        self.snapshot_meta().index.next()
    }

    /// The term of the last entry.
    fn last_term(&self) -> Term {
        // The last index is always the snapshot index or a held entry.
        self.term_at(self.last_index())
            .unwrap_or(self.snapshot_meta().term)
    }
}

/// The in-memory table of a Raft log: the latest snapshot (the compacted prefix) and the
/// entries after it, contiguous from `snapshot.meta.index + 1` with terms that never go back.
///
/// It owns the index arithmetic and the rules of the log's shape (contiguous appends, no
/// truncation into the snapshot, what a snapshot keeps), so that every `RaftLog` that holds its
/// entries in memory (`MemLog` here, keel-net's `StorageLog` over keel-core's storage) keeps
/// only its own durability logic. The mutators say what they changed, which is what a
/// durable copy needs to know.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogTail {
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl LogTail {
    /// A table of `snapshot` followed by `entries` (which must continue it).
    #[must_use]
    pub fn new(snapshot: Snapshot, entries: Vec<Entry>) -> LogTail {
        let mut tail = LogTail {
            snapshot,
            entries: Vec::new(),
        };
        tail.append(&entries);
        tail
    }

    /// The latest snapshot, data included.
    #[must_use]
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// What the snapshot covers.
    #[must_use]
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot.meta
    }

    /// Every entry after the snapshot.
    #[must_use]
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of the last entry (the snapshot's index when there is none after it).
    #[must_use]
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.snapshot.meta.index, |e| e.index)
    }

    /// The term of the last entry (the snapshot's term when there is none after it).
    #[must_use]
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// The term at `index`, for the snapshot index and every held entry; `None` outside.
    #[must_use]
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.position(index).map(|p| self.entries[p].term)
    }

    /// Entries `from..=to` (clamped to what is held), stopping once `max_bytes` is passed but
    /// always returning at least one entry when the range is non-empty.
    #[must_use]
    pub fn entries(&self, from: Index, to: Index, max_bytes: u64) -> Vec<Entry> {
        let (Some(a), Some(b)) = (
            self.position(from.max(self.snapshot.meta.index.next())),
            self.position(to.min(self.last_index())),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for e in self.entries.get(a..=b).unwrap_or_default() {
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Appends entries contiguous from `last_index() + 1` whose terms never go back.
    pub fn append(&mut self, entries: &[Entry]) {
        for e in entries {
            assert_eq!(
                e.index,
                self.last_index().next(),
                "a log appends contiguously"
            );
            assert!(e.term >= self.last_term(), "terms in a log never go back");
            self.entries.push(e.clone());
        }
    }

    /// Removes every entry at `from` and after (`from` is above the snapshot index); returns
    /// whether any was held.
    pub fn truncate_suffix(&mut self, from: Index) -> bool {
        assert!(
            from > self.snapshot.meta.index,
            "cannot truncate into the snapshot"
        );
        let keep = self.entries.partition_point(|e| e.index < from);
        let removed = keep < self.entries.len();
        self.entries.truncate(keep);
        removed
    }

    /// Replaces the prefix with a snapshot received from the leader (Raft §7): the entries
    /// after it stay if the table holds the snapshot's last entry, else all go. Returns
    /// whether the entries after the snapshot were kept.
    pub fn install_snapshot(&mut self, snapshot: Snapshot) -> bool {
        let meta = &snapshot.meta;
        let kept =
            self.term_at(meta.index) == Some(meta.term) && meta.index >= self.snapshot.meta.index;
        if kept {
            let drop = self.entries.partition_point(|e| e.index <= meta.index);
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = snapshot;
        kept
    }

    /// Replaces the prefix up to `snapshot.meta.index` (≤ the last index, with the term held
    /// there) with a snapshot of the caller's own state; later entries stay. Returns whether
    /// the prefix moved (a snapshot at or below the current one is ignored).
    pub fn compact(&mut self, snapshot: Snapshot) -> bool {
        assert!(
            snapshot.meta.index <= self.last_index(),
            "compaction beyond the log"
        );
        if snapshot.meta.index <= self.snapshot.meta.index {
            return false;
        }
        assert_eq!(
            self.term_at(snapshot.meta.index),
            Some(snapshot.meta.term),
            "compaction term"
        );
        let drop = self
            .entries
            .partition_point(|e| e.index <= snapshot.meta.index);
        self.entries.drain(..drop);
        self.snapshot = snapshot;
        true
    }

    fn position(&self, index: Index) -> Option<usize> {
        let first = self.snapshot.meta.index.next();
        if index < first || index > self.last_index() {
            return None;
        }
        Some((index.0 - first.0) as usize)
    }
}

/// An in-memory `RaftLog` with a crash model: `sync` makes the current state durable, `crash`
/// throws away everything written since the last `sync`. Both states are `LogTail`s; what
/// this type adds is which part of the current one a `sync` must copy.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    current: LogTail,
    durable: LogTail,
    /// The lowest index written or truncated since the last sync.
    dirty_from: Option<Index>,
    snapshot_dirty: bool,
}

impl MemLog {
    /// An empty log of a new group with the given initial membership (durable from the start).
    #[must_use]
    pub fn new(membership: Membership) -> MemLog {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: Index(0),
                term: Term(0),
                membership,
            },
            data: Vec::new(),
        };
        let current = LogTail::new(snapshot, Vec::new());
        MemLog {
            durable: current.clone(),
            current,
            ..MemLog::default()
        }
    }

    /// Makes everything written so far durable (an fsync).
    pub fn sync(&mut self) {
        if self.snapshot_dirty {
            self.durable = self.current.clone();
        } else if let Some(from) = self.dirty_from {
            // Below `from` both tables hold the same entries (the snapshot did not move since
            // the last sync): cut the durable one where the writes began and copy the rest.
            self.durable.truncate_suffix(from);
            let held = self.current.all_entries();
            let start = held.partition_point(|e| e.index < from);
            self.durable.append(&held[start..]);
        }
        self.snapshot_dirty = false;
        self.dirty_from = None;
    }

    /// Loses every write since the last `sync`, as a crash of the process and the page cache.
    pub fn crash(&mut self) {
        self.current = self.durable.clone();
        self.snapshot_dirty = false;
        self.dirty_from = None;
    }

    /// The term at `index` in the durable state (what a crash now would leave), counting
    /// indexes inside the durable snapshot as held with the snapshot's term.
    #[must_use]
    pub fn durable_term_at(&self, index: Index) -> Option<Term> {
        self.durable.term_at(index)
    }

    /// The index the durable snapshot covers.
    #[must_use]
    pub fn durable_snapshot_index(&self) -> Index {
        self.durable.snapshot.meta.index
    }

    /// Every held entry after the snapshot (for test inspection).
    #[must_use]
    pub fn all_entries(&self) -> &[Entry] {
        self.current.all_entries()
    }

    fn mark_dirty(&mut self, from: Index) {
        self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
    }
}

impl RaftLog for MemLog {
    fn snapshot_meta(&self) -> &SnapshotMeta {
        self.current.snapshot_meta()
    }

    fn snapshot(&self) -> Snapshot {
        self.current.snapshot().clone()
    }

    fn last_index(&self) -> Index {
        self.current.last_index()
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        self.current.term_at(index)
    }

    fn entries(&self, from: Index, to: Index, max_bytes: u64) -> Vec<Entry> {
        self.current.entries(from, to, max_bytes)
    }

    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        self.current.append(entries);
        self.mark_dirty(first.index);
    }

    fn truncate_suffix(&mut self, from: Index) {
        if self.current.truncate_suffix(from) {
            self.mark_dirty(from);
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        self.current.install_snapshot(snapshot);
        self.snapshot_dirty = true;
    }

    fn compact(&mut self, snapshot: Snapshot) {
        if self.current.compact(snapshot) {
            self.snapshot_dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::EntryData;
    use crate::types::NodeId;

    fn e(i: u64, t: u64) -> Entry {
        Entry {
            index: Index(i),
            term: Term(t),
            data: EntryData::Normal(vec![i as u8]),
        }
    }

    fn snap(i: u64, t: u64) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: Index(i),
                term: Term(t),
                membership: Membership::default(),
            },
            data: vec![i as u8],
        }
    }

    /// The table's mutators say what they changed: what `MemLog::sync` and keel-net's
    /// `StorageLog` file bookkeeping rely on (Raft §5.3 truncation, §7 snapshots).
    #[test]
    fn log_tail_mutators_report_what_they_changed() {
        let mut tail = LogTail::new(snap(2, 1), vec![e(3, 1), e(4, 2), e(5, 2)]);
        assert_eq!((tail.last_index(), tail.last_term()), (Index(5), Term(2)));
        assert_eq!(tail.term_at(Index(2)), Some(Term(1)), "the snapshot point");
        assert_eq!(tail.term_at(Index(1)), None, "inside the snapshot");
        assert_eq!(tail.term_at(Index(6)), None, "past the end");
        assert_eq!(
            tail.entries(Index(0), Index(9), u64::MAX).len(),
            3,
            "clamped"
        );
        assert!(tail.entries(Index(6), Index(9), u64::MAX).is_empty());
        assert!(!tail.truncate_suffix(Index(6)), "nothing held at 6");
        assert!(tail.truncate_suffix(Index(5)));
        assert_eq!(tail.last_index(), Index(4));
        assert!(!tail.compact(snap(2, 1)), "not past the current snapshot");
        assert!(tail.compact(snap(3, 1)));
        assert_eq!(tail.all_entries(), &[e(4, 2)]);
        assert!(
            tail.install_snapshot(snap(4, 2)),
            "holds the snapshot's last entry"
        );
        tail.append(&[e(5, 3)]);
        assert!(!tail.install_snapshot(snap(5, 4)), "term 4 at 5 conflicts");
        assert!(tail.all_entries().is_empty());
        assert_eq!(tail.last_index(), Index(5));
    }

    #[test]
    #[should_panic(expected = "a log appends contiguously")]
    fn log_tail_refuses_a_gap() {
        let mut tail = LogTail::new(snap(0, 0), vec![e(1, 1)]);
        tail.append(&[e(3, 1)]);
    }

    #[test]
    fn crash_loses_unsynced_appends_and_truncations() {
        let mut log = MemLog::new(Membership::voters([NodeId(1)]));
        log.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        log.sync();
        log.truncate_suffix(Index(2));
        log.append(&[e(2, 2)]);
        assert_eq!(log.term_at(Index(2)), Some(Term(2)));
        log.crash();
        assert_eq!(log.last_index(), Index(3));
        assert_eq!(log.term_at(Index(2)), Some(Term(1)));
        log.truncate_suffix(Index(3));
        log.append(&[e(3, 3)]);
        log.sync();
        log.crash();
        assert_eq!(log.term_at(Index(3)), Some(Term(3)));
        assert_eq!(
            log.entries(Index(1), Index(3), 0).len(),
            1,
            "at least one entry"
        );
        assert_eq!(log.entries(Index(1), Index(3), u64::MAX).len(), 3);
    }

    #[test]
    fn compaction_keeps_the_suffix() {
        let mut log = MemLog::new(Membership::voters([NodeId(1)]));
        log.append(&[e(1, 1), e(2, 1), e(3, 2)]);
        let meta = SnapshotMeta {
            index: Index(2),
            term: Term(1),
            membership: Membership::default(),
        };
        log.compact(Snapshot {
            meta,
            data: vec![9],
        });
        assert_eq!(log.first_index(), Index(3));
        assert_eq!(log.term_at(Index(2)), Some(Term(1)));
        assert_eq!(log.term_at(Index(1)), None);
        assert_eq!(log.last_term(), Term(2));
    }
}
