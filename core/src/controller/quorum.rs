//! `controller::quorum`: one broker's replica of the metadata quorum: a keel-raft replica
//! over a [`StorageLog`] in [`METADATA_LOG_DIR`], and the [`ClusterImage`] it applies.
//!
//! It speaks the node's vocabulary: Raft messages leave as `Output::SendPeer` in the
//! `Metadata` group; a Raft `Persist` is written here (the hard state by `replace`, durable
//! on return, then the entries into the page cache) and synced by the driver as
//! `Output::Flush { log: METADATA_LOG }`, whose `Flushed` comes back as
//! [`MetadataQuorum::persisted`]. Votes and acknowledgements wait for it (keel-raft holds
//! them), so nothing counts as durable before the driver says so.
//!
//! Proposals are answered when their entry applies: with the batch's verdict if the entry
//! at that index is the one proposed (same term), NOT_CONTROLLER otherwise, and
//! NOT_CONTROLLER for every proposal still open when leadership is lost (it may yet
//! commit; the proposers' retries are idempotent). The image is snapshotted every
//! `snapshot_every` applied entries, which compacts the log.

use super::{decode_records, ClusterImage, Refusal, METADATA_LOG_DIR, NOT_CONTROLLER};
use crate::error::ErrorCode;
use crate::ids::{NodeId, Offset};
use crate::node::{Output, PeerMessage, RaftGroup};
use crate::partition::LogId;
use crate::raft_log::{OpenError, StorageLog};
use crate::storage::Storage;
use crate::time::Instant;
use keel_raft::{
    Config, EntryData, Index, Membership, Output as RaftOutput, ProposeError, RaftLog, RaftNode,
    Role, SnapshotMeta, Term,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The log id the metadata quorum's flushes carry (partition logs count up from 1).
pub const METADATA_LOG: LogId = LogId(u64::MAX);

/// How the quorum runs.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// The voters of a new metadata log (a log that exists keeps its own membership).
    pub voters: BTreeSet<NodeId>,
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Applied entries between two snapshots of the image.
    pub snapshot_every: u64,
}

/// Who asked for a proposal, to be told its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposer {
    /// This broker, under its own request id.
    Local(u64),
    /// Another broker's `Forward { id }`.
    Remote { from: NodeId, id: u64 },
}

/// One broker's replica of the metadata quorum. See the module docs.
pub struct MetadataQuorum {
    raft: RaftNode<StorageLog>,
    image: ClusterImage,
    /// Open proposals by index, with the term they were proposed in.
    proposals: BTreeMap<Index, (Term, Proposer)>,
    answers: Vec<(Proposer, Result<(), Refusal>)>,
    snapshot_every: u64,
    applied_since_snapshot: u64,
    /// Counts the changes to the image, so the node reconciles only after one.
    version: u64,
    /// Set when writing the log failed: the node must stop, as after a failed fsync.
    failed: Option<String>,
    /// When this replica last became the leader: a broker's silence counts from then.
    leader_since: Option<keel_raft::Instant>,
    /// Fencings and unfencings proposed, with when they may be proposed again.
    liveness_proposed: BTreeMap<NodeId, (bool, keel_raft::Instant)>,
    /// Times this replica became the leader (for metrics: elections won here).
    pub(crate) elections_won: u64,
    /// Persists sent to the driver as a Flush and not yet acknowledged, by seq.
    flushing: BTreeSet<u64>,
    /// The latest hard-state-only persist waiting behind one of them: keel-raft's
    /// `persisted(seq)` acknowledges every seq up to it, so it may only be acknowledged
    /// once the flushes before it are.
    deferred: Option<u64>,
}

fn raft_id(id: NodeId) -> keel_raft::NodeId {
    keel_raft::NodeId(u64::from(id.0.max(0) as u32))
}

fn node_id(id: keel_raft::NodeId) -> NodeId {
    NodeId(i32::try_from(id.0).unwrap_or(i32::MAX))
}

fn voters_of(raft: &RaftNode<StorageLog>) -> BTreeSet<NodeId> {
    raft.membership()
        .voters
        .iter()
        .map(|&v| node_id(v))
        .collect()
}

fn raft_now(now: Instant) -> keel_raft::Instant {
    keel_raft::Instant(now.as_nanos() / 1_000_000)
}

fn core_instant(at: keel_raft::Instant) -> Instant {
    Instant::from_millis(at.0)
}

impl MetadataQuorum {
    /// Opens (or creates) broker `me`'s replica from `storage`.
    pub fn open(
        storage: &dyn Storage,
        me: NodeId,
        config: &QuorumConfig,
        seed: u64,
        now: Instant,
    ) -> Result<MetadataQuorum, OpenError> {
        let initial = SnapshotMeta {
            index: Index(0),
            term: Term(0),
            membership: Membership::voters(config.voters.iter().map(|&v| raft_id(v))),
        };
        let (log, hard_state) = StorageLog::open(storage, METADATA_LOG_DIR, initial.clone())?;
        let image = ClusterImage::decode(&log.snapshot().data).map_err(OpenError::Snapshot)?;
        if log.snapshot_meta().index > Index(0) || log.last_index() > Index(0) {
            // A log that exists keeps its membership; membership changes are not supported yet.
            let held: BTreeSet<NodeId> = log
                .snapshot_meta()
                .membership
                .voters
                .iter()
                .map(|&v| node_id(v))
                .collect();
            if held != config.voters {
                tracing::warn!(configured = ?config.voters, held = ?held, "the metadata log was started with other voters; keeping the log's");
            }
        }
        let mut raft_config = Config::new(raft_id(me));
        raft_config.election_timeout_ms = config.election_timeout_ms;
        raft_config.heartbeat_interval_ms = config.heartbeat_interval_ms;
        let applied = log.snapshot_meta().index;
        let raft = RaftNode::new(raft_config, log, hard_state, applied, seed, raft_now(now))
            .map_err(|e| {
                OpenError::Io(std::io::Error::other(format!(
                    "the metadata log refuses its durable state: {e:?}"
                )))
            })?;
        let mut image = image;
        image.voters = voters_of(&raft);
        Ok(MetadataQuorum {
            raft,
            image,
            proposals: BTreeMap::new(),
            answers: Vec::new(),
            snapshot_every: config.snapshot_every.max(1),
            applied_since_snapshot: 0,
            version: 0,
            failed: None,
            leader_since: None,
            liveness_proposed: BTreeMap::new(),
            elections_won: 0,
            flushing: BTreeSet::new(),
            deferred: None,
        })
    }

    /// The metadata as applied here.
    pub fn image(&self) -> &ClusterImage {
        &self.image
    }

    /// Grows with every change to [`MetadataQuorum::image`].
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The active controller, as far as this replica knows.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader().map(node_id)
    }

    /// Whether this broker is the active controller.
    pub fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }

    /// The quorum's current term (Kafka's controller epoch).
    pub fn term(&self) -> u64 {
        self.raft.term().0
    }

    /// The index of the last entry known committed.
    pub fn commit_index(&self) -> u64 {
        self.raft.commit_index().0
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.raft.applied_index().0
    }

    /// Why the quorum cannot go on (writing its log failed), if it cannot.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// When the replica next needs [`MetadataQuorum::tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        self.raft.next_deadline().map(core_instant)
    }

    pub fn tick(&mut self, now: Instant, storage: &dyn Storage, out: &mut VecDeque<Output>) {
        self.raft.tick(raft_now(now));
        self.drain(now, storage, out);
    }

    /// A Raft message of the metadata group from broker `from`.
    pub fn step(
        &mut self,
        now: Instant,
        from: NodeId,
        message: keel_raft::Message,
        storage: &dyn Storage,
        out: &mut VecDeque<Output>,
    ) {
        if from.0 < 0 {
            return;
        }
        self.raft.step(raft_now(now), raft_id(from), message);
        self.drain(now, storage, out);
    }

    /// The driver synced everything up to the `Flush` with `upto = seq`.
    pub fn persisted(
        &mut self,
        now: Instant,
        seq: Offset,
        storage: &dyn Storage,
        out: &mut VecDeque<Output>,
    ) {
        let Ok(seq) = u64::try_from(seq.0) else {
            return;
        };
        self.flushing.retain(|&s| s > seq);
        let mut ack = seq;
        if let Some(d) = self.deferred {
            if self.flushing.first().is_none_or(|&first| first > d) {
                ack = ack.max(d);
                self.deferred = None;
            }
        }
        self.raft.persisted(raft_now(now), ack);
        self.drain(now, storage, out);
    }

    /// Proposes one batch of records (already checked to decode); `proposer` is told the
    /// verdict once it applies. Refused at once with NOT_CONTROLLER on a follower.
    pub fn propose(
        &mut self,
        now: Instant,
        records: Vec<u8>,
        proposer: Proposer,
        storage: &dyn Storage,
        out: &mut VecDeque<Output>,
    ) -> Result<(), Refusal> {
        let result = match self.raft.propose(raft_now(now), records) {
            Ok(index) => {
                self.proposals.insert(index, (self.raft.term(), proposer));
                Ok(())
            }
            Err(ProposeError::NotLeader { leader_hint }) => Err((
                NOT_CONTROLLER,
                match leader_hint {
                    Some(l) => format!("broker {} is the active controller", node_id(l)),
                    None => "no controller is elected yet".to_string(),
                },
            )),
            Err(ProposeError::TransferInProgress) => Err((
                NOT_CONTROLLER,
                "the controller is handing over leadership".to_string(),
            )),
        };
        self.drain(now, storage, out);
        result
    }

    /// On the active controller: fences every registered broker whose process has not
    /// answered the metadata quorum's heartbeats for `session_timeout_ms` (each broker is a
    /// voter, so the Raft leader hears from it every heartbeat interval), and unfences a
    /// fenced one heard from again. A proposal is repeated at most once a second.
    pub fn check_liveness(
        &mut self,
        now: Instant,
        session_timeout_ms: u64,
        storage: &dyn Storage,
        out: &mut VecDeque<Output>,
    ) {
        let Some(since) = self.leader_since.filter(|_| self.is_leader()) else {
            return;
        };
        let at = raft_now(now);
        let me = node_id(self.raft.id());
        let mut changes = Vec::new();
        for b in self.image.brokers.values() {
            let heard = if b.id == me {
                at
            } else {
                let acked = self
                    .raft
                    .progress(raft_id(b.id))
                    .map_or(keel_raft::Instant(0), |p| p.acked_sent_at);
                acked.max(since)
            };
            let alive = at.0.saturating_sub(heard.0) <= session_timeout_ms;
            let fenced = self.image.fenced.contains(&b.id);
            if alive == fenced
                && self
                    .liveness_proposed
                    .get(&b.id)
                    .is_none_or(|&(fence, until)| fence == alive || until <= at)
            {
                changes.push((b.id, b.incarnation, !alive));
            }
        }
        for (id, incarnation, fence) in changes {
            let record = if fence {
                tracing::warn!(broker = %id, session_timeout_ms, "fencing a broker the controller has not heard from");
                super::MetadataRecord::FenceBroker { id, incarnation }
            } else {
                tracing::info!(broker = %id, "unfencing a broker heard from again");
                super::MetadataRecord::UnfenceBroker { id, incarnation }
            };
            let records = super::encode_records(&[record]);
            if self.raft.propose(at, records).is_ok() {
                self.liveness_proposed
                    .insert(id, (fence, keel_raft::Instant(at.0 + 1_000)));
            }
        }
        self.drain(now, storage, out);
    }

    /// Hands the controller's leadership to the voter furthest along, for a clean
    /// shutdown; whether a hand-over started (false on a follower or with no voter to take
    /// it).
    pub fn hand_over(
        &mut self,
        now: Instant,
        storage: &dyn Storage,
        out: &mut VecDeque<Output>,
    ) -> bool {
        if !self.is_leader() {
            return false;
        }
        let me = self.raft.id();
        let best = self
            .raft
            .membership()
            .voters
            .iter()
            .filter(|&&v| v != me)
            .filter_map(|&v| self.raft.progress(v).map(|p| (p.matched, v)))
            .max();
        let Some((_, to)) = best else { return false };
        let started = self.raft.transfer_leader(raft_now(now), to).is_ok();
        if started {
            tracing::info!(to = %node_id(to), "handing the controller over before shutting down");
        }
        self.drain(now, storage, out);
        started
    }

    /// Each voter's replication as the active controller sees it: (id, matched index,
    /// milliseconds since it last answered; both unknown for a voter not heard from in
    /// this term), itself included; empty on a follower.
    pub fn voter_lags(&self, now: Instant) -> Vec<(NodeId, Option<u64>, Option<u64>)> {
        if !self.is_leader() {
            return Vec::new();
        }
        let at = raft_now(now);
        let me = self.raft.id();
        self.raft
            .membership()
            .voters
            .iter()
            .map(|&v| {
                if v == me {
                    (node_id(v), Some(self.raft.log().last_index().0), Some(0))
                } else {
                    // A voter not heard from in this term: its log end is unknown.
                    let heard = self.raft.progress(v).filter(|p| p.acked_sent_at.0 > 0);
                    (
                        node_id(v),
                        heard.map(|p| p.matched.0),
                        heard.map(|p| at.0.saturating_sub(p.acked_sent_at.0)),
                    )
                }
            })
            .collect()
    }

    /// The index of the last entry in this replica's log.
    pub fn last_index(&self) -> u64 {
        self.raft.log().last_index().0
    }

    /// Verdicts of proposals, in the order they were reached.
    pub fn take_answers(&mut self) -> Vec<(Proposer, Result<(), Refusal>)> {
        std::mem::take(&mut self.answers)
    }

    fn drain(&mut self, now: Instant, storage: &dyn Storage, out: &mut VecDeque<Output>) {
        loop {
            let mut synced = None;
            while let Some(output) = self.raft.poll_output() {
                match output {
                    RaftOutput::Send { to, msg } => out.push_back(Output::SendPeer {
                        to: node_id(to),
                        message: PeerMessage::Raft {
                            group: RaftGroup::Metadata,
                            message: msg,
                        },
                    }),
                    RaftOutput::Persist {
                        seq, hard_state, ..
                    } => {
                        let job = self.raft.log_mut().take_flush(hard_state);
                        if let Err(e) = job.write(storage) {
                            tracing::error!(error = %e, "writing the metadata log failed");
                            self.failed.get_or_insert_with(|| {
                                format!("writing the metadata log failed: {e}")
                            });
                            continue;
                        }
                        let files = job.files_to_sync();
                        if files.is_empty() {
                            // Only the hard state changed, and `replace` made it durable;
                            // but acknowledging it acknowledges every earlier seq too.
                            if self.flushing.is_empty() {
                                synced = Some(seq);
                            } else {
                                self.deferred = Some(self.deferred.map_or(seq, |d| d.max(seq)));
                            }
                        } else {
                            self.flushing.insert(seq);
                            out.push_back(Output::Flush {
                                log: METADATA_LOG,
                                files,
                                upto: Offset(i64::try_from(seq).unwrap_or(i64::MAX)),
                            });
                        }
                    }
                    RaftOutput::Apply { from, to } => self.apply(now, from, to, storage),
                    RaftOutput::RestoreSnapshot { .. } => {
                        match ClusterImage::decode(&self.raft.log().snapshot().data) {
                            Ok(mut image) => {
                                image.voters = voters_of(&self.raft);
                                self.image = image;
                                self.version += 1;
                            }
                            Err(e) => {
                                self.failed.get_or_insert_with(|| {
                                    format!("the controller's snapshot does not decode: {e}")
                                });
                            }
                        }
                        self.applied_since_snapshot = 0;
                    }
                    RaftOutput::RoleChanged { role, term, leader } => {
                        tracing::info!(?role, term = term.0, leader = ?leader.map(node_id), "metadata quorum");
                        self.leader_since = (role == Role::Leader).then(|| raft_now(now));
                        self.elections_won += u64::from(role == Role::Leader);
                        self.liveness_proposed.clear();
                        if role != Role::Leader {
                            for (_, (_, proposer)) in std::mem::take(&mut self.proposals) {
                                self.answers.push((
                                    proposer,
                                    Err((
                                        NOT_CONTROLLER,
                                        "the controller lost its leadership; retry".to_string(),
                                    )),
                                ));
                            }
                        }
                    }
                    RaftOutput::ReadReady { .. } | RaftOutput::ReadFailed { .. } => {}
                }
            }
            // Acknowledged outside the loop above, which borrows the node's outputs.
            match synced {
                Some(seq) => self.raft.persisted(raft_now(now), seq),
                None => return,
            }
        }
    }

    fn apply(&mut self, now: Instant, from: Index, to: Index, storage: &dyn Storage) {
        let entries = self.raft.log().entries(from, to, u64::MAX);
        for e in entries {
            let verdict = match &e.data {
                EntryData::Normal(bytes) => Some(match decode_records(bytes) {
                    Ok(records) => {
                        self.version += 1;
                        self.image.apply(&records)
                    }
                    // Checked before it was proposed: a damaged entry changes nothing, on
                    // every broker alike.
                    Err(err) => Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("metadata entry {} does not decode: {err}", e.index.0),
                    )),
                }),
                EntryData::Noop | EntryData::Membership(_) => None,
            };
            if let Some((term, proposer)) = self.proposals.remove(&e.index) {
                let answer = match verdict {
                    Some(v) if term == e.term => v,
                    _ => Err((
                        NOT_CONTROLLER,
                        "another controller's entry took its place; retry".to_string(),
                    )),
                };
                self.answers.push((proposer, answer));
            }
            self.applied_since_snapshot += 1;
        }
        if self.applied_since_snapshot >= self.snapshot_every {
            let at = self.raft.applied_index();
            if self.raft.compact(raft_now(now), at, self.image.encode()) {
                self.applied_since_snapshot = 0;
                if let Err(e) = self.raft.log_mut().write_snapshot(storage) {
                    // Not fatal: the entries it covers are still in the log file.
                    tracing::warn!(error = %e, "writing the metadata snapshot failed");
                }
            }
        }
    }

    /// Asserts the replica's invariants (debug and simulation builds).
    pub fn check(&self) {
        if let Some((&first, _)) = self.proposals.first_key_value() {
            assert!(
                first > self.raft.applied_index(),
                "an applied proposal is still open"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use keel_raft::{Entry, Message};

    /// A vote (a hard-state-only persist) arriving while the entries before it are still
    /// being flushed must not release their acknowledgement: keel-raft's `persisted(seq)`
    /// covers every earlier seq.
    #[test]
    fn a_hard_state_only_persist_does_not_acknowledge_entries_still_being_flushed() {
        let storage = MemStorage::new();
        let config = QuorumConfig {
            voters: [NodeId(1), NodeId(2), NodeId(3)].into_iter().collect(),
            election_timeout_ms: 1_000,
            heartbeat_interval_ms: 100,
            snapshot_every: 1_000,
        };
        let now = Instant::from_millis(1_000_000);
        let mut q = MetadataQuorum::open(&storage, NodeId(1), &config, 7, now).unwrap();
        let mut out = VecDeque::new();
        let append = Message::AppendEntries {
            term: Term(1),
            prev_log_index: Index(0),
            prev_log_term: Term(0),
            entries: vec![Entry {
                index: Index(1),
                term: Term(1),
                data: EntryData::Normal(vec![0]),
            }],
            leader_commit: Index(0),
            round: 1,
            sent_at: keel_raft::Instant(1_000_000),
        };
        q.step(now, NodeId(2), append, &storage, &mut out);
        let flush = out.iter().find_map(|o| match o {
            Output::Flush { upto, .. } => Some(*upto),
            _ => None,
        });
        let flush = flush.expect("the entry is flushed");
        let vote = Message::RequestVote {
            term: Term(2),
            last_log_index: Index(1),
            last_log_term: Term(1),
            transfer: true,
        };
        q.step(now, NodeId(3), vote, &storage, &mut out);
        let acks = |out: &VecDeque<Output>| {
            out.iter()
                .filter(|o| {
                    matches!(
                        o,
                        Output::SendPeer {
                            message: PeerMessage::Raft {
                                message: Message::AppendEntriesResp { success: true, .. }
                                    | Message::RequestVoteResp { granted: true, .. },
                                ..
                            },
                            ..
                        }
                    )
                })
                .count()
        };
        assert_eq!(acks(&out), 0, "acknowledged before the flush: {out:?}");
        q.persisted(now, flush, &storage, &mut out);
        assert!(acks(&out) >= 1, "the flush released nothing: {out:?}");
    }
}
