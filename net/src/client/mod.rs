//! A small, honest Kafka client over the [`Network`] trait: the simulator's workloads,
//! `keel bench` and the admin commands use it, so it runs under tokio and under turmoil.
//!
//! One request at a time per connection (`&mut self`), each with a deadline, because
//! turmoil's TCP never retransmits: a lost message must surface as [`ClientError::Timeout`],
//! not as a hang. After a timeout or a framing error the connection is out of step (a late
//! response could be taken for the next one), so it is marked broken and every later call
//! fails with [`ClientError::Broken`]; open a new client. A timed-out produce is *unknown*,
//! not lost.
//!
//! A peer that answers the first request with something that is not Kafka (an HTTP server, a
//! TLS listener, a server that hangs up) is [`ClientError::NotKafka`], saying what it sent
//! (see [`foreign`]), as soon as its bytes arrive.
//!
//! Versions: [`Client::connect`] runs the ApiVersions handshake (v3, falling back to v0 on
//! UNSUPPORTED_VERSION as librdkafka does) and then speaks, per API, the highest version both
//! sides implement.

mod admin;
pub mod foreign;
pub mod group;

use crate::codec::{
    self, ApiKey, DecodeError, FrameError, RequestBody, RequestHeader, ResponseBody,
};
use crate::network::{Network, Stream};
use bytes::{Bytes, BytesMut};
use foreign::ForeignReply;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fetch of one partition from `offset`, at most `max_bytes`, waiting up to `max_wait`.
fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait: Duration,
    max_bytes: i32,
) -> codec::FetchRequest {
    codec::FetchRequest {
        max_wait_ms: i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX),
        min_bytes: 1,
        max_bytes,
        topics: vec![codec::FetchTopic {
            topic: topic.to_string(),
            partitions: vec![codec::FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: max_bytes,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A client's side of one KIP-227 fetch session (see [`Client::fetch_in_session`]).
#[derive(Debug, Clone, Default)]
pub struct FetchSession {
    /// 0 until the broker opened one.
    pub id: i32,
    /// The epoch the next fetch sends: 0 asks for a new session (closing `id`'s).
    pub epoch: i32,
    /// The fetch position the session last heard of.
    pub position: Option<i64>,
    /// The high watermark last reported.
    pub high_watermark: i64,
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The client id sent in every request header.
    pub client_id: String,
    /// How long one call may take (a fetch gets its `max_wait` on top).
    pub request_timeout: Duration,
    /// The largest response frame accepted.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            client_id: "keel-client".to_string(),
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Why a call failed. Errors the broker reports inside a response are returned as data.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The call's deadline passed: its outcome is unknown.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// An earlier failure left the connection out of step.
    #[error("the connection is broken by an earlier failure")]
    Broken,
    /// The response frame's length prefix was refused.
    #[error("response frame: {0}")]
    Frame(#[from] FrameError),
    /// The response could not be decoded.
    #[error("response: {0}")]
    Decode(#[from] DecodeError),
    /// The response answered another request.
    #[error("correlation id {got}, expected {expected}")]
    Correlation { expected: i32, got: i32 },
    /// The broker does not implement any version of the API we speak.
    #[error("the broker does not support {0:?}")]
    Unsupported(ApiKey),
    /// The broker refused the handshake.
    #[error("ApiVersions failed with error {0}")]
    Handshake(i16),
    /// The response was not the one the request calls for (a bug on one side).
    #[error("unexpected response: {0}")]
    Unexpected(String),
    /// The peer's first answer on the connection was no Kafka response: it speaks another
    /// protocol (HTTP, TLS) or none. The peer's fault, or the address's.
    #[error("{} {reply}", peer.map_or_else(|| "the peer".to_string(), |p| p.to_string()))]
    NotKafka {
        /// The address connected to, when the client knows it.
        peer: Option<SocketAddr>,
        /// What came back instead.
        reply: ForeignReply,
    },
}

/// A client over real TCP.
pub type TcpClient = Client<tokio::net::TcpStream>;

/// Connects a [`TcpClient`] to `addr` (see [`Client::connect`]).
pub async fn connect_tcp(
    addr: SocketAddr,
    options: ClientOptions,
) -> Result<TcpClient, ClientError> {
    Client::connect(&crate::network::Tokio, addr, options).await
}

/// One connection to a broker.
pub struct Client<S: Stream> {
    stream: S,
    options: ClientOptions,
    next_correlation_id: i32,
    /// The version spoken per API, from the handshake.
    versions: BTreeMap<ApiKey, i16>,
    broken: bool,
    /// The address connected to, for [`ClientError::NotKafka`].
    peer: Option<SocketAddr>,
    /// Whether a whole response frame has arrived: until then, bytes that are no Kafka
    /// frame mean a peer that does not speak Kafka.
    answered: bool,
}

impl<S: Stream> Client<S> {
    /// Connects to `addr` and runs the ApiVersions handshake, all within the request timeout.
    pub async fn connect<N: Network<Stream = S>>(
        network: &N,
        addr: SocketAddr,
        options: ClientOptions,
    ) -> Result<Client<S>, ClientError> {
        let timeout = options.request_timeout;
        let stream = tokio::time::timeout(timeout, network.connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(timeout))??;
        let mut client = Client::from_stream(stream, options);
        client.peer = Some(addr);
        client.handshake().await?;
        Ok(client)
    }

    /// A client over an open stream, speaking each API's highest version we implement until
    /// [`Client::handshake`] learns the broker's.
    pub fn from_stream(stream: S, options: ClientOptions) -> Client<S> {
        let versions = codec::SUPPORTED_APIS
            .iter()
            .map(|&(key, _, max)| (key, max))
            .collect();
        Client {
            stream,
            options,
            next_correlation_id: 1,
            versions,
            broken: false,
            peer: None,
            answered: false,
        }
    }

    /// Asks the broker for its versions and settles on the highest common one per API.
    pub async fn handshake(&mut self) -> Result<codec::ApiVersionsResponse, ClientError> {
        let mut response = self.api_versions_at(3).await?;
        if response.error_code == codec::UNSUPPORTED_VERSION {
            response = self.api_versions_at(0).await?;
        }
        if response.error_code != 0 {
            return Err(ClientError::Handshake(response.error_code));
        }
        let mut versions = BTreeMap::new();
        for &(key, min, max) in codec::SUPPORTED_APIS {
            let Some(theirs) = response.api_keys.iter().find(|k| k.api_key == key as i16) else {
                continue;
            };
            let version = max.min(theirs.max_version);
            if version >= min && version >= theirs.min_version {
                versions.insert(key, version);
            }
        }
        self.versions = versions;
        Ok(response)
    }

    /// Sends ApiVersions at `version` (a v0 answer comes back if the broker refuses it).
    pub async fn api_versions_at(
        &mut self,
        version: i16,
    ) -> Result<codec::ApiVersionsResponse, ClientError> {
        let request = codec::ApiVersionsRequest {
            client_software_name: "keel".to_string(),
            client_software_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let header = self.header(ApiKey::ApiVersions, version);
        let timeout = self.options.request_timeout;
        let first = !self.answered;
        // An UNSUPPORTED_VERSION answer is a v0 body whatever version was asked (KAFKA.md §2);
        // v0's fields are a prefix of every later version's, so read it as v0 in that case.
        let frame = self
            .round_trip(&header, &RequestBody::ApiVersions(request), timeout)
            .await?;
        let decoded = codec::decode_response(ApiKey::ApiVersions, version, frame.clone())
            .or_else(|_| codec::decode_response(ApiKey::ApiVersions, 0, frame.clone()));
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                self.broken = true;
                return Err(if first {
                    self.not_kafka(ForeignReply::Garbage {
                        bytes: framed_head(&frame),
                    })
                } else {
                    ClientError::Decode(e)
                });
            }
        };
        match decoded {
            (correlation_id, _) if correlation_id != header.correlation_id => {
                self.broken = true;
                if first {
                    return Err(self.not_kafka(ForeignReply::Garbage {
                        bytes: framed_head(&frame),
                    }));
                }
                Err(ClientError::Correlation {
                    expected: header.correlation_id,
                    got: correlation_id,
                })
            }
            (_, ResponseBody::ApiVersions(r)) => Ok(r),
            (_, other) => Err(unexpected(&other)),
        }
    }

    /// The version this client speaks for `key`, if the broker supports it.
    pub fn version(&self, key: ApiKey) -> Option<i16> {
        self.versions.get(&key).copied()
    }

    /// Metadata for `topics` (`None`: every topic), without auto-creating any.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
    ) -> Result<codec::MetadataResponse, ClientError> {
        let request = codec::MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| codec::MetadataRequestTopic {
                        name: Some(t.to_string()),
                        ..Default::default()
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        match self
            .call(RequestBody::Metadata(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::Metadata(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Creates `topics` as (name, partitions); -1 partitions asks for the broker default.
    pub async fn create_topics(
        &mut self,
        topics: &[(&str, i32)],
        timeout_ms: i32,
    ) -> Result<codec::CreateTopicsResponse, ClientError> {
        let request = codec::CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|&(name, num_partitions)| codec::CreatableTopic {
                    name: name.to_string(),
                    num_partitions,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            timeout_ms,
            validate_only: false,
        };
        match self
            .call(RequestBody::CreateTopics(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::CreateTopics(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Deletes `topics` by name.
    pub async fn delete_topics(
        &mut self,
        topics: &[&str],
        timeout_ms: i32,
    ) -> Result<codec::DeleteTopicsResponse, ClientError> {
        let version = self.version_of(ApiKey::DeleteTopics)?;
        let names: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let request = if version >= 6 {
            codec::DeleteTopicsRequest {
                topics: names
                    .into_iter()
                    .map(|name| codec::DeleteTopicState {
                        name: Some(name),
                        ..Default::default()
                    })
                    .collect(),
                timeout_ms,
                ..Default::default()
            }
        } else {
            codec::DeleteTopicsRequest {
                topic_names: names,
                timeout_ms,
                ..Default::default()
            }
        };
        match self
            .call(RequestBody::DeleteTopics(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::DeleteTopics(r)) => Ok(r),
            other => Err(unexpected_opt(other)),
        }
    }

    /// Produces one record batch (built with `keel_core::record::builder::build_batch`) to
    /// `topic`/`partition`. With `acks` 0 nothing comes back: `Ok(None)` once it is sent.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<Option<codec::PartitionProduceResponse>, ClientError> {
        let timeout_ms =
            i32::try_from(self.options.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let request = codec::ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms,
            topic_data: vec![codec::TopicProduceData {
                name: topic.to_string(),
                partition_data: vec![codec::PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                }],
                ..Default::default()
            }],
        };
        match self
            .call(RequestBody::Produce(request), Duration::ZERO)
            .await?
        {
            None => Ok(None),
            Some(ResponseBody::Produce(r)) => {
                let p = r
                    .responses
                    .into_iter()
                    .flat_map(|t| t.partition_responses)
                    .find(|p| p.index == partition);
                p.map(Some).ok_or_else(|| {
                    ClientError::Unexpected("no such partition in the response".into())
                })
            }
            Some(other) => Err(unexpected(&other)),
        }
    }

    /// Fetches from `offset`, waiting up to `max_wait` for data. The records are the raw
    /// batches as stored (possibly ending in a partial batch, as Kafka allows).
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait: Duration,
        max_bytes: i32,
    ) -> Result<codec::PartitionData, ClientError> {
        let request = fetch_request(topic, partition, offset, max_wait, max_bytes);
        match self.call(RequestBody::Fetch(request), max_wait).await? {
            Some(ResponseBody::Fetch(r)) if r.error_code != 0 => Ok(codec::PartitionData {
                partition_index: partition,
                error_code: r.error_code,
                ..Default::default()
            }),
            Some(ResponseBody::Fetch(r)) => {
                let p = r
                    .responses
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .find(|p| p.partition_index == partition);
                p.ok_or_else(|| ClientError::Unexpected("no such partition in the response".into()))
            }
            other => Err(unexpected_opt(other)),
        }
    }

    /// [`Client::fetch`] through a KIP-227 fetch session, as the Java consumer fetches: the
    /// first fetch (or the first after an error) is full and opens the session; later ones
    /// name the partition only when its position moved, and an answer that leaves it out
    /// means nothing changed (no records, the high watermark last reported). Session errors
    /// come back as the partition's error, after `session` was reset to open a new one.
    pub async fn fetch_in_session(
        &mut self,
        session: &mut FetchSession,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait: Duration,
        max_bytes: i32,
    ) -> Result<codec::PartitionData, ClientError> {
        let changed = session.position != Some(offset) || session.epoch == 0;
        let mut request = fetch_request(topic, partition, offset, max_wait, max_bytes);
        request.session_id = session.id;
        request.session_epoch = session.epoch;
        if !changed {
            request.topics.clear();
        }
        let sent_epoch = session.epoch;
        // Until an answer arrives, the next fetch must start over (as Java's handler does
        // after an error): the broker may or may not have moved the epoch on.
        session.epoch = 0;
        let response = match self.call(RequestBody::Fetch(request), max_wait).await? {
            Some(ResponseBody::Fetch(r)) => r,
            other => return Err(unexpected_opt(other)),
        };
        if response.error_code != 0 {
            return Ok(codec::PartitionData {
                partition_index: partition,
                error_code: response.error_code,
                ..Default::default()
            });
        }
        session.id = response.session_id;
        session.epoch = if response.session_id == 0 {
            0
        } else if sent_epoch == i32::MAX {
            1
        } else {
            sent_epoch + 1
        };
        session.position = Some(offset);
        let found = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition);
        match found {
            Some(p) => {
                if p.error_code == 0 {
                    session.high_watermark = p.high_watermark;
                } else {
                    session.epoch = 0;
                }
                Ok(p)
            }
            None if sent_epoch > 0 => Ok(codec::PartitionData {
                partition_index: partition,
                high_watermark: session.high_watermark,
                last_stable_offset: session.high_watermark,
                records: Some(bytes::Bytes::new()),
                ..Default::default()
            }),
            None => Err(ClientError::Unexpected(
                "a full fetch's answer left the partition out".into(),
            )),
        }
    }

    /// The offset for `timestamp` in `topic`/`partition`; use `keel_core::api::LATEST_TIMESTAMP`
    /// or `EARLIEST_TIMESTAMP` for the ends of the log.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<codec::ListOffsetsPartitionResponse, ClientError> {
        let request = codec::ListOffsetsRequest {
            replica_id: -1,
            topics: vec![codec::ListOffsetsTopic {
                name: topic.to_string(),
                partitions: vec![codec::ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        match self
            .call(RequestBody::ListOffsets(request), Duration::ZERO)
            .await?
        {
            Some(ResponseBody::ListOffsets(r)) => {
                let p = r
                    .topics
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .find(|p| p.partition_index == partition);
                p.ok_or_else(|| ClientError::Unexpected("no such partition in the response".into()))
            }
            other => Err(unexpected_opt(other)),
        }
    }

    /// Sends any request at the negotiated version and returns its response; `None` for a
    /// produce with acks=0. The deadline is the request timeout plus `extra` (a fetch's wait).
    pub async fn call(
        &mut self,
        body: RequestBody,
        extra: Duration,
    ) -> Result<Option<ResponseBody>, ClientError> {
        let key = body.api_key();
        let version = self.version_of(key)?;
        let header = self.header(key, version);
        let timeout = self.options.request_timeout + extra;
        if matches!(&body, RequestBody::Produce(p) if p.acks == 0) {
            self.send_only(&header, &body, timeout).await?;
            return Ok(None);
        }
        let frame = self.round_trip(&header, &body, timeout).await?;
        let (correlation_id, response) =
            codec::decode_response(key, version, frame).inspect_err(|_| {
                self.broken = true;
            })?;
        if correlation_id != header.correlation_id {
            self.broken = true;
            return Err(ClientError::Correlation {
                expected: header.correlation_id,
                got: correlation_id,
            });
        }
        Ok(Some(response))
    }

    fn not_kafka(&self, reply: ForeignReply) -> ClientError {
        ClientError::NotKafka {
            peer: self.peer,
            reply,
        }
    }

    fn version_of(&self, key: ApiKey) -> Result<i16, ClientError> {
        self.version(key).ok_or(ClientError::Unsupported(key))
    }

    fn header(&mut self, key: ApiKey, version: i16) -> RequestHeader {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        RequestHeader {
            api_key: key as i16,
            api_version: version,
            correlation_id,
            client_id: Some(self.options.client_id.clone()),
        }
    }

    async fn send_only(
        &mut self,
        header: &RequestHeader,
        body: &RequestBody,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        let mut out = BytesMut::new();
        codec::encode_request(header, body, &mut out);
        let result = tokio::time::timeout(timeout, async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
            Ok::<(), ClientError>(())
        })
        .await;
        self.settle(result, timeout)
    }

    /// Writes the request and reads one response frame, within `timeout`.
    async fn round_trip(
        &mut self,
        header: &RequestHeader,
        body: &RequestBody,
        timeout: Duration,
    ) -> Result<Bytes, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        let mut out = BytesMut::new();
        codec::encode_request(header, body, &mut out);
        let first = !self.answered;
        // The first answer is an ApiVersions response: a frame near the general bound is
        // another protocol's bytes read as a length.
        let max = if first {
            self.options
                .max_response_bytes
                .min(foreign::FIRST_RESPONSE_MAX_BYTES)
        } else {
            self.options.max_response_bytes
        };
        let peer = self.peer;
        let stream = &mut self.stream;
        let result = tokio::time::timeout(timeout, async move {
            let not_kafka = |reply| ClientError::NotKafka { peer, reply };
            let sent = async {
                stream.write_all(&out).await?;
                stream.flush().await
            };
            match sent.await {
                // A peer that hung up at once may refuse the write rather than the read.
                Err(e) if first && hung_up(&e) => {
                    return Err(not_kafka(ForeignReply::Closed { bytes: Vec::new() }))
                }
                result => result?,
            }
            let mut prefix = [0u8; 4];
            let got = match read_up_to(stream, &mut prefix).await {
                Err(e) if first && hung_up(&e) => 0,
                result => result?,
            };
            if got < prefix.len() {
                if first {
                    let bytes = prefix[..got].to_vec();
                    return Err(not_kafka(ForeignReply::Closed { bytes }));
                }
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            let len = match codec::frame_length(prefix, max) {
                Ok(len) => len,
                Err(_) if first => {
                    let mut head = prefix.to_vec();
                    read_what_follows(stream, &mut head).await;
                    return Err(not_kafka(ForeignReply::classify(&head)));
                }
                Err(e) => return Err(ClientError::Frame(e)),
            };
            let mut frame = BytesMut::zeroed(len);
            stream.read_exact(&mut frame).await?;
            Ok(frame.freeze())
        })
        .await;
        let frame = self.settle(result, timeout)?;
        self.answered = true;
        Ok(frame)
    }

    /// Marks the connection broken on any failure.
    fn settle<T>(
        &mut self,
        result: Result<Result<T, ClientError>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.broken = true;
                Err(e)
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout(timeout))
            }
        }
    }
}

/// Whether `e` says the peer closed or reset the connection.
fn hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Reads until `buf` is full or the peer closes; returns how many bytes arrived.
async fn read_up_to<S: Stream>(stream: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// How long a refused first frame's next bytes are waited for, to quote them in the error
/// (an HTTP status line comes in the same segment as its first four bytes).
const QUOTE_WAIT: Duration = Duration::from_millis(200);

/// Appends to `head` what the peer sends next, up to the end of a line or
/// [`foreign::QUOTED_BYTES`] in all, waiting at most [`QUOTE_WAIT`]. Best effort: a failure
/// leaves `head` as it is.
async fn read_what_follows<S: Stream>(stream: &mut S, head: &mut Vec<u8>) {
    let want = foreign::QUOTED_BYTES.max(128);
    let _ = tokio::time::timeout(QUOTE_WAIT, async {
        let mut buf = [0u8; 128];
        while head.len() < want && !head.contains(&b'\n') {
            match stream.read(&mut buf[..want - head.len()]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
}

/// The first bytes of a response as sent: its length prefix, then the frame.
fn framed_head(frame: &[u8]) -> Vec<u8> {
    let mut head = u32::try_from(frame.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    head.extend_from_slice(&frame[..frame.len().min(foreign::QUOTED_BYTES - head.len())]);
    head
}

fn unexpected(body: &ResponseBody) -> ClientError {
    ClientError::Unexpected(format!("{:?} response", body.api_key()))
}

fn unexpected_opt(body: Option<ResponseBody>) -> ClientError {
    match body {
        Some(b) => unexpected(&b),
        None => ClientError::Unexpected("no response".into()),
    }
}

#[cfg(test)]
mod tests;
