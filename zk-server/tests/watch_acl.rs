//! Watch events and ACLs: ZooKeeper 3.8 (Debian's 3.8.0 with the backported
//! fix, as 3.8.4+) delivers a watch event only to a connection whose ids have
//! READ on the node; the watch is consumed either way. Checked against the
//! Apache server installed here with kazoo: an exist watch set by an
//! unauthenticated session on an absent path gets no NodeCreated when another
//! session creates the node with a digest-only ACL, and no NodeDataChanged
//! for a data watch on such a node.

mod common;

use bytes::Bytes;
use common::Client;
use zk_jute::{
    Acl, AuthPacket, CreateRequest, EventType, ExistsRequest, Id, Request, SetAclRequest,
    SetDataRequest, perms,
};
use zk_server::{Config, Server};

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::standalone(dir.to_path_buf(), 0);
    c.tick_time = 100;
    c.min_session_timeout = 200;
    c.max_session_timeout = 60_000;
    c.pre_alloc_size_kb = 1024;
    c.client_port_address = Some("127.0.0.1".parse().unwrap());
    c
}

fn create(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl,
        flags: 0,
    })
}

fn exists(path: &str) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch: true,
    })
}

fn set(path: &str) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"y")),
        version: -1,
    })
}

fn alice_only() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "digest".into(),
            id: zk_tree::digest_id("alice:secret"),
        },
    }]
}

#[test]
fn watch_events_need_read_on_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let addr = server.local_addr();

    let mut a = Client::connect(addr);
    let (h, _) = a.call(Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"alice:secret"),
    }));
    assert_eq!(h.err, 0);
    let mut b = Client::connect(addr);

    // B: exist watches on absent paths (NONODE leaves an exist watch).
    for p in ["/secret", "/open", "/marker1"] {
        let (h, _) = b.call(exists(p));
        assert_eq!(h.err, zk_jute::ErrorCode::NoNode.code(), "{p}");
    }

    // A creates /secret readable by alice only, then /open (world), then a marker.
    for (p, acl) in [
        ("/secret", alice_only()),
        ("/open", zk_tree::open_acl_unsafe()),
        ("/marker1", zk_tree::open_acl_unsafe()),
    ] {
        let (h, _) = a.call(create(p, acl));
        assert_eq!(h.err, 0, "{p}");
    }
    // Events are sent in zxid order: no NodeCreated for /secret before /open.
    let ev = b.next_event();
    assert_eq!(ev.path, "/open");
    assert_eq!(ev.event_type, EventType::NodeCreated.code());
    let ev = b.next_event();
    assert_eq!(ev.path, "/marker1");

    // A data watch on the denied node (exists needs no READ in 3.8.0): the
    // change is not delivered either.
    let (h, _) = b.call(exists("/secret"));
    assert_eq!(h.err, 0);
    let (h, _) = b.call(exists("/marker2"));
    assert_eq!(h.err, zk_jute::ErrorCode::NoNode.code());
    let (h, _) = a.call(set("/secret"));
    assert_eq!(h.err, 0);
    // The watch was consumed by the dropped event: once the node is readable,
    // a further change still fires nothing.
    let (h, _) = a.call(Request::SetAcl(SetAclRequest {
        path: "/secret".into(),
        acl: zk_tree::open_acl_unsafe(),
        version: -1,
    }));
    assert_eq!(h.err, 0);
    let (h, _) = a.call(set("/secret"));
    assert_eq!(h.err, 0);
    let (h, _) = a.call(create("/marker2", zk_tree::open_acl_unsafe()));
    assert_eq!(h.err, 0);
    let ev = b.next_event();
    assert_eq!(ev.path, "/marker2", "{ev:?}");
    assert!(b.events().is_empty(), "{:?}", b.events());

    // The owner itself (READ through its digest id) does get its events.
    let (h, _) = a.call(exists("/secret2"));
    assert_eq!(h.err, zk_jute::ErrorCode::NoNode.code());
    let (h, _) = a.call(create("/secret2", alice_only()));
    assert_eq!(h.err, 0);
    assert_eq!(a.events().len(), 1, "{:?}", a.events());
    assert_eq!(a.events()[0].path, "/secret2");
}
