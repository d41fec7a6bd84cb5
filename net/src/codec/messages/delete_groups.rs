//! DeleteGroups (key 42) request and response, versions 0-2 (flexible from 2).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DeleteGroups{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DeleteGroupsRequest.
    pub struct DeleteGroupsRequest flexible 2 {
        /// The group names to delete.
        groups_names: Vec<String> = Vec::new(), versions 0..;
    }
}

message! {
    /// DeleteGroupsResponse.
    pub struct DeleteGroupsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The deletion results.
        results: Vec<DeletableGroupResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of deleting one group.
    pub struct DeletableGroupResult {
        /// The group id.
        group_id: String = String::new(), versions 0..;
        /// The deletion error, or 0.
        error_code: i16 = 0, versions 0..;
    }
}
