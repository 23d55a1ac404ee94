//! Differential test: seeded random operation sequences run through the raw
//! client against Apache ZooKeeper 3.8 and against our server; the
//! normalised traces must be identical.
//!
//! The ops (generated from the seed alone, never from replies, so both
//! servers get exactly the same requests): creates of every kind (create,
//! create2, createContainer, createTTL; persistent, ephemeral, sequential,
//! with open, read-only, digest, `auth` and empty ACLs), deletes and sets
//! with right and wrong versions, exists / getData / getChildren /
//! getChildren2 with and without watches, multi (succeeding and failing),
//! multiRead, setACL / getACL, addauth digest, sync, getEphemerals,
//! getAllChildrenNumber, and sessions closing (their ephemerals go, watches
//! fire) and being replaced, over three concurrent sessions.
//!
//! Normalisation: every zxid is replaced by its rank among all zxids seen in
//! the trace (write-reply headers and czxid/mzxid/pzxid), session ids by
//! the session's slot and generation, times are dropped and children lists
//! sorted. After each op every session makes a round trip, so every watch
//! event that op caused is in the trace right after it, per session, in
//! order.
//!
//! The same ops also run against a 3-server ensemble of ours with the
//! sessions spread over the servers (session slot i at server i): its trace
//! must be Apache's. There, after each op every session syncs before its
//! round trip (a follower serves reads locally, so without the sync a read
//! could come before a write another server acknowledged; ZooKeeper's
//! guarantee is per session), which changes nothing in a standalone trace.
//!
//! A failure prints the seed and the first divergent line with context;
//! `ZK_TEST_SEED=<n>` runs one seed; `ZK_DIFF_DUMP=<dir>` writes both
//! traces of every seed there.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use zk_integration::ensemble::{EnsembleOptions, Member, assert_converged, ensemble_with, serving};
use zk_integration::{Client, Flavor, Rng, ServerOptions, ZkServer, seeds, start_server};
use zk_jute::{
    Acl, CheckVersionRequest, CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest,
    ErrorCode, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request,
    GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, Id, MultiOp, MultiResult, Request,
    Response, SetAclRequest, SetDataRequest, Stat, SyncRequest, perms,
};

const OPS_PER_SEED: usize = 200;
const SLOTS: usize = 3;
const DEFAULT_SEEDS: &[u64] = &[1, 2, 3, 4, 5];

/// Paths ops act on: a small tree so ops collide often. The `q…` names are
/// what sequential creates under /s and /a produce.
const PATHS: &[&str] = &[
    "/a",
    "/b",
    "/a/x",
    "/a/y",
    "/b/x",
    "/a/x/z",
    "/c",
    "/c/k",
    "/s",
    "/s/q0000000000",
    "/s/q0000000001",
    "/s/q0000000002",
    "/s/q0000000003",
    "/a/q0000000001",
    "/a/q0000000002",
    "/a/q0000000003",
];
const SEQ_BASES: &[&str] = &["/s/q", "/a/q"];
const READ_ONLY_PATHS: &[&str] = &["/", "/zookeeper", "/nope/deeper"];

/// `digest` ids: `user:base64(sha1("user:password"))`.
const ALICE: (&str, &str) = ("alice:secret", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
const BOB: (&str, &str) = ("bob:pw", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=");

#[derive(Debug, Clone)]
enum Op {
    Req { slot: usize, req: Request },
    AddAuth { slot: usize, cred: &'static str },
    Reopen { slot: usize },
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }
}

/// ACLs for creates and setACL. Note: Apache 3.8.0 (the oracle) answers
/// exists() on an unreadable node; 3.8.4+/3.9.2+ answer NOAUTH.
fn gen_acl(rng: &mut Rng) -> Vec<Acl> {
    match rng.below(21) {
        20 => vec![acl(perms::ALL, "digest", ALICE.1)],
        0 => vec![acl(perms::READ, "world", "anyone")],
        1 => vec![
            acl(perms::ALL, "digest", ALICE.1),
            acl(perms::READ, "world", "anyone"),
        ],
        2 => vec![
            acl(perms::READ | perms::CREATE, "world", "anyone"),
            acl(perms::ALL, "digest", BOB.1),
        ],
        3 => vec![
            acl(perms::ALL, "auth", ""),
            acl(perms::READ, "world", "anyone"),
        ],
        4 => vec![],
        _ => vec![acl(perms::ALL, "world", "anyone")],
    }
}

fn gen_data(rng: &mut Rng) -> Option<Bytes> {
    match rng.below(8) {
        0 => None,
        1 => Some(Bytes::new()),
        _ => {
            let n = rng.index(12);
            Some(Bytes::from(
                (0..n)
                    .map(|_| b'a' + rng.below(26) as u8)
                    .collect::<Vec<u8>>(),
            ))
        }
    }
}

fn gen_version(rng: &mut Rng) -> i32 {
    *rng.pick(&[-1, -1, 0, 0, 1, 2, 5])
}

fn gen_path(rng: &mut Rng) -> String {
    // the second-level nodes are the busiest
    if rng.chance(40) {
        (*rng.pick(&["/a/x", "/a/y", "/b/x", "/c/k"])).to_owned()
    } else {
        (*rng.pick(PATHS)).to_owned()
    }
}

fn gen_any_path(rng: &mut Rng) -> String {
    if rng.chance(15) {
        (*rng.pick(READ_ONLY_PATHS)).to_owned()
    } else {
        gen_path(rng)
    }
}

fn gen_create(rng: &mut Rng, ttl: bool) -> Request {
    let (path, seq) = if rng.chance(25) {
        ((*rng.pick(SEQ_BASES)).to_owned(), true)
    } else {
        (gen_path(rng), false)
    };
    let data = gen_data(rng);
    let acl = gen_acl(rng);
    let kind = rng.below(10);
    let mode = match (kind, seq) {
        (0..=2, false) => CreateMode::Ephemeral,
        (0..=2, true) => CreateMode::EphemeralSequential,
        (_, true) => CreateMode::PersistentSequential,
        _ => CreateMode::Persistent,
    };
    let base = CreateRequest {
        path,
        data,
        acl,
        flags: mode.code(),
    };
    match rng.below(12) {
        0 => Request::CreateContainer(CreateRequest {
            flags: CreateMode::Container.code(),
            ..base
        }),
        1 if ttl => Request::CreateTtl(CreateTtlRequest {
            path: base.path,
            data: base.data,
            acl: base.acl,
            flags: if seq {
                CreateMode::PersistentSequentialWithTtl.code()
            } else {
                CreateMode::PersistentWithTtl.code()
            },
            ttl: 3_600_000,
        }),
        1..=5 => Request::Create2(base),
        _ => Request::Create(base),
    }
}

fn gen_multi_op(rng: &mut Rng) -> MultiOp {
    match rng.below(5) {
        0 | 1 => MultiOp::Create(CreateRequest {
            path: gen_path(rng),
            data: gen_data(rng),
            acl: zk_integration::open_acl(),
            flags: if rng.chance(20) {
                CreateMode::Ephemeral.code()
            } else {
                0
            },
        }),
        2 => MultiOp::Delete(DeleteRequest {
            path: gen_path(rng),
            version: gen_version(rng),
        }),
        3 => MultiOp::SetData(SetDataRequest {
            path: gen_path(rng),
            data: gen_data(rng),
            version: gen_version(rng),
        }),
        _ => MultiOp::Check(CheckVersionRequest {
            path: gen_path(rng),
            version: gen_version(rng),
        }),
    }
}

fn gen_op(rng: &mut Rng, ttl: bool) -> Op {
    let slot = rng.index(SLOTS);
    let req = match rng.below(100) {
        0..=21 => gen_create(rng, ttl),
        22..=31 => Request::Delete(DeleteRequest {
            path: gen_path(rng),
            version: gen_version(rng),
        }),
        32..=43 => Request::SetData(SetDataRequest {
            path: gen_path(rng),
            data: gen_data(rng),
            version: gen_version(rng),
        }),
        44..=49 => Request::Exists(ExistsRequest {
            path: gen_any_path(rng),
            watch: rng.chance(60),
        }),
        50..=56 => Request::GetData(GetDataRequest {
            path: gen_any_path(rng),
            watch: rng.chance(60),
        }),
        57..=60 => Request::GetChildren(GetChildrenRequest {
            path: gen_any_path(rng),
            watch: rng.chance(60),
        }),
        61..=65 => Request::GetChildren2(GetChildren2Request {
            path: gen_any_path(rng),
            watch: rng.chance(60),
        }),
        66..=74 => {
            let n = 1 + rng.index(4);
            Request::Multi((0..n).map(|_| gen_multi_op(rng)).collect())
        }
        75..=76 => {
            let n = 1 + rng.index(3);
            Request::MultiRead(
                (0..n)
                    .map(|_| {
                        if rng.chance(50) {
                            MultiOp::GetData(GetDataRequest {
                                path: gen_any_path(rng),
                                watch: false,
                            })
                        } else {
                            MultiOp::GetChildren(GetChildrenRequest {
                                path: gen_any_path(rng),
                                watch: false,
                            })
                        }
                    })
                    .collect(),
            )
        }
        77..=80 => Request::SetAcl(SetAclRequest {
            path: gen_path(rng),
            acl: gen_acl(rng),
            version: *rng.pick(&[-1, 0, 1]),
        }),
        81..=84 => Request::GetAcl(GetAclRequest {
            path: gen_any_path(rng),
        }),
        85..=87 => {
            return Op::AddAuth {
                slot,
                cred: if rng.chance(60) { ALICE.0 } else { BOB.0 },
            };
        }
        88..=90 => return Op::Reopen { slot },
        91..=92 => Request::Sync(SyncRequest {
            path: gen_any_path(rng),
        }),
        93..=95 => Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: (*rng.pick(&["/", "/a", "/s"])).to_owned(),
        }),
        _ => Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: gen_any_path(rng),
        }),
    };
    Op::Req { slot, req }
}

fn gen_ops(seed: u64, ttl: bool) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    // the top-level parents exist first (so most ops hit real nodes), each
    // with a watch from another session
    let mut ops = Vec::new();
    for (i, p) in ["/a", "/b", "/c", "/s"].into_iter().enumerate() {
        ops.push(Op::Req {
            slot: i % SLOTS,
            req: Request::Create(CreateRequest {
                path: p.into(),
                data: Some(Bytes::from_static(b"top")),
                acl: zk_integration::open_acl(),
                flags: 0,
            }),
        });
        ops.push(Op::Req {
            slot: (i + 1) % SLOTS,
            req: Request::GetChildren(GetChildrenRequest {
                path: p.into(),
                watch: true,
            }),
        });
    }
    ops.extend((ops.len()..OPS_PER_SEED).map(|_| gen_op(&mut rng, ttl)));
    ops
}

/// Placeholder for a zxid in a trace line, resolved to a rank at the end.
const Z: char = '\u{1}';

/// One trace line with its raw zxids (one per placeholder).
struct Line {
    text: String,
    zxids: Vec<i64>,
}

struct Tracer {
    lines: Vec<Line>,
    /// session id -> label (`S<slot>.<generation>`)
    labels: HashMap<i64, String>,
}

impl Tracer {
    fn owner(&self, id: i64) -> String {
        if id == 0 {
            "0".into()
        } else if id == i64::MIN {
            "container".into()
        } else if (id as u64) >> 56 == 0xff {
            format!("ttl:{}", id & 0xff_ffff_ffff)
        } else {
            self.labels
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("unknown-session:{id:#x}"))
        }
    }

    fn stat(&self, s: &Stat, text: &mut String, zx: &mut Vec<i64>) {
        let _ = write!(
            text,
            "{{c={Z} m={Z} p={Z} v={} cv={} av={} eo={} dl={} nc={}}}",
            s.version,
            s.cversion,
            s.aversion,
            self.owner(s.ephemeral_owner),
            s.data_length,
            s.num_children
        );
        zx.extend([s.czxid, s.mzxid, s.pzxid]);
    }

    fn body(&self, body: &Response, text: &mut String, zx: &mut Vec<i64>) {
        match body {
            Response::Empty => {}
            Response::Create(c) => {
                let _ = write!(text, " path={}", c.path);
            }
            Response::Create2(c) => {
                let _ = write!(text, " path={} ", c.path);
                self.stat(&c.stat, text, zx);
            }
            Response::Stat(s) => {
                text.push(' ');
                self.stat(s, text, zx);
            }
            Response::GetData(g) => {
                let _ = write!(text, " data={} ", data_text(g.data.as_ref()));
                self.stat(&g.stat, text, zx);
            }
            Response::GetAcl(g) => {
                let acls: Vec<String> = g
                    .acl
                    .iter()
                    .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
                    .collect();
                let _ = write!(text, " acl=[{}] ", acls.join(","));
                self.stat(&g.stat, text, zx);
            }
            Response::GetChildren(c) => {
                let _ = write!(text, " children={:?}", sorted(&c.children));
            }
            Response::GetChildren2(c) => {
                let _ = write!(text, " children={:?} ", sorted(&c.children));
                self.stat(&c.stat, text, zx);
            }
            Response::Sync(s) => {
                let _ = write!(text, " path={}", s.path);
            }
            Response::Multi(results) => {
                for (i, r) in results.iter().enumerate() {
                    let _ = write!(text, "\n    [{i}] ");
                    match r {
                        MultiResult::Create(c) => {
                            let _ = write!(text, "create path={}", c.path);
                        }
                        MultiResult::Create2(c) => {
                            let _ = write!(text, "create2 path={} ", c.path);
                            self.stat(&c.stat, text, zx);
                        }
                        MultiResult::Delete => text.push_str("delete"),
                        MultiResult::Check => text.push_str("check"),
                        MultiResult::SetData(s) => {
                            text.push_str("setData ");
                            self.stat(&s.stat, text, zx);
                        }
                        MultiResult::GetChildren(c) => {
                            let _ = write!(text, "getChildren {:?}", sorted(&c.children));
                        }
                        MultiResult::GetData(g) => {
                            let _ = write!(text, "getData data={} ", data_text(g.data.as_ref()));
                            self.stat(&g.stat, text, zx);
                        }
                        MultiResult::Error(e) => {
                            let _ = write!(text, "error {}", err_name(e.err));
                        }
                        other => {
                            let _ = write!(text, "{other:?}");
                        }
                    }
                }
            }
            Response::GetEphemerals(e) => {
                let _ = write!(text, " ephemerals={:?}", sorted(&e.ephemerals));
            }
            Response::GetAllChildrenNumber(n) => {
                let _ = write!(text, " total={}", n.total_number);
            }
            other => {
                let _ = write!(text, " {other:?}");
            }
        }
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn data_text(d: Option<&Bytes>) -> String {
    match d {
        None => "null".into(),
        Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
    }
}

fn err_name(err: i32) -> String {
    ErrorCode::try_from(err)
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|_| format!("err{err}"))
}

fn is_write(req: &Request) -> bool {
    matches!(
        req,
        Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
            | Request::SetData(_)
            | Request::SetAcl(_)
            | Request::Multi(_)
    )
}

/// Runs `ops` against fresh servers (session slot i at `addrs[i % len]`)
/// and returns the normalised trace. With more than one server every
/// session syncs after each op.
fn run(addrs: &[SocketAddr], ops: &[Op]) -> Vec<String> {
    let addr_of = |slot: usize| addrs[slot % addrs.len()];
    let ensemble = addrs.len() > 1;
    let mut t = Tracer {
        lines: Vec::new(),
        labels: HashMap::new(),
    };
    let mut generation = [0u32; SLOTS];
    let mut clients: Vec<Client> = (0..SLOTS)
        .map(|slot| {
            let c = Client::connect(addr_of(slot)).expect("connect");
            t.labels.insert(c.session_id(), format!("S{slot}.0"));
            c
        })
        .collect();
    for (i, op) in ops.iter().enumerate() {
        let (slot, mut text, mut zx) = match op {
            Op::Req { slot, req } => {
                let r = clients[*slot].call(req).expect("request");
                let mut text = format!("#{i} S{slot} {req:?} -> {}", err_name(r.err));
                let mut zx = Vec::new();
                if is_write(req) {
                    text.push_str(&format!(" zxid={Z}"));
                    zx.push(r.zxid);
                }
                t.body(&r.body, &mut text, &mut zx);
                (*slot, text, zx)
            }
            Op::AddAuth { slot, cred } => {
                let err = clients[*slot].add_auth("digest", cred).expect("auth");
                (
                    *slot,
                    format!("#{i} S{slot} addauth digest {cred} -> {}", err_name(err)),
                    Vec::new(),
                )
            }
            Op::Reopen { slot } => {
                let fresh = Client::connect(addr_of(*slot)).expect("connect");
                generation[*slot] += 1;
                t.labels
                    .insert(fresh.session_id(), format!("S{slot}.{}", generation[*slot]));
                let old = std::mem::replace(&mut clients[*slot], fresh);
                let r = old.close().expect("close session");
                (
                    *slot,
                    format!(
                        "#{i} S{slot} closeSession -> {} (reopened)",
                        err_name(r.err)
                    ),
                    Vec::new(),
                )
            }
        };
        let _ = slot;
        // a round trip on every session: the events this op caused are in
        for (s, c) in clients.iter_mut().enumerate() {
            if ensemble {
                let r = c
                    .call(&Request::Sync(SyncRequest { path: "/".into() }))
                    .expect("sync");
                assert_eq!(r.err, 0, "sync");
            }
            c.flush().expect("flush");
            for ev in c.take_events() {
                let _ = write!(
                    text,
                    "\n  event S{s}: type={} state={} path={}",
                    ev.event_type, ev.state, ev.path
                );
            }
        }
        t.lines.push(Line {
            text: std::mem::take(&mut text),
            zxids: std::mem::take(&mut zx),
        });
    }
    for c in clients {
        let _ = c.close();
    }
    // zxid -> rank among all zxids in the trace
    let all: BTreeSet<i64> = t
        .lines
        .iter()
        .flat_map(|l| l.zxids.iter().copied())
        .collect();
    let rank: HashMap<i64, usize> = all.iter().enumerate().map(|(i, z)| (*z, i)).collect();
    t.lines
        .iter()
        .map(|l| {
            let mut zs = l.zxids.iter();
            let mut out = String::with_capacity(l.text.len());
            for ch in l.text.chars() {
                if ch == Z {
                    let z = zs.next().expect("a zxid per placeholder");
                    let _ = write!(out, "z{}", rank[z]);
                } else {
                    out.push(ch);
                }
            }
            out
        })
        .collect()
}

fn server(flavor: Flavor) -> ZkServer {
    start_server(flavor, ServerOptions::default().extended_types())
}

/// What a trace runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// One server.
    Standalone(Flavor),
    /// An ensemble: member `i` runs `flavors[i]`, the sids in `observers`
    /// observe; the sessions are spread over every member.
    Ensemble {
        flavors: &'static [Flavor],
        observers: &'static [u64],
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Standalone(flavor) => write!(f, "{flavor}"),
            Target::Ensemble { flavors, observers } => {
                f.write_str("ensemble-")?;
                for (i, x) in flavors.iter().enumerate() {
                    let obs = if observers.contains(&(i as u64 + 1)) {
                        "(observer)"
                    } else {
                        ""
                    };
                    write!(
                        f,
                        "{x}{obs}{}",
                        if i + 1 < flavors.len() { "+" } else { "" }
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Runs `ops` against a fresh `target`.
fn run_on(target: Target, ops: &[Op]) -> Vec<String> {
    match target {
        Target::Standalone(flavor) => run(&[server(flavor).addr()], ops),
        Target::Ensemble { flavors, observers } => {
            let mut m: Vec<Member> = ensemble_with(
                flavors.len() as u64,
                &EnsembleOptions {
                    cfg_extra: "extendedTypesEnabled=true\n".into(),
                    flavors: flavors.to_vec(),
                    observers: observers.to_vec(),
                    sync_limit: 20,
                    ..EnsembleOptions::default()
                },
            );
            for x in m.iter_mut() {
                x.start();
            }
            let all: Vec<usize> = (0..m.len()).collect();
            let leader = serving(&m, &all);
            eprintln!("{target}: server {} leads", m[leader].sid);
            let addrs: Vec<SocketAddr> = m.iter().map(Member::addr).collect();
            let trace = run(&addrs, ops);
            // What each member applied is the same tree, digests included.
            assert_converged(&m, &all);
            trace
        }
    }
}

/// [`run_on`], once more on a fresh ensemble if a client lost its
/// connection on the way (a server dropping its clients, as when a starved
/// ensemble re-elects: seen once in CI with an observer among four; a trace
/// with a lost connection says nothing about the answers). A second loss
/// fails the test.
fn run_on_retrying(target: Target, ops: &[Op]) -> Vec<String> {
    if matches!(target, Target::Standalone(_)) {
        return run_on(target, ops);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_on(target, ops))) {
        Ok(trace) => trace,
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if !why.contains("Closed") && !why.contains("Io(") {
                std::panic::resume_unwind(e);
            }
            eprintln!("{target}: a client lost its connection ({why}); running the trace again");
            run_on(target, ops)
        }
    }
}

/// Runs every seed against `left` and `right` (fresh per seed) and fails at
/// the first divergence.
fn compare(left: Target, right: Target, ttl: bool) {
    compare_seeds(left, right, ttl, DEFAULT_SEEDS);
}

fn compare_seeds(left: Target, right: Target, ttl: bool, default_seeds: &[u64]) {
    let mut failures = Vec::new();
    for seed in seeds(default_seeds) {
        let ops = gen_ops(seed, ttl);
        let a = run_on(left, &ops);
        let b = run_on_retrying(right, &ops);
        if let Some(dir) = std::env::var_os("ZK_DIFF_DUMP") {
            // ZK_DIFF_DUMP=<dir>: keep both traces for reading or diffing
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("dump dir");
            std::fs::write(dir.join(format!("seed{seed}.{left}.txt")), a.join("\n")).expect("dump");
            std::fs::write(dir.join(format!("seed{seed}.{right}.2.txt")), b.join("\n"))
                .expect("dump");
        }
        if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
            let ctx: Vec<&str> = a[i.saturating_sub(3)..i]
                .iter()
                .map(String::as_str)
                .collect();
            failures.push(format!(
                "seed {seed} (rerun: ZK_TEST_SEED={seed}): first divergence at op #{i}\n\
                 context ({left}):\n{}\n--- {left}:\n{}\n--- {right}:\n{}\n",
                ctx.join("\n"),
                a.get(i).map_or("<none>", String::as_str),
                b.get(i).map_or("<none>", String::as_str),
            ));
        } else {
            eprintln!(
                "seed {seed}: {} ops, traces identical ({left} vs {right})",
                a.len()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Apache against Apache: proves the traces are deterministic (the
/// normalisation hides nothing that varies between runs) and exercises the
/// generator.
#[test]
fn apache_vs_apache_is_deterministic() {
    let apache = Target::Standalone(Flavor::Apache);
    compare(apache, apache, true);
}

/// Every op kind but createTTL.
#[test]
fn ours_matches_apache() {
    compare(
        Target::Standalone(Flavor::Apache),
        Target::Standalone(Flavor::Ours),
        false,
    );
}

/// With createTTL (Apache runs with `-Dzookeeper.extendedTypesEnabled=true`,
/// ours with `extendedTypesEnabled=true` in zoo.cfg).
#[test]
fn ours_matches_apache_with_ttl() {
    compare(
        Target::Standalone(Flavor::Apache),
        Target::Standalone(Flavor::Ours),
        true,
    );
}

/// Every op kind, createTTL included, through a 3-server ensemble of ours
/// with the sessions spread over the servers (writes at followers forwarded,
/// reads served locally, watches fired by other servers' writes): Apache's
/// trace (issue 14). Three seeds by default (`ZK_TEST_SEED` picks one).
#[test]
fn our_ensemble_matches_apache() {
    compare_seeds(
        Target::Standalone(Flavor::Apache),
        Target::Ensemble {
            flavors: &[Flavor::Ours, Flavor::Ours, Flavor::Ours],
            observers: &[],
        },
        true,
        &DEFAULT_SEEDS[..3],
    );
}

use Flavor::{Apache as A, Ours as O};

/// Mixed ensembles (issue 15) give the trace Apache's standalone server
/// gives, with the sessions spread over every member: ours leading two
/// Apache followers (sid 3 leads a fresh ensemble), ours following an
/// Apache leader, two of ours with one Apache server, and an Apache-led
/// ensemble with ours following and ours observing. One seed each (a
/// different one per ensemble; `ZK_TEST_SEED` picks one for all).
#[test]
fn mixed_ensembles_match_apache() {
    let ensembles: [(&'static [Flavor], &'static [u64]); 4] = [
        (&[A, A, O], &[]),
        (&[O, A, A], &[]),
        (&[O, O, A], &[]),
        (&[A, O, A, O], &[4]),
    ];
    for (k, (flavors, observers)) in ensembles.into_iter().enumerate() {
        compare_seeds(
            Target::Standalone(Flavor::Apache),
            Target::Ensemble { flavors, observers },
            true,
            &DEFAULT_SEEDS[k + 1..k + 2],
        );
    }
}

/// The generator produces every kind of op the module doc promises.
#[test]
fn generator_covers_every_op_kind() {
    let ops: Vec<Op> = DEFAULT_SEEDS
        .iter()
        .flat_map(|s| gen_ops(*s, true))
        .collect();
    let mut kinds = BTreeSet::new();
    for op in &ops {
        kinds.insert(match op {
            Op::Req { req, .. } => req.op_code().name().to_owned(),
            Op::AddAuth { .. } => "auth".into(),
            Op::Reopen { .. } => "closeSession".into(),
        });
    }
    for k in [
        "create",
        "create2",
        "createContainer",
        "createTTL",
        "delete",
        "setData",
        "exists",
        "getData",
        "getChildren",
        "getChildren2",
        "multi",
        "multiRead",
        "setACL",
        "getACL",
        "auth",
        "closeSession",
        "sync",
        "getEphemerals",
        "getAllChildrenNumber",
    ] {
        assert!(kinds.contains(k), "generator never produces {k}: {kinds:?}");
    }
}
