//! The learner (follower or observer) side of Zab: discovery, sync and
//! broadcast against one leader connection (quorum.md §3.3–§3.8).

use std::collections::VecDeque;

use bytes::Bytes;
use zk_jute::{LearnerInfo, Zxid};

use crate::packet::{PROTOCOL_VERSION, Packet};

/// A learner's fixed facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LearnerConfig {
    /// Our server id.
    pub sid: u64,
    /// An observer (OBSERVERINFO, INFORM, never ACKs proposals) or a follower.
    pub observer: bool,
    /// initLimit, in ticks (a tick is tickTime; [`LearnerEvent::Tick`] comes
    /// every half tick).
    pub init_limit: u64,
    /// syncLimit, in ticks.
    pub sync_limit: u64,
    /// Our configuration's version, sent in LearnerInfo (0 for a static
    /// config).
    pub config_version: i64,
}

/// What the runtime knows when the learner starts (from its disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LearnerStart {
    /// The last zxid in the log (all of it durable after a restart).
    pub last_zxid: Zxid,
    /// The `acceptedEpoch` file.
    pub accepted_epoch: u32,
    /// The `currentEpoch` file.
    pub current_epoch: u32,
    /// `Some(e)`: the leader of epoch `e` sent this learner a TRUNC below its
    /// newest snapshot, which the runtime could not carry out (the state at
    /// the TRUNC point is on none of its files: the snapshot of a SNAP whose
    /// epoch never established holds txns the later leader lacks). To that
    /// leader's epoch the learner reports zxid 0 in ACKEPOCH, an empty
    /// learner, which every leader with any history answers with SNAP; its
    /// files stay as they are until that SNAP's snapshot replaces them.
    pub snap_from_epoch: Option<u32>,
}

/// Events a learner reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerEvent {
    /// The connection to the leader is up: say who we are.
    Connected,
    /// A packet from the leader. For SNAP, the runtime has already read the
    /// snapshot body that follows it and replaced its tree with it.
    Packet(Packet),
    /// The log is durable up to `zxid` (everything appended up to it).
    LogDurable(Zxid),
    /// [`LearnerCommand::PersistAcceptedEpoch`] is durable.
    AcceptedEpochDurable(u32),
    /// [`LearnerCommand::PersistCurrentEpoch`] is durable.
    CurrentEpochDurable(u32),
    /// [`LearnerCommand::PersistSnapshot`] is durable.
    SnapshotDurable(Zxid),
    /// Half a tickTime passed.
    Tick,
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerCommand {
    /// Send a packet to the leader.
    Send(Packet),
    /// Write `acceptedEpoch` (atomically, durably), then report it.
    PersistAcceptedEpoch(u32),
    /// Write `currentEpoch` (atomically, durably), then report it.
    PersistCurrentEpoch(u32),
    /// Drop every log record after `zxid` and rebuild the tree as of `zxid`
    /// (TRUNC), before anything else. A failure is fatal for the process.
    Truncate(Zxid),
    /// Make the tree loaded from SNAP durable as a snapshot at `zxid`, and
    /// make sure no older log record after `zxid` survives a restart (the old
    /// tail diverges from the leader's history), then report it.
    PersistSnapshot(Zxid),
    /// Append a txn to the log (durability is reported by `LogDurable`).
    Append {
        /// Its zxid.
        zxid: Zxid,
        /// Its bytes.
        txn: Bytes,
    },
    /// Apply a committed, durable txn to the tree.
    Apply {
        /// Its zxid.
        zxid: Zxid,
        /// Its bytes.
        txn: Bytes,
    },
    /// Synced: serve clients (UPTODATE).
    StartServing {
        /// The configuration text NEWLEADER carried (`server.N=...` lines and
        /// `version=<hex>`), if any: with reconfig enabled, ZooKeeper's
        /// learner makes it its own at UPTODATE (`processReconfig`).
        leader_config: Option<Bytes>,
        /// The established epoch (the election's vote now carries it).
        epoch: u32,
    },
    /// Answer the leader's PING with the session touches since the last one.
    AnswerPing(Zxid),
    /// A packet for the session layer (SYNC, REVALIDATE answers).
    Deliver(Packet),
    /// Leave the leader and elect again; the connection is closed.
    GoLooking(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    /// Waiting for the connection.
    Idle,
    /// FOLLOWERINFO sent, waiting for LEADERINFO.
    Discovery,
    /// acceptedEpoch being written; ACKEPOCH follows.
    AcceptingEpoch(u32),
    /// ACKEPOCH sent, waiting for DIFF / TRUNC / SNAP.
    AwaitSyncMode,
    /// Receiving the sync stream, until NEWLEADER.
    Syncing,
    /// NEWLEADER received: making the sync durable before the ACK.
    Persisting(Persist),
    /// NEWLEADER acked, waiting for UPTODATE.
    AwaitUpToDate,
    /// Serving.
    Broadcast,
    /// Gone LOOKING.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Persist {
    Snapshot,
    Log,
    CurrentEpoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Diff,
    Trunc,
    Snap(Zxid),
}

/// A txn received and not yet applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Pending {
    zxid: Zxid,
    txn: Bytes,
    committed: bool,
    appended: bool,
}

/// One learner's Zab state for one connection to one leader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Learner {
    cfg: LearnerConfig,
    phase: Phase,
    /// The configuration text NEWLEADER carried, until UPTODATE.
    leader_config: Option<Bytes>,
    accepted_epoch: u32,
    current_epoch: u32,
    new_epoch: u32,
    mode: Option<Mode>,
    /// Highest zxid received (queued or appended): the contiguity check.
    last_received: Zxid,
    /// Highest zxid handed to the log.
    appended: Zxid,
    /// Highest zxid the log reported durable.
    durable: Zxid,
    /// Highest zxid committed (known from COMMIT / INFORM / the sync).
    committed: Zxid,
    /// Highest zxid applied to the tree.
    applied: Zxid,
    /// Received, not yet applied, in zxid order.
    pending: VecDeque<Pending>,
    /// Every entry of `pending` before this index is committed (where a
    /// COMMIT's search for the oldest uncommitted txn starts).
    committed_front: usize,
    /// Proposals appended whose ACK is owed (followers, after UPTODATE).
    acked: Zxid,
    /// SYNCs received, each with the zxid committed when it came: delivered
    /// once that zxid is applied (the leader sent it after those COMMITs).
    syncs: VecDeque<Zxid>,
    /// Half ticks since the leader last spoke.
    silent: u64,
    /// [`LearnerStart::snap_from_epoch`].
    snap_from_epoch: Option<u32>,
}

impl Learner {
    /// A learner about to connect to a leader.
    pub fn new(cfg: LearnerConfig, start: LearnerStart) -> Self {
        let l = Self {
            cfg,
            leader_config: None,
            phase: Phase::Idle,
            accepted_epoch: start.accepted_epoch,
            current_epoch: start.current_epoch,
            new_epoch: 0,
            mode: None,
            last_received: start.last_zxid,
            appended: start.last_zxid,
            durable: start.last_zxid,
            committed: start.last_zxid,
            applied: start.last_zxid,
            pending: VecDeque::new(),
            committed_front: 0,
            acked: start.last_zxid,
            syncs: VecDeque::new(),
            silent: 0,
            snap_from_epoch: start.snap_from_epoch,
        };
        l.validate();
        l
    }

    /// Whether the learner serves clients (after UPTODATE).
    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// Whether it has given up on this leader.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The established epoch (0 before LEADERINFO).
    pub fn epoch(&self) -> u32 {
        self.new_epoch
    }

    /// Highest zxid applied to the tree.
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// Highest zxid durable in the log.
    pub fn durable(&self) -> Zxid {
        self.durable
    }

    /// Highest zxid known committed.
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// The epoch files as this learner last had them written.
    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// Feeds one event; commands are appended to `out` in the order to run them.
    pub fn step(&mut self, event: LearnerEvent, out: &mut Vec<LearnerCommand>) {
        if self.phase == Phase::Done {
            return;
        }
        let result = match event {
            LearnerEvent::Connected => self.connected(out),
            LearnerEvent::Packet(p) => {
                self.silent = 0;
                self.packet(p, out)
            }
            LearnerEvent::LogDurable(z) => {
                if z > self.durable {
                    self.durable = z.min(self.appended);
                }
                self.progress(out)
            }
            LearnerEvent::AcceptedEpochDurable(e) => self.accepted_durable(e, out),
            LearnerEvent::CurrentEpochDurable(e) => {
                if self.phase == Phase::Persisting(Persist::CurrentEpoch) && e == self.new_epoch {
                    self.current_epoch = e;
                    self.ack_newleader(out);
                }
                Ok(())
            }
            LearnerEvent::SnapshotDurable(z) => {
                if self.phase == Phase::Persisting(Persist::Snapshot)
                    && self.mode == Some(Mode::Snap(z))
                {
                    self.persist_log(out);
                }
                Ok(())
            }
            LearnerEvent::Tick => self.tick(),
        };
        if let Err(reason) = result {
            self.phase = Phase::Done;
            out.push(LearnerCommand::GoLooking(reason));
        }
        self.validate();
    }

    fn connected(&mut self, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        if self.phase != Phase::Idle {
            return Err("connected twice".into());
        }
        let info = LearnerInfo {
            server_id: self.cfg.sid as i64,
            protocol_version: PROTOCOL_VERSION,
            config_version: self.cfg.config_version,
        };
        let zxid = Zxid::new(self.accepted_epoch, 0);
        out.push(LearnerCommand::Send(if self.cfg.observer {
            Packet::ObserverInfo { zxid, info }
        } else {
            Packet::FollowerInfo { zxid, info }
        }));
        self.phase = Phase::Discovery;
        Ok(())
    }

    fn tick(&mut self) -> Result<(), String> {
        if self.phase == Phase::Idle {
            return Ok(());
        }
        self.silent += 1;
        // Before NEWLEADER is handled the socket timeout is initLimit ticks,
        // then syncLimit (Learner.syncWithLeader).
        let limit = match self.phase {
            Phase::AwaitUpToDate | Phase::Broadcast => self.cfg.sync_limit,
            _ => self.cfg.init_limit,
        };
        if self.silent > 2 * limit {
            return Err(format!("the leader was silent for {limit} ticks"));
        }
        Ok(())
    }

    fn packet(&mut self, p: Packet, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        match (self.phase, p) {
            (Phase::Discovery, Packet::LeaderInfo { zxid, .. }) => self.leader_info(zxid, out),
            (Phase::AwaitSyncMode, p @ (Packet::Diff { .. } | Packet::Trunc { .. }))
                if self.asks_for_snap() =>
            {
                Err(format!(
                    "asked the leader for the whole tree (ACKEPOCH at zxid 0), got {}",
                    p.name()
                ))
            }
            (Phase::AwaitSyncMode, Packet::Diff { .. }) => {
                self.mode = Some(Mode::Diff);
                self.phase = Phase::Syncing;
                Ok(())
            }
            (Phase::AwaitSyncMode, Packet::Trunc { zxid }) => {
                if zxid > self.appended {
                    return Err(format!(
                        "TRUNC to {zxid} beyond our last zxid {}",
                        self.appended
                    ));
                }
                out.push(LearnerCommand::Truncate(zxid));
                self.reset_to(zxid);
                self.mode = Some(Mode::Trunc);
                self.phase = Phase::Syncing;
                Ok(())
            }
            (Phase::AwaitSyncMode, Packet::Snap { zxid }) => {
                // The runtime loaded the snapshot: the tree is at `zxid`, but
                // nothing of it is durable until PersistSnapshot completes.
                self.reset_to(zxid);
                self.mode = Some(Mode::Snap(zxid));
                self.phase = Phase::Syncing;
                Ok(())
            }
            (Phase::AwaitSyncMode, other) => Err(format!(
                "expected DIFF, TRUNC or SNAP, got {}",
                other.name()
            )),
            (Phase::Syncing | Phase::Persisting(_) | Phase::AwaitUpToDate, p) => {
                self.sync_packet(p, out)
            }
            (Phase::Broadcast, p) => self.broadcast_packet(p, out),
            (_, Packet::Ping { .. }) => Ok(()),
            (phase, other) => Err(format!("unexpected {} in {phase:?}", other.name())),
        }
    }

    fn leader_info(&mut self, zxid: Zxid, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        let e = zxid.epoch();
        if zxid.counter() != 0 {
            return Err(format!("LEADERINFO zxid {zxid} is not an epoch's zxid 0"));
        }
        self.new_epoch = e;
        if e > self.accepted_epoch {
            // ZK-335: the new epoch is durable before we promise anything.
            out.push(LearnerCommand::PersistAcceptedEpoch(e));
            self.phase = Phase::AcceptingEpoch(e);
            Ok(())
        } else if e == self.accepted_epoch {
            self.send_ack_epoch(-1, out);
            Ok(())
        } else {
            Err(format!(
                "the leader's epoch {e} is below our accepted epoch {}",
                self.accepted_epoch
            ))
        }
    }

    fn accepted_durable(&mut self, e: u32, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        if self.phase == Phase::AcceptingEpoch(e) {
            self.accepted_epoch = e;
            self.send_ack_epoch(self.current_epoch as i32, out);
        }
        Ok(())
    }

    /// This leader's TRUNC could not be carried out: only SNAP will do
    /// (from LEADERINFO on, which sets `new_epoch`).
    fn asks_for_snap(&self) -> bool {
        self.snap_from_epoch == Some(self.new_epoch)
    }

    fn send_ack_epoch(&mut self, current: i32, out: &mut Vec<LearnerCommand>) {
        // A learner that cannot take this leader's TRUNC asks for SNAP: an
        // empty learner's zxid (every leader with a history sends it SNAP:
        // quorum.md §3.4, as `LearnerHandler.syncFollower` does).
        let zxid = if self.asks_for_snap() {
            Zxid::ZERO
        } else {
            self.appended
        };
        out.push(LearnerCommand::Send(Packet::AckEpoch {
            zxid,
            current_epoch: current,
        }));
        self.phase = Phase::AwaitSyncMode;
    }

    /// After TRUNC or SNAP the tree and the log end at `zxid`.
    fn reset_to(&mut self, zxid: Zxid) {
        self.last_received = zxid;
        self.appended = zxid;
        self.durable = zxid;
        self.committed = zxid;
        self.applied = zxid;
        self.acked = zxid;
    }

    /// ZK-4925: within an epoch the stream has no holes; a new epoch starts at
    /// counter 1.
    fn check_next(&self, zxid: Zxid) -> Result<(), String> {
        let last = self.last_received;
        if zxid.epoch() > self.new_epoch {
            return Err(format!(
                "txn {zxid} of an epoch after the leader's {}",
                self.new_epoch
            ));
        }
        let ok = if zxid.epoch() == last.epoch() {
            zxid.counter() == last.counter().wrapping_add(1) && zxid > last
        } else {
            zxid.epoch() > last.epoch() && zxid.counter() == 1
        };
        if ok {
            Ok(())
        } else {
            Err(format!("txn {zxid} does not follow {last}"))
        }
    }

    fn receive_txn(&mut self, zxid: Zxid, txn: Bytes, committed: bool) -> Result<(), String> {
        self.check_next(zxid)?;
        self.last_received = zxid;
        self.pending.push_back(Pending {
            zxid,
            txn,
            committed,
            appended: false,
        });
        if committed {
            self.committed = zxid;
        }
        Ok(())
    }

    /// COMMIT names the oldest uncommitted txn we hold (ZK-4394).
    fn commit(&mut self, zxid: Zxid) -> Result<(), String> {
        // From the committed prefix on: nothing is applied before NEWLEADER is
        // acked, so searching from the front made a DIFF of n txns cost n²/2
        // steps (a follower syncing 13k txns in a debug build missed initLimit
        // and was dropped, again and again, under a write load).
        let from = self.committed_front.min(self.pending.len());
        let found = self
            .pending
            .range_mut(from..)
            .enumerate()
            .find(|(_, p)| !p.committed);
        match found {
            Some((k, p)) if p.zxid == zxid => {
                p.committed = true;
                self.committed = zxid;
                self.committed_front = from + k + 1;
                Ok(())
            }
            Some((_, p)) => Err(format!(
                "COMMIT {zxid}, but the oldest uncommitted txn is {}",
                p.zxid
            )),
            None => Err(format!("COMMIT {zxid} of no txn we hold")),
        }
    }

    fn sync_packet(&mut self, p: Packet, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        match p {
            Packet::Proposal { zxid, txn }
                if !self.cfg.observer || self.phase == Phase::Syncing =>
            {
                self.receive_txn(zxid, txn, false)?;
            }
            Packet::Commit { zxid } => self.commit(zxid)?,
            Packet::Inform { zxid, txn } if self.cfg.observer => {
                self.receive_txn(zxid, txn, true)?;
            }
            // PING is not answered during sync (Learner.syncWithLeader).
            Packet::Ping { .. } => {}
            Packet::NewLeader { zxid, config } if self.phase == Phase::Syncing => {
                // As ZooKeeper's learner: a config of one byte or none is none.
                self.leader_config = (config.len() > 1).then_some(config);
                if zxid != Zxid::new(self.new_epoch, 0) {
                    return Err(format!(
                        "NEWLEADER {zxid} for another epoch than {}",
                        self.new_epoch
                    ));
                }
                if let Some(Mode::Snap(z)) = self.mode {
                    // ZK-3104 / 3642: the loaded snapshot is durable first.
                    out.push(LearnerCommand::PersistSnapshot(z));
                    self.phase = Phase::Persisting(Persist::Snapshot);
                } else {
                    self.persist_log(out);
                }
                return Ok(());
            }
            Packet::UpToDate if self.phase == Phase::AwaitUpToDate => {
                self.phase = Phase::Broadcast;
                // The sync's txns apply now, before we serve: the epoch is
                // established (Apache's learner applies a DIFF's txns after
                // UPTODATE too). Committed ones need no ACK.
                if let Some(last) = self.pending.iter().take_while(|p| p.committed).last() {
                    self.acked = self.acked.max(last.zxid);
                }
                self.apply_ready(out);
                out.push(LearnerCommand::Send(Packet::Ack {
                    zxid: Zxid::new(self.new_epoch, 0),
                }));
                out.push(LearnerCommand::StartServing {
                    leader_config: self.leader_config.take(),
                    epoch: self.new_epoch,
                });
            }
            other => {
                return Err(format!("unexpected {} during sync", other.name()));
            }
        }
        self.progress(out)
    }

    fn broadcast_packet(&mut self, p: Packet, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        match p {
            Packet::Proposal { zxid, txn } if !self.cfg.observer => {
                self.receive_txn(zxid, txn, false)?
            }
            Packet::Commit { zxid } if !self.cfg.observer => self.commit(zxid)?,
            Packet::Inform { zxid, txn } if self.cfg.observer => {
                self.receive_txn(zxid, txn, true)?
            }
            Packet::Ping { zxid, .. } => {
                out.push(LearnerCommand::AnswerPing(zxid));
                return Ok(());
            }
            Packet::Sync => {
                // A client's sync is answered after every txn the leader
                // committed before it is applied here (Apache queues it in
                // the commit processor behind those COMMITs); our applies
                // also wait for our own log, so it may have to wait.
                self.syncs.push_back(self.committed);
                self.deliver_syncs(out);
                return Ok(());
            }
            p @ Packet::Revalidate { .. } => {
                out.push(LearnerCommand::Deliver(p));
                return Ok(());
            }
            other => return Err(format!("unexpected {} while serving", other.name())),
        }
        self.progress(out)
    }

    /// NEWLEADER: append every txn of the sync, wait until durable.
    fn persist_log(&mut self, out: &mut Vec<LearnerCommand>) {
        self.phase = Phase::Persisting(Persist::Log);
        self.append_pending(out);
        self.after_log_durable(out);
    }

    fn after_log_durable(&mut self, out: &mut Vec<LearnerCommand>) {
        if self.phase == Phase::Persisting(Persist::Log) && self.durable >= self.appended {
            // ZK-4643: the synced txns are durable; only now currentEpoch.
            self.phase = Phase::Persisting(Persist::CurrentEpoch);
            if self.new_epoch == self.current_epoch {
                // A follower rejoining the epoch it had: its currentEpoch
                // already says so, durably (read at start or written by
                // us); rewriting it cost the rejoin two fsyncs.
                self.ack_newleader(out);
            } else {
                out.push(LearnerCommand::PersistCurrentEpoch(self.new_epoch));
            }
        }
    }

    fn ack_newleader(&mut self, out: &mut Vec<LearnerCommand>) {
        // The first packet after NEWLEADER is its ACK (ZK-4685).
        out.push(LearnerCommand::Send(Packet::Ack {
            zxid: Zxid::new(self.new_epoch, 0),
        }));
        self.phase = Phase::AwaitUpToDate;
    }

    fn append_pending(&mut self, out: &mut Vec<LearnerCommand>) {
        // Appended proposals are a prefix of `pending` (appended in order):
        // only the suffix after it is looked at (a scan of every pending
        // proposal per event was 2 % of a loaded follower).
        let from = self
            .pending
            .iter()
            .rposition(|p| p.appended)
            .map_or(0, |i| i + 1);
        for p in self.pending.range_mut(from..) {
            p.appended = true;
            self.appended = p.zxid;
            out.push(LearnerCommand::Append {
                zxid: p.zxid,
                txn: p.txn.clone(),
            });
        }
    }

    /// Moves the pipeline along: appends in broadcast, ACKs what is durable,
    /// applies what is committed and durable.
    fn progress(&mut self, out: &mut Vec<LearnerCommand>) -> Result<(), String> {
        match self.phase {
            Phase::Persisting(Persist::Log) => {
                // Live txns after NEWLEADER join the same append.
                self.append_pending(out);
                self.after_log_durable(out);
            }
            // Live txns are logged while UPTODATE is awaited; they apply
            // in broadcast only (`apply_ready`).
            Phase::AwaitUpToDate => self.append_pending(out),
            Phase::Broadcast => {
                self.append_pending(out);
                if !self.cfg.observer {
                    self.send_acks(out);
                }
                self.apply_ready(out);
            }
            _ => {}
        }
        Ok(())
    }

    /// One ACK per durable proposal, in zxid order.
    fn send_acks(&mut self, out: &mut Vec<LearnerCommand>) {
        // `pending` is in zxid order and appended in order: start after what
        // was acked and stop at the first proposal not durable yet (going on
        // to the end scanned every proposal in flight per packet received).
        // Nothing new is durable (most packets): no search.
        let from = if self.durable <= self.acked {
            self.pending.len()
        } else {
            self.pending.partition_point(|p| p.zxid <= self.acked)
        };
        for p in self.pending.range(from..) {
            if p.zxid > self.durable || !p.appended {
                break;
            }
            out.push(LearnerCommand::Send(Packet::Ack { zxid: p.zxid }));
            self.acked = p.zxid;
        }
        // Proposals applied already (committed before our ACK) need no ACK.
        if self.acked < self.applied {
            self.acked = self.applied;
        }
    }

    fn apply_ready(&mut self, out: &mut Vec<LearnerCommand>) {
        // Called in broadcast only: nothing is applied before UPTODATE, as
        // until then the leader's epoch may never establish and the next
        // leader may not have the sync's txns (an applied txn must be one
        // the ensemble committed).
        debug_assert_eq!(self.phase, Phase::Broadcast);
        while let Some(p) = self.pending.front() {
            if !(p.committed && p.appended && p.zxid <= self.durable) {
                break;
            }
            if !self.cfg.observer && p.zxid > self.acked {
                break; // its ACK goes out first
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.committed_front = self.committed_front.saturating_sub(1);
            self.applied = p.zxid;
            out.push(LearnerCommand::Apply {
                zxid: p.zxid,
                txn: p.txn,
            });
        }
        self.deliver_syncs(out);
    }

    /// Delivers the SYNCs whose committed txns are all applied, in order.
    fn deliver_syncs(&mut self, out: &mut Vec<LearnerCommand>) {
        while self.syncs.front().is_some_and(|z| *z <= self.applied) {
            self.syncs.pop_front();
            out.push(LearnerCommand::Deliver(Packet::Sync));
        }
    }

    /// The invariants between the pointers (debug builds, and the simulator).
    pub fn validate(&self) {
        debug_assert!(self.applied <= self.committed, "applied beyond committed");
        debug_assert!(self.applied <= self.durable, "applied beyond durable");
        debug_assert!(self.durable <= self.appended, "durable beyond appended");
        debug_assert!(
            self.appended <= self.last_received,
            "appended beyond received"
        );
        debug_assert!(
            self.accepted_epoch >= self.current_epoch,
            "acceptedEpoch {} below currentEpoch {}",
            self.accepted_epoch,
            self.current_epoch
        );
        // The newest pair only: `receive_txn` pushes each txn after checking
        // it follows the last received, so the order holds by induction, and
        // walking every pending txn after each step made a debug build's DIFF
        // of n txns take n²/2 steps (13k txns: seconds, past initLimit).
        let n = self.pending.len();
        debug_assert!(
            n < 2 || self.pending[n - 2].zxid < self.pending[n - 1].zxid,
            "pending txns out of order"
        );
        // Likewise the committed prefix: `commit` extends it by one and
        // applies shrink it from the front.
        debug_assert!(
            self.committed_front <= n
                && (self.committed_front == 0 || self.pending[self.committed_front - 1].committed),
            "an uncommitted txn before committed_front"
        );
    }
}
