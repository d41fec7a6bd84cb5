//! AlterConfigs (key 33) request and response, versions 0-2 (flexible from 2): replace the
//! whole configuration of each resource (see IncrementalAlterConfigs for per-key changes).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/AlterConfigs{Request,Response}.json.
//! The nested names are IncrementalAlterConfigs' too, so they are reached through this module
//! (`alter_configs::AlterableConfig`). Resource types: see
//! [`RESOURCE_TYPE_TOPIC`](super::describe_configs::RESOURCE_TYPE_TOPIC).

use crate::codec::schema::message;

message! {
    /// AlterConfigsRequest.
    pub struct AlterConfigsRequest flexible 2 {
        /// The updates for each resource.
        resources: Vec<AlterConfigsResource> = Vec::new(), versions 0..;
        /// True if we should validate the request, but not change the configurations.
        validate_only: bool = false, versions 0..;
    }
}

message! {
    /// The new configuration of one resource.
    pub struct AlterConfigsResource {
        /// The resource type: 2 topic, 4 broker, 8 broker logger.
        resource_type: i8 = 0, versions 0..;
        /// The resource name.
        resource_name: String = String::new(), versions 0..;
        /// The configurations.
        configs: Vec<AlterableConfig> = Vec::new(), versions 0..;
    }
}

message! {
    /// One configuration to set.
    pub struct AlterableConfig {
        /// The configuration key name.
        name: String = String::new(), versions 0..;
        /// The value to set for the configuration key, or null.
        value: Option<String> = Some(String::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// AlterConfigsResponse.
    pub struct AlterConfigsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The responses for each resource.
        responses: Vec<AlterConfigsResourceResponse> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of altering one resource.
    pub struct AlterConfigsResourceResponse {
        /// The resource error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The resource error message, or null.
        error_message: Option<String> = Some(String::new()), versions 0.., nullable 0..;
        /// The resource type.
        resource_type: i8 = 0, versions 0..;
        /// The resource name.
        resource_name: String = String::new(), versions 0..;
    }
}
