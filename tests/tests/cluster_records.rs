//! Records in a cluster of three `keel serve` processes on loopback, written and read by
//! librdkafka (through `rdkafka`): topics are placed across the brokers by the controller,
//! and records acknowledged with acks=all stay readable at their offsets across a kill -9
//! of the broker that holds them, while the other brokers' partitions keep taking writes.
//! (tests/cluster.rs covers the controller's elections and failover.)

use keel_net::client::{connect_tcp, ClientOptions};
use keel_tests::{free_port, temp_data_dir, Keel};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Short timeouts, so elections and fencing take well under a second or two here.
const ELECTION_TIMEOUT_MS: &str = "300";

struct Cluster {
    brokers: BTreeMap<i32, Keel>,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let peers: BTreeMap<i32, u16> = (1..=3).map(|id| (id, free_port())).collect();
        let voters = peers
            .iter()
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let brokers = peers
            .keys()
            .map(|&id| {
                let dir = temp_data_dir(&format!("{name}-{id}"));
                let node_id = id.to_string();
                let args = [
                    "--node-id",
                    node_id.as_str(),
                    "--voters",
                    voters.as_str(),
                    "--election-timeout-ms",
                    ELECTION_TIMEOUT_MS,
                ];
                (id, Keel::start(&dir, &args))
            })
            .collect();
        Cluster { brokers }
    }

    fn bootstrap(&self) -> String {
        self.brokers
            .values()
            .map(Keel::bootstrap)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn addr(&self, id: i32) -> SocketAddr {
        self.brokers[&id].addr
    }

    fn logs(&self) -> String {
        self.brokers
            .iter()
            .map(|(id, k)| format!("--- broker {id}\n{}", k.log()))
            .collect()
    }
}

/// (controller id, live broker ids) as broker `addr` answers Metadata, if it answers.
async fn view(addr: SocketAddr) -> Option<(i32, Vec<i32>)> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    let mut client = connect_tcp(addr, options).await.ok()?;
    let m = client.metadata(Some(&[])).await.ok()?;
    let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    Some((m.controller_id, ids))
}

/// Waits until every broker in `among` names one controller (other than `not`) and lists
/// exactly `live`; returns the controller. Polls; no wall-clock bound is asserted beyond a
/// generous give-up.
async fn agreed(c: &Cluster, among: &[i32], live: &[i32], not: Option<i32>) -> i32 {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for &id in among {
            views.push(view(c.addr(id)).await);
        }
        if let Some(Some((controller, _))) = views.first() {
            let all = views
                .iter()
                .all(|v| v.as_ref() == Some(&(*controller, live.to_vec())));
            if all && *controller > 0 && Some(*controller) != not {
                return *controller;
            }
        }
        assert!(
            Instant::now() < give_up,
            "no agreement on a controller with brokers {live:?}: {views:?}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_acknowledged_by_a_cluster_are_readable_at_their_offsets_after_kill_9() {
    const TOPIC: &str = "spread";
    const PARTITIONS: i32 = 6;
    let mut c = Cluster::start("cluster-records");
    let all = [1, 2, 3];
    agreed(&c, &all, &all, None).await;

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create_topics")
    {
        r.expect("topic created");
    }

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("acks", "all")
        .set("message.timeout.ms", "8000")
        .create()
        .expect("producer");
    let mut acked: BTreeMap<(i32, i64), String> = BTreeMap::new();
    // Every record is enqueued at once and librdkafka sends them together; the answers
    // are then awaited one by one (a record for a dead broker waits out message.timeout.ms).
    let send = |round: &str, n: usize| {
        let producer = producer.clone();
        let round = round.to_string();
        async move {
            let mut pending = Vec::new();
            for i in 0..n {
                let value = format!("{round}-{i}");
                let partition = (i % PARTITIONS as usize) as i32;
                let record = FutureRecord::<(), _>::to(TOPIC)
                    .payload(&value)
                    .partition(partition);
                let delivery = producer.send_result(record).map_err(|(e, _)| e);
                pending.push((partition, value.clone(), delivery));
            }
            let mut results = Vec::new();
            for (partition, value, delivery) in pending {
                let r = match delivery {
                    Ok(d) => match d.await {
                        Ok(Ok(d)) => Ok(d.offset),
                        Ok(Err((e, _))) => Err(e.to_string()),
                        Err(_) => Err("delivery cancelled".to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                results.push((partition, value, r));
            }
            results
        }
    };
    for (p, value, r) in send("before", 600).await {
        let offset = r.unwrap_or_else(|e| panic!("produce to {p} failed: {e}"));
        assert!(acked.insert((p, offset), value).is_none(), "offset reused");
    }

    // Which broker leads partition 0? Kill it: its partitions stop, the others go on.
    let metadata = producer
        .client()
        .fetch_metadata(Some(TOPIC), Duration::from_secs(10))
        .expect("metadata");
    let leaders: BTreeMap<i32, i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect();
    let victim = leaders[&0];
    c.brokers.get_mut(&victim).unwrap().kill9();
    let mut refused = 0;
    for (p, value, r) in send("during", 120).await {
        match r {
            Ok(offset) => {
                assert_ne!(leaders[&p], victim, "a dead broker acknowledged");
                assert!(acked.insert((p, offset), value).is_none(), "offset reused");
            }
            // Its partitions have no leader until it is back (replication factor 1).
            Err(_) => {
                assert_eq!(
                    leaders[&p], victim,
                    "a live broker's partition refused: {p}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
    c.brokers.get_mut(&victim).unwrap().restart();
    agreed(&c, &all, &all, None).await;
    for (p, value, r) in send("after", 60).await {
        let offset = r.unwrap_or_else(|e| panic!("produce to {p} after the restart: {e}"));
        assert!(acked.insert((p, offset), value).is_none(), "offset reused");
    }

    // Every acknowledged record, read back from the cluster at its offset.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", "cluster-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(TOPIC, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut read: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let give_up = Instant::now() + Duration::from_secs(60);
    while read.len() < acked.len() && Instant::now() < give_up {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            let earlier = read.insert((m.partition(), m.offset()), value);
            assert!(earlier.is_none(), "offset {} read twice", m.offset());
        }
    }
    for (at, value) in &acked {
        assert_eq!(read.get(at), Some(value), "acknowledged record at {at:?}");
    }
}
