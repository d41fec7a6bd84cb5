//! The small world the driver and the client are written against: a network that can listen,
//! accept and connect, and a way to run a blocking fsync ([`SyncMode`]). (The clock is
//! `tokio::time` plus an anchor the caller passes: see `driver::Clock`.)
//!
//! [`Tokio`] is the production implementation; keel-sim adds a turmoil one, so the simulator
//! runs the very driver code `keel serve` runs. Signatures name only `std::net`, `std::io`
//! and tokio's `AsyncRead`/`AsyncWrite` traits, which turmoil's streams implement. Timers use
//! `tokio::time`, which turmoil drives with simulated time, so nothing here reads
//! `std::time` or spawns a blocking thread unless the [`SyncMode`] says so.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

/// A byte stream to a peer.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A bound listening socket.
pub trait Listener: Send + 'static {
    type Stream: Stream;

    /// Waits for the next connection.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address it is bound to (the real port when bound to port 0).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Listen and connect.
pub trait Network: Clone + Send + Sync + 'static {
    type Stream: Stream;
    type Listener: Listener<Stream = Self::Stream>;

    /// Binds a listener to `addr`.
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;

    /// Opens a stream to `addr`.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Starts one of a driver's tasks in `tasks`. Where it runs is the network's call because
    /// it decides what a crash does: tokio runs it on the runtime's workers; a simulator runs
    /// it on its host's `LocalSet`, which drops its tasks in the order they were spawned when
    /// the host crashes. (A runtime drops its tasks by shard of their process-wide task id, a
    /// counter every runtime in the process advances, so the order of the closing streams'
    /// FINs, and with it the rest of a simulated run, would depend on other threads' runs.)
    fn spawn<F>(&self, tasks: &mut JoinSet<()>, task: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// How the driver's flusher runs fsyncs, which block.
#[derive(Clone)]
pub enum SyncMode {
    /// On tokio's blocking pool (`spawn_blocking`), so the runtime's workers keep serving:
    /// production.
    SpawnBlocking,
    /// On the flusher task itself: the simulator, whose disk is in memory and whose
    /// scheduling must stay on the seeded runtime (turmoil cannot follow blocking threads).
    Inline,
    /// Like [`SyncMode::Inline`], after first sleeping (in tokio time, so simulated under
    /// turmoil) for as long as the closure says: the simulator's slow disk. The closure is
    /// asked once per batch of syncs.
    InlineAfter(Arc<dyn Fn() -> Duration + Send + Sync>),
}

impl fmt::Debug for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncMode::SpawnBlocking => f.write_str("SpawnBlocking"),
            SyncMode::Inline => f.write_str("Inline"),
            SyncMode::InlineAfter(_) => f.write_str("InlineAfter(..)"),
        }
    }
}

impl SyncMode {
    /// Runs every job and returns their results in order: concurrently on the blocking pool
    /// for [`SyncMode::SpawnBlocking`] (distinct files' fsyncs then overlap, and the device
    /// can merge them), one after another through [`SyncMode::run`] otherwise, so the
    /// simulator stays on its seeded runtime.
    pub async fn run_each<T, F>(&self, jobs: Vec<F>) -> Vec<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if !matches!(self, SyncMode::SpawnBlocking) || jobs.len() < 2 {
            return self
                .run(move || jobs.into_iter().map(|f| f()).collect())
                .await;
        }
        let handles: Vec<_> = jobs.into_iter().map(tokio::task::spawn_blocking).collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.await {
                Ok(v) => out.push(v),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        out
    }

    /// Runs `f` the way this mode says. A panic inside `f` is re-raised here.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        match self {
            SyncMode::Inline => f(),
            SyncMode::InlineAfter(latency) => {
                let delay = latency();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                f()
            }
            SyncMode::SpawnBlocking => match tokio::task::spawn_blocking(f).await {
                Ok(v) => v,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            },
        }
    }
}

/// The real network through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
        let (stream, peer) = tokio::net::TcpListener::accept(self).await?;
        // Responses are whole frames written at once: do not wait to coalesce them. Without
        // it the connection still works, only slower, so a failure is not worth refusing it.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

impl Network for Tokio {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn spawn<F>(&self, tasks: &mut JoinSet<()>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tasks.spawn(task);
    }
}
