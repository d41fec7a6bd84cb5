//! Bad input closes only the connection that sent it (DESIGN.md "Errors by whose fault"),
//! and ApiVersions above our range gets a v0 UNSUPPORTED_VERSION answer (KAFKA.md §2).

mod driver_util;

use bytes::{BufMut, Bytes, BytesMut};
use driver_util::{TempDir, TestServer};
use keel_net::codec::{self, ApiKey, ResponseBody};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A v1 request header (key, version, correlation id, client id) and `body`, length-prefixed.
fn raw_request(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_i16(api_key);
    frame.put_i16(api_version);
    frame.put_i32(correlation_id);
    frame.put_i16(4);
    frame.put_slice(b"test");
    frame.put_slice(body);
    let mut out = BytesMut::new();
    out.put_i32(frame.len() as i32);
    out.put_slice(&frame);
    out.freeze()
}

/// Sends `bytes` on a fresh connection and asserts that the server closes it.
async fn assert_closed_after(addr: SocketAddr, bytes: &[u8], half_close: bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if half_close {
        stream.shutdown().await.unwrap();
    }
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    match read.expect("the server closes the connection within 5 s") {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected a closed connection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_connections_are_closed_and_others_keep_working() {
    let dir = TempDir::new("bad");
    let server = TestServer::start(&dir).await;
    let mut good = server.client().await;
    good.create_topics(&[("t", 1)], 5_000).await.unwrap();

    // Garbage: a frame whose header cannot be read.
    assert_closed_after(server.addr, &[0, 0, 0, 3, 0xff, 0xee, 0xdd], false).await;
    // A length prefix of 2 GB (and a negative one): refused before anything is allocated.
    assert_closed_after(server.addr, &[0x7f, 0xff, 0xff, 0xff], false).await;
    assert_closed_after(server.addr, &[0x80, 0, 0, 0], false).await;
    // A frame just over the configured 1 MiB maximum.
    assert_closed_after(server.addr, &(1024 * 1024 + 1u32).to_be_bytes(), false).await;
    // A truncated frame: the peer ends the stream mid-frame.
    assert_closed_after(server.addr, &[0, 0, 0, 100, 0, 3, 0, 0], true).await;
    // An api key Keel does not implement (JoinGroup), and a version it does not implement.
    assert_closed_after(server.addr, &raw_request(11, 5, 1, &[]), false).await;
    assert_closed_after(server.addr, &raw_request(3, 99, 1, &[]), false).await;
    // A known request with a malformed body (Metadata v1 with a topic count and no topics).
    assert_closed_after(server.addr, &raw_request(3, 1, 1, &[0, 0, 0, 5]), false).await;

    // The first connection never noticed.
    let metadata = good.metadata(None).await.unwrap();
    assert_eq!(metadata.topics.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_above_our_range_gets_error_35_and_the_list() {
    let dir = TempDir::new("apiversions");
    let server = TestServer::start(&dir).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(&raw_request(ApiKey::ApiVersions as i16, 99, 42, &[1, 2, 3]))
        .await
        .unwrap();
    let mut prefix = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut prefix))
        .await
        .unwrap()
        .unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut frame).await.unwrap();
    let (correlation_id, body) =
        codec::decode_response(ApiKey::ApiVersions, 0, Bytes::from(frame)).unwrap();
    assert_eq!(correlation_id, 42);
    let ResponseBody::ApiVersions(r) = body else {
        panic!("not ApiVersions")
    };
    assert_eq!(r.error_code, 35);
    let listed: Vec<(i16, i16, i16)> = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    let ours: Vec<(i16, i16, i16)> = codec::SUPPORTED_APIS
        .iter()
        .map(|&(k, min, max)| (k as i16, min, max))
        .collect();
    assert_eq!(listed, ours);

    // The connection stays usable: a supported ApiVersions now succeeds on it.
    stream
        .write_all(&raw_request(ApiKey::ApiVersions as i16, 0, 43, &[]))
        .await
        .unwrap();
    stream.read_exact(&mut prefix).await.unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut frame).await.unwrap();
    let (correlation_id, body) =
        codec::decode_response(ApiKey::ApiVersions, 0, Bytes::from(frame)).unwrap();
    assert_eq!(correlation_id, 43);
    let ResponseBody::ApiVersions(r) = body else {
        panic!("not ApiVersions")
    };
    assert_eq!(r.error_code, 0);
    server.stop().await;
}
