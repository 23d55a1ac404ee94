//! Oracle for zk-tree's reader of Apache's SNAP body (design/quorum.md §4):
//! an Apache snapshot file is the same serialization between a 16-byte
//! header and its seals (design/apache-disk-format.md §4). A real Apache 3.8
//! gets znodes of every kind through the wire protocol; a restart makes it
//! write a snapshot of them; the body of that file (the SNAP body without
//! its "BenWasHere" signature), read by `Tree::read_apache_file_body`, must
//! hold exactly what Apache answers for each
//! node (data, null data, stat, ACL), its sessions and ephemerals, and the
//! tree digest Apache wrote after the body.

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use zk_integration::{ApacheZk, Client, ServerOptions, ZkServer, acl, open_acl};
use zk_jute::{Acl, Request, SetAclRequest, Stat, perms};
use zk_tree::{APACHE_MAX_LEN, Auth, Tree, TreeConfig};

const SUPER: Auth<'static> = Auth {
    ids: &[],
    is_super: true,
};

fn create(c: &mut Client, path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32) -> String {
    c.create_node(path, data, acl, flags)
}

/// What Apache answers for `path`: (data, stat, ACL).
fn apache_node(c: &mut Client, path: &str) -> (Option<Bytes>, Stat, Vec<Acl>) {
    c.node(path)
}

/// The newest `snapshot.<hex>` in `<dataDir>/version-2` and its zxid.
fn newest_snapshot(zk: &ZkServer) -> (PathBuf, i64) {
    let dir = zk.data_dir().join("version-2");
    fs::read_dir(&dir)
        .expect("version-2")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let hex = p
                .file_name()?
                .to_str()?
                .strip_prefix("snapshot.")?
                .to_owned();
            Some((p, i64::from_str_radix(&hex, 16).ok()?))
        })
        .max_by_key(|(_, z)| *z)
        .unwrap_or_else(|| panic!("no snapshot in {}", dir.display()))
}

#[test]
fn apache_snapshot_body_reads_as_created() {
    let mut zk = ApacheZk::start_with(ServerOptions::default().extended_types());
    let mut c = Client::connect(zk.addr()).expect("connect");
    let session = c.session_id();
    assert_eq!(c.add_auth("digest", "user:pw").expect("addauth"), 0);
    let digest_id = zk_tree::digest_id("user:pw");
    let mine = vec![acl(perms::ALL, "digest", &digest_id)];
    let mixed = vec![
        acl(perms::READ, "world", "anyone"),
        acl(perms::ALL, "ip", "127.0.0.1"),
    ];

    let mut paths = vec![
        "/".to_string(),
        "/zookeeper".into(),
        "/zookeeper/quota".into(),
    ];
    paths.push(create(&mut c, "/app", Some(b"hello"), open_acl(), 0));
    paths.push(create(&mut c, "/app/cfg", Some(b""), mine.clone(), 0));
    paths.push(create(&mut c, "/app/null", None, mixed.clone(), 0));
    paths.push(create(&mut c, "/app/ro", Some(b"r"), mixed.clone(), 0));
    paths.push(create(&mut c, "/app/seq-", Some(b"s1"), open_acl(), 2));
    paths.push(create(
        &mut c,
        "/app/seq-",
        Some(&[0, 255, 7]),
        open_acl(),
        2,
    ));
    paths.push(create(&mut c, "/app/eph", Some(b"e"), open_acl(), 1));
    paths.push(create(
        &mut c,
        "/app/eph-seq-",
        Some(b"es"),
        mine.clone(),
        3,
    ));
    paths.push(create(&mut c, "/box", None, open_acl(), 4));
    paths.push(create(&mut c, "/box/in", Some(b"i"), open_acl(), 0));
    paths.push(create(&mut c, "/ttl", Some(b"t"), open_acl(), 5));
    paths.push(create(&mut c, "/deep", Some(b"d"), open_acl(), 0));
    let mut p = "/deep".to_string();
    for i in 0..20 {
        p.push_str(&format!("/{i}"));
        paths.push(create(&mut c, &p, Some(p.as_bytes()), open_acl(), 0));
    }
    let big = vec![0xa5u8; 200_000];
    paths.push(create(&mut c, "/big", Some(&big), open_acl(), 0));
    // Versions, a deleted child (cversion, pzxid), an ACL change (aversion).
    for v in 0..3 {
        c.set_data("/app", format!("v{v}").as_bytes(), v)
            .expect("setData")
            .expect("setData ok");
    }
    let gone = create(&mut c, "/app/gone", Some(b"x"), open_acl(), 0);
    c.delete(&gone, -1).expect("delete").expect("delete ok");
    c.call(&Request::SetAcl(SetAclRequest {
        path: "/app/ro".into(),
        acl: mine.clone(),
        version: 0,
    }))
    .expect("setACL")
    .expect_ok("/app/ro");

    let expected: Vec<_> = paths.iter().map(|p| (p, apache_node(&mut c, p))).collect();
    let last_zxid = c.last_zxid();
    assert_eq!(expected[5].1.0, None, "Apache keeps /app/null's data null");

    // A restart makes Apache load its log and write snapshot.<last zxid>
    // before it serves again.
    zk.restart();
    let (file, snap_zxid) = newest_snapshot(&zk);
    assert!(snap_zxid >= last_zxid, "{snap_zxid:#x} < {last_zxid:#x}");
    let bytes = fs::read(&file).expect("read snapshot");
    drop(c);
    drop(zk);

    // File header: "ZKSN", version 2, dbid -1.
    assert_eq!(&bytes[..4], b"ZKSN");
    assert_eq!(&bytes[4..8], &2i32.to_be_bytes());
    assert_eq!(&bytes[8..16], &(-1i64).to_be_bytes());
    let mut body = &bytes[16..];
    let snap = Tree::read_apache_file_body(
        &mut body,
        TreeConfig {
            extended_types: true,
            ..TreeConfig::default()
        },
        APACHE_MAX_LEN,
        snap_zxid,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let end = bytes.len() - body.len();

    // The reader stopped exactly at the end of the body: seal 1 follows,
    // the Adler32 of every byte before it, then "/".
    let mut seal = &bytes[end..];
    let sum = i64::from_be_bytes(seal[..8].try_into().unwrap());
    assert_eq!(sum, i64::from(zk_apache::adler32(&bytes[..end])), "seal 1");
    assert_eq!(&seal[8..13], b"\0\0\0\x01/");
    seal = &seal[13..];

    let tree = &snap.tree;
    for (path, (data, stat, acl)) in &expected {
        let (our_data, our_stat) = tree
            .get_data(path, &SUPER, None)
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(&our_data, data, "{path}: data");
        assert_eq!(&our_stat, stat, "{path}: stat");
        let (our_acl, _) = tree.get_acl(path, &SUPER).expect("acl");
        assert_eq!(&our_acl, acl, "{path}: ACL");
    }
    // Nothing else but /zookeeper/config (3.8 writes it too).
    let names = |p: &str| tree.get_children(p, &SUPER, None).expect("children").0;
    assert_eq!(names("/zookeeper").len(), 2, "{:?}", names("/zookeeper"));
    assert_eq!(tree.node_count(), expected.len() + 1);
    assert_eq!(tree.last_processed_zxid(), snap_zxid);

    // The session and its ephemerals.
    assert!(
        snap.sessions.iter().any(|&(id, _)| id == session),
        "session {session:#x} in {:?}",
        snap.sessions
    );
    let mut eph: Vec<String> = expected
        .iter()
        .filter(|(_, (_, s, _))| s.ephemeral_owner == session)
        .map(|(p, _)| p.to_string())
        .collect();
    eph.sort();
    assert_eq!(eph.len(), 2);
    assert_eq!(tree.ephemerals_by_session(), vec![(session, eph)]);
    // The TTL node and the container are indexed as such: far in the
    // future the TTL node (no children) has expired; the container has a
    // child, so it is not a candidate.
    assert_eq!(
        tree.expired_ttl_and_empty_containers(i64::MAX / 2),
        vec!["/ttl".to_string()]
    );

    // Apache's digest section after seal 1: zxid, version 2, tree digest.
    assert!(
        seal.len() >= 20 + 13,
        "no digest section: {} bytes",
        seal.len()
    );
    let digest_zxid = i64::from_be_bytes(seal[..8].try_into().unwrap());
    let version = i32::from_be_bytes(seal[8..12].try_into().unwrap());
    let digest = i64::from_be_bytes(seal[12..20].try_into().unwrap());
    assert_eq!(version, 2);
    assert_ne!(digest_zxid, 0, "Apache wrote an empty digest");
    assert_eq!(
        tree.digest(),
        digest,
        "tree digest (Apache's at zxid {digest_zxid:#x})"
    );
}
