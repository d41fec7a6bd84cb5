//! The node's partition logs as files: opening and recovering each log with its producer
//! state, removing what deleted topics left behind, and the two periodic jobs that keep the
//! logs tidy (the log cleaner and the recovery-point checkpoints).

use super::{Node, OpenError};
use crate::broker::idempotence;
use crate::bugs::PlantedBug;
use crate::ids::PartitionId;
use crate::log::{LogConfig, PartitionLog};
use crate::metadata::TopicMeta;
use crate::partition::{LoadedLog, Partition, ProduceLimits};
use crate::time::Instant;

impl Node {
    /// Opens (or creates) the logs of every partition of `topic`.
    pub(crate) fn open_topic_logs(&mut self, topic: &TopicMeta) -> Result<(), OpenError> {
        for index in 0..topic.partitions {
            self.open_partition(topic, index)?;
        }
        Ok(())
    }

    /// Opens partition `index` of `topic` from storage and rebuilds its idempotent
    /// producers, for a reopen after running out of space: a log whose recovery still found
    /// no room is an error here (the reopen is retried at the next disk measurement).
    pub(crate) fn load_partition_log(
        &self,
        topic: &TopicMeta,
        index: i32,
    ) -> Result<LoadedLog, OpenError> {
        let (loaded, out_of_space) = self.recover_partition_log(topic, index)?;
        match out_of_space {
            None => Ok(loaded),
            Some(why) => Err(OpenError::Log {
                dir: partition_dir(&topic.name, index),
                source: crate::log::LogError::Storage(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    why,
                )),
            }),
        }
    }

    /// Opens partition `index` of `topic` from storage and rebuilds its idempotent
    /// producers: what a start and a reopen after running out of space share. With it, why
    /// recovery ran out of space (`RecoveryReport::out_of_space`), if it did: the log must
    /// then take no writes until it is reopened with room.
    pub(crate) fn recover_partition_log(
        &self,
        topic: &TopicMeta,
        index: i32,
    ) -> Result<(LoadedLog, Option<String>), OpenError> {
        let dir = partition_dir(&topic.name, index);
        let mut log_config = topic_log_config(&self.config.log, topic);
        log_config.skip_recovery_crc = self.planted(PlantedBug::SkipRecoveryChecksum);
        let open_error = |source| OpenError::Log {
            dir: dir.clone(),
            source,
        };
        let (mut log, report) =
            PartitionLog::open(self.storage.clone(), &dir, log_config).map_err(open_error)?;
        if self.planted(PlantedBug::ReuseOffsetAfterTruncation)
            && log.recovery_point() < log.log_end_offset()
        {
            let to = log.recovery_point().max(log.log_start_offset());
            log.truncate_to(to).map_err(open_error)?;
        }
        if report.truncated_bytes > 0 {
            tracing::warn!(%dir, bytes = report.truncated_bytes, reason = ?report.reason, "truncated a torn or corrupt log tail");
        }
        // Idempotent producers as the recovered log left them (broker/idempotence.rs).
        let (producers, producer_snapshot) =
            idempotence::rebuild_producers(&mut log, self.config.planted_bug)
                .map_err(open_error)?;
        let loaded = LoadedLog {
            log,
            producers,
            producer_snapshot,
        };
        Ok((loaded, report.out_of_space))
    }

    pub(crate) fn open_partition(
        &mut self,
        topic: &TopicMeta,
        index: i32,
    ) -> Result<(), OpenError> {
        // A start on a full disk: a log whose recovery found no room opens as out of space,
        // serving what it holds, and takes writes once it is reopened with room
        // (broker/disk.rs `reopen_out_of_space_logs`).
        let (loaded, _) = self.recover_partition_log(topic, index)?;
        let log_id = self.partitions.next_log_id();
        let key = PartitionId {
            topic: topic.id,
            index,
        };
        let p = Partition::open(
            key,
            &topic.name,
            log_id,
            loaded,
            ProduceLimits::of(&self.config, topic),
        );
        self.partitions.insert(p);
        Ok(())
    }

    /// Removes partition directories that no topic owns: what a topic deletion cut short by a
    /// crash leaves behind (the metadata change is durable before any file is removed).
    pub(crate) fn remove_orphan_logs(&mut self) -> Result<(), OpenError> {
        for entry in self.storage.list("")? {
            if entry == crate::controller::METADATA_LOG_DIR {
                continue;
            }
            let Some((topic, index)) = entry.rsplit_once('-') else {
                continue;
            };
            let Ok(index) = index.parse::<i32>() else {
                continue;
            };
            let owned = self
                .metadata
                .topics
                .get(topic)
                .is_some_and(|t| index >= 0 && index < t.partitions);
            if !owned {
                tracing::info!(dir = %entry, "removing the files of a deleted partition");
                for file in self.storage.list(&entry)? {
                    self.storage.remove(&format!("{entry}/{file}"))?;
                }
            }
        }
        Ok(())
    }

    // --- Log cleaner (log/compaction.rs): a timer and one call per compacted partition. ---

    pub(crate) fn log_cleaner_deadline(&self) -> Instant {
        self.now + std::time::Duration::from_millis(self.config.log_cleaner_interval_ms.max(1))
    }

    /// The partitions whose topic has `cleanup.policy=compact`, with their topic configs.
    pub(crate) fn compacted_partitions(
        &self,
    ) -> impl Iterator<Item = (&PartitionId, &Partition, &TopicMeta)> {
        self.partitions.iter().filter_map(|(key, p)| {
            let topic = self.metadata.topics.get(&p.topic)?;
            crate::config::compacts(&topic.configs).then_some((key, p, topic))
        })
    }

    /// Whether the cleaner's timer needs a wake-up: only while some compacted partition
    /// has a sealed segment (so an idle node with small logs sleeps).
    pub(crate) fn log_cleaner_wanted(&self) -> bool {
        self.compacted_partitions()
            .any(|(_, p, _)| p.log.segment_count() > 1 && p.takes_writes())
    }

    /// Cleans one segment of each compacted partition. A failure is logged; a storage
    /// failure also put the log in its failed state, which produce reports.
    pub(crate) fn run_log_cleaner(&mut self) {
        if self.disk.is_low() {
            // Compaction writes a segment's survivors before it drops the old one: it needs
            // room first. Retention, which only frees, keeps running.
            return;
        }
        let now_ms = self.now.as_millis();
        let due: Vec<(PartitionId, i64)> = self
            .compacted_partitions()
            .filter(|(_, p, _)| p.log.segment_count() > 1 && p.takes_writes())
            .map(|(key, _, topic)| {
                let retention =
                    crate::config::int_config(&topic.configs, "delete.retention.ms", 86_400_000);
                (*key, retention)
            })
            .collect();
        for (key, delete_retention_ms) in due {
            let Some(p) = self.partitions.get_mut(&key) else {
                continue;
            };
            match p.log.compact_one(now_ms, delete_retention_ms) {
                Ok(report) if report.records_removed > 0 => {
                    tracing::info!(topic = %p.topic, partition = key.index, ?report, "compacted a segment");
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(held_back) =
                        self.throttle
                            .borrow_mut()
                            .allow("compaction", &p.topic, self.now)
                    {
                        tracing::warn!(topic = %p.topic, partition = key.index, error = %e, held_back, "compaction failed");
                    }
                }
            }
        }
    }

    // --- Log checkpoints (log/mod.rs `PartitionLog::checkpoint`): a timer. ---

    pub(crate) fn log_checkpoint_deadline(&self) -> Instant {
        self.now + std::time::Duration::from_millis(self.config.log_checkpoint_interval_ms.max(1))
    }

    /// Whether the checkpoint timer needs a wake-up: only while some log's checkpoint is
    /// behind (so an idle node sleeps).
    pub(crate) fn log_checkpoint_wanted(&self) -> bool {
        self.partitions.values().any(|p| p.log.checkpoint_stale())
    }

    /// Writes the checkpoint of every log whose recovery point or log start moved since
    /// its last one: one durable replace per such log per round, none per append.
    pub(crate) fn run_log_checkpoints(&mut self) {
        for p in self.partitions.values_mut() {
            p.checkpoint();
        }
    }
}

/// The directory of a partition's log: Kafka's `{topic}-{partition}` naming.
pub fn partition_dir(topic: &str, index: i32) -> String {
    format!("{topic}-{index}")
}

/// A topic's log settings: the node's defaults overridden by the topic's configs.
pub(crate) fn topic_log_config(base: &LogConfig, topic: &TopicMeta) -> LogConfig {
    let configs = &topic.configs;
    let mut log = *base;
    log.segment_bytes =
        crate::config::int_config(configs, "segment.bytes", log.segment_bytes as i64).max(14)
            as u64;
    log.index_interval_bytes = crate::config::int_config(
        configs,
        "index.interval.bytes",
        log.index_interval_bytes as i64,
    )
    .max(0) as u64;
    // Time and size limits (log/retention.rs); the values were validated by config.rs.
    log.segment_ms = crate::config::int_config(configs, "segment.ms", log.segment_ms);
    log.retention_ms = crate::config::int_config(configs, "retention.ms", log.retention_ms);
    log.retention_bytes =
        crate::config::int_config(configs, "retention.bytes", log.retention_bytes);
    log.compacted = crate::config::compacts(configs);
    log.gaps_allowed = log.compacted || topic.compacted_once;
    log.cleanup_delete = crate::config::deletes(configs);
    if let Some(t) = configs.get("message.timestamp.type") {
        log.message_timestamp_type = if t == "LogAppendTime" {
            crate::log::TimestampType::LogAppendTime
        } else {
            crate::log::TimestampType::CreateTime
        };
    }
    log
}
