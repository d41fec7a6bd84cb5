//! RenewDelegationToken (key 39) request and response, versions 1-2 (flexible from 2; v0 was
//! removed in Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/RenewDelegationToken{Request,Response}.json.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// RenewDelegationTokenRequest.
    pub struct RenewDelegationTokenRequest flexible 2 {
        /// The HMAC of the delegation token.
        hmac: Bytes = Bytes::new(), versions 0..;
        /// The renewal time period in milliseconds.
        renew_period_ms: i64 = 0, versions 0..;
    }
}

message! {
    /// RenewDelegationTokenResponse.
    pub struct RenewDelegationTokenResponse flexible 2 {
        /// The error code, or 0 if there was no error.
        error_code: i16 = 0, versions 0..;
        /// The timestamp in milliseconds at which this token expires.
        expiry_timestamp_ms: i64 = 0, versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
    }
}
