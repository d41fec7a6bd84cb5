//! DescribeDelegationToken (key 41) request and response, versions 1-3 (flexible from 2; v0
//! was removed in Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/DescribeDelegationToken{Request,Response}.json.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// DescribeDelegationTokenRequest.
    pub struct DescribeDelegationTokenRequest flexible 2 {
        /// Each owner that we want to describe delegation tokens for, or null to describe all.
        owners: Option<Vec<DescribeDelegationTokenOwner>> = Some(Vec::new()), versions 0.., nullable 0..;
    }
}

message! {
    /// One owner whose tokens to describe.
    pub struct DescribeDelegationTokenOwner {
        /// The owner principal type.
        principal_type: String = String::new(), versions 0..;
        /// The owner principal name.
        principal_name: String = String::new(), versions 0..;
    }
}

message! {
    /// DescribeDelegationTokenResponse.
    pub struct DescribeDelegationTokenResponse flexible 2 {
        /// The error code, or 0 if there was no error.
        error_code: i16 = 0, versions 0..;
        /// The tokens.
        tokens: Vec<DescribedDelegationToken> = Vec::new(), versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
    }
}

message! {
    /// One delegation token.
    pub struct DescribedDelegationToken {
        /// The token principal type.
        principal_type: String = String::new(), versions 0..;
        /// The token principal name.
        principal_name: String = String::new(), versions 0..;
        /// The principal type of the requester of the token.
        token_requester_principal_type: String = String::new(), versions 3..;
        /// The principal name of the requester of the token.
        token_requester_principal_name: String = String::new(), versions 3..;
        /// The token issue timestamp in milliseconds.
        issue_timestamp: i64 = 0, versions 0..;
        /// The token expiry timestamp in milliseconds.
        expiry_timestamp: i64 = 0, versions 0..;
        /// The token maximum timestamp length in milliseconds.
        max_timestamp: i64 = 0, versions 0..;
        /// The token ID.
        token_id: String = String::new(), versions 0..;
        /// The token HMAC.
        hmac: Bytes = Bytes::new(), versions 0..;
        /// Those who are able to renew this token before it expires.
        renewers: Vec<DescribedDelegationTokenRenewer> = Vec::new(), versions 0..;
    }
}

message! {
    /// One renewer of a token.
    pub struct DescribedDelegationTokenRenewer {
        /// The renewer principal type.
        principal_type: String = String::new(), versions 0..;
        /// The renewer principal name.
        principal_name: String = String::new(), versions 0..;
    }
}
