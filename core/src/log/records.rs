//! Walks the records of an uncompressed v2 batch read back from storage, decoding only what
//! timestamp lookups need (offsetDelta, timestampDelta) and skipping the rest by length.
//!
//! It lives in `log/` rather than `record.rs` because only the log needs it so far; it is
//! bounded by the batch bytes and never trusts `recordsCount` or a record length.

use crate::record::{HEADER_LEN, RECORDS_COUNT_AT};

/// The per-record fields a timestamp lookup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
}

/// Iterator over the records of one uncompressed batch.
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: i32,
}

/// The records of `batch`, a whole uncompressed v2 batch (at least [`HEADER_LEN`] bytes).
pub fn records(batch: &[u8]) -> Result<RecordIter<'_>, &'static str> {
    if batch.len() < HEADER_LEN {
        return Err("batch shorter than its header");
    }
    let count = i32::from_be_bytes([
        batch[RECORDS_COUNT_AT],
        batch[RECORDS_COUNT_AT + 1],
        batch[RECORDS_COUNT_AT + 2],
        batch[RECORDS_COUNT_AT + 3],
    ]);
    if count < 0 {
        return Err("negative recordsCount");
    }
    Ok(RecordIter {
        buf: batch,
        pos: HEADER_LEN,
        remaining: count,
    })
}

/// The records of a decompressed records section holding `count` records.
pub fn records_in(section: &[u8], count: i32) -> Result<RecordIter<'_>, &'static str> {
    if count < 0 {
        return Err("negative recordsCount");
    }
    Ok(RecordIter {
        buf: section,
        pos: 0,
        remaining: count,
    })
}

impl Iterator for RecordIter<'_> {
    type Item = Result<RecordMeta, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let item = self.next_record();
        if item.is_err() {
            // One error ends the walk: the bytes after a bad length mean nothing.
            self.remaining = 0;
        }
        Some(item)
    }
}

impl RecordIter<'_> {
    fn next_record(&mut self) -> Result<RecordMeta, &'static str> {
        let len = read_varint(self.buf, &mut self.pos)?;
        let len = usize::try_from(len).map_err(|_| "negative record length")?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or("record overruns the batch")?;
        let body = &self.buf[self.pos..end];
        let mut at = 1; // record attributes: a single unused byte
        if body.is_empty() {
            return Err("empty record");
        }
        let timestamp_delta = read_varlong(body, &mut at)?;
        let offset_delta = read_varint(body, &mut at)?;
        self.pos = end;
        Ok(RecordMeta {
            offset_delta,
            timestamp_delta,
        })
    }
}

/// One record of a v2 batch as compaction needs it: where it lies, its offset delta, its key,
/// and whether its value is null (a tombstone). `raw` is the whole record including its
/// length prefix: offset and timestamp deltas are relative to the batch header, which
/// compaction keeps, so a retained record is re-encoded by copying `raw` unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedRecord<'a> {
    pub raw: &'a [u8],
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub is_tombstone: bool,
}

/// Parses the `count` records of an (uncompressed or inflated) records section, rejecting
/// a section with bytes left over or a record whose fields overrun its length.
pub fn keyed_records(section: &[u8], count: i32) -> Result<Vec<KeyedRecord<'_>>, &'static str> {
    let count = usize::try_from(count).map_err(|_| "negative recordsCount")?;
    // Every record takes at least 7 bytes: no count can claim more than the bytes allow.
    let mut out = Vec::with_capacity(count.min(section.len() / 7 + 1));
    let mut pos = 0usize;
    for _ in 0..count {
        let start = pos;
        let len = read_varint(section, &mut pos)?;
        let len = usize::try_from(len).map_err(|_| "negative record length")?;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= section.len())
            .ok_or("record overruns the batch")?;
        let body = &section[pos..end];
        if body.is_empty() {
            return Err("empty record");
        }
        let mut at = 1;
        let _timestamp_delta = read_varlong(body, &mut at)?;
        let offset_delta = read_varint(body, &mut at)?;
        let key = read_nullable(body, &mut at)?;
        let value = read_nullable(body, &mut at)?;
        let headers = read_varint(body, &mut at)?;
        if headers < 0 {
            return Err("negative header count");
        }
        for _ in 0..headers {
            read_nullable(body, &mut at)?.ok_or("null header key")?;
            read_nullable(body, &mut at)?;
        }
        if at != body.len() {
            return Err("record length disagrees with its fields");
        }
        out.push(KeyedRecord {
            raw: &section[start..end],
            offset_delta,
            key,
            is_tombstone: value.is_none(),
        });
        pos = end;
    }
    if pos != section.len() {
        return Err("bytes after the last record");
    }
    Ok(out)
}

/// A varint-length byte string; length -1 is null.
fn read_nullable<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, &'static str> {
    let len = read_varint(buf, pos)?;
    if len < 0 {
        return if len == -1 {
            Ok(None)
        } else {
            Err("negative length")
        };
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("field overruns the record")?;
    let bytes = &buf[*pos..end];
    *pos = end;
    Ok(Some(bytes))
}

/// A zigzag varint of at most 5 bytes (Kafka's `ByteUtils.readVarint`).
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, &'static str> {
    let raw = read_unsigned(buf, pos, 5)?;
    let raw = u32::try_from(raw).map_err(|_| "varint overflows 32 bits")?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, &'static str> {
    let raw = read_unsigned(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned(buf: &[u8], pos: &mut usize, max_len: usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..max_len {
        let b = *buf.get(*pos).ok_or("varint runs past the end")?;
        *pos += 1;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::builder::{build_batch, Record};

    #[test]
    fn iterates_offset_and_timestamp_deltas() {
        let recs: Vec<Record> = [100i64, 90, 250, -5]
            .iter()
            .map(|&ts| Record {
                key: Some(b"k".to_vec()),
                value: Some(vec![7; 300]),
                timestamp_ms: ts,
                ..Default::default()
            })
            .collect();
        let batch = build_batch(&recs);
        let metas: Vec<RecordMeta> = records(&batch).unwrap().map(|r| r.unwrap()).collect();
        let expect: Vec<RecordMeta> = [0i64, -10, 150, -105]
            .iter()
            .enumerate()
            .map(|(i, &d)| RecordMeta {
                offset_delta: i as i32,
                timestamp_delta: d,
            })
            .collect();
        assert_eq!(metas, expect);
    }

    #[test]
    fn truncated_records_are_an_error_not_a_panic() {
        let batch = build_batch(&[Record {
            value: Some(vec![1; 50]),
            ..Default::default()
        }]);
        for cut in HEADER_LEN..batch.len() {
            let items: Vec<_> = records(&batch[..cut]).unwrap().collect();
            assert_eq!(items.len(), 1);
            assert!(items[0].is_err(), "cut at {cut}");
        }
    }
}
