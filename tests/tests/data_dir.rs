//! Start-up refusals, with real `keel serve` processes (issue 11, items 1, 2 and 4):
//! - one broker per data directory: a second one on the same `--data-dir` refuses to start,
//!   naming the directory and the holder's pid, and the first one's acknowledged records
//!   are intact across a restart;
//! - a data directory that cannot be written (a read-only filesystem, a file where the
//!   directory should be) fails at start-up with one line;
//! - `--listen 0.0.0.0:PORT` without `--advertise` refuses to start; with it, clients are
//!   told the advertised address;
//! - a listener that cannot bind is named (Kafka or metrics), and the error printed once.

use keel_tests::{free_port, keel_bin, require, run_with_timeout, temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

/// `keel serve` with these arguments, which must exit by itself: its output.
fn serve_expecting_exit(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(keel_bin()).arg("serve").args(args),
        b"",
        TIMEOUT,
    )
}

/// The one line a refused start printed, checking that it is one line.
fn one_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "keel serve should have refused to start"
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    lines[0].to_string()
}

/// Produces `values` to partition 0 of `topic` with acks=all; the offsets they were given.
fn produce(bootstrap: &str, topic: &str, values: &[String]) -> Vec<i64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    rt.block_on(async {
        let mut offsets = Vec::new();
        for v in values {
            let record = FutureRecord::<(), _>::to(topic).partition(0).payload(v);
            let delivery = producer
                .send(record, Duration::from_secs(20))
                .await
                .unwrap_or_else(|(e, _)| panic!("produce {v}: {e}"));
            offsets.push(delivery.offset);
        }
        offsets
    })
}

/// Every record of partition 0 of `topic`, as (offset, value), reading until `count`.
fn consume(bootstrap: &str, topic: &str, count: usize) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "data-dir-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            got.push((m.offset(), value));
        }
    }
    got
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn a_second_broker_on_one_data_directory_refuses_to_start_and_nothing_is_lost() {
    let dir = temp_data_dir("locked");
    let mut first = Keel::start(&dir, &[]);
    let holder = first.pid().expect("running");
    let bootstrap = first.bootstrap();
    let before = produce(&bootstrap, "locked", &values("a", 0..10));
    assert_eq!(before, (0..10).collect::<Vec<i64>>());

    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let out = serve_expecting_exit(&["--data-dir", dir.to_str().unwrap(), "--listen", &listen]);
    let line = one_line(&out);
    assert!(
        line.contains(&dir.display().to_string()) && line.contains(&format!("pid {holder}")),
        "the refusal names the directory and the holder: {line}"
    );
    assert!(line.contains("in use by another keel process"), "{line}");
    assert!(
        TcpStream::connect_timeout(&listen.parse().unwrap(), Duration::from_millis(200)).is_err(),
        "the refused broker never listened"
    );

    // The first broker carries on; what it acknowledged survives a kill -9 and a restart,
    // and the lock dies with its holder.
    let after = produce(&bootstrap, "locked", &values("a", 10..20));
    assert_eq!(after, (10..20).collect::<Vec<i64>>());
    first.kill9();
    first.restart();
    let read = consume(&first.bootstrap(), "locked", 20);
    let expected: Vec<(i64, String)> = (0..20).map(|i| (i as i64, format!("a-{i}"))).collect();
    assert_eq!(read, expected, "log: {}", first.log());
    assert!(
        !first.log().contains("log recovery cut the log"),
        "{}",
        first.log()
    );
}

#[test]
fn a_file_where_the_data_directory_should_be_fails_at_start_up() {
    let dir = temp_data_dir("not-a-dir");
    let file = dir.join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    for data_dir in [file.clone(), file.join("below")] {
        let out = serve_expecting_exit(&[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &listen,
        ]);
        let line = one_line(&out);
        assert!(line.contains("is not a directory"), "{line}");
        assert!(line.contains(&data_dir.display().to_string()), "{line}");
    }
}

/// Mounts a small tmpfs at `at`; false where this process may not mount.
fn mount_tmpfs(at: &Path) -> bool {
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount<'a>(&'a Path);
impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_read_only_data_directory_fails_at_start_up() {
    let dir = temp_data_dir("read-only");
    let mount = dir.join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    if !require(
        "a_read_only_data_directory_fails_at_start_up",
        (!mount_tmpfs(&mount)).then(|| "permission to mount a tmpfs (root)".to_string()),
        "run the test as root",
    ) {
        return;
    }
    let _unmount = Unmount(&mount);
    // A real data directory that later turns read-only, as a filesystem does after errors.
    let data = mount.join("keel");
    let mut keel = Keel::start(&data, &[]);
    produce(&keel.bootstrap(), "ro", &values("r", 0..3));
    assert!(keel.stop());
    let remount = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(remount.success());
    let listen = format!("127.0.0.1:{}", free_port());
    let out = serve_expecting_exit(&["--data-dir", data.to_str().unwrap(), "--listen", &listen]);
    let line = one_line(&out);
    assert!(
        line.contains("is not writable") && line.contains("Read-only file system"),
        "{line}"
    );
    assert!(line.contains(&data.display().to_string()), "{line}");
}

#[test]
fn every_interface_needs_an_advertised_address() {
    let dir = temp_data_dir("advertise");
    let port = free_port();
    let any = format!("0.0.0.0:{port}");
    let out = serve_expecting_exit(&["--data-dir", dir.to_str().unwrap(), "--listen", &any]);
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let line = one_line(&out);
    assert!(line.contains("set --advertise"), "{line}");

    // With --advertise, clients are told that address (reachable here as localhost).
    let advertised = format!("localhost:{port}");
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let mut child = Command::new(keel_bin())
        .args([
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            &any,
        ])
        .args(["--advertise", &advertised])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let local = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect_timeout(&local, Duration::from_millis(200)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "keel exited early");
        assert!(Instant::now() < deadline, "keel did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(None, TIMEOUT).expect("metadata");
    let brokers: Vec<(String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.host().to_string(), b.port()))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(brokers, [("localhost".to_string(), i32::from(port))]);
}

#[test]
fn a_busy_port_is_named_by_its_listener_and_reported_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let dir = temp_data_dir("busy-kafka");
    let out = serve_expecting_exit(&["--data-dir", dir.to_str().unwrap(), "--listen", &busy_addr]);
    let line = one_line(&out);
    assert!(
        line.contains(&format!("cannot open the Kafka listener on {busy_addr}")),
        "{line}"
    );

    let dir = temp_data_dir("busy-metrics");
    let listen = format!("127.0.0.1:{}", free_port());
    let out = serve_expecting_exit(&[
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        &listen,
        "--metrics-listen",
        &busy_addr,
    ]);
    let line = one_line(&out);
    assert!(
        line.contains(&format!("cannot open the metrics listener on {busy_addr}")),
        "{line}"
    );
}
