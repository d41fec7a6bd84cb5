//! The file-descriptor budget of one `keel serve` process: the soft RLIMIT_NOFILE raised to
//! the hard limit at start-up ([`raise_nofile_limit`]) and the result split three ways
//! ([`FdBudget::from_limit`]):
//!
//! - **a fixed reserve** of [`RESERVED_FDS`] for what every broker holds or opens whatever
//!   its load: stdin/stdout/stderr, the data directory's lock file, the Kafka and metrics
//!   listeners, tokio's epoll and wakers, the signal pipe, the metrics task's reads of
//!   `/proc`, up to [`crate::metrics::MAX_HTTP_CONNECTIONS`] scrapes at once, and slack;
//! - **the storage's file cache** (`FsStorage`'s cap, which counts every descriptor it opens,
//!   see fs_storage.rs): a quarter of the limit, at least [`MIN_OPEN_FILES`] and at most
//!   [`MAX_OPEN_FILES`] (past that, more handles buy little: a partition's hot files are its
//!   active segment and index);
//! - **client and peer connections**: everything left, at least [`MIN_CONNECTIONS`]. The
//!   accept loop closes a connection over this at once, so a crowd of clients cannot take
//!   the descriptors the logs need, nor the logs those that let an operator connect.
//!
//! Under the common default of 1,024: 64 reserved, 256 files, 704 connections. Under
//! systemd's `LimitNOFILE=65536`: 64, 16,384 and 49,088.

use std::fmt;

/// Descriptors kept for the process's fixed needs; see the module docs.
pub const RESERVED_FDS: u64 = 64;

/// The file cache never gets fewer than this, however low the limit.
pub const MIN_OPEN_FILES: u64 = 16;

/// Nor more than this, however high.
pub const MAX_OPEN_FILES: u64 = 65_536;

/// Connections allowed at least, even when the limit is too low for the split to leave them.
pub const MIN_CONNECTIONS: u64 = 16;

/// RLIMIT_NOFILE as start-up found it and left it (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit before raising it.
    pub soft_before: Option<u64>,
    /// The soft limit now: the hard limit, if raising it worked.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// Why the soft limit could not be raised, if it could not.
    pub raise_error: Option<String>,
}

impl NofileLimit {
    /// The limit to budget for: the soft one, or [`MAX_OPEN_FILES`] × 4 when unlimited.
    pub fn effective(&self) -> u64 {
        self.soft.unwrap_or(MAX_OPEN_FILES * 4)
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (a process may, without privilege) and
/// says what it found and did. On failure the soft limit stays and `raise_error` says why.
pub fn raise_nofile_limit() -> NofileLimit {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let mut limit = NofileLimit {
        soft_before: before.current,
        soft: before.current,
        hard: before.maximum,
        raise_error: None,
    };
    if before.current == before.maximum {
        return limit;
    }
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.soft = getrlimit(Resource::Nofile).current,
        Err(e) => limit.raise_error = Some(e.to_string()),
    }
    limit
}

/// How one process's descriptors are shared out; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The limit split.
    pub limit: u64,
    /// The storage's file cache cap.
    pub max_open_files: usize,
    /// Client and peer connections served at once.
    pub max_connections: usize,
    /// Kept for the process's fixed needs.
    pub reserved: u64,
}

impl FdBudget {
    /// The split of `limit` descriptors.
    pub fn from_limit(limit: u64) -> FdBudget {
        let files = (limit / 4).clamp(MIN_OPEN_FILES, MAX_OPEN_FILES);
        let connections = limit
            .saturating_sub(RESERVED_FDS + files)
            .max(MIN_CONNECTIONS);
        FdBudget {
            limit,
            max_open_files: usize::try_from(files).unwrap_or(usize::MAX),
            max_connections: usize::try_from(connections).unwrap_or(usize::MAX),
            reserved: RESERVED_FDS,
        }
    }

    /// Whether the parts add up to more than the limit (a limit too low to split).
    pub fn overcommitted(&self) -> bool {
        self.reserved + self.max_open_files as u64 + self.max_connections as u64 > self.limit
    }
}

impl fmt::Display for FdBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} descriptors: {} for open files, {} for connections, {} reserved",
            self.limit, self.max_open_files, self.max_connections, self.reserved
        )
    }
}

/// The raised limit and the budget split from it, logged once start-up has succeeded.
pub struct StartUp {
    limit: NofileLimit,
    pub budget: FdBudget,
}

/// What `keel serve` does first: raises the limit and splits it. Nothing is logged yet, so
/// that a start-up refusal stays one line ([`StartUp::log`] follows once the data directory
/// is locked and the listener bound).
pub fn at_start_up() -> StartUp {
    let limit = raise_nofile_limit();
    let budget = FdBudget::from_limit(limit.effective());
    StartUp { limit, budget }
}

impl StartUp {
    /// Logs both values in one line, and a warning when the limit is too low to split.
    pub fn log(&self) {
        log_start_up(&self.limit, &self.budget);
    }
}

fn log_start_up(limit: &NofileLimit, budget: &FdBudget) {
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    match &limit.raise_error {
        None => tracing::info!(
            soft_before = %show(limit.soft_before),
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            max_open_files = budget.max_open_files,
            max_connections = budget.max_connections,
            "open file limit (RLIMIT_NOFILE)"
        ),
        Some(error) => tracing::warn!(
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            %error,
            max_open_files = budget.max_open_files,
            max_connections = budget.max_connections,
            "open file limit (RLIMIT_NOFILE): cannot raise the soft limit to the hard one"
        ),
    }
    if budget.overcommitted() {
        tracing::warn!(
            %budget,
            "the open file limit is too low to keep files and connections apart; raise it (LimitNOFILE=65536)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_of_common_limits() {
        let b = FdBudget::from_limit(1024);
        assert_eq!((b.max_open_files, b.max_connections), (256, 704));
        assert!(!b.overcommitted());
        let b = FdBudget::from_limit(65_536);
        assert_eq!((b.max_open_files, b.max_connections), (16_384, 49_088));
        let b = FdBudget::from_limit(1 << 20);
        assert_eq!(b.max_open_files, 65_536, "capped");
        assert_eq!(b.max_connections as u64, (1 << 20) - 64 - 65_536);
    }

    #[test]
    fn a_tiny_limit_keeps_the_floors_and_says_it_is_overcommitted() {
        let b = FdBudget::from_limit(64);
        assert_eq!((b.max_open_files, b.max_connections), (16, 16));
        assert!(b.overcommitted());
        let b = FdBudget::from_limit(0);
        assert_eq!((b.max_open_files, b.max_connections), (16, 16));
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let limit = raise_nofile_limit();
        assert_eq!(limit.raise_error, None);
        assert_eq!(limit.soft, limit.hard);
        // Idempotent: a second call finds nothing to raise.
        assert_eq!(raise_nofile_limit().soft_before, limit.soft);
    }
}
