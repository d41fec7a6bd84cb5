//! Cluster figures on this machine, from three real `keel serve` processes on loopback (a
//! measurement program, not a test: nothing here asserts a time).
//!
//! - **Controller failover**: kill -9 the active controller `--kills` times (default 20);
//!   for each, how long until both survivors name a new controller in Metadata, and until
//!   the dead broker is fenced (left out of Metadata). Then it is restarted, and how long
//!   until it is registered again and agrees is the restart figure.
//! - **Idle cost**: with topics of `--partitions` partitions in all (default 1000 and 10000,
//!   replication factor 1) and nothing produced, each broker's CPU (utime + stime from
//!   /proc) and the messages between brokers per second (`keel_peer_messages_sent_total`).
//!
//! `cargo run -p keel-tests --example cluster_figures [-- --kills 20 --partitions 1000,10000]`
//! with `KEEL_BIN` pointing at the binary to measure (a release build for CPU figures).

use keel_net::client::{connect_tcp, ClientOptions};
use keel_tests::{free_port, temp_data_dir, Keel};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

struct Broker {
    keel: Keel,
    metrics: SocketAddr,
}

fn start(name: &str, election_timeout_ms: Option<&str>) -> BTreeMap<i32, Broker> {
    let peers: BTreeMap<i32, u16> = (1..=3).map(|id| (id, free_port())).collect();
    let voters = peers
        .iter()
        .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    peers
        .keys()
        .map(|&id| {
            let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let node_id = id.to_string();
            let m = metrics.to_string();
            let mut args = vec![
                "--node-id",
                node_id.as_str(),
                "--voters",
                voters.as_str(),
                "--metrics-listen",
                m.as_str(),
            ];
            if let Some(t) = election_timeout_ms {
                args.extend(["--election-timeout-ms", t]);
            }
            let keel = Keel::start(&temp_data_dir(&format!("{name}-{id}")), &args);
            (id, Broker { keel, metrics })
        })
        .collect()
}

async fn view(addr: SocketAddr) -> Option<(i32, Vec<i32>)> {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let mut c = connect_tcp(addr, options).await.ok()?;
    let m = c.metadata(Some(&[])).await.ok()?;
    let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    Some((m.controller_id, ids))
}

/// Polls every 10 ms until `done` holds for the views of `among`; the time it took.
async fn until(
    brokers: &BTreeMap<i32, Broker>,
    among: &[i32],
    done: impl Fn(&[Option<(i32, Vec<i32>)>]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let mut views = Vec::new();
        for id in among {
            views.push(view(brokers[id].keel.addr).await);
        }
        if done(&views) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no convergence: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn agree_on(views: &[Option<(i32, Vec<i32>)>], not: i32) -> Option<i32> {
    let (c, _) = views.first()?.as_ref()?;
    (*c > 0 && *c != not && views.iter().all(|v| v.as_ref().map(|v| v.0) == Some(*c))).then_some(*c)
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_millis();
    format!(
        "n={} min {} ms, p50 {} ms, p90 {} ms, max {} ms",
        v.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    )
}

async fn failover(kills: usize) {
    let mut brokers = start("figures-failover", None);
    let all = [1, 2, 3];
    until(&brokers, &all, |v| agree_on(v, -1).is_some()).await;
    let (mut elected, mut fenced, mut rejoined) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..kills {
        let views = {
            let mut v = Vec::new();
            for id in all {
                v.push(view(brokers[&id].keel.addr).await);
            }
            v
        };
        let controller = agree_on(&views, -1).expect("agreed");
        let survivors: Vec<i32> = all.iter().copied().filter(|&i| i != controller).collect();
        let killed_at = Instant::now();
        brokers.get_mut(&controller).unwrap().keel.kill9();
        until(&brokers, &survivors, |v| agree_on(v, controller).is_some()).await;
        elected.push(killed_at.elapsed());
        until(&brokers, &survivors, |v| {
            v.iter().all(|v| {
                v.as_ref()
                    .is_some_and(|(_, ids)| !ids.contains(&controller))
            })
        })
        .await;
        fenced.push(killed_at.elapsed());
        let restarted_at = Instant::now();
        brokers.get_mut(&controller).unwrap().keel.restart();
        until(&brokers, &all, |v| {
            agree_on(v, -1).is_some() && v.iter().all(|v| v.as_ref().is_some_and(|v| v.1 == all))
        })
        .await;
        rejoined.push(restarted_at.elapsed());
    }
    println!(
        "controller kill -9 -> survivors agree on a new controller: {}",
        percentiles(elected)
    );
    println!(
        "controller kill -9 -> dead broker fenced (out of Metadata): {}",
        percentiles(fenced)
    );
    println!(
        "restart -> registered again and all three agree (process start included): {}",
        percentiles(rejoined)
    );
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let f = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    f(11) + f(12)
}

async fn idle(partitions: i32) {
    let brokers = start(&format!("figures-idle-{partitions}"), None);
    let all = [1, 2, 3];
    until(&brokers, &all, |v| {
        agree_on(v, -1).is_some() && v.iter().all(|v| v.as_ref().is_some_and(|v| v.1 == all))
    })
    .await;
    let options = ClientOptions {
        request_timeout: Duration::from_secs(120),
        ..ClientOptions::default()
    };
    let mut c = connect_tcp(brokers[&1].keel.addr, options).await.unwrap();
    let per_topic = 1000.min(partitions);
    let topics: Vec<String> = (0..partitions / per_topic)
        .map(|i| format!("idle-{i}"))
        .collect();
    for t in &topics {
        let r = c
            .create_topics(&[(t.as_str(), per_topic)], 120_000)
            .await
            .unwrap();
        assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0]);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let window = Duration::from_secs(20);
    let before: Vec<(u64, u64)> = all
        .iter()
        .map(|id| {
            let b = &brokers[id];
            let m = http_get(b.metrics, "/metrics");
            (
                cpu_ticks(b.keel.pid().unwrap()),
                counter(&m, "keel_peer_messages_sent_total"),
            )
        })
        .collect();
    tokio::time::sleep(window).await;
    let ticks_per_s = 100.0;
    for (i, id) in all.iter().enumerate() {
        let b = &brokers[id];
        let m = http_get(b.metrics, "/metrics");
        let cpu = cpu_ticks(b.keel.pid().unwrap()) - before[i].0;
        let sent = counter(&m, "keel_peer_messages_sent_total") - before[i].1;
        let leads = counter(&m, "keel_leader_partitions");
        println!(
            "idle, {partitions} partitions: broker {id} leads {leads}, CPU {:.2} % of a core, {:.1} peer messages/s sent",
            cpu as f64 / ticks_per_s / window.as_secs_f64() * 100.0,
            sent as f64 / window.as_secs_f64()
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let kills = arg("--kills").map_or(20, |k| k.parse().expect("--kills N"));
    let partitions: Vec<i32> = arg("--partitions")
        .unwrap_or_else(|| "1000,10000".into())
        .split(',')
        .map(|p| p.parse().expect("--partitions N,M"))
        .collect();
    println!("keel binary: {}", keel_tests::keel_bin().display());
    if kills > 0 {
        failover(kills).await;
    }
    for p in partitions {
        idle(p).await;
    }
}
