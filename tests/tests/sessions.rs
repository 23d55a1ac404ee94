//! Sessions: expiry removes ephemerals and fires NodeDeleted / child watches
//! on another session, an expired session cannot be resumed, a session is
//! resumed with its id and password after a server kill -9 and restart (its
//! ephemeral survives), a wrong password is refused, and resuming a session
//! on a second connection closes the first.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_integration::{
    ApacheZk, Client, ClientError, ConnectOptions, Flavor, OurZk, ServerOptions, ZkServer,
    start_server,
};
use zk_jute::{CreateMode, ErrorCode, EventType, ExistsRequest, Request};

/// tickTime 200 ms: sessions may time out after 400 ms (2 ticks) and at most
/// 4 s (20 ticks).
const SHORT_TICKS: &str = "tickTime=200\n";

fn short_session_server(flavor: Flavor) -> ZkServer {
    start_server(flavor, ServerOptions::cfg(SHORT_TICKS))
}

fn expiry(server: &ZkServer) {
    let addr = server.addr();
    let mut watcher = Client::connect_with(
        addr,
        &ConnectOptions {
            timeout_ms: 4000,
            ..ConnectOptions::default()
        },
    )
    .expect("connect watcher");
    assert_eq!(
        watcher.negotiated_timeout(),
        4000,
        "timeout is clamped to 20 ticks"
    );
    let mut doomed = Client::connect_with(
        addr,
        &ConnectOptions {
            timeout_ms: 100,
            ..ConnectOptions::default()
        },
    )
    .expect("connect doomed");
    assert_eq!(
        doomed.negotiated_timeout(),
        400,
        "timeout is clamped up to 2 ticks"
    );
    watcher
        .create("/parent", b"", CreateMode::Persistent.code())
        .unwrap()
        .unwrap();
    let eph = doomed
        .create("/parent/eph", b"x", CreateMode::Ephemeral.code())
        .unwrap()
        .expect("create ephemeral");
    let stat = watcher
        .exists(&eph, true)
        .unwrap()
        .expect("ephemeral visible");
    assert_eq!(stat.ephemeral_owner, doomed.session_id());
    watcher.children("/parent", true).unwrap().unwrap();

    // the doomed session stops pinging; the watcher keeps its own alive
    let start = Instant::now();
    let mut events = Vec::new();
    while events.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "session did not expire within 15 s (events so far: {events:?})"
        );
        match watcher.next_event(Duration::from_millis(500)).unwrap() {
            Some(e) => events.push((e.event_type, e.path)),
            None => {
                watcher.ping().unwrap();
            }
        }
    }
    events.sort();
    assert_eq!(
        events,
        vec![
            (EventType::NodeDeleted.code(), "/parent/eph".to_owned()),
            (EventType::NodeChildrenChanged.code(), "/parent".to_owned()),
        ]
    );
    assert!(watcher.exists(&eph, false).unwrap().is_none());
    let (children, pstat) = watcher.children("/parent", false).unwrap().unwrap();
    assert!(children.is_empty());
    assert_eq!(pstat.cversion, 2, "create + delete of the ephemeral");

    // the expired session's connection is closed, or, if the request races
    // the close, answered SESSIONEXPIRED (both servers mark the session closing
    // before its closeSession txn, and refuse its requests from then on)
    let probe = Request::Exists(ExistsRequest {
        path: "/".into(),
        watch: false,
    });
    match doomed.call(&probe) {
        Err(ClientError::Closed | ClientError::Io(_)) => {}
        Ok(r) if r.err == ErrorCode::SessionExpired.code() => {}
        Ok(r) => panic!("an expired session must not be served, got err {}", r.err),
        Err(e) => panic!("unexpected error on expired session: {e}"),
    }
    // and cannot be resumed
    let resumed = Client::connect_with(addr, &doomed_options(&doomed));
    assert!(
        matches!(resumed, Err(ClientError::SessionExpired)),
        "resuming an expired session must get timeOut 0, got {resumed:?}"
    );
    watcher.close().unwrap().expect_ok("close");
}

fn doomed_options(c: &Client) -> ConnectOptions {
    ConnectOptions {
        timeout_ms: 400,
        ..c.resume_options()
    }
}

fn resume_after_restart(server: &mut ZkServer) {
    let mut c = Client::connect(server.addr()).expect("connect");
    c.create("/mine", b"eph", CreateMode::Ephemeral.code())
        .unwrap()
        .expect("create ephemeral");
    c.create("/kept", b"persistent", CreateMode::Persistent.code())
        .unwrap()
        .unwrap();
    let sid = c.session_id();
    let opts = c.resume_options();
    c.disconnect();

    server.kill9();
    server.restart();

    let mut c = Client::connect_with(server.addr(), &opts).expect("resume after restart");
    assert_eq!(c.session_id(), sid, "same session after restart");
    let (data, stat) = c
        .get_data("/mine", false)
        .unwrap()
        .expect("ephemeral survives");
    assert_eq!(&data[..], b"eph");
    assert_eq!(stat.ephemeral_owner, sid);
    assert_eq!(
        &c.get_data("/kept", false).unwrap().unwrap().0[..],
        b"persistent"
    );

    // a wrong password is refused
    let bad = ConnectOptions {
        session: Some((sid, Bytes::from_static(&[7; 16]))),
        ..opts.clone()
    };
    assert!(
        matches!(
            Client::connect_with(server.addr(), &bad),
            Err(ClientError::SessionExpired)
        ),
        "a wrong password must be refused with timeOut 0"
    );

    // resuming on a second connection moves the session: the first is closed
    let mut second =
        Client::connect_with(server.addr(), &c.resume_options()).expect("move session");
    assert_eq!(second.session_id(), sid);
    assert!(
        c.exists("/", false).is_err(),
        "the old connection of a moved session must be closed"
    );
    assert!(second.exists("/mine", false).unwrap().is_some());

    // closing the session removes its ephemeral
    second.close().unwrap().expect_ok("close");
    let mut other = Client::connect(server.addr()).unwrap();
    assert!(other.exists("/mine", false).unwrap().is_none());
    assert!(other.exists("/kept", false).unwrap().is_some());
    other.close().unwrap();
}

#[test]
fn expiry_apache() {
    expiry(&short_session_server(Flavor::Apache));
}

#[test]
fn expiry_ours() {
    expiry(&short_session_server(Flavor::Ours));
}

#[test]
fn resume_after_restart_apache() {
    resume_after_restart(&mut ApacheZk::start());
}

#[test]
fn resume_after_restart_ours() {
    resume_after_restart(&mut OurZk::start(""));
}
