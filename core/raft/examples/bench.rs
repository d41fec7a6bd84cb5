//! Throughput and commit latency of keel-raft: 3 in-process replicas beside 1, in the same run.
//!
//! `cargo run --release -p keel-raft --example bench`
//!
//! What is modelled: a discrete-event loop in microseconds drives `RaftNode<MemLog>`s. A
//! message takes `NET_US` one way (delivered in process, no encoding). Each replica has one
//! disk: an `Output::Persist` starts an fsync taking `FSYNC_US` if none is running, else
//! waits for the running one to end (group commit: one fsync covers every Persist asked
//! before it started); when it ends, `MemLog::sync` and `persisted(seq)` run. A closed-loop
//! client keeps `window` proposals (each of `WINDOWS`) of `PAYLOAD` bytes outstanding at the leader; the node's
//! flow control (at most `max_inflight_msgs` AppendEntries in flight per follower) is what
//! batches them: proposals made while the window is full leave together in the next
//! AppendEntries. The log is compacted every `COMPACT_EVERY` entries so memory stays bounded.
//!
//! What is measured: commit latency (propose to the leader's `Apply` of the entry: committed
//! by a majority and durable on the leader) in modelled time; committed entries per second in
//! modelled time and in wall time (the wall figure is the CPU cost of the Raft code, the
//! in-process network and MemLog, single-threaded); peak RSS (VmHWM).

use std::collections::BTreeMap;

use keel_raft::{
    Config, HardState, Index, Instant, MemLog, Membership, Message, NodeId, Output, RaftLog,
    RaftNode, Role,
};

/// One-way message latency, modelled.
const NET_US: u64 = 100;
/// One fsync, modelled (a datacenter NVMe drive's fdatasync).
const FSYNC_US: u64 = 1_000;
/// Proposals the client keeps outstanding: a light load and a heavy one.
const WINDOWS: [usize; 2] = [16, 1024];
/// Bytes per proposal.
const PAYLOAD: usize = 128;
/// Entries committed per run.
const ENTRIES: u64 = 300_000;
/// Compact every replica's log after this many applied entries.
const COMPACT_EVERY: u64 = 20_000;

enum Event {
    Deliver {
        from: NodeId,
        to: NodeId,
        msg: Message,
    },
    FlushDone {
        id: NodeId,
        seq: u64,
    },
}

struct Disk {
    /// The fsync running: the seq it acknowledges.
    running: Option<u64>,
    /// The latest seq asked for while an fsync ran.
    queued: Option<u64>,
    fsyncs: u64,
}

struct Replica {
    node: RaftNode<MemLog>,
    disk: Disk,
    applied: Index,
}

struct Bench {
    now_us: u64,
    reps: BTreeMap<NodeId, Replica>,
    events: BTreeMap<(u64, u64), Event>,
    next_event: u64,
    window: usize,
    /// index -> modelled propose time, for the client's outstanding proposals.
    outstanding: BTreeMap<Index, u64>,
    latencies_us: Vec<u64>,
    committed: u64,
    appends_with_entries: u64,
    entries_sent: u64,
}

struct Figures {
    replicas: u64,
    window: usize,
    entries: u64,
    modelled_s: f64,
    wall_s: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    entries_per_append: f64,
    fsyncs_per_replica: f64,
}

fn ms(us: u64) -> Instant {
    Instant(us / 1000)
}

impl Bench {
    fn new(n: u64, window: usize) -> Bench {
        let members = Membership::voters((1..=n).map(NodeId));
        let reps = (1..=n)
            .map(|i| {
                let id = NodeId(i);
                let mut cfg = Config::new(id);
                cfg.election_timeout_ms = 100;
                cfg.heartbeat_interval_ms = 20;
                let node = RaftNode::new(
                    cfg,
                    MemLog::new(members.clone()),
                    HardState::default(),
                    Index(0),
                    i,
                    Instant(0),
                )
                .expect("fresh storage");
                let disk = Disk {
                    running: None,
                    queued: None,
                    fsyncs: 0,
                };
                (
                    id,
                    Replica {
                        node,
                        disk,
                        applied: Index(0),
                    },
                )
            })
            .collect();
        Bench {
            now_us: 0,
            reps,
            events: BTreeMap::new(),
            next_event: 0,
            window,
            outstanding: BTreeMap::new(),
            latencies_us: Vec::new(),
            committed: 0,
            appends_with_entries: 0,
            entries_sent: 0,
        }
    }

    fn schedule(&mut self, at_us: u64, e: Event) {
        self.next_event += 1;
        self.events.insert((at_us, self.next_event), e);
    }

    fn leader(&self) -> Option<NodeId> {
        self.reps
            .iter()
            .find(|(_, r)| r.node.role() == Role::Leader)
            .map(|(id, _)| *id)
    }

    fn drain(&mut self, id: NodeId) {
        while let Some(out) = self.reps.get_mut(&id).and_then(|r| r.node.poll_output()) {
            match out {
                Output::Send { to, msg } => {
                    if let Message::AppendEntries { entries, .. } = &msg {
                        if !entries.is_empty() {
                            self.appends_with_entries += 1;
                            self.entries_sent += entries.len() as u64;
                        }
                    }
                    let at = self.now_us + NET_US;
                    self.schedule(at, Event::Deliver { from: id, to, msg });
                }
                Output::Persist { seq, .. } => {
                    let disk = &mut self.reps.get_mut(&id).expect("replica").disk;
                    if disk.running.is_some() {
                        disk.queued = Some(seq);
                    } else {
                        disk.running = Some(seq);
                        disk.fsyncs += 1;
                        let at = self.now_us + FSYNC_US;
                        self.schedule(at, Event::FlushDone { id, seq });
                    }
                }
                Output::Apply { from, to } => self.apply(id, from, to),
                Output::RestoreSnapshot { meta } => {
                    self.reps.get_mut(&id).expect("replica").applied = meta.index;
                }
                Output::ReadReady { .. }
                | Output::ReadFailed { .. }
                | Output::RoleChanged { .. } => {}
            }
        }
    }

    fn apply(&mut self, id: NodeId, from: Index, to: Index) {
        let now = self.now_us;
        let r = self.reps.get_mut(&id).expect("replica");
        r.applied = to;
        if r.node.role() == Role::Leader {
            let mut i = from;
            while i <= to {
                if let Some(t) = self.outstanding.remove(&i) {
                    self.latencies_us.push(now - t);
                    self.committed += 1;
                }
                i = i.next();
            }
        }
        let snap = r.node.log().snapshot_meta().index;
        if to.0 >= snap.0 + COMPACT_EVERY {
            // The state machine image is opaque to Raft; the bench's is its applied index.
            r.node.compact(ms(now), to, to.0.to_le_bytes().to_vec());
        }
    }

    /// Tops the client's window up at the leader.
    fn client(&mut self, target: u64) {
        let Some(l) = self.leader() else { return };
        let now = ms(self.now_us);
        let mut proposed = false;
        while self.outstanding.len() < self.window
            && self.committed + (self.outstanding.len() as u64) < target
        {
            let node = &mut self.reps.get_mut(&l).expect("replica").node;
            match node.propose(now, vec![0xab; PAYLOAD]) {
                Ok(index) => {
                    self.outstanding.insert(index, self.now_us);
                    proposed = true;
                }
                Err(e) => panic!("the leader refused a proposal: {e:?}"),
            }
        }
        if proposed {
            self.drain(l);
        }
    }

    fn run(mut self, n: u64) -> Figures {
        // Elect a leader first; the measurement starts at the first proposal.
        while self.leader().is_none()
            || self
                .reps
                .values()
                .any(|r| r.node.commit_index() == Index(0))
        {
            self.step(0);
        }
        let start_us = self.now_us;
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
        // The bench's own wall clock, outside the sans-IO core.
        let wall = std::time::Instant::now();
        while self.committed < ENTRIES {
            self.step(ENTRIES);
        }
        let wall_s = wall.elapsed().as_secs_f64();
        let modelled_s = (self.now_us - start_us) as f64 / 1e6;
        let mut l = std::mem::take(&mut self.latencies_us);
        l.sort_unstable();
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        Figures {
            replicas: n,
            window: self.window,
            entries: self.committed,
            modelled_s,
            wall_s,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            max_us: *l.last().expect("latencies"),
            entries_per_append: if self.appends_with_entries == 0 {
                0.0
            } else {
                self.entries_sent as f64 / self.appends_with_entries as f64
            },
            fsyncs_per_replica: self.reps.values().map(|r| r.disk.fsyncs).sum::<u64>() as f64
                / n as f64,
        }
    }

    /// One event (or a timer), then the client.
    fn step(&mut self, target: u64) {
        let next_timer = self
            .reps
            .values()
            .filter_map(|r| r.node.next_deadline())
            .min()
            .map(|d| d.0 * 1000);
        let next_event = self.events.keys().next().map(|k| k.0);
        let t = match (next_timer, next_event) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).expect("a timer or an event is always pending"),
        };
        self.now_us = self.now_us.max(t);
        let now = ms(self.now_us);
        if next_event.is_some_and(|e| e <= t) {
            let key = *self.events.keys().next().expect("an event");
            match self.events.remove(&key).expect("an event") {
                Event::Deliver { from, to, msg } => {
                    self.reps
                        .get_mut(&to)
                        .expect("replica")
                        .node
                        .step(now, from, msg);
                    self.drain(to);
                }
                Event::FlushDone { id, seq } => {
                    let r = self.reps.get_mut(&id).expect("replica");
                    r.node.log_mut().sync();
                    r.disk.running = None;
                    r.node.persisted(now, seq);
                    if let Some(q) = r.disk.queued.take() {
                        r.disk.running = Some(q);
                        r.disk.fsyncs += 1;
                        let at = self.now_us + FSYNC_US;
                        self.schedule(at, Event::FlushDone { id, seq: q });
                    }
                    self.drain(id);
                }
            }
        } else {
            let ids: Vec<NodeId> = self.reps.keys().copied().collect();
            for id in ids {
                let r = self.reps.get_mut(&id).expect("replica");
                if r.node.next_deadline().is_some_and(|d| d <= now) {
                    r.node.tick(now);
                    self.drain(id);
                }
            }
        }
        if target > 0 {
            self.client(target);
        }
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_row(f: &Figures) {
    let per_append = if f.replicas == 1 {
        "-".to_string()
    } else {
        format!("{:.1}", f.entries_per_append)
    };
    println!(
        "{:>8} {:>6} {:>12.0} {:>12.0} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>9} {:>9.0} {:>9.2}",
        f.replicas,
        f.window,
        f.entries as f64 / f.modelled_s,
        f.entries as f64 / f.wall_s,
        f.p50_us as f64 / 1000.0,
        f.p99_us as f64 / 1000.0,
        f.max_us as f64 / 1000.0,
        per_append,
        f.fsyncs_per_replica,
        f.modelled_s,
    );
}

fn main() {
    println!(
        "keel-raft bench: {ENTRIES} entries of {PAYLOAD} B, modelled fsync {FSYNC_US} us (group commit), one-way network {NET_US} us, in-process delivery"
    );
    println!(
        "{:>8} {:>6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "replicas",
        "window",
        "entries/s",
        "entries/s",
        "p50",
        "p99",
        "max",
        "entries/",
        "fsyncs/",
        "modelled"
    );
    println!(
        "{:>8} {:>6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "",
        "",
        "(modelled)",
        "(wall)",
        "(modelled)",
        "(modelled)",
        "(modelled)",
        "append",
        "replica",
        "seconds"
    );
    for window in WINDOWS {
        for n in [1, 3] {
            let f = Bench::new(n, window).run(n);
            print_row(&f);
        }
    }
    match peak_rss_kib() {
        Some(k) => println!("peak RSS (VmHWM): {} MiB", k / 1024),
        None => println!("peak RSS: /proc/self/status not readable"),
    }
}
