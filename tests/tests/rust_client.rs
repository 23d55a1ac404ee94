//! A real Rust client from crates.io, used unchanged: the sync `zookeeper`
//! crate (0.8). What a Rust user does first: connect, create persistent,
//! ephemeral and sequential nodes, get data with its stat, set with a version
//! (and the BADVERSION error), children, exists, ACLs, a chroot connect
//! string, data / exist / child watches fired by the same and by a second
//! client, a persistent recursive watch (`addWatch`), delete, and closing a
//! session (its ephemerals gone, seen from a second session). The crate has
//! no multi op, so transactions are left to kazoo (tests/kazoo.rs).
//!
//! Every body runs on a watchdog thread: the crate waits for replies without
//! a deadline, so a server that never answers fails the test instead of
//! hanging it.

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use zk_integration::{ApacheZk, OurZk, ZkServer};
use zookeeper::{
    Acl, AddWatchMode, CreateMode, Permission, WatchedEvent, WatchedEventType, ZkError, ZooKeeper,
    ZooKeeperExt,
};

/// The session timeout the client asks for.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a test body may run before it counts as hung.
const BODY_DEADLINE: Duration = Duration::from_secs(60);
/// How long to wait for a watch event that must come.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `body` with the server's `host:port` on its own thread and fails if
/// it panics or takes longer than [`BODY_DEADLINE`].
fn with_deadline(server: &ZkServer, body: fn(&str)) {
    let host_port = server.host_port();
    let (done_tx, done_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        body(&host_port);
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(BODY_DEADLINE) {
        Ok(()) => handle.join().expect("test body"),
        Err(RecvTimeoutError::Disconnected) => {
            // the body panicked: re-raise its panic here
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!(
            "the zookeeper crate did not finish within {BODY_DEADLINE:?} against {}; \
             server output:\n{}",
            server.flavor(),
            server.output_tail(40)
        ),
    }
}

/// A new session (the crate connects in the background; requests wait for it).
fn connect(connect_string: &str) -> ZooKeeper {
    ZooKeeper::connect(connect_string, SESSION_TIMEOUT, |_: WatchedEvent| {})
        .unwrap_or_else(|e| panic!("connect {connect_string}: {e:?}"))
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe().clone()
}

/// A watch event as the test compares it: which watcher saw it, the event
/// type and the path.
type Seen = (&'static str, WatchedEventType, Option<String>);

/// A watcher that tags its events with `tag` and sends them to `tx`.
fn tagged(tx: &Sender<Seen>, tag: &'static str) -> impl Fn(WatchedEvent) + Send + 'static {
    let tx = tx.clone();
    move |e: WatchedEvent| {
        let _ = tx.send((tag, e.event_type, e.path));
    }
}

fn next_event(rx: &Receiver<Seen>, what: &str) -> Seen {
    rx.recv_timeout(EVENT_DEADLINE)
        .unwrap_or_else(|_| panic!("no watch event within {EVENT_DEADLINE:?}: {what}"))
}

fn seen(tag: &'static str, t: WatchedEventType, path: &str) -> Seen {
    (tag, t, Some(path.to_owned()))
}

/// Create (persistent, ephemeral, both sequential kinds), get with stat, set
/// with versions, children, exists, ACLs, errors, delete.
fn crud(host_port: &str) {
    let zk = connect(host_port);

    // persistent, read back with its stat
    assert_eq!(
        zk.create("/app", b"hello".to_vec(), open(), CreateMode::Persistent),
        Ok("/app".to_owned())
    );
    let (data, stat) = zk.get_data("/app", false).expect("get /app");
    assert_eq!(data, b"hello");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.aversion, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    assert!(!stat.is_ephemeral());
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.czxid, stat.pzxid);
    assert!(stat.czxid > 0, "czxid {}", stat.czxid);
    assert_eq!(stat.ctime, stat.mtime);
    assert!(stat.ctime > 1_600_000_000_000, "ctime {} is ms", stat.ctime);
    let (acl, acl_stat) = zk.get_acl("/app").expect("get_acl");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, "world", "anyone")]);
    assert_eq!(acl_stat.czxid, stat.czxid);

    // set with the right version, then a stale one, then any version
    let set1 = zk
        .set_data("/app", b"v1".to_vec(), Some(0))
        .expect("set v0");
    assert_eq!(set1.version, 1);
    assert_eq!(set1.data_length, 2);
    assert!(set1.mzxid > stat.mzxid);
    assert_eq!(set1.czxid, stat.czxid);
    assert!(set1.mtime >= stat.mtime);
    assert_eq!(
        zk.set_data("/app", b"stale".to_vec(), Some(0))
            .map(|s| s.version),
        Err(ZkError::BadVersion)
    );
    assert_eq!(zk.get_data("/app", false).expect("get").0, b"v1");
    let set2 = zk.set_data("/app", b"any".to_vec(), None).expect("set any");
    assert_eq!(set2.version, 2);
    let exists = zk.exists("/app", false).expect("exists").expect("present");
    assert_eq!(exists.version, 2);
    assert_eq!(exists.mzxid, set2.mzxid);
    assert_eq!(zk.exists("/nope", false).map(|s| s.is_some()), Ok(false));

    // ephemeral: owned by this session, may have no children
    assert_eq!(
        zk.create("/app/eph", b"e".to_vec(), open(), CreateMode::Ephemeral),
        Ok("/app/eph".to_owned())
    );
    let eph = zk.exists("/app/eph", false).expect("exists").expect("eph");
    assert!(eph.is_ephemeral());
    assert_eq!(
        zk.create("/app/eph/child", vec![], open(), CreateMode::Persistent),
        Err(ZkError::NoChildrenForEphemerals)
    );

    // sequential names take the parent's cversion, 10 digits
    assert_eq!(
        zk.create(
            "/app/seq-",
            vec![],
            open(),
            CreateMode::PersistentSequential
        ),
        Ok("/app/seq-0000000001".to_owned())
    );
    assert_eq!(
        zk.create(
            "/app/seq-",
            vec![],
            open(),
            CreateMode::PersistentSequential
        ),
        Ok("/app/seq-0000000002".to_owned())
    );
    assert_eq!(
        zk.create(
            "/app/eseq-",
            vec![],
            open(),
            CreateMode::EphemeralSequential
        ),
        Ok("/app/eseq-0000000003".to_owned())
    );
    let eseq = zk
        .exists("/app/eseq-0000000003", false)
        .expect("exists")
        .expect("eseq");
    assert_eq!(eseq.ephemeral_owner, eph.ephemeral_owner);

    let mut children = zk.get_children("/app", false).expect("children");
    children.sort();
    assert_eq!(
        children,
        ["eph", "eseq-0000000003", "seq-0000000001", "seq-0000000002"]
    );
    let parent = zk.exists("/app", false).expect("exists").expect("/app");
    assert_eq!(parent.num_children, 4);
    assert_eq!(parent.cversion, 4);
    assert_eq!(parent.version, 2, "children do not bump the data version");
    assert_eq!(zk.get_children("/app/eph", false), Ok(vec![]));

    // errors
    assert_eq!(
        zk.create("/app", vec![], open(), CreateMode::Persistent),
        Err(ZkError::NodeExists)
    );
    assert_eq!(
        zk.create("/missing/child", vec![], open(), CreateMode::Persistent),
        Err(ZkError::NoNode)
    );
    assert_eq!(
        zk.get_data("/missing", false).map(|(d, _)| d),
        Err(ZkError::NoNode)
    );
    assert_eq!(zk.get_children("/missing", false), Err(ZkError::NoNode));
    assert_eq!(
        zk.set_data("/missing", vec![], None).map(|s| s.version),
        Err(ZkError::NoNode)
    );
    assert_eq!(
        zk.create("", vec![], open(), CreateMode::Persistent),
        Err(ZkError::BadArguments),
        "the crate checks paths itself"
    );

    // delete: wrong version, not empty, then gone
    assert_eq!(
        zk.delete("/app/seq-0000000001", Some(5)),
        Err(ZkError::BadVersion)
    );
    assert_eq!(zk.delete("/app", None), Err(ZkError::NotEmpty));
    assert_eq!(zk.delete("/app/seq-0000000001", Some(0)), Ok(()));
    assert_eq!(zk.delete("/app/seq-0000000001", None), Err(ZkError::NoNode));
    assert_eq!(
        zk.exists("/app/seq-0000000001", false).map(|s| s.is_some()),
        Ok(false)
    );
    let after = zk.exists("/app", false).expect("exists").expect("/app");
    assert_eq!(after.num_children, 3);
    assert_eq!(after.cversion, 5, "a delete bumps the parent's cversion");

    // the crate's recursive helpers
    assert_eq!(zk.ensure_path("/deep/a/b"), Ok(()));
    assert_eq!(zk.delete_recursive("/deep"), Ok(()));
    assert_eq!(zk.exists("/deep", false).map(|s| s.is_some()), Ok(false));

    // a chroot connect string: paths are relative to /app on the server
    let rooted = connect(&format!("{host_port}/app"));
    assert_eq!(
        rooted.create("/inner", b"in".to_vec(), open(), CreateMode::Persistent),
        Ok("/inner".to_owned())
    );
    assert_eq!(zk.get_data("/app/inner", false).expect("get").0, b"in");
    let mut rooted_children = rooted.get_children("/", false).expect("children of /");
    rooted_children.sort();
    assert_eq!(
        rooted_children,
        ["eph", "eseq-0000000003", "inner", "seq-0000000002"]
    );
    assert_eq!(rooted.close(), Ok(()));

    assert_eq!(zk.close(), Ok(()));
}

/// Data, exist and child watches, fired by the same client and by a second
/// one; one-shot watches fire once; a persistent recursive watch keeps
/// firing.
fn watches(host_port: &str) {
    let a = connect(host_port);
    let b = connect(host_port);
    let (tx, rx) = mpsc::channel();

    a.create("/w", b"0".to_vec(), open(), CreateMode::Persistent)
        .expect("create /w");

    // a data watch fired by the same client's set
    let (data, _) = a
        .get_data_w("/w", tagged(&tx, "data1"))
        .expect("get_data_w");
    assert_eq!(data, b"0");
    a.set_data("/w", b"1".to_vec(), Some(0)).expect("set by a");
    assert_eq!(
        next_event(&rx, "data watch, set by the same client"),
        seen("data1", WatchedEventType::NodeDataChanged, "/w")
    );

    // a data watch fired by a second client's set; it fires once only: the
    // next set fires nothing, so the next event seen is the new watch's
    a.get_data_w("/w", tagged(&tx, "data2"))
        .expect("get_data_w");
    b.set_data("/w", b"2".to_vec(), Some(1)).expect("set by b");
    assert_eq!(
        next_event(&rx, "data watch, set by a second client"),
        seen("data2", WatchedEventType::NodeDataChanged, "/w")
    );
    b.set_data("/w", b"3".to_vec(), Some(2))
        .expect("set by b, unwatched");
    let (data, stat) = a
        .get_data_w("/w", tagged(&tx, "data3"))
        .expect("get_data_w");
    assert_eq!((data.as_slice(), stat.version), (&b"3"[..], 3));

    // exist watches: on a missing node (NodeCreated) and on a present one
    assert_eq!(
        a.exists_w("/w/kid", tagged(&tx, "exists-missing"))
            .map(|s| s.is_some()),
        Ok(false)
    );
    assert_eq!(a.get_children_w("/w", tagged(&tx, "children")), Ok(vec![]));
    b.create("/w/kid", b"k".to_vec(), open(), CreateMode::Ephemeral)
        .expect("create /w/kid by b");
    let mut got = vec![
        next_event(&rx, "exist watch on a missing node / child watch"),
        next_event(&rx, "exist watch on a missing node / child watch"),
    ];
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        [
            seen("children", WatchedEventType::NodeChildrenChanged, "/w"),
            seen("exists-missing", WatchedEventType::NodeCreated, "/w/kid"),
        ]
    );

    // the data3 watch is still armed: a delete of /w's child does not fire
    // it, a set of /w does
    assert_eq!(
        a.exists_w("/w/kid", tagged(&tx, "exists-present"))
            .map(|s| s.map(|s| s.is_ephemeral())),
        Ok(Some(true))
    );
    b.delete("/w/kid", None).expect("delete /w/kid by b");
    assert_eq!(
        next_event(&rx, "exist watch on a deleted node"),
        seen("exists-present", WatchedEventType::NodeDeleted, "/w/kid")
    );
    b.set_data("/w", b"4".to_vec(), Some(3)).expect("set by b");
    assert_eq!(
        next_event(&rx, "the still armed data watch"),
        seen("data3", WatchedEventType::NodeDataChanged, "/w")
    );

    // a data watch fired by the node's delete
    a.get_data_w("/w", tagged(&tx, "data4"))
        .expect("get_data_w");
    b.delete("/w", Some(4)).expect("delete /w by b");
    assert_eq!(
        next_event(&rx, "data watch on a deleted node"),
        seen("data4", WatchedEventType::NodeDeleted, "/w")
    );

    // a persistent recursive watch (addWatch, ZooKeeper 3.6+) keeps firing
    // for the node and everything under it
    a.add_watch(
        "/r",
        AddWatchMode::PersistentRecursive,
        tagged(&tx, "recursive"),
    )
    .expect("add_watch");
    b.create("/r", vec![], open(), CreateMode::Persistent)
        .expect("create /r");
    b.create("/r/x", vec![], open(), CreateMode::Persistent)
        .expect("create /r/x");
    b.set_data("/r/x", b"x".to_vec(), None).expect("set /r/x");
    b.delete("/r/x", None).expect("delete /r/x");
    let got: Vec<Seen> = (0..4)
        .map(|_| next_event(&rx, "persistent recursive watch"))
        .collect();
    assert_eq!(
        got,
        [
            seen("recursive", WatchedEventType::NodeCreated, "/r"),
            seen("recursive", WatchedEventType::NodeCreated, "/r/x"),
            seen("recursive", WatchedEventType::NodeDataChanged, "/r/x"),
            seen("recursive", WatchedEventType::NodeDeleted, "/r/x"),
        ]
    );

    assert_eq!(b.close(), Ok(()));
    assert_eq!(a.close(), Ok(()));
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "no other watch event"
    );
}

/// Closing a session removes its ephemerals (plain and sequential) at once
/// and fires the watches a second session left on them; its persistent
/// nodes stay.
fn session_close(host_port: &str) {
    let owner = connect(host_port);
    let observer = connect(host_port);
    let (tx, rx) = mpsc::channel();

    owner
        .create("/s", vec![], open(), CreateMode::Persistent)
        .expect("create /s");
    owner
        .create("/s/eph", b"e".to_vec(), open(), CreateMode::Ephemeral)
        .expect("create /s/eph");
    let seq = owner
        .create("/s/lock-", vec![], open(), CreateMode::EphemeralSequential)
        .expect("create /s/lock-");
    assert_eq!(seq, "/s/lock-0000000001");

    let eph = observer
        .exists_w("/s/eph", tagged(&tx, "eph"))
        .expect("exists_w")
        .expect("the ephemeral is visible to a second session");
    assert!(eph.is_ephemeral());
    let lock = observer
        .get_data_w(&seq, tagged(&tx, "lock"))
        .expect("get_data_w")
        .1;
    assert_eq!(lock.ephemeral_owner, eph.ephemeral_owner);
    let mut kids = observer
        .get_children_w("/s", tagged(&tx, "children"))
        .expect("get_children_w");
    kids.sort();
    assert_eq!(kids, ["eph", "lock-0000000001"]);

    assert_eq!(owner.close(), Ok(()));
    let mut got: Vec<Seen> = (0..3)
        .map(|_| next_event(&rx, "watches on the closed session's ephemerals"))
        .collect();
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        [
            seen("children", WatchedEventType::NodeChildrenChanged, "/s"),
            seen("eph", WatchedEventType::NodeDeleted, "/s/eph"),
            seen("lock", WatchedEventType::NodeDeleted, "/s/lock-0000000001"),
        ]
    );
    assert_eq!(
        observer.exists("/s/eph", false).map(|s| s.is_some()),
        Ok(false)
    );
    assert_eq!(observer.exists(&seq, false).map(|s| s.is_some()), Ok(false));
    assert_eq!(observer.get_children("/s", false), Ok(vec![]));

    // a third session, opened after the close, sees the same
    let later = connect(host_port);
    let s = later
        .exists("/s", false)
        .expect("exists")
        .expect("/s stays");
    assert_eq!((s.num_children, s.cversion), (0, 4));
    assert_eq!(later.close(), Ok(()));
    assert_eq!(observer.close(), Ok(()));
}

#[test]
fn rust_client_crud_apache() {
    with_deadline(&ApacheZk::start(), crud);
}

#[test]
fn rust_client_crud_ours() {
    with_deadline(&OurZk::start(""), crud);
}

#[test]
fn rust_client_watches_apache() {
    with_deadline(&ApacheZk::start(), watches);
}

#[test]
fn rust_client_watches_ours() {
    with_deadline(&OurZk::start(""), watches);
}

#[test]
fn rust_client_session_close_apache() {
    with_deadline(&ApacheZk::start(), session_close);
}

#[test]
fn rust_client_session_close_ours() {
    with_deadline(&OurZk::start(""), session_close);
}
