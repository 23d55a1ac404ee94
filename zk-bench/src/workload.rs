//! The op sources: the `run` mixes, numbered creates for set-up and `load`,
//! and the deletes that clean up after `run --op create --cleanup`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::args::OpMix;
use crate::engine::{SessionCtx, Source};
use crate::wire::Kind;

/// The data every write carries: `size` bytes of a printable pattern.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A shared budget of measured ops (`None`: unlimited): ops issued during
/// the warm-up are not taken from it, so `--ops N` measures about N ops
/// however fast the server is (a budget spent in the warm-up measured none).
#[derive(Debug)]
pub struct Budget {
    limit: Option<u64>,
    issued: AtomicU64,
}

impl Budget {
    /// At most `limit` ops in total.
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            issued: AtomicU64::new(0),
        }
    }

    /// Takes one op from the budget, unless it is issued while `warming`;
    /// `None` once the budget is spent.
    pub fn take(&self, warming: bool) -> Option<()> {
        let Some(limit) = self.limit.filter(|_| !warming) else {
            return Some(());
        };
        (self.issued.fetch_add(1, Ordering::Relaxed) < limit).then_some(())
    }
}

/// The `run` workload: create fresh znodes, or get/set random keys.
#[derive(Debug)]
pub struct MixSource {
    /// What to send.
    pub mix: OpMix,
    /// The key space: `PREFIX/k/0 .. PREFIX/k/(keys-1)`.
    pub keys: u64,
    /// The root.
    pub prefix: String,
    /// Distinguishes this run's created znodes from earlier runs'.
    pub run_id: u64,
    /// Data for writes.
    pub data: Vec<u8>,
    /// Op budget.
    pub budget: Budget,
}

impl MixSource {
    /// The path of key `i`.
    pub fn key_path(prefix: &str, i: u64) -> String {
        format!("{prefix}/k/{i}")
    }
}

impl Source for MixSource {
    fn next(&self, ctx: &mut SessionCtx, path: &mut String) -> Option<Kind> {
        self.budget.take(ctx.warming)?;
        let kind = match self.mix {
            OpMix::Create => {
                created_path(path, &self.prefix, self.run_id, ctx.id, ctx.seq);
                return Some(Kind::Create);
            }
            OpMix::SetData => Kind::SetData,
            OpMix::GetData => Kind::GetData,
            OpMix::Mixed { read_ratio } => {
                if ctx.rng.unit() < read_ratio {
                    Kind::GetData
                } else {
                    Kind::SetData
                }
            }
        };
        let key = ctx.rng.below(self.keys);
        let _ = write!(path, "{}/k/{key}", self.prefix);
        Some(kind)
    }

    fn payload(&self) -> &[u8] {
        &self.data
    }
}

/// The path `run --op create` gives to the create session `session` issues as
/// its op number `seq` (0-based): `PREFIX/c/<run_id hex>-<session>-<seq>`.
pub fn created_path(out: &mut String, prefix: &str, run_id: u64, session: usize, seq: u64) {
    let _ = write!(out, "{prefix}/c/{run_id:x}-{session}-{seq}");
}

/// Every znode a `run --op create` may have created: for each session, the
/// creates `0 .. issued` it sent (whatever the replies were), numbered `0 ..
/// count()` session after session.
#[derive(Debug, Clone)]
pub struct Created {
    prefix: String,
    run_id: u64,
    /// Session ids, in the order of `ends`.
    sessions: Vec<usize>,
    /// Running totals: session `sessions[j]` owns numbers `ends[j-1] .. ends[j]`.
    ends: Vec<u64>,
}

impl Created {
    /// From the `(session id, ops issued)` pairs of an [`Outcome`](crate::engine::Outcome).
    pub fn new(prefix: &str, run_id: u64, issued: &[(usize, u64)]) -> Self {
        let mut total = 0u64;
        let (sessions, ends) = issued
            .iter()
            .map(|&(id, n)| {
                total += n;
                (id, total)
            })
            .unzip();
        Self {
            prefix: prefix.to_owned(),
            run_id,
            sessions,
            ends,
        }
    }

    /// How many paths.
    pub fn count(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Writes path number `i` (< `count()`).
    pub fn write_path(&self, i: u64, out: &mut String) {
        let j = self.ends.partition_point(|&e| e <= i);
        let first = if j == 0 { 0 } else { self.ends[j - 1] };
        created_path(out, &self.prefix, self.run_id, self.sessions[j], i - first);
    }
}

/// Deletes every znode of a [`Created`] once across all sessions (NONODE is
/// fine: a create that failed, or a znode someone else removed).
#[derive(Debug)]
pub struct DeleteSource {
    created: Created,
    next: AtomicU64,
}

impl DeleteSource {
    /// Deletes of `created`'s paths, in order.
    pub fn new(created: Created) -> Self {
        Self {
            created,
            next: AtomicU64::new(0),
        }
    }
}

impl Source for DeleteSource {
    fn next(&self, _ctx: &mut SessionCtx, path: &mut String) -> Option<Kind> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.created.count() {
            return None;
        }
        self.created.write_path(i, path);
        Some(Kind::Delete)
    }

    fn payload(&self) -> &[u8] {
        &[]
    }
}

/// How numbered znodes are named.
#[derive(Debug, Clone)]
pub enum Layout {
    /// These paths, in order (use one session with one in flight when a path is
    /// the parent of a later one).
    List(Vec<String>),
    /// `PREFIX/k/<i>` (the `run` keys).
    Keys(String),
    /// `PREFIX/p<j>` for the `load` parents.
    Parents(String),
    /// `PREFIX/p<i / fanout>/n<i>` for the `load` leaves.
    Leaves(String, u64),
}

impl Layout {
    /// The path of znode `i`.
    pub fn write_path(&self, i: u64, out: &mut String) {
        let _ = match self {
            Layout::List(v) => out.write_str(&v[i as usize]),
            Layout::Keys(p) => write!(out, "{p}/k/{i}"),
            Layout::Parents(p) => write!(out, "{p}/p{i}"),
            Layout::Leaves(p, f) => write!(out, "{p}/p{}/n{i}", i / f),
        };
    }

    /// The path of znode `i`, as a new string.
    pub fn path(&self, i: u64) -> String {
        let mut s = String::new();
        self.write_path(i, &mut s);
        s
    }
}

/// Creates znodes `0..count` of a [`Layout`], each exactly once across all sessions.
#[derive(Debug)]
pub struct CreateSource {
    layout: Layout,
    count: u64,
    next: AtomicU64,
    data: Vec<u8>,
}

impl CreateSource {
    /// `count` creates of `data`.
    pub fn new(layout: Layout, count: u64, data: Vec<u8>) -> Self {
        if let Layout::List(v) = &layout {
            assert!(count as usize <= v.len());
        }
        Self {
            layout,
            count,
            next: AtomicU64::new(0),
            data,
        }
    }
}

impl Source for CreateSource {
    fn next(&self, _ctx: &mut SessionCtx, path: &mut String) -> Option<Kind> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.count {
            return None;
        }
        self.layout.write_path(i, path);
        Some(Kind::Create)
    }

    fn payload(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rng;

    fn ctx() -> SessionCtx {
        SessionCtx {
            id: 3,
            rng: Rng::new(9),
            seq: 0,
            warming: false,
        }
    }

    #[test]
    fn mixed_respects_ratio_and_budget() {
        let src = MixSource {
            mix: OpMix::Mixed { read_ratio: 0.8 },
            keys: 50,
            prefix: "/b".into(),
            run_id: 1,
            data: payload(10),
            budget: Budget::new(Some(10_000)),
        };
        let mut c = ctx();
        let mut reads = 0;
        let mut path = String::new();
        for _ in 0..10_000 {
            path.clear();
            let k = src.next(&mut c, &mut path).unwrap();
            reads += usize::from(k == Kind::GetData);
            let key: u64 = path.strip_prefix("/b/k/").unwrap().parse().unwrap();
            assert!(key < 50);
        }
        assert!((7_700..8_300).contains(&reads), "{reads}");
        assert_eq!(src.next(&mut c, &mut path), None);
    }

    #[test]
    fn create_paths_are_unique_per_session_and_seq() {
        let src = MixSource {
            mix: OpMix::Create,
            keys: 1,
            prefix: "/b".into(),
            run_id: 0xab,
            data: payload(1),
            budget: Budget::new(None),
        };
        let mut c = ctx();
        c.seq = 41;
        let mut path = String::new();
        assert_eq!(src.next(&mut c, &mut path), Some(Kind::Create));
        assert_eq!(path, "/b/c/ab-3-41");
    }

    #[test]
    fn created_enumerates_exactly_the_paths_a_create_run_issued() {
        let src = MixSource {
            mix: OpMix::Create,
            keys: 1,
            prefix: "/b".into(),
            run_id: 0x1f2e,
            data: payload(1),
            budget: Budget::new(None),
        };
        // Sessions as the engine reports them: sorted ids, some issued nothing.
        let issued = [(0usize, 3u64), (1, 0), (2, 1), (5, 4), (7, 0)];
        let mut want = Vec::new();
        for &(id, n) in &issued {
            let mut c = SessionCtx {
                id,
                rng: Rng::new(1),
                seq: 0,
                warming: false,
            };
            for _ in 0..n {
                let mut p = String::new();
                assert_eq!(src.next(&mut c, &mut p), Some(Kind::Create));
                c.seq += 1; // as the engine does for every op it issues
                want.push(p);
            }
        }
        let created = Created::new("/b", 0x1f2e, &issued);
        assert_eq!(created.count(), 8);
        let del = DeleteSource::new(created);
        let mut c = ctx();
        let mut got = Vec::new();
        loop {
            let mut p = String::new();
            match del.next(&mut c, &mut p) {
                Some(k) => {
                    assert_eq!(k, Kind::Delete);
                    got.push(p);
                }
                None => break,
            }
        }
        assert_eq!(got, want);
        assert_eq!(got[0], "/b/c/1f2e-0-0");
        assert_eq!(got[3], "/b/c/1f2e-2-0");
        assert_eq!(got[7], "/b/c/1f2e-5-3");
        assert_eq!(del.next(&mut c, &mut String::new()), None);
        assert!(del.payload().is_empty());

        let none = Created::new("/b", 1, &[]);
        assert_eq!(none.count(), 0);
        assert_eq!(
            DeleteSource::new(none).next(&mut c, &mut String::new()),
            None
        );
        assert_eq!(Created::new("/b", 1, &[(0, 0), (1, 0)]).count(), 0);
    }

    #[test]
    fn layouts() {
        assert_eq!(Layout::Keys("/z".into()).path(7), "/z/k/7");
        assert_eq!(Layout::Parents("/z".into()).path(2), "/z/p2");
        assert_eq!(Layout::Leaves("/z".into(), 1000).path(2345), "/z/p2/n2345");
        let src = CreateSource::new(Layout::Parents("/z".into()), 2, payload(3));
        let mut c = ctx();
        let mut p = String::new();
        assert_eq!(src.next(&mut c, &mut p), Some(Kind::Create));
        p.clear();
        assert_eq!(src.next(&mut c, &mut p), Some(Kind::Create));
        assert_eq!(p, "/z/p1");
        assert_eq!(src.next(&mut c, &mut p), None);
        assert_eq!(src.payload(), b"abc");
    }
}
