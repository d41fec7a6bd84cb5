//! One broker per data directory: the exclusive lock a [`crate::fs_storage::FsStorage`]
//! holds on its root for as long as it lives, and the start-up check that the directory can
//! really be written.
//!
//! Two brokers on one directory both append at the offsets they recovered, so the second
//! overwrites records the first acknowledged, and the next recovery cuts the log at the seam.
//! Kafka guards each log directory with an `flock` on its `.lock` file; so does Keel. The
//! lock is advisory and per open file description: it is released when the holder exits,
//! however it exits (kill -9 included), so a crashed broker never leaves a stale lock to be
//! removed by hand. The holder writes its pid into the file, for the refusal to name.
//!
//! A directory that cannot be written (a read-only filesystem, no permission for a non-root
//! user, a file where the directory should be) is refused at start-up as well: otherwise the
//! broker would start "serving" and then fail every write with KAFKA_STORAGE_ERROR. The probe
//! creates, writes, fsyncs and removes a file, which is what serving will do.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory (Kafka's name for the same file).
pub const LOCK_FILE: &str = ".lock";

/// The scratch file of the writability probe.
const PROBE_FILE: &str = ".write-probe";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the directory's lock.
    #[error(
        "the data directory {} is in use by another keel process{}: stop it, or give this broker its own --data-dir",
        path.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The path exists and is not a directory.
    #[error("the data directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// The directory cannot be created or written (read-only filesystem, permissions, ...).
    #[error("the data directory {} is not writable: {source}", path.display())]
    NotWritable { path: PathBuf, source: io::Error },
}

/// The held lock on a data directory; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DataDirLock {
    /// Kept open: closing it releases the lock.
    _file: File,
}

impl DataDirLock {
    /// Creates `root` if needed, takes its lock without waiting, records this process's pid
    /// in it and checks that the directory can be written.
    pub fn acquire(root: &Path) -> Result<DataDirLock, DataDirError> {
        let not_writable = |source| DataDirError::NotWritable {
            path: root.to_path_buf(),
            source,
        };
        if root.exists() && !root.is_dir() {
            return Err(DataDirError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        if let Err(source) = std::fs::create_dir_all(root) {
            // `create_dir_all` of a path under a regular file reports ENOTDIR.
            return Err(match source.kind() {
                io::ErrorKind::NotADirectory => DataDirError::NotADirectory {
                    path: root.to_path_buf(),
                },
                _ => not_writable(source),
            });
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join(LOCK_FILE))
            .map_err(not_writable)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(DataDirError::Locked {
                    path: root.to_path_buf(),
                    holder: holder_pid(&mut file),
                })
            }
            Err(e) => return Err(not_writable(e.into())),
        }
        let record_pid = |file: &mut File| -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        };
        record_pid(&mut file).map_err(not_writable)?;
        probe_writable(root).map_err(not_writable)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The pid the lock's holder wrote, if it wrote one.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Creates, writes, fsyncs and removes a scratch file in `root`.
fn probe_writable(root: &Path) -> io::Result<()> {
    let path = root.join(PROBE_FILE);
    let mut probe = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    probe.write_all(b"keel")?;
    probe.sync_all()?;
    drop(probe);
    std::fs::remove_file(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keel-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused_and_names_the_holder() {
        let dir = temp_dir("twice");
        let first = DataDirLock::acquire(&dir).unwrap();
        match DataDirLock::acquire(&dir) {
            Err(DataDirError::Locked { path, holder }) => {
                assert_eq!(path, dir);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        // Released with its holder: the next one takes it, no stale lock left behind.
        let again = DataDirLock::acquire(&dir).unwrap();
        drop(again);
        assert!(!dir.join(PROBE_FILE).exists(), "the probe cleans up");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let path = temp_dir("file");
        std::fs::write(&path, b"not a directory").unwrap();
        let err = DataDirLock::acquire(&path).unwrap_err();
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err}");
        let nested = path.join("below");
        let err = DataDirLock::acquire(&nested).unwrap_err();
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
