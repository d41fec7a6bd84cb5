//! The partitions one node hosts: each by its id and by the log it writes, and which of them
//! have writes that no Flush has been asked for yet. The node's handlers find partitions
//! here; the bookkeeping that must stay in step (a log id per open log, no dirty mark for a
//! partition that is gone) is kept by this table alone.

use super::{LogId, Partition};
use crate::ids::PartitionId;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// How many partitions one [`PartitionTable::check`] visits: every one on a node of up to
/// this many, a rotating window on a bigger one, so that a debug build with 10,000
/// partitions does not spend O(partitions) on every input (and a long run still visits all).
pub const CHECK_WINDOW: usize = 512;

#[derive(Default)]
pub struct PartitionTable {
    by_id: BTreeMap<PartitionId, Partition>,
    by_log: BTreeMap<LogId, PartitionId>,
    /// Log ids are never reused within a node's run, so that a `Flushed` that arrives after
    /// its partition was removed (and maybe created again) finds nothing.
    next_log_id: u64,
    /// Partitions with writes no Flush has been asked for yet.
    dirty: BTreeSet<PartitionId>,
    /// Where the next check's window starts (after this id).
    check_cursor: Cell<Option<PartitionId>>,
}

impl PartitionTable {
    pub fn new() -> Self {
        PartitionTable {
            next_log_id: 1,
            ..Default::default()
        }
    }

    /// The id for the next log to open.
    pub fn next_log_id(&mut self) -> LogId {
        let id = LogId(self.next_log_id);
        self.next_log_id += 1;
        id
    }

    /// Adds `p` (replacing any partition of that id); marks it dirty if it holds writes past
    /// its high watermark (a recovered tail not yet known durable).
    pub fn insert(&mut self, p: Partition) {
        let id = p.id;
        if p.log.log_end_offset() > p.high_watermark.0 {
            self.dirty.insert(id);
        }
        self.by_log.insert(p.log_id, id);
        if let Some(old) = self.by_id.insert(id, p) {
            self.by_log.remove(&old.log_id);
        }
    }

    /// Removes a partition with its log id and dirty mark.
    pub fn remove(&mut self, id: &PartitionId) -> Option<Partition> {
        let p = self.by_id.remove(id)?;
        self.by_log.remove(&p.log_id);
        self.dirty.remove(id);
        Some(p)
    }

    pub fn get(&self, id: &PartitionId) -> Option<&Partition> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &PartitionId) -> Option<&mut Partition> {
        self.by_id.get_mut(id)
    }

    /// The partition that writes `log`, if it is still open.
    pub fn by_log(&self, log: LogId) -> Option<PartitionId> {
        self.by_log.get(&log).copied()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PartitionId, &Partition)> {
        self.by_id.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &Partition> {
        self.by_id.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Partition> {
        self.by_id.values_mut()
    }

    /// `id` has writes to flush (ignored for a partition not in the table).
    pub fn mark_dirty(&mut self, id: PartitionId) {
        if self.by_id.contains_key(&id) {
            self.dirty.insert(id);
        }
    }

    /// Every partition has something to flush or checkpoint (a clean shutdown).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.by_id.keys().copied());
    }

    /// `id` has nothing more to flush (its log failed).
    pub fn clear_dirty(&mut self, id: &PartitionId) {
        self.dirty.remove(id);
    }

    /// The dirty partitions, in id order, and no dirty marks left.
    pub fn take_dirty(&mut self) -> BTreeSet<PartitionId> {
        std::mem::take(&mut self.dirty)
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Asserts that the indexes agree and each partition's own invariants, with `each`
    /// for what the caller knows of a partition, over at most [`CHECK_WINDOW`] partitions
    /// (debug and simulation builds).
    pub fn check(&self, mut each: impl FnMut(&Partition)) {
        assert_eq!(
            self.by_log.len(),
            self.by_id.len(),
            "log id map out of sync"
        );
        let start = match self.check_cursor.get() {
            Some(after) if self.by_id.len() > CHECK_WINDOW => Bound::Excluded(after),
            _ => Bound::Unbounded,
        };
        let window = self
            .by_id
            .range((start, Bound::Unbounded))
            .chain(self.by_id.iter())
            .take(CHECK_WINDOW.min(self.by_id.len()));
        let mut last = None;
        for (id, p) in window {
            assert_eq!(&p.id, id, "partition keyed by another id");
            assert_eq!(
                self.by_log.get(&p.log_id),
                Some(id),
                "log id map out of sync"
            );
            assert!(p.log_id.0 < self.next_log_id, "a log id from the future");
            p.check();
            each(p);
            last = Some(*id);
        }
        self.check_cursor.set(last);
        if self.dirty.len() <= CHECK_WINDOW {
            assert!(
                self.dirty.iter().all(|id| self.by_id.contains_key(id)),
                "a dirty mark for a partition that is gone"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TopicId;
    use crate::log::{LogConfig, PartitionLog};
    use crate::metadata::TopicMeta;
    use crate::node::NodeConfig;
    use crate::partition::{LoadedLog, ProduceLimits};
    use crate::storage::MemStorage;
    use std::sync::Arc;

    fn open(table: &mut PartitionTable, storage: &Arc<MemStorage>, index: i32) -> PartitionId {
        let topic = TopicMeta::new("t", TopicId([1; 16]), 10_000, Default::default());
        let id = PartitionId {
            topic: topic.id,
            index,
        };
        let (log, _) =
            PartitionLog::open(storage.clone(), &format!("t-{index}"), LogConfig::default())
                .unwrap();
        let loaded = LoadedLog {
            log,
            producers: Default::default(),
            producer_snapshot: None,
        };
        let limits = ProduceLimits::of(&NodeConfig::default(), &topic);
        let log_id = table.next_log_id();
        table.insert(Partition::open(id, "t", log_id, loaded, limits));
        id
    }

    #[test]
    fn removal_takes_the_log_id_and_dirty_mark_with_it_and_log_ids_are_never_reused() {
        let storage = Arc::new(MemStorage::new());
        let mut table = PartitionTable::new();
        let a = open(&mut table, &storage, 0);
        let first_log = table.get(&a).unwrap().log_id;
        table.mark_dirty(a);
        assert!(table.has_dirty());
        assert!(table.remove(&a).is_some());
        assert!(!table.has_dirty(), "no dirty mark outlives its partition");
        assert_eq!(table.by_log(first_log), None);
        table.mark_dirty(a);
        assert!(
            !table.has_dirty(),
            "a partition that is gone cannot be marked"
        );
        let again = open(&mut table, &storage, 0);
        assert_eq!(again, a);
        assert_ne!(table.get(&a).unwrap().log_id, first_log);
        assert_eq!(
            table.by_log(first_log),
            None,
            "a late Flushed finds nothing"
        );
        table.check(|_| {});
    }

    #[test]
    fn a_big_table_is_checked_a_window_at_a_time_and_every_partition_in_turn() {
        let storage = Arc::new(MemStorage::new());
        let mut table = PartitionTable::new();
        let count = CHECK_WINDOW as i32 * 2 + 7;
        for index in 0..count {
            open(&mut table, &storage, index);
        }
        let mut seen = BTreeSet::new();
        for round in 0..3 {
            let mut visited = 0;
            table.check(|p| {
                visited += 1;
                seen.insert(p.id.index);
            });
            assert_eq!(visited, CHECK_WINDOW, "round {round}");
        }
        assert_eq!(
            seen.len(),
            count as usize,
            "three windows cover every partition"
        );
    }
}
