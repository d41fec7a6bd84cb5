//! `writes-stuck`: writes stopped by a fault (a full disk) must resume by themselves once the
//! fault is gone, without a restart. The scenario names the time the fault ends
//! (`[expect] writes_resume_after`); from then until the heal, every partition produced to
//! must acknowledge some produce invoked after that time, and the acknowledgement must come
//! from the incarnation of the partition's node that was running at that time: a node that
//! only takes writes again after a restart (a crash, a supervisor restart after its driver
//! gave up) did not recover by itself.

use super::{Anomaly, Finding};
use crate::history::{fmt_ms, History, Millis, OpKind, ProduceOutcome, Tp};
use std::collections::BTreeMap;

/// What the produces to one partition invoked in the window came to.
#[derive(Default)]
struct Tally {
    tried: usize,
    refused: usize,
    indeterminate: usize,
    unknown: usize,
    last_error: Option<i16>,
    /// The first acknowledged one: (process, invoked, acknowledged).
    first_ack: Option<(String, Millis, Millis)>,
}

/// Findings for the partitions whose writes did not resume by themselves between `after_ms`
/// and the heal at `heal_ms`. Produces with acks=0 are never acknowledged and do not count.
pub fn check_writes_resume(history: &History, after_ms: Millis, heal_ms: Millis) -> Vec<Finding> {
    let mut tallies: BTreeMap<&Tp, Tally> = BTreeMap::new();
    for op in &history.ops {
        let OpKind::Produce {
            tp, acks, outcome, ..
        } = &op.kind
        else {
            continue;
        };
        if *acks == 0 || op.invoked_ms < after_ms || op.invoked_ms >= heal_ms {
            continue;
        }
        let t = tallies.entry(tp).or_default();
        t.tried += 1;
        match (outcome, op.completed_ms) {
            (Some(ProduceOutcome::Ok { .. }), Some(done)) if done < heal_ms => {
                if t.first_ack
                    .as_ref()
                    .is_none_or(|(_, _, first)| done < *first)
                {
                    t.first_ack = Some((op.process.clone(), op.invoked_ms, done));
                }
            }
            (Some(ProduceOutcome::Fail { error, definite }), _) => {
                if *definite {
                    t.refused += 1;
                } else {
                    t.indeterminate += 1;
                }
                t.last_error = Some(*error);
            }
            _ => t.unknown += 1,
        }
    }

    let mut findings = Vec::new();
    for (tp, t) in tallies {
        let Some((process, invoked, acked)) = t.first_ack else {
            let last = t
                .last_error
                .map_or(String::new(), |e| format!("; last error code {e}"));
            findings.push(Finding {
                anomaly: Anomaly::WritesStuck,
                at_ms: heal_ms,
                detail: format!(
                    "{}-{}: none of the {} produce(s) invoked from {} until the heal at {} was acknowledged before the heal ({} refused, {} indeterminate, {} unanswered or acknowledged too late{last}): writes did not resume by themselves",
                    tp.0,
                    tp.1,
                    t.tried,
                    fmt_ms(after_ms),
                    fmt_ms(heal_ms),
                    t.refused,
                    t.indeterminate,
                    t.unknown,
                ),
            });
            continue;
        };
        let Some(&node) = history.topic_nodes.get(&tp.0) else {
            continue;
        };
        // The node's first start is its only incarnation that is not a restart.
        let restart = history
            .node_starts
            .iter()
            .filter(|(_, n)| *n == node)
            .skip(1)
            .map(|(at, _)| *at)
            .find(|at| (after_ms..=acked).contains(at));
        if let Some(started) = restart {
            findings.push(Finding {
                anomaly: Anomaly::WritesStuck,
                at_ms: acked,
                detail: format!(
                    "{}-{}: the first produce acknowledged after {} ({process}'s, sent {}, acknowledged {}) came from keel-{node} as restarted at {}: writes resumed through a restart, not by themselves",
                    tp.0,
                    tp.1,
                    fmt_ms(after_ms),
                    fmt_ms(invoked),
                    fmt_ms(acked),
                    fmt_ms(started),
                ),
            });
        }
    }
    findings
}
