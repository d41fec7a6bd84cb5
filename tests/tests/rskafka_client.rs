//! rskafka (pure Rust) against a real `keel serve`: topic creation, produce with every
//! compression codec, fetch back, and offset lookups (earliest, latest, by time).

use chrono::{TimeZone, Utc};
use keel_tests::{temp_data_dir, Keel};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use std::collections::BTreeMap;

const BASE_TS: i64 = 1_700_000_000_000;

fn record(i: i64) -> Record {
    Record {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(vec![b'v'; (i % 300) as usize]),
        headers: BTreeMap::from([("i".to_string(), i.to_string().into_bytes())]),
        timestamp: Utc.timestamp_millis_opt(BASE_TS + i * 10).unwrap(),
    }
}

#[tokio::test]
async fn produce_every_codec_fetch_and_look_up_offsets() {
    let dir = temp_data_dir("rskafka");
    let mut keel = Keel::start(&dir, &[]);
    let client = ClientBuilder::new(vec![keel.bootstrap()])
        .build()
        .await
        .expect("client");
    client
        .controller_client()
        .unwrap()
        .create_topic("events", 3, 1, 5_000)
        .await
        .expect("create_topic");
    let topics = client.list_topics().await.unwrap();
    let events = topics.iter().find(|t| t.name == "events").expect("listed");
    assert_eq!(events.partitions.len(), 3);

    let codecs = [
        Compression::NoCompression,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Zstd,
    ];
    let mut expected: BTreeMap<(i32, i64), Record> = BTreeMap::new();
    let mut i = 0i64;
    for partition in 0..3 {
        let pc = client
            .partition_client("events", partition, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        for codec in codecs {
            let batch: Vec<Record> = (0..200)
                .map(|_| {
                    i += 1;
                    record(i)
                })
                .collect();
            let offsets = pc.produce(batch.clone(), codec).await.expect("produce");
            assert_eq!(offsets.len(), batch.len());
            for (o, r) in offsets.into_iter().zip(batch) {
                expected.insert((partition, o), r);
            }
        }
    }
    let check_all = |expected: BTreeMap<(i32, i64), Record>| {
        let client = &client;
        async move {
            for partition in 0..3 {
                let pc = client
                    .partition_client("events", partition, UnknownTopicHandling::Retry)
                    .await
                    .unwrap();
                let mut offset = 0;
                let want: Vec<_> = expected
                    .iter()
                    .filter(|((p, _), _)| *p == partition)
                    .collect();
                let mut got = Vec::new();
                while got.len() < want.len() {
                    let (records, hw) = pc
                        .fetch_records(offset, 1..1_000_000, 1_000)
                        .await
                        .expect("fetch");
                    assert_eq!(hw, want.len() as i64);
                    for r in records {
                        offset = r.offset + 1;
                        got.push(r);
                    }
                }
                for (r, ((_, o), w)) in got.iter().zip(want.iter()) {
                    assert_eq!(r.offset, *o);
                    assert_eq!(&r.record, *w, "record at {partition}/{o}");
                }
                assert_eq!(pc.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
                assert_eq!(
                    pc.get_offset(OffsetAt::Latest).await.unwrap(),
                    want.len() as i64
                );
            }
        }
    };
    check_all(expected.clone()).await;

    // By time: the first offset whose timestamp is >= the probe.
    let pc = client
        .partition_client("events", 1, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let in_p1: Vec<_> = expected.iter().filter(|((p, _), _)| *p == 1).collect();
    let (probe_offset, probe) = (in_p1[345].0 .1, in_p1[345].1.timestamp);
    assert_eq!(
        pc.get_offset(OffsetAt::Timestamp(probe)).await.unwrap(),
        probe_offset
    );
    let just_after = probe + chrono::Duration::milliseconds(1);
    assert_eq!(
        pc.get_offset(OffsetAt::Timestamp(just_after))
            .await
            .unwrap(),
        probe_offset + 1
    );

    assert!(keel.stop(), "SIGTERM exits 0");
    keel.restart();
    let client = ClientBuilder::new(vec![keel.bootstrap()])
        .build()
        .await
        .expect("client");
    let check_after = {
        let client = &client;
        let expected = expected.clone();
        async move {
            for partition in 0..3 {
                let pc = client
                    .partition_client("events", partition, UnknownTopicHandling::Retry)
                    .await
                    .unwrap();
                let (records, _) = pc
                    .fetch_records(0, 1..100_000_000, 1_000)
                    .await
                    .expect("fetch");
                assert!(!records.is_empty());
                for r in records {
                    assert_eq!(Some(&r.record), expected.get(&(partition, r.offset)));
                }
            }
        }
    };
    check_after.await;
    let _ = check_all;
    let _ = std::fs::remove_dir_all(&dir);
}
