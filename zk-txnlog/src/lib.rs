//! A write-ahead log and snapshot store, tuned for a dedicated disk.
//!
//! Records are opaque bytes keyed by a strictly increasing `u64` (gaps allowed); snapshots are
//! opaque byte streams keyed by a `u64`. The crate knows nothing of the application: a
//! ZooKeeper-compatible server uses the zxid as the key.
//!
//! * [`Log`]: preallocated, mmap'd (or pwrite) segments `log.<first key hex>`; appends from any
//!   number of threads, made durable by group commit on a dedicated sync thread (one write and
//!   one msync/fdatasync per batch). Each append returns a [`Ticket`] (blocking wait) or runs a
//!   callback when durable ([`Log::append_with`]).
//! * [`SnapshotStore`]: `snapshot.<key hex>` files written through a temp file, fsync, rename,
//!   directory fsync; the newest that verifies is used, falling back to older ones.
//! * [`recover`] ties the two together after a restart; [`purge`] applies retention.
//! * Recovery, the byte layout and the assumptions about the disk are in `DESIGN.md`.
//!
//! ```
//! use zk_txnlog::{Log, Options, SnapshotStore};
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), Options::default().segment_bytes(4 << 20))?;
//! let t = log.append(1, b"first")?;
//! log.append(2, b"second")?.wait()?;      // durable now (and so is key 1)
//! assert!(t.is_durable());
//! let records: Vec<_> = log.iter_from(2).collect::<Result<_, _>>()?;
//! assert_eq!(records, vec![(2, b"second".to_vec())]);
//!
//! let snaps = SnapshotStore::open(dir.path())?;
//! let mut w = snaps.create(2)?;
//! std::io::Write::write_all(&mut w, b"state at 2")?;
//! w.finish()?;
//! let rec = zk_txnlog::recover(&log, &snaps)?;
//! assert_eq!(rec.replay_from, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod format;
mod inspect;
mod log;
mod options;
mod segment;
mod snapshot;
mod spare;
mod storage;
mod sys;

pub use crate::error::{Error, Result};
pub use crate::inspect::{
    SegmentRecords, SegmentSummary, inspect_segment, read_segment, record_frame_len, segment_paths,
};
pub use crate::log::{Callback, Iter, Log, RecoveryReport, Ticket};
pub use crate::options::Options;
pub use crate::snapshot::{
    SnapshotInfo, SnapshotReader, SnapshotStore, SnapshotStream, SnapshotWriter,
};
pub use crate::storage::{Backend, MemDisk};

/// ZooKeeper keeps at least this many snapshots.
pub const MIN_RETAIN: usize = 3;

/// Where to resume after a restart, from [`recover`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Recovery {
    /// The newest snapshot that verified, positioned at its content; `None` if there is none.
    pub snapshot: Option<SnapshotReader>,
    /// Replay the log from this key (`snapshot key + 1`, or 0): `log.iter_from(replay_from)`.
    pub replay_from: u64,
    /// The snapshot is newer than the last record of the log (recovery row R5).
    pub snapshot_ahead_of_log: bool,
}

/// Pick the newest valid snapshot and the point to replay the log from.
///
/// * R5: a snapshot newer than the log is not an error; the log's floor is raised so the next
///   append must be above the snapshot's key.
/// * R7: if the records right after the snapshot (or, without a snapshot, the start of the log)
///   were in a segment that no longer exists, returns [`Error::MissingSegment`].
pub fn recover(log: &Log, snapshots: &SnapshotStore) -> Result<Recovery> {
    let snapshot = snapshots.newest_valid()?;
    let (replay_from, snapshot_ahead_of_log) =
        replay_point(log, snapshot.as_ref().map(SnapshotReader::key))?;
    Ok(Recovery {
        replay_from,
        snapshot,
        snapshot_ahead_of_log,
    })
}

/// [`recover`]'s second half, for a caller that picked (and perhaps loaded) the snapshot with
/// key `snap_key` while the log was being opened: the key to replay the log from, and whether
/// the snapshot is newer than the log (R5, the log's floor raised). R7 as in [`recover`].
pub fn replay_point(log: &Log, snap_key: Option<u64>) -> Result<(u64, bool)> {
    if let Some((path, prev)) = log.first_segment_prev() {
        let first = log.first_key().unwrap_or(u64::MAX);
        // Records in [prev, first) are gone; they are needed unless the snapshot covers them.
        if snap_key.is_none_or(|s| s.saturating_add(1) < first) {
            return Err(Error::MissingSegment {
                file: path,
                expected: format!(
                    "{} (records after snapshot {:?} are missing)",
                    format::segment_name(prev),
                    snap_key
                ),
            });
        }
    }
    let mut ahead = false;
    if let Some(s) = snap_key
        && log.last_key().is_none_or(|l| l < s)
    {
        log.raise_floor(s);
        ahead = true;
    }
    Ok((snap_key.map_or(0, |s| s.saturating_add(1)), ahead))
}

/// What [`purge`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Keys of the snapshots removed.
    pub snapshots: Vec<u64>,
    /// Names of the log segments removed.
    pub segments: Vec<String>,
}

/// Keep the newest `retain` snapshots (at least [`MIN_RETAIN`]) and the log segments they need;
/// delete the rest. A segment is kept if it may hold a record above the oldest kept snapshot.
pub fn purge(log: &Log, snapshots: &SnapshotStore, retain: usize) -> Result<PurgeReport> {
    if retain < MIN_RETAIN {
        return Err(Error::InvalidOptions(format!(
            "retain must be at least {MIN_RETAIN}, got {retain}"
        )));
    }
    let list = snapshots.list()?;
    let mut report = PurgeReport::default();
    if list.len() < retain {
        return Ok(report);
    }
    let oldest_kept = list[list.len() - retain].key;
    for s in &list[..list.len() - retain] {
        snapshots.remove(s.key)?;
        report.snapshots.push(s.key);
    }
    if !report.snapshots.is_empty() {
        snapshots.sync()?;
    }
    report.segments = log.purge_before(oldest_kept.saturating_add(1))?;
    Ok(report)
}
