//! Heartbeat (key 12) request and response, versions 0-4 (flexible from 4).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/Heartbeat{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// HeartbeatRequest.
    pub struct HeartbeatRequest flexible 4 {
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The generation of the group.
        generation_id: i32 = 0, versions 0..;
        /// The member id.
        member_id: String = String::new(), versions 0..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 3.., nullable 3..;
    }
}

message! {
    /// HeartbeatResponse.
    pub struct HeartbeatResponse flexible 4 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
    }
}
