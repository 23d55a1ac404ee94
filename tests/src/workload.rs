//! The fault harness's client workload (issue 16) and the checks that read
//! what it recorded.
//!
//! [`Workload::start`] runs client threads, each with its own session on one
//! of the servers (spread over all of them; after an error the thread opens
//! a new session, on the next server). Each picks, at random:
//!
//! * a compare-and-set on a register znode `/r/<k>`: getData, then setData
//!   with the version read (create if missing, now and then a versioned
//!   delete) — recorded into a [`History`] for [`lincheck`];
//! * a sequential create under `/s` (every acknowledged name must be
//!   distinct and present);
//! * a multi creating `/m/a-<id>` and `/m/b-<id>` together (both or neither).
//!
//! Holder threads keep ephemerals: a session creates `/e/<name>`, holds it a
//! random while (pinging), then closes the session or just drops the
//! connection (the session then expires). Whatever a holder holds when the
//! workload stops is handed to the checks as live.
//!
//! Every operation's outcome is ok, failed with a code, or unknown (a
//! timeout or a lost connection; the session is then abandoned). Values are
//! unique, so the committed txns ([`committed_txns`], read from the servers'
//! logs) resolve unknown writes.
//!
//! After heal, [`Recorded::check_linearizable`] runs [`lincheck::check`]
//! with the committed txns (only [`Verdict::Ok`] passes: a search that runs
//! out of its budget, [`Verdict::Undecided`], fails the scenario as a
//! violation does, naming the path and the counters), and
//! [`Recorded::check_state`] checks on every server the register values
//! against their last committed txn, the sequential names and multis against
//! what was acknowledged, and the ephemerals against the live sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_jute::{
    CreateRequest, DeleteRequest, ErrorCode, GetDataRequest, MultiOp, Request, Response,
    SetDataRequest, TxnBody,
};

use crate::ensemble::{Member, sync, wait_until};
use crate::lincheck::{self, Call, Committed, History, Op, Outcome, Ret, TxnOp, Verdict, Znode};
use crate::{Client, ConnectOptions, Rng, open_acl};

/// The session timeout the workload asks for (ms): the servers' maximum
/// with tickTime=200, so sessions abandoned in a fault expire within seconds.
pub const SESSION_TIMEOUT_MS: i32 = 4000;
/// How long a call may wait for its reply before its outcome is unknown.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadOptions {
    /// Client threads doing registers, sequential creates and multis.
    pub clients: usize,
    /// Register znodes.
    pub keys: usize,
    /// Ephemeral holder threads.
    pub holders: usize,
    /// The seed of every thread's random choices.
    pub seed: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            clients: 5,
            keys: 6,
            holders: 3,
            seed: 1,
        }
    }
}

/// A sequential create: its data and its outcome (`None`: unknown).
#[derive(Debug, Clone)]
struct SeqCreate {
    data: String,
    result: Option<Result<String, i32>>,
}

/// A two-node multi: its id and its outcome (`None`: unknown).
#[derive(Debug, Clone)]
struct MultiCreate {
    id: String,
    ok: Option<bool>,
}

#[derive(Default)]
struct ClientLog {
    ops: Vec<Op>,
    seqs: Vec<SeqCreate>,
    multis: Vec<MultiCreate>,
}

/// A holder's session still open when the workload stopped, and the
/// ephemeral it acknowledged.
struct Held {
    client: Client,
    path: String,
}

/// The running workload.
pub struct Workload {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<ClientLog>>,
    holders: Vec<JoinHandle<Option<Held>>>,
}

/// What a workload recorded. The holder sessions live at the stop are
/// kept alive (pinged by a thread of its own) until
/// [`Recorded::close_sessions`] or drop.
pub struct Recorded {
    /// The register operations.
    pub history: History,
    seqs: Vec<SeqCreate>,
    multis: Vec<MultiCreate>,
    live: Arc<Mutex<Vec<Held>>>,
    keeper: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

struct Ctx {
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    t0: Instant,
}

impl Ctx {
    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A new session, trying the servers in turn from `*k` until one
    /// serves (`None` once stopped).
    fn session(&self, k: &mut usize) -> Option<Client> {
        let opts = ConnectOptions {
            timeout_ms: SESSION_TIMEOUT_MS,
            io_timeout: CALL_TIMEOUT,
            ..ConnectOptions::default()
        };
        while !self.stopped() {
            let addr = self.addrs[*k % self.addrs.len()];
            *k += 1;
            if let Ok(c) = Client::connect_with(addr, &opts) {
                return Some(c);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// The base znodes the workload writes under; call once the ensemble serves.
pub fn prepare(m: &Member) {
    let mut c = crate::ensemble::connect(m);
    for p in ["/r", "/s", "/m", "/e"] {
        match c.create(p, b"", 0).expect("create a base node") {
            Ok(_) | Err(ErrorCode::NodeExists) => {}
            Err(e) => panic!("create {p}: {e:?}"),
        }
    }
    let _ = c.close();
}

impl Workload {
    /// Starts the threads against `m` (every member's client address).
    pub fn start(m: &[Member], opts: WorkloadOptions) -> Workload {
        let ctx = Arc::new(Ctx {
            addrs: m.iter().map(Member::addr).collect(),
            stop: Arc::new(AtomicBool::new(false)),
            t0: Instant::now(),
        });
        let clients = (0..opts.clients)
            .map(|i| {
                let ctx = ctx.clone();
                std::thread::spawn(move || client_thread(&ctx, i, opts))
            })
            .collect();
        let holders = (0..opts.holders)
            .map(|i| {
                let ctx = ctx.clone();
                std::thread::spawn(move || holder_thread(&ctx, i, opts.seed))
            })
            .collect();
        Workload {
            stop: ctx.stop.clone(),
            clients,
            holders,
        }
    }

    /// Stops the threads (each finishes its current call) and collects.
    pub fn stop(self) -> Recorded {
        self.stop.store(true, Ordering::Relaxed);
        let mut rec = Recorded {
            history: History::default(),
            seqs: Vec::new(),
            multis: Vec::new(),
            live: Arc::default(),
            keeper: None,
        };
        for t in self.clients {
            let log = t.join().expect("a client thread panicked");
            rec.history.ops.extend(log.ops);
            rec.seqs.extend(log.seqs);
            rec.multis.extend(log.multis);
        }
        let mut live = Vec::new();
        for t in self.holders {
            live.extend(t.join().expect("a holder thread panicked"));
        }
        rec.live = Arc::new(Mutex::new(live));
        let (stop, held) = (Arc::new(AtomicBool::new(false)), rec.live.clone());
        let flag = stop.clone();
        let keeper = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                held.lock()
                    .expect("live sessions")
                    .retain_mut(|h| h.client.ping().is_ok());
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        rec.keeper = Some((stop, keeper));
        rec
    }
}

/// One register, sequential or multi step per loop; a new session after
/// any step that left the outcome unknown.
fn client_thread(ctx: &Ctx, i: usize, opts: WorkloadOptions) -> ClientLog {
    let mut rng = Rng::new(opts.seed.wrapping_mul(1000).wrapping_add(i as u64));
    let mut log = ClientLog::default();
    let mut k = i;
    let mut n = 0u64;
    let mut c: Option<Client> = None;
    while !ctx.stopped() {
        if c.is_none() {
            c = ctx.session(&mut k);
        }
        let Some(cl) = c.as_mut() else { break };
        n += 1;
        let value = format!("c{}-{i}-{n}", opts.seed);
        let pick = rng.below(10);
        let fine = if pick < 6 {
            let path = format!("/r/{}", rng.below(opts.keys as u64));
            register_step(ctx, cl, &path, &value, rng.below(20) == 0, &mut log.ops)
        } else if pick < 8 {
            seq_step(cl, value, &mut log.seqs)
        } else {
            multi_step(cl, value, &mut log.multis)
        };
        if !fine && let Some(cl) = c.take() {
            cl.disconnect();
        }
    }
    if let Some(cl) = c {
        let _ = cl.close();
    }
    log
}

/// What a write's reply says, or `None` (unknown) for codes other than the
/// ones the register model knows.
fn write_outcome(call: &Call, err: i32) -> Option<Outcome> {
    match ErrorCode::try_from(err) {
        Ok(ErrorCode::Ok) => Some(match call {
            Call::Create { .. } => Outcome::Created,
            Call::Delete { .. } => Outcome::Deleted,
            _ => return None,
        }),
        Ok(ErrorCode::BadVersion) => Some(Outcome::BadVersion),
        Ok(ErrorCode::NoNode) => Some(Outcome::NoNode),
        Ok(ErrorCode::NodeExists) => Some(Outcome::NodeExists),
        _ => None,
    }
}

/// Sends one register write and records it; `false` if the outcome is
/// unknown (the session is then dropped).
fn write(ctx: &Ctx, c: &mut Client, path: &str, call: Call, ops: &mut Vec<Op>) -> bool {
    let req = match &call {
        Call::Set { value, version } => Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(value)),
            version: *version,
        }),
        Call::Create { value } => Request::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(value)),
            acl: open_acl(),
            flags: 0,
        }),
        Call::Delete { version } => Request::Delete(DeleteRequest {
            path: path.into(),
            version: *version,
        }),
        Call::Get => unreachable!("not a write"),
    };
    let invoke = ctx.now();
    let reply = c.call(&req);
    let at = ctx.now();
    let ret = reply.ok().and_then(|r| {
        let (outcome, zxid) = match (&r.body, r.err) {
            (Response::Stat(s), 0) => (Outcome::Set { version: s.version }, s.mzxid),
            _ => (write_outcome(&call, r.err)?, r.zxid),
        };
        Some(Ret {
            at,
            outcome,
            zxid: Some(zxid),
        })
    });
    let known = ret.is_some();
    ops.push(Op {
        session: c.session_id() as u64,
        path: path.into(),
        invoke,
        call,
        ret,
    });
    known
}

/// getData, then a setData with the version read (create when missing; a
/// versioned delete when `delete`).
fn register_step(
    ctx: &Ctx,
    c: &mut Client,
    path: &str,
    value: &str,
    delete: bool,
    ops: &mut Vec<Op>,
) -> bool {
    let invoke = ctx.now();
    let reply = c.call(&Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    }));
    let at = ctx.now();
    let read = match reply {
        Ok(r) => match (&r.body, ErrorCode::try_from(r.err)) {
            (Response::GetData(g), Ok(ErrorCode::Ok)) => Some((
                Some(Znode {
                    value: g.data.clone().unwrap_or_default().to_vec(),
                    version: g.stat.version,
                    mzxid: g.stat.mzxid,
                }),
                r.zxid,
            )),
            (_, Ok(ErrorCode::NoNode)) => Some((None, r.zxid)),
            _ => None,
        },
        Err(_) => None,
    };
    let Some((state, zxid)) = read else {
        // An unanswered read tells nothing: it is left out of the history.
        return false;
    };
    let version = state.as_ref().map(|z| z.version);
    ops.push(Op {
        session: c.session_id() as u64,
        path: path.into(),
        invoke,
        call: Call::Get,
        ret: Some(Ret {
            at,
            outcome: Outcome::Read(state),
            zxid: Some(zxid),
        }),
    });
    let value = value.as_bytes().to_vec();
    let call = match version {
        None => Call::Create { value },
        Some(version) if delete => Call::Delete { version },
        Some(version) => Call::Set { value, version },
    };
    write(ctx, c, path, call, ops)
}

/// A sequential create under `/s`.
fn seq_step(c: &mut Client, data: String, seqs: &mut Vec<SeqCreate>) -> bool {
    let r = c.create("/s/q-", data.as_bytes(), 2);
    let result = match r {
        Ok(Ok(name)) => Some(Ok(name)),
        Ok(Err(e)) if e != ErrorCode::ConnectionLoss && e != ErrorCode::SystemError => {
            Some(Err(e as i32))
        }
        _ => None,
    };
    let known = result.is_some();
    seqs.push(SeqCreate { data, result });
    known
}

/// A multi creating `/m/a-<id>` and `/m/b-<id>`.
fn multi_step(c: &mut Client, id: String, multis: &mut Vec<MultiCreate>) -> bool {
    let op = |p: String| {
        MultiOp::Create(CreateRequest {
            path: p,
            data: Some(Bytes::from_static(b"m")),
            acl: open_acl(),
            flags: 0,
        })
    };
    let req = Request::Multi(vec![op(format!("/m/a-{id}")), op(format!("/m/b-{id}"))]);
    let ok = match c.call(&req) {
        Ok(r) if r.err == 0 => Some(true),
        // A multi fails as a whole with the first failing op's code; a
        // create of a fresh unique name can only fail with the ensemble.
        Ok(r) if matches!(ErrorCode::try_from(r.err), Ok(ErrorCode::NodeExists)) => Some(false),
        _ => None,
    };
    let known = ok.is_some();
    multis.push(MultiCreate { id, ok });
    known
}

/// Sessions that create an ephemeral, hold it, then close or vanish.
fn holder_thread(ctx: &Ctx, i: usize, seed: u64) -> Option<Held> {
    let mut rng = Rng::new(seed.wrapping_mul(7777).wrapping_add(i as u64));
    let mut k = i + 1;
    let mut n = 0;
    while !ctx.stopped() {
        let mut c = ctx.session(&mut k)?;
        n += 1;
        let path = format!("/e/h{seed}-{i}-{n}");
        match c.create(&path, b"e", 1) {
            Ok(Ok(_)) => {}
            _ => {
                c.disconnect();
                continue;
            }
        }
        let until = Instant::now() + Duration::from_millis(200 + rng.below(1300));
        let mut alive = true;
        while alive && Instant::now() < until && !ctx.stopped() {
            std::thread::sleep(Duration::from_millis(100));
            alive = c.ping().is_ok();
        }
        if !alive {
            c.disconnect();
            continue;
        }
        if ctx.stopped() {
            return Some(Held { client: c, path });
        }
        if rng.below(2) == 0 {
            let _ = c.close();
        } else {
            c.disconnect();
        }
    }
    None
}

/// Every committed txn on a path under `/r`, read from the log segments of
/// the members' data dirs; a zxid logged by two members must be the same
/// txn on both (else this panics: the logs diverged).
pub fn committed_txns(m: &[Member]) -> Vec<Committed> {
    let mut all: BTreeMap<i64, (u64, Vec<Committed>)> = BTreeMap::new();
    for x in m {
        for (zxid, txns) in log_txns(&x.data_dir()) {
            match all.get(&zxid) {
                Some((sid, t)) => assert_eq!(
                    t, &txns,
                    "zxid {zxid:#x} is a different txn on servers {sid} and {}",
                    x.sid
                ),
                None => {
                    all.insert(zxid, (x.sid, txns));
                }
            }
        }
    }
    all.into_values().flat_map(|(_, t)| t).collect()
}

/// The register txns of one data dir's log, by zxid.
fn log_txns(dir: &Path) -> BTreeMap<i64, Vec<Committed>> {
    let mut out = BTreeMap::new();
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .expect("read the data dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log.") && !n.ends_with(".tmp"))
        })
        .collect();
    segs.sort();
    for seg in segs {
        let Ok(records) = zk_txnlog::read_segment(&seg) else {
            continue;
        };
        for rec in records {
            let Ok((_, payload)) = rec else { break };
            let (h, body) = TxnBody::read_record(Bytes::from(payload)).expect("a log record");
            let mut txns = Vec::new();
            register_txns(h.client_id as u64, h.zxid, &body, &mut txns);
            out.insert(h.zxid, txns);
        }
    }
    out
}

fn register_txns(session: u64, zxid: i64, body: &TxnBody, out: &mut Vec<Committed>) {
    let data = |d: &Option<Bytes>| d.clone().unwrap_or_default().to_vec();
    let (path, op) = match body {
        TxnBody::Create(t) | TxnBody::Create2(t) => (
            &t.path,
            TxnOp::Create {
                value: data(&t.data),
            },
        ),
        TxnBody::SetData(t) => (
            &t.path,
            TxnOp::Set {
                value: data(&t.data),
            },
        ),
        TxnBody::Delete(t) => (&t.path, TxnOp::Delete),
        TxnBody::Multi(subs) => {
            for s in subs {
                register_txns(session, zxid, s, out);
            }
            return;
        }
        _ => return,
    };
    if path.starts_with("/r/") {
        out.push(Committed {
            zxid,
            session,
            path: path.clone(),
            op,
        });
    }
}

/// What [`Recorded::check_linearizable`] counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Operations recorded (register ops, sequential creates, multis).
    pub ops: usize,
    /// Of which the outcome stayed unknown.
    pub unknown: usize,
    /// Memoised states the linearizability search visited.
    pub states: u64,
}

impl Recorded {
    /// Operation counts.
    pub fn counts(&self) -> Counts {
        let unknown = self.history.ops.iter().filter(|o| o.ret.is_none()).count()
            + self.seqs.iter().filter(|s| s.result.is_none()).count()
            + self.multis.iter().filter(|s| s.ok.is_none()).count();
        Counts {
            ops: self.history.ops.len() + self.seqs.len() + self.multis.len(),
            unknown,
            states: 0,
        }
    }

    /// The register history linearizes (with the committed txns of `m`'s
    /// logs); [`Verdict::Undecided`] is a failure too: a history the
    /// checker could not decide within its budget is not a pass.
    pub fn check_linearizable(&self, m: &[Member]) -> Result<Counts, String> {
        let committed = committed_txns(m);
        let opts = lincheck::Options {
            committed: Some(committed),
            ..lincheck::Options::default()
        };
        let mut counts = self.counts();
        match lincheck::check(&self.history, &opts) {
            Verdict::Ok(s) => {
                counts.states = s.states;
                Ok(counts)
            }
            Verdict::Violation(v, _) => {
                let ops: Vec<&Op> = v.ops.iter().map(|&i| &self.history.ops[i]).collect();
                Err(format!("linearizability violation: {v}\nops: {ops:#?}"))
            }
            Verdict::Undecided { path, stats } => Err(format!(
                "linearizability undecided within the budget on {path} ({stats:?}): \
                 counted as a failure"
            )),
        }
    }

    /// After heal, at every member of `alive`: each register holds what its
    /// last committed txn (in the logs) wrote, sequential names and multis
    /// as acknowledged, and the ephemerals exactly those of the live holder
    /// sessions (pinged while waiting; a session that stops answering leaves
    /// the live set, and its ephemeral must go).
    pub fn check_state(&mut self, m: &[Member], alive: &[usize]) {
        let names: Vec<&String> = self
            .seqs
            .iter()
            .filter_map(|s| s.result.as_ref()?.as_ref().ok())
            .collect();
        let distinct: BTreeSet<&String> = names.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            names.len(),
            "two sequential creates were given one name"
        );
        // Each register's last committed txn, as the logs have it.
        let mut last: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        for t in committed_txns(m) {
            let v = match t.op {
                TxnOp::Set { value } | TxnOp::Create { value } => Some(value),
                TxnOp::Delete => None,
            };
            last.insert(t.path, v);
        }
        for &i in alive {
            let sid = m[i].sid;
            let (regs, seqs, multis) = read_at(&m[i], |c| {
                sync(c)?;
                let mut regs = BTreeMap::new();
                for path in last.keys() {
                    let v = c.get_data(path, false)?.ok().map(|(d, _)| d.to_vec());
                    regs.insert(path.clone(), v);
                }
                let seqs = c.children("/s", false)?.expect("/s").0;
                let multis = c.children("/m", false)?.expect("/m").0;
                Ok((regs, seqs, multis))
            });
            for (path, want) in &last {
                assert_eq!(
                    &regs[path], want,
                    "{path} at server {sid} is not its last committed txn's"
                );
            }
            self.check_seqs(&seqs, sid);
            self.check_multis(&multis, sid);
        }
        self.check_ephemerals(m, alive);
    }

    fn check_seqs(&self, kids: &[String], sid: u64) {
        let kids: BTreeSet<String> = kids.iter().map(|k| format!("/s/{k}")).collect();
        for s in &self.seqs {
            if let Some(Ok(name)) = &s.result {
                assert!(
                    kids.contains(name),
                    "acknowledged sequential {name} ({}) missing at server {sid}",
                    s.data
                );
            }
        }
    }

    fn check_multis(&self, kids: &[String], sid: u64) {
        let kids: BTreeSet<&String> = kids.iter().collect();
        for mc in &self.multis {
            let a = kids.contains(&format!("a-{}", mc.id));
            let b = kids.contains(&format!("b-{}", mc.id));
            assert_eq!(a, b, "multi {} half applied at server {sid}", mc.id);
            match mc.ok {
                Some(true) => assert!(a, "acknowledged multi {} missing at server {sid}", mc.id),
                Some(false) => assert!(!a, "failed multi {} applied at server {sid}", mc.id),
                None => {}
            }
        }
    }

    fn check_ephemerals(&mut self, m: &[Member], alive: &[usize]) {
        let mut sessions: Vec<Client> = alive
            .iter()
            .map(|&i| crate::ensemble::connect(&m[i]))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        'poll: loop {
            let live = self.live.lock().expect("live sessions");
            let want: BTreeMap<String, i64> = live
                .iter()
                .map(|h| (h.path.clone(), h.client.session_id()))
                .collect();
            drop(live);
            for (c, &i) in sessions.iter_mut().zip(alive) {
                let got = match ephemerals(c) {
                    Some(got) => got,
                    // The connection broke (the server re-elected, say): again.
                    None => {
                        *c = crate::ensemble::connect(&m[i]);
                        continue 'poll;
                    }
                };
                if got != want {
                    assert!(
                        Instant::now() < deadline,
                        "the ephemerals at server {} are not those of the live sessions: \
                         {got:x?}, live {want:x?}",
                        m[i].sid
                    );
                    std::thread::sleep(Duration::from_millis(50));
                    continue 'poll;
                }
            }
            break;
        }
        for c in sessions {
            let _ = c.close();
        }
    }

    /// Closes the live holder sessions (after which no ephemeral may stay).
    pub fn close_sessions(&mut self) {
        if let Some((stop, keeper)) = self.keeper.take() {
            stop.store(true, Ordering::Relaxed);
            keeper.join().expect("the keeper thread panicked");
        }
        for h in self.live.lock().expect("live sessions").drain(..) {
            let _ = h.client.close();
        }
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.keeper {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

/// The ephemerals under `/e` as `c`'s server has them: path → owner
/// (`None` if the connection failed).
fn ephemerals(c: &mut Client) -> Option<BTreeMap<String, i64>> {
    let (kids, _) = c.children("/e", false).ok()?.expect("/e");
    let mut out = BTreeMap::new();
    for k in kids {
        let p = format!("/e/{k}");
        // Gone since the listing: its session just ended.
        if let Ok((_, st)) = c.get_data(&p, false).ok()? {
            out.insert(p, st.ephemeral_owner);
        }
    }
    Some(out)
}

/// `f` on a new session at `m`, again on a new session (until
/// [`crate::ensemble::DEADLINE`]) while the connection fails.
fn read_at<T>(m: &Member, mut f: impl FnMut(&mut Client) -> crate::ClientResult<T>) -> T {
    wait_until(&format!("a complete read at server {}", m.sid), || {
        let mut c = crate::ensemble::connect(m);
        let r = f(&mut c).ok();
        let _ = c.close();
        r
    })
}

/// Waits until no ephemeral is left under `/e` at the members `alive`.
pub fn assert_no_ephemerals(m: &[Member], alive: &[usize]) {
    for &i in alive {
        wait_until(&format!("no ephemeral at server {}", m[i].sid), || {
            read_at(&m[i], |c| Ok(ephemerals(c)))
                .is_some_and(|e| e.is_empty())
                .then_some(())
        });
    }
}
