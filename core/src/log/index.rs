//! A segment's two sparse indexes, held in memory and mirrored to its `.index` and
//! `.timeindex` files: offset → file position, and max timestamp so far → offset.
//!
//! Both are derived data: recovery rebuilds them from the log whenever they are not known
//! durable or fail [`OffsetIndex::parse`] / [`TimeIndex::parse`], so parsing only has to
//! reject files that could mislead a lookup (wrong size, entries out of order, positions or
//! offsets outside the segment), never to explain them.
//!
//! Entry semantics (Keel's own files, deliberately not Kafka-compatible):
//! - offset index entry `(rel, pos)`: the batch whose *base* offset is `segment base + rel`
//!   starts at byte `pos`. Appended for the first batch written once at least
//!   `index_interval_bytes` were written since the previous entry (or since the segment
//!   start), so a rebuild from the log reproduces the file byte for byte.
//! - time index entry `(ts, rel)`: every record in batches with base offset `<= base + rel`
//!   has a timestamp `<= ts`. Appended at an offset-index point when the segment's max
//!   timestamp has grown since the last entry, and once more when the segment is rolled.
//!   Timestamps and offsets are strictly increasing.

/// Bytes per offset index entry: relative offset u32 BE + position u32 BE.
pub const OFFSET_ENTRY_LEN: usize = 8;
/// Bytes per time index entry: timestamp i64 BE + relative offset u32 BE.
pub const TIME_ENTRY_LEN: usize = 12;

/// One offset index entry: the batch with base offset `segment base + rel` starts at `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub rel: u32,
    pub pos: u32,
}

/// One time index entry: batches up to base offset `segment base + rel` hold no timestamp
/// above `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub ts: i64,
    pub rel: u32,
}

/// The sparse offset index of one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

/// The sparse time index of one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl OffsetIndex {
    /// Parses an index file of a segment holding `size` bytes and offsets below
    /// `base + offset_span`. Rejects anything a lookup could be misled by.
    pub fn parse(bytes: &[u8], size: u64, offset_span: u64) -> Result<Self, &'static str> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY_LEN) {
            return Err("size is not a multiple of the entry size");
        }
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_LEN) {
            let rel = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let pos = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if pos as u64 >= size || rel as u64 >= offset_span {
                return Err("entry points beyond the segment");
            }
            if let Some(last) = index.entries.last() {
                if rel <= last.rel || pos <= last.pos {
                    return Err("entries are not strictly increasing");
                }
            }
            index.entries.push(OffsetEntry { rel, pos });
        }
        Ok(index)
    }

    /// Adds an entry after all existing ones.
    pub fn push(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.rel > last.rel && entry.pos > last.pos,
                "offset index entries must increase: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
    }

    /// The last entry whose relative offset is `<= rel`: where a scan for that offset starts.
    pub fn lookup(&self, rel: u32) -> Option<OffsetEntry> {
        let n = self.entries.partition_point(|e| e.rel <= rel);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries of batches at or after byte `pos` (the log is cut there).
    pub fn truncate_at_pos(&mut self, pos: u64) {
        let keep = self.entries.partition_point(|e| (e.pos as u64) < pos);
        self.entries.truncate(keep);
    }

    /// The file image of the whole index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_LEN);
        for e in &self.entries {
            out.extend_from_slice(&encode_offset_entry(*e));
        }
        out
    }
}

/// The file image of one offset index entry.
pub fn encode_offset_entry(e: OffsetEntry) -> [u8; OFFSET_ENTRY_LEN] {
    let mut b = [0u8; OFFSET_ENTRY_LEN];
    b[..4].copy_from_slice(&e.rel.to_be_bytes());
    b[4..].copy_from_slice(&e.pos.to_be_bytes());
    b
}

impl TimeIndex {
    /// Parses a time index file of a segment whose offsets lie below `base + offset_span`.
    pub fn parse(bytes: &[u8], offset_span: u64) -> Result<Self, &'static str> {
        if !bytes.len().is_multiple_of(TIME_ENTRY_LEN) {
            return Err("size is not a multiple of the entry size");
        }
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(TIME_ENTRY_LEN) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let ts = i64::from_be_bytes(ts);
            let rel = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if rel as u64 >= offset_span {
                return Err("entry points beyond the segment");
            }
            if let Some(last) = index.entries.last() {
                if ts <= last.ts || rel <= last.rel {
                    return Err("entries are not strictly increasing");
                }
            }
            index.entries.push(TimeEntry { ts, rel });
        }
        Ok(index)
    }

    /// Adds an entry after all existing ones.
    pub fn push(&mut self, entry: TimeEntry) {
        if let Some(last) = self.entries.last() {
            assert!(
                entry.ts > last.ts && entry.rel > last.rel,
                "time index entries must increase: {last:?} then {entry:?}"
            );
        }
        self.entries.push(entry);
    }

    /// The last entry whose timestamp is strictly below `ts`: every record up to and
    /// including its batch is older than `ts`, so a search for `ts` may start there.
    pub fn lookup_below(&self, ts: i64) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.ts < ts);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    /// The last entry for a batch at or before relative offset `rel`: its timestamp bounds
    /// every record up to it.
    pub fn lookup_by_rel(&self, rel: u32) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.rel <= rel);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries for batches with relative base offset `>= rel` (the log is cut there).
    pub fn truncate_at_rel(&mut self, rel: u64) {
        let keep = self.entries.partition_point(|e| (e.rel as u64) < rel);
        self.entries.truncate(keep);
    }

    /// The file image of the whole index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_ENTRY_LEN);
        for e in &self.entries {
            out.extend_from_slice(&encode_time_entry(*e));
        }
        out
    }
}

/// The file image of one time index entry.
pub fn encode_time_entry(e: TimeEntry) -> [u8; TIME_ENTRY_LEN] {
    let mut b = [0u8; TIME_ENTRY_LEN];
    b[..8].copy_from_slice(&e.ts.to_be_bytes());
    b[8..].copy_from_slice(&e.rel.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trips_and_looks_up_the_floor_entry() {
        let mut idx = OffsetIndex::default();
        idx.push(OffsetEntry { rel: 5, pos: 100 });
        idx.push(OffsetEntry { rel: 9, pos: 300 });
        let parsed = OffsetIndex::parse(&idx.encode(), 1000, 20).unwrap();
        assert_eq!(parsed, idx);
        assert_eq!(idx.lookup(4), None);
        assert_eq!(idx.lookup(5), Some(OffsetEntry { rel: 5, pos: 100 }));
        assert_eq!(idx.lookup(8), Some(OffsetEntry { rel: 5, pos: 100 }));
        assert_eq!(idx.lookup(100), Some(OffsetEntry { rel: 9, pos: 300 }));
    }

    #[test]
    fn insane_offset_index_files_are_refused() {
        let mut idx = OffsetIndex::default();
        idx.push(OffsetEntry { rel: 5, pos: 100 });
        idx.push(OffsetEntry { rel: 9, pos: 300 });
        let bytes = idx.encode();
        assert!(OffsetIndex::parse(&bytes[..bytes.len() - 1], 1000, 20).is_err());
        assert!(
            OffsetIndex::parse(&bytes, 300, 20).is_err(),
            "position beyond the segment"
        );
        assert!(
            OffsetIndex::parse(&bytes, 1000, 9).is_err(),
            "offset beyond the segment"
        );
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(
            OffsetIndex::parse(&swapped, 1000, 20).is_err(),
            "non-monotonic"
        );
    }

    #[test]
    fn time_index_lookup_is_strictly_below() {
        let mut idx = TimeIndex::default();
        idx.push(TimeEntry { ts: 10, rel: 3 });
        idx.push(TimeEntry { ts: 20, rel: 7 });
        assert_eq!(TimeIndex::parse(&idx.encode(), 8).unwrap(), idx);
        assert_eq!(idx.lookup_below(10), None);
        assert_eq!(idx.lookup_below(11), Some(TimeEntry { ts: 10, rel: 3 }));
        assert_eq!(idx.lookup_below(21), Some(TimeEntry { ts: 20, rel: 7 }));
        assert!(TimeIndex::parse(&idx.encode(), 7).is_err());
        idx.truncate_at_rel(7);
        assert_eq!(idx.len(), 1);
    }
}
