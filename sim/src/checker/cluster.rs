//! Cluster scenarios: the metadata quorum as the observer saw it (`history.cluster`).
//!
//! - `two-controllers`: Raft's election safety as clients can see it. A DescribeQuorum
//!   answered with error 0 is a broker's claim to be the active controller of the epoch it
//!   names; two different brokers (or two different leader ids) claiming one epoch means two
//!   controllers could commit metadata in it.
//! - `no-controller`: after the heal every node must name the same controller and list every
//!   node as a live broker and every topic on its node; the observer records when that first
//!   held. A committed registration or topic the metadata log lost shows here too.

use super::{Anomaly, Finding};
use crate::history::{fmt_ms, History, QuorumClaim};
use std::collections::{BTreeMap, BTreeSet};

/// The findings of a cluster run; none when the history has no cluster record.
pub fn check(history: &History, end_ms: u64) -> Vec<Finding> {
    let Some(record) = &history.cluster else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let mut by_epoch: BTreeMap<i32, Vec<&QuorumClaim>> = BTreeMap::new();
    for c in &record.claims {
        by_epoch.entry(c.epoch).or_default().push(c);
    }
    for (epoch, claims) in &by_epoch {
        let who: BTreeSet<i32> = claims
            .iter()
            .flat_map(|c| [c.leader_id, c.node as i32])
            .collect();
        if who.len() > 1 {
            let shown: Vec<String> = claims
                .iter()
                .map(|c| {
                    format!(
                        "keel-{} said leader {} at {}",
                        c.node,
                        c.leader_id,
                        fmt_ms(c.at_ms)
                    )
                })
                .collect();
            let at = claims.iter().map(|c| c.at_ms).max().unwrap_or(0);
            findings.push(Finding {
                anomaly: Anomaly::TwoControllers,
                at_ms: at,
                detail: format!(
                    "metadata epoch {epoch} had controllers {who:?}: {}",
                    shown.join("; ")
                ),
            });
        }
    }
    if record.converged.is_none() {
        findings.push(Finding {
            anomaly: Anomaly::NoController,
            at_ms: end_ms,
            detail: format!(
                "after the heal the nodes never agreed on one controller listing every broker \
                 and topic; last views: {}",
                if record.last_views.is_empty() {
                    "none".to_string()
                } else {
                    record.last_views.join(" | ")
                }
            ),
        });
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ClusterRecord;

    fn claim(at_ms: u64, node: u32, epoch: i32, leader_id: i32) -> QuorumClaim {
        QuorumClaim {
            at_ms,
            node,
            epoch,
            leader_id,
        }
    }

    #[test]
    fn two_claimers_of_one_epoch_are_two_controllers_and_successive_epochs_are_not() {
        let mut h = History {
            cluster: Some(ClusterRecord {
                claims: vec![claim(10, 1, 1, 1), claim(900, 2, 2, 2), claim(950, 1, 1, 1)],
                converged: Some((5_000, 2)),
                last_views: Vec::new(),
            }),
            ..History::default()
        };
        assert!(check(&h, 9_000).is_empty());
        h.cluster.as_mut().unwrap().claims.push(claim(990, 3, 2, 3));
        let found = check(&h, 9_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].anomaly, Anomaly::TwoControllers);
        assert!(found[0].detail.contains("epoch 2"), "{}", found[0].detail);
        // A claim naming another broker than the one answering counts too.
        h.cluster.as_mut().unwrap().claims = vec![claim(10, 1, 4, 2)];
        assert_eq!(check(&h, 9_000)[0].anomaly, Anomaly::TwoControllers);
    }

    #[test]
    fn no_agreement_after_the_heal_is_no_controller() {
        let h = History {
            cluster: Some(ClusterRecord {
                claims: Vec::new(),
                converged: None,
                last_views: vec!["keel-1: controller -1, brokers [1]".into()],
            }),
            ..History::default()
        };
        let found = check(&h, 9_000);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].anomaly, Anomaly::NoController);
        assert!(found[0].detail.contains("controller -1"));
        assert!(check(&History::default(), 9_000).is_empty());
    }
}
