//! The node's side of a cluster: it hosts its replica of the metadata quorum
//! (controller/quorum.rs), routes peer messages to it, answers other brokers' `Forward`s
//! when it is the active controller, and registers itself with the controller until the
//! metadata log holds this process's registration. A single node (no `cluster` in its
//! config) hosts no Raft group and drops every peer message.

use super::{Node, NodeTimer, OpenError, PeerMessage, RaftGroup};
use crate::controller::quorum::{MetadataQuorum, Proposer, QuorumConfig};
use crate::controller::{self, BrokerRegistration, MetadataRecord, NOT_CONTROLLER};
use crate::error::ErrorCode;
use crate::ids::{NodeId, Offset};
use crate::node::Output;
use std::time::Duration;

impl Node {
    /// Opens the metadata quorum's replica of a cluster broker and schedules its first
    /// registration.
    pub(crate) fn open_quorum(&mut self, seed: u64) -> Result<(), OpenError> {
        let Some(cluster) = &self.config.cluster else {
            return Ok(());
        };
        let config = QuorumConfig {
            voters: cluster.voters.clone(),
            election_timeout_ms: cluster.election_timeout_ms,
            heartbeat_interval_ms: cluster.heartbeat_interval_ms,
            snapshot_every: cluster.snapshot_every,
        };
        let quorum = MetadataQuorum::open(
            self.storage.as_ref(),
            self.config.node_id,
            &config,
            // Its own stream: the node's draws must not shift with the quorum's.
            seed ^ 0x6d65_7461_6461_7461,
            self.now,
        )
        .map_err(|e| OpenError::Metadata {
            file: controller::METADATA_LOG_DIR.to_string(),
            reason: e.to_string(),
        })?;
        self.timers
            .set_or_cancel(NodeTimer::Quorum, quorum.next_deadline());
        self.quorum = Some(quorum);
        self.timers.set(NodeTimer::Register, self.now);
        Ok(())
    }

    pub(crate) fn tick_quorum(&mut self) {
        if let Some(q) = self.quorum.as_mut() {
            q.tick(self.now, self.storage.as_ref(), &mut self.outputs);
        }
    }

    pub(crate) fn on_quorum_flushed(&mut self, upto: Offset) {
        if let Some(q) = self.quorum.as_mut() {
            q.persisted(self.now, upto, self.storage.as_ref(), &mut self.outputs);
        }
    }

    /// After every input: answers the proposals the quorum decided, re-arms its timer,
    /// and stops the node if its log could not be written.
    pub(crate) fn poll_quorum(&mut self) {
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        for (proposer, verdict) in q.take_answers() {
            match proposer {
                Proposer::Remote { from, id } => {
                    let (error_code, message) = match verdict {
                        Ok(()) => (ErrorCode::NONE, String::new()),
                        Err((code, message)) => (code, message),
                    };
                    self.outputs.push_back(Output::SendPeer {
                        to: from,
                        message: PeerMessage::ForwardReply {
                            id,
                            error_code: error_code.0,
                            message,
                        },
                    });
                }
                // This broker's registration: `register` reads the outcome from the image.
                Proposer::Local(_) => {}
            }
        }
        if let Some(reason) = q.failure() {
            self.fatal.get_or_insert_with(|| reason.to_string());
        }
        let deadline = q.next_deadline();
        self.timers.set_or_cancel(NodeTimer::Quorum, deadline);
    }

    /// The active controller, if this broker knows one (a cluster's Metadata
    /// `controller_id`; a single node is its own).
    pub(crate) fn controller_id(&self) -> Option<NodeId> {
        match &self.quorum {
            Some(q) => q.leader(),
            None => Some(self.config.node_id),
        }
    }

    /// The brokers clients are told of, by id: in a cluster, every broker the metadata log
    /// holds a registration of; a single node is the only one.
    pub(crate) fn live_brokers(&self) -> Vec<crate::api::BrokerInfo> {
        match &self.quorum {
            Some(q) => q
                .image()
                .brokers
                .values()
                .map(|b| crate::api::BrokerInfo {
                    node_id: b.id.0,
                    host: b.host.clone(),
                    port: b.port,
                    rack: b.rack.clone(),
                })
                .collect(),
            None => vec![crate::api::BrokerInfo {
                node_id: self.config.node_id.0,
                host: self.config.advertised_host.clone(),
                port: self.config.advertised_port,
                rack: None,
            }],
        }
    }

    /// Whether the metadata log holds this process's registration.
    pub(crate) fn is_registered(&self) -> bool {
        self.quorum.as_ref().is_some_and(|q| {
            q.image()
                .brokers
                .get(&self.config.node_id)
                .is_some_and(|b| b.incarnation == self.incarnation)
        })
    }

    /// Asks the controller to record this broker's address, until the metadata log holds
    /// it: proposed directly on the controller, forwarded to it from anywhere else, and
    /// retried every half election timeout (a lost message, a controller that changed).
    pub(crate) fn register(&mut self) {
        let Some(cluster) = &self.config.cluster else {
            return;
        };
        if self.is_registered() {
            return;
        }
        let retry = Duration::from_millis((cluster.election_timeout_ms / 2).max(10));
        let record = MetadataRecord::RegisterBroker(BrokerRegistration {
            id: self.config.node_id,
            incarnation: self.incarnation,
            host: self.config.advertised_host.clone(),
            port: self.config.advertised_port,
            rack: cluster.rack.clone(),
        });
        let records = controller::encode_records(&[record]);
        let id = self.next_forward_id;
        self.next_forward_id += 1;
        self.timers.set(NodeTimer::Register, self.now + retry);
        let Some(q) = self.quorum.as_mut() else {
            return;
        };
        if q.is_leader() {
            let proposed = q.propose(
                self.now,
                records,
                Proposer::Local(id),
                self.storage.as_ref(),
                &mut self.outputs,
            );
            if let Err((_, why)) = proposed {
                tracing::debug!(%why, "registration not proposed; retrying");
            }
        } else if let Some(leader) = q.leader() {
            self.outputs.push_back(Output::SendPeer {
                to: leader,
                message: PeerMessage::Forward { id, records },
            });
        }
    }

    /// A message from another broker, checked by the driver only for coming intact from
    /// a broker of this cluster.
    pub(crate) fn on_peer_message(&mut self, from: NodeId, message: PeerMessage) {
        let Some(q) = self.quorum.as_mut() else {
            return self.drop_peer_message(from, &message);
        };
        match message {
            PeerMessage::Raft {
                group: RaftGroup::Metadata,
                message,
            } => q.step(
                self.now,
                from,
                message,
                self.storage.as_ref(),
                &mut self.outputs,
            ),
            PeerMessage::Raft {
                group: RaftGroup::Partition(_),
                ..
            } => self.drop_peer_message(from, &message),
            PeerMessage::Forward { id, records } => {
                let refused = match controller::decode_records(&records) {
                    Err(e) => Some((
                        ErrorCode::INVALID_REQUEST,
                        format!("metadata records do not decode: {e}"),
                    )),
                    Ok(_) => q
                        .propose(
                            self.now,
                            records,
                            Proposer::Remote { from, id },
                            self.storage.as_ref(),
                            &mut self.outputs,
                        )
                        .err(),
                };
                if let Some((code, message)) = refused {
                    self.outputs.push_back(Output::SendPeer {
                        to: from,
                        message: PeerMessage::ForwardReply {
                            id,
                            error_code: code.0,
                            message,
                        },
                    });
                }
            }
            PeerMessage::ForwardReply {
                id,
                error_code,
                message,
            } => {
                // Only registrations are forwarded so far; `register` reads their outcome
                // from the image and retries NOT_CONTROLLER itself.
                if error_code != ErrorCode::NONE.0 && error_code != NOT_CONTROLLER.0 {
                    tracing::warn!(%from, id, error_code, %message, "the controller refused a request");
                }
            }
        }
    }

    /// A message for a Raft group this node does not host (one deleted, moved away, not
    /// yet created here, or any group at all on a single node) is dropped and counted, as
    /// Raft expects of a lost message; its sender retries or learns the group's new home
    /// from the metadata log.
    fn drop_peer_message(&mut self, from: NodeId, message: &PeerMessage) {
        self.dropped_peer_messages += 1;
        let group = match message {
            PeerMessage::Raft { group, .. } => Some(*group),
            _ => None,
        };
        if let Some(held_back) =
            self.throttle
                .borrow_mut()
                .allow("peer", &from.to_string(), self.now)
        {
            tracing::warn!(%from, ?group, held_back, "dropped a peer message for a Raft group this node does not host");
        }
    }
}
