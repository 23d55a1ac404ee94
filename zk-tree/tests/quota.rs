//! Quota usage (`/zookeeper/quota/P/zookeeper_stats`), kept by the tree as
//! Apache 3.8's `DataTree` keeps it.
//!
//! Regression: the stats node kept whatever the client wrote (`count=0,
//! bytes=0` from zkCli's `setquota`), so `listquota` never showed a
//! quota's usage as Apache's does.

mod common;

use common::*;
use proptest::prelude::*;
use zk_tree::{Auth, Tree, TreeConfig};

const ANY: Auth<'static> = Auth {
    ids: &[],
    is_super: false,
};

fn stats(t: &Tree, quota: &str) -> String {
    let path = format!("/zookeeper/quota{quota}/zookeeper_stats");
    let (data, _) = t.get_data(&path, &ANY, None).unwrap();
    String::from_utf8(data.unwrap_or_default().to_vec()).unwrap()
}

/// zkCli's `setquota -n <count> <path>`: the quota nodes, then the limits,
/// then zeroed stats.
fn set_quota(h: &mut Harness, path: &str, count: i64) {
    let mut q = "/zookeeper/quota".to_string();
    for c in path.split('/').skip(1) {
        q.push('/');
        q.push_str(c);
        h.create(1, &q, b"", 0);
    }
    let limits = format!("count={count},bytes=-1");
    assert_eq!(
        h.create(1, &format!("{q}/zookeeper_limits"), limits.as_bytes(), 0)
            .err,
        ok()
    );
    assert_eq!(
        h.create(1, &format!("{q}/zookeeper_stats"), b"count=0,bytes=0", 0)
            .err,
        ok()
    );
}

fn ok() -> zk_jute::ErrorCode {
    zk_jute::ErrorCode::Ok
}

fn reload(t: &Tree) -> Tree {
    let mut buf = Vec::new();
    t.write_snapshot(&mut buf).unwrap();
    Tree::read_snapshot(&buf[..], TreeConfig::default()).unwrap()
}

#[test]
fn usage_follows_creates_deletes_and_set_data() {
    let mut h = Harness::new();
    h.create(1, "/app", b"12345", 0);
    h.create(1, "/app/a", b"xy", 0);
    h.create(1, "/other", b"zzzz", 0);
    set_quota(&mut h, "/app", 10);
    // Created stats are recounted: /app and /app/a, 7 bytes.
    assert_eq!(stats(&h.tree, "/app"), "count=2,bytes=7");
    let (_, st) = h
        .tree
        .get_data("/zookeeper/quota/app/zookeeper_stats", &ANY, None)
        .unwrap();
    let (mzxid, version) = (st.mzxid, st.version);
    h.create(1, "/app/b", b"abc", 0);
    h.create(1, "/app/b/c", b"", 0);
    h.create(1, "/other/x", b"not counted", 0);
    assert_eq!(stats(&h.tree, "/app"), "count=4,bytes=10");
    h.set(1, "/app/a", b"longer data", -1);
    assert_eq!(stats(&h.tree, "/app"), "count=4,bytes=19");
    h.delete(1, "/app/b/c", -1);
    assert_eq!(stats(&h.tree, "/app"), "count=3,bytes=19");
    // An ephemeral's close deletes count too.
    h.open_session(7, 30_000);
    h.create(7, "/app/e", b"ee", 1);
    assert_eq!(stats(&h.tree, "/app"), "count=4,bytes=21");
    h.close_session(7);
    assert_eq!(stats(&h.tree, "/app"), "count=3,bytes=19");
    // The server's updates are no txns: the stats node keeps its version.
    let (data, st) = h
        .tree
        .get_data("/zookeeper/quota/app/zookeeper_stats", &ANY, None)
        .unwrap();
    assert_eq!((st.mzxid, st.version), (mzxid, version));
    assert_eq!(st.data_length as usize, data.unwrap().len());
    // A snapshot keeps the usage, and its load recounts it.
    let loaded = reload(&h.tree);
    assert_eq!(stats(&loaded, "/app"), "count=3,bytes=19");
    // Without its limits node the path has no quota any more.
    h.delete(1, "/zookeeper/quota/app/zookeeper_limits", -1);
    h.create(1, "/app/d", b"d", 0);
    assert_eq!(stats(&h.tree, "/app"), "count=3,bytes=19");
}

#[test]
fn replay_of_the_log_gives_the_live_usage() {
    let mut h = Harness::new();
    h.create(1, "/q", b"", 0);
    set_quota(&mut h, "/q", 5);
    for i in 0..20 {
        h.create(1, &format!("/q/n{i}"), &vec![b'x'; i], 0);
    }
    for i in (0..20).step_by(3) {
        h.delete(1, &format!("/q/n{i}"), -1);
    }
    let live = stats(&h.tree, "/q");
    let replayed = Tree::new(TreeConfig::default());
    for (hdr, body) in &h.log {
        replayed.apply(hdr, body);
    }
    assert_eq!(stats(&replayed, "/q"), live);
    assert_eq!(live, "count=14,bytes=127");
}

#[test]
fn nested_quotas_charge_the_inner_one_and_a_load_recounts_both() {
    let mut h = Harness::new();
    h.create(1, "/a", b"", 0);
    h.create(1, "/a/b", b"", 0);
    set_quota(&mut h, "/a", 100);
    set_quota(&mut h, "/a/b", 100);
    assert_eq!(stats(&h.tree, "/a"), "count=2,bytes=0");
    assert_eq!(stats(&h.tree, "/a/b"), "count=1,bytes=0");
    h.create(1, "/a/b/c", b"123", 0);
    h.create(1, "/a/d", b"4", 0);
    assert_eq!(stats(&h.tree, "/a/b"), "count=2,bytes=3");
    assert_eq!(stats(&h.tree, "/a"), "count=3,bytes=1");
    // As Apache after a restart: the outer quota counts the inner subtree.
    let loaded = reload(&h.tree);
    assert_eq!(stats(&loaded, "/a"), "count=4,bytes=4");
    assert_eq!(stats(&loaded, "/a/b"), "count=2,bytes=3");
}

#[test]
fn odd_stats_data_and_odd_quota_paths_never_panic() {
    let mut h = Harness::new();
    h.create(1, "/p", b"", 0);
    set_quota(&mut h, "/p", 5);
    // Extra keys survive an update, after an extra '='.
    h.set(
        1,
        "/zookeeper/quota/p/zookeeper_stats",
        b"count=1,bytes=0;countHardLimit=5",
        -1,
    );
    h.create(1, "/p/x", b"ab", 0);
    assert_eq!(stats(&h.tree, "/p"), "count=2,bytes=2=;countHardLimit=5");
    // Unparsable usage (Apache throws out of its apply): left as it is.
    h.set(1, "/zookeeper/quota/p/zookeeper_stats", b"garbage", -1);
    assert_eq!(h.create(1, "/p/y", b"", 0).err, ok());
    assert_eq!(stats(&h.tree, "/p"), "garbage");
    // A quota whose stats node is missing: nothing to update.
    h.delete(1, "/zookeeper/quota/p/zookeeper_stats", -1);
    assert_eq!(h.create(1, "/p/z", b"", 0).err, ok());
    // A limits node right under /zookeeper/quota names no path (Apache
    // throws); its stats sibling counts the whole tree (Apache's "" root).
    assert_eq!(
        h.create(1, "/zookeeper/quota/zookeeper_limits", b"", 0).err,
        ok()
    );
    assert_eq!(
        h.create(1, "/zookeeper/quota/zookeeper_stats", b"", 0).err,
        ok()
    );
    assert!(stats(&h.tree, "").starts_with("count="));
    // A "limits" node under /zookeeperX is no quota's.
    h.create(1, "/zookeeperX", b"", 0);
    h.create(1, "/zookeeperX/zookeeper_limits", b"", 0);
    assert_eq!(h.delete(1, "/zookeeperX/zookeeper_limits", -1).err, ok());
    // A load of all this recounts what it can.
    let loaded = reload(&h.tree);
    assert_eq!(loaded.node_count(), h.tree.node_count());
}

/// `enforceQuota`: hard limits refuse, soft ones only log; checked against
/// the applied usage, as Apache's prep checks it.
#[test]
fn enforced_hard_limits_refuse_creates_and_set_data() {
    let mut h = Harness::with(TreeConfig {
        enforce_quota: true,
        ..TreeConfig::default()
    });
    h.create(1, "/q", b"", 0);
    set_quota(&mut h, "/q", 2);
    let limits = "/zookeeper/quota/q/zookeeper_limits";
    // The soft count limit 2 only logs.
    for n in ["/q/a", "/q/b", "/q/c"] {
        assert_eq!(h.create(1, n, b"", 0).err, ok());
    }
    h.set(
        1,
        limits,
        b"count=-1,bytes=-1=;countHardLimit=5;byteHardLimit=10",
        -1,
    );
    assert_eq!(h.create(1, "/q/d", b"0123456789", 0).err, ok());
    assert_eq!(stats(&h.tree, "/q"), "count=5,bytes=10");
    let exceeded = zk_jute::ErrorCode::QuotaExceeded;
    assert_eq!(h.create(1, "/q/e", b"", 0).err, exceeded);
    assert_eq!(h.create(1, "/q/a/deep", b"", 0).err, exceeded);
    // Bytes: growing is refused, an equal length or shrinking is not.
    assert_eq!(h.set(1, "/q/a", b"x", -1).err, exceeded);
    assert_eq!(h.set(1, "/q/d", b"9876543210", -1).err, ok());
    assert_eq!(h.set(1, "/q/d", b"01234", -1).err, ok());
    assert_eq!(h.set(1, "/q/a", b"abcde", -1).err, ok());
    // Deletes are never checked; afterwards there is room again.
    assert_eq!(h.delete(1, "/q/b", -1).err, ok());
    assert_eq!(h.create(1, "/q/e", b"", 0).err, ok());
    // Outside the quota nothing is checked.
    assert_eq!(h.create(1, "/free", &[0; 100], 0).err, ok());
    // Unparsable limits: Apache's prep fails with MARSHALLINGERROR.
    h.set(1, limits, b"countHardLimit", -1);
    assert_eq!(
        h.create(1, "/q/f", b"", 0).err,
        zk_jute::ErrorCode::MarshallingError
    );
    // A multi fails as a whole.
    h.set(1, limits, b"count=-1,bytes=-1=;countHardLimit=5", -1);
    let out = h.req(
        1,
        zk_jute::Request::Multi(vec![
            zk_jute::MultiOp::Delete(zk_jute::DeleteRequest {
                path: "/q/c".into(),
                version: -1,
            }),
            zk_jute::MultiOp::Create(create_req("/q/g", b"", 0)),
        ]),
    );
    assert_ne!(out.err, ok());
    assert!(h.tree.exists("/q/c", &ANY, None).is_ok());
    // Off (the default), nothing is refused.
    let mut off = Harness::new();
    off.create(1, "/q", b"", 0);
    set_quota(&mut off, "/q", 1);
    off.set(1, limits, b"count=-1,bytes=-1=;countHardLimit=1", -1);
    assert_eq!(off.create(1, "/q/a", b"", 0).err, ok());
}

/// The model: a quota's usage is its subtree's node count and data bytes.
fn recount(t: &Tree, path: &str) -> String {
    let (mut count, mut bytes) = (0, 0);
    let mut stack = vec![path.to_string()];
    while let Some(p) = stack.pop() {
        let Ok((data, _)) = t.get_data(&p, &ANY, None) else {
            continue;
        };
        count += 1;
        bytes += data.map_or(0, |d| d.len());
        let (kids, _) = t.get_children(&p, &ANY, None).unwrap();
        stack.extend(kids.iter().map(|k| format!("{p}/{k}")));
    }
    format!("count={count},bytes={bytes}")
}

#[derive(Debug, Clone)]
enum QOp {
    Create(String, usize),
    Delete(String),
    Set(String, usize),
    /// zkCli's setquota, where no quota is above or below the path.
    SetQuota(String),
    /// The limits and stats nodes deleted (zkCli's delquota of both).
    DelQuota(String),
}

fn qpath() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|v| format!("/{}", v.join("/")))
}

fn qop() -> impl Strategy<Value = QOp> {
    prop_oneof![
        4 => (qpath(), 0usize..40).prop_map(|(p, n)| QOp::Create(p, n)),
        2 => qpath().prop_map(QOp::Delete),
        2 => (qpath(), 0usize..40).prop_map(|(p, n)| QOp::Set(p, n)),
        1 => qpath().prop_map(QOp::SetQuota),
        1 => qpath().prop_map(QOp::DelQuota),
    ]
}

fn run_quota_ops(ops: &[QOp]) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut quotas: Vec<String> = Vec::new();
    for op in ops {
        match op {
            QOp::Create(p, n) => {
                h.create(1, p, &vec![b'x'; *n], 0);
            }
            QOp::Delete(p) => {
                h.delete(1, p, -1);
            }
            QOp::Set(p, n) => {
                h.set(1, p, &vec![b'y'; *n], -1);
            }
            QOp::SetQuota(p) => {
                let overlaps = quotas.iter().any(|q| {
                    q == p || p.starts_with(&format!("{q}/")) || q.starts_with(&format!("{p}/"))
                });
                if !overlaps && h.tree.exists(p, &ANY, None).is_ok() {
                    set_quota(&mut h, p, 10);
                    quotas.push(p.clone());
                }
            }
            QOp::DelQuota(p) => {
                if let Some(i) = quotas.iter().position(|q| q == p) {
                    h.delete(1, &format!("/zookeeper/quota{p}/zookeeper_limits"), -1);
                    h.delete(1, &format!("/zookeeper/quota{p}/zookeeper_stats"), -1);
                    quotas.remove(i);
                }
            }
        }
        for q in &quotas {
            prop_assert_eq!(
                stats(&h.tree, q),
                recount(&h.tree, q),
                "quota {} after {:?}",
                q,
                op
            );
        }
    }
    let replayed = Tree::new(TreeConfig::default());
    for (hdr, body) in &h.log {
        replayed.apply(hdr, body);
    }
    let loaded = reload(&h.tree);
    for q in &quotas {
        prop_assert_eq!(stats(&replayed, q), stats(&h.tree, q));
        prop_assert_eq!(stats(&loaded, q), stats(&h.tree, q));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    /// Non-overlapping quotas under random creates, deletes and setDatas:
    /// the usage is always the subtree's, live, replayed and reloaded.
    #[test]
    fn usage_is_the_subtrees_count(ops in proptest::collection::vec(qop(), 1..80)) {
        run_quota_ops(&ops)?;
    }
}
