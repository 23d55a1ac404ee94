//! The load driver: N sessions, each with up to M requests in flight, spread
//! over T mio event-loop threads.
//!
//! Each session keeps its pipeline full: as soon as a reply arrives another
//! request is queued, so the load is closed-loop with N × M outstanding
//! requests. Replies come back in request order per session (a ZooKeeper
//! guarantee), so matching is a FIFO pop checked against the xid; a mismatch is
//! a protocol error that fails the session. Latency is measured from the moment
//! the request is queued for the socket to the moment its reply is read (one
//! clock read per batch of writes and per batch of reads).
//!
//! Warm-up and measurement: every completion is counted for progress, but only
//! completions inside the measured window (after the warm-up, and before the
//! deadline when a duration is given) go into the histograms and throughput.

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use zk_jute::{ErrorCode, FrameDecoder, OpCode, xid};

use crate::hist::Histogram;
use crate::wire::{self, Kind};

/// Per-session state a [`Source`] may use.
#[derive(Debug)]
pub struct SessionCtx {
    /// Session number, 0-based.
    pub id: usize,
    /// The session's own random stream.
    pub rng: Rng,
    /// Ops this session has issued.
    pub seq: u64,
}

/// Where ops come from. Shared by every thread.
pub trait Source: Sync {
    /// Writes the next op's path into `path` (cleared by the caller) and
    /// returns its kind, or `None` when this session has nothing more to send.
    fn next(&self, ctx: &mut SessionCtx, path: &mut String) -> Option<Kind>;
    /// The data for create and setData.
    fn payload(&self) -> &[u8];
}

/// A small, fast PRNG (xorshift64*), seeded per session.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from any seed (0 is remapped).
    pub fn new(seed: u64) -> Self {
        // splitmix64 scramble so nearby seeds give unrelated streams
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How to drive a load.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Server address.
    pub addr: SocketAddr,
    /// Sessions.
    pub sessions: usize,
    /// Requests in flight per session.
    pub in_flight: usize,
    /// Event-loop threads (capped at `sessions`).
    pub threads: usize,
    /// Requested session timeout, ms.
    pub session_timeout_ms: i32,
    /// Unmeasured time at the start.
    pub warmup: Duration,
    /// Stop issuing after warm-up + this (None: until the source runs dry).
    pub duration: Option<Duration>,
    /// A progress line on stderr once per second, with this label (None: quiet).
    pub progress: Option<String>,
    /// Seed for the sessions' random streams.
    pub seed: u64,
}

/// What a load did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of successful reads in the window (ns).
    pub reads: Histogram,
    /// Latency of successful writes in the window (ns); creates that found the
    /// znode already there count here too.
    pub writes: Histogram,
    /// Creates answered NODEEXISTS (all, window or not).
    pub existed: u64,
    /// Deletes answered NONODE (all, window or not): the znode was not there,
    /// which is no error for a clean-up. Counted as done, like `existed`.
    pub missing: u64,
    /// Other error replies by code (all, window or not).
    pub errors: BTreeMap<i32, u64>,
    /// Every completed request, warm-up included.
    pub completed: u64,
    /// Length of the measured window, seconds.
    pub measured_secs: f64,
    /// From the start of the load to the last completion.
    pub elapsed: Duration,
    /// Sessions that failed (connection lost, protocol error, stall).
    pub failures: Vec<String>,
    /// `(session id, ops issued)` for every session that connected, sorted by
    /// id: the final [`SessionCtx::seq`], so a create run's paths can be
    /// enumerated afterwards (replies to all of them had arrived, or the
    /// session failed, when [`drive`] returned).
    pub issued: Vec<(usize, u64)>,
}

impl Outcome {
    /// Error replies, all codes.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Describes the error codes, e.g. `NONODE x3`.
    pub fn error_summary(&self) -> String {
        self.errors
            .iter()
            .map(|(c, n)| format!("{} x{n}", code_name(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn merge(&mut self, o: Outcome) {
        self.reads.merge(&o.reads);
        self.writes.merge(&o.writes);
        self.existed += o.existed;
        self.missing += o.missing;
        for (c, n) in o.errors {
            *self.errors.entry(c).or_default() += n;
        }
        self.completed += o.completed;
        self.failures.extend(o.failures);
        self.issued.extend(o.issued);
    }
}

/// ZooKeeper's name for an error code.
pub fn code_name(code: i32) -> String {
    ErrorCode::try_from(code)
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|_| code.to_string())
}

/// No completion anywhere for this long aborts the load.
const STALL: Duration = Duration::from_secs(30);
/// How long the closeSession replies may take at the end.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

struct Shared<'a> {
    source: &'a dyn Source,
    plan: &'a Plan,
    acl: Bytes,
    start: OnceLock<Instant>,
    completed: AtomicU64,
    errors: AtomicU64,
    abort: AtomicBool,
    running: AtomicUsize,
}

impl Shared<'_> {
    fn start(&self) -> Instant {
        *self.start.get_or_init(Instant::now)
    }
}

#[derive(Debug, PartialEq)]
enum State {
    /// Issuing ops.
    Active,
    /// closeSession sent with this xid.
    Closing(i32),
    /// Done (closed, or failed).
    Closed,
}

struct Pending {
    xid: i32,
    kind: Kind,
    sent: Instant,
}

struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    inflight: VecDeque<Pending>,
    next_xid: i32,
    ctx: SessionCtx,
    state: State,
    last_send: Instant,
    exhausted: bool,
}

struct Worker<'s, 'a> {
    shared: &'s Shared<'a>,
    out: Outcome,
    measure_from: Instant,
    measure_until: Option<Instant>,
    stop_issuing: Option<Instant>,
    last_completion: Option<Instant>,
    path: String,
    decoder: FrameDecoder,
}

impl Worker<'_, '_> {
    /// Queues requests until the pipeline is full or the source is dry.
    fn fill(&mut self, c: &mut Conn, now: Instant) {
        if c.state != State::Active {
            return;
        }
        let plan = self.shared.plan;
        let stop = self.stop_issuing.is_some_and(|t| now >= t)
            || self.shared.abort.load(Ordering::Relaxed);
        while !c.exhausted && c.inflight.len() < plan.in_flight {
            self.path.clear();
            let kind = if stop {
                None
            } else {
                self.shared.source.next(&mut c.ctx, &mut self.path)
            };
            let Some(kind) = kind else {
                c.exhausted = true;
                break;
            };
            c.ctx.seq += 1;
            let xid = c.next_xid;
            c.next_xid = c.next_xid.wrapping_add(1).max(1);
            wire::encode_op(
                &mut c.wbuf,
                xid,
                kind,
                &self.path,
                self.shared.source.payload(),
                &self.shared.acl,
            );
            c.inflight.push_back(Pending {
                xid,
                kind,
                sent: now,
            });
            c.last_send = now;
        }
        if stop {
            c.exhausted = true;
        }
        if c.exhausted && c.inflight.is_empty() {
            let xid = c.next_xid;
            wire::encode_bare(&mut c.wbuf, xid, OpCode::CloseSession);
            c.state = State::Closing(xid);
        } else if c.inflight.is_empty()
            && now.duration_since(c.last_send)
                > Duration::from_millis(plan.session_timeout_ms.max(3000) as u64 / 3)
        {
            wire::encode_bare(&mut c.wbuf, xid::PING, OpCode::Ping);
            c.last_send = now;
        }
    }

    fn fail(&mut self, c: &mut Conn, why: String) {
        if c.state != State::Closed {
            self.out.failures.push(format!(
                "session {}: {why} ({} requests in flight)",
                c.ctx.id,
                c.inflight.len()
            ));
            c.state = State::Closed;
        }
    }

    /// Writes as much of the output buffer as the socket takes.
    fn flush(&mut self, c: &mut Conn) {
        while !c.wbuf.is_empty() && c.state != State::Closed {
            match c.stream.write(&c.wbuf) {
                Ok(0) => return self.fail(c, "connection closed while writing".into()),
                Ok(n) => c.wbuf.advance(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(c, format!("write failed: {e}")),
            }
        }
    }

    /// Reads everything available and completes the replies in it.
    fn read(&mut self, c: &mut Conn, scratch: &mut [u8]) {
        let mut closed: Option<String> = None;
        loop {
            match c.stream.read(scratch) {
                Ok(0) => {
                    closed = Some("connection closed by the server".into());
                    break;
                }
                Ok(n) => c.rbuf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    closed = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        let now = Instant::now();
        let mut done = 0u64;
        let mut errs = 0u64;
        loop {
            let frame = match self.decoder.decode(&mut c.rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    self.fail(c, format!("bad frame: {e}"));
                    break;
                }
            };
            let Some(h) = wire::reply_header(&frame) else {
                self.fail(c, "reply shorter than its header".into());
                break;
            };
            if h.xid == xid::NOTIFICATION || h.xid == xid::PING {
                continue;
            }
            if let State::Closing(x) = c.state
                && h.xid == x
            {
                c.state = State::Closed;
                break;
            }
            let Some(p) = c.inflight.pop_front() else {
                self.fail(c, format!("reply xid {} with nothing in flight", h.xid));
                break;
            };
            if p.xid != h.xid {
                self.fail(c, format!("reply xid {} but expected {}", h.xid, p.xid));
                break;
            }
            done += 1;
            let ok = match h.err {
                0 => true,
                e if e == ErrorCode::NodeExists.code() && p.kind == Kind::Create => {
                    self.out.existed += 1;
                    true
                }
                e if e == ErrorCode::NoNode.code() && p.kind == Kind::Delete => {
                    self.out.missing += 1;
                    true
                }
                e => {
                    *self.out.errors.entry(e).or_default() += 1;
                    errs += 1;
                    false
                }
            };
            if ok && now >= self.measure_from && self.measure_until.is_none_or(|u| now <= u) {
                let ns = now.duration_since(p.sent).as_nanos() as u64;
                if p.kind.is_read() {
                    self.out.reads.record(ns);
                } else {
                    self.out.writes.record(ns);
                }
            }
        }
        if let Some(why) = closed {
            if matches!(c.state, State::Closing(_)) {
                c.state = State::Closed; // the server may close right after closeSession
            } else {
                self.fail(c, why);
            }
        }
        if done > 0 {
            self.out.completed += done;
            self.last_completion = Some(now);
            self.shared.completed.fetch_add(done, Ordering::Relaxed);
            if errs > 0 {
                self.shared.errors.fetch_add(errs, Ordering::Relaxed);
            }
        }
    }
}

/// Opens `n` sessions (blocking handshakes), then hands them to mio.
fn connect(plan: &Plan, ids: &[usize]) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(ids.len());
    for &id in ids {
        let (s, _sid) =
            wire::open_session(plan.addr, plan.session_timeout_ms, Duration::from_secs(10))
                .map_err(|e| {
                    format!("session {id}: cannot open a session on {}: {e}", plan.addr)
                })?;
        s.set_nonblocking(true)
            .map_err(|e| format!("set_nonblocking: {e}"))?;
        let now = Instant::now();
        conns.push(Conn {
            stream: TcpStream::from_std(s),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(64 * 1024),
            inflight: VecDeque::with_capacity(plan.in_flight),
            next_xid: 1,
            ctx: SessionCtx {
                id,
                rng: Rng::new(plan.seed ^ (id as u64).wrapping_mul(0x9e37_79b9)),
                seq: 0,
            },
            state: State::Active,
            last_send: now,
            exhausted: false,
        });
    }
    Ok(conns)
}

fn worker(shared: &Shared<'_>, ids: &[usize], barrier: &Barrier) -> Result<Outcome, String> {
    let conns = connect(shared.plan, ids);
    barrier.wait(); // everyone connected (or failed): start together
    let mut conns = conns?;
    let plan = shared.plan;
    let start = shared.start();
    let measure_from = start + plan.warmup;
    let measure_until = plan.duration.map(|d| measure_from + d);
    let mut w = Worker {
        shared,
        out: Outcome::default(),
        measure_from,
        measure_until,
        stop_issuing: measure_until,
        last_completion: None,
        path: String::with_capacity(128),
        decoder: FrameDecoder::default(),
    };
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    for (i, c) in conns.iter_mut().enumerate() {
        poll.registry()
            .register(
                &mut c.stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
    }
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let now = Instant::now();
    for c in conns.iter_mut() {
        w.fill(c, now);
        w.flush(c);
    }
    let mut closing_since: Option<Instant> = None;
    let mut last_sweep = Instant::now();
    while conns.iter().any(|c| c.state != State::Closed) {
        if shared.abort.load(Ordering::Relaxed) {
            for c in conns.iter_mut() {
                w.fail(c, "aborted".into());
            }
            break;
        }
        // The grace period covers only the closeSession replies: requests still in flight
        // are waited for as long as replies keep coming (the monitor aborts a stall).
        if closing_since.is_none() && conns.iter().all(|c| c.state != State::Active) {
            closing_since = Some(Instant::now());
        }
        if closing_since.is_some_and(|t| t.elapsed() > CLOSE_GRACE) {
            for c in conns.iter_mut() {
                if !c.inflight.is_empty() {
                    w.fail(c, "no reply before the end of the run".into());
                }
                c.state = State::Closed; // an unanswered closeSession is no failure
            }
            break;
        }
        let timeout = match w.stop_issuing {
            Some(t) => t
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), Duration::from_millis(100)),
            None => Duration::from_millis(100),
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            // Not an early return: what the sessions issued is still reported.
            for c in conns.iter_mut() {
                w.fail(c, format!("poll: {e}"));
            }
            break;
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.state == State::Closed {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                w.read(c, &mut scratch);
            }
            let now = Instant::now();
            w.fill(c, now);
            w.flush(c);
        }
        // Deadlines and pings do not come with socket events.
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(100)
            || w.stop_issuing.is_some_and(|t| now >= t)
        {
            last_sweep = now;
            for c in conns.iter_mut() {
                w.fill(c, now);
                w.flush(c);
            }
        }
    }
    w.out.elapsed = w
        .last_completion
        .map_or(Duration::ZERO, |t| t.duration_since(start));
    w.out.issued = conns.iter().map(|c| (c.ctx.id, c.ctx.seq)).collect();
    Ok(w.out)
}

/// Runs a load to completion and merges every thread's results.
pub fn drive(plan: &Plan, source: &dyn Source) -> Outcome {
    let threads = plan.threads.clamp(1, plan.sessions.max(1));
    let shared = Shared {
        source,
        plan,
        acl: wire::open_acl(),
        start: OnceLock::new(),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        running: AtomicUsize::new(threads),
    };
    let barrier = Barrier::new(threads + 1);
    let mut total = Outcome::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ids: Vec<usize> = (t..plan.sessions).step_by(threads).collect();
                let (shared, barrier) = (&shared, &barrier);
                s.spawn(move || {
                    let r = worker(shared, &ids, barrier);
                    shared.running.fetch_sub(1, Ordering::Relaxed);
                    r
                })
            })
            .collect();
        barrier.wait();
        let start = shared.start();
        monitor(&shared, start);
        for h in handles {
            match h.join() {
                Ok(Ok(o)) => {
                    total.elapsed = total.elapsed.max(o.elapsed);
                    total.merge(o);
                }
                Ok(Err(e)) => total.failures.push(e),
                Err(_) => total.failures.push("a load thread panicked".into()),
            }
        }
        total.issued.sort_unstable();
        total.measured_secs = match plan.duration {
            Some(d) => d.as_secs_f64(),
            None => total.elapsed.saturating_sub(plan.warmup).as_secs_f64(),
        };
    });
    total
}

/// Prints progress once per second and aborts the load if it stalls.
fn monitor(shared: &Shared<'_>, start: Instant) {
    let (mut last_print, mut printed_count) = (start, 0u64);
    let (mut last_change, mut seen_count) = (start, 0u64);
    while shared.running.load(Ordering::Relaxed) > 0 {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        let count = shared.completed.load(Ordering::Relaxed);
        if count != seen_count {
            (last_change, seen_count) = (now, count);
        } else if now.duration_since(last_change) > STALL && !shared.abort.load(Ordering::Relaxed) {
            eprintln!("zk-bench: no reply for {} s, aborting", STALL.as_secs());
            shared.abort.store(true, Ordering::Relaxed);
        }
        if now.duration_since(last_print) >= Duration::from_secs(1) {
            if let Some(label) = &shared.plan.progress {
                let secs = now.duration_since(last_print).as_secs_f64();
                let rate = (count - printed_count) as f64 / secs;
                let t = now.duration_since(start).as_secs_f64();
                let phase = if t < shared.plan.warmup.as_secs_f64() {
                    " (warm-up)"
                } else {
                    ""
                };
                eprintln!(
                    "[{label}] {t:6.1} s {rate:>10.0} ops/s   total {count:>10}   errors {}{phase}",
                    shared.errors.load(Ordering::Relaxed)
                );
            }
            (last_print, printed_count) = (now, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::OpMix;
    use crate::workload::{Budget, CreateSource, Layout, MixSource};
    use std::net::TcpListener;
    use zk_jute::{ConnectResponse, Jute, ReplyHeader};

    /// A stand-in server: handshakes, then answers every request in order with
    /// a bare header: NODEEXISTS for every second create, NONODE for every
    /// third delete, `bad_xid` breaks the xid of the 10th reply of each connection.
    fn fake_server(bad_xid: bool) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for (n, s) in l.incoming().enumerate() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let _ = wire::read_frame(&mut s).unwrap();
                    let resp = ConnectResponse {
                        time_out: 30_000,
                        session_id: n as i64 + 1,
                        passwd: Bytes::from_static(&[7; 16]),
                        ..Default::default()
                    };
                    let mut out = BytesMut::new();
                    zk_jute::encode_frame(&mut out, |o| resp.write(o));
                    s.write_all(&out).unwrap();
                    let (mut creates, mut deletes, mut replies) = (0, 0, 0);
                    while let Ok(f) = wire::read_frame(&mut s) {
                        let xid = i32::from_be_bytes(f[0..4].try_into().unwrap());
                        let op = i32::from_be_bytes(f[4..8].try_into().unwrap());
                        let mut err = 0;
                        if op == OpCode::Create.code() {
                            creates += 1;
                            if creates % 2 == 0 {
                                err = ErrorCode::NodeExists.code();
                            }
                        }
                        if op == OpCode::Delete.code() {
                            deletes += 1;
                            if deletes % 3 == 0 {
                                err = ErrorCode::NoNode.code();
                            }
                        }
                        replies += 1;
                        let h = ReplyHeader {
                            xid: if bad_xid && replies == 10 {
                                xid + 1
                            } else {
                                xid
                            },
                            zxid: 1,
                            err,
                        };
                        let mut out = BytesMut::new();
                        zk_jute::encode_frame(&mut out, |o| h.write(o));
                        if s.write_all(&out).is_err() || op == OpCode::CloseSession.code() {
                            break;
                        }
                    }
                    let _ = s.read(&mut [0u8; 1]);
                });
            }
        });
        addr
    }

    fn plan(addr: SocketAddr) -> Plan {
        Plan {
            addr,
            sessions: 3,
            in_flight: 4,
            threads: 2,
            session_timeout_ms: 30_000,
            warmup: Duration::ZERO,
            duration: None,
            progress: None,
            seed: 5,
        }
    }

    #[test]
    fn drives_every_op_once_through_a_pipeline() {
        let addr = fake_server(false);
        let src = CreateSource::new(Layout::Keys("/t".into()), 1000, vec![1; 10]);
        let out = drive(&plan(addr), &src);
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.completed, 1000);
        assert_eq!(out.writes.count(), 1000); // NODEEXISTS counts as done for a create
        assert!((490..=510).contains(&out.existed), "{}", out.existed);
        assert_eq!(out.error_count(), 0);
        assert_eq!(out.reads.count(), 0);

        let src = MixSource {
            mix: OpMix::Mixed { read_ratio: 0.5 },
            keys: 10,
            prefix: "/t".into(),
            run_id: 1,
            data: vec![0; 3],
            budget: Budget::new(Some(600)),
        };
        let out = drive(&plan(addr), &src);
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.reads.count() + out.writes.count(), 600);
        assert!(out.reads.count() > 200 && out.writes.count() > 200);
        assert!(out.measured_secs > 0.0);
    }

    #[test]
    fn issued_counts_let_a_cleanup_delete_every_create() {
        use crate::workload::{Created, DeleteSource};
        let addr = fake_server(false);
        let src = MixSource {
            mix: OpMix::Create,
            keys: 1,
            prefix: "/t".into(),
            run_id: 0xbeef,
            data: vec![0; 3],
            budget: Budget::new(None),
        };
        let mut p = plan(addr);
        p.duration = Some(Duration::from_millis(200));
        let out = drive(&p, &src);
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        // Every session, sorted; the creates in flight at the deadline were answered too.
        let ids: Vec<usize> = out.issued.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
        let issued: u64 = out.issued.iter().map(|&(_, n)| n).sum();
        assert_eq!(issued, out.completed);
        assert!(issued > 0);

        let created = Created::new("/t", 0xbeef, &out.issued);
        assert_eq!(created.count(), issued);
        let cout = drive(&plan(addr), &DeleteSource::new(created));
        assert!(cout.failures.is_empty(), "{:?}", cout.failures);
        assert_eq!(cout.completed, issued);
        assert_eq!(cout.error_count(), 0, "NONODE is no error for a delete");
        assert!(
            cout.missing > 0 && cout.missing < issued,
            "{}",
            cout.missing
        );
        assert_eq!(cout.writes.count(), issued);
        assert_eq!(cout.existed, 0);
    }

    #[test]
    fn a_duration_stops_the_load() {
        let addr = fake_server(false);
        let src = MixSource {
            mix: OpMix::GetData,
            keys: 10,
            prefix: "/t".into(),
            run_id: 1,
            data: Vec::new(),
            budget: Budget::new(None),
        };
        let mut p = plan(addr);
        p.warmup = Duration::from_millis(100);
        p.duration = Some(Duration::from_millis(300));
        let t = Instant::now();
        let out = drive(&p, &src);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.measured_secs, 0.3);
        assert!(out.reads.count() > 0);
        assert!(
            out.completed > out.reads.count(),
            "warm-up ops are not measured"
        );
    }

    #[test]
    fn an_out_of_order_reply_fails_the_session() {
        let addr = fake_server(true);
        let src = CreateSource::new(Layout::Keys("/t".into()), 200, Vec::new());
        let mut p = plan(addr);
        (p.sessions, p.threads) = (1, 1);
        let out = drive(&p, &src);
        assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
        assert!(out.failures[0].contains("expected"), "{:?}", out.failures);
    }

    #[test]
    fn an_unreachable_server_is_a_failure_not_a_hang() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let src = CreateSource::new(Layout::Keys("/t".into()), 10, Vec::new());
        let out = drive(&plan(SocketAddr::from(([127, 0, 0, 1], port))), &src);
        assert_eq!(out.completed, 0);
        assert!(!out.failures.is_empty());
    }

    #[test]
    fn rng_is_uniform_enough() {
        let mut r = Rng::new(1);
        let mut buckets = [0u32; 10];
        for _ in 0..100_000 {
            buckets[r.below(10) as usize] += 1;
        }
        for b in buckets {
            assert!((9_000..11_000).contains(&b), "{buckets:?}");
        }
        let u: f64 = (0..10_000).map(|_| r.unit()).sum::<f64>() / 10_000.0;
        assert!((u - 0.5).abs() < 0.02);
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
