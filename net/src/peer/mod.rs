//! Peer traffic between nodes: the framing ([`frame`]), the payload codec ([`codec`]), the
//! broker transport that carries a node's `SendPeer` outputs ([`transport`]) and the
//! driver loop that runs one standalone `RaftNode` over any [`crate::network::Network`]
//! ([`driver`], the simulator's Raft scenarios). The durable Raft log lives in keel-core
//! (`keel_core::raft_log`), since broker nodes keep their metadata log there.

pub mod codec;
pub mod driver;
pub mod frame;
pub mod transport;

pub use keel_core::raft_log as log;
