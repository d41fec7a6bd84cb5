//! Key compaction seen through librdkafka (the `rdkafka` crate) against a real `keel serve`:
//! a `cleanup.policy=compact` topic takes many updates per key and some tombstones, and once
//! the cleaner has run, a consumer reading from the beginning finds exactly the latest value
//! of every live key at the offset it was written at, no deleted key, and the same after a
//! restart. A record without a key is refused, as Kafka refuses it.

mod common;

use keel_tests::{temp_data_dir, Keel};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A partition as read back: offset to (key, value).
type Log = BTreeMap<i64, (Option<Vec<u8>>, Option<Vec<u8>>)>;

const TOPIC: &str = "compacted";
const KEYS: usize = 20;
const ROUNDS: usize = 50;
/// Keys deleted by a tombstone after the last round; delete.retention.ms is 0, so once the
/// cleaner has run they leave no record at all.
const DELETED: usize = 5;

/// What the broker acknowledged: offset → (key, value), or the error of a refused record.
#[derive(Clone, Default)]
struct Acks {
    ok: Arc<Mutex<Log>>,
    refused: Arc<Mutex<Vec<KafkaError>>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let entry = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec));
                self.ok.lock().unwrap().insert(m.offset(), entry);
            }
            Err((e, _)) => self.refused.lock().unwrap().push(e.clone()),
        }
    }
}

fn create_topic(bootstrap: &str) {
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("delete.retention.ms", "0");
    common::create_topic(bootstrap, topic);
}

fn producer(bootstrap: &str, acks: &Acks) -> ThreadedProducer<Acks> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("enable.idempotence", "true")
        .create_with_context(acks.clone())
        .expect("producer")
}

fn send(p: &ThreadedProducer<Acks>, key: Option<&str>, value: Option<&str>) {
    let mut record = BaseRecord::<str, str>::to(TOPIC).partition(0);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(v) = value {
        record = record.payload(v);
    }
    p.send(record).map_err(|(e, _)| e).expect("queued");
}

/// Every record from the beginning to the high watermark: offset → (key, value).
fn read_all(bootstrap: &str) -> Log {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut position = -1;
    while position + 1 < high {
        assert!(
            Instant::now() < deadline,
            "reading stalled at {position} of {high}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let m: OwnedMessage = m.detach();
                position = m.offset();
                out.insert(
                    m.offset(),
                    (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)),
                );
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out
}

fn key(i: usize) -> String {
    format!("key-{i:02}")
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_each_key_at_its_offset() {
    let dir = temp_data_dir("rdkafka-compaction");
    let mut keel = Keel::start(&dir, &["--log-cleaner-backoff-ms", "100"]);
    let bootstrap = keel.addr.to_string();
    create_topic(&bootstrap);

    let acks = Acks::default();
    let p = producer(&bootstrap, &acks);
    // One flush per round: left alone, librdkafka would put everything into one batch, and
    // a batch never spans segments, so nothing would be left for the cleaner to clean.
    for round in 0..ROUNDS {
        for i in 0..KEYS {
            send(&p, Some(&key(i)), Some(&format!("{}-v{round}", key(i))));
        }
        p.flush(Duration::from_secs(30)).expect("flush");
    }
    for i in 0..DELETED {
        send(&p, Some(&key(i)), None);
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    // Fills the active segment past the interesting records, so that all of them end up in
    // sealed segments, which are the only ones the cleaner touches.
    for n in 0..200 {
        send(
            &p,
            Some("filler"),
            Some(&format!("filler-{n:04}-{}", "x".repeat(40))),
        );
        if n % 20 == 19 {
            p.flush(Duration::from_secs(30)).expect("flush");
        }
    }
    let produced = acks.ok.lock().unwrap().clone();
    assert_eq!(
        produced.len(),
        KEYS * ROUNDS + DELETED + 200,
        "every record acknowledged"
    );
    assert!(acks.refused.lock().unwrap().is_empty());

    // Kafka refuses a keyless record on a compacted topic.
    let keyless = Acks::default();
    let q = producer(&bootstrap, &keyless);
    send(&q, None, Some("no key"));
    q.flush(Duration::from_secs(30)).expect("flush");
    let refused = keyless.refused.lock().unwrap().clone();
    assert!(
        keyless.ok.lock().unwrap().is_empty(),
        "a keyless record was stored"
    );
    assert_eq!(
        refused.first().and_then(KafkaError::rdkafka_error_code),
        Some(RDKafkaErrorCode::InvalidRecord),
        "{refused:?}"
    );

    // The latest record of each key, as the producer saw it acknowledged.
    let mut latest: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    for (&offset, (k, _)) in &produced {
        latest.insert(k.clone().expect("keyed"), offset);
    }
    let compacted = |log: &Log| {
        log.iter().all(|(offset, (k, v))| {
            let k = k.as_deref().unwrap();
            k == b"filler" || (latest[k] == *offset && v.is_some())
        })
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    let log = loop {
        let log = read_all(&bootstrap);
        // Whatever state the cleaner is in, every record served is the one written at
        // that offset: compaction removes records, it never moves or alters them.
        for (offset, record) in &log {
            assert_eq!(
                Some(record),
                produced.get(offset),
                "offset {offset} changed"
            );
        }
        if compacted(&log) {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner did not finish: {} of {} records left",
            log.len(),
            produced.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for (k, &offset) in &latest {
        let deleted = (0..DELETED).any(|i| key(i).as_bytes() == k.as_slice());
        if deleted {
            assert!(
                !log.values()
                    .any(|(lk, _)| lk.as_deref() == Some(k.as_slice())),
                "deleted key {} is still served",
                String::from_utf8_lossy(k)
            );
        } else {
            assert_eq!(log.get(&offset), produced.get(&offset), "latest value lost");
        }
    }
    assert!(
        log.len() < produced.len() / 2,
        "only {} records removed",
        produced.len() - log.len()
    );

    // Compaction left offset gaps in sealed segments: recovery must accept them.
    assert!(keel.stop(), "keel serve did not stop cleanly");
    keel.restart();
    assert_eq!(
        read_all(&bootstrap),
        log,
        "the compacted log changed across a restart"
    );

    // Back to cleanup.policy=delete, as Kafka allows: the thinned segments stay readable,
    // also across a restart, and keyless records are taken again.
    set_delete_policy(&bootstrap);
    let after = Acks::default();
    let q = producer(&bootstrap, &after);
    send(&q, None, Some("keyless after compaction"));
    q.flush(Duration::from_secs(30)).expect("flush");
    assert!(
        after.refused.lock().unwrap().is_empty(),
        "{:?}",
        after.refused
    );
    let mut expected = log.clone();
    expected.extend(after.ok.lock().unwrap().clone());
    assert_eq!(expected.len(), log.len() + 1);
    assert!(keel.stop(), "keel serve did not stop cleanly");
    keel.restart();
    assert_eq!(
        read_all(&bootstrap),
        expected,
        "a once-compacted log changed across a restart"
    );
}

/// AlterConfigs (rdkafka has no IncrementalAlterConfigs) with the topic's whole new set.
fn set_delete_policy(bootstrap: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin client");
        let change = AlterConfig::new(ResourceSpecifier::Topic(TOPIC))
            .set("cleanup.policy", "delete")
            .set("segment.bytes", "4096");
        admin
            .alter_configs([&change], &AdminOptions::new())
            .await
            .expect("alter_configs");
    });
}
