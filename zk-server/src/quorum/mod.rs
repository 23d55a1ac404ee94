//! Ensemble mode, part 1: the leader election on ZooKeeper's election port,
//! and a temporary role stub until Zab (issue 14).
//!
//! One thread (`zk-quorum`) with its own mio `Poll` runs everything: the
//! election port ([`transport`], ZooKeeper's `QuorumCnxManager`), the
//! sans-I/O election core ([`zk_election::Election`]) whose named timers
//! become deadlines of the poll loop, and after a decision the role stub
//! ([`role`]). Election traffic is a few small messages per round, so it
//! shares nothing with the client loops.
//!
//! # Log lines (stable: tests and operators read them)
//!
//! * `election: LOOKING (<why>); round <n>, last zxid 0x<hex>, current epoch <e>`
//!   when a round starts;
//! * `election: still LOOKING after <ms> ms in round <n>: connected to [..], heard from [..]`
//!   at most once a second while a round lasts longer than a second;
//! * `<LEADING|FOLLOWING|OBSERVING> - LEADER ELECTION TOOK - <ms> MS` (ZooKeeper's line), then
//!   `election decided: role=<leading|following|observing> leader=<sid> election_epoch=<n> zxid=0x<hex> peer_epoch=<e> took_ms=<ms>`;
//! * `election: back to LOOKING: <reason>` when the role stub gives up.
//!
//! Until Zab lands the server serves nothing in ensemble mode: client
//! connections are closed and the four-letter words that need a running
//! server answer `This ZooKeeper instance is not currently serving requests`.

mod role;
mod transport;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Poll, Token, Waker};
use tracing::{error, info, warn};
use zk_election::{Command, Decision, Election, Event, Majority, Params, PeerState, Sid, Timer};
use zk_jute::quorum::{HostPort, LearnerType, QuorumConfig};

use crate::config::Config;
use crate::error::{StartError, io_err};
use role::{Leading, Learning, Limits, Outcome};
use transport::{Delivery, Transport};

const WAKER: Token = Token(0);
const ELECTION_LISTENER: Token = Token(1);
const QUORUM_LISTENER: Token = Token(2);
const LEARNER: Token = Token(3);
/// Tokens of election connections start here, learner connections (leader
/// side) at [`ROLE_TOKENS`].
const TRANSPORT_TOKENS: usize = 16;
const ROLE_TOKENS: usize = 1 << 40;

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

/// Starts the quorum thread on the bound election `listener`. `last_zxid` is
/// the last logged zxid.
pub(crate) fn start(
    config: &Config,
    listener: std::net::TcpListener,
    last_zxid: i64,
) -> Result<(QuorumStop, JoinHandle<()>), StartError> {
    let me = config.my_id;
    let my = config
        .servers
        .iter()
        .find(|s| s.id == me)
        .ok_or_else(|| StartError::Unsupported(format!("server.{me} is not configured")))?;
    let election_addr = my.election_addrs[0].clone();
    let bind = listener
        .local_addr()
        .map_err(io_err("cannot read the election port's address"))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot set the election listener non-blocking"))?;
    let poll = Poll::new().map_err(io_err("cannot create the quorum event loop"))?;
    let waker =
        Arc::new(Waker::new(poll.registry(), WAKER).map_err(io_err("cannot create a waker"))?);
    let now = Instant::now();
    let tick = u64::from(config.tick_time);
    let config_text = Bytes::from(
        QuorumConfig {
            servers: config.servers.clone(),
            version: Some(0),
        }
        .to_text(),
    );
    let setup = transport::Setup {
        me,
        my_addr: election_addr,
        listener_token: ELECTION_LISTENER,
        first_token: TRANSPORT_TOKENS,
        peers: config
            .servers
            .iter()
            .map(|s| (s.id, s.election_addrs[0].clone()))
            .collect(),
        cnx_timeout: Duration::from_millis(config.cnx_timeout_ms),
        handshake_timeout: Duration::from_millis(tick * u64::from(config.sync_limit)),
        config_text,
    };
    let transport = Transport::new(
        poll.registry(),
        mio::net::TcpListener::from_std(listener),
        setup,
        now,
    )
    .map_err(io_err("cannot register the election listener"))?;
    let quorum = Majority::new(
        config
            .servers
            .iter()
            .filter(|s| s.role == LearnerType::Participant)
            .map(|s| s.id),
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
        params.finalize_wait_ms
    );
    let flag = Arc::new(AtomicBool::new(false));
    let rt = Runtime {
        poll,
        stop: flag.clone(),
        me,
        election: Election::new(me, quorum.clone(), params),
        quorum,
        transport,
        timers: BTreeMap::new(),
        role: Role::None,
        last_zxid,
        current_epoch: current_epoch(&config.data_dir, last_zxid),
        round_started: now,
        last_still: now,
        heard: BTreeSet::new(),
        relook_at: None,
        next_role_token: ROLE_TOKENS,
        limits: Limits {
            init: Duration::from_millis(tick * u64::from(config.init_limit)),
            sync: Duration::from_millis(tick * u64::from(config.sync_limit)),
        },
        quorum_addrs: config
            .servers
            .iter()
            .map(|s| (s.id, s.quorum_addrs[0].clone()))
            .collect(),
        listen_all: config.quorum_listen_on_all_ips,
    };
    let thread = std::thread::Builder::new()
        .name("zk-quorum".into())
        .spawn(move || rt.run())
        .map_err(io_err("cannot start the quorum thread"))?;
    Ok((QuorumStop { flag, waker }, thread))
}

enum Role {
    None,
    Leading(Leading),
    Learning(Learning),
}

struct Runtime {
    poll: Poll,
    stop: Arc<AtomicBool>,
    me: Sid,
    election: Election<Majority>,
    quorum: Majority,
    transport: Transport,
    /// The election's armed timers.
    timers: BTreeMap<Timer, Instant>,
    role: Role,
    last_zxid: i64,
    current_epoch: i64,
    round_started: Instant,
    last_still: Instant,
    heard: BTreeSet<Sid>,
    /// A role could not start: look again at this instant.
    relook_at: Option<Instant>,
    next_role_token: usize,
    limits: Limits,
    quorum_addrs: BTreeMap<Sid, HostPort>,
    listen_all: bool,
}

impl Runtime {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut out = Vec::new();
        self.start_looking(Instant::now(), "start-up");
        loop {
            let now = Instant::now();
            let next = self.tick(now);
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
                let outcome = match &mut self.role {
                    Role::Leading(l) if l.owns(t) => {
                        l.ready(self.poll.registry(), t, &mut self.next_role_token, now);
                        Outcome::Stay
                    }
                    Role::Learning(l) if l.owns(t) => l.ready(self.poll.registry(), now),
                    _ => Outcome::Stay,
                };
                if let Outcome::Lost(why) = outcome {
                    self.start_looking(now, &why);
                }
            }
            self.deliver(&mut out, now);
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
        let (outcome, role_next) = match &mut self.role {
            Role::None => (Outcome::Stay, None),
            Role::Leading(l) => l.tick(self.poll.registry(), &self.quorum, now),
            Role::Learning(l) => l.tick(self.poll.registry(), now),
        };
        if let Outcome::Lost(why) = outcome {
            self.start_looking(now, &why);
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

    fn deliver(&mut self, out: &mut Vec<Delivery>, now: Instant) {
        for d in std::mem::take(out) {
            match d {
                Delivery::Connected(sid) => self.step(Event::Connected(sid), now),
                Delivery::Disconnected(sid) => self.step(Event::Disconnected(sid), now),
                Delivery::Message(from, msg) => {
                    self.heard.insert(from);
                    self.step(Event::Received { from, msg }, now);
                }
            }
        }
    }

    fn step(&mut self, event: Event, now: Instant) {
        let mut cmds = Vec::new();
        self.election.step(event, &mut cmds);
        for c in cmds {
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
            Role::None => {}
            Role::Leading(l) => l.stop(self.poll.registry()),
            Role::Learning(l) => l.stop(self.poll.registry()),
        }
    }

    fn start_looking(&mut self, now: Instant, why: &str) {
        if !matches!(self.role, Role::None) {
            info!("election: back to LOOKING: {why}");
        }
        self.leave_role();
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
        info!(
            "election decided: role={} leader={} election_epoch={} zxid=0x{:x} peer_epoch={} took_ms={took}",
            d.state.name(),
            d.leader,
            d.election_epoch,
            d.vote.zxid,
            d.vote.peer_epoch
        );
        self.leave_role();
        let registry = self.poll.registry();
        let Some(addr) = self.quorum_addrs.get(&d.leader).cloned() else {
            warn!(
                "election: the elected leader {} has no quorum address",
                d.leader
            );
            self.relook_at = Some(now + Duration::from_secs(1));
            return;
        };
        match d.state {
            PeerState::Leading => {
                let bind = if self.listen_all {
                    Some(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        addr.port,
                    ))
                } else {
                    resolve(&addr)
                };
                let started = bind
                    .ok_or_else(|| std::io::Error::other(format!("cannot resolve {addr}")))
                    .and_then(|b| {
                        Leading::start(
                            registry,
                            self.me,
                            self.quorum_addrs.keys().copied().collect(),
                            b,
                            QUORUM_LISTENER,
                            self.limits,
                            now,
                        )
                    });
                match started {
                    Ok(l) => self.role = Role::Leading(l),
                    Err(e) => {
                        error!(
                            "leading: cannot listen on the quorum port {addr}: {e}; looking again in 1 s"
                        );
                        self.relook_at = Some(now + Duration::from_secs(1));
                    }
                }
            }
            PeerState::Following | PeerState::Observing => {
                self.role = Role::Learning(Learning::start(
                    self.me,
                    d.state == PeerState::Observing,
                    (d.leader, addr),
                    self.current_epoch,
                    LEARNER,
                    self.limits,
                    now,
                ));
            }
            PeerState::Looking => {}
        }
    }
}
