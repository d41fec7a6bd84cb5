//! The history: every client operation of a run, as Jepsen records it (invoked, then ok,
//! failed or unknown, with its values and simulated times), the final convergence read, and
//! the timeline of faults and notable events.
//!
//! Times are simulated milliseconds since the simulation started. Operations are kept in
//! invocation order; an operation still open when the run ends is unknown.

use std::collections::BTreeMap;
use std::fmt;

/// Simulated milliseconds since the start of the run.
pub type Millis = u64;

/// A topic partition.
pub type Tp = (String, i32);

/// Index of an operation in [`History::ops`].
pub type OpId = usize;

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client process that ran it (`producer-2`, `consumer-1`).
    pub process: String,
    pub invoked_ms: Millis,
    /// When its outcome became known; `None` while in flight (unknown at the end).
    pub completed_ms: Option<Millis>,
    pub kind: OpKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// A produce of one batch of `values` to `tp` with `acks`.
    Produce {
        tp: Tp,
        acks: i16,
        values: Vec<String>,
        outcome: Option<ProduceOutcome>,
    },
    /// A fetch of `tp` from offset `from`.
    Poll {
        tp: Tp,
        from: i64,
        outcome: Option<PollOutcome>,
    },
    /// The consumer moved its position in `tp` on purpose (not a poll): Jepsen's seek. A
    /// group member seeks to where it starts a partition after each assignment.
    Seek { tp: Tp, to: i64, why: String },
    /// A group member's OffsetCommit of `offset` (the next offset to consume) for `tp`; one
    /// op per partition of the request, all with the request's times.
    Commit {
        group: String,
        tp: Tp,
        offset: i64,
        outcome: Option<CommitOutcome>,
    },
    /// A group member's OffsetFetch of `tp` after an assignment: where it starts.
    OffsetFetch {
        group: String,
        tp: Tp,
        outcome: Option<OffsetFetchOutcome>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The broker acknowledged the commit: it is durable.
    Ok,
    /// The broker answered with an error code (whether the commit may still count is the
    /// checker's call: [`CommitOutcome::may_apply`]).
    Fail { error: i16 },
    /// No answer.
    Unknown { why: String },
}

impl CommitOutcome {
    /// Whether the commit may have taken effect: it was acknowledged, never answered, or
    /// refused with an error the broker may send after appending the offsets (a commit
    /// timeout, a log that failed under it: the record may still be on disk and reloaded).
    /// Only the errors checked before anything is written are definite.
    pub fn may_apply(&self) -> bool {
        match self {
            CommitOutcome::Ok | CommitOutcome::Unknown { .. } => true,
            // OFFSET_METADATA_TOO_LARGE, COORDINATOR_LOAD_IN_PROGRESS, ILLEGAL_GENERATION,
            // UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, INVALID_COMMIT_OFFSET_SIZE.
            CommitOutcome::Fail { error } => !matches!(error, 12 | 14 | 22 | 25 | 27 | 28),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetFetchOutcome {
    /// The committed offset; -1 when the group has none.
    Ok { offset: i64 },
    /// The broker answered with an error code (group- or partition-level).
    Fail { error: i16 },
    /// No answer.
    Unknown { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProduceOutcome {
    /// Acknowledged: the batch's first record is at `base_offset` (the rest follow in order).
    /// For acks=0 nothing comes back and the outcome is [`ProduceOutcome::Unknown`].
    Ok { base_offset: i64 },
    /// The broker answered with an error. `definite` when the error means nothing was
    /// written; errors the broker can send after appending (REQUEST_TIMED_OUT,
    /// KAFKA_STORAGE_ERROR) are not definite: the write may or may not survive.
    Fail { error: i16, definite: bool },
    /// No answer: a timeout, a lost connection, an abandoned request.
    Unknown { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// The records the fetch returned at or after `from`, in order, and the high watermark.
    Ok {
        records: Vec<(i64, String)>,
        high_watermark: i64,
    },
    /// The broker answered with an error code.
    Fail { error: i16 },
    /// No answer.
    Unknown { why: String },
}

impl Op {
    pub fn tp(&self) -> &Tp {
        match &self.kind {
            OpKind::Produce { tp, .. }
            | OpKind::Poll { tp, .. }
            | OpKind::Seek { tp, .. }
            | OpKind::Commit { tp, .. }
            | OpKind::OffsetFetch { tp, .. } => tp,
        }
    }
}

/// What the final reader read from one partition after every fault was healed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRead {
    /// Records by offset.
    pub records: BTreeMap<i64, String>,
    /// Whether it read everything up to the high watermark.
    pub complete: bool,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Batches the reader's CRC check refused: (base offset, last offset if known, why).
    pub corrupt: Vec<(i64, Option<i64>, String)>,
    /// Offsets the broker refused to serve again and again, which the reader stepped over.
    pub unreadable: Vec<i64>,
    /// Offsets where a large fetch was refused with an error although a fetch of one batch
    /// at the same offset succeeded right after.
    pub refused_servable: Vec<i64>,
}

/// Everything a run recorded.
#[derive(Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
    pub final_read: BTreeMap<Tp, PartitionRead>,
    /// Faults and notable events, in the order they happened.
    pub timeline: Vec<(Millis, String)>,
    /// The consumer group of each group member's process (one process per member session).
    pub group_of: BTreeMap<String, String>,
    /// The topic each consumer group consumes.
    pub group_topics: BTreeMap<String, String>,
    /// The node that hosts each topic.
    pub topic_nodes: BTreeMap<String, u32>,
    /// Every start of a broker's software, (when, node), in order: its first start, each
    /// restart after a crash, each supervisor restart. An acknowledgement after a start came
    /// from that incarnation.
    pub node_starts: Vec<(Millis, u32)>,
    /// Cluster scenarios: what the quorum observer saw.
    pub cluster: Option<ClusterRecord>,
}

/// What the quorum observer of a cluster scenario recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRecord {
    /// Every distinct claim to be the active controller: a DescribeQuorum answered with
    /// error 0, in the order first seen.
    pub claims: Vec<QuorumClaim>,
    /// After the heal: when every node first named one controller and listed every node as
    /// a live broker (and every topic on its node), and that controller.
    pub converged: Option<(Millis, i32)>,
    /// Each node's last Metadata view after the heal, one line each (for the report when
    /// the nodes never agreed).
    pub last_views: Vec<String>,
}

/// `node` answered DescribeQuorum with error 0: `leader_id` leads the metadata quorum in
/// `epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumClaim {
    pub at_ms: Millis,
    pub node: u32,
    pub epoch: i32,
    pub leader_id: i32,
}

impl History {
    /// Records the invocation of an operation; complete it with [`History::complete`].
    pub fn invoke(&mut self, process: &str, now: Millis, kind: OpKind) -> OpId {
        self.ops.push(Op {
            process: process.to_string(),
            invoked_ms: now,
            completed_ms: None,
            kind,
        });
        self.ops.len() - 1
    }

    /// Records a produce's outcome.
    pub fn complete_produce(&mut self, id: OpId, now: Millis, result: ProduceOutcome) {
        let op = &mut self.ops[id];
        op.completed_ms = Some(now);
        if let OpKind::Produce { outcome, .. } = &mut op.kind {
            *outcome = Some(result);
        }
    }

    /// Records a poll's outcome.
    pub fn complete_poll(&mut self, id: OpId, now: Millis, result: PollOutcome) {
        let op = &mut self.ops[id];
        op.completed_ms = Some(now);
        if let OpKind::Poll { outcome, .. } = &mut op.kind {
            *outcome = Some(result);
        }
    }

    /// Records a commit's outcome.
    pub fn complete_commit(&mut self, id: OpId, now: Millis, result: CommitOutcome) {
        let op = &mut self.ops[id];
        op.completed_ms = Some(now);
        if let OpKind::Commit { outcome, .. } = &mut op.kind {
            *outcome = Some(result);
        }
    }

    /// Records an offset fetch's outcome.
    pub fn complete_offset_fetch(&mut self, id: OpId, now: Millis, result: OffsetFetchOutcome) {
        let op = &mut self.ops[id];
        op.completed_ms = Some(now);
        if let OpKind::OffsetFetch { outcome, .. } = &mut op.kind {
            *outcome = Some(result);
        }
    }

    /// Records a notable event on the timeline.
    pub fn note(&mut self, now: Millis, event: impl Into<String>) {
        self.timeline.push((now, event.into()));
    }
}

/// Formats simulated milliseconds as `12.345s`.
pub fn fmt_ms(ms: Millis) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = match self.completed_ms {
            Some(t) => fmt_ms(t),
            None => "never".to_string(),
        };
        write!(f, "{} {}→{} ", self.process, fmt_ms(self.invoked_ms), done)?;
        match &self.kind {
            OpKind::Produce {
                tp,
                acks,
                values,
                outcome,
            } => {
                write!(f, "produce {}-{} acks={acks} {values:?} ", tp.0, tp.1)?;
                match outcome {
                    Some(ProduceOutcome::Ok { base_offset }) => write!(f, "ok @{base_offset}"),
                    Some(ProduceOutcome::Fail { error, definite }) => {
                        write!(f, "fail error={error} definite={definite}")
                    }
                    Some(ProduceOutcome::Unknown { why }) => write!(f, "unknown ({why})"),
                    None => write!(f, "unknown (in flight at the end)"),
                }
            }
            OpKind::Poll { tp, from, outcome } => {
                write!(f, "poll {}-{} from {from} ", tp.0, tp.1)?;
                match outcome {
                    Some(PollOutcome::Ok {
                        records,
                        high_watermark,
                    }) => {
                        write!(f, "ok hw={high_watermark} [")?;
                        for (i, (o, v)) in records.iter().enumerate() {
                            if i > 0 {
                                write!(f, ", ")?;
                            }
                            write!(f, "{o}:{v}")?;
                        }
                        write!(f, "]")
                    }
                    Some(PollOutcome::Fail { error }) => write!(f, "fail error={error}"),
                    Some(PollOutcome::Unknown { why }) => write!(f, "unknown ({why})"),
                    None => write!(f, "unknown (in flight at the end)"),
                }
            }
            OpKind::Seek { tp, to, why } => write!(f, "seek {}-{} to {to} ({why})", tp.0, tp.1),
            OpKind::Commit {
                group,
                tp,
                offset,
                outcome,
            } => {
                write!(f, "commit {group} {}-{} offset {offset} ", tp.0, tp.1)?;
                match outcome {
                    Some(CommitOutcome::Ok) => write!(f, "ok"),
                    Some(CommitOutcome::Fail { error }) => write!(f, "fail error={error}"),
                    Some(CommitOutcome::Unknown { why }) => write!(f, "unknown ({why})"),
                    None => write!(f, "unknown (in flight at the end)"),
                }
            }
            OpKind::OffsetFetch { group, tp, outcome } => {
                write!(f, "offset-fetch {group} {}-{} ", tp.0, tp.1)?;
                match outcome {
                    Some(OffsetFetchOutcome::Ok { offset }) => write!(f, "ok {offset}"),
                    Some(OffsetFetchOutcome::Fail { error }) => write!(f, "fail error={error}"),
                    Some(OffsetFetchOutcome::Unknown { why }) => write!(f, "unknown ({why})"),
                    None => write!(f, "unknown (in flight at the end)"),
                }
            }
        }
    }
}
