//! Peer framing: every peer frame is `length (u32 BE) | version (u8) | crc32c (u32 BE) |
//! payload`, where `length` counts the payload only and the CRC-32C covers the version byte
//! and the payload. The decoder refuses a frame longer than its bound before buffering it, so
//! a bad length never makes it allocate, and it never panics on any input.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The peer protocol version this build speaks. A frame of another version is refused.
pub const PEER_VERSION: u8 = 1;

/// Bytes before the payload: length, version, checksum.
pub const HEADER_BYTES: usize = 9;

/// The default bound on one frame's payload (a whole AppendEntries batch fits well below).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 << 20;

/// Why a frame was refused. Every variant is the peer's fault (or the wire's): the caller
/// closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the decoder's bound.
    #[error("peer frame of {len} bytes is over the {max} byte bound")]
    TooLarge {
        /// The announced payload length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The version byte is not one this build speaks.
    #[error("peer frame version {0} is not supported (this build speaks {PEER_VERSION})")]
    Version(u8),
    /// The checksum does not match: the bytes were damaged or the stream lost sync.
    #[error("peer frame checksum mismatch")]
    Checksum,
}

/// Appends one frame holding `payload` to `out`.
pub fn encode_frame(payload: &[u8], out: &mut BytesMut) {
    let len = u32::try_from(payload.len()).expect("peer payloads are bounded far below 4 GiB");
    out.reserve(HEADER_BYTES + payload.len());
    out.put_u32(len);
    out.put_u8(PEER_VERSION);
    out.put_u32(checksum(PEER_VERSION, payload));
    out.put_slice(payload);
}

fn checksum(version: u8, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&[version]), payload)
}

/// Splits frames off a byte stream.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder refusing payloads over `max_frame_bytes`.
    #[must_use]
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder { max_frame_bytes }
    }

    /// Takes the next whole frame's payload off the front of `buf`, `Ok(None)` if more bytes
    /// are needed. On an error the stream is unusable: close it.
    /// A bad length or version is refused as soon as its bytes are in, not once the whole
    /// header is.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_bytes,
            });
        }
        let Some(&version) = buf.get(4) else {
            return Ok(None);
        };
        if version != PEER_VERSION {
            return Err(FrameError::Version(version));
        }
        if buf.len() < HEADER_BYTES + len {
            // Room for the rest of this frame, which the bound above limits.
            buf.reserve(HEADER_BYTES + len - buf.len());
            return Ok(None);
        }
        let crc = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
        buf.advance(HEADER_BYTES);
        let payload = buf.split_to(len).freeze();
        if checksum(version, &payload) != crc {
            return Err(FrameError::Checksum);
        }
        Ok(Some(payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_frame_needs_all_its_bytes() {
        let mut out = BytesMut::new();
        encode_frame(b"raft", &mut out);
        let whole = out.clone();
        let d = FrameDecoder::default();
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(d.decode(&mut part), Ok(None), "cut at {cut}");
        }
        assert_eq!(d.decode(&mut out).unwrap().as_deref(), Some(&b"raft"[..]));
        assert!(out.is_empty());
    }

    #[test]
    fn refuses_oversized_bad_version_and_flipped_bits() {
        let d = FrameDecoder::new(8);
        let mut out = BytesMut::new();
        encode_frame(b"123456789", &mut out);
        assert_eq!(
            d.decode(&mut out),
            Err(FrameError::TooLarge { len: 9, max: 8 })
        );
        let mut out = BytesMut::new();
        encode_frame(b"1234", &mut out);
        let mut bad = out.clone();
        bad[4] = 2;
        assert_eq!(d.decode(&mut bad), Err(FrameError::Version(2)));
        for bit in 0..(out.len() - HEADER_BYTES) * 8 {
            let mut flipped = out.clone();
            flipped[HEADER_BYTES + bit / 8] ^= 1 << (bit % 8);
            assert_eq!(d.decode(&mut flipped), Err(FrameError::Checksum));
        }
    }

    proptest! {
        #[test]
        fn frames_round_trip_back_to_back(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut out = BytesMut::new();
            for p in &payloads {
                encode_frame(p, &mut out);
            }
            let d = FrameDecoder::default();
            for p in &payloads {
                let got = d.decode(&mut out).unwrap().unwrap();
                prop_assert_eq!(&got[..], &p[..]);
            }
            prop_assert!(out.is_empty());
        }

        #[test]
        fn garbage_never_panics_nor_grows_past_the_bound(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let d = FrameDecoder::new(1024);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
            prop_assert!(buf.capacity() <= bytes.len().max(1024 + HEADER_BYTES) + 64);
        }
    }
}
