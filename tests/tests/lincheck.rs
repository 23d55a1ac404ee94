//! The history checker (`zk_integration::lincheck`) against hand-made
//! histories (ok and violating, one per rule), against seeded random
//! histories of a simulated ensemble (they must pass; with one injected
//! violation, it must be found), and against its budget. No timed asserts:
//! the figures come from the ignored `measure` test
//! (`cargo test --release -p zk-integration --test lincheck -- --ignored --nocapture`).

use std::collections::BTreeMap;
use std::time::Instant;

use zk_integration::lincheck::{
    Call, Committed, History, Op, Options, Outcome, Ret, Rule, TxnOp, Verdict, Znode, check,
};
use zk_integration::{Rng, seeds};

// ---- hand-made histories -------------------------------------------------

fn set(session: u64, invoke: u64, value: &str, version: i32) -> Op {
    Op {
        session,
        path: "/r".into(),
        invoke,
        call: Call::Set {
            value: value.into(),
            version,
        },
        ret: None,
    }
}

fn get(session: u64, invoke: u64) -> Op {
    Op {
        session,
        path: "/r".into(),
        invoke,
        call: Call::Get,
        ret: None,
    }
}

fn create(session: u64, invoke: u64, value: &str) -> Op {
    Op {
        session,
        path: "/r".into(),
        invoke,
        call: Call::Create {
            value: value.into(),
        },
        ret: None,
    }
}

fn delete(session: u64, invoke: u64, version: i32) -> Op {
    Op {
        session,
        path: "/r".into(),
        invoke,
        call: Call::Delete { version },
        ret: None,
    }
}

/// Gives `op` a return at `at` with `outcome` and reply zxid `zxid`.
fn ret(mut op: Op, at: u64, outcome: Outcome, zxid: Option<i64>) -> Op {
    op.ret = Some(Ret { at, outcome, zxid });
    op
}

fn set_ok(op: Op, at: u64, version: i32, zxid: Option<i64>) -> Op {
    ret(op, at, Outcome::Set { version }, zxid)
}

fn read(op: Op, at: u64, value: &str, version: i32, mzxid: i64, zxid: Option<i64>) -> Op {
    let z = Znode {
        value: value.into(),
        version,
        mzxid,
    };
    ret(op, at, Outcome::Read(Some(z)), zxid)
}

/// A history on `/r`, which starts as ("v0", version 0, mzxid 1).
fn hist(ops: Vec<Op>) -> History {
    let mut initial = BTreeMap::new();
    initial.insert(
        "/r".to_string(),
        Znode {
            value: "v0".into(),
            version: 0,
            mzxid: 1,
        },
    );
    History { ops, initial }
}

fn opts() -> Options {
    Options::default()
}

#[track_caller]
fn assert_ok(h: &History, o: &Options) {
    let v = check(h, o);
    assert!(v.is_ok(), "expected ok, got {v:?}");
}

#[track_caller]
fn assert_violates(h: &History, o: &Options, rule: Rule) -> Vec<usize> {
    match check(h, o) {
        Verdict::Violation(v, _) => {
            assert_eq!(v.rule, rule, "wrong rule: {v}");
            v.ops.clone()
        }
        other => panic!("expected {rule:?}, got {other:?}"),
    }
}

#[test]
fn concurrent_writes_and_stale_reads_of_other_sessions_pass() {
    // Session 1 writes v1 then v2; session 2 overlaps with a CAS that fails;
    // session 3, on a lagging follower, reads v0 after v2 was acknowledged:
    // allowed, ZooKeeper reads are not linearizable.
    let h = hist(vec![
        set_ok(set(1, 0, "v1", 0), 10, 1, Some(2)),
        ret(set(2, 5, "x", 0), 30, Outcome::BadVersion, Some(3)),
        set_ok(set(1, 11, "v2", 1), 20, 2, Some(4)),
        read(get(3, 25), 26, "v0", 0, 1, Some(1)),
        read(get(3, 27), 28, "v2", 2, 4, Some(4)),
    ]);
    assert_ok(&h, &opts());
}

#[test]
fn stale_read_within_a_session_is_found() {
    // Session 1 wrote v1 (zxid 2) and then read v0: not read-your-writes.
    let h = hist(vec![
        set_ok(set(1, 0, "v1", 0), 10, 1, Some(2)),
        read(get(1, 11), 12, "v0", 0, 1, Some(1)),
    ]);
    let ops = assert_violates(&h, &opts(), Rule::ZxidWentBack);
    assert_eq!(ops, vec![1, 0]);
    // Without the reply header's zxid the read still misses a write the
    // session had observed.
    let h = hist(vec![
        set_ok(set(1, 0, "v1", 0), 10, 1, Some(2)),
        read(get(1, 11), 12, "v0", 0, 1, None),
    ]);
    let ops = assert_violates(&h, &opts(), Rule::StaleRead);
    assert_eq!(
        ops,
        vec![1, 0, 0],
        "the read, the write it missed, the op that set the floor"
    );
    // A read older than another session's write the session saw via a read.
    let h = hist(vec![
        set_ok(set(2, 0, "v1", 0), 10, 1, Some(2)),
        set_ok(set(2, 11, "v2", 1), 20, 2, Some(3)),
        read(get(1, 21), 22, "v2", 2, 3, None),
        Op {
            path: "/other".into(),
            ..read(get(1, 23), 24, "o", 0, 1, Some(3))
        },
        read(get(1, 25), 26, "v1", 1, 2, Some(3)),
    ]);
    let mut h = h;
    h.initial.insert(
        "/other".into(),
        Znode {
            value: "o".into(),
            version: 0,
            mzxid: 1,
        },
    );
    let ops = assert_violates(&h, &opts(), Rule::StaleRead);
    assert_eq!(ops[0], 4);
    assert_eq!(ops[1], 1, "the write it missed");
}

#[test]
fn stale_no_node_read_is_found() {
    // Session 1 created /r (zxid 5), then read NoNode.
    let mut h = hist(vec![
        ret(create(1, 0, "a"), 10, Outcome::Created, Some(5)),
        ret(get(1, 11), 12, Outcome::Read(None), Some(5)),
    ]);
    h.initial.clear();
    let ops = assert_violates(&h, &opts(), Rule::StaleRead);
    assert_eq!(ops, vec![1, 0, 0]);
}

#[test]
fn lost_acknowledged_write_is_found() {
    // v1 was acknowledged as version 1, then a CAS expecting version 0
    // succeeded: v1 was lost. Without zxids only the search sees it.
    let h = hist(vec![
        set_ok(set(1, 0, "v1", 0), 10, 1, None),
        set_ok(set(2, 20, "v2", 0), 30, 1, None),
    ]);
    let ops = assert_violates(&h, &opts(), Rule::NotLinearizable);
    assert_eq!(ops[0], 1, "the op that cannot be linearized first: {ops:?}");
    assert!(
        ops.contains(&0),
        "the witness names the lost write: {ops:?}"
    );
    // With zxids, two states of version 1 at different zxids.
    let h = hist(vec![
        set_ok(set(1, 0, "v1", 0), 10, 1, Some(2)),
        set_ok(set(2, 20, "v2", 0), 30, 1, Some(3)),
    ]);
    assert_violates(&h, &opts(), Rule::VersionStep);
    // With the committed txns: the acknowledged write is missing there.
    let h = hist(vec![set_ok(set(1, 0, "v1", 0), 10, 1, Some(2))]);
    let o = Options {
        committed: Some(vec![]),
        ..opts()
    };
    assert_violates(&h, &o, Rule::LostWrite);
}

#[test]
fn writes_linearized_in_the_wrong_order_are_found() {
    // A returned before B was invoked, but B got the smaller zxid.
    let h = hist(vec![
        set_ok(set(1, 0, "a", -1), 10, 1, Some(5)),
        set_ok(set(2, 20, "b", -1), 30, 2, Some(4)),
    ]);
    assert_violates(&h, &opts(), Rule::RealTimeOrder);
    // Without zxids: B (invoked after A returned) saw version 1 as if first,
    // and a later CAS on version 1 succeeded, so A came after B.
    let h = hist(vec![
        set_ok(set(1, 0, "a", -1), 10, 1, None),
        set_ok(set(2, 20, "b", -1), 30, 1, None),
        set_ok(set(3, 40, "c", 1), 50, 2, None),
    ]);
    assert_violates(&h, &opts(), Rule::NotLinearizable);
    // Three concurrent writes: b (version 1), then a (version 2), and c,
    // expecting version 0, after both.
    let h = hist(vec![
        set_ok(set(1, 0, "a", -1), 50, 2, None),
        set_ok(set(2, 1, "b", -1), 50, 1, None),
        ret(set(3, 2, "c", 0), 50, Outcome::BadVersion, None),
    ]);
    assert_ok(&h, &opts());
}

#[test]
fn cas_that_succeeds_twice_on_one_version_is_found() {
    let h = hist(vec![
        set_ok(set(1, 0, "a", 0), 10, 1, None),
        set_ok(set(2, 5, "b", 0), 15, 1, None),
    ]);
    let ops = assert_violates(&h, &opts(), Rule::NotLinearizable);
    assert_eq!(ops.len(), 2, "{ops:?}");
    // One of them failing is fine.
    let h = hist(vec![
        set_ok(set(1, 0, "a", 0), 10, 1, None),
        ret(set(2, 5, "b", 0), 15, Outcome::BadVersion, None),
    ]);
    assert_ok(&h, &opts());
}

#[test]
fn unknown_write_may_or_may_not_have_happened() {
    // An unknown set, then a read that saw it: fine.
    let h = hist(vec![
        set(1, 0, "u", -1),
        read(get(2, 20), 21, "u", 1, 3, Some(3)),
    ]);
    assert_ok(&h, &opts());
    // An unknown set, then a CAS on version 0 that succeeds: fine (the unknown
    // one never happened, or happened after).
    let h = hist(vec![
        set(1, 0, "u", -1),
        set_ok(set(2, 20, "w", 0), 21, 1, None),
    ]);
    assert_ok(&h, &opts());
}

#[test]
fn unknown_write_that_must_have_happened_is_found_wrong() {
    // An unknown CAS 0→1, then a CAS on version 1 succeeded (so the unknown
    // one happened), then a CAS on version 0 succeeded too: impossible.
    let h = hist(vec![
        set(1, 0, "u", 0),
        set_ok(set(2, 20, "w", 1), 30, 2, None),
        set_ok(set(3, 40, "x", 0), 50, 1, None),
    ]);
    assert_violates(&h, &opts(), Rule::NotLinearizable);
    // The first two alone are fine: the unknown write happened.
    let h = hist(vec![
        set(1, 0, "u", 0),
        set_ok(set(2, 20, "w", 1), 30, 2, None),
    ]);
    assert_ok(&h, &opts());
    // A committed-txn list that lacks the unknown write says it never
    // happened: then the CAS on version 1 is impossible.
    let o = Options {
        committed: Some(vec![Committed {
            zxid: 9,
            session: 2,
            path: "/r".into(),
            op: TxnOp::Set { value: "w".into() },
        }]),
        ..opts()
    };
    assert_violates(&h, &o, Rule::NotLinearizable);
}

#[test]
fn committed_txns_resolve_unknown_writes() {
    // Two unknown sets; the log shows "u2" happened (zxid 3) and "u1" not; a
    // reader saw u2 at version 1.
    let h = hist(vec![
        set(1, 0, "u1", 0),
        set(2, 1, "u2", 0),
        read(get(3, 20), 21, "u2", 1, 3, Some(3)),
        set_ok(set(3, 22, "w", 1), 30, 2, Some(4)),
    ]);
    let committed = vec![
        Committed {
            zxid: 3,
            session: 2,
            path: "/r".into(),
            op: TxnOp::Set { value: "u2".into() },
        },
        Committed {
            zxid: 4,
            session: 3,
            path: "/r".into(),
            op: TxnOp::Set { value: "w".into() },
        },
    ];
    let o = Options {
        committed: Some(committed),
        ..opts()
    };
    let v = check(&h, &o);
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(
        (v.stats().unknown_happened, v.stats().unknown_dropped),
        (1, 1)
    );
    // A reader that saw the dropped one read a phantom.
    let mut h = h;
    h.ops[2] = read(get(3, 20), 21, "u1", 1, 3, Some(3));
    assert_violates(&h, &o, Rule::PhantomRead);
}

#[test]
fn creates_and_deletes_linearize() {
    let mut h = hist(vec![
        ret(create(1, 0, "a"), 10, Outcome::Created, Some(2)),
        ret(create(2, 5, "b"), 12, Outcome::NodeExists, Some(3)),
        ret(delete(2, 13, 0), 20, Outcome::Deleted, Some(4)),
        ret(delete(1, 21, -1), 30, Outcome::NoNode, Some(5)),
        ret(create(2, 31, "c"), 40, Outcome::Created, Some(6)),
        set_ok(set(1, 41, "d", 0), 50, 1, Some(7)),
    ]);
    h.initial.clear();
    assert_ok(&h, &opts());
    // A second create that also succeeded, with no delete between: no.
    h.ops[1] = ret(create(2, 5, "b"), 12, Outcome::Created, Some(3));
    assert_violates(&h, &opts(), Rule::NotLinearizable);
}

#[test]
fn versions_step_by_one() {
    let h = hist(vec![set_ok(set(1, 0, "a", 0), 10, 2, Some(2))]);
    assert_violates(&h, &opts(), Rule::VersionStep);
}

#[test]
fn session_zxids_never_go_back() {
    let h = hist(vec![
        set_ok(set(1, 0, "a", -1), 10, 1, Some(7)),
        ret(set(1, 11, "b", 5), 20, Outcome::BadVersion, Some(6)),
    ]);
    assert_violates(&h, &opts(), Rule::ZxidWentBack);
}

#[test]
fn budget_ends_in_undecided() {
    // Twenty concurrent unknown sets, then a create that cannot succeed: the
    // search would try every subset before failing.
    let mut ops: Vec<Op> = (0..20).map(|i| set(i, i, &format!("u{i}"), -1)).collect();
    ops.push(ret(create(99, 100, "x"), 110, Outcome::Created, None));
    let h = hist(ops);
    let o = Options {
        max_states: 10_000,
        ..opts()
    };
    match check(&h, &o) {
        Verdict::Undecided { path, stats } => {
            assert_eq!(path, "/r");
            assert_eq!(stats.states, 10_001);
        }
        other => panic!("expected undecided, got {other:?}"),
    }
}

// ---- random histories of a simulated ensemble ----------------------------

/// Shape of a generated history.
#[derive(Clone, Copy)]
struct Shape {
    clients: u64,
    paths: usize,
    ops: usize,
    unknown_pct: u64,
    /// Percent of reads served by a lagging follower.
    lag_pct: u64,
}

/// A generated history with what the servers committed.
struct Generated {
    history: History,
    committed: Vec<Committed>,
}

/// The simulated ensemble: one register per path, a global zxid; a write
/// takes effect at its linearization point (between invoke and return),
/// failed writes take a zxid too; a read is served at a zxid between its
/// session's floor and the newest, as a follower would.
struct Sim {
    zxid: i64,
    /// Per path: the states by zxid (`None`: absent).
    states: Vec<Vec<(i64, Option<Znode>)>>,
    committed: Vec<Committed>,
}

impl Sim {
    fn current(&self, p: usize) -> Option<&Znode> {
        self.states[p].last().and_then(|(_, s)| s.as_ref())
    }

    fn at(&self, p: usize, z: i64) -> Option<Znode> {
        let k = self.states[p].partition_point(|&(sz, _)| sz <= z);
        self.states[p][k - 1].1.clone()
    }

    /// Applies a write; returns its outcome and zxid.
    fn write(&mut self, session: u64, path: &str, p: usize, call: &Call) -> (Outcome, i64) {
        self.zxid += 1;
        let z = self.zxid;
        let cur = self.current(p).cloned();
        let (out, next) = match (call, cur) {
            (Call::Set { .. } | Call::Delete { .. }, None) => (Outcome::NoNode, None),
            (Call::Set { version: e, .. } | Call::Delete { version: e }, Some(n))
                if *e != -1 && *e != n.version =>
            {
                (Outcome::BadVersion, None)
            }
            (Call::Set { value, .. }, Some(n)) => {
                let version = n.version + 1;
                let node = Znode {
                    value: value.clone(),
                    version,
                    mzxid: z,
                };
                (Outcome::Set { version }, Some(Some(node)))
            }
            (Call::Delete { .. }, Some(_)) => (Outcome::Deleted, Some(None)),
            (Call::Create { .. }, Some(_)) => (Outcome::NodeExists, None),
            (Call::Create { value }, None) => {
                let node = Znode {
                    value: value.clone(),
                    version: 0,
                    mzxid: z,
                };
                (Outcome::Created, Some(Some(node)))
            }
            (Call::Get, _) => unreachable!("reads are not written"),
        };
        if let Some(next) = next {
            self.states[p].push((z, next));
            let op = match call {
                Call::Set { value, .. } => TxnOp::Set {
                    value: value.clone(),
                },
                Call::Create { value } => TxnOp::Create {
                    value: value.clone(),
                },
                _ => TxnOp::Delete,
            };
            self.committed.push(Committed {
                zxid: z,
                session,
                path: path.into(),
                op,
            });
        }
        (out, z)
    }
}

/// One client's op, timed before its content is chosen.
struct Slot {
    client: usize,
    /// The client's session: a new one after each unknown outcome (the
    /// client reconnects).
    session: u64,
    invoke: u64,
    lin: u64,
    ret: u64,
    unknown: bool,
}

/// The clients' timelines: sequential per client, times multiples of 4 so
/// injected ops fit between.
fn timelines(rng: &mut Rng, s: Shape) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(s.ops);
    let mut t = vec![0u64; s.clients as usize];
    let mut sessions: Vec<u64> = (0..s.clients).map(|c| c << 32).collect();
    for k in 0..s.ops {
        let client = k % s.clients as usize;
        let session = sessions[client];
        let invoke = t[client] + 4 * (1 + rng.below(5));
        let unknown = rng.chance(s.unknown_pct);
        let lin = invoke + 4 * (1 + rng.below(if unknown { 60 } else { 10 }));
        let ret = if unknown {
            invoke + 4 * 30
        } else {
            lin + 4 * (1 + rng.below(10))
        };
        t[client] = ret;
        if unknown {
            sessions[client] += 1;
        }
        slots.push(Slot {
            client,
            session,
            invoke,
            lin,
            ret,
            unknown,
        });
    }
    slots.sort_by_key(|s| (s.lin, s.client));
    slots
}

struct Client {
    session: u64,
    floor: i64,
    /// The last version seen per path.
    known: Vec<i32>,
    n: u64,
}

/// A linearizable (for writes) history under ZooKeeper's contract.
fn generate(seed: u64, s: Shape) -> Generated {
    let mut rng = Rng::new(seed);
    let paths: Vec<String> = (0..s.paths).map(|p| format!("/reg{p}")).collect();
    let mut sim = Sim {
        zxid: 1,
        states: Vec::new(),
        committed: Vec::new(),
    };
    let mut initial = BTreeMap::new();
    for p in &paths {
        let z = Znode {
            value: b"init".to_vec(),
            version: 0,
            mzxid: 1,
        };
        initial.insert(p.clone(), z.clone());
        sim.states.push(vec![(1, Some(z))]);
    }
    let mut clients: Vec<Client> = (0..s.clients)
        .map(|c| Client {
            session: c << 32,
            floor: 1,
            known: vec![0; s.paths],
            n: 0,
        })
        .collect();
    let mut ops = Vec::with_capacity(s.ops);
    for slot in timelines(&mut rng, s) {
        let c = &mut clients[slot.client];
        // The unknown op of the old session may come after the new session's
        // first ops in linearization order.
        if slot.session > c.session {
            c.session = slot.session;
            c.floor = 1;
        }
        let p = rng.index(s.paths);
        c.n += 1;
        let value = format!("c{}-{}", slot.client, c.n).into_bytes();
        let roll = rng.below(100);
        let call = match roll {
            0..45 => Call::Get,
            45..85 => {
                let version = if rng.chance(20) { -1 } else { c.known[p] };
                Call::Set { value, version }
            }
            85..93 => Call::Delete {
                version: if rng.chance(50) { -1 } else { c.known[p] },
            },
            _ => Call::Create { value },
        };
        let op = Op {
            session: c.session,
            path: paths[p].clone(),
            invoke: slot.invoke,
            call,
            ret: None,
        };
        ops.push(step(&mut rng, &mut sim, c, op, &slot, p, s));
    }
    Generated {
        history: History { ops, initial },
        committed: sim.committed,
    }
}

/// Runs `op` in the simulated ensemble at its linearization point.
fn step(
    rng: &mut Rng,
    sim: &mut Sim,
    c: &mut Client,
    mut op: Op,
    slot: &Slot,
    p: usize,
    s: Shape,
) -> Op {
    if op.call == Call::Get {
        if slot.unknown {
            // A read that timed out tells nothing.
            return op;
        }
        let z = if rng.chance(s.lag_pct) {
            c.floor + rng.below((sim.zxid - c.floor + 1) as u64) as i64
        } else {
            sim.zxid
        };
        let state = sim.at(p, z);
        if let Some(n) = &state {
            c.known[p] = n.version;
        }
        c.floor = c.floor.max(z);
        op.ret = Some(Ret {
            at: slot.ret,
            outcome: Outcome::Read(state),
            zxid: Some(z),
        });
        return op;
    }
    if slot.unknown {
        if rng.chance(50) {
            sim.write(op.session, &op.path.clone(), p, &op.call);
        }
        return op;
    }
    let (outcome, z) = sim.write(op.session, &op.path.clone(), p, &op.call);
    if let Outcome::Set { version } = outcome {
        c.known[p] = version;
    }
    c.floor = z;
    op.ret = Some(Ret {
        at: slot.ret,
        outcome,
        zxid: Some(z),
    });
    op
}

const SMALL: Shape = Shape {
    clients: 5,
    paths: 4,
    ops: 400,
    unknown_pct: 2,
    lag_pct: 30,
};

#[test]
fn random_histories_pass() {
    for seed in seeds(&(1..=40).collect::<Vec<_>>()) {
        let g = generate(seed, SMALL);
        let v = check(&g.history, &opts());
        assert!(v.is_ok(), "seed {seed}: {}", explain(&g.history, &v));
        let o = Options {
            committed: Some(g.committed.clone()),
            ..opts()
        };
        let v = check(&g.history, &o);
        assert!(v.is_ok(), "seed {seed} with committed txns: {v:?}");
        // Without any zxid, only the search runs: still ok.
        let mut h = g.history.clone();
        strip_zxids(&mut h);
        let v = check(&h, &opts());
        assert!(v.is_ok(), "seed {seed} without zxids: {v:?}");
    }
}

/// The verdict with the ops it names, for failure messages.
fn explain(h: &History, v: &Verdict) -> String {
    let mut s = format!("{v:?}");
    for &i in v.violation().map_or(&[][..], |x| x.ops.as_slice()) {
        s.push_str(&format!("\n  op {i}: {:?}", h.ops[i]));
    }
    s
}

fn strip_zxids(h: &mut History) {
    for op in &mut h.ops {
        if let Some(r) = &mut op.ret {
            r.zxid = None;
        }
    }
}

/// Adds, right after an acknowledged CAS (expected version ≥ 1, so no
/// recreated node reaches it again), a second CAS on the same version that
/// also succeeds, by a fresh session, without zxids. Returns its index.
fn inject_double_cas(h: &mut History, rng: &mut Rng) -> Option<usize> {
    let candidates: Vec<usize> = (0..h.ops.len())
        .filter(|&i| match (&h.ops[i].call, &h.ops[i].ret) {
            (Call::Set { version, .. }, Some(r)) => {
                *version >= 1 && matches!(r.outcome, Outcome::Set { .. })
            }
            _ => false,
        })
        .collect();
    let &a = rng.pick(&candidates);
    let (path, at, version) = match (&h.ops[a].call, &h.ops[a].ret) {
        (Call::Set { version, .. }, Some(r)) => (h.ops[a].path.clone(), r.at, *version),
        _ => return None,
    };
    h.ops.push(Op {
        session: u64::MAX,
        path,
        invoke: at + 1,
        call: Call::Set {
            value: b"dup".to_vec(),
            version,
        },
        ret: Some(Ret {
            at: at + 2,
            outcome: Outcome::Set {
                version: version + 1,
            },
            zxid: None,
        }),
    });
    Some(h.ops.len() - 1)
}

/// Makes one read return the state its path had before a write the
/// reader's session had already observed. Returns its index.
fn inject_stale_read(h: &mut History, rng: &mut Rng) -> Option<usize> {
    // A session's own acknowledged set and a later read of that path.
    let mut pairs = Vec::new();
    for (i, w) in h.ops.iter().enumerate() {
        let Some(Ret {
            outcome: Outcome::Set { version },
            at,
            ..
        }) = &w.ret
        else {
            continue;
        };
        if *version < 1 {
            continue;
        }
        let later = h.ops.iter().enumerate().find(|(_, r)| {
            r.session == w.session && r.invoke > *at && r.call == Call::Get && r.path == w.path
        });
        if let Some((j, _)) = later.filter(|(_, r)| r.ret.is_some()) {
            pairs.push((i, j));
        }
    }
    let &(i, j) = rng.pick(&pairs);
    let (Some(Ret { zxid: Some(wz), .. }), Call::Set { .. }) = (&h.ops[i].ret, &h.ops[i].call)
    else {
        return None;
    };
    // The state right before the write: find a read or write of the path
    // with a smaller mzxid; simplest, the initial state.
    let old = h.initial.get(&h.ops[i].path).cloned()?;
    assert!(old.mzxid < *wz);
    if let Some(r) = &mut h.ops[j].ret {
        r.outcome = Outcome::Read(Some(old));
        r.zxid = None;
    }
    Some(j)
}

#[test]
fn random_histories_with_one_violation_fail() {
    for seed in seeds(&(1..=40).collect::<Vec<_>>()) {
        let g = generate(seed, SMALL);
        let mut rng = Rng::new(seed ^ 0xdead);
        let mut h = g.history.clone();
        strip_zxids(&mut h);
        let dup = inject_double_cas(&mut h, &mut rng).expect("a CAS to double");
        let v = check(&h, &opts());
        let found = v
            .violation()
            .unwrap_or_else(|| panic!("seed {seed}: double CAS not found: {v:?}"));
        assert_eq!(found.rule, Rule::NotLinearizable, "seed {seed}: {found}");
        assert_eq!(
            found.path.as_deref(),
            Some(h.ops[dup].path.as_str()),
            "seed {seed}"
        );

        let mut h = g.history.clone();
        let stale = inject_stale_read(&mut h, &mut rng).expect("a read to make stale");
        let v = check(&h, &opts());
        let found = v
            .violation()
            .unwrap_or_else(|| panic!("seed {seed}: stale read not found: {v:?}"));
        assert!(
            matches!(found.rule, Rule::StaleRead | Rule::ZxidWentBack),
            "seed {seed}: {found}"
        );
        assert!(found.ops.contains(&stale), "seed {seed}: {found}");
    }
}

// ---- figures ---------------------------------------------------------------

fn timed(label: &str, h: &History, o: &Options) {
    let t = Instant::now();
    let v = check(h, o);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let what = match &v {
        Verdict::Ok(_) => "ok".to_string(),
        Verdict::Violation(x, _) => format!("{:?}", x.rule),
        Verdict::Undecided { .. } => "undecided".to_string(),
    };
    let st = v.stats();
    println!(
        "{label:<52} {ms:>9.2} ms  {what:<16} states {:>9}  unknown happened/dropped {}/{}",
        st.states, st.unknown_happened, st.unknown_dropped
    );
}

/// Prints how long checks take (`--release --ignored --nocapture`).
#[test]
#[ignore = "prints figures; run by hand in release"]
fn measure() {
    let shapes = [
        (
            "10k ops, 100 znodes, 2% unknown",
            Shape {
                clients: 20,
                paths: 100,
                ops: 10_000,
                unknown_pct: 2,
                lag_pct: 30,
            },
        ),
        (
            "10k ops, 10 znodes, 2% unknown",
            Shape {
                clients: 20,
                paths: 10,
                ops: 10_000,
                unknown_pct: 2,
                lag_pct: 30,
            },
        ),
        (
            "10k ops, 1 znode, 0% unknown",
            Shape {
                clients: 5,
                paths: 1,
                ops: 10_000,
                unknown_pct: 0,
                lag_pct: 30,
            },
        ),
        (
            "10k ops, 1 znode, 2% unknown",
            Shape {
                clients: 5,
                paths: 1,
                ops: 10_000,
                unknown_pct: 2,
                lag_pct: 30,
            },
        ),
    ];
    let budget = opts();
    for (name, shape) in shapes {
        let g = generate(7, shape);
        timed(&format!("{name}: ok"), &g.history, &budget);
        let with = Options {
            committed: Some(g.committed.clone()),
            ..budget.clone()
        };
        timed(&format!("{name}: ok, committed txns"), &g.history, &with);
        let mut h = g.history.clone();
        strip_zxids(&mut h);
        timed(&format!("{name}: ok, no zxids (search only)"), &h, &budget);
        let mut rng = Rng::new(99);
        let dup = inject_double_cas(&mut h, &mut rng).expect("a CAS to double");
        timed(&format!("{name}: double CAS, no zxids"), &h, &budget);
        // The same with the committed txns (the doubled CAS logged too, so
        // that only the search can find it).
        let mut log = g.committed.clone();
        let op = &h.ops[dup];
        let Call::Set { value, .. } = &op.call else {
            unreachable!("a set")
        };
        let value = value.clone();
        log.push(Committed {
            zxid: i64::MAX,
            session: op.session,
            path: op.path.clone(),
            op: TxnOp::Set { value },
        });
        let with = Options {
            committed: Some(log),
            ..budget.clone()
        };
        timed(
            &format!("{name}: double CAS, no zxids, committed txns"),
            &h,
            &with,
        );
        let mut h = g.history.clone();
        inject_stale_read(&mut h, &mut rng);
        timed(&format!("{name}: stale read"), &h, &budget);
    }
}
