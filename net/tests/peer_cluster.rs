//! Three brokers in one process, each running the real driver with its peer transport over
//! loopback TCP: the metadata quorum forms across the peer connections, every broker lists
//! all three and one controller, and a peer port fed garbage, a stranger's hello or a
//! frame over the bound closes that connection without disturbing the cluster.

use keel_core::ids::NodeId;
use keel_core::node::{ClusterConfig, NodeConfig};
use keel_core::storage::{MemStorage, Storage};
use keel_net::client::{Client, ClientOptions, TcpClient};
use keel_net::driver::{self, DriverOptions, Peers, PEER_IDLE_TIMEOUT, PEER_RECONNECT_BACKOFF};
use keel_net::metrics::Metrics;
use keel_net::network::{SyncMode, Tokio};
use keel_net::peer::codec::{self, PeerMsg};
use keel_net::peer::frame::encode_frame;
use keel_net::peer::transport::ConnOptions;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLUSTER: &str = "peer-cluster-test";

struct Cluster {
    kafka: BTreeMap<NodeId, SocketAddr>,
    peer: BTreeMap<NodeId, SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn start_cluster() -> Cluster {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut kafka_listeners = BTreeMap::new();
    let mut peer_listeners = BTreeMap::new();
    for id in ids {
        kafka_listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        peer_listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let kafka: BTreeMap<_, _> = kafka_listeners
        .iter()
        .map(|(&id, l)| (id, l.local_addr().unwrap()))
        .collect();
    let peer: BTreeMap<_, _> = peer_listeners
        .iter()
        .map(|(&id, l)| (id, l.local_addr().unwrap()))
        .collect();
    let mut tasks = Vec::new();
    for id in ids {
        let mut cluster = ClusterConfig::new(ids.into_iter().collect());
        cluster.election_timeout_ms = 300;
        cluster.heartbeat_interval_ms = 30;
        let node = NodeConfig {
            node_id: id,
            advertised_port: i32::from(kafka[&id].port()),
            cluster_id: CLUSTER.to_string(),
            cluster: Some(cluster),
            ..NodeConfig::default()
        };
        let peers = Peers {
            net: Tokio,
            listener: peer_listeners.remove(&id).unwrap(),
            addrs: peer
                .iter()
                .filter(|(&p, _)| p != id)
                .map(|(&p, &a)| (p, a))
                .collect(),
            options: ConnOptions {
                cluster: codec::cluster_hash(CLUSTER),
                // Far longer than `closed` waits, so a connection it sees closed was
                // closed for what it sent, not for going quiet.
                idle_timeout: PEER_IDLE_TIMEOUT * 30,
                reconnect_backoff: PEER_RECONNECT_BACKOFF,
            },
        };
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let options = DriverOptions {
            max_request_bytes: 1024 * 1024,
            max_inflight_per_connection: 8,
            seed: u64::from(id.0 as u32),
            sync_mode: SyncMode::Inline,
            wall_clock_at_start: driver::wall_clock_now(),
        };
        let listener = kafka_listeners.remove(&id).unwrap();
        tasks.push(tokio::spawn(async move {
            let r = driver::run_cluster_member(
                listener,
                peers,
                node,
                storage,
                options,
                Metrics::new(),
                std::future::pending(),
            )
            .await;
            panic!("broker {id} stopped: {r:?}");
        }));
    }
    Cluster { kafka, peer, tasks }
}

async fn client(addr: SocketAddr) -> TcpClient {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    Client::connect(&Tokio, addr, options).await.unwrap()
}

/// Waits until every broker lists all three and names the same controller; returns it.
async fn formed(c: &Cluster) -> i32 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut views = Vec::new();
        for &addr in c.kafka.values() {
            let m = client(addr).await.metadata(Some(&[])).await.unwrap();
            let ports: Vec<i32> = m.brokers.iter().map(|b| b.port).collect();
            views.push((m.controller_id, ports));
        }
        let expected: Vec<i32> = c.kafka.values().map(|a| i32::from(a.port())).collect();
        let first = views[0].0;
        if first >= 1
            && views
                .iter()
                .all(|(ctl, ports)| *ctl == first && *ports == expected)
        {
            return first;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster did not form: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the broker closes `stream` (EOF or reset) within a few seconds, well inside the
/// peers' idle timeout.
async fn closed(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A Pong, at most: keep reading.
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_form_one_metadata_quorum_over_tcp() {
    let c = start_cluster().await;
    let controller = formed(&c).await;
    assert!((1..=3).contains(&controller));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_strangers_and_huge_frames_on_the_peer_port_close_only_their_connection() {
    let c = start_cluster().await;
    formed(&c).await;
    let target = c.peer[&NodeId(1)];

    // Bytes that are no frame at all: the checksum cannot match.
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&[0, 0, 0, 4, 1, 9, 9, 9, 9, 1, 2, 3, 4])
        .await
        .unwrap();
    assert!(closed(s).await, "a garbage frame left the connection open");

    // A well-formed hello from another cluster.
    let mut frame = bytes::BytesMut::new();
    let hello = PeerMsg::Hello {
        cluster: codec::cluster_hash("someone-else"),
        from: keel_raft::NodeId(2),
    };
    encode_frame(&codec::encode(&hello), &mut frame);
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&frame).await.unwrap();
    assert!(closed(s).await, "a stranger's hello was accepted");

    // A length prefix far over the bound: refused before anything is buffered.
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 1]).await.unwrap();
    assert!(closed(s).await, "a 4 GiB frame was waited for");

    // A frame of our cluster's hello, then a payload that does not decode.
    let mut frame = bytes::BytesMut::new();
    let hello = PeerMsg::Hello {
        cluster: codec::cluster_hash(CLUSTER),
        from: keel_raft::NodeId(2),
    };
    encode_frame(&codec::encode(&hello), &mut frame);
    encode_frame(&[3, 0, 7, 7, 7], &mut frame);
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(&frame).await.unwrap();
    assert!(closed(s).await, "an undecodable message was accepted");

    // The cluster is as it was.
    formed(&c).await;
}
