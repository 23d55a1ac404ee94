//! Bytes read and written per top-level namespace, as Apache 3.8's
//! `DataTree.updateReadStat` / `updateWriteStat` count them into
//! `ServerMetrics`' `read_per_namespace` / `write_per_namespace`:
//!
//! * a write (create, delete, setData, applied by any server, replay
//!   included) counts the path's length plus its new data's;
//! * a read (getData, exists of an existing node, getChildren) counts the
//!   path's length, the data's (getData) or the child names' (getChildren),
//!   and 68 bytes for the stat (`STAT_OVERHEAD_BYTES`), whether or not the
//!   reply carries one.
//!
//! Lengths of paths and names are Java's (UTF-16 units), data's in bytes.
//! The namespace is the path's first component (`/app/x` → `app`); the
//! root counts nowhere. At most [`MAX_NAMESPACES`] namespaces are kept per
//! direction (Apache keeps every one: a client making top-level nodes by
//! the million would grow its metrics without bound).

use std::sync::Mutex;

use hashbrown::HashMap;

/// `DataTree.STAT_OVERHEAD_BYTES`: six longs and five ints.
pub(crate) const STAT_OVERHEAD_BYTES: u64 = 6 * 8 + 5 * 4;

/// Distinct namespaces kept per direction; later new ones are not counted.
pub const MAX_NAMESPACES: usize = 10_000;

/// One namespace's figures (Apache's `AvgMinMaxCounter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceStat {
    /// Reads or writes counted.
    pub count: u64,
    /// Their bytes in all.
    pub sum: u64,
    /// The smallest.
    pub min: u64,
    /// The largest.
    pub max: u64,
}

impl NamespaceStat {
    fn of(v: u64) -> Self {
        NamespaceStat {
            count: 1,
            sum: v,
            min: v,
            max: v,
        }
    }

    fn add(&mut self, v: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &NamespaceStat) {
        self.count += o.count;
        self.sum = self.sum.wrapping_add(o.sum);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// The namespace of `path` (`PathUtils.getTopNamespace`), if any.
pub(crate) fn namespace(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Java's `String.length()` of `s`.
pub(crate) fn java_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

/// `add`s to namespace `ns`'s value, or gives it `fresh()` while fewer
/// than [`MAX_NAMESPACES`] are kept.
fn update<V>(
    map: &mut HashMap<Box<str>, V>,
    ns: &str,
    fresh: impl FnOnce() -> V,
    add: impl FnOnce(&mut V),
) {
    if let Some(v) = map.get_mut(ns) {
        add(v);
    } else if map.len() < MAX_NAMESPACES {
        map.insert(ns.into(), fresh());
    }
}

/// Per-namespace figures of one direction.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamespaceMap {
    map: HashMap<Box<str>, NamespaceStat>,
}

impl NamespaceMap {
    /// Counts `bytes` for `path`'s namespace.
    pub(crate) fn add(&mut self, path: &str, bytes: u64) {
        if let Some(ns) = namespace(path) {
            self.add_to(ns, java_len(path) + bytes);
        }
    }

    /// Counts `v` bytes for namespace `ns`.
    fn add_to(&mut self, ns: &str, v: u64) {
        update(&mut self.map, ns, || NamespaceStat::of(v), |s| s.add(v));
    }

    fn merge_into(&self, out: &mut HashMap<Box<str>, NamespaceStat>) {
        for (k, v) in &self.map {
            if let Some(s) = out.get_mut(k) {
                s.merge(v);
            } else {
                out.insert(k.clone(), *v);
            }
        }
    }
}

/// Read figures, counted by many reader threads at once: each thread adds
/// to a shard of its own (uncontended), a scrape merges them.
#[derive(Debug)]
pub(crate) struct ReadStats {
    shards: Box<[Mutex<NamespaceMap>]>,
}

const READ_SHARDS: usize = 8;

impl Default for ReadStats {
    fn default() -> Self {
        ReadStats {
            shards: (0..READ_SHARDS)
                .map(|_| Mutex::new(NamespaceMap::default()))
                .collect(),
        }
    }
}

/// This thread's shard: threads are numbered as they first read.
fn shard() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % READ_SHARDS;
    }
    SHARD.with(|s| *s)
}

impl ReadStats {
    /// Counts a read of `path` that returned `bytes` of data or names.
    pub(crate) fn add(&self, path: &str, bytes: u64) {
        let Some(ns) = namespace(path) else {
            return;
        };
        let v = java_len(path) + bytes + STAT_OVERHEAD_BYTES;
        let mut m = self.shards[shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.add_to(ns, v);
    }

    /// Every namespace's figures, sorted by namespace.
    pub(crate) fn snapshot(&self) -> Vec<(String, NamespaceStat)> {
        let mut all = HashMap::new();
        for s in self.shards.iter() {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .merge_into(&mut all);
        }
        sorted(all)
    }
}

/// Errors counted per namespace (Apache's `CounterSet`), bounded as the rest.
#[derive(Debug, Default)]
pub(crate) struct NamespaceCounts {
    map: Mutex<HashMap<Box<str>, u64>>,
}

impl NamespaceCounts {
    /// One more for `path`'s namespace.
    pub(crate) fn add(&self, path: &str) {
        let Some(ns) = namespace(path) else {
            return;
        };
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        update(&mut m, ns, || 1, |n| *n += 1);
    }

    /// Every namespace's count, sorted by namespace.
    pub(crate) fn snapshot(&self) -> Vec<(String, u64)> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        v.sort();
        v
    }
}

/// A direction's figures, sorted by namespace.
pub(crate) fn snapshot(m: &NamespaceMap) -> Vec<(String, NamespaceStat)> {
    let mut all = HashMap::new();
    m.merge_into(&mut all);
    sorted(all)
}

fn sorted(all: HashMap<Box<str>, NamespaceStat>) -> Vec<(String, NamespaceStat)> {
    let mut v: Vec<(String, NamespaceStat)> =
        all.into_iter().map(|(k, s)| (k.into_string(), s)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_lengths_are_javas() {
        assert_eq!(namespace("/app/b"), Some("app"));
        assert_eq!(namespace("/app"), Some("app"));
        assert_eq!(namespace("/"), None);
        assert_eq!(namespace(""), None);
        assert_eq!(namespace("app"), None);
        assert_eq!(java_len("/é/𝄞"), 5);
        let mut m = NamespaceMap::default();
        m.add("/app", 1);
        m.add("/app/b", 1);
        m.add("/app/b", 3);
        m.add("/", 7);
        assert_eq!(
            snapshot(&m),
            [(
                "app".to_string(),
                NamespaceStat {
                    count: 3,
                    sum: 21,
                    min: 5,
                    max: 9
                }
            )]
        );
    }

    #[test]
    fn reads_from_many_threads_merge() {
        let r = std::sync::Arc::new(ReadStats::default());
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        r.add("/x/y", 2);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let s = r.snapshot();
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].1.count, s[0].1.sum), (400, 400 * (4 + 2 + 68)));
    }

    #[test]
    fn new_namespaces_stop_at_the_cap() {
        let mut m = NamespaceMap::default();
        for i in 0..MAX_NAMESPACES + 5 {
            m.add(&format!("/n{i}"), 0);
        }
        m.add("/n0", 0);
        assert_eq!(snapshot(&m).len(), MAX_NAMESPACES);
    }
}
