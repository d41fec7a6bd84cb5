//! DescribeAcls (key 29) request and response, versions 1-3 (flexible from 2; v0 was removed
//! in Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeAcls{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DescribeAclsRequest.
    pub struct DescribeAclsRequest flexible 2 {
        /// The resource type.
        resource_type_filter: i8 = 0, versions 0..;
        /// The resource name, or null to match any resource name.
        resource_name_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The resource pattern to match.
        pattern_type_filter: i8 = 3, versions 1..;
        /// The principal to match, or null to match any principal.
        principal_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The host to match, or null to match any host.
        host_filter: Option<String> = None, versions 0.., nullable 0..;
        /// The operation to match.
        operation: i8 = 0, versions 0..;
        /// The permission type to match.
        permission_type: i8 = 0, versions 0..;
    }
}

message! {
    /// DescribeAclsResponse.
    pub struct DescribeAclsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The error message, or null.
        error_message: Option<String> = None, versions 0.., nullable 0..;
        /// Each resource that is referenced in an ACL.
        resources: Vec<DescribeAclsResource> = Vec::new(), versions 0..;
    }
}

message! {
    /// One resource and its ACLs.
    pub struct DescribeAclsResource {
        /// The resource type.
        resource_type: i8 = 0, versions 0..;
        /// The resource name.
        resource_name: String = String::new(), versions 0..;
        /// The resource pattern type.
        pattern_type: i8 = 3, versions 1..;
        /// The ACLs.
        acls: Vec<AclDescription> = Vec::new(), versions 0..;
    }
}

message! {
    /// One ACL.
    pub struct AclDescription {
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
