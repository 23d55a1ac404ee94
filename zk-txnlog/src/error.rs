//! The one error type of the crate.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the log and the snapshot store report.
///
/// Storage errors name the file, the byte offset and, where known, the key, so an operator can
/// find the damage with a hex dump.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed. After this the log is latched (see [`Error::Latched`]).
    #[error("I/O error on {file}: {source}")]
    Io {
        /// The file (or directory) the call was about.
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An earlier write or sync failed; every call fails until the log is reopened.
    #[error("log latched after an earlier I/O failure: {0}")]
    Latched(String),
    /// Bytes on disk are damaged somewhere other than the tail that a crash may tear.
    #[error("corrupt log {file} at offset {offset} (last good key {key:?}): {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the first bad byte or frame.
        offset: u64,
        /// The last key read intact before the damage, if any.
        key: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A segment that must exist is absent.
    #[error("missing log segment: {file} expected {expected}")]
    MissingSegment {
        /// The file whose header or seal refers to the missing one.
        file: PathBuf,
        /// What was expected (the missing file's name or its first key).
        expected: String,
    },
    /// The key of an append is not greater than the last key (or not the next one in
    /// contiguous mode).
    #[error("key {key:#x} out of order: last key is {last:#x}")]
    KeyOrder {
        /// The rejected key.
        key: u64,
        /// The last key in the log (or the floor set by recovery).
        last: u64,
    },
    /// A record is larger than the configured maximum.
    #[error("record of {len} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// Payload length.
        len: usize,
        /// `Options::max_record_bytes`.
        max: usize,
    },
    /// Another process (or another handle) holds the directory lock.
    #[error("log directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The options are inconsistent.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A snapshot failed verification.
    #[error("invalid snapshot {file}: {reason}")]
    BadSnapshot {
        /// The snapshot file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log has been closed.
    #[error("log is closed")]
    Closed,
}

impl Error {
    pub(crate) fn io(file: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            file: file.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        key: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            key,
            reason: reason.into(),
        }
    }

    /// A copy for delivery to several waiters (io::Error is not `Clone`).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Io { file, source } => Error::Io {
                file: file.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            other => Error::Latched(other.to_string()),
        }
    }
}
