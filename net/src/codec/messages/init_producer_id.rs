//! InitProducerId (key 22) request and response, versions 0-5 in the codec (flexible from 2).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/InitProducerId{Request,Response}.json.
//! Version 6 (two-phase commit, KIP-939) is still `latestVersionUnstable` in Kafka 4.x: its
//! fields are declared (the response's are checked by kafka-protocol at v6) but v6 is outside
//! the codec range until Kafka settles it.

use crate::codec::schema::message;

message! {
    /// InitProducerIdRequest.
    pub struct InitProducerIdRequest flexible 2 {
        /// The transactional id, or null if the producer is not transactional.
        transactional_id: Option<String> = Some(String::new()), versions 0.., nullable 0..;
        /// The time in ms to wait before aborting idle transactions sent by this producer.
        transaction_timeout_ms: i32 = 0, versions 0..;
        /// The producer id, to resume after INVALID_PRODUCER_EPOCH (KIP-360), or -1.
        producer_id: i64 = -1, versions 3..;
        /// The producer's current epoch, or -1.
        producer_epoch: i16 = -1, versions 3..;
        /// True if the client wants two-phase commit for its transactions (v6, unstable).
        enable_2_pc: bool = false, versions 6..;
        /// True if the client wants to keep the ongoing transaction (v6, unstable).
        keep_prepared_txn: bool = false, versions 6..;
    }
}

message! {
    /// InitProducerIdResponse.
    pub struct InitProducerIdResponse flexible 2 {
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
        /// The error code, or 0.
        error_code: i16 = 0, versions 0..;
        /// The current producer id.
        producer_id: i64 = -1, versions 0..;
        /// The current epoch associated with the producer id.
        producer_epoch: i16 = 0, versions 0..;
        /// The producer id of the ongoing transaction, or -1 (v6).
        ongoing_txn_producer_id: i64 = -1, versions 6..;
        /// The epoch of the ongoing transaction, or -1 (v6).
        ongoing_txn_producer_epoch: i16 = -1, versions 6..;
    }
}
