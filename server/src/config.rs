//! `keel serve` settings: command-line flags override KEEL_* environment variables, which
//! override the TOML config file, which overrides the built-in defaults (a working single
//! node on 127.0.0.1:9092 with data in ./keel-data).

use keel_core::node::NodeConfig;
use keel_net::driver::{PeerConfig, ServeConfig};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case keys, e.g. `data_dir`).
    #[arg(long, env = "KEEL_CONFIG")]
    pub config: Option<PathBuf>,
    /// This broker's id in the cluster [default: 1].
    #[arg(long, env = "KEEL_NODE_ID")]
    pub node_id: Option<i32>,
    /// Where logs and metadata live [default: ./keel-data].
    #[arg(long, env = "KEEL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to accept Kafka clients on [default: 127.0.0.1:9092].
    #[arg(long, env = "KEEL_LISTEN")]
    pub listen: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics and a health check at /health
    /// [default: off].
    #[arg(long, env = "KEEL_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// HOST:PORT clients are told to connect to [default: the listen address].
    #[arg(long, env = "KEEL_ADVERTISE")]
    pub advertise: Option<String>,
    /// Create topics on first use (Kafka's auto.create.topics.enable) [default: true].
    #[arg(long, env = "KEEL_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of auto-created topics (Kafka's num.partitions) [default: 1].
    #[arg(long, env = "KEEL_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// Segment size in bytes before a log rolls (Kafka's log.segment.bytes) [default: 1 GiB].
    #[arg(long, env = "KEEL_SEGMENT_BYTES")]
    pub segment_bytes: Option<u64>,
    /// Largest record batch a producer may send (Kafka's message.max.bytes) [default: 1048588].
    #[arg(long, env = "KEEL_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<usize>,
    /// Largest request frame accepted; larger ones close the connection before any
    /// allocation (Kafka's socket.request.max.bytes) [default: 104857600].
    #[arg(long, env = "KEEL_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Cluster id reported in Metadata [default: keel-cluster].
    #[arg(long, env = "KEEL_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// How long a group leaving Empty waits for more members before its first rebalance
    /// (Kafka's group.initial.rebalance.delay.ms) [default: 3000].
    #[arg(long, env = "KEEL_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<i32>,
    /// How often the log cleaner compacts one segment of each compacted partition (Kafka's
    /// log.cleaner.backoff.ms) [default: 15000].
    #[arg(long, env = "KEEL_LOG_CLEANER_BACKOFF_MS")]
    pub log_cleaner_backoff_ms: Option<u64>,
    /// How often old segments are checked against retention.ms / retention.bytes and
    /// deleted (Kafka's log.retention.check.interval.ms) [default: 300000].
    #[arg(long, env = "KEEL_LOG_RETENTION_CHECK_INTERVAL_MS")]
    pub log_retention_check_interval_ms: Option<u64>,
    /// Free bytes below which produce and topic creation are refused until space is
    /// freed; 0 turns the floor off [default: the smaller of 1 GiB and 5 % of the data
    /// directory's filesystem].
    #[arg(long, env = "KEEL_MIN_FREE_BYTES")]
    pub min_free_bytes: Option<u64>,
    /// Run as one broker of a cluster whose metadata quorum is these brokers:
    /// ID@HOST:PORT,... with each broker's peer address, this one's among them
    /// [default: none, a single node].
    #[arg(long, env = "KEEL_VOTERS")]
    pub voters: Option<String>,
    /// Address to accept other brokers' peer connections on [default: this broker's
    /// address in --voters].
    #[arg(long, env = "KEEL_PEER_LISTEN")]
    pub peer_listen: Option<String>,
    /// This broker's rack (Kafka's broker.rack), for replica placement [default: none].
    #[arg(long, env = "KEEL_RACK")]
    pub rack: Option<String>,
    /// The metadata quorum's minimum election timeout in ms; each election waits a random
    /// time in [t, 2t) [default: 1000].
    #[arg(long, env = "KEEL_ELECTION_TIMEOUT_MS")]
    pub election_timeout_ms: Option<u64>,
}

/// The config file: the same settings, all optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    node_id: Option<i32>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    metrics_listen: Option<String>,
    advertise: Option<String>,
    auto_create_topics: Option<bool>,
    num_partitions: Option<i32>,
    segment_bytes: Option<u64>,
    message_max_bytes: Option<usize>,
    max_request_bytes: Option<usize>,
    cluster_id: Option<String>,
    group_initial_rebalance_delay_ms: Option<i32>,
    log_cleaner_backoff_ms: Option<u64>,
    log_retention_check_interval_ms: Option<u64>,
    min_free_bytes: Option<u64>,
    voters: Option<String>,
    peer_listen: Option<String>,
    rack: Option<String>,
    election_timeout_ms: Option<u64>,
}

/// Merges flags/env (already merged by clap), the config file and defaults (the tests' entry;
/// `keel serve` uses [`resolve_with_metrics`]).
#[cfg(test)]
pub fn resolve(args: ServeArgs) -> Result<ServeConfig, String> {
    resolve_with_metrics(args).map(|(config, _)| config)
}

/// [`resolve`], plus the address to serve /metrics and /health on, if any.
pub fn resolve_with_metrics(args: ServeArgs) -> Result<(ServeConfig, Option<SocketAddr>), String> {
    let file = match &args.config {
        None => FileConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    let listen_text = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:9092".to_string());
    let listen = parse_listen("--listen", &listen_text)?;
    let metrics_listen = match args.metrics_listen.or(file.metrics_listen) {
        None => None,
        Some(text) => Some(parse_listen("--metrics-listen", &text)?),
    };
    let (advertised_host, advertised_port) = match args.advertise.or(file.advertise) {
        Some(a) => {
            let (host, port) = parse_host_port(&a)
                .ok_or_else(|| format!("--advertise {a}: expected HOST:PORT"))?;
            if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                return Err(format!(
                    "--advertise {a}: {host} is not an address clients can connect to; \
                     advertise this host's name or a routable IP"
                ));
            }
            (host, port)
        }
        // As Kafka refuses the non-routable meta-address in advertised.listeners: a broker
        // that told clients 127.0.0.1 would send every client on another host to itself.
        None if listen.ip().is_unspecified() => {
            return Err(format!(
                "--listen {listen_text} accepts clients on every interface, but they must be \
                 told one address to connect to: set --advertise HOST:PORT (e.g. \
                 --advertise $(hostname -f):{})",
                listen.port()
            ))
        }
        None => (listen.ip().to_string(), listen.port() as i32),
    };
    let mut node = NodeConfig {
        node_id: keel_core::ids::NodeId(args.node_id.or(file.node_id).unwrap_or(1)),
        advertised_host,
        advertised_port,
        ..NodeConfig::default()
    };
    if let Some(v) = args.auto_create_topics.or(file.auto_create_topics) {
        node.auto_create_topics = v;
    }
    if let Some(v) = args.num_partitions.or(file.num_partitions) {
        if v <= 0 {
            return Err(format!("num_partitions must be at least 1, not {v}"));
        }
        node.default_num_partitions = v;
    }
    if let Some(v) = args.segment_bytes.or(file.segment_bytes) {
        if v < 14 {
            return Err(format!("segment_bytes must be at least 14, not {v}"));
        }
        node.log.segment_bytes = v;
    }
    if let Some(v) = args.message_max_bytes.or(file.message_max_bytes) {
        node.max_message_bytes = v;
    }
    if let Some(v) = args.cluster_id.or(file.cluster_id) {
        node.cluster_id = v;
    }
    if let Some(v) = args
        .group_initial_rebalance_delay_ms
        .or(file.group_initial_rebalance_delay_ms)
    {
        if v < 0 {
            return Err(format!(
                "group_initial_rebalance_delay_ms must not be negative, not {v}"
            ));
        }
        node.group.initial_rebalance_delay_ms = v;
    }
    if let Some(v) = args.log_cleaner_backoff_ms.or(file.log_cleaner_backoff_ms) {
        if v == 0 {
            return Err("log_cleaner_backoff_ms must be at least 1".to_string());
        }
        node.log_cleaner_interval_ms = v;
    }
    if let Some(v) = args
        .log_retention_check_interval_ms
        .or(file.log_retention_check_interval_ms)
    {
        if v == 0 {
            return Err("log_retention_check_interval_ms must be at least 1".to_string());
        }
        node.log_retention_check_interval_ms = v;
    }
    node.min_free_bytes = args.min_free_bytes.or(file.min_free_bytes);
    let peers = cluster_settings(
        &mut node,
        args.voters.or(file.voters),
        args.peer_listen.or(file.peer_listen),
        args.rack.or(file.rack),
        args.election_timeout_ms.or(file.election_timeout_ms),
    )?;
    let config = ServeConfig {
        listen,
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("keel-data")),
        node,
        max_request_bytes: args
            .max_request_bytes
            .or(file.max_request_bytes)
            .unwrap_or(100 * 1024 * 1024),
        max_inflight_per_connection: 100,
        seed: entropy_seed(),
        peers,
    };
    Ok((config, metrics_listen))
}

/// The cluster settings: with `voters`, the node becomes a cluster broker and the peer
/// endpoints are returned; without, the cluster-only settings must be absent.
fn cluster_settings(
    node: &mut NodeConfig,
    voters: Option<String>,
    peer_listen: Option<String>,
    rack: Option<String>,
    election_timeout_ms: Option<u64>,
) -> Result<Option<PeerConfig>, String> {
    let Some(voters_text) = voters else {
        for (set, flag) in [
            (peer_listen.is_some(), "--peer-listen"),
            (rack.is_some(), "--rack"),
            (election_timeout_ms.is_some(), "--election-timeout-ms"),
        ] {
            if set {
                return Err(format!(
                    "{flag} is a cluster setting: it needs --voters ID@HOST:PORT,... naming every broker of the metadata quorum"
                ));
            }
        }
        return Ok(None);
    };
    let voters = parse_voters(&voters_text)?;
    let me = node.node_id;
    let Some(&own) = voters.get(&me) else {
        return Err(format!(
            "--voters {voters_text}: this broker (--node-id {me}) is not among them"
        ));
    };
    let listen = match peer_listen {
        Some(text) => parse_listen("--peer-listen", &text)?,
        None => own,
    };
    let mut cluster = keel_core::node::ClusterConfig::new(voters.keys().copied().collect());
    cluster.rack = rack;
    if let Some(ms) = election_timeout_ms {
        // Heartbeats (t/10) must stay well inside the peer connections' 1 s idle timeout.
        if !(100..=5_000).contains(&ms) {
            return Err(format!(
                "election_timeout_ms must be between 100 and 5000, not {ms}"
            ));
        }
        cluster.election_timeout_ms = ms;
        cluster.heartbeat_interval_ms = (ms / 10).max(10);
        // A broker is fenced after two election timeouts of silence, never less than 2 s.
        cluster.session_timeout_ms = (2 * ms).max(2_000);
    }
    node.cluster = Some(cluster);
    let addrs = voters.into_iter().filter(|(id, _)| *id != me).collect();
    Ok(Some(PeerConfig { listen, addrs }))
}

/// `ID@HOST:PORT,...`: each voter's id and peer address; ids unique and not negative.
fn parse_voters(
    text: &str,
) -> Result<std::collections::BTreeMap<keel_core::ids::NodeId, SocketAddr>, String> {
    let mut voters = std::collections::BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || format!("--voters {text}: {item} is not ID@HOST:PORT (e.g. 1@127.0.0.1:9093)");
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.parse().map_err(|_| bad())?;
        if id < 0 {
            return Err(format!("--voters {text}: broker id {id} is negative"));
        }
        let addr = parse_listen("--voters", addr)?;
        if voters.insert(keel_core::ids::NodeId(id), addr).is_some() {
            return Err(format!("--voters {text}: broker {id} is named twice"));
        }
    }
    if voters.is_empty() {
        return Err(format!("--voters {text}: names no broker"));
    }
    Ok(voters)
}

/// A listen address `HOST:PORT` (a name is resolved; its first address is used), with an
/// error that says what was expected.
fn parse_listen(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let expected = || {
        format!(
            "{flag} {text}: expected HOST:PORT, e.g. 127.0.0.1:9092, or 0.0.0.0:9092 (every \
             interface) with --advertise"
        )
    };
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => return Err(expected()),
    }
    text.to_socket_addrs()
        .map_err(|e| format!("{flag} {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("{flag} {text}: the name has no address"))
}

fn parse_host_port(s: &str) -> Option<(String, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port as i32))
}

/// The production node's seed (topic ids): from the clock and process id, which is fine
/// outside the simulator, where runs need not replay.
fn entropy_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ ((std::process::id() as u64) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_working_single_node() {
        let c = resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.data_dir, PathBuf::from("keel-data"));
        assert_eq!(
            (c.node.advertised_host.as_str(), c.node.advertised_port),
            ("127.0.0.1", 9092)
        );
        assert!(c.node.auto_create_topics);
        assert_eq!(c.node.group.initial_rebalance_delay_ms, 3_000);
    }

    #[test]
    fn initial_rebalance_delay_from_flag_or_file() {
        let dir = std::env::temp_dir().join(format!("keel-config-delay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keel.toml");
        std::fs::write(&file, "group_initial_rebalance_delay_ms = 250\n").unwrap();
        let c = resolve(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node.group.initial_rebalance_delay_ms, 250);
        let c = resolve(ServeArgs {
            config: Some(file),
            group_initial_rebalance_delay_ms: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node.group.initial_rebalance_delay_ms, 0);
        assert!(resolve(ServeArgs {
            group_initial_rebalance_delay_ms: Some(-1),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("keel-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keel.toml");
        std::fs::write(
            &file,
            "node_id = 7\nlisten = \"127.0.0.1:19092\"\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let c = resolve(ServeArgs {
            config: Some(file.clone()),
            node_id: Some(3),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node.node_id, keel_core::ids::NodeId(3));
        assert_eq!(c.listen.port(), 19092);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn retention_check_interval_defaults_to_kafkas_and_must_be_positive() {
        let c = resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.node.log_retention_check_interval_ms, 300_000);
        let c = resolve(ServeArgs {
            log_retention_check_interval_ms: Some(200),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node.log_retention_check_interval_ms, 200);
        assert!(resolve(ServeArgs {
            log_retention_check_interval_ms: Some(0),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_set_by_flag_or_file() {
        let (_, metrics) = resolve_with_metrics(ServeArgs::default()).unwrap();
        assert_eq!(metrics, None);
        let dir = std::env::temp_dir().join(format!("keel-config-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keel.toml");
        std::fs::write(&file, "metrics_listen = \"127.0.0.1:9644\"\n").unwrap();
        let (_, metrics) = resolve_with_metrics(ServeArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(metrics, Some("127.0.0.1:9644".parse().unwrap()));
        let (_, metrics) = resolve_with_metrics(ServeArgs {
            config: Some(file),
            metrics_listen: Some("127.0.0.1:9645".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(metrics, Some("127.0.0.1:9645".parse().unwrap()));
        let bad = resolve_with_metrics(ServeArgs {
            metrics_listen: Some("nonsense".into()),
            ..Default::default()
        });
        assert!(bad.unwrap_err().contains("--metrics-listen"));
    }

    /// deploy/keel.toml names every key a config file may hold, each with its default (or,
    /// for a setting without one, commented out with an example): loaded as it is, it
    /// resolves to the defaults; with its commented keys switched on, it sets every key.
    #[test]
    fn the_example_config_has_every_key_with_its_default() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/keel.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let example = resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        let defaults = resolve(ServeArgs::default()).unwrap();
        assert_eq!(
            format!("{:?}", ServeConfig { seed: 0, ..example }),
            format!(
                "{:?}",
                ServeConfig {
                    seed: 0,
                    ..defaults
                }
            )
        );
        let switched_on: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file: FileConfig = toml::from_str(&switched_on).unwrap();
        // Exhaustive: a key added to FileConfig without a line in the example fails to build.
        let FileConfig {
            node_id,
            data_dir,
            listen,
            metrics_listen,
            advertise,
            auto_create_topics,
            num_partitions,
            segment_bytes,
            message_max_bytes,
            max_request_bytes,
            cluster_id,
            group_initial_rebalance_delay_ms,
            log_cleaner_backoff_ms,
            log_retention_check_interval_ms,
            min_free_bytes,
            voters,
            peer_listen,
            rack,
            election_timeout_ms,
        } = file;
        let present = [
            node_id.is_some(),
            data_dir.is_some(),
            listen.is_some(),
            metrics_listen.is_some(),
            advertise.is_some(),
            auto_create_topics.is_some(),
            num_partitions.is_some(),
            segment_bytes.is_some(),
            message_max_bytes.is_some(),
            max_request_bytes.is_some(),
            cluster_id.is_some(),
            group_initial_rebalance_delay_ms.is_some(),
            log_cleaner_backoff_ms.is_some(),
            log_retention_check_interval_ms.is_some(),
            min_free_bytes.is_some(),
            voters.is_some(),
            peer_listen.is_some(),
            rack.is_some(),
            election_timeout_ms.is_some(),
        ];
        assert!(present.iter().all(|p| *p), "{present:?}");
    }

    #[test]
    fn listen_addresses_must_be_host_port_and_say_so() {
        for bad in ["9092", ":9092", "localhost", "127.0.0.1:", "127.0.0.1:port"] {
            let e = resolve(ServeArgs {
                listen: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.contains("expected HOST:PORT"), "{bad}: {e}");
            let e = resolve(ServeArgs {
                metrics_listen: Some(bad.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                e.starts_with("--metrics-listen") && e.contains("HOST:PORT"),
                "{e}"
            );
        }
        let c = resolve(ServeArgs {
            listen: Some("localhost:19092".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 19092);
    }

    #[test]
    fn every_interface_needs_an_advertised_address() {
        for any in ["0.0.0.0:9092", "[::]:9092"] {
            let e = resolve(ServeArgs {
                listen: Some(any.into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.contains("set --advertise"), "{e}");
            let c = resolve(ServeArgs {
                listen: Some(any.into()),
                advertise: Some("broker-1.example:9092".into()),
                ..Default::default()
            })
            .unwrap();
            assert!(c.listen.ip().is_unspecified());
            assert_eq!(
                (c.node.advertised_host.as_str(), c.node.advertised_port),
                ("broker-1.example", 9092)
            );
        }
        let e = resolve(ServeArgs {
            listen: Some("0.0.0.0:9092".into()),
            advertise: Some("0.0.0.0:9092".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("not an address clients can connect to"), "{e}");
    }

    #[test]
    fn advertise_must_be_host_port() {
        let r = resolve(ServeArgs {
            advertise: Some("nohost".into()),
            ..Default::default()
        });
        assert!(r.unwrap_err().contains("HOST:PORT"));
        let c = resolve(ServeArgs {
            advertise: Some("broker.example:9094".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node.advertised_port, 9094);
    }

    #[test]
    fn voters_make_a_cluster_broker_and_are_checked() {
        let c = resolve(ServeArgs {
            node_id: Some(2),
            listen: Some("127.0.0.1:9192".into()),
            voters: Some("1@127.0.0.1:9093, 2@127.0.0.1:9193,3@127.0.0.1:9293".into()),
            rack: Some("r1".into()),
            ..Default::default()
        })
        .unwrap();
        let cluster = c.node.cluster.as_ref().unwrap();
        let ids: Vec<i32> = cluster.voters.iter().map(|v| v.0).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(cluster.rack.as_deref(), Some("r1"));
        let peers = c.peers.unwrap();
        assert_eq!(peers.listen, "127.0.0.1:9193".parse().unwrap());
        let others: Vec<i32> = peers.addrs.keys().map(|v| v.0).collect();
        assert_eq!(others, [1, 3]);
        for (args, says) in [
            (("1@127.0.0.1:9093", Some(5)), "not among them"),
            (
                ("1@127.0.0.1:9093,1@127.0.0.1:9094", Some(1)),
                "named twice",
            ),
            (("one@127.0.0.1:9093", Some(1)), "not ID@HOST:PORT"),
            (("1@nohost", Some(1)), "expected HOST:PORT"),
            (("", Some(1)), "names no broker"),
        ] {
            let e = resolve(ServeArgs {
                node_id: args.1,
                voters: Some(args.0.to_string()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let e = resolve(ServeArgs {
            peer_listen: Some("127.0.0.1:9093".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("needs --voters"), "{e}");
        // Without voters, a single node, as before.
        assert!(resolve(ServeArgs::default())
            .unwrap()
            .node
            .cluster
            .is_none());
    }
}
