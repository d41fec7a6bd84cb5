//! DescribeConfigs (key 32) request and response, versions 1-4 (flexible from 4). Version 0
//! was removed in Kafka 4.0.
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeConfigs{Request,Response}.json.
//! Resource types, config sources and config types stay raw `i8`s on the wire, so values
//! Keel does not know still round-trip; the constants below name the ones it does.

use crate::codec::schema::message;

/// `resource_type` of a topic (Kafka `ConfigResource.Type.TOPIC`).
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// `resource_type` of a broker (Kafka `ConfigResource.Type.BROKER`).
pub const RESOURCE_TYPE_BROKER: i8 = 4;
/// `resource_type` of a broker's loggers (Kafka `ConfigResource.Type.BROKER_LOGGER`).
pub const RESOURCE_TYPE_BROKER_LOGGER: i8 = 8;

message! {
    /// DescribeConfigsRequest.
    pub struct DescribeConfigsRequest flexible 4 {
        /// The resources whose configurations we want to describe.
        resources: Vec<DescribeConfigsResource> = Vec::new(), versions 0..;
        /// True if we should include all synonyms.
        include_synonyms: bool = false, versions 1..;
        /// True if we should include configuration documentation.
        include_documentation: bool = false, versions 3..;
    }
}

message! {
    /// One resource to describe.
    pub struct DescribeConfigsResource {
        /// The resource type: 2 topic, 4 broker, 8 broker logger.
        resource_type: i8 = 0, versions 0..;
        /// The resource name.
        resource_name: String = String::new(), versions 0..;
        /// The configuration keys to list, or null to list all configuration keys.
        configuration_keys: Option<Vec<String>> = Some(Vec::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// DescribeConfigsResponse.
    pub struct DescribeConfigsResponse flexible 4 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The results for each resource.
        results: Vec<DescribeConfigsResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The configurations of one resource.
    pub struct DescribeConfigsResult {
        /// The error code, or 0 if we were able to successfully describe the configurations.
        error_code: i16 = 0, versions 0..;
        /// The error message, or null.
        error_message: Option<String> = Some(String::new()), versions 0.., nullable 0..;
        /// The resource type.
        resource_type: i8 = 0, versions 0..;
        /// The resource name.
        resource_name: String = String::new(), versions 0..;
        /// Each listed configuration.
        configs: Vec<DescribeConfigsResourceResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// One configuration of a described resource.
    pub struct DescribeConfigsResourceResult {
        /// The configuration name.
        name: String = String::new(), versions 0..;
        /// The configuration value, or null (sensitive).
        value: Option<String> = Some(String::new()), versions 0.., nullable 0..;
        /// True if the configuration is read-only.
        read_only: bool = false, versions 0..;
        /// The configuration source (Kafka `DescribeConfigsResponse.ConfigSource`).
        config_source: i8 = -1, versions 1..;
        /// True if this configuration is sensitive.
        is_sensitive: bool = false, versions 0..;
        /// The synonyms for this configuration key.
        synonyms: Vec<DescribeConfigsSynonym> = Vec::new(), versions 1..;
        /// The configuration data type (Kafka `DescribeConfigsResponse.ConfigType`).
        config_type: i8 = 0, versions 3..;
        /// The configuration documentation, or null.
        documentation: Option<String> = Some(String::new()), versions 3.., nullable 0..;
    }
}

message! {
    /// A synonym of a configuration key.
    pub struct DescribeConfigsSynonym {
        /// The synonym name.
        name: String = String::new(), versions 1..;
        /// The synonym value, or null.
        value: Option<String> = Some(String::new()), versions 1.., nullable 0..;
        /// The synonym source.
        source: i8 = 0, versions 1..;
    }
}
