//! JoinGroup (key 11) request and response, versions 0-9 (flexible from 6).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/JoinGroup{Request,Response}.json.
//! Protocol metadata is opaque to the broker (the assignors run in the clients, KAFKA.md §2):
//! it is carried as zero-copy slices of the frame.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// JoinGroupRequest.
    pub struct JoinGroupRequest flexible 6 {
        /// The group identifier.
        group_id: String = String::new(), versions 0..;
        /// The coordinator considers the consumer dead if it receives no heartbeat after this
        /// timeout in milliseconds.
        session_timeout_ms: i32 = 0, versions 0..;
        /// The maximum time in milliseconds that the coordinator will wait for each member to
        /// rejoin when rebalancing the group.
        rebalance_timeout_ms: i32 = -1, versions 1..;
        /// The member id assigned by the group coordinator, or empty when joining first.
        member_id: String = String::new(), versions 0..;
        /// The static member id given by the end user (KIP-345), or null.
        group_instance_id: Option<String> = None, versions 5.., nullable 5..;
        /// The unique name for the class of protocols implemented by the group.
        protocol_type: String = String::new(), versions 0..;
        /// The protocols the member supports.
        protocols: Vec<JoinGroupRequestProtocol> = Vec::new(), versions 0..;
        /// The reason why the member (re-)joins the group.
        reason: Option<String> = None, versions 8.., nullable 8..;
    }
}

message! {
    /// One protocol a joining member supports.
    pub struct JoinGroupRequestProtocol {
        /// The protocol name.
        name: String = String::new(), versions 0..;
        /// The protocol metadata (opaque).
        metadata: Bytes = Bytes::new(), versions 0..;
    }
}

message! {
    /// JoinGroupResponse.
    pub struct JoinGroupResponse flexible 6 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 2..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The generation id of the group.
        generation_id: i32 = -1, versions 0..;
        /// The group protocol type, or null.
        protocol_type: Option<String> = None, versions 7.., nullable 7..;
        /// The group protocol selected by the coordinator (nullable from v7).
        protocol_name: Option<String> = Some(String::new()), versions 0.., nullable 7..;
        /// The leader of the group.
        leader: String = String::new(), versions 0..;
        /// True if the leader must skip running the assignment (KIP-814).
        skip_assignment: bool = false, versions 9..;
        /// The member id assigned by the group coordinator.
        member_id: String = String::new(), versions 0..;
        /// The group members (only for the leader).
        members: Vec<JoinGroupResponseMember> = Vec::new(), versions 0..;
    }
}

message! {
    /// A member of the group, as told to the leader.
    pub struct JoinGroupResponseMember {
        /// The group member id.
        member_id: String = String::new(), versions 0..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 5.., nullable 5..;
        /// The group member metadata (opaque).
        metadata: Bytes = Bytes::new(), versions 0..;
    }
}
