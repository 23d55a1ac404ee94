//! Snapshots: round trip of a large random tree, exact replay over a fuzzy
//! snapshot, bad bytes; and readers never seeing half of a multi.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use common::*;
use zk_jute::{
    CreateRequest, DeleteRequest, ErrorTxn, MultiOp, Request, SetAclRequest, SetDataRequest,
    TxnBody, TxnHeader, perms,
};
use zk_tree::{Auth, PendingChanges, RequestContext, SnapshotError, Tree, TreeConfig, prepare};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A writer: prepares random requests, applies them (up to `max_lag`
/// prepared txns behind, as a leader's proposals wait for their quorum),
/// logs the txns.
struct Writer {
    pending: PendingChanges,
    zxid: i64,
    paths: Vec<String>,
    log: Vec<(TxnHeader, TxnBody)>,
    rng: Rng,
    max_lag: usize,
    /// Prepared, not applied: each with the digest prep gave it.
    queue: std::collections::VecDeque<(TxnHeader, TxnBody, i64)>,
    digests_checked: usize,
}

impl Writer {
    fn new(seed: u64) -> Self {
        Writer {
            pending: PendingChanges::new(),
            zxid: 0,
            paths: vec!["/".into()],
            log: Vec::new(),
            rng: Rng(seed),
            max_lag: 0,
            queue: std::collections::VecDeque::new(),
            digests_checked: 0,
        }
    }

    /// Applies the oldest prepared txn; the tree's digest must then be the
    /// one its prep computed (what a follower checks).
    fn apply_one(&mut self, tree: &Tree) {
        let (hdr, body, digest) = self.queue.pop_front().expect("a prepared txn");
        let out = tree.apply(&hdr, &body);
        self.pending.applied(hdr.zxid);
        assert_eq!(
            tree.digest(),
            digest,
            "zxid {} {body:?}: the applied tree's digest is not the prepared one",
            hdr.zxid
        );
        self.digests_checked += 1;
        if let Some(p) = &out.path
            && out.err == zk_jute::ErrorCode::Ok
            && !self.paths.contains(p)
            && matches!(
                body,
                TxnBody::Create(_) | TxnBody::Create2(_) | TxnBody::CreateContainer(_)
            )
        {
            self.paths.push(p.clone());
        }
        self.log.push((hdr, body));
    }

    /// Applies every prepared txn.
    fn drain(&mut self, tree: &Tree) {
        while !self.queue.is_empty() {
            self.apply_one(tree);
        }
    }

    fn submit(&mut self, tree: &Tree, session: i64, req: Request) {
        self.zxid += 1;
        let time = 1_000_000 + self.zxid * 7;
        let ids = [id("digest", &zk_tree::digest_id("w:w"))];
        let ctx = RequestContext {
            session_id: session,
            auth: Auth {
                ids: &ids,
                is_super: false,
            },
            zxid: self.zxid,
            time_ms: time,
        };
        let body = prepare(tree, &mut self.pending, &ctx, req)
            .unwrap_or_else(|e| TxnBody::Error(ErrorTxn { err: e.code() }));
        let hdr = TxnHeader {
            client_id: session,
            cxid: 0,
            zxid: self.zxid,
            time,
            txn_type: body.txn_type().code(),
        };
        let digest = self.pending.txn_digest(tree);
        self.queue.push_back((hdr, body, digest));
        let lag = if self.max_lag == 0 {
            0
        } else {
            self.rng.below(self.max_lag + 1)
        };
        while self.queue.len() > lag {
            self.apply_one(tree);
        }
    }

    fn random_op(&mut self, tree: &Tree) {
        let n = self.paths.len();
        let path = self.paths[self.rng.below(n)].clone();
        let name = format!("n{}", self.rng.below(30));
        let child = if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        };
        let data = Bytes::from(vec![self.rng.below(256) as u8; self.rng.below(40)]);
        let session = 1 + self.rng.below(3) as i64;
        let acl = if self.rng.below(4) == 0 {
            vec![
                acl(perms::ALL, "auth", ""),
                acl(perms::READ, "world", "anyone"),
            ]
        } else {
            zk_tree::open_acl_unsafe()
        };
        let create = |flags| CreateRequest {
            path: child.clone(),
            data: Some(data.clone()),
            acl: acl.clone(),
            flags,
        };
        let req = match self.rng.below(12) {
            0..=3 => Request::Create(create(self.rng.below(4) as i32)),
            4 => Request::CreateContainer(create(4)),
            5 | 6 => Request::SetData(SetDataRequest {
                path,
                data: Some(data),
                version: -1,
            }),
            7 | 8 => Request::Delete(DeleteRequest { path, version: -1 }),
            9 => Request::SetAcl(SetAclRequest {
                path,
                acl,
                version: -1,
            }),
            10 => Request::Multi(vec![
                MultiOp::Create(create(0)),
                MultiOp::SetData(SetDataRequest {
                    path: child.clone(),
                    data: None,
                    version: 0,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: child.clone(),
                    version: -1,
                }),
                MultiOp::Create(create(2)),
            ]),
            _ => {
                self.submit(tree, session, Request::CloseSession);
                Request::CreateSession(zk_jute::CreateSessionTxn {
                    time_out: 5000 + session as i32,
                })
            }
        };
        self.submit(tree, session, req);
    }
}

/// The digest the prep stage computes for each txn (what a leader sends as
/// `TxnDigest`) is the tree's digest once the txn is applied, with up to 8
/// txns prepared ahead of the applies: creates of every mode, sequentials,
/// deletes, setData, setACL, multis that fail half-way, session closes
/// removing ephemerals created but not yet applied.
#[test]
fn prepared_digests_are_the_applied_trees_digests() {
    for seed in 1..=20u64 {
        let tree = Tree::new(TreeConfig::default());
        let mut w = Writer::new(seed * 7919);
        w.max_lag = 8;
        for _ in 0..1500 {
            w.random_op(&tree);
        }
        w.drain(&tree);
        assert!(w.digests_checked >= 1500, "{}", w.digests_checked);
    }
}

/// A tree with session 1 and `ops` random ops of a writer seeded `seed`.
fn one_session_tree(seed: u64, ops: usize) -> (Tree, Writer) {
    let tree = Tree::new(TreeConfig::default());
    let mut w = Writer::new(seed);
    w.submit(
        &tree,
        1,
        Request::CreateSession(zk_jute::CreateSessionTxn { time_out: 4000 }),
    );
    for _ in 0..ops {
        w.random_op(&tree);
    }
    (tree, w)
}

#[test]
fn large_random_tree_round_trips() {
    let tree = Tree::new(TreeConfig::default());
    let mut w = Writer::new(0x9E37_79B9_7F4A_7C15);
    for s in 1..=3 {
        w.submit(
            &tree,
            s,
            Request::CreateSession(zk_jute::CreateSessionTxn {
                time_out: 4000 + s as i32,
            }),
        );
    }
    for _ in 0..20_000 {
        w.random_op(&tree);
    }
    assert!(tree.node_count() > 2000, "{}", tree.node_count());
    let mut buf = Vec::new();
    let start = tree.write_snapshot(&mut buf).unwrap();
    assert_eq!(start, w.zxid);
    let loaded = Tree::read_snapshot(&buf[..], TreeConfig::default()).unwrap();
    same(&tree, &loaded);
    // Loading again gives the same bytes.
    let mut again = Vec::new();
    loaded.write_snapshot(&mut again).unwrap();
    assert_eq!(buf.len(), again.len());
}

#[test]
fn replay_over_a_fuzzy_snapshot_gives_the_exact_tree() {
    // Chunks of 1 and 3 nodes too: every id the walk holds across a lock release
    // meets deletes and id reuse between chunks.
    for seed in 1..=16u64 {
        let chunk = [7, 1, 3][seed as usize % 3];
        let tree = Tree::new(TreeConfig::default());
        let mut w = Writer::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        for s in 1..=3 {
            w.submit(
                &tree,
                s,
                Request::CreateSession(zk_jute::CreateSessionTxn { time_out: 4000 }),
            );
        }
        for _ in 0..3000 {
            w.random_op(&tree);
        }
        let mut buf = Vec::new();
        let start = {
            let mut between = || {
                for _ in 0..5 {
                    w.random_op(&tree);
                }
            };
            tree.write_snapshot_interleaved(&mut buf, chunk, &mut between)
                .unwrap()
        };
        for _ in 0..200 {
            w.random_op(&tree);
        }
        let loaded = Tree::read_snapshot(&buf[..], TreeConfig::default()).unwrap();
        assert_eq!(loaded.last_processed_zxid(), start);
        for (hdr, body) in w.log.iter().filter(|(h, _)| h.zxid > start) {
            loaded.apply(hdr, body);
        }
        same(&tree, &loaded);
        // Replaying txns the tree already holds is harmless too.
        for (hdr, body) in w.log.iter().filter(|(h, _)| h.zxid > start) {
            if !matches!(body, TxnBody::CreateSession(_) | TxnBody::CloseSession(_)) {
                continue;
            }
            loaded.apply(hdr, body);
        }
    }
}

#[test]
fn fuzzy_snapshot_of_parents_with_many_children() {
    // /big: a sharded child set, walked one shard per step; /mid: more
    // children than are sorted under the read lock. Between chunks, children
    // of both are deleted (ids freed and reused) and created.
    let mk = |path: String| {
        Request::Create(CreateRequest {
            path,
            data: Some(Bytes::from_static(b"d")),
            acl: zk_tree::open_acl_unsafe(),
            flags: 0,
        })
    };
    let del = |path: String| Request::Delete(DeleteRequest { path, version: -1 });
    for seed in 1..=4u64 {
        let tree = Tree::new(TreeConfig::default());
        let mut w = Writer::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        w.submit(
            &tree,
            1,
            Request::CreateSession(zk_jute::CreateSessionTxn { time_out: 4000 }),
        );
        // /shrink: a sharded set emptied down to an inline one while the walk
        // gathers its shards (the first big set in id order: one part per chunk).
        w.submit(&tree, 1, mk("/shrink".into()));
        for i in 0..5000 {
            w.submit(&tree, 1, mk(format!("/shrink/c{i}")));
        }
        w.submit(&tree, 1, mk("/big".into()));
        w.submit(&tree, 1, mk("/mid".into()));
        for i in 0..6000 {
            w.submit(&tree, 1, mk(format!("/big/c{i}")));
        }
        for i in 0..300 {
            w.submit(&tree, 1, mk(format!("/mid/c{i}")));
            w.submit(&tree, 1, mk(format!("/mid/c{i}/g")));
        }

        let chunk = [5, 64, 256, 1000][seed as usize % 4];
        let mut buf = Vec::new();
        let mut k = 0;
        let start = {
            let mut between = || {
                k += 1;
                if k == 2 {
                    for i in 2..5000 {
                        w.submit(&tree, 1, del(format!("/shrink/c{i}")));
                    }
                }
                for j in 0..3 {
                    let i = w.rng.below(6000);
                    w.submit(&tree, 1, del(format!("/big/c{i}")));
                    w.submit(&tree, 1, mk(format!("/big/x{k}-{j}")));
                }
                let i = w.rng.below(300);
                w.submit(&tree, 1, del(format!("/mid/c{i}/g")));
                w.submit(&tree, 1, del(format!("/mid/c{i}")));
                w.submit(&tree, 1, mk(format!("/mid/x{k}")));
            };
            tree.write_snapshot_interleaved(&mut buf, chunk, &mut between)
                .unwrap()
        };
        let loaded = Tree::read_snapshot(&buf[..], TreeConfig::default()).unwrap();
        assert_eq!(loaded.last_processed_zxid(), start);
        for (hdr, body) in w.log.iter().filter(|(h, _)| h.zxid > start) {
            loaded.apply(hdr, body);
        }
        same(&tree, &loaded);
    }
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    let (tree, _) = one_session_tree(7, 200);
    let mut buf = Vec::new();
    tree.write_snapshot(&mut buf).unwrap();
    assert!(matches!(
        Tree::read_snapshot(&b"NOTASNAP........"[..], TreeConfig::default()),
        Err(SnapshotError::BadMagic)
    ));
    for cut in (0..buf.len()).step_by(13) {
        assert!(
            Tree::read_snapshot(&buf[..cut], TreeConfig::default()).is_err(),
            "cut at {cut}"
        );
    }
    let mut rng = Rng(99);
    for _ in 0..300 {
        let mut b = buf.clone();
        let i = 8 + rng.below(b.len() - 8);
        b[i] ^= 1 << rng.below(8);
        assert!(
            Tree::read_snapshot(&b[..], TreeConfig::default()).is_err(),
            "flip at {i}"
        );
    }
}

#[test]
fn readers_never_see_half_a_multi() {
    let tree = Arc::new(Tree::new(TreeConfig::default()));
    let mut w = Writer::new(3);
    w.submit(&tree, 0, Request::Create(create_req("/m", b"", 0)));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let tree = tree.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (kids, stat) = tree.get_children("/m", &SUPER, None).unwrap();
                    assert_eq!(kids.len() % 2, 0, "half a multi seen");
                    assert_eq!(stat.num_children as usize, kids.len());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..3000 {
        let ops = if i % 2 == 0 {
            vec![
                MultiOp::Create(create_req(&format!("/m/a{i}"), b"", 0)),
                MultiOp::Create(create_req(&format!("/m/b{i}"), b"", 0)),
            ]
        } else {
            vec![
                MultiOp::Delete(DeleteRequest {
                    path: format!("/m/a{}", i - 1),
                    version: -1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: format!("/m/b{}", i - 1),
                    version: -1,
                }),
            ]
        };
        w.submit(&tree, 0, Request::Multi(ops));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

/// Regression: a take-over of Apache's data whose newest log was torn inside
/// a create that Apache's fuzzy snapshot had already caught lost that node
/// (Apache keeps it). The loaded tree's last zxid is before the node's czxid,
/// and the walk took every such node for one created after it began, left
/// to a log replay that has nothing to replay.
#[test]
fn nodes_a_fuzzy_load_holds_past_its_last_zxid_are_written() {
    let (tree, mut w) = one_session_tree(0x5DEE_CE66_D1CE_4E5B, 300);
    for i in 0..3 {
        w.submit(
            &tree,
            1,
            Request::Create(CreateRequest {
                path: format!("/caught-{i}"),
                data: Some(Bytes::from_static(b"fuzzy")),
                acl: zk_tree::open_acl_unsafe(),
                flags: 0,
            }),
        );
    }
    w.drain(&tree);
    // Apache's snapshot named (and so loaded at) three txns before the
    // creates it holds.
    let mut body = Vec::new();
    let exact_at = tree.write_apache_snap(&mut body).unwrap();
    let loaded = Tree::read_apache_snap(
        &mut &body[..],
        TreeConfig::default(),
        zk_tree::APACHE_MAX_LEN,
        exact_at - 3,
    )
    .unwrap()
    .tree;
    assert_eq!(dump(&loaded), dump(&tree));
    for chunk in [256, 1] {
        let mut ours = Vec::new();
        let start = loaded
            .write_snapshot_interleaved(&mut ours, chunk, &mut || {})
            .unwrap();
        assert_eq!(start, exact_at - 3);
        let back = Tree::read_snapshot(&ours[..], TreeConfig::default()).unwrap();
        assert_eq!(dump(&back), dump(&tree), "chunks of {chunk}");
        assert_eq!(back.digest(), tree.digest());
        // Written again from what was read back: the same bytes.
        let mut again = Vec::new();
        back.write_snapshot(&mut again).unwrap();
        assert_eq!(again, ours);
    }
}

/// Regression: a snapshot file of ours with a node "//a" (its checksum
/// right) loaded it as "/a" under a digest of "//a", so the tree's running
/// digest was not its nodes' (the alias the apply had too; a leader's SNAP
/// goes through the Apache reader, which validates every path). It is now
/// corrupt, at the node.
#[test]
fn a_snapshot_path_with_an_empty_component_is_corrupt() {
    let mut h = Harness::new();
    assert_eq!(h.create(0, "/ab", b"", 0).err, zk_jute::ErrorCode::Ok);
    let mut buf = Vec::new();
    h.tree.write_snapshot(&mut buf).unwrap();
    let at = buf
        .windows(7)
        .position(|w| w == b"\0\0\0\x03/ab")
        .expect("the node's path");
    buf[at + 4..at + 7].copy_from_slice(b"//a");
    let body = buf.len() - 4;
    let crc = crc32fast::hash(&buf[..body]);
    buf[body..].copy_from_slice(&crc.to_be_bytes());
    let Err(e) = Tree::read_snapshot(&buf[..], TreeConfig::default()) else {
        panic!("a path with an empty component loaded");
    };
    assert!(e.to_string().contains("empty path component"), "{e}");
}
