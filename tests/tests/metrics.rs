//! `keel serve --metrics-listen`: a real broker is produced to and fetched from with the keel
//! client, then /metrics is scraped over a raw TCP GET and parsed with a strict parser of the
//! Prometheus text format (every line must parse, every sample must belong to a declared
//! family, histograms must be cumulative and end in `+Inf` equal to `_count`), and the numbers
//! must match what the test did. /health and bad HTTP requests are checked against the same
//! broker, which must keep serving Kafka clients afterwards.
//!
//! Consumer-group lag is checked against commits made by librdkafka and the keel client,
//! `keel_build_info` and the `process_*` family against the broker process itself, and a
//! Kafka client pointed at the metrics port by mistake must be told at once (HTTP 400).

use bytes::Bytes;
use keel_core::record::builder::{build_batch, Record};
use keel_net::client::foreign::ForeignReply;
use keel_net::client::ClientError;
use keel_net::client::{connect_tcp, ClientOptions, TcpClient};
use keel_tests::{keel_bin, run_with_timeout, temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---- a strict exposition-format parser ----------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug, Default)]
struct Exposition {
    /// Family name → TYPE.
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The value of the one sample `name` with exactly `labels`, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels == want)
            .collect();
        assert!(found.len() <= 1, "duplicate series {name}{labels:?}");
        found.first().map(|s| s.value)
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}")),
    }
}

/// `{k="v",...}` at the start of `s`: the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("labels must start with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !is_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas".into());
        }
    }
}

/// The family a sample name belongs to under the declared types (histogram suffixes).
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return Some(base);
            }
        }
    }
    None
}

fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut helped = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(_)) if is_name(name) => {
                    let fresh = helped.insert(name.to_string());
                    fresh
                        .then_some(())
                        .ok_or_else(|| at("HELP repeated".into()))?;
                }
                (Some("TYPE"), Some(name), Some(kind)) if is_name(name) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if out
                        .samples
                        .iter()
                        .any(|s| family_of(&s.name, &out.types) == Some(name))
                    {
                        return Err(at("TYPE after samples of its family".into()));
                    }
                    if out
                        .types
                        .insert(name.to_string(), kind.to_string())
                        .is_some()
                    {
                        return Err(at("TYPE repeated".into()));
                    }
                }
                (Some("HELP" | "TYPE"), _, _) => return Err(at("malformed HELP/TYPE".into())),
                _ => {} // any other comment
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| at(format!("timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing fields".into()));
        }
        let family =
            family_of(name, &out.types).ok_or_else(|| at("sample without a TYPE".into()))?;
        if out.types[family] == "histogram" && name == family {
            return Err(at("histogram sample without a suffix".into()));
        }
        if name.ends_with("_bucket")
            && out.types[family] == "histogram"
            && !labels.contains_key("le")
        {
            return Err(at("bucket without le".into()));
        }
        out.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    check_histograms(&out)?;
    Ok(out)
}

/// Every histogram series: buckets in increasing `le`, cumulative, the last `+Inf`, equal
/// to `_count`, and a `_sum` present.
fn check_histograms(e: &Exposition) -> Result<(), String> {
    for (family, kind) in &e.types {
        if kind != "histogram" {
            continue;
        }
        // Labels other than `le` → (le, cumulative count) in exposition order.
        type Buckets = Vec<(f64, f64)>;
        let mut series: BTreeMap<Vec<(String, String)>, Buckets> = BTreeMap::new();
        for s in e
            .samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let mut labels = s.labels.clone();
            let le = parse_value(&labels.remove("le").unwrap_or_default())?;
            series
                .entry(labels.into_iter().collect())
                .or_default()
                .push((le, s.value));
        }
        for (labels, buckets) in series {
            let what = format!("{family}{labels:?}");
            for pair in buckets.windows(2) {
                if pair[0].0 >= pair[1].0 {
                    return Err(format!("{what}: le not increasing"));
                }
                if pair[0].1 > pair[1].1 {
                    return Err(format!("{what}: buckets not cumulative"));
                }
            }
            let (last_le, last) = *buckets.last().ok_or("no buckets")?;
            if last_le != f64::INFINITY {
                return Err(format!("{what}: last bucket is not +Inf"));
            }
            let label_refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let count = e
                .get(&format!("{family}_count"), &label_refs)
                .ok_or_else(|| format!("{what}: no _count"))?;
            if count != last {
                return Err(format!("{what}: +Inf {last} != _count {count}"));
            }
            e.get(&format!("{family}_sum"), &label_refs)
                .ok_or_else(|| format!("{what}: no _sum"))?;
        }
    }
    Ok(())
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total x y\n# TYPE a_total counter\na_total{k=\"v\\\"\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n";
    let e = parse_exposition(good).unwrap();
    assert_eq!(e.get("a_total", &[("k", "v\"")]), Some(3.0));
    for bad in [
        "a 1\n",                                // no TYPE
        "# TYPE a counter\na{k=v} 1\n",         // unquoted
        "# TYPE a counter\na 1 2 3\n",          // trailing
        "# TYPE a counter\na x\n",              // value
        "# TYPE a counter\n# TYPE a counter\n", // repeated
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n", // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 1\n", // count
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

// ---- the broker side ----------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `request` as is, reads until the server closes; returns (status, body).
fn http(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8(response).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line in {head:?}"));
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|l| l.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(length, body.len(), "Content-Length matches the body");
    Ok((status, body.to_string()))
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: keel\r\nAccept: */*\r\n\r\n");
    // The metrics listener is bound right after the Kafka one: retry briefly at start-up.
    let mut last = None;
    for _ in 0..100 {
        match http(addr, request.as_bytes()) {
            Ok(r) => return r,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("GET {path}: {last:?}");
}

fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    parse_exposition(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

const RECORDS_PER_BATCH: usize = 10;
const VALUE_BYTES: usize = 200;

fn batch() -> Bytes {
    let records: Vec<Record> = (0..RECORDS_PER_BATCH)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![b'v'; VALUE_BYTES]),
            headers: Vec::new(),
            timestamp_ms: 1_700_000_000_000,
        })
        .collect();
    build_batch(&records)
}

async fn client(addr: SocketAddr) -> TcpClient {
    connect_tcp(addr, ClientOptions::default())
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_parsed_and_match_the_traffic() {
    let dir = temp_data_dir("metrics");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut keel = Keel::start(&dir, &["--metrics-listen", &metrics_addr.to_string()]);
    let m = metrics_addr;

    let (status, body) = tokio::task::spawn_blocking(move || get(m, "/health"))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let before = tokio::task::spawn_blocking(move || scrape(m))
        .await
        .unwrap();
    assert_eq!(before.get("keel_up", &[]), Some(1.0));
    assert_eq!(
        before.get("keel_requests_total", &[("api", "Produce")]),
        None,
        "nothing produced yet"
    );

    let mut c = client(keel.addr).await;
    let created = c.create_topics(&[("metrics-t", 2)], 10_000).await.unwrap();
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let batches: usize = 7;
    let mut produced_bytes = 0usize;
    for i in 0..batches {
        let b = batch();
        produced_bytes += b.len();
        let r = c
            .produce("metrics-t", (i % 2) as i32, b, -1)
            .await
            .unwrap()
            .expect("acks=-1 answers");
        assert_eq!(r.error_code, 0);
    }
    let fetched = c
        .fetch("metrics-t", 0, 0, Duration::from_millis(100), 1 << 20)
        .await
        .unwrap();
    assert_eq!(fetched.error_code, 0);
    assert!(fetched.records.as_ref().is_some_and(|r| !r.is_empty()));

    let after = tokio::task::spawn_blocking(move || scrape(m))
        .await
        .unwrap();
    let produce = after
        .get("keel_requests_total", &[("api", "Produce")])
        .expect("Produce counted");
    assert_eq!(produce, batches as f64);
    assert!(after.get("keel_requests_total", &[("api", "Fetch")]) >= Some(1.0));
    assert_eq!(
        after.get("keel_request_duration_seconds_count", &[("api", "Produce")]),
        Some(batches as f64)
    );
    let received = after.get("keel_network_received_bytes_total", &[]).unwrap();
    assert!(
        received > produced_bytes as f64,
        "{received} bytes in, {produced_bytes} bytes of batches"
    );
    let sent = after.get("keel_network_sent_bytes_total", &[]).unwrap();
    assert!(
        sent > (VALUE_BYTES * RECORDS_PER_BATCH) as f64,
        "the fetch sent records"
    );
    let records_on_0 = (batches.div_ceil(2) * RECORDS_PER_BATCH) as f64;
    let records_on_1 = (batches / 2 * RECORDS_PER_BATCH) as f64;
    for (p, want) in [("0", records_on_0), ("1", records_on_1)] {
        let labels = [("topic", "metrics-t"), ("partition", p)];
        assert_eq!(after.get("keel_log_end_offset", &labels), Some(want), "{p}");
        // acks=-1 answered only once durable: the high watermark is there too.
        assert_eq!(after.get("keel_high_watermark", &labels), Some(want), "{p}");
        assert_eq!(
            after.get("keel_log_start_offset", &labels),
            Some(0.0),
            "{p}"
        );
        // Batches are stored as produced: the log holds exactly their bytes.
        let batches_here = want / RECORDS_PER_BATCH as f64;
        assert_eq!(
            after.get("keel_log_size_bytes", &labels),
            Some(batches_here * batch().len() as f64),
            "{p}"
        );
    }
    assert!(after.get("keel_fsync_duration_seconds_count", &[]) >= Some(1.0));
    assert_eq!(after.get("keel_fsync_failures_total", &[]), Some(0.0));
    assert!(after.get("keel_connections_accepted_total", &[]) >= Some(1.0));
    assert!(
        after.get("keel_connections_open", &[]) >= Some(1.0),
        "ours is open"
    );
    let unknown = [
        ("api", "Produce"),
        ("code", "3"),
        ("error", "UNKNOWN_TOPIC_OR_PARTITION"),
    ];
    assert_eq!(after.get("keel_error_responses_total", &unknown), None);

    // A produce to a partition that does not exist: UNKNOWN_TOPIC_OR_PARTITION (3).
    let r = c
        .produce("metrics-t", 9, batch(), 1)
        .await
        .unwrap()
        .expect("acks=1 answers");
    assert_eq!(r.error_code, 3);
    let errored = tokio::task::spawn_blocking(move || scrape(m))
        .await
        .unwrap();
    assert_eq!(
        errored.get("keel_error_responses_total", &unknown),
        Some(1.0)
    );
    assert_eq!(
        errored.get("keel_requests_total", &[("api", "Produce")]),
        Some(batches as f64 + 1.0)
    );

    // Bad HTTP: 400 (or 405/404 for well-formed but unserved), never harm to the broker.
    let bad = tokio::task::spawn_blocking(move || {
        let garbage = http(m, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").unwrap().0;
        let huge_head = http(m, &vec![b'A'; 64 * 1024]).unwrap().0;
        let no_version = http(m, b"GET /metrics\r\n\r\n").unwrap().0;
        let post = http(m, b"POST /metrics HTTP/1.1\r\n\r\n").unwrap().0;
        let missing = http(m, b"GET /nope HTTP/1.1\r\n\r\n").unwrap().0;
        // A client that connects and says nothing does not block the next scrape.
        let idle = TcpStream::connect(m).unwrap();
        let (status, _) = get(m, "/metrics");
        drop(idle);
        (garbage, huge_head, no_version, post, missing, status)
    })
    .await
    .unwrap();
    assert_eq!(bad, (400, 400, 400, 405, 404, 200));

    // The broker still serves Kafka clients, and the metrics still parse.
    let r = c
        .produce("metrics-t", 0, batch(), -1)
        .await
        .unwrap()
        .expect("answered");
    assert_eq!(r.error_code, 0);
    let last = tokio::task::spawn_blocking(move || scrape(m))
        .await
        .unwrap();
    assert_eq!(
        last.get(
            "keel_log_end_offset",
            &[("topic", "metrics-t"), ("partition", "0")]
        ),
        Some(records_on_0 + RECORDS_PER_BATCH as f64)
    );
    drop(c);
    assert!(keel.stop(), "clean stop; log: {}", keel.log());
}

/// A broker serving metrics on a free port: (broker, metrics address).
fn broker_with_metrics(name: &str) -> (Keel, SocketAddr) {
    let dir = temp_data_dir(name);
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let keel = Keel::start(&dir, &["--metrics-listen", &metrics_addr.to_string()]);
    (keel, metrics_addr)
}

async fn scrape_async(m: SocketAddr) -> Exposition {
    tokio::task::spawn_blocking(move || scrape(m))
        .await
        .unwrap()
}

/// Every sample of `name` as (group, topic, partition) → value.
fn by_group(e: &Exposition, name: &str) -> BTreeMap<(String, String, String), f64> {
    e.samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| {
            assert_eq!(s.labels.len(), 3, "{s:?}");
            let l = |k: &str| {
                s.labels
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| panic!("{k}: {s:?}"))
            };
            ((l("group"), l("topic"), l("partition")), s.value)
        })
        .collect()
}

fn series(rows: &[(&str, &str, i32, f64)]) -> BTreeMap<(String, String, String), f64> {
    rows.iter()
        .map(|&(g, t, p, v)| ((g.to_string(), t.to_string(), p.to_string()), v))
        .collect()
}

/// Commits `offsets` for `group` through librdkafka, as a consumer that assigns itself
/// partitions (no generation) does, retrying while the broker creates its offsets topic.
fn rdkafka_commit(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for &(topic, partition, offset) in offsets {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .expect("offset");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "commit: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Produces `batches` batches to `topic`'s `partition` with acks=-1 (answered once durable,
/// so the high watermark has moved when this returns).
async fn produce_batches(c: &mut TcpClient, topic: &str, partition: i32, batches: usize) {
    for _ in 0..batches {
        let r = c
            .produce(topic, partition, batch(), -1)
            .await
            .unwrap()
            .expect("acks=-1 answers");
        assert_eq!(r.error_code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_lag_is_the_high_watermark_minus_the_committed_offset() {
    let (mut keel, m) = broker_with_metrics("metrics-lag");
    let mut c = client(keel.addr).await;
    let created = c.create_topics(&[("lag-t", 2)], 10_000).await.unwrap();
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let per_batch = RECORDS_PER_BATCH as i64;
    produce_batches(&mut c, "lag-t", 0, 3).await;
    produce_batches(&mut c, "lag-t", 1, 1).await;

    let none = scrape_async(m).await;
    assert_eq!(
        none.types
            .get("keel_consumer_group_lag")
            .map(String::as_str),
        Some("gauge")
    );
    assert!(
        by_group(&none, "keel_consumer_group_lag").is_empty(),
        "no group yet"
    );
    assert_eq!(
        none.get("keel_consumer_group_offsets_omitted", &[]),
        Some(0.0)
    );

    // librdkafka commits 12 of partition 0's 30 records and all 10 of partition 1's.
    let bootstrap = keel.bootstrap();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        rdkafka_commit(&b, "lag-g", &[("lag-t", 0, 12), ("lag-t", 1, per_batch)])
    })
    .await
    .unwrap();
    let first = scrape_async(m).await;
    assert_eq!(
        by_group(&first, "keel_consumer_group_committed_offset"),
        series(&[("lag-g", "lag-t", 0, 12.0), ("lag-g", "lag-t", 1, 10.0)])
    );
    assert_eq!(
        by_group(&first, "keel_consumer_group_lag"),
        series(&[("lag-g", "lag-t", 0, 18.0), ("lag-g", "lag-t", 1, 0.0)])
    );

    // More records on partition 1: its lag grows by them, partition 0's stays.
    produce_batches(&mut c, "lag-t", 1, 2).await;
    // A second group, committing through the keel client outside any generation.
    let committed = c
        .offset_commit("lag-h", -1, "", &[("lag-t", 1, 5, "")])
        .await
        .unwrap();
    assert!(committed.iter().all(|r| r.error_code == 0), "{committed:?}");
    let grown = scrape_async(m).await;
    let hw1 = grown
        .get(
            "keel_high_watermark",
            &[("topic", "lag-t"), ("partition", "1")],
        )
        .unwrap();
    assert_eq!(hw1, 30.0);
    assert_eq!(
        by_group(&grown, "keel_consumer_group_lag"),
        series(&[
            ("lag-g", "lag-t", 0, 18.0),
            ("lag-g", "lag-t", 1, 20.0),
            ("lag-h", "lag-t", 1, 25.0),
        ])
    );

    // lag-g catches up on partition 0.
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || rdkafka_commit(&b, "lag-g", &[("lag-t", 0, 30)]))
        .await
        .unwrap();
    let caught_up = scrape_async(m).await;
    assert_eq!(
        caught_up.get(
            "keel_consumer_group_lag",
            &[("group", "lag-g"), ("topic", "lag-t"), ("partition", "0")]
        ),
        Some(0.0)
    );

    // A deleted group's offsets leave the output with it.
    let deleted = c.delete_groups(&["lag-g"]).await.unwrap();
    assert_eq!(deleted, vec![("lag-g".to_string(), 0)]);
    let after = scrape_async(m).await;
    assert_eq!(
        by_group(&after, "keel_consumer_group_committed_offset"),
        series(&[("lag-h", "lag-t", 1, 5.0)])
    );
    assert_eq!(
        by_group(&after, "keel_consumer_group_lag"),
        series(&[("lag-h", "lag-t", 1, 25.0)])
    );
    drop(c);
    assert!(keel.stop(), "clean stop; log: {}", keel.log());
}

/// Whether `commit` names a commit of the repository the tests run in (`None`: no git or
/// no repository here, so nothing to compare with).
fn is_commit_here(commit: &str) -> Option<bool> {
    let here = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()?;
    if !here.status.success() {
        return None;
    }
    let found = Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .output()
        .ok()?;
    Some(found.status.success())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_info_and_process_metrics_describe_the_broker_process() {
    let started = unix_now();
    let (mut keel, m) = broker_with_metrics("metrics-process");
    let first = scrape_async(m).await;

    let info: Vec<&Sample> = first
        .samples
        .iter()
        .filter(|s| s.name == "keel_build_info")
        .collect();
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].value, 1.0);
    assert_eq!(first.types["keel_build_info"], "gauge");
    assert_eq!(
        info[0].labels.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let commit = info[0].labels.get("commit").expect("a commit label");
    assert!(!commit.is_empty());
    // Built from this checkout (HEAD may have moved on since): a commit of this repository.
    if let Some(known) = is_commit_here(commit) {
        assert!(
            known,
            "keel_build_info names commit {commit:?}, unknown here"
        );
    }

    for (family, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(
            first.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let value = |e: &Exposition, name: &str| e.get(name, &[]).unwrap_or_else(|| panic!("{name}"));
    let resident = value(&first, "process_resident_memory_bytes");
    let virtual_bytes = value(&first, "process_virtual_memory_bytes");
    assert!(
        resident > 0.0 && virtual_bytes >= resident,
        "{resident} {virtual_bytes}"
    );
    // Open: at least the data directory's files, both listeners and the scrape itself.
    let open = value(&first, "process_open_fds");
    let max = value(&first, "process_max_fds");
    assert!(open >= 3.0 && open < max, "{open} of {max}");
    // The broker's, not this test's: a file descriptor per connection it holds. The count
    // is compared with slack, since the broker may still be closing the connection
    // `Keel::start` probed with, and a scrape's own connection counts while it runs.
    const HELD: usize = 20;
    const SLACK: f64 = 3.0;
    let open_fds_until = |done: Box<dyn Fn(f64) -> bool + Send>| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now_open = value(&scrape_async(m).await, "process_open_fds");
            if done(now_open) || Instant::now() > deadline {
                break now_open;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let held: Vec<TcpStream> = (0..HELD)
        .map(|_| TcpStream::connect(keel.addr).unwrap())
        .collect();
    let want = open + HELD as f64 - SLACK;
    let with_held = open_fds_until(Box::new(move |n| n >= want)).await;
    assert!(
        with_held >= want,
        "{open} open, then {with_held} with {HELD} more connections"
    );
    drop(held);
    let released = open_fds_until(Box::new(move |n| n <= with_held - HELD as f64 + SLACK)).await;
    assert!(
        released <= with_held - HELD as f64 + SLACK,
        "{with_held} open with {HELD} connections, {released} after they closed"
    );
    // Started by this test, and the clocks agree to well within a minute.
    let start = value(&first, "process_start_time_seconds");
    let now = unix_now();
    assert!(
        start >= started - 60.0 && start <= now + 60.0,
        "started at {start}, test ran from {started} to {now}"
    );
    let cpu = value(&first, "process_cpu_seconds_total");
    let later = scrape_async(m).await;
    let cpu_later = value(&later, "process_cpu_seconds_total");
    assert!(cpu >= 0.0 && cpu_later >= cpu, "{cpu} then {cpu_later}");
    assert!(keel.stop(), "clean stop; log: {}", keel.log());
}

/// The storage's descriptor budget under `ulimit -n 256`: a quarter, 64 descriptors, for a
/// topic whose 300 files do not fit, so reading every partition again reopens files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_file_cache_metrics_show_the_budget_and_the_reopens() {
    const PARTITIONS: i32 = 100;
    let dir = temp_data_dir("metrics-files");
    let m: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut keel = Keel::start_with_nofile(&dir, &["--metrics-listen", &m.to_string()], Some(256));
    let value = |e: &Exposition, name: &str| e.get(name, &[]).unwrap_or_else(|| panic!("{name}"));
    let first = scrape_async(m).await;
    for (family, kind) in [
        ("keel_storage_open_files", "gauge"),
        ("keel_storage_open_files_limit", "gauge"),
        ("keel_storage_file_reopens_total", "counter"),
        ("keel_storage_synced_closes_total", "counter"),
        ("keel_connections_limit", "gauge"),
        ("keel_connections_refused_total", "counter"),
    ] {
        assert_eq!(
            first.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    assert_eq!(value(&first, "keel_storage_open_files_limit"), 64.0);
    assert_eq!(value(&first, "keel_connections_limit"), 256.0 - 64.0 - 64.0);
    assert_eq!(value(&first, "process_max_fds"), 256.0);

    let mut c = client(keel.addr).await;
    let created = c
        .create_topics(&[("files-t", PARTITIONS)], 30_000)
        .await
        .unwrap();
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    for p in 0..PARTITIONS {
        produce_batches(&mut c, "files-t", p, 1).await;
    }
    let written = scrape_async(m).await;
    let open = value(&written, "keel_storage_open_files");
    assert!(open > 0.0 && open <= 64.0, "{open} open files");
    // 300 new files through 64 slots, but only the 100 segments were written to: the
    // indexes, only created (sparse, no entry yet), close without an fsync.
    let synced_closes = value(&written, "keel_storage_synced_closes_total");
    assert!(
        synced_closes <= f64::from(PARTITIONS),
        "{synced_closes} fsyncs before a close, for 100 written files"
    );
    let reopens = value(&written, "keel_storage_file_reopens_total");
    for p in 0..PARTITIONS {
        let fetched = c
            .fetch("files-t", p, 0, Duration::from_millis(0), 1 << 20)
            .await
            .unwrap();
        assert_eq!(fetched.error_code, 0);
        assert!(fetched.records.is_some_and(|r| !r.is_empty()), "{p}");
    }
    let read = scrape_async(m).await;
    let reopened = value(&read, "keel_storage_file_reopens_total") - reopens;
    assert!(
        reopened >= f64::from(PARTITIONS) - 64.0,
        "reading 100 logs through 64 slots reopens most of them: {reopened}"
    );
    assert!(value(&read, "keel_storage_open_files") <= 64.0);
    assert!(value(&read, "process_open_fds") <= 256.0);
    drop(c);
    assert!(keel.stop(), "clean stop; log: {}", keel.log());
}

/// Kafka's ApiVersions v3 request with correlation id 1, as a client's first frame.
fn api_versions_frame() -> Vec<u8> {
    let mut body = vec![0, 18, 0, 3, 0, 0, 0, 1]; // api key, version, correlation id
    body.extend_from_slice(&[0, 4]);
    body.extend_from_slice(b"test"); // client id
    body.push(0); // header tags
    body.push(5);
    body.extend_from_slice(b"keel"); // client software name (compact)
    body.push(4);
    body.extend_from_slice(b"0.1"); // and version
    body.push(0); // body tags
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_client_at_the_metrics_port_is_answered_400_at_once() {
    let (mut keel, m) = broker_with_metrics("metrics-kafka");
    // Up and serving metrics first.
    assert_eq!(scrape_async(m).await.get("keel_up", &[]), Some(1.0));

    // The frame, then silence with the connection open, as a Kafka client waits: the
    // answer must come from the bytes alone, not from a timeout or the end of input.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(m).unwrap();
        stream.write_all(&api_versions_frame()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("no answer: {e}; got {:?}", String::from_utf8_lossy(&answer)),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer:?}"
    );
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer:?}");

    // The keel client names what it reached.
    match keel_net::client::connect_tcp(m, ClientOptions::default()).await {
        Err(ClientError::NotKafka {
            reply: ForeignReply::Http { status_line },
            ..
        }) => assert_eq!(status_line, "HTTP/1.1 400 Bad Request"),
        Err(other) => panic!("expected NotKafka(HTTP), got {other}"),
        Ok(_) => panic!("the metrics port is no Kafka broker"),
    }
    // And so does the CLI, well before any request timeout.
    let out = tokio::task::spawn_blocking(move || {
        run_with_timeout(
            Command::new(keel_bin()).args(["topic", "list", "--bootstrap-server", &m.to_string()]),
            b"",
            Duration::from_secs(60),
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("answered with HTTP (\"HTTP/1.1 400 Bad Request\")"),
        "{stderr}"
    );

    // The broker is unharmed.
    let mut c = client(keel.addr).await;
    assert!(c.metadata(None).await.is_ok());
    drop(c);
    assert!(keel.stop(), "clean stop; log: {}", keel.log());
}

#[test]
fn no_metrics_listener_unless_asked() {
    let dir = temp_data_dir("metrics-off");
    let mut keel = Keel::start(&dir, &[]);
    assert!(keel.stop());
    // The whole log, start to stop: the Kafka listener only.
    let log = keel.log();
    assert!(log.contains("serving"), "{log}");
    assert!(
        !log.contains("serving metrics"),
        "metrics are off by default: {log}"
    );
}
