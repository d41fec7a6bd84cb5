//! DeleteAcls (key 31) request and response, versions 1-3 (flexible from 2; v0 was removed in
//! Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DeleteAcls{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DeleteAclsRequest.
    pub struct DeleteAclsRequest flexible 2 {
        /// The filters to use when deleting ACLs.
        filters: Vec<DeleteAclsFilter> = Vec::new(), versions 0..;
    }
}

message! {
    /// One filter of ACLs to delete.
    pub struct DeleteAclsFilter {
        /// The resource type.
        resource_type_filter: i8 = 0, versions 0..;
        /// The resource name, or null to match any.
        resource_name_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The pattern type.
        pattern_type_filter: i8 = 3, versions 1..;
        /// The principal filter, or null to accept all principals.
        principal_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The host filter, or null to accept all hosts.
        host_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The ACL operation.
        operation: i8 = 0, versions 0..;
        /// The permission type.
        permission_type: i8 = 0, versions 0..;
    }
}

message! {
    /// DeleteAclsResponse.
    pub struct DeleteAclsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The results for each filter.
        filter_results: Vec<DeleteAclsFilterResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of one filter.
    pub struct DeleteAclsFilterResult {
        /// The error code, or 0 if the filter succeeded.
        error_code: i16 = 0, versions 0..;
        /// The error message, or null if the filter succeeded.
        error_message: Option<String> = None, versions 0.., nullable 0..;
        /// The ACLs which matched this filter.
        matching_acls: Vec<DeleteAclsMatchingAcl> = Vec::new(), versions 0..;
    }
}

message! {
    /// One deleted ACL.
    pub struct DeleteAclsMatchingAcl {
        /// The deletion error code, or 0 if the deletion succeeded.
        error_code: i16 = 0, versions 0..;
        /// The deletion error message, or null if the deletion succeeded.
        error_message: Option<String> = None, versions 0.., nullable 0..;
        /// The ACL resource type.
        resource_type: i8 = 0, versions 0..;
        /// The ACL resource name.
        resource_name: String = String::new(), versions 0..;
        /// The ACL resource pattern type.
        pattern_type: i8 = 3, versions 1..;
        /// The ACL principal.
        principal: String = String::new(), versions 0..;
        /// The ACL host.
        host: String = String::new(), versions 0..;
        /// The ACL operation.
        operation: i8 = 0, versions 0..;
        /// The ACL permission type.
        permission_type: i8 = 0, versions 0..;
    }
}
