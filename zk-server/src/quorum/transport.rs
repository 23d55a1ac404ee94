//! The election port (ZooKeeper's `QuorumCnxManager`, quorum.md §1) over mio:
//! one listener, at most one live connection per peer, an initial message on
//! every connection we dial, the challenge rule, length-prefixed
//! notifications, and a send slot per peer that keeps only the newest one.
//!
//! Every byte a peer sends is untrusted. A connection is closed, with a log
//! line naming the peer's address (and sid once known), when it sends a bad
//! initial message or frame length, stays silent past the handshake timeout,
//! or when too many connections are still unidentified; nothing a peer sends
//! can make this thread panic, block, or hold more than one frame (512 KiB) of
//! its input. A malformed notification inside a valid frame is skipped and the
//! connection kept, as ZooKeeper's `WorkerReceiver` does.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};
use zk_election::{Notification, Sid};
use zk_jute::quorum::HostPort;

use super::wire;

/// At most this many accepted connections may be waiting for their initial
/// message; more are closed at once (a flood of connections cannot grow
/// memory or starve the peers).
pub(crate) const MAX_UNIDENTIFIED: usize = 32;
/// The first delay before re-dialing a peer that could not be reached; it
/// doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest delay between two dials of an unreachable peer.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// After we dialed a peer with a larger sid (which drops our connection and
/// dials back), how long before we dial it again if it did not.
const DIAL_BACK_WAIT: Duration = Duration::from_secs(1);
/// Most bytes read from one connection per readiness event before the others
/// get their turn (the rest is read on the next pass of the loop).
const READ_BUDGET: usize = 256 * 1024;
/// Most connections accepted per readiness event of the listener.
const ACCEPT_BUDGET: usize = 64;

/// What the transport tells the election.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// A connection to `sid` is up (the election re-sends its last message).
    Connected(Sid),
    /// The connection to `sid` is gone.
    Disconnected(Sid),
    /// A notification from `sid`, and the configuration text it carried.
    Message(Sid, Notification, Bytes),
}

enum State {
    /// We dialed `sid`; the TCP connect is in progress.
    Dialing { sid: Sid, deadline: Instant },
    /// Accepted; waiting for the initial message.
    Greeting { deadline: Instant },
    /// Identified: notifications flow both ways.
    Up { sid: Sid },
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    state: State,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
}

impl Conn {
    fn who(&self) -> String {
        match self.state {
            State::Dialing { sid, .. } | State::Up { sid } => {
                format!("server {sid} at {}", self.peer)
            }
            State::Greeting { .. } => format!("{} (not identified yet)", self.peer),
        }
    }
}

/// One configured peer.
struct Link {
    addr: HostPort,
    /// The identified connection, if any.
    up: Option<Token>,
    /// Our dial in progress, if any.
    dialing: Option<Token>,
    /// The newest notification not yet handed to the socket (framed).
    slot: Option<Bytes>,
    /// No dial before this instant.
    next_dial: Instant,
    backoff: Duration,
    /// A server not in our configuration that dialed us (an observer the
    /// voters' configs do not list): never dialed, forgotten when its
    /// connection closes.
    adhoc: bool,
}

impl Link {
    fn new(addr: HostPort, now: Instant, adhoc: bool) -> Self {
        Link {
            addr,
            up: None,
            dialing: None,
            slot: None,
            next_dial: now,
            backoff: MIN_BACKOFF,
            adhoc,
        }
    }
}

/// The election port of one server.
pub(crate) struct Transport {
    me: Sid,
    /// Our election address as configured (sent in the initial message; a
    /// wildcard host is replaced by the connection's local address).
    my_addr: HostPort,
    listener: TcpListener,
    listener_token: Token,
    conns: HashMap<Token, Conn>,
    links: BTreeMap<Sid, Link>,
    next_token: usize,
    cnx_timeout: Duration,
    handshake_timeout: Duration,
    config_text: Bytes,
    /// Connections whose read budget ran out: read again on the next pass.
    again: Vec<Token>,
}

/// What a [`Transport`] is built from.
pub(crate) struct Setup {
    /// Our server id.
    pub me: Sid,
    /// Our configured election address (sent in the initial message).
    pub my_addr: HostPort,
    /// The listener's token; connections get tokens from `first_token` up.
    pub listener_token: Token,
    /// The first token of this transport's connections.
    pub first_token: usize,
    /// Every server's election address (ours is skipped).
    pub peers: Vec<(Sid, HostPort)>,
    /// How long a dial may take (cnxTimeout).
    pub cnx_timeout: Duration,
    /// How long an accepted connection may take to send its initial message.
    pub handshake_timeout: Duration,
    /// Our quorum config text, sent in every notification.
    pub config_text: Bytes,
}

impl Transport {
    /// A transport on `listener` (already bound), as `setup` says.
    pub(crate) fn new(
        registry: &Registry,
        mut listener: TcpListener,
        setup: Setup,
        now: Instant,
    ) -> io::Result<Self> {
        let Setup {
            me,
            my_addr,
            listener_token,
            first_token,
            peers,
            cnx_timeout,
            handshake_timeout,
            config_text,
        } = setup;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        let links = peers
            .into_iter()
            .filter(|(sid, _)| *sid != me)
            .map(|(sid, addr)| (sid, Link::new(addr, now, false)))
            .collect();
        Ok(Transport {
            me,
            my_addr,
            listener,
            listener_token,
            conns: HashMap::new(),
            links,
            next_token: first_token,
            cnx_timeout,
            handshake_timeout,
            config_text,
            again: Vec::new(),
        })
    }

    /// The configuration text notifications carry from now on.
    pub(crate) fn set_config_text(&mut self, text: Bytes) {
        self.config_text = text;
    }

    /// The peers are `peers` from now on (a reconfig's members): new ones
    /// are dialed as needed; a removed one's connections close, and so do
    /// those of a peer whose address changed (it is dialed anew).
    pub(crate) fn set_peers(
        &mut self,
        registry: &Registry,
        peers: &[(Sid, HostPort)],
        now: Instant,
    ) {
        let me = self.me;
        let kept: BTreeMap<Sid, &HostPort> = peers
            .iter()
            .filter(|(sid, _)| *sid != me)
            .map(|(sid, addr)| (*sid, addr))
            .collect();
        let stale: Vec<Sid> = self
            .links
            .iter()
            .filter(|(sid, link)| kept.get(sid).is_none_or(|a| **a != link.addr))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in stale {
            if let Some(link) = self.links.remove(&sid) {
                for t in [link.up, link.dialing].into_iter().flatten() {
                    self.close_quiet(registry, t);
                }
            }
        }
        for (sid, addr) in kept {
            self.links
                .entry(sid)
                .or_insert_with(|| Link::new(addr.clone(), now, false));
        }
    }

    /// Whether `token` belongs to this transport.
    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.conns.contains_key(&token)
    }

    /// The peers with an identified connection.
    pub(crate) fn connected(&self) -> Vec<Sid> {
        self.links
            .iter()
            .filter(|(_, l)| l.up.is_some())
            .map(|(s, _)| *s)
            .collect()
    }

    /// Queues `msg` for `to`, replacing any older notification not yet
    /// written (`SEND_CAPACITY` 1), and dials `to` if it is not connected.
    pub(crate) fn send(&mut self, registry: &Registry, to: Sid, msg: &Notification, now: Instant) {
        let frame = wire::notification_frame(msg, &self.config_text);
        let Some(link) = self.links.get_mut(&to) else {
            debug!("election: no address for server {to}; notification dropped");
            return;
        };
        link.slot = Some(frame);
        match link.up {
            Some(t) => self.flush(registry, t),
            None => self.maybe_dial(registry, to, now, false),
        }
    }

    /// Handles readiness of one of our tokens.
    pub(crate) fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) {
        if token == self.listener_token {
            self.accept(registry, now);
        } else {
            self.drive(registry, token, now, out);
        }
    }

    /// Timeouts, re-dials and connections with unread input. Returns the next
    /// instant something is due (the poll timeout).
    pub(crate) fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Option<Instant> {
        for t in std::mem::take(&mut self.again) {
            self.drive(registry, t, now, out);
        }
        let expired: Vec<(Token, String)> = self
            .conns
            .iter()
            .filter_map(|(t, c)| match c.state {
                State::Dialing { deadline, .. } if now >= deadline => Some((
                    *t,
                    format!(
                        "could not connect within {} ms",
                        self.cnx_timeout.as_millis()
                    ),
                )),
                State::Greeting { deadline } if now >= deadline => Some((
                    *t,
                    format!(
                        "sent no initial message within {} ms",
                        self.handshake_timeout.as_millis()
                    ),
                )),
                _ => None,
            })
            .collect();
        for (t, why) in expired {
            self.close(registry, t, &why, now, out);
        }
        let due: Vec<Sid> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.slot.is_some() && l.up.is_none() && l.dialing.is_none() && now >= l.next_dial
            })
            .map(|(s, _)| *s)
            .collect();
        for sid in due {
            self.maybe_dial(registry, sid, now, false);
        }
        let mut next: Option<Instant> = None;
        let mut at = |i: Instant| next = Some(next.map_or(i, |n| n.min(i)));
        for c in self.conns.values() {
            match c.state {
                State::Dialing { deadline, .. } | State::Greeting { deadline } => at(deadline),
                State::Up { .. } => {}
            }
        }
        for l in self.links.values() {
            if l.slot.is_some() && l.up.is_none() && l.dialing.is_none() {
                at(l.next_dial);
            }
        }
        if !self.again.is_empty() {
            at(now);
        }
        next
    }

    fn token(&mut self) -> Token {
        let t = Token(self.next_token);
        self.next_token += 1;
        t
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        for _ in 0..ACCEPT_BUDGET {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!("election port: accept failed: {e}");
                    return;
                }
            };
            let unidentified = self
                .conns
                .values()
                .filter(|c| matches!(c.state, State::Greeting { .. }))
                .count();
            if unidentified >= MAX_UNIDENTIFIED {
                warn!(
                    "election port: closing connection from {peer}: {MAX_UNIDENTIFIED} connections are already waiting for their initial message"
                );
                continue;
            }
            let _ = stream.set_nodelay(true);
            let t = self.token();
            if let Err(e) = registry.register(&mut stream, t, Interest::READABLE) {
                warn!("election port: cannot register connection from {peer}: {e}");
                continue;
            }
            debug!("election port: connection from {peer}");
            self.conns.insert(
                t,
                Conn {
                    stream,
                    peer,
                    state: State::Greeting {
                        deadline: now + self.handshake_timeout,
                    },
                    rbuf: Vec::new(),
                    wbuf: Vec::new(),
                    wpos: 0,
                },
            );
        }
        // Budget used up: look again on the next pass (mio is edge-triggered).
        self.again.push(self.listener_token);
    }

    /// Dials `sid` unless it is connected or being dialed, or (unless
    /// `now_anyway`) its back-off has not passed.
    fn maybe_dial(&mut self, registry: &Registry, sid: Sid, now: Instant, now_anyway: bool) {
        let Some(link) = self.links.get_mut(&sid) else {
            return;
        };
        if link.adhoc
            || link.up.is_some()
            || link.dialing.is_some()
            || (!now_anyway && now < link.next_dial)
        {
            return;
        }
        let addr = match (link.addr.host.as_str(), link.addr.port)
            .to_socket_addrs()
            .map(|mut a| a.next())
        {
            Ok(Some(a)) => a,
            Ok(None) | Err(_) => {
                warn!("election: cannot resolve {} (server {sid})", link.addr);
                link.next_dial = now + link.backoff;
                link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
                return;
            }
        };
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                debug!("election: cannot connect to server {sid} at {addr}: {e}");
                link.next_dial = now + link.backoff;
                link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let t = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = registry.register(&mut stream, t, Interest::READABLE | Interest::WRITABLE) {
            warn!("election: cannot register connection to server {sid}: {e}");
            return;
        }
        link.dialing = Some(t);
        self.conns.insert(
            t,
            Conn {
                stream,
                peer: addr,
                state: State::Dialing {
                    sid,
                    deadline: now + self.cnx_timeout,
                },
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
            },
        );
    }

    fn drive(&mut self, registry: &Registry, t: Token, now: Instant, out: &mut Vec<Delivery>) {
        if t == self.listener_token {
            self.accept(registry, now);
            return;
        }
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        if let State::Dialing { sid, .. } = c.state {
            match c.stream.take_error() {
                Ok(Some(e)) | Err(e) => {
                    let why = format!("connect failed: {e}");
                    self.close(registry, t, &why, now, out);
                    return;
                }
                Ok(None) => {}
            }
            match c.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return, // still connecting
                Err(e) => {
                    let why = format!("connect failed: {e}");
                    self.close(registry, t, &why, now, out);
                    return;
                }
            }
            self.connected_out(registry, t, sid, now, out);
            // Kept (the peer has the smaller sid): it may have written
            // already, and this event was its only readiness edge.
            if !self.conns.contains_key(&t) {
                return;
            }
        }
        // Read what is there, within the budget.
        let mut budget = READ_BUDGET;
        let mut buf = [0u8; 16 * 1024];
        let mut eof = None;
        loop {
            let Some(c) = self.conns.get_mut(&t) else {
                return;
            };
            if budget == 0 {
                self.again.push(t);
                break;
            }
            match c.stream.read(&mut buf[..budget.min(16 * 1024)]) {
                Ok(0) => {
                    eof = Some("closed by the peer".to_string());
                    break;
                }
                Ok(n) => {
                    budget -= n;
                    c.rbuf.extend_from_slice(&buf[..n]);
                    if !self.consume(registry, t, now, out) {
                        return; // closed
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eof = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        if let Some(why) = eof {
            self.close(registry, t, &why, now, out);
            return;
        }
        self.flush(registry, t);
    }

    /// Our dial of `sid` connected: send the initial message in one write;
    /// keep the connection only if `sid` is smaller than ours (quorum.md §1.2).
    fn connected_out(
        &mut self,
        registry: &Registry,
        t: Token,
        sid: Sid,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let host = if self.my_addr.host == "0.0.0.0" || self.my_addr.host == "::" {
            // Never a wildcard: the peer dials back to what we send.
            c.stream
                .local_addr()
                .map_or_else(|_| self.my_addr.host.clone(), |a| a.ip().to_string())
        } else {
            self.my_addr.host.clone()
        };
        let text = HostPort {
            host,
            port: self.my_addr.port,
        }
        .to_string();
        let msg = wire::initial_message(self.me, &text);
        match c.stream.write(&msg) {
            Ok(n) if n == msg.len() => {}
            Ok(n) => {
                let why = format!(
                    "initial message not written in one write ({n} of {} bytes)",
                    msg.len()
                );
                self.close(registry, t, &why, now, out);
                return;
            }
            Err(e) => {
                let why = format!("cannot send the initial message: {e}");
                self.close(registry, t, &why, now, out);
                return;
            }
        }
        let link = self
            .links
            .get_mut(&sid)
            .expect("dialed peers are configured");
        link.dialing = None;
        if sid > self.me {
            info!(
                "election: have a smaller server id than {sid}, so dropping the connection to it (it dials back)"
            );
            link.next_dial = now + DIAL_BACK_WAIT.max(link.backoff);
            link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
            if let Some(mut c) = self.conns.remove(&t) {
                let _ = registry.deregister(&mut c.stream);
            }
            return;
        }
        if let Err(e) = registry.reregister(&mut c.stream, t, Interest::READABLE) {
            warn!("election: cannot re-register connection to server {sid}: {e}");
        }
        self.identified(registry, t, sid, now, out);
        self.flush(registry, t);
    }

    /// `t` is now the connection for `sid` (replacing any older one).
    fn identified(
        &mut self,
        registry: &Registry,
        t: Token,
        sid: Sid,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) {
        if let Some(old) = self.links.get(&sid).and_then(|l| l.up)
            && old != t
        {
            self.close_replaced(registry, old, "replaced by a newer connection", now);
        }
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        c.state = State::Up { sid };
        info!("election: connected to server {sid} at {}", c.peer);
        let link = self
            .links
            .get_mut(&sid)
            .expect("identified peers are configured");
        link.up = Some(t);
        link.backoff = MIN_BACKOFF;
        out.push(Delivery::Connected(sid));
    }

    /// Parses what `t` has buffered. Returns false if it closed the connection.
    fn consume(
        &mut self,
        registry: &Registry,
        t: Token,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> bool {
        loop {
            let Some(c) = self.conns.get_mut(&t) else {
                return false;
            };
            match c.state {
                State::Dialing { .. } => return true,
                State::Greeting { .. } => match wire::parse_initial(&c.rbuf) {
                    Ok(None) => {
                        if c.rbuf.len() > wire::MAX_INITIAL {
                            self.close(registry, t, "initial message too long", now, out);
                            return false;
                        }
                        return true;
                    }
                    Err(why) => {
                        self.close(registry, t, &why, now, out);
                        return false;
                    }
                    Ok(Some((m, used))) => {
                        c.rbuf.drain(..used);
                        if !self.greeted(registry, t, m.sid, now, out) {
                            return false;
                        }
                    }
                },
                State::Up { sid } => match wire::parse_frame(&c.rbuf) {
                    Ok(None) => return true,
                    Err(why) => {
                        self.close(registry, t, &why, now, out);
                        return false;
                    }
                    Ok(Some(range)) => {
                        let payload = Bytes::copy_from_slice(&c.rbuf[range.clone()]);
                        c.rbuf.drain(..range.end);
                        match wire::decode_notification(payload) {
                            Ok((n, config)) => out.push(Delivery::Message(sid, n, config)),
                            Err(why) => warn!(
                                "election: skipping a notification from server {sid} at {}: {why}",
                                c.peer
                            ),
                        }
                    }
                },
            }
        }
    }

    /// The initial message named `sid` (quorum.md §1.2). Returns whether the
    /// connection stays.
    fn greeted(
        &mut self,
        registry: &Registry,
        t: Token,
        sid: i64,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> bool {
        let peer = self.conns.get(&t).map(|c| c.peer);
        let peer = peer.map_or_else(String::new, |p| p.to_string());
        if sid > self.me as i64 && !self.links.contains_key(&(sid as Sid)) {
            // As ZooKeeper's QuorumCnxManager: a larger id not in our
            // configuration is taken (the election answers a non-voter
            // with its current vote: an observer the voters' configs do not
            // list finds its leader so), though never dialed.
            info!("election: server {sid} at {peer} is not in the configuration; answering it");
            let nowhere = HostPort {
                host: String::new(),
                port: 0,
            };
            self.links.insert(sid as Sid, Link::new(nowhere, now, true));
        }
        if sid < 0 || !self.links.contains_key(&(sid as Sid)) {
            if sid == self.me as i64 {
                // ZOOKEEPER-2164: a connection from ourselves is ignored.
                warn!(
                    "election: connection from {peer} claims our own server id {sid}; closing it"
                );
            } else {
                warn!(
                    "election: connection from {peer} with server id {sid}, which is not in the configuration; closing it"
                );
            }
            self.close_quiet(registry, t);
            return false;
        }
        let sid = sid as Sid;
        if sid < self.me {
            // Only connections from the larger id survive: close and dial back
            // (to the configured address), replacing any connection we had.
            debug!("election: server {sid} at {peer} has a smaller id; dialing it back");
            self.close_quiet(registry, t);
            if let Some(old) = self.links.get(&sid).and_then(|l| l.up) {
                self.close_replaced(registry, old, "the peer reconnected", now);
            }
            self.maybe_dial(registry, sid, now, true);
            return false;
        }
        self.identified(registry, t, sid, now, out);
        self.flush(registry, t);
        self.conns.contains_key(&t)
    }

    /// Writes what `t` has pending, refilling from its peer's slot.
    fn flush(&mut self, registry: &Registry, t: Token) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        let State::Up { sid } = c.state else {
            return;
        };
        loop {
            if c.wpos == c.wbuf.len() {
                c.wbuf.clear();
                c.wpos = 0;
                match self.links.get_mut(&sid).and_then(|l| l.slot.take()) {
                    Some(frame) => c.wbuf.extend_from_slice(&frame),
                    None => break,
                }
            }
            match c.stream.write(&c.wbuf[c.wpos..]) {
                Ok(0) => break,
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("election: write to server {sid} failed: {e}");
                    break; // the read side reports the failure and closes
                }
            }
        }
        let interest = if c.wpos < c.wbuf.len() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = registry.reregister(&mut c.stream, t, interest);
    }

    /// Closes `t`, which a new connection of the same peer replaces: the
    /// peer did not go away, so the election hears no `Disconnected` (it
    /// would count the peer as down and finalize without its vote, which is
    /// on its way over the new connection).
    fn close_replaced(&mut self, registry: &Registry, t: Token, why: &str, now: Instant) {
        self.close(registry, t, why, now, &mut Vec::new());
    }

    fn close_quiet(&mut self, registry: &Registry, t: Token) {
        if let Some(mut c) = self.conns.remove(&t) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    fn close(
        &mut self,
        registry: &Registry,
        t: Token,
        why: &str,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) {
        let Some(mut c) = self.conns.remove(&t) else {
            return;
        };
        let _ = registry.deregister(&mut c.stream);
        match c.state {
            State::Up { sid } => {
                info!("election: connection to {} closed: {why}", c.who());
                if let Some(link) = self.links.get_mut(&sid)
                    && link.up == Some(t)
                {
                    link.up = None;
                    // What was not written is lost, as ZooKeeper's SendWorker;
                    // the election re-sends on its own schedule.
                    out.push(Delivery::Disconnected(sid));
                    if link.adhoc {
                        self.links.remove(&sid);
                    }
                }
            }
            State::Dialing { sid, .. } => {
                debug!("election: dialing {} failed: {why}", c.who());
                if let Some(link) = self.links.get_mut(&sid)
                    && link.dialing == Some(t)
                {
                    link.dialing = None;
                    link.next_dial = now + link.backoff;
                    link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
                }
            }
            State::Greeting { .. } => {
                warn!("election port: closing connection from {}: {why}", c.who());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use zk_election::{PeerState, Vote};

    struct Node {
        poll: Poll,
        t: Transport,
        got: Vec<Delivery>,
    }

    fn hp(l: &std::net::TcpListener) -> HostPort {
        HostPort {
            host: "127.0.0.1".into(),
            port: l.local_addr().unwrap().port(),
        }
    }

    fn node(me: Sid, listener: std::net::TcpListener, peers: &[(Sid, HostPort)]) -> Node {
        listener.set_nonblocking(true).unwrap();
        let poll = Poll::new().unwrap();
        let my = hp(&listener);
        let setup = Setup {
            me,
            my_addr: my,
            listener_token: Token(1),
            first_token: 16,
            peers: peers.to_vec(),
            cnx_timeout: Duration::from_millis(1000),
            handshake_timeout: Duration::from_millis(1000),
            config_text: Bytes::from_static(b"version=0"),
        };
        let t = Transport::new(
            poll.registry(),
            TcpListener::from_std(listener),
            setup,
            Instant::now(),
        )
        .unwrap();
        Node {
            poll,
            t,
            got: Vec::new(),
        }
    }

    /// Runs the nodes until `done` holds (at most 5 s).
    fn pump(nodes: &mut [&mut Node], done: impl Fn(&[&mut Node]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = Events::with_capacity(64);
        while !done(nodes) {
            assert!(Instant::now() < deadline, "timed out");
            for n in nodes.iter_mut() {
                let now = Instant::now();
                n.t.tick(n.poll.registry(), now, &mut n.got);
                n.poll
                    .poll(&mut events, Some(Duration::from_millis(2)))
                    .unwrap();
                for ev in events.iter() {
                    n.t.ready(n.poll.registry(), ev.token(), Instant::now(), &mut n.got);
                }
            }
        }
    }

    fn vote(epoch: i64) -> Notification {
        Notification {
            state: PeerState::Looking,
            vote: Vote {
                leader: 1,
                zxid: 0,
                peer_epoch: 0,
            },
            election_epoch: epoch,
            version: 2,
        }
    }

    fn messages(n: &Node) -> Vec<(Sid, i64)> {
        n.got
            .iter()
            .filter_map(|d| match d {
                Delivery::Message(s, m, _) => Some((*s, m.election_epoch)),
                _ => None,
            })
            .collect()
    }

    /// quorum.md §1.2 and §1.3: the smaller sid's dial is dropped and the
    /// larger dials back; only the newest of several unsent notifications
    /// is delivered (SEND_CAPACITY 1).
    #[test]
    fn smaller_sid_is_dialed_back_and_only_the_newest_is_sent() {
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peers = vec![(1, hp(&l1)), (2, hp(&l2))];
        let mut a = node(1, l1, &peers);
        let mut b = node(2, l2, &peers);
        let now = Instant::now();
        for e in 1..=3 {
            a.t.send(a.poll.registry(), 2, &vote(e), now);
        }
        pump(&mut [&mut a, &mut b], |n| !messages(n[1]).is_empty());
        assert_eq!(messages(&b), vec![(1, 3)], "only the newest notification");
        assert_eq!(a.t.connected(), vec![2]);
        assert_eq!(b.t.connected(), vec![1]);
        // One connection between them: the one 2 dialed.
        assert_eq!(a.t.conns.len(), 1);
        assert_eq!(b.t.conns.len(), 1);
        assert!(matches!(
            b.t.conns.values().next().unwrap().state,
            State::Up { sid: 1 }
        ));
        assert!(a.got.iter().any(|d| matches!(d, Delivery::Connected(2))));
        // And back.
        b.t.send(b.poll.registry(), 1, &vote(9), Instant::now());
        pump(&mut [&mut a, &mut b], |n| !messages(n[0]).is_empty());
        assert_eq!(messages(&a), vec![(2, 9)]);
    }

    /// A reconfig's members: a peer added is reached (2 learns of 3 and
    /// sends to it); a peer removed is cut off, and its connections refused.
    #[test]
    fn peers_added_and_removed_at_run_time() {
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l3 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (p1, p2, p3) = (hp(&l1), hp(&l2), hp(&l3));
        let mut a = node(1, l1, &[(1, p1.clone()), (2, p2.clone())]);
        let mut b = node(2, l2, &[(1, p1.clone()), (2, p2.clone())]);
        let all = vec![(1, p1.clone()), (2, p2.clone()), (3, p3.clone())];
        let mut c = node(3, l3, &all);
        b.t.send(b.poll.registry(), 1, &vote(1), Instant::now());
        pump(&mut [&mut a, &mut b], |n| !messages(n[0]).is_empty());
        // 3 joins: 2 takes the new members and reaches it.
        b.t.set_peers(b.poll.registry(), &all, Instant::now());
        b.t.send(b.poll.registry(), 3, &vote(2), Instant::now());
        pump(&mut [&mut a, &mut b, &mut c], |n| {
            !messages(n[2]).is_empty()
        });
        assert_eq!(messages(&c), vec![(2, 2)]);
        // 1 leaves: 2 drops its connection and sends it nothing more.
        b.t.set_peers(b.poll.registry(), &[(2, p2), (3, p3)], Instant::now());
        assert_eq!(b.t.connected(), vec![3]);
        pump(&mut [&mut a, &mut b], |n| {
            n[0].got
                .iter()
                .any(|d| matches!(d, Delivery::Disconnected(2)))
        });
        b.t.send(b.poll.registry(), 1, &vote(3), Instant::now());
        a.t.send(a.poll.registry(), 2, &vote(4), Instant::now());
        let until = Instant::now() + Duration::from_millis(300);
        pump(&mut [&mut a, &mut b], |_| Instant::now() > until);
        assert_eq!(messages(&a), vec![(2, 1)], "nothing after the removal");
        assert!(!messages(&b).iter().any(|m| m.0 == 1));
    }

    /// A larger id not in our configuration (an observer the voters' configs
    /// do not list) is answered over the connection it made, never dialed,
    /// and forgotten once that connection closes; a smaller one is closed.
    #[test]
    fn an_unknown_larger_id_is_answered_and_a_smaller_one_closed() {
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l3 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (p1, p3) = (hp(&l1), hp(&l3));
        let mut a = node(2, l1, &[(2, p1.clone())]);
        let mut c = node(3, l3, &[(2, p1), (3, p3)]);
        c.t.send(c.poll.registry(), 2, &vote(7), Instant::now());
        pump(&mut [&mut a, &mut c], |n| !messages(n[0]).is_empty());
        assert_eq!(messages(&a), vec![(3, 7)]);
        a.t.send(a.poll.registry(), 3, &vote(8), Instant::now());
        pump(&mut [&mut a, &mut c], |n| !messages(n[1]).is_empty());
        assert_eq!(messages(&c), vec![(2, 8)]);
        drop(c);
        pump(&mut [&mut a], |n| n[0].t.links.is_empty());
        // Server 1, smaller and unknown, is closed.
        let port = a.t.listener.local_addr().unwrap().port();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, &1i64.to_be_bytes()).unwrap();
        let until = Instant::now() + Duration::from_millis(300);
        pump(&mut [&mut a], |_| Instant::now() > until);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 1];
        assert!(
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            },
            "server 1's connection stays open"
        );
        assert!(a.t.links.is_empty() && a.t.conns.is_empty());
    }

    /// A peer that restarts on the same port is dialed again (with backoff)
    /// and gets the notification that waited in its slot.
    #[test]
    fn a_restarted_peer_is_reached_again() {
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr2 = l2.local_addr().unwrap();
        let peers = vec![(1, hp(&l1)), (2, hp(&l2))];
        let mut a = node(1, l1, &peers);
        let mut b = node(2, l2, &peers);
        b.t.send(b.poll.registry(), 1, &vote(1), Instant::now());
        pump(&mut [&mut a, &mut b], |n| !messages(n[0]).is_empty());
        drop(b);
        pump(&mut [&mut a], |n| {
            n[0].got
                .iter()
                .any(|d| matches!(d, Delivery::Disconnected(2)))
        });
        a.t.send(a.poll.registry(), 2, &vote(5), Instant::now());
        // Nobody listens for a while: the dials fail and back off.
        let until = Instant::now() + Duration::from_millis(300);
        pump(&mut [&mut a], |_| Instant::now() >= until);
        let l2 = std::net::TcpListener::bind(addr2).unwrap();
        let mut b = node(2, l2, &peers);
        pump(&mut [&mut a, &mut b], |n| !messages(n[1]).is_empty());
        assert_eq!(messages(&b), vec![(1, 5)]);
    }
}
