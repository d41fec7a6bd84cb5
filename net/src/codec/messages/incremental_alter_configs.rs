//! IncrementalAlterConfigs (key 44) request and response, versions 0-1 (flexible from 1):
//! set, delete, append to or subtract from single configuration keys (KIP-339).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/IncrementalAlterConfigs{Request,Response}.json.
//! The nested names are AlterConfigs' too, so they are reached through this module
//! (`incremental_alter_configs::AlterableConfig`).

use crate::codec::schema::message;

/// `config_operation`: set the value.
pub const CONFIG_OPERATION_SET: i8 = 0;
/// `config_operation`: revert to the default.
pub const CONFIG_OPERATION_DELETE: i8 = 1;
/// `config_operation`: append to a list value.
pub const CONFIG_OPERATION_APPEND: i8 = 2;
/// `config_operation`: remove from a list value.
pub const CONFIG_OPERATION_SUBTRACT: i8 = 3;

message! {
    /// IncrementalAlterConfigsRequest.
    pub struct IncrementalAlterConfigsRequest flexible 1 {
        /// The incremental updates for each resource.
        resources: Vec<AlterConfigsResource> = Vec::new(), versions 0..;
        /// True if we should validate the request, but not change the configurations.
        validate_only: bool = false, versions 0..;
    }
}

message! {
    /// The changes to one resource.
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
    /// One configuration change.
    pub struct AlterableConfig {
        /// The configuration key name.
        name: String = String::new(), versions 0..;
        /// The type (0 set, 1 delete, 2 append, 3 subtract) of operation.
        config_operation: i8 = 0, versions 0..;
        /// The value to set for the configuration key, or null.
        value: Option<String> = Some(String::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// IncrementalAlterConfigsResponse.
    pub struct IncrementalAlterConfigsResponse flexible 1 {
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
