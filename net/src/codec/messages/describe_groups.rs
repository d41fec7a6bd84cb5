//! DescribeGroups (key 15) request and response, versions 0-6 (flexible from 5).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeGroups{Request,Response}.json.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// DescribeGroupsRequest.
    pub struct DescribeGroupsRequest flexible 5 {
        /// The names of the groups to describe.
        groups: Vec<String> = Vec::new(), versions 0..;
        /// Whether to include authorized operations.
        include_authorized_operations: bool = false, versions 3..;
    }
}

message! {
    /// DescribeGroupsResponse.
    pub struct DescribeGroupsResponse flexible 5 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// Each described group.
        groups: Vec<DescribedGroup> = Vec::new(), versions 0..;
    }
}

message! {
    /// One described group.
    pub struct DescribedGroup {
        /// The describe error, or 0.
        error_code: i16 = 0, versions 0..;
        /// The describe error message, or null.
        error_message: Option<String> = None, versions 6.., nullable 6..;
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The group state string, or the empty string.
        group_state: String = String::new(), versions 0..;
        /// The group protocol type, or the empty string.
        protocol_type: String = String::new(), versions 0..;
        /// The group protocol data, or the empty string.
        protocol_data: String = String::new(), versions 0..;
        /// The group members.
        members: Vec<DescribedGroupMember> = Vec::new(), versions 0..;
        /// 32-bit bitfield of authorized operations for this group.
        authorized_operations: i32 = i32::MIN, versions 3..;
    }
}

message! {
    /// One member of a described group.
    pub struct DescribedGroupMember {
        /// The member id.
        member_id: String = String::new(), versions 0..;
        /// The static member id, or null.
        group_instance_id: Option<String> = None, versions 4.., nullable 4..;
        /// The client id used in the member's latest join group request.
        client_id: String = String::new(), versions 0..;
        /// The client host.
        client_host: String = String::new(), versions 0..;
        /// The metadata of the member's protocol (opaque).
        member_metadata: Bytes = Bytes::new(), versions 0..;
        /// The current assignment of the member (opaque).
        member_assignment: Bytes = Bytes::new(), versions 0..;
    }
}
