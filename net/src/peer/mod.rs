//! Raft peer traffic between nodes: the framing ([`frame`]), the payload codec ([`codec`]),
//! the durable Raft log over keel-core's `Storage` ([`log`]) and the driver loop that runs
//! one `RaftNode` over any [`crate::network::Network`] ([`driver`]).

pub mod codec;
pub mod driver;
pub mod frame;
pub mod log;
