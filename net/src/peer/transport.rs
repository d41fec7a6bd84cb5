//! Peer connections, over any [`Network`]: one outbound connection per peer, and a reader
//! per inbound one. Both the broker driver (crate::driver, carrying a node's `SendPeer`
//! outputs as [`PeerMsg::Broker`]) and the standalone Raft driver ([`super::driver`],
//! [`PeerMsg::Raft`]) run on it.
//!
//! - **Outbound** ([`connect_peer`]): connects with a deadline, reconnecting after a
//!   backoff; sends a `Hello` naming this node and the cluster, then every queued message,
//!   coalescing what is queued into one write. It expects a `Pong` back at least every
//!   `idle_timeout` after it sent something, else it presumes the stream lost in a partition
//!   and reopens it (turmoil's TCP and a real network may both go silent). Messages queued
//!   while the peer is unreachable are dropped: Raft tolerates loss.
//! - **Inbound** ([`accept_peers`]): each connection's first frame must be a `Hello` of
//!   this cluster within `idle_timeout`; then each message goes to the node, tagged with
//!   the sender the `Hello` named, and a `Pong` goes back at most every 100 ms. A frame that
//!   is over the bound, of another version, fails its checksum or does not decode, a
//!   `Hello` of another cluster, or `idle_timeout` of silence closes that connection, with
//!   a warning naming the peer address and the reason (throttled: one line per address and
//!   reason a minute), never a panic.

use super::codec::{self, PeerMsg};
use super::frame::{encode_frame, FrameDecoder, FrameError};
use crate::network::{Listener, Network, Stream};
use bytes::BytesMut;
use keel_core::throttle::LogThrottle;
use keel_raft::NodeId;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

const PONG_EVERY: Duration = Duration::from_millis(100);

/// How peer connections behave.
#[derive(Debug, Clone, Copy)]
pub struct ConnOptions {
    /// The cluster's id as a `Hello` carries it ([`codec::cluster_hash`]).
    pub cluster: u64,
    /// A connection silent this long is presumed dead.
    pub idle_timeout: Duration,
    /// Wait between reconnection attempts.
    pub reconnect_backoff: Duration,
}

/// Why an inbound connection was closed.
#[derive(Debug)]
enum Refused {
    Frame(FrameError),
    Decode(codec::DecodeError),
    NoHello,
    OtherCluster(u64),
}

impl Refused {
    fn kind(&self) -> &'static str {
        match self {
            Refused::Frame(_) => "peer-frame",
            Refused::Decode(_) => "peer-decode",
            Refused::NoHello => "peer-no-hello",
            Refused::OtherCluster(_) => "peer-cluster",
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Frame(e) => write!(f, "bad frame: {e}"),
            Refused::Decode(e) => write!(f, "undecodable message: {e}"),
            Refused::NoHello => write!(f, "the first message was not a hello"),
            Refused::OtherCluster(c) => write!(f, "a hello from another cluster ({c:#x})"),
        }
    }
}

/// Reads one message; `Ok(None)` when the stream ended or failed (no fault of the bytes).
async fn next_msg<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    decoder: &FrameDecoder,
) -> Result<Option<PeerMsg>, Refused> {
    loop {
        match decoder.decode(buf) {
            Ok(Some(payload)) => return codec::decode(&payload).map(Some).map_err(Refused::Decode),
            Ok(None) => {}
            Err(e) => return Err(Refused::Frame(e)),
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Accepts peer connections on `listener` forever, forwarding what each carries (any
/// message but `Hello` and `Pong`) to `inbound` with its sender's id.
pub async fn accept_peers<N: Network>(
    net: N,
    mut listener: N::Listener,
    inbound: mpsc::Sender<(NodeId, PeerMsg)>,
    options: ConnOptions,
) {
    let mut readers = JoinSet::new();
    let throttle = Arc::new(Mutex::new((
        LogThrottle::new(Duration::from_secs(60)),
        tokio::time::Instant::now(),
    )));
    loop {
        while readers.try_join_next().is_some() {}
        let Ok((stream, addr)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let reader = read_peer(stream, addr, inbound.clone(), options, throttle.clone());
        net.spawn(&mut readers, reader);
    }
}

async fn read_peer<S: Stream>(
    stream: S,
    addr: SocketAddr,
    inbound: mpsc::Sender<(NodeId, PeerMsg)>,
    options: ConnOptions,
    throttle: Arc<Mutex<(LogThrottle, tokio::time::Instant)>>,
) {
    if let Err(why) = serve_peer(stream, &inbound, options).await {
        // A misconfigured peer reconnects every backoff: one line per address and reason
        // a minute, with how many were held back.
        let allowed = {
            let mut t = throttle.lock().unwrap_or_else(|e| e.into_inner());
            let now = keel_core::time::Instant::from_nanos(
                u64::try_from(t.1.elapsed().as_nanos()).unwrap_or(u64::MAX),
            );
            t.0.allow(why.kind(), &addr.ip().to_string(), now)
        };
        if let Some(held_back) = allowed {
            tracing::warn!(peer = %addr, reason = %why, held_back, "closed a peer connection");
        }
    }
}

async fn serve_peer<S: Stream>(
    stream: S,
    inbound: &mpsc::Sender<(NodeId, PeerMsg)>,
    options: ConnOptions,
) -> Result<(), Refused> {
    let idle = options.idle_timeout;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(4096);
    let from = match tokio::time::timeout(idle, next_msg(&mut rd, &mut buf, &decoder)).await {
        Ok(Ok(Some(PeerMsg::Hello { cluster, from }))) if cluster == options.cluster => from,
        Ok(Ok(Some(PeerMsg::Hello { cluster, .. }))) => return Err(Refused::OtherCluster(cluster)),
        Ok(Ok(Some(_))) => return Err(Refused::NoHello),
        Ok(Err(e)) => return Err(e),
        // Closed or silent before saying hello: nothing to report.
        Ok(Ok(None)) | Err(_) => return Ok(()),
    };
    let mut last_pong: Option<tokio::time::Instant> = None;
    loop {
        let msg = match tokio::time::timeout(idle, next_msg(&mut rd, &mut buf, &decoder)).await {
            Ok(Ok(Some(PeerMsg::Hello { .. } | PeerMsg::Pong))) => continue,
            Ok(Ok(Some(m))) => m,
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) | Err(_) => return Ok(()),
        };
        // A full queue drops the message: Raft tolerates loss.
        let _ = inbound.try_send((from, msg));
        if last_pong.is_none_or(|t| t.elapsed() >= PONG_EVERY) {
            last_pong = Some(tokio::time::Instant::now());
            let mut out = BytesMut::new();
            encode_frame(&codec::encode(&PeerMsg::Pong), &mut out);
            match tokio::time::timeout(idle, wr.write_all(&out)).await {
                Ok(Ok(())) => {}
                _ => return Ok(()),
            }
        }
    }
}

/// Keeps a connection to the peer at `addr` open for as long as `rx` does, introducing
/// itself as `me` and sending what `rx` yields.
pub async fn connect_peer<N: Network>(
    net: N,
    addr: SocketAddr,
    me: NodeId,
    mut rx: mpsc::Receiver<PeerMsg>,
    options: ConnOptions,
) {
    let idle = options.idle_timeout;
    let hello = PeerMsg::Hello {
        cluster: options.cluster,
        from: me,
    };
    loop {
        let stream = match tokio::time::timeout(idle, net.connect(addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                tokio::time::sleep(options.reconnect_backoff).await;
                // Messages queued while the peer was unreachable are stale: drop them.
                loop {
                    match rx.try_recv() {
                        Ok(_) => {}
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
                continue;
            }
        };
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut out = BytesMut::new();
        encode_frame(&codec::encode(&hello), &mut out);
        if !matches!(
            tokio::time::timeout(idle, wr.write_all(&out)).await,
            Ok(Ok(()))
        ) {
            continue;
        }
        let decoder = FrameDecoder::default();
        let mut buf = BytesMut::with_capacity(256);
        let mut last_heard = tokio::time::Instant::now();
        let mut sent_since_heard = false;
        loop {
            tokio::select! {
                biased;
                r = rd.read_buf(&mut buf) => {
                    match r {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let mut damaged = false;
                    loop {
                        match decoder.decode(&mut buf) {
                            Ok(Some(_)) => {
                                last_heard = tokio::time::Instant::now();
                                sent_since_heard = false;
                            }
                            Ok(None) => break,
                            Err(_) => {
                                damaged = true;
                                break;
                            }
                        }
                    }
                    if damaged {
                        break;
                    }
                }
                m = rx.recv() => {
                    let Some(m) = m else { return };
                    let mut out = BytesMut::new();
                    encode_frame(&codec::encode(&m), &mut out);
                    while let Ok(m) = rx.try_recv() {
                        encode_frame(&codec::encode(&m), &mut out);
                        if out.len() > 1 << 20 {
                            break;
                        }
                    }
                    if !matches!(tokio::time::timeout(idle, wr.write_all(&out)).await, Ok(Ok(()))) {
                        break;
                    }
                    if !sent_since_heard {
                        sent_since_heard = true;
                        last_heard = tokio::time::Instant::now();
                    }
                }
                () = tokio::time::sleep(idle / 2) => {}
            }
            if sent_since_heard && last_heard.elapsed() > idle {
                break;
            }
        }
    }
}
