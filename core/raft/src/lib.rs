//! keel-raft owns one consensus algorithm, Raft (Ongaro & Ousterhout 2014; Ongaro's thesis
//! 2014), as a deterministic sans-IO state machine used by the metadata quorum and by every
//! partition; it knows nothing of Kafka.
//!
//! - [`RaftNode`] is one replica: inputs are `tick`, `step`, `propose`, `read_index`,
//!   `transfer_leader`, `propose_conf_change`, `persisted` and `compact`, each with the
//!   driver's `now`; outputs are drained with `poll_output`; the next timer is
//!   `next_deadline`.
//! - [`RaftLog`] is the log boundary, in index ranges: one entry may span many offsets of the
//!   caller's log. [`LogTail`] is the in-memory table of a snapshot point and the entries
//!   after it, shared by every log that keeps its entries in memory; [`MemLog`] is an
//!   in-memory implementation with a crash model.
//! - Time is a parameter ([`Instant`], milliseconds), randomness a ChaCha8 stream seeded by
//!   the caller; no threads, no clock, no hash-order iteration (clippy.toml enforces it).
//!
//! What is implemented: elections with randomized timeouts, pre-vote and check-quorum (with
//! the vote lease); replication with the consistency check, term-wise fast back-off,
//! truncation of divergent suffixes, commit only by entries of the leader's term, pipelined
//! AppendEntries bounded in count and bytes (probe / replicate / snapshot progress);
//! durability gating of votes and acknowledgements; leadership transfer; ReadIndex and lease
//! reads; learners and single-server membership changes; snapshots and InstallSnapshot in
//! chunks of at most `max_msg_bytes`, one in flight per follower.

pub mod codec;
pub mod config;
pub mod log;
pub mod membership;
pub mod message;
pub mod node;
pub mod progress;
pub mod read_only;
pub mod types;

pub use config::{Config, PlantedBug};
pub use log::{LogTail, MemLog, RaftLog};
pub use membership::{ConfChange, ConfChangeError, Membership};
pub use message::{Entry, EntryData, Message, RejectHint, Snapshot, SnapshotMeta};
pub use node::{InitError, Output, ProposeError, RaftNode, ReadError, Role, Stats, TransferError};
pub use progress::{Progress, ProgressState};
pub use types::{HardState, Index, Instant, NodeId, Term};

#[cfg(test)]
mod tests;
