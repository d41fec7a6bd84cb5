//! The broker's request and response vocabulary, independent of wire versions.
//!
//! keel-net decodes a Kafka request of any supported version into one of these, and encodes
//! the response at the version the client asked for. The core therefore never branches on
//! API versions: a field a version lacks is simply ignored or defaulted by the codec layer.
//! Field names follow Kafka's message schemas.

use crate::error::ErrorCode;
use bytes::Bytes;

/// A connection as the driver numbers it; the core only echoes it back.
pub type ConnId = u64;
/// A request as the driver numbers it (unique per node run); responses carry it back.
pub type RequestId = u64;

/// Kafka's topic id (KIP-516), a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    pub const ZERO: TopicId = TopicId([0; 16]);
    pub fn is_zero(&self) -> bool {
        *self == TopicId::ZERO
    }
}

/// A topic named by name or, in newer API versions, by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicRef {
    pub name: Option<String>,
    pub id: TopicId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Metadata(MetadataRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    // Log start offsets (broker/retention.rs).
    DeleteRecords(DeleteRecordsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeQuorum(DescribeQuorumRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    // Topic and broker configs (broker/configs.rs).
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    // Group coordination and committed offsets (served by `group`, see broker/group.rs).
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    // Idempotent producers (broker/idempotence.rs).
    InitProducerId(InitProducerIdRequest),
    // DescribeAcls, CreateAcls, DeleteAcls: answered as Kafka with no authorizer
    // (broker/admin.rs).
    Acls(AclRequest),
    // CreateDelegationToken, RenewDelegationToken, ExpireDelegationToken,
    // DescribeDelegationToken: refused as Kafka refuses them on PLAINTEXT (broker/admin.rs).
    DelegationToken(DelegationTokenRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Metadata(MetadataResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    DeleteRecords(DeleteRecordsResponse),
    CreatePartitions(CreatePartitionsResponse),
    DescribeCluster(DescribeClusterResponse),
    DescribeQuorum(DescribeQuorumResponse),
    DescribeLogDirs(DescribeLogDirsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(AlterConfigsResponse),
    // Group coordination and committed offsets.
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    InitProducerId(InitProducerIdResponse),
    Acls(AclResponse),
    DelegationToken(DelegationTokenResponse),
}

// ---- ACLs --------------------------------------------------------------------------------

/// An ACL request, reduced to what an answer without an authorizer depends on: Keel has no
/// authorizer, so every ACL API answers SECURITY_DISABLED, as Kafka without one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRequest {
    /// DescribeAcls (29).
    Describe,
    /// CreateAcls (30) with this many creations.
    Create { creations: usize },
    /// DeleteAcls (31) with this many filters.
    Delete { filters: usize },
}

/// One error and message, per creation, per filter, or for the whole DescribeAcls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclResult {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclResponse {
    Describe(AclResult),
    Create(Vec<AclResult>),
    Delete(Vec<AclResult>),
}

// ---- Delegation tokens -------------------------------------------------------------------

/// A delegation token request, reduced to what Kafka's answer on a PLAINTEXT listener depends
/// on: Keel's listeners are all PLAINTEXT, where Kafka allows no token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationTokenRequest {
    /// CreateDelegationToken (38), with the owner it names (v3+), if any: principal type and
    /// name.
    Create {
        owner_principal_type: Option<String>,
        owner_principal_name: Option<String>,
    },
    /// RenewDelegationToken (39).
    Renew,
    /// ExpireDelegationToken (40).
    Expire,
    /// DescribeDelegationToken (41).
    Describe,
}

/// A Kafka principal: type ("User") and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub principal_type: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationTokenResponse {
    /// CreateDelegationToken: no token was made, so no token id and an empty HMAC.
    Create {
        error_code: ErrorCode,
        owner: Principal,
        requester: Principal,
        issue_timestamp_ms: i64,
        expiry_timestamp_ms: i64,
        max_timestamp_ms: i64,
    },
    Renew {
        error_code: ErrorCode,
        expiry_timestamp_ms: i64,
    },
    Expire {
        error_code: ErrorCode,
        expiry_timestamp_ms: i64,
    },
    /// DescribeDelegationToken: no tokens.
    Describe { error_code: ErrorCode },
}

// ---- Metadata ----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataRequest {
    /// `None` asks for every topic.
    pub topics: Option<Vec<TopicRef>>,
    pub allow_auto_topic_creation: bool,
    /// v8-10: answer `cluster_authorized_operations`.
    pub include_cluster_authorized_operations: bool,
    /// v8+: answer each topic's `topic_authorized_operations`.
    pub include_topic_authorized_operations: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerInfo>,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
    /// v8-10; [`AUTHORIZED_OPERATIONS_OMITTED`] unless asked for.
    pub cluster_authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataTopic {
    pub error_code: ErrorCode,
    pub name: Option<String>,
    pub topic_id: TopicId,
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
    /// v8+; [`AUTHORIZED_OPERATIONS_OMITTED`] unless asked for.
    pub topic_authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetadataPartition {
    pub error_code: ErrorCode,
    pub partition_index: i32,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
    pub offline_replicas: Vec<i32>,
}

// ---- Produce -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    /// 0: no response; 1: after the leader's append; -1: after the data is durable.
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProducePartition {
    pub partition_index: i32,
    /// The record batch bytes exactly as sent: a slice of the request frame, never copied.
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopicResponse>,
    pub throttle_time_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProduceTopicResponse {
    pub name: String,
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub error_message: Option<String>,
    /// v8+: the records that made the batch be refused (KIP-467), by index in the batch.
    pub record_errors: Vec<RecordError>,
}

/// One record of a refused batch and why (Kafka's `ProduceResponse.RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: Option<String>,
}

impl ProducePartitionResponse {
    pub fn error(partition_index: i32, error_code: ErrorCode, message: Option<String>) -> Self {
        ProducePartitionResponse {
            partition_index,
            error_code,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message: message,
            record_errors: Vec::new(),
        }
    }
}

// ---- Fetch -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchRequest {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    /// 0 read_uncommitted, 1 read_committed (the same without transactions).
    pub isolation_level: i8,
    pub topics: Vec<FetchTopic>,
    /// The fetch session it belongs to (v7+, KIP-227); sessionless by default.
    pub session: FetchSessionRequest,
}

/// Session id 0 with epoch -1: no session (what fetches before v7 and librdkafka send).
pub const FETCH_SESSION_FINAL_EPOCH: i32 = -1;
/// Epoch 0: a full fetch that opens a new session.
pub const FETCH_SESSION_INITIAL_EPOCH: i32 = 0;

/// A fetch's session fields (KIP-227).
#[derive(Debug, Clone, PartialEq)]
pub struct FetchSessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// Partitions leaving the session.
    pub forgotten: Vec<FetchForgottenTopic>,
}

impl Default for FetchSessionRequest {
    fn default() -> Self {
        FetchSessionRequest {
            session_id: 0,
            epoch: FETCH_SESSION_FINAL_EPOCH,
            forgotten: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchForgottenTopic {
    pub name: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchTopic {
    pub name: String,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchPartition {
    pub partition_index: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    /// The fetch session the response belongs to; 0: none.
    pub session_id: i32,
    pub topics: Vec<FetchTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchTopicResponse {
    pub name: String,
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FetchPartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Stored batches exactly as on disk; empty (never null: librdkafka rejects a null
    /// record set) when there is nothing to return.
    pub records: Bytes,
}

// ---- ListOffsets -------------------------------------------------------------------------

/// ListOffsets timestamp asking for the offset after the last record.
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp asking for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets timestamp asking for the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsRequest {
    pub isolation_level: i8,
    pub topics: Vec<ListOffsetsTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    pub current_leader_epoch: i32,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsResponse {
    pub topics: Vec<ListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsTopicResponse {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListOffsetsPartitionResponse {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

// ---- CreateTopics / DeleteTopics ---------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatableTopic {
    pub name: String,
    /// -1: the broker default.
    pub num_partitions: i32,
    /// -1: the broker default.
    pub replication_factor: i16,
    /// Manual assignment: (partition, broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateTopicsResponse {
    pub topics: Vec<CreatableTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatableTopicResult {
    pub name: String,
    pub topic_id: TopicId,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<TopicConfigEntry>,
}

/// One effective topic config in a CreateTopics response (v5+).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TopicConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// Kafka's ConfigSource: 1 topic config, 5 default.
    pub config_source: i8,
    pub is_sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteTopicsRequest {
    pub topics: Vec<TopicRef>,
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteTopicsResponse {
    pub responses: Vec<DeletableTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeletableTopicResult {
    pub name: Option<String>,
    pub topic_id: TopicId,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

// ---- Group coordination (classic protocol) -----------------------------------------------
//
// Every group API below is in its newest, batched shape; the codec layer maps the older
// single-item versions onto one element and back (each type's doc says how). Two request
// fields come from outside the body: `JoinGroupRequest::client_id` (the request header's
// client_id) and `client_host` (the peer address), and one from the version:
// `JoinGroupRequest::require_known_member_id` (v4+).

/// FindCoordinator `key_type` of a consumer group.
pub const COORDINATOR_KEY_TYPE_GROUP: i8 = 0;
/// FindCoordinator `key_type` of a transactional id.
pub const COORDINATOR_KEY_TYPE_TRANSACTION: i8 = 1;

/// FindCoordinator. v0-v3 carry one `key` (v0: always a group): the codec passes it as
/// `keys = [key]` and answers with the fields of `coordinators[0]` at the top level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindCoordinatorRequest {
    pub key_type: i8,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindCoordinatorResponse {
    pub throttle_time_ms: i32,
    /// One per requested key, in request order.
    pub coordinators: Vec<Coordinator>,
}

/// The coordinator of one key, or why there is none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coordinator {
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

/// One protocol (assignor) a joining member supports, with its opaque metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinGroupProtocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the codec sets it to `session_timeout_ms`, as Kafka does.
    pub rebalance_timeout_ms: i32,
    /// Empty on a member's first join.
    pub member_id: String,
    /// Static membership (KIP-345), v5+.
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<JoinGroupProtocol>,
    /// v8+: why the member (re)joins; logged only.
    pub reason: Option<String>,
    /// Set by the codec for v4+: a first join with an empty `member_id` is answered with
    /// MEMBER_ID_REQUIRED and a generated id to rejoin with (KIP-394).
    pub require_known_member_id: bool,
    /// The request header's client_id: the prefix of generated member ids and what
    /// DescribeGroups reports.
    pub client_id: String,
    /// The client's address as the driver sees it ("/127.0.0.1" in Kafka's style), for
    /// DescribeGroups.
    pub client_host: String,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinGroupResponseMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinGroupResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub generation_id: i32,
    /// v7+; `None` on errors.
    pub protocol_type: Option<String>,
    /// `None` on errors (older versions encode it as "").
    pub protocol_name: Option<String>,
    pub leader: String,
    /// v9+ (KIP-814). Keel always answers false: a static leader that rejoins a stable
    /// group is told the previous leader id instead, which every version understands.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member with its metadata, for the leader only; empty for followers.
    pub members: Vec<JoinGroupResponseMember>,
}

/// One member's assignment, as the leader sends it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncGroupAssignment {
    pub member_id: String,
    pub assignment: Bytes,
}

/// SyncGroup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Only the leader's carries assignments.
    pub assignments: Vec<SyncGroupAssignment>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncGroupResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// Heartbeat.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeartbeatResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
}

/// One member leaving (LeaveGroup v3+ batches them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeaveGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

/// LeaveGroup. v0-v2 carry one `member_id`: the codec passes `members = [that]` and answers
/// with `error_code`, or `members[0].error_code` when `error_code` is NONE (as Kafka does).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeaveGroupRequest {
    pub group_id: String,
    pub members: Vec<LeaveGroupMember>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeaveGroupMemberResponse {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: ErrorCode,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeaveGroupResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub members: Vec<LeaveGroupMemberResponse>,
}

/// OffsetCommit. Fields older versions lack (retention_time_ms, v1's commit_timestamp) are
/// dropped by the codec: Keel stamps every commit with the broker's time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 with an empty `member_id`: a "simple" commit by a consumer outside group
    /// management, allowed only while the group has no members.
    pub generation_id_or_member_epoch: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<OffsetCommitRequestTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitRequestTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitRequestPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitRequestPartition {
    pub partition_index: i32,
    pub committed_offset: i64,
    /// v6+ (KIP-320); -1 from older versions. Stored in the offsets topic (OffsetCommitValue
    /// v3) and answered by OffsetFetch v5+.
    pub committed_leader_epoch: i32,
    /// Null is stored as "".
    pub committed_metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitResponse {
    pub throttle_time_ms: i32,
    pub topics: Vec<OffsetCommitResponseTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitResponseTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitResponsePartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetCommitResponsePartition {
    pub partition_index: i32,
    pub error_code: ErrorCode,
}

/// OffsetFetch in its batched form (v8+). v0-v7 name one group: the codec passes
/// `groups = [that]` and answers with `groups[0]`'s topics and error at the top level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchRequest {
    pub groups: Vec<OffsetFetchRequestGroup>,
    /// v7+: answer UNSTABLE_OFFSET_COMMIT for a partition with a commit not yet durable.
    pub require_stable: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchRequestGroup {
    pub group_id: String,
    /// v9+, for KIP-848 consumer groups; not checked for classic groups (as in Kafka).
    pub member_id: Option<String>,
    pub member_epoch: i32,
    /// `None`: every partition the group has committed.
    pub topics: Option<Vec<OffsetFetchRequestTopic>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchRequestTopic {
    pub name: String,
    pub partition_indexes: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchResponse {
    pub throttle_time_ms: i32,
    pub groups: Vec<OffsetFetchResponseGroup>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchResponseGroup {
    pub group_id: String,
    pub topics: Vec<OffsetFetchResponseTopic>,
    pub error_code: ErrorCode,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchResponseTopic {
    pub name: String,
    pub partitions: Vec<OffsetFetchResponsePartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetFetchResponsePartition {
    pub partition_index: i32,
    /// -1 if nothing was committed.
    pub committed_offset: i64,
    /// The epoch committed with the offset, or -1 (nothing committed, or an old commit
    /// version). librdkafka would validate it with OffsetForLeaderEpoch v2, which Keel does
    /// not advertise, so it skips that (KAFKA.md §3).
    pub committed_leader_epoch: i32,
    /// "" if nothing was committed.
    pub metadata: Option<String>,
    pub error_code: ErrorCode,
}

/// ListGroups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListGroupsRequest {
    /// v4+: only groups in these states (case-insensitive); empty = all.
    pub states_filter: Vec<String>,
    /// v5+: only groups of these types ("classic", "consumer"); empty = all.
    pub types_filter: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListGroupsResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    pub groups: Vec<ListedGroup>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// v4+: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    pub group_state: String,
    /// v5+: always "classic".
    pub group_type: String,
}

/// DescribeGroups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    pub include_authorized_operations: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeGroupsResponse {
    pub throttle_time_ms: i32,
    pub groups: Vec<DescribedGroup>,
}

/// Kafka's "authorized operations not requested" value.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribedGroup {
    pub error_code: ErrorCode,
    /// v6+.
    pub error_message: Option<String>,
    pub group_id: String,
    /// "Dead" for a group the coordinator does not know.
    pub group_state: String,
    pub protocol_type: String,
    /// The chosen protocol while Stable, else "".
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
    pub authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribedGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata and assignment are reported only while the group is Stable.
    pub member_metadata: Bytes,
    pub member_assignment: Bytes,
}

/// DeleteGroups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteGroupsRequest {
    pub groups_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteGroupsResponse {
    pub throttle_time_ms: i32,
    /// One per distinct requested group, in request order.
    pub results: Vec<DeletableGroupResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeletableGroupResult {
    pub group_id: String,
    pub error_code: ErrorCode,
}

/// OffsetDelete.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteRequest {
    pub group_id: String,
    pub topics: Vec<OffsetDeleteRequestTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteRequestTopic {
    pub name: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteResponse {
    pub error_code: ErrorCode,
    pub throttle_time_ms: i32,
    pub topics: Vec<OffsetDeleteResponseTopic>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteResponseTopic {
    pub name: String,
    pub partitions: Vec<OffsetDeleteResponsePartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OffsetDeleteResponsePartition {
    pub partition_index: i32,
    pub error_code: ErrorCode,
}

// ---- Configs: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs (broker/configs.rs) ---

/// Kafka's `ConfigResource.Type` values Keel serves.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
pub const RESOURCE_TYPE_BROKER: i8 = 4;

/// Kafka's `DescribeConfigsResponse.ConfigSource`.
pub const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// Kafka's `DescribeConfigsResponse.ConfigType`.
pub const CONFIG_TYPE_BOOLEAN: i8 = 1;
pub const CONFIG_TYPE_STRING: i8 = 2;
pub const CONFIG_TYPE_INT: i8 = 3;
pub const CONFIG_TYPE_LONG: i8 = 5;
pub const CONFIG_TYPE_DOUBLE: i8 = 6;
pub const CONFIG_TYPE_LIST: i8 = 7;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeConfigsRequest {
    pub resources: Vec<DescribeConfigsResource>,
    pub include_synonyms: bool,
    pub include_documentation: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    /// `None`: every config.
    pub configuration_keys: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeConfigsResponse {
    pub results: Vec<DescribeConfigsResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeConfigsResult {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<DescribedConfig>,
}

/// One config of a described resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribedConfig {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    /// One of the `CONFIG_SOURCE_*` values.
    pub config_source: i8,
    pub is_sensitive: bool,
    /// Only when the request asked for synonyms: where the value comes from, most specific
    /// first (the topic's own setting, the broker setting, the default).
    pub synonyms: Vec<ConfigSynonym>,
    /// One of the `CONFIG_TYPE_*` values.
    pub config_type: i8,
    /// Only when the request asked for documentation.
    pub documentation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

/// AlterConfigs: replaces each resource's whole set of dynamic configs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlterConfigsRequest {
    pub resources: Vec<AlterConfigsResource>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlterConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<(String, Option<String>)>,
}

/// The answer to AlterConfigs and IncrementalAlterConfigs alike.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlterConfigsResponse {
    pub responses: Vec<AlterConfigsResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlterConfigsResult {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub resource_type: i8,
    pub resource_name: String,
}

/// IncrementalAlterConfigs (KIP-339): per-key changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncrementalAlterConfigsRequest {
    pub resources: Vec<IncrementalAlterConfigsResource>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncrementalAlterConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<ConfigChange>,
}

/// `operation`: one of the `CONFIG_OP_*` values (kept raw so unknown ones can be refused).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigChange {
    pub name: String,
    pub operation: i8,
    pub value: Option<String>,
}

pub const CONFIG_OP_SET: i8 = 0;
pub const CONFIG_OP_DELETE: i8 = 1;
pub const CONFIG_OP_APPEND: i8 = 2;
pub const CONFIG_OP_SUBTRACT: i8 = 3;

// ---- CreatePartitions (broker/admin.rs) ---------------------------------------------------

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<CreatePartitionsTopic>,
    pub timeout_ms: i32,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatePartitionsTopic {
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// Replicas of each new partition, or `None` to let the broker place them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatePartitionsResponse {
    pub results: Vec<CreatePartitionsTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreatePartitionsTopicResult {
    pub name: String,
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
}

// ---- DescribeQuorum (node/cluster.rs) -------------------------------------------------------

/// DescribeQuorum (key 55, KIP-595): the partitions asked for, by topic name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeQuorumRequest {
    pub topics: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeQuorumResponse {
    pub error_code: ErrorCode,
    pub topics: Vec<(String, Vec<QuorumPartition>)>,
}

/// One quorum as its leader describes it (a follower fills in only what it knows).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuorumPartition {
    pub partition_index: i32,
    pub error_code: ErrorCode,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuorumReplica {
    pub replica_id: i32,
    pub log_end_offset: i64,
    /// Milliseconds since the Unix epoch, or -1.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

// ---- DescribeCluster (broker/admin.rs) ----------------------------------------------------

/// `endpoint_type` values (v1+; older versions always mean brokers).
pub const ENDPOINT_TYPE_BROKERS: i8 = 1;
pub const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct DescribeClusterRequest {
    pub include_cluster_authorized_operations: bool,
    pub endpoint_type: i8,
    pub include_fenced_brokers: bool,
}

impl Default for DescribeClusterRequest {
    fn default() -> Self {
        DescribeClusterRequest {
            include_cluster_authorized_operations: false,
            endpoint_type: ENDPOINT_TYPE_BROKERS,
            include_fenced_brokers: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeClusterResponse {
    pub error_code: ErrorCode,
    pub error_message: Option<String>,
    pub endpoint_type: i8,
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<DescribeClusterBroker>,
    /// [`AUTHORIZED_OPERATIONS_OMITTED`] unless asked for.
    pub cluster_authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeClusterBroker {
    pub broker_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub is_fenced: bool,
}

// ---- DescribeLogDirs (broker/admin.rs) -----------------------------------------------------

/// DescribeLogDirs (key 35): the partitions in each log directory, with their sizes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeLogDirsRequest {
    /// `None`: every partition of every topic.
    pub topics: Option<Vec<DescribableLogDirTopic>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribableLogDirTopic {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DescribeLogDirsResponse {
    /// v3+.
    pub error_code: ErrorCode,
    pub results: Vec<LogDirResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogDirResult {
    pub error_code: ErrorCode,
    pub log_dir: String,
    pub topics: Vec<LogDirTopic>,
    /// v4+: the volume's size and free bytes, -1 when unknown.
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogDirTopic {
    pub name: String,
    pub partitions: Vec<LogDirPartition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogDirPartition {
    pub partition_index: i32,
    pub partition_size: i64,
    pub offset_lag: i64,
    pub is_future_key: bool,
}

// ---- DeleteRecords (broker/retention.rs) --------------------------------------------------

/// DeleteRecords (key 21): move each partition's log start offset up to `offset`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsRequest {
    pub topics: Vec<DeleteRecordsTopic>,
    pub timeout_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsTopic {
    pub name: String,
    pub partitions: Vec<DeleteRecordsPartition>,
}

/// `offset` [`DELETE_RECORDS_HIGH_WATERMARK`] (-1) means the high watermark.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsPartition {
    pub partition_index: i32,
    pub offset: i64,
}

/// DeleteRecords' `offset` that means "up to the high watermark".
pub const DELETE_RECORDS_HIGH_WATERMARK: i64 = -1;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsResponse {
    pub throttle_time_ms: i32,
    pub topics: Vec<DeleteRecordsTopicResult>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsTopicResult {
    pub name: String,
    pub partitions: Vec<DeleteRecordsPartitionResult>,
}

/// `low_watermark` is the partition's log start offset after the deletion, -1 on error.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteRecordsPartitionResult {
    pub partition_index: i32,
    pub low_watermark: i64,
    pub error_code: ErrorCode,
}

// ---- InitProducerId ----------------------------------------------------------------------

/// InitProducerId (key 22). `producer_id`/`producer_epoch` are -1 for a new producer; at v3+
/// (KIP-360) an idempotent producer that lost track of its sequences sends its current pair
/// to have its epoch bumped. Versions before v3 lack both fields: the codec sets them to -1.
#[derive(Debug, Clone, PartialEq)]
pub struct InitProducerIdRequest {
    /// Set only by transactional producers, which Keel does not support.
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: i32,
    pub error_code: ErrorCode,
    /// -1 on error.
    pub producer_id: i64,
    /// -1 on error.
    pub producer_epoch: i16,
}
