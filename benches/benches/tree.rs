//! zk-tree: create, setData and getData rates; snapshot write and read of a
//! large tree; and the memory cost per znode (RSS delta over 1M znodes of
//! 100-byte data and 20-byte names, printed once). Under `--test` (the CI
//! smoke run) the large cases shrink to 10k znodes.

#![allow(missing_docs)]

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use zk_jute::{CreateRequest, CreateTxn, Request, SetDataRequest, SetDataTxn, TxnBody, TxnHeader};
use zk_tree::{
    ApplyOutcome, Auth, PendingChanges, RequestContext, Tree, TreeConfig, open_acl_unsafe, prepare,
};

fn smoke() -> bool {
    std::env::args().any(|a| a == "--test")
}

fn big() -> usize {
    if smoke() { 10_000 } else { 1_000_000 }
}

/// The header of txn `zxid` of type `txn_type` (1 create, 5 setData) from session 1.
fn header(zxid: i64, txn_type: i32) -> TxnHeader {
    TxnHeader {
        client_id: 1,
        cxid: 0,
        zxid,
        time: zxid,
        txn_type,
    }
}

/// Builds `n` znodes of 100-byte data and 20-byte names, 1000 per parent,
/// by applying create txns directly.
fn build(n: usize) -> Tree {
    let tree = Tree::new(TreeConfig::default());
    let data = Bytes::from(vec![7u8; 100]);
    let acl = open_acl_unsafe();
    let mut zxid = 0;
    let mut apply = |path: String, data: Option<Bytes>| {
        zxid += 1;
        let body = TxnBody::Create(CreateTxn {
            path,
            data,
            acl: acl.clone(),
            ephemeral: false,
            parent_c_version: -1,
        });
        tree.apply(&header(zxid, 1), &body);
    };
    for p in 0..n.div_ceil(1000) {
        apply(format!("/parent-{p:013}"), None);
        for c in 0..1000.min(n - p * 1000) {
            apply(format!("/parent-{p:013}/node-{c:015}"), Some(data.clone()));
        }
    }
    tree
}

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Prints the bytes of overhead per znode beyond its data (100) and name (20).
fn bytes_per_znode() {
    let n = big();
    let before = rss_bytes().unwrap_or(0);
    let tree = build(n);
    let after = rss_bytes().unwrap_or(0);
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    eprintln!(
        "zk-tree memory: {n} znodes, RSS +{:.1} MiB, {per:.0} bytes/znode, {:.0} bytes/znode beyond data (100) and name (20)",
        (after - before) as f64 / (1 << 20) as f64,
        per - 120.0
    );
    black_box(tree.node_count());
}

fn ctx(zxid: i64) -> RequestContext<'static> {
    RequestContext {
        session_id: 1,
        auth: Auth::default(),
        zxid,
        time_ms: zxid,
    }
}

/// prepare + apply of a create of `/node-<seq>` (the prep and apply stages of
/// the server's write path).
fn create_node(
    tree: &Tree,
    pending: &mut PendingChanges,
    zxid: i64,
    seq: u64,
    data: &Bytes,
) -> ApplyOutcome {
    let req = Request::Create(CreateRequest {
        path: format!("/node-{seq:015}"),
        data: Some(data.clone()),
        acl: open_acl_unsafe(),
        flags: 0,
    });
    let body = prepare(tree, pending, &ctx(zxid), req).unwrap();
    let out = tree.apply(&header(zxid, 1), &body);
    pending.applied(zxid);
    out
}

fn ops(c: &mut Criterion) {
    bytes_per_znode();
    let mut g = c.benchmark_group("tree");
    g.throughput(Throughput::Elements(1));
    let data = Bytes::from(vec![1u8; 100]);

    // create: prepare + apply of a create under one parent (the prep and
    // apply stages of the server's write path).
    let tree = Tree::new(TreeConfig::default());
    let mut pending = PendingChanges::new();
    let mut zxid = 0i64;
    let mut seq = 0u64;
    g.bench_function("create", |b| {
        b.iter(|| {
            zxid += 1;
            seq += 1;
            black_box(create_node(&tree, &mut pending, zxid, seq, &data));
        })
    });
    if seq == 0 {
        // The create bench was filtered out: make the node set_data works on.
        zxid += 1;
        seq += 1;
        create_node(&tree, &mut pending, zxid, seq, &data);
    }

    // setData: prepare + apply on an existing node.
    let req = Request::SetData(SetDataRequest {
        path: "/node-000000000000001".into(),
        data: Some(data.clone()),
        version: -1,
    });
    g.bench_function("set_data", |b| {
        b.iter(|| {
            zxid += 1;
            let body = prepare(&tree, &mut pending, &ctx(zxid), req.clone()).unwrap();
            black_box(tree.apply(&header(zxid, 5), &body));
            pending.applied(zxid);
        })
    });

    // getData: a read with the ACL check, no watch.
    g.bench_function("get_data", |b| {
        b.iter(|| {
            black_box(
                tree.get_data(black_box("/node-000000000000001"), &Auth::default(), None)
                    .unwrap(),
            )
        })
    });
    g.bench_function("get_data_with_watch", |b| {
        b.iter(|| {
            black_box(
                tree.get_data("/node-000000000000001", &Auth::default(), Some(1))
                    .unwrap(),
            )
        })
    });
    g.finish();

    let n = big();
    let tree = build(n);
    let mut snap = Vec::new();
    tree.write_snapshot(&mut snap).unwrap();
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("write_{n}"), |b| {
        b.iter_batched(
            || Vec::with_capacity(snap.len()),
            |mut out| {
                tree.write_snapshot(&mut out).unwrap();
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(format!("read_{n}"), |b| {
        b.iter(|| black_box(Tree::read_snapshot(&snap[..], TreeConfig::default()).unwrap()))
    });
    // The same tree after a setData of every node in a scattered order (a
    // new size class each): the blocks no longer follow the walk's id
    // order, as in a server after a write load, and each node the walk
    // reads is a cache miss of its own.
    churn(&tree, n);
    g.bench_function(format!("write_churned_{n}"), |b| {
        b.iter_batched(
            || Vec::with_capacity(snap.len() + 8 * n),
            |mut out| {
                tree.write_snapshot(&mut out).unwrap();
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A setData of 108 bytes on each node of [`build`]'s tree, in an order
/// scattered by a multiplicative step over the node numbers.
fn churn(tree: &Tree, n: usize) {
    let data = Bytes::from(vec![9u8; 108]);
    let mut zxid = tree.last_processed_zxid();
    // A step prime to n, near n times the golden ratio's 0.618, visits every
    // node once, far from the last.
    let mut step = (n * 618 / 1000) | 1;
    while gcd(step, n) != 1 {
        step += 2;
    }
    let mut i = 0usize;
    for _ in 0..n {
        i = (i + step) % n;
        zxid += 1;
        let body = TxnBody::SetData(SetDataTxn {
            path: format!("/parent-{:013}/node-{:015}", i / 1000, i % 1000),
            data: Some(data.clone()),
            version: 1,
        });
        tree.apply(&header(zxid, 5), &body);
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

criterion_group!(benches, ops);
criterion_main!(benches);
