//! keel-sim: Keel's deterministic simulator. turmoil hosts run the real driver
//! (`keel_net::driver::run`, what `keel serve` runs) over a simulated faulty disk; client
//! hosts run workloads with keel-net's client; faults are injected on a schedule drawn from
//! one seed; a Jepsen-style checker reads the clients' history.
//!
//! Map: [`scenario`] (the TOML files) → [`harness`] (builds and steps the simulation,
//! applies faults, heals, runs the convergence read) with [`workload`] (producers,
//! consumers, consumer-group members in [`workload::group`], the final reader) recording
//! into [`history`]; [`checker`] turns the history into anomalies (consumer-group ones:
//! commit-regression, poll-skip at a member's start, unconsumed); [`trace`] hashes the run; [`report`] prints it. [`net`] is the turmoil
//! network, [`disk`] the simulated disk, [`batch`] the consumers' record decoder.
//!
//! Determinism: everything random comes from one ChaCha stream seeded by the run's seed;
//! no `std::time`, no `HashMap`, no OS entropy, no `spawn_blocking` inside a simulation
//! (the driver runs fsyncs inline, [`keel_net::network::SyncMode::InlineAfter`]); every
//! `select!` is `biased;`. `tests/determinism.rs` checks it.

pub mod batch;
pub mod checker;
pub mod disk;
pub mod harness;
pub mod history;
pub mod net;
pub mod raft;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod trace;
pub mod workload;
