//! The API registry: every Kafka API the codec implements, with two version ranges each.
//!
//! - The **codec** range is what the schemas encode and decode, checked against the
//!   `kafka-protocol` oracle (net/tests/codec_differential.rs) at every version. Keel's client
//!   and the tests may use any of it.
//! - The **advertised** range is what the broker announces in ApiVersions and what
//!   [`decode_request`](super::decode_request) accepts: every advertised version must really
//!   be served, so an API the broker does not serve yet has `advertised None`.
//!
//! [`SUPPORTED_APIS`] is derived from the advertised entries, so serving an API is a one-line
//! change here (`advertised None` → `advertised Some((min, max))`) once the broker handles it.
//! Adding an API is one line here plus its schema file.

use bytes::BytesMut;

use super::error::DecodeError;
use super::messages::*;
use super::schema::Message;
use super::wire::Reader;

#[cfg(feature = "arbitrary")]
use super::arbitrary::Gen;
#[cfg(feature = "arbitrary")]
use super::types::WireType;

/// The version ranges of one API in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRanges {
    /// The API.
    pub key: ApiKey,
    /// (min, max) versions the codec encodes and decodes.
    pub codec: (i16, i16),
    /// (min, max) versions the broker advertises and serves; `None` if it does not serve the
    /// API yet. Always inside `codec`.
    pub advertised: Option<(i16, i16)>,
}

macro_rules! apis {
    ($( $(#[$meta:meta])* $key:ident = $num:literal, codec $min:literal ..= $max:literal,
        advertised $advertised:expr, $req:ident, $resp:ident; )*) => {
        /// A Kafka API Keel's codec implements (not necessarily one the broker serves: see
        /// [`ApiKey::advertised_range`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i16)]
        pub enum ApiKey {
            $( $(#[$meta])* $key = $num, )*
        }

        impl TryFrom<i16> for ApiKey {
            type Error = DecodeError;
            fn try_from(value: i16) -> Result<Self, DecodeError> {
                match value {
                    $( $num => Ok(ApiKey::$key), )*
                    other => Err(DecodeError::UnknownApiKey(other)),
                }
            }
        }

        /// Every API the codec implements, in api-key order.
        pub const APIS: &[ApiRanges] = &[
            $( ApiRanges { key: ApiKey::$key, codec: ($min, $max), advertised: $advertised }, )*
        ];

        const _: () = {
            let keys = [$($num),*];
            let mut i = 1;
            while i < keys.len() {
                assert!(keys[i - 1] < keys[i], "APIS must be in api-key order");
                i += 1;
            }
            // One header version serves request and response, so both bodies must agree on
            // where flexible versions start.
            $(
                assert!(
                    <$req as Message>::FLEXIBLE_FROM == <$resp as Message>::FLEXIBLE_FROM,
                    concat!(stringify!($key), ": request and response disagree on flexible versions"),
                );
            )*
        };

        impl ApiKey {
            /// Whether `version` of this API is flexible (compact encodings, tagged fields).
            pub fn is_flexible(self, version: i16) -> bool {
                match self {
                    $( ApiKey::$key => version >= <$req as Message>::FLEXIBLE_FROM, )*
                }
            }

            /// The (min, max) versions the codec encodes and decodes.
            pub const fn codec_range(self) -> (i16, i16) {
                match self {
                    $( ApiKey::$key => ($min, $max), )*
                }
            }

            /// The (min, max) versions the broker advertises, or `None` if it does not serve
            /// this API.
            pub const fn advertised_range(self) -> Option<(i16, i16)> {
                match self {
                    $( ApiKey::$key => $advertised, )*
                }
            }
        }

        /// A decoded request body.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RequestBody {
            $( $key($req), )*
        }

        /// A response body.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ResponseBody {
            $( $key($resp), )*
        }

        impl RequestBody {
            /// The API this body belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( RequestBody::$key(_) => ApiKey::$key, )*
                }
            }

            /// Decodes the body of `key` at `version` (not checking for trailing bytes, nor
            /// that `version` is in the codec range: see
            /// [`decode_request_body`](super::decode_request_body)).
            pub fn decode(key: ApiKey, version: i16, r: &mut Reader) -> Result<Self, DecodeError> {
                Ok(match key {
                    $( ApiKey::$key => RequestBody::$key(<$req as Message>::decode(r, version)?), )*
                })
            }

            /// Encodes the body at `version`.
            pub fn encode(&self, out: &mut BytesMut, version: i16) {
                match self {
                    $( RequestBody::$key(body) => Message::encode(body, out, version), )*
                }
            }

            /// A random body of `key` valid at `version`, for the codec tests.
            #[cfg(feature = "arbitrary")]
            pub fn random(key: ApiKey, version: i16, g: &mut Gen) -> Self {
                match key {
                    $( ApiKey::$key => RequestBody::$key(
                        <$req as WireType>::random(g, <$req as Message>::ctx(version), false),
                    ), )*
                }
            }
        }

        impl ResponseBody {
            /// The API this body belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( ResponseBody::$key(_) => ApiKey::$key, )*
                }
            }

            /// Decodes the body of `key` at `version` (not checking for trailing bytes).
            pub fn decode(key: ApiKey, version: i16, r: &mut Reader) -> Result<Self, DecodeError> {
                Ok(match key {
                    $( ApiKey::$key => ResponseBody::$key(<$resp as Message>::decode(r, version)?), )*
                })
            }

            /// Encodes the body at `version`.
            pub fn encode(&self, out: &mut BytesMut, version: i16) {
                match self {
                    $( ResponseBody::$key(body) => Message::encode(body, out, version), )*
                }
            }

            /// A random body of `key` valid at `version`, for the codec tests.
            #[cfg(feature = "arbitrary")]
            pub fn random(key: ApiKey, version: i16, g: &mut Gen) -> Self {
                match key {
                    $( ApiKey::$key => ResponseBody::$key(
                        <$resp as WireType>::random(g, <$resp as Message>::ctx(version), false),
                    ), )*
                }
            }
        }
    };
}

apis! {
    /// Produce (0): v3+ is RecordBatch v2 only; v13 names topics by id, so it is not
    /// advertised until topic ids are done.
    Produce = 0, codec 3..=13, advertised Some((3, 11)), ProduceRequest, ProduceResponse;
    /// Fetch (1): advertised up to 12 until topic ids (KAFKA.md §1).
    Fetch = 1, codec 4..=18, advertised Some((4, 12)), FetchRequest, FetchResponse;
    /// ListOffsets (2).
    ListOffsets = 2, codec 1..=10, advertised Some((1, 7)), ListOffsetsRequest, ListOffsetsResponse;
    /// Metadata (3): v13 is not advertised.
    Metadata = 3, codec 0..=13, advertised Some((0, 12)), MetadataRequest, MetadataResponse;
    /// OffsetCommit (8): v0-1 were removed in Kafka 4.0; v10 names topics by id (KIP-848).
    OffsetCommit = 8, codec 2..=10, advertised Some((2, 9)), OffsetCommitRequest, OffsetCommitResponse;
    /// OffsetFetch (9): v0 was removed in Kafka 4.0; v8+ batches groups, v10 names topics
    /// by id (KIP-848).
    OffsetFetch = 9, codec 1..=10, advertised Some((1, 9)), OffsetFetchRequest, OffsetFetchResponse;
    /// FindCoordinator (10): v4+ looks up a batch of `coordinator_keys` (KIP-699).
    FindCoordinator = 10, codec 0..=6, advertised Some((0, 4)), FindCoordinatorRequest, FindCoordinatorResponse;
    /// JoinGroup (11): v8 (reason) and v9 (skip_assignment, KIP-814) are not advertised.
    JoinGroup = 11, codec 0..=9, advertised Some((0, 7)), JoinGroupRequest, JoinGroupResponse;
    /// Heartbeat (12).
    Heartbeat = 12, codec 0..=4, advertised Some((0, 4)), HeartbeatRequest, HeartbeatResponse;
    /// LeaveGroup (13): v3+ leaves a batch of members (KIP-345).
    LeaveGroup = 13, codec 0..=5, advertised Some((0, 5)), LeaveGroupRequest, LeaveGroupResponse;
    /// SyncGroup (14).
    SyncGroup = 14, codec 0..=5, advertised Some((0, 5)), SyncGroupRequest, SyncGroupResponse;
    /// DescribeGroups (15): v6 (KIP-1043 error messages) is not advertised.
    DescribeGroups = 15, codec 0..=6, advertised Some((0, 5)), DescribeGroupsRequest, DescribeGroupsResponse;
    /// ListGroups (16): v4 filters by state (KIP-518), v5 by type (KIP-848); every Keel
    /// group is of type "classic".
    ListGroups = 16, codec 0..=5, advertised Some((0, 5)), ListGroupsRequest, ListGroupsResponse;
    /// ApiVersions (18).
    ApiVersions = 18, codec 0..=4, advertised Some((0, 4)), ApiVersionsRequest, ApiVersionsResponse;
    /// CreateTopics (19).
    CreateTopics = 19, codec 2..=7, advertised Some((2, 7)), CreateTopicsRequest, CreateTopicsResponse;
    /// DeleteTopics (20).
    DeleteTopics = 20, codec 1..=6, advertised Some((1, 6)), DeleteTopicsRequest, DeleteTopicsResponse;
    /// DeleteRecords (21): served by the core (broker/retention.rs).
    DeleteRecords = 21, codec 0..=2, advertised Some((0, 2)), DeleteRecordsRequest, DeleteRecordsResponse;
    /// InitProducerId (22): request v6 (KIP-939, two-phase commit) is still unstable in
    /// Kafka 4.x, so the codec stops at v5 although the response schema covers v6.
    InitProducerId = 22, codec 0..=5, advertised Some((0, 4)), InitProducerIdRequest, InitProducerIdResponse;
    /// DescribeAcls (29): Keel has no authorizer, so it answers SECURITY_DISABLED as Kafka
    /// without one does (broker/admin.rs).
    DescribeAcls = 29, codec 1..=3, advertised Some((1, 3)), DescribeAclsRequest, DescribeAclsResponse;
    /// CreateAcls (30): SECURITY_DISABLED for every creation, as Kafka without an authorizer.
    CreateAcls = 30, codec 1..=3, advertised Some((1, 3)), CreateAclsRequest, CreateAclsResponse;
    /// DeleteAcls (31): SECURITY_DISABLED for every filter, as Kafka without an authorizer.
    DeleteAcls = 31, codec 1..=3, advertised Some((1, 3)), DeleteAclsRequest, DeleteAclsResponse;
    /// DescribeConfigs (32): v0 was removed in Kafka 4.0.
    DescribeConfigs = 32, codec 1..=4, advertised Some((1, 4)), DescribeConfigsRequest, DescribeConfigsResponse;
    /// AlterConfigs (33).
    AlterConfigs = 33, codec 0..=2, advertised Some((0, 2)), AlterConfigsRequest, AlterConfigsResponse;
    /// DescribeLogDirs (35): v0 was removed in Kafka 4.0; v5 (KIP-1066 cordoned log
    /// directories) is not advertised.
    DescribeLogDirs = 35, codec 1..=4, advertised Some((1, 4)), DescribeLogDirsRequest, DescribeLogDirsResponse;
    /// CreatePartitions (37).
    CreatePartitions = 37, codec 0..=3, advertised Some((0, 3)), CreatePartitionsRequest, CreatePartitionsResponse;
    /// CreateDelegationToken (38): Keel has only PLAINTEXT listeners, where Kafka refuses
    /// every token request with DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (broker/admin.rs); v0 was
    /// removed in Kafka 4.0.
    CreateDelegationToken = 38, codec 1..=3, advertised Some((1, 3)),
        CreateDelegationTokenRequest, CreateDelegationTokenResponse;
    /// RenewDelegationToken (39): DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, as Kafka on PLAINTEXT.
    RenewDelegationToken = 39, codec 1..=2, advertised Some((1, 2)),
        RenewDelegationTokenRequest, RenewDelegationTokenResponse;
    /// ExpireDelegationToken (40): DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, as Kafka on PLAINTEXT.
    ExpireDelegationToken = 40, codec 1..=2, advertised Some((1, 2)),
        ExpireDelegationTokenRequest, ExpireDelegationTokenResponse;
    /// DescribeDelegationToken (41): DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, as Kafka on
    /// PLAINTEXT.
    DescribeDelegationToken = 41, codec 1..=3, advertised Some((1, 3)),
        DescribeDelegationTokenRequest, DescribeDelegationTokenResponse;
    /// DeleteGroups (42).
    DeleteGroups = 42, codec 0..=2, advertised Some((0, 2)), DeleteGroupsRequest, DeleteGroupsResponse;
    /// IncrementalAlterConfigs (44).
    IncrementalAlterConfigs = 44, codec 0..=1, advertised Some((0, 1)),
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
    /// OffsetDelete (47): no flexible version.
    OffsetDelete = 47, codec 0..=0, advertised Some((0, 0)), OffsetDeleteRequest, OffsetDeleteResponse;
    /// DescribeQuorum (55, KIP-595): the metadata quorum, answered by the active controller.
    DescribeQuorum = 55, codec 0..=1, advertised Some((0, 1)),
        DescribeQuorumRequest, DescribeQuorumResponse;
    /// DescribeCluster (60): flexible from v0.
    DescribeCluster = 60, codec 0..=2, advertised Some((0, 2)), DescribeClusterRequest, DescribeClusterResponse;
}

const _: () = {
    let mut i = 0;
    while i < APIS.len() {
        let (min, max) = APIS[i].codec;
        assert!(0 <= min && min <= max, "empty codec range");
        if let Some((amin, amax)) = APIS[i].advertised {
            assert!(
                min <= amin && amin <= amax && amax <= max,
                "an advertised range must be a non-empty part of the codec range"
            );
        }
        i += 1;
    }
    assert!(
        ApiKey::ApiVersions.advertised_range().is_some(),
        "clients cannot connect without ApiVersions"
    );
};

const ADVERTISED_COUNT: usize = {
    let mut count = 0;
    let mut i = 0;
    while i < APIS.len() {
        if APIS[i].advertised.is_some() {
            count += 1;
        }
        i += 1;
    }
    count
};

const ADVERTISED: [(ApiKey, i16, i16); ADVERTISED_COUNT] = {
    let mut out = [(ApiKey::ApiVersions, 0, 0); ADVERTISED_COUNT];
    let mut i = 0;
    let mut j = 0;
    while i < APIS.len() {
        if let Some((min, max)) = APIS[i].advertised {
            out[j] = (APIS[i].key, min, max);
            j += 1;
        }
        i += 1;
    }
    out
};

/// (api key, min version, max version) that the broker serves and advertises in
/// ApiVersions, in api-key order: the [`APIS`] entries with an advertised range.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &ADVERTISED;

/// The (min, max) versions the broker advertises for `key`; the empty range `(0, -1)` if it
/// does not serve `key` (so `(min..=max).contains(&v)` is false for every version). See
/// [`ApiKey::advertised_range`] and [`ApiKey::codec_range`].
pub fn supported_range(key: ApiKey) -> (i16, i16) {
    key.advertised_range().unwrap_or((0, -1))
}

/// `Some(key)` if `api_key` is known and `version` is within its advertised range.
pub(crate) fn advertised(api_key: i16, version: i16) -> Option<ApiKey> {
    let key = ApiKey::try_from(api_key).ok()?;
    let (min, max) = key.advertised_range()?;
    (min..=max).contains(&version).then_some(key)
}

/// Whether the codec implements `version` of `key`.
pub(crate) fn in_codec_range(key: ApiKey, version: i16) -> bool {
    let (min, max) = key.codec_range();
    (min..=max).contains(&version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the broker serves today; changing it is a decision, not a side effect of adding
    /// an API to the codec.
    #[test]
    fn advertised_ranges_are_the_served_ones() {
        assert_eq!(
            SUPPORTED_APIS,
            &[
                (ApiKey::Produce, 3, 11),
                (ApiKey::Fetch, 4, 12),
                (ApiKey::ListOffsets, 1, 7),
                (ApiKey::Metadata, 0, 12),
                (ApiKey::OffsetCommit, 2, 9),
                (ApiKey::OffsetFetch, 1, 9),
                (ApiKey::FindCoordinator, 0, 4),
                (ApiKey::JoinGroup, 0, 7),
                (ApiKey::Heartbeat, 0, 4),
                (ApiKey::LeaveGroup, 0, 5),
                (ApiKey::SyncGroup, 0, 5),
                (ApiKey::DescribeGroups, 0, 5),
                (ApiKey::ListGroups, 0, 5),
                (ApiKey::ApiVersions, 0, 4),
                (ApiKey::CreateTopics, 2, 7),
                (ApiKey::DeleteTopics, 1, 6),
                (ApiKey::DeleteRecords, 0, 2),
                (ApiKey::InitProducerId, 0, 4),
                (ApiKey::DescribeAcls, 1, 3),
                (ApiKey::CreateAcls, 1, 3),
                (ApiKey::DeleteAcls, 1, 3),
                (ApiKey::DescribeConfigs, 1, 4),
                (ApiKey::AlterConfigs, 0, 2),
                (ApiKey::DescribeLogDirs, 1, 4),
                (ApiKey::CreatePartitions, 0, 3),
                (ApiKey::CreateDelegationToken, 1, 3),
                (ApiKey::RenewDelegationToken, 1, 2),
                (ApiKey::ExpireDelegationToken, 1, 2),
                (ApiKey::DescribeDelegationToken, 1, 3),
                (ApiKey::DeleteGroups, 0, 2),
                (ApiKey::IncrementalAlterConfigs, 0, 1),
                (ApiKey::OffsetDelete, 0, 0),
                (ApiKey::DescribeQuorum, 0, 1),
                (ApiKey::DescribeCluster, 0, 2),
            ]
        );
        for api in APIS {
            assert_eq!(api.key.codec_range(), api.codec);
            assert_eq!(api.key.advertised_range(), api.advertised);
            assert_eq!(ApiKey::try_from(api.key as i16), Ok(api.key));
        }
        assert_eq!(supported_range(ApiKey::Fetch), (4, 12));
        assert_eq!(supported_range(ApiKey::JoinGroup), (0, 7));
        assert_eq!(supported_range(ApiKey::InitProducerId), (0, 4));
    }

    #[test]
    fn unadvertised_apis_are_not_accepted() {
        assert_eq!(
            advertised(ApiKey::Metadata as i16, 12),
            Some(ApiKey::Metadata)
        );
        assert_eq!(advertised(ApiKey::Metadata as i16, 13), None);
        assert_eq!(advertised(ApiKey::JoinGroup as i16, 8), None);
        assert_eq!(advertised(ApiKey::DescribeCluster as i16, 3), None);
        assert!(in_codec_range(ApiKey::JoinGroup, 8));
        assert!(!in_codec_range(ApiKey::OffsetCommit, 1));
        assert_eq!(advertised(999, 0), None);
    }
}
