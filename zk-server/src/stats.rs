//! Counters for the four-letter words: server-wide and per connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hashbrown::HashMap;

/// Wall-clock ms since the Unix epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    /// Records one latency.
    pub fn add(&self, ms: u64) {
        if self.count.fetch_add(1, Relaxed) == 0 {
            self.min.store(ms, Relaxed);
        } else {
            self.min.fetch_min(ms, Relaxed);
        }
        self.max.fetch_max(ms, Relaxed);
        self.total.fetch_add(ms, Relaxed);
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
}

impl ConnStats {
    /// Fresh counters for `peer`.
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
        }
    }
}

impl ServerStats {
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

    /// Records the size of one reply sent.
    pub fn response_sent(&self, size: usize) {
        let size = size as i64;
        self.response_size[0].store(size, Relaxed);
        let min = &self.response_size[1];
        let _ = min.fetch_update(Relaxed, Relaxed, |m| (m < 0 || size < m).then_some(size));
        self.response_size[2].fetch_max(size, Relaxed);
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
        l.add(5);
        l.add(1);
        l.add(9);
        assert_eq!(l.get(), (1, 5.0, 9, 3));
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
