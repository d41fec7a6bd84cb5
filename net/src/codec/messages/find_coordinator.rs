//! FindCoordinator (key 10) request and response, versions 0-6 (flexible from 3; v4+ looks
//! up a batch of `coordinator_keys` and answers with one `Coordinator` each, KIP-699).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/FindCoordinator{Request,Response}.json.

use crate::codec::schema::message;

/// `key_type` of a consumer group coordinator.
pub const COORDINATOR_TYPE_GROUP: i8 = 0;
/// `key_type` of a transaction coordinator.
pub const COORDINATOR_TYPE_TRANSACTION: i8 = 1;

message! {
    /// FindCoordinatorRequest: which broker coordinates a group or a transactional id?
    pub struct FindCoordinatorRequest flexible 3 {
        /// The coordinator key (v0-3).
        key: String = String::new(), versions 0..=3;
        /// The coordinator key type: 0 group, 1 transaction.
        key_type: i8 = 0, versions 1..;
        /// The coordinator keys (v4+).
        coordinator_keys: Vec<String> = Vec::new(), versions 4..;
    }
}

message! {
    /// FindCoordinatorResponse.
    pub struct FindCoordinatorResponse flexible 3 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The error code, or 0 (v0-3).
        error_code: i16 = 0, versions 0..=3;
        /// The error message, or null (v1-3).
        error_message: Option<String> = Some(String::new()), versions 1..=3, nullable 1..=3;
        /// The node id of the coordinator (v0-3).
        node_id: i32 = 0, versions 0..=3;
        /// The host name of the coordinator (v0-3).
        host: String = String::new(), versions 0..=3;
        /// The port of the coordinator (v0-3).
        port: i32 = 0, versions 0..=3;
        /// One coordinator per requested key (v4+).
        coordinators: Vec<Coordinator> = Vec::new(), versions 4..;
    }
}

message! {
    /// The coordinator of one requested key.
    pub struct Coordinator {
        /// The coordinator key.
        key: String = String::new(), versions 4..;
        /// The node id of the coordinator.
        node_id: i32 = 0, versions 4..;
        /// The host name of the coordinator.
        host: String = String::new(), versions 4..;
        /// The port of the coordinator.
        port: i32 = 0, versions 4..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 4..;
        /// The error message, or null.
        error_message: Option<String> = Some(String::new()), versions 4.., nullable 4..;
    }
}
