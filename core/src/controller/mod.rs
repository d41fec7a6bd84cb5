//! `controller`: the cluster's metadata as a state machine fed by the metadata Raft log
//! (Kafka's KRaft `__cluster_metadata`): which brokers are registered, with the address
//! clients reach them at and their rack. Every broker of the cluster is a voter of the
//! metadata quorum ([`quorum`]) and applies the same committed records in the same order,
//! so every broker holds the same [`ClusterImage`]; the quorum's leader is the active
//! controller, the only one that appends.
//!
//! A record batch is one Raft entry and applies atomically: every record is checked
//! against the image first, and a batch that fails a check changes nothing (its proposer
//! learns why). Checks use only the image and the records, so every broker reaches the
//! same verdict.
//!
//! Records are laid out with keel-raft's varints ([`keel_raft::codec`]), a tag byte per
//! variant, fields in declaration order; decoding bounds every count by the bytes left.

pub mod quorum;

use crate::error::ErrorCode;
use crate::ids::NodeId;
use keel_raft::codec::{put, put_bytes, DecodeError, Reader};
use std::collections::BTreeMap;

/// The directory of the metadata quorum's Raft log (hard state, snapshot, entries), named
/// as Kafka names its metadata log. Topic names may not start with `__cluster_metadata`
/// (metadata.rs), so it never collides with a partition's directory.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// Kafka's NOT_CONTROLLER: the request reached a broker that is not the active controller.
pub const NOT_CONTROLLER: ErrorCode = ErrorCode(41);

/// Kafka's STALE_BROKER_EPOCH: a registration from a process older than the one registered.
pub const STALE_BROKER_EPOCH: ErrorCode = ErrorCode(77);

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    /// A broker (re)started and says where clients reach it. A registration replaces the
    /// broker's earlier one only if it comes from a later process (a higher
    /// `incarnation`), so a late retry of an old process's registration cannot undo a
    /// restart's.
    RegisterBroker(BrokerRegistration),
}

/// What the metadata log knows of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: NodeId,
    /// The start time of the broker's process, in nanoseconds of the driver's clock: a
    /// restart registers with a higher one (Kafka's incarnation id, ordered).
    pub incarnation: u64,
    /// Where clients connect (the advertised listener).
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The cluster's metadata as of some applied index: the same on every broker that applied
/// the same prefix of the metadata log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    pub brokers: BTreeMap<NodeId, BrokerRegistration>,
}

/// Why a batch of records was refused: a Kafka error code and a message for the client.
pub type Refusal = (ErrorCode, String);

impl ClusterImage {
    /// Applies one committed batch: all of it, or (if any record fails its check) none.
    pub fn apply(&mut self, records: &[MetadataRecord]) -> Result<(), Refusal> {
        let mut next = self.clone();
        for record in records {
            next.apply_one(record)?;
        }
        *self = next;
        Ok(())
    }

    fn apply_one(&mut self, record: &MetadataRecord) -> Result<(), Refusal> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                if r.id.0 < 0 {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("broker id {} is negative", r.id),
                    ));
                }
                match self.brokers.get(&r.id) {
                    // A retry of a registration already applied.
                    Some(old) if old.incarnation == r.incarnation => return Ok(()),
                    Some(old) if old.incarnation > r.incarnation => {
                        return Err((
                            STALE_BROKER_EPOCH,
                            format!("broker {} has registered since, from a later process", r.id),
                        ))
                    }
                    _ => {}
                }
                self.brokers.insert(r.id, r.clone());
                Ok(())
            }
        }
    }

    /// The image as snapshot bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = vec![IMAGE_VERSION];
        put(&mut w, self.brokers.len() as u64);
        for b in self.brokers.values() {
            put_registration(&mut w, b);
        }
        w
    }

    /// An image from snapshot bytes (empty bytes: the empty image of a new cluster).
    pub fn decode(bytes: &[u8]) -> Result<ClusterImage, DecodeError> {
        if bytes.is_empty() {
            return Ok(ClusterImage::default());
        }
        let mut r = Reader::new(bytes);
        match r.u8()? {
            IMAGE_VERSION => {}
            tag => {
                return Err(DecodeError::Tag {
                    what: "image version",
                    tag,
                })
            }
        }
        let mut image = ClusterImage::default();
        for _ in 0..r.count(MIN_REGISTRATION_BYTES)? {
            let b = registration(&mut r)?;
            image.brokers.insert(b.id, b);
        }
        r.finish()?;
        Ok(image)
    }
}

const IMAGE_VERSION: u8 = 1;
/// id, incarnation, host length, port, rack flag.
const MIN_REGISTRATION_BYTES: usize = 5;

/// Encodes one batch of records (one Raft entry, or one `Forward`).
#[must_use]
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    let mut w = Vec::new();
    put(&mut w, records.len() as u64);
    for record in records {
        match record {
            MetadataRecord::RegisterBroker(b) => {
                w.push(0);
                put_registration(&mut w, b);
            }
        }
    }
    w
}

/// Decodes one batch; trailing bytes are an error.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.count(1 + MIN_REGISTRATION_BYTES)?;
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        records.push(match r.u8()? {
            0 => MetadataRecord::RegisterBroker(registration(&mut r)?),
            tag => {
                return Err(DecodeError::Tag {
                    what: "metadata record",
                    tag,
                })
            }
        });
    }
    r.finish()?;
    Ok(records)
}

fn put_i32(w: &mut Vec<u8>, v: i32) {
    put(w, u64::from(v as u32));
}

fn i32_of(r: &mut Reader<'_>) -> Result<i32, DecodeError> {
    u32::try_from(r.var()?)
        .map(|v| v as i32)
        .map_err(|_| DecodeError::Varint)
}

fn string(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    String::from_utf8(r.bytes()?).map_err(|_| DecodeError::Tag {
        what: "utf-8",
        tag: 0,
    })
}

fn put_registration(w: &mut Vec<u8>, b: &BrokerRegistration) {
    put_i32(w, b.id.0);
    put(w, b.incarnation);
    put_bytes(w, b.host.as_bytes());
    put_i32(w, b.port);
    match &b.rack {
        None => w.push(0),
        Some(rack) => {
            w.push(1);
            put_bytes(w, rack.as_bytes());
        }
    }
}

fn registration(r: &mut Reader<'_>) -> Result<BrokerRegistration, DecodeError> {
    Ok(BrokerRegistration {
        id: NodeId(i32_of(r)?),
        incarnation: r.var()?,
        host: string(r)?,
        port: i32_of(r)?,
        rack: match r.u8()? {
            0 => None,
            1 => Some(string(r)?),
            tag => return Err(DecodeError::Tag { what: "rack", tag }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registration() -> impl Strategy<Value = BrokerRegistration> {
        (
            0..100i32,
            any::<u64>(),
            "[a-z.]{0,12}",
            any::<i32>(),
            proptest::option::of("[a-z0-9]{1,6}"),
        )
            .prop_map(|(id, incarnation, host, port, rack)| BrokerRegistration {
                id: NodeId(id),
                incarnation,
                host,
                port,
                rack,
            })
    }

    proptest! {
        #[test]
        fn records_and_images_round_trip(regs in proptest::collection::vec(registration(), 0..6)) {
            let records: Vec<_> = regs.iter().cloned().map(MetadataRecord::RegisterBroker).collect();
            let bytes = encode_records(&records);
            prop_assert_eq!(decode_records(&bytes), Ok(records.clone()));
            for cut in 0..bytes.len() {
                prop_assert!(decode_records(&bytes[..cut]).is_err());
            }
            let mut image = ClusterImage::default();
            for r in &records {
                // A repeated id with a lower incarnation is refused, which is fine here.
                let _ = image.apply(std::slice::from_ref(r));
            }
            prop_assert_eq!(ClusterImage::decode(&image.encode()), Ok(image));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_records(&bytes);
            let _ = ClusterImage::decode(&bytes);
        }
    }

    #[test]
    fn a_batch_applies_whole_or_not_at_all() {
        let ok = BrokerRegistration {
            id: NodeId(1),
            incarnation: 7,
            host: "h".into(),
            port: 9092,
            rack: None,
        };
        let bad = BrokerRegistration {
            id: NodeId(-3),
            ..ok.clone()
        };
        let mut image = ClusterImage::default();
        let batch = [
            MetadataRecord::RegisterBroker(ok.clone()),
            MetadataRecord::RegisterBroker(bad),
        ];
        assert_eq!(
            image.apply(&batch).unwrap_err().0,
            ErrorCode::INVALID_REQUEST
        );
        assert!(image.brokers.is_empty());
        image
            .apply(&[MetadataRecord::RegisterBroker(ok.clone())])
            .unwrap();
        // A restart's registration replaces the old one; a retry of it changes nothing.
        let restarted = BrokerRegistration {
            incarnation: 8,
            port: 9093,
            ..ok.clone()
        };
        image
            .apply(&[MetadataRecord::RegisterBroker(restarted.clone())])
            .unwrap();
        image
            .apply(&[MetadataRecord::RegisterBroker(restarted.clone())])
            .unwrap();
        assert_eq!(image.brokers[&NodeId(1)], restarted);
        // The old process's late retry is refused.
        let late = image.apply(&[MetadataRecord::RegisterBroker(ok)]);
        assert_eq!(late.unwrap_err().0, STALE_BROKER_EPOCH);
        assert_eq!(image.brokers[&NodeId(1)], restarted);
    }
}
