//! Decompression of record-batch payloads, for the few broker duties that must look inside a
//! compressed batch (the exact offset for a timestamp; compaction later). Batches are always
//! stored and served compressed exactly as the producer sent them; nothing here is on the
//! produce or fetch path.
//!
//! Every decoder is bounded: the output is capped at `limit` bytes, so a hostile batch that
//! inflates without end costs at most `limit` bytes of memory.

use std::io::Read;

pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// Why a payload could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The codec bits name no codec Kafka defines.
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    /// The payload is not valid for its codec.
    #[error("corrupt {codec} payload: {reason}")]
    Corrupt { codec: &'static str, reason: String },
    /// The payload inflates beyond the cap.
    #[error("payload inflates beyond {0} bytes")]
    TooLarge(usize),
}

/// The xerial snappy-java stream header the Java client writes before its snappy blocks.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";

/// Decompresses the records section of a batch compressed with `codec` (attributes bits 0-2).
pub fn decompress(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match codec {
        NONE if data.len() > limit => Err(DecompressError::TooLarge(limit)),
        NONE => Ok(data.to_vec()),
        GZIP => read_bounded("gzip", flate2::read::MultiGzDecoder::new(data), limit),
        SNAPPY => snappy(data, limit),
        LZ4 => read_bounded("lz4", lz4_flex::frame::FrameDecoder::new(data), limit),
        ZSTD => {
            let decoder =
                zstd::stream::read::Decoder::new(data).map_err(|e| DecompressError::Corrupt {
                    codec: "zstd",
                    reason: e.to_string(),
                })?;
            read_bounded("zstd", decoder, limit)
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

fn read_bounded(
    codec: &'static str,
    reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge(limit));
    }
    Ok(out)
}

/// Kafka snappy payloads come in two shapes: raw snappy (librdkafka) or the xerial framing
/// (the Java client): a 16-byte header, then blocks of a 4-byte big-endian length and a raw
/// snappy block.
fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |reason: String| DecompressError::Corrupt {
        codec: "snappy",
        reason,
    };
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), DecompressError> {
        let len = snap::raw::decompress_len(raw).map_err(|e| corrupt(e.to_string()))?;
        if out.len() + len > limit {
            return Err(DecompressError::TooLarge(limit));
        }
        let start = out.len();
        out.resize(start + len, 0);
        let n = decoder
            .decompress(raw, &mut out[start..])
            .map_err(|e| corrupt(e.to_string()))?;
        out.truncate(start + n);
        Ok(())
    };
    let mut out = Vec::new();
    if data.len() >= 16 && &data[..8] == XERIAL_MAGIC {
        let mut pos = 16;
        while pos < data.len() {
            if data.len() - pos < 4 {
                return Err(corrupt("truncated block length".into()));
            }
            let len = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
                as usize;
            pos += 4;
            if data.len() - pos < len {
                return Err(corrupt("truncated block".into()));
            }
            block(&data[pos..pos + len], &mut out)?;
            pos += len;
        }
    } else {
        block(data, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let snappy = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(&data).unwrap();
        let lz = lz.finish().unwrap();
        let zs = zstd::stream::encode_all(&data[..], 3).unwrap();
        for (codec, bytes) in [
            (GZIP, gz),
            (SNAPPY, snappy),
            (LZ4, lz),
            (ZSTD, zs),
            (NONE, data.clone()),
        ] {
            assert_eq!(
                decompress(codec, &bytes, 1 << 20).unwrap(),
                data,
                "codec {codec}"
            );
            assert!(
                matches!(
                    decompress(codec, &bytes, 100),
                    Err(DecompressError::TooLarge(100))
                ),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn xerial_framed_snappy_is_read() {
        let data = sample();
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&1i32.to_be_bytes());
        framed.extend_from_slice(&1i32.to_be_bytes());
        for chunk in data.chunks(3000) {
            let c = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            framed.extend_from_slice(&(c.len() as u32).to_be_bytes());
            framed.extend_from_slice(&c);
        }
        assert_eq!(decompress(SNAPPY, &framed, 1 << 20).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = [0xffu8; 64];
        for codec in [GZIP, SNAPPY, LZ4, ZSTD, 5, 7] {
            assert!(decompress(codec, &junk, 1 << 20).is_err(), "codec {codec}");
        }
    }
}
