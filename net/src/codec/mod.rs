//! Keel's Kafka protocol codec: frames, headers, and the request and response bodies of every
//! API version Keel advertises (and of APIs it will serve later), decoded from untrusted bytes
//! without panics or allocations sized by the peer.
//!
//! Messages are declared once each in a schema DSL ([`schema`]) that generates structs,
//! decoders and encoders; [`api`] lists the APIs with the versions the codec implements and
//! the versions the broker advertises. The `kafka-protocol` crate is only the oracle of the
//! differential tests (net/tests/codec_*.rs): it reserves memory by wire counts and panics on
//! short headers, so it never sees peer bytes.
//!
//! Layout: [`wire`] primitives, [`types`] schema wire types, [`schema`] the DSL,
//! [`messages`] one file per API, [`header`] headers, [`api`] the registry, this file the
//! frame-level entry points.

pub mod api;
#[cfg(feature = "arbitrary")]
pub mod arbitrary;
pub mod error;
pub mod header;
pub mod messages;
pub mod schema;
pub mod types;
pub mod wire;

use bytes::{BufMut, Bytes, BytesMut};

pub use api::{
    supported_range, ApiKey, ApiRanges, RequestBody, ResponseBody, APIS, SUPPORTED_APIS,
};
pub use error::{DecodeError, FrameError, RequestError};
pub use header::{request_header_version, response_header_version, RequestHeader};
pub use messages::*;
pub use schema::Message;
pub use wire::{Reader, Uuid};

use header::{read_response_header, skip_tagged_fields, write_response_header};

/// Kafka's UNSUPPORTED_VERSION error code.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// Checks a frame's 4-byte big-endian length prefix before anything is allocated for it.
pub fn frame_length(prefix: [u8; 4], max_request_bytes: usize) -> Result<usize, FrameError> {
    let length = i32::from_be_bytes(prefix);
    let length = usize::try_from(length).map_err(|_| FrameError::Negative(length))?;
    if length > max_request_bytes {
        return Err(FrameError::TooLarge {
            length,
            max: max_request_bytes,
        });
    }
    Ok(length)
}

/// Decodes one request frame (the bytes after the 4-byte length prefix) of an advertised
/// API version ([`SUPPORTED_APIS`]); any other api key or version is
/// [`RequestError::Unsupported`], even one the codec could decode.
///
/// Record bytes in the result are slices of `frame`. See [`RequestError`] for what the
/// caller does with each failure.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, RequestBody), RequestError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::read_v1(&mut r).map_err(RequestError::Unreadable)?;
    let Some(key) = api::advertised(header.api_key, header.api_version) else {
        return Err(RequestError::Unsupported { header });
    };
    match decode_request_rest(key, header.api_version, &mut r) {
        Ok(body) => Ok((header, body)),
        Err(error) => Err(RequestError::Malformed { header, error }),
    }
}

/// The header's tagged fields (if flexible) and the body.
///
/// Bytes after the body are ignored, as Kafka does (its `AbstractRequest.parseRequest` reads
/// the body's fields and never checks what is left). Real clients depend on it: librdkafka
/// (2.x, including 2.16) sends an all-topics MetadataRequest v9+ with its 4-byte topic-count
/// placeholder left in place, so the body has 3 extra bytes (confluentinc/librdkafka#5049),
/// which made Keel close the connection on confluent-kafka's `AdminClient.list_topics()`.
fn decode_request_rest(
    key: ApiKey,
    version: i16,
    r: &mut Reader,
) -> Result<RequestBody, DecodeError> {
    if request_header_version(key, version) >= 2 {
        skip_tagged_fields(r)?;
    }
    RequestBody::decode(key, version, r)
}

/// Decodes a request body (the bytes after the request header, including its tagged
/// fields) of any version the codec implements ([`ApiKey::codec_range`]), advertised or not:
/// for tests, tools, and the broker's work on APIs it does not serve yet.
///
/// Like [`decode_request`], bytes after the body are ignored; use [`Message::decode`] and
/// [`Reader::finish`] to check for them.
pub fn decode_request_body(
    key: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<RequestBody, DecodeError> {
    if !api::in_codec_range(key, version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key: key as i16,
            version,
        });
    }
    RequestBody::decode(key, version, &mut Reader::new(body))
}

/// Encodes a response frame: the 4-byte length prefix, the response header version that
/// (api key, `api_version`) calls for, and the body at `api_version`.
pub fn encode_response(
    api_version: i16,
    correlation_id: i32,
    body: &ResponseBody,
    out: &mut BytesMut,
) {
    let key = body.api_key();
    let start = begin_frame(out);
    write_response_header(
        out,
        correlation_id,
        response_header_version(key, api_version),
    );
    body.encode(out, api_version);
    end_frame(out, start);
}

/// Client side: encodes a request frame (length prefix, header, body at
/// `header.api_version`). `header.api_key` must be the body's api key.
pub fn encode_request(header: &RequestHeader, body: &RequestBody, out: &mut BytesMut) {
    let key = body.api_key();
    debug_assert_eq!(
        header.api_key, key as i16,
        "request header and body disagree"
    );
    let start = begin_frame(out);
    header.write(out, request_header_version(key, header.api_version));
    body.encode(out, header.api_version);
    end_frame(out, start);
}

/// Client side: decodes a response frame (after the length prefix) to a request that was
/// sent as `api_key` at `api_version`, any version the codec implements; returns the
/// correlation id and the body. Trailing bytes are an error.
pub fn decode_response(
    api_key: ApiKey,
    api_version: i16,
    frame: Bytes,
) -> Result<(i32, ResponseBody), DecodeError> {
    if !api::in_codec_range(api_key, api_version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key: api_key as i16,
            version: api_version,
        });
    }
    let mut r = Reader::new(frame);
    let correlation_id =
        read_response_header(&mut r, response_header_version(api_key, api_version))?;
    let body = ResponseBody::decode(api_key, api_version, &mut r)?;
    r.finish()?;
    Ok((correlation_id, body))
}

/// An ApiVersionsResponse listing [`SUPPORTED_APIS`] with `error_code`.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: SUPPORTED_APIS
            .iter()
            .map(|&(key, min_version, max_version)| ApiVersion {
                api_key: key as i16,
                min_version,
                max_version,
            })
            .collect(),
        ..ApiVersionsResponse::default()
    }
}

/// The answer to an ApiVersions request whose version is above ours: error 35 and our
/// ranges, to be encoded at **v0** (`encode_response(0, correlation_id, ...)`) because the
/// client cannot parse any version we have not agreed on (KAFKA.md §2).
pub fn unsupported_version_response() -> ResponseBody {
    ResponseBody::ApiVersions(api_versions_response(UNSUPPORTED_VERSION))
}

fn begin_frame(out: &mut BytesMut) -> usize {
    let start = out.len();
    out.put_i32(0);
    start
}

fn end_frame(out: &mut BytesMut, start: usize) {
    let length = out.len() - start - 4;
    // Invariant: Keel never builds a frame over 2 GiB; every response is bounded by
    // fetch.max.bytes / message.max.bytes, far below i32::MAX.
    let length = i32::try_from(length).expect("frame length fits an i32");
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &BytesMut) -> Bytes {
        Bytes::copy_from_slice(&frame[4..])
    }

    /// KIP-511: the ApiVersions response header is v0 even in flexible versions.
    #[test]
    fn api_versions_v3_response_header_is_v0() {
        let mut out = BytesMut::new();
        let resp = ResponseBody::ApiVersions(api_versions_response(0));
        encode_response(3, 7, &resp, &mut out);
        // length, correlation id, then the body's error code directly (no tagged-field byte).
        assert_eq!(&out[4..8], &7i32.to_be_bytes());
        assert_eq!(&out[8..10], &0i16.to_be_bytes());
        let (corr, decoded) = decode_response(ApiKey::ApiVersions, 3, body(&out)).unwrap();
        assert_eq!((corr, decoded), (7, resp));

        // Metadata v9 (flexible) does carry the tagged-field byte.
        let mut out = BytesMut::new();
        encode_response(
            9,
            7,
            &ResponseBody::Metadata(MetadataResponse::default()),
            &mut out,
        );
        assert_eq!(out[8], 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
        assert_eq!(request_header_version(ApiKey::ApiVersions, 3), 2);
    }

    /// librdkafka sends ApiVersions above our max: we must get the header back to answer v0.
    #[test]
    fn api_versions_v5_request_is_unsupported() {
        let mut frame = BytesMut::new();
        frame.put_i16(18);
        frame.put_i16(5);
        frame.put_i32(42);
        frame.put_i16(3);
        frame.put_slice(b"cli");
        frame.put_u8(0); // header v2 tagged fields
        frame.put_slice(b"whatever a v5 body is");
        let err = decode_request(frame.freeze()).unwrap_err();
        let RequestError::Unsupported { header } = err else {
            panic!("expected Unsupported, got {err:?}");
        };
        assert_eq!(
            header,
            RequestHeader {
                api_key: 18,
                api_version: 5,
                correlation_id: 42,
                client_id: Some("cli".into())
            }
        );

        let mut out = BytesMut::new();
        encode_response(
            0,
            header.correlation_id,
            &unsupported_version_response(),
            &mut out,
        );
        let (corr, ResponseBody::ApiVersions(resp)) =
            decode_response(ApiKey::ApiVersions, 0, body(&out)).unwrap()
        else {
            panic!("not ApiVersions");
        };
        assert_eq!(corr, 42);
        assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
        assert_eq!(resp.api_keys.len(), SUPPORTED_APIS.len());
    }

    #[test]
    fn unknown_api_key_is_unsupported_not_unreadable() {
        let mut frame = BytesMut::new();
        frame.put_i16(999);
        frame.put_i16(0);
        frame.put_i32(1);
        frame.put_i16(-1);
        assert!(matches!(
            decode_request(frame.freeze()),
            Err(RequestError::Unsupported { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 18, 0])),
            Err(RequestError::Unreadable(_))
        ));
    }

    /// A ProduceRequest v3 claiming i32::MAX topics in a 12-byte body must fail fast, not
    /// reserve memory for them (kafka-protocol aborts the process here, KAFKA.md §0).
    #[test]
    fn huge_array_count_is_rejected_without_allocating() {
        let mut frame = BytesMut::new();
        frame.put_i16(0);
        frame.put_i16(3);
        frame.put_i32(1);
        frame.put_i16(-1);
        frame.put_i16(-1); // transactional_id null
        frame.put_i16(1); // acks
        frame.put_i32(1000); // timeout
        frame.put_i32(i32::MAX); // topic count
        let err = decode_request(frame.freeze()).unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::Malformed {
                    error: DecodeError::InvalidLength(n),
                    ..
                } if n == i64::from(i32::MAX)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_bytes_after_a_request_are_ignored_like_kafka() {
        let header = RequestHeader {
            api_key: ApiKey::Metadata as i16,
            api_version: 1,
            correlation_id: 3,
            client_id: None,
        };
        let mut out = BytesMut::new();
        encode_request(
            &header,
            &RequestBody::Metadata(MetadataRequest::default()),
            &mut out,
        );
        out.put_u8(0);
        let (h, body) = decode_request(body(&out)).unwrap();
        assert_eq!(h, header);
        assert_eq!(body, RequestBody::Metadata(MetadataRequest::default()));
    }

    /// The exact all-topics MetadataRequest v12 frame librdkafka 2.16 (confluent-kafka
    /// 2.16.1, `AdminClient.list_topics()`) sent, seen on the wire: the topic count is the
    /// compact null `00` followed by the 3 leftover bytes of librdkafka's 4-byte placeholder
    /// (confluentinc/librdkafka#5049), so Kafka, which ignores trailing bytes, reads
    /// allow_auto_topic_creation and include_topic_authorized_operations as false from them.
    #[test]
    fn librdkafka_all_topics_metadata_v12_is_accepted() {
        let mut frame = BytesMut::new();
        frame.put_i16(3); // Metadata
        frame.put_i16(12);
        frame.put_i32(3);
        frame.put_i16(7);
        frame.put_slice(b"rdkafka");
        frame.put_u8(0); // header tagged fields
        frame.put_slice(&[0, 0, 0, 0]); // topics: null (00) + 3 placeholder bytes
        frame.put_slice(&[1, 0, 0]); // allow_auto_topic_creation, topic ops, tagged fields
        let (header, body) = decode_request(frame.freeze()).unwrap();
        assert_eq!((header.api_key, header.api_version), (3, 12));
        assert_eq!(
            body,
            RequestBody::Metadata(MetadataRequest {
                topics: None,
                allow_auto_topic_creation: false,
                ..Default::default()
            })
        );
    }

    /// Responses are ours to check strictly (the client side of this codec).
    #[test]
    fn trailing_bytes_after_a_response_are_rejected() {
        let mut out = BytesMut::new();
        encode_response(
            1,
            7,
            &ResponseBody::Metadata(MetadataResponse::default()),
            &mut out,
        );
        out.put_u8(0);
        assert_eq!(
            decode_response(ApiKey::Metadata, 1, body(&out)),
            Err(DecodeError::TrailingBytes { remaining: 1 })
        );
    }

    #[test]
    fn null_where_not_nullable_is_rejected() {
        // Metadata v0: topics is not nullable.
        let mut frame = BytesMut::new();
        frame.put_i16(3);
        frame.put_i16(0);
        frame.put_i32(1);
        frame.put_i16(-1);
        frame.put_i32(-1);
        assert!(matches!(
            decode_request(frame.freeze()),
            Err(RequestError::Malformed {
                error: DecodeError::UnexpectedNull,
                ..
            })
        ));
    }

    #[test]
    fn frame_length_is_checked() {
        assert_eq!(frame_length(10i32.to_be_bytes(), 100), Ok(10));
        assert_eq!(
            frame_length((-1i32).to_be_bytes(), 100),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            frame_length(101i32.to_be_bytes(), 100),
            Err(FrameError::TooLarge {
                length: 101,
                max: 100
            })
        );
    }

    #[test]
    fn records_are_zero_copy() {
        let records = Bytes::from_static(b"not really a record batch");
        let req = ProduceRequest {
            acks: -1,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(records.clone()),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let header = RequestHeader {
            api_key: 0,
            api_version: 9,
            correlation_id: 1,
            client_id: Some("c".into()),
        };
        let mut out = BytesMut::new();
        encode_request(&header, &RequestBody::Produce(req.clone()), &mut out);
        let frame = out.freeze().slice(4..);
        let (h, RequestBody::Produce(decoded)) = decode_request(frame.clone()).unwrap() else {
            panic!("not produce");
        };
        assert_eq!((h, &decoded), (header, &req));
        let got = decoded.topic_data[0].partition_data[0]
            .records
            .clone()
            .unwrap();
        let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        assert!(frame_range.contains(&(got.as_ptr() as usize)));
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        // MetadataRequest v9: empty compact topics array, three bools... then tagged fields:
        // one unknown tag 7 of 2 bytes.
        let mut frame = BytesMut::new();
        frame.put_i16(3);
        frame.put_i16(9);
        frame.put_i32(1);
        frame.put_i16(-1);
        frame.put_u8(0); // header tagged fields
        frame.put_u8(1); // topics: empty
        frame.put_slice(&[1, 0, 0]); // allow_auto, cluster ops, topic ops
        frame.put_slice(&[1, 7, 2, 0xaa, 0xbb]);
        let (_, body) = decode_request(frame.freeze()).unwrap();
        assert_eq!(
            body,
            RequestBody::Metadata(MetadataRequest {
                topics: Some(vec![]),
                ..Default::default()
            })
        );
    }
}
