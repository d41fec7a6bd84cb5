//! The replicated key-value store the raft scenarios run: its state machine (a
//! [`RaftApp`]), the client protocol (peer-framed requests and responses over turmoil TCP),
//! the per-node server that turns client requests into driver requests, and the client
//! workload that records every operation for the linearizability checker.
//!
//! Commands (entry data): `put(key, value)`, `cas(key, from, to)`; reads are ReadIndex
//! queries, `get(key)`. Every written value is unique (client id and sequence), so a read
//! names the write it saw.

use crate::checker::linearizable::{Op, OpKind};
use crate::net::{resolve, Turmoil};
use bytes::BytesMut;
use keel_net::network::{Listener, Network};
use keel_net::peer::driver::{ClientError, RaftApp, Request};
use keel_net::peer::frame::{encode_frame, FrameDecoder};
use keel_raft::{Index, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The port every node serves clients on.
pub const CLIENT_PORT: u16 = 7100;

/// The state machine: a map of registers.
#[derive(Debug, Default, Clone)]
pub struct Kv {
    map: BTreeMap<u64, u64>,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl RaftApp for Kv {
    fn apply(&mut self, _index: Index, data: &[u8]) -> Vec<u8> {
        match (
            data.first(),
            u64_at(data, 1),
            u64_at(data, 9),
            u64_at(data, 17),
        ) {
            (Some(0), Some(k), Some(v), None) => {
                self.map.insert(k, v);
                vec![1]
            }
            (Some(1), Some(k), Some(from), Some(to)) => {
                if self.map.get(&k) == Some(&from) {
                    self.map.insert(k, to);
                    vec![1]
                } else {
                    vec![0]
                }
            }
            _ => vec![2],
        }
    }

    fn query(&mut self, query: &[u8]) -> Vec<u8> {
        match u64_at(query, 0).and_then(|k| self.map.get(&k)) {
            None => vec![0],
            Some(v) => {
                let mut out = vec![1];
                out.extend_from_slice(&v.to_le_bytes());
                out
            }
        }
    }

    fn restore(&mut self, data: &[u8]) {
        self.map = data
            .chunks_exact(16)
            .filter_map(|c| Some((u64_at(c, 0)?, u64_at(c, 8)?)))
            .collect();
    }
}

/// One client operation on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Put { key: u64, value: u64 },
    Get { key: u64 },
    Cas { key: u64, from: u64, to: u64 },
}

fn encode_cmd(cmd: Cmd) -> Vec<u8> {
    let mut b = Vec::with_capacity(25);
    match cmd {
        Cmd::Put { key, value } => {
            b.push(0);
            b.extend_from_slice(&key.to_le_bytes());
            b.extend_from_slice(&value.to_le_bytes());
        }
        Cmd::Cas { key, from, to } => {
            b.push(1);
            for x in [key, from, to] {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        Cmd::Get { key } => {
            b.push(2);
            b.extend_from_slice(&key.to_le_bytes());
        }
    }
    b
}

/// Response status bytes.
const OK: u8 = 0;
const NOT_LEADER: u8 = 1;
const DEFINITE_FAIL: u8 = 2;
const UNKNOWN: u8 = 3;

/// Serves clients on [`CLIENT_PORT`]: each connection's requests in turn, handed to the
/// node's driver.
pub async fn serve(requests: mpsc::Sender<Request>) {
    let Ok(mut listener) = Turmoil
        .bind(SocketAddr::from(([0, 0, 0, 0], CLIENT_PORT)))
        .await
    else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        // On the host's LocalSet, like the driver's tasks (`Network::spawn` says why).
        tokio::task::spawn_local(async move {
            let (mut rd, mut wr) = tokio::io::split(stream);
            let decoder = FrameDecoder::new(1024);
            let mut buf = BytesMut::new();
            loop {
                let payload = loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(p)) => break p,
                        Ok(None) => {}
                        Err(_) => return,
                    }
                    match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                };
                if payload.len() < 9 {
                    return;
                }
                let (id, body) = payload.split_at(8);
                let (tx, rx) = oneshot::channel();
                let req = if body[0] == 2 {
                    Request::Read {
                        query: body[1..].to_vec(),
                        reply: tx,
                    }
                } else {
                    Request::Write {
                        data: body.to_vec(),
                        reply: tx,
                    }
                };
                if requests.send(req).await.is_err() {
                    return;
                }
                let mut resp = id.to_vec();
                match rx.await {
                    Ok(Ok(result)) => {
                        resp.push(OK);
                        resp.extend_from_slice(&result);
                    }
                    Ok(Err(ClientError::NotLeader { hint })) => {
                        resp.push(NOT_LEADER);
                        resp.extend_from_slice(&hint.map_or(0, |n| n.0).to_le_bytes());
                    }
                    Ok(Err(ClientError::Lost | ClientError::Busy)) => resp.push(DEFINITE_FAIL),
                    Ok(Err(ClientError::Unknown)) | Err(_) => resp.push(UNKNOWN),
                }
                let mut out = BytesMut::new();
                encode_frame(&resp, &mut out);
                if wr.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The clients' shared record: operations in one event order, and the last time any
/// operation succeeded.
#[derive(Debug, Default)]
pub struct Record {
    /// Every operation that may have taken effect (definite failures are left out).
    pub ops: Vec<Op>,
    /// The next event position.
    pub next_event: u64,
    /// Completed operations per phase: (during faults, after the heal).
    pub ok_ops: (u64, u64),
    /// Indeterminate operations.
    pub unknown_ops: u64,
    /// Definitely failed attempts (not the leader, lost, busy, unreachable).
    pub failed_ops: u64,
}

impl Record {
    fn event(&mut self) -> u64 {
        self.next_event += 1;
        self.next_event
    }
}

/// How one client runs.
#[derive(Debug, Clone)]
pub struct ClientCfg {
    /// Its id (part of every value it writes).
    pub id: u32,
    /// Node host names by id.
    pub nodes: Vec<String>,
    /// Keys `1..=keys`.
    pub keys: u64,
    /// Per-operation deadline (turmoil's TCP never retransmits).
    pub op_timeout: Duration,
    /// Pause between operations.
    pub think: Duration,
    /// When the faults end (ms), and when to stop (ms).
    pub heal_at_ms: u64,
    /// Stop issuing at this simulated ms.
    pub stop_at_ms: u64,
    /// Its RNG seed.
    pub seed: u64,
}

fn now_ms() -> u64 {
    turmoil::elapsed().as_millis() as u64
}

enum Outcome {
    Ok(Vec<u8>),
    NotLeader(Option<NodeId>),
    Failed,
    Unknown,
}

/// One client: put/get/cas on random keys at the node it believes leads, until `stop_at`.
pub async fn client(cfg: ClientCfg, record: Arc<Mutex<Record>>) -> turmoil::Result {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut target = rng.gen_range(0..cfg.nodes.len());
    let mut conn: Option<(usize, turmoil::net::TcpStream)> = None;
    let mut seq = 0u64;
    let mut req_id = 0u64;
    let lock = |r: &Arc<Mutex<Record>>| r.lock().unwrap_or_else(|e| e.into_inner()).event();
    while now_ms() < cfg.stop_at_ms {
        tokio::time::sleep(cfg.think).await;
        let key = rng.gen_range(1..=cfg.keys);
        seq += 1;
        let value = (u64::from(cfg.id) << 32) | seq;
        let cmd = match rng.gen_range(0..10) {
            0..=3 => Cmd::Get { key },
            4..=6 => Cmd::Put { key, value },
            _ => {
                // Cas from a value this client may have seen: any earlier value of any client.
                let from = (u64::from(rng.gen_range(1..=cfg.nodes.len() as u32 + 3)) << 32)
                    | rng.gen_range(1..=seq.max(1));
                let from = if rng.gen_bool(0.5) { value - 1 } else { from };
                Cmd::Cas {
                    key,
                    from,
                    to: value,
                }
            }
        };
        req_id += 1;
        if conn.as_ref().is_none_or(|(n, _)| *n != target) {
            conn = None;
            let addr = resolve(&cfg.nodes[target], CLIENT_PORT);
            match tokio::time::timeout(cfg.op_timeout, Turmoil.connect(addr)).await {
                Ok(Ok(s)) => conn = Some((target, s)),
                _ => {
                    record.lock().unwrap_or_else(|e| e.into_inner()).failed_ops += 1;
                    target = rng.gen_range(0..cfg.nodes.len());
                    continue;
                }
            }
        }
        let (_, stream) = conn.as_mut().expect("connected above");
        let invoke = lock(&record);
        let outcome = tokio::time::timeout(cfg.op_timeout, call(stream, req_id, cmd))
            .await
            .unwrap_or(None)
            .unwrap_or(Outcome::Unknown);
        let ret = lock(&record);
        let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
        let (kind, ret) = match (&outcome, cmd) {
            (Outcome::Ok(b), Cmd::Get { .. }) => {
                let seen = (b.first() == Some(&1)).then(|| u64_at(b, 1).unwrap_or(0));
                (Some(OpKind::Read(seen)), Some(ret))
            }
            (Outcome::Ok(_), Cmd::Put { value, .. }) => (Some(OpKind::Write(value)), Some(ret)),
            (Outcome::Ok(b), Cmd::Cas { from, to, .. }) => (
                Some(OpKind::Cas {
                    from,
                    to,
                    ok: b.first() == Some(&1),
                }),
                Some(ret),
            ),
            (Outcome::Unknown, Cmd::Get { .. }) => (None, None),
            (Outcome::Unknown, Cmd::Put { value, .. }) => (Some(OpKind::Write(value)), None),
            (Outcome::Unknown, Cmd::Cas { from, to, .. }) => (
                Some(OpKind::Cas {
                    from,
                    to,
                    ok: false,
                }),
                None,
            ),
            (Outcome::NotLeader(_) | Outcome::Failed, _) => (None, None),
        };
        match &outcome {
            Outcome::Ok(_) if invoke > 0 => {
                if now_ms() >= cfg.heal_at_ms {
                    r.ok_ops.1 += 1;
                } else {
                    r.ok_ops.0 += 1;
                }
            }
            Outcome::Unknown => {
                r.unknown_ops += 1;
                conn = None;
            }
            _ => r.failed_ops += 1,
        }
        if let Some(kind) = kind {
            r.ops.push(Op {
                client: cfg.id,
                key,
                kind,
                invoke,
                ret,
            });
        }
        drop(r);
        match outcome {
            Outcome::NotLeader(Some(hint)) => {
                target = (hint.0 as usize).saturating_sub(1) % cfg.nodes.len();
            }
            Outcome::NotLeader(None) | Outcome::Unknown | Outcome::Failed => {
                target = rng.gen_range(0..cfg.nodes.len());
            }
            Outcome::Ok(_) => {}
        }
    }
    Ok(())
}

async fn call(stream: &mut turmoil::net::TcpStream, id: u64, cmd: Cmd) -> Option<Outcome> {
    let mut payload = id.to_le_bytes().to_vec();
    payload.extend_from_slice(&encode_cmd(cmd));
    let mut out = BytesMut::new();
    encode_frame(&payload, &mut out);
    stream.write_all(&out).await.ok()?;
    let decoder = FrameDecoder::new(1024);
    let mut buf = BytesMut::new();
    loop {
        if let Some(p) = decoder.decode(&mut buf).ok()? {
            if p.len() < 9 || u64_at(&p, 0) != Some(id) {
                return None;
            }
            return Some(match p[8] {
                OK => Outcome::Ok(p[9..].to_vec()),
                NOT_LEADER => Outcome::NotLeader(u64_at(&p, 9).filter(|&n| n > 0).map(NodeId)),
                DEFINITE_FAIL => Outcome::Failed,
                _ => Outcome::Unknown,
            });
        }
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}
