//! When the sequencer starts a snapshot, and the autopurge timer.
//!
//! [`Snapshots`] counts what was committed and logged since the last
//! snapshot started, decides when the next one is due ([`snapshot_due`]) and
//! runs it on its own thread (`zk-snapshot`), one at a time. [`Purge`] runs
//! zk-txnlog's purge every `autopurge.purgeInterval` hours on a `zk-purge`
//! thread.

use std::sync::Arc;
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

/// The snapshot policy's counters and the running snapshot's flag.
pub(super) struct Snapshots {
    txns_since: u64,
    /// Txns after which snapCount's rule is met (see [`snapshot_point`]).
    at: u64,
    running: Arc<AtomicBool>,
    /// Log bytes appended since the last snapshot started.
    log_bytes_since: u64,
    /// Size of the newest snapshot (set by the snapshot thread when it ends).
    last_bytes: Arc<AtomicU64>,
}

impl Snapshots {
    /// After recovery: `replayed_bytes` of log since a snapshot of
    /// `snapshot_bytes`.
    pub fn new(cfg: &Config, replayed_bytes: u64, snapshot_bytes: u64) -> Self {
        Snapshots {
            txns_since: 0,
            at: snapshot_point(cfg.snap_count),
            running: Arc::new(AtomicBool::new(false)),
            log_bytes_since: replayed_bytes,
            last_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
        }
    }

    /// A record of `bytes` was appended to the log.
    pub fn logged(&mut self, bytes: u64) {
        self.log_bytes_since += bytes;
    }

    /// A txn was committed and applied: whether a snapshot is due now.
    pub fn committed(&mut self, cfg: &Config) -> bool {
        self.txns_since += 1;
        snapshot_due(
            cfg,
            self.txns_since >= self.at,
            self.log_bytes_since,
            self.last_bytes.load(Relaxed),
        )
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
    pub fn start(
        &mut self,
        cfg: &Config,
        tree: Arc<Tree>,
        snaps: Arc<SnapshotStore>,
        key: Zxid,
        took: Arc<crate::stats::Summary>,
    ) {
        self.txns_since = 0;
        self.log_bytes_since = 0;
        self.at = snapshot_point(cfg.snap_count);
        if self.running.swap(true, Relaxed) {
            warn!("Too busy to snap, skipping");
            return;
        }
        let running = self.running.clone();
        let last_bytes = self.last_bytes.clone();
        let spawned = std::thread::Builder::new()
            .name("zk-snapshot".into())
            .spawn(move || {
                let t = Instant::now();
                match crate::storage::take_snapshot(&tree, &snaps, key) {
                    Ok(bytes) => {
                        last_bytes.store(bytes, Relaxed);
                        took.observe(0, t.elapsed().as_millis() as u64);
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
    use super::{Purge, snapshot_due};
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
