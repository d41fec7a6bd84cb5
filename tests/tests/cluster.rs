//! Three real `keel serve` processes on loopback forming one cluster (`--voters`): their
//! metadata quorum elects a controller, every broker registers through it, and Metadata from
//! any broker lists all of them and names that controller. Then the controller dies (kill -9)
//! or freezes (SIGSTOP past the election timeout) and the others elect another, and a broker
//! whose `--node-id` is not among its `--voters` refuses to start.
//!
//! The brokers are read with librdkafka (through `rdkafka`), a client nobody here wrote, for
//! the broker list; librdkafka's safe API does not expose the controller id, so that comes
//! from keel-net's own client, asking each broker in turn. Only the metadata quorum is
//! tested here; tests/cluster_records.rs writes and reads records in a cluster.

use keel_net::client::{connect_tcp, ClientOptions};
use keel_tests::{free_port, keel_bin, run_with_timeout, temp_data_dir, Keel};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The metadata quorum's election timeout the brokers run with (each election waits a
/// random time in [t, 2t)).
const ELECTION_TIMEOUT_MS: u64 = 300;
/// How long a cluster may take to agree before a test gives up: generous, since the machine
/// may be busy; a passing run takes a small fraction of it.
const AGREE_WITHIN: Duration = Duration::from_secs(30);
/// One Metadata request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A broker as Metadata lists it: id, host, port.
type Listed = (i32, String, i32);

/// What one broker's Metadata says.
#[derive(Debug, Clone, PartialEq)]
struct View {
    controller: i32,
    brokers: Vec<Listed>,
}

/// Three brokers, ids 1, 2, 3 (`brokers[i]` is node `i + 1`), each with its own Kafka and
/// peer port and data directory.
struct Cluster {
    brokers: Vec<Keel>,
    dirs: Vec<PathBuf>,
    runtime: tokio::runtime::Runtime,
}

/// Which brokers a Metadata answer must list.
#[derive(Clone, Copy)]
enum Listing<'a> {
    /// Exactly these (by index).
    Exactly(&'a [usize]),
    /// At least these (by index); the others may be listed or not.
    AtLeast(&'a [usize]),
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let mut peer_ports = BTreeSet::new();
        while peer_ports.len() < 3 {
            peer_ports.insert(free_port());
        }
        let voters = peer_ports
            .iter()
            .enumerate()
            .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let election_timeout = ELECTION_TIMEOUT_MS.to_string();
        let mut brokers = Vec::new();
        let mut dirs = Vec::new();
        for id in 1..=3 {
            let dir = temp_data_dir(&format!("cluster-{name}-{id}"));
            let node_id = id.to_string();
            brokers.push(Keel::start(
                &dir,
                &[
                    "--node-id",
                    &node_id,
                    "--voters",
                    &voters,
                    "--election-timeout-ms",
                    &election_timeout,
                ],
            ));
            dirs.push(dir);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Cluster {
            brokers,
            dirs,
            runtime,
        }
    }

    fn id(i: usize) -> i32 {
        i as i32 + 1
    }

    fn index(id: i32) -> usize {
        usize::try_from(id - 1).expect("a broker id of this cluster")
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.brokers[i].addr
    }

    /// What broker `i` answers to Metadata, through keel-net's client.
    fn view(&self, i: usize) -> Result<View, String> {
        let addr = self.addr(i);
        self.runtime.block_on(async move {
            let options = ClientOptions {
                request_timeout: REQUEST_TIMEOUT,
                ..ClientOptions::default()
            };
            let mut client = connect_tcp(addr, options)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let metadata = client
                .metadata(None)
                .await
                .map_err(|e| format!("metadata: {e}"))?;
            let mut brokers: Vec<Listed> = metadata
                .brokers
                .iter()
                .map(|b| (b.node_id, b.host.clone(), b.port))
                .collect();
            brokers.sort();
            Ok(View {
                controller: metadata.controller_id,
                brokers,
            })
        })
    }

    /// What librdkafka, bootstrapped with broker `i` alone, learns from Metadata: which
    /// broker answered (librdkafka's name for it, e.g. `127.0.0.1:9092/bootstrap`) and the
    /// brokers listed.
    fn rdkafka_view(&self, i: usize) -> Result<(String, Vec<Listed>), String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.addr(i).to_string())
            .create()
            .map_err(|e| format!("rdkafka client: {e}"))?;
        let metadata = consumer
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|e| format!("rdkafka metadata: {e}"))?;
        let mut brokers: Vec<Listed> = metadata
            .brokers()
            .iter()
            .map(|b| (b.id(), b.host().to_string(), b.port()))
            .collect();
        brokers.sort();
        Ok((metadata.orig_broker_name().to_string(), brokers))
    }

    /// The brokers `indices` as Metadata should list them.
    fn listed(&self, indices: &[usize]) -> Vec<Listed> {
        let mut listed: Vec<Listed> = indices
            .iter()
            .map(|&i| {
                let addr = self.addr(i);
                (
                    Cluster::id(i),
                    addr.ip().to_string(),
                    i32::from(addr.port()),
                )
            })
            .collect();
        listed.sort();
        listed
    }

    fn lists_right(&self, brokers: &[Listed], listing: Listing<'_>) -> bool {
        let all = self.listed(&[0, 1, 2]);
        match listing {
            Listing::Exactly(want) => brokers == self.listed(want),
            Listing::AtLeast(want) => {
                self.listed(want).iter().all(|b| brokers.contains(b))
                    && brokers.iter().all(|b| all.contains(b))
            }
        }
    }

    /// Polls brokers `asked` until every one of them names the same controller, one of
    /// `asked` and accepted by `accept`, and lists the brokers `listing` calls for, both to
    /// keel-net's client and to librdkafka; returns that controller's id. Panics with what
    /// each broker last said and every log after [`AGREE_WITHIN`].
    fn await_agreement(
        &self,
        what: &str,
        asked: &[usize],
        listing: Listing<'_>,
        accept: impl Fn(i32) -> bool,
    ) -> i32 {
        let deadline = Instant::now() + AGREE_WITHIN;
        loop {
            let last = match self.agreement(asked, listing, &accept) {
                Ok(controller) => return controller,
                Err(why) => why,
            };
            if Instant::now() > deadline {
                panic!(
                    "{what}: no agreement within {AGREE_WITHIN:?}; last: {last}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One round of [`Cluster::await_agreement`]: the agreed controller, or why not yet.
    fn agreement(
        &self,
        asked: &[usize],
        listing: Listing<'_>,
        accept: &impl Fn(i32) -> bool,
    ) -> Result<i32, String> {
        let views: Vec<(i32, Result<View, String>)> = asked
            .iter()
            .map(|&i| (Cluster::id(i), self.view(i)))
            .collect();
        let said = format!("{views:?}");
        let mut controllers = BTreeSet::new();
        for (id, view) in &views {
            let view = view.as_ref().map_err(|e| format!("{said} ({e})"))?;
            if !self.lists_right(&view.brokers, listing) {
                return Err(format!("broker {id} lists other brokers: {said}"));
            }
            controllers.insert(view.controller);
        }
        let controller = match controllers.into_iter().collect::<Vec<_>>()[..] {
            [c] => c,
            _ => return Err(format!("controllers differ: {said}")),
        };
        let live: Vec<i32> = asked.iter().map(|&i| Cluster::id(i)).collect();
        if !live.contains(&controller) || !accept(controller) {
            return Err(format!(
                "controller {controller} is not the one wanted: {said}"
            ));
        }
        // The same answer to librdkafka, from the broker it was sent to: a fresh client knows
        // only its bootstrap address, and names the broker by it.
        for &i in asked {
            let (answered_by, brokers) = self.rdkafka_view(i)?;
            let bootstrap = self.addr(i).to_string();
            if !answered_by.starts_with(&bootstrap) || !self.lists_right(&brokers, listing) {
                return Err(format!(
                    "librdkafka via broker {}: answered by {answered_by}, brokers {brokers:?}",
                    Cluster::id(i)
                ));
            }
        }
        Ok(controller)
    }

    /// Every broker's log, for a failure's message.
    fn logs(&self) -> String {
        self.brokers
            .iter()
            .enumerate()
            .map(|(i, b)| format!("--- broker {} log\n{}", Cluster::id(i), b.log()))
            .collect()
    }

    /// Sends `signal` (`STOP`, `CONT`) to broker `i`.
    fn signal(&self, i: usize, signal: &str) {
        let pid = self.brokers[i].pid().expect("the broker runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Dropping each Keel kills it (kill -9 also ends a SIGSTOPped process); the data and
        // logs stay behind when the test failed.
        self.brokers.clear();
        if !std::thread::panicking() {
            for dir in &self.dirs {
                let _ = std::fs::remove_dir_all(dir);
                let _ = std::fs::remove_file(dir.with_extension("log"));
            }
        }
    }
}

const ALL: &[usize] = &[0, 1, 2];

#[test]
fn three_brokers_register_and_agree_on_one_controller() {
    let cluster = Cluster::start("form");
    let controller = cluster.await_agreement("forming", ALL, Listing::Exactly(ALL), |_| true);
    println!("controller: broker {controller}");
    // The controller Metadata names is a broker that became the metadata quorum's leader.
    let log = cluster.brokers[Cluster::index(controller)].log();
    assert!(
        log.contains("metadata quorum role=Leader"),
        "broker {controller} is the controller but never logged leading the quorum\n{}",
        cluster.logs()
    );
}

#[test]
fn the_survivors_elect_another_controller_when_it_is_killed() {
    let mut cluster = Cluster::start("kill9");
    let first = cluster.await_agreement("forming", ALL, Listing::Exactly(ALL), |_| true);
    let dead = Cluster::index(first);
    cluster.brokers[dead].kill9();
    let survivors: Vec<usize> = ALL.iter().copied().filter(|&i| i != dead).collect();
    let second = cluster.await_agreement(
        "after kill -9 of the controller",
        &survivors,
        Listing::AtLeast(&survivors),
        |c| c != first,
    );
    // Then the new controller fences the broker it no longer hears from, and Metadata
    // leaves it out (broker.session.timeout.ms, 2 s).
    let fenced = cluster.await_agreement(
        "fencing the killed controller",
        &survivors,
        Listing::Exactly(&survivors),
        |c| c != first,
    );
    println!("controller {first} killed; survivors chose {second}, then fenced it under {fenced}");
    cluster.brokers[dead].restart();
    let third = cluster.await_agreement(
        "after the killed controller restarted",
        ALL,
        Listing::Exactly(ALL),
        |_| true,
    );
    println!("broker {first} restarted; controller now {third}");
}

#[test]
fn a_frozen_controller_is_replaced_and_rejoins_when_it_resumes() {
    let cluster = Cluster::start("sigstop");
    let first = cluster.await_agreement("forming", ALL, Listing::Exactly(ALL), |_| true);
    let frozen = Cluster::index(first);
    let others: Vec<usize> = ALL.iter().copied().filter(|&i| i != frozen).collect();
    cluster.signal(frozen, "STOP");
    let stopped_at = Instant::now();
    // A frozen broker's sockets still accept connections but nothing answers: ask only the
    // others, which should elect one of themselves (and may fence the frozen one meanwhile).
    let second = cluster.await_agreement(
        "while the controller is SIGSTOPped",
        &others,
        Listing::AtLeast(&others),
        |c| c != first,
    );
    // Stay frozen well past the election timeout, as a long GC pause or a stalled VM would.
    let frozen_for = Duration::from_secs(3);
    if let Some(rest) = frozen_for.checked_sub(stopped_at.elapsed()) {
        std::thread::sleep(rest);
    }
    cluster.signal(frozen, "CONT");
    println!(
        "controller {first} frozen, others chose {second}; right after SIGCONT it says {:?}",
        cluster.view(frozen)
    );
    let after = cluster.await_agreement(
        "after the frozen controller resumed",
        ALL,
        Listing::Exactly(ALL),
        |_| true,
    );
    println!("after the resume all three name {after}");
}

#[test]
fn a_broker_outside_its_voters_refuses_to_start() {
    let dir = temp_data_dir("cluster-not-a-voter");
    let listen = format!("127.0.0.1:{}", free_port());
    let voters = format!(
        "1@127.0.0.1:{},2@127.0.0.1:{},3@127.0.0.1:{}",
        free_port(),
        free_port(),
        free_port()
    );
    let out = run_with_timeout(
        Command::new(keel_bin())
            .arg("serve")
            .args(["--node-id", "4", "--voters", &voters, "--listen", &listen])
            .arg("--data-dir")
            .arg(&dir),
        b"",
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A configuration error: exit 2, which the systemd unit does not restart (README).
    assert_eq!(
        out.status.code(),
        Some(2),
        "keel serve should refuse to start; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "--voters {voters}: this broker (--node-id 4) is not among them"
        )),
        "stderr: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // Refused before anything was written: not even the quorum's log.
    let entries: Vec<_> = std::fs::read_dir(&dir).expect("data dir").collect();
    assert!(entries.is_empty(), "it wrote {entries:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
