//! keel-net: Keel's Kafka wire codec and framing, the async driver that runs a core node
//! over sockets and a disk, filesystem storage, and a small Kafka client.

pub mod api_map;
pub mod client;
pub mod codec;
pub mod data_dir;
pub mod driver;
pub mod fd_budget;
pub mod fs_storage;
pub mod metrics;
pub mod network;
pub mod peer;
