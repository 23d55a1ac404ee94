//! Counters for the four-letter words, the AdminServer and `/metrics`:
//! server-wide and per connection, all atomics on the request path.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;

/// Wall-clock ms since the Unix epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The replies an event loop queued since it last published them to
/// [`ServerStats::responses_sent`]: their count and sizes (without the
/// length prefix), so that the loops update the shared counters once per
/// iteration rather than once per reply.
#[derive(Debug, Default)]
pub struct SentTally {
    count: u64,
    last: i64,
    min: i64,
    max: i64,
}

impl SentTally {
    /// One more reply of `size` bytes.
    pub fn add(&mut self, size: usize) {
        let size = size as i64;
        if self.count == 0 {
            (self.min, self.max) = (size, size);
        } else {
            self.min = self.min.min(size);
            self.max = self.max.max(size);
        }
        self.count += 1;
        self.last = size;
    }
}

/// Min/avg/max of request latencies in ms.
#[derive(Debug, Default)]
pub struct Latency {
    min: AtomicU64,
    max: AtomicU64,
    total: AtomicU64,
    count: AtomicU64,
}

impl Latency {
    /// Records `n` requests of latency `ms` (no-op for 0). Min and max are
    /// written only when they change: the loops share these counters.
    pub fn add_n(&self, ms: u64, n: u64) {
        if n == 0 {
            return;
        }
        if self.count.fetch_add(n, Relaxed) == 0 {
            self.min.store(ms, Relaxed);
        } else if ms < self.min.load(Relaxed) {
            self.min.fetch_min(ms, Relaxed);
        }
        if ms > self.max.load(Relaxed) {
            self.max.fetch_max(ms, Relaxed);
        }
        self.total.fetch_add(ms * n, Relaxed);
    }

    /// (min, avg, max, count).
    pub fn get(&self) -> (u64, f64, u64, u64) {
        let n = self.count.load(Relaxed);
        let avg = if n == 0 {
            0.0
        } else {
            self.total.load(Relaxed) as f64 / n as f64
        };
        (self.min.load(Relaxed), avg, self.max.load(Relaxed), n)
    }

    /// Back to zero.
    pub fn reset(&self) {
        self.count.store(0, Relaxed);
        self.min.store(0, Relaxed);
        self.max.store(0, Relaxed);
        self.total.store(0, Relaxed);
    }
}

/// A lock-free latency summary in ms (Apache's `readlatency` and
/// `updatelatency`): count, sum, min, max and a log-linear histogram (exact
/// below 64 ms, then 8 buckets per power of two, so at most 12.5 % wide)
/// from which the quantiles are estimated when scraped. It is sharded: each
/// recording thread passes its own shard number (an event loop its index,
/// the sequencer 0), so that threads recording at once write to cache lines
/// of their own; a scrape adds the shards up. Recording is a few relaxed
/// atomic adds; it covers the server's whole life (Apache's Prometheus
/// summaries slide over 10 minutes: README, "Metrics").
#[derive(Debug)]
pub struct Summary {
    shards: Box<[Shard]>,
}

/// Shards per summary (an event loop's index is taken modulo this).
const SHARDS: usize = 8;

/// One shard, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

/// Exact buckets below this many ms.
const EXACT: u64 = 64;
/// Buckets: the exact ones, then 8 per power of two up to 2^64.
const SUMMARY_BUCKETS: usize = EXACT as usize + (64 - 6) * 8;

impl Default for Shard {
    fn default() -> Self {
        Self {
            buckets: (0..SUMMARY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

impl Summary {
    fn bucket(v: u64) -> usize {
        if v < EXACT {
            return v as usize;
        }
        let log = 63 - u64::from(v.leading_zeros()); // >= 6
        let sub = (v >> (log - 3)) & 7;
        (EXACT + (log - 6) * 8 + sub) as usize
    }

    /// The smallest value of bucket `i`.
    fn lower_bound(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let log = (i - EXACT) / 8 + 6;
        let sub = (i - EXACT) % 8;
        (1 << log) + (sub << (log - 3))
    }

    /// Records one value in shard `shard` (taken modulo the shard count).
    pub fn observe(&self, shard: usize, v: u64) {
        self.observe_n(shard, v, 1);
    }

    /// Records value `v` `n` times in shard `shard` (no-op for 0).
    pub fn observe_n(&self, shard: usize, v: u64, n: u64) {
        let Some(s) = self.shards.get(shard % SHARDS) else {
            return;
        };
        if n == 0 {
            return;
        }
        if let Some(b) = s.buckets.get(Self::bucket(v)) {
            b.fetch_add(n, Relaxed);
        }
        s.count.fetch_add(n, Relaxed);
        s.sum.fetch_add(v * n, Relaxed);
        if v < s.min.load(Relaxed) {
            s.min.fetch_min(v, Relaxed);
        }
        if v > s.max.load(Relaxed) {
            s.max.fetch_max(v, Relaxed);
        }
    }

    /// (count, sum).
    pub fn count_sum(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(c, s), x| {
            (c + x.count.load(Relaxed), s + x.sum.load(Relaxed))
        })
    }

    /// (min, max); (0, 0) before the first value.
    pub fn min_max(&self) -> (u64, u64) {
        let min = self.shards.iter().map(|x| x.min.load(Relaxed)).min();
        let max = self.shards.iter().map(|x| x.max.load(Relaxed)).max();
        match (min, max) {
            (Some(u64::MAX) | None, _) => (0, 0),
            (Some(min), max) => (min, max.unwrap_or(0)),
        }
    }

    /// The estimated `q`-quantile (0 < q <= 1): the lower bound of the
    /// bucket holding the value of rank ceil(q * count), within the
    /// recorded min and max; `None` before the first value.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = (0..SUMMARY_BUCKETS)
            .map(|i| {
                self.shards
                    .iter()
                    .map(|x| x.buckets.get(i).map_or(0, |b| b.load(Relaxed)))
                    .sum()
            })
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let (min, max) = self.min_max();
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::lower_bound(i).clamp(min, max));
            }
        }
        Some(max)
    }
}

/// The txn log's syncs, timed on the log's sync thread: Apache's
/// `fsynctime` and `fsync_threshold_exceed_count`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Each batch sync's duration, ms.
    pub time: Summary,
    /// Syncs slower than `fsync.warningthresholdms`.
    pub exceeded: AtomicU64,
}

/// One connection's counters (ZooKeeper's `ServerCnxn` stats).
#[derive(Debug)]
pub struct ConnStats {
    /// The peer.
    pub peer: SocketAddr,
    /// Requests sent on and not answered yet.
    pub outstanding: AtomicI64,
    /// Packets received.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
    /// Session id (0 before the handshake).
    pub session_id: AtomicI64,
    /// Negotiated timeout.
    pub timeout: AtomicI64,
    /// Wall ms when established.
    pub established: AtomicI64,
    /// Last cxid.
    pub last_cxid: AtomicI64,
    /// Last zxid replied.
    pub last_zxid: AtomicI64,
    /// Wall ms of the last response.
    pub last_response: AtomicI64,
    /// Latency of the last request.
    pub last_latency: AtomicU64,
    /// Last operation (short name as ZooKeeper prints it).
    pub last_op: Mutex<&'static str>,
    /// Latencies.
    pub latency: Latency,
    /// Wall ms of the last packet received (or the accept): the connection
    /// expiry `dump` shows.
    pub touched: AtomicI64,
    /// The connection is answering a four-letter word (`cons` shows its
    /// interest ops as `[0]`, as Apache's connection being processed).
    pub four_letter: std::sync::atomic::AtomicBool,
    /// On the secure client port (the AdminServer lists it under
    /// `secure_connections`).
    pub secure: std::sync::atomic::AtomicBool,
}

impl ConnStats {
    /// Fresh counters for `peer`.
    /// Records `n` requests answered with latency `lat` ms: the last of
    /// them answered at wall ms `at`, after zxid `zxid` (what `cons` shows).
    pub fn answered(&self, lat: u64, n: u64, at: i64, zxid: i64) {
        self.latency.add_n(lat, n);
        self.last_latency.store(lat, Relaxed);
        self.last_response.store(at, Relaxed);
        self.last_zxid.store(zxid, Relaxed);
    }

    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            outstanding: AtomicI64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            session_id: AtomicI64::new(0),
            timeout: AtomicI64::new(0),
            established: AtomicI64::new(0),
            last_cxid: AtomicI64::new(-1),
            last_zxid: AtomicI64::new(-1),
            last_response: AtomicI64::new(0),
            last_latency: AtomicU64::new(0),
            last_op: Mutex::new("NA"),
            latency: Latency::default(),
            touched: AtomicI64::new(wall_ms()),
            four_letter: std::sync::atomic::AtomicBool::new(false),
            secure: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Resets the counters (`crst`).
    pub fn reset(&self) {
        self.received.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.last_cxid.store(-1, Relaxed);
        self.last_zxid.store(-1, Relaxed);
        self.last_response.store(0, Relaxed);
        self.last_latency.store(0, Relaxed);
        *self.last_op.lock().unwrap_or_else(|e| e.into_inner()) = "NA";
        self.latency.reset();
    }

    /// ZooKeeper's `dumpConnectionInfo(pw, brief=false)` line (without the newline).
    pub fn cons_line(&self) -> String {
        let mut s = format!(
            " /{}[{}](queued={},recved={},sent={}",
            self.peer,
            if self.four_letter.load(Relaxed) { 0 } else { 1 },
            self.outstanding.load(Relaxed).max(0),
            self.received.load(Relaxed),
            self.sent.load(Relaxed)
        );
        let session = self.session_id.load(Relaxed);
        if session != 0 {
            let (min, avg, max, _) = self.latency.get();
            let lop = *self.last_op.lock().unwrap_or_else(|e| e.into_inner());
            s.push_str(&format!(
                ",sid=0x{:x},lop={},est={},to={}",
                session,
                lop,
                self.established.load(Relaxed),
                self.timeout.load(Relaxed)
            ));
            let cxid = self.last_cxid.load(Relaxed);
            if cxid >= 0 {
                s.push_str(&format!(",lcxid=0x{cxid:x}"));
            }
            s.push_str(&format!(
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                self.last_zxid.load(Relaxed),
                self.last_response.load(Relaxed),
                self.last_latency.load(Relaxed),
                min,
                avg.round() as u64,
                max
            ));
        }
        s.push(')');
        s
    }
}

/// One learner connection at the leader, as Apache's `LearnerHandler`
/// reports it (the AdminServer's `observers`): kept by the quorum port.
#[derive(Debug)]
pub struct LearnerHandlerStats {
    /// The learner's address.
    pub peer: SocketAddr,
    /// Wall ms when its connection was accepted.
    pub established: i64,
    /// Its server id, -1 until its FOLLOWERINFO / OBSERVERINFO.
    pub sid: AtomicI64,
    /// It sent OBSERVERINFO.
    pub observer: AtomicBool,
    /// It was sent UPTODATE: synced, and sent every commit since.
    pub synced: AtomicBool,
    /// Packets queued for it and not yet written to its socket.
    pub queued_packets: AtomicU64,
    /// Their bytes.
    pub queued_bytes: AtomicU64,
    /// Packets received from it.
    pub received: AtomicU64,
    /// Packets written for it.
    pub sent: AtomicU64,
    /// REQUEST packets (writes it forwarded) received from it.
    pub requests: AtomicU64,
    /// The zxid of the last packet with one (> 0) sent to it, -1 before.
    pub last_zxid: AtomicI64,
}

impl LearnerHandlerStats {
    /// Fresh counters for a connection from `peer`, accepted now.
    pub fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            established: wall_ms(),
            sid: AtomicI64::new(-1),
            observer: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            queued_packets: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            last_zxid: AtomicI64::new(-1),
        }
    }

    /// Apache's `resetObserverConnectionStats` (`orst`).
    pub fn reset(&self) {
        self.received.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.requests.store(0, Relaxed);
        self.last_zxid.store(-1, Relaxed);
    }
}

/// The leader's learner connections, by the quorum port's connection id.
#[derive(Debug, Default)]
pub struct LearnerHandlers(Mutex<HashMap<u64, Arc<LearnerHandlerStats>>>);

impl LearnerHandlers {
    /// A connection `conn` was accepted.
    pub fn add(&self, conn: u64, stats: Arc<LearnerHandlerStats>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(conn, stats);
    }

    /// Connection `conn` closed.
    pub fn remove(&self, conn: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&conn);
    }

    /// The leader role ended: no learner connections.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The synced observers (Apache's `Leader.getObservingLearners`), by sid.
    pub fn synced_observers(&self) -> Vec<Arc<LearnerHandlerStats>> {
        let mut v: Vec<_> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|l| l.observer.load(Relaxed) && l.synced.load(Relaxed))
            .cloned()
            .collect();
        v.sort_by_key(|l| l.sid.load(Relaxed));
        v
    }
}

/// Server-wide counters.
#[derive(Debug)]
pub struct ServerStats {
    /// When the server started.
    pub started: Instant,
    /// Packets received.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
    /// Request latencies.
    pub latency: Latency,
    /// Connections, by id.
    pub conns: Mutex<HashMap<u64, Arc<ConnStats>>>,
    /// Failed auth attempts.
    pub auth_failed: AtomicU64,
    /// Connections closed at accept for maxClientCnxns (`zk_connection_rejected`).
    pub rejected: AtomicU64,
    /// Sizes of the replies sent (without the length prefix): last, min, max;
    /// -1 until the first one (Apache's `BufferStats`).
    pub response_size: [AtomicI64; 3],
    /// The trace mask `gtmk` prints and `stmk` sets (ZooTrace's default 306).
    pub trace_mask: AtomicI64,
    /// Applied txns whose digest was not the tree's (`zk_digest_mismatches_count`).
    pub digest_mismatches: AtomicU64,
    /// Latencies of reads answered by the event loops (Apache's `readlatency`).
    pub read_latency: Summary,
    /// Latencies of txns, request to reply (Apache's `updatelatency`).
    pub update_latency: Summary,
    /// The txn log's syncs (set by `Server::start` before the log opens).
    pub fsync: Arc<SyncStats>,
    /// How long each snapshot took to write, ms (Apache's `snapshottime`).
    pub snapshot_time: Arc<Summary>,
    /// How long each leader election took, ms (Apache's `election_time`).
    pub election_time: Arc<Summary>,
    /// The leader's learner connections (the AdminServer's `observers`).
    pub learners: Arc<LearnerHandlers>,
    /// A follower's sync with its leader, ACKEPOCH to serving, ms.
    pub follower_sync_time: Summary,
    /// An observer's sync with its leader, ACKEPOCH to serving, ms.
    pub observer_sync_time: Summary,
    /// Watchers fired by each trigger that fired any, by event type:
    /// NodeCreated, NodeDeleted, NodeDataChanged, NodeChildrenChanged
    /// (Apache's `node_created_watch_count`, ...).
    pub watch_counts: [Summary; 4],
    /// The start's recovery (each recorded once): `dbinittime`,
    /// `startup_snap_load_time`, `startup_txns_loaded`,
    /// `startup_txns_load_time` (the last two only when txns were replayed,
    /// as Apache's `fastForwardFromEdits`).
    pub startup: [Summary; 4],
}

impl ServerStats {
    /// Records the start's recovery figures.
    pub(crate) fn started_from(&self, r: &crate::storage::Recovered) {
        let [db_init, snap_load, txns_loaded, txns_load] = &self.startup;
        db_init.observe(0, r.db_init_ms);
        snap_load.observe(0, r.snapshot_load_ms);
        if r.replayed_txns > 0 {
            txns_loaded.observe(0, r.replayed_txns);
            txns_load.observe(0, r.replay_ms);
        }
    }

    /// Records the watchers an applied txn's triggers fired.
    pub fn watches_fired(&self, counts: &[(zk_jute::EventType, usize)]) {
        use zk_jute::EventType as E;
        for &(ty, n) in counts {
            let i = match ty {
                E::NodeCreated => 0,
                E::NodeDeleted => 1,
                E::NodeDataChanged => 2,
                E::NodeChildrenChanged => 3,
                _ => continue,
            };
            self.watch_counts[i].observe(0, n as u64);
        }
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            latency: Latency::default(),
            conns: Mutex::new(HashMap::new()),
            auth_failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            response_size: [AtomicI64::new(-1), AtomicI64::new(-1), AtomicI64::new(-1)],
            trace_mask: AtomicI64::new(306),
            digest_mismatches: AtomicU64::new(0),
            read_latency: Summary::default(),
            update_latency: Summary::default(),
            fsync: Arc::default(),
            snapshot_time: Arc::default(),
            election_time: Arc::default(),
            learners: Arc::default(),
            follower_sync_time: Summary::default(),
            observer_sync_time: Summary::default(),
            watch_counts: Default::default(),
            startup: Default::default(),
        }
    }
}

impl ServerStats {
    /// Records `n` requests answered with latency `lat` ms in the server's
    /// latency figures and in `summary` (`read_latency` or
    /// `update_latency`), shard `shard`.
    pub fn answered(&self, summary: &Summary, shard: usize, lat: u64, n: u64) {
        self.latency.add_n(lat, n);
        summary.observe_n(shard, lat, n);
    }

    /// Every connection's counters.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        let mut v: Vec<_> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|c| c.peer);
        v
    }

    /// Records the replies an event loop queued in one iteration.
    pub fn responses_sent(&self, t: &SentTally) {
        if t.count == 0 {
            return;
        }
        self.sent.fetch_add(t.count, Relaxed);
        self.response_size[0].store(t.last, Relaxed);
        let min = &self.response_size[1];
        let _ = min.fetch_update(Relaxed, Relaxed, |m| (m < 0 || t.min < m).then_some(t.min));
        if t.max > self.response_size[2].load(Relaxed) {
            self.response_size[2].fetch_max(t.max, Relaxed);
        }
    }

    /// `srst`.
    pub fn reset(&self) {
        for s in &self.response_size {
            s.store(-1, Relaxed);
        }
        self.received.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.auth_failed.store(0, Relaxed);
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_min_avg_max() {
        let l = Latency::default();
        assert_eq!(l.get(), (0, 0.0, 0, 0));
        l.add_n(5, 1);
        l.add_n(1, 1);
        l.add_n(9, 1);
        assert_eq!(l.get(), (1, 5.0, 9, 3));
        l.add_n(2, 0);
        assert_eq!(l.get(), (1, 5.0, 9, 3));
        l.add_n(0, 5);
        assert_eq!(l.get(), (0, 15.0 / 8.0, 9, 8));
        let l = Latency::default();
        l.add_n(7, 4);
        assert_eq!(l.get(), (7, 7.0, 7, 4));
    }

    #[test]
    fn observe_n_counts_each_value() {
        let (one, many) = (Summary::default(), Summary::default());
        for _ in 0..3 {
            one.observe(1, 70);
        }
        one.observe(1, 2);
        many.observe_n(1, 70, 3);
        many.observe_n(1, 2, 1);
        many.observe_n(1, 500, 0);
        assert_eq!(many.count_sum(), one.count_sum());
        assert_eq!(many.min_max(), one.min_max());
        assert_eq!(many.quantile(0.5), one.quantile(0.5));
    }

    #[test]
    fn a_loops_tally_of_replies_sets_count_last_min_and_max() {
        let s = ServerStats::default();
        s.responses_sent(&SentTally::default());
        let sizes = |s: &ServerStats| s.response_size.each_ref().map(|a| a.load(Relaxed));
        assert_eq!((s.sent.load(Relaxed), sizes(&s)), (0, [-1, -1, -1]));
        let mut t = SentTally::default();
        for size in [40, 16, 90, 30] {
            t.add(size);
        }
        s.responses_sent(&t);
        assert_eq!((s.sent.load(Relaxed), sizes(&s)), (4, [30, 16, 90]));
        let mut t = SentTally::default();
        t.add(20);
        s.responses_sent(&t);
        assert_eq!((s.sent.load(Relaxed), sizes(&s)), (5, [20, 16, 90]));
    }

    #[test]
    fn summary_quantiles_are_within_a_bucket() {
        let s = Summary::default();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.min_max(), (0, 0));
        for v in 1..=100 {
            s.observe(v as usize, v);
        }
        assert_eq!(s.count_sum(), (100, 5050));
        assert_eq!(s.min_max(), (1, 100));
        assert_eq!(s.quantile(0.5), Some(50));
        let p99 = s.quantile(0.99).unwrap();
        assert!((88..=99).contains(&p99), "{p99}");
        s.observe(3, u64::MAX);
        assert_eq!(
            s.quantile(1.0),
            Some(Summary::lower_bound(SUMMARY_BUCKETS - 1))
        );
        for i in 0..SUMMARY_BUCKETS {
            assert_eq!(Summary::bucket(Summary::lower_bound(i)), i);
        }
    }

    #[test]
    fn cons_line_matches_go_zookeeper_regex_shape() {
        let c = ConnStats::new("127.0.0.1:5000".parse().unwrap());
        assert_eq!(
            c.cons_line(),
            " /127.0.0.1:5000[1](queued=0,recved=0,sent=0)"
        );
        c.session_id.store(0x1234, Relaxed);
        c.timeout.store(30000, Relaxed);
        c.last_cxid.store(3, Relaxed);
        let line = c.cons_line();
        assert!(line.starts_with(" /127.0.0.1:5000[1](queued=0,recved=0,sent=0,sid=0x1234,lop=NA,est=0,to=30000,lcxid=0x3,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)"), "{line}");
    }
}
