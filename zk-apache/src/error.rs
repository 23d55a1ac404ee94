//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Why Apache's files could not be read or replayed. Every variant names the
/// file; byte offsets are file offsets for logs and offsets in the
/// uncompressed stream for snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not what Apache writes there.
    #[error("{} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad item starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Snapshots exist but none of them can be used.
    #[error("no usable snapshot in {}: {reasons}", dir.display())]
    NoSnapshot {
        /// The snapshot directory.
        dir: PathBuf,
        /// Why each candidate was refused, newest first.
        reasons: String,
    },
}

impl Error {
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
