//! Group membership: who votes, who only learns, what a majority is, and which single-server
//! changes (thesis §4.1) are allowed from a given membership.

use std::collections::BTreeSet;

use crate::types::NodeId;

/// The replicas of one group. A node is a voter or a learner, never both.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Membership {
    /// Replicas that vote and count toward commit.
    pub voters: BTreeSet<NodeId>,
    /// Replicas that receive the log but neither vote nor count (they catch up before
    /// promotion).
    pub learners: BTreeSet<NodeId>,
}

/// One single-server change. Only one may be uncommitted at a time, and only after the
/// leader committed an entry of its own term (the fix to the single-server bug, Ongaro's
/// raft-dev post of 2015 / thesis errata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Add a new learner.
    AddLearner(NodeId),
    /// Add a voter, or promote an existing learner.
    AddVoter(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
}

/// Why a membership change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeError {
    /// The change would not change anything (already a voter, already a learner, not a member).
    NoOp,
    /// The change would leave no voter.
    NoVotersLeft,
    /// A previous change is not yet committed.
    ChangeInProgress,
    /// The leader has not yet committed an entry of its current term.
    TermNotCommitted,
    /// This node is not the leader.
    NotLeader,
}

impl Membership {
    /// A membership of the given voters and no learners.
    pub fn voters<I: IntoIterator<Item = NodeId>>(ids: I) -> Membership {
        Membership {
            voters: ids.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    /// Whether `id` is a voter.
    #[must_use]
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    #[must_use]
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Every member, voters and learners, in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut all: Vec<NodeId> = self
            .voters
            .iter()
            .chain(self.learners.iter())
            .copied()
            .collect();
        all.sort();
        all.into_iter()
    }

    /// How many voters make a majority.
    #[must_use]
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether the voters in `yes` make a majority (members of `yes` that are not voters are
    /// ignored).
    #[must_use]
    pub fn has_quorum(&self, yes: &BTreeSet<NodeId>) -> bool {
        self.voters.iter().filter(|v| yes.contains(v)).count() >= self.quorum()
    }

    /// The largest value that a majority of voters has reached, given each voter's value
    /// (voters missing from `value` count as 0).
    pub fn quorum_value<F: Fn(NodeId) -> u64>(&self, value: F) -> u64 {
        if self.voters.is_empty() {
            return 0;
        }
        let mut values: Vec<u64> = self.voters.iter().map(|v| value(*v)).collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.quorum() - 1]
    }

    /// The membership after `change`, if the change is a valid single-server change.
    pub fn apply(&self, change: ConfChange) -> Result<Membership, ConfChangeError> {
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(ConfChangeError::NoOp);
                }
                next.learners.insert(id);
            }
            ConfChange::AddVoter(id) => {
                if self.is_voter(id) {
                    return Err(ConfChangeError::NoOp);
                }
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            ConfChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(ConfChangeError::NoOp);
                }
                next.learners.remove(&id);
                next.voters.remove(&id);
                if next.voters.is_empty() {
                    return Err(ConfChangeError::NoVotersLeft);
                }
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn quorum_value_is_the_majority_th_largest() {
        let m = Membership::voters(ids(&[1, 2, 3, 4, 5]));
        let vals = [0u64, 10, 7, 3, 9, 1];
        assert_eq!(m.quorum_value(|n| vals[n.0 as usize]), 7);
        let m3 = Membership::voters(ids(&[1, 2, 3]));
        assert_eq!(m3.quorum_value(|n| vals[n.0 as usize]), 7);
    }

    #[test]
    fn s4_1_single_server_changes_only() {
        let m = Membership::voters(ids(&[1, 2, 3]));
        assert_eq!(
            m.apply(ConfChange::AddVoter(NodeId(2))),
            Err(ConfChangeError::NoOp)
        );
        let l = m.apply(ConfChange::AddLearner(NodeId(4))).unwrap();
        assert!(l.learners.contains(&NodeId(4)) && !l.is_voter(NodeId(4)));
        let p = l.apply(ConfChange::AddVoter(NodeId(4))).unwrap();
        assert!(p.is_voter(NodeId(4)) && p.learners.is_empty());
        assert_eq!(p.quorum(), 3);
        let one = Membership::voters(ids(&[1]));
        assert_eq!(
            one.apply(ConfChange::Remove(NodeId(1))),
            Err(ConfChangeError::NoVotersLeft)
        );
    }
}
