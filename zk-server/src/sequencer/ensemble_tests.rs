//! Several sequencers hosting Zab roles, wired without sockets: a router
//! moves each one's [`QuorumOut`] to the others' inboxes as [`QuorumIn`]
//! (what the zk-quorum threads will do over the quorum port) and feeds ticks.
//! Logs on zk-txnlog's `MemDisk` (a crash keeps only what was durable),
//! snapshots and epoch files in a temp dir per server.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use crossbeam_channel::Receiver;
use zk_jute::{ConnectRequest, CreateRequest, CreateTxn, Request, TxnBody, TxnHeader, Zxid};
use zk_tree::{Auth, TreeConfig};
use zk_txnlog::{Backend, Log, MemDisk, Options, SnapshotStore};
use zk_zab::{Conn, LeaderConfig, LearnerCommand, LearnerConfig, Packet};

use super::Sequencer;
use crate::config::Config;
use crate::control::{Control, Mode};
use crate::epoch_files::{ACCEPTED_EPOCH, CURRENT_EPOCH, read_epoch};
use crate::inbox::Inbox;
use crate::msg::{CoreMsg, Ctx, LoopHandle, LoopMsg, QuorumIn, QuorumOut};
use crate::sessions::SessionTracker;
use crate::shared::Shared;
use crate::storage::{Storage, load_tree};

mod hostile_sessions;

const VOTERS: u64 = 3;
/// A client connection id on loop 0.
const CLIENT: u64 = 1 << 8;
const SESSION_TIMEOUT: i32 = 60_000;

struct Node {
    seq: Option<Sequencer>,
    shared: Arc<Shared>,
    inbox: Inbox<CoreMsg>,
    loop_rx: Receiver<LoopMsg>,
    outbox: Receiver<Vec<QuorumOut>>,
    disk: MemDisk,
    /// What the sequencer sent its loop, in order.
    replies: Vec<LoopMsg>,
    /// EpochEstablished / RoleEnded, in order.
    events: Vec<QuorumOut>,
    _poll: mio::Poll,
}

/// Boots server `sid` from its disk, as `Server::start` would (recovery).
fn boot(sid: u64, dir: &Path, disk: MemDisk) -> Node {
    boot_with(sid, dir, disk, |_| {})
}

/// [`boot`] with `tune` applied to the server's configuration.
fn boot_with(sid: u64, dir: &Path, disk: MemDisk, tune: impl FnOnce(&mut Config)) -> Node {
    let mut config = Config::standalone(dir.to_path_buf(), 0);
    config.my_id = sid;
    config.tick_time = 10;
    tune(&mut config);
    let log = Log::open(
        dir.join("log"),
        Options::default().backend(Backend::Memory(disk.clone())),
    )
    .unwrap();
    let snaps = SnapshotStore::open(dir).unwrap();
    let (tree, recovered) = load_tree(&log, &snaps, TreeConfig::default(), dir).unwrap();
    let mut tracker = SessionTracker::new(sid as u8, [sid as u8; 16], 10, 0, 1 << 40);
    tracker.use_apache_passwords();
    for (s, t) in &recovered.sessions {
        tracker.add(*s, *t, 0);
    }
    let inbox = Inbox::new();
    let shared = Arc::new(Shared::new(
        config,
        Control::new(Mode::Standalone, recovered.last_zxid.as_i64()),
        tracker,
        Arc::new(tree),
        inbox.clone(),
        Instant::now(),
    ));
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, loop_rx) = crossbeam_channel::unbounded();
    shared.set_loops(vec![LoopHandle::new(tx, waker)]);
    let storage = Storage {
        log: Arc::new(log),
        snaps: Arc::new(snaps),
    };
    let mut seq = Sequencer::new(
        shared.clone(),
        storage,
        inbox.clone(),
        inbox.clone(),
        &recovered,
    );
    let (otx, outbox) = crossbeam_channel::unbounded();
    seq.set_outbox(crate::msg::Outbox::new(otx, None));
    Node {
        seq: Some(seq),
        shared,
        inbox,
        loop_rx,
        outbox,
        disk,
        replies: Vec::new(),
        events: Vec::new(),
        _poll: poll,
    }
}

fn reply_header(frame: &Bytes) -> (i32, i64, i32) {
    let b = &frame[4..20];
    (
        i32::from_be_bytes(b[0..4].try_into().unwrap()),
        i64::from_be_bytes(b[4..12].try_into().unwrap()),
        i32::from_be_bytes(b[12..16].try_into().unwrap()),
    )
}

fn create(path: &str) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl: zk_tree::open_acl_unsafe(),
        flags: 0,
    })
}

struct Cluster {
    dir: tempfile::TempDir,
    /// Index `sid - 1`.
    nodes: Vec<Node>,
    leader: u64,
    commit_log_count: usize,
    /// Whether the leader may DIFF from its on-disk log beyond the window.
    diff_from_log: bool,
    /// Live quorum connections: conn → learner sid, and back.
    conns: HashMap<Conn, u64>,
    conn_of: HashMap<u64, Conn>,
    next_conn: Conn,
    pumps: u64,
    /// Sync packets the leader sent: (learner sid, DIFF | TRUNC | SNAP, zxid).
    syncs: Vec<(u64, &'static str, Zxid)>,
    /// SNAPs whose body is still coming, by conn: (zxid, the pieces so far).
    snaps: HashMap<Conn, (Zxid, Vec<Bytes>)>,
    /// The op types of the REQUESTs learners sent.
    requests: Vec<i32>,
    /// The connection of this learner closes instead of carrying NEWLEADER.
    cut_before_newleader: Option<u64>,
}

impl Cluster {
    fn new(commit_log_count: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes = (1..=VOTERS)
            .map(|sid| {
                let d = dir.path().join(format!("s{sid}"));
                std::fs::create_dir_all(&d).unwrap();
                boot(sid, &d, MemDisk::new())
            })
            .collect();
        Cluster {
            dir,
            nodes,
            leader: 1,
            commit_log_count,
            diff_from_log: true,
            conns: HashMap::new(),
            conn_of: HashMap::new(),
            next_conn: 1,
            pumps: 0,
            syncs: Vec::new(),
            snaps: HashMap::new(),
            requests: Vec::new(),
            cut_before_newleader: None,
        }
    }

    fn node(&self, sid: u64) -> &Node {
        &self.nodes[(sid - 1) as usize]
    }

    fn node_mut(&mut self, sid: u64) -> &mut Node {
        &mut self.nodes[(sid - 1) as usize]
    }

    fn dir_of(&self, sid: u64) -> PathBuf {
        self.dir.path().join(format!("s{sid}"))
    }

    fn send(&self, sid: u64, m: CoreMsg) {
        if self.node(sid).seq.is_some() {
            self.node(sid).inbox.send(m);
        }
    }

    /// `leader` leads; every other running server follows it.
    fn start(&mut self, leader: u64, learners: &[u64]) {
        self.leader = leader;
        let cfg = LeaderConfig {
            sid: leader,
            voters: (1..=VOTERS).collect(),
            groups: None,
            init_limit: 20,
            sync_limit: 20,
            commit_log_count: self.commit_log_count,
            members: Bytes::new(),
            diff_from_log: self.diff_from_log,
            config_version: 0,
            version_config: false,
        };
        self.send(leader, CoreMsg::Quorum(QuorumIn::Lead(cfg)));
        for &sid in learners {
            self.follow(sid);
        }
    }

    /// `sid` follows the leader and connects to it.
    fn follow(&mut self, sid: u64) {
        let cfg = LearnerConfig {
            sid,
            observer: false,
            init_limit: 20,
            sync_limit: 20,
            config_version: 0,
        };
        self.send(
            sid,
            CoreMsg::Quorum(QuorumIn::Follow {
                cfg,
                leader: self.leader,
            }),
        );
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(conn, sid);
        self.conn_of.insert(sid, conn);
        self.send(
            self.leader,
            CoreMsg::Quorum(QuorumIn::LearnerConnected(conn)),
        );
        self.send(sid, CoreMsg::Quorum(QuorumIn::LeaderConnected));
    }

    /// One turn of every running server, then the packets routed; a tick
    /// every fifth pump.
    fn pump(&mut self) {
        let mut batch = VecDeque::new();
        for n in &mut self.nodes {
            if let Some(seq) = &mut n.seq {
                seq.turn(&mut batch, Duration::from_millis(1));
            }
        }
        for i in 0..self.nodes.len() {
            let from = i as u64 + 1;
            let out: Vec<QuorumOut> = self.nodes[i].outbox.try_iter().flatten().collect();
            for m in out {
                self.route(from, m);
            }
            let replies: Vec<LoopMsg> = self.nodes[i].loop_rx.try_iter().collect();
            self.nodes[i].replies.extend(replies);
        }
        self.pumps += 1;
        if self.pumps.is_multiple_of(5) {
            for sid in 1..=VOTERS {
                self.send(sid, CoreMsg::Quorum(QuorumIn::Tick));
            }
        }
    }

    fn route(&mut self, from: u64, m: QuorumOut) {
        match m {
            QuorumOut::ToLearner(conn, Packet::Snap { zxid }) => {
                // Its body follows in pieces.
                self.snaps.insert(conn, (zxid, Vec::new()));
            }
            QuorumOut::ToLearner(conn, Packet::NewLeader { .. })
                if self.cut_before_newleader.is_some()
                    && self.cut_before_newleader == self.conns.get(&conn).copied() =>
            {
                let sid = self.cut_before_newleader.take().expect("checked");
                self.close_learner(sid);
                self.send(sid, CoreMsg::Quorum(QuorumIn::LeaderClosed));
            }
            QuorumOut::ToLearner(conn, p) => {
                if let Some(&sid) = self.conns.get(&conn) {
                    if let Packet::Diff { zxid } | Packet::Trunc { zxid } = p {
                        self.syncs.push((sid, p.name(), zxid));
                    }
                    self.send(sid, CoreMsg::Quorum(QuorumIn::FromLeader(p)));
                }
            }
            QuorumOut::SnapMore { conn, piece, last } => {
                let Some((_, body)) = self.snaps.get_mut(&conn) else {
                    return;
                };
                body.push(piece);
                if !last {
                    return;
                }
                let (zxid, body) = self.snaps.remove(&conn).expect("got above");
                if let Some(&sid) = self.conns.get(&conn) {
                    self.syncs.push((sid, "SNAP", zxid));
                    let feed = crate::snap_feed::SnapFeed::whole(body);
                    self.send(sid, CoreMsg::Quorum(QuorumIn::Snap { zxid, feed }));
                }
            }
            QuorumOut::CloseLearner(conn, _) => {
                if let Some(sid) = self.conns.remove(&conn) {
                    self.conn_of.remove(&sid);
                    self.send(sid, CoreMsg::Quorum(QuorumIn::LeaderClosed));
                }
            }
            QuorumOut::ToLeader(p) => {
                if let Packet::Request { data, .. } = &p {
                    self.requests
                        .push(i32::from_be_bytes(data[12..16].try_into().unwrap()));
                }
                if let Some(&conn) = self.conn_of.get(&from) {
                    self.send(self.leader, CoreMsg::Quorum(QuorumIn::FromLearner(conn, p)));
                }
            }
            e @ (QuorumOut::EpochEstablished(_)
            | QuorumOut::RoleEnded { .. }
            | QuorumOut::ConfigVersion(_)
            | QuorumOut::Members { .. }
            | QuorumOut::LastSeen(_)) => {
                self.node_mut(from).events.push(e);
            }
        }
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:?}",
                self.nodes.iter().map(|n| &n.events).collect::<Vec<_>>()
            );
            self.pump();
        }
    }

    fn serving(&self, sid: u64) -> bool {
        let n = self.node(sid);
        n.seq.is_some() && n.shared.control.serving()
    }

    /// Every running server serves, at the same zxid and digest.
    fn converged(&self) -> bool {
        let live: Vec<&Node> = self.nodes.iter().filter(|n| n.seq.is_some()).collect();
        live.iter().all(|n| n.shared.control.serving())
            && live.windows(2).all(|w| {
                w[0].shared.tree.last_processed_zxid() == w[1].shared.tree.last_processed_zxid()
                    && w[0].shared.tree.digest() == w[1].shared.tree.digest()
            })
    }

    /// The roles server `sid` ended.
    fn roles_ended(&self, sid: u64) -> usize {
        self.node(sid)
            .events
            .iter()
            .filter(|e| matches!(e, QuorumOut::RoleEnded { .. }))
            .count()
    }

    fn zxid(&self, sid: u64) -> i64 {
        self.node(sid).shared.tree.last_processed_zxid()
    }

    fn has(&self, sid: u64, path: &str) -> bool {
        self.node(sid)
            .shared
            .tree
            .get_data(path, &Auth::new(&[]), None)
            .is_ok()
    }

    /// A client session through server `sid`: (session id, the handshake frame).
    fn connect(&mut self, sid: u64) -> (i64, Bytes) {
        self.connect_with(sid, SESSION_TIMEOUT)
    }

    fn connect_with(&mut self, sid: u64, timeout: i32) -> (i64, Bytes) {
        self.send(
            sid,
            CoreMsg::Connect {
                conn: CLIENT,
                peer: SocketAddr::from(([127, 0, 0, 1], 5000)),
                req: ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    time_out: timeout,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; 16]),
                    read_only: Some(false),
                },
                timeout,
            },
        );
        let mut found = None;
        self.run_until("the session's handshake", |c| {
            found = c.node(sid).replies.iter().find_map(|m| match m {
                LoopMsg::Connected {
                    session_id, frame, ..
                } => Some((*session_id, frame.clone())),
                _ => None,
            });
            found.is_some()
        });
        self.node_mut(sid).replies.clear();
        found.unwrap()
    }

    /// Client request `xid` of `session` to server `sid` (not waited for).
    fn request(&self, sid: u64, session: i64, xid: i32, req: Request) {
        self.request_as(sid, session, xid, Vec::new(), req);
    }

    /// [`Cluster::request`] from a connection holding the ids `auth`.
    fn request_as(&self, sid: u64, session: i64, xid: i32, auth: Vec<zk_jute::Id>, req: Request) {
        let ctx = Ctx {
            conn: CLIENT,
            session_id: session,
            xid,
            auth: Arc::new(auth),
            received: Instant::now(),
        };
        self.send(sid, CoreMsg::Request { ctx, req });
    }

    /// A write through server `sid`: the reply's (zxid, err).
    fn write(&mut self, sid: u64, session: i64, xid: i32, req: Request) -> (i64, i32) {
        self.request(sid, session, xid, req);
        let mut found = None;
        self.run_until("the write's reply", |c| {
            found = c.node(sid).replies.iter().find_map(|m| match m {
                LoopMsg::Out { frame, .. } if reply_header(frame).0 == xid => {
                    let (_, zxid, err) = reply_header(frame);
                    Some((zxid, err))
                }
                _ => None,
            });
            found.is_some()
        });
        self.node_mut(sid).replies.clear();
        found.unwrap()
    }

    /// Server `sid` loses power: only what was durable survives.
    fn crash(&mut self, sid: u64, seed: u64) {
        let image = self.node(sid).disk.crash(seed);
        let n = self.node_mut(sid);
        n.seq = None;
        n.disk = image;
        self.close_learner(sid);
        if sid == self.leader {
            // Its learners see their connection close.
            for (_, learner) in self.conns.drain() {
                self.conn_of.remove(&learner);
                let n = &self.nodes[(learner - 1) as usize];
                if n.seq.is_some() {
                    n.inbox.send(CoreMsg::Quorum(QuorumIn::LeaderClosed));
                }
            }
        }
    }

    /// Learner `sid`'s connection to the leader closes (as its quorum side
    /// closes it when its role ends).
    fn close_learner(&mut self, sid: u64) {
        if let Some(conn) = self.conn_of.remove(&sid) {
            self.conns.remove(&conn);
            self.send(self.leader, CoreMsg::Quorum(QuorumIn::LearnerClosed(conn)));
        }
    }

    /// Server `sid` boots from its disk (LOOKING: no role yet).
    fn reboot(&mut self, sid: u64) {
        let dir = self.dir_of(sid);
        let disk = self.node(sid).disk.clone();
        self.nodes[(sid - 1) as usize] = boot(sid, &dir, disk);
    }

    /// Server `sid` boots from its disk and follows the leader.
    fn restart_follower(&mut self, sid: u64) {
        self.reboot(sid);
        self.follow(sid);
    }

    fn epochs(&self, sid: u64) -> (Option<i64>, Option<i64>) {
        let dir = self.dir_of(sid);
        (
            read_epoch(&dir.join(ACCEPTED_EPOCH)).unwrap(),
            read_epoch(&dir.join(CURRENT_EPOCH)).unwrap(),
        )
    }
}

/// Three servers, 1 leading: established in epoch 1.
fn established(commit_log_count: usize) -> Cluster {
    establish(Cluster::new(commit_log_count))
}

/// Server 1 leads 2 and 3 until epoch 1 is established everywhere.
fn establish(mut c: Cluster) -> Cluster {
    c.start(1, &[2, 3]);
    c.run_until("epoch 1 established everywhere", Cluster::converged);
    c
}

#[test]
fn the_leader_establishes_epoch_1_and_every_server_serves() {
    let c = established(500);
    assert_eq!(c.node(1).shared.control.mode(), Mode::Leader);
    assert_eq!(c.node(2).shared.control.mode(), Mode::Follower);
    assert_eq!(c.node(3).shared.control.mode(), Mode::Follower);
    for sid in 1..=VOTERS {
        assert_eq!(c.epochs(sid), (Some(1), Some(1)), "server {sid}");
        assert_eq!(
            c.node(sid).events.first(),
            Some(&QuorumOut::EpochEstablished(1))
        );
    }
}

/// Regression: a write that reached a leader whose epoch was not
/// established yet (a client request in flight while the server turned from
/// follower to leader) was prepared, then refused by the Zab core, and its
/// changes stayed in the prep overlay: the first txns of the epoch carried
/// digests that included a create that never happened (the followers
/// reported digest mismatches; found by the fault tests after a leader's
/// fdatasync failure), and a prep in that window saw the phantom node.
#[test]
fn a_write_refused_before_the_epoch_is_established_leaves_no_trace() {
    let mut c = Cluster::new(500);
    c.start(1, &[]);
    let ctx = Ctx {
        conn: CLIENT,
        session_id: 0x77,
        xid: 1,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    c.send(
        1,
        CoreMsg::Request {
            ctx,
            req: create("/ghost"),
        },
    );
    c.run_until("the early write refused", |c| {
        c.node(1)
            .replies
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { .. }))
    });
    c.node_mut(1).replies.clear();
    c.follow(2);
    c.follow(3);
    c.run_until("epoch 1 established everywhere", Cluster::converged);
    let (session, _) = c.connect(2);
    let (_, err) = c.write(2, session, 1, create("/ghost"));
    assert_eq!(err, 0, "the refused create left a phantom /ghost");
    c.run_until("/ghost everywhere", |c| {
        (1..=VOTERS).all(|s| c.has(s, "/ghost"))
    });
    for sid in 1..=VOTERS {
        let mismatches = c
            .node(sid)
            .shared
            .stats
            .digest_mismatches
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(mismatches, 0, "server {sid} saw digest mismatches");
    }
}

#[test]
fn a_write_at_the_leader_is_applied_on_all_three_with_the_same_zxid() {
    let mut c = established(500);
    let (session, _) = c.connect(1);
    assert_eq!(session >> 56, 1, "the session id carries the leader's id");
    let (zxid, err) = c.write(1, session, 1, create("/a"));
    assert_eq!(err, 0);
    assert_eq!(Zxid::from(zxid), Zxid::new(1, 2), "createSession was 1");
    c.run_until("/a everywhere", |c| {
        (1..=VOTERS).all(|s| c.zxid(s) == zxid) && c.converged()
    });
    for sid in 1..=VOTERS {
        assert!(c.has(sid, "/a"), "server {sid}");
        let st = c.node(sid).shared.sessions.lock().unwrap();
        assert!(st.is_live(session), "server {sid} knows the session");
    }
}

#[test]
fn a_write_at_a_follower_is_forwarded_committed_and_answered_there() {
    let mut c = established(500);
    // createSession through the leader (quorum.md §6): the id is the
    // follower's, the password Apache's, known to every server.
    let (session, frame) = c.connect(2);
    assert_eq!(session >> 56, 2);
    let passwd = crate::java_random::session_password(session);
    assert_eq!(&frame[24..40], &passwd[..], "the handshake's password");
    let (zxid, err) = c.write(2, session, 1, create("/f"));
    assert_eq!(err, 0);
    assert_eq!(Zxid::from(zxid), Zxid::new(1, 2));
    c.run_until("/f everywhere", |c| {
        (1..=VOTERS).all(|s| c.zxid(s) == zxid) && c.converged()
    });
    for sid in 1..=VOTERS {
        assert!(c.has(sid, "/f"));
        let st = c.node(sid).shared.sessions.lock().unwrap();
        assert_eq!(st.password(session), passwd, "server {sid}");
    }
    // A second write in the same session, and an error reply forwarded too.
    let (z2, err) = c.write(2, session, 2, create("/f"));
    assert_eq!(err, zk_jute::ErrorCode::NodeExists.code());
    assert_eq!(Zxid::from(z2), Zxid::new(1, 3));
}

/// Creates `/n<from>`.. `n` nodes through the leader; the last zxid.
fn write_n(c: &mut Cluster, session: i64, from: i32, n: i32) -> i64 {
    let mut last = 0;
    for i in from..from + n {
        let (z, err) = c.write(c.leader, session, i, create(&format!("/n{i}")));
        assert_eq!(err, 0);
        last = z;
    }
    last
}

/// Server 3 crashes (`seed`) after `before` writes and misses `missed` more:
/// the cluster, the session, the zxid of the last write it kept and of the last.
fn follower_behind(
    commit_log_count: usize,
    seed: u64,
    before: i32,
    missed: i32,
) -> (Cluster, i64, i64, i64) {
    let mut c = established(commit_log_count);
    let (session, _) = c.connect(1);
    let kept = write_n(&mut c, session, 1, before);
    c.run_until("converged", Cluster::converged);
    c.crash(3, seed);
    let last = write_n(&mut c, session, before + 1, missed);
    (c, session, kept, last)
}

#[test]
fn a_restarted_follower_catches_up_by_diff() {
    let (mut c, _, before, last) = follower_behind(500, 1, 2, 3);
    c.reboot(3);
    assert_eq!(c.zxid(3), before, "server 3's disk kept what it applied");
    c.follow(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 3).collect();
    assert_eq!(syncs.last().unwrap().1, "DIFF", "{syncs:?}");
    assert!(c.has(3, "/n5"));
}

/// Regression: a follower restarted with a snapshot due (recovery replayed
/// more log than its tree's size) started it while applying the DIFF, on the
/// CPU the rest of the sync needed; it now starts once the follower serves.
#[test]
fn a_syncing_follower_starts_no_snapshot_until_it_serves() {
    let (mut c, session, _, last) = follower_behind(500, 1, 2, 3);
    let dir = c.dir_of(3);
    let disk = c.node(3).disk.clone();
    // snapCount 2: due at the second txn applied, inside the DIFF of three.
    c.nodes[2] = boot_with(3, &dir, disk, |cfg| cfg.snap_count = 2);
    c.follow(3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(c.converged() && c.serving(3) && c.zxid(3) == last) {
        assert!(Instant::now() < deadline, "server 3 did not catch up");
        c.pump();
        let n = c.node(3);
        let seq = n.seq.as_ref().unwrap();
        assert!(
            n.shared.control.serving() || !seq.snapshots.running(),
            "a snapshot started while syncing"
        );
    }
    let (z, err) = c.write(c.leader, session, 6, create("/n6"));
    assert_eq!(err, 0);
    c.run_until("server 3 applied /n6", |c| c.zxid(3) == z);
    let snaps = || {
        c.node(3)
            .seq
            .as_ref()
            .unwrap()
            .storage
            .snaps
            .list()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !snaps().iter().any(|s| s.key > last as u64) {
        assert!(Instant::now() < deadline, "no snapshot once serving");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_follower_older_than_the_window_catches_up_by_diff_from_the_log() {
    // quorum.md §3.4 case 5: the window keeps 2 txns, the follower missed 5;
    // the leader's log still has them (getProposalsFromTxnLog).
    let (mut c, _, _, last) = follower_behind(2, 2, 1, 5);
    c.restart_follower(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 3).collect();
    assert_eq!(syncs.last().unwrap().1, "DIFF", "{syncs:?}");
    assert!(c.has(3, "/n6"));
}

#[test]
fn a_follower_far_behind_catches_up_by_snap_and_restarts_from_it() {
    let mut c = Cluster::new(2);
    c.diff_from_log = false; // as if the log no longer reached back
    let mut c = establish(c);
    let (session, _) = c.connect(1);
    write_n(&mut c, session, 1, 1);
    c.run_until("converged", Cluster::converged);
    c.crash(3, 2);
    let last = write_n(&mut c, session, 2, 5);
    c.restart_follower(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 3).collect();
    let snap = **syncs.last().unwrap();
    assert_eq!(snap.1, "SNAP", "{syncs:?}");
    assert!(c.has(3, "/n6"));
    // The old log went whole: nothing below the snapshot is DIFF material.
    let first = c.node(3).seq.as_ref().unwrap().storage.log.first_key();
    assert!(first.is_none_or(|k| k > snap.2.as_u64()), "{first:?}");
    {
        let st = c.node(3).shared.sessions.lock().unwrap();
        assert!(st.is_live(session), "the SNAP carried the session");
    }
    // The SNAP was made durable: after a crash, the disk alone has it all.
    let digest = c.node(1).shared.tree.digest();
    c.crash(3, 3);
    c.restart_follower(3);
    c.run_until("server 3 back", |c| c.converged() && c.serving(3));
    assert_eq!(c.node(3).shared.tree.digest(), digest);
}

#[test]
fn a_snap_cut_before_newleader_leaves_the_tree_of_the_disk() {
    // Regression: a learner whose sync ended between the SNAP and NEWLEADER
    // kept the leader's tree in memory while its disk still held its own
    // (the SNAP is made durable only at NEWLEADER); the role's end reported
    // the SNAP's zxid to the election and the next role replayed its old
    // log onto that tree. Apache reloads its database between roles (and
    // zk-sim's reference runtime does): the tree comes from the disk again.
    let mut c = Cluster::new(2);
    c.diff_from_log = false;
    let mut c = establish(c);
    let (session, _) = c.connect(1);
    let kept = write_n(&mut c, session, 1, 1);
    c.run_until("converged", Cluster::converged);
    c.crash(3, 2);
    let last = write_n(&mut c, session, 2, 5);
    c.cut_before_newleader = Some(3);
    c.restart_follower(3);
    c.run_until("server 3's sync cut", |c| {
        c.node(3)
            .events
            .iter()
            .any(|e| matches!(e, QuorumOut::RoleEnded { .. }))
    });
    assert!(
        c.syncs.iter().any(|s| s.0 == 3 && s.1 == "SNAP"),
        "{:?}",
        c.syncs
    );
    let ended = c.node(3).events.iter().find_map(|e| match e {
        QuorumOut::RoleEnded { last_zxid, .. } => Some(*last_zxid),
        _ => None,
    });
    assert_eq!(ended, Some(kept), "the vote carries what the disk holds");
    assert_eq!(c.zxid(3), kept);
    assert!(!c.has(3, "/n6"));
    c.follow(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
}

/// Appends a create of `path` as txn `zxid` to a stopped server's log.
fn inject_txn(disk: &MemDisk, dir: &Path, zxid: Zxid, path: &str) {
    inject(disk, dir, zxid, 0, create_txn(path));
}

/// The txn creating the empty, open znode `path`.
fn create_txn(path: &str) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: None,
        acl: zk_tree::open_acl_unsafe(),
        ephemeral: false,
        parent_c_version: 0,
    })
}

/// The header of txn `zxid` of session `client_id`.
fn txn_header(zxid: Zxid, client_id: i64, body: &TxnBody) -> TxnHeader {
    TxnHeader {
        client_id,
        cxid: 0,
        zxid: zxid.as_i64(),
        time: 0,
        txn_type: body.txn_type().code(),
    }
}

/// Appends txn `zxid` of session `client_id` to a stopped server's log.
fn inject(disk: &MemDisk, dir: &Path, zxid: Zxid, client_id: i64, body: TxnBody) {
    let log = Log::open(
        dir.join("log"),
        Options::default().backend(Backend::Memory(disk.clone())),
    )
    .unwrap();
    let hdr = txn_header(zxid, client_id, &body);
    let mut rec = BytesMut::new();
    body.write_record(&hdr, &mut rec);
    log.append(zxid.as_u64(), &rec).unwrap().wait().unwrap();
    log.close().unwrap();
}

#[test]
fn a_follower_with_an_extra_uncommitted_txn_is_truncated() {
    let mut c = established(500);
    let (session, _) = c.connect(1);
    let last = write_n(&mut c, session, 1, 2);
    c.run_until("converged", Cluster::converged);
    c.crash(3, 4);
    // Server 3 logged a proposal nobody else has (the leader died before
    // sending it further, in Apache's words).
    let extra = Zxid::from(last + 1);
    let (disk, dir) = (c.node(3).disk.clone(), c.dir_of(3));
    inject_txn(&disk, &dir, extra, "/ghost");
    let ghost_session = 0x0300_0000_0000_0042;
    let create_session = TxnBody::CreateSession(zk_jute::CreateSessionTxn { time_out: 30_000 });
    inject(
        &disk,
        &dir,
        Zxid::from(last + 2),
        ghost_session,
        create_session,
    );
    c.restart_follower(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 3).collect();
    assert_eq!(
        *syncs.last().unwrap(),
        &(3, "TRUNC", Zxid::from(last)),
        "{syncs:?}"
    );
    assert!(!c.has(3, "/ghost"));
    // The session table follows the rebuilt tree: the truncated session is
    // gone, the real one stays.
    {
        let st = c.node(3).shared.sessions.lock().unwrap();
        assert!(!st.is_live(ghost_session) && st.is_live(session));
    }
    // The next txn takes the truncated zxid, everywhere.
    let (z, _) = c.write(1, session, 10, create("/after"));
    assert_eq!(Zxid::from(z), extra);
    c.run_until("converged", |c| c.converged() && c.zxid(3) == z);
    assert!(c.has(3, "/after"));
}

/// Server 3 crashes, comes back with `/ghost` created by txn `zxid` (which
/// no other server has) and a snapshot at it: its snapshot store.
fn ghost_snapshot(c: &mut Cluster, zxid: Zxid) -> SnapshotStore {
    c.crash(3, 5);
    let (disk, dir) = (c.node(3).disk.clone(), c.dir_of(3));
    inject_txn(&disk, &dir, zxid, "/ghost");
    c.reboot(3);
    let snaps = SnapshotStore::open(&dir).unwrap();
    crate::storage::take_snapshot(&c.node(3).shared.tree, &snaps, zxid).unwrap();
    snaps
}

#[test]
fn a_trunc_below_the_newest_snapshot_gets_the_learner_a_snap() {
    // Regression (zk-sim seeds 649474, 659394, 1153792): a learner whose
    // newest snapshot holds txns a later leader truncates (there: the SNAP
    // of a leader that failed during the sync) cannot rebuild the TRUNC
    // point from its disk; it stopped for good (Apache's learner serves
    // those txns). It now leaves its files alone, asks that leader for SNAP
    // and takes the leader's state, durably: the old snapshot goes.
    let mut c = established(500);
    let (session, _) = c.connect(1);
    let last = write_n(&mut c, session, 1, 2);
    c.run_until("converged", Cluster::converged);
    let extra = Zxid::from(last + 1);
    let snaps = ghost_snapshot(&mut c, extra);
    c.follow(3);
    c.run_until("server 3 goes LOOKING", |c| {
        c.node(3)
            .events
            .iter()
            .any(|e| matches!(e, QuorumOut::RoleEnded { reason, .. } if reason.contains("SNAP")))
    });
    assert!(!c.node(3).seq.as_ref().unwrap().failed);
    // Its files are as they were until the SNAP replaces them.
    let keys = |snaps: &SnapshotStore| {
        snaps
            .list()
            .unwrap()
            .iter()
            .map(|s| s.key)
            .collect::<Vec<_>>()
    };
    assert!(keys(&snaps).contains(&extra.as_u64()));
    c.close_learner(3);
    c.follow(3);
    c.run_until("converged", Cluster::converged);
    assert!(
        c.syncs.contains(&(3, "SNAP", Zxid::from(last))),
        "{:?}",
        c.syncs
    );
    assert!(!c.has(3, "/ghost"));
    assert!(
        keys(&snaps).iter().all(|k| *k <= last as u64),
        "{:?}",
        keys(&snaps)
    );
    let (z, _) = c.write(1, session, 10, create("/after"));
    c.run_until("3 has it", |c| c.zxid(3) == z);
    // A restart loads the leader's state, not the truncated snapshot.
    c.crash(3, 6);
    c.reboot(3);
    assert!(!c.has(3, "/ghost"));
    c.follow(3);
    c.run_until("converged again", Cluster::converged);
    assert!(c.has(3, "/after") && !c.has(3, "/ghost"));
}

#[test]
fn a_trunc_of_everything_below_a_snapshot_empties_the_learner() {
    // Regression (zk-sim seed 649474): as above, but the leader has no txn
    // at all: its TRUNC to 0 is below the learner's only snapshot, and the
    // state at 0 is the empty tree.
    let mut c = established(500);
    let ghost = Zxid::new(1, 1);
    let snaps = ghost_snapshot(&mut c, ghost);
    c.follow(3);
    c.run_until("converged", Cluster::converged);
    assert!(c.syncs.contains(&(3, "TRUNC", Zxid::ZERO)), "{:?}", c.syncs);
    assert!(!c.has(3, "/ghost"));
    assert!(snaps.list().unwrap().iter().all(|s| s.key < ghost.as_u64()));
    c.crash(3, 6);
    c.reboot(3);
    assert!(!c.has(3, "/ghost"));
}

/// Server `sid`'s disk as a crash between publishing the snapshot of a SNAP
/// at `zxid` and dropping the old log leaves it: its log as it was, and a
/// snapshot at `zxid` of its tree with `path` created by that txn.
fn snap_saved_log_kept(c: &mut Cluster, sid: u64, zxid: Zxid, path: &str) {
    c.reboot(sid);
    let tree = &c.node(sid).shared.tree;
    let body = create_txn(path);
    let _ = tree.apply(&txn_header(zxid, 0, &body), &body);
    let snaps = SnapshotStore::open(c.dir_of(sid)).unwrap();
    crate::storage::take_snapshot(tree, &snaps, zxid).unwrap();
    c.crash(sid, 9);
}

#[test]
fn a_log_that_ends_below_its_snapshot_is_dropped_at_start() {
    // Regression: a learner killed between publishing a SNAP's snapshot and
    // dropping its old log kept records that end below the snapshot, cut
    // from it by a gap. Leading later, it took them for its DIFF window: a
    // learner whose last txn was among them got a DIFF of nothing and
    // served the older tree (here without `/snapped`) in the new epoch. The
    // start now drops such a log; the learner gets SNAP.
    let mut c = established(500);
    let (session, _) = c.connect(1);
    let last = write_n(&mut c, session, 1, 3);
    c.run_until("converged", Cluster::converged);
    for sid in 1..=VOTERS {
        c.crash(sid, 7);
    }
    let snapped = Zxid::from(last + 1);
    snap_saved_log_kept(&mut c, 3, snapped, "/snapped");
    c.reboot(3);
    let log = |c: &Cluster| c.node(3).seq.as_ref().unwrap().storage.log.clone();
    assert_eq!(log(&c).last_key(), None);
    assert!(c.has(3, "/snapped"));
    c.reboot(2);
    c.start(3, &[2]);
    c.run_until("epoch 2 with 2 and 3", Cluster::converged);
    assert!(c.syncs.contains(&(2, "SNAP", snapped)), "{:?}", c.syncs);
    assert!(c.has(2, "/snapped"));
    // What it logs from now on follows the snapshot, and a restart replays
    // it.
    let (session, _) = c.connect(3);
    let (z, err) = c.write(3, session, 1, create("/after"));
    assert_eq!(err, 0);
    c.run_until("2 has it", |c| c.zxid(2) == z);
    assert_eq!(log(&c).last_key(), Some(Zxid::from(z).as_u64()));
    c.crash(3, 8);
    c.reboot(3);
    assert!(c.has(3, "/snapped") && c.has(3, "/after"));
    assert_eq!(c.zxid(3), z);
}

/// Epoch 1 with all three, then a power cut of all; epoch 2 led by 2 with 1
/// and new txns; server 3 joins it (DIFF: epoch 2's txns, then NEWLEADER)
/// and "crashes" right before `point`, with the epoch files `at_crash`
/// (accepted, current). Its disk restarts (epoch_files row L9 when
/// currentEpoch is behind the synced txns) and it catches up.
fn crash_in_sync(point: fn(&LearnerCommand) -> bool, at_crash: (i64, i64), seed: u64) -> Cluster {
    let mut c = established(500);
    let (session, _) = c.connect(1);
    write_n(&mut c, session, 1, 2);
    c.run_until("converged", Cluster::converged);
    for sid in 1..=VOTERS {
        c.crash(sid, seed);
    }
    c.reboot(2);
    c.reboot(1);
    c.start(2, &[1]);
    c.run_until("epoch 2 with 1 and 2", Cluster::converged);
    let (session, _) = c.connect(2);
    let last = write_n(&mut c, session, 3, 3);
    assert_eq!(Zxid::from(last).epoch(), 2);
    c.run_until("converged", Cluster::converged);
    // Server 3 boots and joins with the crash point armed.
    c.reboot(3);
    c.nodes[2].seq.as_mut().unwrap().crash_before = Some(point);
    c.follow(3);
    c.run_until("server 3 at the crash point", |c| {
        c.node(3).seq.as_ref().is_some_and(|s| s.failed)
    });
    assert_eq!(c.epochs(3), (Some(at_crash.0), Some(at_crash.1)));
    c.crash(3, seed);
    // The synced txns were durable before either point.
    let (dir, disk) = (c.dir_of(3), c.node(3).disk.clone());
    let log = Log::open(
        dir.join("log"),
        Options::default().backend(Backend::Memory(disk)),
    )
    .unwrap();
    assert_eq!(log.last_key(), Some(Zxid::from(last).as_u64()));
    drop(log);
    c.restart_follower(3);
    c.run_until("server 3 caught up", |c| {
        c.converged() && c.serving(3) && c.zxid(3) == last
    });
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 3).collect();
    assert!(syncs.iter().all(|s| s.1 == "DIFF"), "{syncs:?}");
    assert_eq!(c.epochs(3), (Some(2), Some(2)));
    c
}

#[test]
fn a_crash_after_the_synced_txns_are_durable_before_current_epoch_restarts() {
    for seed in 0..3 {
        let c = crash_in_sync(
            |cmd| matches!(cmd, LearnerCommand::PersistCurrentEpoch(_)),
            (2, 1),
            seed,
        );
        assert!(c.has(3, "/n5"));
    }
}

#[test]
fn a_crash_after_current_epoch_before_the_newleader_ack_restarts() {
    for seed in 0..3 {
        let c = crash_in_sync(
            |cmd| matches!(cmd, LearnerCommand::Send(Packet::Ack { zxid }) if zxid.counter() == 0),
            (2, 2),
            seed,
        );
        assert!(c.has(3, "/n5"));
    }
}

#[test]
fn a_follower_keeps_its_sessions_alive_through_pings_and_the_leader_expires_them() {
    let mut c = established(500);
    // The logs' first append creates their segment (a stall of the turn that
    // makes it, longer than a short session timeout in a debug build).
    let (warm, _) = c.connect(1);
    write_n(&mut c, warm, 1, 1);
    c.run_until("converged", Cluster::converged);
    let (session, _) = c.connect_with(2, 300);
    // Well past the timeout, the client's packets touch it at server 2 (its
    // loop does that on every packet) and server 2's PING answers carry the
    // touches to the leader.
    let until = Instant::now() + Duration::from_millis(900);
    c.run_until("900 ms", |c| {
        let now = c.node(2).shared.now_ms();
        c.node(2)
            .shared
            .sessions
            .lock()
            .unwrap()
            .touch(session, now);
        Instant::now() >= until
    });
    let live = |c: &Cluster, sid: u64| c.node(sid).shared.sessions.lock().unwrap().is_live(session);
    let states: Vec<bool> = (1..=VOTERS).map(|s| live(&c, s)).collect();
    assert!(
        states.iter().all(|l| *l),
        "touched by PING answers: {states:?} {:?}",
        c.nodes.iter().map(|n| &n.events).collect::<Vec<_>>()
    );
    // The client goes silent (still connected): a PING answer carries only
    // the sessions touched since the previous one, so only the leader
    // expires it, by a closeSession txn that every server applies.
    c.run_until("the session expired everywhere", |c| {
        (1..=VOTERS).all(|s| !live(c, s)) && c.converged()
    });
}

#[test]
fn a_sync_at_a_follower_goes_through_the_leader_in_session_order() {
    let mut c = established(500);
    let (session, _) = c.connect(2);
    let ctx = |xid| Ctx {
        conn: CLIENT,
        session_id: session,
        xid,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    // A write, a sync and a read sent back to back: answered in that order,
    // the read seeing the write.
    c.send(
        2,
        CoreMsg::Request {
            ctx: ctx(1),
            req: create("/s"),
        },
    );
    c.send(
        2,
        CoreMsg::Request {
            ctx: ctx(2),
            req: Request::Sync(zk_jute::SyncRequest { path: "/s".into() }),
        },
    );
    c.send(
        2,
        CoreMsg::Request {
            ctx: ctx(3),
            req: Request::Exists(zk_jute::ExistsRequest {
                path: "/s".into(),
                watch: false,
            }),
        },
    );
    let mut xids = Vec::new();
    c.run_until("three replies", |c| {
        xids = c
            .node(2)
            .replies
            .iter()
            .filter_map(|m| match m {
                LoopMsg::Out { frame, .. } => Some(reply_header(frame)),
                _ => None,
            })
            .collect();
        xids.len() == 3
    });
    assert_eq!(
        xids.iter().map(|h| (h.0, h.2)).collect::<Vec<_>>(),
        [(1, 0), (2, 0), (3, 0)]
    );
    // createSession, the create and the sync went to the leader.
    assert_eq!(c.requests, [-10, 1, 9]);
}

#[test]
fn the_leader_dies_a_follower_leads_epoch_2_and_the_old_leader_rejoins_without_its_uncommitted_txn()
{
    let mut c = established(500);
    let (session, _) = c.connect(1);
    let last = write_n(&mut c, session, 1, 2);
    c.run_until("converged", Cluster::converged);
    c.crash(1, 5);
    c.run_until("2 and 3 stop serving", |c| !c.serving(2) && !c.serving(3));
    assert!(
        c.node(2)
            .events
            .iter()
            .any(|e| matches!(e, QuorumOut::RoleEnded { .. }))
    );
    // A write that reaches a LOOKING server: its client is sent away (no
    // txn, no zxid of the standalone pipeline).
    let ctx = Ctx {
        conn: CLIENT,
        session_id: session,
        xid: 50,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    c.node_mut(2).replies.clear();
    c.send(
        2,
        CoreMsg::Request {
            ctx,
            req: create("/looking"),
        },
    );
    c.run_until("the client sent away", |c| {
        c.node(2)
            .replies
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { conn } if *conn == CLIENT))
    });
    assert_eq!(c.zxid(2), last);
    // Server 1 had logged a proposal nobody else saw before it died.
    let (disk, dir) = (c.node(1).disk.clone(), c.dir_of(1));
    assert_eq!(Zxid::from(last), Zxid::new(1, 3));
    inject_txn(&disk, &dir, Zxid::from(last + 1), "/ghost");
    // Server 2 leads epoch 2 with 3; the data survived.
    c.start(2, &[3]);
    c.run_until("epoch 2 with 2 and 3", Cluster::converged);
    assert_eq!(c.node(2).shared.control.mode(), Mode::Leader);
    assert!(c.has(2, "/n2") && c.has(3, "/n2"));
    let (s2, _) = c.connect(2);
    let (z, err) = c.write(2, s2, 1, create("/epoch2"));
    assert_eq!(err, 0);
    assert_eq!(Zxid::from(z).epoch(), 2);
    // The old leader comes back as a follower of epoch 2.
    c.restart_follower(1);
    c.run_until("server 1 caught up", |c| {
        c.converged() && c.serving(1) && c.zxid(1) == z
    });
    assert_eq!(c.node(1).shared.control.mode(), Mode::Follower);
    // zk-zab's sync table: the leader's next txn after the peer's 0x100000004
    // is of another epoch, so SNAP — as Apache's syncFollower, whose
    // queueCommittedProposals gives up on TRUNC across epochs ("Cannot send
    // TRUNC to peer ... peer zxid is from different epoch") and falls back
    // to a snapshot.
    let syncs: Vec<_> = c.syncs.iter().filter(|s| s.0 == 1).collect();
    assert_eq!(syncs, [&(1, "SNAP", Zxid::from(z))]);
    assert!(c.has(1, "/epoch2") && !c.has(1, "/ghost"));
    assert_eq!(c.epochs(1), (Some(2), Some(2)));
}

#[test]
fn an_observer_syncs_and_applies_informed_txns() {
    let mut c = Cluster::new(500);
    c.start(1, &[2]);
    let cfg = LearnerConfig {
        sid: 3,
        observer: true,
        init_limit: 20,
        sync_limit: 20,
        config_version: 0,
    };
    c.send(3, CoreMsg::Quorum(QuorumIn::Follow { cfg, leader: 1 }));
    let conn = c.next_conn;
    c.next_conn += 1;
    c.conns.insert(conn, 3);
    c.conn_of.insert(3, conn);
    c.send(1, CoreMsg::Quorum(QuorumIn::LearnerConnected(conn)));
    c.send(3, CoreMsg::Quorum(QuorumIn::LeaderConnected));
    c.run_until("all serving", Cluster::converged);
    assert_eq!(c.node(3).shared.control.mode(), Mode::Observer);
    let (session, _) = c.connect(3);
    let (z, err) = c.write(3, session, 1, create("/o"));
    assert_eq!(err, 0);
    c.run_until("/o everywhere", |c| {
        c.converged() && (1..=VOTERS).all(|s| c.zxid(s) == z)
    });
}

#[test]
fn a_learner_given_a_bad_packet_goes_looking_without_logging_it() {
    let mut c = established(500);
    let before = c.zxid(2);
    let next = Zxid::new(1, 1);
    // A PROPOSAL whose txn does not decode, then (to server 3) a COMMIT of
    // a txn it never received: each ends that learner's role, nothing more.
    let garbage = Packet::Proposal {
        zxid: next,
        txn: Bytes::from_static(b"\x00\x01garbage"),
    };
    c.send(2, CoreMsg::Quorum(QuorumIn::FromLeader(garbage)));
    c.send(
        3,
        CoreMsg::Quorum(QuorumIn::FromLeader(Packet::Commit { zxid: next })),
    );
    c.run_until("2 and 3 LOOKING", |c| !c.serving(2) && !c.serving(3));
    for sid in [2, 3] {
        assert!(
            matches!(c.node(sid).events.last(), Some(QuorumOut::RoleEnded { .. })),
            "server {sid}: {:?}",
            c.node(sid).events
        );
    }
    assert_eq!(c.zxid(2), before);
    let log = &c.node(2).seq.as_ref().unwrap().storage.log;
    assert_eq!(log.last_key(), None, "nothing was logged");
}

#[test]
fn a_leader_ignores_session_packets_that_do_not_decode() {
    // A learner's REQUEST payloads are the session layer's, which the zk-zab
    // cores pass on undecoded (the hostile-peer test of zk-zab covers the
    // packets themselves): a body that does not decode, an unknown opcode, a
    // createSession cut short. The leader proposes the MARSHALLINGERROR txn a
    // client's would get and goes on; nothing ends its role or the
    // learner's connection (payloads cut short of what the leader reads
    // first close it: the next test).
    let mut c = established(500);
    let (session, _) = c.connect(1);
    let conn = c.conn_of[&2];
    let header = |ty: i32| {
        let mut b = BytesMut::new();
        b.extend_from_slice(&session.to_be_bytes());
        b.extend_from_slice(&7i32.to_be_bytes());
        b.extend_from_slice(&ty.to_be_bytes());
        b
    };
    let mut garbage_create = header(1);
    garbage_create.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 1]);
    let mut create_session = header(-10);
    create_session.extend_from_slice(&[0, 1]);
    let bad = [
        Packet::Request {
            data: garbage_create.freeze(),
            authinfo: vec![],
        },
        Packet::Request {
            data: header(999).freeze(),
            authinfo: vec![],
        },
        Packet::Request {
            data: create_session.freeze(),
            authinfo: vec![],
        },
    ];
    let before = c.zxid(1);
    for p in bad {
        c.send(1, CoreMsg::Quorum(QuorumIn::FromLearner(conn, p)));
    }
    let (z, err) = c.write(1, session, 1, create("/after"));
    assert_eq!(err, 0);
    // The create with a body that does not decode, the unknown opcode and
    // the createSession without its timeout each took a MARSHALLINGERROR
    // txn.
    assert_eq!(z, before + 4);
    c.run_until("/after everywhere", |c| {
        c.converged() && (1..=VOTERS).all(|s| c.zxid(s) == z)
    });
    assert!(!c.node(1).seq.as_ref().unwrap().failed);
    assert!(
        !c.node(1)
            .events
            .iter()
            .any(|e| matches!(e, QuorumOut::RoleEnded { .. })),
        "{:?}",
        c.node(1).events
    );
    assert!(c.has(2, "/after") && c.has(3, "/after"));
}

/// Regression: a learner's createSession REQUEST without its timeout was
/// dropped with a warning, and an Apache follower (which forwards a client's
/// createSession sent on a session, body and all) waited for its commit
/// forever: its commit pipeline stalled every later request and new session
/// (found by the hostile-client test of a mixed ensemble). ZooKeeper's
/// prep proposes MARSHALLINGERROR for it; so does ours.
#[test]
fn a_create_session_request_without_its_timeout_takes_an_error_txn() {
    let mut c = established(500);
    let conn = c.conn_of[&2];
    let before = c.zxid(1);
    let mut data = BytesMut::new();
    data.extend_from_slice(&0x0200_0000_0000_0007i64.to_be_bytes());
    data.extend_from_slice(&5i32.to_be_bytes());
    data.extend_from_slice(&zk_jute::OpCode::CreateSession.code().to_be_bytes());
    let p = Packet::Request {
        data: data.freeze(),
        authinfo: vec![],
    };
    c.send(1, CoreMsg::Quorum(QuorumIn::FromLearner(conn, p)));
    c.run_until("the error txn everywhere", |c| {
        c.converged() && (1..=VOTERS).all(|s| c.zxid(s) > before)
    });
    let z = c.zxid(2);
    let log = &c.node(2).seq.as_ref().unwrap().storage.log;
    let (_, txn) = log.iter_from(z as u64).next().unwrap().unwrap();
    let t = zk_apache::decode_txn(Bytes::from(txn)).unwrap();
    assert_eq!(
        (t.header.client_id, t.header.cxid, t.body),
        (
            0x0200_0000_0000_0007,
            5,
            TxnBody::Error(zk_jute::ErrorTxn {
                err: zk_jute::ErrorCode::MarshallingError.code()
            })
        )
    );
}

/// Regression: a learner's REQUEST shorter than its header, a PING ending in
/// a partial session touch (or without touches) and a REVALIDATE shorter
/// than its session and timeout were dropped with a warning and the learner
/// kept; a malformed packet closes its connection (as ZooKeeper's
/// LearnerHandler ends on the exception reading it). And a learner the
/// sequencer closed stayed in the leader core's gauges for good.
#[test]
fn a_session_packet_cut_short_closes_the_learner() {
    let mut c = established(500);
    let cut_short = [
        Packet::Request {
            data: Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 7, 0, 0]),
            authinfo: vec![],
        },
        Packet::Ping {
            zxid: Zxid::ZERO,
            data: Some(Bytes::from_static(&[0; 13])),
        },
        Packet::Ping {
            zxid: Zxid::ZERO,
            data: None,
        },
        Packet::Revalidate {
            data: Bytes::from_static(b"\x01\x02"),
        },
    ];
    let before = c.zxid(1);
    for (i, p) in cut_short.into_iter().enumerate() {
        let conn = c.conn_of[&2];
        let roles = c.roles_ended(2);
        c.send(1, CoreMsg::Quorum(QuorumIn::FromLearner(conn, p)));
        c.run_until("learner 2's role ended", |c| c.roles_ended(2) > roles);
        assert!(!c.conn_of.contains_key(&2));
        c.run_until("the core dropped it", |c| {
            c.node(1).shared.control.leader_gauges().0.learners == 1
        });
        // It comes back and syncs; the ensemble writes through it.
        c.follow(2);
        c.run_until("learner 2 synced again", |c| {
            c.node(1).shared.control.leader_gauges().0.synced_followers == 2 && c.serving(2)
        });
        let (session, _) = c.connect(2);
        let (zxid, err) = c.write(2, session, 1, create(&format!("/after{i}")));
        assert_eq!(err, 0);
        c.run_until("everywhere", |c| (1..=VOTERS).all(|s| c.zxid(s) >= zxid));
    }
    // Nothing but the four sessions and their creates was proposed.
    let counter = |z: i64| z & 0xffff_ffff;
    assert_eq!(counter(c.zxid(1)), counter(before) + 8);
}

/// An ephemeral create of session `session` through server `sid`: the
/// reply's error code, and whether the node exists anywhere afterwards.
fn ephemeral_through(c: &mut Cluster, sid: u64, session: i64, path: &str) -> (i32, bool) {
    let req = Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"e")),
        acl: zk_tree::open_acl_unsafe(),
        flags: 1,
    });
    let (_, err) = c.write(sid, session, 40, req);
    c.run_until("converged", Cluster::converged);
    (err, (1..=VOTERS).any(|s| c.has(s, path)))
}

/// Regression: the leader prepared a write without ZooKeeper's
/// `checkSession`, so a learner's ephemeral create forwarded while the
/// leader closed (or no longer knew) its session made a node that no
/// session would ever delete. It is now SESSIONEXPIRED, as Apache's.
#[test]
fn a_write_of_a_closing_or_unknown_session_is_refused_by_the_leader() {
    let mut c = established(500);
    // Unknown to the leader (a session id of server 2's).
    let unknown = 0x0200_0000_0000_0999;
    let expired = zk_jute::ErrorCode::SessionExpired.code();
    assert_eq!(
        ephemeral_through(&mut c, 2, unknown, "/orphan"),
        (expired, false)
    );
    // Closing at the leader (its expiry under way) while a learner still
    // forwards its writes; and at the leader itself.
    let (session, _) = c.connect(1);
    assert!(
        c.node(1)
            .shared
            .sessions
            .lock()
            .unwrap()
            .set_closing(session)
    );
    assert_eq!(
        ephemeral_through(&mut c, 2, session, "/late"),
        (expired, false)
    );
    assert_eq!(
        ephemeral_through(&mut c, 1, session, "/late"),
        (expired, false)
    );
    // A live session's create still goes through.
    let (live, _) = c.connect(2);
    assert_eq!(ephemeral_through(&mut c, 2, live, "/live"), (0, true));
}

/// With localSessionsEnabled, an Apache learner forwards the writes of its
/// local sessions, which the leader never heard of: as ZooKeeper's
/// `LeaderSessionTracker`, a session id of another server passes, one of
/// the leader's own does not.
#[test]
fn with_local_sessions_a_learners_unknown_session_writes() {
    let mut c = Cluster::new(500);
    let dir = c.dir_of(1);
    let disk = c.node(1).disk.clone();
    c.nodes[0] = boot_with(1, &dir, disk, |cfg| cfg.local_sessions_enabled = true);
    let mut c = establish(c);
    let (_, err) = c.write(2, 0x0200_0000_0000_0999, 41, create("/local"));
    assert_eq!(err, 0);
    let (_, err) = c.write(2, 0x0100_0000_0000_0999, 42, create("/mine"));
    assert_eq!(err, zk_jute::ErrorCode::SessionExpired.code());
}

/// A client resuming its session at server `sid` on connection `conn`: the
/// handshake's (session id, close) once answered.
fn resume(c: &mut Cluster, sid: u64, conn: u64, session: i64, passwd: [u8; 16]) -> (i64, bool) {
    c.send(
        sid,
        CoreMsg::Connect {
            conn,
            peer: SocketAddr::from(([127, 0, 0, 1], 5001)),
            req: ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                time_out: SESSION_TIMEOUT,
                session_id: session,
                passwd: Bytes::copy_from_slice(&passwd),
                read_only: Some(false),
            },
            timeout: SESSION_TIMEOUT,
        },
    );
    let mut found = None;
    c.run_until("the resumed handshake", |c| {
        found = c.node(sid).replies.iter().find_map(|m| match m {
            LoopMsg::Connected {
                conn: to,
                session_id,
                close,
                ..
            } if *to == conn => Some((*session_id, *close)),
            _ => None,
        });
        found.is_some()
    });
    c.node_mut(sid).replies.clear();
    found.unwrap()
}

/// Every server computes a session's password from its id (Apache's).
fn password(session: i64) -> [u8; 16] {
    crate::java_random::session_password(session)
}

#[test]
fn a_session_moving_to_another_follower_is_revalidated_by_the_leader() {
    let mut c = established(500);
    let (session, _) = c.connect(2);
    assert_eq!(c.write(2, session, 1, create("/a")).1, 0);
    let revalidates = |c: &Cluster| c.requests.len();
    let before = revalidates(&c);
    // Server 3 asks the leader, which makes it the session's owner.
    assert_eq!(
        resume(&mut c, 3, CLIENT, session, password(session)),
        (session, false)
    );
    assert_eq!(revalidates(&c), before, "REVALIDATE is not a REQUEST");
    assert_eq!(c.write(3, session, 2, create("/b")).1, 0);
    // A wrong password never reaches the leader; an unknown session is
    // refused by it.
    let mut wrong = password(session);
    wrong[0] ^= 1;
    assert_eq!(
        resume(&mut c, 3, CLIENT + (1 << 8), session, wrong),
        (0, true)
    );
    let ghost = session + 1000;
    assert_eq!(
        resume(&mut c, 2, CLIENT + (2 << 8), ghost, password(ghost)),
        (0, true)
    );
}

#[test]
fn a_write_through_the_server_a_session_left_closes_that_connection_with_sessionmoved() {
    // ZOOKEEPER-710: the old server's connection must not keep writing for a
    // session the leader now sees elsewhere.
    let mut c = established(500);
    let (session, _) = c.connect(2);
    assert_eq!(
        resume(&mut c, 3, CLIENT, session, password(session)),
        (session, false)
    );
    let before = c.zxid(1);
    let ctx = Ctx {
        conn: CLIENT,
        session_id: session,
        xid: 7,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    c.send(
        2,
        CoreMsg::Request {
            ctx,
            req: create("/stale"),
        },
    );
    c.run_until("server 2 closes the stale connection", |c| {
        c.node(2)
            .replies
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { conn } if *conn == CLIENT))
    });
    assert!(
        !c.node(2)
            .replies
            .iter()
            .any(|m| matches!(m, LoopMsg::Out { .. })),
        "no answer: {:?}",
        c.node(2).replies.len()
    );
    // The refusal is an error txn every server applies (it takes a zxid).
    c.run_until("converged", |c| c.converged() && c.zxid(3) > before);
    assert!((1..=VOTERS).all(|s| !c.has(s, "/stale")));
    // The session itself lives on at server 3, and moves to the leader too.
    assert_eq!(c.write(3, session, 8, create("/fresh")).1, 0);
    assert_eq!(
        resume(&mut c, 1, CLIENT, session, password(session)),
        (session, false)
    );
    assert_eq!(c.write(1, session, 9, create("/at-leader")).1, 0);
    c.node_mut(3).replies.clear();
    let ctx = Ctx {
        conn: CLIENT,
        session_id: session,
        xid: 10,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    c.send(
        3,
        CoreMsg::Request {
            ctx,
            req: create("/stale2"),
        },
    );
    c.run_until("server 3 closes its stale connection", |c| {
        c.node(3)
            .replies
            .iter()
            .any(|m| matches!(m, LoopMsg::Close { conn } if *conn == CLIENT))
    });
    c.run_until("converged", Cluster::converged);
    assert!((1..=VOTERS).all(|s| !c.has(s, "/stale2") && c.has(s, "/at-leader")));
}

#[test]
fn the_leader_counts_its_learners_for_mntr() {
    let c = established(500);
    let (counts, uptime) = c.node(1).shared.control.leader_gauges();
    assert_eq!(
        counts,
        zk_zab::LearnerCounts {
            learners: 2,
            synced_followers: 2,
            synced_observers: 0,
            pending_syncs: 0
        }
    );
    // zk_leader_uptime counts from the establishment.
    std::thread::sleep(Duration::from_millis(30));
    assert!(c.node(1).shared.control.leader_gauges().1 >= uptime + 30);
    assert_eq!(
        c.node(2).shared.control.leader_gauges().1,
        0,
        "a follower has none"
    );
}

/// The last-seen configuration (a reconfig logged and never activated) goes
/// to the quorum thread for the next elections (zk-election's `Joint`).
/// Regression (zk-sim's wide reconfigs): without it a server back with a
/// configuration gone stale, the voters of its last-seen one unheard, elected
/// itself and waited out initLimit for them, again and again.
#[test]
fn a_reconfig_logged_and_never_activated_is_the_last_seen_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let disk = MemDisk::new();
    let text = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                server.4=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                server.5=127.0.0.1:2890:3890:participant;127.0.0.1:2183\n\
                version=100000003";
    let zxid = Zxid::from(0x1_0000_0003_i64);
    inject(
        &disk,
        dir.path(),
        zxid,
        0,
        TxnBody::Reconfig(zk_jute::SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(Bytes::from_static(text.as_bytes())),
            version: -1,
        }),
    );
    let reconfig = |c: &mut Config| c.reconfig_enabled = true;
    let mut n = boot_with(1, dir.path(), disk.clone(), reconfig);
    let at_start = n.seq.as_ref().unwrap().last_seen().expect("found at start");
    assert_eq!(at_start.0, zxid.as_u64());
    assert_eq!(zk_jute::quorum::voter_ids(&at_start.1), [1, 4, 5].into());
    let seq = n.seq.as_mut().unwrap();
    seq.report_last_seen();
    seq.wake_quorum();
    let sent: Vec<QuorumOut> = n.outbox.try_iter().flatten().collect();
    match &sent[..] {
        [QuorumOut::LastSeen(Some((v, servers)))] => {
            assert_eq!(*v, zxid.as_u64());
            assert_eq!(servers.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 4, 5]);
        }
        other => panic!("{other:?}"),
    }
    // Activated (its version in force): none.
    n.shared.control.set_config_version(zxid.as_u64());
    let seq = n.seq.as_mut().unwrap();
    seq.report_last_seen();
    seq.wake_quorum();
    let sent: Vec<QuorumOut> = n.outbox.try_iter().flatten().collect();
    assert!(matches!(&sent[..], [QuorumOut::LastSeen(None)]), "{sent:?}");
    // Without reconfigEnabled a server reports nothing.
    let plain = boot(1, dir.path(), disk);
    assert!(plain.seq.as_ref().unwrap().last_seen().is_none());
}
