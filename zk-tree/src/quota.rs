//! Quota usage, as Apache ZooKeeper 3.8's `DataTree` keeps it: a quota on
//! path `P` is the node `/zookeeper/quota/P/zookeeper_limits` (its limits,
//! written by clients) beside `/zookeeper/quota/P/zookeeper_stats` (its
//! usage: `count=N,bytes=M`, the nodes and data bytes of `P`'s subtree,
//! `P` included), which the server keeps itself, outside any txn:
//!
//! * creating a `zookeeper_limits` node under `/zookeeper/quota` puts its
//!   parent's path (less `/zookeeper/quota`) in the quota set; deleting one
//!   takes it out;
//! * creating a `zookeeper_stats` node recounts that path's subtree into it
//!   (whatever the client wrote);
//! * every create, delete and setData adds its count and bytes to the stats
//!   of the deepest quota path above it (nested quotas: the inner one only);
//! * loading a snapshot rebuilds the set from the `zookeeper_limits` leaves
//!   and recounts every quota's subtree (so, as in Apache, a nested outer
//!   quota counts its inner quotas' nodes after a restart).
//!
//! The stats node's data changes in place: no zxid, version or watch event.
//! Apache keeps this state on every server from the txns each applies, and
//! so do we (a mixed ensemble's servers agree). Where Apache would throw out
//! of its apply (unparsable stats data, a quota on `""`), we skip the
//! update and log a warning instead.

use hashbrown::HashSet;
use tracing::warn;

use zk_jute::ErrorCode;

use crate::Tree;
use crate::store::{NodeId, State};

/// `Quotas.quotaZookeeper`.
pub(crate) const QUOTA_ROOT: &str = "/zookeeper/quota";
/// `Quotas.limitNode`.
pub(crate) const LIMIT_NODE: &str = "zookeeper_limits";
/// `Quotas.statNode`.
pub(crate) const STAT_NODE: &str = "zookeeper_stats";

/// The quota paths (Apache's `PathTrie`): paths as their non-blank
/// components, so `/a/ /b` and `/a/b` are one quota.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuotaPaths {
    set: HashSet<String>,
}

/// `path`'s components as the trie keeps them (`PathTrie.split`: no empty
/// or blank ones), rejoined as `/a/b`; `None` when none is left.
fn normalize(path: &str) -> Option<String> {
    let mut out = String::new();
    for c in path.split('/').filter(|c| !is_blank(c)) {
        out.push('/');
        out.push_str(c);
    }
    (!out.is_empty()).then_some(out)
}

/// Java's `String.trim().isEmpty()`: every char at most U+0020.
fn is_blank(c: &str) -> bool {
    c.chars().all(|ch| ch <= ' ')
}

impl QuotaPaths {
    /// `PathTrie.addPath`; false (nothing added) where Apache throws.
    pub(crate) fn add(&mut self, path: &str) -> bool {
        match normalize(path) {
            Some(p) => {
                self.set.insert(p);
                true
            }
            None => false,
        }
    }

    /// `PathTrie.deletePath`.
    pub(crate) fn remove(&mut self, path: &str) {
        if let Some(p) = normalize(path) {
            self.set.remove(&p);
        }
    }

    /// `DataTree.getMaxPrefixWithQuota`: the deepest quota path that is
    /// `path` or above it, normalized.
    pub(crate) fn max_prefix(&self, path: &str) -> Option<String> {
        if self.set.is_empty() {
            return None;
        }
        let mut prefix = String::with_capacity(path.len());
        let mut best = None;
        for c in path.split('/').filter(|c| !is_blank(c)) {
            prefix.push('/');
            prefix.push_str(c);
            if self.set.contains(prefix.as_str()) {
                best = Some(prefix.len());
            }
        }
        best.map(|n| prefix[..n].to_string())
    }
}

/// `Quotas.limitPath`.
pub(crate) fn limit_path(quota: &str) -> String {
    format!("{QUOTA_ROOT}{quota}/{LIMIT_NODE}")
}

/// `Quotas.statPath`.
pub(crate) fn stat_path(quota: &str) -> String {
    format!("{QUOTA_ROOT}{quota}/{STAT_NODE}")
}

/// The quota path a node under `/zookeeper/quota` belongs to
/// (`Quotas.trimQuotaPath`); `None` where Apache's substring would throw.
pub(crate) fn trim_quota_path(parent: &str) -> Option<&str> {
    parent.get(QUOTA_ROOT.len()..)
}

/// A stats node's data (`StatsTrack`) after adding `count` nodes and
/// `bytes` bytes; `None` if the data does not parse (Apache throws).
pub(crate) fn add_usage(data: Option<&[u8]>, count: i64, bytes: i64) -> Option<Vec<u8>> {
    let mut stats = parse_stats(data?)?;
    let c = stats_value(&stats, "count").wrapping_add(count);
    let b = stats_value(&stats, "bytes").wrapping_add(bytes);
    stats.retain(|(k, _)| k != "count" && k != "bytes");
    Some(format_stats(c, b, stats))
}

/// `StatsTrack.getStatsBytes` of a fresh count.
pub(crate) fn usage(count: i64, bytes: i64) -> Vec<u8> {
    format_stats(count, bytes, Vec::new())
}

/// A `StatsTrack` key's value: -1 when absent.
fn stats_value(stats: &[(String, i64)], key: &str) -> i64 {
    stats.iter().find(|(k, _)| k == key).map_or(-1, |(_, v)| *v)
}

/// `StatsTrack(String)`: `k=v` pairs split on runs of `,` and `;`, the last
/// of a key winning, an empty value read as -1; `None` where Java throws
/// (a pair without `=` or a value, a number that does not parse).
fn parse_stats(data: &[u8]) -> Option<Vec<(String, i64)>> {
    let text = String::from_utf8_lossy(data);
    let mut out: Vec<(String, i64)> = Vec::new();
    for pair in java_split(&text, true, |c| c == ',' || c == ';') {
        let kv = java_split(pair, false, |c| c == '=');
        let (key, value) = (kv.first()?, kv.get(1)?);
        let v = if value.is_empty() {
            -1
        } else {
            value.parse::<i64>().ok()?
        };
        out.retain(|(k, _)| k != key);
        out.push(((*key).to_string(), v));
    }
    Some(out)
}

/// Java's `String.split` with limit 0 on `sep` (on runs of it if `runs`):
/// a leading empty piece kept, trailing empty pieces dropped.
fn java_split(s: &str, runs: bool, sep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if sep(c) {
            pieces.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !runs || !sep(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            start = end;
        }
    }
    pieces.push(&s[start..]);
    while pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// `StatsTrack.toString`: `count` and `bytes` first; any other keys after
/// an extra `=`, sorted (as Java sorts strings: by UTF-16 unit).
fn format_stats(count: i64, bytes: i64, mut rest: Vec<(String, i64)>) -> Vec<u8> {
    let mut s = format!("count={count},bytes={bytes}");
    if !rest.is_empty() {
        s.push('=');
        rest.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        for (k, v) in rest {
            s.push_str(&format!(";{k}={v}"));
        }
    }
    s.into_bytes()
}

impl Tree {
    /// `ZooKeeperServer.checkQuota` (a create or setData being prepared,
    /// against the applied tree): QUOTAEXCEEDED when the deepest quota above
    /// `path` would pass a hard limit (a soft one is only logged);
    /// MARSHALLINGERROR, as Apache's prep answers its parse exception, when
    /// that quota's limits or stats data do not parse.
    pub(crate) fn check_quota(&self, path: &str, count: i64, bytes: i64) -> Result<(), ErrorCode> {
        if !self.config.enforce_quota {
            return Ok(());
        }
        let st = self.read();
        let Some(quota) = st.quotas.max_prefix(path) else {
            return Ok(());
        };
        let read = |p: &str| -> Option<Result<Vec<(String, i64)>, ErrorCode>> {
            let id = st.lookup(p)?;
            let parsed = st.node(id).data().and_then(parse_stats);
            Some(parsed.ok_or(ErrorCode::MarshallingError))
        };
        let Some(limits) = read(&limit_path(&quota)) else {
            warn!("{}: missing, quota {quota} not checked", limit_path(&quota));
            return Ok(());
        };
        let limits = limits?;
        let limit = |soft: &str, hard: &str, diff: i64| {
            let (s, h) = (stats_value(&limits, soft), stats_value(&limits, hard));
            (diff != 0 && (s > -1 || h > -1)).then_some(if h > -1 { (h, true) } else { (s, false) })
        };
        let checks = [
            ("count", limit("count", "countHardLimit", count), count),
            ("bytes", limit("bytes", "byteHardLimit", bytes), bytes),
        ];
        if checks.iter().all(|(_, l, _)| l.is_none()) {
            return Ok(());
        }
        let Some(stats) = read(&stat_path(&quota)) else {
            warn!("{}: missing, quota {quota} not checked", stat_path(&quota));
            return Ok(());
        };
        let stats = stats?;
        for (key, l, diff) in checks {
            let Some((max, hard)) = l else { continue };
            let new = stats_value(&stats, key).wrapping_add(diff);
            if new > max {
                let kind = if hard { "hard" } else { "soft" };
                tracing::debug!(
                    "Quota exceeded: {quota} [current {key}={new}, {kind} limit {max}]"
                );
                if hard {
                    self.quota_exceeded.add(path);
                    return Err(ErrorCode::QuotaExceeded);
                }
            }
        }
        Ok(())
    }
}

impl State {
    /// After `path` (`parent`/`name`, `bytes` of data) was created.
    pub(crate) fn quota_after_create(&mut self, parent: &str, name: &str, path: &str, bytes: i64) {
        if let Some(quota) = parent.strip_prefix(QUOTA_ROOT) {
            if name == LIMIT_NODE && !self.quotas.add(quota) {
                warn!("{path}: a quota on no path is ignored");
            }
            if name == STAT_NODE {
                self.recount_quota(quota);
            }
        }
        self.charge_quota(path, bytes, 1);
    }

    /// After `path` (`parent`/`name`, `bytes` of data) was deleted.
    pub(crate) fn quota_after_delete(&mut self, parent: &str, name: &str, path: &str, bytes: i64) {
        if name == LIMIT_NODE && parent.starts_with("/zookeeper") {
            match trim_quota_path(parent) {
                Some(quota) => self.quotas.remove(quota),
                None => warn!("{path}: not a quota's limits node"),
            }
        }
        self.charge_quota(path, -bytes, -1);
    }

    /// After `path`'s data grew by `bytes` (a setData).
    pub(crate) fn quota_after_set_data(&mut self, path: &str, bytes: i64) {
        self.charge_quota(path, bytes, 0);
    }

    /// `DataTree.updateQuotaStat` for the quota `path` is under, if any.
    fn charge_quota(&mut self, path: &str, bytes: i64, count: i64) {
        let Some(quota) = self.quotas.max_prefix(path) else {
            return;
        };
        let sp = stat_path(&quota);
        let Some(id) = self.lookup(&sp) else {
            warn!("{sp}: missing, the usage of quota {quota} is not kept");
            return;
        };
        match add_usage(self.node(id).data(), count, bytes) {
            Some(d) => self.set_usage(id, &sp, &d),
            None => warn!("{sp}: unreadable usage, not updated for a change of {path}"),
        }
    }

    /// `DataTree.updateQuotaForPath`: counts `quota`'s subtree into its
    /// stats node.
    fn recount_quota(&mut self, quota: &str) {
        let (count, bytes) = match self.lookup(quota) {
            Some(id) => self.usage_of(id),
            None => (0, 0),
        };
        let sp = stat_path(quota);
        match self.lookup(&sp) {
            Some(id) => self.set_usage(id, &sp, &usage(count, bytes)),
            None => warn!("{sp}: missing, quota {quota} not counted"),
        }
    }

    /// Nodes and data bytes of `id`'s subtree, `id` included.
    fn usage_of(&self, id: NodeId) -> (i64, i64) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![id];
        while let Some(c) = stack.pop() {
            let n = self.node(c);
            count += 1;
            bytes += n.data_len() as i64;
            n.for_each_child(|k| stack.push(k));
        }
        (count, bytes)
    }

    /// A stats node's new data: its stat (version, mzxid) stays.
    fn set_usage(&mut self, id: NodeId, path: &str, data: &[u8]) {
        self.replace_data(id, path, Some(data), |_| {});
    }

    /// `DataTree.setupQuota` (after a snapshot load): every leaf
    /// `.../zookeeper_limits` under `/zookeeper/quota` is a quota, recounted.
    pub(crate) fn setup_quotas(&mut self) {
        let Some(root) = self.lookup(QUOTA_ROOT) else {
            return;
        };
        let suffix = format!("/{LIMIT_NODE}");
        let mut leaves = Vec::new();
        let mut stack = vec![(root, QUOTA_ROOT.to_string())];
        while let Some((id, path)) = stack.pop() {
            let n = self.node(id);
            if n.children_len() == 0 {
                if let Some(at) = path.find(&suffix).filter(|_| path.ends_with(&suffix)) {
                    leaves.push(path[QUOTA_ROOT.len()..at].to_string());
                }
                continue;
            }
            n.for_each_child(|k| stack.push((k, format!("{path}/{}", self.node(k).name()))));
        }
        for quota in leaves {
            self.recount_quota(&quota);
            if !self.quotas.add(&quota) {
                warn!("{QUOTA_ROOT}{suffix}: a quota on no path is ignored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_reads_and_writes_as_stats_track() {
        let add = |d: &str, c, b| add_usage(Some(d.as_bytes()), c, b).map(String::from_utf8);
        assert_eq!(
            add("count=0,bytes=0", 1, 5),
            Some(Ok("count=1,bytes=5".into()))
        );
        // Absent keys read -1; the last of a key wins.
        assert_eq!(add("", 1, 1), Some(Ok("count=0,bytes=0".into())));
        assert_eq!(
            add("bytes=3,bytes=7", 1, 1),
            Some(Ok("count=0,bytes=8".into()))
        );
        // Other keys follow an extra '=', sorted; the pair separators run.
        assert_eq!(
            add("count=2,bytes=4=;;countHardLimit=9;byteHardLimit=-1", 0, -4),
            Some(Ok(
                "count=2,bytes=0=;byteHardLimit=-1;countHardLimit=9".into()
            ))
        );
        // Trailing separators vanish; "a==b" has an empty value.
        assert_eq!(add("count=1,,", 0, 0), Some(Ok("count=1,bytes=-1".into())));
        assert_eq!(add("count==5", 0, 0), Some(Ok("count=-1,bytes=-1".into())));
        // Where Java throws: no '=', no value, a leading separator, a bad number, null data.
        for bad in [
            "count",
            "count=",
            ",count=1",
            "count=x",
            "bytes=99999999999999999999",
        ] {
            assert_eq!(add(bad, 1, 1), None, "{bad}");
        }
        assert_eq!(add_usage(None, 1, 1), None);
        assert_eq!(usage(3, 10), b"count=3,bytes=10");
    }

    #[test]
    fn quota_paths_match_the_path_trie() {
        let mut q = QuotaPaths::default();
        assert_eq!(q.max_prefix("/a/b"), None);
        assert!(!q.add(""));
        assert!(!q.add("/ /"));
        assert!(q.add("/a"));
        assert!(q.add("X/ /y"));
        assert_eq!(q.max_prefix("/a"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b/c"), Some("/a".into()));
        assert_eq!(q.max_prefix("/ab"), None);
        assert_eq!(q.max_prefix("/X/y/z"), Some("/X/y".into()));
        q.add("/a/b");
        assert_eq!(q.max_prefix("/a/b/c"), Some("/a/b".into()));
        assert_eq!(q.max_prefix("/a/c"), Some("/a".into()));
        q.remove("/a/ /b");
        assert_eq!(q.max_prefix("/a/b/c"), Some("/a".into()));
        q.remove("/a");
        q.remove("/X/y");
        assert!(q.set.is_empty());
    }

    #[test]
    fn trimming_a_short_parent_is_none() {
        assert_eq!(trim_quota_path("/zookeeper/quota/a"), Some("/a"));
        assert_eq!(trim_quota_path("/zookeeper/quotaX"), Some("X"));
        assert_eq!(trim_quota_path("/zookeeperX"), None);
        assert_eq!(stat_path("/a"), "/zookeeper/quota/a/zookeeper_stats");
    }
}
