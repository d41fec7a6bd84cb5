//! `RaftNode`: one replica's consensus state (role, term, vote, commit index, the leader's
//! per-follower progress, pending reads and the messages held for a flush) as a sans-IO
//! state machine driven by `handle_*` inputs and drained with `poll_output`.
//!
//! Driving it: feed every input with the driver's `now` (`tick`, `step`, `propose`,
//! `read_index`, `transfer_leader`, `propose_conf_change`, `persisted`, `compact`), then drain
//! `poll_output` until it returns `None` and re-arm one timer at `next_deadline`. Outputs come
//! out in the order they must be acted on: a `Persist` before the messages it releases.
//!
//! Durability (raft-rs's `persisted_messages`, DESIGN.md's "nothing is durable until
//! Flushed"): every change to the term, the vote or the log is buffered in the caller's log
//! and announced by one `Output::Persist { seq, .. }` at the end of the input that made it.
//! The driver makes the hard state and the log durable (the hard state no later than the
//! log) and calls `persisted(now, seq)`; seqs are acknowledged in order, one acknowledging all
//! before it. Messages that promise durable state (vote grants, a candidate's vote requests,
//! AppendEntries successes, the acknowledgement of a snapshot's last chunk) wait in a queue
//! keyed by the seq that covers what they promise; a chunk's answer before the last promises
//! nothing (the chunks are held in memory until the last arrives). A leader counts itself toward commit only up to its
//! durable index, a candidate counts its own vote only once durable, and committed entries
//! are handed to the caller only once they are durable locally.
//!
//! Membership changes take effect when appended (thesis §4.1); restarting rebuilds the
//! membership by scanning the log after the snapshot for membership entries.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, PlantedBug};
use crate::log::RaftLog;
use crate::membership::{ConfChange, ConfChangeError, Membership};
use crate::message::{Entry, EntryData, Message, RejectHint, Snapshot, SnapshotMeta};
use crate::progress::{Progress, ProgressState};
use crate::read_only::{ReadOnly, ReadRequest};
use crate::types::{HardState, Index, Instant, NodeId, Term};

/// A replica's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one). Learners are always followers.
    Follower,
    /// Asking for pre-votes; its term is unchanged.
    PreCandidate,
    /// Asking for votes at a term it bumped.
    Candidate,
    /// Leads its term.
    Leader,
}

/// Something the node wants its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` to `to` (best effort: Raft tolerates loss, duplication and reordering).
    Send {
        /// The recipient.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Make `hard_state` and the log up to `log_upto` durable, then call `persisted(seq)`.
    Persist {
        /// Acknowledge with this.
        seq: u64,
        /// Term and vote to write.
        hard_state: HardState,
        /// The log's last index and term when this was asked.
        log_upto: (Index, Term),
    },
    /// Entries `from..=to` are committed and durable here: apply them, in order.
    Apply {
        /// First index to apply.
        from: Index,
        /// Last index to apply.
        to: Index,
    },
    /// The log now starts with a snapshot from the leader: reload the state machine from
    /// `RaftLog::snapshot()`; the next `Apply` starts after `meta.index`.
    RestoreSnapshot {
        /// What the snapshot covers.
        meta: SnapshotMeta,
    },
    /// A read asked with `ctx` may be served once the state machine applied `index`.
    ReadReady {
        /// The caller's context.
        ctx: u64,
        /// The read index.
        index: Index,
    },
    /// A read asked with `ctx` cannot be confirmed (leadership lost); retry elsewhere.
    ReadFailed {
        /// The caller's context.
        ctx: u64,
    },
    /// The role, term or known leader changed (for logs and metrics).
    RoleChanged {
        /// The new role.
        role: Role,
        /// The current term.
        term: Term,
        /// The known leader, if any.
        leader: Option<NodeId>,
    },
}

/// Why a proposal was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Not the leader; `leader_hint` is the leader this node knows of.
    NotLeader {
        /// The known leader, if any.
        leader_hint: Option<NodeId>,
    },
    /// Leadership is being transferred; retry at the new leader.
    TransferInProgress,
}

/// Why a read was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not the leader; `leader_hint` is the leader this node knows of.
    NotLeader {
        /// The known leader, if any.
        leader_hint: Option<NodeId>,
    },
    /// Too many reads are pending.
    TooManyPending,
}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Not the leader.
    NotLeader,
    /// The target is not a voter.
    NotAVoter,
}

/// Why a node could not be built from its storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The log holds an entry of a later term than the durable hard state: the hard state
    /// was not made durable before the log, as the persist contract requires.
    LogAheadOfHardState,
    /// The caller's applied index is past the log.
    AppliedBeyondLog,
}

/// Counters of inputs the node ignored (stale, malformed or unexpected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages from an older term, duplicates, or answers to requests no longer pending.
    pub stale_msgs: u64,
    /// Messages that make no sense in the current state (from self, from unknown peers,
    /// malformed ranges).
    pub malformed_msgs: u64,
    /// Vote requests refused unheard because the leader lease holds.
    pub lease_ignored_votes: u64,
    /// Held messages dropped because the held queue was full.
    pub dropped_held: u64,
    /// AppendEntries that conflicted with a committed entry (a broken peer): ignored.
    pub conflicts_below_commit: u64,
    /// `persisted` calls with a seq not in flight.
    pub bad_persist_acks: u64,
}

/// One Raft replica over a log `L`.
pub struct RaftNode<L: RaftLog> {
    cfg: Config,
    id: NodeId,
    log: L,
    rng: ChaCha8Rng,
    now: Instant,

    role: Role,
    term: Term,
    vote: Option<NodeId>,
    leader: Option<NodeId>,
    commit: Index,
    applied: Index,

    /// The membership in force: the last membership entry in the log, else the snapshot's.
    membership: Membership,
    /// Membership entries after the snapshot, by index, ascending.
    config_history: Vec<(Index, Membership)>,

    // Leader state.
    progress: BTreeMap<NodeId, Progress>,
    transfer: Option<(NodeId, Instant)>,
    timeout_now_sent: bool,
    reads: ReadOnly,
    /// Heartbeat rounds; never reset, so no echo from an earlier term can confirm a read.
    round: u64,

    // Candidate state.
    votes: BTreeMap<NodeId, bool>,

    // Timers.
    election_deadline: Instant,
    heartbeat_deadline: Instant,
    check_quorum_deadline: Instant,
    /// Votes (not caused by a transfer) are refused until then: the leader lease.
    lease_until: Instant,

    // Durability.
    durable_index: Index,
    durable_hs: HardState,
    dirty: bool,
    next_seq: u64,
    persisted_seq: u64,
    in_flight_persists: VecDeque<(u64, HardState, Index, Term)>,
    held: VecDeque<(u64, NodeId, Message)>,
    /// A snapshot arriving in chunks: the term it came in, what it covers, the bytes so far.
    incoming_snapshot: Option<(Term, SnapshotMeta, Vec<u8>)>,

    outputs: VecDeque<Output>,
    stats: Stats,
}

impl<L: RaftLog> RaftNode<L> {
    /// A replica starting (or restarting) from durable storage: `log` and `hard_state` as they
    /// are on disk, `applied` the index the caller's state machine holds (at least the
    /// snapshot's), `seed` for the election-timeout RNG.
    pub fn new(
        cfg: Config,
        log: L,
        hard_state: HardState,
        applied: Index,
        seed: u64,
        now: Instant,
    ) -> Result<RaftNode<L>, InitError> {
        if log.last_term() > hard_state.term {
            return Err(InitError::LogAheadOfHardState);
        }
        if applied > log.last_index() {
            return Err(InitError::AppliedBeyondLog);
        }
        let applied = applied.max(log.snapshot_meta().index);
        let mut config_history = Vec::new();
        let (first, last) = (log.first_index(), log.last_index());
        if first <= last {
            for e in log.entries(first, last, u64::MAX) {
                if let EntryData::Membership(m) = e.data {
                    config_history.push((e.index, m));
                }
            }
        }
        let membership = config_history.last().map_or_else(
            || log.snapshot_meta().membership.clone(),
            |(_, m)| m.clone(),
        );
        let eto = cfg.election_timeout_ms;
        let mut node = RaftNode {
            id: cfg.id,
            cfg,
            durable_index: log.last_index(),
            log,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            role: Role::Follower,
            term: hard_state.term,
            vote: hard_state.vote,
            leader: None,
            commit: applied,
            applied,
            membership,
            config_history,
            progress: BTreeMap::new(),
            transfer: None,
            timeout_now_sent: false,
            reads: ReadOnly::default(),
            round: 0,
            votes: BTreeMap::new(),
            election_deadline: now,
            heartbeat_deadline: now,
            check_quorum_deadline: now,
            // A restarted replica may have promised a lease before it crashed.
            lease_until: now.plus_ms(eto),
            durable_hs: hard_state,
            dirty: false,
            next_seq: 1,
            persisted_seq: 0,
            in_flight_persists: VecDeque::new(),
            held: VecDeque::new(),
            incoming_snapshot: None,
            outputs: VecDeque::new(),
            stats: Stats::default(),
        };
        node.reset_election_timer();
        node.check();
        Ok(node)
    }

    // ----- inspection -----

    /// This replica's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// The current role.
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }
    /// The current term.
    #[must_use]
    pub fn term(&self) -> Term {
        self.term
    }
    /// The vote cast in the current term.
    #[must_use]
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    /// The leader this replica knows of in its term.
    #[must_use]
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The commit index.
    #[must_use]
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    /// The last index handed out by `Apply` (or restored from a snapshot).
    #[must_use]
    pub fn applied_index(&self) -> Index {
        self.applied
    }
    /// The highest index known durable in the local log.
    #[must_use]
    pub fn durable_index(&self) -> Index {
        self.durable_index
    }
    /// The membership in force.
    #[must_use]
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// The log.
    #[must_use]
    pub fn log(&self) -> &L {
        &self.log
    }
    /// The log, mutably (the driver's flushes go through it; never append or truncate).
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }
    /// A follower's progress, as the leader sees it.
    #[must_use]
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        self.progress.get(&id)
    }
    /// Ignored-input counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The next output to act on.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `tick` must next be called.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.role {
            Role::Leader => {
                let mut d = self.heartbeat_deadline;
                if self.cfg.check_quorum {
                    d = d.min(self.check_quorum_deadline);
                }
                if let Some((_, t)) = self.transfer {
                    d = d.min(t);
                }
                Some(d)
            }
            _ if self.promotable() => Some(self.election_deadline),
            _ => None,
        }
    }

    // ----- inputs -----

    /// Time passed: fire whichever timers are due (an early call is a no-op).
    pub fn tick(&mut self, now: Instant) {
        self.advance_clock(now);
        if self.role == Role::Leader {
            self.tick_leader();
        } else if self.now >= self.election_deadline {
            self.reset_election_timer();
            if self.promotable() {
                if self.cfg.pre_vote {
                    self.campaign_pre();
                } else {
                    self.campaign(false);
                }
            }
        }
        self.end_input();
    }

    /// A message from a peer.
    pub fn step(&mut self, now: Instant, from: NodeId, msg: Message) {
        self.advance_clock(now);
        if from == self.id {
            self.stats.malformed_msgs += 1;
        } else {
            self.step_msg(from, msg);
        }
        self.end_input();
    }

    /// Propose `data` as a new entry; returns its index (committed later, or never).
    pub fn propose(&mut self, now: Instant, data: Vec<u8>) -> Result<Index, ProposeError> {
        self.advance_clock(now);
        let r = self.propose_entry(EntryData::Normal(data));
        self.end_input();
        r
    }

    /// Propose a single-server membership change.
    pub fn propose_conf_change(
        &mut self,
        now: Instant,
        change: ConfChange,
    ) -> Result<Index, ConfChangeError> {
        self.advance_clock(now);
        let r = self.conf_change(change);
        self.end_input();
        r
    }

    /// Ask for a linearizable read point (thesis §6.4); answered by `ReadReady{ctx, ..}` or
    /// `ReadFailed{ctx}`.
    pub fn read_index(&mut self, now: Instant, ctx: u64) -> Result<(), ReadError> {
        self.advance_clock(now);
        let r = self.read(ctx);
        self.end_input();
        r
    }

    /// Hand leadership to `to` once it has caught up (thesis §3.10).
    pub fn transfer_leader(&mut self, now: Instant, to: NodeId) -> Result<(), TransferError> {
        self.advance_clock(now);
        let r = self.start_transfer(to);
        self.end_input();
        r
    }

    /// The driver made everything up to `Persist { seq }` durable.
    pub fn persisted(&mut self, now: Instant, seq: u64) {
        self.advance_clock(now);
        if seq <= self.persisted_seq || seq >= self.next_seq {
            self.stats.bad_persist_acks += 1;
        } else {
            while let Some(&(s, hs, index, term)) = self.in_flight_persists.front() {
                if s > seq {
                    break;
                }
                self.in_flight_persists.pop_front();
                self.durable_hs = hs;
                // A later truncation may have replaced what this flush covered; the entry's
                // term tells (Log Matching: same index and term, same prefix).
                if index > self.durable_index && self.log.term_at(index) == Some(term) {
                    self.durable_index = index.min(self.log.last_index());
                }
            }
            self.persisted_seq = seq;
            while let Some((s, _, _)) = self.held.front() {
                if *s > self.persisted_seq {
                    break;
                }
                let (_, to, msg) = self.held.pop_front().expect("front exists");
                self.outputs.push_back(Output::Send { to, msg });
            }
            match self.role {
                Role::Leader => self.maybe_commit(),
                Role::Candidate => self.tally_votes(),
                _ => {}
            }
        }
        self.end_input();
    }

    /// The caller snapshotted its state machine at `index` (≤ the applied index): compact
    /// the log up to it. Returns false (and does nothing) if `index` is not applied yet or not
    /// past the current snapshot.
    pub fn compact(&mut self, now: Instant, index: Index, data: Vec<u8>) -> bool {
        self.advance_clock(now);
        let ok = index <= self.applied && index > self.log.snapshot_meta().index;
        if ok {
            let term = self
                .log
                .term_at(index)
                .expect("applied entries are in the log");
            let membership = self.membership_at(index);
            self.log.compact(Snapshot {
                meta: SnapshotMeta {
                    index,
                    term,
                    membership,
                },
                data,
            });
            self.config_history.retain(|(i, _)| *i > index);
        }
        self.end_input();
        ok
    }

    // ----- the state machine -----

    fn advance_clock(&mut self, now: Instant) {
        // A clock that goes back is the driver's fault; time simply does not move then.
        self.now = self.now.max(now);
    }

    fn promotable(&self) -> bool {
        self.membership.is_voter(self.id)
    }

    fn reset_election_timer(&mut self) {
        let eto = self.cfg.election_timeout_ms;
        let jitter = self.rng.gen_range(0..eto.max(1));
        self.election_deadline = self.now.plus_ms(eto + jitter);
    }

    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && !self.cfg.planted(PlantedBug::NoCheckQuorum)
            && (self.now < self.lease_until || self.role == Role::Leader)
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
        }
    }

    fn set_term(&mut self, term: Term) {
        assert!(
            term >= self.term,
            "term went back: {} -> {}",
            self.term,
            term
        );
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.dirty = true;
        }
    }

    fn emit_role(&mut self) {
        self.outputs.push_back(Output::RoleChanged {
            role: self.role,
            term: self.term,
            leader: self.leader,
        });
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    /// Sends `msg` once everything changed so far is durable.
    fn send_durable(&mut self, to: NodeId, msg: Message) {
        let needed = if self.dirty {
            self.next_seq
        } else {
            self.next_seq - 1
        };
        if needed <= self.persisted_seq {
            self.send(to, msg);
            return;
        }
        if self.held.len() >= self.cfg.max_held_msgs {
            self.held.pop_front();
            self.stats.dropped_held += 1;
        }
        self.held.push_back((needed, to, msg));
    }

    fn end_input(&mut self) {
        if self.dirty {
            let seq = self.next_seq;
            self.next_seq += 1;
            let hs = self.hard_state();
            let (li, lt) = (self.log.last_index(), self.log.last_term());
            self.in_flight_persists.push_back((seq, hs, li, lt));
            // The Persist goes before any message queued in this input; held ones wait.
            self.outputs.push_back(Output::Persist {
                seq,
                hard_state: hs,
                log_upto: (li, lt),
            });
            self.dirty = false;
        }
        self.maybe_apply();
        self.check();
    }

    fn maybe_apply(&mut self) {
        let upto = self.commit.min(self.durable_index);
        if upto > self.applied {
            self.outputs.push_back(Output::Apply {
                from: self.applied.next(),
                to: upto,
            });
            self.applied = upto;
        }
    }

    /// The invariants of one replica, checked after every input in every build.
    fn check(&self) {
        assert!(
            self.applied <= self.commit,
            "applied {} > commit {}",
            self.applied,
            self.commit
        );
        assert!(
            self.commit <= self.log.last_index(),
            "commit {} beyond the log {}",
            self.commit,
            self.log.last_index()
        );
        assert!(
            self.durable_index <= self.log.last_index(),
            "durable beyond the log"
        );
        assert!(
            self.durable_hs.term <= self.term,
            "durable term ahead of the term"
        );
        assert!(
            self.log.last_term() <= self.term,
            "log term ahead of the term"
        );
        assert!(self.persisted_seq < self.next_seq);
        assert!(self
            .incoming_snapshot
            .as_ref()
            .is_none_or(|(_, _, b)| b.len() as u64 <= self.cfg.max_snapshot_bytes));
        if self.role == Role::Leader {
            assert_eq!(self.leader, Some(self.id));
            assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
        }
        if matches!(self.role, Role::Candidate) {
            assert_eq!(self.vote, Some(self.id));
        }
        debug_assert!(self
            .membership
            .voters
            .is_disjoint(&self.membership.learners));
        debug_assert!(self.config_history.windows(2).all(|w| w[0].0 < w[1].0));
    }

    // ----- elections (Raft §5.2, thesis §9.6) -----

    fn last_log(&self) -> (Index, Term) {
        (self.log.last_index(), self.log.last_term())
    }

    /// Raft §5.4.1: the candidate's log is at least as up to date as ours.
    fn log_ok(&self, last_index: Index, last_term: Term) -> bool {
        let (li, lt) = self.last_log();
        last_term > lt || (last_term == lt && last_index >= li)
    }

    /// The voters other than this node, in id order.
    fn other_voters(&self) -> Vec<NodeId> {
        let me = self.id;
        self.membership
            .voters
            .iter()
            .copied()
            .filter(|v| *v != me)
            .collect()
    }

    fn campaign_pre(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.emit_role();
        let (li, lt) = self.last_log();
        let term = self.term.next();
        for p in self.other_voters() {
            self.send(
                p,
                Message::PreVote {
                    term,
                    last_log_index: li,
                    last_log_term: lt,
                },
            );
        }
        self.tally_votes();
    }

    fn campaign(&mut self, transfer: bool) {
        let next = self.term.next();
        self.set_term(next);
        self.vote = Some(self.id);
        self.dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_election_timer();
        self.emit_role();
        let (li, lt) = self.last_log();
        let term = self.term;
        for p in self.other_voters() {
            let msg = Message::RequestVote {
                term,
                last_log_index: li,
                last_log_term: lt,
                transfer,
            };
            if self.cfg.planted(PlantedBug::VoteBeforeFlush) {
                self.send(p, msg);
            } else {
                self.send_durable(p, msg);
            }
        }
        self.tally_votes();
    }

    fn tally_votes(&mut self) {
        let self_vote_durable = self.role == Role::PreCandidate
            || self.cfg.planted(PlantedBug::VoteBeforeFlush)
            || (self.durable_hs.term == self.term && self.durable_hs.vote == Some(self.id));
        let mut yes = BTreeSet::new();
        let mut no = BTreeSet::new();
        for (&id, &g) in &self.votes {
            if id == self.id && !self_vote_durable {
                continue;
            }
            if g {
                yes.insert(id);
            } else {
                no.insert(id);
            }
        }
        if self.membership.has_quorum(&yes) {
            match self.role {
                Role::PreCandidate => self.campaign(false),
                Role::Candidate => self.become_leader(),
                _ => {}
            }
        } else if self.membership.has_quorum(&no) {
            self.become_follower(self.term, None);
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let was = (self.role, self.term, self.leader);
        if self.role == Role::Leader {
            for ctx in self.reads.drain_all() {
                self.outputs.push_back(Output::ReadFailed { ctx });
            }
            self.progress.clear();
            self.transfer = None;
        }
        self.set_term(term);
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        if was.0 != Role::Follower || was.1 != self.term {
            self.reset_election_timer();
        }
        if was != (self.role, self.term, self.leader) {
            self.emit_role();
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate);
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.transfer = None;
        self.timeout_now_sent = false;
        self.heartbeat_deadline = self.now.plus_ms(self.cfg.heartbeat_interval_ms);
        self.check_quorum_deadline = self.now.plus_ms(self.cfg.election_timeout_ms);
        let next = self.log.last_index().next();
        self.progress.clear();
        let members: Vec<NodeId> = self
            .membership
            .members()
            .filter(|m| *m != self.id)
            .collect();
        for m in members {
            self.progress.insert(m, Progress::new(next));
        }
        self.emit_role();
        // Raft §5.4.2 / §8: an entry of the new term lets earlier ones commit.
        self.append_own(EntryData::Noop);
        self.broadcast_append(false);
    }

    fn handle_vote_request(&mut self, from: NodeId, pre: bool, term: Term, li: Index, lt: Term) {
        let log_ok = self.log_ok(li, lt);
        if pre {
            let granted = term > self.term && log_ok;
            let resp_term = if granted { term } else { self.term };
            self.send(
                from,
                Message::PreVoteResp {
                    term: resp_term,
                    granted,
                },
            );
            return;
        }
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let granted = can_vote && log_ok;
        if granted {
            if self.vote != Some(from) {
                self.vote = Some(from);
                self.dirty = true;
            }
            self.reset_election_timer();
            let msg = Message::RequestVoteResp {
                term: self.term,
                granted: true,
            };
            if self.cfg.planted(PlantedBug::VoteBeforeFlush) {
                self.send(from, msg);
            } else {
                self.send_durable(from, msg);
            }
        } else {
            self.send(
                from,
                Message::RequestVoteResp {
                    term: self.term,
                    granted: false,
                },
            );
        }
    }

    // ----- the term check every message passes -----

    fn step_msg(&mut self, from: NodeId, msg: Message) {
        let mterm = msg.term();
        let is_vote_req = matches!(msg, Message::PreVote { .. } | Message::RequestVote { .. });
        let transfer = matches!(msg, Message::RequestVote { transfer: true, .. });
        if is_vote_req && !transfer && mterm > self.term && self.in_lease() {
            // thesis §4.2.3 / §9.6: a replica that heard from a leader recently does not help
            // depose it, and does not even learn the higher term.
            self.stats.lease_ignored_votes += 1;
            return;
        }
        if mterm > self.term {
            match &msg {
                Message::PreVote { .. } => {
                    if self.cfg.planted(PlantedBug::PreVoteBumpsTerm) {
                        self.become_follower(mterm, None);
                    }
                }
                Message::PreVoteResp { granted: true, .. } => {}
                Message::AppendEntries { .. }
                | Message::InstallSnapshot { .. }
                | Message::TimeoutNow { .. } => {
                    self.become_follower(mterm, Some(from));
                }
                _ => self.become_follower(mterm, None),
            }
        } else if mterm < self.term {
            self.stats.stale_msgs += 1;
            match msg {
                Message::AppendEntries { .. } | Message::InstallSnapshot { .. } => {
                    // Tell a deposed leader the newer term (needed with pre-vote and
                    // check-quorum, where it may never hear a vote request). No round or
                    // lease echo: this answer confirms nothing.
                    self.send(
                        from,
                        Message::AppendEntriesResp {
                            term: self.term,
                            success: false,
                            match_index: Index(0),
                            rejected: Index(0),
                            hint: None,
                            round: 0,
                            sent_at: Instant(0),
                        },
                    );
                }
                Message::PreVote { .. } => {
                    self.send(
                        from,
                        Message::PreVoteResp {
                            term: self.term,
                            granted: false,
                        },
                    );
                }
                Message::RequestVote { .. } => {
                    self.send(
                        from,
                        Message::RequestVoteResp {
                            term: self.term,
                            granted: false,
                        },
                    );
                }
                _ => {}
            }
            return;
        }

        match msg {
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => {
                self.handle_vote_request(from, true, term, last_log_index, last_log_term);
            }
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                ..
            } => {
                self.handle_vote_request(from, false, term, last_log_index, last_log_term);
            }
            Message::PreVoteResp { term, granted } => {
                let ours = (granted && term == self.term.next()) || (!granted && term == self.term);
                if self.role == Role::PreCandidate && ours && self.membership.is_voter(from) {
                    self.votes.insert(from, granted);
                    self.tally_votes();
                } else {
                    self.stats.stale_msgs += 1;
                }
            }
            Message::RequestVoteResp { granted, .. } => {
                if self.role == Role::Candidate && self.membership.is_voter(from) {
                    self.votes.insert(from, granted);
                    self.tally_votes();
                } else {
                    self.stats.stale_msgs += 1;
                }
            }
            req @ Message::AppendEntries { .. } => {
                if self.role == Role::Leader {
                    // Two leaders in one term cannot happen among correct replicas.
                    self.stats.malformed_msgs += 1;
                    return;
                }
                self.accept_leader(from);
                self.handle_append(from, req);
            }
            req @ Message::InstallSnapshot { .. } => {
                if self.role == Role::Leader {
                    self.stats.malformed_msgs += 1;
                    return;
                }
                self.accept_leader(from);
                self.handle_snapshot_chunk(from, req);
            }
            Message::TimeoutNow { .. } => {
                if self.role != Role::Leader && self.promotable() {
                    self.campaign(true);
                } else {
                    self.stats.stale_msgs += 1;
                }
            }
            resp @ Message::AppendEntriesResp { .. } => self.handle_append_resp(from, resp),
            resp @ Message::InstallSnapshotResp { .. } => self.handle_snapshot_resp(from, resp),
        }
    }

    fn accept_leader(&mut self, from: NodeId) {
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.lease_until = self.now.plus_ms(self.cfg.election_timeout_ms);
        self.reset_election_timer();
    }

    // ----- replication, follower side (Raft §5.3) -----

    fn handle_append(&mut self, from: NodeId, req: Message) {
        let Message::AppendEntries {
            prev_log_index: prev_index,
            prev_log_term: prev_term,
            mut entries,
            leader_commit,
            round,
            sent_at,
            ..
        } = req
        else {
            unreachable!("step_msg routes only AppendEntries here");
        };
        let contiguous = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index == prev_index.plus(k as u64 + 1))
            && entries.windows(2).all(|w| w[0].term <= w[1].term)
            && entries
                .last()
                .is_none_or(|e| e.term <= self.term && e.term >= prev_term);
        if !contiguous {
            self.stats.malformed_msgs += 1;
            return;
        }
        let term = self.term;
        let reply = move |success, match_index, hint| Message::AppendEntriesResp {
            term,
            success,
            match_index,
            rejected: prev_index,
            hint,
            round,
            sent_at,
        };
        // Entries at or below our commit index are committed, hence the leader's too
        // (Leader Completeness): skip them rather than compare against a compacted prefix.
        let last_new = prev_index.plus(entries.len() as u64);
        let (mut prev_index, mut prev_term) = (prev_index, prev_term);
        if prev_index < self.commit {
            if last_new <= self.commit {
                let msg = reply(true, self.commit, None);
                self.send_durable(from, msg);
                return;
            }
            let skip = (self.commit.0 - prev_index.0) as usize;
            entries.drain(..skip);
            prev_index = self.commit;
            prev_term = self
                .log
                .term_at(self.commit)
                .expect("the commit index is in the log");
        }
        if self.log.term_at(prev_index) != Some(prev_term) {
            let hint = if prev_index > self.log.last_index() {
                RejectHint::LogTooShort {
                    last_index: self.log.last_index(),
                }
            } else {
                let ct = self
                    .log
                    .term_at(prev_index)
                    .expect("held: between commit and last");
                let floor = self.commit.next().max(self.log.first_index());
                let mut first = prev_index;
                while first > floor && self.log.term_at(first.prev()) == Some(ct) {
                    first = first.prev();
                }
                RejectHint::Conflict {
                    conflict_term: ct,
                    first_index: first,
                }
            };
            let msg = reply(false, Index(0), Some(hint));
            self.send(from, msg);
            return;
        }
        // Find the first entry we lack or that conflicts (Figure 2, AppendEntries step 3-4).
        let mut append_from = entries.len();
        for (k, e) in entries.iter().enumerate() {
            match self.log.term_at(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    if e.index <= self.commit {
                        self.stats.conflicts_below_commit += 1;
                        return;
                    }
                    if self.cfg.planted(PlantedBug::NoTruncateDivergentSuffix) {
                        // Keep our divergent entries; take only what lies past our end.
                        let last = self.log.last_index();
                        append_from = entries
                            .iter()
                            .position(|x| x.index > last)
                            .unwrap_or(entries.len());
                        break;
                    }
                    self.truncate_from(e.index);
                    append_from = k;
                    break;
                }
                None => {
                    append_from = k;
                    break;
                }
            }
        }
        if append_from < entries.len() {
            let new: Vec<Entry> = entries.split_off(append_from);
            self.append_to_log(new);
        }
        let new_commit = leader_commit.min(last_new);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        let msg = reply(true, last_new, None);
        self.send_durable(from, msg);
    }

    fn truncate_from(&mut self, from: Index) {
        assert!(
            from > self.commit,
            "truncating committed entry {from} (commit {})",
            self.commit
        );
        assert_ne!(self.role, Role::Leader, "a leader never truncates its log");
        self.log.truncate_suffix(from);
        self.dirty = true;
        self.durable_index = self.durable_index.min(from.prev());
        let before = self.config_history.len();
        self.config_history.retain(|(i, _)| *i < from);
        if self.config_history.len() != before {
            let m = self.membership_at(self.log.last_index());
            self.set_membership(m);
        }
    }

    fn append_to_log(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.log.append(&entries);
        self.dirty = true;
        for e in entries {
            if let EntryData::Membership(m) = e.data {
                self.config_history.push((e.index, m.clone()));
                self.set_membership(m);
            }
        }
    }

    fn membership_at(&self, index: Index) -> Membership {
        self.config_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(
                || self.log.snapshot_meta().membership.clone(),
                |(_, m)| m.clone(),
            )
    }

    fn set_membership(&mut self, m: Membership) {
        self.membership = m;
        if self.role == Role::Leader {
            let next = self.log.last_index().next();
            let members: Vec<NodeId> = self
                .membership
                .members()
                .filter(|x| *x != self.id)
                .collect();
            self.progress.retain(|id, _| members.contains(id));
            for id in members {
                self.progress
                    .entry(id)
                    .or_insert_with(|| Progress::new(next));
            }
            if let Some((t, _)) = self.transfer {
                if !self.membership.is_voter(t) {
                    self.transfer = None;
                }
            }
        }
    }

    /// One chunk of a snapshot: reassembled in order (a chunk at offset 0 starts over; one at
    /// any other offset than the bytes held is answered with where we are), installed when
    /// the last one arrives.
    fn handle_snapshot_chunk(&mut self, from: NodeId, req: Message) {
        let Message::InstallSnapshot {
            meta,
            offset,
            data,
            done,
            ..
        } = req
        else {
            unreachable!("step_msg routes only InstallSnapshot here");
        };
        let (term, index) = (self.term, meta.index);
        let answer = move |next_offset, done, match_index| Message::InstallSnapshotResp {
            term,
            snapshot_index: index,
            next_offset,
            done,
            match_index,
        };
        if index <= self.commit {
            self.incoming_snapshot = None;
            let msg = answer(0, true, self.commit);
            self.send_durable(from, msg);
            return;
        }
        let mut buf = match self.incoming_snapshot.take() {
            Some((t, m, b)) if offset > 0 && t == term && m == meta => b,
            _ => Vec::new(),
        };
        let held = buf.len() as u64;
        if offset != held {
            // A lost, duplicated or reordered chunk: say where we are.
            self.stats.stale_msgs += 1;
            if held > 0 {
                self.incoming_snapshot = Some((term, meta, buf));
            }
            self.send(from, answer(held, false, Index(0)));
            return;
        }
        if held + data.len() as u64 > self.cfg.max_snapshot_bytes {
            self.stats.malformed_msgs += 1;
            return;
        }
        buf.extend_from_slice(&data);
        if !done {
            let next = buf.len() as u64;
            self.incoming_snapshot = Some((term, meta, buf));
            self.send(from, answer(next, false, Index(0)));
            return;
        }
        self.install_snapshot(from, Snapshot { meta, data: buf });
    }

    fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let meta = snapshot.meta.clone();
        let len = snapshot.data.len() as u64;
        self.log.install_snapshot(snapshot);
        self.dirty = true;
        self.durable_index = self.durable_index.min(self.log.last_index());
        self.config_history.retain(|(i, _)| *i > meta.index);
        if self.log.last_index() == meta.index {
            self.config_history.clear();
        }
        let m = self.membership_at(self.log.last_index());
        self.set_membership(m);
        assert!(meta.index > self.commit);
        self.commit = meta.index;
        self.applied = meta.index;
        self.outputs
            .push_back(Output::RestoreSnapshot { meta: meta.clone() });
        let msg = Message::InstallSnapshotResp {
            term: self.term,
            snapshot_index: meta.index,
            next_offset: len,
            done: true,
            match_index: meta.index,
        };
        self.send_durable(from, msg);
    }

    // ----- replication, leader side -----

    fn append_own(&mut self, data: EntryData) -> Index {
        let index = self.log.last_index().next();
        self.append_to_log(vec![Entry {
            index,
            term: self.term,
            data,
        }]);
        index
    }

    fn propose_entry(&mut self, data: EntryData) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let index = self.append_own(data);
        self.broadcast_append(false);
        self.maybe_commit();
        Ok(index)
    }

    fn conf_change(&mut self, change: ConfChange) -> Result<Index, ConfChangeError> {
        if self.role != Role::Leader || self.transfer.is_some() {
            return Err(ConfChangeError::NotLeader);
        }
        if self.log.term_at(self.commit) != Some(self.term) {
            return Err(ConfChangeError::TermNotCommitted);
        }
        if self
            .config_history
            .last()
            .is_some_and(|(i, _)| *i > self.commit)
        {
            return Err(ConfChangeError::ChangeInProgress);
        }
        let next = self.membership.apply(change)?;
        let index = self.append_own(EntryData::Membership(next));
        self.broadcast_append(false);
        self.maybe_commit();
        Ok(index)
    }

    /// `send_append` to every follower; with `empty_ok` (a commit-index update), an empty
    /// one too.
    fn broadcast_append(&mut self, empty_ok: bool) {
        for p in self.followers() {
            self.send_append(p, empty_ok);
        }
    }

    /// Every member the leader replicates to, in id order.
    fn followers(&self) -> Vec<NodeId> {
        self.progress.keys().copied().collect()
    }

    /// Sends the next AppendEntries (or snapshot) to `to` if flow control allows; with
    /// `empty_ok`, also an empty one (a probe or a commit-index update).
    fn send_append(&mut self, to: NodeId, empty_ok: bool) {
        let Some(pr) = self.progress.get(&to) else {
            return;
        };
        if !pr.can_send(self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes) {
            return;
        }
        let prev = pr.next.prev();
        let Some(prev_term) = self.log.term_at(prev) else {
            self.send_snapshot(to);
            return;
        };
        let last = self.log.last_index();
        let entries = if pr.next <= last {
            self.log.entries(pr.next, last, self.cfg.max_msg_bytes)
        } else {
            Vec::new()
        };
        if entries.is_empty() && pr.state == ProgressState::Replicate && !empty_ok {
            return;
        }
        let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
        let sent_last = entries.last().map_or(prev, |e| e.index);
        let msg = Message::AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: self.commit,
            round: self.round,
            sent_at: self.now,
        };
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.sent(sent_last, bytes);
        }
        self.send(to, msg);
    }

    fn send_heartbeat(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get(&to) else {
            return;
        };
        let (mut prev, mut prev_term) = (pr.matched, self.log.term_at(pr.matched));
        if prev_term.is_none() {
            prev = self.log.snapshot_meta().index;
            prev_term = Some(self.log.snapshot_meta().term);
        }
        let msg = Message::AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term: prev_term.unwrap_or_default(),
            entries: Vec::new(),
            leader_commit: self.commit.min(prev),
            round: self.round,
            sent_at: self.now,
        };
        self.send(to, msg);
    }

    /// Starts sending the current snapshot to `to`, from its first chunk.
    fn send_snapshot(&mut self, to: NodeId) {
        let index = self.log.snapshot_meta().index;
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.become_snapshot(index, self.now);
        }
        self.send_snapshot_chunk(to, 0);
    }

    /// Sends the chunk of the snapshot starting at `offset` (from the start if the leader
    /// compacted again since the transfer began).
    fn send_snapshot_chunk(&mut self, to: NodeId, offset: u64) {
        // The whole snapshot is cloned per chunk: MemLog's snapshot is in memory; a log on
        // disk would read the range instead.
        let snapshot = self.log.snapshot();
        let index = snapshot.meta.index;
        let now = self.now;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let mut offset = offset;
        if pr.state != (ProgressState::Snapshot { pending: index }) {
            pr.become_snapshot(index, now);
            offset = 0;
        }
        let len = snapshot.data.len() as u64;
        let offset = offset.min(len);
        let end = len.min(offset + self.cfg.max_msg_bytes.max(1));
        pr.snapshot_chunk_sent(end, now);
        let data = snapshot.data[offset as usize..end as usize].to_vec();
        self.send(
            to,
            Message::InstallSnapshot {
                term: self.term,
                meta: snapshot.meta,
                offset,
                data,
                done: end == len,
            },
        );
    }

    fn broadcast_heartbeat(&mut self) {
        for p in self.followers() {
            let Some(pr) = self.progress.get_mut(&p) else {
                continue;
            };
            if pr.heartbeat_elapsed() {
                // Lost AppendEntries: go back to probing from what is known to match.
                let next = pr.matched.next();
                pr.become_probe(next);
            }
            match pr.state {
                ProgressState::Probe => {
                    pr.paused = false;
                    self.send_append(p, true);
                }
                ProgressState::Replicate | ProgressState::Snapshot { .. } => self.send_heartbeat(p),
            }
        }
    }

    fn tick_leader(&mut self) {
        let eto = self.cfg.election_timeout_ms;
        if self.cfg.check_quorum && self.now >= self.check_quorum_deadline {
            self.check_quorum_deadline = self.now.plus_ms(eto);
            let mut active: BTreeSet<NodeId> = self
                .progress
                .iter()
                .filter(|(_, p)| p.recent_active)
                .map(|(id, _)| *id)
                .collect();
            active.insert(self.id);
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
            if !self.membership.has_quorum(&active) && !self.cfg.planted(PlantedBug::NoCheckQuorum)
            {
                self.become_follower(self.term, None);
                return;
            }
        }
        if let Some((_, deadline)) = self.transfer {
            if self.now >= deadline {
                self.transfer = None;
            }
        }
        let now = self.now;
        for pr in self.progress.values_mut() {
            if let ProgressState::Snapshot { .. } = pr.state {
                if now.since(pr.snapshot_sent_at) >= eto {
                    let next = pr.next;
                    pr.become_probe(next);
                }
            }
        }
        if self.now >= self.heartbeat_deadline {
            self.heartbeat_deadline = self.now.plus_ms(self.cfg.heartbeat_interval_ms);
            self.broadcast_heartbeat();
        }
    }

    fn handle_append_resp(&mut self, from: NodeId, resp: Message) {
        let Message::AppendEntriesResp {
            success,
            match_index,
            rejected,
            hint,
            round,
            sent_at,
            ..
        } = resp
        else {
            unreachable!("step_msg routes only AppendEntriesResp here");
        };
        if self.role != Role::Leader {
            self.stats.stale_msgs += 1;
            return;
        }
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            self.stats.malformed_msgs += 1;
            return;
        };
        pr.recent_active = true;
        if round > pr.acked_round && round <= self.round {
            pr.acked_round = round;
        }
        if sent_at > pr.acked_sent_at && sent_at <= self.now {
            pr.acked_sent_at = sent_at;
        }
        if success {
            if match_index > last {
                self.stats.malformed_msgs += 1;
                return;
            }
            let grew = pr.ack(match_index);
            match pr.state {
                ProgressState::Probe => pr.become_replicate(),
                ProgressState::Snapshot { pending } if pr.matched >= pending => {
                    pr.become_replicate()
                }
                _ => {}
            }
            if grew {
                self.maybe_commit();
            }
            if self.role == Role::Leader {
                self.send_append(from, false);
                self.maybe_send_timeout_now(from);
            }
        } else {
            let next = match hint {
                Some(RejectHint::LogTooShort { last_index }) => last_index.next(),
                Some(RejectHint::Conflict {
                    conflict_term,
                    first_index,
                }) => {
                    // Skip the follower's whole conflicting term; if we hold that term too,
                    // resume just after our last entry of it.
                    let mut i = rejected.min(last);
                    while i > first_index && self.log.term_at(i).is_some_and(|t| t > conflict_term)
                    {
                        i = i.prev();
                    }
                    if self.log.term_at(i) == Some(conflict_term) {
                        i.next()
                    } else {
                        first_index
                    }
                }
                None => {
                    // An answer to one of our own earlier-term requests: confirms nothing.
                    self.stats.stale_msgs += 1;
                    return;
                }
            };
            let Some(pr) = self.progress.get_mut(&from) else {
                return;
            };
            if pr.reject(rejected, next.max(Index(1))) {
                self.send_append(from, true);
            } else {
                self.stats.stale_msgs += 1;
            }
        }
        self.advance_reads();
    }

    fn handle_snapshot_resp(&mut self, from: NodeId, resp: Message) {
        let Message::InstallSnapshotResp {
            snapshot_index,
            next_offset,
            done,
            match_index,
            ..
        } = resp
        else {
            unreachable!("step_msg routes only InstallSnapshotResp here");
        };
        if self.role != Role::Leader || match_index > self.log.last_index() {
            self.stats.stale_msgs += 1;
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            self.stats.malformed_msgs += 1;
            return;
        };
        pr.recent_active = true;
        if !done {
            // The chunk in flight arrived: send the next one. Any other answer (a duplicate,
            // one about an older transfer) is stale; a lost chunk times the transfer out.
            if pr.state
                == (ProgressState::Snapshot {
                    pending: snapshot_index,
                })
                && next_offset == pr.snapshot_offset
            {
                self.send_snapshot_chunk(from, next_offset);
            } else {
                self.stats.stale_msgs += 1;
            }
            return;
        }
        let grew = pr.ack(match_index);
        pr.become_replicate();
        if grew {
            self.maybe_commit();
        }
        if self.role == Role::Leader {
            self.send_append(from, false);
        }
    }

    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = self.durable_index;
        let q = Index(self.membership.quorum_value(|id| {
            if id == self.id {
                own.0
            } else {
                self.progress.get(&id).map_or(0, |p| p.matched.0)
            }
        }));
        if q <= self.commit {
            return;
        }
        // Raft §5.4.2: only an entry of the leader's own term commits by counting replicas.
        if self.log.term_at(q) != Some(self.term)
            && !self.cfg.planted(PlantedBug::CommitOlderTermByCounting)
        {
            return;
        }
        let first_in_term = self.log.term_at(self.commit) != Some(self.term);
        self.commit = q;
        if first_in_term {
            self.release_reads_waiting_commit();
        }
        self.broadcast_append(true);
        // thesis §4.2.2: a leader that is no longer a voter steps down once the change commits.
        if !self.membership.is_voter(self.id)
            && self
                .config_history
                .last()
                .is_none_or(|(i, _)| *i <= self.commit)
        {
            self.become_follower(self.term, None);
        }
    }

    // ----- leadership transfer (thesis §3.10) -----

    fn start_transfer(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader);
        }
        if to == self.id {
            return Ok(());
        }
        if !self.membership.is_voter(to) || !self.progress.contains_key(&to) {
            return Err(TransferError::NotAVoter);
        }
        self.transfer = Some((to, self.now.plus_ms(self.cfg.election_timeout_ms)));
        self.maybe_send_timeout_now(to);
        if self.transfer.is_some() {
            self.send_append(to, true);
        }
        Ok(())
    }

    fn maybe_send_timeout_now(&mut self, from: NodeId) {
        if self.transfer.map(|(t, _)| t) != Some(from) {
            return;
        }
        if self
            .progress
            .get(&from)
            .is_some_and(|p| p.matched == self.log.last_index())
        {
            // From here on a vote may be granted despite our lease: no more lease reads.
            self.timeout_now_sent = true;
            self.send(from, Message::TimeoutNow { term: self.term });
        }
    }

    // ----- linearizable reads (thesis §6.4) -----

    fn read(&mut self, ctx: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader {
            return Err(ReadError::NotLeader {
                leader_hint: self.leader,
            });
        }
        if self.reads.len() >= self.cfg.max_pending_reads {
            return Err(ReadError::TooManyPending);
        }
        if self.log.term_at(self.commit) != Some(self.term) {
            // The leader does not know the commit index until its term has an entry
            // committed: wait for it.
            self.reads.wait_for_commit(ctx);
            return Ok(());
        }
        self.register_read(ctx);
        Ok(())
    }

    fn register_read(&mut self, ctx: u64) {
        if self.lease_valid() {
            self.outputs.push_back(Output::ReadReady {
                ctx,
                index: self.commit,
            });
            return;
        }
        self.round += 1;
        self.reads.push(ReadRequest {
            ctx,
            index: self.commit,
            round: self.round,
        });
        for p in self.followers() {
            self.send_heartbeat(p);
        }
        self.advance_reads();
    }

    fn release_reads_waiting_commit(&mut self) {
        for ctx in self.reads.take_waiting() {
            self.register_read(ctx);
        }
    }

    fn advance_reads(&mut self) {
        if self.role != Role::Leader || self.reads.is_empty() {
            return;
        }
        let own = self.round;
        let confirmed = self.membership.quorum_value(|id| {
            if id == self.id {
                own
            } else {
                self.progress.get(&id).map_or(0, |p| p.acked_round)
            }
        });
        for r in self.reads.confirmed(confirmed) {
            self.outputs.push_back(Output::ReadReady {
                ctx: r.ctx,
                index: r.index,
            });
        }
    }

    /// thesis §6.4.1: a majority acknowledged requests sent at `start`; none of them votes
    /// for another candidate before `start + election timeout` (on its clock), so no other
    /// leader exists before then, minus the clock drift bound.
    fn lease_valid(&self) -> bool {
        if !self.cfg.lease_reads
            || !self.cfg.check_quorum
            || self.timeout_now_sent
            || self.transfer.is_some()
        {
            return false;
        }
        let now = self.now;
        let start = self.membership.quorum_value(|id| {
            if id == self.id {
                now.0
            } else {
                self.progress.get(&id).map_or(0, |p| p.acked_sent_at.0)
            }
        });
        let expiry = Instant(start).plus_ms(
            self.cfg
                .election_timeout_ms
                .saturating_sub(self.cfg.max_clock_drift_ms),
        );
        start > 0 && now < expiry
    }
}
