//! Group coordination requests: check that this node coordinates the group (it leads the
//! group's `__consumer_offsets` partition, whose offsets are loaded), hand the request to
//! the coordinator (`crate::group`), write committed offsets and tombstones to that
//! partition, and release their answers once `Flushed` says they are durable.
//!
//! The node creates `__consumer_offsets` on first use, with `offsets_topic_num_partitions`
//! partitions and `cleanup.policy=compact` (allowed for this internal topic only), and at
//! open reads every one of its partitions to rebuild the offsets cache.

use super::WriteClass;
use crate::api::*;
use crate::error::ErrorCode;
use crate::group::coordinator::{join_error, set_slot_error, PlannedWrite};
use crate::group::offsets::{self, DecodedKey, GroupRecord, Mutation};
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::ids::Offset;
use crate::node::{Node, OpenError};
use crate::partition::{AppendFailure, Waiter};
use crate::record::{split_batches, verify_batch};
use std::collections::{BTreeMap, BTreeSet};

/// What a transactional producer is told until Keel has transactions.
pub(super) const TRANSACTIONS_UNSUPPORTED: &str = "Keel does not support transactions yet: \
    unset transactional.id (an idempotent producer, enable.idempotence=true, works)";

/// Bytes read at a time when loading an offsets partition.
const LOAD_READ_BYTES: usize = 1 << 20;

impl Node {
    /// Serves one group request (the dispatch arm in `handle_request` sends them all here).
    pub(crate) fn handle_group_request(&mut self, conn: ConnId, id: RequestId, request: Request) {
        let now = self.now;
        match request {
            Request::FindCoordinator(r) => {
                let response = self.find_coordinator(conn, r);
                self.respond(conn, id, Response::FindCoordinator(response));
            }
            Request::JoinGroup(r) => match self.coordinated_partition(&r.group_id, false) {
                Err(code) => {
                    let response = join_error(&r.member_id, code);
                    self.respond(conn, id, Response::JoinGroup(response));
                }
                Ok(_) => self.group.join_group(now, conn, id, r),
            },
            Request::SyncGroup(r) => match self.coordinated_partition(&r.group_id, false) {
                Err(code) => {
                    // A loading coordinator has lost the rebalance in progress: rejoin.
                    let code = if code == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS {
                        ErrorCode::REBALANCE_IN_PROGRESS
                    } else {
                        code
                    };
                    let response = SyncGroupResponse {
                        error_code: code,
                        ..Default::default()
                    };
                    self.respond(conn, id, Response::SyncGroup(response));
                }
                Ok(_) => self.group.sync_group(now, conn, id, r),
            },
            Request::Heartbeat(r) => {
                let response = match self.coordinated_partition(&r.group_id, false) {
                    // Kafka answers heartbeats blindly while loading.
                    Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS) => HeartbeatResponse::default(),
                    Err(code) => HeartbeatResponse {
                        throttle_time_ms: 0,
                        error_code: code,
                    },
                    Ok(_) => self.group.heartbeat(now, &r),
                };
                self.respond(conn, id, Response::Heartbeat(response));
            }
            Request::LeaveGroup(r) => {
                let response = match self.coordinated_partition(&r.group_id, false) {
                    Err(code) => LeaveGroupResponse {
                        error_code: code,
                        ..Default::default()
                    },
                    Ok(_) => self.group.leave_group(now, &r),
                };
                self.respond(conn, id, Response::LeaveGroup(response));
            }
            Request::OffsetCommit(r) => self.offset_commit(conn, id, r),
            Request::OffsetFetch(r) => {
                let mut response = OffsetFetchResponse::default();
                for g in &r.groups {
                    let group = match self.coordinated_partition(&g.group_id, true) {
                        // Every requested partition carries the group's error too: OffsetFetch
                        // v1 has no group-level error field, so that is where clients look.
                        Err(code) => OffsetFetchResponseGroup {
                            group_id: g.group_id.clone(),
                            topics: g
                                .topics
                                .iter()
                                .flatten()
                                .map(|t| OffsetFetchResponseTopic {
                                    name: t.name.clone(),
                                    partitions: t
                                        .partition_indexes
                                        .iter()
                                        .map(|&i| OffsetFetchResponsePartition {
                                            partition_index: i,
                                            committed_offset: -1,
                                            committed_leader_epoch: -1,
                                            metadata: Some(String::new()),
                                            error_code: code,
                                        })
                                        .collect(),
                                })
                                .collect(),
                            error_code: code,
                        },
                        Ok(_) => self.group.fetch_offsets(g, r.require_stable),
                    };
                    response.groups.push(group);
                }
                self.respond(conn, id, Response::OffsetFetch(response));
            }
            Request::ListGroups(r) => {
                let led = self.led_offsets_partitions();
                let partitions = self.offsets_partition_count().unwrap_or(1);
                let groups = self
                    .group
                    .list_groups(&r, |gid| led.contains(&partition_for(gid, partitions)));
                let response = ListGroupsResponse {
                    throttle_time_ms: 0,
                    error_code: if self.group.any_loading() {
                        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                    } else {
                        ErrorCode::NONE
                    },
                    groups,
                };
                self.respond(conn, id, Response::ListGroups(response));
            }
            Request::DescribeGroups(r) => {
                let mut response = DescribeGroupsResponse::default();
                for gid in &r.groups {
                    let described = match self.coordinated_partition(gid, true) {
                        Err(code) => DescribedGroup {
                            error_code: code,
                            group_id: gid.clone(),
                            authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                            ..Default::default()
                        },
                        Ok(_) => self
                            .group
                            .describe_group(gid, r.include_authorized_operations),
                    };
                    response.groups.push(described);
                }
                self.respond(conn, id, Response::DescribeGroups(response));
            }
            Request::DeleteGroups(r) => self.delete_groups(conn, id, r),
            Request::OffsetDelete(r) => self.offset_delete(conn, id, r),
            other => unreachable!("not a group request: {other:?}"),
        }
    }

    /// Expires the coordinator's deadlines and moves its ready answers to the outputs.
    pub(crate) fn poll_group(&mut self) {
        self.group.expire(self.now);
        while let Some((conn, id, response)) = self.group.poll_response() {
            self.respond(conn, id, response);
        }
        while let Some(record) = self.group.poll_store() {
            self.store_group(record);
        }
        while let Some((gid, tombstones)) = self.group.poll_expired() {
            self.write_expired_offsets(&gid, tombstones);
        }
    }

    /// Appends the tombstones of a group's expired offsets; the coordinator forgets the
    /// offsets once they are durable. A failure is logged and retried at the next cleanup.
    fn write_expired_offsets(&mut self, gid: &str, tombstones: Vec<Mutation>) {
        let Some(count) = self.offsets_partition_count() else {
            return;
        };
        let partition = partition_for(gid, count);
        match self.plan_offsets_write(partition, tombstones, Vec::new()) {
            Ok(write) => self.group.track_write(write),
            Err((code, _)) => {
                tracing::warn!(group = %gid, partition, error = %code, "expired offsets were not deleted")
            }
        }
    }

    /// Appends a group's membership (or its tombstone) to the group's offsets partition.
    /// Nobody waits for it: a failure is logged, and a restart then resumes the group from
    /// its previous record, whose members rejoin.
    fn store_group(&mut self, record: GroupRecord) {
        let Some(count) = self.offsets_partition_count() else {
            return;
        };
        let partition = partition_for(&record.group, count);
        let batch = offsets::build_group_batch(&record, self.now.as_millis());
        if let Err(code) = self.append_offsets_batch(partition, batch) {
            if let Some(held_back) =
                self.throttle
                    .borrow_mut()
                    .allow("group-store", &record.group, self.now)
            {
                tracing::warn!(group = %record.group, partition, error = %code, held_back, "the group's membership was not stored");
            }
        }
    }

    /// Parks the coordinator's write to offsets partition `partition` until the partition
    /// commits up to `needed` (node/mod.rs `on_flushed` tells the coordinator then).
    fn wait_for_offsets_write(&mut self, partition: i32, needed: i64) {
        let wait = self.next_wait_id();
        if let Some(p) = self.partition_named_mut(OFFSETS_TOPIC, partition) {
            // Always above the high watermark: appended just now, or loaded past it.
            let parked = p.wait_for(Offset(needed), Waiter::OffsetsWrite(wait));
            debug_assert!(parked, "an offsets write at {needed} is already committed");
        }
    }

    /// `__consumer_offsets` partition `partition` stopped taking writes.
    pub(crate) fn offsets_partition_failed(&mut self, partition: i32) {
        self.group.on_partition_failed(partition);
    }

    /// Creates `__consumer_offsets` if it does not exist; returns its partition count.
    pub(crate) fn ensure_offsets_topic(&mut self) -> Result<i32, ErrorCode> {
        if let Some(n) = self.offsets_partition_count() {
            return Ok(n);
        }
        let partitions = self.config.group.offsets_topic_num_partitions.max(1);
        let segment_bytes = self
            .config
            .group
            .offsets_topic_segment_bytes
            .clamp(14, i32::MAX as i64);
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "producer".to_string()),
            ("segment.bytes".to_string(), segment_bytes.to_string()),
        ]);
        match self.create_topic(OFFSETS_TOPIC, partitions, configs) {
            Ok(_) => Ok(partitions),
            Err((code, message)) => {
                if let Some(held_back) =
                    self.throttle
                        .borrow_mut()
                        .allow("offsets-topic", "", self.now)
                {
                    tracing::error!(?code, %message, held_back, "could not create {OFFSETS_TOPIC}");
                }
                Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
        }
    }

    /// Rebuilds the offsets cache at open from every `__consumer_offsets` partition: records
    /// below the high watermark apply now, later ones once their flush completes.
    ///
    /// A partition that cannot be read whole (a storage error, or a batch the log refuses
    /// to serve because its CRC no longer matches: bit rot below the recovery point, which
    /// recovery trusts) is taken out of service like a log that failed: its groups get
    /// NOT_COORDINATOR rather than offsets that may be older than what was committed, and
    /// the node still starts. (The loader checks each CRC again, so that this holds whatever
    /// the read path checks.)
    pub(crate) fn load_group_offsets(&mut self) -> Result<(), OpenError> {
        let Some(count) = self.offsets_partition_count() else {
            return Ok(());
        };
        for partition in 0..count {
            let Some(key) = self.partition_id(OFFSETS_TOPIC, partition) else {
                continue;
            };
            let Some(p) = self.partitions.get_mut(&key) else {
                continue;
            };
            match read_offsets_partition(&p.log, p.high_watermark.0, partition) {
                Ok(loads) => {
                    let records: usize = loads.iter().map(|(m, g, _)| m.len() + g.len()).sum();
                    for (mutations, groups, needed) in loads {
                        if let Some(needed) = needed {
                            self.wait_for_offsets_write(partition, needed);
                        }
                        self.group.load(partition, mutations, groups, needed);
                    }
                    if records > 0 {
                        tracing::info!(partition, records, "loaded committed offsets");
                    }
                }
                Err(reason) => {
                    tracing::error!(partition, %reason, "{OFFSETS_TOPIC} cannot be loaded; its groups are unavailable");
                    p.fail(format!("committed offsets unreadable: {reason}"));
                    self.partitions.clear_dirty(&key);
                }
            }
        }
        Ok(())
    }

    fn offsets_partition_count(&self) -> Option<i32> {
        self.metadata
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.partitions)
    }

    /// The offsets partitions this node leads and can write: all healthy ones, on a single
    /// node.
    fn led_offsets_partitions(&self) -> BTreeSet<i32> {
        self.partitions
            .values()
            .filter(|p| p.topic == OFFSETS_TOPIC && p.takes_writes())
            .map(|p| p.id.index)
            .collect()
    }

    /// Kafka's `validateGroupStatus`: the group id is valid for the API (`allow_empty`:
    /// OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups accept ""), this node leads
    /// its offsets partition and has loaded it. Returns the partition.
    fn coordinated_partition(
        &mut self,
        group_id: &str,
        allow_empty: bool,
    ) -> Result<i32, ErrorCode> {
        if (group_id.is_empty() && !allow_empty) || !offsets::encodable(group_id) {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let count = self.ensure_offsets_topic()?;
        let partition = partition_for(group_id, count);
        let healthy = self
            .partition_named(OFFSETS_TOPIC, partition)
            .is_some_and(|p| p.takes_writes());
        if !healthy {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        if self.group.is_loading(partition) {
            return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        }
        Ok(partition)
    }

    /// Until Keel has a transaction coordinator, a transactional id is refused with
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53): of all FindCoordinator answers it is the
    /// one librdkafka, the Java client, kafka-python and KafkaJS treat as fatal at once, and
    /// librdkafka shows the application our `error_message` (KAFKA.md §5.2). Anything
    /// retriable (COORDINATOR_NOT_AVAILABLE, as before) keeps `init_transactions` spinning
    /// for its whole timeout. Logged once per connection, not once per retry.
    pub(crate) fn refuse_transactions(&mut self, conn: ConnId, transactional_id: &str, api: &str) {
        /// Bounds the warned-connections set; past it, warnings repeat rather than the set grow.
        const MAX_WARNED: usize = 10_000;
        if self.warned_transactional.len() >= MAX_WARNED {
            self.warned_transactional.clear();
        }
        if self.warned_transactional.insert(conn) {
            tracing::warn!(
                %transactional_id,
                api,
                "refused a transactional producer (TRANSACTIONAL_ID_AUTHORIZATION_FAILED): {TRANSACTIONS_UNSUPPORTED}"
            );
        }
    }

    fn find_coordinator(
        &mut self,
        conn: ConnId,
        request: FindCoordinatorRequest,
    ) -> FindCoordinatorResponse {
        let mut response = FindCoordinatorResponse::default();
        if request.key_type == COORDINATOR_KEY_TYPE_TRANSACTION {
            if let Some(key) = request.keys.first() {
                self.refuse_transactions(conn, key, "FindCoordinator");
            }
        }
        for key in request.keys {
            let error = |code: ErrorCode, message: &str| Coordinator {
                key: key.clone(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code: code,
                error_message: Some(message.to_string()),
            };
            let coordinator = match request.key_type {
                COORDINATOR_KEY_TYPE_GROUP => match self.ensure_offsets_topic() {
                    Err(code) => error(code, "the offsets topic could not be created"),
                    Ok(count) => {
                        let partition = partition_for(&key, count);
                        if self.led_offsets_partitions().contains(&partition) {
                            Coordinator {
                                key: key.clone(),
                                node_id: self.config.node_id.0,
                                host: self.config.advertised_host.clone(),
                                port: self.config.advertised_port,
                                error_code: ErrorCode::NONE,
                                error_message: None,
                            }
                        } else if let Some(b) = self.offsets_partition_leader(partition) {
                            // In a cluster: the broker that leads the group's partition.
                            Coordinator {
                                key: key.clone(),
                                node_id: b.id.0,
                                host: b.host.clone(),
                                port: b.port,
                                error_code: ErrorCode::NONE,
                                error_message: None,
                            }
                        } else {
                            error(
                                ErrorCode::COORDINATOR_NOT_AVAILABLE,
                                "the group's offsets partition is unavailable",
                            )
                        }
                    }
                },
                COORDINATOR_KEY_TYPE_TRANSACTION => error(
                    ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    TRANSACTIONS_UNSUPPORTED,
                ),
                other => error(
                    ErrorCode::INVALID_REQUEST,
                    &format!("unknown coordinator key type {other}"),
                ),
            };
            response.coordinators.push(coordinator);
        }
        response
    }

    fn offset_commit(&mut self, conn: ConnId, id: RequestId, request: OffsetCommitRequest) {
        let now = self.now;
        let partition = match self.coordinated_partition(&request.group_id, true) {
            Ok(p) => p,
            Err(code) => {
                let response = OffsetCommitResponse {
                    throttle_time_ms: 0,
                    topics: request
                        .topics
                        .iter()
                        .map(|t| OffsetCommitResponseTopic {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| OffsetCommitResponsePartition {
                                    partition_index: p.partition_index,
                                    error_code: code,
                                })
                                .collect(),
                        })
                        .collect(),
                };
                return self.respond(conn, id, Response::OffsetCommit(response));
            }
        };
        let metadata = &self.metadata;
        let exists = |topic: &str, index: i32| {
            metadata
                .topics
                .get(topic)
                .is_some_and(|t| index >= 0 && index < t.partitions)
        };
        let (response, mutations, slots) = self.group.commit_offsets(now, &request, exists);
        let mut response = Response::OffsetCommit(response);
        let writes = self.write_offsets(partition, mutations, slots, &mut response);
        self.group
            .await_writes(now, conn, id, response, writes.into_iter().collect());
    }

    fn delete_groups(&mut self, conn: ConnId, id: RequestId, request: DeleteGroupsRequest) {
        let now = self.now;
        let mut seen = BTreeSet::new();
        let names: Vec<String> = request
            .groups_names
            .into_iter()
            .filter(|g| seen.insert(g.clone()))
            .collect();
        let mut response = Response::DeleteGroups(DeleteGroupsResponse {
            throttle_time_ms: 0,
            results: names
                .iter()
                .map(|g| DeletableGroupResult {
                    group_id: g.clone(),
                    error_code: ErrorCode::NONE,
                })
                .collect(),
        });
        let mut writes = Vec::new();
        for (index, gid) in names.iter().enumerate() {
            let outcome = self
                .coordinated_partition(gid, true)
                .and_then(|p| self.group.delete_group(gid).map(|m| (p, m)));
            match outcome {
                Err(code) => set_slot_error(&mut response, (index, 0), code),
                Ok((partition, mutations)) => {
                    writes.extend(self.write_offsets(
                        partition,
                        mutations,
                        vec![(index, 0)],
                        &mut response,
                    ));
                }
            }
        }
        self.group.await_writes(now, conn, id, response, writes);
    }

    fn offset_delete(&mut self, conn: ConnId, id: RequestId, request: OffsetDeleteRequest) {
        let now = self.now;
        let partition = match self.coordinated_partition(&request.group_id, true) {
            Ok(p) => p,
            Err(code) => {
                let response = OffsetDeleteResponse {
                    error_code: code,
                    ..Default::default()
                };
                return self.respond(conn, id, Response::OffsetDelete(response));
            }
        };
        let metadata = &self.metadata;
        let exists = |topic: &str, index: i32| {
            metadata
                .topics
                .get(topic)
                .is_some_and(|t| index >= 0 && index < t.partitions)
        };
        let (response, mutations, slots) = self.group.delete_offsets(&request, exists);
        let mut response = Response::OffsetDelete(response);
        let writes = self.write_offsets(partition, mutations, slots, &mut response);
        self.group
            .await_writes(now, conn, id, response, writes.into_iter().collect());
    }

    /// Appends `mutations` to offsets partition `partition`; on success returns the write to
    /// wait for, on failure puts the error into `slots` of `response`.
    fn write_offsets(
        &mut self,
        partition: i32,
        mutations: Vec<Mutation>,
        slots: Vec<(usize, usize)>,
        response: &mut Response,
    ) -> Option<PlannedWrite> {
        if mutations.is_empty() {
            return None;
        }
        match self.plan_offsets_write(partition, mutations, slots) {
            Ok(write) => Some(write),
            Err((code, slots)) => {
                for slot in slots {
                    set_slot_error(response, slot, code);
                }
                None
            }
        }
    }

    /// Appends `mutations` to offsets partition `partition` if the coordinator can hold
    /// another write; the write to wait for, or the error with the `slots` it decides.
    fn plan_offsets_write(
        &mut self,
        partition: i32,
        mutations: Vec<Mutation>,
        slots: Vec<(usize, usize)>,
    ) -> Result<PlannedWrite, (ErrorCode, Vec<(usize, usize)>)> {
        if !self.group.can_accept_write() {
            return Err((ErrorCode::COORDINATOR_NOT_AVAILABLE, slots));
        }
        match self.append_offsets(partition, &mutations) {
            Ok(needed) => Ok(PlannedWrite {
                partition,
                needed,
                mutations,
                slots,
            }),
            Err(code) => Err((code, slots)),
        }
    }

    /// Appends one batch of offset records; returns the offset after it. Errors are what
    /// Kafka answers commits with: a log that cannot take writes means this node is not
    /// the coordinator, an oversized batch INVALID_COMMIT_OFFSET_SIZE.
    fn append_offsets(&mut self, partition: i32, mutations: &[Mutation]) -> Result<i64, ErrorCode> {
        let batch = offsets::build_batch(mutations, self.now.as_millis());
        self.append_offsets_batch(partition, batch)
    }

    /// Appends one batch to offsets partition `partition`; see [`Node::append_offsets`].
    fn append_offsets_batch(
        &mut self,
        partition: i32,
        batch: bytes::Bytes,
    ) -> Result<i64, ErrorCode> {
        let key = self
            .partition_id(OFFSETS_TOPIC, partition)
            .ok_or(ErrorCode::NOT_COORDINATOR)?;
        let now_ms = self.now.as_millis();
        let p = self
            .partitions
            .get_mut(&key)
            .ok_or(ErrorCode::NOT_COORDINATOR)?;
        if !p.takes_writes() {
            return Err(ErrorCode::NOT_COORDINATOR);
        }
        if batch.len() > p.limits.max_message_bytes {
            return Err(ErrorCode::INVALID_COMMIT_OFFSET_SIZE);
        }
        // Offset commits may use the reserve below the free-space floor (broker/disk.rs).
        if !self.disk.admits(WriteClass::Reserved) {
            return Err(super::disk::NO_SPACE);
        }
        match p.append(&batch, now_ms) {
            Ok(info) => {
                self.partitions.mark_dirty(key);
                let transition = self.disk.on_written(batch.len() as u64);
                super::disk::log_transition(&self.disk, transition);
                let needed = info.last_offset + 1;
                self.wait_for_offsets_write(partition, needed);
                Ok(needed)
            }
            Err(AppendFailure::OutOfSpace { error, .. }) => {
                tracing::warn!(partition, %error, "the disk is full: {OFFSETS_TOPIC} takes no writes until space is freed, then reopens");
                self.group.on_partition_failed(partition);
                Err(ErrorCode::NOT_COORDINATOR)
            }
            Err(AppendFailure::Failed(error)) => {
                tracing::error!(partition, %error, "appending to {OFFSETS_TOPIC} failed; the log takes no more writes");
                self.group.on_partition_failed(partition);
                Err(ErrorCode::NOT_COORDINATOR)
            }
        }
    }
}

/// One stored batch of `__consumer_offsets`: its offset mutations and group memberships,
/// and the offset that must be durable before they count (`None`: it already is).
type BatchLoad = (Vec<Mutation>, Vec<GroupRecord>, Option<i64>);

/// Every batch of one offsets partition, in log order.
fn read_offsets_partition(
    log: &crate::log::PartitionLog,
    durable: i64,
    partition: i32,
) -> Result<Vec<BatchLoad>, String> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut loads = Vec::new();
    while offset < end {
        let bytes = log
            .read(offset, LOAD_READ_BYTES, end)
            .map_err(|e| format!("reading at offset {offset}: {e}"))?;
        let (batches, _) = split_batches(&bytes);
        if batches.is_empty() {
            return Err(format!("no whole batch at offset {offset}"));
        }
        for batch in batches {
            let header = verify_batch(&batch)
                .map_err(|e| format!("the batch holding offset {offset}: {e}"))?;
            let last = header.last_offset();
            if last < offset {
                continue;
            }
            offset = last + 1;
            let needed = (offset > durable).then_some(offset);
            let (mutations, groups) = batch_mutations(&batch, partition);
            loads.push((mutations, groups, needed));
        }
    }
    Ok(loads)
}

/// The offset mutations and group memberships in one stored batch of an offsets partition;
/// records of other types, or that do not decode, are skipped (with a warning for the
/// latter).
fn batch_mutations(batch: &[u8], partition: i32) -> (Vec<Mutation>, Vec<GroupRecord>) {
    let records = match offsets::batch_records(batch) {
        Ok(r) => r,
        Err(reason) => {
            tracing::warn!(partition, %reason, "skipping an unreadable batch of {OFFSETS_TOPIC}");
            return (Vec::new(), Vec::new());
        }
    };
    let mut out = Vec::new();
    let mut groups = Vec::new();
    for r in records {
        let Some(key) = r.key else {
            continue;
        };
        let key = match offsets::decode_key(&key) {
            Ok(DecodedKey::Offset(k)) => k,
            Ok(DecodedKey::Group(group)) => {
                match r.value.as_deref().map(offsets::decode_group_value) {
                    None => groups.push(GroupRecord { group, value: None }),
                    Some(Ok(v)) => groups.push(GroupRecord {
                        group,
                        value: Some(v),
                    }),
                    Some(Err(reason)) => tracing::warn!(
                        partition,
                        offset = r.offset,
                        reason,
                        "skipping an undecodable group metadata value"
                    ),
                }
                continue;
            }
            Ok(DecodedKey::Other(_)) => continue,
            Err(reason) => {
                tracing::warn!(
                    partition,
                    offset = r.offset,
                    reason,
                    "skipping an undecodable offsets key"
                );
                continue;
            }
        };
        let value = match r.value.as_deref().map(offsets::decode_value) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(reason)) => {
                tracing::warn!(
                    partition,
                    offset = r.offset,
                    reason,
                    "skipping an undecodable offsets value"
                );
                continue;
            }
        };
        out.push(Mutation { key, value });
    }
    (out, groups)
}
