//! Apache ZooKeeper's on-disk files, as design/apache-disk-format.md
//! describes them byte for byte: the `version-2` directories of dataDir and
//! dataLogDir, snapshots (plain, `.gz`, xerial `.snappy`; header, body, seals
//! and trailing sections), txn logs (entries with their Adler-32, the end
//! byte, torn tails) and the txns in them (header, record by type,
//! `CreateTxnV0`, bodiless closeSession, optional `TxnDigest`).
//!
//! * [`scan`] lists a data directory's files ([`DataDir`]); names are
//!   matched strictly, everything else is reported.
//! * [`read_snapshot`] reads and checks a snapshot into a zk-tree [`zk_tree::Tree`].
//! * [`LogReader`] iterates a log file's entries; [`decode_txn`] decodes one.
//! * [`import`] replays a directory as Apache restores it ([`Imported`]).
//! * [`mod@write`] encodes the formats (uncompressed, unpadded), for test inputs.
//!
//! Nothing here writes a file. Bytes never cause a panic; errors name the
//! file and the byte offset.
//!
//! ```no_run
//! let dir = zk_apache::scan("/var/lib/zookeeper".as_ref(), "/var/lib/zookeeper".as_ref())?;
//! let imported = zk_apache::import(&dir, zk_tree::TreeConfig::default())?;
//! println!("zxid 0x{:x}", imported.tree.last_processed_zxid());
//! # Ok::<(), zk_apache::Error>(())
//! ```

#![forbid(unsafe_code)]

mod adler;
mod entry;
mod error;
mod files;
mod import;
mod log;
mod snap;
pub mod write;

pub use adler::adler32;
pub use entry::{TXN_DIGEST_LEN, Txn, decode_txn};
pub use error::Error;
pub use files::{Compression, DataDir, FileKind, LogFile, SnapFile, VERSION_DIR, classify, scan};
pub use import::{IMPORT_MAX_ENTRY, Imported, import};
pub use log::{DEFAULT_MAX_ENTRY, Entry, LogEnd, LogReader};
pub use snap::{SnapDigest, Snapshot, read_snapshot, read_snapshot_from};

#[cfg(test)]
mod tests;
