//! The op sources: the `run` mixes, and numbered creates for set-up and `load`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::args::OpMix;
use crate::engine::{SessionCtx, Source};
use crate::wire::Kind;

/// The data every write carries: `size` bytes of a printable pattern.
pub fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A shared budget of ops (`None`: unlimited).
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

    /// Takes one op from the budget; `None` once it is spent.
    pub fn take(&self) -> Option<u64> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        match self.limit {
            Some(l) if n >= l => None,
            _ => Some(n),
        }
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
        self.budget.take()?;
        let kind = match self.mix {
            OpMix::Create => {
                let _ = write!(
                    path,
                    "{}/c/{:x}-{}-{}",
                    self.prefix, self.run_id, ctx.id, ctx.seq
                );
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
