//! The quorum port with Zab (quorum.md §3): the sockets of the role the
//! sequencer hosts (`sequencer/role.rs`). This side only moves bytes: it
//! frames `QuorumPacket`s, finds where a SNAP body ends, and turns socket
//! events into [`QuorumIn`]; the sequencer's [`QuorumOut`](crate::msg::QuorumOut) come back as
//! writes and closes.
//!
//! * LEADING: listen on our quorum port; each accepted connection is a
//!   `zk_zab::Conn` (`LearnerConnected`), its packets go to the sequencer
//!   (`FromLearner`), its end too (`LearnerClosed`). The first packet must be
//!   FOLLOWERINFO / OBSERVERINFO from a configured server id (else closed,
//!   as the stub does); a newer connection of the same server replaces the
//!   older. At most 32 connections wait for their first packet, each for
//!   initLimit.
//! * FOLLOWING / OBSERVING: dial the leader's quorum address (10 ms after a
//!   failed try, doubling to 100 ms) until connectToLearnerMasterLimit (else initLimit) × tickTime, then `LeaderConnected`, packets
//!   (`FromLeader`; SNAP with its body as `Snap`), and `LeaderClosed` when
//!   the connection ends or cannot be made.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use hashbrown::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tracing::{debug, info, warn};
use zk_election::Sid;
use zk_jute::Zxid;
use zk_jute::quorum::HostPort;
use zk_zab::{Conn, Packet};

use super::packets::{SnapScan, parse_packet, write_zab};
use crate::msg::QuorumIn;
use crate::snap_feed::{SnapSender, snap_feed};
use crate::stats::{LearnerHandlerStats, LearnerHandlers};

/// Learner connections that have not sent their first packet yet, at most.
const MAX_UNIDENTIFIED: usize = 32;

/// What one accept on the quorum port gave.
pub(super) enum Accepted {
    /// A learner connection, registered for reading under the token.
    Conn(TcpStream, SocketAddr, Token),
    /// A connection closed at once (too many waiting, or not registrable).
    Refused,
    /// Nothing more to accept now (or accept failed: logged).
    Drained,
}

/// Accepts one learner connection from the quorum listener: refused when `waiting` connections have not
/// identified themselves yet ([`MAX_UNIDENTIFIED`]), else TCP_NODELAY and
/// registered for reading under the next token.
pub(super) fn accept_learner(
    listener: &TcpListener,
    registry: &Registry,
    next_token: &mut usize,
    waiting: usize,
) -> Accepted {
    let (mut stream, peer) = match listener.accept() {
        Ok(x) => x,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Drained,
        Err(e) => {
            warn!("quorum port: accept failed: {e}");
            return Accepted::Drained;
        }
    };
    if waiting >= MAX_UNIDENTIFIED {
        warn!(
            "quorum port: closing connection from {peer}: {MAX_UNIDENTIFIED} connections have not identified themselves yet"
        );
        return Accepted::Refused;
    }
    let _ = stream.set_nodelay(true);
    let t = Token(*next_token);
    *next_token += 1;
    if registry
        .register(&mut stream, t, Interest::READABLE)
        .is_err()
    {
        return Accepted::Refused;
    }
    Accepted::Conn(stream, peer, t)
}
/// The first delay between two attempts to reach the leader: learners and
/// the leader decide together, so the first dial often comes before the
/// leader listens. It doubles up to [`RETRY_MAX`].
///
/// 2 ms: the learners' dial usually fails by well under a millisecond (a
/// five-server failover's log: decided 0.2–0.8 ms before the leader
/// listened); 10 ms cost such a failover 20 ms, a third of its time.
const RETRY_FIRST: Duration = Duration::from_millis(2);
/// The longest delay between two attempts
/// (`zookeeper.leaderConnectDelayDuringRetryMs`, Apache's only one).
const RETRY_MAX: Duration = Duration::from_millis(100);
/// How long a learner keeps dialling a leader that refuses its connections:
/// the time Apache's learner takes for its five tries, [`RETRY_MAX`] apart
/// (`Learner.connectToLeader`), before it goes back to LOOKING. A peer that
/// refuses is not leading (a learner that decided on part of the votes, or
/// on a leader that has since gone): waiting out the whole connect limit
/// (initLimit ticks: 8–20 s) kept such a learner out of the ensemble.
const REFUSED_GIVE_UP: Duration = RETRY_MAX.saturating_mul(4);

/// The bounds on what a peer may send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// A packet's data, at most (jute.maxbuffer + 1 KiB).
    pub max_data: usize,
    /// A SNAP body's strings and buffers, at most.
    pub snap_max: usize,
    /// initLimit × tickTime.
    pub init: Duration,
    /// How long a learner dials its leader: connectToLearnerMasterLimit ×
    /// tickTime, or `init` when that is unset (Apache's `connectToLeader`).
    pub connect: Duration,
}

/// A non-blocking connection's buffers.
struct Io {
    stream: TcpStream,
    rbuf: Vec<u8>,
    rstart: usize,
    wbuf: Vec<u8>,
    wstart: usize,
    /// Where each packet queued in `wbuf` ends, for those not yet written.
    ends: VecDeque<usize>,
    writable: bool,
    /// Where reads land before they join `rbuf`: zeroed once, not at every
    /// read (a fresh 64 KiB stack buffer per read was a memset per Zab
    /// packet batch).
    scratch: Vec<u8>,
}

/// Size of a read into [`Io::scratch`].
const READ_CHUNK: usize = 64 * 1024;

impl Io {
    fn new(stream: TcpStream, writable: bool) -> Self {
        Io {
            stream,
            rbuf: Vec::new(),
            rstart: 0,
            wbuf: Vec::new(),
            wstart: 0,
            ends: VecDeque::new(),
            writable,
            scratch: vec![0u8; READ_CHUNK],
        }
    }

    /// Reads until the socket would block; `Err` when it closed or failed.
    fn fill(&mut self) -> Result<(), String> {
        self.fill_some(usize::MAX).map(|_| ())
    }

    /// Reads until the socket would block (`Ok(true)`) or about `limit`
    /// bytes came (`Ok(false)`: more may be waiting); `Err` when it closed
    /// or failed.
    fn fill_some(&mut self, limit: usize) -> Result<bool, String> {
        if self.rstart > 0 {
            self.rbuf.drain(..self.rstart);
            self.rstart = 0;
        }
        if limit != usize::MAX {
            // A SNAP piece: room for all of it at once. Grown by doubling
            // from the empty buffer each piece starts with, it was copied
            // twice over and touched twice the memory (fresh pages, each a
            // fault): for 203 MB of body, 0.5 s of the quorum thread.
            self.rbuf.reserve(limit + READ_CHUNK);
        }
        let mut got = 0;
        loop {
            if got >= limit {
                return Ok(false);
            }
            match self.stream.read(&mut self.scratch) {
                Ok(0) => return Err("closed by the peer".into()),
                Ok(n) => {
                    self.rbuf.extend_from_slice(&self.scratch[..n]);
                    got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    fn unread(&self) -> &[u8] {
        &self.rbuf[self.rstart..]
    }

    /// Writes what is queued until the socket would block, and asks for
    /// WRITABLE while something is left.
    fn flush(&mut self, registry: &Registry, token: Token) -> Result<(), String> {
        while self.wstart < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wstart..]) {
                Ok(0) => return Err("write returned 0".into()),
                Ok(n) => self.wstart += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write failed: {e}")),
            }
        }
        while self.ends.front().is_some_and(|&end| end <= self.wstart) {
            self.ends.pop_front();
        }
        if self.wstart == self.wbuf.len() {
            self.wbuf.clear();
            self.wstart = 0;
        }
        let want = self.wstart < self.wbuf.len();
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry
                .reregister(&mut self.stream, token, interest)
                .map_err(|e| format!("reregister failed: {e}"))?;
            self.writable = want;
        }
        Ok(())
    }

    /// Queues `p`; returns its wire zxid.
    fn queue(&mut self, p: &Packet) -> i64 {
        let zxid = write_zab(p, &mut self.wbuf);
        self.ends.push_back(self.wbuf.len());
        zxid
    }

    /// Queues `bytes` right after what is queued, as part of the packet
    /// queued last (a SNAP body sent on in pieces). Bytes already written
    /// leave the buffer first when they are most of it, so that a body
    /// streamed through does not grow it to the body's size.
    fn queue_more(&mut self, bytes: &[u8]) {
        if self.wstart >= (1 << 20) && self.wstart * 2 >= self.wbuf.len() {
            self.wbuf.drain(..self.wstart);
            for end in &mut self.ends {
                *end -= self.wstart;
            }
            self.wstart = 0;
        }
        self.wbuf.extend_from_slice(bytes);
        if let Some(end) = self.ends.back_mut() {
            *end = self.wbuf.len();
        }
    }

    /// Packets and bytes queued and not yet written.
    fn queued(&self) -> (usize, usize) {
        (self.ends.len(), self.wbuf.len() - self.wstart)
    }
}

struct LearnerConn {
    io: Io,
    conn: Conn,
    peer: SocketAddr,
    sid: Option<Sid>,
    deadline: Instant,
    /// What the AdminServer's `observers` shows of it.
    stats: Arc<LearnerHandlerStats>,
    /// Counted since the last [`LearnerConn::publish`].
    unpublished: Unpublished,
}

/// A learner's packet counts not yet added to its `stats`: added once per
/// readiness or flush (an atomic add per packet, each draining the store
/// buffer, was ~4 % of a loaded leader's quorum thread).
#[derive(Default)]
struct Unpublished {
    sent: u64,
    received: u64,
    requests: u64,
}

impl LearnerConn {
    /// Publishes its counts and what is still queued for it.
    fn publish(&mut self) {
        let Unpublished {
            sent,
            received,
            requests,
        } = std::mem::take(&mut self.unpublished);
        for (n, to) in [
            (sent, &self.stats.sent),
            (received, &self.stats.received),
            (requests, &self.stats.requests),
        ] {
            if n > 0 {
                to.fetch_add(n, Relaxed);
            }
        }
        let (packets, bytes) = self.io.queued();
        self.stats.queued_packets.store(packets as u64, Relaxed);
        self.stats.queued_bytes.store(bytes as u64, Relaxed);
    }
}

/// The leader's quorum port.
pub(crate) struct ZabLeading {
    known: BTreeSet<Sid>,
    listener: TcpListener,
    listener_token: Token,
    conns: HashMap<Token, LearnerConn>,
    by_conn: HashMap<Conn, Token>,
    followers: BTreeMap<Sid, Token>,
    next_conn: Conn,
    bounds: Bounds,
    learners: Arc<LearnerHandlers>,
    /// Connections with packets queued since the last [`ZabLeading::flush_queued`].
    dirty: Vec<Token>,
}

fn info_name(p: &Packet) -> Option<(&'static str, u64)> {
    match p {
        Packet::FollowerInfo { info, .. } => Some(("FOLLOWERINFO", info.server_id as u64)),
        Packet::ObserverInfo { info, .. } => Some(("OBSERVERINFO", info.server_id as u64)),
        _ => None,
    }
}

impl ZabLeading {
    /// Binds the quorum port at `bind`.
    pub(crate) fn start(
        registry: &Registry,
        known: BTreeSet<Sid>,
        bind: SocketAddr,
        listener_token: Token,
        bounds: Bounds,
        learners: Arc<LearnerHandlers>,
    ) -> io::Result<Self> {
        let mut listener = TcpListener::bind(bind)?;
        registry.register(&mut listener, listener_token, Interest::READABLE)?;
        info!("leading: listening for learners on quorum port {bind}");
        Ok(ZabLeading {
            known,
            listener,
            listener_token,
            conns: HashMap::new(),
            by_conn: HashMap::new(),
            followers: BTreeMap::new(),
            next_conn: 1,
            bounds,
            learners,
            dirty: Vec::new(),
        })
    }

    /// Whether `token` is ours.
    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.listener_token || self.conns.contains_key(&token)
    }

    /// Handles readiness of `token`; what the sequencer must hear goes to `to_core`.
    pub(crate) fn ready(
        &mut self,
        registry: &Registry,
        token: Token,
        next_token: &mut usize,
        now: Instant,
        to_core: &mut Vec<QuorumIn>,
    ) {
        if token == self.listener_token {
            self.accept(registry, next_token, now, to_core);
            return;
        }
        let res = match self.conns.get_mut(&token) {
            Some(c) => c.io.flush(registry, token).and_then(|()| c.io.fill()),
            None => return,
        };
        // Whatever arrived before an end is still handed over.
        let parsed = self.parse(registry, token, to_core);
        if let Some(c) = self.conns.get_mut(&token) {
            c.publish();
        }
        if let Err(why) = res.and(parsed) {
            self.drop_conn(registry, token, &why, to_core);
        }
    }

    fn parse(
        &mut self,
        registry: &Registry,
        token: Token,
        to_core: &mut Vec<QuorumIn>,
    ) -> Result<(), String> {
        loop {
            let Some(c) = self.conns.get_mut(&token) else {
                return Ok(());
            };
            let Some((q, used)) = parse_packet(c.io.unread(), self.bounds.max_data)? else {
                return Ok(());
            };
            c.io.rstart += used;
            let p = Packet::from_wire(q).map_err(|e| e.to_string())?;
            c.unpublished.received += 1;
            if matches!(p, Packet::Request { .. }) {
                c.unpublished.requests += 1;
            }
            let conn = c.conn;
            if c.sid.is_none() {
                let Some((name, sid)) = info_name(&p) else {
                    return Err(format!(
                        "first quorum packet is {}, not FOLLOWERINFO or OBSERVERINFO",
                        p.name()
                    ));
                };
                if !self.known.contains(&sid) {
                    // As ZooKeeper's LearnerHandler, which only logs it: a
                    // server outside the configuration never counts (the
                    // core takes it as a non-voter), but it may observe.
                    info!(
                        "{name} from server {sid}, which is not in the configuration: \
                         taken as a non-voter"
                    );
                }
                c.sid = Some(sid);
                c.stats.sid.store(sid as i64, Relaxed);
                c.stats
                    .observer
                    .store(matches!(p, Packet::ObserverInfo { .. }), Relaxed);
                info!("leading: {name} from server {sid} at {}", c.peer);
                if let Some(old) = self.followers.insert(sid, token)
                    && old != token
                {
                    self.drop_conn(registry, old, "replaced by a newer connection", to_core);
                }
            }
            to_core.push(QuorumIn::FromLearner(conn, p));
        }
    }

    fn accept(
        &mut self,
        registry: &Registry,
        next_token: &mut usize,
        now: Instant,
        to_core: &mut Vec<QuorumIn>,
    ) {
        loop {
            let waiting = self.conns.values().filter(|c| c.sid.is_none()).count();
            let (stream, peer, t) =
                match accept_learner(&self.listener, registry, next_token, waiting) {
                    Accepted::Conn(stream, peer, t) => (stream, peer, t),
                    Accepted::Refused => continue,
                    Accepted::Drained => return,
                };
            let conn = self.next_conn;
            self.next_conn += 1;
            self.by_conn.insert(conn, t);
            let stats = Arc::new(LearnerHandlerStats::new(peer));
            self.learners.add(conn, stats.clone());
            self.conns.insert(
                t,
                LearnerConn {
                    io: Io::new(stream, false),
                    conn,
                    peer,
                    sid: None,
                    deadline: now + self.bounds.init,
                    stats,
                    unpublished: Unpublished::default(),
                },
            );
            to_core.push(QuorumIn::LearnerConnected(conn));
        }
    }

    /// Closes a connection; `to_core` hears of it.
    fn drop_conn(
        &mut self,
        registry: &Registry,
        token: Token,
        why: &str,
        to_core: &mut Vec<QuorumIn>,
    ) {
        if let Some(conn) = self.close(registry, token, why) {
            to_core.push(QuorumIn::LearnerClosed(conn));
        }
    }

    fn close(&mut self, registry: &Registry, token: Token, why: &str) -> Option<Conn> {
        let mut c = self.conns.remove(&token)?;
        let _ = registry.deregister(&mut c.io.stream);
        self.by_conn.remove(&c.conn);
        self.learners.remove(c.conn);
        match c.sid {
            Some(sid) => {
                info!("leading: learner {sid} at {} left: {why}", c.peer);
                if self.followers.get(&sid) == Some(&token) {
                    self.followers.remove(&sid);
                }
            }
            None => warn!("quorum port: closing connection from {}: {why}", c.peer),
        }
        Some(c.conn)
    }

    /// Queues a packet to learner `conn` (SNAP with its body: `body`);
    /// [`ZabLeading::flush_queued`] writes it, with every other packet the
    /// sequencer sent meanwhile, in one write per learner.
    pub(crate) fn send(&mut self, conn: Conn, p: &Packet) {
        let Some(&token) = self.by_conn.get(&conn) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let zxid = c.io.queue(p);
        c.unpublished.sent += 1;
        if zxid > 0 {
            c.stats.last_zxid.store(zxid, Relaxed);
        }
        if matches!(p, Packet::UpToDate) {
            c.stats.synced.store(true, Relaxed);
        }
        if !self.dirty.contains(&token) {
            self.dirty.push(token);
        }
    }

    /// Queues more of the SNAP body sent last to `conn`.
    pub(crate) fn send_more(&mut self, conn: Conn, bytes: &[u8]) {
        let Some(&token) = self.by_conn.get(&conn) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        c.io.queue_more(bytes);
        if !self.dirty.contains(&token) {
            self.dirty.push(token);
        }
    }

    /// Writes what [`ZabLeading::send`] queued (until a socket would block;
    /// the rest when it is writable again).
    pub(crate) fn flush_queued(&mut self, registry: &Registry, to_core: &mut Vec<QuorumIn>) {
        for token in std::mem::take(&mut self.dirty) {
            let Some(c) = self.conns.get_mut(&token) else {
                continue;
            };
            let flushed = c.io.flush(registry, token);
            c.publish();
            if let Err(why) = flushed {
                self.drop_conn(registry, token, &why, to_core);
            }
        }
    }

    /// The sequencer closes learner `conn`.
    pub(crate) fn close_conn(&mut self, registry: &Registry, conn: Conn, why: &str) {
        if let Some(&token) = self.by_conn.get(&conn) {
            // Flush what the role sent before closing (best effort).
            if let Some(c) = self.conns.get_mut(&token) {
                let _ = c.io.flush(registry, token);
            }
            self.close(registry, token, why);
        }
    }

    /// Drops connections silent past initLimit; the next deadline.
    pub(crate) fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
        to_core: &mut Vec<QuorumIn>,
    ) -> Option<Instant> {
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
                to_core,
            );
        }
        self.conns
            .values()
            .filter(|c| c.sid.is_none())
            .map(|c| c.deadline)
            .min()
    }

    /// Closes the listener and every learner connection.
    pub(crate) fn stop(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.listener);
        for (_, mut c) in self.conns.drain() {
            let _ = registry.deregister(&mut c.io.stream);
        }
        self.learners.clear();
    }
}

/// What the learner reads of a SNAP body before passing it on.
const SNAP_PIECE: usize = 4 << 20;

/// A SNAP body being received.
struct SnapIn {
    zxid: Zxid,
    scan: SnapScan,
    tx: SnapSender,
    /// Read buffers of pieces the sequencer and the snapshot writer are
    /// done with, for the next pieces.
    pool: PiecePool,
}

/// Recycles a SNAP's piece buffers: a 1M-znode body is ~50 pieces of 4 MiB,
/// and a fresh buffer for each is 200 MB of memory touched for the first
/// time (on a VM a fault per page: 0.2-0.9 s of the quorum thread), where a
/// few buffers going round cover the pieces in flight.
struct PiecePool {
    back: crossbeam_channel::Sender<Vec<u8>>,
    free: crossbeam_channel::Receiver<Vec<u8>>,
}

/// A piece's storage; its buffer goes back to the pool when the last
/// `Bytes` of it drops.
struct Piece {
    buf: Vec<u8>,
    back: crossbeam_channel::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        // A full pool (or one whose SNAP ended) lets the buffer go.
        let _ = self.back.try_send(std::mem::take(&mut self.buf));
    }
}

impl PiecePool {
    /// Buffers kept for reuse (more in flight are freed when done).
    const KEEP: usize = 8;

    fn new() -> Self {
        let (back, free) = crossbeam_channel::bounded(Self::KEEP);
        PiecePool { back, free }
    }

    /// An empty buffer, recycled when one is back.
    fn take(&self) -> Vec<u8> {
        let mut v = self.free.try_recv().unwrap_or_default();
        v.clear();
        v
    }

    /// `buf[start..end]` as a piece whose buffer comes back here.
    fn piece(&self, buf: Vec<u8>, start: usize, end: usize) -> Bytes {
        let back = self.back.clone();
        Bytes::from_owner(Piece { buf, back }).slice(start..end)
    }
}

/// A learner's connection to the leader.
pub(crate) struct ZabLearning {
    leader: Sid,
    leader_addr: HostPort,
    token: Token,
    io: Option<Io>,
    connected: bool,
    started: Instant,
    next_try: Instant,
    retry: Duration,
    /// When the last attempt began, and when the first refused one did.
    tried_at: Instant,
    refused_since: Option<Instant>,
    bounds: Bounds,
    /// After a SNAP packet: its body, passed on as it arrives.
    snap: Option<SnapIn>,
    /// [`ZabLearning::ready`] stopped with bytes maybe still unread: call
    /// it again (after handing `to_core` over).
    pending: bool,
}

impl ZabLearning {
    /// Starts dialling `leader` at its quorum address.
    pub(crate) fn start(
        (leader, leader_addr): (Sid, HostPort),
        token: Token,
        bounds: Bounds,
        now: Instant,
    ) -> Self {
        ZabLearning {
            leader,
            leader_addr,
            token,
            io: None,
            connected: false,
            started: now,
            next_try: now,
            retry: RETRY_FIRST,
            tried_at: now,
            refused_since: None,
            bounds,
            snap: None,
            pending: false,
        }
    }

    /// Whether `token` is ours.
    pub(crate) fn owns(&self, token: Token) -> bool {
        token == self.token
    }

    /// Our token, when [`ZabLearning::ready`] must be called again though
    /// no readiness event will say so: it stopped at a SNAP packet, whose
    /// [`QuorumIn::Snap`] the sequencer must get before the body follows.
    pub(crate) fn pending(&self) -> Option<Token> {
        self.pending.then_some(self.token)
    }

    fn connect(&mut self, registry: &Registry, now: Instant) {
        self.tried_at = now;
        self.next_try = now + self.retry;
        self.retry = (self.retry * 2).min(RETRY_MAX);
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
                    self.io = Some(Io::new(s, true));
                }
            }
            Err(e) => {
                debug!(
                    "following: cannot connect to leader {} at {addr}: {e}",
                    self.leader
                );
                self.refused_since.get_or_insert(now);
            }
        }
    }

    fn reset(&mut self, registry: &Registry) {
        if let Some(mut io) = self.io.take() {
            let _ = registry.deregister(&mut io.stream);
        }
    }

    /// Handles readiness of our connection; `Err` when it is lost.
    pub(crate) fn ready(
        &mut self,
        registry: &Registry,
        to_core: &mut Vec<QuorumIn>,
    ) -> Result<(), String> {
        self.pending = false;
        let Some(io) = self.io.as_mut() else {
            return Ok(());
        };
        if !self.connected {
            match (io.stream.take_error(), io.stream.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    self.connected = true;
                    info!(
                        "following: connected to leader {} at {}",
                        self.leader, self.leader_addr
                    );
                    to_core.push(QuorumIn::LeaderConnected);
                }
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                (Ok(Some(e)), _) | (Err(e), _) | (_, Err(e)) => {
                    debug!(
                        "following: connecting to leader {} failed: {e}",
                        self.leader
                    );
                    self.refused_since.get_or_insert(self.tried_at);
                    self.reset(registry);
                    return Ok(());
                }
            }
        }
        let token = self.token;
        let io = self.io.as_mut().expect("checked above");
        let mut res = io.flush(registry, token);
        loop {
            // A SNAP body is passed on as it comes: read a few MB at most
            // between two parses (the loopback delivers hundreds of MB
            // faster than the sequencer loads them).
            let limit = if self.snap.is_some() {
                SNAP_PIECE
            } else {
                usize::MAX
            };
            let io = self.io.as_mut().expect("checked above");
            let filled = res.and_then(|()| io.fill_some(limit));
            let parsed = self.parse(to_core);
            match (filled, parsed) {
                (Ok(_), Ok(())) if self.pending => return Ok(()),
                (Ok(false), Ok(())) => res = Ok(()),
                (filled, parsed) => {
                    return filled
                        .map(|_| ())
                        .and(parsed)
                        .map_err(|why| format!("connection to leader {}: {why}", self.leader));
                }
            }
        }
    }

    fn parse(&mut self, to_core: &mut Vec<QuorumIn>) -> Result<(), String> {
        let Some(io) = self.io.as_mut() else {
            return Ok(());
        };
        loop {
            if let Some(s) = &mut self.snap {
                let done = s.scan.advance(io.unread())?;
                let n = s.scan.scanned();
                if n > 0 {
                    // What was scanned leaves the read buffer without a
                    // copy (most of it, for a large tree): the buffer
                    // becomes the piece's storage and keeps what follows.
                    let (start, end) = (io.rstart, io.rstart + n);
                    let mut all = std::mem::take(&mut io.rbuf);
                    io.rbuf = s.pool.take();
                    io.rbuf.extend_from_slice(&all[end..]);
                    all.truncate(end);
                    io.rstart = 0;
                    s.tx.send(s.pool.piece(all, start, end));
                    s.scan.forget(n);
                }
                if done.is_none() {
                    return Ok(());
                }
                let s = self.snap.take().expect("matched above");
                // The read buffer was a piece's: back to a connection's size.
                io.rbuf.shrink_to(64 << 10);
                info!(
                    "following: SNAP 0x{:x} from leader {}: {} bytes, {} znodes",
                    s.zxid,
                    self.leader,
                    s.scan.total(),
                    s.scan.nodes()
                );
                s.tx.end();
                continue;
            }
            let Some((q, used)) = parse_packet(io.unread(), self.bounds.max_data)? else {
                return Ok(());
            };
            io.rstart += used;
            match Packet::from_wire(q).map_err(|e| e.to_string())? {
                Packet::Snap { zxid } => {
                    // The sequencer loads the body as it comes.
                    let (tx, feed) = snap_feed(self.bounds.init);
                    to_core.push(QuorumIn::Snap { zxid, feed });
                    self.snap = Some(SnapIn {
                        zxid,
                        scan: SnapScan::new(self.bounds.snap_max),
                        tx,
                        pool: PiecePool::new(),
                    });
                    self.pending = true;
                    return Ok(());
                }
                p => to_core.push(QuorumIn::FromLeader(p)),
            }
        }
    }

    /// Queues a packet to the leader (dropped while not connected);
    /// [`ZabLearning::flush_queued`] writes it.
    pub(crate) fn send(&mut self, p: &Packet) {
        match self.io.as_mut() {
            Some(io) if self.connected => {
                io.queue(p);
            }
            _ => debug!("following: not connected; {} dropped", p.name()),
        }
    }

    /// Writes what [`ZabLearning::send`] queued, in one write.
    pub(crate) fn flush_queued(&mut self, registry: &Registry) -> Result<(), String> {
        let token = self.token;
        match self.io.as_mut() {
            Some(io) if self.connected && io.wstart < io.wbuf.len() => io
                .flush(registry, token)
                .map_err(|why| format!("connection to leader {}: {why}", self.leader)),
            _ => Ok(()),
        }
    }

    /// Retries and the initLimit deadline; `Err` when the leader could not
    /// be reached in time; else the next instant something is due.
    pub(crate) fn tick(
        &mut self,
        registry: &Registry,
        now: Instant,
    ) -> Result<Option<Instant>, String> {
        if self.connected {
            return Ok(None);
        }
        let deadline = self.started + self.bounds.connect;
        if now >= deadline {
            self.reset(registry);
            return Err(format!(
                "could not connect to leader {} at {} within {} ms (connectToLearnerMasterLimit, or initLimit)",
                self.leader,
                self.leader_addr,
                self.bounds.connect.as_millis()
            ));
        }
        if let Some(since) = self.refused_since
            && self.io.is_none()
            && now >= since + REFUSED_GIVE_UP
        {
            return Err(format!(
                "leader {} at {} refused every connection for {} ms: not leading",
                self.leader,
                self.leader_addr,
                REFUSED_GIVE_UP.as_millis()
            ));
        }
        if self.io.is_none() && now >= self.next_try {
            self.connect(registry, now);
        }
        Ok(Some(if self.io.is_none() {
            self.next_try.min(deadline)
        } else {
            deadline
        }))
    }

    /// Closes the connection.
    pub(crate) fn stop(mut self, registry: &Registry) {
        self.reset(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback address nobody listens on (every dial is refused), and
    /// bounds with a connect limit of `connect_ms`.
    fn refusing(connect_ms: u64) -> (HostPort, Bounds) {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let addr = HostPort {
            host: "127.0.0.1".into(),
            port,
        };
        let bounds = Bounds {
            max_data: 1 << 20,
            snap_max: 1 << 20,
            init: Duration::from_secs(10),
            connect: Duration::from_millis(connect_ms),
        };
        (addr, bounds)
    }

    /// connectToLearnerMasterLimit was ignored: a learner dialled its leader
    /// for initLimit whatever it said. Now it gives up at that limit (and at
    /// initLimit when unset), as Apache's `Learner.connectToLeader`.
    #[test]
    fn a_learner_dials_its_leader_for_connect_to_learner_master_limit() {
        let poll = mio::Poll::new().unwrap();
        let bounds = |connect_ms| refusing(connect_ms).1;
        let (addr, _) = refusing(0);
        let t0 = Instant::now();
        let mut l = ZabLearning::start((1, addr.clone()), Token(7), bounds(300), t0);
        assert!(l.tick(poll.registry(), t0).is_ok());
        assert!(
            l.tick(poll.registry(), t0 + Duration::from_millis(299))
                .is_ok()
        );
        let e = l
            .tick(poll.registry(), t0 + Duration::from_millis(300))
            .unwrap_err();
        assert!(e.contains("within 300 ms"), "{e}");
        let mut l = ZabLearning::start((1, addr), Token(7), bounds(10_000), t0);
        assert!(
            l.tick(poll.registry(), t0 + Duration::from_millis(300))
                .is_ok()
        );
    }

    /// Drives `l` as the quorum thread does, a tick every 10 ms of a clock
    /// that starts at `t0` (each try's outcome read before the next tick):
    /// whether it connected (`false`: still dialling at `upto_ms`), or the
    /// ms at which it gave up and why.
    fn dial(
        l: &mut ZabLearning,
        poll: &mio::Poll,
        t0: Instant,
        upto_ms: u64,
    ) -> Result<bool, (u64, String)> {
        for ms in (0..=upto_ms).step_by(10) {
            l.tick(poll.registry(), t0 + Duration::from_millis(ms))
                .map_err(|e| (ms, e))?;
            std::thread::sleep(Duration::from_millis(1));
            let _ = l.ready(poll.registry(), &mut Vec::new());
            if l.connected {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A learner dialled a peer that refused it (one that was not leading:
    /// the learner had decided on part of the votes) for the whole connect
    /// limit, initLimit ticks (8 s in kazoo's test cluster), out of the
    /// ensemble all that time. It gives up after the time Apache's learner
    /// takes for its five tries, 100 ms apart, and goes LOOKING again; a
    /// leader that listens within that time is reached.
    #[test]
    fn a_learner_gives_up_on_a_peer_that_refuses_as_apache_after_five_tries() {
        let poll = mio::Poll::new().unwrap();
        let (addr, bounds) = refusing(10_000);
        let port = addr.port;
        let t0 = Instant::now();
        let mut l = ZabLearning::start((2, addr.clone()), Token(7), bounds, t0);
        let (at, why) = dial(&mut l, &poll, t0, 2_000).expect_err("gave up");
        assert!((400..=500).contains(&at), "gave up at {at} ms: {why}");
        assert!(why.contains("refused every connection for 400 ms"), "{why}");
        // The leader listens 300 ms into the dial: reached.
        let t0 = Instant::now();
        let mut l = ZabLearning::start((2, addr), Token(7), bounds, t0);
        assert_eq!(dial(&mut l, &poll, t0, 290), Ok(false));
        let _listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert_eq!(
            dial(&mut l, &poll, t0 + Duration::from_millis(300), 100),
            Ok(true)
        );
    }
}
