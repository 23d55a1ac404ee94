//! One test per rule of DESIGN.md (the rule and, where one exists, the Apache
//! bug it prevents are named in each test), over an in-memory harness.

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use crate::*;

fn z(epoch: u32, counter: u32) -> Zxid {
    Zxid::new(epoch, counter)
}

fn txn(zxid: Zxid) -> Bytes {
    Bytes::from(format!("txn {zxid}"))
}

fn history(epoch: u32, upto: u32) -> Vec<(Zxid, Bytes)> {
    (1..=upto)
        .map(|c| (z(epoch, c), txn(z(epoch, c))))
        .collect()
}

fn lcfg(voters: &[u64]) -> LeaderConfig {
    LeaderConfig {
        sid: 3,
        voters: voters.iter().copied().collect(),
        groups: None,
        init_limit: 10,
        sync_limit: 5,
        commit_log_count: 500,
        members: Bytes::new(),
        diff_from_log: true,
        config_version: 0,
        version_config: false,
    }
}

fn fcfg(sid: u64) -> LearnerConfig {
    LearnerConfig {
        sid,
        observer: false,
        init_limit: 10,
        sync_limit: 5,
        config_version: 0,
    }
}

/// A learner's runtime: its log, epoch files and applied txns; durability on demand.
struct Node {
    l: Learner,
    log: Vec<(Zxid, Bytes)>,
    durable: usize,
    applied: Vec<Zxid>,
    /// Applies and deliveries, in the order the learner asked for them.
    events: Vec<String>,
    epochs: (u32, u32),
    sent: VecDeque<Packet>,
    looking: Option<String>,
    serving: bool,
    /// The configuration NEWLEADER carried, as StartServing passed it on.
    leader_config: Option<Bytes>,
    auto: bool,
}

impl Node {
    fn new(cfg: LearnerConfig, log: Vec<(Zxid, Bytes)>, accepted: u32, current: u32) -> Self {
        let last = log.last().map_or(Zxid::ZERO, |t| t.0);
        let l = Learner::new(
            cfg,
            LearnerStart {
                last_zxid: last,
                accepted_epoch: accepted,
                current_epoch: current,
                snap_from_epoch: None,
            },
        );
        let durable = log.len();
        let applied = log.iter().map(|t| t.0).collect();
        Node {
            l,
            log,
            durable,
            applied,
            events: Vec::new(),
            epochs: (accepted, current),
            sent: VecDeque::new(),
            looking: None,
            serving: false,
            leader_config: None,
            auto: true,
        }
    }

    fn step(&mut self, ev: LearnerEvent) -> Vec<LearnerCommand> {
        let mut out = Vec::new();
        self.l.step(ev, &mut out);
        let cmds = out.clone();
        for c in out {
            self.run(c);
        }
        cmds
    }

    fn run(&mut self, c: LearnerCommand) {
        match c {
            LearnerCommand::Send(p) => self.sent.push_back(p),
            LearnerCommand::PersistAcceptedEpoch(e) => {
                self.epochs.0 = e;
                if self.auto {
                    self.step(LearnerEvent::AcceptedEpochDurable(e));
                }
            }
            LearnerCommand::PersistCurrentEpoch(e) => {
                self.epochs.1 = e;
                if self.auto {
                    self.step(LearnerEvent::CurrentEpochDurable(e));
                }
            }
            LearnerCommand::Truncate(to) => {
                self.log.retain(|t| t.0 <= to);
                self.durable = self.log.len();
                self.applied.retain(|a| *a <= to);
            }
            LearnerCommand::PersistSnapshot(zx) => {
                self.log.clear();
                self.durable = 0;
                if self.auto {
                    self.step(LearnerEvent::SnapshotDurable(zx));
                }
            }
            LearnerCommand::Append { zxid, txn } => {
                self.log.push((zxid, txn));
                if self.auto {
                    self.flush();
                }
            }
            LearnerCommand::Apply { zxid, .. } => {
                self.applied.push(zxid);
                self.events.push(format!("apply {zxid}"));
            }
            LearnerCommand::StartServing { leader_config, .. } => {
                self.serving = true;
                self.leader_config = leader_config;
            }
            LearnerCommand::AnswerPing(zxid) => self.sent.push_back(Packet::Ping {
                zxid,
                data: Some(Bytes::new()),
            }),
            LearnerCommand::Deliver(p) => self.events.push(format!("deliver {}", p.name())),
            LearnerCommand::GoLooking(r) => self.looking = Some(r),
        }
    }

    fn flush(&mut self) {
        self.durable = self.log.len();
        if let Some(last) = self.log.last().map(|t| t.0) {
            self.step(LearnerEvent::LogDurable(last));
        }
    }
}

/// Feeds a learner the txns `counters` of `epoch` as PROPOSAL + COMMIT
/// pairs (a sync's history).
fn feed_committed(n: &mut Node, epoch: u32, counters: std::ops::RangeInclusive<u32>) {
    for c in counters {
        n.step(LearnerEvent::Packet(Packet::Proposal {
            zxid: z(epoch, c),
            txn: txn(z(epoch, c)),
        }));
        n.step(LearnerEvent::Packet(Packet::Commit { zxid: z(epoch, c) }));
    }
}

/// A leader and its learners wired through queues.
struct Cluster {
    leader: Leader,
    to_leader: VecDeque<(Conn, Packet)>,
    nodes: Vec<Node>,
    leader_log: Vec<(Zxid, Bytes)>,
    leader_applied: Vec<Zxid>,
    leader_epochs: (u32, u32),
    established: Option<u32>,
    looking: Option<String>,
    closed: Vec<(Conn, String)>,
    snapshots_sent: Vec<Conn>,
    to_learner: Vec<VecDeque<Packet>>,
    leader_auto: bool,
    log_readable: bool,
    reads: Vec<Conn>,
    /// Every packet the leader sent to each learner, in order.
    trace: Vec<Vec<Packet>>,
}

impl Cluster {
    fn new(cfg: LeaderConfig, start: LeaderStart, nodes: Vec<Node>) -> Self {
        let mut out = Vec::new();
        let leader_log: Vec<_> = start
            .recent
            .iter()
            .chain(start.tail.iter())
            .cloned()
            .collect();
        let epochs = (start.accepted_epoch, start.current_epoch);
        let applied = start.recent.iter().map(|t| t.0).collect();
        let leader = Leader::new(cfg, start, &mut out);
        let n = nodes.len();
        let mut c = Cluster {
            leader,
            to_leader: VecDeque::new(),
            nodes,
            leader_log,
            leader_applied: applied,
            leader_epochs: epochs,
            established: None,
            looking: None,
            closed: Vec::new(),
            snapshots_sent: Vec::new(),
            to_learner: vec![VecDeque::new(); n],
            leader_auto: true,
            log_readable: true,
            reads: Vec::new(),
            trace: vec![Vec::new(); n],
        };
        c.run_leader(out);
        c
    }

    fn leader_step(&mut self, ev: LeaderEvent) {
        let mut out = Vec::new();
        self.leader.step(ev, &mut out);
        self.run_leader(out);
    }

    fn run_leader(&mut self, out: Vec<LeaderCommand>) {
        for c in out {
            match c {
                LeaderCommand::Send(conn, p) => {
                    let i = conn as usize;
                    if self.trace.len() <= i {
                        self.trace.resize(i + 1, Vec::new());
                    }
                    self.trace[i].push(p.clone());
                    self.to_learner[i].push_back(p);
                }
                LeaderCommand::SendSnapshot(conn) => self.snapshots_sent.push(conn),
                LeaderCommand::Close(conn, r) => self.closed.push((conn, r)),
                LeaderCommand::ReadLog { conn, from } => {
                    // As a runtime must: nothing when the log does not reach back.
                    let reaches = self.leader_log.first().is_some_and(|t| t.0 <= from);
                    let txns = (self.log_readable && reaches).then(|| {
                        self.leader_log
                            .iter()
                            .filter(|t| t.0 >= from)
                            .cloned()
                            .collect()
                    });
                    self.reads.push(conn);
                    self.leader_step(LeaderEvent::LogRead { conn, txns });
                }
                LeaderCommand::PersistAcceptedEpoch(e) => {
                    self.leader_epochs.0 = e;
                    if self.leader_auto {
                        self.leader_step(LeaderEvent::AcceptedEpochDurable(e));
                    }
                }
                LeaderCommand::PersistCurrentEpoch(e) => {
                    self.leader_epochs.1 = e;
                    if self.leader_auto {
                        self.leader_step(LeaderEvent::CurrentEpochDurable(e));
                    }
                }
                LeaderCommand::Append { zxid, txn } => {
                    self.leader_log.push((zxid, txn));
                    if self.leader_auto {
                        self.leader_step(LeaderEvent::LogDurable(zxid));
                    }
                }
                LeaderCommand::Apply { zxid, .. } => self.leader_applied.push(zxid),
                LeaderCommand::Established { epoch } => self.established = Some(epoch),
                LeaderCommand::FromLearner(..) => {}
                LeaderCommand::GoLooking(r) => self.looking = Some(r),
            }
        }
    }

    fn connect_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.leader_step(LeaderEvent::Connected(i as Conn));
            self.nodes[i].step(LearnerEvent::Connected);
        }
    }

    /// Delivers packets both ways until quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(p) = self.nodes[i].sent.pop_front() {
                    self.to_leader.push_back((i as Conn, p));
                    moved = true;
                }
            }
            while let Some((conn, p)) = self.to_leader.pop_front() {
                self.leader_step(LeaderEvent::Packet(conn, p));
                moved = true;
            }
            for i in 0..self.nodes.len() {
                while let Some(p) = self.to_learner[i].pop_front() {
                    // As zk-server's runtime: the activate packets reach the
                    // learner core as COMMIT / INFORM.
                    let p = match p {
                        Packet::CommitAndActivate { zxid, .. } => Packet::Commit { zxid },
                        Packet::InformAndActivate { zxid, txn, .. } => Packet::Inform { zxid, txn },
                        p => p,
                    };
                    if self.nodes[i].looking.is_none() {
                        self.nodes[i].step(LearnerEvent::Packet(p));
                    }
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn propose(&mut self, n: usize) {
        for _ in 0..n {
            let zx = self.leader.next_zxid();
            let mut out = Vec::new();
            self.leader
                .propose(zx, txn(zx), &mut out)
                .expect("proposal accepted");
            self.run_leader(out);
        }
    }
}

fn start(applied: Zxid, recent: Vec<(Zxid, Bytes)>, epochs: (u32, u32)) -> LeaderStart {
    LeaderStart {
        accepted_epoch: epochs.0,
        current_epoch: epochs.1,
        applied,
        recent,
        tail: Vec::new(),
        pending: None,
    }
}

fn three_fresh() -> Cluster {
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (0, 0)), nodes)
}

#[test]
fn a_fresh_ensemble_establishes_epoch_one_and_replicates() {
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(1));
    assert!(c.nodes.iter().all(|n| n.serving && n.looking.is_none()));
    assert_eq!(c.leader_epochs, (1, 1));
    assert!(c.nodes.iter().all(|n| n.epochs == (1, 1)));
    c.propose(100);
    c.pump();
    let want: Vec<Zxid> = (1..=100).map(|i| z(1, i)).collect();
    assert_eq!(c.leader_applied, want);
    for n in &c.nodes {
        assert_eq!(
            n.applied, want,
            "every server applies the same txns in order"
        );
    }
}

#[test]
fn the_epoch_is_one_above_every_accepted_epoch_and_persisted_first() {
    // getEpochToPropose: max(acceptedEpoch) + 1, over the leader and the
    // learners that arrive before the quorum; acceptedEpoch durable before
    // any LEADERINFO.
    let nodes = vec![
        Node::new(fcfg(1), vec![], 7, 4),
        Node::new(fcfg(2), vec![], 2, 2),
    ];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (5, 5)), nodes);
    c.leader_auto = false;
    c.connect_all();
    c.pump();
    assert_eq!(c.leader_epochs.0, 8, "max(5, 7, ...) + 1");
    assert!(
        c.to_learner.iter().all(|q| q.is_empty()),
        "no LEADERINFO before acceptedEpoch is durable"
    );
    c.leader_auto = true;
    c.leader_step(LeaderEvent::AcceptedEpochDurable(8));
    c.pump();
    assert_eq!(c.established, Some(8));
}

#[test]
fn a_learner_persists_the_accepted_epoch_before_acking_it() {
    // ZK-335: acceptedEpoch durable before ACKEPOCH.
    let mut n = Node::new(fcfg(1), vec![], 0, 0);
    n.auto = false;
    n.step(LearnerEvent::Connected);
    n.sent.clear();
    let cmds = n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(4, 0),
        protocol: PROTOCOL_VERSION,
    }));
    assert_eq!(cmds, vec![LearnerCommand::PersistAcceptedEpoch(4)]);
    assert!(n.sent.is_empty());
    n.step(LearnerEvent::AcceptedEpochDurable(4));
    assert_eq!(
        n.sent.pop_front(),
        Some(Packet::AckEpoch {
            zxid: Zxid::ZERO,
            current_epoch: 0
        })
    );
}

#[test]
fn an_already_accepted_epoch_is_acked_with_minus_one_and_a_lower_one_refused() {
    let mut n = Node::new(fcfg(1), vec![], 4, 3);
    n.step(LearnerEvent::Connected);
    n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(4, 0),
        protocol: PROTOCOL_VERSION,
    }));
    assert_eq!(
        n.sent.back(),
        Some(&Packet::AckEpoch {
            zxid: Zxid::ZERO,
            current_epoch: -1
        })
    );
    let mut n = Node::new(fcfg(1), vec![], 4, 3);
    n.step(LearnerEvent::Connected);
    n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(3, 0),
        protocol: PROTOCOL_VERSION,
    }));
    assert!(
        n.looking.is_some(),
        "a leader below our accepted epoch is refused"
    );
}

#[test]
fn observers_never_count_toward_the_epoch_quorum() {
    // ZK-2959: only voters count.
    let mut obs = fcfg(4);
    obs.observer = true;
    let nodes = vec![
        Node::new(obs, vec![], 0, 0),
        Node::new(fcfg(5), vec![], 0, 0),
    ];
    // Voters {1, 2, 3}; 4 observes, 5 is not a voter at all.
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (0, 0)), nodes);
    c.connect_all();
    c.pump();
    assert!(c.established.is_none());
    assert!(
        c.leader_epochs.0 == 0,
        "no epoch without a quorum of voters"
    );
}

#[test]
fn a_learner_ahead_of_the_leader_is_refused() {
    // waitForEpochAck: (currentEpoch, lastZxid) more recent than the leader's.
    let nodes = vec![
        Node::new(fcfg(1), history(2, 3), 2, 2),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3]),
        start(z(1, 5), history(1, 5), (1, 1)),
        nodes,
    );
    c.connect_all();
    c.pump();
    assert!(
        c.closed
            .iter()
            .any(|(conn, r)| *conn == 0 && r.contains("ahead")),
        "{:?}",
        c.closed
    );
}

fn leader_with(recent: Vec<(Zxid, Bytes)>) -> Leader {
    let applied = recent.last().map_or(Zxid::ZERO, |t| t.0);
    let mut out = Vec::new();
    Leader::new(lcfg(&[1, 2, 3]), start(applied, recent, (3, 3)), &mut out)
}

#[test]
fn the_sync_decision_follows_sync_follower() {
    // quorum.md §3.4, one assertion per row of DESIGN.md's table.
    let mut recent = history(2, 4);
    recent.extend(history(3, 3));
    let l = leader_with(recent);
    assert_eq!(
        l.sync_kind(z(3, 3)),
        SyncKind::Diff(z(3, 3)),
        "equal: DIFF, nothing else"
    );
    assert_eq!(
        l.sync_kind(z(3, 7)),
        SyncKind::Trunc(z(3, 3)),
        "ahead: TRUNC to our last"
    );
    assert_eq!(
        l.sync_kind(z(2, 2)),
        SyncKind::Diff(z(3, 3)),
        "in the window: DIFF"
    );
    assert_eq!(
        l.sync_kind(z(3, 0)),
        SyncKind::Diff(z(3, 3)),
        "an epoch's zxid 0: DIFF"
    );
    assert_eq!(
        l.sync_kind(z(1, 9)),
        SyncKind::Snap(z(3, 3)),
        "before the window: SNAP"
    );
    // A txn of epoch 2 we never had: TRUNC to the one before.
    let mut gap = history(2, 2);
    gap.extend([(z(2, 4), txn(z(2, 4))), (z(2, 5), txn(z(2, 5)))]);
    let l = leader_with(gap);
    assert_eq!(l.sync_kind(z(2, 3)), SyncKind::Trunc(z(2, 2)));
    // The next txn of another epoch: SNAP.
    let mut other = history(2, 2);
    other.extend(history(4, 2));
    let l = leader_with(other);
    assert_eq!(l.sync_kind(z(3, 5)), SyncKind::Snap(z(4, 2)));
}

#[test]
fn a_lagging_follower_gets_a_diff_and_every_later_txn() {
    let nodes = vec![
        Node::new(fcfg(1), history(1, 3), 1, 1),
        Node::new(fcfg(2), history(1, 8), 1, 1),
    ];
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3]),
        start(z(1, 8), history(1, 8), (1, 1)),
        nodes,
    );
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(2));
    let want: Vec<Zxid> = (1..=8).map(|i| z(1, i)).collect();
    assert_eq!(c.nodes[0].applied, want);
    assert_eq!(c.nodes[0].log.len(), 8);
}

#[test]
fn a_large_diff_commits_each_txn_without_rescanning_the_committed_ones() {
    // A COMMIT searched `pending` from the front for the oldest uncommitted
    // txn; nothing is applied before NEWLEADER is acked, so a DIFF of n txns
    // cost n²/2 steps (a debug build's follower syncing 13k txns missed
    // initLimit, was dropped and retried under load). The search now starts
    // after the committed prefix, which applies shift as they pop it.
    let n = 3_000;
    let nodes = vec![
        Node::new(fcfg(1), history(1, 5), 1, 1),
        Node::new(fcfg(2), history(1, n), 1, 1),
    ];
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3]),
        start(z(1, n), history(1, n), (1, 1)),
        nodes,
    );
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(2));
    assert_eq!(c.nodes[0].applied.len() as u32, n);
    assert_eq!(c.nodes[0].applied.last(), Some(&z(1, n)));
    // Then broadcast, with the follower's durability lagging: commits arrive
    // while applied txns are popped from the front in between.
    for n in &mut c.nodes {
        n.auto = false;
    }
    for round in 0..5 {
        c.propose(3);
        c.pump();
        c.nodes[1].flush();
        c.pump();
        if round % 2 == 0 {
            c.nodes[0].flush();
            c.pump();
        }
    }
    c.nodes[0].flush();
    c.pump();
    let want: Vec<Zxid> = (1..=n)
        .map(|i| z(1, i))
        .chain((1..=15).map(|i| z(2, i)))
        .collect();
    // Compared by length and mismatch, not printed whole.
    let got = &c.nodes[0].applied;
    assert_eq!(got.len(), want.len());
    assert_eq!(got.iter().zip(&want).position(|(a, b)| a != b), None);
    assert_eq!(c.leader_applied.len(), want.len());
}

#[test]
fn a_follower_with_an_extra_txn_is_truncated() {
    // ZK-1154 / 1156: the highest zxid joining late is TRUNCated, not served.
    let nodes = vec![
        Node::new(fcfg(1), history(1, 6), 1, 1),
        Node::new(fcfg(2), history(1, 5), 1, 1),
    ];
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3]),
        start(z(1, 5), history(1, 5), (1, 1)),
        nodes,
    );
    // It joins once the epoch is established (while the epoch quorum forms,
    // a learner more recent than the leader is refused: waitForEpochAck).
    c.leader_step(LeaderEvent::Connected(1));
    c.nodes[1].step(LearnerEvent::Connected);
    c.pump();
    assert_eq!(c.established, Some(2));
    c.leader_step(LeaderEvent::Connected(0));
    c.nodes[0].step(LearnerEvent::Connected);
    c.pump();
    assert!(c.nodes[0].serving);
    assert_eq!(c.nodes[0].log.last().map(|t| t.0), Some(z(1, 5)));
    assert!(!c.nodes[0].applied.contains(&z(1, 6)));
}

#[test]
fn a_learner_that_cannot_truncate_asks_that_leader_for_a_snapshot() {
    // Regression (zk-sim seeds 649474, 659394, 1153792): the snapshot of a
    // SNAP whose epoch never established held txns the next leader lacks;
    // its TRUNC went below that snapshot, which the learner cannot rebuild
    // the TRUNC point from, and it stopped for good. To the leader of the
    // epoch whose TRUNC failed it now reports an empty learner's zxid 0 and
    // gets SNAP; any other leader still hears its real last zxid.
    let learner = |snap_from_epoch| {
        Learner::new(
            fcfg(1),
            LearnerStart {
                last_zxid: z(1, 6),
                accepted_epoch: 1,
                current_epoch: 1,
                snap_from_epoch,
            },
        )
    };
    let ack_epoch_zxid = |l: &mut Learner| {
        let mut out = Vec::new();
        l.step(LearnerEvent::Connected, &mut out);
        l.step(
            LearnerEvent::Packet(Packet::LeaderInfo {
                zxid: z(2, 0),
                protocol: 0x10000,
            }),
            &mut out,
        );
        l.step(LearnerEvent::AcceptedEpochDurable(2), &mut out);
        out.iter()
            .find_map(|c| match c {
                LearnerCommand::Send(Packet::AckEpoch { zxid, .. }) => Some(*zxid),
                _ => None,
            })
            .expect("ACKEPOCH")
    };
    assert_eq!(ack_epoch_zxid(&mut learner(None)), z(1, 6));
    assert_eq!(ack_epoch_zxid(&mut learner(Some(7))), z(1, 6));
    let mut asked = learner(Some(2));
    assert_eq!(ack_epoch_zxid(&mut asked), Zxid::ZERO);
    // Only SNAP will do: a DIFF would be applied to a tree it does not have.
    let mut out = Vec::new();
    asked.step(
        LearnerEvent::Packet(Packet::Diff { zxid: z(1, 5) }),
        &mut out,
    );
    assert!(
        matches!(out.last(), Some(LearnerCommand::GoLooking(why)) if why.contains("whole tree")),
        "{out:?}"
    );
    // A leader with history answers zxid 0 with SNAP, then the learner syncs.
    let mut node = Node::new(fcfg(1), history(1, 6), 1, 1);
    node.l = learner(Some(2));
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3]),
        start(z(1, 5), history(1, 5), (1, 1)),
        vec![node, Node::new(fcfg(2), history(1, 5), 1, 1)],
    );
    c.connect_all();
    c.pump();
    assert_eq!(c.snapshots_sent, vec![0]);
    assert!(c.nodes[0].serving && c.nodes[0].looking.is_none());
}

#[test]
fn a_follower_far_behind_gets_a_snapshot_made_durable_before_the_txns() {
    // ZK-3104 / 3642: the loaded snapshot is durable before anything else.
    let mut recent = history(2, 3);
    recent.insert(0, (z(1, 9), txn(z(1, 9))));
    let nodes = vec![
        Node::new(fcfg(1), history(1, 2), 1, 1),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(z(2, 3), recent, (2, 2)), nodes);
    c.nodes[0].auto = false;
    c.connect_all();
    c.pump();
    c.nodes[0].step(LearnerEvent::AcceptedEpochDurable(3));
    c.pump();
    assert!(c.snapshots_sent.contains(&0));
    // Before SnapshotDurable nothing is appended and no ACK leaves.
    assert!(c.nodes[0].log.is_empty(), "{:?}", c.nodes[0].log);
    let cmds = c.nodes[0].step(LearnerEvent::SnapshotDurable(z(2, 3)));
    assert!(
        matches!(cmds.last(), Some(LearnerCommand::PersistCurrentEpoch(3))),
        "{cmds:?}"
    );
}

#[test]
fn a_follower_rejoining_its_own_epoch_does_not_rewrite_current_epoch() {
    // A restarted follower of epoch 2 rejoining epoch 2 rewrote currentEpoch
    // with the value it already held (two fsyncs on its rejoin). The ACK of
    // NEWLEADER still waits for the synced txns to be durable.
    let mut n = Node::new(fcfg(1), history(2, 2), 2, 2);
    n.auto = false;
    n.step(LearnerEvent::Connected);
    n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(2, 0),
        protocol: PROTOCOL_VERSION,
    }));
    n.sent.clear();
    n.step(LearnerEvent::Packet(Packet::Diff { zxid: z(2, 3) }));
    n.step(LearnerEvent::Packet(Packet::Proposal {
        zxid: z(2, 3),
        txn: txn(z(2, 3)),
    }));
    n.step(LearnerEvent::Packet(Packet::Commit { zxid: z(2, 3) }));
    let cmds = n.step(LearnerEvent::Packet(Packet::NewLeader {
        zxid: z(2, 0),
        config: Bytes::new(),
    }));
    assert!(n.sent.is_empty(), "no ACK before the sync is durable");
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, LearnerCommand::PersistCurrentEpoch(_)))
    );
    let cmds = n.step(LearnerEvent::LogDurable(z(2, 3)));
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, LearnerCommand::PersistCurrentEpoch(_))),
        "{cmds:?}"
    );
    assert_eq!(n.sent.pop_front(), Some(Packet::Ack { zxid: z(2, 0) }));
    // The synced txn applies with UPTODATE (the epoch is established).
    assert_eq!(n.applied, vec![z(2, 1), z(2, 2)]);
    n.step(LearnerEvent::Packet(Packet::UpToDate));
    assert_eq!(n.applied, vec![z(2, 1), z(2, 2), z(2, 3)]);
}

#[test]
fn newleader_is_acked_only_after_the_sync_and_current_epoch_are_durable() {
    // ZK-3911 / 4646 / 4643 / 4785: append → durable → currentEpoch → ACK,
    // and nothing else is sent in between.
    let mut n = Node::new(fcfg(1), history(1, 2), 1, 1);
    n.auto = false;
    n.step(LearnerEvent::Connected);
    n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(2, 0),
        protocol: PROTOCOL_VERSION,
    }));
    n.step(LearnerEvent::AcceptedEpochDurable(2));
    n.sent.clear();
    n.step(LearnerEvent::Packet(Packet::Diff { zxid: z(1, 4) }));
    feed_committed(&mut n, 1, 3..=4);
    n.step(LearnerEvent::Packet(Packet::Ping {
        zxid: z(1, 4),
        data: None,
    }));
    let cmds = n.step(LearnerEvent::Packet(Packet::NewLeader {
        zxid: z(2, 0),
        config: Bytes::new(),
    }));
    assert_eq!(
        cmds,
        vec![
            LearnerCommand::Append {
                zxid: z(1, 3),
                txn: txn(z(1, 3))
            },
            LearnerCommand::Append {
                zxid: z(1, 4),
                txn: txn(z(1, 4))
            },
        ]
    );
    assert!(
        n.sent.is_empty(),
        "no PING answer, no ACK yet: {:?}",
        n.sent
    );
    assert!(n.applied.len() == 2, "nothing applied before the ACK");
    let cmds = n.step(LearnerEvent::LogDurable(z(1, 4)));
    assert_eq!(cmds, vec![LearnerCommand::PersistCurrentEpoch(2)]);
    assert!(n.sent.is_empty());
    n.step(LearnerEvent::CurrentEpochDurable(2));
    assert_eq!(n.sent.pop_front(), Some(Packet::Ack { zxid: z(2, 0) }));
    assert_eq!(n.applied, vec![z(1, 1), z(1, 2)], "applied with UPTODATE");
    let cmds = n.step(LearnerEvent::Packet(Packet::UpToDate));
    assert!(cmds.contains(&LearnerCommand::StartServing {
        leader_config: None,
        epoch: 2
    }));
    assert_eq!(n.applied, vec![z(1, 1), z(1, 2), z(1, 3), z(1, 4)]);
    assert_eq!(
        n.sent.pop_front(),
        Some(Packet::Ack { zxid: z(2, 0) }),
        "UPTODATE is acked too"
    );
}

#[test]
fn the_leader_wants_the_newleader_ack_first() {
    // LearnerHandler: the next packet after NEWLEADER must be the ACK (ZK-4685).
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    // Server 1 connects again (conn 2) and answers NEWLEADER with a PING.
    c.to_learner.push(VecDeque::new());
    let info = zk_jute::LearnerInfo {
        server_id: 1,
        protocol_version: PROTOCOL_VERSION,
        config_version: 0,
    };
    c.leader_step(LeaderEvent::Connected(2));
    c.leader_step(LeaderEvent::Packet(
        2,
        Packet::FollowerInfo {
            zxid: z(1, 0),
            info,
        },
    ));
    c.leader_step(LeaderEvent::Packet(
        2,
        Packet::AckEpoch {
            zxid: Zxid::ZERO,
            current_epoch: -1,
        },
    ));
    assert!(
        matches!(c.to_learner[2].back(), Some(Packet::NewLeader { .. })),
        "{:?}",
        c.to_learner[2]
    );
    c.leader_step(LeaderEvent::Packet(
        2,
        Packet::Ping {
            zxid: Zxid::ZERO,
            data: Some(Bytes::new()),
        },
    ));
    assert!(
        c.closed
            .iter()
            .any(|(conn, r)| *conn == 2 && r.contains("NEWLEADER ACK")),
        "{:?}",
        c.closed
    );
}

#[test]
fn acks_follow_durability_in_order_and_commits_wait_for_a_quorum_with_the_leader() {
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.leader_auto = false;
    for n in &mut c.nodes {
        n.auto = false;
    }
    c.propose(3);
    c.pump();
    assert!(
        c.nodes.iter().all(|n| n.sent.is_empty()),
        "no ACK before durable"
    );
    // Follower 1 makes 1..=2 durable: two ACKs, in order.
    c.nodes[0].flush();
    let acks: Vec<_> = c.nodes[0].sent.iter().cloned().collect();
    assert_eq!(
        acks,
        (1..=3)
            .map(|i| Packet::Ack { zxid: z(1, i) })
            .collect::<Vec<_>>()
    );
    c.pump();
    assert!(
        c.leader_applied.is_empty(),
        "a follower's ack without the leader's own log is not a commit"
    );
    c.leader_step(LeaderEvent::LogDurable(z(1, 2)));
    assert_eq!(c.leader_applied, vec![z(1, 1), z(1, 2)]);
    c.pump();
    // Follower 1 applies what is committed and durable; follower 2 has
    // nothing durable, so applies nothing yet.
    assert_eq!(c.nodes[0].applied, vec![z(1, 1), z(1, 2)]);
    assert!(c.nodes[1].applied.is_empty());
    c.nodes[1].flush();
    c.pump();
    assert_eq!(c.nodes[1].applied, vec![z(1, 1), z(1, 2)]);
}

#[test]
fn with_groups_commits_and_the_epoch_wait_for_a_hierarchical_quorum() {
    // Groups {1, 2} and {3} (the leader): a quorum needs both groups, and
    // group {1, 2} both of its servers (QuorumHierarchical), where a
    // majority would take the leader and either follower.
    let voters = [1, 2, 3].into_iter().collect();
    let groups = [(1, vec![1, 2]), (2, vec![3])].into();
    let g = zk_election::Groups::new(&voters, &groups, &Default::default()).unwrap();
    let cfg = LeaderConfig {
        groups: Some(std::sync::Arc::new(g)),
        ..lcfg(&[1, 2, 3])
    };
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    let mut c = Cluster::new(cfg, start(Zxid::ZERO, vec![], (0, 0)), nodes);
    c.leader_step(LeaderEvent::Connected(0));
    c.nodes[0].step(LearnerEvent::Connected);
    c.pump();
    assert_eq!(
        c.established, None,
        "the leader and follower 1 are no quorum"
    );
    c.leader_step(LeaderEvent::Connected(1));
    c.nodes[1].step(LearnerEvent::Connected);
    c.pump();
    assert_eq!(c.established, Some(1));
    c.leader_auto = false;
    for n in &mut c.nodes {
        n.auto = false;
    }
    c.propose(2);
    c.pump();
    c.leader_step(LeaderEvent::LogDurable(z(1, 2)));
    c.nodes[0].flush();
    c.pump();
    assert!(
        c.leader_applied.is_empty(),
        "the leader and follower 1 acked: one group of two"
    );
    c.nodes[1].flush();
    c.pump();
    assert_eq!(c.leader_applied, vec![z(1, 1), z(1, 2)]);
}

#[test]
fn outstanding_proposals_reach_a_syncing_learner_after_newleader() {
    // ZOOKEEPER-4394: a 3.8.0-3.9.2 learner drops the proposals it queued
    // before NEWLEADER when it handles it; a COMMIT after NEWLEADER for one of
    // them killed its sync (NullPointerException), in a loop under load.
    let mut c = three_fresh();
    c.leader_step(LeaderEvent::Connected(0));
    c.nodes[0].step(LearnerEvent::Connected);
    c.pump();
    assert_eq!(c.established, Some(1));
    // Two proposals outstanding (the leader's own log not yet durable) while
    // the third server syncs.
    c.leader_auto = false;
    c.propose(2);
    c.leader_step(LeaderEvent::Connected(1));
    c.nodes[1].step(LearnerEvent::Connected);
    c.pump();
    assert!(c.leader_applied.is_empty(), "still outstanding");
    c.leader_step(LeaderEvent::LogDurable(z(1, 2)));
    c.pump();
    assert_eq!(c.leader_applied, vec![z(1, 1), z(1, 2)]);
    assert_eq!(c.nodes[1].applied, vec![z(1, 1), z(1, 2)]);
    let names: Vec<String> = c.trace[1]
        .iter()
        .filter(|p| !matches!(p, Packet::Ping { .. }))
        .map(|p| match p {
            Packet::Proposal { zxid, .. } => format!("PROPOSAL {zxid}"),
            Packet::Commit { zxid } => format!("COMMIT {zxid}"),
            other => other.name().to_string(),
        })
        .collect();
    let (p1, p2) = (z(1, 1), z(1, 2));
    assert_eq!(
        names[names.len() - 6..],
        [
            "NEWLEADER".to_string(),
            format!("PROPOSAL {p1}"),
            format!("PROPOSAL {p2}"),
            "UPTODATE".to_string(),
            format!("COMMIT {p1}"),
            format!("COMMIT {p2}"),
        ],
        "{names:?}"
    );
}

#[test]
fn a_txn_of_an_epoch_after_the_leaders_drops_the_leader() {
    // Found by the hostile-peer test (zk-zab/tests/hostile_peers.rs): a
    // PROPOSAL of epoch 0xffffffff during a DIFF passed the "next txn"
    // check (a later epoch, counter 1); its zxid, negative as an i64,
    // sorted below everything received (debug builds: "appended beyond
    // received"). A txn's epoch is at most the leader's.
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.nodes[0].step(LearnerEvent::Packet(Packet::Proposal {
        zxid: z(5, 1),
        txn: txn(z(5, 1)),
    }));
    assert!(
        c.nodes[0]
            .looking
            .as_deref()
            .is_some_and(|r| r.contains("epoch after the leader's 1")),
        "{:?}",
        c.nodes[0].looking
    );
}

#[test]
fn negative_zxids_are_refused_where_a_zxid_counts() {
    // The same find: epochs 0x80000000 and up make negative zxids, which
    // sort below every real one. Apache sends -1 in REQUEST, REVALIDATE
    // and UPTODATE, where the zxid means nothing.
    let q = |packet_type, zxid: i64| zk_jute::QuorumPacket {
        packet_type,
        zxid,
        data: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0])),
        authinfo: vec![],
    };
    use zk_jute::quorum_packet as t;
    for ty in [
        t::PROPOSAL,
        t::ACK,
        t::COMMIT,
        t::INFORM,
        t::NEWLEADER,
        t::FOLLOWERINFO,
    ]
    .into_iter()
    .chain([
        t::OBSERVERINFO,
        t::DIFF,
        t::TRUNC,
        t::SNAP,
        t::LEADERINFO,
        t::ACKEPOCH,
    ]) {
        let e = Packet::from_wire(q(ty, z(0xffff_ffff, 1).as_i64())).unwrap_err();
        assert_eq!(e.reason, "negative zxid", "type {ty}");
        assert!(Packet::from_wire(q(ty, z(0x7fff_ffff, 1).as_i64())).is_ok());
    }
    for ty in [t::REQUEST, t::REVALIDATE, t::UPTODATE, t::PING, t::SYNC] {
        assert!(Packet::from_wire(q(ty, -1)).is_ok(), "type {ty}");
    }
}

#[test]
fn a_learner_whose_accepted_epoch_leaves_no_next_one_is_refused() {
    // An acceptedEpoch of 0x7fffffff would make the next epoch's zxids
    // negative: that learner's connection closes, the epoch is unchanged.
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0x7fff_ffff, 4),
        Node::new(fcfg(2), vec![], 2, 2),
    ];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (5, 5)), nodes);
    c.connect_all();
    c.pump();
    assert!(
        c.closed
            .iter()
            .any(|(conn, r)| *conn == 0 && r.contains("leaves no epoch after it")),
        "{:?}",
        c.closed
    );
    assert_eq!(c.established, Some(6), "the leader and server 2 go on");
}

#[test]
fn a_hole_in_the_stream_or_a_stray_commit_drops_the_leader() {
    // ZK-4925 (holes) and ZK-4394 (commit of an unknown proposal).
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.nodes[0].step(LearnerEvent::Packet(Packet::Proposal {
        zxid: z(1, 2),
        txn: txn(z(1, 2)),
    }));
    assert!(
        c.nodes[0]
            .looking
            .as_deref()
            .is_some_and(|r| r.contains("does not follow"))
    );
    c.nodes[1].step(LearnerEvent::Packet(Packet::Commit { zxid: z(1, 1) }));
    assert!(
        c.nodes[1]
            .looking
            .as_deref()
            .is_some_and(|r| r.contains("COMMIT"))
    );
}

#[test]
fn observers_get_informs_and_never_ack() {
    let mut obs = fcfg(4);
    obs.observer = true;
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
        Node::new(obs, vec![], 0, 0),
    ];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (0, 0)), nodes);
    c.connect_all();
    c.pump();
    assert!(c.nodes[2].serving);
    c.propose(5);
    c.pump();
    assert_eq!(
        c.nodes[2].applied,
        (1..=5).map(|i| z(1, i)).collect::<Vec<_>>()
    );
}

#[test]
fn the_leader_steps_down_without_a_quorum_and_learners_leave_a_silent_leader() {
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    // Both followers stop answering: after syncLimit (5 ticks = 10 half ticks)
    // they are dropped and the leader loses its quorum.
    for _ in 0..11 {
        c.leader_step(LeaderEvent::Tick);
    }
    assert!(
        c.looking
            .as_deref()
            .is_some_and(|r| r.contains("not sufficient followers")),
        "{:?}",
        c.looking
    );
    for _ in 0..11 {
        c.nodes[0].step(LearnerEvent::Tick);
    }
    assert!(
        c.nodes[0]
            .looking
            .as_deref()
            .is_some_and(|r| r.contains("silent"))
    );
}

#[test]
fn pings_keep_everyone_alive() {
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    for _ in 0..40 {
        c.leader_step(LeaderEvent::Tick);
        for n in &mut c.nodes {
            n.step(LearnerEvent::Tick);
        }
        c.pump();
    }
    assert!(c.looking.is_none() && c.nodes.iter().all(|n| n.looking.is_none()));
}

#[test]
fn the_counter_never_reaches_0xffffffff() {
    // ZK-1277: the leader steps down instead of proposing counter 0xffffffff.
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    let mut out = Vec::new();
    let r = c.leader.propose(z(1, u32::MAX), Bytes::new(), &mut out);
    assert_eq!(r, Err(ProposeError::CounterExhausted));
    assert!(out.iter().any(|c| matches!(c, LeaderCommand::GoLooking(_))));
}

#[test]
fn a_sync_is_answered_once_what_was_proposed_is_committed() {
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.leader_auto = false;
    c.propose(1);
    c.leader_step(LeaderEvent::Sync(0));
    c.pump();
    assert!(!c.to_learner[0].contains(&Packet::Sync));
    let before = c.nodes[0].sent.len();
    let _ = before;
    c.leader_step(LeaderEvent::LogDurable(z(1, 1)));
    assert!(
        c.to_learner[0].contains(&Packet::Sync),
        "{:?}",
        c.to_learner[0]
    );
}

#[test]
fn the_leaders_unapplied_tail_is_synced_and_applied_at_establishment() {
    // ZK-2845: a leader's logged-but-unapplied txns are part of its history;
    // they are applied only when the new epoch is established.
    let nodes = vec![
        Node::new(fcfg(1), history(1, 2), 1, 1),
        Node::new(fcfg(2), history(1, 2), 1, 1),
    ];
    let mut s = start(z(1, 2), history(1, 2), (1, 1));
    s.tail = vec![(z(1, 3), txn(z(1, 3)))];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), s, nodes);
    assert!(!c.leader_applied.contains(&z(1, 3)));
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(2));
    assert!(c.leader_applied.contains(&z(1, 3)));
    assert!(c.nodes.iter().all(|n| n.applied.contains(&z(1, 3))));
}

#[test]
fn packets_round_trip_through_jute() {
    let info = zk_jute::LearnerInfo {
        server_id: 7,
        protocol_version: PROTOCOL_VERSION,
        config_version: 0,
    };
    let all = vec![
        Packet::Request {
            data: Bytes::from_static(b"r"),
            authinfo: vec![],
        },
        Packet::Proposal {
            zxid: z(1, 1),
            txn: Bytes::from_static(b"t"),
        },
        Packet::Ack { zxid: z(1, 1) },
        Packet::Commit { zxid: z(1, 1) },
        Packet::Ping {
            zxid: z(1, 1),
            data: Some(Bytes::new()),
        },
        Packet::Revalidate {
            data: Bytes::from_static(b"v"),
        },
        Packet::Sync,
        Packet::Inform {
            zxid: z(1, 2),
            txn: Bytes::from_static(b"i"),
        },
        Packet::CommitAndActivate {
            zxid: z(1, 3),
            leader: 3,
        },
        Packet::InformAndActivate {
            zxid: z(1, 3),
            leader: 3,
            txn: Bytes::from_static(b"r"),
        },
        Packet::NewLeader {
            zxid: z(2, 0),
            config: Bytes::from_static(b"version=0"),
        },
        Packet::FollowerInfo {
            zxid: z(1, 0),
            info,
        },
        Packet::ObserverInfo {
            zxid: z(1, 0),
            info,
        },
        Packet::UpToDate,
        Packet::Diff { zxid: z(1, 1) },
        Packet::Trunc { zxid: z(1, 1) },
        Packet::Snap { zxid: z(1, 1) },
        Packet::LeaderInfo {
            zxid: z(2, 0),
            protocol: PROTOCOL_VERSION,
        },
        Packet::AckEpoch {
            zxid: z(1, 1),
            current_epoch: -1,
        },
    ];
    for p in all {
        assert_eq!(
            Packet::from_wire(p.to_wire()),
            Ok(p.clone()),
            "{}",
            p.name()
        );
    }
    let short = zk_jute::QuorumPacket {
        packet_type: 11,
        zxid: 0,
        data: Some(Bytes::from_static(b"1234")),
        authinfo: vec![],
    };
    assert!(Packet::from_wire(short).is_err());
    let unknown = zk_jute::QuorumPacket {
        packet_type: 99,
        zxid: 0,
        data: None,
        authinfo: vec![],
    };
    assert!(Packet::from_wire(unknown).is_err());
    let _ = BTreeSet::<u64>::new();
}

#[test]
fn a_follower_older_than_the_window_gets_a_diff_from_the_log() {
    // quorum.md §3.4 case 5 (getProposalsFromTxnLog): the window holds the
    // last 3 txns, the follower is 5 behind; the log still has them.
    let mut cfg = lcfg(&[1, 2, 3]);
    cfg.commit_log_count = 3;
    let full = history(1, 9);
    let recent = full[6..].to_vec();
    let nodes = vec![
        Node::new(fcfg(1), history(1, 4), 1, 1),
        Node::new(fcfg(2), history(1, 9), 1, 1),
    ];
    let mut c = Cluster::new(cfg, start(z(1, 9), recent, (1, 1)), nodes);
    c.leader_log = full;
    c.connect_all();
    c.pump();
    assert_eq!(
        c.reads,
        vec![0],
        "only the follower behind the window needs the log"
    );
    assert!(c.snapshots_sent.is_empty(), "DIFF, not SNAP");
    assert_eq!(
        c.nodes[0].applied,
        (1..=9).map(|i| z(1, i)).collect::<Vec<_>>()
    );
    assert!(c.nodes[0].serving);
}

#[test]
fn without_the_log_a_follower_older_than_the_window_gets_a_snapshot() {
    let mut cfg = lcfg(&[1, 2, 3]);
    cfg.commit_log_count = 3;
    let full = history(1, 9);
    let recent = full[6..].to_vec();
    let nodes = vec![
        Node::new(fcfg(1), history(1, 4), 1, 1),
        Node::new(fcfg(2), history(1, 9), 1, 1),
    ];
    let mut c = Cluster::new(cfg, start(z(1, 9), recent, (1, 1)), nodes);
    // The log was purged below the follower's last txn.
    c.leader_log = full[5..].to_vec();
    c.connect_all();
    c.pump();
    assert_eq!(c.snapshots_sent, vec![0]);
}

#[test]
fn a_runtime_that_cannot_read_its_log_gets_a_snapshot_sent() {
    let mut cfg = lcfg(&[1, 2, 3]);
    cfg.commit_log_count = 3;
    let full = history(1, 9);
    let nodes = vec![
        Node::new(fcfg(1), history(1, 4), 1, 1),
        Node::new(fcfg(2), history(1, 9), 1, 1),
    ];
    let mut c = Cluster::new(cfg, start(z(1, 9), full[6..].to_vec(), (1, 1)), nodes);
    c.leader_log = full;
    c.log_readable = false;
    c.connect_all();
    c.pump();
    assert_eq!(c.snapshots_sent, vec![0]);
    assert!(c.nodes[0].serving);
}

#[test]
fn a_fresh_learner_is_not_diffed_from_a_log_that_does_not_reach_back() {
    // Found by zk-sim (seed 1512 with a purged log): a learner at zxid 0 (an
    // epoch's zxid 0) got a DIFF from the first logged txn onward and missed
    // the txns before it. The log must start at or below the learner's zxid
    // (Apache's getProposalsFromTxnLog); the runtime answers None otherwise.
    let mut cfg = lcfg(&[1, 2, 3]);
    cfg.commit_log_count = 3;
    let full = history(1, 9);
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), history(1, 9), 1, 1),
    ];
    let mut c = Cluster::new(cfg, start(z(1, 9), full[6..].to_vec(), (1, 1)), nodes);
    c.leader_log = full[5..].to_vec();
    c.connect_all();
    c.pump();
    assert_eq!(c.snapshots_sent, vec![0], "SNAP, not a DIFF with a hole");
}

#[test]
fn a_follower_that_never_acks_is_dropped_after_sync_limit() {
    // Leader.SyncLimitCheck: pings alone do not keep a follower whose oldest
    // un-acked proposal is older than syncLimit.
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.nodes[0].auto = false; // follower 1 never makes anything durable
    c.propose(1);
    c.pump();
    assert_eq!(
        c.leader_applied.len(),
        1,
        "follower 2 and the leader commit it"
    );
    for _ in 0..12 {
        c.leader_step(LeaderEvent::Tick);
        for n in &mut c.nodes {
            n.step(LearnerEvent::Tick);
        }
        c.pump();
    }
    assert!(
        c.closed.iter().any(|(conn, _)| *conn == 0),
        "{:?}",
        c.closed
    );
    assert!(
        !c.closed.iter().any(|(conn, _)| *conn == 1),
        "{:?}",
        c.closed
    );
}

#[test]
fn standalone_is_a_quorum_of_one_in_the_epoch_of_its_last_zxid() {
    let mut out = Vec::new();
    let mut l = Leader::standalone(1, z(0, 0), &mut out);
    assert_eq!(out, vec![LeaderCommand::Established { epoch: 0 }]);
    assert!(l.is_established());
    // A fresh server's first txn is 0x1 (ZooKeeper's standalone numbering).
    assert_eq!(l.next_zxid(), z(0, 1));
    for c in 1..=3 {
        let mut out = Vec::new();
        l.propose(z(0, c), txn(z(0, c)), &mut out).unwrap();
        assert_eq!(
            out,
            vec![LeaderCommand::Append {
                zxid: z(0, c),
                txn: txn(z(0, c))
            }]
        );
    }
    // Durable here is committed: applied in order, up to the durable mark.
    let mut out = Vec::new();
    l.step(LeaderEvent::LogDurable(z(0, 2)), &mut out);
    let applied: Vec<Zxid> = out
        .iter()
        .filter_map(|c| match c {
            LeaderCommand::Apply { zxid, .. } => Some(*zxid),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec![z(0, 1), z(0, 2)]);
    assert_eq!(l.committed(), z(0, 2));
    // A restart keeps the epoch; an exhausted counter moves to the next one.
    let mut out = Vec::new();
    let mut l = Leader::standalone(1, z(4, u32::MAX - 1), &mut out);
    assert_eq!(out, vec![LeaderCommand::Established { epoch: 4 }]);
    let mut out = Vec::new();
    l.propose(z(4, u32::MAX), txn(z(4, u32::MAX)), &mut out)
        .unwrap();
    assert_eq!(l.next_zxid(), z(5, 1));
    l.propose(z(5, 1), txn(z(5, 1)), &mut out).unwrap();
    let mut out = Vec::new();
    l.step(LeaderEvent::LogDurable(z(5, 1)), &mut out);
    assert_eq!(l.committed(), z(5, 1));
}

#[test]
fn a_sync_is_delivered_after_the_commits_before_it_are_applied() {
    // A client's sync at a follower whose log was slower than the leader's
    // quorum: the SYNC came after COMMIT(z), so the sync is answered only
    // after z is applied here (its watch events first), as Apache's
    // CommitProcessor orders them. Found by the differential test through
    // an ensemble: a child watch event came after the sync's answer.
    let mut c = three_fresh();
    c.connect_all();
    c.pump();
    c.nodes[0].auto = false;
    c.propose(1);
    c.pump();
    assert!(
        c.leader.committed() >= z(1, 1),
        "committed by the leader and node 1"
    );
    c.leader_step(LeaderEvent::Sync(0));
    c.pump();
    assert!(
        !c.nodes[0].events.iter().any(|e| e.starts_with("deliver")),
        "{:?}",
        c.nodes[0].events
    );
    c.nodes[0].flush();
    let at = c.nodes[0].events.len() - 2;
    assert_eq!(
        c.nodes[0].events[at..],
        [format!("apply {}", z(1, 1)), "deliver SYNC".to_string()]
    );
}

#[test]
fn a_synced_learner_applies_with_uptodate_before_it_serves() {
    // zk-sim seed 753361: an observer applied its DIFF's txns once it had
    // acked NEWLEADER, but that leader's epoch never established and the
    // next leader did not have them (a txn applied somewhere that the
    // ensemble never committed). Apache's learner applies them after
    // UPTODATE; so does ours, before it starts serving.
    let mut n = Node::new(fcfg(1), history(1, 1), 1, 1);
    n.step(LearnerEvent::Connected);
    n.step(LearnerEvent::Packet(Packet::LeaderInfo {
        zxid: z(2, 0),
        protocol: PROTOCOL_VERSION,
    }));
    n.step(LearnerEvent::Packet(Packet::Diff { zxid: z(1, 3) }));
    feed_committed(&mut n, 1, 2..=3);
    n.step(LearnerEvent::Packet(Packet::NewLeader {
        zxid: z(2, 0),
        config: Bytes::new(),
    }));
    assert!(n.sent.contains(&Packet::Ack { zxid: z(2, 0) }));
    assert_eq!(n.applied, vec![z(1, 1)], "nothing applied before UPTODATE");
    let cmds = n.step(LearnerEvent::Packet(Packet::UpToDate));
    assert_eq!(n.applied, vec![z(1, 1), z(1, 2), z(1, 3)]);
    let serve = cmds
        .iter()
        .position(|c| matches!(c, LearnerCommand::StartServing { .. }))
        .expect("serving");
    assert!(
        cmds[..serve]
            .iter()
            .filter(|c| matches!(c, LearnerCommand::Apply { .. }))
            .count()
            == 2,
        "{cmds:?}"
    );
    // The committed sync txns are not acked one by one.
    assert!(
        !n.sent
            .iter()
            .any(|p| matches!(p, Packet::Ack { zxid } if zxid.counter() != 0)),
        "{:?}",
        n.sent
    );
}

#[test]
fn a_newleader_ack_leaves_with_its_connection_until_the_epoch_is_established() {
    // zk-sim seed 785790: leader 5 of epoch 3 kept server 4's NEWLEADER ACK
    // after 4 left, went on to lead epoch 4 and commit writes; a third ACK
    // then completed a "quorum" for epoch 3, whose leader lacked them.
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
        Node::new(fcfg(4), vec![], 0, 0),
    ];
    let mut c = Cluster::new(
        lcfg(&[1, 2, 3, 4, 5]),
        start(Zxid::ZERO, vec![], (0, 0)),
        nodes,
    );
    for n in &mut c.nodes {
        n.auto = false;
    }
    c.connect_all();
    c.pump();
    for n in &mut c.nodes {
        n.step(LearnerEvent::AcceptedEpochDurable(1));
    }
    c.pump();
    // Each learner has NEWLEADER and waits for its currentEpoch write.
    c.nodes[0].step(LearnerEvent::CurrentEpochDurable(1));
    c.pump();
    c.leader_step(LeaderEvent::Closed(0));
    c.nodes[1].step(LearnerEvent::CurrentEpochDurable(1));
    c.pump();
    assert_eq!(c.established, None, "an ACK that left still counted");
    c.nodes[2].step(LearnerEvent::CurrentEpochDurable(1));
    c.pump();
    assert_eq!(c.established, Some(1));
}

#[test]
fn a_learner_at_the_leaders_config_version_joins_and_a_later_one_is_refused() {
    // A configuration read from a dynamic config file has the version its
    // name gives: the leader was refusing every learner of a version above
    // 0, its learners sent 0. As ZooKeeper's LearnerHandler: a learner is
    // refused only when its version is ahead of the leader's.
    const V: i64 = 0x1_0000_0000;
    let versioned = |sid| LearnerConfig {
        config_version: V,
        ..fcfg(sid)
    };
    let nodes = vec![
        Node::new(versioned(1), vec![], 0, 0),
        Node::new(versioned(2), vec![], 0, 0),
    ];
    let cfg = LeaderConfig {
        config_version: V,
        ..lcfg(&[1, 2, 3])
    };
    let mut c = Cluster::new(cfg, start(Zxid::ZERO, vec![], (0, 0)), nodes);
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(1), "closed: {:?}", c.closed);
    // A third connection from server 1 whose version is ahead.
    c.to_learner.push(VecDeque::new());
    c.leader_step(LeaderEvent::Connected(2));
    c.leader_step(LeaderEvent::Packet(
        2,
        Packet::FollowerInfo {
            zxid: z(1, 0),
            info: zk_jute::LearnerInfo {
                server_id: 1,
                protocol_version: PROTOCOL_VERSION,
                config_version: V + 1,
            },
        },
    ));
    assert!(
        c.closed
            .iter()
            .any(|(conn, r)| *conn == 2 && r.contains("ahead of ours (0x100000000)")),
        "{:?}",
        c.closed
    );
}

#[test]
fn with_reconfig_a_version_0_config_takes_the_epochs_first_zxid() {
    // ZOOKEEPER-1783 (reconfigEnabled): NEWLEADER carries the members with
    // the new epoch's first zxid as the version; it is the leader's once the
    // epoch is established, and each learner hears of it at UPTODATE. A
    // learner at that version joins later; one ahead of it is refused.
    let members = Bytes::from_static(b"server.1=a:1:2:participant\nserver.2=b:1:2:participant\n");
    let cfg = LeaderConfig {
        members: members.clone(),
        version_config: true,
        ..lcfg(&[1, 2, 3])
    };
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    let mut c = Cluster::new(cfg, start(Zxid::ZERO, vec![], (0, 0)), nodes);
    assert_eq!(c.leader.config_version(), 0);
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(1));
    assert_eq!(c.leader.config_version(), 0x1_0000_0000);
    let expected = format!(
        "{}version=100000000",
        std::str::from_utf8(&members).unwrap()
    );
    for n in &c.nodes {
        assert!(n.serving);
        assert_eq!(n.leader_config.as_deref(), Some(expected.as_bytes()));
    }
    // Not again: a configuration with a version keeps it at the next epoch.
    let cfg = LeaderConfig {
        members,
        version_config: true,
        config_version: 0x1_0000_0000,
        ..lcfg(&[1, 2, 3])
    };
    let nodes = vec![
        Node::new(
            LearnerConfig {
                config_version: 0x1_0000_0000,
                ..fcfg(1)
            },
            vec![],
            1,
            1,
        ),
        Node::new(
            LearnerConfig {
                config_version: 0x1_0000_0000,
                ..fcfg(2)
            },
            vec![],
            1,
            1,
        ),
    ];
    let mut c = Cluster::new(cfg, start(Zxid::ZERO, vec![], (1, 1)), nodes);
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(2));
    assert_eq!(c.leader.config_version(), 0x1_0000_0000);
    assert!(
        c.nodes[0]
            .leader_config
            .as_deref()
            .unwrap()
            .ends_with(b"version=100000000")
    );
}

#[test]
fn a_quorum_of_one_voter_establishes_alone() {
    // standaloneEnabled=false with one server: the leader's own epoch ack
    // is a quorum (Leader.waitForEpochAck counts the leader). It waited for
    // learners' ACKEPOCH that never come and gave up after initLimit.
    let mut c = Cluster::new(lcfg(&[3]), start(z(2, 5), vec![], (2, 2)), vec![]);
    c.pump();
    assert_eq!(c.established, Some(3), "looking: {:?}", c.looking);
    assert_eq!(c.leader_epochs, (3, 3));
    c.propose(2);
    assert_eq!(c.leader_applied.last(), Some(&z(3, 2)));
}

/// COMMITANDACTIVATE and INFORMANDACTIVATE as Apache's leader sends them.
#[test]
fn activate_packets_carry_the_designated_leader_first() {
    // Leader.commitAndActivate / buildInformAndActivePacket: the designated
    // leader as 8 big-endian bytes, then (INFORMANDACTIVATE) the txn.
    let caa = zk_jute::QuorumPacket {
        packet_type: 9,
        zxid: z(1, 3).as_i64(),
        data: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 2])),
        authinfo: vec![],
    };
    assert_eq!(
        Packet::from_wire(caa),
        Ok(Packet::CommitAndActivate {
            zxid: z(1, 3),
            leader: 2
        })
    );
    let iaa = zk_jute::QuorumPacket {
        packet_type: 19,
        zxid: z(1, 3).as_i64(),
        data: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 2, 7, 7])),
        authinfo: vec![],
    };
    assert_eq!(
        Packet::from_wire(iaa),
        Ok(Packet::InformAndActivate {
            zxid: z(1, 3),
            leader: 2,
            txn: Bytes::from_static(&[7, 7]),
        })
    );
    for ty in [9, 19] {
        let short = zk_jute::QuorumPacket {
            packet_type: ty,
            zxid: 1,
            data: Some(Bytes::from_static(&[0, 0, 0, 2])),
            authinfo: vec![],
        };
        assert_eq!(
            Packet::from_wire(short).unwrap_err().reason,
            "no designated leader"
        );
    }
}

/// A fresh ensemble of voters {1, 2, 3} (leader 3) with followers 1, 2 and
/// 4 (not a voter) and observer 5, established.
fn reconfig_cluster() -> Cluster {
    let mut obs = fcfg(5);
    obs.observer = true;
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
        Node::new(fcfg(4), vec![], 0, 0),
        Node::new(obs, vec![], 0, 0),
    ];
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), start(Zxid::ZERO, vec![], (0, 0)), nodes);
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(1));
    c
}

fn new_config(voters: &[u64]) -> NewConfig {
    NewConfig {
        voters: voters.iter().copied().collect(),
        members: Bytes::from(format!("members {voters:?}\n")),
    }
}

impl Cluster {
    fn propose_reconfig(&mut self, voters: &[u64]) -> Result<Zxid, ProposeError> {
        let zx = self.leader.next_zxid();
        let mut out = Vec::new();
        self.leader
            .propose_reconfig(zx, txn(zx), new_config(voters), &mut out)?;
        self.run_leader(out);
        Ok(zx)
    }
}

#[test]
fn a_follower_outside_the_voters_gets_proposals_but_never_counts() {
    // ZK-2959 still holds (only voters count), but a follower that is no
    // voter is one of ZooKeeper's forwarding followers: PROPOSAL, COMMIT,
    // and its ACKs go unheeded; a reconfig may make it a voter.
    let mut c = reconfig_cluster();
    c.nodes[0].auto = false;
    c.nodes[1].auto = false;
    c.propose(1);
    c.pump();
    assert!(c.trace[2].contains(&Packet::Proposal {
        zxid: z(1, 1),
        txn: txn(z(1, 1))
    }));
    assert!(
        c.leader_applied.is_empty(),
        "the non-voter's ACK is no quorum with the leader"
    );
    c.nodes[0].flush();
    c.pump();
    assert_eq!(c.leader_applied, vec![z(1, 1)]);
    assert_eq!(c.nodes[2].applied, vec![z(1, 1)], "it applies on COMMIT");
}

#[test]
fn a_reconfig_needs_a_quorum_of_the_old_and_the_new_voters() {
    // ZooKeeper's reconfig proposal carries two quorum verifiers; so does
    // every proposal made while it is pending. Old {1, 2, 3}, new {3, 4, 5}
    // (5 observes: no ack): the new quorum needs 4 besides the leader.
    let mut c = reconfig_cluster();
    assert!(
        !c.leader.quorum_synced(&[3, 5, 6].into()),
        "5 observes, 6 is absent"
    );
    assert!(c.leader.quorum_synced(&[3, 4, 5].into()));
    c.nodes[2].auto = false;
    let r = c.propose_reconfig(&[3, 4, 5]).unwrap();
    assert!(c.leader.reconfig_pending());
    assert_eq!(
        c.propose_reconfig(&[1, 2, 3]),
        Err(ProposeError::ReconfigInProgress)
    );
    c.propose(1);
    c.pump();
    assert!(
        c.leader_applied.is_empty(),
        "1 and 2 acked: a quorum of the old voters only"
    );
    c.nodes[2].flush();
    c.pump();
    assert_eq!(c.leader_applied, vec![r, r.next()]);
    assert!(!c.leader.reconfig_pending());
    assert_eq!(c.leader.config_version(), r.as_i64());
    for i in 0..3 {
        assert!(
            c.trace[i].contains(&Packet::CommitAndActivate { zxid: r, leader: 3 }),
            "follower {i}"
        );
    }
    assert!(c.trace[3].contains(&Packet::InformAndActivate {
        zxid: r,
        leader: 3,
        txn: txn(r)
    }));
    // From now on the new voters' quorum decides: 4 and the leader, not 1, 2.
    c.nodes[2].auto = false;
    c.propose(1);
    c.pump();
    assert_eq!(c.leader_applied.len(), 2, "1 and 2 are no longer voters");
    c.nodes[2].flush();
    c.pump();
    assert_eq!(c.leader_applied.len(), 3);
}

#[test]
fn a_reconfig_that_removes_the_leader_designates_an_acking_voter_and_steps_down() {
    // getDesignatedLeader: the leader stays if it is a new voter, else one
    // of the new voters that acked the reconfig; the old leader commits
    // nothing after it (allowedToCommit = false).
    let mut c = reconfig_cluster();
    c.nodes[0].auto = false;
    c.nodes[2].auto = false;
    let r = c.propose_reconfig(&[1, 2, 4]).unwrap();
    c.propose(1);
    c.pump();
    assert!(
        c.leader_applied.is_empty(),
        "of the new voters only 2 acked (the leader is none of them)"
    );
    c.nodes[2].flush();
    c.pump();
    assert_eq!(c.leader_applied, vec![r], "nothing after the reconfig");
    let designated = c.trace[1]
        .iter()
        .find_map(|p| match p {
            Packet::CommitAndActivate { zxid, leader } if *zxid == r => Some(*leader),
            _ => None,
        })
        .expect("COMMITANDACTIVATE");
    assert_eq!(designated, 2, "the first new voter that acked");
    // The activation is on its way; nothing more commits or is proposed
    // here, and the next tick steps down.
    assert!(!c.leader.is_done());
    c.pump();
    assert_eq!(c.leader_applied, vec![r], "1's ack commits nothing now");
    let zx = c.leader.next_zxid();
    assert_eq!(
        c.leader.propose(zx, txn(zx), &mut Vec::new()),
        Err(ProposeError::NotLeading)
    );
    c.leader_step(LeaderEvent::Tick);
    assert!(c.leader.is_done());
    assert!(c.looking.as_deref().is_some_and(|w| w.contains("no voter")));
}

#[test]
fn a_reconfig_of_the_history_needs_its_voters_to_establish_and_is_current_then() {
    // ZooKeeper's last-seen verifier: a leader whose log holds a reconfig it
    // never saw committed (old voters {1, 2, 3}, new {3, 4, 5}) needs a
    // quorum of both for its epoch; NEWLEADER carries the new members, and
    // from the establishment on the new voters decide.
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
        Node::new(fcfg(4), vec![], 0, 0),
    ];
    let recent = history(1, 3);
    let r = z(1, 3);
    let mut st = start(r, recent, (1, 1));
    st.pending = Some((r, new_config(&[3, 4, 5])));
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), st, nodes);
    for i in 0..2 {
        c.leader_step(LeaderEvent::Connected(i as Conn));
        c.nodes[i].step(LearnerEvent::Connected);
    }
    c.pump();
    assert_eq!(c.established, None, "1 and 2 are no quorum of {{3, 4, 5}}");
    c.leader_step(LeaderEvent::Connected(2));
    c.nodes[2].step(LearnerEvent::Connected);
    c.pump();
    assert_eq!(c.established, Some(2));
    assert_eq!(c.leader.config_version(), r.as_i64());
    assert_eq!(
        c.nodes[0].leader_config.as_deref(),
        Some(&b"members [3, 4, 5]\nversion=100000003"[..])
    );
    c.nodes[2].auto = false;
    c.propose(1);
    c.pump();
    assert_eq!(c.leader_applied.len(), 3, "1 and 2 acked: no new quorum");
    c.nodes[2].flush();
    c.pump();
    assert_eq!(c.leader_applied.len(), 4);
}

#[test]
fn a_leader_whose_history_reconfig_removes_it_steps_down_once_established() {
    // The reconfig commits with the epoch; its voters elect the next leader.
    let nodes = vec![
        Node::new(fcfg(1), vec![], 0, 0),
        Node::new(fcfg(2), vec![], 0, 0),
    ];
    let r = z(1, 2);
    let mut st = start(r, history(1, 2), (1, 1));
    st.pending = Some((r, new_config(&[1, 2])));
    let mut c = Cluster::new(lcfg(&[1, 2, 3]), st, nodes);
    c.connect_all();
    c.pump();
    assert_eq!(c.established, Some(2));
    assert!(
        c.nodes.iter().all(|n| n.serving),
        "the history reached them"
    );
    assert!(
        c.nodes
            .iter()
            .all(|n| n.leader_config.as_deref() == Some(&b"members [1, 2]\nversion=100000002"[..])),
        "and the configuration that removes the leader"
    );
    assert!(!c.leader.is_done());
    c.leader_step(LeaderEvent::Tick);
    assert!(c.leader.is_done());
    assert!(c.looking.as_deref().is_some_and(|w| w.contains("no voter")));
}
