//! Consumer groups with librdkafka (through the `rdkafka` crate) against a real `keel serve`:
//! the classic group protocol end to end, with the assignors running in the clients.
//!
//! - Three members of a `range,roundrobin` group share six partitions two each; one of them,
//!   a child process, is killed with SIGKILL (no LeaveGroup), and after its session timeout
//!   its partitions move to the other two with no record skipped. Everyone commits, the
//!   broker restarts, and a new member resumes exactly at the committed offsets.
//! - A `cooperative-sticky` group rebalances incrementally as members come and go.
//! - Static members (group.instance.id) bounce without a rebalance.
//! - A broker restart does not rebalance a stable group: its membership is stored with the
//!   offsets, and the members heartbeat on in their generation.

mod common;

use keel_tests::{temp_data_dir, Keel};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, DefaultConsumerContext, Rebalance,
};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;
/// librdkafka's and Keel's minimum.
const SESSION_TIMEOUT_MS: &str = "6000";
/// Set in the environment of the child consumer process.
const CHILD_ENV: &str = "KEEL_GROUP_CHILD";

/// A broker whose groups rebalance as soon as their first member joins (the default 3 s
/// wait for more members only slows the tests down).
fn broker(name: &str, delay_ms: u32) -> Keel {
    let dir = temp_data_dir(name);
    Keel::start(
        &dir,
        &["--group-initial-rebalance-delay-ms", &delay_ms.to_string()],
    )
}

fn create_topic(bootstrap: &str, topic: &str) {
    common::create_topic(
        bootstrap,
        NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1)),
    );
}

/// Appends `per_partition` records to every partition; they land at known offsets because
/// each partition has one producer and no retries reorder them (idempotence off, one in
/// flight is not needed: offsets are checked as a set).
fn produce(bootstrap: &str, topic: &str, per_partition: usize, tag: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("acks", "all")
        .create()
        .expect("producer");
    for p in 0..PARTITIONS {
        for i in 0..per_partition {
            let value = format!("{tag}-{p}-{i}");
            producer
                .send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value))
                .map_err(|(e, _)| e)
                .expect("send");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "300")
        .set("topic.metadata.refresh.interval.ms", "2000");
    c
}

/// What every consumer of a test saw: (partition, offset) pairs, with how often.
type Seen = BTreeMap<(i32, i64), usize>;

fn assigned(c: &BaseConsumer<impl ConsumerContext>) -> Vec<i32> {
    let mut v: Vec<i32> = c
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    v.sort_unstable();
    v
}

/// Polls every consumer in turn, recording what they read, until `done` or `timeout`.
fn pump<C: ConsumerContext>(
    consumers: &[&BaseConsumer<C>],
    seen: &mut Seen,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&Seen) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        for c in consumers {
            while let Some(m) = c.poll(Duration::from_millis(10)) {
                let m = m.expect("consume");
                *seen.entry((m.partition(), m.offset())).or_default() += 1;
            }
        }
        if done(seen) {
            return;
        }
        let assignments: Vec<_> = consumers.iter().map(|c| assigned(c)).collect();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; assignments {assignments:?}; seen {} records",
            seen.len()
        );
    }
}

/// Commits the consumed positions synchronously; "no offset stored" means auto commit got
/// there first, which is just as good.
fn commit(c: &BaseConsumer<impl ConsumerContext>) {
    match c.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => {}
        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
        Err(e) => panic!("commit: {e}"),
    }
}

fn all_offsets(from: i64, to: i64) -> BTreeSet<(i32, i64)> {
    (0..PARTITIONS)
        .flat_map(|p| (from..to).map(move |o| (p, o)))
        .collect()
}

/// The child consumer's output, read by a thread: its latest assignment and its records.
#[derive(Default)]
struct ChildState {
    assignment: Vec<i32>,
    seen: BTreeSet<(i32, i64)>,
}

struct ChildConsumer {
    child: Child,
    state: Arc<Mutex<ChildState>>,
}

impl ChildConsumer {
    /// Runs `child_consumer` below in a new process of this test binary.
    fn spawn(bootstrap: &str, topic: &str, group: &str) -> ChildConsumer {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "child_consumer", "--ignored", "--nocapture"])
            .env(CHILD_ENV, format!("{bootstrap} {topic} {group}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("child consumer starts");
        let state = Arc::new(Mutex::new(ChildState::default()));
        let out = child.stdout.take().expect("piped stdout");
        let s = state.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut words = line.split_whitespace();
                match words.next() {
                    Some("ASSIGN") => {
                        s.lock().unwrap().assignment = words
                            .next()
                            .unwrap_or("")
                            .split(',')
                            .filter(|w| !w.is_empty())
                            .map(|w| w.parse().expect("partition"))
                            .collect();
                    }
                    Some("REC") => {
                        let p = words.next().and_then(|w| w.parse().ok()).expect("p");
                        let o = words.next().and_then(|w| w.parse().ok()).expect("o");
                        s.lock().unwrap().seen.insert((p, o));
                    }
                    _ => {}
                }
            }
        });
        ChildConsumer { child, state }
    }

    fn assignment(&self) -> Vec<i32> {
        self.state.lock().unwrap().assignment.clone()
    }

    /// SIGKILL: no LeaveGroup, no final commit.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildConsumer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The body of the child consumer process (run only by `ChildConsumer::spawn`): a plain
/// group member with auto commit that prints its assignment and every record it reads.
#[test]
#[ignore = "run as a child process by range_group_survives_a_killed_member_and_a_restart"]
fn child_consumer() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<&str> = args.split(' ').collect();
    let (bootstrap, topic, group) = (args[0], args[1], args[2]);
    let c: BaseConsumer = consumer_config(bootstrap, group)
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let mut last = None;
    // Never outlive the test for long, even if the parent dies without killing us.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m.expect("consume");
            println!("REC {} {}", m.partition(), m.offset());
        }
        let now = assigned(&c);
        if last.as_ref() != Some(&now) {
            let list: Vec<String> = now.iter().map(|p| p.to_string()).collect();
            println!("ASSIGN {}", list.join(","));
            last = Some(now);
        }
    }
}

/// Three members share six partitions two each; one dies without leaving; its partitions
/// move to the other two after its session timeout and no record is skipped; the commits
/// survive a broker restart and a new member resumes exactly there.
#[test]
fn range_group_survives_a_killed_member_and_a_restart() {
    let started = Instant::now();
    let topic = "group-range";
    let group = "range-group";
    let mut keel = broker("group-range", 1500);
    let bootstrap = keel.bootstrap();
    create_topic(&bootstrap, topic);
    produce(&bootstrap, topic, 100, "a");

    let a: BaseConsumer = consumer_config(&bootstrap, group)
        .create()
        .expect("consumer a");
    let b: BaseConsumer = consumer_config(&bootstrap, group)
        .create()
        .expect("consumer b");
    a.subscribe(&[topic]).expect("subscribe");
    b.subscribe(&[topic]).expect("subscribe");
    let mut victim = ChildConsumer::spawn(&bootstrap, topic, group);

    // Phase A: everyone gets two partitions and everything is read.
    let mut seen = Seen::new();
    let first = all_offsets(0, 100);
    pump(
        &[&a, &b],
        &mut seen,
        Duration::from_secs(30),
        "three members with two partitions each reading phase A",
        |seen| {
            let child = victim.state.lock().unwrap();
            let balanced =
                child.assignment.len() == 2 && assigned(&a).len() == 2 && assigned(&b).len() == 2;
            balanced
                && first
                    .iter()
                    .all(|k| seen.contains_key(k) || child.seen.contains(k))
        },
    );
    let mut owners: Vec<i32> = [assigned(&a), assigned(&b), victim.assignment()].concat();
    owners.sort_unstable();
    assert_eq!(
        owners,
        (0..PARTITIONS).collect::<Vec<_>>(),
        "a partition is owned twice"
    );
    let victim_partitions = victim.assignment();
    // Let the victim's auto commit (300 ms) run, then kill it: no LeaveGroup.
    pump(&[&a, &b], &mut seen, Duration::from_secs(5), "", {
        let until = Instant::now() + Duration::from_millis(1200);
        move |_| Instant::now() >= until
    });
    victim.kill9();
    let killed_at = Instant::now();
    let victim_seen = victim.state.lock().unwrap().seen.clone();

    // Phase B arrives while the victim's partitions have no live owner.
    produce(&bootstrap, topic, 100, "b");
    let everything = all_offsets(0, 200);
    pump(
        &[&a, &b],
        &mut seen,
        Duration::from_secs(30),
        "the survivors to take over the dead member's partitions and read phase B",
        |seen| {
            assigned(&a).len() == 3
                && assigned(&b).len() == 3
                && everything
                    .iter()
                    .all(|k| seen.contains_key(k) || victim_seen.contains(k))
        },
    );
    let took = killed_at.elapsed();
    assert!(
        took >= Duration::from_millis(5000),
        "the dead member's partitions moved after {took:?}, before its session timeout"
    );
    let mut owners = [assigned(&a), assigned(&b)].concat();
    owners.sort_unstable();
    assert_eq!(owners, (0..PARTITIONS).collect::<Vec<_>>());
    // The survivors read the victim's partitions from its committed offsets at most: every
    // phase-B record of those partitions, and nothing is missing anywhere.
    for p in &victim_partitions {
        for o in 100..200 {
            assert!(seen.contains_key(&(*p, o)), "p{p} offset {o} was skipped");
        }
    }

    // Everyone commits; the broker restarts.
    commit(&a);
    commit(&b);
    drop(a);
    drop(b);
    produce(&bootstrap, topic, 10, "c");
    assert!(keel.stop(), "keel exits cleanly; log: {}", keel.log());
    keel.restart();

    // The commits are durable: exactly the end of phase B everywhere.
    let c: BaseConsumer = consumer_config(&bootstrap, group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer c");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let committed = loop {
        match c.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
            Ok(committed) => break committed,
            Err(e) => assert!(Instant::now() < deadline, "committed offsets: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for e in committed.elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(200),
            "committed offset of p{}",
            e.partition()
        );
    }

    // A new member resumes there: phase C and nothing before it.
    c.subscribe(&[topic]).expect("subscribe");
    let mut resumed = Seen::new();
    let phase_c = all_offsets(200, 210);
    pump(
        &[&c],
        &mut resumed,
        Duration::from_secs(30),
        "the new member to read phase C",
        |seen| phase_c.iter().all(|k| seen.contains_key(k)),
    );
    pump(&[&c], &mut resumed, Duration::from_secs(5), "", {
        let until = Instant::now() + Duration::from_millis(500);
        move |_| Instant::now() >= until
    });
    let before: Vec<_> = resumed.keys().filter(|(_, o)| *o < 200).collect();
    assert!(before.is_empty(), "re-read committed records: {before:?}");
    assert_eq!(resumed.keys().copied().collect::<BTreeSet<_>>(), phase_c);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// Counts rebalances (assign and revoke callbacks) of one member.
#[derive(Default)]
struct Counting {
    rebalances: Arc<AtomicUsize>,
}
impl ClientContext for Counting {}
impl ConsumerContext for Counting {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.rebalances.fetch_add(1, Ordering::SeqCst);
    }
}

/// cooperative-sticky: a second member takes half the partitions from the first without
/// the first giving up the rest; when it leaves, they all come back; nothing is skipped.
#[test]
fn cooperative_sticky_group_rebalances_incrementally() {
    let topic = "group-coop";
    let group = "coop-group";
    let keel = broker("group-coop", 0);
    let bootstrap = keel.bootstrap();
    create_topic(&bootstrap, topic);
    produce(&bootstrap, topic, 50, "a");

    let config = |c: &mut ClientConfig| {
        c.set("partition.assignment.strategy", "cooperative-sticky");
    };
    let mut ca = consumer_config(&bootstrap, group);
    config(&mut ca);
    let a: BaseConsumer = ca.create().expect("consumer a");
    a.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    pump(
        &[&a],
        &mut seen,
        Duration::from_secs(20),
        "the first member to own every partition",
        |_| assigned(&a).len() == PARTITIONS as usize,
    );
    let before = assigned(&a);

    let mut cb = consumer_config(&bootstrap, group);
    config(&mut cb);
    let b: BaseConsumer = cb.create().expect("consumer b");
    b.subscribe(&[topic]).expect("subscribe");
    produce(&bootstrap, topic, 50, "b");
    let all = all_offsets(0, 100);
    pump(
        &[&a, &b],
        &mut seen,
        Duration::from_secs(30),
        "three partitions each and every record read",
        |seen| {
            assigned(&a).len() == 3
                && assigned(&b).len() == 3
                && all.iter().all(|k| seen.contains_key(k))
        },
    );
    let (pa, pb) = (assigned(&a), assigned(&b));
    assert!(pa.iter().all(|p| before.contains(p)));
    assert!(
        pa.iter().all(|p| !pb.contains(p)),
        "{pa:?} and {pb:?} overlap"
    );
    commit(&a);
    commit(&b);

    // b leaves politely: a gets its partitions back at once (no session timeout).
    let left = Instant::now();
    drop(b);
    produce(&bootstrap, topic, 10, "c");
    let all = all_offsets(0, 110);
    pump(
        &[&a],
        &mut seen,
        Duration::from_secs(20),
        "the remaining member to own every partition again",
        |seen| {
            assigned(&a).len() == PARTITIONS as usize && all.iter().all(|k| seen.contains_key(k))
        },
    );
    assert!(
        left.elapsed() < Duration::from_secs(5),
        "a LeaveGroup should rebalance at once, took {:?}",
        left.elapsed()
    );
}

/// Static membership (KIP-345): a member with a group.instance.id that restarts within its
/// session timeout gets its partitions back without the other member rebalancing.
#[test]
fn static_member_restarts_without_a_rebalance() {
    let topic = "group-static";
    let group = "static-group";
    let keel = broker("group-static", 1500);
    let bootstrap = keel.bootstrap();
    create_topic(&bootstrap, topic);
    produce(&bootstrap, topic, 20, "a");

    let counting = Counting::default();
    let rebalances = counting.rebalances.clone();
    let a: BaseConsumer<Counting> = consumer_config(&bootstrap, group)
        .set("group.instance.id", "static-a")
        .create_with_context(counting)
        .expect("consumer a");
    let b: BaseConsumer<DefaultConsumerContext> = consumer_config(&bootstrap, group)
        .set("group.instance.id", "static-b")
        .create()
        .expect("consumer b");
    a.subscribe(&[topic]).expect("subscribe");
    b.subscribe(&[topic]).expect("subscribe");
    let mut seen_a = Seen::new();
    let mut seen_b = Seen::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = all_offsets(0, 20);
    loop {
        pump(&[&a], &mut seen_a, Duration::from_secs(1), "", |_| true);
        pump(&[&b], &mut seen_b, Duration::from_secs(1), "", |_| true);
        let (pa, pb) = (assigned(&a), assigned(&b));
        if pa.len() == 3
            && pb.len() == 3
            && first
                .iter()
                .all(|k| seen_a.contains_key(k) || seen_b.contains_key(k))
        {
            break;
        }
        assert!(Instant::now() < deadline, "static members: {pa:?} {pb:?}");
    }
    let pb = assigned(&b);
    commit(&b);
    let settled = rebalances.load(Ordering::SeqCst);

    // b goes away without leaving (static members do not send LeaveGroup on close) and comes
    // back with the same instance id within its session timeout.
    drop(b);
    std::thread::sleep(Duration::from_millis(500));
    let b: BaseConsumer<DefaultConsumerContext> = consumer_config(&bootstrap, group)
        .set("group.instance.id", "static-b")
        .create()
        .expect("consumer b again");
    b.subscribe(&[topic]).expect("subscribe");
    produce(&bootstrap, topic, 10, "b");
    let second = all_offsets(20, 30);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        pump(&[&a], &mut seen_a, Duration::from_secs(1), "", |_| true);
        pump(&[&b], &mut seen_b, Duration::from_secs(1), "", |_| true);
        if assigned(&b) == pb
            && second
                .iter()
                .all(|k| seen_a.contains_key(k) || seen_b.contains_key(k))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "static member back: {:?}, was {pb:?}",
            assigned(&b)
        );
    }
    assert_eq!(
        rebalances.load(Ordering::SeqCst),
        settled,
        "the other static member saw a rebalance"
    );
    // b resumed from its commit: nothing of its partitions before offset 20 is read twice.
    let again: Vec<_> = seen_b.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.is_empty(),
        "re-read after a static restart: {again:?}"
    );
}

/// The coordinator stores a group's membership in `__consumer_offsets` (as Kafka does), so a
/// broker restart costs a stable group no rebalance: librdkafka finds the coordinator again
/// and heartbeats on with its member id and generation, keeping its partitions.
#[test]
fn a_broker_restart_does_not_rebalance_a_stable_group() {
    let topic = "group-restart";
    let group = "restart-group";
    let mut keel = broker("group-restart", 0);
    let bootstrap = keel.bootstrap();
    create_topic(&bootstrap, topic);
    produce(&bootstrap, topic, 10, "a");

    let counting_a = Counting::default();
    let counting_b = Counting::default();
    let (rebalances_a, rebalances_b) =
        (counting_a.rebalances.clone(), counting_b.rebalances.clone());
    let a: BaseConsumer<Counting> = consumer_config(&bootstrap, group)
        .create_with_context(counting_a)
        .expect("consumer a");
    let b: BaseConsumer<Counting> = consumer_config(&bootstrap, group)
        .create_with_context(counting_b)
        .expect("consumer b");
    a.subscribe(&[topic]).expect("subscribe");
    b.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    let first = all_offsets(0, 10);
    pump(
        &[&a, &b],
        &mut seen,
        Duration::from_secs(30),
        "two members with three partitions each and every record",
        |seen| {
            assigned(&a).len() == 3
                && assigned(&b).len() == 3
                && first.iter().all(|k| seen.contains_key(k))
        },
    );
    let (pa, pb) = (assigned(&a), assigned(&b));
    let settled = (
        rebalances_a.load(Ordering::SeqCst),
        rebalances_b.load(Ordering::SeqCst),
    );

    assert!(keel.stop(), "keel exits cleanly; log: {}", keel.log());
    keel.restart();
    produce(&bootstrap, topic, 10, "b");
    // Errors while the broker was away are expected; records after it are what counts.
    // Then a few heartbeat intervals more, so that both members have heard from the
    // restarted coordinator (the records alone can arrive before the first heartbeat).
    let second = all_offsets(10, 20);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    while quiet_until.is_none_or(|t| Instant::now() < t) {
        if quiet_until.is_none() && second.iter().all(|k| seen.contains_key(k)) {
            quiet_until = Some(Instant::now() + Duration::from_secs(3));
        }
        for c in [&a, &b] {
            while let Some(m) = c.poll(Duration::from_millis(10)) {
                if let Ok(m) = m {
                    *seen.entry((m.partition(), m.offset())).or_default() += 1;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "records after the restart: {} of {}; assignments {:?} {:?}",
            second.iter().filter(|k| seen.contains_key(k)).count(),
            second.len(),
            assigned(&a),
            assigned(&b)
        );
    }
    assert_eq!((assigned(&a), assigned(&b)), (pa, pb));
    assert_eq!(
        (
            rebalances_a.load(Ordering::SeqCst),
            rebalances_b.load(Ordering::SeqCst)
        ),
        settled,
        "a member saw a rebalance across the broker restart"
    );
    let again: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(again.is_empty(), "re-read after the restart: {again:?}");
}
