//! One segment of a partition log: its three files, what is known about its valid bytes
//! (size, next offset, max timestamp), its in-memory indexes, and the batch walk that both
//! recovery and lookups use to read batch headers from untrusted storage.

use super::index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::record::{self, BatchHeader, HEADER_LEN};
use crate::storage::Storage;
use bytes::Bytes;
use std::io;

/// Read-ahead of the batch walk: recovery reads segments in chunks of this size, not one
/// storage call per header.
const WALK_CHUNK_BYTES: usize = 256 * 1024;
/// Read-ahead of header-only walks (reads, lookups): headers are 61 bytes apart at least.
const LOOKUP_CHUNK_BYTES: usize = 16 * 1024;

/// File name of the `.log` file of the segment at `base` in `dir`.
pub fn log_file_name(dir: &str, base: i64) -> String {
    join(dir, &format!("{base:020}.log"))
}
pub fn index_file_name(dir: &str, base: i64) -> String {
    join(dir, &format!("{base:020}.index"))
}
pub fn time_index_file_name(dir: &str, base: i64) -> String {
    join(dir, &format!("{base:020}.timeindex"))
}

/// `dir/name`, or `name` when `dir` is the storage root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// One segment's in-memory state. Everything here describes bytes that were verified (by
/// recovery) or written (by append) by this process; storage is read only to serve data.
#[derive(Debug, Clone)]
pub struct Segment {
    pub base_offset: i64,
    pub log_file: String,
    pub index_file: String,
    pub time_index_file: String,
    /// Bytes of whole, valid batches in the `.log` file.
    pub size: u64,
    /// The offset after the last batch; `base_offset` when empty.
    pub next_offset: i64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    /// The largest batch maxTimestamp in the segment; `None` when empty.
    pub max_timestamp: Option<i64>,
    /// Relative base offset of the last batch, for the time index entry written at a roll.
    pub last_batch_rel: Option<u32>,
    /// The first batch's maxTimestamp, what `segment.ms` measures a segment's age from
    /// (Kafka's `rollingBasedTimestamp`). `None` when empty, and also when the segment was
    /// loaded from its indexes without a walk from byte 0 (then it is read on demand).
    pub first_batch_timestamp: Option<i64>,
    /// The broker time of the last append, what retention measures a segment's age by when
    /// its records carry no timestamp (Kafka falls back to the file's modification time).
    /// `None` for a segment loaded at open until a retention pass or an append sees it,
    /// which then counts from that moment: data is never dropped earlier than Kafka would.
    pub last_modified_ms: Option<i64>,
    /// The broker time the segment was rolled, what `segment.ms` measures from when its
    /// first batch has no timestamp (Kafka's `created`); `None` as above.
    pub created_ms: Option<i64>,
}

/// What [`Segment::track_batch`] added to the indexes, for the caller to write out.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexUpdate {
    pub offset_entry: Option<OffsetEntry>,
    pub time_entry: Option<TimeEntry>,
}

/// One batch as the walk saw it.
#[derive(Debug, Clone, Copy)]
pub struct WalkedBatch {
    pub pos: u64,
    pub len: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub attributes: i16,
    /// The idempotent producer fields of the header (-1 when the batch has none).
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Where a walk stopped.
#[derive(Debug, Clone)]
pub struct WalkEnd {
    /// Position after the last good batch.
    pub pos: u64,
    /// The offset after the last good batch.
    pub next_offset: i64,
    /// Why the walk stopped before `end`, if it did.
    pub problem: Option<String>,
}

impl Segment {
    /// A segment with no batches yet.
    pub fn empty(dir: &str, base_offset: i64) -> Self {
        Segment {
            base_offset,
            log_file: log_file_name(dir, base_offset),
            index_file: index_file_name(dir, base_offset),
            time_index_file: time_index_file_name(dir, base_offset),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: None,
            last_batch_rel: None,
            first_batch_timestamp: None,
            last_modified_ms: None,
            created_ms: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn files(&self) -> [&str; 3] {
        [&self.log_file, &self.index_file, &self.time_index_file]
    }

    /// The relative form of `offset`, which must lie in this segment's u32 range.
    pub fn rel(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        assert!(
            (0..=u32::MAX as i64).contains(&rel),
            "offset {offset} outside segment {}",
            self.base_offset
        );
        rel as u32
    }

    /// Accounts for one batch appended at the end (`pos == size`) and updates the indexes by
    /// the rule in `index.rs`. Append and index rebuild both go through here, so a rebuilt
    /// index is byte-identical to the one written live.
    pub fn track_batch(&mut self, b: &WalkedBatch, index_interval_bytes: u64) -> IndexUpdate {
        assert_eq!(b.pos, self.size, "batches are tracked in file order");
        // Equal for appends and uncompacted segments; greater after a gap that compaction
        // left (`compaction.rs`): offsets only ever increase.
        assert!(
            b.base_offset >= self.next_offset,
            "batches are tracked in offset order"
        );
        assert!(b.last_offset >= b.base_offset && b.len >= HEADER_LEN as u64);
        let rel = self.rel(b.base_offset);
        let _ = self.rel(b.last_offset);
        let pos =
            u32::try_from(b.pos).expect("segment positions fit u32 (segment_bytes <= i32::MAX)");
        let max_ts = match self.max_timestamp {
            Some(m) => m.max(b.max_timestamp),
            None => b.max_timestamp,
        };
        if b.pos == 0 {
            self.first_batch_timestamp = Some(b.max_timestamp);
        }
        let mut update = IndexUpdate::default();
        let since_last_entry = self.size - self.offset_index.last().map_or(0, |e| e.pos as u64);
        if since_last_entry >= index_interval_bytes {
            let entry = OffsetEntry { rel, pos };
            self.offset_index.push(entry);
            update.offset_entry = Some(entry);
            if self.time_index.last().is_none_or(|t| max_ts > t.ts) {
                let entry = TimeEntry { ts: max_ts, rel };
                self.time_index.push(entry);
                update.time_entry = Some(entry);
            }
        }
        self.size += b.len;
        self.next_offset = b.last_offset + 1;
        self.max_timestamp = Some(max_ts);
        self.last_batch_rel = Some(rel);
        update
    }

    /// The time index entry that closes the segment when it is rolled (as Kafka does in
    /// `onBecomeInactiveSegment`), so the file alone bounds every timestamp in the segment.
    pub fn roll_time_entry(&mut self) -> Option<TimeEntry> {
        let (max_ts, rel) = (self.max_timestamp?, self.last_batch_rel?);
        let grows = self
            .time_index
            .last()
            .is_none_or(|t| max_ts > t.ts && rel > t.rel);
        if !grows {
            return None;
        }
        let entry = TimeEntry { ts: max_ts, rel };
        self.time_index.push(entry);
        Some(entry)
    }

    /// A position at or before the batch containing `offset`, from the offset index.
    pub fn scan_start_for(&self, offset: i64) -> (u64, i64) {
        let rel = self.rel(offset.clamp(
            self.base_offset,
            (self.next_offset - 1).max(self.base_offset),
        ));
        match self.offset_index.lookup(rel) {
            Some(e) => (e.pos as u64, self.base_offset + e.rel as i64),
            None => (0, self.base_offset),
        }
    }

    /// Sets the segment's extent to `size` bytes ending before `next_offset`, with indexes
    /// already cut or loaded to fit, and recomputes what the indexes do not hold (max
    /// timestamp, last batch) by walking from the last offset index entry: the time index
    /// rule guarantees its last timestamp bounds every batch before that entry. Returns why
    /// the tail does not end exactly at (`size`, `next_offset`), if it does not; the segment
    /// must then be rebuilt or reported corrupt.
    pub fn reload_tail(
        &mut self,
        storage: &dyn Storage,
        size: u64,
        next_offset: i64,
        verify_crc: bool,
        allow_gaps: bool,
    ) -> io::Result<Option<String>> {
        self.size = size;
        self.next_offset = next_offset;
        let (pos, expected) = match self.offset_index.last() {
            Some(e) => (e.pos as u64, self.base_offset + e.rel as i64),
            None => (0, self.base_offset),
        };
        let mut max_ts = self.time_index.last().map(|t| t.ts);
        let mut last_rel = None;
        let base = self.base_offset;
        let end = walk(
            storage,
            &self.log_file,
            base,
            pos,
            size,
            expected,
            verify_crc,
            allow_gaps,
            |b| {
                max_ts = Some(max_ts.map_or(b.max_timestamp, |m| m.max(b.max_timestamp)));
                last_rel = Some((b.base_offset - base) as u32);
                true
            },
        )?;
        if let Some(problem) = end.problem {
            return Ok(Some(problem));
        }
        if end.pos != size || end.next_offset != next_offset {
            return Ok(Some(format!(
                "batches end at byte {} offset {}, expected byte {size} offset {next_offset}",
                end.pos, end.next_offset
            )));
        }
        if size == 0 {
            max_ts = None;
            self.first_batch_timestamp = None;
        }
        self.max_timestamp = max_ts;
        self.last_batch_rel = last_rel;
        Ok(None)
    }

    /// The offset span the indexes may refer to: relative offsets lie below this.
    pub fn offset_span(&self) -> u64 {
        (self.next_offset - self.base_offset) as u64
    }
}

/// Sequential reads of one file with read-ahead; every byte it returns came from storage
/// and is untrusted.
pub struct Reader<'a> {
    storage: &'a dyn Storage,
    file: &'a str,
    buf: Bytes,
    buf_pos: u64,
    chunk: usize,
}

impl<'a> Reader<'a> {
    pub fn new(storage: &'a dyn Storage, file: &'a str, chunk: usize) -> Self {
        Reader {
            storage,
            file,
            buf: Bytes::new(),
            buf_pos: 0,
            chunk,
        }
    }

    /// A reader for walking headers only (no CRC checks) over the `remaining` bytes of a
    /// file from where the walk starts: a small read-ahead, since batches are skipped.
    pub fn for_lookup(storage: &'a dyn Storage, file: &'a str, remaining: u64) -> Self {
        let chunk = LOOKUP_CHUNK_BYTES.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        Reader::new(storage, file, chunk)
    }

    /// Up to `len` bytes at `pos`: fewer only at the end of the file.
    pub fn get(&mut self, pos: u64, len: usize) -> io::Result<Bytes> {
        let in_buf = pos >= self.buf_pos && (pos - self.buf_pos) as usize + len <= self.buf.len();
        if !in_buf {
            self.buf = self.storage.read_at(self.file, pos, len.max(self.chunk))?;
            self.buf_pos = pos;
        }
        let start = (pos - self.buf_pos) as usize;
        let end = (start + len).min(self.buf.len());
        Ok(self.buf.slice(start..end))
    }
}

/// Walks the batches of `file` from byte `pos`, where a batch with base offset
/// `expected_base` must start, up to byte `end`, calling `f` for each good batch. Stops at
/// the first batch that is incomplete, not magic 2, not at the expected offset, of an
/// insane length, out of the segment's u32 offset range, or (with `verify_crc`) whose
/// CRC-32C fails, and says why. Only storage errors are `Err`.
///
/// With `allow_gaps` (a sealed segment, which compaction may have thinned), a batch may start
/// above the expected offset, never below it: offsets still strictly increase, and the
/// caller still checks that the segment ends where the next one begins. Without it (the
/// active segment) offsets must be contiguous, which also catches a flipped baseOffset.
#[allow(clippy::too_many_arguments)]
pub fn walk(
    storage: &dyn Storage,
    file: &str,
    segment_base: i64,
    pos: u64,
    end: u64,
    expected_base: i64,
    verify_crc: bool,
    allow_gaps: bool,
    f: impl FnMut(&WalkedBatch) -> bool,
) -> io::Result<WalkEnd> {
    // Read-ahead never past `end`: a trusted segment's tail check reads about one index
    // interval, not a whole chunk.
    let chunk = if verify_crc {
        WALK_CHUNK_BYTES
    } else {
        LOOKUP_CHUNK_BYTES
    };
    let chunk = chunk.min(usize::try_from(end.saturating_sub(pos)).unwrap_or(usize::MAX));
    let mut reader = Reader::new(storage, file, chunk);
    walk_with(
        &mut reader,
        segment_base,
        pos,
        end,
        expected_base,
        verify_crc,
        allow_gaps,
        f,
    )
}

/// [`walk`] through a caller's [`Reader`], so that the caller can choose the read-ahead and
/// then take the bytes the walk found from the reader's buffer instead of reading them again.
#[allow(clippy::too_many_arguments)]
pub fn walk_with(
    reader: &mut Reader<'_>,
    segment_base: i64,
    mut pos: u64,
    end: u64,
    expected_base: i64,
    verify_crc: bool,
    allow_gaps: bool,
    mut f: impl FnMut(&WalkedBatch) -> bool,
) -> io::Result<WalkEnd> {
    let mut expected = expected_base;
    let stop = |pos, expected, why: String| WalkEnd {
        pos,
        next_offset: expected,
        problem: Some(why),
    };
    while pos < end {
        let remaining = end - pos;
        if remaining < HEADER_LEN as u64 {
            return Ok(stop(
                pos,
                expected,
                format!("{remaining} trailing bytes, shorter than a batch header"),
            ));
        }
        let head = reader.get(pos, HEADER_LEN)?;
        let Ok(header) = BatchHeader::new(&head) else {
            return Ok(stop(
                pos,
                expected,
                format!("file ends inside the batch header at {pos}"),
            ));
        };
        let total = header.total_len();
        if total < HEADER_LEN as i64 {
            return Ok(stop(
                pos,
                expected,
                format!("batch length {total} is below the header size"),
            ));
        }
        if total as u64 > remaining {
            return Ok(stop(
                pos,
                expected,
                format!("incomplete batch: {total} bytes claimed, {remaining} present"),
            ));
        }
        if header.magic() != 2 {
            return Ok(stop(
                pos,
                expected,
                format!("batch magic {}", header.magic()),
            ));
        }
        let gap_ok = allow_gaps && header.base_offset() > expected;
        if header.base_offset() != expected && !gap_ok {
            return Ok(stop(
                pos,
                expected,
                format!(
                    "batch base offset {} where {expected} was expected",
                    header.base_offset()
                ),
            ));
        }
        let batch_base = header.base_offset();
        let delta = header.last_offset_delta();
        let last_offset = batch_base.checked_add(delta as i64).filter(|_| delta >= 0);
        let Some(last_offset) = last_offset.filter(|l| l - segment_base <= u32::MAX as i64) else {
            return Ok(stop(
                pos,
                expected,
                format!("batch lastOffsetDelta {delta} is out of range"),
            ));
        };
        let max_timestamp = header.max_timestamp();
        if verify_crc {
            let whole = reader.get(pos, total as usize)?;
            if let Err(e) = record::verify_batch(&whole) {
                return Ok(stop(
                    pos,
                    expected,
                    format!("batch at offset {batch_base}: {e}"),
                ));
            }
        }
        let batch = WalkedBatch {
            pos,
            len: total as u64,
            base_offset: batch_base,
            last_offset,
            max_timestamp,
            attributes: header.attributes(),
            producer_id: header.producer_id(),
            producer_epoch: header.producer_epoch(),
            base_sequence: header.base_sequence(),
        };
        pos += total as u64;
        expected = last_offset + 1;
        if !f(&batch) {
            break;
        }
    }
    Ok(WalkEnd {
        pos,
        next_offset: expected,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::builder::{build_batch, Record};
    use crate::storage::MemStorage;

    fn batch_at(base: i64, n: usize, ts: i64) -> Vec<u8> {
        let recs: Vec<Record> = (0..n)
            .map(|i| Record {
                value: Some(vec![b'v'; 10]),
                timestamp_ms: ts + i as i64,
                ..Default::default()
            })
            .collect();
        let mut b = build_batch(&recs).to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        b
    }

    #[test]
    fn walk_stops_at_an_offset_gap_and_at_a_torn_tail() {
        let disk = MemStorage::new();
        let a = batch_at(10, 2, 5);
        let b = batch_at(13, 1, 5); // 12 is missing
        let mut data = a.clone();
        data.extend_from_slice(&b);
        disk.set_contents("f", data.clone());
        let mut seen = vec![];
        let end = walk(&disk, "f", 10, 0, data.len() as u64, 10, true, false, |b| {
            seen.push(b.base_offset);
            true
        })
        .unwrap();
        assert_eq!(seen, vec![10]);
        assert_eq!((end.pos, end.next_offset), (a.len() as u64, 12));
        assert!(end.problem.unwrap().contains("base offset 13"));

        let torn = &data[..a.len() + 20];
        disk.set_contents("f", torn.to_vec());
        let end = walk(
            &disk,
            "f",
            10,
            0,
            torn.len() as u64,
            10,
            true,
            false,
            |_| true,
        )
        .unwrap();
        assert_eq!(end.pos, a.len() as u64);
        assert!(end.problem.is_some());
    }

    #[test]
    fn tracking_follows_the_index_interval() {
        let mut seg = Segment::empty("d", 0);
        let mut pos = 0;
        let mut offset = 0;
        let mut entries = 0;
        for i in 0..20 {
            let len = 100;
            let b = WalkedBatch {
                pos,
                len,
                base_offset: offset,
                last_offset: offset + 1,
                max_timestamp: i,
                attributes: 0,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
            };
            let update = seg.track_batch(&b, 250);
            entries += update.offset_entry.is_some() as usize;
            pos += len;
            offset += 2;
        }
        // Entries at byte 300, 600, ... : one every three batches after the first.
        assert_eq!(entries, 6);
        assert_eq!(seg.offset_index.len(), 6);
        assert_eq!(seg.time_index.len(), 6);
        assert_eq!(seg.scan_start_for(13), (600, 12));
        assert_eq!(seg.scan_start_for(0), (0, 0));
    }
}
