//! The log boundary: the `RaftLog` trait through which the node reads and writes its log in
//! index ranges, and `MemLog`, an in-memory implementation that keeps flushed and unflushed
//! state apart so tests can crash it.
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

/// An in-memory `RaftLog` with a crash model: `sync` makes the current state durable, `crash`
/// throws away everything written since the last `sync`.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    snapshot: Snapshot,
    entries: Vec<Entry>,
    durable_snapshot: Snapshot,
    durable_entries: Vec<Entry>,
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
        MemLog {
            durable_snapshot: snapshot.clone(),
            snapshot,
            ..MemLog::default()
        }
    }

    /// Makes everything written so far durable (an fsync).
    pub fn sync(&mut self) {
        if self.snapshot_dirty {
            self.durable_snapshot = self.snapshot.clone();
            self.durable_entries = self.entries.clone();
        } else if let Some(from) = self.dirty_from {
            let keep = self.durable_entries.partition_point(|e| e.index < from);
            self.durable_entries.truncate(keep);
            let start = self.entries.partition_point(|e| e.index < from);
            self.durable_entries
                .extend_from_slice(&self.entries[start..]);
        }
        self.snapshot_dirty = false;
        self.dirty_from = None;
    }

    /// Loses every write since the last `sync`, as a crash of the process and the page cache.
    pub fn crash(&mut self) {
        self.snapshot = self.durable_snapshot.clone();
        self.entries = self.durable_entries.clone();
        self.snapshot_dirty = false;
        self.dirty_from = None;
    }

    /// The term at `index` in the durable state (what a crash now would leave), counting
    /// indexes inside the durable snapshot as held with the snapshot's term.
    #[must_use]
    pub fn durable_term_at(&self, index: Index) -> Option<Term> {
        let snap = &self.durable_snapshot.meta;
        if index <= snap.index {
            return (index == snap.index).then_some(snap.term);
        }
        let first = self.durable_entries.first()?.index;
        let pos = index.0.checked_sub(first.0)? as usize;
        self.durable_entries.get(pos).map(|e| e.term)
    }

    /// The index the durable snapshot covers.
    #[must_use]
    pub fn durable_snapshot_index(&self) -> Index {
        self.durable_snapshot.meta.index
    }

    /// Every held entry after the snapshot (for test inspection).
    #[must_use]
    pub fn all_entries(&self) -> &[Entry] {
        &self.entries
    }

    fn position(&self, index: Index) -> Option<usize> {
        let first = self.snapshot.meta.index.next();
        if index < first || index > self.last_index() {
            return None;
        }
        Some((index.0 - first.0) as usize)
    }

    fn mark_dirty(&mut self, from: Index) {
        self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
    }
}

impl RaftLog for MemLog {
    fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot.meta
    }

    fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }

    fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.snapshot.meta.index, |e| e.index)
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.position(index).map(|p| self.entries[p].term)
    }

    fn entries(&self, from: Index, to: Index, max_bytes: u64) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut i = from;
        while i <= to {
            let Some(p) = self.position(i) else { break };
            let e = &self.entries[p];
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
            i = i.next();
        }
        out
    }

    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert_eq!(
            first.index,
            self.last_index().next(),
            "MemLog::append must be contiguous"
        );
        for w in entries.windows(2) {
            assert_eq!(
                w[1].index,
                w[0].index.next(),
                "MemLog::append must be contiguous"
            );
            assert!(w[1].term >= w[0].term, "terms in a log never go back");
        }
        assert!(
            first.term >= self.last_term(),
            "terms in a log never go back"
        );
        self.mark_dirty(first.index);
        self.entries.extend_from_slice(entries);
    }

    fn truncate_suffix(&mut self, from: Index) {
        assert!(
            from > self.snapshot.meta.index,
            "cannot truncate into the snapshot"
        );
        let keep = self.entries.partition_point(|e| e.index < from);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.mark_dirty(from);
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = &snapshot.meta;
        if self.term_at(meta.index) == Some(meta.term) && meta.index >= self.snapshot.meta.index {
            let drop = self.entries.partition_point(|e| e.index <= meta.index);
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = snapshot;
        self.snapshot_dirty = true;
    }

    fn compact(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index <= self.last_index(),
            "compaction beyond the log"
        );
        if snapshot.meta.index <= self.snapshot.meta.index {
            return;
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
        self.snapshot_dirty = true;
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
