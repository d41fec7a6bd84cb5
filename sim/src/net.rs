//! The turmoil implementation of keel-net's [`Network`] and [`Listener`]: the simulator runs
//! the very driver and client code `keel serve` and `keel` run, over turmoil's simulated TCP.
//!
//! turmoil binds only unspecified or loopback addresses, so brokers listen on
//! `0.0.0.0:PORT`, and host names (`keel-1`) become addresses through [`resolve`], which asks
//! turmoil's DNS (valid only inside a running simulation).

use keel_net::network::{Listener, Network};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use tokio::task::JoinSet;

/// turmoil's simulated network.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turmoil;

/// A listener bound on a simulated host.
pub struct TurmoilListener(turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(turmoil::net::TcpStream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Network for Turmoil {
    type Stream = turmoil::net::TcpStream;
    type Listener = TurmoilListener;

    async fn bind(&self, addr: SocketAddr) -> io::Result<TurmoilListener> {
        turmoil::net::TcpListener::bind(addr)
            .await
            .map(TurmoilListener)
    }

    async fn connect(&self, addr: SocketAddr) -> io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    /// On the host's `LocalSet` (turmoil runs each host's software inside one), whose crash
    /// drops the tasks in spawn order; `tokio::spawn` would put them on the host's runtime,
    /// which drops them by process-wide task id (see [`Network::spawn`]).
    fn spawn<F>(&self, tasks: &mut JoinSet<()>, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tasks.spawn_local(task);
    }
}

/// The address of `host:port` in the running simulation.
pub fn resolve(host: &str, port: u16) -> SocketAddr {
    SocketAddr::new(turmoil::lookup(host), port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_net::network::Stream;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn assert_stream<S: Stream>() {}

    #[test]
    fn echo_over_the_trait() -> turmoil::Result {
        assert_stream::<turmoil::net::TcpStream>();
        let mut sim = turmoil::Builder::new()
            .rng_seed(1)
            .simulation_duration(Duration::from_secs(5))
            .build();
        sim.host("server", || async {
            let mut listener = Turmoil.bind("0.0.0.0:7000".parse()?).await?;
            loop {
                let (mut stream, _) = listener.accept().await?;
                let mut buf = [0u8; 4];
                stream.read_exact(&mut buf).await?;
                stream.write_all(&buf).await?;
            }
        });
        sim.client("client", async {
            let mut stream = Turmoil.connect(resolve("server", 7000)).await?;
            stream.write_all(b"keel").await?;
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"keel");
            Ok(())
        });
        sim.run()
    }
}
