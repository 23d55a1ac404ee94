//! Apache's SNAP body (design/quorum.md §4): round trips of random trees,
//! and bad bytes (truncations, flips, hand-made invalid bodies).

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use zk_jute::{Acl, CreateRequest, CreateTtlRequest, Request, SetAclRequest, perms};
use zk_tree::{APACHE_MAX_LEN, ApacheSnap, ApacheSnapError, Tree, TreeConfig};

fn extended() -> TreeConfig {
    TreeConfig {
        extended_types: true,
        ..TreeConfig::default()
    }
}

fn write(t: &Tree) -> Vec<u8> {
    let mut b = Vec::new();
    t.write_apache_snap(&mut b).expect("write to memory");
    b
}

/// Reads `b`, requiring every byte to be consumed.
fn read_all(b: &[u8], cfg: TreeConfig) -> Result<ApacheSnap, ApacheSnapError> {
    let mut r = b;
    let s = Tree::read_apache_snap(&mut r, cfg, APACHE_MAX_LEN, 0x1234)?;
    assert!(r.is_empty(), "{} bytes not consumed", r.len());
    Ok(s)
}

/// The tree read back from `t`'s body holds the same nodes, sessions,
/// digest and indexes, and writes the same bytes.
fn check_round_trip(t: &Tree, cfg: TreeConfig) {
    let b = write(t);
    let s = read_all(&b, cfg).expect("own body reads");
    assert_eq!(dump(&s.tree), dump(t));
    assert_eq!(s.tree.digest(), t.digest());
    assert_eq!(s.tree.node_count(), t.node_count());
    assert_eq!(s.tree.acl_cache_size(), t.acl_cache_size());
    assert_eq!(s.tree.sessions(), t.sessions());
    let mut listed = s.sessions.clone();
    listed.sort_unstable();
    assert_eq!(listed, t.sessions());
    assert_eq!(s.tree.ephemerals_by_session(), t.ephemerals_by_session());
    for now in [0, i64::MAX / 2] {
        assert_eq!(
            s.tree.expired_ttl_and_empty_containers(now),
            t.expired_ttl_and_empty_containers(now),
            "containers and TTL nodes indexed"
        );
    }
    assert_eq!(s.tree.last_processed_zxid(), 0x1234);
    assert_eq!(write(&s.tree), b, "equal trees write equal bytes");
}

const ACL_CHOICES: usize = 4;

fn acl_choice(i: usize, me: &zk_jute::Id) -> Vec<Acl> {
    match i % ACL_CHOICES {
        0 => zk_tree::open_acl_unsafe(),
        1 => vec![Acl {
            perms: perms::ALL,
            id: me.clone(),
        }],
        2 => vec![
            acl(perms::READ, "world", "anyone"),
            Acl {
                perms: perms::ALL,
                id: me.clone(),
            },
        ],
        _ => vec![acl(perms::READ | perms::CREATE, "ip", "10.0.0.0/8")],
    }
}

/// One random operation: (kind, which node, which ACL/mode, data, null data).
type Op = (u8, u16, u8, Vec<u8>, bool);

fn build(ops: &[Op]) -> Harness {
    let mut h = Harness::with(extended());
    let me = id("digest", &zk_tree::digest_id("u:p"));
    let ids = [me.clone()];
    for s in 1..=3 {
        h.open_session(s, 30_000 + s as i32);
    }
    let mut paths: Vec<String> = vec!["/".into()];
    for (kind, which, mode, data, null) in ops {
        let base = paths[*which as usize % paths.len()].clone();
        let data = (!null).then(|| Bytes::copy_from_slice(data));
        let session = 1 + i64::from(*which % 3);
        let child = if base == "/" {
            format!("/n{}", which % 7)
        } else {
            format!("{base}/n{}", which % 7)
        };
        match kind % 8 {
            0..=2 => {
                let acl = acl_choice(*mode as usize, &me);
                let flags = i32::from(mode % 4); // persistent / ephemeral, sequential or not
                let out = h.req_as(
                    session,
                    &ids,
                    Request::Create2(CreateRequest {
                        path: child,
                        data,
                        acl,
                        flags,
                    }),
                );
                if let Some(p) = out.path.filter(|_| out.err == zk_jute::ErrorCode::Ok) {
                    paths.push(p);
                }
            }
            3 => {
                let out = h.req_as(
                    session,
                    &ids,
                    Request::CreateContainer(CreateRequest {
                        path: child,
                        data,
                        acl: acl_choice(*mode as usize, &me),
                        flags: 4,
                    }),
                );
                if let Some(p) = out.path.filter(|_| out.err == zk_jute::ErrorCode::Ok) {
                    paths.push(p);
                }
            }
            4 => {
                let out = h.req_as(
                    session,
                    &ids,
                    Request::CreateTtl(CreateTtlRequest {
                        path: child,
                        data,
                        acl: acl_choice(*mode as usize, &me),
                        flags: 5 + i32::from(mode % 2),
                        ttl: 1 + i64::from(*mode) * 1000,
                    }),
                );
                if let Some(p) = out.path.filter(|_| out.err == zk_jute::ErrorCode::Ok) {
                    paths.push(p);
                }
            }
            5 => {
                h.req_as(
                    session,
                    &ids,
                    Request::SetData(zk_jute::SetDataRequest {
                        path: base,
                        data,
                        version: -1,
                    }),
                );
            }
            6 => {
                h.req_as(
                    session,
                    &ids,
                    Request::SetAcl(SetAclRequest {
                        path: base,
                        acl: acl_choice(*mode as usize, &me),
                        version: -1,
                    }),
                );
            }
            _ => {
                if mode % 5 == 0 {
                    h.close_session(session);
                } else {
                    h.req_as(
                        session,
                        &ids,
                        Request::Delete(zk_jute::DeleteRequest {
                            path: base,
                            version: -1,
                        }),
                    );
                }
            }
        }
    }
    h
}

#[test]
fn fixed_tree_round_trips() {
    let ops: Vec<Op> = (0..300u16)
        .map(|i| {
            (
                (i * 7 % 9) as u8,
                i * 31,
                (i % 11) as u8,
                vec![i as u8; (i % 5) as usize],
                i % 13 == 0,
            )
        })
        .collect();
    let h = build(&ops);
    assert!(h.tree.node_count() > 15, "{}", h.tree.node_count());
    assert!(h.tree.ephemerals_count() > 0);
    check_round_trip(&h.tree, extended());
}

#[test]
fn fresh_tree_round_trips() {
    check_round_trip(&Tree::new(TreeConfig::default()), TreeConfig::default());
}

#[test]
fn deep_tree_round_trips() {
    // 1500 levels: no recursion in the writer or the reader (the public-API
    // dump is quadratic in depth, so compare bytes and counts here).
    let mut h = Harness::new();
    let mut p = String::new();
    for i in 0..1500 {
        p.push_str(&format!("/{}", i % 10));
        h.create(0, &p, b"x", 0);
    }
    assert_eq!(h.tree.node_count(), 4 + 1500);
    let b = write(&h.tree);
    let s = read_all(&b, TreeConfig::default()).unwrap();
    assert_eq!(s.tree.node_count(), h.tree.node_count());
    assert_eq!(s.tree.digest(), h.tree.digest());
    assert_eq!(write(&s.tree), b);
}

#[test]
fn ttl_nodes_are_sessions_without_extended_types() {
    // EphemeralType.get: with extended types off, a 0xff.. owner is a session.
    let h = build(&[(4, 0, 1, b"t".to_vec(), false)]);
    let b = write(&h.tree);
    let s = read_all(&b, TreeConfig::default()).unwrap();
    assert_eq!(h.tree.ephemerals_count(), 0);
    assert_eq!(s.tree.ephemerals_count(), 1);
}

#[test]
fn every_truncation_is_an_error_at_its_offset() {
    let ops: Vec<Op> = (0..40u16)
        .map(|i| {
            (
                (i % 8) as u8,
                i * 3,
                (i % 7) as u8,
                vec![1, 2, 3],
                i % 9 == 0,
            )
        })
        .collect();
    let b = write(&build(&ops).tree);
    for cut in 0..b.len() {
        let mut r = &b[..cut];
        match Tree::read_apache_snap(&mut r, extended(), APACHE_MAX_LEN, 0) {
            Err(ApacheSnapError::Truncated { offset, .. }) => {
                assert_eq!(offset, cut as u64, "cut at {cut}")
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bytes_after_the_signature_stay_in_the_reader() {
    let mut b = write(&Tree::new(TreeConfig::default()));
    let body = b.len();
    b.extend_from_slice(b"next packet");
    let mut r = &b[..];
    Tree::read_apache_snap(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 0).unwrap();
    assert_eq!(r, b"next packet");
    // Through a small BufReader too.
    let mut r = std::io::BufReader::with_capacity(7, &b[..]);
    Tree::read_apache_snap(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 0).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut rest).unwrap();
    assert_eq!(rest, b"next packet", "body of {body} bytes");
}

/// Builds bodies by hand.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn s(self, v: &str) -> Self {
        self.raw(v.as_bytes())
    }
    fn raw(self, v: &[u8]) -> Self {
        let mut b = self.i32(v.len() as i32);
        b.0.extend_from_slice(v);
        b
    }
    /// A node with empty data and zero stats.
    fn node(self, path: &str, acl: i64) -> Self {
        let mut b = self.s(path).raw(b"").i64(acl);
        for _ in 0..4 {
            b = b.i64(0);
        }
        b.i32(0).i32(0).i32(0).i64(0).i64(0)
    }
    fn end(self) -> Self {
        self.s("/").s("BenWasHere")
    }
    /// No sessions, no ACLs.
    fn empty_head() -> Self {
        Body::default().i32(0).i32(0)
    }
}

/// The error of reading `b`, as (offset, reason).
fn invalid(b: &Body) -> (u64, String) {
    let mut r = &b.0[..];
    match Tree::read_apache_snap(&mut r, TreeConfig::default(), 1000, 0) {
        Err(ApacheSnapError::Invalid { offset, reason }) => (offset, reason),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hand_made_bodies() {
    // The smallest valid body: a root.
    let ok = Body::empty_head().node("", -1).end();
    let s = read_all(&ok.0, TreeConfig::default()).unwrap();
    assert_eq!(s.tree.node_count(), 1);

    let cases: Vec<(Body, u64, &str)> = vec![
        (Body::default().i32(-1), 0, "session count -1 is negative"),
        (
            Body::default().i32(2).i64(5).i32(1).i64(5).i32(2),
            16,
            "session 0x5 listed twice",
        ),
        (Body::default().i32(0).i32(-3), 4, "negative"),
        (Body::default().i32(0).i32(1).i64(-1).i32(0), 8, "ACL id -1"),
        (
            Body::default().i32(0).i32(2).i64(3).i32(0).i64(3).i32(0),
            20,
            "ACL id 3 listed twice",
        ),
        (
            Body::default().i32(0).i32(1).i64(3).i32(-1),
            16,
            "ACL vector length -1 is negative",
        ),
        (
            Body::default().i32(0).i32(1).i64(3).i32(1).i32(31).i32(-1),
            24,
            "ACL scheme is null",
        ),
        (Body::empty_head().i32(-1), 8, "node path is null"),
        (Body::empty_head().i32(-2), 8, "unreasonable length -2"),
        (Body::empty_head().i32(1001), 8, "unreasonable length 1001"),
        (Body::empty_head().raw(&[0xff]), 8, "not UTF-8"),
        (Body::empty_head().node("/a", -1), 8, "before the root"),
        (
            Body::empty_head().node("", 9),
            16,
            "ACL id 9, not in the map",
        ),
        (
            Body::empty_head().node("", -1).node("", -1),
            84,
            "root (path \"\") appears twice",
        ),
        (
            Body::empty_head().node("", -1).node("/a/b", -1),
            84,
            "before its parent \"/a\"",
        ),
        (
            Body::empty_head()
                .node("", -1)
                .node("/a", -1)
                .node("/a", -1),
            162,
            "\"/a\" appears twice",
        ),
        (
            Body::empty_head().node("", -1).node("a", -1),
            84,
            "invalid path \"a\"",
        ),
        (
            Body::empty_head().node("", -1).node("/a/", -1),
            84,
            "invalid path",
        ),
        (
            Body::empty_head().node("", -1).node("//", -1),
            84,
            "invalid path",
        ),
        (
            Body::empty_head().node("", -1).node("/.", -1),
            84,
            "invalid path",
        ),
        (
            Body::empty_head().node("", -1).s("/").s("BenWasThere"),
            89,
            "signature \"BenWasThere\"",
        ),
        (Body::empty_head().end(), 13, "no root"),
    ];
    for (body, offset, reason) in cases {
        let (at, why) = invalid(&body);
        assert!(why.contains(reason), "{why:?} lacks {reason:?}");
        assert_eq!(at, offset, "{why}");
    }
    // A data buffer above the limit is refused before it is read.
    let big = Body::empty_head().s("").i32(1_000_000);
    let (at, why) = invalid(&big);
    assert_eq!(at, 12);
    assert!(
        why.contains("unreasonable length 1000000 of node data"),
        "{why}"
    );
}

#[test]
fn file_body_has_no_signature() {
    // An Apache snapshot file seals the stream right after the "/": the
    // file-body reader stops there and leaves the seal unread.
    let body = Body::empty_head().node("", -1).s("/");
    let mut b = body.0.clone();
    b.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 1, b'/']);
    let mut r = &b[..];
    let s = Tree::read_apache_file_body(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 9).unwrap();
    assert_eq!(s.tree.node_count(), 1);
    assert_eq!(r.len(), 13, "the seal is left");
    // The SNAP reader wants the signature there.
    let mut r = &b[..];
    let err = Tree::read_apache_snap(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 9).unwrap_err();
    assert!(err.to_string().contains("signature"), "{err}");
    // And a body with a signature read as a file body leaves it unread.
    let b = Body::empty_head().node("", -1).end();
    let mut r = &b.0[..];
    Tree::read_apache_file_body(&mut r, TreeConfig::default(), APACHE_MAX_LEN, 9).unwrap();
    assert_eq!(r, b"\0\0\0\x0aBenWasHere");
}

#[test]
fn acl_map_entries_no_node_uses_are_dropped() {
    let b = Body::default()
        .i32(0)
        .i32(2)
        .i64(1)
        .i32(1)
        .i32(perms::READ)
        .s("world")
        .s("anyone")
        .i64(2)
        .i32(1)
        .i32(perms::ALL)
        .s("ip")
        .s("1.2.3.4")
        .node("", 2)
        .end();
    let s = read_all(&b.0, TreeConfig::default()).unwrap();
    assert_eq!(s.tree.acl_cache_size(), 1);
    let (acl, _) = s.tree.get_acl("/", &SUPER).unwrap();
    assert_eq!(acl, vec![acl_entry(perms::ALL, "ip", "1.2.3.4")]);
}

fn acl_entry(perms: i32, scheme: &str, i: &str) -> Acl {
    acl(perms, scheme, i)
}

#[test]
fn flipped_bytes_never_panic() {
    let ops: Vec<Op> = (0..30u16)
        .map(|i| ((i % 8) as u8, i * 5, (i % 7) as u8, vec![9; 3], false))
        .collect();
    let b = write(&build(&ops).tree);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut c = b.clone();
        let i = (x as usize) % c.len();
        c[i] ^= 1 << (x >> 60 & 7);
        let mut r = &c[..];
        if let Ok(s) = Tree::read_apache_snap(&mut r, extended(), APACHE_MAX_LEN, 0) {
            // Whatever reads writes a body that reads back the same.
            let again = write(&s.tree);
            assert_eq!(write(&read_all(&again, extended()).unwrap().tree), again);
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::bool::weighted(0.1),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_trees_round_trip(ops in proptest::collection::vec(op(), 0..120)) {
        let h = build(&ops);
        check_round_trip(&h.tree, extended());
    }
}
