//! The client connections: a few mio event loops.
//!
//! Loop 0 owns the listening socket and hands new connections out round-robin.
//! Each loop owns its connections: it reads and frames requests, answers
//! four-letter words and the handshake's local checks, serves reads of sessions
//! with nothing in flight straight from the tree, and sends everything else to
//! the sequencer thread (`zk-core`). Replies, watch events and close orders come
//! back on a channel, with a [`mio::Waker`].
//!
//! Readiness contract (mio is edge-triggered): a socket is read and written
//! until `WouldBlock`; a connection that stops reading for back-pressure (its
//! output queue is full, the global outstanding limit is reached, its handshake
//! is pending) is remembered in `paused` and re-driven when the reason clears,
//! since no new readiness event would come for bytes already buffered.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use crossbeam_channel::Receiver;
use hashbrown::{HashMap, HashSet};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};
use zk_jute::{
    ConnectRequest, ErrorCode, FrameDecoder, Jute, OpCode, Reader, Request, RequestHeader,
};

use crate::control::{Control, Mode};
use crate::frames::error_frame;
use crate::msg::{CoreMsg, Ctx, LoopMsg, Reject};
use crate::reads::{authenticate, is_local, op_short_name, serve_read};
use crate::shared::Shared;
use crate::stats::{ConnStats, SentTally};

const LISTENER: Token = Token(usize::MAX - 1);
const SECURE_LISTENER: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX);

/// Ops whose body PrepRequestProcessor decodes after giving the request a txn
/// header: an undecodable body becomes an error txn that takes a zxid.
fn is_txn_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateTtl
            | OpCode::CreateContainer
            | OpCode::Delete
            | OpCode::DeleteContainer
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Multi
    )
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the ConnectRequest (or a four-letter word).
    Handshake,
    /// ConnectRequest sent to the core; waiting for its answer.
    Connecting,
    /// Session established.
    Connected,
}

struct Conn {
    stream: TcpStream,
    /// TLS (a connection to the secure client port): the bytes on `stream`
    /// are its records; `inbuf` and `out` hold the plaintext.
    tls: Option<Box<rustls::ServerConnection>>,
    /// The TLS handshake is done and its client certificate's auth ids taken.
    tls_ready: bool,
    /// On the client port with `client.portUnification`: its first byte
    /// is still to tell whether it speaks TLS.
    sniff: bool,
    peer: SocketAddr,
    inbuf: BytesMut,
    out: VecDeque<Bytes>,
    out_bytes: usize,
    state: State,
    session_id: i64,
    /// Requests sent to the core and not answered yet.
    outstanding: u32,
    auth: Arc<Vec<zk_jute::Id>>,
    /// The connection's SASL exchange, once begun.
    sasl: Option<Box<crate::sasl::DigestMd5>>,
    stats: Arc<ConnStats>,
    /// Close once the output queue is empty.
    close_after_flush: bool,
    /// In the loop's `dirty` list.
    flush_pending: bool,
    /// The peer closed its side (or an error happened): drop after flushing.
    dead: bool,
    /// Input is ignored from now on (a request that closes the connection once
    /// the replies before it are written was read).
    stop_reading: bool,
    /// The monotonic ms (`Shared::now_ms`) at which this connection last
    /// touched its session: later frames of the same ms skip the tracker.
    session_touched_ms: Option<u64>,
    /// Held back by globalOutstandingLimit since its last frame read (one
    /// report per episode: a paused connection is re-checked every loop
    /// iteration).
    throttled: bool,
}

/// How often at most a loop warns that globalOutstandingLimit holds
/// connections back.
const THROTTLE_WARN_EVERY: Duration = Duration::from_secs(60);

/// The connections a loop stopped reading for globalOutstandingLimit:
/// each at debug level (as Apache), and a warning at most once every
/// [`THROTTLE_WARN_EVERY`] with how many since the last (one warning per
/// episode was hundreds a second under a load at the limit).
#[derive(Debug, Default)]
struct ThrottleReport {
    since_warning: u64,
    warned_at: Option<Instant>,
}

impl ThrottleReport {
    fn note(&mut self, outstanding: i64, limit: i64) {
        self.since_warning += 1;
        debug!(
            "Throttling - not reading a connection: {outstanding} requests outstanding, limit {limit}"
        );
        if self
            .warned_at
            .is_none_or(|t| t.elapsed() >= THROTTLE_WARN_EVERY)
        {
            warn!(
                "Throttling client reads: {outstanding} requests outstanding, over this server's limit of {limit} (globalOutstandingLimit); connections held back {} times since the last report",
                self.since_warning
            );
            self.since_warning = 0;
            self.warned_at = Some(Instant::now());
        }
    }
}

/// The frames handled from one connection's input at once share one clock
/// reading (they arrived together) and are counted together: the server's
/// counters are shared by the loops, so one update per batch instead of one
/// per frame.
struct Batch {
    received: Instant,
    /// Wall ms at `received`.
    wall: i64,
    /// `Shared::now_ms` at `received`.
    now_ms: u64,
    /// Frames taken from the input.
    frames: u64,
    /// Reads answered here, their replies queued: their latency is taken
    /// once the batch ends.
    served_here: u64,
}

impl Conn {
    /// Adds auth ids the connection does not have yet (`ServerCnxn.addAuthInfo`).
    fn add_auth(&mut self, new_ids: Vec<zk_jute::Id>) {
        let mut ids = (*self.auth).clone();
        for nid in new_ids {
            if !ids.contains(&nid) {
                ids.push(nid);
            }
        }
        self.auth = Arc::new(ids);
    }

    /// A request goes to the sequencer: counted (here, in the connection's
    /// `cons` figures and in the global count globalOutstandingLimit
    /// applies to) until [`Conn::end_request`].
    fn begin_request(&mut self, control: &Control) {
        self.outstanding += 1;
        self.stats.outstanding.fetch_add(1, Relaxed);
        control.add_outstanding(1);
    }

    /// The sequencer answered a request counted by [`Conn::begin_request`].
    fn end_request(&mut self, control: &Control) {
        debug_assert!(self.outstanding > 0, "a reply without a request");
        self.outstanding = self.outstanding.saturating_sub(1);
        self.stats.outstanding.fetch_sub(1, Relaxed);
        control.add_outstanding(-1);
    }

    /// The connection closes: its requests in flight leave the global count
    /// (their replies will find no connection).
    fn abandon_requests(&mut self, control: &Control) {
        control.add_outstanding(-i64::from(self.outstanding));
        self.outstanding = 0;
    }

    fn queue(&mut self, frame: Bytes) {
        self.out_bytes += frame.len();
        self.out.push_back(frame);
    }

    /// Writes as much queued output as the socket takes: every queued frame
    /// in one `writev` (up to 64 at a time), so the replies of a group commit
    /// leave in one TCP segment instead of one syscall and segment each.
    fn flush(&mut self) -> io::Result<()> {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); 64];
            let mut n_slices = 0;
            for (slot, frame) in slices.iter_mut().zip(self.out.iter()) {
                *slot = IoSlice::new(frame);
                n_slices += 1;
            }
            match self.stream.write_vectored(&slices[..n_slices]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut n) => {
                    self.out_bytes -= n;
                    while n > 0 {
                        let front = self.out.front_mut().expect("written bytes were queued");
                        if n >= front.len() {
                            n -= front.len();
                            self.out.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`Conn::flush`] for TLS: the records rustls has ready first, then the
    /// queued frames, handed over up to [`TLS_CHUNK`] at a time, so that
    /// `out_bytes` keeps counting what the client has not taken yet (the
    /// output limit's measure) rather than rustls holding it all.
    fn flush_tls(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        loop {
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.out.is_empty() || tls.is_handshaking() {
                return Ok(());
            }
            let mut handed = 0;
            while handed < TLS_CHUNK
                && let Some(frame) = self.out.pop_front()
            {
                tls.writer().write_all(&frame)?;
                handed += frame.len();
                self.out_bytes -= frame.len();
            }
        }
    }

    /// Reads a TLS connection into `scratch`: plaintext rustls holds first,
    /// else the records waiting on the socket.
    fn read_tls(&mut self, scratch: &mut [u8]) -> io::Result<TlsRead> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(TlsRead::Closed);
        };
        loop {
            match tls.reader().read(scratch) {
                Ok(0) => return Ok(TlsRead::Closed),
                Ok(n) => return Ok(TlsRead::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(TlsRead::Closed),
                Ok(_) => {
                    if let Err(e) = tls.process_new_packets() {
                        // Its alert goes out before the close, except to
                        // bytes that are no TLS record at all: Apache's
                        // Netty (NotSslRecordException) closes silently.
                        let not_tls = matches!(
                            e,
                            rustls::Error::InvalidMessage(
                                rustls::InvalidMessage::InvalidContentType
                            )
                        );
                        if not_tls {
                            // (rustls queued the alert: dropped with it.)
                            self.tls = None;
                        } else {
                            let _ = tls.write_tls(&mut self.stream);
                        }
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(TlsRead::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// What [`Conn::read_tls`] found.
enum TlsRead {
    /// Plaintext in the scratch buffer.
    Data(usize),
    /// Nothing more for now.
    Blocked,
    /// The client closed.
    Closed,
}

/// Plaintext handed to rustls per round of [`Conn::flush_tls`].
const TLS_CHUNK: usize = 64 * 1024;

/// The client ports a loop accepts on (loop 0's) and the secure port's TLS
/// (every loop's: loop 0 hands connections out).
pub(crate) struct Listeners {
    /// clientPort.
    pub plain: Option<TcpListener>,
    /// secureClientPort.
    pub secure: Option<TcpListener>,
    /// The secure port's TLS configuration.
    pub tls: Option<crate::tls::Acceptor>,
    /// `client.portUnification`: the client port takes TLS clients too.
    pub unify: bool,
}

/// What one loop thread owns.
pub(crate) struct EventLoop {
    idx: usize,
    poll: Poll,
    listener: Option<TcpListener>,
    secure_listener: Option<TcpListener>,
    tls: Option<crate::tls::Acceptor>,
    /// `client.portUnification` (with `tls`).
    unify: bool,
    rx: Receiver<LoopMsg>,
    shared: Arc<Shared>,
    conns: HashMap<u64, Conn>,
    /// Connections that stopped reading for back-pressure, re-driven later.
    paused: HashSet<u64>,
    /// Counts [`EventLoop::resume_paused`] calls: ties in its order rotate.
    resume_round: u64,
    /// Connections with output queued in this iteration, written once at its end.
    dirty: Vec<u64>,
    /// Stage times of the replies queued in this iteration.
    traced: Vec<(Instant, Instant)>,
    /// The replies queued in this iteration, counted in the shared
    /// figures by `flush_dirty`.
    sent: SentTally,
    /// Messages for the core from this iteration, handed over together at
    /// its end ([`Inbox::send_all`](crate::inbox::Inbox::send_all)): one
    /// lock and at most one wake-up instead of one per request, which
    /// contended with the core draining them.
    to_core: Vec<CoreMsg>,
    next_seq: u64,
    next_target: usize,
    frames: FrameDecoder,
    throttle: ThrottleReport,
    shutting_down: bool,
    /// Where socket reads land before they are appended to a connection's
    /// input: zeroed once, not at every read (a fresh 16 KiB stack buffer
    /// per read was memset twice per readiness event).
    scratch: Box<[u8]>,
}

/// Size of a read into [`EventLoop::scratch`].
const READ_CHUNK: usize = 16 * 1024;

impl EventLoop {
    pub fn new(
        idx: usize,
        poll: Poll,
        listeners: Listeners,
        rx: Receiver<LoopMsg>,
        shared: Arc<Shared>,
    ) -> io::Result<Self> {
        let Listeners {
            plain: mut listener,
            secure: mut secure_listener,
            tls,
            unify,
        } = listeners;
        if let Some(l) = listener.as_mut() {
            poll.registry().register(l, LISTENER, Interest::READABLE)?;
        }
        if let Some(l) = secure_listener.as_mut() {
            poll.registry()
                .register(l, SECURE_LISTENER, Interest::READABLE)?;
        }
        let frames = FrameDecoder::new(shared.config.jute_max_buffer);
        Ok(Self {
            idx,
            poll,
            listener,
            secure_listener,
            tls,
            unify,
            rx,
            shared,
            conns: HashMap::new(),
            paused: HashSet::new(),
            resume_round: 0,
            dirty: Vec::new(),
            traced: Vec::new(),
            sent: SentTally::default(),
            to_core: Vec::new(),
            next_seq: 1,
            next_target: 0,
            frames,
            throttle: ThrottleReport::default(),
            shutting_down: false,
            scratch: vec![0u8; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// Hands this iteration's messages to the core, in order.
    fn flush_core(&mut self) {
        if !self.to_core.is_empty() {
            self.shared.send_core_all(self.to_core.drain(..));
        }
    }

    /// The waker token (for `Waker::new`).
    pub fn waker_token() -> Token {
        WAKER
    }

    /// Runs until shutdown.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let mut timeout = if self.paused.is_empty() {
                None
            } else {
                Some(Duration::from_millis(10))
            };
            // About to sleep: from here on a sender must wake us. Whatever was
            // sent while we were busy (no wake-up: the flag was still set) is
            // seen here, and then the poll does not sleep.
            if let Some(h) = self.shared.loops().get(self.idx) {
                h.clear_notified();
            }
            if !self.rx.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                warn!(error = %e, "event loop poll failed");
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(false),
                    SECURE_LISTENER => self.accept(true),
                    WAKER => {}
                    Token(t) => {
                        let id = t as u64;
                        if ev.is_writable() {
                            self.on_writable(id);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(id);
                        }
                    }
                }
            }
            self.drain_mailbox();
            self.resume_paused();
            self.flush_dirty();
            if self.shutting_down && self.conns.values().all(|c| c.out.is_empty()) {
                let ids: Vec<u64> = self.conns.keys().copied().collect();
                for id in ids {
                    self.close(id, "server shutting down");
                }
                self.flush_core();
                break;
            }
            self.flush_core();
        }
        debug!(loop_idx = self.idx, "event loop stopped");
    }

    /// Accepts on the client port, or on the secure one.
    fn accept(&mut self, secure: bool) {
        loop {
            let listener = if secure {
                &self.secure_listener
            } else {
                &self.listener
            };
            let Some(listener) = listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.shutting_down {
                        continue;
                    }
                    let cfg = &self.shared.config;
                    let (max, max_total) = (cfg.max_client_cnxns, cfg.max_cnxns);
                    if let Err(limit) = self.shared.control.admit(peer.ip(), max, max_total) {
                        // As NIOServerCnxnFactory: the socket is closed at
                        // accept, before any byte is read.
                        match limit {
                            crate::control::Limit::Total => warn!(
                                "Error accepting new connection: Too many connections max allowed is {max_total} (maxCnxns)"
                            ),
                            crate::control::Limit::PerIp => warn!(
                                "Error accepting new connection: Too many connections from /{} - max is {} (maxClientCnxns)",
                                peer.ip(),
                                max
                            ),
                        }
                        self.shared.stats.rejected.fetch_add(1, Relaxed);
                        continue;
                    }
                    if self.shared.config.client_tcp_keep_alive
                        && let Err(e) = set_keep_alive(&stream)
                    {
                        warn!("cannot set SO_KEEPALIVE on the connection from {peer}: {e}");
                    }
                    let target = self.next_target % self.shared.loops().len();
                    self.next_target = self.next_target.wrapping_add(1);
                    if target == self.idx {
                        self.register(stream, peer, secure);
                    } else {
                        self.shared.loops()[target].send(LoopMsg::NewConn(stream, peer, secure));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn register(&mut self, mut stream: TcpStream, peer: SocketAddr, secure: bool) {
        let tls = match (secure, &self.tls) {
            (false, _) => None,
            (true, Some(acceptor)) => match acceptor.accept() {
                Ok(mut t) => {
                    // `flush_tls` bounds what it hands over; a frame larger
                    // than rustls's default limit must still go in whole.
                    t.set_buffer_limit(None);
                    Some(Box::new(t))
                }
                Err(e) => {
                    warn!("cannot start TLS with /{peer}: {e}");
                    self.release_ip(peer);
                    return;
                }
            },
            (true, None) => {
                self.release_ip(peer);
                return;
            }
        };
        let id = (self.next_seq << 8) | self.idx as u64;
        self.next_seq += 1;
        let _ = stream.set_nodelay(true);
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id as usize),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!(error = %e, "cannot register connection");
            self.release_ip(peer);
            return;
        }
        info!("Accepted socket connection from /{peer}");
        let stats = ConnStats::new(peer);
        stats.secure.store(tls.is_some(), Relaxed);
        let stats = Arc::new(stats);
        self.shared
            .stats
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, stats.clone());
        self.conns.insert(
            id,
            Conn {
                stream,
                sniff: !secure && self.unify && self.tls.is_some(),
                tls_ready: tls.is_none(),
                tls,
                peer,
                inbuf: BytesMut::with_capacity(4096),
                out: VecDeque::new(),
                out_bytes: 0,
                state: State::Handshake,
                session_id: 0,
                outstanding: 0,
                auth: Arc::new(vec![zk_jute::Id {
                    scheme: "ip".into(),
                    id: peer.ip().to_string(),
                }]),
                sasl: None,
                stats,
                close_after_flush: false,
                flush_pending: false,
                dead: false,
                stop_reading: false,
                session_touched_ms: None,
                throttled: false,
            },
        );
        // Bytes may already be waiting: edge-triggered readiness was armed at register.
        self.on_readable(id);
    }

    fn release_ip(&self, peer: SocketAddr) {
        self.shared.control.release(peer.ip());
    }

    /// Logs, as Apache ZooKeeper, "Closing connection from /<peer>: <detail>"
    /// and closes the connection.
    fn close_warn(&mut self, id: u64, why: &str, detail: std::fmt::Arguments<'_>) {
        if let Some(c) = self.conns.get(&id) {
            warn!("Closing connection from /{}: {detail}", c.peer);
        }
        self.close(id, why);
    }

    fn close(&mut self, id: u64, why: &str) {
        let Some(mut c) = self.conns.remove(&id) else {
            return;
        };
        self.paused.remove(&id);
        // Out of `cons`/`stat` and the per-address count before the client can
        // see the close (as NIOServerCnxn removes itself first): a client's
        // next connection must not find the one it just saw closed.
        self.shared
            .stats
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.release_ip(c.peer);
        if let Some(tls) = c.tls.as_mut()
            && c.tls_ready
        {
            tls.send_close_notify();
        }
        let _ = c.flush();
        let _ = self.poll.registry().deregister(&mut c.stream);
        // Input left unread at the close makes the kernel answer with RST,
        // which can make the client drop our last reply unread (zkCli saw
        // ConnectionLoss instead of AUTHFAILED after a refused addauth
        // followed by a pipelined request): read what has arrived (bounded).
        let mut sink = [0u8; 4096];
        for _ in 0..64 {
            if !matches!(c.stream.read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        c.abandon_requests(&self.shared.control);
        if c.session_id != 0 {
            info!(
                "Closed socket connection for client /{} which had sessionid 0x{:x} ({why})",
                c.peer, c.session_id
            );
        } else {
            debug!("Closed socket connection for client /{} ({why})", c.peer);
        }
        if c.state != State::Handshake {
            self.to_core.push(CoreMsg::ConnClosed {
                conn: id,
                session_id: c.session_id,
            });
        }
    }

    fn on_writable(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if let Err(e) = c.flush() {
            debug!(error = %e, "write failed");
            self.close(id, "write failed");
            return;
        }
        self.after_write(id);
    }

    /// After output drained: close if asked, resume reading if it was paused for output.
    fn after_write(&mut self, id: u64) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        if c.out.is_empty() && (c.close_after_flush || c.dead) {
            self.close(id, if c.dead { "client closed" } else { "done" });
            return;
        }
        if c.out_bytes < self.shared.config.max_output_queue_bytes && self.paused.contains(&id) {
            self.on_readable(id);
        }
    }

    fn on_readable(&mut self, id: u64) {
        // Read everything available (bounded: stop buffering once a whole
        // maximal frame is there; the rest waits in the kernel).
        let limit = self.frames.max() + 8;
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let mut closed = false;
            while c.inbuf.len() < limit && !c.dead {
                let tmp = &mut self.scratch;
                if c.tls.is_some() {
                    match c.read_tls(tmp) {
                        Ok(TlsRead::Data(n)) => c.inbuf.extend_from_slice(&tmp[..n]),
                        Ok(TlsRead::Blocked) => break,
                        Ok(TlsRead::Closed) => {
                            closed = true;
                            break;
                        }
                        Err(e) => {
                            self.tls_failed(id, &e);
                            return;
                        }
                    }
                    continue;
                }
                match c.stream.read(tmp) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            // Stopped at the limit, not at WouldBlock: more bytes may wait in
            // the kernel, and no readiness event comes for bytes already
            // there (edge-triggered): read on once the frames are handled.
            let at_limit = !closed && !c.dead && c.inbuf.len() >= limit;
            if c.sniff && !c.inbuf.is_empty() {
                c.sniff = false;
                // A TLS handshake record (as Netty's DualModeSslHandler
                // tells): what was read becomes TLS input.
                if c.inbuf[0] == 0x16 && !closed {
                    if let Err(e) = self.upgrade_to_tls(id) {
                        self.tls_failed(id, &e);
                        return;
                    }
                    return self.on_readable(id);
                }
            }
            if c.tls.is_some() && !self.tls_progress(id) {
                return;
            }
            self.process_input(id);
            if closed && let Some(c) = self.conns.get_mut(&id) {
                c.dead = true;
                if c.out.is_empty() || c.state == State::Handshake {
                    self.close(id, "client closed");
                }
            }
            let Some(c) = self.conns.get(&id) else {
                return;
            };
            // Paused for back-pressure: `resume_paused` reads on later. No
            // whole frame handled: nothing more to read for now.
            if !at_limit
                || self.paused.contains(&id)
                || c.inbuf.len() >= limit
                || c.close_after_flush
                || c.stop_reading
            {
                return;
            }
        }
    }

    /// After reading a TLS connection: its handshake's records go out, and
    /// once the handshake is done its client certificate authenticates it
    /// (`x509:<DN>`, as ZooKeeper's X509AuthenticationProvider). False when
    /// the connection closed.
    fn tls_progress(&mut self, id: u64) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let Some(tls) = c.tls.as_ref() else {
            return true;
        };
        if !c.tls_ready && !tls.is_handshaking() {
            c.tls_ready = true;
            let ids = self
                .tls
                .as_ref()
                .map(|a| a.auth_ids(tls))
                .unwrap_or_default();
            debug!(peer = %c.peer, ids = ?ids, "TLS handshake done");
            c.add_auth(ids);
        }
        if c.tls.as_ref().is_some_and(|t| t.wants_write())
            && let Err(e) = c.flush()
        {
            debug!(error = %e, "write failed");
            self.close(id, "write failed");
            return false;
        }
        true
    }

    /// A connection on the client port that began with a TLS record
    /// (`client.portUnification`): the bytes read so far are fed to a new
    /// TLS state, which reads on from the socket.
    fn upgrade_to_tls(&mut self, id: u64) -> io::Result<()> {
        let (Some(c), Some(acceptor)) = (self.conns.get_mut(&id), self.tls.as_ref()) else {
            return Ok(());
        };
        let mut tls = acceptor.accept().map_err(io::Error::other)?;
        tls.set_buffer_limit(None);
        let raw = c.inbuf.split().freeze();
        let mut rest = &raw[..];
        while !rest.is_empty() {
            tls.read_tls(&mut rest)?;
            tls.process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        c.tls = Some(Box::new(tls));
        c.tls_ready = false;
        c.stats.secure.store(true, Relaxed);
        Ok(())
    }

    /// A TLS connection failed: a handshake that failed counts in
    /// `zk_auth_failed_count` and is logged as ZooKeeper's
    /// CertificateVerifier logs it; either way the connection closes.
    fn tls_failed(&mut self, id: u64, e: &io::Error) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        if c.tls_ready {
            debug!(peer = %c.peer, error = %e, "TLS error");
            self.close(id, "TLS error");
        } else {
            self.shared.stats.auth_failed.fetch_add(1, Relaxed);
            warn!("Unsuccessful handshake with /{}: {e}", c.peer);
            self.close(id, "failed TLS handshake");
        }
    }

    fn resume_paused(&mut self) {
        if self.paused.is_empty() {
            return;
        }
        // Fewest requests in flight first: the limit's room goes to the
        // connections it held back hardest, not to whichever the set lists
        // first (the same ones each time, which kept their whole window in
        // flight while the others sent one request at a time).
        self.resume_round = self.resume_round.wrapping_add(1);
        let paused = self
            .paused
            .drain()
            .map(|id| (self.conns.get(&id).map_or(0, |c| c.outstanding), id));
        for id in fewest_in_flight_first(paused, self.resume_round) {
            self.on_readable(id);
        }
    }

    /// Handles every whole frame buffered for `id`, unless back-pressure says
    /// wait, then records the batch's figures.
    fn process_input(&mut self, id: u64) {
        let received = Instant::now();
        let mut batch = Batch {
            received,
            wall: crate::stats::wall_ms(),
            now_ms: self.shared.ms_at(received),
            frames: 0,
            served_here: 0,
        };
        self.process_frames(id, &mut batch);
        self.end_batch(id, &batch);
    }

    /// The figures of the frames [`Self::process_frames`] handled: packets
    /// received, and the latency of the reads answered here.
    fn end_batch(&mut self, id: u64, b: &Batch) {
        if b.frames == 0 {
            return;
        }
        let shared = &self.shared;
        shared.stats.received.fetch_add(b.frames, Relaxed);
        let lat = (b.served_here > 0).then(|| b.received.elapsed().as_millis() as u64);
        if let Some(lat) = lat {
            let stats = &shared.stats;
            stats.answered(&stats.read_latency, self.idx, lat, b.served_here);
        }
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        c.stats.received.fetch_add(b.frames, Relaxed);
        c.stats.touched.store(b.wall, Relaxed);
        if let Some(lat) = lat {
            let at = b.wall + lat as i64;
            c.stats.answered(lat, b.served_here, at, shared.last_zxid());
        }
    }

    fn process_frames(&mut self, id: u64, batch: &mut Batch) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.close_after_flush || c.stop_reading {
                c.inbuf.clear();
                return;
            }
            match c.state {
                State::Connecting => {
                    self.paused.insert(id);
                    return;
                }
                State::Handshake => {
                    if c.inbuf.len() >= 4
                        && let Some(cmd) = crate::fourlw::recognise(&c.inbuf[..4])
                    {
                        // Counted as a packet received, as Apache does.
                        c.stats.received.fetch_add(1, Relaxed);
                        self.shared.stats.received.fetch_add(1, Relaxed);
                        c.stats.four_letter.store(true, Relaxed);
                        let out = crate::fourlw::run(&self.shared, cmd, &c.inbuf[4..]);
                        c.inbuf.clear();
                        if !out.is_empty() {
                            // (an empty write would never drain: stmk without
                            // its mask and hash answer nothing)
                            c.queue(Bytes::from(out));
                        }
                        c.close_after_flush = true;
                        let _ = c.flush();
                        self.after_write(id);
                        return;
                    }
                }
                State::Connected => {}
            }
            if c.out_bytes >= self.shared.config.max_output_queue_bytes {
                if !self.paused.contains(&id) {
                    debug!(
                        "connection /{} output queue at {} bytes (limit zkrs.maxOutputQueueBytes {}): not reading",
                        c.peer, c.out_bytes, self.shared.config.max_output_queue_bytes
                    );
                }
                self.paused.insert(id);
                return;
            }
            // As Apache's shouldThrottle: over the limit, a connection with
            // requests in flight waits (one without any is read: every
            // client gets its turn, and its reads cost no limit check).
            if c.state == State::Connected
                && c.outstanding > 0
                && let (limit, outstanding) = (
                    self.shared.outstanding_limit(),
                    self.shared.control.outstanding(),
                )
                && outstanding > limit
            {
                if !c.throttled {
                    c.throttled = true;
                    self.throttle.note(outstanding, limit);
                }
                self.paused.insert(id);
                return;
            }
            let frame = match self.frames.decode(&mut c.inbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    let max = self.frames.max();
                    let detail = format_args!("{e} (jute.maxbuffer {max})");
                    self.close_warn(id, "bad packet length", detail);
                    return;
                }
            };
            batch.frames += 1;
            c.throttled = false;
            let ok = match c.state {
                State::Handshake => self.on_connect_frame(id, frame),
                _ => self.on_request_frame(id, frame, batch),
            };
            if !ok {
                return;
            }
        }
    }

    fn on_connect_frame(&mut self, id: u64, frame: Bytes) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let req = match ConnectRequest::from_bytes(frame) {
            Ok(r) => r,
            Err(e) => {
                let detail = format_args!("invalid connect request: {e}");
                self.close_warn(id, "invalid connect request", detail);
                return false;
            }
        };
        let last = self.shared.control.last_zxid();
        if self.shared.control.client_ahead(req.last_zxid_seen, last) {
            info!(
                "Refusing session request for client /{} as it has seen zxid 0x{:x} our last zxid is 0x{:x} client must try another server",
                c.peer, req.last_zxid_seen, last
            );
            self.close(id, "client is ahead of this server");
            return false;
        }
        if !self.shared.control.serves_clients() {
            self.close(id, "not serving");
            return false;
        }
        let timeout = self.shared.config.negotiate_timeout(req.time_out);
        c.state = State::Connecting;
        self.to_core.push(CoreMsg::Connect {
            conn: id,
            peer: c.peer,
            req,
            timeout,
        });
        true
    }

    fn on_request_frame(&mut self, id: u64, frame: Bytes, batch: &mut Batch) -> bool {
        let shared = self.shared.clone();
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let received = batch.received;
        let mut r = Reader::new(frame);
        let header = match RequestHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => {
                let detail = format_args!("malformed request header: {e}");
                self.close_warn(id, "malformed request", detail);
                return false;
            }
        };
        c.stats.last_cxid.store(i64::from(header.xid), Relaxed);
        let session_id = c.session_id;
        if !self.touch_session(id, header.xid, batch.now_ms)
            || self.refuses_unauthenticated(id, &header)
        {
            return false;
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let op = match OpCode::try_from(header.op_type) {
            // Apache's Request.isValid: notification (0) and error (-1) are not
            // requests; createSession sent as a request fails to decode in
            // PrepRequestProcessor after its txn header is set. A check
            // outside a multi is not one either since ZooKeeper 3.8.5 and
            // 3.9.3 (ZOOKEEPER-2623: 3.8.0 logs a txn for it that neither its
            // followers nor its own restart can read).
            Ok(OpCode::Notification | OpCode::Error | OpCode::Check) | Err(_) => {
                debug!(
                    "Received packet at server of unknown type {} from /{}",
                    header.op_type, c.peer
                );
                // Nothing after it is answered: the connection closes once the
                // replies before it are written.
                c.stop_reading = true;
                c.inbuf.clear();
                self.reject(id, header.xid, received, Reject::Unimplemented);
                return false;
            }
            Ok(OpCode::CreateSession) => {
                self.reject(id, header.xid, received, Reject::MarshallingTxn);
                return true;
            }
            Ok(op) => op,
        };
        let req = match Request::read_body(header.op_type, &mut r) {
            Ok(req) => req,
            // auth and sasl are decoded in ZooKeeperServer.processPacket, where
            // an IOException closes the connection.
            Err(e) if matches!(op, OpCode::Auth | OpCode::Sasl) => {
                let detail = format_args!("malformed {} request: {e}", op.name());
                self.close_warn(id, "malformed request", detail);
                return false;
            }
            Err(e) => {
                // Everything else is decoded in the request processors, where an
                // IOException becomes a MARSHALLINGERROR reply.
                warn!(
                    "Failed to process {} request 0x{:x} from /{}: {e}: replying MARSHALLINGERROR",
                    op.name(),
                    header.xid,
                    c.peer
                );
                let reject = if is_txn_op(op) {
                    Reject::MarshallingTxn
                } else {
                    Reject::Marshalling
                };
                self.reject(id, header.xid, received, reject);
                return true;
            }
        };
        if let Request::Auth(auth) = &req {
            return self.on_auth(id, header, auth.clone());
        }
        if let Request::Sasl(s) = &req
            && self.shared.sasl.get().is_some()
        {
            return self.on_sasl(id, header, &s.token);
        }
        let ctx = Ctx {
            conn: id,
            session_id,
            xid: header.xid,
            auth: c.auth.clone(),
            received,
        };
        *c.stats.last_op.lock().unwrap_or_else(|e| e.into_inner()) = op_short_name(&req);
        // A learner's `sync` goes through the leader (quorum.md §3.8): only
        // the sequencer forwards it; a read-only server's answers NOTREADONLY.
        let forwarded = matches!(req, Request::Sync(_))
            && matches!(
                shared.control.mode(),
                Mode::Follower | Mode::Observer | Mode::ReadOnly
            );
        if c.outstanding == 0 && is_local(&req) && !forwarded {
            batch.served_here += 1;
            return self.serve_here(id, &ctx, req);
        }
        c.begin_request(&shared.control);
        self.to_core.push(CoreMsg::Request { ctx, req });
        true
    }

    /// Keeps the connection's session alive (`now`: `Shared::now_ms`); an
    /// expired session's request is answered SESSIONEXPIRED and the
    /// connection closed (false). Touched once per ms: a session touched at
    /// `now` cannot have expired by `now`.
    fn touch_session(&mut self, id: u64, xid: i32, now: u64) -> bool {
        let shared = self.shared.clone();
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        if c.session_touched_ms == Some(now) {
            return true;
        }
        let mut st = shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if st.touch(c.session_id, now) {
            c.session_touched_ms = Some(now);
            return true;
        }
        drop(st);
        let frame = error_frame(xid, shared.last_zxid(), ErrorCode::SessionExpired);
        c.queue(frame);
        c.close_after_flush = true;
        let _ = c.flush();
        self.after_write(id);
        false
    }

    /// A read with nothing of this session in flight: served here. The
    /// mailbox is drained under the tree's read lock first, so a watch event
    /// for a change this read sees is queued before the reply.
    fn serve_here(&mut self, id: u64, ctx: &Ctx, req: Request) -> bool {
        let shared = self.shared.clone();
        let frame = {
            let _gate = shared.read_gate();
            self.drain_mailbox();
            serve_read(&shared, ctx, req)
        };
        self.send_frame(id, frame);
        self.conns.contains_key(&id)
    }

    /// Sends a request that could not become a [`Request`] to the core, which
    /// answers it in the session's request order.
    fn reject(&mut self, id: u64, xid: i32, received: Instant, reject: Reject) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let ctx = Ctx {
            conn: id,
            session_id: c.session_id,
            xid,
            auth: c.auth.clone(),
            received,
        };
        c.begin_request(&self.shared.control);
        self.to_core.push(CoreMsg::Rejected { ctx, reject });
    }

    fn on_auth(&mut self, id: u64, header: RequestHeader, auth: zk_jute::AuthPacket) -> bool {
        let shared = self.shared.clone();
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        match authenticate(&shared, &auth) {
            Some(new_ids) => {
                c.add_auth(new_ids);
                // Apache answers with the request's xid (clients send -4).
                let frame = error_frame(header.xid, 0, ErrorCode::Ok);
                self.send_frame(id, frame);
                true
            }
            None => {
                // Not counted in auth_failed_count: Apache counts only TLS
                // handshake failures there.
                warn!(
                    "Authentication failed for scheme {} from /{}",
                    auth.scheme, c.peer
                );
                self.close_after(id, error_frame(header.xid, 0, ErrorCode::AuthFailed));
                false
            }
        }
    }

    /// A SASL token (`ZooKeeperServer.processSasl`): the exchange's next
    /// token with zxid 0; once complete the connection gains `sasl:<user>`
    /// (and `super:` for `superUser`); a failed exchange is answered
    /// AUTHFAILED and the connection closed.
    fn on_sasl(&mut self, id: u64, header: RequestHeader, token: &[u8]) -> bool {
        use crate::sasl::Step;
        let shared = self.shared.clone();
        let Some(users) = shared.sasl.get() else {
            return true;
        };
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let step = c.sasl.get_or_insert_with(Box::default).step(users, token);
        let token = match step {
            Ok(Step::Continue(t)) => t,
            Ok(Step::Done { token, user }) => {
                info!(
                    "Session 0x{:x}: adding SASL authorization for authorizationID: {user}",
                    c.session_id
                );
                let mut ids = Vec::with_capacity(2);
                if shared.config.super_user.as_deref() == Some(user.as_str()) {
                    ids.push(zk_jute::Id {
                        scheme: "super".into(),
                        id: String::new(),
                    });
                }
                ids.push(zk_jute::Id {
                    scheme: "sasl".into(),
                    id: user,
                });
                c.add_auth(ids);
                token
            }
            Err(why) => {
                warn!("Client /{} failed to SASL authenticate: {why}", c.peer);
                let required = shared.config.enforce_auth.iter().any(|s| s == "sasl");
                if shared.config.allow_sasl_failed_clients && !required {
                    warn!("Maintaining client connection despite SASL authentication failure.");
                    let frame = crate::frames::sasl_error_frame(header.xid, ErrorCode::Ok);
                    self.send_frame(id, frame);
                    return true;
                }
                let err = if required {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                self.close_after(id, crate::frames::sasl_error_frame(header.xid, err));
                return false;
            }
        };
        let resp = zk_jute::Response::Sasl(zk_jute::SetSaslResponse {
            token: token.into(),
        });
        self.send_frame(id, crate::frames::response_frame(header.xid, 0, &resp));
        true
    }

    /// `AuthenticationHelper.enforceAuthentication`: with enforced schemes,
    /// a request other than auth or sasl from a connection with no id of
    /// them is answered SESSIONCLOSEDREQUIRESASLAUTH and the connection
    /// closed (true).
    fn refuses_unauthenticated(&mut self, id: u64, header: &RequestHeader) -> bool {
        if self.shared.config.enforce_auth.is_empty() {
            return false;
        }
        let shared = self.shared.clone();
        let enforced = &shared.config.enforce_auth;
        let Some(c) = self.conns.get(&id) else {
            return false;
        };
        if header.op_type == OpCode::Auth as i32
            || header.op_type == OpCode::Sasl as i32
            || c.auth.iter().any(|i| enforced.contains(&i.scheme))
        {
            return false;
        }
        let schemes: Vec<&str> = c.auth.iter().map(|i| i.scheme.as_str()).collect();
        warn!(
            "Client authentication scheme(s) {schemes:?} does not match with any of the expected authentication scheme {enforced:?}, closing session."
        );
        let frame = error_frame(header.xid, 0, ErrorCode::SessionClosedRequireSaslAuth);
        self.close_after(id, frame);
        true
    }

    /// Sends `frame` and closes the connection once it is written.
    fn close_after(&mut self, id: u64, frame: Bytes) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.queue(frame);
        c.close_after_flush = true;
        let _ = c.flush();
        self.after_write(id);
    }

    /// Queues a frame; it is written at the end of the loop iteration,
    /// together with everything else queued for the connection meanwhile.
    fn send_frame(&mut self, id: u64, frame: Bytes) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.stats.sent.fetch_add(1, Relaxed);
        self.sent.add(frame.len().saturating_sub(4));
        c.queue(frame);
        // A reader that does not read its replies cannot grow our memory without
        // bound: past twice the limit (events keep coming even when we stop
        // reading its requests) the connection is closed.
        if c.out_bytes > 2 * self.shared.config.max_output_queue_bytes {
            let _ = c.flush();
            if c.out_bytes > 2 * self.shared.config.max_output_queue_bytes {
                let (queued, limit) = (c.out_bytes, self.shared.config.max_output_queue_bytes);
                let detail = format_args!(
                    "{queued} bytes of output queued (limit zkrs.maxOutputQueueBytes {limit})"
                );
                self.close_warn(id, "output queue limit", detail);
                return;
            }
        }
        if !c.flush_pending {
            c.flush_pending = true;
            self.dirty.push(id);
        }
    }

    /// Writes the output queued during this iteration, one `writev` per
    /// connection.
    fn flush_dirty(&mut self) {
        while !self.dirty.is_empty() {
            // Counted before the replies are written: a client that read one
            // sees it counted.
            self.shared
                .stats
                .responses_sent(&std::mem::take(&mut self.sent));
            let ids = std::mem::take(&mut self.dirty);
            for id in &ids {
                let Some(c) = self.conns.get_mut(id) else {
                    continue;
                };
                c.flush_pending = false;
                if let Err(e) = c.flush() {
                    debug!(error = %e, "write failed");
                    self.close(*id, "write failed");
                    continue;
                }
                self.after_write(*id);
            }
            // (after_write may re-drive a paused connection, queueing more.)
            if self.dirty.is_empty() {
                self.dirty = ids;
                self.dirty.clear();
            }
        }
        if !self.traced.is_empty() {
            let now = Instant::now();
            for (received, handed) in self.traced.drain(..) {
                crate::stages::record(crate::stages::Stage::CoreToSocket, handed, now);
                crate::stages::record(crate::stages::Stage::Total, received, now);
            }
        }
    }

    /// Handles every queued message. The wake-up flag stays set meanwhile (it
    /// is cleared only before the loop sleeps), so a core sending replies while
    /// this loop is busy does not write the eventfd for each one.
    fn drain_mailbox(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.on_msg(m);
        }
    }

    fn on_msg(&mut self, m: LoopMsg) {
        match m {
            LoopMsg::NewConn(stream, peer, secure) => {
                if self.shutting_down {
                    self.release_ip(peer);
                } else {
                    self.register(stream, peer, secure);
                }
            }
            LoopMsg::Connected {
                conn,
                frame,
                session_id,
                timeout,
                close,
            } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if close {
                    c.close_after_flush = true;
                } else {
                    c.state = State::Connected;
                    c.session_id = session_id;
                    c.stats.session_id.store(session_id, Relaxed);
                    c.stats.timeout.store(i64::from(timeout), Relaxed);
                    c.stats.established.store(crate::stats::wall_ms(), Relaxed);
                    self.paused.insert(conn);
                }
                self.send_frame(conn, frame);
            }
            LoopMsg::Out {
                conn,
                frame,
                close,
                trace,
            } => {
                if let Some(t) = trace {
                    self.traced.push(t);
                }
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                c.end_request(&self.shared.control);
                if close {
                    c.close_after_flush = true;
                }
                self.send_frame(conn, frame);
            }
            LoopMsg::Event { conn, frame, acl } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                if !self.shared.config.skip_acl {
                    let auth = zk_tree::Auth::new(&c.auth);
                    if zk_tree::check_acl(&acl, zk_jute::perms::READ, &auth).is_err() {
                        debug!(
                            "not delivering a watch event to /{}: no READ on the node",
                            c.peer
                        );
                        return;
                    }
                }
                self.send_frame(conn, frame);
            }
            LoopMsg::Close { conn } => self.close(conn, "session closed or moved"),
            LoopMsg::CloseClients => {
                let clients: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.state != State::Handshake)
                    .map(|(id, _)| *id)
                    .collect();
                for id in clients {
                    self.close(id, "the server is not serving any more");
                }
            }
            LoopMsg::Shutdown => {
                self.shutting_down = true;
                self.listener = None;
            }
        }
    }
}

/// The order in which paused connections (requests in flight, id) are
/// re-driven: fewest in flight first, ties in an order that changes with
/// `round` (no connection always first among equals).
fn fewest_in_flight_first(paused: impl Iterator<Item = (u32, u64)>, round: u64) -> Vec<u64> {
    let salt = round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut v: Vec<(u32, u64)> = paused.map(|(n, id)| (n, id ^ salt)).collect();
    v.sort_unstable();
    v.into_iter().map(|(_, salted)| salted ^ salt).collect()
}

/// TCP keep-alive on a client connection (clientTcpKeepAlive).
fn set_keep_alive(stream: &mio::net::TcpStream) -> io::Result<()> {
    socket2::SockRef::from(stream).set_keepalive(true)
}

#[cfg(test)]
mod tests {
    use super::fewest_in_flight_first;

    /// Pins the fairness of the outstanding limit's resumption: held-back
    /// connections are re-read fewest requests in flight first (the set's
    /// own order favoured the same connections every time), and equals take
    /// turns at the front.
    #[test]
    fn paused_connections_resume_fewest_in_flight_first() {
        let paused = [(32, 7), (1, 3), (5, 9), (1, 12), (0, 40)];
        let mut firsts = std::collections::HashSet::new();
        for round in 0..64 {
            let order = fewest_in_flight_first(paused.iter().copied(), round);
            assert_eq!(order.len(), 5);
            assert_eq!(order[0], 40, "{order:?}");
            let mut ones = order[1..3].to_vec();
            ones.sort();
            assert_eq!(ones, [3, 12], "{order:?}");
            assert_eq!(&order[3..], [9, 7], "{order:?}");
            firsts.insert(order[1]);
        }
        assert_eq!(firsts.len(), 2, "ties rotate");
    }
}
