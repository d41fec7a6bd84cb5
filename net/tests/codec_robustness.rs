//! Robustness of the codec against hostile input: arbitrary bytes, every truncation of valid
//! frames, and random byte mutations never panic, and a truncated frame is always an error.
//! STYLE.md §6 (bad input is an error, never a panic) and §14.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use keel_net::codec::arbitrary::Gen;
use keel_net::codec::{
    self, messages::*, ApiKey, DecodeError, Reader, RequestBody, RequestError, RequestHeader,
    ResponseBody, APIS, SUPPORTED_APIS,
};

fn random_request(key: ApiKey, g: &mut Gen, v: i16) -> RequestBody {
    RequestBody::random(key, v, g)
}

fn random_response(key: ApiKey, g: &mut Gen, v: i16) -> ResponseBody {
    ResponseBody::random(key, v, g)
}

/// Every advertised (api key, version): what `decode_request` accepts.
fn advertised() -> impl Iterator<Item = (ApiKey, i16)> {
    SUPPORTED_APIS
        .iter()
        .flat_map(|&(key, min, max)| (min..=max).map(move |v| (key, v)))
}

/// Every (api key, version) the codec implements, advertised or not.
fn codec_versions() -> impl Iterator<Item = (ApiKey, i16)> {
    APIS.iter().flat_map(|api| {
        let (min, max) = api.codec;
        (min..=max).map(move |v| (api.key, v))
    })
}

fn is_advertised(key: ApiKey, version: i16) -> bool {
    key.advertised_range()
        .is_some_and(|(min, max)| (min..=max).contains(&version))
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

/// A valid request body (no header).
fn request_body(key: ApiKey, version: i16, g: &mut Gen) -> Bytes {
    let mut out = BytesMut::new();
    random_request(key, g, version).encode(&mut out, version);
    out.freeze()
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

/// The same for a request body decoded by `decode_request_body` (any codec version).
fn assert_body_stable(key: ApiKey, version: i16, body: Bytes) {
    if let Ok(decoded) = codec::decode_request_body(key, version, body) {
        let mut out = BytesMut::new();
        decoded.encode(&mut out, version);
        let again = codec::decode_request_body(key, version, out.freeze());
        assert_eq!(again, Ok(decoded), "{key:?} v{version}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = Bytes::from(bytes);
        let _ = codec::decode_request(bytes.clone());
        for (key, version) in codec_versions() {
            let _ = codec::decode_response(key, version, bytes.clone());
            let _ = codec::decode_request_body(key, version, bytes.clone());
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

    /// Random bodies for every (key, version) the codec implements, advertised or not.
    #[test]
    fn arbitrary_bodies_of_every_codec_version_never_panic(
        index in 0usize..256,
        tail in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let all: Vec<_> = codec_versions().collect();
        let (key, version) = all[index % all.len()];
        assert_body_stable(key, version, Bytes::from(tail));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every strict prefix of a valid frame or body is an error (a deterministic parser that
    /// consumes exactly the whole input cannot finish early), and never a panic.
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
        }
        for (key, version) in codec_versions() {
            let body = request_body(key, version, &mut g);
            prop_assert!(codec::decode_request_body(key, version, body.clone()).is_ok());
            for cut in 0..body.len() {
                let result = codec::decode_request_body(key, version, body.slice(..cut));
                prop_assert!(result.is_err(), "{:?} v{} body cut at {}", key, version, cut);
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

    /// Random byte mutations of valid frames and bodies never panic, and whatever still
    /// decodes re-encodes to the same value.
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
        }
        for (key, version) in codec_versions() {
            let body = request_body(key, version, &mut g);
            if !body.is_empty() {
                let mut mutated = BytesMut::from(&body[..]);
                for _ in 0..=g.below(4) {
                    let at = g.below(mutated.len() as u64) as usize;
                    mutated[at] = g.next_u64() as u8;
                }
                assert_body_stable(key, version, mutated.freeze());
            }

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

/// The codec knows these APIs, but the broker does not serve them: `decode_request` refuses
/// them with their header (so the driver can answer UNSUPPORTED_VERSION), at every version,
/// while `decode_request_body` decodes them.
#[test]
fn unadvertised_apis_are_refused_by_decode_request() {
    let mut g = Gen::new(7);
    let mut refused = 0;
    for (key, version) in codec_versions().filter(|&(k, v)| !is_advertised(k, v)) {
        let header = RequestHeader {
            api_key: key as i16,
            api_version: version,
            correlation_id: 11,
            client_id: Some("c".into()),
        };
        let body = random_request(key, &mut g, version);
        let mut out = BytesMut::new();
        codec::encode_request(&header, &body, &mut out);
        assert_eq!(
            codec::decode_request(out.freeze().slice(4..)),
            Err(RequestError::Unsupported { header }),
        );
        let mut bytes = BytesMut::new();
        body.encode(&mut bytes, version);
        assert_eq!(
            codec::decode_request_body(key, version, bytes.freeze()),
            Ok(body)
        );
        refused += 1;
    }
    // The codec knows versions beyond the advertised ones (unserved APIs, newer versions of
    // served ones); each of them must have been refused above.
    let advertised: usize = SUPPORTED_APIS
        .iter()
        .map(|&(_, min, max)| (max - min + 1) as usize)
        .sum();
    assert_eq!(refused + advertised, codec_versions().count());
    assert!(refused > 0, "the codec knows versions nobody serves yet");
    assert_eq!(
        codec::api_versions_response(0).api_keys.len(),
        SUPPORTED_APIS.len()
    );
}

#[test]
fn decode_request_body_checks_the_codec_range() {
    for (key, version) in [
        (ApiKey::JoinGroup, 10),
        (ApiKey::OffsetCommit, 1),
        (ApiKey::OffsetFetch, 0),
        (ApiKey::DescribeConfigs, 0),
        (ApiKey::InitProducerId, 6),
        (ApiKey::OffsetDelete, 1),
    ] {
        assert_eq!(
            codec::decode_request_body(key, version, Bytes::new()),
            Err(DecodeError::UnsupportedVersion {
                api_key: key as i16,
                version
            })
        );
        assert_eq!(
            codec::decode_response(key, version, Bytes::from_static(&[0; 64])),
            Err(DecodeError::UnsupportedVersion {
                api_key: key as i16,
                version
            })
        );
    }
}

/// JoinGroup protocol metadata and SyncGroup assignments are opaque to the broker: they
/// stay slices of the received bytes.
#[test]
fn opaque_group_bytes_are_zero_copy() {
    let join = JoinGroupRequest {
        group_id: "g".into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"subscription"),
        }],
        ..Default::default()
    };
    let sync = SyncGroupRequest {
        group_id: "g".into(),
        assignments: vec![SyncGroupRequestAssignment {
            member_id: "m".into(),
            assignment: Bytes::from_static(b"assignment"),
        }],
        ..Default::default()
    };
    for version in [0, 5, 6, 9] {
        let mut out = BytesMut::new();
        join.encode(&mut out, version);
        let body = out.freeze();
        let Ok(RequestBody::JoinGroup(decoded)) =
            codec::decode_request_body(ApiKey::JoinGroup, version, body.clone())
        else {
            panic!("not JoinGroup");
        };
        assert_eq!(decoded, join);
        let range = body.as_ptr_range();
        assert!(range.contains(&decoded.protocols[0].metadata.as_ptr()));
    }
    for version in [0, 4, 5] {
        let mut out = BytesMut::new();
        sync.encode(&mut out, version);
        let body = out.freeze();
        let Ok(RequestBody::SyncGroup(decoded)) =
            codec::decode_request_body(ApiKey::SyncGroup, version, body.clone())
        else {
            panic!("not SyncGroup");
        };
        assert_eq!(decoded, sync);
        let range = body.as_ptr_range();
        assert!(range.contains(&decoded.assignments[0].assignment.as_ptr()));
    }
}

/// Lying counts in the new APIs fail fast too, classic and compact: a JoinGroupRequest v5
/// with i32::MAX protocols, and an OffsetFetchRequest v8 with 2^32-2 groups.
#[test]
fn huge_counts_in_group_requests_fail_fast() {
    let mut body = BytesMut::new();
    body.put_i16(1);
    body.put_slice(b"g"); // group_id
    body.put_i32(10_000); // session_timeout_ms
    body.put_i32(10_000); // rebalance_timeout_ms
    body.put_i16(0); // member_id ""
    body.put_i16(-1); // group_instance_id null
    body.put_i16(8);
    body.put_slice(b"consumer"); // protocol_type
    body.put_i32(i32::MAX); // protocols
    let started = std::time::Instant::now();
    assert_eq!(
        codec::decode_request_body(ApiKey::JoinGroup, 5, body.freeze()),
        Err(DecodeError::InvalidLength(i64::from(i32::MAX)))
    );

    let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        codec::decode_request_body(ApiKey::OffsetFetch, 8, body),
        Err(DecodeError::InvalidLength(_))
    ));
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
}

/// OffsetFetch v1 has no null topic list (null arrived in v2), like Metadata v0.
#[test]
fn offset_fetch_v1_null_topics_is_rejected() {
    let body = Bytes::from_static(&[0, 1, b'g', 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        codec::decode_request_body(ApiKey::OffsetFetch, 1, body.clone()),
        Err(DecodeError::UnexpectedNull)
    );
    let Ok(RequestBody::OffsetFetch(all)) =
        codec::decode_request_body(ApiKey::OffsetFetch, 2, body)
    else {
        panic!("v2 allows a null topic list");
    };
    assert_eq!(all.topics, None);
}

/// The response to a consumer's JoinGroup at v6 (flexible, protocol_name not yet nullable):
/// a `None` protocol name is written as "" rather than as an undecodable null.
#[test]
fn join_group_none_protocol_name_before_v7_encodes_empty() {
    let resp = JoinGroupResponse {
        protocol_name: None,
        ..Default::default()
    };
    for (version, expected) in [(6, Some(String::new())), (7, None)] {
        let mut out = BytesMut::new();
        codec::encode_response(version, 1, &ResponseBody::JoinGroup(resp.clone()), &mut out);
        let (_, ResponseBody::JoinGroup(back)) =
            codec::decode_response(ApiKey::JoinGroup, version, out.freeze().slice(4..)).unwrap()
        else {
            panic!("not JoinGroup");
        };
        assert_eq!(back.protocol_name, expected, "v{version}");
    }
}

/// OffsetDelete has no flexible version: its header versions stay 1 and 0, and the body has
/// no tagged-field section.
#[test]
fn offset_delete_is_never_flexible() {
    assert!(!ApiKey::OffsetDelete.is_flexible(0));
    assert_eq!(codec::request_header_version(ApiKey::OffsetDelete, 0), 1);
    assert_eq!(codec::response_header_version(ApiKey::OffsetDelete, 0), 0);
    let mut out = BytesMut::new();
    OffsetDeleteRequest::default().encode(&mut out, 0);
    assert_eq!(&out[..], &[0, 0, 0, 0, 0, 0]);
    let mut r = Reader::new(out.freeze());
    assert_eq!(
        OffsetDeleteRequest::decode(&mut r, 0),
        Ok(OffsetDeleteRequest::default())
    );
    r.finish().unwrap();
}
