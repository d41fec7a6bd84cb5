//! LeaveGroup (key 13) request and response, versions 0-5 (flexible from 4; v3+ removes a
//! batch of members, KIP-345).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/LeaveGroup{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// LeaveGroupRequest.
    pub struct LeaveGroupRequest flexible 4 {
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The member id (v0-2).
        member_id: String = String::new(), versions 0..=2;
        /// The members leaving the group (v3+).
        members: Vec<MemberIdentity> = Vec::new(), versions 3..;
    }
}

message! {
    /// A member leaving the group.
    pub struct MemberIdentity {
        /// The member id.
        member_id: String = String::new(), versions 3..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 3.., nullable 3..;
        /// The reason why the member left the group.
        reason: Option<String> = None, versions 5.., nullable 5..;
    }
}

message! {
    /// LeaveGroupResponse.
    pub struct LeaveGroupResponse flexible 4 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The result of each leaving member (v3+).
        members: Vec<MemberResponse> = Vec::new(), versions 3..;
    }
}

message! {
    /// The result of one member leaving.
    pub struct MemberResponse {
        /// The member id.
        member_id: String = String::new(), versions 3..;
        /// The static member id, or null.
        group_instance_id: Option<String> = Some(String::new()), versions 3.., nullable 3..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 3..;
    }
}
