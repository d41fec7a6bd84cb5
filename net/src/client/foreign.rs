//! Telling a peer that does not speak Kafka from a broker that failed: what the first response
//! on a connection looked like when it was no Kafka frame.
//!
//! A Kafka response starts with a 4-byte big-endian length. A web server (or Keel's own
//! metrics listener) answers a Kafka request with `HTTP/1.1 400 ...`, whose first four bytes
//! read as a length of 1213486160 (`0x48545450`); a TLS listener answers with an alert record
//! (`15 03 0x ..`); an SSH or SMTP server greets with text. None of these is a plausible first
//! response (an ApiVersions answer is a few hundred bytes), so the client names what it saw
//! instead of reporting a frame length or an early EOF. Only the first response on a
//! connection is judged this way: once a peer has answered in Kafka it speaks Kafka.

use std::fmt;

/// The largest first response frame believed to be Kafka: the ApiVersions answer, which is
/// under 2 KiB for every Kafka release; anything near this bound is something else.
pub const FIRST_RESPONSE_MAX_BYTES: usize = 1024 * 1024;

/// How many of a foreign peer's first bytes an error quotes.
pub const QUOTED_BYTES: usize = 24;

/// What a peer sent instead of a Kafka response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignReply {
    /// An HTTP response; its status line as sent (e.g. `HTTP/1.1 400 Bad Request`).
    Http { status_line: String },
    /// A TLS record: the port wants a TLS handshake first.
    Tls,
    /// The connection closed before a whole length prefix arrived.
    Closed {
        /// The bytes that did arrive (fewer than four).
        bytes: Vec<u8>,
    },
    /// Bytes that are not a Kafka response: an implausible length prefix, or a frame that
    /// does not decode as the answer to the request.
    Garbage {
        /// The first bytes received, at most [`QUOTED_BYTES`].
        bytes: Vec<u8>,
    },
}

impl ForeignReply {
    /// Classifies the start of a first response whose length prefix was refused: `head` is
    /// the prefix and whatever followed it at once.
    pub fn classify(head: &[u8]) -> ForeignReply {
        if head.starts_with(b"HTTP") {
            let line_end = head
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .unwrap_or(head.len());
            let status_line = String::from_utf8_lossy(&head[..line_end])
                .trim()
                .to_string();
            return ForeignReply::Http { status_line };
        }
        // A TLS record: content type 20..=23 (change_cipher_spec, alert, handshake,
        // application_data) and protocol major version 3 (SSL 3.0 to TLS 1.3).
        if head.len() >= 2 && (0x14..=0x17).contains(&head[0]) && head[1] == 0x03 {
            return ForeignReply::Tls;
        }
        ForeignReply::Garbage {
            bytes: head[..head.len().min(QUOTED_BYTES)].to_vec(),
        }
    }
}

impl fmt::Display for ForeignReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForeignReply::Http { status_line } => write!(
                f,
                "answered with HTTP (\"{status_line}\"), not the Kafka protocol: is this a \
                 metrics or web port?"
            ),
            ForeignReply::Tls => f.write_str(
                "answered with TLS, not the plain Kafka protocol: is this a TLS listener?",
            ),
            ForeignReply::Closed { bytes } if bytes.is_empty() => f.write_str(
                "does not speak the Kafka protocol: it closed the connection without answering \
                 the ApiVersions request",
            ),
            ForeignReply::Closed { bytes } => write!(
                f,
                "does not speak the Kafka protocol: it sent \"{}\" and closed the connection",
                Quoted(bytes)
            ),
            ForeignReply::Garbage { bytes } => write!(
                f,
                "does not speak the Kafka protocol: it sent \"{}\", which is no Kafka response",
                Quoted(bytes)
            ),
        }
    }
}

/// Bytes as printable ASCII, anything else as `\xNN`, so an error stays one line.
struct Quoted<'a>(&'a [u8]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_reply_is_named_with_its_status_line() {
        // 0x48545450 is the "frame length 1213486160" a plain frame reader reports.
        assert_eq!(u32::from_be_bytes(*b"HTTP"), 1_213_486_160);
        let r = ForeignReply::classify(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n");
        assert_eq!(
            r,
            ForeignReply::Http {
                status_line: "HTTP/1.1 400 Bad Request".into()
            }
        );
        assert_eq!(
            r.to_string(),
            "answered with HTTP (\"HTTP/1.1 400 Bad Request\"), not the Kafka protocol: is this \
             a metrics or web port?"
        );
        assert_eq!(
            ForeignReply::classify(b"HTTP"),
            ForeignReply::Http {
                status_line: "HTTP".into()
            }
        );
    }

    #[test]
    fn tls_and_other_greetings_are_told_apart() {
        assert_eq!(
            ForeignReply::classify(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            ForeignReply::Tls
        );
        let ssh = ForeignReply::classify(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n");
        assert_eq!(
            ssh.to_string(),
            "does not speak the Kafka protocol: it sent \"SSH-2.0-OpenSSH_9.6p1 Ub\", which is \
             no Kafka response"
        );
        let closed = ForeignReply::Closed {
            bytes: vec![0, 0, b'\n'],
        };
        assert_eq!(
            closed.to_string(),
            "does not speak the Kafka protocol: it sent \"\\x00\\x00\\x0a\" and closed the \
             connection"
        );
        assert!(ForeignReply::Closed { bytes: vec![] }
            .to_string()
            .contains("closed the connection without answering"));
    }
}
