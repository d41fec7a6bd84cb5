//! Each anomaly from a small hand-written history, and the uncertain cases that must not
//! count (Jepsen's queue checker semantics).

use super::*;
use crate::history::{
    CommitOutcome, History, OffsetFetchOutcome, OpKind, PartitionRead, PollOutcome, ProduceOutcome,
    Tp,
};

fn tp(p: i32) -> Tp {
    ("t".to_string(), p)
}

fn produce(
    h: &mut History,
    who: &str,
    at: Millis,
    p: i32,
    values: &[&str],
    outcome: ProduceOutcome,
) {
    let id = h.invoke(
        who,
        at,
        OpKind::Produce {
            tp: tp(p),
            acks: -1,
            values: values.iter().map(|v| v.to_string()).collect(),
            outcome: None,
        },
    );
    h.complete_produce(id, at + 5, outcome);
}

fn ok(base_offset: i64) -> ProduceOutcome {
    ProduceOutcome::Ok { base_offset }
}

fn poll(h: &mut History, who: &str, at: Millis, p: i32, from: i64, records: &[(i64, &str)]) {
    let id = h.invoke(
        who,
        at,
        OpKind::Poll {
            tp: tp(p),
            from,
            outcome: None,
        },
    );
    let records = records.iter().map(|(o, v)| (*o, v.to_string())).collect();
    h.complete_poll(
        id,
        at + 5,
        PollOutcome::Ok {
            records,
            high_watermark: 100,
        },
    );
}

fn final_read(h: &mut History, p: i32, records: &[(i64, &str)]) {
    h.final_read.insert(
        tp(p),
        PartitionRead {
            records: records.iter().map(|(o, v)| (*o, v.to_string())).collect(),
            complete: true,
            log_start_offset: 0,
            high_watermark: records.len() as i64,
            corrupt: vec![],
            unreadable: vec![],
            refused_servable: vec![],
        },
    );
}

fn kinds(h: &History) -> Vec<Anomaly> {
    let consumed = BTreeSet::from(["t".to_string()]);
    let mut k: Vec<Anomaly> = check(h, &consumed).kinds().into_iter().collect();
    k.sort();
    k
}

fn clean() -> History {
    let mut h = History::default();
    produce(&mut h, "producer-1", 10, 0, &["a", "b"], ok(0));
    produce(&mut h, "producer-1", 20, 0, &["c"], ok(2));
    poll(&mut h, "consumer-1", 30, 0, 0, &[(0, "a"), (1, "b")]);
    poll(&mut h, "consumer-1", 40, 0, 2, &[(2, "c")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c")]);
    h
}

#[test]
fn a_clean_history_has_no_anomalies() {
    assert_eq!(kinds(&clean()), vec![]);
}

#[test]
fn an_acknowledged_write_missing_from_the_final_read_is_lost() {
    let mut h = clean();
    final_read(&mut h, 0, &[(0, "a"), (1, "b")]);
    let report = check(&h, &BTreeSet::from(["t".to_string()]));
    assert_eq!(report.kinds(), BTreeSet::from([Anomaly::LostWrite]));
    let detail = &report.findings[0].detail;
    assert!(
        detail.contains("c acknowledged by t-0 at offset 2"),
        "{detail}"
    );
    assert!(detail.contains("producer-1 at 0.025s"), "{detail}");
}

#[test]
fn unknown_and_indeterminate_writes_may_vanish_or_appear() {
    let mut h = clean();
    produce(
        &mut h,
        "producer-2",
        50,
        0,
        &["x"],
        ProduceOutcome::Unknown {
            why: "timeout".into(),
        },
    );
    produce(
        &mut h,
        "producer-2",
        60,
        0,
        &["y"],
        ProduceOutcome::Fail {
            error: 7,
            definite: false,
        },
    );
    produce(
        &mut h,
        "producer-2",
        70,
        0,
        &["z"],
        ProduceOutcome::Unknown {
            why: "timeout".into(),
        },
    );
    // x vanished; z appeared without an ack.
    poll(&mut h, "consumer-1", 80, 0, 3, &[(3, "z")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "z")]);
    assert_eq!(kinds(&h), vec![]);
}

#[test]
fn one_value_at_two_offsets_is_a_duplicate() {
    let mut h = clean();
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "a")]);
    assert_eq!(kinds(&h), vec![Anomaly::Duplicate]);
}

#[test]
fn two_values_at_one_offset_are_inconsistent() {
    let mut h = clean();
    produce(&mut h, "producer-2", 50, 0, &["d"], ok(3));
    poll(&mut h, "consumer-1", 60, 0, 3, &[(3, "d")]);
    // The log lost d and reused offset 3 for e.
    produce(&mut h, "producer-2", 70, 0, &["e"], ok(3));
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "e")]);
    let k = kinds(&h);
    assert!(k.contains(&Anomaly::InconsistentOffsets), "{k:?}");
    assert!(k.contains(&Anomaly::LostWrite), "{k:?}");
    assert!(k.contains(&Anomaly::NonmonotonicSend), "{k:?}");
    assert!(k.contains(&Anomaly::Unseen), "{k:?}");
}

#[test]
fn polls_going_backwards_or_skipping_are_caught_unless_the_consumer_sought() {
    let mut h = clean();
    poll(&mut h, "consumer-1", 50, 0, 3, &[(1, "b")]);
    assert_eq!(kinds(&h), vec![Anomaly::NonmonotonicPoll]);

    let mut h = History::default();
    produce(&mut h, "producer-1", 10, 0, &["a", "b", "c"], ok(0));
    poll(&mut h, "consumer-1", 30, 0, 0, &[(0, "a")]);
    poll(&mut h, "consumer-1", 40, 0, 1, &[(2, "c")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c")]);
    // b was skipped, and no other consumer polled it.
    assert_eq!(kinds(&h), vec![Anomaly::PollSkip, Anomaly::Unseen]);

    let mut h = History::default();
    produce(&mut h, "producer-1", 10, 0, &["a", "b", "c"], ok(0));
    poll(&mut h, "consumer-1", 30, 0, 0, &[(0, "a")]);
    h.invoke(
        "consumer-1",
        35,
        OpKind::Seek {
            tp: tp(0),
            to: 2,
            why: "corrupt batch".into(),
        },
    );
    poll(&mut h, "consumer-2", 36, 0, 0, &[(0, "a"), (1, "b")]);
    poll(&mut h, "consumer-1", 40, 0, 2, &[(2, "c")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c")]);
    assert_eq!(kinds(&h), vec![]);
}

#[test]
fn a_value_nobody_wrote_is_garbage() {
    let mut h = clean();
    poll(&mut h, "consumer-1", 50, 0, 3, &[(3, "p9-999999")]);
    let report = check(&h, &BTreeSet::from(["t".to_string()]));
    assert_eq!(report.kinds(), BTreeSet::from([Anomaly::Garbage]));
    assert!(report.findings[0].detail.contains("p9-999999"));
}

#[test]
fn acknowledged_but_never_polled_is_unseen_only_where_consumers_read() {
    let mut h = History::default();
    produce(&mut h, "producer-1", 10, 0, &["a"], ok(0));
    final_read(&mut h, 0, &[(0, "a")]);
    assert_eq!(kinds(&h), vec![Anomaly::Unseen]);
    assert!(check(&h, &BTreeSet::new()).findings.is_empty());
}

#[test]
fn an_unfinished_final_read_is_reported_and_judges_only_what_it_covered() {
    let mut h = clean();
    final_read(&mut h, 0, &[(0, "a")]);
    h.final_read.get_mut(&tp(0)).unwrap().complete = false;
    // b (offset 1) and c (offset 2) lie past what the reader reached: not judged lost.
    assert_eq!(kinds(&h), vec![Anomaly::IncompleteRead]);
}

#[test]
fn offsets_the_final_read_had_to_step_over_are_unreadable() {
    let mut h = clean();
    // The broker refused offset 1 again and again; the reader stepped over it.
    final_read(&mut h, 0, &[(0, "a"), (2, "c")]);
    h.final_read.get_mut(&tp(0)).unwrap().unreadable = vec![1];
    assert_eq!(kinds(&h), vec![Anomaly::LostWrite, Anomaly::Unreadable]);
    let report = check(&h, &BTreeSet::from(["t".to_string()]));
    let finding = report
        .findings
        .iter()
        .find(|f| f.anomaly == Anomaly::Unreadable)
        .unwrap();
    assert!(finding.detail.contains("t-0"), "{finding}");
    assert!(finding.detail.contains("1..=1"), "{finding}");
}

fn refused(error: i16, definite: bool) -> ProduceOutcome {
    ProduceOutcome::Fail { error, definite }
}

#[test]
fn a_definitely_refused_value_that_turns_up_is_an_aborted_read() {
    let mut h = History::default();
    produce(&mut h, "p1", 10, 0, &["a"], ok(0));
    // POLICY_VIOLATION from the free-space floor: nothing was written.
    produce(&mut h, "p1", 20, 0, &["b"], refused(44, true));
    poll(&mut h, "c1", 30, 0, 0, &[(0, "a"), (1, "b")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b")]);
    let report = check(&h, &BTreeSet::from(["t".to_string()]));
    assert_eq!(report.kinds(), BTreeSet::from([Anomaly::AbortedRead]));
    let finding = &report.findings[0];
    assert!(finding.detail.contains("error 44"), "{finding}");
    assert!(finding.detail.contains("t-0 offset 1"), "{finding}");
}

#[test]
fn a_refusal_that_may_have_landed_is_no_aborted_read() {
    let mut h = History::default();
    // KAFKA_STORAGE_ERROR after an append that met ENOSPC: indeterminate.
    produce(&mut h, "p1", 10, 0, &["a"], refused(56, false));
    // An idempotent resend of the same batch after an unknown outcome, then refused:
    // the first attempt may be the one in the log.
    produce(
        &mut h,
        "p1",
        20,
        0,
        &["b"],
        ProduceOutcome::Unknown {
            why: "timeout".into(),
        },
    );
    produce(&mut h, "p1", 30, 0, &["b"], refused(44, true));
    poll(&mut h, "c1", 40, 0, 0, &[(0, "a"), (1, "b")]);
    final_read(&mut h, 0, &[(0, "a"), (1, "b")]);
    assert_eq!(kinds(&h), vec![]);
    // Refused and nowhere to be seen: as it should be.
    let mut h = History::default();
    produce(&mut h, "p1", 10, 0, &["a"], refused(44, true));
    final_read(&mut h, 0, &[]);
    assert_eq!(kinds(&h), vec![]);
}

fn resume_history() -> History {
    let mut h = History::default();
    h.topic_nodes.insert("t".into(), 1);
    h.node_starts.push((0, 1));
    h
}

fn resume_kinds(h: &History) -> Vec<String> {
    resume::check_writes_resume(h, 3_000, 5_000)
        .iter()
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn writes_resume_when_each_partition_acknowledges_after_the_time_without_a_restart() {
    let mut h = resume_history();
    produce(&mut h, "p1", 2_000, 0, &["a"], refused(44, true));
    produce(&mut h, "p1", 3_100, 0, &["b"], refused(44, true));
    produce(&mut h, "p1", 3_900, 0, &["c"], ok(0));
    produce(&mut h, "p1", 4_000, 1, &["d"], ok(0));
    // Before the time, during the heal: neither counts nor hurts.
    produce(&mut h, "p1", 5_100, 0, &["e"], refused(44, true));
    // A restart before the time is the scenario's crash, not the resumption.
    h.node_starts.push((2_500, 1));
    assert_eq!(resume_kinds(&h), Vec::<String>::new());
}

#[test]
fn writes_stuck_until_the_heal_or_resumed_only_by_a_restart_fail_the_run() {
    let mut h = resume_history();
    produce(&mut h, "p1", 3_100, 0, &["a"], refused(44, true));
    produce(&mut h, "p1", 3_200, 0, &["b"], refused(56, false));
    // Acknowledged only after the heal: the heal freed the space, not the node.
    produce(&mut h, "p1", 4_998, 0, &["c"], ok(0));
    produce(&mut h, "p1", 3_300, 1, &["d"], ok(0));
    let found = resume_kinds(&h);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("writes-stuck"), "{found:?}");
    assert!(found[0].contains("t-0"), "{found:?}");
    assert!(found[0].contains("1 refused, 1 indeterminate"), "{found:?}");

    let mut h = resume_history();
    produce(&mut h, "p1", 3_100, 0, &["a"], refused(44, true));
    h.node_starts.push((3_500, 1));
    produce(&mut h, "p1", 3_600, 0, &["b"], ok(0));
    let found = resume_kinds(&h);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("restarted at 3.500s"), "{found:?}");
}

#[test]
fn anomaly_names_are_jepsens() {
    for a in Anomaly::ALL {
        let parsed: Anomaly =
            toml::from_str::<BTreeMap<String, Anomaly>>(&format!("a = \"{}\"", a.name())).unwrap()
                ["a"];
        assert_eq!(parsed, a);
    }
}

// Consumer groups (checker/groups.rs): group "g" consumes topic "t".

fn group_history() -> History {
    let mut h = History::default();
    h.group_topics.insert("g".into(), "t".into());
    for who in ["g/c-1#1", "g/c-2#1"] {
        h.group_of.insert(who.into(), "g".into());
    }
    produce(&mut h, "producer-1", 10, 0, &["a", "b"], ok(0));
    produce(&mut h, "producer-1", 20, 0, &["c"], ok(2));
    final_read(&mut h, 0, &[(0, "a"), (1, "b"), (2, "c")]);
    h
}

/// A commit of `offset` invoked at `at`, answered 5ms later with `outcome` (`None`: never).
fn commit(h: &mut History, who: &str, at: Millis, offset: i64, outcome: Option<CommitOutcome>) {
    let id = h.invoke(
        who,
        at,
        OpKind::Commit {
            group: "g".into(),
            tp: tp(0),
            offset,
            outcome: None,
        },
    );
    if let Some(outcome) = outcome {
        h.complete_commit(id, at + 5, outcome);
    }
}

/// An OffsetFetch at `at` answering `offset`, and the seek to where the member starts.
fn start(h: &mut History, who: &str, at: Millis, offset: i64) {
    let id = h.invoke(
        who,
        at,
        OpKind::OffsetFetch {
            group: "g".into(),
            tp: tp(0),
            outcome: None,
        },
    );
    h.complete_offset_fetch(id, at + 5, OffsetFetchOutcome::Ok { offset });
    h.invoke(
        who,
        at + 5,
        OpKind::Seek {
            tp: tp(0),
            to: offset.max(0),
            why: "committed".into(),
        },
    );
}

fn group_kinds(h: &History) -> Vec<Anomaly> {
    check(h, &BTreeSet::new()).kinds().into_iter().collect()
}

#[test]
fn a_group_that_hands_over_at_its_committed_offset_is_clean() {
    let mut h = group_history();
    start(&mut h, "g/c-1#1", 25, -1);
    poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a"), (1, "b")]);
    commit(&mut h, "g/c-1#1", 40, 2, Some(CommitOutcome::Ok));
    start(&mut h, "g/c-2#1", 50, 2);
    poll(&mut h, "g/c-2#1", 60, 0, 2, &[(2, "c")]);
    assert_eq!(group_kinds(&h), vec![]);
}

#[test]
fn a_fetch_below_an_acknowledged_commit_is_a_regression() {
    for fetched in [1, -1] {
        let mut h = group_history();
        start(&mut h, "g/c-1#1", 25, -1);
        poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a"), (1, "b"), (2, "c")]);
        commit(&mut h, "g/c-1#1", 40, 1, Some(CommitOutcome::Ok));
        commit(&mut h, "g/c-1#1", 50, 3, Some(CommitOutcome::Ok));
        start(&mut h, "g/c-2#1", 60, fetched);
        let from = fetched.max(0);
        let records = [(0, "a"), (1, "b"), (2, "c")];
        poll(&mut h, "g/c-2#1", 70, 0, from, &records[from as usize..]);
        let report = check(&h, &BTreeSet::new());
        assert_eq!(
            report.kinds(),
            BTreeSet::from([Anomaly::CommitRegression]),
            "fetched {fetched}"
        );
        let detail = &report.findings[0].detail;
        assert!(detail.contains("commit of offset 3"), "{detail}");
    }
}

#[test]
fn a_lower_commit_that_may_have_landed_later_explains_a_lower_fetch() {
    // An unanswered commit of 1, or one answered after the commit of 3 was sent, may have
    // been applied after it: last writer wins.
    for outcome in [
        None,
        Some(CommitOutcome::Unknown {
            why: "timeout".into(),
        }),
        Some(CommitOutcome::Ok),
    ] {
        let mut h = group_history();
        start(&mut h, "g/c-1#1", 25, -1);
        poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a"), (1, "b"), (2, "c")]);
        commit(&mut h, "g/c-2#1", 48, 1, outcome.clone());
        commit(&mut h, "g/c-1#1", 50, 3, Some(CommitOutcome::Ok));
        start(&mut h, "g/c-2#1", 60, 1);
        assert_eq!(group_kinds(&h), vec![], "{outcome:?}");
    }
    // Refused before writing, or acknowledged before the commit of 3 was sent: no excuse.
    for (at, outcome) in [
        (48, CommitOutcome::Fail { error: 22 }),
        (30, CommitOutcome::Ok),
    ] {
        let mut h = group_history();
        start(&mut h, "g/c-1#1", 25, -1);
        poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a"), (1, "b"), (2, "c")]);
        commit(&mut h, "g/c-2#1", at, 1, Some(outcome.clone()));
        commit(&mut h, "g/c-1#1", 50, 3, Some(CommitOutcome::Ok));
        start(&mut h, "g/c-2#1", 60, 1);
        assert_eq!(
            group_kinds(&h),
            vec![Anomaly::CommitRegression],
            "{outcome:?}"
        );
    }
}

#[test]
fn starting_past_records_no_member_polled_is_a_poll_skip() {
    let mut h = group_history();
    start(&mut h, "g/c-1#1", 25, -1);
    poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a")]);
    // Offset 3 was never committed, but the fetch says so: records 1 and 2 are skipped.
    start(&mut h, "g/c-2#1", 50, 3);
    // Polling them after the start does not make up for it.
    poll(&mut h, "g/c-1#1", 60, 0, 1, &[(1, "b"), (2, "c")]);
    let report = check(&h, &BTreeSet::new());
    assert_eq!(report.kinds(), BTreeSet::from([Anomaly::PollSkip]));
    let detail = &report.findings[0].detail;
    assert!(
        detail.contains("2 acknowledged record(s)") && detail.contains("b at offset 1"),
        "{detail}"
    );
}

#[test]
fn a_record_no_member_ever_polled_is_unconsumed() {
    let mut h = group_history();
    start(&mut h, "g/c-1#1", 25, -1);
    poll(&mut h, "g/c-1#1", 30, 0, 0, &[(0, "a"), (1, "b")]);
    let report = check(&h, &BTreeSet::new());
    assert_eq!(report.kinds(), BTreeSet::from([Anomaly::Unconsumed]));
    assert!(report.findings[0].detail.contains("c at t-0 offset 2"));
    // A consumer outside the group does not count for it.
    poll(
        &mut h,
        "consumer-1",
        40,
        0,
        0,
        &[(0, "a"), (1, "b"), (2, "c")],
    );
    assert_eq!(group_kinds(&h), vec![Anomaly::Unconsumed]);
    poll(&mut h, "g/c-1#1", 50, 0, 2, &[(2, "c")]);
    assert_eq!(group_kinds(&h), vec![]);
}
