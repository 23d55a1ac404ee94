//! The role stub of issue 13, kept behind `zkrs.zab=off` as a safety valve
//! (Zab, `port.rs`, is the default): what a server does between the
//! election's decision and the next election, so that real processes fail
//! over, without replicating anything.
//!
//! * LEADING: listen on our quorum port; a learner announces itself with a
//!   real FOLLOWERINFO / OBSERVERINFO packet, and its connection is then only
//!   held (nothing else is sent or read). Without a quorum of voters (ourselves
//!   included, counting the FOLLOWERINFO senders whose connection is open)
//!   within initLimit ticks, or after losing it for syncLimit ticks, the
//!   leader goes back to LOOKING.
//! * FOLLOWING / OBSERVING: connect to the leader's quorum port (retrying
//!   every 100 ms), send FOLLOWERINFO / OBSERVERINFO, and hold the connection,
//!   discarding what the leader sends. Not connected within initLimit ticks,
//!   or the connection fails or closes: back to LOOKING.
//!
//! No epoch is proposed, nothing is synced, and no client is served; a Java
//! leader waits for our ACKEPOCH until its initLimit runs out and then drops
//! us, and we look again. A dead peer is noticed only when its TCP connection
//! closes (kill -9 does close it; a vanished host does not). No epoch is
//! established either, so the election core never gets
//! `Event::EpochEstablished`: the vote a decided server reports keeps the
//! epoch it was elected with (Zab will feed the new epoch after its sync).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};
use zk_election::{Majority, Quorum, Sid};
use zk_jute::quorum::HostPort;
use zk_jute::quorum_packet;

use super::port::{Accepted, accept_learner};
use super::wire;

/// Delay between two attempts to reach the leader.
const RETRY: Duration = Duration::from_millis(100);

/// The role's timing, from zoo.cfg.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// initLimit × tickTime.
    pub init: Duration,
    /// syncLimit × tickTime.
    pub sync: Duration,
}

struct LearnerConn {
    stream: TcpStream,
    peer: SocketAddr,
    /// The sid once its LearnerInfo arrived.
    sid: Option<Sid>,
    rbuf: Vec<u8>,
    deadline: Instant,
}

/// The stub of a leader.
pub(crate) struct Leading {
    me: Sid,
    /// The configured servers: a LearnerInfo naming another sid is refused.
    known: BTreeSet<Sid>,
    listener: TcpListener,
    listener_token: Token,
    conns: HashMap<Token, LearnerConn>,
    followers: BTreeMap<Sid, Token>,
    started: Instant,
    had_quorum: bool,
    lost_since: Option<Instant>,
    limits: Limits,
}

/// The stub of a follower or an observer.
pub(crate) struct Learning {
    me: Sid,
    observer: bool,
    leader: Sid,
    leader_addr: HostPort,
    accepted_epoch: i64,
    token: Token,
    stream: Option<TcpStream>,
    connected: bool,
    wbuf: Vec<u8>,
    started: Instant,
    next_try: Instant,
    limits: Limits,
}

/// What reading a learner's connection found.
enum Drained {
    /// Nothing decisive; the connection stays.
    Open,
    /// Closed, or sent something that is not a learner's first packet.
    Closed(String),
    /// Its first packet: the type and the sid from its LearnerInfo.
    Info(i32, Sid),
}

fn info_name(ty: i32) -> &'static str {
    if ty == quorum_packet::OBSERVERINFO {
        "OBSERVERINFO"
    } else {
        "FOLLOWERINFO"
    }
}

/// What a role reports to the runtime.
pub(crate) enum Outcome {
    /// Carry on.
    Stay,
    /// Leave the role and look for a leader again, for this reason.
    Lost(String),
}

impl Leading {
    /// Binds the quorum port at `bind` and starts waiting for learners.
    pub(crate) fn start(
        registry: &Registry,
        me: Sid,
        known: BTreeSet<Sid>,
        bind: SocketAddr,
        listener_token: Token,
        limits: Limits,
        now: Instant,
    ) -> io::Result<Self> {
        let mut listener = TcpListener::bind(bind)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        info!("leading (stub until Zab): listening for learners on quorum port {bind}");
        Ok(Leading {
            me,
            known,
            listener,
            listener_token,
            conns: HashMap::new(),
            followers: BTreeMap::new(),
            started: now,
            had_quorum: false,
            lost_since: None,
            limits,
        })
    }

    /// Handles readiness of `token` (`next_token` allocates tokens).
    pub(crate) fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        next_token: &mut usize,
        now: Instant,
    ) {
        if token == self.listener_token {
            self.accept(registry, next_token, now);
            return;
        }
        let read = match self.conns.get_mut(&token) {
            Some(c) => Self::read(c),
            None => return,
        };
        let close = match read {
            Drained::Open => None,
            Drained::Closed(why) => Some(why),
            Drained::Info(ty, sid) if !self.known.contains(&sid) => Some(format!(
                "{} from server {sid}, which is not in the configuration",
                info_name(ty)
            )),
            Drained::Info(ty, sid) => {
                let c = self.conns.get_mut(&token).expect("read above");
                c.sid = Some(sid);
                c.rbuf = Vec::new();
                info!("leading: {} from server {sid} at {}", info_name(ty), c.peer);
                if let Some(old) = self.followers.insert(sid, token)
                    && old != token
                {
                    // drop_conn leaves `followers[sid]` (now `token`) alone.
                    self.drop_conn(registry, old, "replaced by a newer connection");
                }
                // It may have sent more already: drain it (discarded).
                match self.conns.get_mut(&token).map(Self::read) {
                    Some(Drained::Closed(why)) => Some(why),
                    _ => None,
                }
            }
        };
        if let Some(why) = close {
            self.drop_conn(registry, token, &why);
        }
    }

    fn accept(&mut self, registry: &Registry, next_token: &mut usize, now: Instant) {
        loop {
            let waiting = self.conns.values().filter(|c| c.sid.is_none()).count();
            let (stream, peer, t) =
                match accept_learner(&self.listener, registry, next_token, waiting) {
                    Accepted::Conn(stream, peer, t) => (stream, peer, t),
                    Accepted::Refused => continue,
                    Accepted::Drained => return,
                };
            let conn = LearnerConn {
                stream,
                peer,
                sid: None,
                rbuf: Vec::new(),
                deadline: now + self.limits.init,
            };
            self.conns.insert(t, conn);
        }
    }

    /// Reads until the socket would block: an identified learner's bytes are
    /// discarded (the stub speaks no Zab beyond its first packet); an
    /// unidentified one's are parsed for FOLLOWERINFO / OBSERVERINFO.
    fn read(c: &mut LearnerConn) -> Drained {
        let mut buf = [0u8; 4096];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => return Drained::Closed("closed by the learner".to_string()),
                Ok(_) if c.sid.is_some() => {}
                Ok(n) => {
                    c.rbuf.extend_from_slice(&buf[..n]);
                    match wire::parse_learner_info(&c.rbuf) {
                        Ok(None) => {}
                        Err(why) => return Drained::Closed(why),
                        Ok(Some((ty, sid))) => return Drained::Info(ty, sid),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Drained::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Drained::Closed(format!("read failed: {e}")),
            }
        }
    }

    fn drop_conn(&mut self, registry: &Registry, token: Token, why: &str) {
        if let Some(mut c) = self.conns.remove(&token) {
            let _ = registry.deregister(&mut c.stream);
            match c.sid {
                Some(sid) => {
                    info!("leading: learner {sid} at {} left: {why}", c.peer);
                    if self.followers.get(&sid) == Some(&token) {
                        self.followers.remove(&sid);
                    }
                }
                None => warn!("quorum port: closing connection from {}: {why}", c.peer),
            }
        }
    }

    /// Whether `token` is ours.
    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.conns.contains_key(&token)
    }

    /// Checks the quorum and the learners' deadlines; the next instant
    /// something is due.
    pub(crate) fn tick(
        &mut self,
        registry: &Registry,
        quorum: &Majority,
        now: Instant,
    ) -> (Outcome, Option<Instant>) {
        let late: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.sid.is_none() && now >= c.deadline)
            .map(|(t, _)| *t)
            .collect();
        for t in late {
            self.drop_conn(
                registry,
                t,
                "no FOLLOWERINFO / OBSERVERINFO within initLimit",
            );
        }
        let mut acks: BTreeSet<Sid> = self.followers.keys().copied().collect();
        acks.insert(self.me);
        let has = quorum.contains_quorum(&acks);
        let mut next = self
            .conns
            .values()
            .filter(|c| c.sid.is_none())
            .map(|c| c.deadline)
            .min();
        let mut at = |i: Instant| next = Some(next.map_or(i, |n: Instant| n.min(i)));
        if !self.had_quorum {
            if has {
                self.had_quorum = true;
                info!("leading: a quorum of voters is connected: {acks:?}");
            } else if now >= self.started + self.limits.init {
                return (
                    Outcome::Lost(format!(
                        "no quorum of followers within initLimit ({} ms); connected: {acks:?}",
                        self.limits.init.as_millis()
                    )),
                    None,
                );
            } else {
                at(self.started + self.limits.init);
            }
        } else if has {
            if self.lost_since.take().is_some() {
                info!("leading: quorum regained: {acks:?}");
            }
        } else {
            let since = *self.lost_since.get_or_insert_with(|| {
                info!("leading: quorum lost (connected: {acks:?}); waiting up to syncLimit");
                now
            });
            if now >= since + self.limits.sync {
                return (
                    Outcome::Lost(format!(
                        "quorum lost for syncLimit ({} ms); connected: {acks:?}",
                        self.limits.sync.as_millis()
                    )),
                    None,
                );
            }
            at(since + self.limits.sync);
        }
        (Outcome::Stay, next)
    }

    /// Closes the listener and every learner connection.
    pub(crate) fn stop(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.listener);
        for (_, mut c) in self.conns.drain() {
            let _ = registry.deregister(&mut c.stream);
        }
    }
}

impl Learning {
    /// Starts connecting to `leader` at its quorum address.
    pub(crate) fn start(
        me: Sid,
        observer: bool,
        (leader, leader_addr): (Sid, HostPort),
        accepted_epoch: i64,
        token: Token,
        limits: Limits,
        now: Instant,
    ) -> Self {
        Learning {
            me,
            observer,
            leader,
            leader_addr,
            accepted_epoch,
            token,
            stream: None,
            connected: false,
            wbuf: Vec::new(),
            started: now,
            next_try: now,
            limits,
        }
    }

    /// Whether `token` is ours.
    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.token
    }

    fn connect(&mut self, registry: &Registry, now: Instant) {
        self.next_try = now + RETRY;
        let addr = match (self.leader_addr.host.as_str(), self.leader_addr.port)
            .to_socket_addrs()
            .map(|mut a| a.next())
        {
            Ok(Some(a)) => a,
            _ => {
                warn!(
                    "following: cannot resolve the leader's address {}",
                    self.leader_addr
                );
                return;
            }
        };
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                let _ = s.set_nodelay(true);
                if registry
                    .register(&mut s, self.token, Interest::READABLE | Interest::WRITABLE)
                    .is_ok()
                {
                    self.stream = Some(s);
                    self.wbuf =
                        wire::learner_info_packet(self.observer, self.accepted_epoch, self.me);
                }
            }
            Err(e) => debug!(
                "following: cannot connect to leader {} at {addr}: {e}",
                self.leader
            ),
        }
    }

    fn reset(&mut self, registry: &Registry) -> Option<String> {
        if let Some(mut s) = self.stream.take() {
            let _ = registry.deregister(&mut s);
        }
        self.wbuf.clear();
        None
    }

    /// Handles readiness of our connection.
    pub(crate) fn ready(&mut self, registry: &Registry, now: Instant) -> Outcome {
        let Some(s) = self.stream.as_mut() else {
            return Outcome::Stay;
        };
        if !self.connected {
            match (s.take_error(), s.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    self.connected = true;
                    info!(
                        "{}: connected to leader {} at {}; sent {}",
                        if self.observer {
                            "observing"
                        } else {
                            "following"
                        },
                        self.leader,
                        self.leader_addr,
                        if self.observer {
                            "OBSERVERINFO"
                        } else {
                            "FOLLOWERINFO"
                        }
                    );
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => {
                    return Outcome::Stay;
                }
                (Ok(Some(e)), _) | (Err(e), _) | (_, Err(e)) => {
                    debug!(
                        "following: connecting to leader {} failed: {e}",
                        self.leader
                    );
                    self.reset(registry);
                    self.next_try = self.next_try.max(now + RETRY);
                    return Outcome::Stay;
                }
            }
        }
        let s = self.stream.as_mut().expect("checked above");
        while !self.wbuf.is_empty() {
            match s.write(&self.wbuf) {
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Outcome::Lost(format!("writing to leader {} failed: {e}", self.leader));
                }
            }
        }
        if self.wbuf.is_empty() {
            let _ = registry.reregister(s, self.token, Interest::READABLE);
        }
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    return Outcome::Lost(format!("leader {} closed the connection", self.leader));
                }
                Ok(_) => {} // held: discarded (the stub speaks no Zab beyond FOLLOWERINFO)
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Outcome::Stay,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Outcome::Lost(format!(
                        "connection to leader {} failed: {e}",
                        self.leader
                    ));
                }
            }
        }
    }

    /// Retries and the initLimit deadline; the next instant something is due.
    pub(crate) fn tick(&mut self, registry: &Registry, now: Instant) -> (Outcome, Option<Instant>) {
        if self.connected {
            return (Outcome::Stay, None);
        }
        let deadline = self.started + self.limits.init;
        if now >= deadline {
            self.reset(registry);
            return (
                Outcome::Lost(format!(
                    "could not connect to leader {} at {} within initLimit ({} ms)",
                    self.leader,
                    self.leader_addr,
                    self.limits.init.as_millis()
                )),
                None,
            );
        }
        if self.stream.is_none() && now >= self.next_try {
            self.connect(registry, now);
        }
        let next = if self.stream.is_none() {
            self.next_try.min(deadline)
        } else {
            deadline
        };
        (Outcome::Stay, Some(next))
    }

    /// Closes the connection.
    pub(crate) fn stop(mut self, registry: &Registry) {
        self.reset(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    const LIMITS: Limits = Limits {
        init: Duration::from_millis(400),
        sync: Duration::from_millis(200),
    };

    fn leader(poll: &Poll, now: Instant) -> (Leading, SocketAddr) {
        let l = Leading::start(
            poll.registry(),
            3,
            [1, 2, 3].into_iter().collect(),
            "127.0.0.1:0".parse().unwrap(),
            Token(2),
            LIMITS,
            now,
        )
        .unwrap();
        let addr = l.listener.local_addr().unwrap();
        (l, addr)
    }

    /// Polls for `ms` and hands every event to the leader.
    fn run(poll: &mut Poll, l: &mut Leading, next: &mut usize, ms: u64) {
        let mut events = Events::with_capacity(16);
        let end = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < end {
            poll.poll(&mut events, Some(Duration::from_millis(5)))
                .unwrap();
            for ev in events.iter() {
                l.ready(poll.registry(), ev.token(), next, Instant::now());
            }
        }
    }

    fn majority() -> Majority {
        Majority::new([1, 2, 3])
    }

    /// A FOLLOWERINFO from a voter makes a quorum of two with the leader;
    /// losing it for syncLimit sends the leader back to LOOKING.
    #[test]
    fn leader_counts_followerinfo_and_steps_down_after_sync_limit() {
        let mut poll = Poll::new().unwrap();
        let (mut l, addr) = leader(&poll, Instant::now());
        let mut next = 100;
        let mut f = std::net::TcpStream::connect(addr).unwrap();
        f.write_all(&wire::learner_info_packet(false, 0, 1))
            .unwrap();
        run(&mut poll, &mut l, &mut next, 50);
        let (o, _) = l.tick(poll.registry(), &majority(), Instant::now());
        assert!(matches!(o, Outcome::Stay));
        assert!(l.had_quorum);
        assert_eq!(l.followers.keys().copied().collect::<Vec<_>>(), vec![1]);
        let dropped = Instant::now();
        drop(f);
        run(&mut poll, &mut l, &mut next, 50);
        let now = Instant::now();
        let (o, _) = l.tick(poll.registry(), &majority(), now);
        if now < dropped + LIMITS.sync {
            assert!(matches!(o, Outcome::Stay), "within syncLimit");
        }
        run(&mut poll, &mut l, &mut next, 250);
        let (o, _) = l.tick(poll.registry(), &majority(), Instant::now());
        assert!(matches!(o, Outcome::Lost(_)), "quorum lost for syncLimit");
    }

    /// No quorum within initLimit: back to LOOKING. An unknown sid and a
    /// packet that is not FOLLOWERINFO / OBSERVERINFO are closed; an
    /// observer does not count.
    #[test]
    fn leader_without_a_quorum_and_bad_learners() {
        let mut poll = Poll::new().unwrap();
        let start = Instant::now();
        let (mut l, addr) = leader(&poll, start);
        let mut next = 100;
        let mut unknown = std::net::TcpStream::connect(addr).unwrap();
        unknown
            .write_all(&wire::learner_info_packet(false, 0, 9))
            .unwrap();
        let mut bad = std::net::TcpStream::connect(addr).unwrap();
        bad.write_all(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        let mut obs = std::net::TcpStream::connect(addr).unwrap();
        obs.write_all(&wire::learner_info_packet(true, 0, 2))
            .unwrap();
        run(&mut poll, &mut l, &mut next, 100);
        for s in [&mut unknown, &mut bad] {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0, "closed by the leader");
        }
        // Server 2 is counted by Majority only if it votes; with voters
        // {1, 3} it is an observer and the leader alone is no quorum.
        let voters = Majority::new([1, 3]);
        let (o, _) = l.tick(poll.registry(), &voters, Instant::now());
        assert!(matches!(o, Outcome::Stay));
        assert!(!l.had_quorum);
        let (o, _) = l.tick(poll.registry(), &voters, start + LIMITS.init);
        assert!(matches!(o, Outcome::Lost(_)));
        drop(obs);
    }

    /// A learner sends exactly Java's FOLLOWERINFO and goes back to LOOKING
    /// when the leader closes the connection.
    #[test]
    fn learner_sends_followerinfo_and_notices_the_leader_leave() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut poll = Poll::new().unwrap();
        let addr = HostPort {
            host: "127.0.0.1".into(),
            port,
        };
        let mut l = Learning::start(1, false, (3, addr), 4, Token(3), LIMITS, Instant::now());
        let (o, _) = l.tick(poll.registry(), Instant::now());
        assert!(matches!(o, Outcome::Stay));
        let (mut conn, _) = listener.accept().unwrap();
        let mut events = Events::with_capacity(8);
        let mut got = Vec::new();
        conn.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let end = Instant::now() + Duration::from_secs(2);
        while got.len() < 40 && Instant::now() < end {
            poll.poll(&mut events, Some(Duration::from_millis(5)))
                .unwrap();
            for _ in events.iter() {
                let _ = l.ready(poll.registry(), Instant::now());
            }
            let mut b = [0u8; 64];
            if let Ok(n) = conn.read(&mut b) {
                got.extend_from_slice(&b[..n]);
            }
        }
        assert_eq!(got, wire::learner_info_packet(false, 4, 1));
        drop(conn);
        let end = Instant::now() + Duration::from_secs(2);
        loop {
            poll.poll(&mut events, Some(Duration::from_millis(5)))
                .unwrap();
            if events
                .iter()
                .any(|_| matches!(l.ready(poll.registry(), Instant::now()), Outcome::Lost(_)))
            {
                break;
            }
            assert!(Instant::now() < end, "the leader's close went unnoticed");
        }
    }
}
