//! The durable state: zk-txnlog's log (in dataLogDir) and snapshot store (in
//! dataDir), the log record format, recovery, snapshots and autopurge.
//!
//! * **Log record**, keyed by the zxid: a jute `TxnHeader` followed by the txn
//!   body (`TxnBody::write`), exactly the bytes ZooKeeper puts in its log after
//!   the crc (without the trailing `0x42` end marker, which the framing of
//!   zk-txnlog makes unnecessary).
//! * **Snapshot**, keyed by the last zxid applied when it started: zk-tree's
//!   fuzzy snapshot stream. Recovery loads the newest valid snapshot, then
//!   replays the log from the key after it; zk-tree's apply tolerates the txns
//!   the fuzzy snapshot already reflects, which makes the result exact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};
use zk_jute::{TxnBody, Zxid};
use zk_tree::{Tree, TreeConfig};
use zk_txnlog::{Backend, Log, Options, SnapshotStore};

use crate::config::Config;
use crate::error::StartError;

/// The log and the snapshot store.
pub(crate) struct Storage {
    pub log: Arc<Log>,
    pub snaps: Arc<SnapshotStore>,
}

/// What recovery produced.
pub(crate) struct Recovered {
    pub last_zxid: Zxid,
    /// Live sessions: (id, timeout).
    pub sessions: Vec<(i64, i32)>,
    /// One line for the operator.
    pub summary: String,
    /// Size of the snapshot file recovery started from (0 without one).
    pub snapshot_bytes: u64,
    /// Bytes of log records replayed on top of it.
    pub replayed_bytes: u64,
    /// How many records those were.
    pub replayed_txns: u64,
    /// How long the snapshot load and the replay took, ms.
    pub snapshot_load_ms: u64,
    pub replay_ms: u64,
    /// The whole recovery, ms (set by the server's start).
    pub db_init_ms: u64,
}

/// The log's options; each batch sync is timed into `fsync` (Apache's
/// `fsynctime`), and one slower than `fsync.warningthresholdms` is logged
/// and counted, as Apache's `FileTxnLog.commit` does.
fn log_options(config: &Config, fsync: Arc<crate::stats::SyncStats>) -> Options {
    let threshold = config.fsync_warning_threshold_ms;
    // A txn is at most a request (jute.maxbuffer) plus its header and path.
    let max_record = config.jute_max_buffer + 64 * 1024;
    let segment = (config.pre_alloc_size_kb * 1024).max(4 * max_record as u64 + (1 << 20));
    let window = (8u64 << 20).max(2 * max_record as u64 + 4096);
    let mut opts =
        Options::default().flush_delay(std::time::Duration::from_millis(config.flush_delay_ms));
    if let Some(n) = config.max_batch_size {
        opts = opts.max_batch(n);
    }
    opts = opts.gather_when_busy(config.busy_sync_gather, std::time::Duration::from_millis(2));
    opts.segment_bytes(segment)
        .max_record_bytes(max_record)
        .max_unsynced_bytes(window)
        .unsafe_no_sync(!config.force_sync)
        .zero_fill_ahead(config.log_zero_fill)
        .on_sync(move |took| {
            let ms = took.as_millis() as u64;
            fsync.time.observe(0, ms);
            if ms > threshold {
                fsync.exceeded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    "fsync-ing the write ahead log took {ms}ms which will adversely effect operation latency (fsync.warningthresholdms={threshold})"
                );
            }
        })
        // pwrite + fdatasync, not the mmap backend: with large page-cache
        // folios (ext4 on Linux 6.16+), a store through a shared mapping
        // dirties the whole folio and msync writes all of it back, so once the
        // segment's page cache holds large folios (readahead on faults) every
        // sync writes up to hundreds of KiB for a 200-byte record. Measured
        // here: one session, one setData in flight, after a 6 s load: p50 541
        // µs with mmap, 195 µs with pwrite (raw pwrite+fdatasync ~130 µs);
        // msync 0.6-1.4 ms per call where Apache's fdatasync takes ~0.2 ms.
        // write() marks only the touched blocks dirty.
        .backend(Backend::Pwrite)
}

impl Storage {
    /// Opens the log and the snapshots, loads the newest valid snapshot and
    /// replays the log after it. The log's syncs are timed into `fsync`.
    ///
    /// The snapshot is picked and loaded on a thread of its own while the log
    /// is opened (its open scans the last segment: up to preAllocSize of
    /// records and zeros); neither depends on the other until the replay.
    pub fn open_and_recover(
        config: &Config,
        tree_cfg: TreeConfig,
        fsync: Arc<crate::stats::SyncStats>,
    ) -> Result<(Storage, Tree, Recovered), StartError> {
        let snaps = SnapshotStore::open(&config.data_dir).map_err(rec_err(&format!(
            "cannot open the snapshots in {}",
            config.data_dir.display()
        )))?;
        let snaps = Arc::new(snaps);
        let loader = {
            let snaps = snaps.clone();
            std::thread::Builder::new()
                .name("zk-recover".into())
                .spawn(move || load_snapshot(&snaps, tree_cfg))
                .map_err(|source| StartError::Io {
                    what: "cannot start the snapshot loader thread".into(),
                    source,
                })?
        };
        let opening = Instant::now();
        let log = Log::open(&config.data_log_dir, log_options(config, fsync)).map_err(rec_err(
            &format!("cannot open the log in {}", config.data_log_dir.display()),
        ));
        let opened_in = opening.elapsed();
        let loaded = loader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let log = log?;
        let report = log.recovery_report().clone();
        if let Some((file, offset, bytes)) = &report.torn_tail {
            info!(
                "log {}: cut a torn tail at offset {offset} ({bytes} bytes of an unfinished write)",
                file.display()
            );
        }
        let (tree, mut recovered) = replay_onto(&log, loaded?, &config.data_log_dir)?;
        recovered.summary += &format!("; log opened in {}", ms(opened_in));
        Ok((
            Storage {
                log: Arc::new(log),
                snaps,
            },
            tree,
            recovered,
        ))
    }
}

/// A recovery error about `what`.
fn rec_err(what: &str) -> impl FnOnce(zk_txnlog::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Recovery { what, source }
}

/// The newest valid snapshot, loaded.
struct Loaded {
    tree: Tree,
    key: Option<u64>,
    bytes: u64,
    /// How long the load took.
    took: Duration,
}

/// A duration for the recovery summary: ms with one decimal.
fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Loads the newest valid snapshot (an empty tree without one). Each
/// snapshot is read once, its crc checked as the load reads it
/// (`SnapshotStream`): checking it in a pass of its own first read a
/// snapshot the disk had to serve twice when it was not in the page cache
/// (the server writes its snapshots around the cache). One whose crc does
/// not match is skipped for the next older one, as `newest_valid` does; one
/// that matches but does not load stops the start.
fn load_snapshot(snaps: &SnapshotStore, tree_cfg: TreeConfig) -> Result<Loaded, StartError> {
    let started = Instant::now();
    let infos = snaps.list().map_err(rec_err("cannot list the snapshots"))?;
    for info in infos.iter().rev() {
        // The load's own result counts only once `finish` vouched for the bytes.
        let read = snaps.stream_snapshot(info.key).and_then(|mut stream| {
            let bytes = stream.content_len();
            let loaded = Tree::read_any_snapshot(&mut stream, tree_cfg.clone(), info.key as i64);
            stream.finish().map(|()| (loaded, bytes))
        });
        let (loaded, bytes) = match read {
            Ok(r) => r,
            Err(e @ zk_txnlog::Error::BadSnapshot { .. }) => {
                warn!("skipping snapshot: {e}");
                continue;
            }
            Err(e) => return Err(rec_err("cannot read a snapshot")(e)),
        };
        let tree = loaded.map_err(|source| StartError::Snapshot {
            path: info.path.clone(),
            source,
        })?;
        return Ok(Loaded {
            tree,
            key: Some(info.key),
            bytes,
            took: started.elapsed(),
        });
    }
    Ok(Loaded {
        tree: Tree::new(tree_cfg),
        key: None,
        bytes: 0,
        took: started.elapsed(),
    })
}

/// Recovery proper: the newest valid snapshot, then the log replayed after
/// it (also a learner's rebuild after TRUNC, and a role's start).
pub(crate) fn load_tree(
    log: &Log,
    snaps: &SnapshotStore,
    tree_cfg: TreeConfig,
    log_dir: &std::path::Path,
) -> Result<(Tree, Recovered), StartError> {
    replay_onto(log, load_snapshot(snaps, tree_cfg)?, log_dir)
}

/// The log replayed after the snapshot `loaded` came from.
fn replay_onto(
    log: &Log,
    loaded: Loaded,
    log_dir: &std::path::Path,
) -> Result<(Tree, Recovered), StartError> {
    let Loaded {
        tree,
        key,
        bytes,
        took,
    } = loaded;
    let (replay_from, ahead) = zk_txnlog::replay_point(log, key)
        .map_err(rec_err("cannot find a snapshot and the log after it"))?;
    if ahead && let (Some(snap), Some(last)) = (key, log.last_key()) {
        drop_disconnected_log(log, snap, last)?;
    }
    let snap_desc = key.map_or("no snapshot".to_string(), |k| format!("snapshot 0x{k:x}"));
    let replaying = Instant::now();
    let (replayed, replayed_bytes) = replay(log, &tree, replay_from, log_dir)?;
    let replayed_in = replaying.elapsed();
    // The snapshot is fuzzy (written while txns were applied): the digests
    // logged while replaying over it describe a tree ahead of their zxid.
    // Apache logs none until the replay passes the snapshot's digest zxid;
    // ours keeps none from recovery at all (`hash` lists what this server
    // applied since it started).
    tree.clear_digest_log();
    let last = tree.last_processed_zxid();
    let sessions = tree.sessions();
    let summary = format!(
        "recovered {snap_desc} + {replayed} txns from the log: last zxid 0x{last:x}, {} znodes, {} sessions; snapshot ({bytes} bytes) loaded in {}, log replayed in {}",
        tree.node_count(),
        sessions.len(),
        ms(took),
        ms(replayed_in)
    );
    Ok((
        tree,
        Recovered {
            last_zxid: Zxid::from(last),
            sessions,
            summary,
            snapshot_bytes: bytes,
            replayed_bytes,
            replayed_txns: replayed,
            snapshot_load_ms: took.as_millis() as u64,
            replay_ms: replayed_in.as_millis() as u64,
            db_init_ms: 0,
        },
    ))
}

/// The log ends at `last`, below the snapshot `snap` it is recovered with:
/// a gap separates its records from the state (a learner that persisted a
/// leader's SNAP and died before dropping its old log; zk-zab's DESIGN.md,
/// "PersistSnapshot"). They are never replayed, but a leader reads its DIFF
/// material from the log, and across the gap a record of an old epoch can
/// look like the predecessor of the next epoch's first txn: the records go
/// (durably) before anything is appended after the snapshot (above it:
/// `replay_point` raised the log's floor to the snapshot).
fn drop_disconnected_log(log: &Log, snap: u64, last: u64) -> Result<(), StartError> {
    warn!(
        "the log ends at 0x{last:x}, below the snapshot 0x{snap:x} (a SNAP's snapshot saved \
         before the old log was dropped?): its records are not this snapshot's history; \
         dropping them"
    );
    log.truncate_after(0)
        .map_err(rec_err("cannot drop the log below the snapshot"))
}

/// Applies the log's records from key `from` on to `tree`: (records, bytes).
pub(crate) fn replay(
    log: &Log,
    tree: &Tree,
    from: u64,
    log_dir: &std::path::Path,
) -> Result<(u64, u64), StartError> {
    let mut replayed = 0u64;
    let mut replayed_bytes = 0u64;
    for item in log.iter_from(from) {
        let (key, payload) = item.map_err(|source| StartError::Recovery {
            what: "cannot read the log".into(),
            source,
        })?;
        replayed_bytes += payload.len() as u64;
        let (hdr, body) =
            TxnBody::read_record(Bytes::from(payload)).map_err(|source| StartError::Record {
                key: Zxid::from(key),
                dir: log_dir.to_path_buf(),
                source,
            })?;
        if Zxid::from(hdr.zxid).as_u64() != key {
            return Err(StartError::Misplaced {
                key: Zxid::from(key),
                dir: log_dir.to_path_buf(),
                zxid: Zxid::from(hdr.zxid),
            });
        }
        let _ = tree.apply(&hdr, &body);
        replayed += 1;
    }
    Ok((replayed, replayed_bytes))
}

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotFailed {
    /// The snapshot store failed (create, sync, rename).
    #[error(transparent)]
    Store(#[from] zk_txnlog::Error),
    /// Writing the tree's stream failed.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// Writes a snapshot of `tree` keyed by `zxid` (the last zxid applied when it
/// started), then applies retention if asked.
/// Returns the snapshot file's size.
///
/// Written around the page cache (`create_uncached`): through it, every
/// fresh page of a growing tree's snapshots cost a hypervisor fault on a VM
/// (`copy_folio_from_iter_atomic` was 19.5 % of all CPU samples of a
/// 3-server create load; creates through the leader went 113.6–119.8k →
/// 126.1–135.5k/s without it, alternating runs). A restart reads it from
/// the disk once, as the load goes (`load_snapshot`).
pub(crate) fn take_snapshot(
    tree: &Tree,
    snaps: &SnapshotStore,
    zxid: Zxid,
) -> Result<u64, SnapshotFailed> {
    let started = std::time::Instant::now();
    let mut w = snaps.create_uncached(zxid.as_u64())?;
    // Synced as it grows: a snapshot left to finish's fsync is one burst
    // that every log fdatasync issued meanwhile waits behind (p99.9 write
    // latency of 100+ ms whenever a snapshot ends, through the page cache).
    w.writeback_every(SNAPSHOT_WRITEBACK_BYTES);
    tree.write_snapshot(&mut w)?;
    let info = w.finish()?;
    info!(
        "Snapshot taken: snapshot.{:x} ({} bytes) in {} ms",
        zxid,
        info.file_len,
        started.elapsed().as_millis()
    );
    Ok(info.file_len)
}

/// A SNAP body being made durable as the snapshot at its zxid, on its own
/// thread while the learner loads the tree from it, piece by piece as the
/// learner reads them ([`SnapBodySave::start`]); [`SnapBodySave::publish`]
/// makes it the newest snapshot once the body loaded. The bytes as they
/// came are the snapshot (`zk_tree::SNAP_BODY_MAGIC`) rather than the tree
/// serialized again, so writing them overlaps the transfer and the load.
/// They bypass the page cache (`create_uncached`): through it, the 205 MB of
/// a 1M-znode body cost more than the load itself on a VM (a fault per fresh
/// page; SNAP 1.9-3.5 s, 1.0-1.3 s without). A restart soon after reads that
/// snapshot from the disk (0.4 s more for 1M znodes here), which is why the
/// snapshots a server takes itself, read back by every restart, stay cached.
pub(crate) struct SnapBodySave {
    zxid: Zxid,
    started: std::time::Instant,
    thread: std::thread::JoinHandle<Result<zk_txnlog::SnapshotWriter, SnapshotFailed>>,
}

impl SnapBodySave {
    /// Starts writing, as the snapshot at `zxid` (not visible until
    /// published), the body sent to the returned channel, in order; it is
    /// synced once the channel's sender is dropped.
    pub fn start(
        snaps: &SnapshotStore,
        zxid: Zxid,
    ) -> std::io::Result<(Self, crossbeam_channel::Sender<bytes::Bytes>)> {
        let snaps = snaps.clone();
        let (tx, rx) = crossbeam_channel::unbounded::<bytes::Bytes>();
        let thread = std::thread::Builder::new()
            .name("zk-snap-save".into())
            .spawn(move || {
                let mut w = snaps.create_uncached(zxid.as_u64())?;
                // On the disk as it comes, so that little is left for the
                // final fsync when the load ends.
                w.writeback_every(SNAP_BODY_WRITEBACK_BYTES);
                Tree::write_snap_body_snapshot(rx.iter(), &mut w)?;
                w.sync()?;
                Ok(w)
            })?;
        let save = SnapBodySave {
            zxid,
            started: std::time::Instant::now(),
            thread,
        };
        Ok((save, tx))
    }

    /// The zxid it is the snapshot of.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// Waits for the write and publishes the snapshot (trailer, rename,
    /// directory sync); returns the file's size.
    pub fn publish(self) -> Result<u64, SnapshotFailed> {
        let w = self
            .thread
            .join()
            .map_err(|_| std::io::Error::other("the snapshot writer thread panicked"))??;
        let info = w.finish()?;
        info!(
            "Snapshot taken: snapshot.{:x} ({} bytes, the leader's SNAP as received) in {} ms",
            self.zxid,
            info.file_len,
            self.started.elapsed().as_millis()
        );
        Ok(info.file_len)
    }

    /// Waits for the write and drops it unpublished (its `.tmp` file goes
    /// at the next start).
    pub fn abandon(self) {
        let _ = self.thread.join();
    }
}

/// Bytes of snapshot written between two `fdatasync`s of it.
const SNAPSHOT_WRITEBACK_BYTES: u64 = 4 << 20;
/// The same for a SNAP body a learner saves (no log syncs wait behind it:
/// larger steps, fewer syncs).
const SNAP_BODY_WRITEBACK_BYTES: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::{CreateTxn, OpCode, TxnHeader};

    #[test]
    fn record_round_trip() {
        let body = TxnBody::Create(CreateTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: zk_tree::open_acl_unsafe(),
            ephemeral: false,
            parent_c_version: 1,
        });
        let hdr = TxnHeader {
            client_id: 5,
            cxid: 2,
            zxid: 7,
            time: 9,
            txn_type: OpCode::Create.code(),
        };
        let mut out = bytes::BytesMut::new();
        body.write_record(&hdr, &mut out);
        assert_eq!(TxnBody::read_record(out.freeze()).unwrap(), (hdr, body));
    }

    /// A snapshot whose crc fails is skipped for the older one (the load
    /// reads each snapshot once and learns its crc at the end); one whose
    /// crc holds but does not load stops the start.
    #[test]
    fn a_snapshot_failing_its_crc_falls_back_to_the_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = SnapshotStore::open(dir.path()).unwrap();
        let tree = Tree::new(TreeConfig::default());
        take_snapshot(&tree, &snaps, Zxid::from(0x10_i64)).unwrap();
        take_snapshot(&tree, &snaps, Zxid::from(0x20_i64)).unwrap();
        let loaded = load_snapshot(&snaps, TreeConfig::default()).unwrap();
        assert_eq!(loaded.key, Some(0x20));

        let newest = dir.path().join("snapshot.20");
        let mut b = std::fs::read(&newest).unwrap();
        b[40] ^= 1;
        std::fs::write(&newest, b).unwrap();
        let loaded = load_snapshot(&snaps, TreeConfig::default()).unwrap();
        assert_eq!(loaded.key, Some(0x10));

        let mut w = snaps.create(0x30).unwrap();
        std::io::Write::write_all(&mut w, b"not a tree").unwrap();
        w.finish().unwrap();
        assert!(matches!(
            load_snapshot(&snaps, TreeConfig::default()),
            Err(StartError::Snapshot { .. })
        ));
    }
}
