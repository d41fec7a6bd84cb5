//! kill -9 during acks=-1 produce loses nothing that was acknowledged: after each restart
//! every acknowledged record is readable at the offset it was given (issue: durability).

use keel_tests::{temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPIC: &str = "durable";

struct Acks(Arc<Mutex<BTreeMap<(i32, i64), String>>>);
impl ClientContext for Acks {}
impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            let previous = self
                .0
                .lock()
                .unwrap()
                .insert((m.partition(), m.offset()), value.clone());
            assert!(
                previous.is_none(),
                "two records acknowledged at {}/{}",
                m.partition(),
                m.offset()
            );
        }
    }
}

#[test]
fn acknowledged_records_survive_kill_9() {
    let dir = temp_data_dir("kill9");
    let mut keel = Keel::start(&dir, &["--num-partitions", "2"]);
    let bootstrap = keel.bootstrap();
    let acks = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "60000")
        .set("retry.backoff.ms", "50")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "200")
        .create_with_context(Acks(acks.clone()))
        .expect("producer");
    let producer = Arc::new(producer);
    let sender = {
        let producer = producer.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("v{i}");
                let key = format!("k{}", i % 16);
                match producer.send(
                    BaseRecord::<String, String>::to(TOPIC)
                        .key(&key)
                        .payload(&value),
                ) {
                    Ok(()) => i += 1,
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
                if i.is_multiple_of(200) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    for round in 0..3 {
        let before = acks.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while acks.lock().unwrap().len() < before + 2_000 {
            assert!(
                Instant::now() < deadline,
                "round {round}: produce made no progress; log: {}",
                keel.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        keel.kill9();
        std::thread::sleep(Duration::from_millis(200));
        keel.restart();
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    producer
        .flush(Duration::from_secs(60))
        .expect("flush after the last restart");
    let acked = acks.lock().unwrap().clone();
    assert!(acked.len() >= 6_000);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let last_acked: BTreeMap<i32, i64> = acked.keys().fold(BTreeMap::new(), |mut m, (p, o)| {
        let e = m.entry(*p).or_insert(*o);
        *e = (*e).max(*o);
        m
    });
    let mut read: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut done: BTreeMap<i32, bool> = last_acked.keys().map(|p| (*p, false)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.values().any(|d| !d) {
        assert!(
            Instant::now() < deadline,
            "could not read back to the last acknowledged offsets {last_acked:?}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.expect("consume");
        read.insert(
            (m.partition(), m.offset()),
            String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string(),
        );
        if m.offset() >= last_acked[&m.partition()] {
            done.insert(m.partition(), true);
        }
    }
    for ((p, o), v) in &acked {
        assert_eq!(
            read.get(&(*p, *o)),
            Some(v),
            "acknowledged record {p}/{o} lost or changed after kill -9"
        );
    }
    assert!(keel.stop());
    let _ = std::fs::remove_dir_all(&dir);
}
