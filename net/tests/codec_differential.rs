//! Differential tests of Keel's codec against the `kafka-protocol` 0.18 crate (the oracle):
//! for every API, every version kafka-protocol knows (a superset of what Keel advertises),
//! request and response, random messages generated from Keel's schemas are encoded by one
//! implementation, decoded by the other, re-encoded, and compared byte for byte, in both
//! directions. Whole frames (length prefix, header version, body) are checked for every
//! advertised version. STYLE.md §14.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages as theirs;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use proptest::prelude::*;

use keel_net::codec::arbitrary::Gen;
use keel_net::codec::types::WireType;
use keel_net::codec::{
    self, messages as ours, supported_range, ApiKey, Message, Reader, RequestBody, RequestHeader,
    ResponseBody,
};

/// Random cases per test; each case covers every version of the API.
const CASES: u32 = 256;

fn fail(context: &str, e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("{context}: {e}"))
}

/// Names the message and version a failure happened at.
fn at(what: &str, version: i16, e: TestCaseError) -> TestCaseError {
    TestCaseError::fail(format!("{what} v{version}: {e}"))
}

fn theirs_encode<T: Encodable>(t: &T, version: i16) -> Result<Bytes, TestCaseError> {
    let mut out = BytesMut::new();
    t.encode(&mut out, version)
        .map_err(|e| fail("kafka-protocol encode", e))?;
    Ok(out.freeze())
}

fn theirs_decode<T: Decodable>(bytes: &Bytes, version: i16) -> Result<T, TestCaseError> {
    let mut buf = bytes.clone();
    let t = T::decode(&mut buf, version).map_err(|e| fail("kafka-protocol decode", e))?;
    prop_assert_eq!(buf.remaining(), 0, "kafka-protocol left bytes unread");
    Ok(t)
}

fn ours_encode<O: Message>(o: &O, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    o.encode(&mut out, version);
    out.freeze()
}

fn ours_decode<O: Message>(bytes: &Bytes, version: i16) -> Result<O, TestCaseError> {
    let mut r = Reader::new(bytes.clone());
    let o = O::decode(&mut r, version).map_err(|e| fail("keel decode", e))?;
    r.finish().map_err(|e| fail("keel decode", e))?;
    Ok(o)
}

/// Body-level check of one message type at one version.
///
/// ours → theirs: Keel encodes a random message; kafka-protocol decodes it (consuming every
/// byte) and re-encodes the same bytes; Keel decodes its own bytes back to the same value.
/// theirs → ours: kafka-protocol encodes its decoded value, plus (in flexible versions) an
/// unknown tagged field; Keel decodes that to the original value and re-encodes the original
/// bytes (unknown tags are dropped).
fn check_body<O, T>(
    seed: u64,
    version: i16,
    add_unknown_tag: impl Fn(&mut T),
) -> Result<(), TestCaseError>
where
    O: Message,
    T: Encodable + Decodable + std::fmt::Debug,
{
    let mut g = Gen::new(seed);
    let ctx = O::ctx(version);
    let original = O::random(&mut g, ctx, false);

    // ours → theirs → bytes
    let ours_bytes = ours_encode(&original, version);
    let mut t: T = theirs_decode(&ours_bytes, version)?;
    let theirs_bytes = theirs_encode(&t, version)?;
    prop_assert_eq!(&ours_bytes, &theirs_bytes, "v{} {:?}", version, original);
    prop_assert_eq!(&ours_decode::<O>(&ours_bytes, version)?, &original);

    // theirs → ours → bytes
    let from_theirs: O = ours_decode(&theirs_bytes, version)?;
    prop_assert_eq!(&ours_encode(&from_theirs, version), &theirs_bytes);
    if ctx.flexible {
        add_unknown_tag(&mut t);
        let with_tag = theirs_encode(&t, version)?;
        prop_assert_ne!(&with_tag, &theirs_bytes);
        let skipped: O = ours_decode(&with_tag, version)?;
        prop_assert_eq!(&skipped, &original, "unknown tagged field not skipped");
        prop_assert_eq!(&ours_encode(&skipped, version), &ours_bytes);
    }
    Ok(())
}

/// Frame-level check of a request: Keel's `encode_request` against kafka-protocol's header
/// (at the header version it picks) and body, and `decode_request` back.
fn check_request_frame<T: Encodable + Decodable + HeaderVersion>(
    key: ApiKey,
    body: RequestBody,
    g: &mut Gen,
    version: i16,
) -> Result<(), TestCaseError> {
    let header = RequestHeader {
        api_key: key as i16,
        api_version: version,
        correlation_id: g.int() as i32,
        client_id: if g.below(4) == 0 {
            None
        } else {
            Some(g.string())
        },
    };
    let mut out = BytesMut::new();
    codec::encode_request(&header, &body, &mut out);
    let frame = out.freeze();
    prop_assert_eq!(
        frame.len() - 4,
        u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize
    );
    let frame = frame.slice(4..);

    let header_version = T::header_version(version);
    prop_assert_eq!(header_version, codec::request_header_version(key, version));
    let mut buf = frame.clone();
    let their_header = theirs::RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| fail("kafka-protocol header decode", e))?;
    let their_body = T::decode(&mut buf, version).map_err(|e| fail("kafka-protocol decode", e))?;
    prop_assert_eq!(buf.remaining(), 0);
    let mut again = BytesMut::new();
    their_header
        .encode(&mut again, header_version)
        .map_err(|e| fail("encode", e))?;
    their_body
        .encode(&mut again, version)
        .map_err(|e| fail("encode", e))?;
    prop_assert_eq!(&frame[..], &again[..]);

    let decoded = codec::decode_request(frame).map_err(|e| fail("decode_request", e))?;
    prop_assert_eq!(decoded, (header, body));
    Ok(())
}

/// Frame-level check of a response: `encode_response` against kafka-protocol, and
/// `decode_response` back.
fn check_response_frame<T: Encodable + Decodable + HeaderVersion>(
    key: ApiKey,
    body: ResponseBody,
    g: &mut Gen,
    version: i16,
) -> Result<(), TestCaseError> {
    let correlation_id = g.int() as i32;
    let mut out = BytesMut::new();
    codec::encode_response(version, correlation_id, &body, &mut out);
    let frame = out.freeze();
    prop_assert_eq!(
        frame.len() - 4,
        u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize
    );
    let frame = frame.slice(4..);

    let header_version = T::header_version(version);
    prop_assert_eq!(header_version, codec::response_header_version(key, version));
    let mut buf = frame.clone();
    let their_header = theirs::ResponseHeader::decode(&mut buf, header_version)
        .map_err(|e| fail("kafka-protocol header decode", e))?;
    let their_body = T::decode(&mut buf, version).map_err(|e| fail("kafka-protocol decode", e))?;
    prop_assert_eq!(buf.remaining(), 0);
    let mut again = BytesMut::new();
    their_header
        .encode(&mut again, header_version)
        .map_err(|e| fail("encode", e))?;
    their_body
        .encode(&mut again, version)
        .map_err(|e| fail("encode", e))?;
    prop_assert_eq!(&frame[..], &again[..]);

    let decoded =
        codec::decode_response(key, version, frame).map_err(|e| fail("decode_response", e))?;
    prop_assert_eq!(decoded, (correlation_id, body));
    Ok(())
}

macro_rules! differential {
    ($test:ident, $key:ident, $oreq:ty, $treq:ty, $oresp:ty, $tresp:ty, $oracle_versions:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]
            #[test]
            fn $test(seed in any::<u64>()) {
                let unknown_tag = Bytes::from_static(&[0xde, 0xad]);
                for version in $oracle_versions {
                    check_body::<$oreq, $treq>(seed, version, |t| {
                        t.unknown_tagged_fields.insert(1000, unknown_tag.clone());
                    })
                    .map_err(|e| at(stringify!($oreq), version, e))?;
                    check_body::<$oresp, $tresp>(seed.rotate_left(17), version, |t| {
                        t.unknown_tagged_fields.insert(1000, unknown_tag.clone());
                    })
                    .map_err(|e| at(stringify!($oresp), version, e))?;
                }
                let (min, max) = supported_range(ApiKey::$key);
                for version in min..=max {
                    let mut g = Gen::new(seed.rotate_left(31) ^ version as u64);
                    let req = <$oreq>::random(&mut g, <$oreq>::ctx(version), false);
                    check_request_frame::<$treq>(ApiKey::$key, RequestBody::$key(req), &mut g, version)
                        .map_err(|e| at("request frame", version, e))?;
                    let resp = <$oresp>::random(&mut g, <$oresp>::ctx(version), false);
                    check_response_frame::<$tresp>(ApiKey::$key, ResponseBody::$key(resp), &mut g, version)
                        .map_err(|e| at("response frame", version, e))?;
                }
            }
        }
    };
}

differential!(
    produce,
    Produce,
    ours::ProduceRequest,
    theirs::ProduceRequest,
    ours::ProduceResponse,
    theirs::ProduceResponse,
    3..=13
);
differential!(
    fetch,
    Fetch,
    ours::FetchRequest,
    theirs::FetchRequest,
    ours::FetchResponse,
    theirs::FetchResponse,
    4..=18
);
differential!(
    list_offsets,
    ListOffsets,
    ours::ListOffsetsRequest,
    theirs::ListOffsetsRequest,
    ours::ListOffsetsResponse,
    theirs::ListOffsetsResponse,
    1..=10
);
differential!(
    metadata,
    Metadata,
    ours::MetadataRequest,
    theirs::MetadataRequest,
    ours::MetadataResponse,
    theirs::MetadataResponse,
    0..=13
);
differential!(
    api_versions,
    ApiVersions,
    ours::ApiVersionsRequest,
    theirs::ApiVersionsRequest,
    ours::ApiVersionsResponse,
    theirs::ApiVersionsResponse,
    0..=4
);
differential!(
    create_topics,
    CreateTopics,
    ours::CreateTopicsRequest,
    theirs::CreateTopicsRequest,
    ours::CreateTopicsResponse,
    theirs::CreateTopicsResponse,
    2..=7
);
differential!(
    delete_topics,
    DeleteTopics,
    ours::DeleteTopicsRequest,
    theirs::DeleteTopicsRequest,
    ours::DeleteTopicsResponse,
    theirs::DeleteTopicsResponse,
    1..=6
);

/// Every advertised range is inside what the oracle (and so our schemas) was checked at.
#[test]
fn advertised_versions_are_within_the_tested_ranges() {
    let tested = [
        (ApiKey::Produce, 3, 13),
        (ApiKey::Fetch, 4, 18),
        (ApiKey::ListOffsets, 1, 10),
        (ApiKey::Metadata, 0, 13),
        (ApiKey::ApiVersions, 0, 4),
        (ApiKey::CreateTopics, 2, 7),
        (ApiKey::DeleteTopics, 1, 6),
    ];
    for &(key, min, max) in codec::SUPPORTED_APIS {
        let &(_, tmin, tmax) = tested.iter().find(|(k, _, _)| *k == key).unwrap();
        assert!(tmin <= min && max <= tmax, "{key:?} {min}..={max}");
    }
    assert_eq!(codec::SUPPORTED_APIS.len(), tested.len());
}
