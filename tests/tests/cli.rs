//! The admin CLI (`keel topic|produce|consume|group`) as a user runs it: the built `keel`
//! binary as a subprocess against a real `keel serve`, every command, with exact checks of
//! what it prints, and the failure contract (one line on stderr, naming the Kafka error,
//! non-zero exit). The interop test crosses it with kcat (librdkafka) in both directions for
//! every compression codec: keel's compressed batches must read in librdkafka, and
//! librdkafka's in keel.

use keel_tests::{keel_bin, require, run_with_timeout, temp_data_dir, Keel};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(60);

fn start(name: &str) -> Keel {
    Keel::start(&temp_data_dir(name), &[])
}

/// Runs `keel ARGS --bootstrap-server <keel>` with `stdin`.
fn run(keel: &Keel, args: &[&str], stdin: &str) -> Output {
    run_at(&keel.bootstrap(), args, stdin)
}

fn run_at(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    run_with_timeout(
        Command::new(keel_bin())
            .args(args)
            .args(["--bootstrap-server", bootstrap])
            .env_remove("RUST_LOG"),
        stdin.as_bytes(),
        TIMEOUT,
    )
}

/// Runs a command that must succeed; returns (stdout, stderr).
fn ok(keel: &Keel, args: &[&str], stdin: &str) -> (String, String) {
    let out = run(keel, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "keel {args:?} exited {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- broker log\n{}",
        out.status,
        keel.log()
    );
    (stdout, stderr)
}

/// Asserts a failed run: non-zero exit `status`, nothing on stdout, exactly one line on
/// stderr starting with `keel <command>: `. Returns that line.
fn failed(out: Output, command: &str, status: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(status),
        "keel {command}: expected exit {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert_eq!(stdout, "", "keel {command} printed to stdout on failure");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "keel {command}: not one line: {stderr:?}");
    let prefix = format!("keel {command}: ");
    assert!(lines[0].starts_with(&prefix), "{stderr:?}");
    lines[0].to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// The `Partition:` lines of `keel topic describe` as partition → (log start, high watermark).
fn describe_partitions(describe: &str) -> BTreeMap<i32, (i64, i64)> {
    let mut out = BTreeMap::new();
    for line in describe
        .lines()
        .filter(|l| l.trim_start().starts_with("Partition:"))
    {
        let fields: BTreeMap<&str, &str> = line
            .trim()
            .split('\t')
            .filter_map(|f| f.split_once(": "))
            .collect();
        out.insert(
            fields["Partition"].parse().unwrap(),
            (
                fields["LogStartOffset"].parse().unwrap(),
                fields["HighWatermark"].parse().unwrap(),
            ),
        );
    }
    out
}

/// partition → `Size` (bytes on its leader) of `keel topic describe`'s partition lines.
fn describe_sizes(describe: &str) -> BTreeMap<i32, u64> {
    describe
        .lines()
        .filter(|l| l.trim_start().starts_with("Partition:"))
        .map(|line| {
            let fields: BTreeMap<&str, &str> = line
                .trim()
                .split('\t')
                .filter_map(|f| f.split_once(": "))
                .collect();
            (
                fields["Partition"].parse().unwrap(),
                fields["Size"].parse().unwrap(),
            )
        })
        .collect()
}

/// The configs listed under `Configs:` in `keel topic describe`.
fn describe_configs(describe: &str) -> BTreeMap<String, String> {
    describe
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Configs:"))
        .skip(1)
        .filter_map(|l| l.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The partition rows of `keel group describe`: (topic, partition) → (current, end, lag).
fn group_rows(describe: &str) -> BTreeMap<(String, i32), (String, String, String)> {
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in describe.lines() {
        if line.starts_with("GROUP\t") {
            in_table = true;
            continue;
        }
        if in_table && line.trim().is_empty() {
            break;
        }
        if in_table {
            let f: Vec<&str> = line.split('\t').collect();
            rows.insert(
                (f[1].to_string(), f[2].parse().unwrap()),
                (f[3].to_string(), f[4].to_string(), f[5].to_string()),
            );
        }
    }
    rows
}

#[test]
fn topic_create_list_describe_alter_delete() {
    let keel = start("cli-topics");
    let (out, _) = ok(
        &keel,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "cleanup.policy=compact",
        ],
        "",
    );
    assert_eq!(out, "Created topic orders.\n");
    ok(&keel, &["topic", "create", "other"], "");

    let line = failed(
        run(
            &keel,
            &["topic", "create", "orders", "--partitions", "3"],
            "",
        ),
        "topic create",
        1,
    );
    assert!(
        line.starts_with("keel topic create: orders: TOPIC_ALREADY_EXISTS"),
        "{line}"
    );
    ok(&keel, &["topic", "create", "orders", "--if-not-exists"], "");

    let (list, _) = ok(&keel, &["topic", "list"], "");
    let names: Vec<&str> = list.lines().collect();
    assert!(
        names.contains(&"orders") && names.contains(&"other"),
        "{list}"
    );

    let (describe, _) = ok(&keel, &["topic", "describe", "orders"], "");
    assert!(describe.starts_with("Topic: orders\t"), "{describe}");
    assert!(describe.contains("\tPartitionCount: 3\t"), "{describe}");
    assert_eq!(
        describe_partitions(&describe),
        (0..3).map(|p| (p, (0, 0))).collect(),
        "{describe}"
    );
    assert_eq!(
        describe_sizes(&describe),
        (0..3).map(|p| (p, 0)).collect(),
        "{describe}"
    );
    assert_eq!(
        describe_configs(&describe),
        BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        "{describe}"
    );

    let (out, _) = ok(
        &keel,
        &[
            "topic",
            "alter",
            "orders",
            "--config",
            "retention.ms=123456",
            "--partitions",
            "5",
        ],
        "",
    );
    assert!(out.contains("now has 5 partitions (was 3)"), "{out}");
    let (describe, _) = ok(&keel, &["topic", "describe", "orders"], "");
    assert_eq!(describe_partitions(&describe).len(), 5, "{describe}");
    assert_eq!(
        describe_configs(&describe)
            .get("retention.ms")
            .map(String::as_str),
        Some("123456"),
        "{describe}"
    );
    ok(
        &keel,
        &[
            "topic",
            "alter",
            "orders",
            "--delete-config",
            "retention.ms",
        ],
        "",
    );
    let (describe, _) = ok(&keel, &["topic", "describe", "orders"], "");
    assert_eq!(
        describe_configs(&describe),
        BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]),
        "{describe}"
    );
    let (all, _) = ok(&keel, &["topic", "describe", "orders", "--all-configs"], "");
    assert!(all.contains("retention.ms="), "{all}");

    let (out, _) = ok(&keel, &["topic", "delete", "orders"], "");
    assert_eq!(out, "Deleted topic orders.\n");
    let (list, _) = ok(&keel, &["topic", "list"], "");
    assert!(!list.lines().any(|l| l == "orders"), "{list}");

    for (args, command) in [
        (vec!["topic", "delete", "orders"], "topic delete"),
        (vec!["topic", "describe", "orders"], "topic describe"),
        (
            vec!["topic", "alter", "orders", "--partitions", "9"],
            "topic alter",
        ),
    ] {
        let line = failed(run(&keel, &args, ""), command, 1);
        assert!(
            line.starts_with(&format!(
                "keel {command}: orders: UNKNOWN_TOPIC_OR_PARTITION"
            )),
            "{line}"
        );
    }
    ok(&keel, &["topic", "delete", "orders", "--if-exists"], "");
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let keel = start("cli-delete-records");
    ok(&keel, &["topic", "create", "trim", "--partitions", "1"], "");
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    ok(&keel, &["produce", "--topic", "trim"], &input);
    let (out, _) = ok(
        &keel,
        &["topic", "delete-records", "trim", "--before", "4"],
        "",
    );
    assert_eq!(out, "trim\t0\tLogStartOffset: 4\n");
    let (describe, _) = ok(&keel, &["topic", "describe", "trim"], "");
    assert_eq!(
        describe_partitions(&describe),
        BTreeMap::from([(0, (4, 10))]),
        "{describe}"
    );
    // The records below the new log start are still in the segment that holds them.
    let size = describe_sizes(&describe)[&0];
    assert!(size > 10 * 2, "{describe}");
    let (out, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "trim",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
        "",
    );
    assert_eq!(out, "r4\nr5\nr6\nr7\nr8\nr9\n");
    let line = failed(
        run(
            &keel,
            &["topic", "delete-records", "trim", "--before", "50"],
            "",
        ),
        "topic delete-records",
        1,
    );
    assert!(
        line.starts_with("keel topic delete-records: trim/0: OFFSET_OUT_OF_RANGE"),
        "{line}"
    );
    let (out, _) = ok(
        &keel,
        &["topic", "delete-records", "trim", "--before", "end"],
        "",
    );
    assert_eq!(out, "trim\t0\tLogStartOffset: 10\n");
}

#[test]
fn produce_with_keys_and_headers_then_consume_in_every_format() {
    let keel = start("cli-produce");
    ok(
        &keel,
        &["topic", "create", "events", "--partitions", "3"],
        "",
    );
    let lines: Vec<String> = (0..30)
        .map(|i| format!("key{}\tvalue {i}", i % 5))
        .collect();
    let before = now_ms();
    let (_, summary) = ok(
        &keel,
        &[
            "produce",
            "--topic",
            "events",
            "--key-separator",
            "\t",
            "--header",
            "src=cli",
            "--header",
            "n=1",
        ],
        &(lines.join("\n") + "\n"),
    );
    let after = now_ms();
    assert!(
        summary.starts_with("Produced 30 record(s) to events in "),
        "{summary}"
    );

    // kcat-like: every field, checked record by record.
    let (out, summary) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "events",
            "--from-beginning",
            "--max-messages",
            "30",
            "--format",
            "kcat",
            "--kcat-format",
            "%p|%o|%T|%k|%s|%h\\n",
        ],
        "",
    );
    assert_eq!(summary, "Processed a total of 30 messages\n");
    let mut partition_of_key: BTreeMap<String, i32> = BTreeMap::new();
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut values = BTreeSet::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 6, "{line}");
        let (p, o, ts) = (f[0].parse::<i32>().unwrap(), f[1].parse().unwrap(), f[2]);
        let ts: i64 = ts.parse().unwrap();
        assert!(
            before <= ts && ts <= after,
            "timestamp {ts} not in [{before}, {after}]"
        );
        // One key, one partition (murmur2, as Kafka's partitioner).
        assert_eq!(
            *partition_of_key.entry(f[3].to_string()).or_insert(p),
            p,
            "{line}"
        );
        let i: usize = f[4].strip_prefix("value ").unwrap().parse().unwrap();
        assert_eq!(f[3], format!("key{}", i % 5), "{line}");
        assert_eq!(f[5], "src=cli,n=1", "{line}");
        offsets.entry(p).or_default().push(o);
        values.insert(i);
    }
    assert_eq!(values, (0..30).collect());
    for (p, os) in &offsets {
        let expected: Vec<i64> = (0..os.len() as i64).collect();
        assert_eq!(os, &expected, "partition {p} out of order");
    }
    // Kafka's murmur2 puts these five keys on more than one of three partitions.
    assert!(offsets.len() > 1, "{offsets:?}");

    // text: the values alone.
    let (text, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "events",
            "--from-beginning",
            "--max-messages",
            "30",
        ],
        "",
    );
    let got: BTreeSet<String> = text.lines().map(str::to_string).collect();
    let expected: BTreeSet<String> = (0..30).map(|i| format!("value {i}")).collect();
    assert_eq!(got, expected);

    // json: one object per line with every field.
    let (json, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "events",
            "--partition",
            "0",
            "--partition",
            "1",
            "--partition",
            "2",
            "--from-beginning",
            "--timeout-ms",
            "1000",
            "--format",
            "json",
        ],
        "",
    );
    assert_eq!(json.lines().count(), 30, "{json}");
    for i in 0..30 {
        let p = partition_of_key[&format!("key{}", i % 5)];
        let needle = format!(
            "\"key\":\"key{}\",\"value\":\"value {i}\",\"headers\":[{{\"key\":\"src\",\"value\":\
             \"cli\"}},{{\"key\":\"n\",\"value\":\"1\"}}]}}",
            i % 5
        );
        let line = json
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no record {i} in {json}"));
        assert!(
            line.starts_with(&format!(
                "{{\"topic\":\"events\",\"partition\":{p},\"offset\":"
            )),
            "{line}"
        );
        assert!(line.contains("\"timestampType\":\"CreateTime\""), "{line}");
    }

    // --partition pins every record; keyless lines have a null key.
    ok(
        &keel,
        &["produce", "--topic", "events", "--partition", "1"],
        "plain\n",
    );
    let (json, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "events",
            "--partition",
            "1",
            "--offset",
            &offsets.get(&1).map_or(0, Vec::len).to_string(),
            "--max-messages",
            "1",
            "--format",
            "json",
        ],
        "",
    );
    assert!(
        json.contains("\"key\":null,\"value\":\"plain\",\"headers\":[]"),
        "{json}"
    );
}

#[test]
fn compressed_batches_round_trip() {
    let keel = start("cli-compression");
    ok(
        &keel,
        &["topic", "create", "zipped", "--partitions", "1"],
        "",
    );
    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let lines: Vec<String> = (0..20)
            .map(|i| format!("{codec} record {i} {}", "x".repeat(i * 10)))
            .collect();
        ok(
            &keel,
            &["produce", "--topic", "zipped", "--compression", codec],
            &(lines.join("\n") + "\n"),
        );
        expected.extend(lines);
    }
    // Start inside the gzip batch: the records before the offset must not be printed.
    let (out, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "zipped",
            "--offset",
            "25",
            "--max-messages",
            "75",
        ],
        "",
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        expected[25..]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
}

#[test]
fn consume_from_an_offset_and_from_a_time() {
    let keel = start("cli-positions");
    ok(
        &keel,
        &["topic", "create", "timed", "--partitions", "1"],
        "",
    );
    ok(
        &keel,
        &["produce", "--topic", "timed"],
        "v0\nv1\nv2\nv3\nv4\n",
    );
    std::thread::sleep(Duration::from_millis(5));
    let middle = now_ms();
    std::thread::sleep(Duration::from_millis(5));
    ok(
        &keel,
        &["produce", "--topic", "timed"],
        "v5\nv6\nv7\nv8\nv9\n",
    );

    let (out, _) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "timed",
            "--offset",
            "3",
            "--max-messages",
            "2",
        ],
        "",
    );
    assert_eq!(out, "v3\nv4\n");

    let rfc3339 = chrono::DateTime::from_timestamp_millis(middle)
        .expect("a valid time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    for from in [middle.to_string(), rfc3339] {
        let (out, _) = ok(
            &keel,
            &[
                "consume",
                "--topic",
                "timed",
                "--from-time",
                &from,
                "--timeout-ms",
                "1000",
            ],
            "",
        );
        assert_eq!(out, "v5\nv6\nv7\nv8\nv9\n", "--from-time {from}");
    }
    // Later than every record: nothing, and a clean exit at the idle timeout.
    let (out, summary) = ok(
        &keel,
        &[
            "consume",
            "--topic",
            "timed",
            "--from-time",
            &(now_ms() + 3_600_000).to_string(),
            "--timeout-ms",
            "500",
        ],
        "",
    );
    assert_eq!(out, "");
    assert_eq!(summary, "Processed a total of 0 messages\n");
    // Without a start flag a consumer reads only what comes after it started.
    let (out, _) = ok(
        &keel,
        &["consume", "--topic", "timed", "--timeout-ms", "500"],
        "",
    );
    assert_eq!(out, "");
}

#[test]
fn group_consume_commits_describe_shows_lag_and_reset_rereads() {
    let keel = start("cli-groups");
    ok(&keel, &["topic", "create", "jobs", "--partitions", "2"], "");
    let first: Vec<String> = (0..10).map(|i| format!("k{i}:job {i}")).collect();
    ok(
        &keel,
        &["produce", "--topic", "jobs", "--key-separator", ":"],
        &(first.join("\n") + "\n"),
    );
    let group_consume = |extra: &[&str]| {
        let mut args = vec!["consume", "--topic", "jobs", "--group", "workers"];
        args.extend_from_slice(extra);
        ok(&keel, &args, "").0
    };
    let out = group_consume(&["--from-beginning", "--max-messages", "10"]);
    let got: BTreeSet<&str> = out.lines().collect();
    assert_eq!(
        got,
        (0..10)
            .map(|i| format!("job {i}"))
            .collect::<BTreeSet<_>>()
            .iter()
            .map(String::as_str)
            .collect()
    );

    let (list, _) = ok(&keel, &["group", "list"], "");
    assert!(list.lines().any(|l| l == "workers"), "{list}");
    let (list, _) = ok(&keel, &["group", "list", "--state"], "");
    assert!(
        list.lines().any(|l| l == "workers\tEmpty\tconsumer"),
        "{list}"
    );

    let (describe, _) = ok(&keel, &["group", "describe", "workers"], "");
    assert!(
        describe.starts_with("Group: workers\tState: Empty\t"),
        "{describe}"
    );
    let rows = group_rows(&describe);
    assert_eq!(rows.len(), 2, "{describe}");
    let mut total = 0;
    for ((topic, _), (current, end, lag)) in &rows {
        assert_eq!(topic, "jobs");
        assert_eq!(current, end, "{describe}");
        assert_eq!(lag, "0", "{describe}");
        total += current.parse::<i64>().unwrap();
    }
    assert_eq!(total, 10, "{describe}");

    // The group resumes from its committed offsets: only the new records.
    ok(
        &keel,
        &["produce", "--topic", "jobs", "--key-separator", ":"],
        "a:new 1\nb:new 2\nc:new 3\n",
    );
    let out = group_consume(&["--from-beginning", "--timeout-ms", "1500"]);
    let got: BTreeSet<&str> = out.lines().collect();
    assert_eq!(got, BTreeSet::from(["new 1", "new 2", "new 3"]));

    // A dry run changes nothing; --execute moves every partition back to 0.
    let (plan, _) = ok(
        &keel,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
        ],
        "",
    );
    assert_eq!(
        plan,
        "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET\nworkers\tjobs\t0\t0\nworkers\tjobs\t1\t0\n"
    );
    let (describe, _) = ok(&keel, &["group", "describe", "workers"], "");
    assert!(
        group_rows(&describe).values().all(|(_, _, lag)| lag == "0"),
        "{describe}"
    );
    ok(
        &keel,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    let (describe, _) = ok(&keel, &["group", "describe", "workers"], "");
    for (current, end, lag) in group_rows(&describe).values() {
        assert_eq!(current, "0", "{describe}");
        assert_eq!(lag, end, "{describe}");
    }
    let out = group_consume(&[
        "--max-messages",
        "13",
        "--format",
        "kcat",
        "--kcat-format",
        "%p %o\\n",
    ]);
    let mut firsts: BTreeMap<&str, &str> = BTreeMap::new();
    for line in out.lines() {
        let (p, o) = line.split_once(' ').unwrap();
        firsts.entry(p).or_insert(o);
    }
    assert_eq!(out.lines().count(), 13, "{out}");
    assert!(
        firsts.values().all(|o| *o == "0"),
        "not reread from 0: {out}"
    );

    // --to-offset is clamped to the log; --shift-by moves from the committed offset.
    let (plan, _) = ok(
        &keel,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--partition",
            "0",
            "--to-offset",
            "1",
            "--execute",
        ],
        "",
    );
    assert_eq!(
        plan,
        "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET\nworkers\tjobs\t0\t1\n"
    );
    let (plan, _) = ok(
        &keel,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--partition",
            "0",
            "--shift-by",
            "-5",
        ],
        "",
    );
    assert_eq!(
        plan,
        "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET\nworkers\tjobs\t0\t0\n"
    );
}

#[test]
fn reset_offsets_is_refused_while_the_group_has_members() {
    let keel = start("cli-active-group");
    ok(&keel, &["topic", "create", "busy", "--partitions", "2"], "");
    ok(&keel, &["produce", "--topic", "busy"], "a\nb\n");
    // A member that stays until interrupted (as by Ctrl-C).
    let member = Command::new(keel_bin())
        .args([
            "consume",
            "--topic",
            "busy",
            "--group",
            "live",
            "--from-beginning",
        ])
        .args(["--bootstrap-server", &keel.bootstrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel consume starts");
    let deadline = Instant::now() + TIMEOUT;
    let describe = loop {
        let out = run(&keel, &["group", "describe", "live"], "");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && text.contains("\tState: Stable\t") {
            break text;
        }
        assert!(Instant::now() < deadline, "the member never joined: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(describe.contains("\tMembers: 1"), "{describe}");
    assert!(
        describe.contains("MEMBER\tCLIENT-ID\tHOST\tASSIGNMENT"),
        "{describe}"
    );
    assert!(describe.contains("busy:0,1"), "{describe}");

    let line = failed(
        run(
            &keel,
            &[
                "group",
                "reset-offsets",
                "live",
                "--topic",
                "busy",
                "--to-earliest",
                "--execute",
            ],
            "",
        ),
        "group reset-offsets",
        1,
    );
    assert!(
        line.contains("can only be reset if the group is inactive"),
        "{line}"
    );

    // SIGINT: the member commits what it printed, leaves, and exits 0.
    let status = Command::new("kill")
        .args(["-INT", &member.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = member_output(member);
    assert!(out.status.success(), "{out:?}");
    let printed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(printed, BTreeSet::from(["a".to_string(), "b".to_string()]));
    let (describe, _) = ok(&keel, &["group", "describe", "live"], "");
    assert!(describe.contains("\tState: Empty\t"), "{describe}");
    assert!(
        group_rows(&describe).values().all(|(_, _, lag)| lag == "0"),
        "{describe}"
    );
}

/// Starts `keel consume --group GROUP` on `topic` in the background, printing "%p %s".
fn spawn_member(keel: &Keel, topic: &str, group: &str) -> std::process::Child {
    Command::new(keel_bin())
        .args([
            "consume",
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
        ])
        .args(["--format", "kcat", "--kcat-format", "%p %s\\n"])
        .args(["--bootstrap-server", &keel.bootstrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel consume starts")
}

/// Polls `keel group describe` until `done` holds for its output.
fn wait_for_group(keel: &Keel, group: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out = run(keel, &["group", "describe", group], "");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{group} never {what}: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_members_of_a_group_split_the_partitions() {
    let keel = start("cli-two-members");
    ok(
        &keel,
        &["topic", "create", "shared", "--partitions", "4"],
        "",
    );
    let first = spawn_member(&keel, "shared", "pair");
    wait_for_group(&keel, "pair", "became stable with one member", |d| {
        d.contains("\tState: Stable\t") && d.contains("\tMembers: 1")
    });
    let second = spawn_member(&keel, "shared", "pair");
    // The first member notices the rebalance at its next heartbeat or commit and rejoins.
    let describe = wait_for_group(&keel, "pair", "rebalanced to two members", |d| {
        d.contains("\tState: Stable\t")
            && d.contains("\tMembers: 2")
            && d.contains("shared:0,1")
            && d.contains("shared:2,3")
    });
    assert!(describe.contains("\tProtocol: range\t"), "{describe}");

    let input: String = (0..40).map(|i| format!("key{i}:v{i}\n")).collect();
    ok(
        &keel,
        &["produce", "--topic", "shared", "--key-separator", ":"],
        &input,
    );
    wait_for_group(&keel, "pair", "caught up", |d| {
        let rows = group_rows(d);
        rows.len() == 4
            && rows
                .values()
                .all(|(current, _, lag)| current != "-" && lag == "0")
    });
    let mut outputs = Vec::new();
    for member in [first, second] {
        Command::new("kill")
            .args(["-INT", &member.id().to_string()])
            .status()
            .expect("kill runs");
        let out = member_output(member);
        assert!(out.status.success(), "{out:?}");
        outputs.push(String::from_utf8_lossy(&out.stdout).to_string());
    }
    let mut values = BTreeSet::new();
    let mut partitions_of: Vec<BTreeSet<String>> = Vec::new();
    for out in &outputs {
        let mut mine = BTreeSet::new();
        for line in out.lines() {
            let (p, v) = line.split_once(' ').unwrap();
            mine.insert(p.to_string());
            assert!(
                values.insert(v.to_string()),
                "{v} printed twice: {outputs:?}"
            );
        }
        partitions_of.push(mine);
    }
    assert_eq!(values.len(), 40, "{outputs:?}");
    assert!(
        partitions_of[0].is_disjoint(&partitions_of[1]),
        "both members read one partition: {outputs:?}"
    );
}

/// Waits for a background `keel consume` (already signalled) and returns its output.
fn member_output(child: std::process::Child) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.expect("keel consume's output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("keel consume did not exit after SIGINT");
        }
    }
}

#[test]
fn errors_are_one_line_and_a_non_zero_exit() {
    let keel = start("cli-errors");
    let line = failed(
        run(
            &keel,
            &["consume", "--topic", "missing", "--from-beginning"],
            "",
        ),
        "consume",
        1,
    );
    assert!(
        line.starts_with("keel consume: missing: UNKNOWN_TOPIC_OR_PARTITION: "),
        "{line}"
    );
    let line = failed(
        run(&keel, &["group", "describe", "nobody"], ""),
        "group describe",
        1,
    );
    assert!(
        line.starts_with("keel group describe: nobody: GROUP_ID_NOT_FOUND"),
        "{line}"
    );
    ok(&keel, &["topic", "create", "t", "--partitions", "1"], "");
    let line = failed(
        run(&keel, &["consume", "--topic", "t", "--partition", "4"], ""),
        "consume",
        1,
    );
    assert!(
        line.starts_with("keel consume: t/4: UNKNOWN_TOPIC_OR_PARTITION"),
        "{line}"
    );
    let line = failed(
        run(
            &keel,
            &["produce", "--topic", "t", "--key-separator", ":"],
            "no separator\n",
        ),
        "produce",
        2,
    );
    assert!(line.contains("line 1: no key separator ':'"), "{line}");
    let line = failed(
        run(
            &keel,
            &["consume", "--topic", "t", "--from-time", "soon"],
            "",
        ),
        "consume",
        2,
    );
    assert!(line.contains("--from-time"), "{line}");

    // A broker that is not there: the address that failed is named.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dead = format!("127.0.0.1:{port}");
    for (args, command) in [
        (vec!["topic", "list"], "topic list"),
        (vec!["consume", "--topic", "t"], "consume"),
        (vec!["group", "list"], "group list"),
    ] {
        let line = failed(run_at(&dead, &args, ""), command, 1);
        assert!(
            line.contains(&format!("cannot connect to {dead}")),
            "{line}"
        );
    }
    let line = failed(
        run_with_timeout(
            Command::new(keel_bin()).args(["produce", "--topic", "t", "--bootstrap-server", &dead]),
            b"x\n",
            TIMEOUT,
        ),
        "produce",
        1,
    );
    assert!(
        line.contains(&format!("cannot connect to {dead}")),
        "{line}"
    );
    failed(
        run_at("not-an-address", &["topic", "list"], ""),
        "topic list",
        2,
    );
}

fn kcat_missing() -> Option<String> {
    match Command::new("kcat").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("a working kcat (`kcat -V` exited {})", out.status)),
        Err(e) => Some(format!("kcat ({e})")),
    }
}

fn kcat(keel: &Keel, args: &[&str], stdin: &str) -> String {
    let out = run_with_timeout(
        Command::new("kcat")
            .args(["-b", &keel.bootstrap()])
            .args(args),
        stdin.as_bytes(),
        TIMEOUT,
    );
    assert!(out.status.success(), "kcat {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn keel_and_kcat_read_each_others_compressed_batches() {
    if !require(
        "keel_and_kcat_read_each_others_compressed_batches",
        kcat_missing(),
        "apt-get update && apt-get install -y kcat",
    ) {
        return;
    }
    let keel = start("cli-kcat");
    let version = Command::new("kcat").arg("-V").output().expect("kcat -V");
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        if codec != "none" && !version.contains(codec) {
            eprintln!("note: this kcat has no {codec}");
            continue;
        }
        let lines: Vec<String> = (0..50)
            .map(|i| format!("{codec}-{i}-{}", "y".repeat(i)))
            .collect();
        let input = lines.join("\n") + "\n";
        // keel produces, kcat consumes.
        let topic = format!("from-keel-{codec}");
        ok(&keel, &["topic", "create", &topic, "--partitions", "1"], "");
        ok(
            &keel,
            &[
                "produce",
                "--topic",
                &topic,
                "--compression",
                codec,
                "--header",
                "h=1",
            ],
            &input,
        );
        let read = kcat(
            &keel,
            &["-C", "-t", &topic, "-o", "beginning", "-e", "-f", "%s %h\n"],
            "",
        );
        let expected: String = lines.iter().map(|l| format!("{l} h=1\n")).collect();
        assert_eq!(read, expected, "kcat reading keel's {codec} batches");
        // kcat produces, keel consumes.
        let topic = format!("from-kcat-{codec}");
        ok(&keel, &["topic", "create", &topic, "--partitions", "1"], "");
        kcat(
            &keel,
            &["-P", "-t", &topic, "-z", codec, "-K", ":"],
            &lines.iter().map(|l| format!("k:{l}\n")).collect::<String>(),
        );
        let (read, _) = ok(
            &keel,
            &[
                "consume",
                "--topic",
                &topic,
                "--from-beginning",
                "--max-messages",
                "50",
                "--format",
                "kcat",
                "--kcat-format",
                "%k %s\\n",
            ],
            "",
        );
        let expected: String = lines.iter().map(|l| format!("k {l}\n")).collect();
        assert_eq!(read, expected, "keel reading kcat's {codec} batches");
    }
}

/// A local server that answers every connection with `reply` once it has read the request
/// (or, with `reply` empty, hangs up without a word); returns its address.
fn foreign_server(reply: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a local port");
    let addr = listener.local_addr().expect("its address").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply);
        }
    });
    addr
}

#[test]
fn a_port_that_does_not_speak_kafka_is_named_in_one_line_at_once() {
    // A web server answers the Kafka handshake with 400: before, its "HTTP" was read as a
    // frame length of 1213486160.
    let http = foreign_server(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let started = Instant::now();
    for (args, command) in [
        (vec!["topic", "list"], "topic list"),
        (vec!["group", "list"], "group list"),
        (vec!["consume", "--topic", "t"], "consume"),
    ] {
        let line = failed(run_at(&http, &args, ""), command, 1);
        assert_eq!(
            line,
            format!(
                "keel {command}: {http} answered with HTTP (\"HTTP/1.1 400 Bad Request\"), not \
                 the Kafka protocol: is this a metrics or web port?"
            )
        );
    }
    // A port that accepts and hangs up: before, "io: early eof".
    let silent = foreign_server(b"");
    let line = failed(run_at(&silent, &["topic", "list"], ""), "topic list", 1);
    assert_eq!(
        line,
        format!(
            "keel topic list: {silent} does not speak the Kafka protocol: it closed the \
             connection without answering the ApiVersions request"
        )
    );
    // The answers came when the peers' bytes did, not at the (30 s) request timeout.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// A strict little JSON parser (RFC 8259), so that the tests check `--output json` and
/// `--log-format json` without a JSON crate: whatever it accepts is valid JSON.
mod json {
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Json>),
        Object(BTreeMap<String, Json>),
    }

    impl Json {
        /// The member `key` of an object (panics otherwise: a test failure).
        pub fn get(&self, key: &str) -> &Json {
            match self {
                Json::Object(m) => m
                    .get(key)
                    .unwrap_or_else(|| panic!("no {key:?} in {self:?}")),
                other => panic!("not an object: {other:?}"),
            }
        }
        pub fn array(&self) -> &[Json] {
            match self {
                Json::Array(a) => a,
                other => panic!("not an array: {other:?}"),
            }
        }
        pub fn str(&self) -> &str {
            match self {
                Json::String(s) => s,
                other => panic!("not a string: {other:?}"),
            }
        }
        pub fn num(&self) -> f64 {
            match self {
                Json::Number(n) => *n,
                other => panic!("not a number: {other:?}"),
            }
        }
    }

    /// Parses one JSON document that spans all of `text` (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.at != p.s.len() {
            return Err(format!("trailing bytes at {}", p.at));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        at: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.at += 1;
            }
        }
        fn eat(&mut self, lit: &str) -> Result<(), String> {
            if self.s[self.at..].starts_with(lit.as_bytes()) {
                self.at += lit.len();
                Ok(())
            } else {
                Err(format!("expected {lit:?} at {}", self.at))
            }
        }
        fn value(&mut self) -> Result<Json, String> {
            self.ws();
            match self.s.get(self.at) {
                Some(b'n') => self.eat("null").map(|_| Json::Null),
                Some(b't') => self.eat("true").map(|_| Json::Bool(true)),
                Some(b'f') => self.eat("false").map(|_| Json::Bool(false)),
                Some(b'"') => self.string().map(Json::String),
                Some(b'[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Json::Array(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                return Ok(Json::Array(items));
                            }
                            _ => return Err(format!("bad array at {}", self.at)),
                        }
                    }
                }
                Some(b'{') => {
                    self.at += 1;
                    let mut members = BTreeMap::new();
                    self.ws();
                    if self.s.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Ok(Json::Object(members));
                    }
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        self.eat(":")?;
                        let value = self.value()?;
                        if members.insert(key.clone(), value).is_some() {
                            return Err(format!("duplicate key {key:?}"));
                        }
                        self.ws();
                        match self.s.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b'}') => {
                                self.at += 1;
                                return Ok(Json::Object(members));
                            }
                            _ => return Err(format!("bad object at {}", self.at)),
                        }
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    let start = self.at;
                    while matches!(
                        self.s.get(self.at),
                        Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                    ) {
                        self.at += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.at]).expect("ASCII");
                    text.parse()
                        .map(Json::Number)
                        .map_err(|e| format!("number {text:?}: {e}"))
                }
                _ => Err(format!("unexpected byte at {}", self.at)),
            }
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat("\"")?;
            let mut out = Vec::new();
            loop {
                match self.s.get(self.at) {
                    None => return Err("unterminated string".into()),
                    Some(b'"') => {
                        self.at += 1;
                        return String::from_utf8(out).map_err(|e| e.to_string());
                    }
                    Some(b'\\') => {
                        let c = *self.s.get(self.at + 1).ok_or("bad escape")?;
                        self.at += 2;
                        match c {
                            b'"' | b'\\' | b'/' => out.push(c),
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.s[self.at..self.at + 4])
                                    .map_err(|e| e.to_string())?;
                                let code =
                                    u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                self.at += 4;
                                let c = char::from_u32(code).unwrap_or('\u{fffd}');
                                out.extend_from_slice(c.to_string().as_bytes());
                            }
                            _ => return Err(format!("bad escape at {}", self.at)),
                        }
                    }
                    Some(&c) if c < 0x20 => return Err("control byte in a string".into()),
                    Some(&c) => {
                        out.push(c);
                        self.at += 1;
                    }
                }
            }
        }
    }
}

/// Runs a command that must succeed and parses its stdout as one JSON document.
fn ok_json(keel: &Keel, args: &[&str]) -> json::Json {
    let (stdout, _) = ok(keel, args, "");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one document on one line: {stdout}"
    );
    json::parse(&stdout).unwrap_or_else(|e| panic!("keel {args:?}: {e}: {stdout}"))
}

#[test]
fn listings_and_descriptions_print_one_json_document_with_output_json() {
    use json::Json;
    let keel = start("cli-json");
    ok(
        &keel,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "2",
            "--config",
            "retention.ms=3600000",
        ],
        "",
    );
    ok(
        &keel,
        &["topic", "create", "audit", "--partitions", "1"],
        "",
    );
    ok(
        &keel,
        &["produce", "--topic", "orders", "--key-separator", ":"],
        "k1:a\nk1:b\nk1:c\n",
    );

    let list = ok_json(&keel, &["topic", "list", "--output", "json"]);
    let names: Vec<&str> = list
        .get("topics")
        .array()
        .iter()
        .map(|t| t.get("name").str())
        .collect();
    assert_eq!(names, ["audit", "orders"]);
    let orders = &list.get("topics").array()[1];
    assert_eq!(orders.get("partitionCount").num(), 2.0);
    assert_eq!(orders.get("internal"), &Json::Bool(false));
    assert_eq!(orders.get("topicId").str().len(), 22, "{orders:?}");

    let describe = ok_json(&keel, &["topic", "describe", "orders", "-o", "json"]);
    let topics = describe.get("topics").array();
    assert_eq!(topics.len(), 1);
    let t = &topics[0];
    assert_eq!(t.get("name").str(), "orders");
    assert_eq!(t.get("topicId"), orders.get("topicId"));
    assert_eq!(t.get("replicationFactor").num(), 1.0);
    let partitions = t.get("partitions").array();
    assert_eq!(partitions.len(), 2);
    let records: f64 = partitions
        .iter()
        .map(|p| {
            assert_eq!(p.get("logStartOffset").num(), 0.0);
            assert_eq!(p.get("error"), &Json::Null);
            assert!(p.get("leader").num() >= 0.0);
            p.get("highWatermark").num()
        })
        .sum();
    assert_eq!(records, 3.0, "{t:?}");
    let configs = t.get("configs").array();
    assert_eq!(
        configs.len(),
        1,
        "only the topic's own configs: {configs:?}"
    );
    assert_eq!(configs[0].get("name").str(), "retention.ms");
    assert_eq!(configs[0].get("value").str(), "3600000");
    assert_eq!(configs[0].get("source").str(), "topic");

    ok(
        &keel,
        &[
            "consume",
            "--topic",
            "orders",
            "--group",
            "billing",
            "--from-beginning",
            "--max-messages",
            "3",
        ],
        "",
    );
    let groups = ok_json(&keel, &["group", "list", "-o", "json"]);
    let groups = groups.get("groups").array();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].get("groupId").str(), "billing");
    assert_eq!(groups[0].get("state").str(), "Empty");
    assert_eq!(groups[0].get("protocolType").str(), "consumer");

    let group = ok_json(&keel, &["group", "describe", "billing", "--output", "json"]);
    assert_eq!(group.get("groupId").str(), "billing");
    assert_eq!(group.get("state").str(), "Empty");
    assert_eq!(group.get("members").array(), &[] as &[Json]);
    let offsets = group.get("offsets").array();
    assert_eq!(offsets.len(), 2, "{group:?}");
    let mut committed = 0.0;
    for o in offsets {
        assert_eq!(o.get("topic").str(), "orders");
        assert_eq!(o.get("lag").num(), 0.0);
        assert_eq!(o.get("currentOffset"), o.get("logEndOffset"));
        assert_eq!(o.get("memberId"), &Json::Null);
        committed += o.get("currentOffset").num();
    }
    assert_eq!(committed, 3.0, "{group:?}");
}

#[test]
fn group_delete_removes_empty_groups_and_names_each_failure() {
    let keel = start("cli-group-delete");
    ok(&keel, &["topic", "create", "jobs", "--partitions", "1"], "");
    ok(&keel, &["produce", "--topic", "jobs"], "one\ntwo\n");
    for group in ["done-a", "done-b"] {
        ok(
            &keel,
            &[
                "consume",
                "--topic",
                "jobs",
                "--group",
                group,
                "--from-beginning",
                "--max-messages",
                "2",
            ],
            "",
        );
    }
    let (stdout, _) = ok(&keel, &["group", "delete", "done-a", "done-b"], "");
    assert_eq!(stdout, "Deleted group done-a.\nDeleted group done-b.\n");
    let (listed, _) = ok(&keel, &["group", "list"], "");
    assert_eq!(listed, "", "deleted groups are gone: {listed}");
    // A deleted group's committed offsets went with it.
    let line = failed(
        run(&keel, &["group", "describe", "done-a"], ""),
        "group describe",
        1,
    );
    assert!(line.contains("GROUP_ID_NOT_FOUND"), "{line}");

    let member = spawn_member(&keel, "jobs", "busy");
    wait_for_group(&keel, "busy", "became stable", |d| {
        d.contains("\tState: Stable\t")
    });
    let out = run(&keel, &["group", "delete", "busy", "never-was"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one line per failed group: {stderr}");
    assert!(
        lines[0].starts_with("keel group delete: busy: NON_EMPTY_GROUP"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("keel group delete: never-was: GROUP_ID_NOT_FOUND"),
        "{stderr}"
    );
    // The busy group was left alone.
    wait_for_group(&keel, "busy", "stayed", |d| d.contains("\tMembers: 1"));
    Command::new("kill")
        .args(["-INT", &member.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(member_output(member).status.success());
    // Missing the group ids is a usage error.
    let out = run(&keel, &["group", "delete"], "");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_keel()"),
        ("zsh", "#compdef keel"),
        ("fish", "complete -c keel"),
    ] {
        let out = run_with_timeout(
            Command::new(keel_bin()).args(["completions", shell]),
            b"",
            TIMEOUT,
        );
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        // Subcommands and their flags are completed, the newest included.
        for word in ["topic", "bench", "delete", "bootstrap-server", "log-format"] {
            assert!(script.contains(word), "{shell}: no {word:?}");
        }
    }
    let out = run_with_timeout(
        Command::new(keel_bin()).args(["completions", "tcsh"]),
        b"",
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn logs_to_a_file_or_pipe_are_plain_and_json_lines_parse() {
    // Keel::start sends the broker's stderr to a file: no terminal, so no colour.
    let mut plain = Keel::start(&temp_data_dir("cli-log-plain"), &[]);
    ok(
        &plain,
        &["topic", "create", "logged", "--partitions", "1"],
        "",
    );
    assert!(plain.stop());
    let log = plain.log();
    assert!(log.contains("serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file: {log:?}"
    );
    drop(plain);

    // --log-format json: every line is one JSON object with the event's fields at the top.
    let mut json_keel = Keel::start(&temp_data_dir("cli-log-json"), &["--log-format", "json"]);
    assert!(json_keel.stop());
    let log = json_keel.log();
    let lines: Vec<json::Json> = log
        .lines()
        .map(|l| json::parse(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    for l in &lines {
        assert!(!l.get("timestamp").str().is_empty());
        assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&l.get("level").str()));
        assert!(!l.get("target").str().is_empty());
    }
    assert!(
        lines.iter().any(|l| l.get("message").str() == "serving"),
        "{log}"
    );

    // Into a pipe: plain text, and JSON when KEEL_LOG_FORMAT says so.
    let text = serve_into_a_pipe(&[]);
    assert!(text.contains("serving"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a pipe: {text:?}");
    let json_text = serve_into_a_pipe(&[("KEEL_LOG_FORMAT", "json")]);
    for l in json_text.lines() {
        let l = json::parse(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
        assert!(!l.get("level").str().is_empty());
    }
    assert!(json_text.contains("\"message\":\"serving\""), "{json_text}");
}

/// Runs `keel serve` on a free port with stderr into a pipe until it logs that it serves,
/// then stops it (SIGTERM); returns what it logged.
fn serve_into_a_pipe(env: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader};
    let dir = temp_data_dir("cli-log-pipe");
    let mut child = Command::new(keel_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("KEEL_LOG_FORMAT")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keel serve starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logged = String::new();
    let deadline = Instant::now() + TIMEOUT;
    while !logged.contains("serving") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                logged.push_str(&line);
                logged.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("keel serve never said it serves: {logged}");
            }
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let status = child.wait().expect("keel serve exits");
    assert!(status.success(), "{status}: {logged}");
    // The reader ends when the pipe closes, after the exit.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        logged.push_str(&line);
        logged.push('\n');
    }
    logged
}

#[test]
fn keels_own_metrics_port_is_named_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let keel = Keel::start(
        &temp_data_dir("cli-metrics-port"),
        &["--metrics-listen", &metrics],
    );
    // The metrics listener is bound right after the Kafka one.
    let deadline = Instant::now() + TIMEOUT;
    while std::net::TcpStream::connect(&metrics).is_err() {
        assert!(
            Instant::now() < deadline,
            "no metrics listener: {}",
            keel.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let line = failed(run_at(&metrics, &["topic", "list"], ""), "topic list", 1);
    assert!(
        line.starts_with(&format!(
            "keel topic list: {metrics} answered with HTTP (\"HTTP/1.1 400 Bad Request\"), not \
             the Kafka protocol"
        )),
        "{line}"
    );
    // Before, the listener waited out its 10 s request-head timeout and hung up.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // The Kafka port still answers.
    ok(&keel, &["topic", "list"], "");
}
