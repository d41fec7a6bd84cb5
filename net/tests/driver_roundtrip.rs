//! The driver end to end over real TCP: produce and fetch back, acks=-1 answered only after
//! the fsync, and data surviving a clean restart on the same directory.

mod driver_util;

use bytes::Bytes;
use driver_util::{TempDir, TestServer};
use keel_core::record::builder::{build_batch, Record};
use keel_core::record::{split_batches, BatchHeader, ATTRIBUTES_AT};
use keel_core::storage::Storage;
use keel_net::codec::{self, ApiKey, RequestBody, RequestHeader, ResponseBody};
use keel_net::fs_storage::FsStorage;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(v.as_bytes().to_vec()),
            headers: vec![("h".to_string(), Some(b"v".to_vec()))],
            timestamp_ms: 1_700_000_000_000 + i as i64,
        })
        .collect();
    build_batch(&records)
}

/// The stored batch is the produced one with only baseOffset and partitionLeaderEpoch
/// rewritten: everything the CRC covers is unchanged.
fn assert_same_batch(stored: &Bytes, produced: &Bytes, base_offset: i64) {
    let header = BatchHeader::new(stored).unwrap();
    assert_eq!(header.base_offset(), base_offset);
    assert_eq!(stored.len(), produced.len());
    assert_eq!(stored[ATTRIBUTES_AT..], produced[ATTRIBUTES_AT..]);
}

async fn fetch_all(
    client: &mut keel_net::client::Client<tokio::net::TcpStream>,
    topic: &str,
    offset: i64,
) -> Vec<Bytes> {
    let data = client
        .fetch(topic, 0, offset, Duration::from_millis(500), 1 << 20)
        .await
        .unwrap();
    assert_eq!(data.error_code, 0);
    let records = data.records.expect("never a null record set");
    split_batches(&records).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_and_restart() {
    let dir = TempDir::new("roundtrip");
    let server = TestServer::start(&dir).await;
    let mut client = server.client().await;

    let created = client.create_topics(&[("orders", 1)], 5_000).await.unwrap();
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    let metadata = client.metadata(Some(&["orders"])).await.unwrap();
    assert_eq!(metadata.brokers[0].port, i32::from(server.addr.port()));
    assert_eq!(metadata.topics[0].partitions.len(), 1);

    let first = batch(&["a", "b", "c"]);
    let second = batch(&["d"]);
    let r = client
        .produce("orders", 0, first.clone(), -1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let r = client
        .produce("orders", 0, second.clone(), -1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 3));

    let batches = fetch_all(&mut client, "orders", 0).await;
    assert_eq!(batches.len(), 2);
    assert_same_batch(&batches[0], &first, 0);
    assert_same_batch(&batches[1], &second, 3);
    let end = client
        .list_offsets("orders", 0, keel_core::api::LATEST_TIMESTAMP)
        .await
        .unwrap();
    assert_eq!((end.error_code, end.offset), (0, 4));

    // An unknown partition is an error code, not a closed connection.
    let r = client
        .produce("orders", 9, batch(&["x"]), -1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    drop(client);
    server.stop().await;

    let server = TestServer::start(&dir).await;
    let mut client = server.client().await;
    let batches = fetch_all(&mut client, "orders", 0).await;
    assert_eq!(batches.len(), 2, "both batches survive the restart");
    assert_same_batch(&batches[0], &first, 0);
    assert_same_batch(&batches[1], &second, 3);
    let r = client
        .produce("orders", 0, batch(&["e"]), -1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 4));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_is_silent_and_a_failed_one_closes_the_connection() {
    let dir = TempDir::new("acks0");
    let server = TestServer::start(&dir).await;
    let mut client = server.client().await;
    client.create_topics(&[("t", 1)], 5_000).await.unwrap();
    // acks=0: no response; the next request's response must still match its correlation id.
    assert!(client
        .produce("t", 0, batch(&["a"]), 0)
        .await
        .unwrap()
        .is_none());
    let r = client
        .produce("t", 0, batch(&["b"]), -1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 1));
    // A failed acks=0 produce closes the connection, as Kafka does.
    assert!(client
        .produce("missing", 0, batch(&["c"]), 0)
        .await
        .unwrap()
        .is_none());
    let after = client.metadata(None).await;
    assert!(after.is_err(), "the connection was closed: {after:?}");
    let mut other = server.client().await;
    assert_eq!(fetch_all(&mut other, "t", 0).await.len(), 2);
    server.stop().await;
}

/// A disk whose fsyncs wait for a gate and are counted.
struct GatedDisk {
    inner: FsStorage,
    open: Mutex<bool>,
    opened: Condvar,
    syncs: AtomicU64,
}

impl GatedDisk {
    fn set_open(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl Storage for GatedDisk {
    fn append(&self, file: &str, bufs: &[&[u8]]) -> io::Result<()> {
        self.inner.append(file, bufs)
    }
    fn read_at(&self, file: &str, pos: u64, len: usize) -> io::Result<Bytes> {
        self.inner.read_at(file, pos, len)
    }
    fn len(&self, file: &str) -> io::Result<Option<u64>> {
        self.inner.len(file)
    }
    fn truncate(&self, file: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(file, len)
    }
    fn remove(&self, file: &str) -> io::Result<()> {
        self.inner.remove(file)
    }
    fn list(&self, dir: &str) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn replace(&self, file: &str, contents: &[u8]) -> io::Result<()> {
        self.inner.replace(file, contents)
    }
    fn sync(&self, file: &str) -> io::Result<()> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync(file)
    }
}

/// DESIGN.md "Only after fsync": an acks=-1 produce is answered only after its `Flushed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_waits_for_the_fsync() {
    let dir = TempDir::new("gated");
    let disk = Arc::new(GatedDisk {
        inner: FsStorage::open(&dir.0).unwrap(),
        open: Mutex::new(true),
        opened: Condvar::new(),
        syncs: AtomicU64::new(0),
    });
    let server = TestServer::start_with_storage(disk.clone()).await;
    let mut client = server.client().await;
    client.create_topics(&[("t", 1)], 5_000).await.unwrap();

    disk.set_open(false);
    let syncs_before = disk.syncs.load(Ordering::SeqCst);
    let produce = tokio::spawn(async move {
        let r = client.produce("t", 0, batch(&["a", "b"]), -1).await;
        (client, r)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!produce.is_finished(), "acks=-1 answered before the fsync");
    // Other connections are served meanwhile.
    let mut other = server.client().await;
    other.metadata(None).await.unwrap();

    disk.set_open(true);
    let (_client, r) = tokio::time::timeout(Duration::from_secs(5), produce)
        .await
        .unwrap()
        .unwrap();
    let r = r.unwrap().unwrap();
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    assert!(
        disk.syncs.load(Ordering::SeqCst) > syncs_before,
        "the segment was synced"
    );
    assert_eq!(fetch_all(&mut other, "t", 0).await.len(), 1);
    server.stop().await;
}

async fn read_response(
    stream: &mut tokio::net::TcpStream,
    key: ApiKey,
    version: i16,
) -> (i32, ResponseBody) {
    let mut prefix = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut prefix))
        .await
        .unwrap()
        .unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut frame).await.unwrap();
    codec::decode_response(key, version, Bytes::from(frame)).unwrap()
}

/// The core answers out of order (a fetch long-polls, a metadata request is immediate); the
/// connection still answers in request order (Kafka protocol guide: "in the order sent").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_responses_come_back_in_request_order() {
    let dir = TempDir::new("order");
    let server = TestServer::start(&dir).await;
    let mut client = server.client().await;
    client.create_topics(&[("t", 1)], 5_000).await.unwrap();

    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let fetch = codec::FetchRequest {
        max_wait_ms: 300,
        min_bytes: 1,
        max_bytes: 1 << 20,
        topics: vec![codec::FetchTopic {
            topic: "t".into(),
            partitions: vec![codec::FetchPartition {
                partition: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = bytes::BytesMut::new();
    let header = |key: ApiKey, version: i16, correlation_id: i32| RequestHeader {
        api_key: key as i16,
        api_version: version,
        correlation_id,
        client_id: Some("order".into()),
    };
    codec::encode_request(
        &header(ApiKey::Fetch, 12, 1),
        &RequestBody::Fetch(fetch),
        &mut out,
    );
    codec::encode_request(
        &header(ApiKey::Metadata, 12, 2),
        &RequestBody::Metadata(Default::default()),
        &mut out,
    );
    stream.write_all(&out).await.unwrap();
    let started = tokio::time::Instant::now();
    let (first, body) = read_response(&mut stream, ApiKey::Fetch, 12).await;
    assert_eq!(first, 1);
    let ResponseBody::Fetch(f) = body else {
        panic!("not a fetch response")
    };
    assert_eq!(f.session_id, 0);
    assert_eq!(
        f.responses[0].partitions[0].records,
        Some(Bytes::new()),
        "empty, never null"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the empty fetch long-polled"
    );
    let (second, body) = read_response(&mut stream, ApiKey::Metadata, 12).await;
    assert_eq!(second, 2);
    assert!(matches!(body, ResponseBody::Metadata(_)));
    server.stop().await;
}

/// Backpressure: with 8 requests in flight (the test server's limit) the driver stops
/// reading, so 20 pipelined long-polls take three rounds of max_wait, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_per_connection_are_bounded() {
    let dir = TempDir::new("inflight");
    let server = TestServer::start(&dir).await;
    let mut client = server.client().await;
    client.create_topics(&[("t", 1)], 5_000).await.unwrap();

    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut out = bytes::BytesMut::new();
    for correlation_id in 0..20 {
        let fetch = codec::FetchRequest {
            max_wait_ms: 200,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![codec::FetchTopic {
                topic: "t".into(),
                partitions: vec![codec::FetchPartition {
                    partition: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let header = RequestHeader {
            api_key: ApiKey::Fetch as i16,
            api_version: 11,
            correlation_id,
            client_id: None,
        };
        codec::encode_request(&header, &RequestBody::Fetch(fetch), &mut out);
    }
    stream.write_all(&out).await.unwrap();
    let started = tokio::time::Instant::now();
    for expected in 0..20 {
        let (correlation_id, _) = read_response(&mut stream, ApiKey::Fetch, 11).await;
        assert_eq!(correlation_id, expected);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(500),
        "20 long-polls with 8 in flight took only {elapsed:?}"
    );
    server.stop().await;
}
