//! The checker: reads a run's [`History`] and reports Jepsen's queue anomalies (the names are
//! those of Jepsen's Kafka workload, `jepsen.tests.kafka`), plus what a single-copy broker
//! adds: values nobody wrote, corrupt batches that reached a client, partitions the final
//! read could not finish or had to step over damage in, and nodes that broke an invariant
//! or would not come back.
//!
//! Rules that keep the checker honest about uncertainty:
//! - only acknowledged writes (`ok`) can be lost or unseen; an unknown or indeterminate
//!   produce may or may not appear, and never counts as lost;
//! - lost-write is judged for acks=-1 only: acks=1 promises nothing across a crash of the
//!   only copy (Kafka does not fsync before answering it either);
//! - a consumer's deliberate seek (out of range, a corrupt batch stepped over) resets what
//!   its next poll must continue from.

use crate::history::{fmt_ms, History, Millis, OpKind, PollOutcome, ProduceOutcome, Tp};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anomaly {
    /// An acknowledged (acks=-1) write is absent from the final read.
    LostWrite,
    /// One value at two offsets.
    Duplicate,
    /// Two values at one offset (across reads and acknowledgements).
    InconsistentOffsets,
    /// A consumer's successive offsets in a partition went backwards without a seek.
    NonmonotonicPoll,
    /// A producer's acknowledged offsets in a partition went backwards.
    NonmonotonicSend,
    /// A consumer's successive polls skipped offsets that the final read holds.
    PollSkip,
    /// Acknowledged and still readable at the end, but never polled by any consumer.
    Unseen,
    /// A read returned a value no producer ever sent: a corrupt record was served.
    Garbage,
    /// A batch that fails its CRC reached a client (which refused it).
    CorruptRead,
    /// The final read could not read a partition to its end after the heal.
    IncompleteRead,
    /// After the heal the broker refused to serve some offsets below the high watermark again
    /// and again (a storage error), and the final read stepped over them: damaged data left
    /// inside the log. Rot that struck after the node's last recovery may cause it; data
    /// recovery scanned may not (recovery cuts a corrupt batch and everything after it).
    Unreadable,
    /// The broker refused a fetch (with an error) whose first batch it could serve: good
    /// records are made unreadable by a fault elsewhere in the fetched range.
    RefusedServable,
    /// A node broke one of its invariants (a panic) or failed in a way the harness cannot
    /// attribute to an injected fault.
    Invariant,
    /// A node did not come back after every fault was healed.
    NodeDown,
    /// A consumer group's OffsetFetch answered less than an offset the coordinator had
    /// acknowledged committing before the fetch was sent (and no commit of the lower offset
    /// could have landed after it): committed offsets went backwards.
    CommitRegression,
    /// Acknowledged and still in the log at the end, but no member of a consumer group that
    /// consumes its topic ever polled it: the group broke at-least-once delivery.
    Unconsumed,
    /// A value whose every produce was refused with an error that means nothing was written
    /// (a free-space refusal, an unknown partition) was read: the refusal lied. Jepsen's name
    /// for reading a failed write (G1a).
    AbortedRead,
    /// Writes did not resume by themselves after the scenario's `writes_resume_after` (see
    /// `checker/resume.rs`).
    WritesStuck,
    /// Cluster scenarios: two different brokers claimed to be the active controller (a
    /// DescribeQuorum answered with error 0) in the same metadata-quorum epoch.
    TwoControllers,
    /// Cluster scenarios: after the heal the nodes never all named one controller listing
    /// every node as a live broker and every topic on its node.
    NoController,
}

impl Anomaly {
    pub const ALL: [Anomaly; 20] = [
        Anomaly::LostWrite,
        Anomaly::Duplicate,
        Anomaly::InconsistentOffsets,
        Anomaly::NonmonotonicPoll,
        Anomaly::NonmonotonicSend,
        Anomaly::PollSkip,
        Anomaly::Unseen,
        Anomaly::Garbage,
        Anomaly::CorruptRead,
        Anomaly::IncompleteRead,
        Anomaly::Unreadable,
        Anomaly::RefusedServable,
        Anomaly::Invariant,
        Anomaly::NodeDown,
        Anomaly::CommitRegression,
        Anomaly::Unconsumed,
        Anomaly::AbortedRead,
        Anomaly::WritesStuck,
        Anomaly::TwoControllers,
        Anomaly::NoController,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Anomaly::LostWrite => "lost-write",
            Anomaly::Duplicate => "duplicate",
            Anomaly::InconsistentOffsets => "inconsistent-offsets",
            Anomaly::NonmonotonicPoll => "nonmonotonic-poll",
            Anomaly::NonmonotonicSend => "nonmonotonic-send",
            Anomaly::PollSkip => "poll-skip",
            Anomaly::Unseen => "unseen",
            Anomaly::Garbage => "garbage",
            Anomaly::CorruptRead => "corrupt-read",
            Anomaly::IncompleteRead => "incomplete-read",
            Anomaly::Unreadable => "unreadable",
            Anomaly::RefusedServable => "refused-servable",
            Anomaly::Invariant => "invariant",
            Anomaly::NodeDown => "node-down",
            Anomaly::CommitRegression => "commit-regression",
            Anomaly::Unconsumed => "unconsumed",
            Anomaly::AbortedRead => "aborted-read",
            Anomaly::WritesStuck => "writes-stuck",
            Anomaly::TwoControllers => "two-controllers",
            Anomaly::NoController => "no-controller",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One anomaly found, with what it involves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub anomaly: Anomaly,
    /// When it became visible (simulated).
    pub at_ms: Millis,
    /// The records, offsets, processes and times involved.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} {}",
            fmt_ms(self.at_ms),
            self.anomaly,
            self.detail
        )
    }
}

/// Counts that describe a history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub produces: usize,
    pub acked_values: usize,
    pub failed_produces: usize,
    pub unknown_produces: usize,
    pub polls: usize,
    pub polled_records: usize,
    pub final_records: usize,
    /// Consumer groups: partitions committed, of which acknowledged.
    pub commits: usize,
    pub acked_commits: usize,
    /// Consumer groups: OffsetFetch answers members started a partition from.
    pub group_starts: usize,
}

/// What the checker found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

impl CheckReport {
    /// How many findings of each kind.
    pub fn counts(&self) -> BTreeMap<Anomaly, usize> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry(f.anomaly).or_insert(0) += 1;
        }
        out
    }

    /// The kinds found.
    pub fn kinds(&self) -> BTreeSet<Anomaly> {
        self.findings.iter().map(|f| f.anomaly).collect()
    }

    fn add(&mut self, anomaly: Anomaly, at_ms: Millis, detail: String) {
        self.findings.push(Finding {
            anomaly,
            at_ms,
            detail,
        });
    }
}

/// Where a value was seen or acknowledged.
#[derive(Debug, Clone)]
struct Evidence {
    who: String,
    at_ms: Millis,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.who, fmt_ms(self.at_ms))
    }
}

/// A value some producer tried to write.
#[derive(Debug, Clone)]
struct Produced {
    process: String,
    tp: Tp,
    acks: i16,
    invoked_ms: Millis,
    /// Set when acknowledged: its offset and when.
    acked: Option<(i64, Millis)>,
}

/// Checks `history`; the topics with consumers decide where `unseen` applies.
pub fn check(history: &History, consumed_topics: &BTreeSet<String>) -> CheckReport {
    let mut report = CheckReport::default();
    let final_ms = history
        .ops
        .iter()
        .filter_map(|o| o.completed_ms)
        .max()
        .unwrap_or(0);

    // Every value any producer tried to write.
    let mut produced: BTreeMap<&str, Produced> = BTreeMap::new();
    for op in &history.ops {
        let OpKind::Produce {
            tp,
            acks,
            values,
            outcome,
        } = &op.kind
        else {
            continue;
        };
        report.stats.produces += 1;
        match outcome {
            Some(ProduceOutcome::Ok { .. }) => report.stats.acked_values += values.len(),
            Some(ProduceOutcome::Fail { .. }) => report.stats.failed_produces += 1,
            _ => report.stats.unknown_produces += 1,
        }
        for (i, v) in values.iter().enumerate() {
            let acked = match (outcome, op.completed_ms) {
                (Some(ProduceOutcome::Ok { base_offset }), Some(t)) => {
                    Some((base_offset + i as i64, t))
                }
                _ => None,
            };
            produced.insert(
                v.as_str(),
                Produced {
                    process: op.process.clone(),
                    tp: tp.clone(),
                    acks: *acks,
                    invoked_ms: op.invoked_ms,
                    acked,
                },
            );
        }
    }

    // Every (tp, offset, value) anyone observed, acknowledgements included.
    let mut at_offset: BTreeMap<(Tp, i64), BTreeMap<&str, Evidence>> = BTreeMap::new();
    let mut offsets_of: BTreeMap<&str, BTreeMap<(Tp, i64), Evidence>> = BTreeMap::new();
    let mut polled: BTreeSet<&str> = BTreeSet::new();
    let mut garbage: Vec<(String, Tp, i64, Evidence)> = Vec::new();
    {
        let mut add = |tp: &Tp, offset: i64, value: &str, ev: Evidence| -> bool {
            let key = (tp.clone(), offset);
            let Some((v, _)) = produced.get_key_value(value) else {
                return false;
            };
            let v: &str = v;
            at_offset
                .entry(key.clone())
                .or_default()
                .entry(v)
                .or_insert_with(|| ev.clone());
            offsets_of.entry(v).or_default().entry(key).or_insert(ev);
            true
        };
        for (v, p) in &produced {
            if let Some((offset, t)) = p.acked {
                add(
                    &p.tp,
                    offset,
                    v,
                    Evidence {
                        who: format!("{}'s ack", p.process),
                        at_ms: t,
                    },
                );
            }
        }
        for op in &history.ops {
            if let OpKind::Poll {
                tp,
                outcome: Some(PollOutcome::Ok { records, .. }),
                ..
            } = &op.kind
            {
                report.stats.polls += 1;
                report.stats.polled_records += records.len();
                let at = op.completed_ms.unwrap_or(op.invoked_ms);
                for (offset, value) in records {
                    let ev = Evidence {
                        who: op.process.clone(),
                        at_ms: at,
                    };
                    if add(tp, *offset, value, ev.clone()) {
                        if let Some((v, _)) = produced.get_key_value(value.as_str()) {
                            polled.insert(v);
                        }
                    } else {
                        garbage.push((value.clone(), tp.clone(), *offset, ev));
                    }
                }
            }
        }
        for (tp, read) in &history.final_read {
            report.stats.final_records += read.records.len();
            for (offset, value) in &read.records {
                let ev = Evidence {
                    who: "the final read".into(),
                    at_ms: final_ms,
                };
                if !add(tp, *offset, value, ev.clone()) {
                    garbage.push((value.clone(), tp.clone(), *offset, ev));
                }
            }
        }
    }

    for (value, tp, offset, ev) in garbage {
        report.add(
            Anomaly::Garbage,
            ev.at_ms,
            format!(
                "{value:?} at {}-{} offset {offset}, read by {ev}: no producer sent it",
                tp.0, tp.1
            ),
        );
    }

    // Values whose every produce was refused definitely, with the last refusal.
    let mut refused: BTreeMap<&str, Option<(i16, &str, Millis)>> = BTreeMap::new();
    for op in &history.ops {
        let OpKind::Produce {
            values, outcome, ..
        } = &op.kind
        else {
            continue;
        };
        let this = match outcome {
            Some(ProduceOutcome::Fail {
                error,
                definite: true,
            }) => Some((*error, op.process.as_str(), op.invoked_ms)),
            _ => None,
        };
        for v in values {
            // An idempotent producer sends a batch again after an unknown outcome: one
            // attempt that may have landed clears the value for good.
            match refused.get_mut(v.as_str()) {
                None => {
                    refused.insert(v.as_str(), this);
                }
                Some(slot) if slot.is_some() => *slot = this,
                Some(_) => {}
            }
        }
    }
    for (value, refusal) in &refused {
        let (Some((error, process, invoked)), Some(seen)) = (refusal, offsets_of.get(value)) else {
            continue;
        };
        let at = seen.values().map(|e| e.at_ms).min().unwrap_or(final_ms);
        let list: Vec<String> = seen
            .iter()
            .map(|((tp, o), e)| format!("{}-{} offset {o} ({e})", tp.0, tp.1))
            .collect();
        report.add(
            Anomaly::AbortedRead,
            at,
            format!(
                "{value} was refused with error {error} (sent by {process} at {}; the error means nothing was written) but is at {}",
                fmt_ms(*invoked),
                list.join(" and ")
            ),
        );
    }

    for ((tp, offset), values) in &at_offset {
        if values.len() > 1 {
            let at = values.values().map(|e| e.at_ms).max().unwrap_or(0);
            let list: Vec<String> = values.iter().map(|(v, e)| format!("{v} ({e})")).collect();
            report.add(
                Anomaly::InconsistentOffsets,
                at,
                format!(
                    "{}-{} offset {offset} holds {}",
                    tp.0,
                    tp.1,
                    list.join(" and ")
                ),
            );
        }
    }

    for (value, offsets) in &offsets_of {
        if offsets.len() > 1 {
            let at = offsets.values().map(|e| e.at_ms).max().unwrap_or(0);
            let list: Vec<String> = offsets
                .iter()
                .map(|((tp, o), e)| format!("{}-{} offset {o} ({e})", tp.0, tp.1))
                .collect();
            report.add(
                Anomaly::Duplicate,
                at,
                format!("{value} is at {}", list.join(" and ")),
            );
        }
    }

    // Lost and unseen writes.
    for (tp, read) in &history.final_read {
        if !read.complete {
            let reached = read.records.keys().next_back().map_or(-1, |o| *o);
            report.add(
                Anomaly::IncompleteRead,
                final_ms,
                format!(
                    "{}-{}: the final read reached offset {reached} of high watermark {} before the run ended",
                    tp.0, tp.1, read.high_watermark
                ),
            );
        }
        if let (Some(first), Some(last)) = (read.unreadable.first(), read.unreadable.last()) {
            report.add(
                Anomaly::Unreadable,
                final_ms,
                format!(
                    "{}-{}: the broker refused to serve {} offset(s) in {first}..={last} again and again after the heal, and the final read stepped over them: damaged data left inside the log",
                    tp.0,
                    tp.1,
                    read.unreadable.len()
                ),
            );
        }
        if let Some(first) = read.refused_servable.first() {
            report.add(
                Anomaly::RefusedServable,
                final_ms,
                format!(
                    "{}-{}: a fetch from offset {first} was refused with an error, but a fetch of one batch there succeeded ({} such offset(s): {:?})",
                    tp.0,
                    tp.1,
                    read.refused_servable.len(),
                    read.refused_servable
                ),
            );
        }
        for (base, last, why) in &read.corrupt {
            let span = last.map_or(String::new(), |l| format!("..={l}"));
            report.add(
                Anomaly::CorruptRead,
                final_ms,
                format!(
                    "the final read got a corrupt batch in {}-{} at offset {base}{span}: {why}",
                    tp.0, tp.1
                ),
            );
        }
    }
    for (value, p) in &produced {
        let Some((offset, acked_ms)) = p.acked else {
            continue;
        };
        let read = history.final_read.get(&p.tp);
        let in_final = read.is_some_and(|r| r.records.values().any(|v| v == value));
        let covered = read.is_some_and(|r| {
            r.complete
                || r.records
                    .keys()
                    .next_back()
                    .is_some_and(|last| *last >= offset)
        });
        if p.acks == -1 && !in_final && covered {
            report.add(
                Anomaly::LostWrite,
                acked_ms,
                format!(
                    "{value} acknowledged by {}-{} at offset {offset} to {} at {} (sent {}), absent from the final read",
                    p.tp.0,
                    p.tp.1,
                    p.process,
                    fmt_ms(acked_ms),
                    fmt_ms(p.invoked_ms)
                ),
            );
        } else if in_final && consumed_topics.contains(&p.tp.0) && !polled.contains(value) {
            report.add(
                Anomaly::Unseen,
                acked_ms,
                format!(
                    "{value} at {}-{} offset {offset} (acknowledged to {} at {}) was never polled by a consumer",
                    p.tp.0,
                    p.tp.1,
                    p.process,
                    fmt_ms(acked_ms)
                ),
            );
        }
    }

    check_sends(history, &mut report);
    check_polls(history, &mut report);
    groups::check_groups(history, &mut report);
    report.findings.sort_by_key(|f| (f.anomaly, f.at_ms));
    report
}

/// nonmonotonic-send: per producer and partition, acknowledged offsets must rise.
fn check_sends(history: &History, report: &mut CheckReport) {
    let mut last: BTreeMap<(&str, &Tp), (i64, &str, Millis)> = BTreeMap::new();
    for op in &history.ops {
        let OpKind::Produce {
            tp,
            values,
            outcome: Some(ProduceOutcome::Ok { base_offset }),
            ..
        } = &op.kind
        else {
            continue;
        };
        let at = op.completed_ms.unwrap_or(op.invoked_ms);
        let first = values.first().map_or("", String::as_str);
        let key = (op.process.as_str(), tp);
        if let Some(&(prev, prev_value, prev_at)) = last.get(&key) {
            if *base_offset <= prev {
                report.add(
                    Anomaly::NonmonotonicSend,
                    at,
                    format!(
                        "{}: {first} acknowledged at {}-{} offset {base_offset} ({}) after {prev_value} at offset {prev} ({})",
                        op.process,
                        tp.0,
                        tp.1,
                        fmt_ms(at),
                        fmt_ms(prev_at)
                    ),
                );
            }
        }
        let end = base_offset + values.len() as i64 - 1;
        last.insert(key, (end, values.last().map_or("", String::as_str), at));
    }
}

/// nonmonotonic-poll and poll-skip: per consumer and partition, each polled offset must
/// follow the previous one, unless the consumer sought.
fn check_polls(history: &History, report: &mut CheckReport) {
    // (consumer, tp) → the last offset it saw and when.
    let mut last: BTreeMap<(&str, &Tp), (i64, Millis)> = BTreeMap::new();
    for op in &history.ops {
        let key = (op.process.as_str(), op.tp());
        match &op.kind {
            OpKind::Seek { to, .. } => {
                last.insert(key, (to - 1, op.invoked_ms));
            }
            OpKind::Poll {
                tp,
                outcome: Some(PollOutcome::Ok { records, .. }),
                ..
            } => {
                let at = op.completed_ms.unwrap_or(op.invoked_ms);
                for (offset, value) in records {
                    let (prev, prev_at) = last.get(&key).copied().unwrap_or((-1, 0));
                    if *offset <= prev {
                        report.add(
                            Anomaly::NonmonotonicPoll,
                            at,
                            format!(
                                "{}: polled {value} at {}-{} offset {offset} ({}) after offset {prev} ({})",
                                op.process,
                                tp.0,
                                tp.1,
                                fmt_ms(at),
                                fmt_ms(prev_at)
                            ),
                        );
                    } else if *offset > prev + 1 {
                        let skipped: Vec<i64> = history
                            .final_read
                            .get(tp)
                            .map(|r| {
                                r.records
                                    .range(prev + 1..*offset)
                                    .map(|(o, _)| *o)
                                    .collect()
                            })
                            .unwrap_or_default();
                        if !skipped.is_empty() {
                            report.add(
                                Anomaly::PollSkip,
                                at,
                                format!(
                                    "{}: polled {value} at {}-{} offset {offset} ({}) right after offset {prev} ({}), skipping {} record(s) the final read holds (offsets {}..={})",
                                    op.process,
                                    tp.0,
                                    tp.1,
                                    fmt_ms(at),
                                    fmt_ms(prev_at),
                                    skipped.len(),
                                    skipped[0],
                                    skipped[skipped.len() - 1]
                                ),
                            );
                        }
                    }
                    last.insert(key, (*offset, at));
                }
            }
            _ => {}
        }
    }
}

pub mod cluster;
mod groups;
pub mod linearizable;
pub mod resume;

#[cfg(test)]
mod tests;
