//! Decoding the record batches a fetch returns, as a consumer must: check each batch's
//! CRC-32C (librdkafka's `check.crcs`), then read every record's offset and value. The
//! broker stores and serves batches as bytes; only the client looks inside, so this is the
//! simulator's client-side decoder (uncompressed v2 batches: what the workloads produce).

use bytes::Bytes;
use keel_core::record::{self, BatchHeader, HEADER_LEN};

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub offset: i64,
    pub value: String,
}

/// What a fetch's record bytes held.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Records of every valid batch, in order.
    pub records: Vec<ReadRecord>,
    /// Batches that failed their checks: (base offset as stored, last offset if the header
    /// is sane, why).
    pub corrupt: Vec<(i64, Option<i64>, String)>,
}

/// Decodes the whole batches in `bytes`, ignoring a partial batch at the end (Kafka allows
/// a fetch to end inside one). Decoding stops at the first corrupt batch: the bytes after
/// it cannot be trusted to start a batch.
pub fn decode(bytes: &Bytes) -> Decoded {
    let mut out = Decoded::default();
    let (batches, _) = record::split_batches(bytes);
    for batch in batches {
        let header = match record::verify_batch(&batch) {
            Ok(h) => h,
            Err(e) => {
                let (base, last) = match BatchHeader::new(&batch) {
                    Ok(h) if h.last_offset_delta() >= 0 => (h.base_offset(), Some(h.last_offset())),
                    Ok(h) => (h.base_offset(), None),
                    Err(_) => (-1, None),
                };
                out.corrupt.push((base, last, e.to_string()));
                break;
            }
        };
        if header.compression() != 0 {
            out.corrupt.push((
                header.base_offset(),
                Some(header.last_offset()),
                "compressed batch: the workloads never produce one".into(),
            ));
            break;
        }
        match records(
            &batch[HEADER_LEN..],
            header.records_count(),
            header.base_offset(),
        ) {
            Ok(mut recs) => out.records.append(&mut recs),
            Err(reason) => {
                out.corrupt.push((
                    header.base_offset(),
                    Some(header.last_offset()),
                    reason.into(),
                ));
                break;
            }
        }
    }
    out
}

fn records(mut buf: &[u8], count: i32, base_offset: i64) -> Result<Vec<ReadRecord>, &'static str> {
    let mut out = Vec::new();
    for _ in 0..count.max(0) {
        let len = usize::try_from(varint(&mut buf)?).map_err(|_| "negative record length")?;
        if len > buf.len() {
            return Err("record overruns its batch");
        }
        let (mut body, rest) = buf.split_at(len);
        buf = rest;
        take(&mut body, 1)?; // attributes
        varint(&mut body)?; // timestamp delta
        let offset_delta = varint(&mut body)?;
        let key_len = varint(&mut body)?;
        if key_len > 0 {
            take(&mut body, key_len as usize)?;
        }
        let value_len = varint(&mut body)?;
        let value = if value_len >= 0 {
            String::from_utf8_lossy(take(&mut body, value_len as usize)?).into_owned()
        } else {
            String::new()
        };
        out.push(ReadRecord {
            offset: base_offset + offset_delta,
            value,
        });
    }
    Ok(out)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], &'static str> {
    if n > buf.len() {
        return Err("field overruns its record");
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// A zigzag varint (up to 64 bits).
fn varint(buf: &mut &[u8]) -> Result<i64, &'static str> {
    let mut raw = 0u64;
    for i in 0..10 {
        let b = *take(buf, 1)?.first().ok_or("varint runs past the end")?;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long")
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::record::builder::{build_batch, Record};

    fn batch(values: &[&str], base: i64) -> Vec<u8> {
        let recs: Vec<Record> = values
            .iter()
            .map(|v| Record {
                key: Some(b"k".to_vec()),
                value: Some(v.as_bytes().to_vec()),
                headers: vec![],
                timestamp_ms: 5,
            })
            .collect();
        let mut b = build_batch(&recs).to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    #[test]
    fn reads_offsets_and_values_and_stops_at_corruption() {
        let mut bytes = batch(&["a", "b"], 10);
        bytes.extend(batch(&["c"], 12));
        let mut bad = batch(&["d"], 13);
        let last = bad.len() - 1;
        bad[last] ^= 0x10;
        bytes.extend(bad);
        bytes.extend(batch(&["e"], 14));
        bytes.extend(&batch(&["f"], 15)[..20]);
        let d = decode(&Bytes::from(bytes));
        let got: Vec<(i64, &str)> = d
            .records
            .iter()
            .map(|r| (r.offset, r.value.as_str()))
            .collect();
        assert_eq!(got, vec![(10, "a"), (11, "b"), (12, "c")]);
        assert_eq!(d.corrupt.len(), 1);
        assert_eq!(d.corrupt[0].0, 13);
        assert_eq!(d.corrupt[0].1, Some(13));
    }
}
