//! CreateAcls (key 30) request and response, versions 1-3 (flexible from 2; v0 was removed in
//! Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/CreateAcls{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// CreateAclsRequest.
    pub struct CreateAclsRequest flexible 2 {
        /// The ACLs that we want to create.
        creations: Vec<AclCreation> = Vec::new(), versions 0..;
    }
}

message! {
    /// One ACL to create.
    pub struct AclCreation {
        /// The type of the resource.
        resource_type: i8 = 0, versions 0..;
        /// The resource name for the ACL.
        resource_name: String = String::new(), versions 0..;
        /// The pattern type for the ACL.
        resource_pattern_type: i8 = 3, versions 1..;
        /// The principal for the ACL.
        principal: String = String::new(), versions 0..;
        /// The host for the ACL.
        host: String = String::new(), versions 0..;
        /// The operation type for the ACL (read, write, etc.).
        operation: i8 = 0, versions 0..;
        /// The permission type for the ACL (allow, deny, etc.).
        permission_type: i8 = 0, versions 0..;
    }
}

message! {
    /// CreateAclsResponse.
    pub struct CreateAclsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The results for each ACL creation.
        results: Vec<AclCreationResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of one ACL creation.
    pub struct AclCreationResult {
        /// The result error, or zero if there was no error.
        error_code: i16 = 0, versions 0..;
        /// The result message, or null if there was no error.
        error_message: Option<String> = None, versions 0.., nullable 0..;
    }
}
