//! kcat (Debian's `kcat` 1.7.1 on librdkafka 2.0.2, a client nobody here wrote: ApiVersions
//! v3, Metadata v4, Produce v7, Fetch v11, ListOffsets v2) against a real `keel serve`, as a
//! subprocess: metadata listing, keyed produce with headers in every codec kcat has, consume
//! from the beginning / an offset / the end / a time, with exact output checks. Also runs
//! README's kcat commands verbatim (only the bootstrap address changed).
//!
//! Without kcat this test prints a SKIPPED line, or fails when `CI` is set
//! (`apt-get install kcat`).

use keel_tests::{require, run_with_timeout, temp_data_dir, Keel};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const INSTALL: &str = "apt-get update && apt-get install -y kcat";
const TIMEOUT: Duration = Duration::from_secs(30);
const PARTITIONS: i32 = 3;
/// Lines per (codec, partition) run.
const LINES: usize = 40;

fn kcat_missing() -> Option<String> {
    match Command::new("kcat").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("a working kcat (`kcat -V` exited {})", out.status)),
        Err(e) => Some(format!("kcat ({e})")),
    }
}

/// The compression codecs this kcat's librdkafka was built with (`builtin.features`).
fn kcat_codecs() -> Vec<&'static str> {
    let out = Command::new("kcat").arg("-V").output().expect("kcat -V");
    let version = String::from_utf8_lossy(&out.stdout).to_string();
    let mut codecs = vec!["none"];
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        if version.contains(codec) {
            codecs.push(codec);
        } else {
            eprintln!("note: this kcat has no {codec}: {version}");
        }
    }
    codecs
}

/// Runs kcat with `args` and `stdin`; asserts it exits 0 and returns its stdout.
fn kcat(keel: &Keel, args: &[&str], stdin: &str) -> String {
    let out = run_with_timeout(
        Command::new("kcat")
            .args(["-b", &keel.bootstrap()])
            .args(args),
        stdin.as_bytes(),
        TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "kcat {args:?} exited {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- keel log\n{}",
        out.status,
        keel.log()
    );
    stdout
}

/// `kcat -L` output without its first line, which names whichever connection answered.
fn metadata_body(listing: &str) -> String {
    let mut lines = listing.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with("Metadata for "), "{listing}");
    lines.map(|l| format!("{l}\n")).collect()
}

/// The records of run (codec, partition): (key, value).
fn lines_for(codec: &str, partition: i32) -> Vec<(String, String)> {
    (0..LINES)
        .map(|i| {
            (
                format!("{codec}-p{partition}-k{}", i % 7),
                format!("value {i} of {codec} = {}", "z".repeat(i % 25)),
            )
        })
        .collect()
}

/// Parses `%p %o %k %s` lines into partition -> [(offset, "key value")] in output order.
fn by_partition(output: &str) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for line in output.lines() {
        let mut parts = line.splitn(3, ' ');
        let p: i32 = parts.next().unwrap().parse().expect(line);
        let o: i64 = parts.next().unwrap().parse().expect(line);
        out.entry(p)
            .or_default()
            .push((o, parts.next().unwrap_or_default().to_string()));
    }
    out
}

#[test]
fn kcat_lists_produces_every_codec_and_consumes_exactly() {
    if !require("kcat", kcat_missing(), INSTALL) {
        return;
    }
    let dir = temp_data_dir("kcat");
    let keel = Keel::start(&dir, &["--num-partitions", &PARTITIONS.to_string()]);
    let addr = keel.bootstrap();

    // Metadata before any topic exists: the one broker, as the controller, no topics.
    let listing = kcat(&keel, &["-L"], "");
    assert_eq!(
        metadata_body(&listing),
        format!(" 1 brokers:\n  broker 1 at {addr} (controller)\n 0 topics:\n"),
        "{listing}"
    );

    // Produce: one kcat run per (codec, partition), keyed lines with two headers. The
    // topic is created on first use with --num-partitions partitions.
    let codecs = kcat_codecs();
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for codec in &codecs {
        for p in 0..PARTITIONS {
            let lines = lines_for(codec, p);
            let input: String = lines.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            let part = p.to_string();
            kcat(
                &keel,
                &[
                    "-P", "-t", "orders", "-K:", "-p", &part, "-z", codec, "-H", "codec=", "-H",
                    "run=kcat",
                ],
                &input,
            );
            expected
                .entry(p)
                .or_default()
                .extend(lines.iter().map(|(k, v)| format!("{k} {v}")));
        }
    }

    let listing = kcat(&keel, &["-L", "-t", "orders"], "");
    let mut want = format!(
        " 1 brokers:\n  broker 1 at {addr} (controller)\n 1 topics:\n  topic \"orders\" with {PARTITIONS} partitions:\n"
    );
    for p in 0..PARTITIONS {
        want += &format!("    partition {p}, leader 1, replicas: 1, isrs: 1\n");
    }
    assert_eq!(metadata_body(&listing), want, "{listing}");

    // Everything from the beginning: per partition, contiguous offsets from 0 and the lines
    // in the order they were produced (codec by codec).
    let all = kcat(
        &keel,
        &[
            "-C",
            "-t",
            "orders",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p %o %k %s\n",
        ],
        "",
    );
    let got = by_partition(&all);
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>()
    );
    for (p, records) in &got {
        let offsets: Vec<i64> = records.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..records.len() as i64).collect::<Vec<_>>(),
            "partition {p} offsets"
        );
        let lines: Vec<String> = records.iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(&lines, &expected[p], "partition {p} records");
    }

    // Headers survive every codec.
    let headers = kcat(
        &keel,
        &["-C", "-t", "orders", "-o", "beginning", "-e", "-f", "%h\n"],
        "",
    );
    let total = PARTITIONS as usize * codecs.len() * LINES;
    assert_eq!(headers.lines().count(), total);
    assert!(headers.lines().all(|h| h == "codec=,run=kcat"), "{headers}");

    // From an offset inside a compressed batch: exactly the records at 45, 46, 47.
    let mid = kcat(
        &keel,
        &[
            "-C",
            "-t",
            "orders",
            "-p",
            "1",
            "-o",
            "45",
            "-c",
            "3",
            "-e",
            "-f",
            "%p %o %k %s\n",
        ],
        "",
    );
    let want: String = (45..48)
        .map(|o| format!("1 {o} {}\n", expected[&1][o]))
        .collect();
    assert_eq!(mid, want);

    // Relative to the end (ListOffsets latest): the last two records of partition 2.
    let n = expected[&2].len();
    let tail = kcat(
        &keel,
        &[
            "-C",
            "-t",
            "orders",
            "-p",
            "2",
            "-o",
            "-2",
            "-e",
            "-f",
            "%p %o %k %s\n",
        ],
        "",
    );
    let want: String = (n - 2..n)
        .map(|o| format!("2 {o} {}\n", expected[&2][o]))
        .collect();
    assert_eq!(tail, want);

    // By time (ListOffsets by timestamp): the first offset whose timestamp is >= T.
    let stamped = kcat(
        &keel,
        &[
            "-C",
            "-t",
            "orders",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o %T\n",
        ],
        "",
    );
    let stamps: Vec<(i64, i64)> = stamped
        .lines()
        .map(|l| {
            let (o, t) = l.split_once(' ').expect(l);
            (o.parse().expect(l), t.parse().expect(l))
        })
        .collect();
    let probe = stamps[stamps.len() / 2].1;
    let first = stamps.iter().find(|(_, t)| *t >= probe).unwrap().0;
    let found = kcat(&keel, &["-Q", "-t", &format!("orders:0:{probe}")], "");
    assert_eq!(found.trim(), format!("orders [0] offset {first}"));
    let from_time = kcat(
        &keel,
        &[
            "-C",
            "-t",
            "orders",
            "-p",
            "0",
            "-o",
            &format!("s@{probe}"),
            "-c",
            "1",
            "-e",
            "-f",
            "%o\n",
        ],
        "",
    );
    assert_eq!(from_time.trim(), first.to_string());
    let future = stamps.last().unwrap().1 + 3_600_000;
    let found = kcat(&keel, &["-Q", "-t", &format!("orders:0:{future}")], "");
    assert_eq!(found.trim(), "orders [0] offset -1", "no record that late");

    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}

/// README's "Producing and consuming" kcat commands, run as written with only the bootstrap
/// address changed, against a default broker (auto-created topics have one partition).
#[test]
fn readme_kcat_commands_work_verbatim() {
    if !require("kcat (README)", kcat_missing(), INSTALL) {
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("## Producing and consuming")
        .nth(1)
        .expect("README has a Producing and consuming section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block with the kcat commands");
    let commands: Vec<&str> = block
        .lines()
        .filter(|l| l.contains("kcat ") && !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 3, "produce, consume, list: {block}");
    assert!(
        commands.iter().all(|c| c.contains("127.0.0.1:9092")),
        "README commands name 127.0.0.1:9092: {commands:?}"
    );

    let dir = temp_data_dir("kcat-readme");
    let keel = Keel::start(&dir, &[]);
    let mut outputs = Vec::new();
    for command in &commands {
        let command = command.replace("127.0.0.1:9092", &keel.bootstrap());
        let out = run_with_timeout(Command::new("sh").args(["-c", &command]), b"", TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "`{command}` exited {}\n--- stdout\n{stdout}\n--- stderr\n{}\n--- keel log\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            keel.log()
        );
        outputs.push(stdout);
    }
    assert_eq!(outputs[0], "", "produce prints nothing");
    // consume: '%p/%o %k=%s (%T)\n'
    let consumed: Vec<&str> = outputs[1].lines().collect();
    assert_eq!(consumed.len(), 2, "{}", outputs[1]);
    for (line, want) in consumed
        .iter()
        .zip(["0/0 user1=hello (", "0/1 user2=world ("])
    {
        assert!(
            line.starts_with(want),
            "{line:?} should start with {want:?}"
        );
        let ts: i64 = line[want.len()..line.len() - 1].parse().expect(line);
        assert!(ts > 1_600_000_000_000, "a CreateTime in ms: {line}");
    }
    assert_eq!(
        metadata_body(&outputs[2]),
        format!(
            " 1 brokers:\n  broker 1 at {} (controller)\n 1 topics:\n  topic \"greetings\" with 1 partitions:\n    partition 0, leader 1, replicas: 1, isrs: 1\n",
            keel.bootstrap()
        )
    );
    drop(keel);
    let _ = std::fs::remove_dir_all(&dir);
}
