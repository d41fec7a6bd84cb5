//! librdkafka (through the `rdkafka` crate) against a real `keel serve` over TCP: the truth
//! about compatibility. 100,000 keyed records with headers across every compression codec
//! into 3 partitions; read back in per-partition order with keys, values, headers and
//! timestamps; again after a restart; offsets looked up by time.

use keel_tests::{temp_data_dir, Keel};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;
const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];
const RECORDS: usize = 100_000;
/// Record timestamps: a fixed base so lookups by time have known answers.
const BASE_TS: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

type Acked = Arc<Mutex<BTreeMap<(i32, i64), usize>>>;

struct AckContext {
    acked: Acked,
    failed: Arc<Mutex<Vec<String>>>,
}
impl ClientContext for AckContext {}
impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<usize>;
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, index: Self::DeliveryOpaque) {
        match result {
            Ok(m) => {
                self.acked
                    .lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()), *index);
            }
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

fn record(i: usize) -> Sent {
    Sent {
        key: format!("key-{}", i % 997).into_bytes(),
        value: format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes(),
        headers: vec![
            ("index".to_string(), i.to_string().into_bytes()),
            ("codec".to_string(), b"h".to_vec()),
        ],
        timestamp: BASE_TS + i as i64,
    }
}

async fn create_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Produces all records, a fifth with each codec, and returns (partition, offset) → index.
fn produce_all(bootstrap: &str, sent: &[Sent]) -> BTreeMap<(i32, i64), usize> {
    let acked: Acked = Arc::default();
    let failed = Arc::new(Mutex::new(Vec::new()));
    let per_codec = sent.len() / CODECS.len();
    for (c, codec) in CODECS.iter().enumerate() {
        let producer: ThreadedProducer<AckContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("compression.codec", *codec)
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .create_with_context(AckContext {
                acked: acked.clone(),
                failed: failed.clone(),
            })
            .expect("producer");
        for (i, r) in sent.iter().enumerate().skip(c * per_codec).take(per_codec) {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let mut rec = BaseRecord::with_opaque_to(TOPIC, Box::new(i))
                .key(&r.key)
                .payload(&r.value)
                .headers(headers)
                .timestamp(r.timestamp);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((e, back)) => {
                        assert!(
                            matches!(
                                e.rdkafka_error_code(),
                                Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                            ),
                            "send failed: {e}"
                        );
                        std::thread::sleep(Duration::from_millis(5));
                        rec = back;
                    }
                }
            }
        }
        use rdkafka::producer::Producer;
        producer.flush(Duration::from_secs(60)).expect("flush");
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "deliveries failed: {:?}",
        &failed[..failed.len().min(5)]
    );
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), sent.len(), "every record acknowledged once");
    acked
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "keel-test-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create::<BaseConsumer<DefaultConsumerContextAlias>>()
        .expect("consumer")
}
type DefaultConsumerContextAlias = rdkafka::consumer::DefaultConsumerContext;

/// Reads every partition from the beginning and checks each record against what was sent.
fn consume_and_check(bootstrap: &str, sent: &[Sent], acked: &BTreeMap<(i32, i64), usize>) {
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut seen = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < acked.len() {
        assert!(
            Instant::now() < deadline,
            "timed out after {seen} of {} records",
            acked.len()
        );
        let Some(m) = c.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("consume error");
        let p = m.partition();
        assert_eq!(
            m.offset(),
            next[&p],
            "partition {p}: offsets must be contiguous and in order"
        );
        next.insert(p, m.offset() + 1);
        let index = *acked
            .get(&(p, m.offset()))
            .unwrap_or_else(|| panic!("unacknowledged record at {p}/{}", m.offset()));
        let want = &sent[index];
        assert_eq!(m.key(), Some(&want.key[..]), "key at {p}/{}", m.offset());
        assert_eq!(
            m.payload(),
            Some(&want.value[..]),
            "value at {p}/{}",
            m.offset()
        );
        assert_eq!(
            m.timestamp().to_millis(),
            Some(want.timestamp),
            "timestamp at {p}/{}",
            m.offset()
        );
        let headers: Vec<(String, Vec<u8>)> = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(headers, want.headers, "headers at {p}/{}", m.offset());
        seen += 1;
    }
    // Same-key records keep their send order: librdkafka's partitioner is by key.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_records_every_codec_survive_restart_and_time_lookup() {
    let dir = temp_data_dir("rdkafka");
    let mut keel = Keel::start(&dir, &[]);
    let bootstrap = keel.bootstrap();
    create_topic(&bootstrap).await;
    let sent: Vec<Sent> = (0..RECORDS).map(record).collect();
    let b = bootstrap.clone();
    let sent2 = sent.clone();
    let acked = tokio::task::spawn_blocking(move || produce_all(&b, &sent2))
        .await
        .unwrap();
    let per_partition: BTreeMap<i32, usize> =
        acked.keys().fold(BTreeMap::new(), |mut m, (p, _)| {
            *m.entry(*p).or_default() += 1;
            m
        });
    assert_eq!(
        per_partition.len(),
        PARTITIONS as usize,
        "keys spread over every partition: {per_partition:?}"
    );

    let (b, s, a) = (bootstrap.clone(), sent.clone(), acked.clone());
    tokio::task::spawn_blocking(move || consume_and_check(&b, &s, &a))
        .await
        .unwrap();

    assert!(keel.stop(), "SIGTERM exits 0; log: {}", keel.log());
    keel.restart();
    let (b, s, a) = (bootstrap.clone(), sent.clone(), acked.clone());
    tokio::task::spawn_blocking(move || consume_and_check(&b, &s, &a))
        .await
        .unwrap();

    // Offsets by time: for a timestamp T, the first offset in each partition whose record
    // has timestamp >= T (records were sent with strictly increasing timestamps).
    let b = bootstrap.clone();
    let a = acked.clone();
    let s = sent.clone();
    tokio::task::spawn_blocking(move || {
        let c = consumer(&b);
        for probe in [0usize, 1, 12_345, 50_000, RECORDS - 1] {
            let t = s[probe].timestamp;
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(TOPIC, p, Offset::Offset(t))
                    .unwrap();
            }
            let found = c
                .offsets_for_times(tpl, Duration::from_secs(10))
                .expect("offsets_for_times");
            for p in 0..PARTITIONS {
                let want = a
                    .iter()
                    .filter(|((part, _), i)| *part == p && s[**i].timestamp >= t)
                    .map(|((_, off), _)| *off)
                    .min();
                let got = found.find_partition(TOPIC, p).unwrap().offset();
                match want {
                    Some(off) => {
                        assert_eq!(got, Offset::Offset(off), "partition {p}, timestamp {t}")
                    }
                    None => assert_eq!(got, Offset::End, "partition {p}, timestamp {t}"),
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(keel.stop());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_on_first_use_and_deleted_by_admin() {
    let dir = temp_data_dir("autocreate");
    let keel = Keel::start(&dir, &[]);
    let bootstrap = keel.bootstrap();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .create()
            .expect("producer");
        producer
            .send(BaseRecord::<(), str>::to("fresh-topic").payload("hello"))
            .expect("send");
        use rdkafka::producer::Producer;
        producer.flush(Duration::from_secs(30)).expect("flush");
        let md = producer
            .client()
            .fetch_metadata(Some("fresh-topic"), Duration::from_secs(10))
            .unwrap();
        assert_eq!(md.topics()[0].partitions().len(), 1);
    })
    .await
    .unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let r = admin
        .delete_topics(&["fresh-topic"], &AdminOptions::new())
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let r = admin
        .delete_topics(&["fresh-topic"], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition
    );
    let bad = NewTopic::new("bad/name", 1, TopicReplication::Fixed(1));
    let r = admin
        .create_topics([&bad], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        r[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidTopic
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// librdkafka's idempotent producer (InitProducerId, sequence numbers): every record lands
/// exactly once and in send order per partition, also when the broker restarts mid-stream
/// and the producer retries what was in flight (KIP-98).
#[test]
fn idempotent_producer_writes_each_record_once_across_a_restart() {
    let dir = temp_data_dir("idempotent");
    let mut keel = Keel::start(&dir, &["--num-partitions", "2"]);
    let bootstrap = keel.bootstrap();
    let acked: Acked = Arc::default();
    let failed = Arc::new(Mutex::new(Vec::new()));
    let producer: ThreadedProducer<AckContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "50")
        .set("reconnect.backoff.ms", "50")
        .create_with_context(AckContext {
            acked: acked.clone(),
            failed: failed.clone(),
        })
        .expect("idempotent producer");
    const N: usize = 20_000;
    for i in 0..N {
        let key = format!("k{}", i % 8);
        let value = format!("{i}");
        let mut rec = BaseRecord::with_opaque_to("idem", Box::new(i))
            .key(&key)
            .payload(&value);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    std::thread::sleep(Duration::from_millis(2));
                    rec = back;
                }
            }
        }
        if i == N / 2 {
            assert!(keel.stop(), "SIGTERM exits 0");
            keel.restart();
        }
    }
    use rdkafka::producer::Producer;
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert!(
        failed.lock().unwrap().is_empty(),
        "{:?}",
        failed.lock().unwrap()
    );
    assert_eq!(acked.lock().unwrap().len(), N);

    let c = consumer(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset("idem", p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen = vec![false; N];
    let mut last_per_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count < N {
        assert!(Instant::now() < deadline, "read {count} of {N}");
        let Some(m) = c.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("consume");
        let i: usize = std::str::from_utf8(m.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            !seen[i],
            "record {i} written twice (at {}/{})",
            m.partition(),
            m.offset()
        );
        seen[i] = true;
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        if let Some(prev) = last_per_key.insert(key.clone(), i) {
            assert!(prev < i, "key {key}: {i} after {prev}: out of send order");
        }
        count += 1;
    }
    assert!(keel.stop());
    let _ = std::fs::remove_dir_all(&dir);
}
