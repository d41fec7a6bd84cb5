//! Fetch sessions (KIP-227): a consumer that fetches many partitions opens a session with a
//! full fetch (epoch 0), then sends only the partitions whose fetch position changed
//! (incremental fetches, epochs 1, 2, ...), and gets back only the partitions with something
//! new: records, an error, or a moved high watermark or log start offset. The session keeps
//! each partition's fetch position and what was last said about it.
//!
//! Kafka's rules, as kept here (apache/kafka `FetchSession.scala`, `FetchManager.newContext`):
//! - session 0 with epoch -1: no session (fetches before v7, and librdkafka, send this);
//!   a known session with epoch -1 is closed and the fetch answered without one;
//! - epoch 0: a full fetch; the named session, if any, is closed and a new one opened with
//!   the fetched partitions, unless the cache is full of sessions used within
//!   [`MIN_EVICTION_MS`], in which case the answer carries session id 0 (no session);
//! - any other epoch: an incremental fetch of a known session (else
//!   FETCH_SESSION_ID_NOT_FOUND) at exactly its next epoch (else
//!   INVALID_FETCH_SESSION_EPOCH); its partitions are added or updated, the forgotten ones
//!   removed, and the epoch advances (wrapping from `i32::MAX` to 1);
//! - unlike Kafka, all sessions together remember at most [`MAX_CACHED_PARTITIONS`]
//!   partitions (a client picks how many, so memory would be its to choose): a full fetch
//!   that does not fit gets no session, and an incremental one that grows its session past
//!   the bound closes it (FETCH_SESSION_ID_NOT_FOUND, so the client starts over);
//! - an incremental answer lists the session's partitions with something new, and moves
//!   each of them to the end of the session's order, so that under `max_bytes` every
//!   partition gets its turn.
//!
//! Session ids are drawn from the node's seeded RNG, as Kafka draws random ones, so an id a
//! client kept from before a restart is unlikely to name someone else's session (and its
//! epoch would not match anyway).

use super::PartitionKey;
use crate::api::{
    FetchPartition, FetchRequest, FetchResponse, FetchTopic, FETCH_SESSION_FINAL_EPOCH,
    FETCH_SESSION_INITIAL_EPOCH,
};
use crate::bugs::{self, PlantedBug};
use crate::error::ErrorCode;
use crate::time::Instant;
use rand::RngCore;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const MAX_SESSIONS: usize = 1000;
/// Kafka's `min.incremental.fetch.session.eviction.ms` default: a session used more recently
/// is never evicted for a new one.
pub const MIN_EVICTION_MS: u64 = 120_000;
/// The most partitions all sessions may remember together (Kafka has no such bound): each
/// costs memory a client chooses, so past it a fetch gets no session rather than more.
pub const MAX_CACHED_PARTITIONS: usize = 1_000_000;

/// One partition of a session: where the client fetches from, and what it was last told.
#[derive(Debug, Clone, PartialEq)]
struct Cached {
    fetch: FetchPartition,
    high_watermark: Option<i64>,
    log_start_offset: Option<i64>,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    /// Each partition with its place in the fetch order.
    partitions: BTreeMap<PartitionKey, (u64, Cached)>,
    /// The fetch order: place → partition. Moving a partition to the end gives it a new,
    /// higher place, so every change is logarithmic however many partitions there are.
    order: BTreeMap<u64, PartitionKey>,
    next_place: u64,
    last_used: Instant,
}

impl Session {
    fn new(now: Instant) -> Session {
        Session {
            next_epoch: 1,
            partitions: BTreeMap::new(),
            order: BTreeMap::new(),
            next_place: 0,
            last_used: now,
        }
    }

    /// Adds a partition at the end, or updates its fetch position where it is.
    fn upsert(&mut self, key: PartitionKey, fetch: FetchPartition) {
        match self.partitions.get_mut(&key) {
            Some((_, cached)) => cached.fetch = fetch,
            None => {
                let place = self.next_place;
                self.next_place += 1;
                self.order.insert(place, key.clone());
                self.partitions.insert(
                    key,
                    (
                        place,
                        Cached {
                            fetch,
                            high_watermark: None,
                            log_start_offset: None,
                        },
                    ),
                );
            }
        }
    }

    fn remove(&mut self, key: &PartitionKey) {
        if let Some((place, _)) = self.partitions.remove(key) {
            self.order.remove(&place);
        }
    }

    fn move_to_end(&mut self, key: &PartitionKey) {
        if let Some((place, _)) = self.partitions.get_mut(key) {
            self.order.remove(place);
            *place = self.next_place;
            self.order.insert(self.next_place, key.clone());
            self.next_place += 1;
        }
    }
}

/// What a fetch is to its session once resolved; carried with a parked fetch to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionContext {
    /// Answered in full, with session id 0.
    Sessionless,
    /// A full fetch that opened session `id`.
    Full { id: i32 },
    /// An incremental fetch of session `id`.
    Incremental { id: i32 },
}

/// The node's fetch sessions: owns each session's partitions, epochs and cached answers,
/// and the bound on how many there are.
#[derive(Debug)]
pub struct FetchSessions {
    sessions: BTreeMap<i32, Session>,
    /// (last used, id) of every session: the eviction order.
    by_use: BTreeSet<(Instant, i32)>,
    /// Partitions remembered by all sessions, and the bound on them.
    cached: usize,
    max_cached: usize,
    /// A simulator switch (see `crate::bugs`).
    planted: Option<PlantedBug>,
}

impl Default for FetchSessions {
    fn default() -> Self {
        FetchSessions {
            sessions: BTreeMap::new(),
            by_use: BTreeSet::new(),
            cached: 0,
            max_cached: MAX_CACHED_PARTITIONS,
            planted: None,
        }
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSessions {
    pub fn new(planted: Option<PlantedBug>) -> FetchSessions {
        FetchSessions {
            planted,
            ..FetchSessions::default()
        }
    }

    fn remove(&mut self, id: i32) {
        if let Some(s) = self.sessions.remove(&id) {
            self.by_use.remove(&(s.last_used, id));
            self.cached -= s.partitions.len();
        }
    }

    fn touch(&mut self, id: i32, now: Instant) {
        if let Some(s) = self.sessions.get_mut(&id) {
            self.by_use.remove(&(s.last_used, id));
            s.last_used = now;
            self.by_use.insert((now, id));
        }
    }

    /// Resolves a fetch against the sessions: the fetch to read (for an incremental one,
    /// every partition of its session) and its context, or the error that answers it.
    pub fn resolve(
        &mut self,
        mut request: FetchRequest,
        now: Instant,
        rng: &mut impl RngCore,
    ) -> Result<(FetchRequest, SessionContext), ErrorCode> {
        let (id, epoch) = (request.session.session_id, request.session.epoch);
        if epoch == FETCH_SESSION_FINAL_EPOCH {
            if id != 0 {
                self.remove(id);
            }
            return Ok((request, SessionContext::Sessionless));
        }
        if epoch == FETCH_SESSION_INITIAL_EPOCH {
            if id != 0 {
                self.remove(id);
            }
            let mut session = Session::new(now);
            for t in &request.topics {
                for p in &t.partitions {
                    session.upsert((t.name.clone(), p.partition_index), p.clone());
                }
            }
            let Some(new_id) = self.make_room(session.partitions.len(), now, rng) else {
                return Ok((request, SessionContext::Full { id: 0 }));
            };
            self.cached += session.partitions.len();
            self.sessions.insert(new_id, session);
            self.by_use.insert((now, new_id));
            return Ok((request, SessionContext::Full { id: new_id }));
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
        };
        if epoch != session.next_epoch {
            return Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH);
        }
        session.next_epoch = next_epoch(epoch);
        let before = session.partitions.len();
        let stale = bugs::active(self.planted, PlantedBug::FetchSessionKeepsStalePosition);
        for t in std::mem::take(&mut request.topics) {
            for p in t.partitions {
                let key = (t.name.clone(), p.partition_index);
                if stale && session.partitions.contains_key(&key) {
                    continue;
                }
                session.upsert(key, p);
            }
        }
        for t in &request.session.forgotten {
            for &index in &t.partitions {
                session.remove(&(t.name.clone(), index));
            }
        }
        // The session's partitions, consecutive ones of a topic under one entry.
        for key in session.order.values() {
            let fetch = session.partitions[key].1.fetch.clone();
            match request.topics.last_mut() {
                Some(last) if last.name == key.0 => last.partitions.push(fetch),
                _ => request.topics.push(FetchTopic {
                    name: key.0.clone(),
                    partitions: vec![fetch],
                }),
            }
        }
        let after = session.partitions.len();
        self.cached = self.cached - before + after;
        if self.cached > self.max_cached {
            // Past the bound: the session goes, and the client starts over with a full
            // fetch, which then gets no session.
            self.remove(id);
            return Err(ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
        }
        self.touch(id, now);
        Ok((request, SessionContext::Incremental { id }))
    }

    /// A new session id for a session of `partitions`, evicting least recently used
    /// sessions idle for [`MIN_EVICTION_MS`] while the cache has no slot or not enough
    /// partition budget; `None` if there is no room.
    fn make_room(
        &mut self,
        partitions: usize,
        now: Instant,
        rng: &mut impl RngCore,
    ) -> Option<i32> {
        if partitions > self.max_cached {
            return None;
        }
        while self.sessions.len() >= MAX_SESSIONS || self.cached + partitions > self.max_cached {
            let &(last_used, oldest) = self.by_use.first()?;
            if last_used + Duration::from_millis(MIN_EVICTION_MS) > now {
                return None;
            }
            self.remove(oldest);
        }
        loop {
            let id = (rng.next_u32() >> 1) as i32;
            if id != 0 && !self.sessions.contains_key(&id) {
                return Some(id);
            }
        }
    }

    /// Turns the full read of a fetch into its answer: records what the session's
    /// partitions were told and, for an incremental fetch, keeps only the partitions with
    /// something new, moving them to the end of the session's order.
    pub fn answer(
        &mut self,
        context: SessionContext,
        mut response: FetchResponse,
    ) -> FetchResponse {
        let (id, incremental) = match context {
            SessionContext::Sessionless => return response,
            SessionContext::Full { id } => (id, false),
            SessionContext::Incremental { id } => (id, true),
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            if incremental {
                // Evicted or closed while the fetch waited.
                return FetchResponse {
                    error_code: ErrorCode::FETCH_SESSION_ID_NOT_FOUND,
                    ..FetchResponse::default()
                };
            }
            return response;
        };
        response.session_id = id;
        let records_count = !bugs::active(self.planted, PlantedBug::IncrementalFetchDropsRecords);
        for t in &mut response.topics {
            let name = &t.name;
            t.partitions.retain(|p| {
                let key = (name.clone(), p.partition_index);
                let Some((_, cached)) = session.partitions.get_mut(&key) else {
                    return false;
                };
                let news = (records_count && !p.records.is_empty())
                    || !p.error_code.is_ok()
                    || cached.high_watermark != Some(p.high_watermark)
                    || cached.log_start_offset != Some(p.log_start_offset);
                cached.high_watermark = Some(p.high_watermark);
                cached.log_start_offset = Some(p.log_start_offset);
                if !incremental {
                    return true;
                }
                if news {
                    session.move_to_end(&key);
                }
                news
            });
        }
        if incremental {
            response.topics.retain(|t| !t.partitions.is_empty());
        }
        response
    }

    /// Invariants (debug and simulation builds).
    pub fn check(&self) {
        assert!(self.sessions.len() <= MAX_SESSIONS);
        assert!(self.cached <= self.max_cached);
        assert_eq!(
            self.cached,
            self.sessions
                .values()
                .map(|s| s.partitions.len())
                .sum::<usize>()
        );
        assert_eq!(self.sessions.len(), self.by_use.len());
        for (id, s) in &self.sessions {
            assert!(*id > 0);
            assert!(self.by_use.contains(&(s.last_used, *id)));
            debug_assert_eq!(s.partitions.len(), s.order.len());
            debug_assert!(s
                .partitions
                .iter()
                .all(|(key, (place, _))| s.order.get(place) == Some(key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        FetchForgottenTopic, FetchPartitionResponse, FetchSessionRequest, FetchTopicResponse,
    };
    use bytes::Bytes;
    use rand::SeedableRng;

    fn part(index: i32, offset: i64) -> FetchPartition {
        FetchPartition {
            partition_index: index,
            current_leader_epoch: -1,
            fetch_offset: offset,
            partition_max_bytes: 1000,
        }
    }

    fn request(id: i32, epoch: i32, parts: &[(&str, i32, i64)]) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &(t, p, o) in parts {
            match topics.last_mut() {
                Some(last) if last.name == t => last.partitions.push(part(p, o)),
                _ => topics.push(FetchTopic {
                    name: t.into(),
                    partitions: vec![part(p, o)],
                }),
            }
        }
        FetchRequest {
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 0,
            topics,
            session: FetchSessionRequest {
                session_id: id,
                epoch,
                forgotten: vec![],
            },
        }
    }

    fn fetched(r: &FetchRequest) -> Vec<(String, i32, i64)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.fetch_offset))
            })
            .collect()
    }

    /// A full read of `r` where partitions in `with_records` have data and every high
    /// watermark is `hw`.
    fn read(r: &FetchRequest, hw: i64, with_records: &[(&str, i32)]) -> FetchResponse {
        FetchResponse {
            topics: r
                .topics
                .iter()
                .map(|t| FetchTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| FetchPartitionResponse {
                            partition_index: p.partition_index,
                            high_watermark: hw,
                            last_stable_offset: hw,
                            log_start_offset: 0,
                            records: if with_records.contains(&(t.name.as_str(), p.partition_index))
                            {
                                Bytes::from_static(b"batch")
                            } else {
                                Bytes::new()
                            },
                            ..Default::default()
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn listed(r: &FetchResponse) -> Vec<(String, i32)> {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect()
    }

    #[test]
    fn a_session_answers_only_what_changed_and_rotates_its_partitions() {
        let mut sessions = FetchSessions::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let now = Instant::from_millis(1_000);
        let full = request(0, 0, &[("a", 0, 5), ("a", 1, 7), ("b", 0, 0)]);
        let (r, ctx) = sessions.resolve(full, now, &mut rng).unwrap();
        let SessionContext::Full { id } = ctx else {
            panic!("{ctx:?}")
        };
        assert!(id > 0);
        let answer = sessions.answer(ctx, read(&r, 10, &[("a", 0)]));
        assert_eq!(answer.session_id, id);
        assert_eq!(listed(&answer).len(), 3, "a full fetch lists everything");

        // Epoch 1: only a-0 moved on; the session reads all three from their positions.
        let (r, ctx) = sessions
            .resolve(request(id, 1, &[("a", 0, 9)]), now, &mut rng)
            .unwrap();
        assert_eq!(ctx, SessionContext::Incremental { id });
        assert_eq!(
            fetched(&r),
            vec![("a".into(), 0, 9), ("a".into(), 1, 7), ("b".into(), 0, 0)]
        );
        // Nothing new anywhere: an empty answer.
        let answer = sessions.answer(ctx, read(&r, 10, &[]));
        assert!(listed(&answer).is_empty());
        // Epoch 2: records in b-0, and every high watermark moved.
        let (r, ctx) = sessions
            .resolve(request(id, 2, &[]), now, &mut rng)
            .unwrap();
        let answer = sessions.answer(ctx, read(&r, 11, &[("b", 0)]));
        assert_eq!(listed(&answer).len(), 3);
        // Epoch 3: only b-0 has records; answered partitions moved to the end, in order.
        let (r, ctx) = sessions
            .resolve(request(id, 3, &[]), now, &mut rng)
            .unwrap();
        assert_eq!(
            fetched(&r),
            vec![("a".into(), 0, 9), ("a".into(), 1, 7), ("b".into(), 0, 0)]
        );
        let answer = sessions.answer(ctx, read(&r, 11, &[("a", 1)]));
        assert_eq!(listed(&answer), vec![("a".into(), 1)]);
        let (r, _) = sessions
            .resolve(request(id, 4, &[]), now, &mut rng)
            .unwrap();
        assert_eq!(
            fetched(&r),
            vec![("a".into(), 0, 9), ("b".into(), 0, 0), ("a".into(), 1, 7)]
        );
        // Forgetting a partition takes it out of the session.
        let mut forget = request(id, 5, &[]);
        forget.session.forgotten = vec![FetchForgottenTopic {
            name: "a".into(),
            partitions: vec![0],
        }];
        let (r, _) = sessions.resolve(forget, now, &mut rng).unwrap();
        assert_eq!(fetched(&r), vec![("b".into(), 0, 0), ("a".into(), 1, 7)]);
        sessions.check();
    }

    #[test]
    fn wrong_epochs_unknown_ids_and_closing() {
        let mut sessions = FetchSessions::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let now = Instant::from_millis(1_000);
        let (_, ctx) = sessions
            .resolve(request(0, 0, &[("a", 0, 0)]), now, &mut rng)
            .unwrap();
        let SessionContext::Full { id } = ctx else {
            panic!()
        };
        assert_eq!(
            sessions.resolve(request(id, 2, &[]), now, &mut rng),
            Err(ErrorCode::INVALID_FETCH_SESSION_EPOCH)
        );
        assert_eq!(
            sessions.resolve(request(id ^ 1, 1, &[]), now, &mut rng),
            Err(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
        );
        // The right epoch still works after a wrong one.
        assert!(sessions.resolve(request(id, 1, &[]), now, &mut rng).is_ok());
        // Epoch -1 closes it and is answered without a session.
        let (_, ctx) = sessions
            .resolve(request(id, -1, &[("a", 0, 0)]), now, &mut rng)
            .unwrap();
        assert_eq!(ctx, SessionContext::Sessionless);
        assert_eq!(
            sessions.resolve(request(id, 2, &[]), now, &mut rng),
            Err(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
        );
        // An incremental fetch whose session went away while it waited is told so.
        let answer = sessions.answer(SessionContext::Incremental { id }, FetchResponse::default());
        assert_eq!(answer.error_code, ErrorCode::FETCH_SESSION_ID_NOT_FOUND);
        assert!(sessions.sessions.is_empty());
    }

    #[test]
    fn the_partition_budget_bounds_what_sessions_remember() {
        let mut sessions = FetchSessions {
            max_cached: 4,
            ..FetchSessions::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let now = Instant::from_millis(1_000);
        let three = request(0, 0, &[("a", 0, 0), ("a", 1, 0), ("a", 2, 0)]);
        let (_, ctx) = sessions.resolve(three.clone(), now, &mut rng).unwrap();
        let SessionContext::Full { id } = ctx else {
            panic!()
        };
        assert!(id > 0);
        // Two more would pass the budget, and the first session is not idle: no session.
        let (_, ctx) = sessions
            .resolve(request(0, 0, &[("b", 0, 0), ("b", 1, 0)]), now, &mut rng)
            .unwrap();
        assert_eq!(ctx, SessionContext::Full { id: 0 });
        // Growing the first past it closes that session; the client starts over.
        assert_eq!(
            sessions.resolve(request(id, 1, &[("c", 0, 0), ("c", 1, 0)]), now, &mut rng),
            Err(ErrorCode::FETCH_SESSION_ID_NOT_FOUND)
        );
        assert!(sessions.sessions.is_empty() && sessions.cached == 0);
        // Once idle long enough, a session gives way to a new one that needs the room.
        sessions.resolve(three, now, &mut rng).unwrap();
        let later = now + Duration::from_millis(MIN_EVICTION_MS);
        let (_, ctx) = sessions
            .resolve(request(0, 0, &[("b", 0, 0), ("b", 1, 0)]), later, &mut rng)
            .unwrap();
        assert!(matches!(ctx, SessionContext::Full { id } if id != 0));
        assert_eq!(sessions.cached, 2);
        sessions.check();
    }

    #[test]
    fn a_full_cache_evicts_only_idle_sessions() {
        let mut sessions = FetchSessions::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let t0 = Instant::from_millis(1_000);
        let mut first = 0;
        for i in 0..MAX_SESSIONS {
            let (_, ctx) = sessions
                .resolve(request(0, 0, &[("a", 0, 0)]), t0, &mut rng)
                .unwrap();
            let SessionContext::Full { id } = ctx else {
                panic!()
            };
            if i == 0 {
                first = id;
            }
        }
        let soon = t0 + Duration::from_millis(MIN_EVICTION_MS - 1);
        let (_, ctx) = sessions
            .resolve(request(0, 0, &[("a", 0, 0)]), soon, &mut rng)
            .unwrap();
        assert_eq!(ctx, SessionContext::Full { id: 0 }, "no room: no session");
        // The first session is used; another one is the idlest later on.
        assert!(sessions
            .resolve(request(first, 1, &[]), soon, &mut rng)
            .is_ok());
        let later = t0 + Duration::from_millis(MIN_EVICTION_MS);
        let (_, ctx) = sessions
            .resolve(request(0, 0, &[("a", 0, 0)]), later, &mut rng)
            .unwrap();
        assert!(matches!(ctx, SessionContext::Full { id } if id != 0));
        assert!(sessions.sessions.contains_key(&first));
        assert_eq!(sessions.sessions.len(), MAX_SESSIONS);
        sessions.check();
    }
}
