//! The peer-to-peer vocabulary: log entries, snapshots and the Raft RPCs (with their replies)
//! that replicas exchange. The driver carries them; their encoding is the driver's.

use crate::membership::Membership;
use crate::types::{Index, Instant, Term};

/// What one log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryData {
    /// The empty entry a new leader appends to commit its term (Raft §5.4.2, §8).
    Noop,
    /// The caller's bytes (for a partition, one record batch spanning many offsets).
    Normal(Vec<u8>),
    /// The group's new membership; takes effect on every replica as soon as it is appended
    /// (thesis §4.1), not when it commits.
    Membership(Membership),
}

/// One entry of the Raft log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the log.
    pub index: Index,
    /// The term of the leader that created it.
    pub term: Term,
    /// Its payload.
    pub data: EntryData,
}

impl Entry {
    /// Size counted against the in-flight and per-message byte limits (payload plus a fixed
    /// header estimate).
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        let payload = match &self.data {
            EntryData::Noop => 0,
            EntryData::Normal(b) => b.len() as u64,
            EntryData::Membership(m) => 8 * (m.voters.len() + m.learners.len()) as u64,
        };
        24 + payload
    }
}

/// What a snapshot covers: every entry up to `index` is folded into the caller's state.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in force at `index`.
    pub membership: Membership,
}

/// A snapshot: metadata plus the caller's opaque state bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The caller's state machine image at `meta.index`.
    pub data: Vec<u8>,
}

/// Why a follower refused an AppendEntries, so the leader can skip back a term at a time
/// (the optimisation at the end of Raft §5.3) instead of one index per round trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectHint {
    /// The follower's log ends before the probed index: it holds entries up to `last_index`.
    LogTooShort {
        /// The follower's last index.
        last_index: Index,
    },
    /// The follower has an entry of `conflict_term` at the probed index; its first entry of
    /// that term is at `first_index`.
    Conflict {
        /// The term the follower holds at the probed index.
        conflict_term: Term,
        /// The first index at which the follower holds `conflict_term`.
        first_index: Index,
    },
}

/// A Raft RPC or its reply. Every message carries the sender's term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "Would you vote for me at `term`?" (thesis §9.6). Changes no state on either side.
    PreVote {
        /// The term the sender would campaign at (its current term + 1).
        term: Term,
        /// Index of the sender's last entry.
        last_log_index: Index,
        /// Term of the sender's last entry.
        last_log_term: Term,
    },
    /// Answer to a `PreVote`.
    PreVoteResp {
        /// When granted, the term asked about; when refused, the responder's term.
        term: Term,
        /// Whether the responder would vote.
        granted: bool,
    },
    /// A candidate asks for a vote (Raft §5.2).
    RequestVote {
        /// The candidate's term.
        term: Term,
        /// Index of the candidate's last entry.
        last_log_index: Index,
        /// Term of the candidate's last entry.
        last_log_term: Term,
        /// The election follows a leadership transfer (TimeoutNow): voters waive the
        /// leader lease (thesis §3.10).
        transfer: bool,
    },
    /// Answer to a `RequestVote`.
    RequestVoteResp {
        /// The responder's term.
        term: Term,
        /// Whether the vote was granted (sent only once that vote is durable).
        granted: bool,
    },
    /// Replicate entries, or heartbeat when `entries` is empty (Raft §5.3).
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// Index of the entry before `entries`.
        prev_log_index: Index,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to append, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
        /// The leader's heartbeat round, echoed back; confirms leadership for ReadIndex.
        round: u64,
        /// The leader's clock when it sent this, echoed back; starts its lease.
        sent_at: Instant,
    },
    /// Answer to an `AppendEntries`.
    AppendEntriesResp {
        /// The responder's term.
        term: Term,
        /// Whether the consistency check passed.
        success: bool,
        /// On success, the last index known to match the leader (durable on the responder).
        match_index: Index,
        /// The `prev_log_index` of the request (identifies stale rejections).
        rejected: Index,
        /// On refusal, where the leader should look next.
        hint: Option<RejectHint>,
        /// The request's `round`, echoed.
        round: u64,
        /// The request's `sent_at`, echoed.
        sent_at: Instant,
    },
    /// One chunk of the leader's snapshot, for a follower whose next entry it has compacted
    /// (Raft §7, Figure 13): the chunks of one snapshot go one at a time, each at most
    /// `Config::max_msg_bytes` of data, each sent once the previous one is acknowledged.
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// What the whole snapshot covers.
        meta: SnapshotMeta,
        /// Where `data` starts in the snapshot's bytes.
        offset: u64,
        /// The chunk.
        data: Vec<u8>,
        /// This is the last chunk.
        done: bool,
    },
    /// Answer to an `InstallSnapshot` chunk.
    InstallSnapshotResp {
        /// The responder's term.
        term: Term,
        /// The snapshot the answer is about (its last index).
        snapshot_index: Index,
        /// With `done` false: how many of the snapshot's bytes the responder holds, i.e. the
        /// offset of the next chunk it wants.
        next_offset: u64,
        /// The snapshot is installed (or not needed): `match_index` holds.
        done: bool,
        /// With `done`: the last index the responder now holds durably and matching the leader.
        match_index: Index,
    },
    /// The leader tells a caught-up follower to campaign at once (leadership transfer,
    /// thesis §3.10).
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
}

impl Message {
    /// The sender's term (or, for pre-votes, the term asked about).
    #[must_use]
    pub fn term(&self) -> Term {
        match self {
            Message::PreVote { term, .. }
            | Message::PreVoteResp { term, .. }
            | Message::RequestVote { term, .. }
            | Message::RequestVoteResp { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResp { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResp { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }

    /// A short name for counters and traces.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote { .. } => "PreVote",
            Message::PreVoteResp { .. } => "PreVoteResp",
            Message::RequestVote { .. } => "RequestVote",
            Message::RequestVoteResp { .. } => "RequestVoteResp",
            Message::AppendEntries { .. } => "AppendEntries",
            Message::AppendEntriesResp { .. } => "AppendEntriesResp",
            Message::InstallSnapshot { .. } => "InstallSnapshot",
            Message::InstallSnapshotResp { .. } => "InstallSnapshotResp",
            Message::TimeoutNow { .. } => "TimeoutNow",
        }
    }
}
