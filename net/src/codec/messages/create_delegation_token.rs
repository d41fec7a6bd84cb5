//! CreateDelegationToken (key 38) request and response, versions 1-3 (flexible from 2; v0 was
//! removed in Kafka 4.0).
//!
//! Schema: apache/kafka clients/src/main/resources/common/message/CreateDelegationToken{Request,Response}.json.

use bytes::Bytes;

use crate::codec::schema::message;

message! {
    /// CreateDelegationTokenRequest.
    pub struct CreateDelegationTokenRequest flexible 2 {
        /// The principal type of the token owner, or null if the owner is the requester.
        owner_principal_type: Option<String> = Some(String::new()), versions 3.., nullable 3..;
        /// The principal name of the token owner, or null if the owner is the requester.
        owner_principal_name: Option<String> = Some(String::new()), versions 3.., nullable 3..;
        /// A list of those who are allowed to renew this token before it expires.
        renewers: Vec<CreatableRenewers> = Vec::new(), versions 0..;
        /// The maximum lifetime of the token in milliseconds, or -1 to use the server side default.
        max_lifetime_ms: i64 = 0, versions 0..;
    }
}

message! {
    /// One principal allowed to renew the token.
    pub struct CreatableRenewers {
        /// The type of the Kafka principal.
        principal_type: String = String::new(), versions 0..;
        /// The name of the Kafka principal.
        principal_name: String = String::new(), versions 0..;
    }
}

message! {
    /// CreateDelegationTokenResponse.
    pub struct CreateDelegationTokenResponse flexible 2 {
        /// The top-level error, or zero if there was no error.
        error_code: i16 = 0, versions 0..;
        /// The principal type of the token owner.
        principal_type: String = String::new(), versions 0..;
        /// The name of the token owner.
        principal_name: String = String::new(), versions 0..;
        /// The principal type of the requester of the token.
        token_requester_principal_type: String = String::new(), versions 3..;
        /// The principal name of the requester of the token.
        token_requester_principal_name: String = String::new(), versions 3..;
        /// When this token was generated.
        issue_timestamp_ms: i64 = 0, versions 0..;
        /// When this token expires.
        expiry_timestamp_ms: i64 = 0, versions 0..;
        /// The maximum lifetime of this token.
        max_timestamp_ms: i64 = 0, versions 0..;
        /// The token UUID.
        token_id: String = String::new(), versions 0..;
        /// HMAC of the delegation token.
        hmac: Bytes = Bytes::new(), versions 0..;
        /// Throttle time in milliseconds.
        throttle_time_ms: i32 = 0, versions 0..;
    }
}
