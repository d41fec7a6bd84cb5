//! A linearizability checker for per-key registers (Wing & Gong's search with Lowe's
//! memoisation of (linearized set, register value)), P-compositional by key: a history is
//! linearizable iff each key's sub-history is (Herlihy & Wing 1990), so each key is searched
//! alone.
//!
//! Operations carry the client's invocation and return positions in one global event order
//! (not times: two events in one millisecond are still ordered). An operation with no
//! return is *indeterminate* (a timeout, a leader lost after the proposal): it may take
//! effect at any point after its invocation, or never. Indeterminate reads are dropped, they
//! constrain nothing. A definite failure (not the leader, another entry won the index) is
//! not an operation at all and never reaches the checker.

use std::collections::{BTreeMap, BTreeSet};

/// What one operation did to, or saw of, its key's register (`None` = never written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Set the register to a value.
    Write(u64),
    /// Saw this value.
    Read(Option<u64>),
    /// Compare-and-set: `ok` says whether it swapped (only meaningful when it returned).
    Cas {
        /// Expected value.
        from: u64,
        /// New value.
        to: u64,
        /// It swapped.
        ok: bool,
    },
}

/// One client operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client that issued it.
    pub client: u32,
    /// The key.
    pub key: u64,
    /// What it did.
    pub kind: OpKind,
    /// Its invocation's position in the event order.
    pub invoke: u64,
    /// Its return's position; `None` if indeterminate.
    pub ret: Option<u64>,
}

/// The verdict on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// Some order of the operations explains every result.
    Linearizable,
    /// No order does.
    Violation {
        /// How many operations the key's history holds.
        ops: usize,
    },
    /// The search ran out of its state budget without an answer.
    Unknown,
}

/// Checks every key; returns each key's verdict.
#[must_use]
pub fn check(ops: &[Op], max_states: usize) -> BTreeMap<u64, KeyVerdict> {
    let mut by_key: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
    for op in ops {
        if op.ret.is_none() && matches!(op.kind, OpKind::Read(_)) {
            continue;
        }
        by_key.entry(op.key).or_default().push(op.clone());
    }
    by_key
        .into_iter()
        .map(|(key, mut ops)| {
            ops.sort_by_key(|o| o.invoke);
            (key, check_key(&ops, max_states))
        })
        .collect()
}

struct Search<'a> {
    ops: &'a [Op],
    completed: usize,
    visited: BTreeSet<(Vec<u64>, Option<u64>)>,
    max_states: usize,
    out_of_budget: bool,
}

fn check_key(ops: &[Op], max_states: usize) -> KeyVerdict {
    let mut s = Search {
        ops,
        completed: ops.iter().filter(|o| o.ret.is_some()).count(),
        visited: BTreeSet::new(),
        max_states,
        out_of_budget: false,
    };
    let mut lin = vec![0u64; ops.len().div_ceil(64)];
    if s.dfs(&mut lin, None, 0) {
        KeyVerdict::Linearizable
    } else if s.out_of_budget {
        KeyVerdict::Unknown
    } else {
        KeyVerdict::Violation { ops: ops.len() }
    }
}

/// The register after `op` applied to `value`, or `None` if `op`'s result rules that out.
fn step(op: &Op, value: Option<u64>) -> Option<Option<u64>> {
    let done = op.ret.is_some();
    match op.kind {
        OpKind::Write(v) => Some(Some(v)),
        OpKind::Read(seen) => (seen == value).then_some(value),
        OpKind::Cas { from, to, ok } => {
            let matches = value == Some(from);
            if !done {
                // Indeterminate: if it took effect here, it swapped iff it matched.
                Some(if matches { Some(to) } else { value })
            } else if ok {
                matches.then_some(Some(to))
            } else {
                (!matches).then_some(value)
            }
        }
    }
}

impl Search<'_> {
    fn dfs(&mut self, lin: &mut Vec<u64>, value: Option<u64>, done: usize) -> bool {
        if done == self.completed {
            return true;
        }
        if self.visited.len() >= self.max_states {
            self.out_of_budget = true;
            return false;
        }
        if !self.visited.insert((lin.clone(), value)) {
            return false;
        }
        let is_lin = |lin: &[u64], i: usize| lin[i / 64] & (1 << (i % 64)) != 0;
        // No operation may be linearized after one that returned before it was invoked.
        let min_ret = (0..self.ops.len())
            .filter(|&i| !is_lin(lin, i))
            .filter_map(|i| self.ops[i].ret)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if op.invoke > min_ret {
                break;
            }
            if is_lin(lin, i) {
                continue;
            }
            let Some(next) = step(op, value) else {
                continue;
            };
            lin[i / 64] |= 1 << (i % 64);
            let found = self.dfs(lin, next, done + usize::from(op.ret.is_some()));
            lin[i / 64] &= !(1 << (i % 64));
            if found {
                return true;
            }
            if self.out_of_budget {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u32, kind: OpKind, invoke: u64, ret: Option<u64>) -> Op {
        Op {
            client,
            key: 1,
            kind,
            invoke,
            ret,
        }
    }

    fn verdict(ops: &[Op]) -> KeyVerdict {
        check(ops, 100_000)
            .remove(&1)
            .unwrap_or(KeyVerdict::Linearizable)
    }

    use OpKind::{Cas, Read, Write};

    #[test]
    fn sequential_and_concurrent_histories_that_linearize() {
        // w1 then r1.
        assert_eq!(
            verdict(&[
                op(1, Write(1), 0, Some(1)),
                op(2, Read(Some(1)), 2, Some(3))
            ]),
            KeyVerdict::Linearizable
        );
        // A read concurrent with a write may see either value.
        for seen in [None, Some(1)] {
            assert_eq!(
                verdict(&[op(1, Write(1), 0, Some(3)), op(2, Read(seen), 1, Some(2))]),
                KeyVerdict::Linearizable
            );
        }
        // A successful cas and a failed one that saw the swapped value.
        assert_eq!(
            verdict(&[
                op(1, Write(1), 0, Some(1)),
                op(
                    2,
                    Cas {
                        from: 1,
                        to: 2,
                        ok: true
                    },
                    2,
                    Some(5)
                ),
                op(
                    3,
                    Cas {
                        from: 1,
                        to: 3,
                        ok: false
                    },
                    3,
                    Some(6)
                ),
                op(1, Read(Some(2)), 7, Some(8)),
            ]),
            KeyVerdict::Linearizable
        );
    }

    #[test]
    fn an_indeterminate_write_may_land_late_or_never() {
        let w = op(1, Write(7), 0, None);
        assert_eq!(
            verdict(&[
                w.clone(),
                op(2, Read(None), 1, Some(2)),
                op(2, Read(Some(7)), 3, Some(4))
            ]),
            KeyVerdict::Linearizable
        );
        assert_eq!(
            verdict(&[w, op(2, Read(None), 5, Some(6))]),
            KeyVerdict::Linearizable
        );
    }

    #[test]
    fn stale_reads_lost_writes_and_double_cas_are_violations() {
        // Stale read: the write returned before the read began, the read saw the old value.
        assert!(matches!(
            verdict(&[op(1, Write(1), 0, Some(1)), op(2, Read(None), 2, Some(3))]),
            KeyVerdict::Violation { .. }
        ));
        // A value that goes back: r(2) then r(1) after w1 < w2.
        assert!(matches!(
            verdict(&[
                op(1, Write(1), 0, Some(1)),
                op(1, Write(2), 2, Some(3)),
                op(2, Read(Some(2)), 4, Some(5)),
                op(3, Read(Some(1)), 6, Some(7)),
            ]),
            KeyVerdict::Violation { .. }
        ));
        // Two cas from the same value both succeed.
        assert!(matches!(
            verdict(&[
                op(1, Write(1), 0, Some(1)),
                op(
                    2,
                    Cas {
                        from: 1,
                        to: 2,
                        ok: true
                    },
                    2,
                    Some(4)
                ),
                op(
                    3,
                    Cas {
                        from: 1,
                        to: 3,
                        ok: true
                    },
                    3,
                    Some(5)
                ),
            ]),
            KeyVerdict::Violation { .. }
        ));
        // A read of a value nobody wrote.
        assert!(matches!(
            verdict(&[op(2, Read(Some(9)), 0, Some(1))]),
            KeyVerdict::Violation { .. }
        ));
    }

    #[test]
    fn keys_are_checked_apart_and_budget_exhaustion_is_not_a_pass() {
        let mut ops = vec![op(1, Write(1), 0, Some(1))];
        ops.push(Op {
            key: 2,
            ..op(2, Read(Some(1)), 2, Some(3))
        });
        let v = check(&ops, 1000);
        assert_eq!(v[&1], KeyVerdict::Linearizable);
        assert!(matches!(v[&2], KeyVerdict::Violation { .. }));
        // Many concurrent indeterminate writes and a read nobody can explain: budget 10.
        let mut ops: Vec<Op> = (0..20)
            .map(|i| op(i, Write(u64::from(i)), 0, None))
            .collect();
        ops.push(op(99, Read(Some(1000)), 1, Some(2)));
        assert_eq!(check(&ops, 10)[&1], KeyVerdict::Unknown);
    }
}
