//! SyncGroup (key 14) request and response, versions 0-5 (flexible from 4).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/SyncGroup{Request,Response}.json.
//! Assignments are opaque to the broker, which relays the leader's per-member assignment
//! (KAFKA.md §2): zero-copy slices of the frame.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// SyncGroupRequest.
    pub struct SyncGroupRequest flexible 4 {
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The generation of the group.
        generation_id: i32 = 0, versions 0..;
        /// The member id assigned by the group coordinator.
        member_id: String = String::new(), versions 0..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 3.., nullable 3..;
        /// The group protocol type, or null.
        protocol_type: Option<String> = None, versions 5.., nullable 5..;
        /// The group protocol name, or null.
        protocol_name: Option<String> = None, versions 5.., nullable 5..;
        /// Each assignment (sent by the leader only).
        assignments: Vec<SyncGroupRequestAssignment> = Vec::new(), versions 0..;
    }
}

message! {
    /// The leader's assignment for one member.
    pub struct SyncGroupRequestAssignment {
        /// The member id.
        member_id: String = String::new(), versions 0..;
        /// The member assignment (opaque).
        assignment: Bytes = Bytes::new(), versions 0..;
    }
}

message! {
    /// SyncGroupResponse.
    pub struct SyncGroupResponse flexible 4 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The group protocol type, or null.
        protocol_type: Option<String> = None, versions 5.., nullable 5..;
        /// The group protocol name, or null.
        protocol_name: Option<String> = None, versions 5.., nullable 5..;
        /// The member assignment (opaque).
        assignment: Bytes = Bytes::new(), versions 0..;
    }
}
