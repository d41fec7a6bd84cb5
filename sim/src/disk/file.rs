//! One simulated file: the bytes on the platter, the operations written since the last
//! sync that made them durable, and the page-cache view that reads see.
//!
//! The pending operations are kept in order because a crash keeps a *prefix* of them
//! (measured in units: one per byte written, one per create, truncate, remove or rename),
//! so that every outcome a crash can produce is "the durable bytes, then the first `cut`
//! units of what came after". Invariant: `current == replay(durable, pending)`.

/// An operation written to a file since its last successful sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// The directory entry was created (the file did not exist before). One unit.
    Create,
    /// Bytes appended at the end. One unit per byte.
    Append(Vec<u8>),
    /// Bytes written at `pos` (a misdirected append), zero-filling any gap past the end.
    /// One unit per byte.
    WriteAt { pos: u64, data: Vec<u8> },
    /// Cut to this length. One unit.
    Truncate(u64),
    /// The directory entry was removed. One unit.
    Remove,
    /// The whole contents swapped in by a rename whose directory fsync failed (a failed
    /// `replace`): atomic, so one unit.
    Replace(Vec<u8>),
}

impl Op {
    /// How many units a crash can keep of this operation.
    pub(super) fn units(&self) -> u64 {
        match self {
            Op::Append(data) | Op::WriteAt { data, .. } => data.len() as u64,
            Op::Create | Op::Truncate(_) | Op::Remove | Op::Replace(_) => 1,
        }
    }

    /// Bytes of data this operation writes.
    fn data_len(&self) -> u64 {
        match self {
            Op::Append(data) | Op::WriteAt { data, .. } | Op::Replace(data) => data.len() as u64,
            Op::Create | Op::Truncate(_) | Op::Remove => 0,
        }
    }

    /// Applies the first `units` units of this operation (all of it if `units >= units()`).
    fn apply(&self, state: &mut Option<Vec<u8>>, units: u64) {
        if units == 0 {
            return;
        }
        match self {
            Op::Create => {
                state.get_or_insert_with(Vec::new);
            }
            Op::Append(data) => {
                let n = (units as usize).min(data.len());
                state
                    .get_or_insert_with(Vec::new)
                    .extend_from_slice(&data[..n]);
            }
            Op::WriteAt { pos, data } => {
                let n = (units as usize).min(data.len());
                let bytes = state.get_or_insert_with(Vec::new);
                let pos = *pos as usize;
                if bytes.len() < pos + n {
                    bytes.resize(pos + n, 0);
                }
                bytes[pos..pos + n].copy_from_slice(&data[..n]);
            }
            Op::Truncate(len) => {
                if let Some(bytes) = state {
                    bytes.truncate(*len as usize);
                }
            }
            Op::Remove => *state = None,
            Op::Replace(data) => *state = Some(data.clone()),
        }
    }
}

/// A file's durable state, its pending operations and the state reads see.
#[derive(Debug, Clone, Default)]
pub(super) struct File {
    /// What a crash that loses every pending operation leaves: `None` if the file has no
    /// durable directory entry (never synced, or its removal is durable).
    pub durable: Option<Vec<u8>>,
    /// Operations since the last successful sync, oldest first.
    pub pending: Vec<Op>,
    /// What reads see (`None`: the file does not exist): `replay(durable, pending)`.
    pub current: Option<Vec<u8>>,
}

impl File {
    /// Records `op` and applies it to the page-cache view.
    pub fn push(&mut self, op: Op) {
        op.apply(&mut self.current, u64::MAX);
        self.pending.push(op);
    }

    /// Units a crash chooses among (see the module doc).
    pub fn pending_units(&self) -> u64 {
        self.pending.iter().map(Op::units).sum()
    }

    /// Bytes of data written since the last sync.
    pub fn pending_bytes(&self) -> u64 {
        self.pending.iter().map(Op::data_len).sum()
    }

    /// The state after a crash that kept the first `cut` pending units.
    pub fn after_cut(&self, mut cut: u64) -> Option<Vec<u8>> {
        let mut state = self.durable.clone();
        for op in &self.pending {
            if cut == 0 {
                break;
            }
            let units = op.units();
            op.apply(&mut state, cut);
            cut = cut.saturating_sub(units);
        }
        state
    }

    /// A successful sync: everything pending is now on the platter. Replays the pending
    /// operations onto the durable bytes rather than copying the page-cache view, so a sync
    /// costs what was written since the last one, not the file's size.
    pub fn make_durable(&mut self) {
        for op in self.pending.drain(..) {
            op.apply(&mut self.durable, u64::MAX);
        }
    }

    /// The state after a crash that kept the first `cut` units becomes the only state.
    pub fn settle(&mut self, cut: u64) {
        let after = self.after_cut(cut);
        self.durable = after.clone();
        self.current = after;
        self.pending.clear();
    }

    /// A directory fsync: a pending removal of this file becomes durable. What was written
    /// to the old file before it is moot; what was written after (a new file of the same
    /// name, whose own entry is not durable yet) stays pending.
    pub fn make_removal_durable(&mut self) {
        if let Some(i) = self.pending.iter().rposition(|op| *op == Op::Remove) {
            self.durable = None;
            self.pending.drain(..=i);
        }
    }

    /// A failed fsync: the kernel dropped the dirty pages it could not write back, so the
    /// data of every pending write now reads as what the platter holds there (zeros past
    /// the durable end, the old bytes below it) — and stays that way through later syncs.
    /// Sizes and metadata operations are kept: the file still has the length the caller
    /// wrote, with a hole where its data was.
    pub fn drop_pages(&mut self) {
        let mut state = self.durable.clone();
        for op in &mut self.pending {
            match op {
                Op::Append(data) => data.fill(0),
                Op::WriteAt { pos, data } => {
                    let old = state.as_deref().unwrap_or(&[]);
                    let start = (*pos as usize).min(old.len());
                    let end = (*pos as usize + data.len()).min(old.len());
                    data.fill(0);
                    data[..end - start].copy_from_slice(&old[start..end]);
                }
                Op::Create | Op::Truncate(_) | Op::Remove | Op::Replace(_) => {}
            }
            op.apply(&mut state, u64::MAX);
        }
        self.current = state;
    }

    /// Nothing left to remember: no durable entry, no visible file, nothing pending.
    pub fn is_gone(&self) -> bool {
        self.durable.is_none() && self.current.is_none() && self.pending.is_empty()
    }

    /// Asserts `current == replay(durable, pending)`.
    #[cfg(test)]
    pub fn check(&self, name: &str) {
        assert_eq!(
            self.after_cut(u64::MAX),
            self.current,
            "{name}: the page cache disagrees with durable + pending"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_a_prefix_of_units_in_order() {
        let mut f = File {
            durable: Some(b"ab".to_vec()),
            ..File::default()
        };
        f.current = f.durable.clone();
        f.push(Op::Append(b"cde".to_vec()));
        f.push(Op::Truncate(1));
        f.push(Op::Append(b"xy".to_vec()));
        f.check("f");
        assert_eq!(f.pending_units(), 3 + 1 + 2);
        let outcomes: Vec<Option<Vec<u8>>> = (0..=6).map(|cut| f.after_cut(cut)).collect();
        let expect: Vec<Option<Vec<u8>>> =
            [&b"ab"[..], b"abc", b"abcd", b"abcde", b"a", b"ax", b"axy"]
                .iter()
                .map(|b| Some(b.to_vec()))
                .collect();
        assert_eq!(outcomes, expect);
    }

    #[test]
    fn a_durable_removal_keeps_only_what_came_after() {
        let mut f = File {
            durable: Some(b"old".to_vec()),
            ..File::default()
        };
        f.current = f.durable.clone();
        f.push(Op::Append(b"!".to_vec()));
        f.push(Op::Remove);
        f.push(Op::Create);
        f.push(Op::Append(b"new".to_vec()));
        f.make_removal_durable();
        f.check("f");
        assert_eq!(f.durable, None);
        assert_eq!(f.pending, vec![Op::Create, Op::Append(b"new".to_vec())]);
        assert_eq!(f.after_cut(0), None);
        assert_eq!(f.after_cut(2), Some(b"n".to_vec()));
    }

    #[test]
    fn dropped_pages_read_as_the_platter() {
        let mut f = File {
            durable: Some(b"abcd".to_vec()),
            ..File::default()
        };
        f.current = f.durable.clone();
        f.push(Op::WriteAt {
            pos: 2,
            data: b"XYZ".to_vec(),
        });
        f.push(Op::Append(b"12".to_vec()));
        assert_eq!(f.current.as_deref(), Some(&b"abXYZ12"[..]));
        f.drop_pages();
        assert_eq!(f.current.as_deref(), Some(&b"abcd\0\0\0"[..]));
        f.check("f");
    }
}
