//! The peer payload codec: [`PeerMsg`] (a connection's hello, keep-alive and the messages
//! it carries) to bytes and back. Raft's own values are laid out by [`keel_raft::codec`];
//! this adds the connection's framing messages and keel-core's [`PeerMessage`] envelope
//! (which Raft group, or which controller call), a tag byte per variant, fields in
//! declaration order, every length checked against the bytes that remain.

use keel_core::api::TopicId;
use keel_core::ids::PartitionId;
use keel_core::node::{PeerMessage, RaftGroup};
pub use keel_raft::codec::DecodeError;
use keel_raft::codec::{self as raft_codec, put, put_bytes, Reader};
use keel_raft::{Message, NodeId};

/// What travels on a peer connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMsg {
    /// The first frame of every connection: who is calling, in which cluster.
    Hello {
        /// The cluster's id; a connection from another cluster is refused.
        cluster: u64,
        /// The caller's node id.
        from: NodeId,
    },
    /// The receiver's sign of life, sent back on an inbound connection so the caller can
    /// tell a live stream from one lost in a partition (turmoil's and a real network's TCP
    /// may both go silent).
    Pong,
    /// A Raft message of the one group a standalone Raft driver runs ([`super::driver`]).
    Raft(Message),
    /// A broker's message to another broker (keel-core's vocabulary).
    Broker(PeerMessage),
}

/// Encodes `msg`.
#[must_use]
pub fn encode(msg: &PeerMsg) -> Vec<u8> {
    let mut w = Vec::new();
    match msg {
        PeerMsg::Hello { cluster, from } => {
            w.push(0);
            put(&mut w, *cluster);
            put(&mut w, from.0);
        }
        PeerMsg::Pong => w.push(1),
        PeerMsg::Raft(m) => {
            w.push(2);
            raft_codec::encode_message(&mut w, m);
        }
        PeerMsg::Broker(m) => {
            w.push(3);
            put_broker(&mut w, m);
        }
    }
    w
}

/// Decodes one whole payload; trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<PeerMsg, DecodeError> {
    let mut r = Reader::new(bytes);
    let msg = match r.u8()? {
        0 => PeerMsg::Hello {
            cluster: r.var()?,
            from: NodeId(r.var()?),
        },
        1 => PeerMsg::Pong,
        2 => PeerMsg::Raft(r.message()?),
        3 => PeerMsg::Broker(broker(&mut r)?),
        tag => return Err(DecodeError::Tag { what: "peer", tag }),
    };
    r.finish()?;
    Ok(msg)
}

/// A cluster id (keel-core's string, Kafka's cluster.id) as the 64-bit value a `Hello`
/// carries: FNV-1a, stable across builds and platforms.
#[must_use]
pub fn cluster_hash(cluster_id: &str) -> u64 {
    cluster_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn put_broker(w: &mut Vec<u8>, m: &PeerMessage) {
    match m {
        PeerMessage::Raft { group, message } => {
            w.push(0);
            match group {
                RaftGroup::Metadata => w.push(0),
                RaftGroup::Partition(p) => {
                    w.push(1);
                    w.extend_from_slice(&p.topic.0);
                    put(w, u64::from(p.index as u32));
                }
            }
            raft_codec::encode_message(w, message);
        }
        PeerMessage::Forward { id, records } => {
            w.push(1);
            put(w, *id);
            put_bytes(w, records);
        }
        PeerMessage::ForwardReply {
            id,
            error_code,
            message,
        } => {
            w.push(2);
            put(w, *id);
            put(w, u64::from(*error_code as u16));
            put_bytes(w, message.as_bytes());
        }
    }
}

fn broker(r: &mut Reader<'_>) -> Result<PeerMessage, DecodeError> {
    Ok(match r.u8()? {
        0 => {
            let group = match r.u8()? {
                0 => RaftGroup::Metadata,
                1 => {
                    let mut topic = [0u8; 16];
                    for b in &mut topic {
                        *b = r.u8()?;
                    }
                    let index = u32::try_from(r.var()?).map_err(|_| DecodeError::Varint)?;
                    RaftGroup::Partition(PartitionId {
                        topic: TopicId(topic),
                        index: index as i32,
                    })
                }
                tag => return Err(DecodeError::Tag { what: "group", tag }),
            };
            PeerMessage::Raft {
                group,
                message: r.message()?,
            }
        }
        1 => PeerMessage::Forward {
            id: r.var()?,
            records: r.bytes()?,
        },
        2 => PeerMessage::ForwardReply {
            id: r.var()?,
            error_code: u16::try_from(r.var()?).map_err(|_| DecodeError::Varint)? as i16,
            message: String::from_utf8(r.bytes()?).map_err(|_| DecodeError::Truncated)?,
        },
        tag => {
            return Err(DecodeError::Tag {
                what: "broker",
                tag,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_raft::{Index, Term};
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = Message> {
        let t = || any::<u64>().prop_map(Term);
        let i = || any::<u64>().prop_map(Index);
        prop_oneof![
            (t(), i(), t()).prop_map(|(term, last_log_index, last_log_term)| Message::PreVote {
                term,
                last_log_index,
                last_log_term
            }),
            (t(), any::<bool>()).prop_map(|(term, granted)| Message::PreVoteResp { term, granted }),
            t().prop_map(|term| Message::TimeoutNow { term }),
        ]
    }

    fn group() -> impl Strategy<Value = RaftGroup> {
        prop_oneof![
            Just(RaftGroup::Metadata),
            (any::<[u8; 16]>(), 0..i32::MAX).prop_map(|(t, index)| RaftGroup::Partition(
                PartitionId {
                    topic: TopicId(t),
                    index
                }
            )),
        ]
    }

    fn broker_msg() -> impl Strategy<Value = PeerMessage> {
        prop_oneof![
            (group(), message()).prop_map(|(group, message)| PeerMessage::Raft { group, message }),
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(id, records)| PeerMessage::Forward { id, records }),
            (any::<u64>(), any::<i16>(), ".{0,20}").prop_map(|(id, error_code, message)| {
                PeerMessage::ForwardReply {
                    id,
                    error_code,
                    message,
                }
            }),
        ]
    }

    fn peer_msg() -> impl Strategy<Value = PeerMsg> {
        prop_oneof![
            (any::<u64>(), any::<u64>()).prop_map(|(cluster, f)| PeerMsg::Hello {
                cluster,
                from: NodeId(f)
            }),
            Just(PeerMsg::Pong),
            message().prop_map(PeerMsg::Raft),
            broker_msg().prop_map(PeerMsg::Broker),
        ]
    }

    proptest! {
        #[test]
        fn every_message_round_trips(msg in peer_msg()) {
            let bytes = encode(&msg);
            prop_assert_eq!(decode(&bytes), Ok(msg.clone()));
            prop_assert_eq!(encode(&decode(&bytes).unwrap()), bytes.clone());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(decode(&longer), Err(DecodeError::Trailing(1)));
            for cut in 0..bytes.len() {
                prop_assert!(decode(&bytes[..cut]).is_err());
            }
        }

        #[test]
        fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn cluster_ids_hash_apart() {
        assert_ne!(cluster_hash("keel-cluster"), cluster_hash("keel-cluster2"));
        assert_eq!(cluster_hash("a"), cluster_hash("a"));
    }
}
