//! Codec errors, sorted by whose fault they are: the peer's bytes ([`DecodeError`]), a request
//! we understood but do not serve ([`RequestError::Unsupported`]), or a frame size ([`FrameError`]).

use super::header::RequestHeader;

/// Why bytes from the wire could not be decoded. Always the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the value being read was complete.
    #[error("unexpected end of input: needed {needed} bytes, {remaining} remaining")]
    UnexpectedEof { needed: usize, remaining: usize },
    /// A length or count was negative (other than -1 meaning null) or cannot fit the input.
    #[error("invalid length or count {0}")]
    InvalidLength(i64),
    /// A null (-1 / compact 0) arrived for a field that is not nullable in this version.
    #[error("null value for a field that is not nullable in this version")]
    UnexpectedNull,
    /// An unsigned varint ran over 5 bytes (10 for a varlong) or overflowed its width.
    #[error("varint too long")]
    VarintTooLong,
    /// A string was not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A known tagged field's value did not fill exactly the size its header declared.
    #[error("tagged field {tag} does not match its declared size")]
    TaggedFieldSize { tag: u32 },
    /// Bytes were left over after the message ended.
    #[error("{remaining} trailing bytes after the message")]
    TrailingBytes { remaining: usize },
    /// The API key is known but this version is not one we implement.
    #[error("api key {api_key} version {version} is not supported")]
    UnsupportedVersion { api_key: i16, version: i16 },
    /// The API key is not one Keel implements.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
}

/// Why [`decode_request`](super::decode_request) could not produce a request, in the three
/// cases the connection driver must tell apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Not even the request header could be read: close the connection, there is no
    /// correlation id to answer to.
    #[error("unreadable request header: {0}")]
    Unreadable(DecodeError),
    /// The header was read, but its api key is unknown, or not served yet (the codec may
    /// know it), or its version is outside
    /// [`SUPPORTED_APIS`](super::SUPPORTED_APIS): answer with UNSUPPORTED_VERSION (for
    /// ApiVersions see [`unsupported_version_response`](super::unsupported_version_response)).
    #[error("unsupported api key {} version {}", header.api_key, header.api_version)]
    Unsupported { header: RequestHeader },
    /// The header was read but the rest of the frame is malformed (bad header tagged fields,
    /// bad body; bytes after the body are ignored, as Kafka does): log and close the
    /// connection.
    #[error("malformed request (api key {} version {}): {error}", header.api_key, header.api_version)]
    Malformed {
        header: RequestHeader,
        error: DecodeError,
    },
}

/// A length prefix the connection must not honour; checked before allocating the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The 4-byte length prefix was negative.
    #[error("negative frame length {0}")]
    Negative(i32),
    /// The frame is larger than the configured maximum (`socket.request.max.bytes`).
    #[error("frame length {length} exceeds the maximum of {max}")]
    TooLarge { length: usize, max: usize },
}
