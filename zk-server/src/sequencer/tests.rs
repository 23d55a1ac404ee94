//! The sequencer alone: no sockets, zk-txnlog's in-memory disk for the log,
//! a temp dir for snapshots. Each test feeds events in (the messages a loop
//! or the log's sync thread would send), lets the sequencer run its turns
//! until nothing is in flight, and checks the commands it sent the loops
//! (replies, events, closes) and the state it left.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::Receiver;
use zk_jute::{
    ConnectRequest, CreateRequest, ErrorCode, GetDataRequest, Request, SetDataRequest, Zxid, xid,
};
use zk_tree::{Tree, TreeConfig};
use zk_txnlog::{Backend, Log, MemDisk, Options, SnapshotStore};

use super::Sequencer;
use crate::config::Config;
use crate::control::{Control, Mode};
use crate::inbox::Inbox;
use crate::msg::{CoreMsg, Ctx, LoopHandle, LoopMsg, Reject};
use crate::sessions::SessionTracker;
use crate::shared::Shared;
use crate::storage::{Recovered, Storage};

/// Connection ids on loop 0 (`seq << 8 | 0`).
const CONN_A: u64 = 1 << 8;
const CONN_B: u64 = 2 << 8;

struct Harness {
    seq: Sequencer,
    shared: Arc<Shared>,
    inbox: Inbox<CoreMsg>,
    /// What the sequencer sent loop 0.
    out: Receiver<LoopMsg>,
    disk: MemDisk,
    _poll: mio::Poll,
    _dir: tempfile::TempDir,
}

/// A reply frame's header: (xid, zxid, err).
fn header(frame: &Bytes) -> (i32, i64, i32) {
    let b = &frame[4..20];
    (
        i32::from_be_bytes(b[0..4].try_into().unwrap()),
        i64::from_be_bytes(b[4..12].try_into().unwrap()),
        i32::from_be_bytes(b[12..16].try_into().unwrap()),
    )
}

fn ctx(conn: u64, session_id: i64, xid: i32) -> Ctx {
    Ctx {
        conn,
        session_id,
        xid,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    }
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl: zk_tree::open_acl_unsafe(),
        flags: 0,
    })
}

fn create_ephemeral(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: None,
        acl: zk_tree::open_acl_unsafe(),
        flags: 1,
    })
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

impl Harness {
    fn new(tune: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::standalone(dir.path().to_path_buf(), 0);
        config.tick_time = 10;
        tune(&mut config);
        let disk = MemDisk::new();
        let log = Log::open(
            dir.path().join("log"),
            Options::default().backend(Backend::Memory(disk.clone())),
        )
        .unwrap();
        let snaps = SnapshotStore::open(dir.path().join("snap")).unwrap();
        let tracker = SessionTracker::new(
            1,
            [7; 16],
            u64::from(config.tick_time),
            0,
            crate::stats::wall_ms() as u64,
        );
        let inbox = Inbox::new();
        let shared = Arc::new(Shared::new(
            config,
            Control::new(Mode::Standalone, 0),
            tracker,
            Arc::new(Tree::new(TreeConfig::default())),
            inbox.clone(),
            Instant::now(),
        ));
        // One loop's mailbox: a channel, and a waker on a poll nothing else uses.
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, out) = crossbeam_channel::unbounded();
        shared.set_loops(vec![LoopHandle::new(tx, waker)]);
        shared.control.set_serving(true);
        let recovered = Recovered {
            last_zxid: Zxid::ZERO,
            sessions: Vec::new(),
            summary: String::new(),
            snapshot_bytes: 0,
            replayed_bytes: 0,
            replayed_txns: 0,
            snapshot_load_ms: 0,
            replay_ms: 0,
            db_init_ms: 0,
        };
        let storage = Storage {
            log: Arc::new(log),
            snaps: Arc::new(snaps),
        };
        let seq = Sequencer::new(
            shared.clone(),
            storage,
            inbox.clone(),
            inbox.clone(),
            &recovered,
        );
        Harness {
            seq,
            shared,
            inbox,
            out,
            disk,
            _poll: poll,
            _dir: dir,
        }
    }

    /// Queues an event for the sequencer (as a loop would).
    fn send(&self, m: CoreMsg) {
        self.inbox.send(m);
    }

    /// Hands one event to the sequencer now, without looking at what the
    /// log made durable meanwhile (nothing commits in between).
    fn feed(&mut self, m: CoreMsg) {
        self.seq.on_msg(m);
    }

    /// Runs turns until nothing is in flight (every proposal committed) and
    /// the inbox is empty.
    fn settle(&mut self) {
        let mut batch = VecDeque::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.seq.turn(&mut batch, Duration::from_millis(5));
            if self.seq.proposals.is_empty() && self.inbox_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "the sequencer did not settle");
        }
    }

    fn inbox_empty(&self) -> bool {
        let mut probe = VecDeque::new();
        self.inbox.recv_into(&mut probe, Duration::ZERO);
        let empty = probe.is_empty();
        for m in probe {
            self.inbox.send(m);
        }
        empty
    }

    /// Everything sent to the loop since the last call, in order.
    fn out(&self) -> Vec<LoopMsg> {
        self.out.try_iter().collect()
    }

    /// Opens a session for `conn` (timeout `timeout` ms): its id.
    fn connect(&mut self, conn: u64, timeout: i32) -> i64 {
        self.send(CoreMsg::Connect {
            conn,
            peer: SocketAddr::from(([127, 0, 0, 1], 5000)),
            req: ConnectRequest {
                time_out: timeout,
                passwd: Bytes::from_static(&[0; 16]),
                ..ConnectRequest::default()
            },
            timeout,
        });
        self.settle();
        match self.out().as_slice() {
            [
                LoopMsg::Connected {
                    conn: c,
                    session_id,
                    close: false,
                    ..
                },
            ] if *c == conn => *session_id,
            other => panic!("expected Connected, got {other:?}"),
        }
    }
}

/// The replies (`Out`) among `msgs`: (conn, xid, zxid, err, close).
fn replies(msgs: &[LoopMsg]) -> Vec<(u64, i32, i64, i32, bool)> {
    msgs.iter()
        .filter_map(|m| match m {
            LoopMsg::Out {
                conn, frame, close, ..
            } => {
                let (x, z, e) = header(frame);
                Some((*conn, x, z, e, *close))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_session_is_a_txn_answered_once_committed() {
    let mut h = Harness::new(|_| {});
    let session = h.connect(CONN_A, 30_000);
    assert_ne!(session, 0);
    assert_eq!(h.shared.control.last_zxid(), 1, "createSession took zxid 1");
    assert_eq!(h.shared.tree.sessions(), vec![(session, 30_000)]);
    assert_eq!(
        Zxid::from(h.seq.shared.tree.last_processed_zxid()),
        Zxid::new(0, 1)
    );
}

#[test]
fn commit_applies_then_replies_with_the_txn_zxid() {
    let mut h = Harness::new(|_| {});
    let session = h.connect(CONN_A, 30_000);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, session, 1),
        req: create("/a"),
    });
    h.settle();
    let out = h.out();
    assert_eq!(replies(&out), vec![(CONN_A, 1, 2, 0, false)]);
    assert!(
        h.shared
            .tree
            .exists("/a", &zk_tree::Auth::default(), None)
            .is_ok()
    );
    assert_eq!(h.shared.control.last_zxid(), 2);
    // The log holds createSession and the create, keyed by zxid.
    assert_eq!(h.seq.storage.log.last_key(), Some(2));
}

#[test]
fn a_read_waits_behind_the_sessions_write_and_others_do_not() {
    let mut h = Harness::new(|_| {});
    let a = h.connect(CONN_A, 30_000);
    let b = h.connect(CONN_B, 30_000);
    // Queued together: the create is in flight when the reads arrive.
    h.feed(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create("/a"),
    });
    h.feed(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 2),
        req: get_data("/a", false),
    });
    h.feed(CoreMsg::Request {
        ctx: ctx(CONN_B, b, 1),
        req: get_data("/a", false),
    });
    h.settle();
    let r = replies(&h.out());
    // B has nothing in flight: answered at once, before the create commits
    // (NONODE at zxid 2, B's createSession). A's read comes after A's create
    // and sees it.
    assert_eq!(
        r,
        vec![
            (CONN_B, 1, 2, ErrorCode::NoNode.code(), false),
            (CONN_A, 1, 3, 0, false),
            (CONN_A, 2, 3, 0, false),
        ]
    );
}

#[test]
fn a_rejected_request_keeps_its_place_and_a_bad_txn_takes_a_zxid() {
    let mut h = Harness::new(|_| {});
    let a = h.connect(CONN_A, 30_000);
    h.feed(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create("/a"),
    });
    h.feed(CoreMsg::Rejected {
        ctx: ctx(CONN_A, a, 2),
        reject: Reject::Marshalling,
    });
    h.feed(CoreMsg::Rejected {
        ctx: ctx(CONN_A, a, 3),
        reject: Reject::MarshallingTxn,
    });
    h.feed(CoreMsg::Rejected {
        ctx: ctx(CONN_A, a, 4),
        reject: Reject::Unimplemented,
    });
    h.settle();
    let m = ErrorCode::MarshallingError.code();
    assert_eq!(
        replies(&h.out()),
        vec![
            (CONN_A, 1, 2, 0, false),
            (CONN_A, 2, 2, m, false),
            (CONN_A, 3, 3, m, false),
            (CONN_A, 4, -1, ErrorCode::Unimplemented.code(), true),
        ]
    );
}

#[test]
fn a_watch_event_goes_out_before_the_reply_that_fires_it() {
    let mut h = Harness::new(|_| {});
    let a = h.connect(CONN_A, 30_000);
    let b = h.connect(CONN_B, 30_000);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create("/w"),
    });
    h.settle();
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_B, b, 1),
        req: get_data("/w", true),
    });
    h.settle();
    h.out();
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 2),
        req: Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: None,
            version: -1,
        }),
    });
    h.settle();
    let out = h.out();
    assert_eq!(out.len(), 2, "{out:?}");
    match &out[0] {
        LoopMsg::Event { conn, frame, acl } => {
            assert_eq!(*conn, CONN_B);
            assert_eq!(header(frame), (xid::NOTIFICATION, -1, 0));
            assert_eq!(
                acl[..],
                zk_tree::open_acl_unsafe()[..],
                "with its node's ACL"
            );
        }
        other => panic!("expected the event first, got {other:?}"),
    }
    assert_eq!(replies(&out[1..]), vec![(CONN_A, 2, 4, 0, false)]);
}

#[test]
fn an_expired_session_is_closed_by_a_txn_and_its_connection_told() {
    let mut h = Harness::new(|_| {});
    // 1 s: on a loaded machine (2 cores, other suites running) a 200 ms
    // session expired before its own Connected reply went out.
    let a = h.connect(CONN_A, 1000);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create_ephemeral("/e"),
    });
    h.settle();
    h.out();
    assert_eq!(h.shared.tree.ephemerals_count(), 1);
    std::thread::sleep(Duration::from_millis(1500));
    h.settle();
    let out = h.out();
    assert!(
        matches!(out.as_slice(), [LoopMsg::Close { conn }] if *conn == CONN_A),
        "{out:?}"
    );
    assert_eq!(h.shared.tree.ephemerals_count(), 0);
    assert!(h.shared.tree.sessions().is_empty());
    assert!(
        h.shared.sessions.lock().unwrap().get(a).is_none(),
        "the tracker forgot the session"
    );
    assert_eq!(h.shared.control.last_zxid(), 3, "closeSession took zxid 3");
}

#[test]
fn close_session_is_answered_and_closes_the_connection() {
    let mut h = Harness::new(|_| {});
    let a = h.connect(CONN_A, 30_000);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: Request::CloseSession,
    });
    h.settle();
    assert_eq!(replies(&h.out()), vec![(CONN_A, 1, 2, 0, true)]);
    assert!(h.shared.tree.sessions().is_empty());
}

#[test]
fn a_snapshot_starts_after_snap_count_txns() {
    // snapCount 2: the randomised point is exactly 2 txns.
    let mut h = Harness::new(|c| c.snap_count = 2);
    let a = h.connect(CONN_A, 30_000);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create("/s"),
    });
    h.settle();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.seq.snapshots.running() {
        assert!(Instant::now() < deadline, "the snapshot did not finish");
        std::thread::sleep(Duration::from_millis(5));
    }
    let snaps = h.seq.storage.snaps.list().unwrap();
    let keys: Vec<u64> = snaps.iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        vec![2],
        "one snapshot, keyed by the last zxid applied"
    );
}

#[test]
fn a_failed_log_write_stops_the_sequencer_acknowledging() {
    let mut h = Harness::new(|_| {});
    let a = h.connect(CONN_A, 30_000);
    h.out();
    h.disk.fail_sync_after(0);
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 1),
        req: create("/f"),
    });
    h.settle();
    assert!(h.seq.failed, "the log failure is fatal");
    assert!(!h.shared.control.serving());
    assert!(replies(&h.out()).is_empty(), "nothing is acknowledged");
    h.send(CoreMsg::Request {
        ctx: ctx(CONN_A, a, 2),
        req: get_data("/", false),
    });
    h.settle();
    let out = h.out();
    assert!(
        matches!(out.as_slice(), [LoopMsg::Close { conn }] if *conn == CONN_A),
        "{out:?}"
    );
    assert!(
        h.shared
            .tree
            .exists("/f", &zk_tree::Auth::default(), None)
            .is_err()
    );
}

/// A server of an ensemble with read-only mode on, LOOKING for 3 s (past
/// the grace): its standalone role is dropped as an election's start would.
fn looking_read_only(local_sessions: bool) -> Harness {
    let mut h = Harness::new(|c| {
        c.read_only_mode = true;
        c.local_sessions_enabled = local_sessions;
    });
    h.seq.role = None;
    h.seq.ensemble = true;
    h.shared.control.set_serving(false);
    h.shared.control.set_mode(Mode::Follower);
    h.seq.read_only.looking_for(Duration::from_secs(3));
    h
}

/// A handshake for a new session; `read_only` is its flag.
fn ro_connect(conn: u64, read_only: Option<bool>) -> CoreMsg {
    CoreMsg::Connect {
        conn,
        peer: SocketAddr::from(([127, 0, 0, 1], 5000)),
        req: ConnectRequest {
            time_out: 30,
            passwd: Bytes::from_static(&[0; 16]),
            read_only,
            ..ConnectRequest::default()
        },
        timeout: 30,
    }
}

#[test]
fn read_only_mode_gives_local_sessions_reads_and_notreadonly() {
    let mut h = looking_read_only(true);
    h.settle();
    assert_eq!(h.shared.control.mode(), Mode::ReadOnly);
    assert!(h.shared.control.serves_clients());
    // A client that did not say readOnly is closed; one that did gets a
    // local session, the handshake reply saying read-only.
    h.send(ro_connect(CONN_B, Some(false)));
    h.send(ro_connect(CONN_A, Some(true)));
    h.settle();
    let out = h.out();
    assert!(
        matches!(out[0], LoopMsg::Close { conn } if conn == CONN_B),
        "{out:?}"
    );
    let LoopMsg::Connected {
        session_id, frame, ..
    } = &out[1]
    else {
        panic!("{out:?}")
    };
    let resp = <zk_jute::ConnectResponse as zk_jute::Jute>::from_bytes(frame.slice(4..)).unwrap();
    assert!(resp.read_only && resp.session_id == *session_id);
    let session = *session_id;
    assert!(h.shared.sessions.lock().unwrap().is_local(session));
    // Writes and sync: NOTREADONLY in order, the session going on; reads
    // served; nothing logged.
    let sync = Request::Sync(zk_jute::SyncRequest { path: "/".into() });
    for (xid, req) in [(1, create("/a")), (2, sync), (3, get_data("/", false))] {
        h.send(CoreMsg::Request {
            ctx: ctx(CONN_A, session, xid),
            req,
        });
    }
    h.settle();
    let nro = ErrorCode::NotReadOnly.code();
    assert_eq!(
        replies(&h.out()),
        vec![
            (CONN_A, 1, 0, nro, false),
            (CONN_A, 2, 0, nro, false),
            (CONN_A, 3, 0, 0, false)
        ]
    );
    assert_eq!(h.seq.storage.log.last_key(), None, "nothing is logged");
    // An undecodable write is a write all the same.
    h.send(CoreMsg::Rejected {
        ctx: ctx(CONN_A, session, 4),
        reject: Reject::MarshallingTxn,
    });
    h.settle();
    assert_eq!(replies(&h.out()), vec![(CONN_A, 4, 0, nro, false)]);
}

#[test]
fn read_only_mode_refuses_new_sessions_without_local_sessions_and_global_ones() {
    let mut h = looking_read_only(false);
    let global = 0x0100_0000_0000_0042;
    h.shared.sessions.lock().unwrap().add(global, 30_000, 0);
    h.settle();
    assert_eq!(h.shared.control.mode(), Mode::ReadOnly);
    h.send(ro_connect(CONN_A, Some(true)));
    let mut resume = ro_connect(CONN_B, Some(true));
    if let CoreMsg::Connect { req, .. } = &mut resume {
        req.session_id = global;
    }
    h.send(resume);
    h.settle();
    let out = h.out();
    assert!(
        matches!(
            out.as_slice(),
            [LoopMsg::Close { conn: a }, LoopMsg::Close { conn: b }] if *a == CONN_A && *b == CONN_B
        ),
        "{out:?}"
    );
}

#[test]
fn a_role_start_ends_read_only_mode_and_its_sessions_and_they_expire_alone() {
    let mut h = looking_read_only(true);
    let global = 0x0100_0000_0000_0042;
    h.shared.sessions.lock().unwrap().add(global, 10, 0);
    h.settle();
    h.send(ro_connect(CONN_A, Some(true)));
    h.send(ro_connect(CONN_B, Some(true)));
    h.settle();
    let sessions: Vec<i64> = h
        .out()
        .iter()
        .filter_map(|m| match m {
            LoopMsg::Connected { session_id, .. } => Some(*session_id),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 2);
    // B's session expires after its 30 ms (A keeps touching its own); the
    // global session, due as well, is left to a leader.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.shared.sessions.lock().unwrap().get(sessions[1]).is_some() {
        h.shared
            .sessions
            .lock()
            .unwrap()
            .touch(sessions[0], h.shared.now_ms());
        h.settle();
        assert!(Instant::now() < deadline, "B's session did not expire");
    }
    assert!(
        h.out()
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { conn } if *conn == CONN_B))
    );
    assert!(h.shared.sessions.lock().unwrap().is_live(global));
    // The election decided: read-only mode ends, A's session is gone and
    // its connection closed, the mode is the last role's again.
    h.seq.role_starts();
    assert!(!h.shared.control.serving());
    assert_eq!(h.shared.control.mode(), Mode::Follower);
    assert_eq!(h.shared.sessions.lock().unwrap().local_count(), 0);
    assert!(
        h.out()
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { conn } if *conn == CONN_A))
    );
}
