//! Request and response headers, and which header version goes with which (api key, version).
//!
//! Request header v1: api_key i16, api_version i16, correlation_id i32, client_id nullable
//! string (always the classic i16-length encoding, even in v2). v2 adds tagged fields.
//! Response header v0: correlation_id; v1 adds tagged fields. Flexible bodies use request
//! header v2 / response header v1, except ApiVersions responses, which are always v0 so a
//! client that does not know the broker's versions can still read them (KIP-511).

use bytes::{BufMut, BytesMut};

use super::api::ApiKey;
use super::error::DecodeError;
use super::types::{Ctx, WireType};
use super::wire::{put_uvarint, Reader};

/// The header of a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The API key of the request (kept raw: it may be one Keel does not know).
    pub api_key: i16,
    /// The API version of the request.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client id, or null.
    pub client_id: Option<String>,
}

/// The client id is a classic nullable string in every header version.
const CLIENT_ID_CTX: Ctx = Ctx {
    version: 1,
    flexible: false,
};

impl RequestHeader {
    /// Reads the fields common to header v1 and v2 (not v2's tagged fields), which is all a
    /// broker can read before it knows whether the api key and version are supported.
    pub(crate) fn read_v1(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            api_key: r.i16()?,
            api_version: r.i16()?,
            correlation_id: r.i32()?,
            client_id: <Option<String>>::read(r, CLIENT_ID_CTX, true)?,
        })
    }

    /// Writes the header in `header_version` (1 or 2).
    pub(crate) fn write(&self, out: &mut BytesMut, header_version: i16) {
        out.put_i16(self.api_key);
        out.put_i16(self.api_version);
        out.put_i32(self.correlation_id);
        self.client_id.write(out, CLIENT_ID_CTX, true);
        if header_version >= 2 {
            put_uvarint(out, 0);
        }
    }
}

/// Skips a tagged-field section none of whose tags Keel knows (headers carry none today).
pub(crate) fn skip_tagged_fields(r: &mut Reader) -> Result<(), DecodeError> {
    let count = r.uvarint()?;
    for _ in 0..count {
        let _tag = r.uvarint()?;
        let size = r.uvarint()?;
        r.take(size as usize)?;
    }
    Ok(())
}

/// The request header version for `key` at `version`: 2 for flexible versions, else 1.
pub fn request_header_version(key: ApiKey, version: i16) -> i16 {
    if key.is_flexible(version) {
        2
    } else {
        1
    }
}

/// The response header version for `key` at `version`: 1 for flexible versions, else 0;
/// always 0 for ApiVersions.
pub fn response_header_version(key: ApiKey, version: i16) -> i16 {
    if key != ApiKey::ApiVersions && key.is_flexible(version) {
        1
    } else {
        0
    }
}

/// Writes a response header.
pub(crate) fn write_response_header(out: &mut BytesMut, correlation_id: i32, header_version: i16) {
    out.put_i32(correlation_id);
    if header_version >= 1 {
        put_uvarint(out, 0);
    }
}

/// Reads a response header, returning the correlation id.
pub(crate) fn read_response_header(
    r: &mut Reader,
    header_version: i16,
) -> Result<i32, DecodeError> {
    let correlation_id = r.i32()?;
    if header_version >= 1 {
        skip_tagged_fields(r)?;
    }
    Ok(correlation_id)
}
