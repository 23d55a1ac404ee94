//! The Zab role hosted by the sequencer (ensemble mode): the sequencer is the
//! runtime of a [`zk_zab::Leader`] or a [`zk_zab::Learner`] (zk-zab's
//! DESIGN.md, "The runtime's duties"; zk-sim's `ensemble` module is the
//! reference runtime this one follows).
//!
//! * Events come as [`QuorumIn`] (the election's decision, packets, ticks)
//!   and from the log's durability callbacks ([`DurableMark`], one mark per
//!   log generation: a TRUNC or a SNAP's snapshot starts a new one, so older
//!   reports are dropped).
//! * Commands run in order on this thread, each before the next event is fed
//!   (an epoch file is written synchronously: two writes per election).
//!   Packets leave as [`QuorumOut`] through the outbox.
//! * A role starts on a quiet disk: the log flushed, the tree = snapshot +
//!   the whole log.
//! * The leader proposes client writes with [`zk_zab::Leader::propose`]; a
//!   learner forwards them as REQUEST (quorum.md §3.8) and answers its
//!   client when it applies the txn with that (session, cxid).
//!
//! A peer that breaks the protocol ends the role (the cores return
//! `GoLooking`), never a panic.

/// Bytes of a SNAP body's piece: serialized, then passed on to the quorum
/// thread while the walk goes on.
const SNAP_PIECE: usize = 4 << 20;

/// The most log a DIFF from the on-disk log may carry (beyond it a learner
/// gets SNAP). Apache compares with a third of the newest snapshot's size
/// (`zookeeper.snapshotSizeFactor`); a fixed bound keeps a slow learner from
/// pinning the leader's memory.
const LOG_DIFF_LIMIT: usize = 64 << 20;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::{error, info, warn};
use zk_jute::{
    CreateSessionTxn, ErrorCode, ErrorTxn, Jute, OpCode, Reader, Request, TxnBody, Zxid,
};
use zk_tree::Tree;
use zk_zab::{
    Conn, Leader, LeaderCommand, LeaderConfig, LeaderEvent, LeaderStart, Learner, LearnerCommand,
    LearnerConfig, LearnerEvent, LearnerStart, Packet,
};

use super::moves::{Owner, Owners, Revalidations};
use super::{DurableMark, Origin, Proposal, Sequencer};
use crate::control::Mode;
use crate::msg::{CoreMsg, Ctx, LoopMsg, Outbox, QuorumIn, QuorumOut};
use crate::snap_feed::SnapFeed;
use crate::storage::{load_tree, replay, take_snapshot};

/// The active role.
pub(super) enum Role {
    /// Leading an epoch (established or not yet).
    Leading(Box<Leading>),
    /// Following or observing a leader.
    Learning(Box<Learning>),
}

pub(super) struct Learning {
    core: Learner,
    observer: bool,
    /// Client handshakes waiting for the leader's REVALIDATE answer.
    pub(super) revalidations: Revalidations,
    /// Whether the NEWLEADER ACK (the first ACK of the epoch) went out.
    acked_newleader: bool,
    /// When ACKEPOCH went out: the sync with the leader starts (Apache's
    /// `follower_sync_time` / `observer_sync_time` run from there to serving).
    sync_started: Option<std::time::Instant>,
    /// The txns of PROPOSALs and INFORMs received and not yet applied, in
    /// zxid order, decoded on receipt (their COMMIT applies them as they are).
    received: VecDeque<super::digests::Received>,
    /// Reconfigs committed with COMMITANDACTIVATE (INFORMANDACTIVATE) and
    /// not yet applied: (zxid, designated leader), activated once applied.
    activations: VecDeque<(Zxid, i64)>,
}

impl Learning {
    /// The decoded txn `zxid` (older ones, never to be applied, are dropped).
    fn take_received(&mut self, zxid: i64) -> Option<super::digests::Received> {
        while let Some(r) = self.received.front() {
            if r.hdr.zxid > zxid {
                return None;
            }
            let r = self.received.pop_front()?;
            if r.hdr.zxid == zxid {
                return Some(r);
            }
        }
        None
    }
}

/// What a role's start finds on its quiet disk: the log's last zxid, the
/// acceptedEpoch and currentEpoch, and a logged reconfig never activated.
type QuietDisk = (Zxid, u32, u32, Option<(Zxid, Bytes)>);

pub(super) struct Leading {
    pub(super) core: Leader,
    /// A SNAP packet waiting for its body ([`LeaderCommand::SendSnapshot`]).
    held_snap: Option<(Conn, Zxid)>,
    /// Which server each session is attached to (SESSIONMOVED).
    pub(super) owners: Owners,
    /// The learner gauges last published to mntr, and when the epoch was
    /// established.
    gauges: (zk_zab::LearnerCounts, Option<std::time::Instant>),
    /// Learners being synced by DIFF or TRUNC: (kind, zxid, txns sent so
    /// far), logged when their NEWLEADER goes out.
    syncing: hashbrown::HashMap<Conn, (&'static str, Zxid, usize)>,
}

/// An event for whichever role is active.
enum RoleEvent {
    Leader(LeaderEvent),
    Learner(LearnerEvent),
}

/// The largest SNAP body string or buffer accepted (Apache's jute.maxbuffer
/// default for a snapshot read).
const SNAP_MAX_LEN: usize = zk_tree::APACHE_MAX_LEN;

impl Sequencer {
    /// Where the role's packets go (the quorum thread, or a test's router).
    pub(crate) fn set_outbox(&mut self, outbox: Outbox) {
        self.outbox = Some(outbox);
    }

    /// Queues a packet for the quorum thread, woken at the end of the
    /// batch ([`Sequencer::wake_quorum`]).
    pub(super) fn out(&self, m: QuorumOut) {
        if let Some(o) = &self.outbox {
            o.send(m);
        }
    }

    /// Wakes the quorum thread for what [`Sequencer::out`] queued.
    pub(super) fn wake_quorum(&self) {
        if let Some(o) = &self.outbox {
            o.wake();
        }
    }

    /// Whether this server observes (a learner connected with OBSERVERINFO).
    pub(super) fn is_observing(&self) -> bool {
        matches!(&self.role, Some(Role::Learning(l)) if l.observer)
    }

    pub(super) fn is_learning(&self) -> bool {
        matches!(self.role, Some(Role::Learning(_)))
    }

    /// Whether this server prepares and proposes writes, expires sessions
    /// and removes containers: the leader of an established epoch
    /// (standalone's from the start; quorum.md §6: only the leader).
    pub(super) fn proposes(&self) -> bool {
        match &self.role {
            Some(Role::Leading(l)) => l.core.is_established(),
            Some(Role::Learning(_)) | None => false,
        }
    }

    /// The zxid the next prepared txn gets (only a leader prepares txns).
    pub(super) fn next_zxid(&self) -> Zxid {
        match &self.role {
            Some(Role::Leading(l)) => l.core.next_zxid(),
            _ => Zxid::from(self.shared.tree.last_processed_zxid()).next(),
        }
    }

    /// Before handling `batch`: brings into the CPU cache the nodes its
    /// messages will look up ([`Tree::warm`]), all at once so that their
    /// cache misses overlap instead of stalling one look-up after another
    /// (a tenth of a loaded server's CPU on a 10k-node tree). A learner
    /// warms the txns its COMMITs will apply (the oldest received); a leader
    /// the writes it will prepare (its clients' and its learners' requests)
    /// and as many of its oldest proposals as the batch carries ACKs (each
    /// commits at most one).
    pub(super) fn role_warm(&self, batch: &VecDeque<CoreMsg>) {
        if batch.len() < 2 {
            return;
        }
        // The batch's messages of one kind: each applies (COMMIT) or may
        // commit (ACK) the oldest txn not yet applied.
        let count = |kind: fn(&Packet) -> bool| {
            batch
                .iter()
                .filter(|m| match m {
                    CoreMsg::Quorum(QuorumIn::FromLeader(p) | QuorumIn::FromLearner(_, p)) => {
                        kind(p)
                    }
                    _ => false,
                })
                .count()
        };
        let tree = &self.shared.tree;
        match &self.role {
            Some(Role::Learning(l)) => {
                let commits = count(|p| matches!(p, Packet::Commit { .. }));
                let bodies = l.received.iter().take(commits).map(|r| &r.body);
                tree.warm(bodies.filter_map(TxnBody::path).take(WARM_MAX));
            }
            Some(Role::Leading(_)) => {
                let acks = count(|p| matches!(p, Packet::Ack { .. }));
                let bodies = self.proposals.iter().take(acks).map(|p| &p.body);
                let requests = batch.iter().filter_map(|m| match m {
                    CoreMsg::Request { req, .. } => write_path(req),
                    CoreMsg::Quorum(QuorumIn::FromLearner(_, Packet::Request { data, .. })) => {
                        forwarded_path(data)
                    }
                    _ => None,
                });
                let paths = bodies.filter_map(TxnBody::path).chain(requests);
                tree.warm(paths.take(WARM_MAX));
            }
            None => {}
        }
    }

    pub(super) fn on_quorum(&mut self, q: QuorumIn) {
        if self.failed {
            return;
        }
        let ev = match q {
            QuorumIn::Lead(cfg) => return self.start_leading(cfg),
            QuorumIn::Follow { cfg, leader } => {
                // An observer's mntr names the server it syncs from.
                self.shared.control.set_learner_master(leader);
                return self.start_learning(cfg);
            }
            QuorumIn::LearnerConnected(c) => RoleEvent::Leader(LeaderEvent::Connected(c)),
            QuorumIn::FromLearner(c, p) => RoleEvent::Leader(LeaderEvent::Packet(c, p)),
            QuorumIn::LearnerClosed(c) => RoleEvent::Leader(LeaderEvent::Closed(c)),
            QuorumIn::LeaderConnected => RoleEvent::Learner(LearnerEvent::Connected),
            QuorumIn::FromLeader(p) => {
                // A reconfig's commit (inform) is one to the learner core;
                // its activation waits for the txn's apply (`role_apply`).
                let p = match p {
                    Packet::CommitAndActivate { zxid, leader } => {
                        self.note_activation(zxid, leader);
                        Packet::Commit { zxid }
                    }
                    Packet::InformAndActivate { zxid, leader, txn } => {
                        self.note_activation(zxid, leader);
                        Packet::Inform { zxid, txn }
                    }
                    p => p,
                };
                let (p, received) = match super::digests::decode_received(p) {
                    Ok(v) => v,
                    Err(why) => return self.end_role(why),
                };
                if let Some(mut r) = received {
                    if !self.checks_digests() {
                        r.digest = None;
                    }
                    if let Some(Role::Learning(l)) = &mut self.role {
                        l.received.push_back(r);
                    }
                }
                RoleEvent::Learner(LearnerEvent::Packet(p))
            }
            QuorumIn::Snap { zxid, feed } => {
                if !self.is_learning() {
                    return;
                }
                if let Err(why) = self.load_snap(zxid, feed) {
                    return self.end_role(format!("the leader's SNAP 0x{zxid:x}: {why}"));
                }
                RoleEvent::Learner(LearnerEvent::Packet(Packet::Snap { zxid }))
            }
            QuorumIn::LeaderClosed => {
                if self.is_learning() {
                    self.end_role("the connection to the leader closed".into());
                }
                return;
            }
            QuorumIn::Tick => match &self.role {
                Some(Role::Leading(_)) => RoleEvent::Leader(LeaderEvent::Tick),
                Some(Role::Learning(_)) => RoleEvent::Learner(LearnerEvent::Tick),
                None => return,
            },
            QuorumIn::PeerConfig(text) => return self.peer_config(&text),
        };
        self.role_step(ev);
    }

    // ---- role start and end ----

    /// A role starts on a quiet disk (DESIGN.md): everything appended is
    /// durable, and the tree holds the whole log. Returns the log's last
    /// zxid and the epochs, and a reconfig the log holds that was never
    /// activated here (`config_version::logged_reconfig_in`), or why the role cannot
    /// start.
    fn quiet_disk(&mut self) -> Result<QuietDisk, String> {
        self.ensemble = true;
        self.drop_in_flight("a new role starts");
        // A fuzzy snapshot still being written would catch the replay below
        // (txns a TRUNC may remove) under an older key: let it finish first.
        while self.snapshots.running() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.storage
            .log
            .flush()
            .map_err(|e| format!("cannot flush the log: {e}"))?;
        let tree_zxid = Zxid::from(self.shared.tree.last_processed_zxid());
        // Txns logged and never applied (a learner's uncommitted proposals):
        // the tree is snapshot + the whole log, as Apache reloads it.
        replay(
            &self.storage.log,
            &self.shared.tree,
            tree_zxid.as_u64() + 1,
            &self.shared.config.data_log_dir,
        )
        .map_err(|e| e.to_string())?;
        self.sessions_from_tree();
        let logged = super::config_version::logged_reconfig_in(&self.shared);
        self.last_reconfig.clone_from(&logged);
        self.refresh_config_node();
        #[cfg(debug_assertions)]
        self.check_tree_is_the_disks()?;
        let last = Zxid::from(self.shared.tree.last_processed_zxid());
        self.shared.control.set_last_zxid(last.as_i64());
        self.new_log_generation();
        let epochs = self.epochs.load(last).map_err(|e| e.to_string())?;
        let epoch = |e: i64| u32::try_from(e).map_err(|_| format!("epoch {e} out of range"));
        Ok((
            last,
            epoch(epochs.accepted)?,
            epoch(epochs.current)?,
            logged,
        ))
    }

    /// Standalone: the one-voter leader of the epoch of `last`, serving at
    /// once (the server marks itself serving once it listens).
    pub(super) fn start_standalone(&mut self, last: Zxid) {
        let mut out = Vec::new();
        let core = Leader::standalone(self.my_id, last, &mut out);
        self.lead(core, out);
    }

    /// The leader role around `core`, and its first commands carried out.
    fn lead(&mut self, core: Leader, out: Vec<LeaderCommand>) {
        self.role = Some(Role::Leading(Box::new(Leading {
            core,
            held_snap: None,
            owners: Owners::new(),
            gauges: Default::default(),
            syncing: hashbrown::HashMap::new(),
        })));
        let mut out = out;
        // The start's commands may report back at once (a quorum of one
        // voter persists its acceptedEpoch from `Leader::new`).
        for ev in self.run_leader(&mut out) {
            self.role_step(ev);
        }
    }

    fn start_leading(&mut self, cfg: LeaderConfig) {
        self.role_starts();
        self.shared.control.reset_proposal_sizes();
        let (last, accepted, current, logged) = match self.quiet_disk() {
            Ok(v) => v,
            Err(why) => return self.end_role(format!("cannot lead: {why}")),
        };
        let pending = logged.and_then(|(zxid, text)| {
            let new = self.new_config_of(&text)?;
            info!("leading with the reconfig 0x{zxid:x} of the log pending: its voters {:?} must follow too", new.voters);
            Some((zxid, new))
        });
        let recent = match self.recent_txns(cfg.commit_log_count) {
            Ok(r) => r,
            Err(why) => return self.end_role(format!("cannot lead: {why}")),
        };
        info!(
            "leading: last zxid 0x{last:x}, acceptedEpoch {accepted}, currentEpoch {current}, {} txns kept for DIFF",
            recent.len()
        );
        let start = LeaderStart {
            accepted_epoch: accepted,
            current_epoch: current,
            applied: last,
            recent,
            tail: Vec::new(),
            pending,
        };
        let mut out = Vec::new();
        let core = Leader::new(cfg, start, &mut out);
        self.lead(core, out);
    }

    fn start_learning(&mut self, cfg: LearnerConfig) {
        self.role_starts();
        let (last, accepted, current, _) = match self.quiet_disk() {
            Ok(v) => v,
            Err(why) => return self.end_role(format!("cannot follow: {why}")),
        };
        info!(
            "{}: last zxid 0x{last:x}, acceptedEpoch {accepted}, currentEpoch {current}",
            if cfg.observer {
                "observing"
            } else {
                "following"
            }
        );
        let start = LearnerStart {
            last_zxid: last,
            accepted_epoch: accepted,
            current_epoch: current,
            snap_from_epoch: self.snap_from_epoch,
        };
        self.role = Some(Role::Learning(Box::new(Learning {
            core: Learner::new(cfg, start),
            observer: cfg.observer,
            revalidations: Revalidations::new(),
            acked_newleader: false,
            sync_started: None,
            received: VecDeque::new(),
            activations: VecDeque::new(),
        })));
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report_touches(true);
    }

    /// The last `n` txns of the log, oldest first (the leader's DIFF window).
    /// Only the tail is read (the counter is contiguous within an epoch): a
    /// window that would reach into the previous epoch starts at this
    /// epoch's first txn instead, and older learners are synced from the
    /// on-disk log (`ReadLog`) or by SNAP. Reading the whole log here made a
    /// failover after a busy hour take seconds.
    fn recent_txns(&self, n: usize) -> Result<Vec<(Zxid, Bytes)>, String> {
        let mut recent = VecDeque::with_capacity(n.min(4096));
        let Some(last) = self.storage.log.last_key().map(Zxid::from) else {
            return Ok(Vec::new());
        };
        let back = u32::try_from(n).unwrap_or(u32::MAX);
        let from = Zxid::new(last.epoch(), last.counter().saturating_sub(back)).as_u64();
        for item in self.storage.log.iter_from(from) {
            let (key, payload) = item.map_err(|e| format!("cannot read the log: {e}"))?;
            if recent.len() == n {
                recent.pop_front();
            }
            if n > 0 {
                recent.push_back((Zxid::from(key), Bytes::from(payload)));
            }
        }
        Ok(recent.into())
    }

    /// A fresh [`DurableMark`]: the previous log generation's reports are
    /// dropped (they may name zxids a TRUNC removed).
    fn new_log_generation(&mut self) {
        self.durable = Arc::new(DurableMark::default());
        self.role_durable = Zxid::ZERO;
        // Records appended before it and not yet covered by a callback
        // belong to the old generation: a callback armed now would report
        // them (zxids a TRUNC may have removed) to the new one.
        self.unarmed = None;
    }

    /// Forgets the writes in flight (their clients are disconnected: they
    /// retry against the next role, as Apache's clients do when their server
    /// goes LOOKING).
    fn drop_in_flight(&mut self, why: &str) {
        let mut conns: Vec<u64> = Vec::new();
        for p in self.proposals.drain(..) {
            match p.origin {
                Origin::Client(ctx, _) => conns.push(ctx.conn),
                Origin::Connect { conn, .. } => conns.push(conn),
                Origin::Internal => {}
            }
        }
        conns.extend(self.syncs.drain(..).map(|(ctx, _)| ctx.conn));
        conns.extend(self.synced.drain().map(|(_, (ctx, _))| ctx.conn));
        for (_, origin) in self.forwarded.drain() {
            match origin {
                Origin::Client(ctx, _) => conns.push(ctx.conn),
                Origin::Connect { conn, .. } => conns.push(conn),
                Origin::Internal => {}
            }
        }
        if !conns.is_empty() {
            info!(
                "{why}: closing {} client connections with writes in flight",
                conns.len()
            );
        }
        for conn in conns {
            self.send(conn, LoopMsg::Close { conn });
        }
        self.order = super::SessionOrder::default();
        self.overlay = zk_tree::PendingChanges::new();
    }

    /// Leader: the `TxnDigest` a proposal of `body` carries: the tree digest
    /// once every txn prepared so far, this one included, is applied; none
    /// for an error txn (as ZooKeeper's prep) or with digest.enabled=false.
    fn txn_digest(&self, body: &TxnBody) -> Option<i64> {
        if !self.shared.config.digest_enabled || matches!(body, TxnBody::Error(_)) {
            return None;
        }
        let d = self.overlay.txn_digest(&self.shared.tree);
        // Tests: show that followers check what they are sent.
        Some(if crate::failpoint::armed("leader-wrong-digest") {
            d.wrapping_add(1)
        } else {
            d
        })
    }

    /// Learner: whether received digests are checked: while serving (the
    /// txns of a sync replay over a snapshot that may be fuzzy are not).
    fn checks_digests(&self) -> bool {
        self.shared.config.digest_enabled
            && matches!(&self.role, Some(Role::Learning(l)) if l.core.is_serving())
    }

    /// GoLooking: stop serving, report to whoever runs the election.
    pub(super) fn end_role(&mut self, reason: String) {
        warn!("leaving the role, going LOOKING: {reason}");
        self.drop_revalidations();
        self.role = None;
        self.looking_again();
        if self.snap_unpersisted {
            // A sync cut between SNAP and NEWLEADER: the tree is the
            // leader's, the disk still ours. The election's vote and the
            // next role go by the disk (Apache reloads its database).
            self.snap_unpersisted = false;
            if let Some(save) = self.snap_body.take() {
                save.abandon();
            }
            info!("the SNAP was not made durable: reloading the tree from the disk");
            if let Err(why) = self.rebuild_tree() {
                return self.fatal(&format!("cannot reload the tree after a cut SNAP: {why}"));
            }
        }
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report_touches(false);
        self.shared.control.set_serving(false);
        self.drop_in_flight("going LOOKING");
        // As ZooKeeper's learner and leader shutdown: every client is
        // disconnected, so that none goes on reading a tree that no quorum
        // updates, its session expiring meanwhile where a quorum is
        // (regression: they stayed connected, their pings answered here).
        self.close_clients();
        // The next election's vote: the last zxid logged (Apache reloads its
        // database from the log between roles), never less than the tree's.
        let logged = self
            .storage
            .log
            .last_key()
            .map_or(0, |k| i64::try_from(k).unwrap_or(i64::MAX));
        let last_zxid = logged.max(self.shared.tree.last_processed_zxid());
        self.report_last_seen();
        self.out(QuorumOut::RoleEnded { reason, last_zxid });
    }

    // ---- driving the cores ----

    /// Feeds one event and carries out the commands, then the events those
    /// commands produced (an epoch written), in order.
    fn role_step(&mut self, ev: RoleEvent) {
        // The commands go through buffers kept between steps, and follow-up
        // events (rare) through a queue allocated only when there are some:
        // two allocations per packet were ~5 % of a loaded leader's core.
        let mut first = Some(ev);
        let mut queue = VecDeque::new();
        while let Some(ev) = first.take().or_else(|| queue.pop_front()) {
            match (ev, &mut self.role) {
                (RoleEvent::Leader(ev), Some(Role::Leading(l))) => {
                    let mut out = std::mem::take(&mut self.leader_out);
                    l.core.step(ev, &mut out);
                    queue.extend(self.run_leader(&mut out));
                    self.leader_out = out;
                }
                (RoleEvent::Learner(ev), Some(Role::Learning(l))) => {
                    let mut out = std::mem::take(&mut self.learner_out);
                    l.core.step(ev, &mut out);
                    queue.extend(self.run_learner(&mut out));
                    self.learner_out = out;
                }
                _ => {}
            }
        }
    }

    /// The log's durability reports since the last look, to the role.
    pub(super) fn role_poll_durable(&mut self) {
        let hi = Zxid::from(self.durable.hi.load(std::sync::atomic::Ordering::SeqCst));
        if hi <= self.role_durable || self.failed {
            return;
        }
        self.role_durable = hi;
        if crate::stages::enabled() {
            let ns = self
                .durable
                .at_ns
                .load(std::sync::atomic::Ordering::Relaxed);
            let at = super::stage_base() + std::time::Duration::from_nanos(ns);
            crate::stages::record(
                crate::stages::Stage::CallbackToCore,
                at,
                std::time::Instant::now(),
            );
        }
        let ev = match &self.role {
            Some(Role::Leading(_)) => RoleEvent::Leader(LeaderEvent::LogDurable(hi)),
            Some(Role::Learning(_)) => RoleEvent::Learner(LearnerEvent::LogDurable(hi)),
            None => return,
        };
        self.role_step(ev);
    }

    /// Carries out a leader's commands; returns the events they produced.
    /// Carries out (and empties) `out`; the events they lead to.
    fn run_leader(&mut self, out: &mut Vec<LeaderCommand>) -> Vec<RoleEvent> {
        let mut next = Vec::new();
        for c in out.drain(..) {
            if !matches!(self.role, Some(Role::Leading(_))) || self.failed {
                break;
            }
            if let Some(ev) = self.leader_command(c) {
                next.push(RoleEvent::Leader(ev));
            }
        }
        next
    }

    /// mntr's leader gauges follow the core's learners (published when they
    /// change). Looked at once per turn of the core, not after every event:
    /// counting the learners (two walks of a map) after each proposal and
    /// ACK was 5 % of a loaded leader's instructions.
    pub(super) fn publish_leader_gauges(&mut self) {
        let Some(Role::Leading(l)) = &mut self.role else {
            return;
        };
        if !self.ensemble {
            return;
        }
        let counts = l.core.learner_counts();
        let since = match (l.gauges.1, l.core.is_established()) {
            (None, true) => Some(std::time::Instant::now()),
            (s, _) => s,
        };
        if (counts, since) != l.gauges {
            l.gauges = (counts, since);
            self.shared.control.set_leader_gauges(counts, since);
        }
    }

    fn leader_command(&mut self, c: LeaderCommand) -> Option<LeaderEvent> {
        match c {
            LeaderCommand::Send(conn, Packet::Snap { zxid }) => {
                if let Some(Role::Leading(l)) = &mut self.role {
                    l.held_snap = Some((conn, zxid));
                }
            }
            LeaderCommand::SendSnapshot(conn) => return self.send_snapshot(conn),
            LeaderCommand::Send(conn, p) => {
                self.note_sync(conn, &p);
                self.out(QuorumOut::ToLearner(conn, p));
            }
            LeaderCommand::Close(conn, why) => {
                info!("closing learner connection {conn}: {why}");
                self.out(QuorumOut::CloseLearner(conn, why));
            }
            LeaderCommand::PersistAcceptedEpoch(e) => {
                return self
                    .persist_epoch(e, false)
                    .then_some(LeaderEvent::AcceptedEpochDurable(e));
            }
            LeaderCommand::PersistCurrentEpoch(e) => {
                crate::failpoint::hit("leader-before-current-epoch");
                return self
                    .persist_epoch(e, true)
                    .then_some(LeaderEvent::CurrentEpochDurable(e));
            }
            LeaderCommand::Append { zxid, txn } => self.append_record(zxid, &txn),
            LeaderCommand::Apply { zxid, txn } => self.role_apply(zxid, txn),
            LeaderCommand::Established { epoch } => {
                if let Some(Role::Leading(l)) = &self.role {
                    // The configuration this epoch made current: a version
                    // given to a version-0 one, or a reconfig of the log.
                    let config = l.core.config();
                    self.leader_config(&config);
                }
                if self.ensemble {
                    // As Apache's startZkServer: until the epoch's first
                    // write, replies and srvr name the epoch's first zxid
                    // (no txn; `Control::client_ahead` takes clients that
                    // saw one).
                    let first = Zxid::new(epoch, 0).as_i64();
                    if self.shared.control.last_zxid() < first {
                        self.shared.control.set_last_zxid(first);
                    }
                }
                self.serve(Mode::Leader, epoch);
            }
            LeaderCommand::FromLearner(conn, sid, p) => return self.learner_packet(conn, sid, p),
            LeaderCommand::GoLooking(why) => self.end_role(why),
            LeaderCommand::ReadLog { conn, from } => {
                return Some(LeaderEvent::LogRead {
                    conn,
                    txns: self.log_from(from),
                });
            }
        }
        None
    }

    /// The operator's log line of a DIFF or TRUNC sync, once its size is
    /// known (at NEWLEADER): `syncing learner connection N (server S) by
    /// DIFF 0x...: K txns`.
    fn note_sync(&mut self, conn: Conn, p: &Packet) {
        let Some(Role::Leading(l)) = &mut self.role else {
            return;
        };
        match p {
            Packet::Diff { zxid } | Packet::Trunc { zxid } => {
                l.syncing.insert(conn, (p.name(), *zxid, 0));
            }
            Packet::Proposal { .. } => {
                if let Some(s) = l.syncing.get_mut(&conn) {
                    s.2 += 1;
                }
            }
            Packet::NewLeader { .. } => {
                if let Some((kind, zxid, n)) = l.syncing.remove(&conn) {
                    let sid = l.core.learner_sid(conn).unwrap_or(0);
                    info!(
                        "syncing learner connection {conn} (server {sid}) by {kind} 0x{zxid:x}: {n} txns"
                    );
                }
            }
            _ => {}
        }
    }

    /// The log's txns from `from` on, for a learner older than the DIFF
    /// window (Apache's `getProposalsFromTxnLog`); `None` when the log does
    /// not reach back to `from`, reading fails, or the portion is larger than
    /// [`LOG_DIFF_LIMIT`] bytes, where a snapshot is the cheaper sync.
    fn log_from(&self, from: Zxid) -> Option<Vec<(Zxid, Bytes)>> {
        // The log must reach back to the learner's zxid (Apache: the txn log
        // must start at or below it); otherwise it misses txns the learner
        // lacks.
        if self
            .storage
            .log
            .first_key()
            .is_none_or(|k| k > from.as_u64())
        {
            return None;
        }
        let mut txns = Vec::new();
        let mut bytes = 0usize;
        for item in self.storage.log.iter_from(from.as_u64()) {
            let (key, payload) = match item {
                Ok(record) => record,
                Err(e) => {
                    // Damage the open scan left to the reader (zk-txnlog
                    // checks a vouched-for record's crc when it is read).
                    warn!(
                        "cannot read the log from 0x{from:x} for a learner (a SNAP instead): {e}"
                    );
                    return None;
                }
            };
            bytes += payload.len();
            if bytes > LOG_DIFF_LIMIT {
                return None;
            }
            txns.push((Zxid::from(key), Bytes::from(payload)));
        }
        Some(txns)
    }

    /// SNAP's body: the tree as it is at this command, right after the packet,
    /// sent piece by piece as the walk fills them (the quorum thread writes
    /// the first while the rest is serialized: for 1M znodes the walk takes
    /// 200 ms, which the learner waited for before it had a byte). The tree
    /// cannot change meanwhile: this thread is its only writer.
    /// A learner closed here (not by the core) is an event for the core.
    fn send_snapshot(&mut self, conn: Conn) -> Option<LeaderEvent> {
        let held = match &mut self.role {
            Some(Role::Leading(l)) => l.held_snap.take(),
            _ => None,
        };
        let (c, zxid) = held.filter(|h| h.0 == conn)?;
        let at = self.shared.tree.last_processed_zxid();
        if at != zxid.as_i64() {
            error!("SNAP 0x{zxid:x} but the tree is at 0x{at:x}: closing the learner");
            return self.close_learner(c, "snapshot mismatch");
        }
        let sid = match &self.role {
            Some(Role::Leading(l)) => l.core.learner_sid(conn).unwrap_or(0),
            _ => 0,
        };
        let started = std::time::Instant::now();
        self.out(QuorumOut::ToLearner(c, Packet::Snap { zxid }));
        let outbox = self.outbox.as_ref();
        let mut len = 0;
        self.shared.tree.apache_snap_stream(SNAP_PIECE, |p| {
            len += p.len();
            if let Some(o) = outbox {
                o.send(QuorumOut::SnapMore {
                    conn: c,
                    piece: Bytes::from(p),
                    last: false,
                });
                o.wake();
            }
        });
        self.out(QuorumOut::SnapMore {
            conn: c,
            piece: Bytes::new(),
            last: true,
        });
        info!(
            "syncing learner connection {conn} (server {sid}) by SNAP 0x{zxid:x} ({len} bytes), serialized in {} ms",
            started.elapsed().as_millis()
        );
        None
    }

    /// Leader: closes learner `conn` on the sequencer's own account; the
    /// returned event tells the core, which would otherwise keep the
    /// learner's handler (counted in its gauges, sent proposals) for good.
    pub(super) fn close_learner(&mut self, conn: Conn, why: &str) -> Option<LeaderEvent> {
        self.out(QuorumOut::CloseLearner(conn, why.into()));
        Some(LeaderEvent::Closed(conn))
    }

    /// Writes an epoch file (atomically, durably); false after a failure,
    /// which is fatal for this server (an fsync is never retried).
    fn persist_epoch(&mut self, epoch: u32, current: bool) -> bool {
        let res = if current {
            self.epochs.set_current(i64::from(epoch))
        } else {
            self.epochs.set_accepted(i64::from(epoch))
        };
        match res {
            Ok(()) => true,
            Err(e) => {
                self.fatal(&format!("cannot write an epoch file: {e}"));
                false
            }
        }
    }

    /// The role is established (leader) or synced (learner): serve clients.
    fn serve(&mut self, mode: Mode, epoch: u32) {
        if !self.ensemble {
            return;
        }
        info!(
            "serving clients as {} of epoch {epoch} at zxid 0x{:x}",
            mode.name(),
            self.shared.tree.last_processed_zxid()
        );
        self.shared.control.set_mode(mode);
        let off = mode == Mode::Leader && !self.shared.config.leader_serves;
        if off {
            info!("leaderServes=no: no client connections while leading");
        }
        self.shared.control.set_clients_off(off);
        self.shared.control.set_epoch(epoch);
        self.shared.control.set_serving(true);
        self.out(QuorumOut::EpochEstablished(epoch));
    }

    /// The learner synced: the time since its ACKEPOCH goes to Apache's
    /// `follower_sync_time` (or `observer_sync_time`).
    fn note_sync_time(&mut self, observer: bool) {
        let Some(Role::Learning(l)) = &mut self.role else {
            return;
        };
        let Some(t) = l.sync_started.take() else {
            return;
        };
        let ms = t.elapsed().as_millis() as u64;
        let st = &self.shared.stats;
        let summary = if observer {
            &st.observer_sync_time
        } else {
            &st.follower_sync_time
        };
        summary.observe(0, ms);
    }

    /// Carries out a learner's commands; returns the events they produced.
    /// Carries out (and empties) `out`; the events they lead to.
    fn run_learner(&mut self, out: &mut Vec<LearnerCommand>) -> Vec<RoleEvent> {
        let mut next = Vec::new();
        for c in out.drain(..) {
            if !self.is_learning() || self.failed {
                break;
            }
            if let Some(ev) = self.learner_command(c) {
                next.push(RoleEvent::Learner(ev));
            }
        }
        next
    }

    fn learner_command(&mut self, c: LearnerCommand) -> Option<LearnerEvent> {
        #[cfg(test)]
        if self.crash_before.is_some_and(|f| f(&c)) {
            // A crash: nothing more runs; the test takes the disk as it is.
            self.failed = true;
            return None;
        }
        match c {
            LearnerCommand::Send(p) => {
                if let Packet::AckEpoch { .. } = &p
                    && let Some(Role::Learning(l)) = &mut self.role
                {
                    l.sync_started = Some(std::time::Instant::now());
                }
                if let Packet::Ack { zxid } = &p
                    && zxid.counter() == 0
                    && let Some(Role::Learning(l)) = &mut self.role
                    && !l.acked_newleader
                {
                    l.acked_newleader = true;
                    crate::failpoint::hit("learner-before-newleader-ack");
                }
                self.out(QuorumOut::ToLeader(p));
            }
            LearnerCommand::PersistAcceptedEpoch(e) => {
                return self
                    .persist_epoch(e, false)
                    .then_some(LearnerEvent::AcceptedEpochDurable(e));
            }
            LearnerCommand::PersistCurrentEpoch(e) => {
                crate::failpoint::hit("learner-before-current-epoch");
                return self
                    .persist_epoch(e, true)
                    .then_some(LearnerEvent::CurrentEpochDurable(e));
            }
            LearnerCommand::Truncate(z) => self.truncate(z),
            LearnerCommand::PersistSnapshot(z) => {
                return self
                    .persist_snapshot(z)
                    .then_some(LearnerEvent::SnapshotDurable(z));
            }
            LearnerCommand::Append { zxid, txn } => self.append_record(zxid, &txn),
            LearnerCommand::Apply { zxid, txn } => self.role_apply(zxid, txn),
            LearnerCommand::StartServing {
                epoch,
                leader_config,
            } => {
                if let Some(text) = leader_config {
                    self.leader_config(&text);
                    if !self.is_learning() {
                        // Its configuration ended the role (a new learner
                        // type): nothing to serve.
                        return None;
                    }
                }
                let observer = self.is_observing();
                let mode = if observer {
                    Mode::Observer
                } else {
                    Mode::Follower
                };
                self.note_sync_time(observer);
                self.serve(mode, epoch);
            }
            LearnerCommand::AnswerPing(zxid) => self.answer_ping(zxid),
            LearnerCommand::Deliver(Packet::Sync) => self.leader_synced(),
            LearnerCommand::Deliver(Packet::Revalidate { data }) => self.revalidated(&data),
            LearnerCommand::Deliver(_) => {}
            LearnerCommand::GoLooking(why) => self.end_role(why),
        }
        None
    }

    /// PING's answer: (sessionId i64, timeout i32) for every session
    /// touched here since the last answer, so that the leader (which alone
    /// expires sessions) keeps them alive.
    fn answer_ping(&mut self, zxid: Zxid) {
        let touched = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_touched();
        let mut data = BytesMut::with_capacity(12 * touched.len());
        for (id, timeout) in touched {
            data.extend_from_slice(&id.to_be_bytes());
            data.extend_from_slice(&timeout.to_be_bytes());
        }
        self.out(QuorumOut::ToLeader(Packet::Ping {
            zxid,
            data: Some(data.freeze()),
        }));
    }

    /// TRUNC: drop the log after `z`, rebuild the tree from snapshot + log.
    /// A failure is fatal (Apache exits).
    fn truncate(&mut self, z: Zxid) {
        let newest = match self.storage.snaps.list() {
            Ok(list) => list.last().map_or(0, |s| s.key),
            Err(e) => return self.fatal(&format!("cannot list the snapshots for TRUNC: {e}")),
        };
        let below_snapshot = newest > z.as_u64();
        if below_snapshot && z != Zxid::ZERO {
            return self.cannot_truncate(z, newest);
        }
        info!("TRUNC: truncating the log after 0x{z:x}");
        if let Err(e) = self.storage.log.truncate_after(z.as_u64()) {
            return self.fatal(&format!("cannot truncate the log after 0x{z:x}: {e}"));
        }
        if self.last_reconfig.as_ref().is_some_and(|(r, _)| *r > z) {
            self.last_reconfig = None;
        }
        self.new_log_generation();
        crate::failpoint::hit("learner-inside-trunc");
        if below_snapshot {
            // Only a TRUNC to 0 gets here. The state at 0 is the empty tree: no snapshot holds anything
            // committed (the log went first; a crash in between leaves the
            // snapshot alone, a state this server had).
            info!("TRUNC to 0: removing every snapshot");
            if let Err(e) = self.remove_snapshots_above(z) {
                return self.fatal(&format!("cannot remove the snapshots for TRUNC to 0: {e}"));
            }
        }
        match self.rebuild_tree() {
            Ok(at) if at <= z => {}
            Ok(at) => self.fatal(&format!(
                "TRUNC to 0x{z:x}, but the rebuilt tree is at 0x{at:x}"
            )),
            Err(why) => self.fatal(&format!("cannot rebuild the tree after TRUNC: {why}")),
        }
    }

    /// A TRUNC below the newest snapshot, such as the snapshot of a leader's
    /// SNAP in a sync whose epoch never established: it can hold that
    /// leader's uncommitted txns, which a later leader truncates, and the
    /// state at the TRUNC point is on no file of ours (Apache's learner loads
    /// the snapshot and serves those txns). We leave the files as they are,
    /// go LOOKING, and ask the leader of this epoch for SNAP (an empty
    /// learner's zxid in ACKEPOCH); its snapshot then replaces ours.
    fn cannot_truncate(&mut self, z: Zxid, newest: u64) {
        let Some(Role::Learning(l)) = &self.role else {
            return;
        };
        let epoch = l.core.epoch();
        warn!(
            "TRUNC to 0x{z:x} is below the newest snapshot 0x{newest:x} (the SNAP of a sync \
             that did not complete?): the state at 0x{z:x} is not on this server's disk; \
             asking the leader of epoch {epoch} for a snapshot instead"
        );
        self.snap_from_epoch = Some(epoch);
        self.end_role(format!(
            "TRUNC to 0x{z:x} below the snapshot 0x{newest:x}: syncing again by SNAP"
        ));
    }

    /// Removes the snapshots above `z` (they hold a history the leader's
    /// differs from) and makes that durable.
    fn remove_snapshots_above(&self, z: Zxid) -> Result<(), zk_txnlog::Error> {
        let snaps = &self.storage.snaps;
        let mut removed = false;
        for s in snaps.list()?.into_iter().filter(|s| s.key > z.as_u64()) {
            snaps.remove(s.key)?;
            removed = true;
        }
        if removed {
            snaps.sync()?;
        }
        Ok(())
    }

    /// Debug builds (the servers every test runs): a role starts with the
    /// tree its disk holds (zk-zab's DESIGN.md, "A role starts on a quiet
    /// disk"; zk-sim's reference runtime reloads it), checked by loading the
    /// disk again, for trees small enough to make that cheap.
    #[cfg(debug_assertions)]
    fn check_tree_is_the_disks(&mut self) -> Result<(), String> {
        const CHECKED_UP_TO: usize = 20_000;
        if self.shared.tree.node_count() > CHECKED_UP_TO {
            return Ok(());
        }
        let (disk, rec) = self.load_disk()?;
        // `/zookeeper/config` (rewritten after each load) is not in the digest.
        let ours = (
            self.shared.tree.last_processed_zxid(),
            self.shared.tree.node_count(),
            self.shared.tree.digest(),
        );
        let theirs = (rec.last_zxid.as_i64(), disk.node_count(), disk.digest());
        if ours != theirs {
            let why = format!(
                "internal check: the tree (zxid, nodes, digest) {ours:x?} is not the disk's \
                 {theirs:x?} at the start of a role"
            );
            self.fatal(&why);
            return Err(why);
        }
        Ok(())
    }

    /// The tree the disk holds: the newest snapshot + the log.
    fn load_disk(&self) -> Result<(Tree, crate::storage::Recovered), String> {
        load_tree(
            &self.storage.log,
            &self.storage.snaps,
            self.shared.tree.config().clone(),
            &self.shared.config.data_log_dir,
        )
        .map_err(|e| e.to_string())
    }

    /// The tree = the newest snapshot + the log; returns its zxid.
    fn rebuild_tree(&mut self) -> Result<Zxid, String> {
        let (tree, rec) = self.load_disk()?;
        self.shared.tree.replace_data(tree);
        self.sessions_from_tree();
        self.refresh_config_node();
        self.shared.control.set_last_zxid(rec.last_zxid.as_i64());
        Ok(rec.last_zxid)
    }

    /// `/zookeeper/config` holds the ensemble's configuration after every
    /// load of the tree, as Apache's `initConfigInZKDatabase` (clients and
    /// `zkCli.sh config` read it; Apache's followers serve it).
    pub(super) fn refresh_config_node(&self) {
        let version = self.shared.control.config_version();
        let text = self.shared.live_config().quorum_config_text_at(version);
        if !self.shared.tree.set_config(
            text.as_bytes(),
            i64::try_from(version).unwrap_or(i64::MAX),
            crate::stats::wall_ms(),
        ) {
            warn!("/zookeeper/config is missing from the tree: not refreshed");
        }
    }

    /// The session table follows a tree that changed under it (the log's
    /// tail replayed, a TRUNC rebuild, a SNAP).
    fn sessions_from_tree(&self) {
        let live = self.shared.tree.sessions();
        let now = self.shared.now_ms();
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace_with(&live, now);
    }

    /// The tree loaded from SNAP, made durable as a snapshot at `z`; the old
    /// log is dropped whole and the log restarts after `z`. Not only its tail
    /// above `z` diverges: records below `z` may be txns of an old epoch the
    /// leader's history skipped, which this server must never offer as DIFF
    /// material if it leads later (the leader's window is read from the log).
    fn persist_snapshot(&mut self, z: Zxid) -> bool {
        // First the records above `z`: with the snapshot published and the
        // log not yet dropped, a restart would replay them onto it (a SNAP
        // after the leader's "cannot tell" choice can be below our last
        // zxid).
        if let Err(e) = self.storage.log.truncate_after(z.as_u64()) {
            self.fatal(&format!("cannot truncate the log for SNAP 0x{z:x}: {e}"));
            return false;
        }
        // The SNAP body as it came is the snapshot at its zxid (exact there;
        // what was applied since is in the log after it).
        let saved = match self.snap_body.take() {
            Some(save) if save.zxid() == z => save.publish(),
            other => {
                if let Some(save) = other {
                    save.abandon();
                }
                take_snapshot(&self.shared.tree, &self.storage.snaps, z)
            }
        };
        if let Err(e) = saved {
            self.fatal(&format!("cannot write the snapshot of SNAP 0x{z:x}: {e}"));
            return false;
        }
        // A crash here leaves the old records below `z`: the next start
        // drops them (storage.rs, `drop_disconnected_log`).
        crate::failpoint::hit("learner-inside-snap-persist");
        if let Err(e) = self.storage.log.truncate_after(0) {
            self.fatal(&format!("cannot drop the log before SNAP 0x{z:x}: {e}"));
            return false;
        }
        self.storage.log.raise_floor(z.as_u64());
        self.last_reconfig = None;
        self.new_log_generation();
        // A newer snapshot (the one a TRUNC could not go below) would be
        // loaded first after a restart: it goes after the log (a crash in
        // between leaves it alone, a state this server had).
        if let Err(e) = self.remove_snapshots_above(z) {
            self.fatal(&format!(
                "cannot remove the snapshots above SNAP 0x{z:x}: {e}"
            ));
            return false;
        }
        self.snap_from_epoch = None;
        self.snap_unpersisted = false;
        true
    }

    /// A learner reads SNAP's body as it arrives and replaces its tree
    /// before the packet is fed (DESIGN.md).
    fn load_snap(&mut self, zxid: Zxid, feed: SnapFeed) -> Result<(), String> {
        // Written to disk while the tree loads; published only if it loads.
        // An earlier one still writing (to the same file, for the same
        // zxid) finishes first.
        if let Some(old) = self.snap_body.take() {
            old.abandon();
        }
        let copy = match crate::storage::SnapBodySave::start(&self.storage.snaps, zxid) {
            Ok((save, copy)) => {
                self.snap_body = Some(save);
                Some(copy)
            }
            Err(e) => {
                warn!("cannot start writing the SNAP as a snapshot: {e}; it is serialized again");
                None
            }
        };
        // The reader (and with it the writer's feed) is gone before the
        // writer is joined.
        let snap = {
            let mut r = feed.reader(copy);
            Tree::read_apache_snap(
                &mut r,
                self.shared.tree.config().clone(),
                SNAP_MAX_LEN,
                zxid.as_i64(),
            )
            .map_err(|e| e.to_string())
            .and_then(|snap| r.finish().map(|_| snap).map_err(|e| e.to_string()))
        };
        let snap = match snap {
            Ok(snap) => snap,
            Err(e) => {
                // Never published: a body that does not load is no snapshot.
                if let Some(save) = self.snap_body.take() {
                    save.abandon();
                }
                return Err(e);
            }
        };
        info!(
            "loaded the leader's SNAP 0x{zxid:x}: {} znodes, {} sessions",
            snap.tree.node_count(),
            snap.sessions.len()
        );
        self.shared.tree.replace_data(snap.tree);
        self.snap_unpersisted = true;
        self.sessions_from_tree();
        self.refresh_config_node();
        self.shared.control.set_last_zxid(zxid.as_i64());
        Ok(())
    }

    // ---- txns ----

    /// Apply: a committed, durable txn. The leader's own proposals carry
    /// their origin; elsewhere the txn is decoded, and a learner answers the
    /// client whose forwarded request has its (session, cxid).
    fn role_apply(&mut self, zxid: Zxid, txn: Bytes) {
        let front = self.proposals.pop_front_if(|p| p.hdr.zxid == zxid.as_i64());
        let p = match front {
            Some(p) => p,
            None => {
                let received = match &mut self.role {
                    Some(Role::Learning(l)) => l.take_received(zxid.as_i64()),
                    _ => None,
                };
                let decoded = match received {
                    Some(r) => Ok((r.hdr, r.body, r.digest)),
                    None => TxnBody::read_record(txn).map(|(hdr, body)| (hdr, body, None)),
                };
                match decoded {
                    Ok((hdr, body, digest)) if hdr.zxid == zxid.as_i64() => {
                        let origin = self
                            .forwarded
                            .remove(&(hdr.client_id, hdr.cxid))
                            .unwrap_or(Origin::Internal);
                        Proposal {
                            hdr,
                            body,
                            origin,
                            digest,
                        }
                    }
                    Ok((hdr, ..)) => {
                        return self.end_role(format!(
                            "txn 0x{zxid:x} carries the header of 0x{:x}",
                            hdr.zxid
                        ));
                    }
                    Err(e) => {
                        return self.end_role(format!("txn 0x{zxid:x} does not decode: {e}"));
                    }
                }
            }
        };
        if p.session_ordered()
            && matches!(p.origin, Origin::Client(..) | Origin::Connect { .. })
            && self.order.head_write(p.hdr.client_id) != Some(p.hdr.cxid)
        {
            // Only a leader breaking Zab commits a session's writes out of
            // the order they were forwarded in.
            return self.end_role(format!(
                "txn 0x{zxid:x} answers session 0x{:x}'s request {} out of its order",
                p.hdr.client_id, p.hdr.cxid
            ));
        }
        if let TxnBody::CreateSession(t) = &p.body {
            let now = self.shared.now_ms();
            let mut st = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if st.get(p.hdr.client_id).is_none() {
                st.add(p.hdr.client_id, t.time_out, now);
            }
            // A learner's own client: the session is bound to its connection.
            if let Origin::Connect { conn, .. } = p.origin {
                st.set_owner(p.hdr.client_id, conn);
            }
        }
        self.apply(&p);
        self.after_apply(&p);
        if let TxnBody::Reconfig(t) = &p.body
            && let Some(Role::Leading(_)) = &self.role
        {
            // The leader's reconfig committed (its core counts the new
            // voters already): the members, the quorum thread, the version.
            let me = self.shared.config.my_id as i64;
            self.activate_config(t.data.as_deref().unwrap_or_default(), me);
        } else if let TxnBody::Reconfig(t) = &p.body
            && let Some(Role::Learning(l)) = &mut self.role
        {
            while l.activations.front().is_some_and(|a| a.0 < zxid) {
                l.activations.pop_front();
            }
            if let Some((_, leader)) = l.activations.pop_front_if(|a| a.0 == zxid) {
                self.activate_config(t.data.as_deref().unwrap_or_default(), leader);
            }
        }
    }

    /// Learner: the leader committed the reconfig `zxid` and activates it.
    fn note_activation(&mut self, zxid: Zxid, leader: i64) {
        if let Some(Role::Learning(l)) = &mut self.role {
            l.activations.push_back((zxid, leader));
        }
    }

    /// Leader: a client write prepared here (or for a learner) becomes a
    /// PROPOSAL with [`Leader::next_zxid`]; a reconfig's with the
    /// configuration it proposes.
    pub(super) fn role_propose(
        &mut self,
        session: i64,
        cxid: i32,
        time: i64,
        body: TxnBody,
        origin: Origin,
        reconfig: Option<zk_zab::NewConfig>,
    ) -> Zxid {
        let digest = self.txn_digest(&body);
        let Some(Role::Leading(l)) = &mut self.role else {
            self.refuse(origin);
            return Zxid::ZERO;
        };
        let zxid = l.core.next_zxid();
        let hdr = super::txn_header(session, cxid, zxid, time, &body);
        // Records are split off one buffer, refilled 64 KiB at a time (a
        // buffer is freed once the records cut from it are dropped): no
        // allocation per proposal.
        if self.record.capacity() < 4096 {
            self.record.reserve(64 << 10);
        }
        body.write_record(&hdr, &mut self.record);
        if let Some(d) = digest {
            zk_jute::TxnDigest {
                version: zk_tree::DIGEST_VERSION,
                tree_digest: d,
            }
            .write(&mut self.record);
        }
        let record = self.record.split().freeze();
        if self.ensemble {
            self.shared.control.note_proposal_size(record.len());
        }
        let mut out = std::mem::take(&mut self.leader_out);
        let proposed = match reconfig {
            Some(new) => l.core.propose_reconfig(zxid, record, new, &mut out),
            None => l.core.propose(zxid, record, &mut out),
        };
        if let Err(e) = proposed {
            warn!("cannot propose 0x{zxid:x}: {e:?}");
            // The txn was prepared (the overlay holds its changes) but will
            // never be applied, and this role proposes nothing more (not
            // established yet, stepped down, or out of counter): forget
            // every prepared change, lest a later prep see changes that
            // never happen (and send digests that include them).
            self.overlay.clear();
            self.refuse(origin);
            let next = self.run_leader(&mut out);
            next.into_iter().for_each(|ev| self.role_step(ev));
            return zxid;
        }
        let p = Proposal {
            hdr,
            body,
            origin,
            digest,
        };
        if p.session_ordered() {
            self.order.write_proposed(session, cxid);
        }
        self.proposals.push_back(p);
        let next = self.run_leader(&mut out);
        self.leader_out = out;
        next.into_iter().for_each(|ev| self.role_step(ev));
        zxid
    }

    /// A write that cannot be proposed (LOOKING, a learner, or a leader not
    /// established yet): its client is disconnected and retries.
    pub(super) fn refuse(&self, origin: Origin) {
        match origin {
            Origin::Client(ctx, _) => self.send(ctx.conn, LoopMsg::Close { conn: ctx.conn }),
            Origin::Connect { conn, .. } => self.send(conn, LoopMsg::Close { conn }),
            Origin::Internal => {}
        }
    }

    // ---- forwarding (learner) and the leader's side of it ----

    /// Learner: whether it does not serve yet (its role started, its sync
    /// with the leader not done), in which case the client on `conn` is
    /// disconnected and `true` returned: what it sent was queued before the
    /// server left its previous role, and a REQUEST or REVALIDATE sent now
    /// would be dropped by the quorum port until it reaches the leader, the
    /// client waiting for an answer past its session's timeout (seen: a
    /// session expired after three quick failovers,
    /// `leaders_killed_in_turn_under_load_lose_no_acknowledged_write`).
    pub(super) fn learner_not_synced(&self, conn: u64) -> bool {
        if !self.is_learning() || self.shared.control.serving() {
            return false;
        }
        self.send(conn, LoopMsg::Close { conn });
        true
    }

    /// Learner: a client write becomes REQUEST (quorum.md §3.8); the client
    /// is answered when the txn with its (session, cxid) is applied.
    pub(super) fn forward_request(&mut self, ctx: Ctx, req: &Request) {
        // Room for a typical write (a create of 100 bytes is ~170): grown
        // from empty, the encoding reallocated four times a request (1.4k
        // instructions of a forwarding follower's 21k per write).
        let mut body = BytesMut::with_capacity(256);
        body.extend_from_slice(&ctx.session_id.to_be_bytes());
        body.extend_from_slice(&ctx.xid.to_be_bytes());
        body.extend_from_slice(&req.op_code().code().to_be_bytes());
        req.write_body(&mut body);
        let authinfo = ctx.auth.as_ref().clone();
        let key = (ctx.session_id, ctx.xid);
        self.order.write_proposed(ctx.session_id, ctx.xid);
        let op = req.op_code();
        self.forwarded.insert(key, Origin::Client(ctx, op));
        self.out(QuorumOut::ToLeader(Packet::Request {
            data: body.freeze(),
            authinfo,
        }));
    }

    /// Learner: a new session is created through the leader (quorum.md §6):
    /// the id is ours (our server id in the top byte), the txn the leader's.
    pub(super) fn forward_create_session(
        &mut self,
        conn: u64,
        peer: std::net::SocketAddr,
        timeout: i32,
    ) {
        let session = {
            let mut st = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            st.next_session_id()
        };
        let mut body = BytesMut::new();
        body.extend_from_slice(&session.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&OpCode::CreateSession.code().to_be_bytes());
        body.extend_from_slice(&timeout.to_be_bytes());
        self.order.write_proposed(session, 0);
        self.forwarded.insert(
            (session, 0),
            Origin::Connect {
                conn,
                timeout,
                peer,
            },
        );
        self.out(QuorumOut::ToLeader(Packet::Request {
            data: body.freeze(),
            authinfo: Vec::new(),
        }));
    }

    /// Leader: a learner's packet for the session layer; a forwarded `sync`
    /// becomes an event for the core (fed after the current commands).
    fn learner_packet(&mut self, conn: Conn, sid: u64, p: Packet) -> Option<LeaderEvent> {
        match p {
            Packet::Request { data, .. } if request_type(&data) == Some(OpCode::Sync.code()) => {
                return Some(LeaderEvent::Sync(conn));
            }
            Packet::Request { data, authinfo } => {
                return self.learner_request(conn, sid, data, &authinfo);
            }
            Packet::Ping { data, .. } => return self.touch_sessions(conn, sid, data),
            Packet::Revalidate { data } => return self.answer_revalidate(conn, sid, &data),
            _ => {}
        }
        None
    }

    /// Learner: a client `sync` goes to the leader as REQUEST; it is answered
    /// when the leader's SYNC comes back (everything the leader proposed
    /// before it is committed) and the session's earlier writes are answered.
    /// It holds its place in the session's order like a write.
    pub(super) fn forward_sync(&mut self, ctx: Ctx, req: Request) {
        let mut body = BytesMut::new();
        body.extend_from_slice(&ctx.session_id.to_be_bytes());
        body.extend_from_slice(&ctx.xid.to_be_bytes());
        body.extend_from_slice(&OpCode::Sync.code().to_be_bytes());
        req.write_body(&mut body);
        let authinfo = ctx.auth.as_ref().clone();
        self.order.write_proposed(ctx.session_id, ctx.xid);
        self.syncs.push_back((ctx, req));
        self.out(QuorumOut::ToLeader(Packet::Request {
            data: body.freeze(),
            authinfo,
        }));
    }

    /// Learner: the leader's SYNC answers the oldest forwarded sync.
    fn leader_synced(&mut self) {
        let Some((ctx, req)) = self.syncs.pop_front() else {
            warn!("a SYNC from the leader with no sync forwarded: ignored");
            return;
        };
        let session = ctx.session_id;
        self.synced.insert((session, ctx.xid), (ctx, req));
        self.complete_syncs(session);
    }

    /// Answers `session`'s synced syncs that reached the head of its order,
    /// and what waited behind them.
    pub(super) fn complete_syncs(&mut self, session: i64) {
        while let Some(cxid) = self.order.head_write(session) {
            let Some((ctx, req)) = self.synced.remove(&(session, cxid)) else {
                return;
            };
            let frame = crate::reads::serve_read(&self.shared, &ctx, req);
            self.reply(ctx.conn, frame, false);
            for item in self.order.write_committed(session, cxid) {
                self.answer_waiting(item);
            }
        }
    }

    /// PING's touches: (sessionId i64, timeout i32)*. A PING without them,
    /// or ending in a partial record, closes the learner's connection after
    /// the whole records, as ZooKeeper's LearnerHandler ends on the
    /// exception reading it.
    fn touch_sessions(&mut self, conn: Conn, sid: u64, data: Option<Bytes>) -> Option<LeaderEvent> {
        let Some(data) = data else {
            warn!("a PING from server {sid} (connection {conn}) without its session touches");
            return self.close_learner(conn, "a PING without its session touches");
        };
        let now = self.shared.now_ms();
        let mut r = Reader::new(data);
        let mut st = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while r.remaining() >= 12 {
            let (Ok(id), Ok(_timeout)) = (i64::read(&mut r), i32::read(&mut r)) else {
                break;
            };
            st.touch(id, now);
        }
        drop(st);
        if r.remaining() == 0 {
            return None;
        }
        warn!("a PING from server {sid} (connection {conn}) ends in a partial session touch");
        self.close_learner(conn, "a PING ending in a partial session touch")
    }

    /// Leader: REQUEST from learner `sid`: prepared and proposed on its
    /// behalf (the learner answers its client). One shorter than its header
    /// (session, cxid, type) closes the learner's connection, as ZooKeeper's
    /// LearnerHandler ends on the exception reading it.
    fn learner_request(
        &mut self,
        conn: Conn,
        sid: u64,
        data: Bytes,
        authinfo: &[zk_jute::Id],
    ) -> Option<LeaderEvent> {
        let mut r = Reader::new(data);
        let (Ok(session), Ok(cxid), Ok(ty)) =
            (i64::read(&mut r), i32::read(&mut r), i32::read(&mut r))
        else {
            warn!("a REQUEST from server {sid} (connection {conn}) shorter than its header");
            return self.close_learner(conn, "a REQUEST shorter than its header");
        };
        if ty == OpCode::CreateSession.code() {
            let Ok(timeout) = i32::read(&mut r) else {
                // ZooKeeper's prep fails to read it and proposes the
                // MARSHALLINGERROR txn, which the learner's commit pipeline
                // waits for (Apache's forwards a client's createSession sent
                // as a request on its session, body and all).
                warn!(
                    "a createSession REQUEST from server {sid} without its timeout: MARSHALLINGERROR txn"
                );
                let body = TxnBody::Error(ErrorTxn {
                    err: ErrorCode::MarshallingError.code(),
                });
                self.propose(session, cxid, body, Origin::Internal);
                return None;
            };
            let now = self.shared.now_ms();
            self.shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(session, timeout, now);
            self.set_session_owner(session, Owner::Learner(conn));
            let body = TxnBody::CreateSession(CreateSessionTxn { time_out: timeout });
            self.propose(session, cxid, body, Origin::Internal);
            return None;
        }
        match Request::read_body(ty, &mut r) {
            Ok(req) => {
                if let Some(body) = self.refusal(session, Owner::Learner(conn), &req) {
                    self.propose(session, cxid, body, Origin::Internal);
                    return None;
                }
                if matches!(req, Request::CloseSession) {
                    self.shared
                        .sessions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .set_closing(session);
                }
                self.prep_and_propose(session, cxid, req, Origin::Internal, authinfo);
            }
            Err(e) => {
                warn!("a REQUEST from server {sid} does not decode ({e}): MARSHALLINGERROR txn");
                let body = TxnBody::Error(ErrorTxn {
                    err: ErrorCode::MarshallingError.code(),
                });
                self.propose(session, cxid, body, Origin::Internal);
            }
        }
        None
    }
}

/// The most paths one [`Sequencer::role_warm`] reads: a few lines each, so
/// that what it reads is still in a core's cache when the batch gets there.
const WARM_MAX: usize = 1024;

/// The node a client's write names, for [`Sequencer::role_warm`] (`None`
/// for reads, multis and session ops).
fn write_path(req: &Request) -> Option<&str> {
    match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => Some(&r.path),
        Request::CreateTtl(r) => Some(&r.path),
        Request::Delete(r) => Some(&r.path),
        Request::SetData(r) => Some(&r.path),
        Request::SetAcl(r) => Some(&r.path),
        _ => None,
    }
}

/// The node a learner's forwarded REQUEST names, read off its bytes without
/// decoding it (session, cxid, type, then for these ops the body's first
/// field: the path, a length-prefixed string); for [`Sequencer::role_warm`].
fn forwarded_path(data: &[u8]) -> Option<&str> {
    let ty = request_type(data)?;
    let with_path = [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::Delete,
        OpCode::SetData,
        OpCode::SetAcl,
    ];
    if !with_path.iter().any(|op| op.code() == ty) {
        return None;
    }
    let len = i32::from_be_bytes(data.get(16..20)?.try_into().ok()?);
    let end = 20usize.checked_add(usize::try_from(len).ok()?)?;
    std::str::from_utf8(data.get(20..end)?).ok()
}

/// The client op type of a REQUEST payload (after sessionId and cxid).
fn request_type(data: &[u8]) -> Option<i32> {
    let b = data.get(12..16)?;
    Some(i32::from_be_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::{GetDataRequest, SetDataRequest};

    /// A REQUEST's data as a learner forwards it.
    fn forwarded(req: &Request) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.extend_from_slice(&7i64.to_be_bytes());
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(&req.op_code().code().to_be_bytes());
        req.write_body(&mut b);
        b.to_vec()
    }

    #[test]
    fn a_forwarded_write_names_its_path_and_anything_else_none() {
        let set = Request::SetData(SetDataRequest {
            path: "/a/b".into(),
            data: Some(Bytes::from_static(b"x")),
            version: -1,
        });
        let data = forwarded(&set);
        assert_eq!(forwarded_path(&data), Some("/a/b"));
        assert_eq!(write_path(&set), Some("/a/b"));
        // Cut before the path's end, a negative or oversized length, a
        // read: no path.
        for cut in 0..20 + "/a/b".len() {
            assert_eq!(forwarded_path(&data[..cut]), None, "cut at {cut}");
        }
        let mut bad = data.clone();
        bad[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(forwarded_path(&bad), None);
        bad[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(forwarded_path(&bad), None);
        let get = Request::GetData(GetDataRequest {
            path: "/a".into(),
            watch: false,
        });
        assert_eq!(forwarded_path(&forwarded(&get)), None);
        assert_eq!(write_path(&get), None);
    }
}
