//! ApiVersions (key 18) request and response, versions 0-4 (flexible from 3).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/ApiVersions{Request,Response}.json.
//! The response header is always v0, even in flexible versions (KIP-511; see
//! [`crate::codec::response_header_version`]).

use crate::codec::schema::message;

message! {
    /// ApiVersionsRequest: which API versions does the broker support?
    pub struct ApiVersionsRequest flexible 3 {
        /// The name of the client (KIP-511).
        client_software_name: String = String::new(), versions 3..;
        /// The version of the client.
        client_software_version: String = String::new(), versions 3..;
    }
}

message! {
    /// ApiVersionsResponse: the API versions the broker supports.
    pub struct ApiVersionsResponse flexible 3 {
        /// The top-level error code.
        error_code: i16 = 0, versions 0..;
        /// The APIs supported by the broker.
        api_keys: Vec<ApiVersion> = Vec::new(), versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
    }
    tagged {
        /// Features supported by the broker.
        0 => supported_features: Vec<SupportedFeatureKey> = Vec::new(), versions 3..;
        /// The monotonically increasing epoch for the finalized features information.
        1 => finalized_features_epoch: i64 = -1, versions 3..;
        /// List of cluster-wide finalized features.
        2 => finalized_features: Vec<FinalizedFeatureKey> = Vec::new(), versions 3..;
        /// Set by a KRaft controller if the required configurations for ZK migration are present.
        3 => zk_migration_ready: bool = false, versions 3..;
    }
}

message! {
    /// One supported API and its version range.
    pub struct ApiVersion {
        /// The API index.
        api_key: i16 = 0, versions 0..;
        /// The minimum supported version, inclusive.
        min_version: i16 = 0, versions 0..;
        /// The maximum supported version, inclusive.
        max_version: i16 = 0, versions 0..;
    }
}

message! {
    /// A feature the broker supports.
    pub struct SupportedFeatureKey {
        /// The name of the feature.
        name: String = String::new(), versions 3..;
        /// The minimum supported version for the feature.
        min_version: i16 = 0, versions 3..;
        /// The maximum supported version for the feature.
        max_version: i16 = 0, versions 3..;
    }
}

message! {
    /// A cluster-wide finalized feature.
    pub struct FinalizedFeatureKey {
        /// The name of the feature.
        name: String = String::new(), versions 3..;
        /// The cluster-wide finalized max version level for the feature.
        max_version_level: i16 = 0, versions 3..;
        /// The cluster-wide finalized min version level for the feature.
        min_version_level: i16 = 0, versions 3..;
    }
}
