//! Control state: what gates clients and shapes answers, kept apart from the
//! counters of `stats.rs` (which only report). The server's [`Mode`] (the one
//! place that decides what the 4lw say about standalone vs a role), whether
//! it serves, the last zxid applied (a client that has seen more is sent
//! away), the requests in the pipeline (globalOutstandingLimit) and the
//! connections per client IP (maxClientCnxns).

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use hashbrown::HashMap;

/// What this server is in its ensemble (a LOOKING server does not serve, so
/// it has no name of its own here: it keeps the last role's until the next,
/// unless it serves in read-only mode meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// No ensemble: one server is the quorum.
    Standalone = 0,
    /// The Zab leader of an established epoch.
    Leader = 1,
    /// A synced follower.
    Follower = 2,
    /// A synced observer.
    Observer = 3,
    /// LOOKING, serving reads to read-only clients (`readonlymode.enabled`;
    /// `sequencer/read_only.rs`).
    ReadOnly = 4,
}

impl Mode {
    /// The name `srvr` prints after `Mode:` and `mntr` as `zk_server_state`
    /// (Apache's `ServerState` names: standalone, leader, follower, observer;
    /// `read-only` is ReadOnlyZooKeeperServer's `getState`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::ReadOnly => "read-only",
        }
    }

    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Leader,
            2 => Mode::Follower,
            3 => Mode::Observer,
            4 => Mode::ReadOnly,
            _ => Mode::Standalone,
        }
    }
}

/// The connection limit a new client connection is beyond ([`Control::admit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// maxCnxns.
    Total,
    /// maxClientCnxns.
    PerIp,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Control {
    mode: AtomicU8,
    serving: AtomicBool,
    /// A leader with leaderServes=no: no clients while serving.
    clients_off: AtomicBool,
    /// The epoch the role serves in (0 standalone).
    epoch: AtomicU32,
    last_zxid: AtomicI64,
    /// Requests sent to the sequencer and not answered yet, every connection.
    outstanding: AtomicI64,
    /// Client connections per IP, and in all.
    per_ip: Mutex<(HashMap<IpAddr, u32>, u32)>,
    /// The leader's proposal sizes (last, min, max; -1 before the first), as
    /// Apache's `BufferStats`: `srvr`'s `Proposal sizes` line, reset by each
    /// new leader role.
    proposals: Mutex<(i64, i64, i64)>,
    /// The leader's learner gauges and when it became established (mntr).
    leader: Mutex<(zk_zab::LearnerCounts, Option<std::time::Instant>)>,
    /// Why the server stopped serving for good (a storage failure), if it did.
    failure: Mutex<Option<String>>,
    /// The server a learner syncs from (-1: none yet).
    learner_master: AtomicI64,
    /// The ensemble configuration's version (`Config::config_version` at
    /// the start; with reconfigEnabled, the one an established epoch gave it).
    config_version: AtomicU64,
}

impl Control {
    /// Not serving yet, at `last_zxid` (what recovery found).
    pub fn new(mode: Mode, last_zxid: i64) -> Self {
        Control {
            mode: AtomicU8::new(mode as u8),
            serving: AtomicBool::new(false),
            clients_off: AtomicBool::new(false),
            epoch: AtomicU32::new(0),
            last_zxid: AtomicI64::new(last_zxid),
            outstanding: AtomicI64::new(0),
            per_ip: Mutex::new((HashMap::new(), 0)),
            proposals: Mutex::new((-1, -1, -1)),
            leader: Mutex::new((zk_zab::LearnerCounts::default(), None)),
            failure: Mutex::new(None),
            learner_master: AtomicI64::new(-1),
            config_version: AtomicU64::new(0),
        }
    }

    /// The ensemble configuration's current version.
    pub fn config_version(&self) -> u64 {
        self.config_version.load(Relaxed)
    }

    /// The configuration's version is now `v`.
    pub fn set_config_version(&self, v: u64) {
        self.config_version.store(v, Relaxed);
    }

    /// A new leader role: no proposal sizes yet.
    pub fn reset_proposal_sizes(&self) {
        *self.proposals.lock().unwrap_or_else(|e| e.into_inner()) = (-1, -1, -1);
    }

    /// The leader proposed a txn of `len` bytes (`BufferStats.setLastBufferSize`).
    pub fn note_proposal_size(&self, len: usize) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        let mut p = self.proposals.lock().unwrap_or_else(|e| e.into_inner());
        p.0 = len;
        if p.1 == -1 || len < p.1 {
            p.1 = len;
        }
        p.2 = p.2.max(len);
    }

    /// The leader's learners changed (or a new leader role started: `since`
    /// is when it was established, `None` before).
    pub fn set_leader_gauges(
        &self,
        counts: zk_zab::LearnerCounts,
        since: Option<std::time::Instant>,
    ) {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = (counts, since);
    }

    /// The leader's learner gauges and its uptime in ms (0 before it was
    /// established), as Apache's `LeaderZooKeeperServer` registers them.
    pub fn leader_gauges(&self) -> (zk_zab::LearnerCounts, u64) {
        let (c, since) = *self.leader.lock().unwrap_or_else(|e| e.into_inner());
        (c, since.map_or(0, |t| t.elapsed().as_millis() as u64))
    }

    /// (last, min, max) proposal sizes, -1 before the first proposal.
    pub fn proposal_sizes(&self) -> (i64, i64, i64) {
        *self.proposals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server latched a fatal failure (the first one is kept): it
    /// serves nothing more and exits with it.
    pub fn set_failure(&self, what: &str) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(what.to_string());
        }
    }

    /// The fatal failure, if one happened.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A learner's role started under leader `sid`.
    pub fn set_learner_master(&self, sid: u64) {
        self.learner_master
            .store(i64::try_from(sid).unwrap_or(-1), Relaxed);
    }

    /// The server a learner syncs from, -1 before any (mntr's
    /// `zk_observer_master_id`).
    pub fn learner_master(&self) -> i64 {
        self.learner_master.load(Relaxed)
    }

    /// This server's mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Relaxed))
    }

    /// A Zab role took over (the sequencer, when the role is established).
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Relaxed);
    }

    /// Whether clients are served (4lw other than ruok/conf/envi/dirs, and
    /// new sessions, are refused otherwise).
    pub fn serving(&self) -> bool {
        self.serving.load(Relaxed)
    }

    /// Starts or stops serving.
    pub fn set_serving(&self, on: bool) {
        self.serving.store(on, Relaxed);
    }

    /// Whether clients are served: serving, and not a leader with
    /// `leaderServes=no` (which still expires sessions, snapshots and
    /// answers the AdminServer, as Apache's).
    pub fn serves_clients(&self) -> bool {
        self.serving() && !self.clients_off.load(Relaxed)
    }

    /// The epoch the role serves in (0 standalone).
    pub fn epoch(&self) -> u32 {
        self.epoch.load(Relaxed)
    }

    /// The role serves in `epoch` from now on.
    pub fn set_epoch(&self, epoch: u32) {
        self.epoch.store(epoch, Relaxed);
    }

    /// Whether a client that has seen `seen` is ahead of this server at
    /// `last`. A zxid whose counter is 0 names no txn (an Apache leader's
    /// replies carry its epoch's first zxid until the epoch's first write):
    /// a server serving that epoch or a later one has every txn before it.
    pub fn client_ahead(&self, seen: i64, last: i64) -> bool {
        let epoch_start = seen & 0xffff_ffff == 0 && (seen >> 32) <= i64::from(self.epoch());
        seen > last && !epoch_start
    }

    /// Keeps clients off (or lets them in) while serving.
    pub fn set_clients_off(&self, off: bool) {
        self.clients_off.store(off, Relaxed);
    }

    /// The last zxid applied to the tree (the zxid of replies to reads).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid.load(Relaxed)
    }

    /// The sequencer applied `zxid`.
    pub fn set_last_zxid(&self, zxid: i64) {
        self.last_zxid.store(zxid, Relaxed);
    }

    /// Requests in the pipeline, every connection.
    pub fn outstanding(&self) -> i64 {
        self.outstanding.load(Relaxed)
    }

    /// Adds `n` (negative: removes) requests in the pipeline.
    pub fn add_outstanding(&self, n: i64) {
        self.outstanding.fetch_add(n, Relaxed);
    }

    /// Counts a new connection from `ip`, or (not counting it) says which
    /// limit it is beyond: `max_total` in all (maxCnxns, checked first as
    /// Apache's `doAccept`) or `max_per_ip` from `ip` (maxClientCnxns); 0 =
    /// no limit.
    pub fn admit(&self, ip: IpAddr, max_per_ip: u32, max_total: u32) -> Result<(), Limit> {
        let mut guard = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let (per_ip, total) = &mut *guard;
        if max_total != 0 && *total >= max_total {
            return Err(Limit::Total);
        }
        let n = per_ip.entry(ip).or_insert(0);
        if max_per_ip != 0 && *n >= max_per_ip {
            return Err(Limit::PerIp);
        }
        *n += 1;
        *total += 1;
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn release(&self, ip: IpAddr) {
        let mut guard = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let (per_ip, total) = &mut *guard;
        if let Some(n) = per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            *total = total.saturating_sub(1);
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epochs_first_zxid_is_never_ahead_of_a_server_serving_that_epoch() {
        let c = Control::new(Mode::Follower, 0x1_0000_0005);
        c.set_epoch(3);
        assert!(!c.client_ahead(0x1_0000_0005, 0x1_0000_0005));
        assert!(
            c.client_ahead(0x1_0000_0006, 0x1_0000_0005),
            "a txn we lack"
        );
        assert!(
            !c.client_ahead(0x2_0000_0000, 0x1_0000_0005),
            "no txn of epoch 2"
        );
        assert!(!c.client_ahead(0x3_0000_0000, 0x1_0000_0005), "ours");
        assert!(
            c.client_ahead(0x4_0000_0000, 0x1_0000_0005),
            "a later epoch: not ours"
        );
        assert!(
            c.client_ahead(0x3_0000_0001, 0x1_0000_0005),
            "a txn of epoch 3 we lack"
        );
    }
}
