//! Why the server could not start.

use std::io;
use std::path::PathBuf;

use zk_jute::Zxid;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A socket or directory could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The log or the snapshot store could not be opened or read.
    #[error("recovery failed: {what}: {source}")]
    Recovery {
        /// What was being done.
        what: String,
        /// zk-txnlog's error (it names the file, offset and key).
        #[source]
        source: zk_txnlog::Error,
    },
    /// The newest valid snapshot does not load into a tree.
    #[error("recovery failed: snapshot {}: {source}", path.display())]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// Why it does not load.
        #[source]
        source: zk_tree::SnapshotError,
    },
    /// A log record does not decode as a txn.
    #[error("recovery failed: log record 0x{key:x} in {} does not decode: {source}", dir.display())]
    Record {
        /// The record's key (its zxid).
        key: Zxid,
        /// The log directory.
        dir: PathBuf,
        /// The decoder's error.
        #[source]
        source: zk_jute::DecodeError,
    },
    /// A log record holds a txn of another zxid than its key.
    #[error("recovery failed: log record 0x{key:x} in {} holds zxid 0x{zxid:x}", dir.display())]
    Misplaced {
        /// The record's key.
        key: Zxid,
        /// The log directory.
        dir: PathBuf,
        /// The zxid in its txn header.
        zxid: Zxid,
    },
    /// Apache ZooKeeper's data directory cannot be taken over.
    #[error(
        "cannot take over Apache ZooKeeper's data: {source}. Nothing of ours was written and \
         Apache's files are unchanged. Check the directory with `zk-inspect verify <dataDir>`; \
         Apache ZooKeeper would refuse it too. To start from the data before the damage, move \
         the named log file (and any newer ones) out of version-2/, keeping a copy"
    )]
    Takeover {
        /// zk-apache's error (it names the file and the offset).
        #[source]
        source: zk_apache::Error,
    },
    /// Writing our files while taking over failed.
    #[error("take-over failed: {0}")]
    TakeoverWrite(String),
    /// Not built yet.
    #[error("{0}")]
    Unsupported(String),
    /// The JAAS file of the SASL users cannot be read.
    #[error("SASL: the JAAS configuration {0}")]
    Jaas(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}
