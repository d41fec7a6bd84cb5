//! ListGroups (key 16) request and response, versions 0-5 (flexible from 3).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/ListGroups{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// ListGroupsRequest.
    pub struct ListGroupsRequest flexible 3 {
        /// The states of the groups to list; empty lists every group (KIP-518).
        states_filter: Vec<String> = Vec::new(), versions 4..;
        /// The types of the groups to list; empty lists every group (KIP-848).
        types_filter: Vec<String> = Vec::new(), versions 5..;
    }
}

message! {
    /// ListGroupsResponse.
    pub struct ListGroupsResponse flexible 3 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// Each group in the response.
        groups: Vec<ListedGroup> = Vec::new(), versions 0..;
    }
}

message! {
    /// One listed group.
    pub struct ListedGroup {
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The group protocol type.
        protocol_type: String = String::new(), versions 0..;
        /// The group state name.
        group_state: String = String::new(), versions 4..;
        /// The group type name.
        group_type: String = String::new(), versions 5..;
    }
}
