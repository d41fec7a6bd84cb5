//! Shared helpers for the driver tests: a temp data dir, a server on 127.0.0.1:0 that can be
//! stopped cleanly, and a connected client.

#![allow(dead_code)]

use keel_core::node::NodeConfig;
use keel_core::storage::Storage;
use keel_net::client::{Client, ClientOptions};
use keel_net::driver::{self, DriverOptions, ServeConfig, ServeError};
use keel_net::network::{SyncMode, Tokio};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("keel-driver-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running driver.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    /// `serve_with_listener` on 127.0.0.1:0 over `dir`.
    pub async fn start(dir: &TempDir) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ServeConfig {
            listen: addr,
            data_dir: dir.0.clone(),
            node: node_config(),
            max_request_bytes: 1024 * 1024,
            max_inflight_per_connection: 8,
            seed: 7,
            peers: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(driver::serve_with_listener(config, listener, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The generic driver over `storage` (for storage wrappers that observe or gate syncs).
    pub async fn start_with_storage(storage: Arc<dyn Storage>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut node = node_config();
        node.advertised_port = i32::from(addr.port());
        let options = DriverOptions {
            max_request_bytes: 1024 * 1024,
            max_inflight_per_connection: 8,
            seed: 7,
            sync_mode: SyncMode::SpawnBlocking,
            wall_clock_at_start: driver::wall_clock_now(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(driver::run(listener, node, storage, options, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown and waits for the driver to flush and return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
        result
            .expect("the driver stops within 20 s")
            .expect("the driver task does not panic")
            .expect("clean stop");
    }

    pub async fn client(&self) -> Client<TcpStream> {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            ..ClientOptions::default()
        };
        Client::connect(&Tokio, self.addr, options)
            .await
            .expect("client connects")
    }
}

fn node_config() -> NodeConfig {
    NodeConfig {
        advertised_port: 0,
        auto_create_topics: false,
        ..NodeConfig::default()
    }
}
