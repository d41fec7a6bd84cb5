//! keel-core: every piece of Keel's broker logic, as a sans-IO state machine.
//!
//! Nothing here touches sockets, threads, the clock or OS randomness: time arrives as
//! [`time::Instant`] arguments, randomness from a seeded ChaCha RNG, and persistent bytes go
//! through the [`storage::Storage`] boundary. The tokio driver (keel-net) and the simulator
//! (keel-sim) run this same code.

pub mod api;
pub mod broker;
pub mod bugs;
pub mod compression;
pub mod config;
pub mod controller;
pub mod error;
pub mod group;
pub mod ids;
pub mod log;
pub mod metadata;
pub mod node;
pub mod partition;
pub mod producer;
pub mod raft_log;
pub mod record;
pub mod storage;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;
pub mod time;
pub mod timers;
