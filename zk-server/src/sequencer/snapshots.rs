//! When the sequencer starts a snapshot, and the autopurge timer.
//!
//! [`Snapshots`] counts what was committed and logged since the last
//! snapshot started, decides when the next one is due ([`snapshot_due`],
//! and the replay bound [`replay_bound_due`]) and runs it on its own thread
//! (`zk-snapshot`), one at a time. [`Purge`] runs
//! zk-txnlog's purge every `autopurge.purgeInterval` hours on a `zk-purge`
//! thread.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};
use zk_jute::Zxid;
use zk_tree::Tree;
use zk_txnlog::{Log, SnapshotStore};

use crate::config::Config;

/// The snapshot trigger: a random point in [snapCount/2 + 1, snapCount], as
/// ZooKeeper's SyncRequestProcessor (so the members of an ensemble do not all
/// snapshot at once).
fn snapshot_point(snap_count: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mix = nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    half + 1 + mix % half.max(1)
}

/// Whether a snapshot should start now: ZooKeeper's rules (snapCount txns,
/// randomised, or snapSizeLimitInKb of log since the last snapshot), except
/// that the snapCount rule also waits until the log since the last
/// snapshot is `zkrs.snapLogPercent` of that snapshot's size. Under a heavy
/// write load on a large tree ZooKeeper's rule alone keeps a snapshot of
/// the whole tree running back to back (each one saving the replay of a log
/// a small fraction of its size), which takes a core and the disk from the
/// write path; with the pacing rule restart replays at most that
/// percentage of a snapshot's size in log, which is cheaper to replay
/// than to load.
///
/// `counted` = snapCount's (randomised) txn count was reached, `logged` =
/// log bytes since the last snapshot started, `last_snapshot` = that
/// snapshot's size.
pub(super) fn snapshot_due(cfg: &Config, counted: bool, logged: u64, last_snapshot: u64) -> bool {
    if let Ok(limit_kb) = u64::try_from(cfg.snap_size_limit_kb)
        && limit_kb > 0
        && logged >= limit_kb.saturating_mul(1024)
    {
        return true;
    }
    counted && logged.saturating_mul(100) >= last_snapshot.saturating_mul(cfg.snap_log_percent)
}

/// The least log a replay-bound (interim) snapshot waits for: below it,
/// replaying costs a restart a few tens of milliseconds at most.
const REPLAY_MIN_BYTES: u64 = 1 << 20;

/// Bytes a snapshot of a tree of `nodes` znodes holding `data_size` bytes of
/// paths and data takes: each node's record adds about 72 bytes (stat, ACL
/// reference, lengths) to its path and data (checked against a real
/// snapshot in the tests).
pub(super) fn snapshot_estimate(nodes: u64, data_size: u64) -> u64 {
    data_size.saturating_add(nodes.saturating_mul(72))
}

/// The replay cost of a log record of `bytes`, in bytes of snapshot that load
/// in the same time: at least [`REPLAY_TXN_BYTES`], since replaying costs per
/// txn more than per byte.
pub(super) fn replay_cost(bytes: u64) -> u64 {
    bytes.max(REPLAY_TXN_BYTES)
}

/// A txn of the log replays in about the time a restart loads this many bytes
/// of snapshot: a delete (~75 bytes of log) replayed in 0.75 µs and a create
/// of 100 bytes of data (~230) in ~1 µs, while a snapshot loads at 3–4 ns a
/// byte (measured on a 7 MB snapshot + 27k deletes, and 778k creates and
/// sets). Counting bytes alone let a small tree that shrank by deletes keep
/// three times its size in log: a follower restarted after a benchmark's
/// clean-up replayed 27–34k deletes (20–25 ms) onto a tree it loads in 5 ms.
const REPLAY_TXN_BYTES: u64 = 200;

/// Whether an interim snapshot is due, whatever snapCount says: the replay
/// cost of the log written since the last snapshot (`replay`, each record
/// counted by [`replay_cost`]) reached `zkrs.snapReplayPercent` of what a
/// snapshot of the tree would take now (`estimate`), and at least
/// [`REPLAY_MIN_BYTES`]. So a restart's replay takes about as long as
/// loading the snapshot before it, at most. ZooKeeper's rule alone lets a
/// small tree under a heavy write load collect snapCount txns of log: a
/// restart then replays up to 100k txns (0.2–0.5 s) onto a tree it loads in
/// 10 ms.
pub(super) fn replay_bound_due(cfg: &Config, replay: u64, estimate: u64) -> bool {
    cfg.snap_replay_percent > 0
        && replay >= REPLAY_MIN_BYTES
        && replay.saturating_mul(100) >= estimate.saturating_mul(cfg.snap_replay_percent)
}

/// Why a snapshot starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SnapshotKind {
    /// ZooKeeper's rules ([`snapshot_due`]): kept until autopurge removes it.
    Regular,
    /// The replay bound ([`replay_bound_due`]): replaced by the next
    /// snapshot, so the snapshots kept are as many as ZooKeeper's rules make.
    Interim,
}

/// The snapshot policy's counters and the running snapshot's flag.
pub(super) struct Snapshots {
    txns_since: u64,
    /// Txns after which snapCount's rule is met (see [`snapshot_point`]).
    at: u64,
    running: Arc<AtomicBool>,
    /// Log bytes appended since the last snapshot started.
    log_bytes_since: u64,
    /// Their replay cost ([`replay_cost`] of each record).
    replay_cost_since: u64,
    /// Size of the newest snapshot (set by the snapshot thread when it ends).
    last_bytes: Arc<AtomicU64>,
    /// `replay_cost_since` at which the replay bound is looked at next (the
    /// tree's size is read at most once per [`REPLAY_CHECK_EVERY`] bytes).
    replay_check_at: u64,
    /// The newest snapshot this process wrote, if it was an interim one: the
    /// next snapshot to finish removes it.
    interim: Arc<Mutex<Option<u64>>>,
}

/// How often (in replay cost) the replay bound reads the tree's size.
const REPLAY_CHECK_EVERY: u64 = 64 << 10;

impl Snapshots {
    /// After recovery: `replayed_bytes` of log in `replayed_txns` records
    /// since a snapshot of `snapshot_bytes`.
    pub fn new(cfg: &Config, replayed_bytes: u64, replayed_txns: u64, snapshot_bytes: u64) -> Self {
        Snapshots {
            txns_since: 0,
            at: snapshot_point(cfg.snap_count),
            running: Arc::new(AtomicBool::new(false)),
            log_bytes_since: replayed_bytes,
            replay_cost_since: replayed_bytes.max(replayed_txns.saturating_mul(REPLAY_TXN_BYTES)),
            last_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
            replay_check_at: 0,
            interim: Arc::new(Mutex::new(None)),
        }
    }

    /// A record of `bytes` was appended to the log.
    pub fn logged(&mut self, bytes: u64) {
        self.log_bytes_since += bytes;
        self.replay_cost_since += replay_cost(bytes);
    }

    /// A txn was committed and applied to `tree`: whether a snapshot is due
    /// now, and of which kind.
    pub fn committed(&mut self, cfg: &Config, tree: &Tree) -> Option<SnapshotKind> {
        self.txns_since += 1;
        if snapshot_due(
            cfg,
            self.txns_since >= self.at,
            self.log_bytes_since,
            self.last_bytes.load(Relaxed),
        ) {
            return Some(SnapshotKind::Regular);
        }
        if self.replay_cost_since < self.replay_check_at.max(REPLAY_MIN_BYTES)
            || cfg.snap_replay_percent == 0
        {
            return None;
        }
        self.replay_check_at = self.replay_cost_since + REPLAY_CHECK_EVERY;
        let estimate = snapshot_estimate(
            tree.node_count() as u64,
            tree.approximate_data_size().max(0) as u64,
        );
        replay_bound_due(cfg, self.replay_cost_since, estimate).then_some(SnapshotKind::Interim)
    }

    /// Whether a snapshot thread is running.
    pub fn running(&self) -> bool {
        self.running.load(Relaxed)
    }

    /// Starts a snapshot of `tree` keyed by `key` (the last zxid applied).
    ///
    /// As ZooKeeper's SyncRequestProcessor: the count restarts whether or not
    /// a snapshot can start, and one still running means this one is skipped
    /// ("Too busy to snap, skipping"). Retrying at every commit instead kept a
    /// snapshot of the whole tree running back to back under a heavy write
    /// load, taking a core and the disk away from the write path.
    /// Each snapshot written is timed into `took` (Apache's `snapshottime`).
    /// Once it is durable, the interim snapshot before it (if any) is
    /// removed; an interim one is itself removed by the next.
    pub fn start(
        &mut self,
        cfg: &Config,
        kind: SnapshotKind,
        tree: Arc<Tree>,
        snaps: Arc<SnapshotStore>,
        key: Zxid,
        took: Arc<crate::stats::Summary>,
    ) {
        self.txns_since = 0;
        self.log_bytes_since = 0;
        self.replay_cost_since = 0;
        self.replay_check_at = 0;
        self.at = snapshot_point(cfg.snap_count);
        if self.running.swap(true, Relaxed) {
            warn!("Too busy to snap, skipping");
            return;
        }
        let running = self.running.clone();
        let last_bytes = self.last_bytes.clone();
        let interim = self.interim.clone();
        let spawned = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                let t = Instant::now();
                match crate::storage::take_snapshot(&tree, &snaps, key) {
                    Ok(bytes) => {
                        last_bytes.store(bytes, Relaxed);
                        took.observe(0, t.elapsed().as_millis() as u64);
                        let mine = (kind == SnapshotKind::Interim).then_some(key.as_u64());
                        let before = std::mem::replace(
                            &mut *interim.lock().unwrap_or_else(|e| e.into_inner()),
                            mine,
                        );
                        if let Some(old) = before.filter(|&old| old != key.as_u64()) {
                            match snaps.remove(old).and_then(|()| snaps.sync()) {
                                Ok(()) => info!(
                                    "removed the interim snapshot.{old:x}, superseded by snapshot.{key:x}"
                                ),
                                Err(e) => warn!("cannot remove the interim snapshot.{old:x}: {e}"),
                            }
                        }
                    }
                    Err(e) => error!("snapshot at 0x{key:x} failed: {e}"),
                }
                running.store(false, Relaxed);
            });
        if spawned.is_err() {
            self.running.store(false, Relaxed);
        }
    }
}

/// The autopurge timer (`autopurge.purgeInterval` hours; off at 0). As
/// Apache's `DatadirCleanupManager` (`scheduleAtFixedRate(task, 0, interval)`),
/// the first purge runs at once, then every interval.
pub(super) struct Purge {
    next: Option<Instant>,
}

impl Purge {
    pub fn new(cfg: &Config) -> Self {
        Purge {
            next: (cfg.purge_interval_hours > 0).then(Instant::now),
        }
    }

    /// Starts a purge thread if the interval has passed.
    pub fn maybe_run(&mut self, cfg: &Config, log: &Arc<Log>, snaps: &Arc<SnapshotStore>) {
        let Some(at) = self.next else {
            return;
        };
        if Instant::now() < at {
            return;
        }
        self.next =
            Some(Instant::now() + Duration::from_secs(u64::from(cfg.purge_interval_hours) * 3600));
        let log = log.clone();
        let snaps = snaps.clone();
        let retain = cfg.snap_retain_count as usize;
        let _ = std::thread::Builder::new()
            .name("zk-purge".into())
            .spawn(move || {
                info!("Purge task started (autopurge.snapRetainCount {retain})");
                match zk_txnlog::purge(&log, &snaps, retain) {
                    Ok(r) => info!(
                        "Purge task completed: removed {} snapshots and {} log segments",
                        r.snapshots.len(),
                        r.segments.len()
                    ),
                    Err(e) => warn!("Purge task failed: {e}"),
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Purge, SnapshotKind, Snapshots, replay_bound_due, snapshot_due, snapshot_estimate,
    };
    use crate::Config;

    #[test]
    fn the_first_purge_is_due_at_start() {
        let mut cfg = Config::standalone("/d".into(), 0);
        assert!(Purge::new(&cfg).next.is_none(), "autopurge off");
        cfg.purge_interval_hours = 1;
        let next = Purge::new(&cfg).next.expect("autopurge on");
        assert!(
            next <= std::time::Instant::now(),
            "Apache purges at start, not one interval later"
        );
    }

    #[test]
    fn the_estimate_is_within_a_tenth_of_a_real_snapshot() {
        use zk_jute::{CreateTxn, TxnBody, TxnHeader};
        let tree = zk_tree::Tree::new(zk_tree::TreeConfig::default());
        let mut zxid = 0;
        let mut create = |path: String, data: Vec<u8>| {
            zxid += 1;
            let hdr = TxnHeader {
                client_id: 1,
                cxid: zxid as i32,
                zxid,
                time: 0,
                txn_type: 1,
            };
            let body = TxnBody::Create(CreateTxn {
                path,
                data: Some(data.into()),
                acl: zk_tree::open_acl_unsafe(),
                ephemeral: false,
                parent_c_version: 0,
            });
            tree.apply(&hdr, &body);
        };
        create("/zk-bench".into(), Vec::new());
        for i in 0..10_000 {
            create(format!("/zk-bench/k{i:07}"), vec![7; 100]);
        }
        let mut out = Vec::new();
        tree.write_snapshot(&mut out).unwrap();
        let est = snapshot_estimate(
            tree.node_count() as u64,
            tree.approximate_data_size() as u64,
        );
        let real = out.len() as u64;
        assert!(
            est.abs_diff(real) * 10 < real,
            "estimate {est}, snapshot {real}"
        );
    }

    #[test]
    fn the_replay_bound() {
        let mut cfg = Config::standalone("/d".into(), 0);
        const MIB: u64 = 1 << 20;
        // Due once the log reaches the tree's snapshot size, never below 1 MiB.
        assert!(!replay_bound_due(&cfg, 2 * MIB - 1, 2 * MIB));
        assert!(replay_bound_due(&cfg, 2 * MIB, 2 * MIB));
        assert!(!replay_bound_due(&cfg, MIB - 1, 1000));
        assert!(replay_bound_due(&cfg, MIB, 1000));
        cfg.snap_replay_percent = 50;
        assert!(replay_bound_due(&cfg, 2 * MIB, 4 * MIB));
        cfg.snap_replay_percent = 0;
        assert!(!replay_bound_due(&cfg, u64::MAX, 0));
    }

    /// Regression: the replay bound counted log bytes alone, so a tree that
    /// shrank by deletes (~75 bytes of log each) kept three times its size in
    /// log; a follower restarted after a benchmark's clean-up replayed 27–34k
    /// deletes onto a tree it loaded in 5 ms. Each txn now counts at least
    /// 200 bytes, what a restart loads of a snapshot in its replay time.
    #[test]
    fn small_txns_reach_the_replay_bound_by_their_count() {
        let cfg = Config::standalone("/d".into(), 0);
        let tree = zk_tree::Tree::new(zk_tree::TreeConfig::default());
        let mut s = Snapshots::new(&cfg, 0, 0, 0);
        let mut due_after = None;
        for n in 1..=20_000u64 {
            s.logged(75);
            if s.committed(&cfg, &tree) == Some(SnapshotKind::Interim) {
                due_after = Some(n);
                break;
            }
        }
        // The 1 MiB floor in replay cost: 5243 txns of 200, not 13981 of 75.
        let n = due_after.expect("an interim snapshot is due");
        assert!((5243..5243 + 400).contains(&n), "due after {n} deletes");
        // Recovery's replay counts the same way.
        let s = Snapshots::new(&cfg, 6000 * 75, 6000, 0);
        assert_eq!(s.replay_cost_since, 6000 * 200);
    }

    #[test]
    fn snapshot_rules() {
        let mut cfg = Config::standalone("/d".into(), 0);
        // The snapCount rule waits for log = 50 % of the last snapshot.
        assert!(!snapshot_due(&cfg, false, 1000, 0));
        assert!(
            snapshot_due(&cfg, true, 0, 0),
            "no snapshot yet: ZooKeeper's rule"
        );
        assert!(!snapshot_due(&cfg, true, 499, 1000));
        assert!(snapshot_due(&cfg, true, 500, 1000));
        // zkrs.snapLogPercent=0: ZooKeeper's rule alone.
        cfg.snap_log_percent = 0;
        assert!(snapshot_due(&cfg, true, 0, 1 << 40));
        assert!(!snapshot_due(&cfg, false, 0, 1 << 40));
        // snapSizeLimitInKb: due on log size alone, whatever the count; <= 0 is off.
        cfg.snap_log_percent = 50;
        cfg.snap_size_limit_kb = 2;
        assert!(!snapshot_due(&cfg, false, 2047, 1 << 40));
        assert!(snapshot_due(&cfg, false, 2048, 1 << 40));
        cfg.snap_size_limit_kb = 0;
        assert!(!snapshot_due(&cfg, false, u64::MAX, 1 << 40));
        cfg.snap_size_limit_kb = -1;
        assert!(!snapshot_due(&cfg, false, u64::MAX, 1 << 40));
    }
}
