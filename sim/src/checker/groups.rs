//! Consumer-group checks: what a group's history must show on top of the queue checks that
//! already judge every member's polls (each member session is a process whose start at a
//! committed offset is a seek, so nonmonotonic-poll and poll-skip within a session apply).
//!
//! - **commit-regression**: once the coordinator acknowledged a commit of offset X for a
//!   partition, an OffsetFetch sent later must not answer less than X, unless a commit of
//!   exactly that lower offset may have landed after X (one never answered, or one that ran
//!   concurrently with X: commits are last-writer-wins). The workload never seeks back, so
//!   nothing else explains a lower answer; -1 (no commit) after an acknowledged commit never
//!   has an explanation.
//! - **poll-skip** (group): when a member starts a partition at committed offset C, every
//!   acknowledged record still in the log below C was polled by some member of the group
//!   before that OffsetFetch answered. A commit is only ever of a position its member polled
//!   up to, so a gap means the group skipped records.
//! - **unconsumed**: after the heal and the drain, every acknowledged record still in the
//!   log was polled by some member of every group consuming its topic (at-least-once).
//!
//! "Still in the log" means the final read holds the same value at the acknowledged offset:
//! records the log lost are judged by lost-write, not here.

use super::{Anomaly, CheckReport};
use crate::history::{
    fmt_ms, CommitOutcome, History, Millis, OffsetFetchOutcome, OpKind, PollOutcome,
    ProduceOutcome, Tp,
};
use std::collections::BTreeMap;

/// A commit as the checker sees it.
struct Commit<'h> {
    process: &'h str,
    invoked_ms: Millis,
    /// When acknowledged; `None` for any other outcome.
    acked_ms: Option<Millis>,
    /// When its outcome became known, if ever.
    completed_ms: Option<Millis>,
    offset: i64,
    may_apply: bool,
}

impl Commit<'_> {
    /// Whether this commit may have been applied after `other` (acknowledged) was: it was
    /// still open when `other` was sent.
    fn may_land_after(&self, other: &Commit<'_>) -> bool {
        self.may_apply
            && match self.completed_ms {
                None => true,
                Some(c) => c >= other.invoked_ms,
            }
    }
}

pub(super) fn check_groups(history: &History, report: &mut CheckReport) {
    if history.group_topics.is_empty() {
        return;
    }
    // Acknowledged values still in the log: tp → offset → (value, acknowledged at).
    let mut acked: BTreeMap<&Tp, BTreeMap<i64, (&str, Millis)>> = BTreeMap::new();
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
        for (i, v) in values.iter().enumerate() {
            let offset = base_offset + i as i64;
            let in_log = match history.final_read.get(tp) {
                None => true,
                Some(r) => r.records.get(&offset) == Some(v),
            };
            if in_log {
                acked
                    .entry(tp)
                    .or_default()
                    .insert(offset, (v.as_str(), at));
            }
        }
    }

    // What each group polled: (group, tp) → offset → (value → first poll's completion).
    type Polled<'h> = BTreeMap<(&'h str, &'h Tp), BTreeMap<i64, BTreeMap<&'h str, Millis>>>;
    let mut polled: Polled<'_> = BTreeMap::new();
    // Commits and start offsets per (group, tp), in invocation order.
    let mut commits: BTreeMap<(&str, &Tp), Vec<Commit<'_>>> = BTreeMap::new();
    for op in &history.ops {
        match &op.kind {
            OpKind::Poll {
                tp,
                outcome: Some(PollOutcome::Ok { records, .. }),
                ..
            } => {
                let Some(group) = history.group_of.get(&op.process) else {
                    continue;
                };
                let at = op.completed_ms.unwrap_or(op.invoked_ms);
                let seen = polled.entry((group.as_str(), tp)).or_default();
                for (offset, value) in records {
                    let first = seen.entry(*offset).or_default().entry(value).or_insert(at);
                    *first = (*first).min(at);
                }
            }
            OpKind::Commit {
                group,
                tp,
                offset,
                outcome,
            } => {
                let acked_ms = match outcome {
                    Some(CommitOutcome::Ok) => op.completed_ms,
                    _ => None,
                };
                report.stats.commits += 1;
                report.stats.acked_commits += usize::from(acked_ms.is_some());
                commits
                    .entry((group.as_str(), tp))
                    .or_default()
                    .push(Commit {
                        process: &op.process,
                        invoked_ms: op.invoked_ms,
                        acked_ms,
                        completed_ms: op.completed_ms,
                        offset: *offset,
                        // A commit still in flight at the end may land too.
                        may_apply: match outcome {
                            None => true,
                            Some(o) => o.may_apply(),
                        },
                    });
            }
            _ => {}
        }
    }
    let no_commits = Vec::new();

    for op in &history.ops {
        let OpKind::OffsetFetch {
            group,
            tp,
            outcome: Some(OffsetFetchOutcome::Ok { offset: fetched }),
        } = &op.kind
        else {
            continue;
        };
        let fetched = *fetched;
        let Some(answered_ms) = op.completed_ms else {
            continue;
        };
        report.stats.group_starts += 1;
        let key = (group.as_str(), tp);
        let group_commits = commits.get(&key).unwrap_or(&no_commits);

        // commit-regression.
        // The highest acknowledged commit the answer falls below without an excuse.
        let unexplained = group_commits
            .iter()
            .filter(|x| {
                x.offset > fetched
                    && x.acked_ms.is_some_and(|acked| acked < op.invoked_ms)
                    && !group_commits.iter().any(|y| {
                        y.offset == fetched && y.invoked_ms < answered_ms && y.may_land_after(x)
                    })
            })
            .max_by_key(|x| (x.offset, x.invoked_ms));
        if let Some(x) = unexplained {
            report.add(
                Anomaly::CommitRegression,
                answered_ms,
                format!(
                    "group {group} {}-{}: {} fetched committed offset {fetched} (sent {}, answered {}), but {}'s commit of offset {} was acknowledged at {} (sent {}) and no commit of {fetched} could have landed after it",
                    tp.0,
                    tp.1,
                    op.process,
                    fmt_ms(op.invoked_ms),
                    fmt_ms(answered_ms),
                    x.process,
                    x.offset,
                    fmt_ms(x.acked_ms.unwrap_or_default()),
                    fmt_ms(x.invoked_ms)
                ),
            );
        }

        // poll-skip: every acknowledged record below the start was polled before it.
        if fetched <= 0 {
            continue;
        }
        let seen = polled.get(&key);
        let missing: Vec<(i64, &str)> = acked
            .get(tp)
            .map(|m| {
                m.range(..fetched)
                    .filter(|(o, (v, _))| {
                        seen.and_then(|s| s.get(o))
                            .and_then(|vs| vs.get(v))
                            .is_none_or(|t| *t > answered_ms)
                    })
                    .map(|(o, (v, _))| (*o, *v))
                    .collect()
            })
            .unwrap_or_default();
        if let Some((first, value)) = missing.first() {
            report.add(
                Anomaly::PollSkip,
                answered_ms,
                format!(
                    "group {group} {}-{}: {} started at committed offset {fetched} (answered {}), but {} acknowledged record(s) below it had not been polled by any member, the first {value} at offset {first}",
                    tp.0,
                    tp.1,
                    op.process,
                    fmt_ms(answered_ms),
                    missing.len()
                ),
            );
        }
    }

    // unconsumed: at-least-once, after the drain.
    for (group, topic) in &history.group_topics {
        for (tp, records) in acked.iter().filter(|(tp, _)| &tp.0 == topic) {
            let seen = polled.get(&(group.as_str(), *tp));
            for (offset, (value, acked_ms)) in records {
                let consumed = seen
                    .and_then(|s| s.get(offset))
                    .is_some_and(|vs| vs.contains_key(value));
                if !consumed {
                    report.add(
                        Anomaly::Unconsumed,
                        *acked_ms,
                        format!(
                            "group {group}: {value} at {}-{} offset {offset} (acknowledged at {}) was never polled by any member",
                            tp.0,
                            tp.1,
                            fmt_ms(*acked_ms)
                        ),
                    );
                }
            }
        }
    }
}
