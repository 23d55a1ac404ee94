//! The load driver: N sessions, each with up to M requests in flight, spread
//! over T mio event-loop threads.
//!
//! Closed loop (the default): each session keeps its pipeline full: as soon as
//! a reply arrives another request is queued, so N × M requests are
//! outstanding. Replies come back in request order per session (a ZooKeeper
//! guarantee), so matching is a FIFO pop checked against the xid; a mismatch is
//! a protocol error that fails the session. Latency is measured from the moment
//! the request is queued for the socket to the moment its reply is read (one
//! clock read per batch of writes and per batch of reads).
//!
//! Fixed rate ([`Plan::rate`], open loop): op k of the run is due at
//! `start + k / R`, dealt round-robin to the sessions (see [`Schedule`]). A
//! session sends an op once it is due and it has a free in-flight slot; an op
//! that finds no free slot waits (it is never dropped) and goes out as soon as
//! a reply frees one. Latency is measured from the op's *scheduled* time, not
//! from when it was sent, so a server that stalls is charged for the queueing
//! it causes (no coordinated omission). Each event loop paces its own sessions
//! with a Linux `timerfd` (`CLOCK_MONOTONIC`, nanosecond precision) registered
//! in its `Poll`: it arms the timer for the next due op of a session with a free
//! slot, and when it fires sends every op due by then, touching only the
//! sessions that have one (plus those with socket events, and all of them every
//! 100 ms for pings and the deadline). No extra thread, no cross-thread wake-up
//! and no spinning: an op goes out microseconds after its due time when the
//! client thread gets a CPU, and pacing adds little to the cost of the send
//! itself. Without a timerfd (a warning on stderr) the poll timeout paces
//! instead, which epoll rounds up to whole milliseconds.
//!
//! Warm-up and measurement: every completion is counted for progress, but only
//! completions inside the measured window (after the warm-up, and before the
//! deadline when a duration is given) go into the histograms and throughput.

use std::cell::Cell;
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
    /// The next op is issued during the warm-up (it is not measured).
    pub warming: bool,
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
    /// More servers of the same ensemble: session `i` connects to the
    /// `i % (1 + len)`-th of `addr` and these (empty: all at `addr`).
    pub also: Vec<SocketAddr>,
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
    /// Fixed-rate (open-loop) load: this many ops per second in total across
    /// all sessions, latency measured from each op's scheduled time (None:
    /// closed loop, every session keeps `in_flight` requests outstanding).
    pub rate: Option<f64>,
}

/// The fixed-rate schedule: op `k` of the run (all sessions together,
/// 0-based) is due at `start + k / rate`; the ops are dealt round-robin, so
/// session `s` of `N` issues ops `k = s, s + N, s + 2N, ...` (`rate / N` per
/// second each) and its own op number `j` is due at `start + (s + j·N) / rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Ops per second, all sessions together (> 0).
    pub rate: f64,
    /// Number of sessions the ops are dealt to (> 0).
    pub sessions: usize,
}

impl Schedule {
    /// The run-wide number of session `session`'s op number `j`.
    pub fn op_index(&self, session: usize, j: u64) -> u64 {
        session as u64 + j * self.sessions as u64
    }

    /// When op `k` of the run is due, from the start of the load.
    pub fn offset(&self, k: u64) -> Duration {
        Duration::try_from_secs_f64(k as f64 / self.rate).unwrap_or(Duration::MAX)
    }

    /// When session `session`'s op number `j` is due.
    pub fn due(&self, start: Instant, session: usize, j: u64) -> Instant {
        start
            .checked_add(self.offset(self.op_index(session, j)))
            .unwrap_or_else(|| start + Duration::from_secs(365 * 86_400))
    }

    /// The first op of the run due strictly after `elapsed` since the start.
    pub fn first_after(&self, elapsed: Duration) -> u64 {
        let mut k = (elapsed.as_secs_f64() * self.rate).floor() as u64;
        // Rounding may put the estimate one off either way.
        while k > 0 && self.offset(k - 1) > elapsed {
            k -= 1;
        }
        while self.offset(k) <= elapsed {
            k += 1;
        }
        k
    }
}

/// Whether an achieved throughput falls more than 5 % short of the offered rate.
pub fn rate_shortfall(offered: f64, achieved: f64) -> bool {
    achieved < offered * 0.95
}

/// Nanoseconds from `from` (when the op was queued, or in a fixed-rate load
/// when it was scheduled) to `done` (when its reply was read).
pub fn latency_ns(from: Instant, done: Instant) -> u64 {
    u64::try_from(done.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

/// What a load did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of successful reads in the window (ns).
    pub reads: Histogram,
    /// Latency of successful writes in the window (ns); creates that found the
    /// znode already there count here too.
    pub writes: Histogram,
    /// Fixed-rate loads: how late each measured op went out after its
    /// scheduled time (ns): the client's timer lag, plus waiting for a free
    /// in-flight slot. Empty in a closed-loop load.
    pub send_lag: Histogram,
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
        self.send_lag.merge(&o.send_lag);
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
    /// Pace a fixed-rate load with a timerfd (false: with the poll timeout; tests).
    use_timerfd: bool,
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
    /// Where the latency clock starts: when the op was queued (closed loop),
    /// or when it was scheduled (fixed rate).
    from: Instant,
    /// When it was queued for the socket.
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
    /// Fixed rate: `(seq, due time of op number seq)`, a memo of [`Worker::due`]
    /// (the pacer asks for it several times per loop turn).
    due: Cell<Option<(u64, Instant)>>,
}

struct Worker<'s, 'a> {
    shared: &'s Shared<'a>,
    out: Outcome,
    start: Instant,
    schedule: Option<Schedule>,
    measure_from: Instant,
    measure_until: Option<Instant>,
    stop_issuing: Option<Instant>,
    last_completion: Option<Instant>,
    path: String,
    decoder: FrameDecoder,
}

impl Worker<'_, '_> {
    /// When session `c`'s next op is due (fixed rate only).
    fn due(&self, c: &Conn) -> Option<Instant> {
        let s = self.schedule?;
        let seq = c.ctx.seq;
        match c.due.get() {
            Some((n, t)) if n == seq => Some(t),
            _ => {
                let t = s.due(self.start, c.ctx.id, seq);
                c.due.set(Some((seq, t)));
                Some(t)
            }
        }
    }

    /// The earliest time a session can send its next op (fixed rate only):
    /// sessions without a free slot wait for a reply, not for the clock.
    fn next_due(&self, conns: &[Conn]) -> Option<Instant> {
        conns.iter().filter_map(|c| self.sendable_at(c)).min()
    }

    /// When session `c` can send its next op (fixed rate only): its due time,
    /// if it is active, not out of ops and has a free in-flight slot.
    fn sendable_at(&self, c: &Conn) -> Option<Instant> {
        let free = c.state == State::Active
            && !c.exhausted
            && c.inflight.len() < self.shared.plan.in_flight;
        if free { self.due(c) } else { None }
    }

    /// Queues requests until the pipeline is full or the source is dry (in a
    /// fixed-rate load: every op that is due, as far as the pipeline takes them).
    fn fill(&mut self, c: &mut Conn, now: Instant) {
        if c.state != State::Active {
            return;
        }
        let plan = self.shared.plan;
        let stop = self.stop_issuing.is_some_and(|t| now >= t)
            || self.shared.abort.load(Ordering::Relaxed);
        while !c.exhausted && c.inflight.len() < plan.in_flight {
            self.path.clear();
            let from = match self.due(c) {
                Some(due) if due > now && !stop => break,
                Some(due) => due,
                None => now,
            };
            let kind = if stop {
                None
            } else {
                c.ctx.warming = now < self.measure_from;
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
                from,
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
                let ns = latency_ns(p.from, now);
                if p.kind.is_read() {
                    self.out.reads.record(ns);
                } else {
                    self.out.writes.record(ns);
                }
                if self.schedule.is_some() {
                    self.out.send_lag.record(latency_ns(p.from, p.sent));
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
        let addr = match id % (1 + plan.also.len()) {
            0 => plan.addr,
            k => plan.also[k - 1],
        };
        let opts = zk_client::ConnectOptions {
            timeout_ms: plan.session_timeout_ms,
            io_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let (s, _) = zk_client::open_session(addr, &opts)
            .map_err(|e| format!("session {id}: cannot open a session on {addr}: {e}"))?;
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
                warming: false,
            },
            state: State::Active,
            last_send: now,
            exhausted: false,
            due: Cell::new(None),
        });
    }
    Ok(conns)
}

/// The token of the fixed-rate pacer's timerfd (sessions use their index).
const TIMER: Token = Token(usize::MAX);

/// The pacer of a fixed-rate event loop: a timerfd in the loop's own `Poll`,
/// armed for the next due op of a session with a free slot. Ops go out within
/// the kernel's wake-up latency of their due time (microseconds), with no extra
/// thread and no cross-thread wake-up.
struct Pacer {
    timer: timer::TimerFd,
    /// The due time the timer is armed for (None: disarmed or fired).
    armed: Option<Instant>,
}

impl Pacer {
    /// A timerfd registered in `poll`, or why not.
    fn new(poll: &Poll) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        let timer = timer::TimerFd::new()?;
        poll.registry().register(
            &mut mio::unix::SourceFd(&timer.as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        Ok(Self { timer, armed: None })
    }

    /// Makes the timer fire at `due` (None: leave it be; a stale expiry costs
    /// one empty loop turn). Re-arms only when the time changes.
    fn arm(&mut self, due: Option<Instant>, now: Instant) -> std::io::Result<()> {
        match due {
            Some(t) if self.armed != Some(t) => {
                self.timer.arm_in(t.saturating_duration_since(now))?;
                self.armed = Some(t);
            }
            _ => {}
        }
        Ok(())
    }

    /// After the timer's event: consume the expiry.
    fn fired(&mut self) -> std::io::Result<()> {
        self.armed = None;
        self.timer.clear().map(|_| ())
    }
}

/// Says once per process that fixed-rate pacing falls back to poll timeouts.
fn warn_no_timerfd(e: &std::io::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "zk-bench: no timerfd ({e}); fixed-rate ops are paced by the poll timeout \
             (whole milliseconds), so expect send lag up to ~1 ms"
        );
    }
}

fn worker(shared: &Shared<'_>, ids: &[usize], barrier: &Barrier) -> Result<Outcome, String> {
    let conns = connect(shared.plan, ids);
    barrier.wait(); // everyone connected (or failed): start together
    let mut conns = conns?;
    let plan = shared.plan;
    let start = shared.start();
    let measure_from = start + plan.warmup;
    let measure_until = plan.duration.map(|d| measure_from + d);
    let schedule = plan.rate.map(|rate| Schedule {
        rate,
        sessions: plan.sessions,
    });
    let mut w = Worker {
        shared,
        out: Outcome::default(),
        start,
        schedule,
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
    let pacer = match schedule {
        Some(_) if shared.use_timerfd => Pacer::new(&poll).map_err(|e| warn_no_timerfd(&e)).ok(),
        _ => None,
    };
    event_loop(&mut w, &mut conns, &mut poll, pacer);
    w.out.elapsed = w
        .last_completion
        .map_or(Duration::ZERO, |t| t.duration_since(start));
    w.out.issued = conns.iter().map(|c| (c.ctx.id, c.ctx.seq)).collect();
    Ok(w.out)
}

/// Drives `conns` until every session is closed (or failed). A fixed-rate
/// load is paced by `pacer` if there is one, else by the poll timeout.
fn event_loop(
    w: &mut Worker<'_, '_>,
    conns: &mut [Conn],
    poll: &mut Poll,
    mut pacer: Option<Pacer>,
) {
    let shared = w.shared;
    let paced = w.schedule.is_some();
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
        // Sleep until a socket is ready, the deadline, or (fixed rate) the next due op of a
        // session with a free slot: the pacer's timerfd fires at that time to the
        // microsecond; without one, the poll timeout (rounded up to whole ms) waits for it.
        let now = Instant::now();
        let next_due = if paced { w.next_due(conns) } else { None };
        let mut wake_at = w.stop_issuing.filter(|&t| t > now);
        match (&mut pacer, next_due) {
            (_, Some(t)) if t <= now => wake_at = Some(now), // due already: do not sleep
            (Some(p), due) => {
                if let Err(e) = p.arm(due, now) {
                    warn_no_timerfd(&e);
                    pacer = None;
                    wake_at = wake_at.into_iter().chain(due).min();
                }
            }
            (None, due) => wake_at = wake_at.into_iter().chain(due).min(),
        }
        let timeout = match wake_at {
            Some(t) => t
                .saturating_duration_since(now)
                .min(Duration::from_millis(100)),
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
            if ev.token() == TIMER {
                // The due ops go out below.
                if let Some(p) = &mut pacer
                    && let Err(e) = p.fired()
                {
                    warn_no_timerfd(&e);
                    pacer = None;
                }
                continue;
            }
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
        // Deadlines, due ops and pings do not come with socket events: every session now and
        // then and after the deadline, and in a fixed-rate load the ones with an op due.
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(100)
            || w.stop_issuing.is_some_and(|t| now >= t)
        {
            last_sweep = now;
            for c in conns.iter_mut() {
                w.fill(c, now);
                w.flush(c);
            }
        } else if paced {
            for c in conns.iter_mut() {
                if w.sendable_at(c).is_some_and(|t| t <= now) {
                    w.fill(c, now);
                    w.flush(c);
                }
            }
        }
    }
}

/// Runs a load to completion and merges every thread's results.
pub fn drive(plan: &Plan, source: &dyn Source) -> Outcome {
    drive_with(plan, source, true)
}

/// [`drive`], pacing a fixed-rate load with a timerfd or (`use_timerfd`
/// false, or no timerfd to be had) with the poll timeout.
fn drive_with(plan: &Plan, source: &dyn Source, use_timerfd: bool) -> Outcome {
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
        use_timerfd,
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

/// A Linux `timerfd` on `CLOCK_MONOTONIC`: the fixed-rate pacer's clock. The
/// only `unsafe` in the crate (two libc calls and taking ownership of the fd)
/// lives here.
mod timer {
    #![allow(unsafe_code)]

    use std::fs::File;
    use std::io::{self, ErrorKind, Read};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    /// A one-shot timer whose expiry makes its file descriptor readable, so a
    /// mio `Poll` (through `mio::unix::SourceFd`) wakes on it with nanosecond
    /// precision instead of epoll's whole milliseconds. Non-blocking and
    /// close-on-exec; closed on drop.
    #[derive(Debug)]
    pub(super) struct TimerFd(File);

    impl TimerFd {
        /// A new, disarmed timer.
        pub(super) fn new() -> io::Result<Self> {
            // SAFETY: plain FFI call with constant arguments; no pointers involved.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a freshly created descriptor that nothing else owns;
            // `OwnedFd` takes sole ownership and closes it on drop.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            Ok(Self(File::from(owned)))
        }

        /// Arms the timer to expire once, `after` from now (replacing any earlier
        /// arming). A zero delay would disarm a timerfd, so it is raised to 1 ns:
        /// a due time already past fires at once.
        pub(super) fn arm_in(&self, after: Duration) -> io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                    // < 1e9, fits any c_long
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: the descriptor is open (owned by `self`); `spec` is a valid,
            // initialised itimerspec that outlives the call; a null old-value
            // pointer is allowed.
            let rc = unsafe {
                libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Consumes the expiry count, so the descriptor is no longer readable:
        /// how many expiries there were since the last call (0 if none; a
        /// non-blocking read that would block is no error).
        pub(super) fn clear(&self) -> io::Result<u64> {
            let mut buf = [0u8; 8];
            loop {
                return match (&self.0).read(&mut buf) {
                    // The kernel writes the count as a native-endian u64.
                    #[allow(clippy::host_endian_bytes)]
                    Ok(8) => Ok(u64::from_ne_bytes(buf)),
                    Ok(n) => Err(io::Error::other(format!("timerfd read {n} bytes"))),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
            }
        }
    }

    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
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
        fake_server_with(bad_xid, None)
    }

    /// [`fake_server`], and with `stall: Some((n, d))` each connection waits
    /// `d` before it answers its `n`-th request (1-based).
    fn fake_server_with(bad_xid: bool, stall: Option<(u32, Duration)>) -> SocketAddr {
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
                        if let Some((n, d)) = stall
                            && replies == n
                        {
                            std::thread::sleep(d);
                        }
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
            also: Vec::new(),
            sessions: 3,
            in_flight: 4,
            threads: 2,
            session_timeout_ms: 30_000,
            warmup: Duration::ZERO,
            duration: None,
            progress: None,
            seed: 5,
            rate: None,
        }
    }

    #[test]
    fn sessions_are_dealt_round_robin_over_the_servers() {
        // Session 1 of 3 goes to the second server, which is not there.
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut p = plan(fake_server(false));
        p.also = vec![dead];
        p.threads = 1;
        let out = drive(&p, &gets(Some(30)));
        assert!(
            out.failures
                .iter()
                .any(|f| f.contains("session 1") && f.contains(&dead.to_string())),
            "{:?}",
            out.failures
        );
        assert!(
            !out.failures.iter().any(|f| f.contains("session 0")),
            "{:?}",
            out.failures
        );
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
    fn an_op_count_is_measured_after_the_warm_up() {
        // Regression: `--ops 3000 --warmup 200ms` against a fast Apache server spent the
        // whole budget in the warm-up and measured no op at all (CI, zk-bench's own test).
        let mut p = plan(fake_server(false));
        p.warmup = Duration::from_millis(150);
        let out = drive(&p, &gets(Some(300)));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        // The 300 ops issued after the warm-up complete after it, and at most the
        // sessions' in-flight window of warm-up ops completes after it too.
        let measured = out.reads.count();
        let window = (p.sessions * p.in_flight) as u64;
        assert!(
            (300..=300 + window).contains(&measured),
            "{measured} measured"
        );
        assert!(
            out.completed > measured,
            "the warm-up's ops: {}",
            out.completed
        );
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
    fn the_schedule_deals_op_k_at_k_over_rate_round_robin() {
        let s = Schedule {
            rate: 2000.0,
            sessions: 4,
        };
        // Session 1's ops are 1, 5, 9, ... of the run.
        assert_eq!(s.op_index(1, 0), 1);
        assert_eq!(s.op_index(1, 2), 9);
        assert_eq!(s.op_index(0, 3), 12);
        let near = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_nanos(10);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert!(near(s.offset(1), Duration::from_micros(500)));
        assert!(near(s.offset(2000), Duration::from_secs(1)));
        let t0 = Instant::now();
        assert!(near(s.due(t0, 3, 0) - t0, Duration::from_micros(1500)));
        assert!(near(s.due(t0, 2, 5) - t0, Duration::from_millis(11))); // op 22
        // Every session sends rate / sessions: op j of any session is 2 ms after op j - 1.
        for sess in 0..4 {
            for j in 1..50 {
                let gap = s.due(t0, sess, j) - s.due(t0, sess, j - 1);
                assert!(near(gap, Duration::from_millis(2)));
            }
        }
        // The ops of all sessions together are due in run order, 1/rate apart.
        let mut all: Vec<(Instant, u64)> = (0..4)
            .flat_map(|sess| (0..25).map(move |j| (s.due(t0, sess, j), s.op_index(sess, j))))
            .collect();
        all.sort();
        assert!(all.iter().enumerate().all(|(i, &(_, k))| k == i as u64));
        // The first op due strictly after a moment.
        assert_eq!(s.first_after(Duration::ZERO), 1);
        assert_eq!(s.first_after(Duration::from_micros(499)), 1);
        assert_eq!(s.first_after(s.offset(1)), 2);
        assert_eq!(s.first_after(s.offset(1) - Duration::from_nanos(1)), 1);
        assert_eq!(s.first_after(s.offset(20)), 21);
        assert_eq!(s.first_after(Duration::from_micros(10_100)), 21);
        let odd = Schedule {
            rate: 3.0,
            sessions: 1,
        };
        for k in 0..1000 {
            let at = odd.offset(k);
            assert!(odd.offset(odd.first_after(at)) > at, "{k}");
            assert_eq!(odd.first_after(at), k + 1, "{k}");
        }
        // Fractional and huge rates do not panic.
        let slow = Schedule {
            rate: 0.5,
            sessions: 2,
        };
        assert!(near(slow.due(t0, 1, 1) - t0, Duration::from_secs(6)));
        let _ = slow.due(t0, 1, u64::MAX / 4);
    }

    #[test]
    fn latency_runs_from_the_scheduled_time() {
        let t0 = Instant::now();
        // An op scheduled at t0, held back 40 ms for a free slot, answered 1 ms after it was
        // sent, is charged 41 ms: the wait it was made to do counts.
        let sent = t0 + Duration::from_millis(40);
        let done = sent + Duration::from_millis(1);
        assert_eq!(latency_ns(t0, done), 41_000_000);
        assert_eq!(latency_ns(sent, done), 1_000_000); // (what a closed loop would charge)
        assert_eq!(latency_ns(done, t0), 0);
    }

    #[test]
    fn a_shortfall_is_more_than_five_percent_below_the_offered_rate() {
        assert!(!rate_shortfall(20_000.0, 20_000.0));
        assert!(!rate_shortfall(20_000.0, 20_500.0));
        assert!(!rate_shortfall(20_000.0, 19_000.0)); // exactly 5 % short
        assert!(rate_shortfall(20_000.0, 18_999.0));
        assert!(rate_shortfall(2_000.0, 0.0));
        assert!(!rate_shortfall(0.5, 0.49));
    }

    fn gets(budget: Option<u64>) -> MixSource {
        MixSource {
            mix: OpMix::GetData,
            keys: 10,
            prefix: "/t".into(),
            run_id: 1,
            data: Vec::new(),
            budget: Budget::new(budget),
        }
    }

    /// 2000 ops/s against a fresh fake server for `duration`, after 100 ms of warm-up.
    fn fixed_rate_plan(duration: Duration) -> Plan {
        let mut p = plan(fake_server(false));
        p.rate = Some(2000.0);
        p.duration = Some(duration);
        p.warmup = Duration::from_millis(100);
        p
    }

    #[test]
    fn a_fixed_rate_load_sends_at_the_rate() {
        let p = fixed_rate_plan(Duration::from_secs(1));
        let t = Instant::now();
        let out = drive(&p, &gets(None));
        let wall = t.elapsed();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        let n = out.reads.count() as f64;
        // 2000 ops due in the measured second (and 200 in the warm-up); a noisy two-core
        // machine may lose a few, but a closed loop would do far more and a broken pacer
        // far fewer.
        assert!((1600.0..=2100.0).contains(&n), "{n} ops measured");
        assert!((2000..=2400).contains(&out.completed), "{}", out.completed);
        assert!(wall >= Duration::from_millis(1100), "{wall:?}");
        assert_eq!(out.send_lag.count(), out.reads.count());
        // The issued ops are spread evenly over the sessions (round-robin).
        let per: Vec<u64> = out.issued.iter().map(|&(_, n)| n).collect();
        let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(hi - lo <= 1, "{per:?}");
        // A closed loop has no send lag.
        let mut closed = p;
        closed.rate = None;
        closed.duration = Some(Duration::from_millis(100));
        closed.warmup = Duration::ZERO;
        let out = drive(&closed, &gets(None));
        assert!(out.reads.count() > 0 && out.send_lag.count() == 0);
    }

    #[test]
    fn the_timerfd_wakes_the_poll_at_the_armed_time_never_before() {
        let mut poll = Poll::new().unwrap();
        let mut pacer = Pacer::new(&poll).unwrap();
        let mut events = Events::with_capacity(8);
        let mut wait_for_timer = |poll: &mut Poll, limit: Duration| {
            let t = Instant::now();
            while t.elapsed() < limit {
                poll.poll(&mut events, Some(limit)).unwrap();
                if events.iter().any(|e| e.token() == TIMER) {
                    return Some(Instant::now());
                }
            }
            None
        };
        // Disarmed: no event.
        assert_eq!(wait_for_timer(&mut poll, Duration::from_millis(30)), None);
        assert_eq!(
            pacer.timer.clear().unwrap(),
            0,
            "nothing to read is no error"
        );

        // Armed 30 ms ahead: fires then (not before; the bound above is generous for a
        // busy machine), once, and reading clears it.
        let t0 = Instant::now();
        let due = t0 + Duration::from_millis(30);
        pacer.arm(Some(due), t0).unwrap();
        assert_eq!(pacer.armed, Some(due));
        let at = wait_for_timer(&mut poll, Duration::from_secs(5)).expect("timer event");
        assert!(at >= due, "fired {:?} early", due - at);
        assert!(at - due < Duration::from_millis(500), "{:?} late", at - due);
        assert_eq!(pacer.timer.clear().unwrap(), 1);
        assert_eq!(pacer.timer.clear().unwrap(), 0);

        // Re-arming replaces the earlier time: armed for +10 s, then for +20 ms.
        let t0 = Instant::now();
        pacer.arm(Some(t0 + Duration::from_secs(10)), t0).unwrap();
        pacer.arm(Some(t0 + Duration::from_millis(20)), t0).unwrap();
        let at = wait_for_timer(&mut poll, Duration::from_secs(5)).expect("re-armed event");
        assert!(at - t0 >= Duration::from_millis(20) && at - t0 < Duration::from_secs(5));
        pacer.fired().unwrap();
        assert_eq!(pacer.armed, None);

        // A due time already past fires at once (a zero delay would disarm a timerfd).
        let now = Instant::now();
        pacer
            .arm(Some(now - Duration::from_millis(5)), now)
            .unwrap();
        let at = wait_for_timer(&mut poll, Duration::from_secs(5)).expect("past due time");
        assert!(at - now < Duration::from_millis(500));
        pacer.fired().unwrap();
        // `None` leaves the timer alone.
        pacer.arm(None, Instant::now()).unwrap();
        assert_eq!(wait_for_timer(&mut poll, Duration::from_millis(30)), None);
    }

    #[test]
    fn the_timerfd_pacer_sends_on_time_and_the_poll_timeout_still_paces() {
        let p = fixed_rate_plan(Duration::from_millis(800));
        for use_timerfd in [true, false] {
            let out = drive_with(&p, &gets(None), use_timerfd);
            assert!(out.failures.is_empty(), "{:?}", out.failures);
            // 1600 ops due in the measured 0.8 s, 200 in the warm-up.
            let n = out.reads.count();
            assert!(
                (1300..=1700).contains(&n),
                "{use_timerfd}: {n} ops measured"
            );
            assert!(
                (1600..=1900).contains(&out.completed),
                "{use_timerfd}: {}",
                out.completed
            );
            assert_eq!(out.send_lag.count(), n);
            let (p50, p99) = (out.send_lag.quantile(0.5), out.send_lag.quantile(0.99));
            if use_timerfd {
                // Microseconds on an idle machine. The poll timeout, rounded up to whole
                // milliseconds, puts the median near 0.5 ms.
                assert!(p50 < 300_000, "timerfd: send lag p50 {p50} ns");
            }
            assert!(p99 < 50_000_000, "{use_timerfd}: send lag p99 {p99} ns");
            eprintln!("timerfd {use_timerfd}: send lag p50 {p50} ns, p99 {p99} ns");
        }
    }

    #[test]
    fn a_fixed_rate_load_with_an_op_count_takes_count_over_rate() {
        let addr = fake_server(false);
        let mut p = plan(addr);
        p.rate = Some(1000.0);
        let t = Instant::now();
        let out = drive(&p, &gets(Some(300)));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.completed, 300);
        // Op 299 is due at 299 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(299),
            "{:?}",
            t.elapsed()
        );
        assert!(out.measured_secs >= 0.29, "{}", out.measured_secs);
    }

    #[test]
    fn a_stall_is_charged_to_every_op_it_holds_back() {
        // One session, one request in flight, 1000 ops/s; the server sits on its 10th
        // request for 100 ms. Ops 11..110 fall due meanwhile, wait for the slot and then
        // go out back to back: each is charged from its scheduled time, so about half of
        // them show more than 50 ms.
        let stall = Duration::from_millis(100);
        let addr = fake_server_with(false, Some((10, stall)));
        let mut p = plan(addr);
        (p.sessions, p.in_flight, p.threads) = (1, 1, 1);
        p.rate = Some(1000.0);
        let out = drive(&p, &gets(Some(300)));
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.reads.count(), 300);
        assert!(out.reads.max() >= 95_000_000, "{:?}", out.reads);
        assert!(
            out.reads.quantile(0.8) >= 20_000_000,
            "p80 {} ns",
            out.reads.quantile(0.8)
        );
        // They were sent late (waiting for the slot), and the lag is reported.
        assert!(out.send_lag.quantile(0.8) >= 20_000_000);

        // The same load closed-loop charges the stall to the one op that met it.
        let addr = fake_server_with(false, Some((10, stall)));
        p.addr = addr;
        p.rate = None;
        let out = drive(&p, &gets(Some(300)));
        assert!(out.reads.max() >= 95_000_000);
        assert!(out.reads.quantile(0.8) < 20_000_000);
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
