//! Kafka v2 RecordBatch headers: the view the broker needs to validate, assign offsets and
//! index a batch without decoding its records.
//!
//! Layout (big-endian, offsets from the batch start), from Kafka's DefaultRecordBatch:
//! baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32 @12, magic i8 @16,
//! crc u32 @17 (CRC-32C over [21, end)), attributes i16 @21, lastOffsetDelta i32 @23,
//! baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43, producerEpoch i16 @51,
//! baseSequence i32 @53, recordsCount i32 @57, records @61. baseOffset and
//! partitionLeaderEpoch lie outside the CRC, which is why the broker can rewrite them
//! without recomputing it.

use bytes::Bytes;

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORDS_COUNT_AT: usize = 57;
/// Size of the fixed header; also the smallest valid batch (Kafka's RECORD_BATCH_OVERHEAD).
pub const HEADER_LEN: usize = 61;
/// Bytes before batchLength's coverage begins: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;

/// attributes bit 3: the broker assigned the timestamp (LogAppendTime).
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
pub const ATTR_CONTROL: i16 = 1 << 5;
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// Why a batch was refused; each maps to the Kafka error a real broker sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Shorter than the fixed header or its batchLength disagrees with the bytes given:
    /// CORRUPT_MESSAGE.
    #[error("batch size {actual} does not match its header ({expected})")]
    BadLength { expected: usize, actual: usize },
    /// CRC-32C mismatch: CORRUPT_MESSAGE.
    #[error("batch CRC {stored:#010x} does not match computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    /// Magic other than 2: INVALID_RECORD (Keel only speaks the v2 format).
    #[error("unsupported record batch magic {0}")]
    BadMagic(i8),
    /// Inconsistent counts, a non-zero client baseOffset, a control batch from a client:
    /// INVALID_RECORD.
    #[error("invalid record batch: {0}")]
    Invalid(&'static str),
}

/// A borrowed view of one v2 batch's header fields.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl<'a> BatchHeader<'a> {
    /// Views the header at the start of `bytes`, which must hold at least [`HEADER_LEN`] bytes.
    pub fn new(bytes: &'a [u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::BadLength {
                expected: HEADER_LEN,
                actual: bytes.len(),
            });
        }
        Ok(BatchHeader { bytes })
    }

    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, BASE_OFFSET_AT)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, BATCH_LENGTH_AT)
    }
    /// Total bytes of the batch on the wire: 12 + batchLength (may be negative garbage).
    pub fn total_len(&self) -> i64 {
        LOG_OVERHEAD as i64 + self.batch_length() as i64
    }
    pub fn leader_epoch(&self) -> i32 {
        be_i32(self.bytes, LEADER_EPOCH_AT)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, CRC_AT) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, ATTRIBUTES_AT)
    }
    pub fn compression(&self) -> i16 {
        self.attributes() & ATTR_COMPRESSION_MASK
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & ATTR_LOG_APPEND_TIME != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, LAST_OFFSET_DELTA_AT)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, BASE_TIMESTAMP_AT)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, MAX_TIMESTAMP_AT)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, PRODUCER_ID_AT)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, PRODUCER_EPOCH_AT)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, BASE_SEQUENCE_AT)
    }
    pub fn records_count(&self) -> i32 {
        be_i32(self.bytes, RECORDS_COUNT_AT)
    }
    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + self.last_offset_delta() as i64
    }
}

/// Computes the CRC-32C a v2 batch must carry: over attributes through the last record.
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Checks one complete batch: exact length, magic 2, CRC-32C. Kafka's `ensureValid()`.
pub fn verify_batch(batch: &[u8]) -> Result<BatchHeader<'_>, BatchError> {
    let header = BatchHeader::new(batch)?;
    if header.total_len() != batch.len() as i64 {
        return Err(BatchError::BadLength {
            expected: header.total_len().max(0) as usize,
            actual: batch.len(),
        });
    }
    if header.magic() != 2 {
        return Err(BatchError::BadMagic(header.magic()));
    }
    let computed = batch_crc(batch);
    if computed != header.crc() {
        return Err(BatchError::BadCrc {
            stored: header.crc(),
            computed,
        });
    }
    Ok(header)
}

/// The duties of a broker towards a batch a client produced (KAFKA.md §4): one valid batch,
/// baseOffset 0, counts consistent, not a control batch, timestamps of the CreateTime kind.
pub fn validate_produced_batch(records: &[u8]) -> Result<BatchHeader<'_>, BatchError> {
    let header = verify_batch(records)?;
    if header.base_offset() != 0 {
        return Err(BatchError::Invalid(
            "the baseOffset of a produced batch must be 0",
        ));
    }
    let count = header.records_count();
    if count <= 0
        || header.last_offset_delta() < 0
        || header.last_offset_delta() as i64 + 1 != count as i64
    {
        return Err(BatchError::Invalid(
            "recordsCount and lastOffsetDelta disagree",
        ));
    }
    if header.is_control() {
        return Err(BatchError::Invalid("clients may not write control batches"));
    }
    if header.producer_id() >= 0 && header.base_sequence() < 0 {
        return Err(BatchError::Invalid(
            "a batch with a producerId needs a baseSequence",
        ));
    }
    Ok(header)
}

/// Counts the records of an (uncompressed) records section: each is a zigzag varint length
/// and that many bytes, and together they must cover the section exactly.
pub fn count_records(section: &[u8]) -> Result<usize, BatchError> {
    let mut pos = 0usize;
    let mut count = 0usize;
    while pos < section.len() {
        let (len, used) = read_varint(&section[pos..])
            .ok_or(BatchError::Invalid("a record length is cut off"))?;
        pos += used;
        let len =
            usize::try_from(len).map_err(|_| BatchError::Invalid("a negative record length"))?;
        if len > section.len() - pos {
            return Err(BatchError::Invalid("a record runs past the batch"));
        }
        pos += len;
        count += 1;
    }
    Ok(count)
}

/// A zigzag varint (at most 5 bytes, as Kafka's `ByteUtils.readVarint`) and its length.
fn read_varint(b: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(5) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let v = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((v, i + 1));
        }
    }
    None
}

/// Splits a buffer of concatenated batches into whole batches, stopping at the first
/// incomplete one. Returns the batches and the number of bytes they cover.
pub fn split_batches(buf: &Bytes) -> (Vec<Bytes>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while buf.len() - pos >= HEADER_LEN {
        let Ok(header) = BatchHeader::new(&buf[pos..]) else {
            break;
        };
        let total = header.total_len();
        if total < HEADER_LEN as i64 || total as u64 > (buf.len() - pos) as u64 {
            break;
        }
        out.push(buf.slice(pos..pos + total as usize));
        pos += total as usize;
    }
    (out, pos)
}

/// Builds uncompressed v2 batches: the client side of Keel (simulator workloads, bench,
/// tests). The broker re-encodes a batch only to recompress it (`compression.rs`).
pub mod builder {
    use super::*;

    /// One record to encode.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Record {
        pub key: Option<Vec<u8>>,
        pub value: Option<Vec<u8>>,
        pub headers: Vec<(String, Option<Vec<u8>>)>,
        pub timestamp_ms: i64,
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let b = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i64);
                out.extend_from_slice(b);
            }
        }
    }

    /// Encodes `records` as one uncompressed batch with baseOffset 0 and no producer id.
    /// `records` must not be empty.
    pub fn build_batch(records: &[Record]) -> Bytes {
        build_producer_batch(records, -1, -1, -1)
    }

    /// [`build_batch`] as an idempotent producer sends it: `producer_id` at
    /// `producer_epoch`, its first record at `base_sequence`.
    pub fn build_producer_batch(
        records: &[Record],
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Bytes {
        assert!(
            !records.is_empty(),
            "a record batch holds at least one record"
        );
        let base_ts = records[0].timestamp_ms;
        let max_ts = records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(base_ts);
        let mut body = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut rec = Vec::new();
            rec.push(0u8); // record attributes: unused
            put_varint(&mut rec, r.timestamp_ms - base_ts);
            put_varint(&mut rec, i as i64);
            put_bytes(&mut rec, r.key.as_deref());
            put_bytes(&mut rec, r.value.as_deref());
            put_varint(&mut rec, r.headers.len() as i64);
            for (k, v) in &r.headers {
                put_bytes(&mut rec, Some(k.as_bytes()));
                put_bytes(&mut rec, v.as_deref());
            }
            put_varint(&mut body, rec.len() as i64);
            body.extend_from_slice(&rec);
        }
        let mut b = Vec::with_capacity(HEADER_LEN + body.len());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
        b.extend_from_slice(&base_ts.to_be_bytes());
        b.extend_from_slice(&max_ts.to_be_bytes());
        b.extend_from_slice(&producer_id.to_be_bytes());
        b.extend_from_slice(&producer_epoch.to_be_bytes());
        b.extend_from_slice(&base_sequence.to_be_bytes());
        b.extend_from_slice(&(records.len() as i32).to_be_bytes());
        b.extend_from_slice(&body);
        let crc = batch_crc(&b);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::builder::{build_batch, Record};
    use super::*;

    fn rec(v: &str, ts: i64) -> Record {
        Record {
            key: Some(b"k".to_vec()),
            value: Some(v.as_bytes().to_vec()),
            headers: vec![],
            timestamp_ms: ts,
        }
    }

    #[test]
    fn built_batch_validates() {
        let b = build_batch(&[rec("a", 10), rec("b", 12)]);
        let h = validate_produced_batch(&b).unwrap();
        assert_eq!(h.records_count(), 2);
        assert_eq!(h.last_offset_delta(), 1);
        assert_eq!(h.max_timestamp(), 12);
    }

    #[test]
    fn flipped_bit_is_a_crc_error() {
        let mut b = build_batch(&[rec("a", 10)]).to_vec();
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(verify_batch(&b), Err(BatchError::BadCrc { .. })));
    }

    #[test]
    fn base_offset_and_epoch_are_outside_the_crc() {
        let mut b = build_batch(&[rec("a", 10)]).to_vec();
        b[..8].copy_from_slice(&42i64.to_be_bytes());
        b[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&7i32.to_be_bytes());
        assert_eq!(verify_batch(&b).unwrap().base_offset(), 42);
    }

    #[test]
    fn short_or_overlong_batches_are_refused() {
        let b = build_batch(&[rec("a", 10)]);
        assert!(matches!(
            verify_batch(&b[..30]),
            Err(BatchError::BadLength { .. })
        ));
        let mut long = b.to_vec();
        long.push(0);
        assert!(matches!(
            verify_batch(&long),
            Err(BatchError::BadLength { .. })
        ));
    }

    #[test]
    fn records_are_counted_exactly() {
        let b = build_batch(&[rec("a", 1), rec("bb", 2), rec("ccc", 3)]);
        assert_eq!(count_records(&b[HEADER_LEN..]), Ok(3));
        assert_eq!(count_records(&[]), Ok(0));
        assert!(count_records(&b[HEADER_LEN..b.len() - 1]).is_err());
        assert!(count_records(&[0x80, 0x80]).is_err());
        assert!(count_records(&[0x01]).is_err(), "length -1");
    }

    #[test]
    fn split_stops_at_a_partial_batch() {
        let a = build_batch(&[rec("a", 1)]);
        let b = build_batch(&[rec("b", 2)]);
        let mut buf = a.to_vec();
        buf.extend_from_slice(&b[..b.len() - 3]);
        let (batches, covered) = split_batches(&Bytes::from(buf));
        assert_eq!(batches.len(), 1);
        assert_eq!(covered, a.len());
    }
}
