//! DescribeLogDirs (key 35) request and response, versions 1-4 (flexible from 2; v0 was
//! removed in Kafka 4.0 and has the same layout as v1).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeLogDirs{Request,Response}.json.

use crate::codec::schema::message;

message! {
    /// DescribeLogDirsRequest: the partitions in each log directory, and their sizes.
    pub struct DescribeLogDirsRequest flexible 2 {
        /// Each topic to describe, or null for every topic.
        topics: Option<Vec<DescribableLogDirTopic>> = Some(Vec::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// One topic to describe.
    pub struct DescribableLogDirTopic {
        /// The topic name.
        topic: String = String::new(), versions 0..;
        /// The partition indexes.
        partitions: Vec<i32> = Vec::new(), versions 0..;
    }
}

message! {
    /// DescribeLogDirsResponse.
    pub struct DescribeLogDirsResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The top-level error code, or 0.
        error_code: i16 = 0, versions 3..;
        /// The log directories.
        results: Vec<DescribeLogDirsResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// One log directory.
    pub struct DescribeLogDirsResult {
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The absolute log directory path.
        log_dir: String = String::new(), versions 0..;
        /// Each topic with partitions in the directory.
        topics: Vec<DescribeLogDirsTopic> = Vec::new(), versions 0..;
        /// The size of the directory's volume in bytes, or -1.
        total_bytes: i64 = -1, versions 4..;
        /// The bytes usable on that volume, or -1.
        usable_bytes: i64 = -1, versions 4..;
    }
}

message! {
    /// One topic in a log directory.
    pub struct DescribeLogDirsTopic {
        /// The topic name.
        name: String = String::new(), versions 0..;
        /// Its partitions in the directory.
        partitions: Vec<DescribeLogDirsPartition> = Vec::new(), versions 0..;
    }
}

message! {
    /// One partition in a log directory.
    pub struct DescribeLogDirsPartition {
        /// The partition index.
        partition_index: i32 = 0, versions 0..;
        /// The size of the log segments in this partition in bytes.
        partition_size: i64 = 0, versions 0..;
        /// How far a future replica lags the current one (0 for a current replica).
        offset_lag: i64 = 0, versions 0..;
        /// Whether this is a future replica being moved between directories.
        is_future_key: bool = false, versions 0..;
    }
}
