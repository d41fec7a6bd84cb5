//! Record batches on the client side of the admin commands: building what `keel produce`
//! sends (optionally compressed) and reading back what a fetch returns for `keel consume`.
//!
//! Reading follows a Kafka consumer's duties: a fetch may end inside a batch (the partial
//! tail is ignored and fetched again), a compressed batch may start before the fetch offset
//! (records below it are dropped), control batches (transaction markers) are skipped but
//! still advance the position, and every batch's CRC-32C is checked. Nothing in a batch is
//! trusted: a count or length that overruns the bytes is an error, never a panic.

use bytes::Bytes;
use keel_core::compression;
use keel_core::record::builder::{build_batch, Record};
use keel_core::record::{
    self, ATTRIBUTES_AT, ATTR_COMPRESSION_MASK, BATCH_LENGTH_AT, CRC_AT, HEADER_LEN, LOG_OVERHEAD,
};
use std::io::Write;

/// The most a compressed batch may inflate to (a hostile batch costs at most this much).
const MAX_INFLATED_BYTES: usize = 256 << 20;

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// One record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub timestamp_type: TimestampType,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// What one partition's fetched bytes held.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records at or above the fetch offset, in offset order.
    pub records: Vec<ConsumedRecord>,
    /// The offset after the last whole batch (control batches included), if any.
    pub next_offset: Option<i64>,
    /// Whether bytes were left over that did not make a whole batch.
    pub partial_tail: bool,
}

/// Decodes the whole batches of a fetch response's `records` for a fetch at `fetch_offset`.
pub fn decode_fetched(bytes: &Bytes, fetch_offset: i64) -> Result<Decoded, String> {
    let (batches, covered) = record::split_batches(bytes);
    let mut out = Decoded {
        partial_tail: covered < bytes.len(),
        ..Decoded::default()
    };
    for batch in batches {
        let header = record::verify_batch(&batch).map_err(|e| {
            let base = record::BatchHeader::new(&batch).map_or(-1, |h| h.base_offset());
            format!("batch at offset {base}: {e}")
        })?;
        out.next_offset = Some(header.last_offset() + 1);
        if header.is_control() {
            continue;
        }
        let base = header.base_offset();
        let section = match header.compression() {
            compression::NONE => batch[HEADER_LEN..].to_vec(),
            codec => compression::decompress(codec, &batch[HEADER_LEN..], MAX_INFLATED_BYTES)
                .map_err(|e| format!("batch at offset {base}: {e}"))?,
        };
        let (timestamp_type, fixed_ts) = if header.is_log_append_time() {
            (TimestampType::LogAppendTime, Some(header.max_timestamp()))
        } else {
            (TimestampType::CreateTime, None)
        };
        let mut at = 0usize;
        for _ in 0..header.records_count().max(0) {
            let r = read_record(&section, &mut at)
                .map_err(|e| format!("batch at offset {base}: {e}"))?;
            let offset = base + i64::from(r.offset_delta);
            if offset < fetch_offset {
                continue;
            }
            out.records.push(ConsumedRecord {
                offset,
                timestamp_ms: fixed_ts
                    .unwrap_or_else(|| header.base_timestamp().wrapping_add(r.timestamp_delta)),
                timestamp_type,
                key: r.key,
                value: r.value,
                headers: r.headers,
            });
        }
    }
    Ok(out)
}

struct RawRecord {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn read_record(buf: &[u8], at: &mut usize) -> Result<RawRecord, &'static str> {
    let len = usize::try_from(varint(buf, at)?).map_err(|_| "negative record length")?;
    let end = at
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or("record overruns its batch")?;
    let body = &buf[*at..end];
    *at = end;
    let mut pos = 0usize;
    take(body, &mut pos, 1)?; // attributes: unused
    let timestamp_delta = varint(body, &mut pos)?;
    let offset_delta =
        i32::try_from(varint(body, &mut pos)?).map_err(|_| "offset delta overflows")?;
    let key = bytes(body, &mut pos)?;
    let value = bytes(body, &mut pos)?;
    let count = varint(body, &mut pos)?;
    if count < 0 {
        return Err("negative header count");
    }
    let mut headers = Vec::new();
    for _ in 0..count {
        let k = bytes(body, &mut pos)?.ok_or("null header key")?;
        let v = bytes(body, &mut pos)?;
        headers.push((String::from_utf8_lossy(&k).into_owned(), v));
    }
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or("field overruns its record")?;
    let out = &buf[*pos..end];
    *pos = end;
    Ok(out)
}

/// A varint-length byte string; length -1 is null.
fn bytes(buf: &[u8], pos: &mut usize) -> Result<Option<Vec<u8>>, &'static str> {
    match varint(buf, pos)? {
        -1 => Ok(None),
        n if n < 0 => Err("negative length"),
        n => {
            let n = usize::try_from(n).map_err(|_| "length overflows")?;
            Ok(Some(take(buf, pos, n)?.to_vec()))
        }
    }
}

/// A zigzag varint or varlong (up to 10 bytes).
fn varint(buf: &[u8], pos: &mut usize) -> Result<i64, &'static str> {
    let mut raw = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or("varint runs past the end")?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long")
}

/// A producer-side compression codec, by Kafka's `compression.type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn codec(self) -> i16 {
        match self {
            Compression::None => compression::NONE,
            Compression::Gzip => compression::GZIP,
            Compression::Snappy => compression::SNAPPY,
            Compression::Lz4 => compression::LZ4,
            Compression::Zstd => compression::ZSTD,
        }
    }
}

/// Builds one batch of `records` (not empty), its records section compressed with
/// `compression`: the uncompressed batch's header with the codec bits set, the batch length
/// and CRC-32C recomputed.
pub fn build(records: &[Record], compression: Compression) -> Result<Bytes, String> {
    let plain = build_batch(records);
    if compression == Compression::None {
        return Ok(plain);
    }
    let section = &plain[HEADER_LEN..];
    let compressed = compress(compression, section).map_err(|e| format!("compressing: {e}"))?;
    let mut b = Vec::with_capacity(HEADER_LEN + compressed.len());
    b.extend_from_slice(&plain[..HEADER_LEN]);
    b.extend_from_slice(&compressed);
    let length = i32::try_from(b.len() - LOG_OVERHEAD).map_err(|_| "batch too large")?;
    b[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (compression.codec() & ATTR_COMPRESSION_MASK).to_be_bytes();
    b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes);
    let crc = record::batch_crc(&b);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(b))
}

fn compress(compression: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data)?;
            e.finish()
        }
        // Raw snappy, as librdkafka sends it; brokers and consumers also accept it.
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(std::io::Error::other),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data)?;
            e.finish().map_err(std::io::Error::other)
        }
        Compression::Zstd => zstd::stream::encode_all(data, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs() -> Vec<Record> {
        (0..5)
            .map(|i| Record {
                key: (i % 2 == 0).then(|| format!("k{i}").into_bytes()),
                value: Some(format!("value {i}").into_bytes()),
                headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
                timestamp_ms: 1_000 + i,
            })
            .collect()
    }

    fn at_offset(batch: &Bytes, base: i64) -> Vec<u8> {
        let mut b = batch.to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    #[test]
    fn every_codec_round_trips_with_keys_headers_and_timestamps() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = build(&recs(), c).unwrap();
            record::validate_produced_batch(&batch).unwrap();
            let d = decode_fetched(&Bytes::from(at_offset(&batch, 10)), 0).unwrap();
            assert_eq!(d.next_offset, Some(15), "{c:?}");
            assert_eq!(d.records.len(), 5);
            let r = &d.records[2];
            assert_eq!(r.offset, 12);
            assert_eq!(r.timestamp_ms, 1_002);
            assert_eq!(r.key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(r.value.as_deref(), Some(&b"value 2"[..]));
            assert_eq!(r.headers[1], ("n".to_string(), None));
            assert_eq!(d.records[1].key, None);
        }
    }

    #[test]
    fn records_below_the_fetch_offset_a_partial_tail_and_control_batches_are_skipped() {
        let batch = build(&recs(), Compression::Gzip).unwrap();
        let mut bytes = at_offset(&batch, 0);
        let mut control = at_offset(&build(&recs()[..1], Compression::None).unwrap(), 5);
        control[ATTRIBUTES_AT + 1] |= 0x20;
        let crc = record::batch_crc(&control);
        control[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        bytes.extend_from_slice(&control);
        let tail = at_offset(&batch, 6);
        bytes.extend_from_slice(&tail[..tail.len() - 4]);
        let d = decode_fetched(&Bytes::from(bytes), 3).unwrap();
        let offsets: Vec<i64> = d.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![3, 4]);
        assert_eq!(d.next_offset, Some(6));
        assert!(d.partial_tail);
    }

    #[test]
    fn corruption_is_an_error_not_a_panic() {
        let batch = build(&recs(), Compression::None).unwrap();
        let mut b = batch.to_vec();
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(decode_fetched(&Bytes::from(b), 0).is_err());
        // A record count that overruns the section, with a valid CRC.
        let mut b = batch.to_vec();
        b[record::RECORDS_COUNT_AT..record::RECORDS_COUNT_AT + 4]
            .copy_from_slice(&1000i32.to_be_bytes());
        let crc = record::batch_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_fetched(&Bytes::from(b), 0).is_err());
    }
}
