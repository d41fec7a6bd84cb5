//! What can go wrong in an admin command, said in one line: a Kafka error by its name (as
//! Kafka's own tools print it), a connection that failed with the address it was for, a flag
//! that makes no sense. `keel` prints `keel <command>: <error>` and exits non-zero.

use keel_core::error::ErrorCode;
use keel_net::client::ClientError;
use std::fmt;

/// Why an admin command failed.
#[derive(Debug)]
pub enum CliError {
    /// A flag or input the command cannot use (exit status 2).
    Usage(String),
    /// No connection to a broker could be made.
    Connect { addr: String, source: ClientError },
    /// A request to a broker failed in transport (timeout, IO, bad response).
    Request { what: String, source: ClientError },
    /// The broker answered with a Kafka error code about `subject` (a topic, a partition,
    /// a group).
    Kafka {
        subject: String,
        code: i16,
        message: Option<String>,
    },
    /// Anything else, said in full.
    Other(String),
}

impl CliError {
    /// A Kafka error about `subject`; an empty or absent broker message is replaced by
    /// Kafka's default text for the code.
    pub fn kafka(subject: impl Into<String>, code: i16, message: Option<String>) -> CliError {
        CliError::Kafka {
            subject: subject.into(),
            code,
            message: message.filter(|m| !m.trim().is_empty()),
        }
    }

    /// A failed request, `what` naming the call and the broker.
    pub fn request(what: impl Into<String>) -> impl FnOnce(ClientError) -> CliError {
        let what = what.into();
        move |source| CliError::Request { what, source }
    }

    /// The same error with `note` appended to its line (e.g. how much work was done first).
    pub fn noted(self, note: &str) -> CliError {
        match self {
            CliError::Usage(m) => CliError::Usage(format!("{m} ({note})")),
            CliError::Other(m) => CliError::Other(format!("{m} ({note})")),
            CliError::Kafka {
                subject,
                code,
                message,
            } => {
                let text = message
                    .as_deref()
                    .or_else(|| default_message(code))
                    .unwrap_or("")
                    .to_string();
                CliError::Kafka {
                    subject,
                    code,
                    message: Some(format!("{text} ({note})")),
                }
            }
            CliError::Connect { addr, source } => {
                CliError::Other(format!("{} ({note})", CliError::Connect { addr, source }))
            }
            CliError::Request { what, source } => CliError::Request {
                what: format!("{what} ({note})"),
                source,
            },
        }
    }

    /// The process exit status for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// The Kafka error code, if the broker sent one.
    pub fn code(&self) -> Option<i16> {
        match self {
            CliError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Other(m) => f.write_str(m),
            // It names the address itself: "127.0.0.1:9644 answered with HTTP, ...".
            CliError::Connect {
                source: source @ ClientError::NotKafka { .. },
                ..
            } => write!(f, "{source}"),
            CliError::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            CliError::Request { what, source } => write!(f, "{what}: {source}"),
            CliError::Kafka {
                subject,
                code,
                message,
            } => {
                let name = error_name(*code);
                let text = message
                    .as_deref()
                    .or_else(|| default_message(*code))
                    .unwrap_or("");
                // The whole error stays on one line whatever the broker put in its message.
                let text = text.replace(['\n', '\r'], " ");
                if text.is_empty() {
                    write!(f, "{subject}: {name}")
                } else {
                    write!(f, "{subject}: {name}: {text}")
                }
            }
        }
    }
}

/// Kafka's name for an error code (`TOPIC_ALREADY_EXISTS`), or `ERROR_<code>` for a code
/// Kafka's table does not have.
pub fn error_name(code: i16) -> String {
    ErrorCode(code).to_string()
}

/// Kafka's default description of an error code.
pub fn default_message(code: i16) -> Option<&'static str> {
    ErrorCode(code).description()
}

/// Whether a request that failed with `code` may succeed if repeated after refreshing
/// metadata (Kafka's `RetriableException`s that a CLI can wait out).
pub fn is_retriable(code: i16) -> bool {
    matches!(
        code,
        // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
        // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
        // NOT_ENOUGH_REPLICAS, NOT_CONTROLLER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
        // OFFSET_NOT_AVAILABLE, THROTTLING_QUOTA_EXCEEDED.
        5 | 6 | 7 | 13 | 14 | 15 | 16 | 19 | 41 | 74 | 75 | 78 | 89
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_print_their_name_and_the_broker_message() {
        let e = CliError::kafka("orders", 36, Some("Topic 'orders' already exists.".into()));
        assert_eq!(
            e.to_string(),
            "orders: TOPIC_ALREADY_EXISTS: Topic 'orders' already exists."
        );
        let e = CliError::kafka("orders/3", 3, None);
        assert_eq!(
            e.to_string(),
            "orders/3: UNKNOWN_TOPIC_OR_PARTITION: This server does not host this topic-partition."
        );
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(9999), "ERROR_9999");
        let e = CliError::kafka("g", 68, Some("two\nlines".into()));
        assert_eq!(e.to_string(), "g: NON_EMPTY_GROUP: two lines");
    }
}
