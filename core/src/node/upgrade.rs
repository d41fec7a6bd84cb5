//! A single node's data directory upgraded in place to a cluster broker: the first start
//! with `--voters` over a directory that holds a metadata file imports its topics into the
//! cluster's metadata log, each with its own id and every partition on this broker, and
//! reserves the producer ids it handed out, so that nothing it acknowledged is lost or
//! shadowed. Until the controller has committed them, the topics are not served; once it
//! has, the files that only a single node reads (the metadata file, the producer-id file)
//! are removed, so a later restart does not bring back a topic the cluster deleted since.
//!
//! Each partition directory is stamped with its topic id (`partition.metadata`) before
//! anything else, which is what lets the broker open it as the imported topic's. A topic
//! whose name the cluster already uses for another topic is not imported; its files are
//! kept, never served, and a line says so.

use super::{Node, OpenError};
use crate::api::TopicId;
use crate::controller::MetadataRecord;
use crate::metadata::{Metadata, TopicMeta, METADATA_FILE};
use crate::producer::PRODUCER_ID_FILE;
use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What is still to import.
#[derive(Debug)]
pub(crate) struct Import {
    topics: BTreeMap<String, TopicMeta>,
    /// Producer ids below this were handed out by the single node.
    producer_floor: i64,
    /// Until when the last round of proposals is awaited before asking again.
    asked_until: Option<Instant>,
    /// Ids of imported topics whose name the cluster holds under another id: their
    /// directories are never removed as an older topic's (`protects`).
    pub(crate) conflicts: BTreeSet<TopicId>,
}

impl Import {
    /// Whether the directory stamped with `id` holds a single node's data kept back.
    pub(crate) fn protects(&self, id: TopicId) -> bool {
        self.conflicts.contains(&id) || self.topics.values().any(|t| t.id == id)
    }

    /// Whether topics or producer ids are still to import (not only conflicts kept back).
    pub(crate) fn pending(&self) -> bool {
        !self.topics.is_empty() || self.producer_floor > 0
    }

    /// The producer ids the cluster must not hand out: all below this.
    pub(crate) fn producer_floor(&self) -> i64 {
        self.producer_floor
    }
}

impl Node {
    /// At open, in a cluster: stamps the partition directories of `single_node`'s topics
    /// with their ids and keeps the topics to import once this broker is registered.
    pub(crate) fn stage_import(&mut self, single_node: Metadata) -> Result<(), OpenError> {
        let floor = self.stored_producer_id_block_end()?;
        if single_node.topics.is_empty() && floor == 0 {
            return Ok(());
        }
        for t in single_node.topics.values() {
            for index in 0..t.partitions {
                self.stamp_partition_dir(t, index)?;
            }
        }
        tracing::info!(
            topics = single_node.topics.len(),
            "this data directory was a single node's: importing its topics into the cluster"
        );
        self.import = Some(Import {
            topics: single_node.topics,
            producer_floor: floor,
            asked_until: None,
            conflicts: BTreeSet::new(),
        });
        Ok(())
    }

    /// After every change to the metadata image and at each registration round: crosses
    /// off what the cluster holds, proposes the rest, and finishes the import.
    pub(crate) fn drive_import(&mut self) {
        if self.import.is_none() || !self.is_registered() {
            return;
        }
        let Some(q) = &self.quorum else { return };
        let image = q.image();
        let next_producer_id = image.next_producer_id;
        let mut import = self.import.take().expect("checked");
        let mut conflicts = Vec::new();
        import
            .topics
            .retain(|name, t| match image.topics.get(name) {
                Some(held) if held.id == t.id => false,
                Some(_) => {
                    conflicts.push(t.clone());
                    false
                }
                None => true,
            });
        for t in conflicts {
            tracing::error!(topic = %t.name, "the cluster already has a topic of this name: this broker's own data for it is kept on disk but not served");
            import.conflicts.insert(t.id);
            self.import_conflict_topics.push(t);
        }
        let floor_met = next_producer_id >= import.producer_floor;
        if import.topics.is_empty() && floor_met {
            // Topics kept back stay in the metadata file, so a restart still protects
            // their directories; everything else the single node had is the cluster's now.
            if !import.conflicts.is_empty() {
                let kept = Metadata {
                    topics: self
                        .import_conflict_topics
                        .iter()
                        .map(|t| (t.name.clone(), t.clone()))
                        .collect(),
                };
                if let Err(e) = kept.save(self.storage.as_ref()) {
                    tracing::warn!(error = %e, "could not rewrite the metadata file of the topics kept back");
                    self.import = Some(import);
                    return;
                }
            }
            let files: &[&str] = if import.conflicts.is_empty() {
                &[METADATA_FILE, PRODUCER_ID_FILE]
            } else {
                &[PRODUCER_ID_FILE]
            };
            for &file in files {
                if let Err(e) = self.storage.remove(file) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!(%file, error = %e, "could not remove a single node's file after the import");
                    }
                }
            }
            tracing::info!("the single node's topics are now the cluster's");
            import.producer_floor = 0;
            if !import.conflicts.is_empty() {
                self.import = Some(import);
            }
            return;
        }
        if import.asked_until.is_none_or(|t| t <= self.now) {
            let me = self.config.node_id;
            // The producer ids went with this broker's registration.
            let mut records = Vec::new();
            for t in import.topics.values() {
                records.push(MetadataRecord::CreateTopic {
                    topic: t.clone(),
                    replicas: vec![vec![me]; t.partitions.max(0) as usize],
                });
            }
            for record in &records {
                if let Err((_, why)) = self.submit_to_controller(record) {
                    tracing::debug!(%why, "import deferred");
                }
            }
            import.asked_until = Some(self.now + Duration::from_secs(1));
        }
        self.import = Some(import);
    }
}
