//! [`Shared`]: the state every thread sees (config, counters, sessions,
//! the tree, the loops' mailboxes and the sequencer's inbox).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::Instant;

use zk_jute::quorum::QuorumServer;
use zk_tree::Tree;

use crate::config::Config;
use crate::control::{Control, Mode};
use crate::inbox::Inbox;
use crate::msg::{CoreMsg, LoopHandle, LoopMsg};
use crate::sessions::SessionTracker;
use crate::stats::ServerStats;

/// State shared by the loops, the core and the 4lw.
pub(crate) struct Shared {
    pub config: Config,
    pub stats: ServerStats,
    pub control: Control,
    pub sessions: Mutex<SessionTracker>,
    pub tree: Arc<Tree>,
    /// Taken for writing by the core around "apply a txn and queue its events
    /// and reply", and for reading by a loop around "drain my mailbox, then
    /// serve a read": a client never sees data before the event that announces it.
    pub gate: RwLock<()>,
    loops: OnceLock<Vec<LoopHandle>>,
    core_tx: Inbox<CoreMsg>,
    clock: Instant,
    wall_at_start: i64,
    local_addr: OnceLock<SocketAddr>,
    secure_addr: OnceLock<SocketAddr>,
    /// The SASL users, when a JAAS file names them (`crate::sasl`).
    pub sasl: OnceLock<crate::sasl::SaslUsers>,
    /// The ensemble's members: the config's, until a reconfig the leader
    /// committed names others (`sequencer/config_version.rs`).
    members: RwLock<Arc<Vec<QuorumServer>>>,
    /// The voters among them (1 standalone).
    voters: AtomicUsize,
    /// A reconfig named other members: zoo.cfg's groups (hierarchical
    /// quorums) no longer apply (a reconfig's configuration is a majority).
    reconfigured: std::sync::atomic::AtomicBool,
}

/// [`Shared::outstanding_limit`] for globalOutstandingLimit `limit`, the
/// ensemble's `voters` and this server's `mode`.
pub(crate) fn outstanding_limit(limit: u32, voters: usize, mode: Mode) -> i64 {
    let (limit, voters) = (i64::from(limit), voters as i64);
    match mode {
        Mode::Leader | Mode::Follower if voters > 2 => limit / (voters - 1),
        Mode::Standalone | Mode::Leader | Mode::Follower | Mode::Observer | Mode::ReadOnly => limit,
    }
}

impl Shared {
    /// Shared state before the loops exist (see [`Shared::set_loops`]).
    pub fn new(
        config: Config,
        control: Control,
        sessions: SessionTracker,
        tree: Arc<Tree>,
        core_tx: Inbox<CoreMsg>,
        clock: Instant,
    ) -> Self {
        let members = RwLock::new(Arc::new(config.servers.clone()));
        let voters = AtomicUsize::new(config.voters());
        Shared {
            members,
            voters,
            reconfigured: std::sync::atomic::AtomicBool::new(false),
            config,
            stats: ServerStats::default(),
            control,
            sessions: Mutex::new(sessions),
            tree,
            gate: RwLock::new(()),
            loops: OnceLock::new(),
            core_tx,
            clock,
            wall_at_start: crate::stats::wall_ms(),
            local_addr: OnceLock::new(),
            secure_addr: OnceLock::new(),
            sasl: OnceLock::new(),
        }
    }

    /// The loops' mailboxes, set once when the loops are built.
    pub fn set_loops(&self, loops: Vec<LoopHandle>) {
        let _ = self.loops.set(loops);
    }

    /// The bound client address, set once after the bind.
    pub fn set_local_addr(&self, addr: SocketAddr) {
        let _ = self.local_addr.set(addr);
    }

    /// The bound secure client address, set once after the bind.
    pub fn set_secure_addr(&self, addr: SocketAddr) {
        let _ = self.secure_addr.set(addr);
    }

    /// The bound client port (none when the server serves TLS only), and
    /// the secure one if there is one.
    pub fn client_ports(&self) -> (Option<u16>, Option<u16>) {
        (
            self.config
                .plain_client_port
                .then(|| self.local_addr().port()),
            self.secure_addr.get().map(SocketAddr::port),
        )
    }

    pub fn loops(&self) -> &[LoopHandle] {
        self.loops.get().map_or(&[], |v| v.as_slice())
    }

    pub fn send_core(&self, m: CoreMsg) {
        self.core_tx.send(m);
    }

    /// Sends `ms` to the core in order, waking it at most once.
    pub fn send_core_all(&self, ms: impl IntoIterator<Item = CoreMsg>) {
        self.core_tx.send_all(ms);
    }

    /// The count of requests in flight above which a connection with
    /// requests of its own in flight is not read (Apache's
    /// `ZooKeeperServer.shouldThrottle`): globalOutstandingLimit, divided by
    /// the voters less one on the leader or a follower of more than two
    /// voters (`LeaderZooKeeperServer` / `FollowerZooKeeperServer`
    /// `.getGlobalOutstandingLimit`); an observer's and a standalone
    /// server's is the whole limit.
    pub fn outstanding_limit(&self) -> i64 {
        outstanding_limit(
            self.config.global_outstanding_limit,
            self.voters.load(Relaxed),
            self.control.mode(),
        )
    }

    /// The session table, locked (a poisoned lock is taken as it is: the
    /// table stays consistent between its own calls).
    pub fn lock_sessions(&self) -> std::sync::MutexGuard<'_, SessionTracker> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ensemble's members now.
    pub fn members(&self) -> Arc<Vec<QuorumServer>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The ensemble's members are `servers` from now on.
    pub fn set_members(&self, servers: Vec<QuorumServer>) {
        let voters = zk_jute::quorum::voter_ids(&servers).len();
        self.voters.store(voters, Relaxed);
        *self.members.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(servers);
        self.reconfigured.store(true, Relaxed);
    }

    /// The configuration with the members of now (what `conf`, the
    /// AdminServer, `/zookeeper/config` and the dynamic config file show).
    pub fn live_config(&self) -> Config {
        let mut c = self.config.clone();
        c.servers = self.members().as_ref().clone();
        if !self.groups_in_force() {
            c.drop_groups();
        }
        c
    }

    /// Whether zoo.cfg's `group.N` / `weight.N` lines still make the quorum
    /// (no reconfig named other members since).
    pub fn groups_in_force(&self) -> bool {
        self.config.quorum_groups.is_some() && !self.reconfigured.load(Relaxed)
    }

    /// Monotonic ms since start.
    pub fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// Monotonic ms since start at `t`.
    pub fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.clock).as_millis() as u64
    }

    /// Wall-clock time (ms) of a monotonic instant.
    pub fn monotonic_to_wall(&self, ms: u64) -> i64 {
        self.wall_at_start + ms as i64
    }

    pub fn last_zxid(&self) -> i64 {
        self.control.last_zxid()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
            .get()
            .copied()
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    /// A read guard on the tree for a loop thread (see [`Shared::gate`]).
    pub fn read_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Tells every loop to stop (called by the core once it drained).
pub(crate) fn stop_loops(shared: &Shared) {
    for l in shared.loops() {
        l.send(LoopMsg::Shutdown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outstanding_limit_is_apaches_share_per_voter() {
        // Apache 3.8: getGlobalOutstandingLimit() / (quorum size - 1) on a
        // leader or follower of more than two voters.
        assert_eq!(outstanding_limit(1000, 1, Mode::Standalone), 1000);
        assert_eq!(outstanding_limit(1000, 2, Mode::Leader), 1000);
        assert_eq!(outstanding_limit(1000, 3, Mode::Leader), 500);
        assert_eq!(outstanding_limit(1000, 3, Mode::Follower), 500);
        assert_eq!(outstanding_limit(1000, 5, Mode::Follower), 250);
        assert_eq!(outstanding_limit(1000, 5, Mode::Observer), 1000);
        assert_eq!(outstanding_limit(1, 3, Mode::Leader), 0);
    }
}
