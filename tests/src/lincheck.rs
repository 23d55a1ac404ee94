//! A history checker for ZooKeeper's consistency contract, for the fault
//! harness (issue 16; `shared/design/ensemble-testing.md` §2).
//!
//! The harness records every client operation with its invoke time, its return
//! time and its outcome, or no return at all when the outcome is unknown (a
//! timeout or a lost connection: Jepsen's `:info`). [`check`] reads such a
//! [`History`] and returns a [`Verdict`].
//!
//! # What is checked
//!
//! ZooKeeper promises linearizable writes but not linearizable reads
//! (followers answer reads from their own tree; `sync` + read is not
//! linearizable either: ZOOKEEPER-1675). So the checks are:
//!
//! 1. **Writes and conditional outcomes linearize** (§2.3 a): setData,
//!    create and delete, with their failures (BadVersion, NoNode,
//!    NodeExists), are checked with a Wing–Gong–Lowe search with Lowe's
//!    memoisation (the set of linearized ops, as a 128-bit fingerprint, plus
//!    the model state, as porcupine) against a versioned register, one znode
//!    at a time (P-compositionality: each path is an independent object). Reads take
//!    no part in this search.
//! 2. **Per session** (§2.3 b, no search): the zxids a session observes
//!    never go back; a read returns a state no older than the session's last
//!    observed zxid (monotonic reads, read-your-writes): a read that returns
//!    the state written at `mzxid` is stale if a write on that path with a
//!    known zxid in `(mzxid, floor]` exists, where `floor` is the largest zxid
//!    the session had observed when it sent the read; a NoNode read is stale
//!    if the last known write at or below `floor` created or set the node and
//!    no delete of unknown zxid could sit between.
//! 3. **The order ZooKeeper hands out** (§2.3 c, no search): if write A
//!    returned before write B was invoked then `zxid(A) < zxid(B)` (failed
//!    writes included: they are error txns with a zxid); a setData with an
//!    expected version `v` that succeeds returns version `v + 1`; every read
//!    returns a state some write (or the initial tree) produced — if a write
//!    with a known zxid equal to the read's `mzxid` exists, the same value and
//!    version; two observations of one path at one zxid agree, and on a path
//!    never created or deleted in the history versions grow with zxids.
//! 4. With a committed-txn list ([`Options::committed`], read from the
//!    servers after the run): every acknowledged successful write is in it
//!    (else [`Rule::LostWrite`]); an unknown write found there happened (at
//!    that zxid: it must linearize before every write with a larger known
//!    zxid), one absent never happened and is dropped. This is what keeps the
//!    search cheap: each unresolved unknown write stays concurrent with
//!    everything after its invoke and multiplies the states to visit.
//!
//! # What is not checked
//!
//! Watches, ephemerals, sequential names, children lists, multi, ACLs and
//! sessions expiring. Reads are checked only through zxids (2 and 3), so a
//! history without zxids gets only the write search. Checks that need a zxid
//! the history lacks are skipped for that op, never guessed: every rule is
//! sound (a violation it reports is real under the model), none is complete.
//! Values are compared as bytes; give every write a unique value or the
//! value-based matching (reads to writes, unknown writes to committed txns)
//! gets weaker, never wrong for acknowledged ops.
//!
//! # The budget
//!
//! The search is exponential in the worst case (concurrent and unknown
//! writes). [`Options::max_states`] caps the memoised states visited over all
//! paths (default 2 million: about 100 MB of cache and a few seconds),
//! [`Options::deadline`] the wall time; reaching either ends the check in
//! [`Verdict::Undecided`] naming the path, never in a hang. Tests use the
//! state budget only, so they stay deterministic. The measured costs are in
//! the ignored test `measure` of `tests/tests/lincheck.rs`: 10k ops over 100
//! znodes take milliseconds; the one case that runs out is a violation on a
//! single hot znode with ~100 unresolved unknown writes before it, where every
//! subset of them must be tried — resolving them from the committed txns (4)
//! makes it milliseconds again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// getData.
    Get,
    /// setData with an expected version (`-1`: any).
    Set {
        /// The new data.
        value: Vec<u8>,
        /// The expected version, or `-1`.
        version: i32,
    },
    /// create (persistent, not sequential).
    Create {
        /// The data.
        value: Vec<u8>,
    },
    /// delete with an expected version (`-1`: any).
    Delete {
        /// The expected version, or `-1`.
        version: i32,
    },
}

impl Call {
    fn is_write(&self) -> bool {
        !matches!(self, Call::Get)
    }
}

/// A znode's state as a read saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Znode {
    /// Its data.
    pub value: Vec<u8>,
    /// `Stat.version`.
    pub version: i32,
    /// `Stat.mzxid`: the zxid of the write that produced this state.
    pub mzxid: i64,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// getData: the node's state, or `None` for NoNode.
    Read(Option<Znode>),
    /// setData succeeded with this new version (its zxid in [`Ret::zxid`]).
    Set {
        /// `Stat.version` after the write.
        version: i32,
    },
    /// create succeeded.
    Created,
    /// delete succeeded.
    Deleted,
    /// A versioned setData or delete failed: BADVERSION.
    BadVersion,
    /// setData or delete of a missing node: NONODE.
    NoNode,
    /// create of an existing node: NODEEXISTS.
    NodeExists,
}

/// A returned operation's return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ret {
    /// When the reply arrived (the same clock as [`Op::invoke`]).
    pub at: u64,
    /// The answer.
    pub outcome: Outcome,
    /// The zxid the reply showed: for a write the zxid of its txn
    /// (`Stat.mzxid` of setData, or the reply header's zxid), for a read the
    /// reply header's zxid (the server's last applied zxid). `None` if the
    /// harness did not record it.
    pub zxid: Option<i64>,
}

/// One operation of one client session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client session (any id unique to the session).
    pub session: u64,
    /// The znode's path.
    pub path: String,
    /// When the request was sent (any monotonic clock, e.g. nanoseconds).
    pub invoke: u64,
    /// The request.
    pub call: Call,
    /// The reply, or `None` when the outcome is unknown (it may or may not
    /// have happened, at any time after `invoke`).
    pub ret: Option<Ret>,
}

/// A recorded history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The operations, in any order.
    pub ops: Vec<Op>,
    /// The znodes that exist when the history starts; any other path starts
    /// absent.
    pub initial: BTreeMap<String, Znode>,
}

/// A state change in the servers' committed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// setData.
    Set {
        /// The data written.
        value: Vec<u8>,
    },
    /// create.
    Create {
        /// The data.
        value: Vec<u8>,
    },
    /// delete.
    Delete,
}

/// One committed txn (error txns left out), as read from a server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Its zxid.
    pub zxid: i64,
    /// The session that sent it (`TxnHeader.clientId`).
    pub session: u64,
    /// The znode.
    pub path: String,
    /// The change.
    pub op: TxnOp,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The committed txns in zxid order, if the test read them.
    pub committed: Option<Vec<Committed>>,
    /// The most memoised search states to visit over all paths.
    pub max_states: u64,
    /// A wall-clock limit for the search (`None` in deterministic tests).
    pub deadline: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            committed: None,
            max_states: 2_000_000,
            deadline: None,
        }
    }
}

/// The rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// The writes on one znode have no linearization.
    NotLinearizable,
    /// A session observed a smaller zxid after a larger one.
    ZxidWentBack,
    /// A read older than what its session had already observed.
    StaleRead,
    /// A read returned a state no write produced.
    PhantomRead,
    /// Write A returned before write B was invoked but `zxid(A) >= zxid(B)`.
    RealTimeOrder,
    /// A version that does not step by one, or two states at one zxid.
    VersionStep,
    /// An acknowledged write is missing from the committed txns.
    LostWrite,
}

/// A history that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// The znode, when the rule concerns one.
    pub path: Option<String>,
    /// Indexes into [`History::ops`] of the ops involved, the most telling
    /// first (for [`Rule::NotLinearizable`]: the op that could not be
    /// linearized, then the last ops of the longest linearized prefix, then
    /// ops pending at that point).
    pub ops: Vec<usize>,
    /// What went wrong, in words.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.rule)?;
        if let Some(p) = &self.path {
            write!(f, " on {p}")?;
        }
        write!(f, ": {} (ops {:?})", self.detail, self.ops)
    }
}

/// Counters of a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Paths searched.
    pub paths: usize,
    /// Write ops searched (after unknown writes were resolved).
    pub writes: usize,
    /// Unknown writes dropped because the committed txns lack them.
    pub unknown_dropped: usize,
    /// Unknown writes the committed txns show happened.
    pub unknown_happened: usize,
    /// Memoised search states visited.
    pub states: u64,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Ok(Stats),
    /// The first violation found (search-free checks run first).
    Violation(Box<Violation>, Stats),
    /// The budget ran out while searching this path; the checks before it
    /// passed.
    Undecided {
        /// The path being searched.
        path: String,
        /// Counters so far.
        stats: Stats,
    },
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok(_))
    }

    /// The violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Verdict::Violation(v, _) => Some(v),
            _ => None,
        }
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        match self {
            Verdict::Ok(s) | Verdict::Violation(_, s) | Verdict::Undecided { stats: s, .. } => *s,
        }
    }
}

/// Checks `history` (see the module documentation).
pub fn check(history: &History, opts: &Options) -> Verdict {
    let mut stats = Stats::default();
    let resolved = match resolve(history, opts.committed.as_deref(), &mut stats) {
        Ok(r) => r,
        Err(v) => return Verdict::Violation(Box::new(v), stats),
    };
    let free = order::check_all(history, &resolved);
    if let Err(v) = free {
        return Verdict::Violation(Box::new(v), stats);
    }
    let mut budget = wgl::Budget::new(opts.max_states, opts.deadline);
    let mut paths: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if op.call.is_write() && resolved.fate[i] != Fate::Dropped {
            paths.entry(op.path.as_str()).or_default().push(i);
        }
    }
    for (path, ops) in paths {
        stats.paths += 1;
        stats.writes += ops.len();
        let result = wgl::check_path(history, &resolved, path, &ops, &mut budget);
        stats.states = budget.states;
        match result {
            wgl::PathResult::Ok => {}
            wgl::PathResult::Violation(v) => return Verdict::Violation(Box::new(v), stats),
            wgl::PathResult::OutOfBudget => {
                return Verdict::Undecided {
                    path: path.to_string(),
                    stats,
                };
            }
        }
    }
    Verdict::Ok(stats)
}

/// What became of each op once the committed txns were consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Returned, or unknown and unresolved.
    AsRecorded,
    /// Unknown, absent from the committed txns: never happened.
    Dropped,
    /// Unknown, found in the committed txns at this zxid.
    Happened(i64),
}

struct Resolved {
    fate: Vec<Fate>,
}

impl Resolved {
    /// The zxid of op `i` if known: its reply's, or the committed txn's.
    fn zxid(&self, history: &History, i: usize) -> Option<i64> {
        match self.fate[i] {
            Fate::Happened(z) => Some(z),
            Fate::Dropped => None,
            Fate::AsRecorded => history.ops[i].ret.as_ref().and_then(|r| r.zxid),
        }
    }
}

type TxnKey<'a> = (u64, &'a str, u8, &'a [u8]);

fn call_key(op: &Op) -> Option<TxnKey<'_>> {
    match &op.call {
        Call::Get => None,
        Call::Set { value, .. } => Some((op.session, &op.path, 0, value)),
        Call::Create { value } => Some((op.session, &op.path, 1, value)),
        Call::Delete { .. } => Some((op.session, &op.path, 2, &[])),
    }
}

fn txn_key(c: &Committed) -> TxnKey<'_> {
    match &c.op {
        TxnOp::Set { value } => (c.session, &c.path, 0, value),
        TxnOp::Create { value } => (c.session, &c.path, 1, value),
        TxnOp::Delete => (c.session, &c.path, 2, &[]),
    }
}

fn is_success(o: &Outcome) -> bool {
    matches!(o, Outcome::Set { .. } | Outcome::Created | Outcome::Deleted)
}

/// Matches writes to committed txns: acknowledged successes claim theirs (by
/// zxid when known, else by session, path, kind and value), then unknown
/// writes take the first unclaimed match in invoke order.
fn resolve(
    history: &History,
    committed: Option<&[Committed]>,
    stats: &mut Stats,
) -> Result<Resolved, Violation> {
    let mut fate = vec![Fate::AsRecorded; history.ops.len()];
    let Some(committed) = committed else {
        return Ok(Resolved { fate });
    };
    let mut by_zxid: HashMap<i64, usize> = HashMap::new();
    let mut by_key: HashMap<TxnKey<'_>, Vec<usize>> = HashMap::new();
    for (j, c) in committed.iter().enumerate() {
        by_zxid.insert(c.zxid, j);
        by_key.entry(txn_key(c)).or_default().push(j);
    }
    let mut claimed = vec![false; committed.len()];
    let mut order: Vec<usize> = (0..history.ops.len()).collect();
    order.sort_by_key(|&i| (history.ops[i].invoke, i));
    for &i in &order {
        let op = &history.ops[i];
        let (Some(key), Some(ret)) = (call_key(op), &op.ret) else {
            continue;
        };
        if !is_success(&ret.outcome) {
            continue;
        }
        let found = match ret.zxid {
            Some(z) => by_zxid
                .get(&z)
                .copied()
                .filter(|&j| txn_key(&committed[j]) == key),
            None => by_key
                .get(&key)
                .and_then(|js| js.iter().copied().find(|&j| !claimed[j])),
        };
        match found {
            Some(j) => claimed[j] = true,
            None => {
                return Err(Violation {
                    rule: Rule::LostWrite,
                    path: Some(op.path.clone()),
                    ops: vec![i],
                    detail: format!(
                        "acknowledged {:?} (zxid {:?}) is not among the committed txns",
                        op.call, ret.zxid
                    ),
                });
            }
        }
    }
    for &i in &order {
        let op = &history.ops[i];
        let Some(key) = call_key(op).filter(|_| op.ret.is_none()) else {
            continue;
        };
        let found = by_key
            .get(&key)
            .and_then(|js| js.iter().copied().find(|&j| !claimed[j]));
        fate[i] = match found {
            Some(j) => {
                claimed[j] = true;
                stats.unknown_happened += 1;
                Fate::Happened(committed[j].zxid)
            }
            None => {
                stats.unknown_dropped += 1;
                Fate::Dropped
            }
        };
    }
    Ok(Resolved { fate })
}

/// The search-free checks (§2.3 b, c).
mod order {
    use super::{Call, Fate, HashMap, History, Outcome, Resolved, Rule, Violation, Znode};

    pub(super) fn check_all(h: &History, r: &Resolved) -> Result<(), Violation> {
        session_zxids(h)?;
        realtime(h, r)?;
        versions(h)?;
        reads(h, r)
    }

    /// The zxid op `i` shows its session: the reply's, or a read's mzxid.
    fn observed(h: &History, i: usize) -> Option<i64> {
        let ret = h.ops[i].ret.as_ref()?;
        let m = match &ret.outcome {
            Outcome::Read(Some(z)) => Some(z.mzxid),
            _ => None,
        };
        ret.zxid.max(m)
    }

    fn sessions(h: &History) -> HashMap<u64, Vec<usize>> {
        let mut s: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            s.entry(op.session).or_default().push(i);
        }
        s
    }

    /// Per session, in return order, a reply's zxid is never below what the
    /// session observed before (a read's `mzxid` counts as observed: its
    /// server was at least there).
    fn session_zxids(h: &History) -> Result<(), Violation> {
        let mut ss: Vec<(u64, Vec<usize>)> = sessions(h).into_iter().collect();
        ss.sort_unstable_by_key(|(s, _)| *s);
        for (_, mut ops) in ss {
            ops.retain(|&i| observed(h, i).is_some());
            ops.sort_by_key(|&i| (h.ops[i].ret.as_ref().map(|r| r.at), i));
            let mut best: Option<(i64, usize)> = None;
            for i in ops {
                let reply = h.ops[i].ret.as_ref().and_then(|r| r.zxid);
                if let (Some(z), Some((bz, bi))) = (reply, best)
                    && z < bz
                {
                    return Err(Violation {
                        rule: Rule::ZxidWentBack,
                        path: None,
                        ops: vec![i, bi],
                        detail: format!(
                            "session {:#x} got zxid {z:#x} after it had seen {bz:#x}",
                            h.ops[i].session
                        ),
                    });
                }
                let z = observed(h, i).unwrap_or(i64::MIN);
                if best.is_none_or(|(bz, _)| z > bz) {
                    best = Some((z, i));
                }
            }
        }
        Ok(())
    }

    /// A write that returned before another was invoked has the smaller zxid.
    fn realtime(h: &History, r: &Resolved) -> Result<(), Violation> {
        let writes: Vec<(usize, i64)> = (0..h.ops.len())
            .filter(|&i| h.ops[i].call.is_write())
            .filter_map(|i| r.zxid(h, i).map(|z| (i, z)))
            .collect();
        let mut by_ret: Vec<(u64, i64, usize)> = writes
            .iter()
            .filter_map(|&(i, z)| h.ops[i].ret.as_ref().map(|ret| (ret.at, z, i)))
            .collect();
        by_ret.sort_unstable();
        let mut by_inv: Vec<(u64, i64, usize)> = writes
            .iter()
            .map(|&(i, z)| (h.ops[i].invoke, z, i))
            .collect();
        by_inv.sort_unstable();
        let mut k = 0;
        let mut max: Option<(i64, usize)> = None;
        for (inv, z, i) in by_inv {
            while k < by_ret.len() && by_ret[k].0 < inv {
                if max.is_none_or(|(mz, _)| by_ret[k].1 > mz) {
                    max = Some((by_ret[k].1, by_ret[k].2));
                }
                k += 1;
            }
            if let Some((mz, mi)) = max.filter(|&(mz, _)| mz >= z) {
                return Err(Violation {
                    rule: Rule::RealTimeOrder,
                    path: None,
                    ops: vec![mi, i],
                    detail: format!(
                        "a write with zxid {mz:#x} returned before a write with zxid {z:#x} was invoked"
                    ),
                });
            }
        }
        Ok(())
    }

    fn step_error(path: &str, ops: Vec<usize>, detail: String) -> Violation {
        Violation {
            rule: Rule::VersionStep,
            path: Some(path.to_string()),
            ops,
            detail,
        }
    }

    /// A state seen at a zxid: (zxid, version, value, op).
    type Observation<'h> = (i64, i32, &'h [u8], usize);

    /// Versions step by one; one zxid, one state per path; on paths never
    /// created or deleted, versions grow with zxids.
    fn versions(h: &History) -> Result<(), Violation> {
        // path → [(zxid, version, value, op)]
        let mut obs: HashMap<&str, Vec<Observation<'_>>> = HashMap::new();
        let mut churn: HashMap<&str, bool> = HashMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            if matches!(op.call, Call::Create { .. } | Call::Delete { .. }) {
                churn.insert(&op.path, true);
            }
            let Some(ret) = &op.ret else { continue };
            match (&op.call, &ret.outcome) {
                (Call::Set { value, version }, Outcome::Set { version: nv }) => {
                    if *version != -1 && *nv != version + 1 {
                        let d = format!("setData expecting version {version} returned {nv}");
                        return Err(step_error(&op.path, vec![i], d));
                    }
                    if let Some(z) = ret.zxid {
                        obs.entry(&op.path).or_default().push((z, *nv, value, i));
                    }
                }
                (
                    Call::Get,
                    Outcome::Read(Some(Znode {
                        value,
                        version,
                        mzxid,
                    })),
                ) => {
                    obs.entry(&op.path)
                        .or_default()
                        .push((*mzxid, *version, value, i));
                }
                _ => {}
            }
        }
        let mut paths: Vec<_> = obs.into_iter().collect();
        paths.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (path, mut list) in paths {
            list.sort_unstable_by_key(|&(z, v, _, i)| (z, v, i));
            let grows = !churn.contains_key(path);
            for w in list.windows(2) {
                let ((z1, v1, d1, i1), (z2, v2, d2, i2)) = (w[0], w[1]);
                if z1 == z2 && (v1 != v2 || d1 != d2) {
                    let d = format!("two states at zxid {z1:#x}: version {v1} and {v2}");
                    return Err(step_error(path, vec![i1, i2], d));
                }
                if grows && z1 < z2 && v1 >= v2 {
                    let d = format!("version {v1} at zxid {z1:#x} but {v2} at {z2:#x}");
                    return Err(step_error(path, vec![i1, i2], d));
                }
            }
        }
        Ok(())
    }

    /// Per path, the writes with a known zxid, sorted by it: (zxid, op).
    fn known_writes<'h>(h: &'h History, r: &Resolved) -> HashMap<&'h str, Vec<(i64, usize)>> {
        let mut m: HashMap<&str, Vec<(i64, usize)>> = HashMap::new();
        for (i, op) in h.ops.iter().enumerate() {
            let success = match r.fate[i] {
                Fate::Happened(_) => true,
                Fate::Dropped => false,
                Fate::AsRecorded => op
                    .ret
                    .as_ref()
                    .is_some_and(|x| super::is_success(&x.outcome)),
            };
            if let Some(z) = r.zxid(h, i).filter(|_| success && op.call.is_write()) {
                m.entry(&op.path).or_default().push((z, i));
            }
        }
        for v in m.values_mut() {
            v.sort_unstable();
        }
        m
    }

    /// Per session, the zxid floor when each read was invoked: the largest
    /// zxid observed by an op of the session that returned before.
    fn floors(h: &History) -> Vec<Option<(i64, usize)>> {
        let mut out = vec![None; h.ops.len()];
        let mut ss: Vec<(u64, Vec<usize>)> = sessions(h).into_iter().collect();
        ss.sort_unstable_by_key(|(s, _)| *s);
        for (_, ops) in ss {
            let mut done: Vec<(u64, i64, usize)> = ops
                .iter()
                .filter_map(|&i| Some((h.ops[i].ret.as_ref()?.at, observed(h, i)?, i)))
                .collect();
            done.sort_unstable();
            let mut reads: Vec<usize> = ops
                .into_iter()
                .filter(|&i| h.ops[i].call == Call::Get && h.ops[i].ret.is_some())
                .collect();
            reads.sort_unstable_by_key(|&i| h.ops[i].invoke);
            let (mut k, mut best) = (0, None::<(i64, usize)>);
            for i in reads {
                while k < done.len() && done[k].0 < h.ops[i].invoke {
                    if best.is_none_or(|(b, _)| done[k].1 > b) {
                        best = Some((done[k].1, done[k].2));
                    }
                    k += 1;
                }
                out[i] = best;
            }
        }
        out
    }

    /// Reads return a state some write produced, no older than the session's
    /// floor.
    fn reads(h: &History, r: &Resolved) -> Result<(), Violation> {
        let known = known_writes(h, r);
        let floors = floors(h);
        let writers = Writers::new(h, r);
        for (i, op) in h.ops.iter().enumerate() {
            let Some(Outcome::Read(state)) = op.ret.as_ref().map(|x| &x.outcome) else {
                continue;
            };
            let ws = known.get(op.path.as_str()).map_or(&[][..], Vec::as_slice);
            if let Some(z) = state {
                phantom(h, &writers, i, z, ws)?;
            }
            let Some((floor, fi)) = floors[i] else {
                continue;
            };
            stale(h, r, &writers, i, state.as_ref(), ws, (floor, fi))?;
        }
        Ok(())
    }

    /// The writes that may have taken effect (acknowledged successes and
    /// unknown ones not dropped), indexed for the read checks.
    struct Writers<'h> {
        /// setData and create by (path, value).
        by_value: HashMap<(&'h str, &'h [u8]), Vec<usize>>,
        /// delete by path.
        deletes: HashMap<&'h str, Vec<usize>>,
    }

    impl<'h> Writers<'h> {
        fn new(h: &'h History, r: &Resolved) -> Self {
            let mut w = Writers {
                by_value: HashMap::new(),
                deletes: HashMap::new(),
            };
            for (j, op) in h.ops.iter().enumerate() {
                let may = r.fate[j] != Fate::Dropped
                    && op
                        .ret
                        .as_ref()
                        .is_none_or(|x| super::is_success(&x.outcome));
                if !may {
                    continue;
                }
                match &op.call {
                    Call::Set { value, .. } | Call::Create { value } => {
                        w.by_value.entry((&op.path, value)).or_default().push(j);
                    }
                    Call::Delete { .. } => w.deletes.entry(&op.path).or_default().push(j),
                    Call::Get => {}
                }
            }
            w
        }
    }

    /// A read of `z` must match the write at `z.mzxid` if that is known, else
    /// the initial state or some write of that value invoked before it returned.
    fn phantom(
        h: &History,
        writers: &Writers<'_>,
        i: usize,
        z: &Znode,
        ws: &[(i64, usize)],
    ) -> Result<(), Violation> {
        let op = &h.ops[i];
        let err = |ops: Vec<usize>, detail: String| Violation {
            rule: Rule::PhantomRead,
            path: Some(op.path.clone()),
            ops,
            detail,
        };
        if let Ok(k) = ws.binary_search_by_key(&z.mzxid, |&(wz, _)| wz) {
            let w = &h.ops[ws[k].1];
            let matches = match (&w.call, w.ret.as_ref().map(|x| &x.outcome)) {
                (Call::Set { value, .. }, Some(Outcome::Set { version })) => {
                    *value == z.value && *version == z.version
                }
                (Call::Set { value, .. }, _) => *value == z.value,
                (Call::Create { value }, _) => *value == z.value && z.version == 0,
                _ => false,
            };
            if !matches {
                let d = format!(
                    "read version {} at mzxid {:#x}, not what that write produced",
                    z.version, z.mzxid
                );
                return Err(err(vec![i, ws[k].1], d));
            }
            return Ok(());
        }
        if h.initial.get(&op.path) == Some(z) {
            return Ok(());
        }
        let ret_at = op.ret.as_ref().map_or(u64::MAX, |x| x.at);
        let key = (op.path.as_str(), z.value.as_slice());
        let produced = writers.by_value.get(&key).is_some_and(|js| {
            js.iter().any(|&j| {
                let w = &h.ops[j];
                w.invoke <= ret_at && (matches!(w.call, Call::Set { .. }) || z.version == 0)
            })
        });
        if produced {
            Ok(())
        } else {
            let d = format!(
                "read version {} (mzxid {:#x}) that no write produced",
                z.version, z.mzxid
            );
            Err(err(vec![i], d))
        }
    }

    /// A read older than the session's floor.
    fn stale(
        h: &History,
        r: &Resolved,
        writers: &Writers<'_>,
        i: usize,
        state: Option<&Znode>,
        ws: &[(i64, usize)],
        (floor, fi): (i64, usize),
    ) -> Result<(), Violation> {
        let op = &h.ops[i];
        let missed = match state {
            Some(z) => {
                let k = ws.partition_point(|&(wz, _)| wz <= z.mzxid);
                ws.get(k).filter(|&&(wz, _)| wz <= floor).copied()
            }
            None => {
                // Absent at some Z >= floor: unless the last known write at or
                // below the floor created or set the node and no delete can
                // follow it (one of unknown zxid, or one above it and not
                // above the reply's zxid).
                let k = ws.partition_point(|&(wz, _)| wz <= floor);
                let last = k.checked_sub(1).map(|k| ws[k]);
                let cap = op.ret.as_ref().and_then(|x| x.zxid).unwrap_or(i64::MAX);
                last.filter(|&(lz, j)| {
                    !matches!(h.ops[j].call, Call::Delete { .. })
                        && !writers.deletes.get(op.path.as_str()).is_some_and(|ds| {
                            ds.iter()
                                .any(|&d| r.zxid(h, d).is_none_or(|dz| dz > lz && dz <= cap))
                        })
                })
            }
        };
        match missed {
            None => Ok(()),
            Some((wz, wi)) => Err(Violation {
                rule: Rule::StaleRead,
                path: Some(op.path.clone()),
                ops: vec![i, wi, fi],
                detail: format!(
                    "read misses the write at zxid {wz:#x} though its session had seen zxid {floor:#x}"
                ),
            }),
        }
    }
}

/// The Wing–Gong–Lowe search over one path's writes.
mod wgl {
    use super::{
        Call, Fate, HashMap, HashSet, History, Instant, Outcome, Resolved, Rule, Violation,
    };
    use std::time::Duration;

    pub(super) struct Budget {
        max: u64,
        pub(super) states: u64,
        deadline: Option<Instant>,
    }

    impl Budget {
        pub(super) fn new(max: u64, time: Option<Duration>) -> Self {
            Budget {
                max,
                states: 0,
                deadline: time.map(|d| Instant::now() + d),
            }
        }

        /// Counts one state; false when the budget is spent.
        fn spend(&mut self) -> bool {
            self.states += 1;
            if self.states > self.max {
                return false;
            }
            !(self.states.is_multiple_of(4096)
                && self.deadline.is_some_and(|d| Instant::now() >= d))
        }
    }

    pub(super) enum PathResult {
        Ok,
        Violation(Violation),
        OutOfBudget,
    }

    /// The register: 0 = absent, else `(value id + 1) << 32 | version`.
    type State = u64;

    const ABSENT: State = 0;

    fn present(value: u32, version: i32) -> State {
        (u64::from(value) + 1) << 32 | u64::from(version as u32)
    }

    fn version(s: State) -> i32 {
        (s & 0xffff_ffff) as u32 as i32
    }

    fn value(s: State) -> u32 {
        ((s >> 32) - 1) as u32
    }

    #[derive(Clone, Copy)]
    enum WCall {
        Set { value: u32, version: i32 },
        Create { value: u32 },
        Delete { version: i32 },
    }

    /// What the model's answer must be.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        /// Unknown and unresolved: anything.
        Any,
        /// Happened (from the committed txns): a success.
        Success,
        /// As returned (a setData's version when known).
        Set(i32),
        Created,
        Deleted,
        BadVersion,
        NoNode,
        NodeExists,
    }

    struct WOp {
        call: WCall,
        expect: Expect,
        invoke: u64,
        ret: u64,
        index: usize,
    }

    /// The model: the answer and the next state.
    fn apply(s: State, c: WCall) -> (Expect, State) {
        match c {
            WCall::Set {
                value: v,
                version: e,
            } => {
                if s == ABSENT {
                    (Expect::NoNode, s)
                } else if e != -1 && e != version(s) {
                    (Expect::BadVersion, s)
                } else {
                    let nv = version(s).wrapping_add(1);
                    (Expect::Set(nv), present(v, nv))
                }
            }
            WCall::Create { value: v } => {
                if s == ABSENT {
                    (Expect::Created, present(v, 0))
                } else {
                    (Expect::NodeExists, s)
                }
            }
            WCall::Delete { version: e } => {
                if s == ABSENT {
                    (Expect::NoNode, s)
                } else if e != -1 && e != version(s) {
                    (Expect::BadVersion, s)
                } else {
                    (Expect::Deleted, ABSENT)
                }
            }
        }
    }

    fn step(s: State, op: &WOp) -> Option<State> {
        let (got, next) = apply(s, op.call);
        let ok = match op.expect {
            Expect::Any => true,
            Expect::Success => matches!(got, Expect::Set(_) | Expect::Created | Expect::Deleted),
            e => e == got,
        };
        ok.then_some(next)
    }

    /// Builds the path's ops: values interned, unknown writes returned at
    /// infinity, a happened one just before the first return of a write
    /// with a larger known zxid.
    fn build(
        h: &History,
        r: &Resolved,
        ops: &[usize],
        values: &mut HashMap<Vec<u8>, u32>,
    ) -> Vec<WOp> {
        let mut intern = |v: &Vec<u8>| {
            let n = values.len() as u32;
            *values.entry(v.clone()).or_insert(n)
        };
        let known: Vec<(i64, u64)> = ops
            .iter()
            .filter_map(|&i| {
                let ret = h.ops[i].ret.as_ref()?;
                Some((ret.zxid?, ret.at))
            })
            .collect();
        let mut out = Vec::with_capacity(ops.len());
        for &i in ops {
            let op = &h.ops[i];
            let call = match &op.call {
                Call::Set { value, version } => WCall::Set {
                    value: intern(value),
                    version: *version,
                },
                Call::Create { value } => WCall::Create {
                    value: intern(value),
                },
                Call::Delete { version } => WCall::Delete { version: *version },
                Call::Get => continue,
            };
            let (expect, ret) = match (&op.ret, r.fate[i]) {
                (Some(ret), _) => (expect_of(&ret.outcome), ret.at),
                (None, Fate::Happened(z)) => {
                    let bound = known
                        .iter()
                        .filter(|&&(kz, _)| kz > z)
                        .map(|&(_, at)| at)
                        .min();
                    (Expect::Success, bound.unwrap_or(u64::MAX).max(op.invoke))
                }
                (None, _) => (Expect::Any, u64::MAX),
            };
            out.push(WOp {
                call,
                expect,
                invoke: op.invoke,
                ret,
                index: i,
            });
        }
        out
    }

    fn expect_of(o: &Outcome) -> Expect {
        match o {
            Outcome::Set { version } => Expect::Set(*version),
            Outcome::Created => Expect::Created,
            Outcome::Deleted => Expect::Deleted,
            Outcome::BadVersion => Expect::BadVersion,
            Outcome::NoNode => Expect::NoNode,
            Outcome::NodeExists => Expect::NodeExists,
            // A read among the writes cannot happen (filtered by the caller).
            Outcome::Read(_) => Expect::Any,
        }
    }

    /// The event list: entry 0 is the head; entry `2k + 1` calls op `k`,
    /// `2k + 2` returns it. Doubly linked, so a linearized op is lifted out
    /// and put back (dancing links).
    struct Events {
        next: Vec<usize>,
        prev: Vec<usize>,
    }

    const NIL: usize = usize::MAX;

    impl Events {
        fn new(ops: &[WOp]) -> Self {
            let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
            for (k, op) in ops.iter().enumerate() {
                order.push((op.invoke, 0, 2 * k + 1));
                order.push((op.ret, 1, 2 * k + 2));
            }
            // Calls before returns at equal times: such ops count as concurrent.
            order.sort_unstable();
            let n = 2 * ops.len() + 1;
            let (mut next, mut prev) = (vec![NIL; n], vec![NIL; n]);
            let mut last = 0;
            for &(_, _, e) in &order {
                next[last] = e;
                prev[e] = last;
                last = e;
            }
            Events { next, prev }
        }

        fn unlink(&mut self, x: usize) {
            let (p, n) = (self.prev[x], self.next[x]);
            self.next[p] = n;
            if n != NIL {
                self.prev[n] = p;
            }
        }

        fn relink(&mut self, x: usize) {
            let (p, n) = (self.prev[x], self.next[x]);
            self.next[p] = x;
            if n != NIL {
                self.prev[n] = x;
            }
        }

        fn lift(&mut self, k: usize) {
            self.unlink(2 * k + 1);
            self.unlink(2 * k + 2);
        }

        fn unlift(&mut self, k: usize) {
            self.relink(2 * k + 2);
            self.relink(2 * k + 1);
        }
    }

    /// The deepest point the search reached, for the witness.
    struct Deepest {
        depth: usize,
        stuck: usize,
        tail: Vec<usize>,
        state: State,
        linearized: Vec<u64>,
    }

    pub(super) fn check_path(
        h: &History,
        r: &Resolved,
        path: &str,
        ops: &[usize],
        budget: &mut Budget,
    ) -> PathResult {
        let mut values = HashMap::new();
        let wops = build(h, r, ops, &mut values);
        let init = h.initial.get(path).map_or(ABSENT, |z| {
            let n = values.len() as u32;
            present(*values.entry(z.value.clone()).or_insert(n), z.version)
        });
        match search(&wops, init, budget) {
            Search::Ok => PathResult::Ok,
            Search::OutOfBudget => PathResult::OutOfBudget,
            Search::Fail(d) => PathResult::Violation(witness(path, &wops, &values, &d)),
        }
    }

    enum Search {
        Ok,
        OutOfBudget,
        Fail(Deepest),
    }

    fn search(ops: &[WOp], init: State, budget: &mut Budget) -> Search {
        let mut ev = Events::new(ops);
        let mut linearized = vec![0u64; ops.len().div_ceil(64)];
        // Lowe's cache keyed by a 128-bit Zobrist fingerprint of the
        // linearized set (updated in O(1) per step) instead of the set
        // itself: 24 bytes a state whatever the history's length. Two sets
        // sharing a fingerprint (odds ~ states² / 2^129) would only make the
        // search skip a state, so it could report a false violation, never
        // a false Ok.
        let keys = zobrist(ops.len());
        let mut fp = 0u128;
        let mut seen: HashSet<(u128, State)> = HashSet::new();
        let mut calls: Vec<(usize, State)> = Vec::new();
        let mut state = init;
        let mut deepest: Option<Deepest> = None;
        let mut e = ev.next[0];
        while ev.next[0] != NIL {
            // Every call entry is followed by its return, so the walk meets a
            // return before the end of the list.
            debug_assert!(e != NIL);
            let k = (e - 1) / 2;
            if e % 2 == 1 {
                if let Some(s) = step(state, &ops[k])
                    && seen.insert((fp ^ keys[k], s))
                {
                    linearized[k / 64] |= 1 << (k % 64);
                    fp ^= keys[k];
                    if !budget.spend() {
                        return Search::OutOfBudget;
                    }
                    calls.push((k, state));
                    state = s;
                    ev.lift(k);
                    e = ev.next[0];
                    continue;
                }
                e = ev.next[e];
                continue;
            }
            // The return of an op not linearized yet: backtrack.
            if deepest.as_ref().is_none_or(|d| calls.len() > d.depth) {
                let from = calls.len().saturating_sub(3);
                deepest = Some(Deepest {
                    depth: calls.len(),
                    stuck: k,
                    tail: calls[from..].iter().map(|&(c, _)| c).collect(),
                    state,
                    linearized: linearized.clone(),
                });
            }
            let Some((c, s)) = calls.pop() else {
                return deepest.map_or(Search::Ok, Search::Fail);
            };
            state = s;
            linearized[c / 64] &= !(1 << (c % 64));
            fp ^= keys[c];
            ev.unlift(c);
            e = ev.next[2 * c + 1];
        }
        Search::Ok
    }

    /// Fixed pseudo-random 128-bit keys, one per op (SplitMix64).
    fn zobrist(n: usize) -> Vec<u128> {
        let mut x = 0x5eed_u64;
        let mut next = move || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|_| u128::from(next()) << 64 | u128::from(next()))
            .collect()
    }

    fn witness(path: &str, ops: &[WOp], values: &HashMap<Vec<u8>, u32>, d: &Deepest) -> Violation {
        let stuck = &ops[d.stuck];
        let mut list = vec![stuck.index];
        list.extend(d.tail.iter().rev().map(|&k| ops[k].index));
        let pending = ops.iter().enumerate().filter(|&(k, op)| {
            k != d.stuck && d.linearized[k / 64] & (1 << (k % 64)) == 0 && op.invoke <= stuck.ret
        });
        list.extend(pending.take(6).map(|(_, op)| op.index));
        let state = if d.state == ABSENT {
            "absent".to_string()
        } else {
            let v = values
                .iter()
                .find(|&(_, &id)| id == value(d.state))
                .map(|(v, _)| v);
            format!(
                "version {} value {:?}",
                version(d.state),
                v.map(|v| String::from_utf8_lossy(v))
            )
        };
        Violation {
            rule: Rule::NotLinearizable,
            path: Some(path.to_string()),
            ops: list,
            detail: format!(
                "after {} writes linearized (the znode {state}) no order fits the first op listed",
                d.depth
            ),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn model_is_zookeepers_versioned_register() {
            let s = present(3, 4);
            assert_eq!((value(s), version(s)), (3, 4));
            let set = |version| WCall::Set { value: 7, version };
            assert_eq!(apply(s, set(4)), (Expect::Set(5), present(7, 5)));
            assert_eq!(apply(s, set(-1)), (Expect::Set(5), present(7, 5)));
            assert_eq!(apply(s, set(3)), (Expect::BadVersion, s));
            assert_eq!(apply(ABSENT, set(-1)), (Expect::NoNode, ABSENT));
            let create = WCall::Create { value: 1 };
            assert_eq!(apply(s, create), (Expect::NodeExists, s));
            assert_eq!(apply(ABSENT, create), (Expect::Created, present(1, 0)));
            assert_eq!(
                apply(s, WCall::Delete { version: 3 }),
                (Expect::BadVersion, s)
            );
            assert_eq!(
                apply(s, WCall::Delete { version: 4 }),
                (Expect::Deleted, ABSENT)
            );
            assert_eq!(
                apply(ABSENT, WCall::Delete { version: -1 }),
                (Expect::NoNode, ABSENT)
            );
        }

        fn wop(invoke: u64, ret: u64) -> WOp {
            WOp {
                call: WCall::Delete { version: -1 },
                expect: Expect::Any,
                invoke,
                ret,
                index: 0,
            }
        }

        fn walk(ev: &Events) -> Vec<usize> {
            let mut out = Vec::new();
            let mut e = ev.next[0];
            while e != NIL {
                out.push(e);
                e = ev.next[e];
            }
            out
        }

        #[test]
        fn events_are_ordered_and_lifting_is_undone_exactly() {
            // op 0: [0, 10], op 1: [5, 10] (a call before a return at equal
            // times), op 2: [12, unknown].
            let ops = [wop(0, 10), wop(5, 10), wop(12, u64::MAX)];
            let mut ev = Events::new(&ops);
            let all = vec![1, 3, 2, 4, 5, 6];
            assert_eq!(walk(&ev), all);
            ev.lift(1);
            assert_eq!(walk(&ev), vec![1, 2, 5, 6]);
            ev.lift(0);
            assert_eq!(walk(&ev), vec![5, 6]);
            ev.unlift(0);
            ev.unlift(1);
            assert_eq!(walk(&ev), all);
        }

        #[test]
        fn budget_counts_states_and_stops() {
            let mut b = Budget::new(2, None);
            assert!(b.spend());
            assert!(b.spend());
            assert!(!b.spend());
            assert_eq!(b.states, 3);
        }

        #[test]
        fn search_memoises_and_finds_a_sequential_violation() {
            let set = |version, expect| WOp {
                call: WCall::Set { value: 0, version },
                expect,
                invoke: 0,
                ret: 0,
                index: 0,
            };
            // Sequential: CAS 0 → 1, then CAS 0 → 1 again.
            let mut a = set(0, Expect::Set(1));
            (a.invoke, a.ret) = (0, 1);
            let mut b = set(0, Expect::Set(1));
            (b.invoke, b.ret) = (2, 3);
            let mut budget = Budget::new(100, None);
            match search(&[a, b], present(0, 0), &mut budget) {
                Search::Fail(d) => {
                    assert_eq!((d.depth, d.stuck, d.tail.as_slice()), (1, 1, &[0][..]))
                }
                _ => panic!("expected a violation"),
            }
            // Concurrent unknown writes: each interleaving state is visited
            // once (4 unknown unconditional sets: 2^4 - 1 subsets reached,
            // each with its last writer's value in the state).
            let ops: Vec<WOp> = (0..4)
                .map(|k| WOp {
                    call: WCall::Set {
                        value: k,
                        version: -1,
                    },
                    expect: Expect::Any,
                    invoke: 0,
                    ret: u64::MAX,
                    index: 0,
                })
                .collect();
            let mut budget = Budget::new(1000, None);
            assert!(matches!(
                search(&ops, present(9, 0), &mut budget),
                Search::Ok
            ));
            assert_eq!(
                budget.states, 4,
                "the first greedy order linearizes all four"
            );
        }
    }
}
