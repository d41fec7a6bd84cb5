//! The byte layout of Raft's values: messages, entries, snapshots and memberships, by hand,
//! with LEB128 varints for integers. Peer transports frame these (keel-net's peer codec) and
//! durable logs store entries and snapshots with them (keel-core's `raft_log`), so there is
//! one layout.
//!
//! Why by hand and not serde: a serde binary format (bincode, postcard) would be a new
//! dependency, and its decoder would allocate a `Vec` of whatever length the bytes announce
//! before finding out the bytes are not there. Here every length is checked against the
//! bytes that remain before anything is allocated, trailing bytes are refused, and the
//! layout is written down in one place: a tag byte per variant, fields in declaration order.

use crate::{
    Entry, EntryData, Index, Instant, Membership, Message, NodeId, RejectHint, Snapshot,
    SnapshotMeta, Term,
};
use std::collections::BTreeSet;
use std::fmt;

/// Why bytes could not be decoded: always the sender's (or the disk's) fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ended inside a field.
    Truncated,
    /// An unknown variant tag.
    Tag {
        /// Which enum.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// A varint longer than 64 bits.
    Varint,
    /// A boolean other than 0 or 1.
    Bool,
    /// Bytes left after the value.
    Trailing(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "peer message truncated"),
            DecodeError::Tag { what, tag } => write!(f, "unknown {what} tag {tag}"),
            DecodeError::Varint => write!(f, "varint overflow"),
            DecodeError::Bool => write!(f, "bad boolean"),
            DecodeError::Trailing(n) => write!(f, "{n} trailing bytes after the peer message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes one message.
pub fn encode_message(w: &mut Vec<u8>, m: &Message) {
    put_message(w, m);
}

/// Decodes one whole message; trailing bytes are an error.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader::new(bytes);
    let m = r.message()?;
    r.finish()?;
    Ok(m)
}

/// Encodes one entry's payload (used by the durable log too).
pub fn encode_entry_data(w: &mut Vec<u8>, data: &EntryData) {
    match data {
        EntryData::Noop => w.push(0),
        EntryData::Normal(b) => {
            w.push(1);
            put_bytes(w, b);
        }
        EntryData::Membership(m) => {
            w.push(2);
            put_membership(w, m);
        }
    }
}

/// Decodes one entry's payload; the whole of `bytes` must be used.
pub fn decode_entry_data(bytes: &[u8]) -> Result<EntryData, DecodeError> {
    let mut r = Reader::new(bytes);
    let d = r.entry_data()?;
    r.finish()?;
    Ok(d)
}

/// Encodes a snapshot (used by the durable log too).
pub fn encode_snapshot(w: &mut Vec<u8>, s: &Snapshot) {
    put_snapshot(w, s);
}

/// Decodes a snapshot; the whole of `bytes` must be used.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let mut r = Reader::new(bytes);
    let s = r.snapshot()?;
    r.finish()?;
    Ok(s)
}

/// Appends `v` as a LEB128 varint.
pub fn put(w: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            w.push(byte);
            return;
        }
        w.push(byte | 0x80);
    }
}

/// Appends a boolean byte.
pub fn put_bool(w: &mut Vec<u8>, b: bool) {
    w.push(u8::from(b));
}

/// Appends a varint length and the bytes.
pub fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put(w, b.len() as u64);
    w.extend_from_slice(b);
}

fn put_ids(w: &mut Vec<u8>, ids: &BTreeSet<NodeId>) {
    put(w, ids.len() as u64);
    for id in ids {
        put(w, id.0);
    }
}

fn put_membership(w: &mut Vec<u8>, m: &Membership) {
    put_ids(w, &m.voters);
    put_ids(w, &m.learners);
}

fn put_meta(w: &mut Vec<u8>, m: &SnapshotMeta) {
    put(w, m.index.0);
    put(w, m.term.0);
    put_membership(w, &m.membership);
}

fn put_snapshot(w: &mut Vec<u8>, s: &Snapshot) {
    put_meta(w, &s.meta);
    put_bytes(w, &s.data);
}

fn put_entry(w: &mut Vec<u8>, e: &Entry) {
    put(w, e.index.0);
    put(w, e.term.0);
    encode_entry_data(w, &e.data);
}

pub(crate) fn put_message(w: &mut Vec<u8>, m: &Message) {
    match m {
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        } => {
            w.push(0);
            put(w, term.0);
            put(w, last_log_index.0);
            put(w, last_log_term.0);
        }
        Message::PreVoteResp { term, granted } => {
            w.push(1);
            put(w, term.0);
            put_bool(w, *granted);
        }
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
            transfer,
        } => {
            w.push(2);
            put(w, term.0);
            put(w, last_log_index.0);
            put(w, last_log_term.0);
            put_bool(w, *transfer);
        }
        Message::RequestVoteResp { term, granted } => {
            w.push(3);
            put(w, term.0);
            put_bool(w, *granted);
        }
        Message::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            round,
            sent_at,
        } => {
            w.push(4);
            put(w, term.0);
            put(w, prev_log_index.0);
            put(w, prev_log_term.0);
            put(w, entries.len() as u64);
            for e in entries {
                put_entry(w, e);
            }
            put(w, leader_commit.0);
            put(w, *round);
            put(w, sent_at.0);
        }
        Message::AppendEntriesResp {
            term,
            success,
            match_index,
            rejected,
            hint,
            round,
            sent_at,
        } => {
            w.push(5);
            put(w, term.0);
            put_bool(w, *success);
            put(w, match_index.0);
            put(w, rejected.0);
            match hint {
                None => w.push(0),
                Some(RejectHint::LogTooShort { last_index }) => {
                    w.push(1);
                    put(w, last_index.0);
                }
                Some(RejectHint::Conflict {
                    conflict_term,
                    first_index,
                }) => {
                    w.push(2);
                    put(w, conflict_term.0);
                    put(w, first_index.0);
                }
            }
            put(w, *round);
            put(w, sent_at.0);
        }
        Message::InstallSnapshot {
            term,
            meta,
            offset,
            data,
            done,
        } => {
            w.push(6);
            put(w, term.0);
            put_meta(w, meta);
            put(w, *offset);
            put_bytes(w, data);
            put_bool(w, *done);
        }
        Message::InstallSnapshotResp {
            term,
            snapshot_index,
            next_offset,
            done,
            match_index,
        } => {
            w.push(7);
            put(w, term.0);
            put(w, snapshot_index.0);
            put(w, *next_offset);
            put_bool(w, *done);
            put(w, match_index.0);
        }
        Message::TimeoutNow { term } => {
            w.push(8);
            put(w, term.0);
        }
    }
}

/// Reads values off the front of a byte slice, never allocating more than it holds.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader(bytes)
    }

    /// The bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.0.len()
    }

    /// Refuses bytes left over.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Trailing(self.0.len()))
        }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.0.split_first().ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(b)
    }

    /// A LEB128 varint.
    pub fn var(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(DecodeError::Varint);
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Varint)
    }

    /// A boolean byte.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Bool),
        }
    }

    /// A count of items each at least `min_bytes` long: refused if the bytes left cannot hold
    /// them, so no allocation exceeds the payload.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.var()?;
        if n > (self.0.len() / min_bytes.max(1)) as u64 {
            return Err(DecodeError::Truncated);
        }
        Ok(n as usize)
    }

    /// A varint length and that many bytes.
    pub fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.count(1)?;
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(b.to_vec())
    }

    fn ids(&mut self) -> Result<BTreeSet<NodeId>, DecodeError> {
        let n = self.count(1)?;
        (0..n).map(|_| Ok(NodeId(self.var()?))).collect()
    }

    fn membership(&mut self) -> Result<Membership, DecodeError> {
        Ok(Membership {
            voters: self.ids()?,
            learners: self.ids()?,
        })
    }

    fn meta(&mut self) -> Result<SnapshotMeta, DecodeError> {
        Ok(SnapshotMeta {
            index: Index(self.var()?),
            term: Term(self.var()?),
            membership: self.membership()?,
        })
    }

    fn snapshot(&mut self) -> Result<Snapshot, DecodeError> {
        Ok(Snapshot {
            meta: self.meta()?,
            data: self.bytes()?,
        })
    }

    fn entry_data(&mut self) -> Result<EntryData, DecodeError> {
        Ok(match self.u8()? {
            0 => EntryData::Noop,
            1 => EntryData::Normal(self.bytes()?),
            2 => EntryData::Membership(self.membership()?),
            tag => return Err(DecodeError::Tag { what: "entry", tag }),
        })
    }

    /// A Raft message.
    pub fn message(&mut self) -> Result<Message, DecodeError> {
        let term = |r: &mut Self| Ok::<_, DecodeError>(Term(r.var()?));
        let index = |r: &mut Self| Ok::<_, DecodeError>(Index(r.var()?));
        Ok(match self.u8()? {
            0 => Message::PreVote {
                term: term(self)?,
                last_log_index: index(self)?,
                last_log_term: term(self)?,
            },
            1 => Message::PreVoteResp {
                term: term(self)?,
                granted: self.bool()?,
            },
            2 => Message::RequestVote {
                term: term(self)?,
                last_log_index: index(self)?,
                last_log_term: term(self)?,
                transfer: self.bool()?,
            },
            3 => Message::RequestVoteResp {
                term: term(self)?,
                granted: self.bool()?,
            },
            4 => {
                let t = term(self)?;
                let prev_log_index = index(self)?;
                let prev_log_term = term(self)?;
                // An entry is at least index, term and a data tag: three bytes.
                let n = self.count(3)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(Entry {
                        index: index(self)?,
                        term: term(self)?,
                        data: self.entry_data()?,
                    });
                }
                Message::AppendEntries {
                    term: t,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit: index(self)?,
                    round: self.var()?,
                    sent_at: Instant(self.var()?),
                }
            }
            5 => {
                let t = term(self)?;
                let success = self.bool()?;
                let match_index = index(self)?;
                let rejected = index(self)?;
                let hint = match self.u8()? {
                    0 => None,
                    1 => Some(RejectHint::LogTooShort {
                        last_index: index(self)?,
                    }),
                    2 => Some(RejectHint::Conflict {
                        conflict_term: term(self)?,
                        first_index: index(self)?,
                    }),
                    tag => return Err(DecodeError::Tag { what: "hint", tag }),
                };
                Message::AppendEntriesResp {
                    term: t,
                    success,
                    match_index,
                    rejected,
                    hint,
                    round: self.var()?,
                    sent_at: Instant(self.var()?),
                }
            }
            6 => Message::InstallSnapshot {
                term: term(self)?,
                meta: self.meta()?,
                offset: self.var()?,
                data: self.bytes()?,
                done: self.bool()?,
            },
            7 => Message::InstallSnapshotResp {
                term: term(self)?,
                snapshot_index: index(self)?,
                next_offset: self.var()?,
                done: self.bool()?,
                match_index: index(self)?,
            },
            8 => Message::TimeoutNow { term: term(self)? },
            tag => {
                return Err(DecodeError::Tag {
                    what: "message",
                    tag,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> impl Strategy<Value = BTreeSet<NodeId>> {
        proptest::collection::btree_set(any::<u64>().prop_map(NodeId), 0..4)
    }

    fn membership() -> impl Strategy<Value = Membership> {
        (ids(), ids()).prop_map(|(voters, learners)| Membership { voters, learners })
    }

    fn entry_data() -> impl Strategy<Value = EntryData> {
        prop_oneof![
            Just(EntryData::Noop),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(EntryData::Normal),
            membership().prop_map(EntryData::Membership),
        ]
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (any::<u64>(), any::<u64>(), entry_data()).prop_map(|(i, t, data)| Entry {
            index: Index(i),
            term: Term(t),
            data,
        })
    }

    fn message() -> impl Strategy<Value = Message> {
        let t = || any::<u64>().prop_map(Term);
        let i = || any::<u64>().prop_map(Index);
        let hint = prop_oneof![
            Just(None),
            i().prop_map(|last_index| Some(RejectHint::LogTooShort { last_index })),
            (t(), i()).prop_map(|(conflict_term, first_index)| Some(RejectHint::Conflict {
                conflict_term,
                first_index
            })),
        ];
        let snapshot = (
            i(),
            t(),
            membership(),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(index, term, membership, data)| Snapshot {
                meta: SnapshotMeta {
                    index,
                    term,
                    membership,
                },
                data,
            });
        prop_oneof![
            (t(), i(), t()).prop_map(|(term, last_log_index, last_log_term)| Message::PreVote {
                term,
                last_log_index,
                last_log_term
            }),
            (t(), any::<bool>()).prop_map(|(term, granted)| Message::PreVoteResp { term, granted }),
            (t(), i(), t(), any::<bool>()).prop_map(
                |(term, last_log_index, last_log_term, transfer)| Message::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                    transfer
                }
            ),
            (t(), any::<bool>())
                .prop_map(|(term, granted)| Message::RequestVoteResp { term, granted }),
            (
                t(),
                i(),
                t(),
                proptest::collection::vec(entry(), 0..5),
                i(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(
                    |(term, prev_log_index, prev_log_term, entries, leader_commit, round, s)| {
                        Message::AppendEntries {
                            term,
                            prev_log_index,
                            prev_log_term,
                            entries,
                            leader_commit,
                            round,
                            sent_at: Instant(s),
                        }
                    }
                ),
            (
                t(),
                any::<bool>(),
                i(),
                i(),
                hint,
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(term, success, match_index, rejected, hint, round, s)| {
                    Message::AppendEntriesResp {
                        term,
                        success,
                        match_index,
                        rejected,
                        hint,
                        round,
                        sent_at: Instant(s),
                    }
                }),
            (t(), snapshot, any::<u64>(), any::<bool>()).prop_map(|(term, s, offset, done)| {
                Message::InstallSnapshot {
                    term,
                    meta: s.meta,
                    offset,
                    data: s.data,
                    done,
                }
            }),
            (t(), i(), any::<u64>(), any::<bool>(), i()).prop_map(
                |(term, snapshot_index, next_offset, done, match_index)| {
                    Message::InstallSnapshotResp {
                        term,
                        snapshot_index,
                        next_offset,
                        done,
                        match_index,
                    }
                }
            ),
            t().prop_map(|term| Message::TimeoutNow { term }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(msg in message()) {
            let mut bytes = Vec::new();
            encode_message(&mut bytes, &msg);
            prop_assert_eq!(decode_message(&bytes), Ok(msg.clone()));
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(decode_message(&longer), Err(DecodeError::Trailing(1)));
            for cut in 0..bytes.len() {
                prop_assert!(decode_message(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_message(&bytes);
            let _ = decode_snapshot(&bytes);
            let _ = decode_entry_data(&bytes);
        }
    }

    #[test]
    fn a_huge_announced_count_is_refused_before_allocating() {
        // AppendEntries claiming u64::MAX entries in a 20-byte payload.
        let mut w = vec![4, 1, 0, 0];
        put(&mut w, u64::MAX);
        assert_eq!(decode_message(&w), Err(DecodeError::Truncated));
        let mut w = vec![0];
        w.extend_from_slice(&[0xff; 11]);
        assert_eq!(decode_message(&w), Err(DecodeError::Varint));
    }
}
