//! Connections to a Kafka cluster as its own clients keep them: a bootstrap connection for
//! cluster-wide questions, and one connection per broker for the requests that must go to a
//! partition's leader or a group's coordinator. Brokers are learnt from Metadata and reached
//! at their advertised HOST:PORT; a connection whose call failed is dropped, so the next call
//! opens a fresh one (the client marks a timed-out connection broken for good).

use super::errors::{is_retriable, CliError};
use super::ConnArgs;
use keel_net::client::{connect_tcp, ClientOptions, TcpClient};
use keel_net::codec;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How often, and how far apart, metadata and coordinator lookups are repeated while the
/// cluster answers with a retriable error (a topic just auto-created has no leader yet).
const LOOKUP_ATTEMPTS: u32 = 20;
const LOOKUP_BACKOFF: Duration = Duration::from_millis(250);

/// One partition of a topic, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub error_code: i16,
}

/// A topic and its partitions in index order, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub topic_id: codec::Uuid,
    pub is_internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The leader of `partition`, if Metadata named one.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| p.leader)
            .filter(|&l| l >= 0)
    }

    /// Whether `partition` exists.
    pub fn has(&self, partition: i32) -> bool {
        self.partitions.iter().any(|p| p.partition == partition)
    }
}

/// The connections of one admin command.
pub struct Cluster {
    options: ClientOptions,
    /// The bootstrap broker this command reached.
    bootstrap: SocketAddr,
    /// Open connections by address (the bootstrap one included).
    conns: BTreeMap<SocketAddr, TcpClient>,
    /// Broker id → advertised HOST:PORT, from the latest Metadata.
    brokers: BTreeMap<i32, String>,
}

impl Cluster {
    /// Connects to the first reachable `--bootstrap-server` address.
    pub async fn connect(args: &ConnArgs) -> Result<Cluster, CliError> {
        let options = ClientOptions {
            client_id: "keel-cli".to_string(),
            request_timeout: args.request_timeout(),
            ..ClientOptions::default()
        };
        let mut last = None;
        for spec in args
            .bootstrap_server
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match open(spec, &options).await {
                Ok((addr, client)) => {
                    let mut conns = BTreeMap::new();
                    conns.insert(addr, client);
                    return Ok(Cluster {
                        options,
                        bootstrap: addr,
                        conns,
                        brokers: BTreeMap::new(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| CliError::Usage("--bootstrap-server names no address".to_string())))
    }

    /// The bootstrap connection (reopened if a failure dropped it).
    pub async fn any(&mut self) -> Result<&mut TcpClient, CliError> {
        let addr = self.bootstrap;
        self.at(addr).await
    }

    /// The address of the bootstrap broker, for messages.
    pub fn bootstrap_addr(&self) -> SocketAddr {
        self.bootstrap
    }

    /// Every broker id the latest Metadata named.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// The advertised address of broker `node_id`, for messages.
    pub fn broker_addr(&self, node_id: i32) -> String {
        self.brokers
            .get(&node_id)
            .cloned()
            .unwrap_or_else(|| format!("broker {node_id}"))
    }

    /// The connection to broker `node_id` (as advertised in Metadata).
    pub async fn node(&mut self, node_id: i32) -> Result<&mut TcpClient, CliError> {
        if !self.brokers.contains_key(&node_id) {
            self.metadata(Some(&[]), false).await?;
        }
        let Some(spec) = self.brokers.get(&node_id).cloned() else {
            return Err(CliError::Other(format!(
                "broker {node_id} is not in the cluster metadata"
            )));
        };
        self.host_port(&spec).await
    }

    /// The connection to `spec` (HOST:PORT), reusing an open one to the same address.
    pub async fn host_port(&mut self, spec: &str) -> Result<&mut TcpClient, CliError> {
        let addr = resolve(spec).await?;
        self.at(addr).await
    }

    async fn at(&mut self, addr: SocketAddr) -> Result<&mut TcpClient, CliError> {
        if !self.conns.contains_key(&addr) {
            let client = connect_tcp(addr, self.options.clone())
                .await
                .map_err(|source| CliError::Connect {
                    addr: addr.to_string(),
                    source,
                })?;
            self.conns.insert(addr, client);
        }
        Ok(self
            .conns
            .get_mut(&addr)
            .expect("the connection was inserted just above"))
    }

    /// Forgets every connection but keeps the broker list: the next call reconnects. Called
    /// after a call fails in transport, since the client cannot be used after that.
    pub fn reset_connections(&mut self) {
        self.conns.clear();
    }

    /// Metadata for `topics` (`None`: all), remembering the brokers it names.
    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<codec::MetadataResponse, CliError> {
        let addr = self.bootstrap;
        let client = self.any().await?;
        let result = client
            .metadata_with(topics, allow_auto_topic_creation)
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.reset_connections();
                return Err(CliError::request(format!("metadata from {addr}"))(e));
            }
        };
        if response.error_code != 0 {
            return Err(CliError::kafka("metadata", response.error_code, None));
        }
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .iter()
                .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
                .collect();
        }
        Ok(response)
    }

    /// One topic's partitions with a leader each, waiting out retriable errors (a topic just
    /// created has no leader for a moment). `auto_create` lets the broker create it, as a
    /// Kafka producer does.
    pub async fn topic(&mut self, name: &str, auto_create: bool) -> Result<TopicInfo, CliError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.metadata(Some(&[name]), auto_create).await?;
            let Some(t) = response
                .topics
                .into_iter()
                .find(|t| t.name.as_deref() == Some(name))
            else {
                return Err(CliError::kafka(name, 3, None));
            };
            let leaderless = t.partitions.iter().any(|p| p.leader_id < 0);
            let retriable = is_retriable(t.error_code)
                || t.partitions.iter().any(|p| is_retriable(p.error_code))
                || (t.error_code == 0 && (t.partitions.is_empty() || leaderless));
            if t.error_code != 0 && !retriable {
                return Err(CliError::kafka(name, t.error_code, None));
            }
            if retriable && attempt < LOOKUP_ATTEMPTS {
                tokio::time::sleep(LOOKUP_BACKOFF).await;
                continue;
            }
            if t.error_code != 0 {
                return Err(CliError::kafka(name, t.error_code, None));
            }
            return Ok(topic_info(name, t));
        }
    }

    /// The advertised HOST:PORT of `group`'s coordinator, waiting out
    /// COORDINATOR_NOT_AVAILABLE and COORDINATOR_LOAD_IN_PROGRESS.
    pub async fn coordinator_addr(&mut self, group: &str) -> Result<String, CliError> {
        let addr = self.bootstrap;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.any().await?;
            let info = match client.find_coordinator(group).await {
                Ok(info) => info,
                Err(e) => {
                    self.reset_connections();
                    return Err(CliError::request(format!(
                        "finding the coordinator of {group} via {addr}"
                    ))(e));
                }
            };
            if info.error_code == 0 {
                return Ok(format!("{}:{}", info.host, info.port));
            }
            if !is_retriable(info.error_code) || attempt >= LOOKUP_ATTEMPTS {
                return Err(CliError::kafka(group, info.error_code, None));
            }
            tokio::time::sleep(LOOKUP_BACKOFF).await;
        }
    }
}

/// Reads a Metadata topic into a [`TopicInfo`], partitions in index order.
pub fn topic_info(name: &str, t: codec::MetadataResponseTopic) -> TopicInfo {
    let mut partitions: Vec<PartitionInfo> = t
        .partitions
        .into_iter()
        .map(|p| PartitionInfo {
            partition: p.partition_index,
            leader: p.leader_id,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes,
            isr: p.isr_nodes,
            offline: p.offline_replicas,
            error_code: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    TopicInfo {
        name: name.to_string(),
        topic_id: t.topic_id,
        is_internal: t.is_internal,
        partitions,
    }
}

/// Connects to `spec` (HOST:PORT), trying each address it resolves to.
async fn open(spec: &str, options: &ClientOptions) -> Result<(SocketAddr, TcpClient), CliError> {
    let addrs = resolve_all(spec).await?;
    let mut last = None;
    for addr in addrs {
        match connect_tcp(addr, options.clone()).await {
            Ok(client) => return Ok((addr, client)),
            Err(source) => {
                last = Some(CliError::Connect {
                    addr: if spec == addr.to_string() {
                        spec.to_string()
                    } else {
                        format!("{spec} ({addr})")
                    },
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| CliError::Other(format!("{spec}: resolves to no address"))))
}

async fn resolve(spec: &str) -> Result<SocketAddr, CliError> {
    resolve_all(spec)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Other(format!("{spec}: resolves to no address")))
}

async fn resolve_all(spec: &str) -> Result<Vec<SocketAddr>, CliError> {
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (host, port) = spec
        .rsplit_once(':')
        .ok_or_else(|| CliError::Usage(format!("{spec}: not a HOST:PORT address")))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(CliError::Usage(format!("{spec}: not a HOST:PORT address")));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(spec)
        .await
        .map_err(|e| CliError::Other(format!("cannot resolve {spec}: {e}")))?
        .collect();
    Ok(addrs)
}
