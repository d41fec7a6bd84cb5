//! The client against peers that are not Kafka brokers, over in-memory streams: what each
//! one's first answer becomes ([`ClientError::NotKafka`] as soon as it arrives, a timeout only
//! for a peer that stays silent), and that a peer which has answered in Kafka is no longer
//! judged so.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn options(request_timeout: Duration) -> ClientOptions {
    ClientOptions {
        request_timeout,
        ..ClientOptions::default()
    }
}

/// A peer that reads whatever request comes, answers `reply` and hangs up.
fn peer_answering(reply: &'static [u8]) -> DuplexStream {
    let (client_side, mut peer) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let _ = peer.read(&mut buf).await;
        let _ = peer.write_all(reply).await;
    });
    client_side
}

/// Reads one request frame from `peer`; returns (correlation id, api version) of its header.
async fn read_request(peer: &mut DuplexStream) -> (i32, i16) {
    let mut prefix = [0u8; 4];
    peer.read_exact(&mut prefix).await.expect("a request");
    let mut frame = vec![0u8; u32::from_be_bytes(prefix) as usize];
    peer.read_exact(&mut frame)
        .await
        .expect("the whole request");
    let (header, _) = codec::decode_request(Bytes::from(frame)).expect("a valid request");
    (header.correlation_id, header.api_version)
}

async fn not_kafka(stream: DuplexStream) -> ForeignReply {
    let mut client = Client::from_stream(stream, options(Duration::from_secs(5)));
    match client.handshake().await {
        Err(ClientError::NotKafka { peer: None, reply }) => reply,
        other => panic!("expected NotKafka, got {other:?}"),
    }
}

#[tokio::test]
async fn an_http_server_is_named_not_read_as_a_frame_length() {
    let reply = not_kafka(peer_answering(
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ))
    .await;
    assert_eq!(
        reply,
        ForeignReply::Http {
            status_line: "HTTP/1.1 400 Bad Request".into()
        }
    );
}

#[tokio::test]
async fn a_peer_that_hangs_up_or_sends_garbage_does_not_speak_kafka() {
    assert_eq!(
        not_kafka(peer_answering(b"")).await,
        ForeignReply::Closed { bytes: vec![] }
    );
    assert_eq!(
        not_kafka(peer_answering(b"\x00\x00")).await,
        ForeignReply::Closed { bytes: vec![0, 0] }
    );
    assert_eq!(
        not_kafka(peer_answering(b"SSH-2.0-OpenSSH_9.6\r\n")).await,
        ForeignReply::Garbage {
            bytes: b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()
        }
    );
    // A plausible length, then bytes that are no ApiVersions response.
    assert_eq!(
        not_kafka(peer_answering(b"\x00\x00\x00\x04abcd")).await,
        ForeignReply::Garbage {
            bytes: b"\x00\x00\x00\x04abcd".to_vec()
        }
    );
    // Above the first-response bound, below the general one: not an ApiVersions answer.
    assert_eq!(
        not_kafka(peer_answering(b"\x00\x20\x00\x00")).await,
        ForeignReply::Garbage {
            bytes: b"\x00\x20\x00\x00".to_vec()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out_at_the_request_timeout() {
    let (client_side, _peer) = tokio::io::duplex(64 * 1024);
    let mut client = Client::from_stream(client_side, options(Duration::from_secs(3)));
    match client.handshake().await {
        Err(ClientError::Timeout(t)) => assert_eq!(t, Duration::from_secs(3)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn once_the_peer_answered_in_kafka_a_hang_up_is_an_io_error() {
    let (client_side, mut peer) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let (correlation_id, version) = read_request(&mut peer).await;
        let response = codec::ApiVersionsResponse {
            api_keys: vec![codec::ApiVersion {
                api_key: ApiKey::Metadata as i16,
                min_version: 0,
                max_version: 12,
            }],
            ..Default::default()
        };
        let mut out = BytesMut::new();
        codec::encode_response(
            version,
            correlation_id,
            &ResponseBody::ApiVersions(response),
            &mut out,
        );
        peer.write_all(&out).await.expect("the answer is written");
        // Then the next request is read and the connection closed without an answer.
        let _ = read_request(&mut peer).await;
    });
    let mut client = Client::from_stream(client_side, options(Duration::from_secs(5)));
    client.handshake().await.expect("a Kafka handshake");
    match client.metadata(None).await {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("expected an IO error, got {other:?}"),
    }
}

#[test]
fn the_error_names_the_peer_in_one_line() {
    let e = ClientError::NotKafka {
        peer: Some("127.0.0.1:9644".parse().expect("an address")),
        reply: ForeignReply::Http {
            status_line: "HTTP/1.1 400 Bad Request".into(),
        },
    };
    assert_eq!(
        e.to_string(),
        "127.0.0.1:9644 answered with HTTP (\"HTTP/1.1 400 Bad Request\"), not the Kafka \
         protocol: is this a metrics or web port?"
    );
}
