//! The API registry: which Kafka APIs and versions Keel implements, and the request and
//! response enums over their bodies. Adding an API is one line here plus its schema file.

use bytes::BytesMut;

use super::error::DecodeError;
use super::messages::*;
use super::schema::Message;
use super::wire::Reader;

macro_rules! apis {
    ($( $(#[$meta:meta])* $key:ident = $num:literal, versions $min:literal ..= $max:literal,
        $req:ident, $resp:ident; )*) => {
        /// A Kafka API Keel implements.
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

        /// (api key, min version, max version) that Keel implements and advertises, in
        /// api-key order.
        pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[ $( (ApiKey::$key, $min, $max), )* ];

        const _: () = {
            let keys = [$($num),*];
            let mut i = 1;
            while i < keys.len() {
                assert!(keys[i - 1] < keys[i], "SUPPORTED_APIS must be in api-key order");
                i += 1;
            }
        };

        impl ApiKey {
            /// Whether `version` of this API is flexible (compact encodings, tagged fields).
            pub fn is_flexible(self, version: i16) -> bool {
                match self {
                    $( ApiKey::$key => version >= <$req as Message>::FLEXIBLE_FROM, )*
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

            /// Decodes the body of `key` at `version` (not checking for trailing bytes).
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
        }
    };
}

apis! {
    /// Produce (0): v3+ is RecordBatch v2 only; v13 would need topic ids.
    Produce = 0, versions 3..=11, ProduceRequest, ProduceResponse;
    /// Fetch (1): capped at 12 until topic ids (KAFKA.md §1).
    Fetch = 1, versions 4..=12, FetchRequest, FetchResponse;
    /// ListOffsets (2).
    ListOffsets = 2, versions 1..=7, ListOffsetsRequest, ListOffsetsResponse;
    /// Metadata (3): v13 is not advertised.
    Metadata = 3, versions 0..=12, MetadataRequest, MetadataResponse;
    /// ApiVersions (18).
    ApiVersions = 18, versions 0..=4, ApiVersionsRequest, ApiVersionsResponse;
    /// CreateTopics (19).
    CreateTopics = 19, versions 2..=7, CreateTopicsRequest, CreateTopicsResponse;
    /// DeleteTopics (20).
    DeleteTopics = 20, versions 1..=6, DeleteTopicsRequest, DeleteTopicsResponse;
}

/// The (min, max) versions Keel implements for `key`.
pub fn supported_range(key: ApiKey) -> (i16, i16) {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
        // Invariant: `apis!` lists every ApiKey variant in SUPPORTED_APIS.
        .expect("every ApiKey is in SUPPORTED_APIS")
}

/// `Some(key)` if `api_key` is known and `version` is within its supported range.
pub(crate) fn supported(api_key: i16, version: i16) -> Option<ApiKey> {
    let key = ApiKey::try_from(api_key).ok()?;
    let (min, max) = supported_range(key);
    (min..=max).contains(&version).then_some(key)
}
