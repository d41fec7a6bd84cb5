//! Running out of disk, with a real `keel serve` on a small tmpfs (issue 15, items 1, 2, 3
//! and 5): a filler file takes the filesystem below the free-space floor; librdkafka's
//! producer is told so by the broker's refusal (not by its own timeout after silent
//! retries); `/health` and the metrics say so; deleting the filler is enough for writes to
//! resume, with no restart; and every acknowledged record is readable, before and after a
//! restart. The second test turns the floor off so the disk really fills (ENOSPC) and the
//! log must reopen by itself once space is freed.
//!
//! Mounting needs root: elsewhere these tests print SKIPPED (and fail in CI, which runs as
//! root).

use keel_tests::{free_port, require, temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

/// A tmpfs of `size_mib` at `at`, unmounted on drop; `None` where this process may not mount.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size_mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (df).
fn available(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the available bytes")
}

/// Writes zeros to `file` until the filesystem has about `leave` bytes available (or is
/// full, for `leave` 0).
fn fill_leaving(file: &Path, leave: u64) {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let chunk = vec![0u8; MIB as usize];
    'fill: loop {
        let room = available(file.parent().unwrap());
        if room <= leave {
            break;
        }
        let mut left = room - leave;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if out.write_all(&chunk[..n]).is_err() {
                break 'fill; // ENOSPC: as full as it gets
            }
            left -= n as u64;
        }
    }
    let _ = out.sync_all();
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: keel\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The value of an unlabelled gauge in a scrape.
fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Polls `/health` until its body contains `needle`.
fn wait_for_health(metrics: SocketAddr, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let health = http_get(metrics, "/health");
        if health.contains(needle) {
            return health;
        }
        assert!(
            Instant::now() < deadline,
            "/health never said {needle:?}: {health}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        // Long on purpose: an error that arrives is the broker's, not this timeout.
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Sends `value` to partition 0 of `topic`: its offset, or the error the application saw.
fn send(
    rt: &tokio::runtime::Runtime,
    p: &FutureProducer,
    topic: &str,
    value: &str,
) -> Result<i64, KafkaError> {
    rt.block_on(async {
        let record = FutureRecord::<(), _>::to(topic).partition(0).payload(value);
        p.send(record, Duration::from_secs(60))
            .await
            .map(|d| d.offset)
            .map_err(|(e, _)| e)
    })
}

/// Every record of partition 0 of `topic` up to its high watermark, as (offset, value).
fn consume_all(bootstrap: &str, topic: &str) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "disk-full-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let deadline = Instant::now() + TIMEOUT;
    let mut got: Vec<(i64, String)> = Vec::new();
    while got.last().map_or(0, |(o, _)| o + 1) < high && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            got.push((m.offset(), value));
        }
    }
    got
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The code a write refused for lack of space gets (core/src/broker/disk.rs NO_SPACE).
const REFUSED: RDKafkaErrorCode = RDKafkaErrorCode::PolicyViolation;

/// Sends until the broker refuses, for at most `TIMEOUT`: the acknowledged (offset, value)s
/// and the refusal.
fn send_until_refused(
    rt: &tokio::runtime::Runtime,
    p: &FutureProducer,
    topic: &str,
    prefix: &str,
) -> (Vec<(i64, String)>, KafkaError, Duration) {
    let mut acked = Vec::new();
    let payload = "x".repeat(4000);
    let deadline = Instant::now() + TIMEOUT;
    for i in 0.. {
        assert!(Instant::now() < deadline, "writes were never refused");
        let value = format!("{prefix}-{i}-{payload}");
        let started = Instant::now();
        match send(rt, p, topic, &value) {
            Ok(offset) => acked.push((offset, value)),
            Err(e) => return (acked, e, started.elapsed()),
        }
    }
    unreachable!()
}

fn refused_code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::MessageProduction(code) => Some(*code),
        _ => None,
    }
}

/// A broker on a fresh tmpfs of `size_mib`, with metrics and 1 MiB segments plus `extra`:
/// the mount (held until dropped), its path, the broker and its metrics address; `None`
/// (after `require`'s SKIPPED line, or its failure in CI) where this process may not mount.
fn broker_on_tmpfs(
    test: &str,
    size_mib: u64,
    extra: &[&str],
) -> Option<(Tmpfs, PathBuf, Keel, SocketAddr)> {
    let mnt = temp_data_dir(test).join("mnt");
    let Some(fs) = Tmpfs::mount(&mnt, size_mib) else {
        require(
            test,
            Some("permission to mount a tmpfs (root)".into()),
            "run the test as root",
        );
        return None;
    };
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics_arg = metrics.to_string();
    let mut args = vec![
        "--metrics-listen",
        &metrics_arg,
        "--segment-bytes",
        "1048576",
    ];
    args.extend_from_slice(extra);
    let keel = Keel::start(&mnt.join("keel"), &args);
    Some((fs, mnt, keel, metrics))
}

#[test]
fn below_the_floor_writes_are_refused_and_resume_when_space_is_freed() {
    let Some((_fs, mnt, mut keel, metrics)) = broker_on_tmpfs(
        "below_the_floor_writes_are_refused_and_resume_when_space_is_freed",
        64,
        &[],
    ) else {
        return;
    };
    // The default floor: 5 % of 64 MiB.
    let scrape = http_get(metrics, "/metrics");
    let floor = gauge(&scrape, "keel_disk_min_free_bytes").expect("the floor is exported");
    assert_eq!(floor as u64, 64 * MIB / 20, "{scrape}");
    assert_eq!(gauge(&scrape, "keel_disk_low_space"), Some(0.0));

    let rt = runtime();
    let p = producer(&keel.bootstrap());
    let mut acked = Vec::new();
    for i in 0..50 {
        let value = format!("before-{i}");
        acked.push((send(&rt, &p, "full", &value).expect("room to write"), value));
    }

    // Another program takes the disk to 1 MiB above the floor; Keel's own writes cross it.
    let filler = mnt.join("filler");
    fill_leaving(&filler, floor as u64 + MIB);
    let (more, refusal, took) = send_until_refused(&rt, &p, "full", "filling");
    acked.extend(more);
    assert_eq!(refused_code(&refusal), Some(REFUSED), "{refusal}");
    eprintln!("disk_full: librdkafka saw {refusal} after {took:?}");
    let health = wait_for_health(metrics, "low-space");
    assert!(health.contains("below the free-space floor"), "{health}");
    let scrape = http_get(metrics, "/metrics");
    assert_eq!(gauge(&scrape, "keel_disk_low_space"), Some(1.0), "{scrape}");
    assert!(gauge(&scrape, "keel_disk_free_bytes").unwrap() < floor);
    assert_eq!(
        gauge(&scrape, "keel_disk_total_bytes").unwrap() as u64,
        64 * MIB
    );
    // Refused again and again, but the log says it once.
    for i in 0..5 {
        let e = send(&rt, &p, "full", &format!("refused-{i}")).unwrap_err();
        assert_eq!(refused_code(&e), Some(REFUSED), "{e}");
    }
    let entered = keel.log().matches("below the free-space floor").count();
    assert_eq!(entered, 1, "{}", keel.log());
    // Reads keep working below the floor.
    assert_eq!(consume_all(&keel.bootstrap(), "full"), acked);

    // Space is freed: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    wait_for_health(metrics, "ok");
    assert!(keel.log().contains("writes resume"), "{}", keel.log());
    for i in 0..20 {
        let value = format!("after-{i}");
        acked.push((send(&rt, &p, "full", &value).expect("writes resume"), value));
    }
    assert_eq!(consume_all(&keel.bootstrap(), "full"), acked);

    // And nothing acknowledged is lost across a kill -9; nothing refused shows up.
    drop(p);
    keel.kill9();
    keel.restart();
    let after_restart = consume_all(&keel.bootstrap(), "full");
    assert_eq!(after_restart, acked);
}

#[test]
fn a_disk_that_really_fills_stops_the_log_until_space_is_freed_then_it_reopens() {
    // No floor: the disk runs out for real.
    let Some((_fs, mnt, mut keel, _metrics)) = broker_on_tmpfs(
        "a_disk_that_really_fills_stops_the_log_until_space_is_freed_then_it_reopens",
        32,
        &["--min-free-bytes", "0"],
    ) else {
        return;
    };
    let rt = runtime();
    let p = producer(&keel.bootstrap());
    let mut acked = Vec::new();
    for i in 0..20 {
        let value = format!("before-{i}");
        acked.push((
            send(&rt, &p, "enospc", &value).expect("room to write"),
            value,
        ));
    }
    let filler = mnt.join("filler");
    fill_leaving(&filler, 256 * 1024);
    let (more, refusal, took) = send_until_refused(&rt, &p, "enospc", "filling");
    acked.extend(more);
    eprintln!("disk_full: on ENOSPC librdkafka saw {refusal} after {took:?}");
    assert_eq!(refused_code(&refusal), Some(REFUSED), "{refusal}");
    assert!(keel.log().contains("the disk is full"), "{}", keel.log());
    assert!(
        !keel.log().contains("fsync failed"),
        "ENOSPC is not fsyncgate: {}",
        keel.log()
    );

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !keel.log().contains("reopened and takes writes again") {
        assert!(Instant::now() < deadline, "never reopened: {}", keel.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..20 {
        let value = format!("after-{i}");
        acked.push((
            send(&rt, &p, "enospc", &value).expect("writes resume"),
            value,
        ));
    }
    assert_eq!(consume_all(&keel.bootstrap(), "enospc"), acked);
    drop(p);
    keel.kill9();
    keel.restart();
    assert_eq!(consume_all(&keel.bootstrap(), "enospc"), acked);
}

/// What every tested client shows when the broker is below its floor. No mount needed: a
/// floor above the free space puts any broker there. The topic is made before the floor is
/// raised, since creating it is refused too.
#[test]
fn every_client_is_told_promptly_below_the_floor() {
    use keel_tests::{missing_python_modules, run_python_script, PYTHON_INSTALL};
    let dir = temp_data_dir("floor-clients");
    let mut keel = Keel::start(&dir, &[]);
    let rt = runtime();
    let p = producer(&keel.bootstrap());
    send(&rt, &p, "floor", "before").expect("room to write");
    drop(p);
    assert!(keel.stop());
    // A floor half again the free space: below it, but within the reserve that small writes
    // (offset commits, an auto-created topic's metadata) may still use.
    let floor = available(&dir) / 2 * 3;
    let keel = Keel::start(&dir, &["--min-free-bytes", &floor.to_string()]);

    // librdkafka, through rdkafka: produce and CreateTopics.
    let p = producer(&keel.bootstrap());
    let e = send(&rt, &p, "floor", "refused").unwrap_err();
    assert_eq!(refused_code(&e), Some(REFUSED), "{e}");
    eprintln!("disk_full: rdkafka produce: {e}");
    // To a topic that does not exist yet: auto-created from the floor's reserve, so the
    // producer meets the same prompt refusal rather than a Metadata error it would ignore.
    let e = send(&rt, &p, "floor-new", "refused").unwrap_err();
    assert_eq!(refused_code(&e), Some(REFUSED), "{e}");
    let created = rt.block_on(async {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", keel.bootstrap())
            .create()
            .expect("admin");
        admin
            .create_topics(
                &[NewTopic::new("new", 1, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("CreateTopics answered")
    });
    let refused = format!("{:?}", created[0]);
    assert!(
        refused.contains("PolicyViolation") || refused.contains("free-space floor"),
        "{refused}"
    );
    eprintln!("disk_full: rdkafka CreateTopics: {refused}");

    let modules = ["kafka", "aiokafka", "confluent_kafka"];
    if require(
        "every_client_is_told_promptly_below_the_floor (Python)",
        missing_python_modules(&modules),
        PYTHON_INSTALL,
    ) {
        run_python_script(
            &keel,
            "disk_floor.py",
            &["--topic", "floor"],
            Duration::from_secs(120),
        );
    }
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let node_ready = Command::new("node").arg("--version").output().is_ok()
        && js.join("node_modules/kafkajs").exists();
    if require(
        "every_client_is_told_promptly_below_the_floor (KafkaJS)",
        (!node_ready).then(|| "node and kafkajs (npm ci --prefix tests/js)".to_string()),
        "apt-get install -y nodejs npm && npm ci --prefix tests/js",
    ) {
        let out = keel_tests::run_with_timeout(
            Command::new("node")
                .arg(js.join("disk_floor.js"))
                .arg(keel.bootstrap())
                .arg("floor"),
            b"",
            Duration::from_secs(90),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "disk_floor.js: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{stdout}");
    }
}

/// Offset commits are small and keep a reserve below the floor: a consumer group commits and
/// reads its commit back while produce is refused. Below the reserve too, the commit is
/// refused at once, even for the very first group (whose `__consumer_offsets` does not exist
/// yet), not left waiting for a coordinator until it times out.
#[test]
fn offset_commits_use_the_reserve_below_the_floor_and_are_refused_promptly_below_it() {
    let dir = temp_data_dir("floor-commits");
    let mut keel = Keel::start(&dir, &[]);
    let rt = runtime();
    let p = producer(&keel.bootstrap());
    for i in 0..3 {
        send(&rt, &p, "commits", &format!("r{i}")).expect("room to write");
    }
    drop(p);
    assert!(keel.stop());
    let consumer = |keel: &Keel| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", keel.bootstrap())
            .set("group.id", "below-floor")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer")
    };
    let commit = |c: &BaseConsumer, offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("commits", 0, Offset::Offset(offset))
            .unwrap();
        c.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
    };

    // A floor so far above the free space that its reserve is used up too.
    let free = available(&dir);
    let mut keel = Keel::start(&dir, &["--min-free-bytes", &(free * 3).to_string()]);
    let c = consumer(&keel);
    let started = Instant::now();
    let refused = commit(&c, 1).expect_err("a commit below the reserve");
    let took = started.elapsed();
    assert!(
        matches!(
            refused,
            KafkaError::ConsumerCommit(RDKafkaErrorCode::PolicyViolation)
        ),
        "{refused}"
    );
    eprintln!("disk_full: rdkafka commit below the reserve: {refused} after {took:?}");
    drop(c);
    assert!(keel.stop());

    // A floor half again the free space: below it, within the reserve.
    let floor = available(&dir) / 2 * 3;
    let keel = Keel::start(&dir, &["--min-free-bytes", &floor.to_string()]);
    let c = consumer(&keel);
    commit(&c, 2).expect("an offset commit within the reserve");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("commits", 0);
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let offset = committed.find_partition("commits", 0).map(|e| e.offset());
    assert_eq!(offset, Some(Offset::Offset(2)), "{committed:?}");
}

/// The Python clients' idempotent producers write again once space is freed, with no
/// restart of the producer or the broker (tests/python/disk_resume.py).
#[test]
fn python_producers_write_again_once_space_is_freed() {
    use keel_tests::{missing_python_modules, run_python_script, PYTHON_INSTALL};
    if !require(
        "python_producers_write_again_once_space_is_freed",
        missing_python_modules(&["kafka", "aiokafka"]),
        PYTHON_INSTALL,
    ) {
        return;
    }
    let Some((_fs, mnt, keel, metrics)) =
        broker_on_tmpfs("python_producers_write_again_once_space_is_freed", 64, &[])
    else {
        return;
    };
    let scrape = http_get(metrics, "/metrics");
    let floor = gauge(&scrape, "keel_disk_min_free_bytes").expect("the floor is exported") as u64;
    let rt = runtime();
    let p = producer(&keel.bootstrap());
    send(&rt, &p, "resume", "first").expect("room to write");
    drop(p);
    let filler = mnt.join("filler");
    run_python_script(
        &keel,
        "disk_resume.py",
        &[
            "--topic",
            "resume",
            "--filler",
            filler.to_str().unwrap(),
            "--leave",
            &(floor + MIB).to_string(),
        ],
        Duration::from_secs(180),
    );
}
