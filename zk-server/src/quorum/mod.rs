//! Ensemble mode: the leader election on ZooKeeper's election port and,
//! after a decision, the quorum port of the Zab role the sequencer hosts.
//!
//! One thread (`zk-quorum`) with its own mio `Poll` runs everything: the
//! election port ([`transport`], ZooKeeper's `QuorumCnxManager`), the
//! sans-I/O election core ([`zk_election::Election`]) whose named timers
//! become deadlines of the poll loop, and after a decision the quorum port
//! ([`port`]) of the Zab role the sequencer hosts. Election traffic is a few
//! small messages per round, so it shares nothing with the client loops.
//!
//! `Decided` sends `Lead` / `Follow` (zk-zab's configs from zoo.cfg)
//! to the sequencer; the port's socket events go to it as `QuorumIn` (and a
//! `Tick` every tickTime/2 while the role lasts), and its `QuorumOut` come
//! back through an outbox that wakes this poll. A role ends only by the
//! sequencer's `RoleEnded` (when this side loses the leader connection it
//! says `LeaderClosed` and waits for it): the next round starts with the last
//! logged zxid it carries and the `currentEpoch` file. `EpochEstablished`
//! goes to the election core.
//!
//! # Log lines (stable: tests and operators read them)
//!
//! * `election: LOOKING (<why>); round <n>, last zxid 0x<hex>, current epoch <e>`
//!   when a round starts;
//! * `election: still LOOKING after <ms> ms in round <n>: connected to [..], heard from [..]`
//!   at most once a second while a round lasts longer than a second;
//! * `<LEADING|FOLLOWING|OBSERVING> - LEADER ELECTION TOOK - <ms> MS` (ZooKeeper's line), then
//!   `election decided: role=<leading|following|observing> leader=<sid> election_epoch=<n> zxid=0x<hex> peer_epoch=<e> took_ms=<ms> joined=<bool>`
//!   (joined: by the notifications of servers already following that leader);
//! * `leading: FOLLOWERINFO from server <sid> at <addr>` (or OBSERVERINFO);
//! * `election: back to LOOKING: <reason>` when the role ends.
//!
//! While LOOKING the server serves nothing: client connections are closed
//! and the four-letter words that need a running server answer `This
//! ZooKeeper instance is not currently serving requests`. It serves once the
//! sequencer's role is established (leader) or synced (learner).

mod packets;
mod port;
mod transport;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token, Waker};
use tracing::{debug, error, info, warn};
use zk_election::{
    Command, Decision, Election, Event, Joint, Majority, Params, PeerState, Sid, Timer,
};
use zk_jute::quorum::{HostPort, QuorumServer, voter_ids};

use crate::config::Config;
use crate::error::{StartError, io_err};
use crate::inbox::Inbox;
use crate::msg::{CoreMsg, Outbox, QuorumIn, QuorumOut};
use port::{Bounds, ZabLeading, ZabLearning};
use transport::{Delivery, Transport};

const WAKER: Token = Token(0);
const ELECTION_LISTENER: Token = Token(1);
const QUORUM_LISTENER: Token = Token(2);
const LEARNER: Token = Token(3);
/// Tokens of election connections start here, learner connections (leader
/// side) at [`ROLE_TOKENS`].
const TRANSPORT_TOKENS: usize = 16;
const ROLE_TOKENS: usize = 1 << 40;

/// The quorum of `voters`: zoo.cfg's hierarchical one when it has groups,
/// else a majority.
fn voters_quorum(voters: BTreeSet<Sid>, groups: Option<&Arc<zk_election::Groups>>) -> Majority {
    match groups {
        Some(g) => Majority::hierarchical(g.clone()),
        None => Majority::new(voters),
    }
}

/// `zookeeper.commitLogCount`: committed txns a leader keeps for DIFF.
const COMMIT_LOG_COUNT: usize = 500;

/// The quorum thread's poll and its link with the sequencer, made before the
/// sequencer so that its outbox can wake this poll.
pub(crate) struct Prepared {
    poll: Poll,
    waker: Arc<Waker>,
    outbox: Outbox,
    rx: Receiver<Vec<QuorumOut>>,
}

impl Prepared {
    pub(crate) fn new() -> Result<Self, StartError> {
        let poll = Poll::new().map_err(io_err("cannot create the quorum event loop"))?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create a waker"))?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let outbox = Outbox::new(tx, Some(waker.clone()));
        Ok(Prepared {
            poll,
            waker,
            outbox,
            rx,
        })
    }

    /// The sequencer's outbox (the Zab role's packets to this thread).
    pub(crate) fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }
}

/// Stops the quorum thread.
#[derive(Clone)]
pub(crate) struct QuorumStop {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl QuorumStop {
    /// Asks the thread to stop (it closes every connection and exits).
    pub(crate) fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The current epoch for the election's vote: the `currentEpoch` file in
/// dataDir (ASCII decimal, as ZooKeeper's `version-2/currentEpoch`; Zab will
/// write it), else the epoch of the last logged zxid.
pub(crate) fn current_epoch(data_dir: &Path, last_zxid: i64) -> i64 {
    let path = data_dir.join("currentEpoch");
    match std::fs::read_to_string(&path) {
        Ok(t) => match t.lines().next().unwrap_or("").trim().parse::<i64>() {
            Ok(e) => e,
            Err(_) => {
                warn!(
                    "{}: not a number; using the epoch of the last zxid",
                    path.display()
                );
                last_zxid >> 32
            }
        },
        Err(_) => last_zxid >> 32,
    }
}

fn resolve(hp: &HostPort) -> Option<SocketAddr> {
    (hp.host.as_str(), hp.port).to_socket_addrs().ok()?.next()
}

/// Binds the election port (before recovery and the other threads, so that a
/// taken port stops the server early): the configured election address, or
/// 0.0.0.0 with quorumListenOnAllIPs; electionPortBindRetry tries, 1 s apart
/// (0 = forever), as QuorumCnxManager.Listener.
pub(crate) fn bind_election_port(config: &Config) -> Result<std::net::TcpListener, StartError> {
    let me = config.my_id;
    let my = config
        .servers
        .iter()
        .find(|s| s.id == me)
        .ok_or_else(|| StartError::Unsupported(format!("server.{me} is not configured")))?;
    let election_addr = &my.election_addrs[0];
    let bind = if config.quorum_listen_on_all_ips {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), election_addr.port)
    } else {
        resolve(election_addr).ok_or_else(|| {
            StartError::Unsupported(format!(
                "cannot resolve our election address {election_addr}"
            ))
        })?
    };
    let mut tries = 0u32;
    loop {
        match std::net::TcpListener::bind(bind) {
            Ok(l) => return Ok(l),
            Err(e) => {
                tries += 1;
                if config.election_port_bind_retry != 0 && tries >= config.election_port_bind_retry
                {
                    return Err(StartError::Io {
                        what: format!(
                            "cannot bind the election port {bind} after {tries} tries (electionPortBindRetry)"
                        ),
                        source: e,
                    });
                }
                warn!("cannot bind the election port {bind}: {e}; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// The election port's transport on the bound `listener`, and its address.
fn election_transport(
    config: &Config,
    listener: std::net::TcpListener,
    poll: &Poll,
    config_text: &Bytes,
    now: Instant,
) -> Result<(Transport, SocketAddr), StartError> {
    let me = config.my_id;
    let my = config
        .servers
        .iter()
        .find(|s| s.id == me)
        .ok_or_else(|| StartError::Unsupported(format!("server.{me} is not configured")))?;
    let bind = listener
        .local_addr()
        .map_err(io_err("cannot read the election port's address"))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot set the election listener non-blocking"))?;
    let tick = u64::from(config.tick_time);
    let setup = transport::Setup {
        me,
        my_addr: my.election_addrs[0].clone(),
        listener_token: ELECTION_LISTENER,
        first_token: TRANSPORT_TOKENS,
        peers: config
            .servers
            .iter()
            .map(|s| (s.id, s.election_addrs[0].clone()))
            .collect(),
        cnx_timeout: Duration::from_millis(config.cnx_timeout_ms),
        handshake_timeout: Duration::from_millis(tick * u64::from(config.sync_limit)),
        config_text: config_text.clone(),
    };
    let transport = Transport::new(
        poll.registry(),
        mio::net::TcpListener::from_std(listener),
        setup,
        now,
    )
    .map_err(io_err("cannot register the election listener"))?;
    Ok((transport, bind))
}

/// Starts the quorum thread on the bound election `listener`. `last_zxid` is
/// the last logged zxid.
pub(crate) fn start(
    config: &Config,
    listener: std::net::TcpListener,
    last_zxid: i64,
    last_seen: Option<(u64, Vec<QuorumServer>)>,
    prepared: Prepared,
    core: Inbox<CoreMsg>,
    stats: &crate::stats::ServerStats,
) -> Result<(QuorumStop, JoinHandle<()>), StartError> {
    let me = config.my_id;
    let Prepared {
        poll,
        waker,
        outbox,
        rx,
    } = prepared;
    let now = Instant::now();
    let config_text = Bytes::from(config.quorum_config_text());
    let (transport, bind) = election_transport(config, listener, &poll, &config_text, now)?;
    // The last-seen configuration's voters join at the first round
    // (`Runtime::joint`).
    let quorum = Joint::new(
        voters_quorum(voter_ids(&config.servers), config.quorum_groups.as_ref()),
        None,
    );
    let params = Params {
        finalize_wait_ms: config.election_finalize_wait_ms,
        min_notification_interval_ms: config.election_finalize_wait_ms,
        ..Params::default()
    };
    info!(
        "ensemble of {} servers: I am server {me} ({:?}), election port {bind}, finalize wait {} ms",
        config.servers.len(),
        config.peer_type,
        params.finalize_wait_ms,
    );
    let mut zab = Zab::new(config, core, outbox, rx, config_text);
    zab.learners = stats.learners.clone();
    let election_time = stats.election_time.clone();
    let flag = Arc::new(AtomicBool::new(false));
    let rt = Runtime {
        poll,
        stop: flag.clone(),
        me,
        election: Election::new(me, quorum, params),
        transport,
        timers: BTreeMap::new(),
        role: Role::None,
        last_zxid,
        current_epoch: current_epoch(&config.data_dir, last_zxid),
        round_started: now,
        election_time,
        last_still: now,
        heard: BTreeSet::new(),
        offered_config: 0,
        relook_at: None,
        next_role_token: ROLE_TOKENS,
        quorum_addrs: config
            .servers
            .iter()
            .map(|s| (s.id, s.quorum_addrs[0].clone()))
            .collect(),
        listen_all: config.quorum_listen_on_all_ips,
        servers: config.servers.clone(),
        last_seen,
        zab,
    };
    let thread = std::thread::Builder::new()
        .name("zk-quorum".into())
        .spawn(move || rt.run())
        .map_err(io_err("cannot start the quorum thread"))?;
    Ok((QuorumStop { flag, waker }, thread))
}

/// What a role's socket event or deadline leads to.
enum Outcome {
    /// Carry on.
    Stay,
    /// Leave the role and look for a leader again, for this reason.
    Lost(String),
}

enum Role {
    None,
    /// The quorum port of the sequencer's Zab role.
    ZabLeading(ZabLeading),
    ZabLearning(ZabLearning),
    /// The quorum side lost the role (the leader connection ended): the
    /// sequencer was told and its `RoleEnded` starts the next round.
    Ending,
}

/// What the Zab role adds to the runtime.
struct Zab {
    /// The sequencer's inbox.
    core: Inbox<CoreMsg>,
    outbox: Outbox,
    rx: Receiver<Vec<QuorumOut>>,
    data_dir: PathBuf,
    voters: BTreeSet<Sid>,
    /// zoo.cfg's hierarchical quorum over `voters` (none after a reconfig).
    groups: Option<Arc<zk_election::Groups>>,
    init_limit: u64,
    sync_limit: u64,
    config_text: Bytes,
    /// Its `server.N=...` lines (the text without the version).
    members: Bytes,
    /// Its version (`Config::config_version`, then `QuorumOut::ConfigVersion`).
    config_version: i64,
    /// reconfigEnabled: a leader versions a configuration of version 0
    /// (`zk_zab::LeaderConfig::version_config`).
    version_config: bool,
    bounds: Bounds,
    half_tick: Duration,
    /// When the role's next tick is due (while a role is active).
    next_tick: Option<Instant>,
    /// For the sequencer, sent in order before the thread sleeps.
    to_core: Vec<QuorumIn>,
    /// The leader's learner connections, for the AdminServer.
    learners: Arc<crate::stats::LearnerHandlers>,
}

impl Zab {
    fn new(
        config: &Config,
        core: Inbox<CoreMsg>,
        outbox: Outbox,
        rx: Receiver<Vec<QuorumOut>>,
        config_text: Bytes,
    ) -> Zab {
        let tick = u64::from(config.tick_time);
        Zab {
            core,
            outbox,
            rx,
            data_dir: config.data_dir.clone(),
            voters: voter_ids(&config.servers),
            groups: config.quorum_groups.clone(),
            init_limit: u64::from(config.init_limit),
            sync_limit: u64::from(config.sync_limit),
            config_text,
            members: Bytes::from(config.quorum_members_text()),
            config_version: i64::try_from(config.config_version).unwrap_or(i64::MAX),
            version_config: config.reconfig_enabled,
            bounds: Bounds {
                max_data: config.jute_max_buffer + packets::DATA_SLACK,
                snap_max: zk_tree::APACHE_MAX_LEN.max(config.jute_max_buffer),
                init: Duration::from_millis(tick * u64::from(config.init_limit)),
                connect: Duration::from_millis(
                    tick * u64::from(match config.connect_to_learner_master_limit {
                        0 => config.init_limit,
                        n => n,
                    }),
                ),
            },
            half_tick: Duration::from_millis((tick / 2).max(1)),
            next_tick: None,
            to_core: Vec::new(),
            learners: Arc::default(),
        }
    }
}

struct Runtime {
    poll: Poll,
    stop: Arc<AtomicBool>,
    me: Sid,
    election: Election<Joint>,
    transport: Transport,
    /// The election's armed timers.
    timers: BTreeMap<Timer, Instant>,
    role: Role,
    last_zxid: i64,
    current_epoch: i64,
    round_started: Instant,
    /// Each election's duration (Apache's `election_time`, mntr and /metrics).
    election_time: Arc<crate::stats::Summary>,
    last_still: Instant,
    heard: BTreeSet<Sid>,
    /// The latest configuration version a peer's notification offered the
    /// sequencer (each later one is offered once).
    offered_config: i64,
    /// A role could not start: look again at this instant.
    relook_at: Option<Instant>,
    next_role_token: usize,
    quorum_addrs: BTreeMap<Sid, HostPort>,
    listen_all: bool,
    /// The members in force.
    servers: Vec<QuorumServer>,
    /// The last-seen configuration ([`QuorumOut::LastSeen`]): its version
    /// and servers, counted while later than the configuration in force.
    last_seen: Option<(u64, Vec<QuorumServer>)>,
    zab: Zab,
}

impl Runtime {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut out = Vec::new();
        self.refresh_peers(Instant::now());
        self.start_looking(Instant::now(), "start-up");
        loop {
            let now = Instant::now();
            self.drain_outbox(now);
            let next = self.tick(now);
            self.flush_core();
            let timeout = next.map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                error!("quorum event loop failed: {e}; the election stops");
                return;
            }
            if self.stop.load(Ordering::SeqCst) {
                self.leave_role();
                info!("quorum thread stopped");
                return;
            }
            let now = Instant::now();
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKER {
                    continue;
                }
                if self.transport.owns(t) {
                    self.transport.ready(self.poll.registry(), t, now, &mut out);
                    continue;
                }
                let outcome = self.role_ready(t, now);
                if let Outcome::Lost(why) = outcome {
                    self.lost(now, &why);
                }
            }
            self.deliver(&mut out, now);
            self.flush_core();
            // The sequencer has the SNAP packet: its body follows.
            while let Some(t) = self.learner_pending() {
                if let Outcome::Lost(why) = self.role_ready(t, now) {
                    self.lost(now, &why);
                }
                self.flush_core();
            }
        }
    }

    /// The learner's token when its connection must be read again though
    /// no event says so ([`port::ZabLearning::pending`]).
    fn learner_pending(&self) -> Option<Token> {
        match &self.role {
            Role::ZabLearning(l) => l.pending(),
            _ => None,
        }
    }

    /// Readiness of a token of the role.
    fn role_ready(&mut self, t: Token, now: Instant) -> Outcome {
        let registry = self.poll.registry();
        let to_core = &mut self.zab.to_core;
        match &mut self.role {
            Role::ZabLeading(l) if l.owns(t) => {
                l.ready(registry, t, &mut self.next_role_token, now, to_core);
                Outcome::Stay
            }
            Role::ZabLearning(l) if l.owns(t) => match l.ready(registry, to_core) {
                Ok(()) => Outcome::Stay,
                Err(why) => Outcome::Lost(why),
            },
            _ => Outcome::Stay,
        }
    }

    /// The role is lost on this side: the sequencer is told
    /// (`LeaderClosed`) and its `RoleEnded`, which brings the last zxid,
    /// starts the next round.
    fn lost(&mut self, now: Instant, why: &str) {
        if !matches!(self.role, Role::ZabLearning(_) | Role::ZabLeading(_)) {
            return self.start_looking(now, why);
        }
        self.zab.to_core.push(QuorumIn::LeaderClosed);
        info!("quorum port: {why}; ending the role");
        self.leave_role();
        self.role = Role::Ending;
    }

    /// Sends what the port produced to the sequencer, in order.
    fn flush_core(&mut self) {
        let z = &mut self.zab;
        z.core.send_all(z.to_core.drain(..).map(CoreMsg::Quorum));
    }

    /// The sequencer's `QuorumOut` since the last look.
    fn drain_outbox(&mut self, now: Instant) {
        let z = &self.zab;
        z.outbox.clear_notified();
        let batches: Vec<Vec<QuorumOut>> = z.rx.try_iter().collect();
        if batches.is_empty() {
            return;
        }
        for m in batches.into_iter().flatten() {
            self.on_core_out(m, now);
        }
        self.flush_role(now);
    }

    /// Writes what the role queued: one write per peer for everything the
    /// sequencer sent meanwhile (a write per packet took as much CPU as the
    /// sequencer, in the kernel's TCP path, under a write load).
    fn flush_role(&mut self, now: Instant) {
        let registry = self.poll.registry();
        let lost = match &mut self.role {
            Role::ZabLeading(l) => {
                l.flush_queued(registry, &mut self.zab.to_core);
                None
            }
            Role::ZabLearning(l) => l.flush_queued(registry).err(),
            _ => None,
        };
        if let Some(why) = lost {
            self.lost(now, &why);
        }
    }

    /// ZooKeeper's WorkerReceiver: while LOOKING with reconfigEnabled, a
    /// notification's configuration later than ours goes to the sequencer,
    /// which takes it as a learner takes its leader's (`config_version.rs`);
    /// its members come back as [`QuorumOut::Members`] and the election
    /// starts again with them.
    fn offer_config(&mut self, config: &Bytes) {
        if !self.zab.version_config
            || config.is_empty()
            || self.election.state() != PeerState::Looking
        {
            return;
        }
        let version = std::str::from_utf8(config)
            .ok()
            .and_then(|t| t.lines().last()?.strip_prefix("version="))
            .and_then(|v| i64::from_str_radix(v.trim(), 16).ok());
        let Some(v) = version else { return };
        if v > self.zab.config_version && v > self.offered_config {
            self.offered_config = v;
            info!(
                "election: a peer's notification carries configuration version 0x{v:x}, later than ours"
            );
            self.zab.to_core.push(QuorumIn::PeerConfig(config.clone()));
        }
    }

    /// The election's voters: those in force, and those of the last-seen
    /// configuration while it is later (ZooKeeper's
    /// `getCurrentAndNextConfigVoters`; zk-election's [`Joint`]).
    fn joint(&self) -> Joint {
        let next = self
            .last_seen
            .as_ref()
            .filter(|(v, _)| i64::try_from(*v).is_ok_and(|v| v > self.zab.config_version))
            .map(|(_, servers)| Majority::new(voter_ids(servers)));
        let current = voters_quorum(self.zab.voters.clone(), self.zab.groups.as_ref());
        Joint::new(current, next)
    }

    /// The election port's peers: the members in force and those of the
    /// last-seen configuration (their election addresses as it lists them).
    fn refresh_peers(&mut self, now: Instant) {
        let mut peers: BTreeMap<Sid, HostPort> = BTreeMap::new();
        let last_seen = self
            .last_seen
            .as_ref()
            .map(|(_, s)| &s[..])
            .unwrap_or_default();
        for s in last_seen.iter().chain(&self.servers) {
            if let Some(a) = s.election_addrs.first() {
                peers.insert(s.id, a.clone());
            }
        }
        let peers: Vec<(Sid, HostPort)> = peers.into_iter().collect();
        self.transport.set_peers(self.poll.registry(), &peers, now);
    }

    /// A reconfig's members (ZooKeeper's `restartLeaderElection` with the
    /// new verifier): the election counts the new voters and dials the new
    /// election ports, the next role reaches the new quorum ports; while
    /// LOOKING the election starts again with them.
    fn take_members(&mut self, servers: &[QuorumServer], members: Bytes, now: Instant) {
        let voters = voter_ids(servers);
        info!(
            "members from now on: {:?}, voters {voters:?}",
            servers.iter().map(|s| s.id).collect::<Vec<_>>()
        );
        self.servers = servers.to_vec();
        self.zab.voters = voters;
        // A reconfig's configuration counts majorities (one is refused
        // while groups are configured).
        self.zab.groups = None;
        self.election.set_quorum(self.joint());
        self.refresh_peers(now);
        self.quorum_addrs = servers
            .iter()
            .map(|s| (s.id, s.quorum_addrs[0].clone()))
            .collect();
        self.zab.members = members;
        if self.election.state() == PeerState::Looking {
            self.start_looking(now, "the configuration changed");
        }
    }

    fn on_core_out(&mut self, m: QuorumOut, now: Instant) {
        let m = match m {
            QuorumOut::ConfigVersion(v) => {
                let z = &mut self.zab;
                z.config_version = i64::try_from(v).unwrap_or(i64::MAX);
                z.config_text = zk_zab::config_text(&z.members, z.config_version);
                self.transport.set_config_text(z.config_text.clone());
                // A last-seen configuration this version reaches counts no more.
                self.election.set_quorum(self.joint());
                return;
            }
            QuorumOut::Members { servers, members } => {
                return self.take_members(&servers, members, now);
            }
            QuorumOut::LastSeen(seen) => {
                self.last_seen = seen;
                return self.refresh_peers(now);
            }
            QuorumOut::EpochEstablished(e) => {
                info!("epoch {e} established: the election's vote carries it");
                let peer_epoch = i64::from(e);
                return self.step(Event::EpochEstablished { peer_epoch }, now);
            }
            QuorumOut::RoleEnded { reason, last_zxid } => {
                // What the role sent before it ended still goes out.
                self.flush_role(now);
                self.last_zxid = last_zxid;
                self.current_epoch = current_epoch(&self.zab.data_dir, last_zxid);
                if !matches!(self.role, Role::None) {
                    self.start_looking(now, &reason);
                }
                return;
            }
            m => m,
        };
        let registry = self.poll.registry();
        match (m, &mut self.role) {
            (QuorumOut::ToLearner(conn, p), Role::ZabLeading(l)) => l.send(conn, &p),
            (QuorumOut::SnapMore { conn, piece, .. }, Role::ZabLeading(l)) => {
                l.send_more(conn, &piece)
            }
            (QuorumOut::CloseLearner(conn, why), Role::ZabLeading(l)) => {
                l.close_conn(registry, conn, &why)
            }
            (QuorumOut::ToLeader(p), Role::ZabLearning(l)) => l.send(&p),
            (m, _) => debug!("quorum port: no role for {m:?}"),
        }
    }

    /// Everything due at `now`; returns the next deadline.
    fn tick(&mut self, now: Instant) -> Option<Instant> {
        let mut out = Vec::new();
        // The election's timers.
        let due: Vec<Timer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in due {
            self.timers.remove(&t);
            if t == Timer::Notify && self.election.state() == PeerState::Looking {
                self.still_looking(now);
            }
            self.step(Event::Timer(t), now);
        }
        if self.relook_at.is_some_and(|at| now >= at) {
            self.relook_at = None;
            self.start_looking(now, "the role could not start");
        }
        // The role.
        let (outcome, role_next) = self.role_tick(now);
        if let Outcome::Lost(why) = outcome {
            self.lost(now, &why);
        }
        let transport_next = self.transport.tick(self.poll.registry(), now, &mut out);
        self.deliver(&mut out, now);
        [
            self.timers.values().min().copied(),
            role_next,
            transport_next,
            self.relook_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The role's deadlines, and its ticks to the sequencer (every half
    /// tickTime while a Zab role is active).
    fn role_tick(&mut self, now: Instant) -> (Outcome, Option<Instant>) {
        let registry = self.poll.registry();
        let mut tick_at = None;
        let z = &mut self.zab;
        if let Some(at) = &mut z.next_tick {
            if now >= *at {
                z.to_core.push(QuorumIn::Tick);
                *at = (*at + z.half_tick).max(now);
            }
            tick_at = Some(*at);
        }
        let to_core = &mut z.to_core;
        let (outcome, next) = match &mut self.role {
            Role::None | Role::Ending => (Outcome::Stay, None),
            Role::ZabLeading(l) => (Outcome::Stay, l.tick(registry, now, to_core)),
            Role::ZabLearning(l) => match l.tick(registry, now) {
                Ok(next) => (Outcome::Stay, next),
                Err(why) => (Outcome::Lost(why), None),
            },
        };
        (outcome, [next, tick_at].into_iter().flatten().min())
    }

    fn deliver(&mut self, out: &mut Vec<Delivery>, now: Instant) {
        for d in std::mem::take(out) {
            match d {
                Delivery::Connected(sid) => self.step(Event::Connected(sid), now),
                Delivery::Disconnected(sid) => self.step(Event::Disconnected(sid), now),
                Delivery::Message(from, msg, config) => {
                    self.heard.insert(from);
                    self.offer_config(&config);
                    self.step(Event::Received { from, msg }, now);
                }
            }
        }
    }

    fn step(&mut self, event: Event, now: Instant) {
        let mut cmds = Vec::new();
        debug!("election: {event:?}");
        self.election.step(event, &mut cmds);
        for c in cmds {
            debug!("election: -> {c:?}");
            match c {
                Command::Send { to, msg } => {
                    self.transport.send(self.poll.registry(), to, &msg, now)
                }
                Command::SetTimer { timer, after_ms } => {
                    self.timers
                        .insert(timer, now + Duration::from_millis(after_ms));
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Command::Decided(d) => self.decided(d, now),
            }
        }
    }

    fn still_looking(&mut self, now: Instant) {
        let took = now.duration_since(self.round_started);
        if took >= Duration::from_secs(1)
            && now.duration_since(self.last_still) >= Duration::from_secs(1)
        {
            self.last_still = now;
            info!(
                "election: still LOOKING after {} ms in round {}: connected to {:?}, heard from {:?}",
                took.as_millis(),
                self.election.logical_clock(),
                self.transport.connected(),
                self.heard
            );
        }
    }

    fn leave_role(&mut self) {
        match std::mem::replace(&mut self.role, Role::None) {
            Role::None | Role::Ending => {}
            Role::ZabLeading(l) => l.stop(self.poll.registry()),
            Role::ZabLearning(l) => l.stop(self.poll.registry()),
        }
        self.zab.next_tick = None;
    }

    fn start_looking(&mut self, now: Instant, why: &str) {
        if !matches!(self.role, Role::None) {
            info!("election: back to LOOKING: {why}");
        }
        self.leave_role();
        self.election.set_quorum(self.joint());
        self.relook_at = None;
        self.round_started = now;
        self.last_still = now;
        self.heard.clear();
        self.step(
            Event::StartLooking {
                last_zxid: self.last_zxid,
                current_epoch: self.current_epoch,
            },
            now,
        );
        if self.election.state() == PeerState::Looking {
            info!(
                "election: LOOKING ({why}); round {}, last zxid 0x{:x}, current epoch {}",
                self.election.logical_clock(),
                self.last_zxid,
                self.current_epoch
            );
        }
    }

    fn decided(&mut self, d: Decision, now: Instant) {
        let took = now.duration_since(self.round_started).as_millis();
        let upper = match d.state {
            PeerState::Leading => "LEADING",
            PeerState::Following => "FOLLOWING",
            PeerState::Observing => "OBSERVING",
            PeerState::Looking => "LOOKING",
        };
        info!("{upper} - LEADER ELECTION TOOK - {took} MS");
        self.election_time
            .observe(0, u64::try_from(took).unwrap_or(u64::MAX));
        info!(
            "election decided: role={} leader={} election_epoch={} zxid=0x{:x} peer_epoch={} took_ms={took} joined={}",
            d.state.name(),
            d.leader,
            d.election_epoch,
            d.vote.zxid,
            d.vote.peer_epoch,
            d.joined
        );
        self.leave_role();
        let Some(addr) = self.quorum_addrs.get(&d.leader).cloned() else {
            warn!(
                "election: the elected leader {} has no quorum address",
                d.leader
            );
            self.relook_at = Some(now + Duration::from_secs(1));
            return;
        };
        match d.state {
            PeerState::Leading => self.lead(&addr, now),
            PeerState::Following | PeerState::Observing => {
                // A server the members do not list (a reconfig removed it)
                // follows without a vote, as ZooKeeper's non-voting
                // participant; a listed non-voter observes.
                let observer =
                    d.state == PeerState::Observing && self.quorum_addrs.contains_key(&self.me);
                let z = &mut self.zab;
                z.to_core.push(QuorumIn::Follow {
                    cfg: zk_zab::LearnerConfig {
                        sid: self.me,
                        observer,
                        init_limit: z.init_limit,
                        sync_limit: z.sync_limit,
                        config_version: z.config_version,
                    },
                    leader: d.leader,
                });
                z.next_tick = Some(now + z.half_tick);
                let l = ZabLearning::start((d.leader, addr), LEARNER, z.bounds, now);
                self.role = Role::ZabLearning(l);
            }
            PeerState::Looking => {}
        }
    }

    /// Listens on our quorum port `addr` and starts the sequencer's Zab
    /// leader.
    fn lead(&mut self, addr: &HostPort, now: Instant) {
        let registry = self.poll.registry();
        let bind = if self.listen_all {
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                addr.port,
            ))
        } else {
            resolve(addr)
        };
        let bind = bind.ok_or_else(|| std::io::Error::other(format!("cannot resolve {addr}")));
        let known: BTreeSet<Sid> = self.quorum_addrs.keys().copied().collect();
        let z = &mut self.zab;
        let started = bind
            .and_then(|b| {
                ZabLeading::start(
                    registry,
                    known,
                    b,
                    QUORUM_LISTENER,
                    z.bounds,
                    z.learners.clone(),
                )
            })
            .map(|l| {
                z.to_core.push(QuorumIn::Lead(zk_zab::LeaderConfig {
                    sid: self.me,
                    voters: z.voters.clone(),
                    groups: z.groups.clone(),
                    init_limit: z.init_limit,
                    sync_limit: z.sync_limit,
                    commit_log_count: COMMIT_LOG_COUNT,
                    members: z.members.clone(),
                    diff_from_log: true,
                    config_version: z.config_version,
                    version_config: z.version_config,
                }));
                z.next_tick = Some(now + z.half_tick);
                Role::ZabLeading(l)
            });
        match started {
            Ok(role) => self.role = role,
            Err(e) => {
                error!(
                    "leading: cannot listen on the quorum port {addr}: {e}; looking again in 1 s"
                );
                self.relook_at = Some(now + Duration::from_secs(1));
            }
        }
    }
}
