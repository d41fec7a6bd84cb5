//! DescribeCluster (key 60) request and response, versions 0-2 (flexible from 0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeCluster{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DescribeClusterRequest.
    pub struct DescribeClusterRequest flexible 0 {
        /// Whether to include cluster authorized operations.
        include_cluster_authorized_operations: bool = false, versions 0..;
        /// The endpoint type to describe: 1 brokers, 2 controllers.
        endpoint_type: i8 = 1, versions 1..;
        /// Whether to include fenced brokers when listing brokers.
        include_fenced_brokers: bool = false, versions 2..;
    }
}

message! {
    /// DescribeClusterResponse.
    pub struct DescribeClusterResponse flexible 0 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The top-level error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The top-level error message, or null.
        error_message: Option<String> = None, versions 0.., nullable 0..;
        /// The endpoint type that was described: 1 brokers, 2 controllers.
        endpoint_type: i8 = 1, versions 1..;
        /// The cluster id of the responding broker.
        cluster_id: String = String::new(), versions 0..;
        /// The id of the controller broker, or -1.
        controller_id: i32 = -1, versions 0..;
        /// Each broker in the response.
        brokers: Vec<DescribeClusterBroker> = Vec::new(), versions 0..;
        /// 32-bit bitfield of authorized operations for the cluster.
        cluster_authorized_operations: i32 = i32::MIN, versions 0..;
    }
}

message! {
    /// A broker in a DescribeClusterResponse.
    pub struct DescribeClusterBroker {
        /// The broker id.
        broker_id: i32 = 0, versions 0..;
        /// The broker hostname.
        host: String = String::new(), versions 0..;
        /// The broker port.
        port: i32 = 0, versions 0..;
        /// The rack of the broker, or null.
        rack: Option<String> = None, versions 0.., nullable 0..;
        /// Whether the broker is fenced.
        is_fenced: bool = false, versions 2..;
    }
}
