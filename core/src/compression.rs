//! Record-batch payload codecs: decompression for the broker duties that must look inside a
//! compressed batch (the exact offset for a timestamp, compaction, keyless records), and
//! recompression of produced batches for topics whose `compression.type` names a codec.
//!
//! A topic with `compression.type=producer` (the default) stores every batch exactly as the
//! producer sent it, and so does any topic for a batch already in its codec: that path
//! copies nothing. Otherwise [`recompress_batch`] inflates the records section, compresses it
//! with the topic's codec (at its `compression.{gzip,zstd}.level`) and rebuilds the batch
//! around it, as Kafka's `LogValidator` does: the same base offset, producer id, epoch, base
//! sequence, record count, timestamps and records, new attributes codec bits, length and
//! CRC-32C. Snappy is written in the xerial framing Kafka's broker writes (which every client
//! reads), lz4 as a standard frame with independent blocks (Kafka's `KafkaLZ4BlockOutputStream`).
//!
//! Every decoder is bounded: the output is capped at `limit` bytes, so a hostile batch that
//! inflates without end costs at most `limit` bytes of memory.

use crate::record::{self, BatchHeader, ATTRIBUTES_AT, ATTR_COMPRESSION_MASK, BATCH_LENGTH_AT};
use crate::record::{CRC_AT, HEADER_LEN, LOG_OVERHEAD};
use std::collections::BTreeMap;
use std::io::Read;
use std::io::Write;

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

/// Why a produced batch could not be recompressed to its topic's codec; every case is the
/// producer's fault (INVALID_RECORD or CORRUPT_MESSAGE), never the broker's.
#[derive(Debug, thiserror::Error)]
pub enum RecompressError {
    /// The producer's payload could not be inflated: CORRUPT_MESSAGE.
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    /// The inflated records do not parse as `recordsCount` records: INVALID_RECORD.
    #[error("the batch's records do not match its header: {0}")]
    Records(#[from] record::BatchError),
    /// The recompressed batch would not fit a batch's i32 length.
    #[error("the recompressed batch is too large")]
    TooLarge,
}

/// What a topic's `compression.type` asks of produced batches: store them in `codec`
/// (attributes bits 0-2) at `level` (the codec's own scale; `None`: its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recompression {
    pub codec: i16,
    pub level: Option<i32>,
}

impl Recompression {
    /// From a topic's own configs (validated by config.rs); `None` for `producer`.
    pub fn of(configs: &BTreeMap<String, String>) -> Option<Recompression> {
        let level = |name: &str| {
            configs
                .get(name)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .filter(|&l| l != -1)
        };
        let codec = match configs.get("compression.type").map(String::as_str) {
            None | Some("producer") => return None,
            Some("uncompressed") => NONE,
            Some("gzip") => GZIP,
            Some("snappy") => SNAPPY,
            Some("lz4") => LZ4,
            Some("zstd") => ZSTD,
            Some(other) => {
                debug_assert!(false, "compression.type {other} passed validation");
                return None;
            }
        };
        let level = match codec {
            GZIP => level("compression.gzip.level"),
            ZSTD => level("compression.zstd.level"),
            // lz4_flex has one level; snappy and none have none.
            _ => None,
        };
        Some(Recompression { codec, level })
    }
}

/// Compresses a records section with `codec` (not [`NONE`]) at `level`.
pub fn compress(codec: i16, data: &[u8], level: Option<i32>) -> Vec<u8> {
    match codec {
        NONE => data.to_vec(),
        GZIP => {
            let level = level.map_or(flate2::Compression::default(), |l| {
                flate2::Compression::new(l.clamp(1, 9) as u32)
            });
            let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), level);
            gz.write_all(data)
                .expect("writing to a Vec cannot fail (invariant of Vec's Write)");
            gz.finish()
                .expect("writing to a Vec cannot fail (invariant of Vec's Write)")
        }
        SNAPPY => xerial_snappy(data),
        LZ4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut lz = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(data.len() / 2),
            );
            lz.write_all(data)
                .expect("writing to a Vec cannot fail (invariant of Vec's Write)");
            lz.finish()
                .expect("writing to a Vec cannot fail (invariant of Vec's Write)")
        }
        ZSTD => {
            // The bulk API writes the content size into the frame header, which lets
            // librdkafka size its output buffer at once.
            zstd::bulk::compress(data, level.unwrap_or(ZSTD_DEFAULT_LEVEL))
                .expect("zstd compresses any input at a level config.rs validated")
        }
        other => panic!("compress called with codec {other}: callers pass a Recompression codec"),
    }
}

/// Kafka's default zstd level (`CompressionType.ZSTD`, KIP-390).
const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Block size of the xerial snappy stream, as snappy-java's `SnappyOutputStream` writes it.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Snappy in the xerial framing the Java producer and Kafka's broker write: the 16-byte
/// header (magic, version 1, compatible version 1), then blocks of a big-endian length and a
/// raw snappy block.
fn xerial_snappy(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + data.len() / 2);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in data.chunks(XERIAL_BLOCK) {
        let block = encoder
            .compress_vec(chunk)
            .expect("a 32 KiB block is within snappy's input limit");
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// Rebuilds a validated produced batch with its records compressed as `to` asks; `Ok(None)`
/// when the batch is already in `to.codec` (it is then stored as sent). Inflating is capped
/// at `limit` bytes.
pub fn recompress_batch(
    batch: &[u8],
    to: Recompression,
    limit: usize,
) -> Result<Option<Vec<u8>>, RecompressError> {
    let header = BatchHeader::new(batch)?;
    let from = header.compression();
    if from == to.codec {
        return Ok(None);
    }
    let inflated;
    let records: &[u8] = if from == NONE {
        &batch[HEADER_LEN..]
    } else {
        inflated = decompress(from, &batch[HEADER_LEN..], limit)?;
        &inflated
    };
    let count = record::count_records(records)?;
    if count as i64 != header.records_count() as i64 {
        return Err(RecompressError::Records(record::BatchError::Invalid(
            "the compressed records do not number recordsCount",
        )));
    }
    let payload;
    let body: &[u8] = if to.codec == NONE {
        records
    } else {
        payload = compress(to.codec, records, to.level);
        &payload
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(body);
    let batch_length =
        i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| RecompressError::TooLarge)?;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes() & !ATTR_COMPRESSION_MASK) | to.codec;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = record::batch_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Some(out))
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
    use crate::record::builder::{build_producer_batch, Record};

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

    fn records() -> Vec<Record> {
        (0..200)
            .map(|i| Record {
                key: (i % 7 != 0).then(|| format!("key-{i}").into_bytes()),
                value: Some(format!("value {i} ").repeat(i % 13 + 1).into_bytes()),
                headers: vec![("h".into(), Some(vec![i as u8])), ("n".into(), None)],
                timestamp_ms: 1_700_000_000_000 + i as i64 * 3,
            })
            .collect()
    }

    /// Every codec to every codec: the rebuilt batch verifies (length, magic, CRC-32C), keeps
    /// every header field but the codec bits, and inflates to the very same records.
    #[test]
    fn recompression_keeps_the_batch_but_its_codec() {
        let plain = build_producer_batch(&records(), 42, 3, 1000);
        let codecs = [NONE, GZIP, SNAPPY, LZ4, ZSTD];
        let to = |codec| Recompression { codec, level: None };
        for from in codecs {
            let source = recompress_batch(&plain, to(from), 1 << 24)
                .unwrap()
                .unwrap_or_else(|| plain.to_vec());
            for target in codecs {
                let out = recompress_batch(&source, to(target), 1 << 24).unwrap();
                let Some(out) = out else {
                    assert_eq!(from, target, "only a batch in the target codec is kept");
                    continue;
                };
                let h = record::verify_batch(&out).unwrap();
                let s = BatchHeader::new(&source).unwrap();
                assert_eq!(h.compression(), target, "{from} -> {target}");
                assert_eq!(h.attributes() & !7, s.attributes() & !7);
                assert_eq!(
                    (h.base_offset(), h.last_offset_delta(), h.records_count()),
                    (0, 199, 200)
                );
                assert_eq!(
                    (h.base_timestamp(), h.max_timestamp()),
                    (s.base_timestamp(), s.max_timestamp())
                );
                assert_eq!(
                    (h.producer_id(), h.producer_epoch(), h.base_sequence()),
                    (42, 3, 1000)
                );
                assert_eq!(
                    decompress(target, &out[HEADER_LEN..], 1 << 24).unwrap(),
                    &plain[HEADER_LEN..],
                    "{from} -> {target}"
                );
            }
        }
    }

    #[test]
    fn levels_come_from_the_topic_and_change_the_output() {
        let mut configs = BTreeMap::new();
        assert_eq!(Recompression::of(&configs), None);
        configs.insert("compression.type".to_string(), "producer".to_string());
        assert_eq!(Recompression::of(&configs), None);
        configs.insert("compression.type".to_string(), "gzip".to_string());
        configs.insert("compression.gzip.level".to_string(), "1".to_string());
        assert_eq!(
            Recompression::of(&configs),
            Some(Recompression {
                codec: GZIP,
                level: Some(1)
            })
        );
        configs.insert("compression.gzip.level".to_string(), "-1".to_string());
        assert_eq!(Recompression::of(&configs).unwrap().level, None);
        configs.insert("compression.type".to_string(), "uncompressed".to_string());
        assert_eq!(Recompression::of(&configs).unwrap().codec, NONE);
        let data = sample();
        assert_ne!(
            compress(GZIP, &data, Some(1)),
            compress(GZIP, &data, Some(9))
        );
        assert_ne!(
            compress(ZSTD, &data, Some(1)),
            compress(ZSTD, &data, Some(19))
        );
    }

    /// A compressed batch whose records do not number its recordsCount is refused.
    #[test]
    fn a_record_count_mismatch_is_refused() {
        let plain = build_producer_batch(&records()[..3], -1, -1, -1).to_vec();
        let mut lying = plain.clone();
        lying[record::RECORDS_COUNT_AT..record::RECORDS_COUNT_AT + 4]
            .copy_from_slice(&4i32.to_be_bytes());
        let to = Recompression {
            codec: ZSTD,
            level: None,
        };
        assert!(matches!(
            recompress_batch(&lying, to, 1 << 20),
            Err(RecompressError::Records(_))
        ));
        let mut cut = plain;
        cut.truncate(cut.len() - 2);
        assert!(recompress_batch(&cut, to, 1 << 20).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = [0xffu8; 64];
        for codec in [GZIP, SNAPPY, LZ4, ZSTD, 5, 7] {
            assert!(decompress(codec, &junk, 1 << 20).is_err(), "codec {codec}");
        }
    }
}
