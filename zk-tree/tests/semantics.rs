//! ZooKeeper 3.8 behaviours, one test per area.

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

mod common;

use bytes::Bytes;
use common::*;
use zk_jute::{
    AddWatchMode, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode,
    EventType, MultiOp, MultiResult, Request, SetAclRequest, SetDataRequest, SetWatches2,
    WatcherType, perms,
};
use zk_tree::{Auth, TreeConfig, digest_id};

const ANY: Auth<'static> = Auth {
    ids: &[],
    is_super: false,
};

fn ev(t: EventType, path: &str) -> zk_jute::WatcherEvent {
    zk_jute::WatcherEvent {
        event_type: t.code(),
        state: 3,
        path: path.into(),
    }
}

#[test]
fn fresh_tree_has_the_system_nodes() {
    let h = Harness::new();
    let t = &h.tree;
    let (kids, root) = t.get_children("/", &ANY, None).unwrap();
    assert_eq!(kids, vec!["zookeeper"]);
    assert_eq!(
        (root.cversion, root.num_children, root.data_length),
        (-1, 1, 0)
    );
    let (mut kids, _) = t.get_children("/zookeeper", &ANY, None).unwrap();
    kids.sort();
    assert_eq!(kids, vec!["config", "quota"]);
    let (acl, st) = t.get_acl("/zookeeper/config", &ANY).unwrap();
    assert_eq!(acl, zk_tree::read_acl_unsafe());
    assert_eq!(st.aversion, -1);
    assert_eq!(t.get_data("/", &ANY, None).unwrap().0, Some(Bytes::new()));
    assert_eq!(t.node_count(), 4);
    assert_eq!(t.get_all_children_number("/", &ANY), Ok(3));
    assert_eq!(t.digest(), t.digest(), "stable");
}

#[test]
fn create_stats_sequence_numbers_and_errors() {
    let mut h = Harness::new();
    h.open_session(1, 30000);
    let o = h.create(1, "/a", b"xy", 0);
    assert_eq!(o.err, ErrorCode::Ok);
    let s = o.stat.unwrap();
    assert_eq!(
        (
            s.czxid,
            s.mzxid,
            s.pzxid,
            s.version,
            s.cversion,
            s.data_length
        ),
        (2, 2, 2, 0, 0, 2)
    );
    let (_, root) = h.tree.get_children("/", &ANY, None).unwrap();
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 2, 2));

    assert_eq!(
        h.create(1, "/a/s-", b"", 2).path.as_deref(),
        Some("/a/s-0000000000")
    );
    assert_eq!(
        h.create(1, "/a/s-", b"", 2).path.as_deref(),
        Some("/a/s-0000000001")
    );
    assert_eq!(h.delete(1, "/a/s-0000000000", -1).err, ErrorCode::Ok);
    let (_, a) = h.tree.get_data("/a", &ANY, None).unwrap();
    assert_eq!((a.cversion, a.num_children, a.pzxid), (3, 1, 5));
    assert_eq!(
        h.create(1, "/a/s-", b"", 2).path.as_deref(),
        Some("/a/s-0000000002")
    );
    assert_eq!(
        h.create(1, "/a/", b"", 2).path.as_deref(),
        Some("/a/0000000003")
    );

    assert!(is_error(&h.create(1, "/a", b"", 0), ErrorCode::NodeExists));
    assert!(is_error(&h.create(1, "/nope/x", b"", 0), ErrorCode::NoNode));
    assert!(is_error(&h.create(1, "a", b"", 0), ErrorCode::BadArguments));
    assert!(is_error(
        &h.create(1, "/a/", b"", 0),
        ErrorCode::BadArguments
    ));
    assert!(is_error(
        &h.create(1, "/a/.", b"", 0),
        ErrorCode::BadArguments
    ));
    // The parent is looked up before the path is validated, as ZooKeeper.
    assert!(is_error(&h.create(1, "/a/./b", b"", 0), ErrorCode::NoNode));
    assert!(is_error(&h.create(1, "/", b"", 0), ErrorCode::NodeExists));
    assert!(is_error(
        &h.create(1, "/x", b"", 9),
        ErrorCode::BadArguments
    ));
    // Every failure took a zxid, as ZooKeeper's error txns do.
    assert_eq!(h.tree.last_processed_zxid(), h.zxid);
    // Null data stays null.
    let o = h.req(
        1,
        Request::Create(CreateRequest {
            path: "/null".into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            flags: 0,
        }),
    );
    assert_eq!(o.err, ErrorCode::Ok);
    assert_eq!(h.tree.get_data("/null", &ANY, None).unwrap().0, None);
}

#[test]
fn ephemerals_belong_to_their_session() {
    let mut h = Harness::new();
    h.open_session(5, 10000);
    h.open_session(6, 10000);
    h.create(0, "/p", b"", 0);
    let o = h.create(5, "/p/e", b"", 1);
    assert_eq!(o.stat.unwrap().ephemeral_owner, 5);
    h.create(5, "/p/es-", b"", 3);
    assert!(is_error(
        &h.create(5, "/p/e/x", b"", 0),
        ErrorCode::NoChildrenForEphemerals
    ));
    assert_eq!(
        h.tree.get_ephemerals(5, "/"),
        vec!["/p/e", "/p/es-0000000001"]
    );
    assert_eq!(h.tree.get_ephemerals(5, "/p/es"), vec!["/p/es-0000000001"]);
    assert_eq!(h.tree.ephemerals_count(), 2);
    assert_eq!(h.tree.sessions(), vec![(5, 10000), (6, 10000)]);
    h.tree.get_data("/p/e", &ANY, Some(77)).unwrap();
    h.tree.get_children("/p", &ANY, Some(78)).unwrap();
    let o = h.close_session(5);
    assert_eq!(o.err, ErrorCode::Ok);
    assert!(
        o.events
            .iter()
            .any(|e| *e == (77, ev(EventType::NodeDeleted, "/p/e")))
    );
    assert!(
        o.events
            .iter()
            .any(|e| *e == (78, ev(EventType::NodeChildrenChanged, "/p")))
    );
    assert_eq!(h.tree.get_ephemerals(5, "/"), Vec::<String>::new());
    assert_eq!(h.tree.ephemerals_count(), 0);
    assert_eq!(h.tree.sessions(), vec![(6, 10000)]);
    assert_eq!(
        h.tree.get_children("/p", &ANY, None).unwrap().0,
        Vec::<String>::new()
    );
}

#[test]
fn close_session_lists_pending_ephemerals() {
    let mut h = Harness::new();
    h.open_session(5, 10000);
    h.create(5, "/e1", b"", 1);
    // Pipelined: create /e2 and delete /e1 are prepared, not applied, when
    // the close is prepared.
    let a = h.prep(5, &[], &Request::Create(create_req("/e2", b"", 1)));
    let b = h.prep(
        5,
        &[],
        &Request::Delete(DeleteRequest {
            path: "/e1".into(),
            version: -1,
        }),
    );
    let c = h.prep(5, &[], &Request::CloseSession);
    match &c.1 {
        zk_jute::TxnBody::CloseSession(t) => assert_eq!(t.paths2_delete, vec!["/e2"]),
        other => panic!("{other:?}"),
    }
    h.apply(a.0, a.1);
    h.apply(b.0, b.1);
    h.apply(c.0, c.1);
    assert!(h.tree.exists("/e2", &ANY, None).is_err());
    assert!(h.pending.is_empty());
}

#[test]
fn versions_and_not_empty() {
    let mut h = Harness::new();
    h.create(0, "/v", b"", 0);
    h.create(0, "/v/c", b"", 0);
    assert!(is_error(&h.set(0, "/v", b"1", 3), ErrorCode::BadVersion));
    let o = h.set(0, "/v", b"1", 0);
    assert_eq!(o.stat.unwrap().version, 1);
    assert_eq!(h.set(0, "/v", b"2", -1).stat.unwrap().version, 2);
    assert!(is_error(&h.delete(0, "/v", -1), ErrorCode::NotEmpty));
    assert!(is_error(&h.delete(0, "/v/c", 5), ErrorCode::BadVersion));
    assert!(is_error(
        &h.delete(0, "/zookeeper", -1),
        ErrorCode::BadArguments
    ));
    assert!(is_error(&h.delete(0, "/", -1), ErrorCode::BadArguments));
    assert!(is_error(&h.delete(0, "/none", -1), ErrorCode::NoNode));
    let setacl = |v| {
        Request::SetAcl(SetAclRequest {
            path: "/v".into(),
            acl: zk_tree::open_acl_unsafe(),
            version: v,
        })
    };
    assert!(is_error(&h.req(0, setacl(1)), ErrorCode::BadVersion));
    assert_eq!(h.req(0, setacl(0)).stat.unwrap().aversion, 1);
    let check = |v| {
        Request::Multi(vec![MultiOp::Check(CheckVersionRequest {
            path: "/v".into(),
            version: v,
        })])
    };
    assert_eq!(h.req(0, check(0)).err, ErrorCode::BadVersion);
    assert_eq!(h.req(0, check(2)).err, ErrorCode::Ok);
}

/// Regression: a check outside a multi became a CheckVersionTxn, which
/// followers refuse to decode (as Apache's do): one client request made
/// every follower drop the leader, again at each election the leader holding
/// the txn won. It is refused with no change to the tree.
#[test]
fn a_check_outside_a_multi_makes_no_check_txn() {
    let mut h = Harness::new();
    let r = h.req(
        0,
        Request::Check(CheckVersionRequest {
            path: "/".into(),
            version: -1,
        }),
    );
    assert!(is_error(&r, ErrorCode::Unimplemented));
}

#[test]
fn acl_checks_auth_digest_ip_and_super() {
    let mut h = Harness::new();
    let d = digest_id("u:p");
    let me = [id("ip", "10.0.0.1"), id("digest", &d)];
    let other = [id("ip", "10.0.0.2")];
    let req = Request::Create(CreateRequest {
        path: "/s".into(),
        data: Some(Bytes::from_static(b"secret")),
        acl: vec![
            acl(perms::READ | perms::CREATE, "auth", ""),
            acl(perms::ALL, "ip", "10.0.0.2/32"),
        ],
        flags: 0,
    });
    assert!(is_error(
        &h.req_as(0, &[id("ip", "10.0.0.1")], req.clone()),
        ErrorCode::InvalidAcl
    ));
    assert_eq!(h.req_as(0, &me, req).err, ErrorCode::Ok);
    let (a, _) = h.tree.get_acl("/s", &SUPER).unwrap();
    assert_eq!(a[0], acl(perms::READ | perms::CREATE, "digest", &d));
    let meauth = Auth {
        ids: &me,
        is_super: false,
    };
    let third = [id("ip", "10.0.0.3")];
    assert_eq!(
        h.tree
            .get_data(
                "/s",
                &Auth {
                    ids: &third,
                    is_super: false
                },
                None
            )
            .err(),
        Some(ErrorCode::NoAuth)
    );
    assert!(h.tree.get_data("/s", &meauth, None).is_ok());
    assert!(
        h.tree
            .get_data(
                "/s",
                &Auth {
                    ids: &other,
                    is_super: false
                },
                None
            )
            .is_ok()
    );
    // READ without ADMIN: digest hashes are masked.
    let (a, _) = h.tree.get_acl("/s", &meauth).unwrap();
    assert_eq!(a[0].id.id, "u:x");
    let set = Request::SetData(SetDataRequest {
        path: "/s".into(),
        data: None,
        version: -1,
    });
    assert!(is_error(&h.req_as(0, &me, set.clone()), ErrorCode::NoAuth));
    assert_eq!(h.req_as(0, &other, set.clone()).err, ErrorCode::Ok);
    assert_eq!(h.req_as(0, &[id("super", "")], set).err, ErrorCode::Ok);
    assert_eq!(
        h.req_as(0, &me, Request::Create(create_req("/s/c", b"", 0)))
            .err,
        ErrorCode::Ok
    );
    assert!(is_error(
        &h.req_as(0, &third, Request::Create(create_req("/s/d", b"", 0))),
        ErrorCode::NoAuth
    ));
    assert!(is_error(
        &h.req_as(
            0,
            &me,
            Request::Delete(DeleteRequest {
                path: "/s/c".into(),
                version: -1
            })
        ),
        ErrorCode::NoAuth
    ));
    // By default exists does not check READ (Debian's 3.8.0); 3.8.4+ does.
    assert!(
        h.tree
            .exists(
                "/s",
                &Auth {
                    ids: &third,
                    is_super: false
                },
                None
            )
            .is_ok()
    );
    let mut h2 = Harness::with(TreeConfig {
        exists_checks_read: true,
        ..TreeConfig::default()
    });
    h2.req_as(
        0,
        &me,
        Request::Create(CreateRequest {
            path: "/s".into(),
            data: None,
            acl: vec![acl(perms::ALL, "digest", &d)],
            flags: 0,
        }),
    );
    assert_eq!(
        h2.tree.exists(
            "/s",
            &Auth {
                ids: &third,
                is_super: false
            },
            Some(1)
        ),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(h2.tree.watch_count(), 0, "NOAUTH leaves no watch");
    assert!(h2.tree.exists("/zookeeper", &ANY, None).is_ok());
}

#[test]
fn multi_is_all_or_nothing_with_zookeepers_results() {
    let mut h = Harness::new();
    let bad = Request::Multi(vec![
        MultiOp::Create(create_req("/m", b"", 0)),
        MultiOp::Create(create_req("/m/c", b"", 0)),
        MultiOp::SetData(SetDataRequest {
            path: "/none".into(),
            data: None,
            version: -1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/m".into(),
            version: -1,
        }),
    ]);
    let o = h.req(0, bad);
    assert_eq!(o.err, ErrorCode::NoNode);
    let codes: Vec<i32> = o
        .multi_results()
        .iter()
        .map(|r| match r {
            MultiResult::Error(e) => e.err,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, vec![0, 0, -101, -2]);
    assert!(h.tree.exists("/m", &ANY, None).is_err());
    assert!(h.pending.is_empty());

    let good = Request::Multi(vec![
        MultiOp::Create(create_req("/m", b"", 0)),
        MultiOp::Create2(create_req("/m/c", b"", 0)),
        MultiOp::SetData(SetDataRequest {
            path: "/m".into(),
            data: Some(Bytes::from_static(b"d")),
            version: 0,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/m/c".into(),
            version: 0,
        }),
    ]);
    let o = h.req(0, good);
    assert_eq!(o.err, ErrorCode::Ok);
    let r = o.multi_results();
    assert_eq!(
        r[0],
        MultiResult::Create(zk_jute::CreateResponse { path: "/m".into() })
    );
    assert!(matches!(&r[1], MultiResult::Create2(c) if c.path == "/m/c" && c.stat.czxid == h.zxid));
    assert!(matches!(&r[2], MultiResult::SetData(s) if s.stat.version == 1));
    assert_eq!(r[3], MultiResult::Check);
    assert_eq!(r[4], MultiResult::Delete);
    let (_, m) = h.tree.get_data("/m", &ANY, None).unwrap();
    assert_eq!(
        (m.num_children, m.cversion, m.pzxid, m.mzxid),
        (0, 2, h.zxid, h.zxid)
    );
}

#[test]
fn prep_sees_pending_changes_and_rolls_back_failed_multis() {
    let mut h = Harness::new();
    let a = h.prep(0, &[], &Request::Create(create_req("/p1", b"", 0)));
    let b = h.prep(0, &[], &Request::Create(create_req("/p1/c", b"", 2)));
    let c = h.prep(0, &[], &Request::Create(create_req("/p1/c", b"", 2)));
    let bad = h.prep(
        0,
        &[],
        &Request::Multi(vec![
            MultiOp::Create(create_req("/q", b"", 0)),
            MultiOp::Delete(DeleteRequest {
                path: "/none".into(),
                version: -1,
            }),
        ]),
    );
    let d = h.prep(0, &[], &Request::Create(create_req("/q/c", b"", 0)));
    assert!(matches!(d.1, zk_jute::TxnBody::Error(e) if e.err == ErrorCode::NoNode.code()));
    for (hd, bd) in [a, b, c, bad, d] {
        h.apply(hd, bd);
    }
    let (mut kids, _) = h.tree.get_children("/p1", &ANY, None).unwrap();
    kids.sort();
    assert_eq!(kids, vec!["c0000000000", "c0000000001"]);
    assert!(h.pending.is_empty());
}

#[test]
fn one_shot_watches_fire_once_in_order() {
    let mut h = Harness::new();
    h.create(0, "/w", b"", 0);
    h.tree.get_data("/w", &ANY, Some(1)).unwrap();
    h.tree.get_data("/w", &ANY, Some(2)).unwrap();
    let o = h.set(0, "/w", b"1", -1);
    assert_eq!(
        o.events,
        vec![
            (1, ev(EventType::NodeDataChanged, "/w")),
            (2, ev(EventType::NodeDataChanged, "/w"))
        ]
    );
    assert!(h.set(0, "/w", b"2", -1).events.is_empty());

    assert_eq!(h.tree.exists("/n", &ANY, Some(1)), Err(ErrorCode::NoNode));
    h.tree.get_children("/", &ANY, Some(1)).unwrap();
    let o = h.create(0, "/n", b"", 0);
    assert_eq!(
        o.events,
        vec![
            (1, ev(EventType::NodeCreated, "/n")),
            (1, ev(EventType::NodeChildrenChanged, "/"))
        ]
    );

    h.tree.get_data("/n", &ANY, Some(1)).unwrap();
    h.tree.get_children("/n", &ANY, Some(1)).unwrap();
    h.tree.get_children("/n", &ANY, Some(2)).unwrap();
    h.tree.get_children("/", &ANY, Some(3)).unwrap();
    let o = h.delete(0, "/n", -1);
    assert_eq!(
        o.events,
        vec![
            (1, ev(EventType::NodeDeleted, "/n")),
            (2, ev(EventType::NodeDeleted, "/n")),
            (3, ev(EventType::NodeChildrenChanged, "/"))
        ]
    );
    assert_eq!(h.tree.watch_count(), 0);
    // A failed read leaves no watch; a NOAUTH exists leaves none either.
    assert!(h.tree.get_data("/gone", &ANY, Some(9)).is_err());
    assert_eq!(h.tree.watch_count(), 0);
}

#[test]
fn persistent_and_recursive_watches() {
    let mut h = Harness::new();
    h.tree.add_watch("/a", AddWatchMode::Persistent, 1);
    h.tree.add_watch("/a", AddWatchMode::PersistentRecursive, 2);
    assert_eq!(h.tree.watch_count(), 4);
    let o = h.create(0, "/a", b"", 0);
    assert_eq!(
        o.events,
        vec![
            (1, ev(EventType::NodeCreated, "/a")),
            (2, ev(EventType::NodeCreated, "/a"))
        ]
    );
    let o = h.create(0, "/a/b", b"", 0);
    assert_eq!(
        o.events,
        vec![
            (2, ev(EventType::NodeCreated, "/a/b")),
            (1, ev(EventType::NodeChildrenChanged, "/a"))
        ]
    );
    let o = h.set(0, "/a/b", b"x", -1);
    assert_eq!(o.events, vec![(2, ev(EventType::NodeDataChanged, "/a/b"))]);
    let o = h.create(0, "/a/b/c", b"", 0);
    assert_eq!(o.events, vec![(2, ev(EventType::NodeCreated, "/a/b/c"))]);
    let o = h.set(0, "/a", b"x", -1);
    assert_eq!(
        o.events,
        vec![
            (1, ev(EventType::NodeDataChanged, "/a")),
            (2, ev(EventType::NodeDataChanged, "/a"))
        ]
    );
    let o = h.delete(0, "/a/b/c", -1);
    assert_eq!(o.events, vec![(2, ev(EventType::NodeDeleted, "/a/b/c"))]);
    assert!(h.create(0, "/ab", b"", 0).events.is_empty());
    assert_eq!(h.tree.watch_count(), 4, "persistent watches stay");
    // Removing the data half of a persistent watch leaves the child half.
    assert_eq!(h.tree.remove_watches("/a", WatcherType::Data, 1), Ok(()));
    assert_eq!(h.tree.check_watches("/a", WatcherType::Children, 1), Ok(()));
    assert_eq!(
        h.tree.check_watches("/a", WatcherType::Data, 1),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        h.tree.remove_watches("/a", WatcherType::Persistent, 2),
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(h.tree.remove_watches("/a", WatcherType::Any, 2), Ok(()));
    assert_eq!(
        h.tree.remove_watches("/a", WatcherType::Any, 2),
        Err(ErrorCode::NoWatcher)
    );
    h.tree.remove_watcher(1);
    assert_eq!(h.tree.watch_count(), 0);
}

#[test]
fn set_watches_after_reconnect() {
    let mut h = Harness::new();
    h.create(0, "/d", b"", 0); // zxid 1
    h.create(0, "/c", b"", 0); // zxid 2
    h.set(0, "/d", b"x", -1); // zxid 3
    h.create(0, "/c/x", b"", 0); // zxid 4
    let w = SetWatches2 {
        relative_zxid: 2,
        data_watches: vec!["/d".into(), "/c".into(), "/gone".into()],
        exist_watches: vec!["/c".into(), "/absent".into()],
        child_watches: vec!["/c".into(), "/d".into()],
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec![],
    };
    let evs = h.tree.set_watches(&w, 7);
    assert_eq!(
        evs,
        vec![
            ev(EventType::NodeDataChanged, "/d"),
            ev(EventType::NodeDeleted, "/gone"),
            ev(EventType::NodeCreated, "/c"),
            ev(EventType::NodeChildrenChanged, "/c"),
        ]
    );
    assert_eq!(h.tree.check_watches("/c", WatcherType::Data, 7), Ok(()));
    assert_eq!(
        h.tree.check_watches("/absent", WatcherType::Data, 7),
        Ok(())
    );
    assert_eq!(h.tree.check_watches("/d", WatcherType::Children, 7), Ok(()));
    assert_eq!(h.tree.check_watches("/p", WatcherType::Any, 7), Ok(()));
    let by_w = h.tree.watches_by_watcher(zk_tree::WatchKind::Data);
    assert_eq!(
        by_w,
        vec![(
            7,
            vec!["/absent".to_string(), "/c".to_string(), "/p".to_string()]
        )]
    );
    let s = h.tree.watch_summary(zk_tree::WatchKind::Data);
    assert_eq!((s.watchers, s.paths, s.total), (1, 3, 3));
}

#[test]
fn containers_and_ttl_nodes() {
    let mut h = Harness::new();
    let o = h.req(0, Request::CreateContainer(create_req("/c", b"", 4)));
    assert_eq!(
        o.stat.unwrap().ephemeral_owner,
        0,
        "clients see 0 for containers"
    );
    assert!(
        h.tree.expired_ttl_and_empty_containers(i64::MAX).is_empty(),
        "never used"
    );
    h.create(0, "/c/x", b"", 0);
    assert!(h.tree.expired_ttl_and_empty_containers(i64::MAX).is_empty());
    h.delete(0, "/c/x", -1);
    assert_eq!(h.tree.expired_ttl_and_empty_containers(0), vec!["/c"]);
    assert_eq!(
        h.req(0, Request::DeleteContainer("/c".into())).err,
        ErrorCode::Ok
    );
    assert!(h.tree.exists("/c", &ANY, None).is_err());
    h.open_session(3, 1000);
    h.create(3, "/eph", b"", 1);
    assert!(is_error(
        &h.req(0, Request::DeleteContainer("/eph".into())),
        ErrorCode::BadVersion
    ));

    let ttl = |ttl| {
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            flags: 5,
            ttl,
        })
    };
    assert!(is_error(&h.req(0, ttl(100)), ErrorCode::Unimplemented));

    let cfg = TreeConfig {
        extended_types: true,
        ..TreeConfig::default()
    };
    let mut h = Harness::with(cfg);
    assert!(is_error(&h.req(0, ttl(0)), ErrorCode::BadArguments));
    assert!(is_error(
        &h.req(0, ttl(zk_tree::MAX_TTL + 1)),
        ErrorCode::BadArguments
    ));
    let o = h.req(0, ttl(100));
    assert_eq!(o.err, ErrorCode::Ok);
    assert_eq!(o.stat.unwrap().ephemeral_owner, 0);
    let made = h.time;
    assert!(
        h.tree
            .expired_ttl_and_empty_containers(made + 50)
            .is_empty()
    );
    assert_eq!(
        h.tree.expired_ttl_and_empty_containers(made + 101),
        vec!["/t"]
    );
    assert_eq!(
        h.req(0, Request::DeleteContainer("/t".into())).err,
        ErrorCode::Ok
    );
}

/// A TTL node written by ZooKeeper 3.5.3 (owner `0x80..|ttl`, ZOOKEEPER-2901)
/// is a TTL node only with `emulate353TTLNodes` (and extended types), as
/// Apache's `EphemeralType.get`; otherwise it reads as an ephemeral of a
/// session that never exists (which a take-over then deletes, as Apache).
#[test]
fn ttl_nodes_of_zookeeper_353_need_the_emulation() {
    let owner = i64::MIN | 100; // a 3.5.3 TTL of 100 ms
    for emulate in [false, true] {
        let mut h = Harness::with(TreeConfig {
            extended_types: true,
            emulate_353_ttl: emulate,
            ..TreeConfig::default()
        });
        // As a 3.5.3 log holds it: an ephemeral-flagged create whose owner
        // (the header's session) is the TTL encoding.
        h.zxid += 1;
        h.time += 10;
        let hdr = zk_jute::TxnHeader {
            client_id: owner,
            cxid: 1,
            zxid: h.zxid,
            time: h.time,
            txn_type: zk_jute::OpCode::Create.code(),
        };
        let body = zk_jute::TxnBody::Create(zk_jute::CreateTxn {
            path: "/t353".into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            ephemeral: true,
            parent_c_version: 1,
        });
        assert_eq!(h.apply(hdr, body).err, ErrorCode::Ok);
        let made = h.time;
        let expired = h.tree.expired_ttl_and_empty_containers(made + 101);
        let held = h.tree.get_ephemerals(owner, "/");
        if emulate {
            assert_eq!(expired, vec!["/t353"]);
            assert!(held.is_empty(), "{held:?}");
            assert!(
                h.tree
                    .expired_ttl_and_empty_containers(made + 50)
                    .is_empty()
            );
        } else {
            assert!(expired.is_empty(), "{expired:?}");
            assert_eq!(held, vec!["/t353"]);
        }
    }
}

#[test]
fn stats_for_four_letter_words() {
    let mut h = Harness::new();
    h.create(0, "/abc", b"12345", 0);
    assert_eq!(h.tree.node_count(), 5);
    let base = "/zookeeper".len() + "/zookeeper/quota".len() + "/zookeeper/config".len() + 1;
    assert_eq!(h.tree.approximate_data_size(), (base + 4 + 5) as i64);
    assert_eq!(h.tree.get_all_children_number("/zookeeper", &ANY), Ok(2));
}

#[test]
fn reconfig_and_reads_are_not_writes() {
    let mut h = Harness::new();
    let r = Request::Reconfig(zk_jute::ReconfigRequest::default());
    assert!(is_error(&h.req(0, r), ErrorCode::ReconfigDisabled));
    let g = Request::GetData(zk_jute::GetDataRequest {
        path: "/".into(),
        watch: false,
    });
    assert!(is_error(&h.req(0, g), ErrorCode::BadArguments));
}

#[test]
fn events_carry_the_acl_that_filters_them() {
    let mut h = Harness::new();
    let d = digest_id("u:p");
    let me = [id("digest", &d)];
    let req = Request::Create(CreateRequest {
        path: "/sec".into(),
        data: None,
        acl: vec![acl(perms::ALL, "digest", &d)],
        flags: 0,
    });
    h.tree.exists("/sec", &ANY, Some(1)).unwrap_err();
    h.tree.get_children("/", &ANY, Some(1)).unwrap();
    let o = h.req_as(0, &me, req);
    assert_eq!(o.events.len(), 2);
    assert!(
        !o.deliverable(0, &ANY),
        "NodeCreated on /sec needs READ on /sec"
    );
    assert!(o.deliverable(
        0,
        &Auth {
            ids: &me,
            is_super: false
        }
    ));
    assert!(
        o.deliverable(1, &ANY),
        "NodeChildrenChanged on / checks /'s ACL"
    );
    assert_eq!(h.tree.get_ephemerals(0, " "), Vec::<String>::new());
}

#[test]
fn watches_at_scale() {
    let mut h = Harness::new();
    h.create(0, "/hot", b"", 0);
    // 100k watchers on one path.
    for w in 0..100_000u64 {
        h.tree.get_data("/hot", &ANY, Some(w)).unwrap();
    }
    assert_eq!(h.tree.watch_count(), 100_000);
    let o = h.set(0, "/hot", b"x", -1);
    assert_eq!(o.events.len(), 100_000);
    assert!(
        o.events.windows(2).all(|p| p[0].watcher < p[1].watcher),
        "each watcher once, in watcher order"
    );
    assert_eq!(h.tree.watch_count(), 0);
    // One watcher on each of 100k paths; a closed connection leaves nothing.
    for i in 0..100_000u32 {
        assert_eq!(
            h.tree.exists(&format!("/p{i}"), &ANY, Some(7)),
            Err(ErrorCode::NoNode)
        );
    }
    h.tree.add_watch("/", AddWatchMode::PersistentRecursive, 8);
    assert_eq!(
        h.tree.watch_summary(zk_tree::WatchKind::Data).paths,
        100_001
    );
    let o = h.create(0, "/p99999", b"", 0);
    assert_eq!(
        o.events,
        vec![
            (7, ev(EventType::NodeCreated, "/p99999")),
            (8, ev(EventType::NodeCreated, "/p99999"))
        ]
    );
    h.tree.remove_watcher(7);
    h.tree.remove_watcher(8);
    assert_eq!(h.tree.watch_count(), 0);
    assert!(h.tree.watches_by_path(zk_tree::WatchKind::Data).is_empty());
}

#[test]
fn the_digest_log_keeps_every_128th_zxid_as_apaches_hash() {
    let mut h = Harness::new();
    h.open_session(1, 30000);
    let mut at = Vec::new();
    for i in 0..300 {
        h.create(1, &format!("/n{i}"), b"d", 0);
        if h.zxid % zk_tree::DIGEST_LOG_INTERVAL == 0 {
            at.push((h.zxid, h.tree.digest()));
        }
    }
    assert_eq!(at.len(), 2, "zxids 128 and 256");
    assert_eq!(h.tree.digest_log(), at);
    // Bounded: the newest DIGEST_LOG_LIMIT entries.
    // Each create below takes the next multiple of the interval.
    h.zxid = 10 * zk_tree::DIGEST_LOG_INTERVAL;
    for i in 0..zk_tree::DIGEST_LOG_LIMIT + 5 {
        h.zxid += zk_tree::DIGEST_LOG_INTERVAL - 1;
        h.create(1, &format!("/m{i}"), b"d", 0);
    }
    let log = h.tree.digest_log();
    assert_eq!(log.len(), zk_tree::DIGEST_LOG_LIMIT);
    assert!(log.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(log.last().map(|e| e.0), Some(h.zxid));
}

/// A create txn applied over a node that exists (a replay over a fuzzy
/// snapshot that already holds it): NodeExists, the node keeps its data
/// and stat but takes the txn's ACL (Apache's DataTree.createNode), the
/// parent only moves its cversion / pzxid forward (processTxn's NODEEXISTS
/// adjustment), and no node is added. Pins the create that searches the
/// parent's child set once.
#[test]
fn a_create_txn_over_an_existing_node_takes_its_acl_and_leaves_the_parent() {
    let mut h = Harness::new();
    h.open_session(1, 30000);
    assert_eq!(h.create(1, "/p", b"", 0).err, ErrorCode::Ok);
    assert_eq!(h.create(1, "/p/c", b"data", 0).err, ErrorCode::Ok);
    let (_, parent_before) = h.tree.get_data("/p", &ANY, None).unwrap();
    let child_before = h.tree.get_data("/p/c", &ANY, None).unwrap();
    let count = h.tree.node_count();
    h.zxid += 1;
    h.time += 10;
    let hdr = zk_jute::TxnHeader {
        client_id: 1,
        cxid: 9,
        zxid: h.zxid,
        time: h.time,
        txn_type: zk_jute::OpCode::Create.code(),
    };
    let readers = vec![acl(perms::READ, "world", "anyone")];
    let body = zk_jute::TxnBody::Create(zk_jute::CreateTxn {
        path: "/p/c".into(),
        data: Some(Bytes::from_static(b"other")),
        acl: readers.clone(),
        ephemeral: false,
        parent_c_version: 7,
    });
    let out = h.apply(hdr, body);
    assert_eq!(out.err, ErrorCode::NodeExists, "{out:?}");
    let (_, parent_after) = h.tree.get_data("/p", &ANY, None).unwrap();
    assert_eq!(h.tree.get_data("/p/c", &ANY, None).unwrap(), child_before);
    assert_eq!(h.tree.get_acl("/p/c", &ANY).unwrap().0, readers);
    assert_eq!(h.tree.node_count(), count);
    assert!(parent_after.cversion > parent_before.cversion);
    assert_eq!(
        zk_jute::Stat {
            cversion: parent_before.cversion,
            pzxid: parent_before.pzxid,
            ..parent_after
        },
        parent_before,
        "only cversion and pzxid move"
    );
    assert_eq!(parent_after.pzxid, h.zxid);
}

/// Pins the prep overlay's shared ACL (a created node's record reuses the
/// previous one's ACL when equal): pipelined creates with different ACLs
/// each keep their own, in the overlay (checked by the next create under
/// them, before anything is applied) and in their txns.
#[test]
fn pipelined_creates_keep_their_own_acls() {
    let mut h = Harness::new();
    let with_acl = |path: &str, a: Vec<zk_jute::Acl>| {
        let mut r = create_req(path, b"", 0);
        r.acl = a;
        Request::Create(r)
    };
    let read_only = vec![acl(perms::READ, "world", "anyone")];
    let p1 = h.prep(1, &[], &with_acl("/open", zk_tree::open_acl_unsafe()));
    let p2 = h.prep(1, &[], &with_acl("/closed", read_only.clone()));
    let p3 = h.prep(1, &[], &with_acl("/open2", zk_tree::open_acl_unsafe()));
    let p4 = h.prep(1, &[], &with_acl("/closed2", read_only.clone()));
    let under_closed = h.prep(1, &[], &Request::Create(create_req("/closed/x", b"", 0)));
    let under_closed2 = h.prep(1, &[], &Request::Create(create_req("/closed2/x", b"", 0)));
    let under_open2 = h.prep(1, &[], &Request::Create(create_req("/open2/x", b"", 0)));
    for (p, want) in [
        (&under_closed, true),
        (&under_closed2, true),
        (&under_open2, false),
    ] {
        let refused =
            matches!(&p.1, zk_jute::TxnBody::Error(e) if e.err == ErrorCode::NoAuth.code());
        assert_eq!(refused, want, "{p:?}");
    }
    let acl_of = |b: &zk_jute::TxnBody| match b {
        zk_jute::TxnBody::Create(t) => t.acl.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(acl_of(&p1.1), zk_tree::open_acl_unsafe());
    assert_eq!(acl_of(&p2.1), read_only);
    assert_eq!(acl_of(&p3.1), zk_tree::open_acl_unsafe());
    assert_eq!(acl_of(&p4.1), read_only);
    for p in [p1, p2, p3, p4, under_closed, under_closed2, under_open2] {
        h.apply(p.0, p.1);
    }
    assert_eq!(h.tree.get_acl("/closed2", &ANY).unwrap().0, read_only);
    assert_eq!(
        h.tree.get_acl("/open2", &ANY).unwrap().0,
        zk_tree::open_acl_unsafe()
    );
    assert!(h.tree.exists("/open2/x", &ANY, None).is_ok());
    assert!(h.pending.is_empty());
}

#[test]
fn triggers_are_recorded_from_the_first_watch_on() {
    // Applies skip the triggers while no watch is set: the first watch of
    // each kind (a one-shot read, a persistent one through addWatch, a
    // child watch on a session's ephemeral) must still see the next apply.
    let mut h = Harness::new();
    h.open_session(7, 30_000);
    assert!(h.create(0, "/a", b"", 0).events.is_empty());
    assert!(h.create(7, "/a/e", b"", 1).events.is_empty());
    assert_eq!(h.tree.watch_count(), 0);

    h.tree.add_watch("/a", AddWatchMode::PersistentRecursive, 4);
    let o = h.set(0, "/a", b"x", -1);
    assert_eq!(o.events, vec![(4, ev(EventType::NodeDataChanged, "/a"))]);

    h.tree.get_children("/a/e", &ANY, Some(5)).unwrap();
    let o = h.close_session(7);
    assert_eq!(
        o.events,
        vec![
            (4, ev(EventType::NodeDeleted, "/a/e")),
            (5, ev(EventType::NodeDeleted, "/a/e")),
        ]
    );
    h.tree.remove_watcher(4);
    assert_eq!(h.tree.watch_count(), 0);
    assert!(h.set(0, "/a", b"y", -1).events.is_empty());
}

/// Regression: prep took a new node's owner from the create's flags where the
/// apply takes it from the txn type, so a createContainer with the ephemeral
/// flag or a create with the container flag was proposed with a digest that
/// its own apply contradicted (every server counted a digest mismatch; found
/// by the hostile-learner test of zk-server), and a createTTL of a non-TTL
/// mode made a CreateTTLTxn of no valid TTL (ZooKeeper 3.8.0 stops on it).
#[test]
fn a_creates_flags_never_contradict_its_type() {
    let mut h = Harness::new();
    h.open_session(5, 30_000);
    // Clients see a container's owner as 0 (the digest covers the stored one).
    let container = 0;
    for (req, owner) in [
        (
            Request::CreateContainer(create_req("/c", b"", 3)),
            container,
        ),
        (
            Request::CreateContainer(create_req("/e", b"", 1)),
            container,
        ),
        (Request::Create(create_req("/p", b"", 4)), 0),
        (Request::Create2(create_req("/q", b"", 4)), 0),
        (Request::Create2(create_req("/r", b"", 1)), 5),
    ] {
        let (hdr, body) = h.prep(5, &[], &req);
        let predicted = h.pending.txn_digest(&h.tree);
        let o = h.apply(hdr, body);
        assert_eq!(o.err, ErrorCode::Ok, "{req:?}");
        let stat = h.tree.exists(&o.path.unwrap(), &ANY, None).unwrap();
        assert_eq!(stat.ephemeral_owner, owner, "{req:?}");
        assert_eq!(h.tree.digest(), predicted, "{req:?}");
    }
    let ttl = |flags, ttl| {
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            flags,
            ttl,
        })
    };
    assert!(is_error(&h.req(5, ttl(0, -1)), ErrorCode::BadArguments));
    assert!(is_error(&h.req(5, ttl(1, -1)), ErrorCode::BadArguments));
    let mut h = Harness::with(TreeConfig {
        extended_types: true,
        ..TreeConfig::default()
    });
    assert!(is_error(&h.req(5, ttl(0, -1)), ErrorCode::BadArguments));
    assert_eq!(h.req(5, ttl(5, 1000)).err, ErrorCode::Ok);
}

/// Regression: a closeSession listed every pending record whose owner
/// equalled the session id, so a closeSession of session 0 (which a hostile
/// learner can forward) listed the persistent nodes being changed, the root
/// among them, and the apply deleted them. Found by the hostile-learner test
/// of zk-server.
#[test]
fn a_close_of_session_zero_deletes_no_persistent_node() {
    let mut h = Harness::new();
    assert_eq!(h.create(7, "/p", b"", 0).err, ErrorCode::Ok);
    // A create in flight (prepared, not applied) when the close is prepared.
    let (h1, b1) = h.prep(7, &[], &Request::Create(create_req("/p/q", b"", 0)));
    let (h2, b2) = h.prep(0, &[], &Request::CloseSession);
    match &b2 {
        zk_jute::TxnBody::CloseSession(c) => assert!(c.paths2_delete.is_empty(), "{c:?}"),
        other => panic!("{other:?}"),
    }
    let predicted = h.pending.txn_digest(&h.tree);
    h.apply(h1, b1);
    h.apply(h2, b2);
    assert_eq!(h.tree.digest(), predicted);
    assert!(h.tree.exists("/p/q", &ANY, None).is_ok());
    assert!(h.tree.exists("/p", &ANY, None).is_ok());
}

/// Regression: the apply took "/" in "//a" for the root, so a leader's
/// create of "//a" made "/a" while the digest counted the path "//a" (the
/// running digest no longer that of the tree's nodes), and a delete of "//a"
/// removed "/a". Found by the hostile-txn test; no prep lets such a path
/// through.
#[test]
fn a_txn_path_with_an_empty_component_names_no_node() {
    let mut h = Harness::new();
    let create = |path: &str| {
        zk_jute::TxnBody::Create(zk_jute::CreateTxn {
            path: path.into(),
            data: None,
            acl: zk_tree::open_acl_unsafe(),
            ephemeral: false,
            parent_c_version: 1,
        })
    };
    let before = h.tree.digest();
    assert_eq!(h.apply_txn(1, create("//a")).err, ErrorCode::NoNode);
    assert!(h.tree.exists("/a", &ANY, None).is_err());
    assert_eq!(h.tree.digest(), before);
    assert_eq!(h.create(0, "/a", b"", 0).err, ErrorCode::Ok);
    let body = zk_jute::TxnBody::Delete(zk_jute::DeleteTxn { path: "//a".into() });
    assert_eq!(h.apply_txn(1, body).err, ErrorCode::NoNode);
    assert!(h.tree.exists("/a", &ANY, None).is_ok());
}

#[test]
fn warming_paths_reads_their_nodes_and_changes_nothing() {
    let mut h = Harness::new();
    // Child sets of each kind: inline (2), hash table (50), big (5000).
    for (parent, n) in [("/small", 2), ("/mid", 50), ("/big", 5000)] {
        assert_eq!(h.create(0, parent, b"", 0).err, ErrorCode::Ok);
        for i in 0..n {
            let path = format!("{parent}/k{i}");
            assert_eq!(h.create(0, &path, b"v", 0).err, ErrorCode::Ok);
        }
    }
    let before = dump(&h.tree);
    let digest = h.tree.digest();
    // Nodes in the two hashed sets are read; an inline set's are compared
    // by name at the look-up itself; the rest name no node.
    let paths = [
        "/big/k17",
        "/big/k4999",
        "/mid/k3",
        "/small/k1",
        "/big/absent",
        "/absent/k1",
        "",
        "/",
        "no-slash",
        "/big/k17/below",
        "//big",
    ];
    assert_eq!(h.tree.warm(paths), 3);
    assert_eq!(h.tree.warm(std::iter::empty()), 0);
    assert_eq!(h.tree.warm(["/mid/k3", "/big/k1", "/mid/k4"]), 3);
    assert_eq!(dump(&h.tree), before);
    assert_eq!(h.tree.digest(), digest);
}
