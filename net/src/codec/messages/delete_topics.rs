//! DeleteTopics (key 20) request and response, versions 1-6 (flexible from 4; v6 names topics
//! by name or id).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DeleteTopics{Request,Response}.json.

use crate::codec::schema::message;
use crate::codec::wire::Uuid;

message! {
    /// DeleteTopicsRequest.
    pub struct DeleteTopicsRequest flexible 4 {
        /// The name or topic id of the topics to delete (v6+).
        topics: Vec<DeleteTopicState> = Vec::new(), versions 6..;
        /// The names of the topics to delete (v0-5).
        topic_names: Vec<String> = Vec::new(), versions 0..=5;
        /// The length of time in milliseconds to wait for the deletions to complete.
        timeout_ms: i32 = 0, versions 0..;
    }
}

message! {
    /// A topic to delete, by name or id.
    pub struct DeleteTopicState {
        /// The topic name, or null to use the id.
        name: Option<String> = None, versions 6.., nullable 6..;
        /// The unique topic id.
        topic_id: Uuid = Uuid::NIL, versions 6..;
    }
}

message! {
    /// DeleteTopicsResponse.
    pub struct DeleteTopicsResponse flexible 4 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 1..;
        /// The results for each topic we tried to delete.
        responses: Vec<DeletableTopicResult> = Vec::new(), versions 0..;
    }
}

message! {
    /// The result of deleting one topic.
    pub struct DeletableTopicResult {
        /// The topic name (nullable from v6).
        name: Option<String> = Some(String::new()), versions 0.., nullable 6..;
        /// The unique topic id.
        topic_id: Uuid = Uuid::NIL, versions 6..;
        /// The deletion error, or 0.
        error_code: i16 = 0, versions 0..;
        /// The error message, or null.
        error_message: Option<String> = None, versions 5.., nullable 5..;
    }
}
