//! Robustness of the codec against hostile input: arbitrary bytes, every truncation of valid
//! frames, and random byte mutations never panic, and a truncated frame is always an error.
//! STYLE.md §6 (bad input is an error, never a panic) and §14.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use keel_net::codec::arbitrary::Gen;
use keel_net::codec::{
    self, messages::*, ApiKey, Message, RequestBody, RequestError, RequestHeader, ResponseBody,
    SUPPORTED_APIS,
};

fn random_body<M: Message>(g: &mut Gen, version: i16) -> M {
    M::random(g, M::ctx(version), false)
}

fn random_request(key: ApiKey, g: &mut Gen, v: i16) -> RequestBody {
    match key {
        ApiKey::Produce => RequestBody::Produce(random_body(g, v)),
        ApiKey::Fetch => RequestBody::Fetch(random_body(g, v)),
        ApiKey::ListOffsets => RequestBody::ListOffsets(random_body(g, v)),
        ApiKey::Metadata => RequestBody::Metadata(random_body(g, v)),
        ApiKey::ApiVersions => RequestBody::ApiVersions(random_body(g, v)),
        ApiKey::CreateTopics => RequestBody::CreateTopics(random_body(g, v)),
        ApiKey::DeleteTopics => RequestBody::DeleteTopics(random_body(g, v)),
    }
}

fn random_response(key: ApiKey, g: &mut Gen, v: i16) -> ResponseBody {
    match key {
        ApiKey::Produce => ResponseBody::Produce(random_body::<ProduceResponse>(g, v)),
        ApiKey::Fetch => ResponseBody::Fetch(random_body::<FetchResponse>(g, v)),
        ApiKey::ListOffsets => ResponseBody::ListOffsets(random_body::<ListOffsetsResponse>(g, v)),
        ApiKey::Metadata => ResponseBody::Metadata(random_body::<MetadataResponse>(g, v)),
        ApiKey::ApiVersions => ResponseBody::ApiVersions(random_body::<ApiVersionsResponse>(g, v)),
        ApiKey::CreateTopics => {
            ResponseBody::CreateTopics(random_body::<CreateTopicsResponse>(g, v))
        }
        ApiKey::DeleteTopics => {
            ResponseBody::DeleteTopics(random_body::<DeleteTopicsResponse>(g, v))
        }
    }
}

/// Every advertised (api key, version).
fn advertised() -> impl Iterator<Item = (ApiKey, i16)> {
    SUPPORTED_APIS
        .iter()
        .flat_map(|&(key, min, max)| (min..=max).map(move |v| (key, v)))
}

/// A valid request frame (without its length prefix).
fn request_frame(key: ApiKey, version: i16, g: &mut Gen) -> Bytes {
    let header = RequestHeader {
        api_key: key as i16,
        api_version: version,
        correlation_id: g.int() as i32,
        client_id: Some(g.string()),
    };
    let mut out = BytesMut::new();
    codec::encode_request(&header, &random_request(key, g, version), &mut out);
    out.freeze().slice(4..)
}

/// A valid response frame (without its length prefix).
fn response_frame(key: ApiKey, version: i16, g: &mut Gen) -> Bytes {
    let mut out = BytesMut::new();
    codec::encode_response(
        version,
        g.int() as i32,
        &random_response(key, g, version),
        &mut out,
    );
    out.freeze().slice(4..)
}

/// Decoding what we decoded and re-encoded gives the same request: mutated input that still
/// decodes is at least internally consistent.
fn assert_stable(frame: Bytes) {
    if let Ok((header, body)) = codec::decode_request(frame) {
        let mut out = BytesMut::new();
        codec::encode_request(&header, &body, &mut out);
        let again = codec::decode_request(out.freeze().slice(4..));
        assert_eq!(again, Ok((header, body)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode_request(Bytes::from(bytes.clone()));
        for (key, version) in advertised() {
            let _ = codec::decode_response(key, version, Bytes::from(bytes.clone()));
        }
    }

    /// Random bodies behind a valid header of every advertised (key, version), so every body
    /// decoder sees garbage, not just the header parser.
    #[test]
    fn arbitrary_bodies_never_panic(
        index in 0usize..64,
        tail in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let all: Vec<_> = advertised().collect();
        let (key, version) = all[index % all.len()];
        let mut frame = BytesMut::new();
        let header = RequestHeader { api_key: key as i16, api_version: version, correlation_id: 1, client_id: None };
        codec::encode_request(&header, &random_request(key, &mut Gen::new(0), version), &mut frame);
        let header_len = 2 + 2 + 4 + 2 + usize::from(key.is_flexible(version));
        let mut frame = frame.split_off(4);
        frame.truncate(header_len);
        frame.extend_from_slice(&tail);
        assert_stable(frame.freeze());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every strict prefix of a valid frame is an error (a deterministic parser that consumes
    /// exactly the whole frame cannot finish early), and never a panic.
    #[test]
    fn truncations_are_errors(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        for (key, version) in advertised() {
            let frame = request_frame(key, version, &mut g);
            prop_assert!(codec::decode_request(frame.clone()).is_ok());
            for cut in 0..frame.len() {
                let result = codec::decode_request(frame.slice(..cut));
                prop_assert!(result.is_err(), "{:?} v{} cut at {}", key, version, cut);
                if cut < 10 {
                    prop_assert!(matches!(result, Err(RequestError::Unreadable(_))));
                }
            }
            let frame = response_frame(key, version, &mut g);
            prop_assert!(codec::decode_response(key, version, frame.clone()).is_ok());
            for cut in 0..frame.len() {
                prop_assert!(codec::decode_response(key, version, frame.slice(..cut)).is_err());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random byte mutations of valid frames never panic, and whatever still decodes
    /// re-encodes to the same value.
    #[test]
    fn mutations_never_panic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        for (key, version) in advertised() {
            let frame = request_frame(key, version, &mut g);
            let mut mutated = BytesMut::from(&frame[..]);
            for _ in 0..=g.below(4) {
                let at = g.below(mutated.len() as u64) as usize;
                mutated[at] = g.next_u64() as u8;
            }
            assert_stable(mutated.freeze());

            let frame = response_frame(key, version, &mut g);
            let mut mutated = BytesMut::from(&frame[..]);
            let at = g.below(mutated.len() as u64) as usize;
            mutated[at] = g.next_u64() as u8;
            let _ = codec::decode_response(key, version, mutated.freeze());
        }
    }
}

/// The 12-byte ProduceRequest v3 body that aborts kafka-protocol (KAFKA.md §0): topic count
/// i32::MAX must be rejected before anything is reserved for it.
#[test]
fn produce_v3_with_i32_max_topics_fails_fast() {
    let mut frame = vec![0, 0, 0, 3, 0, 0, 0, 9, 0xff, 0xff]; // key 0, v3, corr 9, null client
    frame.extend_from_slice(&[0xff, 0xff, 0, 1, 0, 0, 0x03, 0xe8]); // txn id null, acks, timeout
    frame.extend_from_slice(&i32::MAX.to_be_bytes());
    let started = std::time::Instant::now();
    let err = codec::decode_request(Bytes::from(frame)).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    let RequestError::Malformed { header, .. } = err else {
        panic!("expected Malformed, got {err:?}");
    };
    assert_eq!(header.correlation_id, 9);
}

/// A compact array count near u32::MAX on a flexible version is bounded the same way.
#[test]
fn flexible_huge_count_fails_fast() {
    // Metadata v9: header v2, then topics as a compact array of 2^32-2 elements.
    let mut frame = vec![0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0];
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = codec::decode_request(Bytes::from(frame)).unwrap_err();
    assert!(matches!(err, RequestError::Malformed { .. }), "{err:?}");
}

#[test]
fn invalid_utf8_is_rejected() {
    // Metadata v1 with one topic whose name is the single byte 0xff.
    let frame = vec![0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 1, 0, 1, 0xff];
    let err = codec::decode_request(Bytes::from(frame)).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Malformed {
                error: codec::DecodeError::InvalidUtf8,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_lengths_are_rejected() {
    // Metadata v1 with one topic whose name length is -2.
    let frame = vec![0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 1, 0xff, 0xfe];
    let err = codec::decode_request(Bytes::from(frame)).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Malformed {
                error: codec::DecodeError::InvalidLength(-2),
                ..
            }
        ),
        "{err:?}"
    );
}

/// A `None` where the version does not allow null is written as the empty value, so the
/// frame stays decodable (Metadata v11 topic names are not nullable).
#[test]
fn none_in_non_nullable_version_encodes_empty() {
    let resp = MetadataResponse {
        topics: vec![MetadataResponseTopic {
            name: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = BytesMut::new();
    codec::encode_response(11, 1, &ResponseBody::Metadata(resp), &mut out);
    let (_, ResponseBody::Metadata(back)) =
        codec::decode_response(ApiKey::Metadata, 11, out.freeze().slice(4..)).unwrap()
    else {
        panic!("not metadata");
    };
    assert_eq!(back.topics[0].name.as_deref(), Some(""));
}
