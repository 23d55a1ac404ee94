//! The leader side of Zab: epoch agreement, syncing each learner, and the
//! broadcast (quorum.md §3.3–§3.9).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;
use zk_jute::Zxid;

use crate::packet::{PROTOCOL_VERSION, Packet};

/// A learner connection, numbered by the runtime.
pub type Conn = u64;

/// The last epoch whose zxids are positive (`epoch << 32` below 2^63).
const MAX_EPOCH: u32 = i32::MAX as u32;

/// A leader's fixed facts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaderConfig {
    /// Our server id.
    pub sid: u64,
    /// The voting members (ourselves included).
    pub voters: BTreeSet<u64>,
    /// Hierarchical quorums over `voters` (zoo.cfg's `group.N` and
    /// `weight.N`), instead of a majority of them. A reconfig's
    /// configuration is a majority again (such a reconfig is refused while
    /// groups are configured; one found in the history drops them).
    pub groups: Option<Arc<zk_election::Groups>>,
    /// initLimit, in ticks ([`LeaderEvent::Tick`] comes every half tick).
    pub init_limit: u64,
    /// syncLimit, in ticks.
    pub sync_limit: u64,
    /// How many committed txns are kept for DIFF (`zookeeper.commitLogCount`, 500).
    pub commit_log_count: usize,
    /// The configuration's `server.N=...` lines (each ending in a newline),
    /// sent with NEWLEADER followed by `version=<hex>`.
    pub members: Bytes,
    /// That configuration's version (0 for a static config): a learner
    /// whose LearnerInfo names a later one is refused, as ZooKeeper's
    /// LearnerHandler refuses it ("Follower is ahead of the leader").
    pub config_version: i64,
    /// reconfigEnabled: a configuration of version 0 takes the new epoch's
    /// first zxid as its version, sent with NEWLEADER and current once the
    /// epoch is established ([`Leader::config_version`]), as ZooKeeper's
    /// leader does (ZOOKEEPER-1783) so that an established configuration
    /// wins over initial ones.
    pub version_config: bool,
    /// A learner older than the window is synced by DIFF from the on-disk
    /// log when the runtime can read it ([`LeaderCommand::ReadLog`]; Apache's
    /// `getProposalsFromTxnLog`), else by SNAP.
    pub diff_from_log: bool,
}

/// A configuration's text as ZooKeeper sends and stores it: the members'
/// `server.N=...` lines (each ending in a newline), then `version=<hex>`.
pub fn config_text(members: &[u8], version: i64) -> Bytes {
    let mut text = members.to_vec();
    text.extend_from_slice(format!("version={version:x}").as_bytes());
    Bytes::from(text)
}

/// A configuration a reconfig proposes ([`Leader::propose_reconfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NewConfig {
    /// Its voting members.
    pub voters: BTreeSet<u64>,
    /// Its `server.N=...` lines (each ending in a newline), for NEWLEADER.
    pub members: Bytes,
}

/// A reconfig proposed and not yet committed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PendingConfig {
    zxid: Zxid,
    voters: Arc<BTreeSet<u64>>,
    members: Bytes,
}

/// What the runtime knows when the leader starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaderStart {
    /// The `acceptedEpoch` file.
    pub accepted_epoch: u32,
    /// The `currentEpoch` file.
    pub current_epoch: u32,
    /// The zxid the tree is at.
    pub applied: Zxid,
    /// The most recent txns the tree has applied (at most
    /// `commit_log_count`, oldest first, ending at `applied`): DIFF material.
    pub recent: Vec<(Zxid, Bytes)>,
    /// The log's txns after `applied` (logged, never applied here): the
    /// leader's history includes them, and they are applied once the new
    /// epoch is established.
    pub tail: Vec<(Zxid, Bytes)>,
    /// A reconfig in the history (its zxid, its configuration) that is
    /// later than the configuration's version (ZooKeeper's last-seen
    /// configuration: logged, never activated here). Until the epoch is
    /// established a quorum of its voters is needed too, NEWLEADER carries
    /// it, and it is current from the establishment on (a leader that is
    /// not one of its voters then hands over, as after its own reconfig).
    pub pending: Option<(Zxid, NewConfig)>,
}

/// Events a leader reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderEvent {
    /// A learner connected to the quorum port.
    Connected(Conn),
    /// A packet from a learner.
    Packet(Conn, Packet),
    /// A learner's connection closed.
    Closed(Conn),
    /// [`LeaderCommand::PersistAcceptedEpoch`] is durable.
    AcceptedEpochDurable(u32),
    /// [`LeaderCommand::PersistCurrentEpoch`] is durable.
    CurrentEpochDurable(u32),
    /// Our log is durable up to `zxid`.
    LogDurable(Zxid),
    /// A learner forwarded a client `sync`: answer once what is proposed now
    /// is committed.
    Sync(Conn),
    /// The answer to [`LeaderCommand::ReadLog`]: the log's txns from `from`
    /// on, in order, or `None` when the log does not reach back to `from` or
    /// reading it would cost more than a snapshot.
    LogRead {
        /// The learner.
        conn: Conn,
        /// What the log held.
        txns: Option<Vec<(Zxid, Bytes)>>,
    },
    /// Half a tickTime passed.
    Tick,
}

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderCommand {
    /// Send a packet to a learner.
    Send(Conn, Packet),
    /// Write the snapshot body of the tree as it is now (after the SNAP packet
    /// just sent), before any later packet to that learner.
    SendSnapshot(Conn),
    /// Close a learner's connection.
    Close(Conn, String),
    /// Read the log's txns with zxid >= `from` (up to its end) for a learner
    /// older than the in-memory window, and report them with
    /// [`LeaderEvent::LogRead`] (possibly later; other events may come
    /// first) — or `None` when the log does not reach back to `from` (its
    /// first record is after it: purged, or replaced by a snapshot), as
    /// Apache's `getProposalsFromTxnLog` refuses a log that does not start at
    /// or below the learner's zxid.
    ReadLog {
        /// The learner.
        conn: Conn,
        /// The learner's last zxid.
        from: Zxid,
    },
    /// Write `acceptedEpoch` durably, then report it.
    PersistAcceptedEpoch(u32),
    /// Write `currentEpoch` durably, then report it.
    PersistCurrentEpoch(u32),
    /// Append a txn to our log.
    Append {
        /// Its zxid.
        zxid: Zxid,
        /// Its bytes.
        txn: Bytes,
    },
    /// Apply a committed txn to the tree.
    Apply {
        /// Its zxid.
        zxid: Zxid,
        /// Its bytes.
        txn: Bytes,
    },
    /// The epoch is established: serve clients.
    Established {
        /// The new epoch.
        epoch: u32,
    },
    /// A learner's packet for the session layer (REQUEST, REVALIDATE, PING
    /// touches), from server `sid`.
    FromLearner(Conn, u64, Packet),
    /// Stop leading and elect again.
    GoLooking(String),
}

/// Why a proposal was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    /// The epoch is not established (or the leader stepped down).
    NotLeading,
    /// The zxid is not [`Leader::next_zxid`].
    OutOfOrder {
        /// What was given.
        zxid: Zxid,
        /// What was expected.
        expected: Zxid,
    },
    /// The counter reached 0xffffffff: the leader steps down (ZOOKEEPER-1277).
    CounterExhausted,
    /// A reconfig is proposed and not committed yet (RECONFIGINPROGRESS).
    ReconfigInProgress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    /// Collecting FOLLOWERINFOs for the epoch.
    Discovery,
    /// acceptedEpoch being written.
    AcceptingEpoch,
    /// Waiting for a quorum of ACKEPOCHs.
    AwaitEpochAcks,
    /// currentEpoch being written.
    SettingEpoch,
    /// Syncing learners until a quorum acked NEWLEADER.
    Syncing,
    /// Established: proposing.
    Broadcast,
    /// Stepped down.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Stage {
    AwaitInfo,
    AwaitEpoch,
    AwaitAckEpoch,
    AwaitSync,
    AwaitLogRead,
    AwaitNewLeaderAck,
    AwaitUpToDate,
    Serving,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Handler {
    sid: u64,
    observer: bool,
    stage: Stage,
    last_zxid: Zxid,
    silent: u64,
    /// Live proposals sent and not yet acked, with the half tick they were
    /// sent at (SyncLimitCheck).
    unacked: VecDeque<(Zxid, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Proposal {
    zxid: Zxid,
    txn: Bytes,
    /// The learners that acked it (our own ack is `zxid <= durable`).
    acks: SmallVec<[u64; 4]>,
    /// The other voters whose quorum it needs: a proposal made while a
    /// reconfig is pending needs a quorum of the old and of the new
    /// voters (ZooKeeper's second quorum verifier).
    also: Option<Arc<BTreeSet<u64>>>,
}

/// The sync a learner gets (quorum.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncKind {
    /// DIFF(zxid) and the txns after the learner's last.
    Diff(Zxid),
    /// TRUNC(zxid) and the txns after it.
    Trunc(Zxid),
    /// SNAP(zxid), the snapshot body, and the txns after it.
    Snap(Zxid),
}

/// The leader's learners as Apache's leader gauges count them
/// ([`Leader::learner_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    /// Learner connections, syncing or serving.
    pub learners: usize,
    /// Followers whose sync is queued or done.
    pub synced_followers: usize,
    /// Observers whose sync is queued or done.
    pub synced_observers: usize,
    /// Forwarded `sync`s waiting for a commit.
    pub pending_syncs: usize,
}

/// One leader's Zab state for one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Leader {
    cfg: LeaderConfig,
    phase: Phase,
    /// Half ticks in the current waiting phase.
    waited: u64,
    accepted_epoch: u32,
    current_epoch: u32,
    /// The start's (currentEpoch, last zxid): a learner more recent is refused.
    summary: (u32, Zxid),
    epoch: u32,
    /// Voters whose FOLLOWERINFO arrived (ourselves included).
    connecting: BTreeSet<u64>,
    /// Voters whose ACKEPOCH counted (ourselves included).
    electing: BTreeSet<u64>,
    /// Voters that acked NEWLEADER (ourselves included).
    newleader_acks: BTreeSet<u64>,
    handlers: BTreeMap<Conn, Handler>,
    /// Applied txns kept for DIFF, oldest first.
    recent: VecDeque<(Zxid, Bytes)>,
    /// History not yet applied (the start's log tail), oldest first.
    tail: VecDeque<(Zxid, Bytes)>,
    applied: Zxid,
    committed: Zxid,
    durable: Zxid,
    proposed: Zxid,
    outstanding: VecDeque<Proposal>,
    /// Client syncs waiting for a zxid to commit.
    syncs: VecDeque<(Zxid, Conn)>,
    /// Half ticks since the start.
    ticks: u64,
    /// The one-voter case without an election ([`Leader::standalone`]).
    standalone: bool,
    /// A reconfig proposed and not yet committed.
    pending: Option<PendingConfig>,
    /// The configuration made current is one this leader is no voter of:
    /// it commits and proposes nothing more (ZooKeeper's `allowedToCommit
    /// = false`) and steps down at the next tick, once the packets that
    /// activate it (COMMITANDACTIVATE, UPTODATE) are on their way.
    handing_over: bool,
}

impl Leader {
    /// A leader just elected: it waits for learners and proposes the epoch.
    pub fn new(cfg: LeaderConfig, start: LeaderStart, out: &mut Vec<LeaderCommand>) -> Self {
        let last = start.tail.last().map_or(start.applied, |t| t.0);
        let mut l = Self {
            phase: Phase::Discovery,
            waited: 0,
            accepted_epoch: start.accepted_epoch,
            current_epoch: start.current_epoch,
            summary: (start.current_epoch, last),
            // getEpochToPropose: at least our own acceptedEpoch + 1.
            epoch: start.accepted_epoch + 1,
            connecting: BTreeSet::from([cfg.sid]),
            electing: BTreeSet::from([cfg.sid]),
            newleader_acks: BTreeSet::from([cfg.sid]),
            handlers: BTreeMap::new(),
            recent: start.recent.into_iter().collect(),
            tail: start.tail.into_iter().collect(),
            applied: start.applied,
            committed: start.applied,
            durable: last,
            proposed: last,
            outstanding: VecDeque::new(),
            syncs: VecDeque::new(),
            ticks: 0,
            standalone: false,
            pending: start.pending.map(|(zxid, new)| PendingConfig {
                zxid,
                voters: Arc::new(new.voters),
                members: new.members,
            }),
            handing_over: false,
            cfg,
        };
        l.maybe_fix_epoch(out);
        l.validate();
        l
    }

    /// The one-voter case: ZooKeeper's standalone server, a quorum of one
    /// without an election, learners or epoch files. Broadcast starts at once
    /// ([`LeaderCommand::Established`]) in the epoch of `applied` (0 on a
    /// fresh server, whose first txn is 0x1, as ZooKeeper's standalone
    /// server numbers them), a proposal commits once it is durable here, and
    /// an exhausted counter moves on to the next epoch (there is no election
    /// to force). The runtime is the same as an ensemble leader's.
    pub fn standalone(sid: u64, applied: Zxid, out: &mut Vec<LeaderCommand>) -> Self {
        let cfg = LeaderConfig {
            sid,
            voters: BTreeSet::from([sid]),
            groups: None,
            init_limit: 0,
            sync_limit: 0,
            commit_log_count: 0,
            members: Bytes::new(),
            diff_from_log: false,
            config_version: 0,
            version_config: false,
        };
        let start = LeaderStart {
            accepted_epoch: applied.epoch(),
            current_epoch: applied.epoch(),
            applied,
            recent: Vec::new(),
            tail: Vec::new(),
            pending: None,
        };
        let mut discard = Vec::new();
        let mut l = Leader::new(cfg, start, &mut discard);
        l.standalone = true;
        l.epoch = applied.epoch();
        l.next_phase(Phase::Broadcast);
        out.push(LeaderCommand::Established { epoch: l.epoch });
        l.validate();
        l
    }

    /// The new epoch (final once acceptedEpoch is written).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The configuration's current version: the start's, or the version
    /// [`LeaderConfig::version_config`] gave it once the epoch is
    /// established.
    pub fn config_version(&self) -> i64 {
        self.cfg.config_version
    }

    /// The current voters (ourselves included while we lead).
    pub fn voters(&self) -> &BTreeSet<u64> {
        &self.cfg.voters
    }

    /// The current configuration's text: its members, then `version=`.
    pub fn config(&self) -> Bytes {
        config_text(&self.cfg.members, self.cfg.config_version)
    }

    /// The version NEWLEADER carries.
    fn newleader_config_version(&self) -> i64 {
        if let Some(p) = &self.pending {
            return p.zxid.as_i64();
        }
        if self.cfg.version_config && self.cfg.config_version == 0 {
            Zxid::new(self.epoch, 0).as_i64()
        } else {
            self.cfg.config_version
        }
    }

    /// Whether the epoch is established and proposals are taken.
    pub fn is_established(&self) -> bool {
        self.phase == Phase::Broadcast
    }

    /// Whether it stepped down.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Highest zxid committed (and applied).
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// Highest zxid proposed.
    pub fn proposed(&self) -> Zxid {
        self.proposed
    }

    /// The epoch files as this leader had them written.
    pub fn epochs(&self) -> (u32, u32) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// Learners in broadcast (synced and serving), by sid.
    pub fn serving_learners(&self) -> Vec<u64> {
        self.handlers
            .values()
            .filter(|h| h.stage == Stage::Serving)
            .map(|h| h.sid)
            .collect()
    }

    /// What Apache's leader gauges count (mntr's `zk_learners`,
    /// `zk_synced_followers`, `zk_synced_observers`, `zk_pending_syncs`).
    pub fn learner_counts(&self) -> LearnerCounts {
        // Apache counts a learner as synced ("forwarding") once its sync is
        // queued, before it acks NEWLEADER (`LearnerHandler.syncFollower` → `startForwarding`).
        let synced = |observer: bool| {
            self.handlers
                .values()
                .filter(|h| h.observer == observer && h.stage >= Stage::AwaitNewLeaderAck)
                .count()
        };
        LearnerCounts {
            learners: self.handlers.len(),
            synced_followers: synced(false),
            synced_observers: synced(true),
            pending_syncs: self.syncs.len(),
        }
    }

    /// The server id of a learner connection, once its FOLLOWERINFO /
    /// OBSERVERINFO named it.
    pub fn learner_sid(&self, conn: Conn) -> Option<u64> {
        self.handlers
            .get(&conn)
            .filter(|h| h.stage > Stage::AwaitInfo)
            .map(|h| h.sid)
    }

    /// The zxid the next proposal must carry.
    pub fn next_zxid(&self) -> Zxid {
        if self.standalone {
            return self.proposed.next();
        }
        if self.proposed.epoch() < self.epoch {
            Zxid::new(self.epoch, 1)
        } else {
            Zxid::from(self.proposed.as_i64() + 1)
        }
    }

    /// Proposes a txn built for [`Leader::next_zxid`] (Zab: PROPOSAL).
    pub fn propose(
        &mut self,
        zxid: Zxid,
        txn: Bytes,
        out: &mut Vec<LeaderCommand>,
    ) -> Result<(), ProposeError> {
        if self.phase != Phase::Broadcast || self.handing_over {
            return Err(ProposeError::NotLeading);
        }
        let expected = self.next_zxid();
        if zxid.counter() == u32::MAX && !self.standalone {
            self.step_down(
                "the zxid counter is exhausted, forcing a new election".into(),
                out,
            );
            return Err(ProposeError::CounterExhausted);
        }
        if zxid != expected {
            return Err(ProposeError::OutOfOrder { zxid, expected });
        }
        self.proposed = zxid;
        out.push(LeaderCommand::Append {
            zxid,
            txn: txn.clone(),
        });
        let at = self.ticks;
        for (conn, h) in self.handlers.iter_mut() {
            if h.stage >= Stage::AwaitNewLeaderAck && !h.observer {
                out.push(LeaderCommand::Send(
                    *conn,
                    Packet::Proposal {
                        zxid,
                        txn: txn.clone(),
                    },
                ));
                // Only proposals that reach a learner after its UPTODATE are
                // sure to be acked one by one (before that it may apply a
                // committed txn without acking it).
                if h.stage == Stage::Serving {
                    h.unacked.push_back((zxid, at));
                }
            }
        }
        self.outstanding.push_back(Proposal {
            zxid,
            txn,
            acks: SmallVec::new(),
            also: self.pending.as_ref().map(|p| p.voters.clone()),
        });
        self.validate();
        Ok(())
    }

    /// Proposes a reconfig txn (built for [`Leader::next_zxid`]) whose
    /// configuration is `new`, version `zxid`. It commits once a quorum of
    /// the current voters and a quorum of the new ones acked it, and so does
    /// every proposal made until then; its COMMIT is COMMITANDACTIVATE
    /// (INFORMANDACTIVATE to observers) naming the designated leader, and
    /// from then on the new voters count. A leader that is not a voter of the
    /// new configuration commits nothing more and steps down at the next tick
    /// (ZooKeeper hands over to the designated leader; ours elects one).
    pub fn propose_reconfig(
        &mut self,
        zxid: Zxid,
        txn: Bytes,
        new: NewConfig,
        out: &mut Vec<LeaderCommand>,
    ) -> Result<(), ProposeError> {
        if self.pending.is_some() {
            return Err(ProposeError::ReconfigInProgress);
        }
        self.propose(zxid, txn, out)?;
        let voters = Arc::new(new.voters);
        if let Some(p) = self.outstanding.back_mut() {
            p.also = Some(voters.clone());
        }
        self.pending = Some(PendingConfig {
            zxid,
            voters,
            members: new.members,
        });
        Ok(())
    }

    /// Whether a reconfig is proposed and not committed yet.
    pub fn reconfig_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// ZooKeeper's `isQuorumSynced`: whether `voters` hold a quorum of
    /// servers synced with this leader (followers that acked NEWLEADER, and
    /// this leader if it is one of them).
    pub fn quorum_synced(&self, voters: &BTreeSet<u64>) -> bool {
        majority_of(voters, &self.synced())
    }

    /// The servers synced with this leader: itself and the followers that
    /// acked NEWLEADER (ZooKeeper's `syncedAckSet`).
    fn synced(&self) -> BTreeSet<u64> {
        let mut synced: BTreeSet<u64> = self
            .handlers
            .values()
            .filter(|h| h.stage >= Stage::AwaitUpToDate && !h.observer)
            .map(|h| h.sid)
            .collect();
        synced.insert(self.cfg.sid);
        synced
    }

    /// Feeds one event; commands are appended to `out` in the order to run them.
    pub fn step(&mut self, event: LeaderEvent, out: &mut Vec<LeaderCommand>) {
        if self.phase == Phase::Done {
            return;
        }
        match event {
            LeaderEvent::Connected(conn) => {
                self.handlers.insert(
                    conn,
                    Handler {
                        sid: 0,
                        observer: false,
                        stage: Stage::AwaitInfo,
                        last_zxid: Zxid::ZERO,
                        silent: 0,
                        unacked: VecDeque::new(),
                    },
                );
            }
            LeaderEvent::Packet(conn, p) => {
                if let Some(h) = self.handlers.get_mut(&conn) {
                    h.silent = 0;
                    if let Err(reason) = self.packet(conn, p, out) {
                        self.drop_handler(conn);
                        out.push(LeaderCommand::Close(conn, reason));
                    }
                }
            }
            LeaderEvent::Closed(conn) => self.drop_handler(conn),
            LeaderEvent::AcceptedEpochDurable(e) => {
                if self.phase == Phase::AcceptingEpoch && e == self.epoch {
                    self.accepted_epoch = e;
                    self.next_phase(Phase::AwaitEpochAcks);
                    let waiting: Vec<Conn> = self.in_stage(Stage::AwaitEpoch);
                    for conn in waiting {
                        self.send_leader_info(conn, out);
                    }
                    // A quorum of one voter (standaloneEnabled=false) has
                    // its epoch acks already.
                    self.maybe_set_epoch(out);
                }
            }
            LeaderEvent::CurrentEpochDurable(e) => {
                if self.phase == Phase::SettingEpoch && e == self.epoch {
                    self.current_epoch = e;
                    self.next_phase(Phase::Syncing);
                    for conn in self.in_stage(Stage::AwaitSync) {
                        self.sync_learner(conn, out);
                    }
                    self.maybe_establish(out);
                }
            }
            LeaderEvent::LogDurable(z) => {
                if z > self.durable {
                    self.durable = z.min(self.proposed);
                }
                self.try_commit(out);
            }
            LeaderEvent::Sync(conn) => {
                if self.outstanding.is_empty() {
                    out.push(LeaderCommand::Send(conn, Packet::Sync));
                } else {
                    self.syncs.push_back((self.proposed, conn));
                }
            }
            LeaderEvent::LogRead { conn, txns } => self.log_read(conn, txns, out),
            LeaderEvent::Tick => self.tick(out),
        }
        self.validate();
    }

    fn in_stage(&self, stage: Stage) -> Vec<Conn> {
        self.handlers
            .iter()
            .filter(|(_, h)| h.stage == stage)
            .map(|(c, _)| *c)
            .collect()
    }

    fn next_phase(&mut self, phase: Phase) {
        self.phase = phase;
        self.waited = 0;
    }

    fn is_voter(&self, sid: u64) -> bool {
        self.cfg.voters.contains(&sid)
    }

    fn quorum(&self, acks: &BTreeSet<u64>) -> bool {
        match &self.cfg.groups {
            Some(g) => g.contains_quorum(acks),
            None => majority_of(&self.cfg.voters, acks),
        }
    }

    /// [`Self::quorum`], and a quorum of a pending reconfig's voters too
    /// (ZooKeeper's `SyncedLearnerTracker` with the last-seen verifier).
    fn quorum_all(&self, sids: &BTreeSet<u64>) -> bool {
        self.quorum(sids)
            && self
                .pending
                .as_ref()
                .is_none_or(|p| majority_of(&p.voters, sids))
    }

    /// Whether a proposal is acked by a quorum: by us (durable here) and
    /// enough learners (a leader is always a voter of its current
    /// configuration), and by a quorum of the new voters of a reconfig
    /// pending when it was made (counting us only if we are one of them).
    fn committable(&self, p: &Proposal) -> bool {
        if p.zxid > self.durable {
            return false;
        }
        if let Some(g) = &self.cfg.groups {
            if !g.contains_quorum(p.acks.iter().chain([&self.cfg.sid])) {
                return false;
            }
        } else {
            let learners = p.acks.iter().filter(|s| self.is_voter(**s)).count();
            if learners < self.cfg.voters.len() / 2 {
                return false;
            }
        }
        // Durable here: our own ack counts too.
        p.also
            .as_ref()
            .is_none_or(|voters| majority_of(voters, p.acks.iter().chain([&self.cfg.sid])))
    }

    /// The outstanding proposal `zxid`. They are in zxid order (pushed by
    /// `propose` only, popped from the front) and, within an epoch, one
    /// counter apart, so its distance from the front is its index; a binary
    /// search covers anything else. An ACK for one committed and removed
    /// already (the slower followers' ACKs, every time) must not scan them
    /// all. The search's probes were 1.5 % of a loaded leader's core.
    fn outstanding_mut(&mut self, zxid: Zxid) -> Option<&mut Proposal> {
        let front = self.outstanding.front()?.zxid;
        let d = zxid.as_u64().checked_sub(front.as_u64())? as usize;
        let i = if self.outstanding.get(d).is_some_and(|p| p.zxid == zxid) {
            d
        } else {
            self.outstanding
                .binary_search_by_key(&zxid, |p| p.zxid)
                .ok()?
        };
        self.outstanding.get_mut(i)
    }

    fn step_down(&mut self, reason: String, out: &mut Vec<LeaderCommand>) {
        self.phase = Phase::Done;
        for conn in self.handlers.keys() {
            out.push(LeaderCommand::Close(
                *conn,
                "the leader is stepping down".into(),
            ));
        }
        self.handlers.clear();
        out.push(LeaderCommand::GoLooking(reason));
    }

    fn tick(&mut self, out: &mut Vec<LeaderCommand>) {
        if self.handing_over {
            self.step_down(
                "the configuration made current makes this server no voter: the new voters elect a leader"
                    .into(),
                out,
            );
            return;
        }
        self.waited += 1;
        if self.phase != Phase::Broadcast && self.waited > 2 * self.cfg.init_limit {
            let what = match self.phase {
                Phase::Discovery | Phase::AcceptingEpoch => "epoch from a quorum of followers",
                Phase::AwaitEpochAcks | Phase::SettingEpoch => "epoch acks from a quorum",
                _ => "NEWLEADER acks from a quorum",
            };
            self.step_down(format!("timed out waiting for {what}"), out);
            return;
        }
        self.ticks += 1;
        let (init, sync) = (2 * self.cfg.init_limit, 2 * self.cfg.sync_limit);
        let mut silent = Vec::new();
        for (conn, h) in self.handlers.iter_mut() {
            h.silent += 1;
            let limit = if h.stage >= Stage::AwaitUpToDate {
                sync
            } else {
                init
            };
            // SyncLimitCheck: a follower that has not acked a proposal for
            // syncLimit ticks is as good as silent, pings or not.
            let lagging = h.stage == Stage::Serving
                && !h.observer
                && h.unacked
                    .front()
                    .is_some_and(|(_, at)| self.ticks - at > sync);
            if h.silent > limit || lagging {
                silent.push(*conn);
            } else if h.stage >= Stage::AwaitUpToDate {
                out.push(LeaderCommand::Send(
                    *conn,
                    Packet::Ping {
                        zxid: self.proposed,
                        data: None,
                    },
                ));
            }
        }
        for conn in silent {
            self.drop_handler(conn);
            out.push(LeaderCommand::Close(
                conn,
                "the learner was silent too long".into(),
            ));
        }
        if self.phase == Phase::Broadcast {
            let synced = self.synced();
            if !self.quorum_all(&synced) {
                self.step_down(
                    format!("not sufficient followers synced, only synced with sids: {synced:?}"),
                    out,
                );
            }
        }
    }

    fn packet(
        &mut self,
        conn: Conn,
        p: Packet,
        out: &mut Vec<LeaderCommand>,
    ) -> Result<(), String> {
        // The handler's few plain fields, not a clone of it (its `unacked`
        // queue holds every proposal in flight: cloning it for each ACK was
        // 1.4 % of a loaded sequencer).
        let Some((stage, sid, observer)) = self
            .handlers
            .get(&conn)
            .map(|h| (h.stage, h.sid, h.observer))
        else {
            return Ok(());
        };
        match (stage, p) {
            (Stage::AwaitInfo, Packet::FollowerInfo { zxid, info }) => {
                self.learner_info(conn, zxid, info, false, out)
            }
            (Stage::AwaitInfo, Packet::ObserverInfo { zxid, info }) => {
                self.learner_info(conn, zxid, info, true, out)
            }
            (
                Stage::AwaitAckEpoch,
                Packet::AckEpoch {
                    zxid,
                    current_epoch,
                },
            ) => self.ack_epoch(conn, zxid, current_epoch, out),
            (Stage::AwaitNewLeaderAck, Packet::Ack { zxid }) => {
                if let Some(h) = self.handlers.get_mut(&conn) {
                    h.stage = Stage::AwaitUpToDate;
                }
                if zxid == Zxid::new(self.epoch, 0) && !observer {
                    self.newleader_acks.insert(sid);
                }
                if self.phase == Phase::Broadcast {
                    self.send_uptodate(conn, out);
                } else {
                    self.maybe_establish(out);
                }
                Ok(())
            }
            (Stage::AwaitNewLeaderAck, other) => Err(format!(
                "next packet was supposed to be the NEWLEADER ACK, got {}",
                other.name()
            )),
            (Stage::AwaitUpToDate | Stage::Serving, Packet::Ack { zxid }) => {
                if let Some(h) = self.handlers.get_mut(&conn) {
                    while h.unacked.front().is_some_and(|(z, _)| *z <= zxid) {
                        h.unacked.pop_front();
                    }
                }
                if !observer && zxid.counter() != 0 {
                    if let Some(p) = self.outstanding_mut(zxid)
                        && !p.acks.contains(&sid)
                    {
                        p.acks.push(sid);
                    }
                    self.try_commit(out);
                }
                Ok(())
            }
            (
                Stage::AwaitUpToDate | Stage::Serving,
                p @ (Packet::Ping { .. } | Packet::Request { .. } | Packet::Revalidate { .. }),
            ) => {
                out.push(LeaderCommand::FromLearner(conn, sid, p));
                Ok(())
            }
            (stage, other) => Err(format!(
                "unexpected {} from a learner in {stage:?}",
                other.name()
            )),
        }
    }

    /// FOLLOWERINFO / OBSERVERINFO (`LearnerHandler.run`, `getEpochToPropose`).
    fn learner_info(
        &mut self,
        conn: Conn,
        zxid: Zxid,
        info: zk_jute::LearnerInfo,
        observer_packet: bool,
        out: &mut Vec<LeaderCommand>,
    ) -> Result<(), String> {
        let known = self.pending.as_ref().map_or(self.cfg.config_version, |p| {
            p.zxid.as_i64().max(self.cfg.config_version)
        });
        if info.config_version > known {
            return Err(format!(
                "the learner's config version {:#x} is ahead of ours ({known:#x})",
                info.config_version
            ));
        }
        let sid = u64::try_from(info.server_id)
            .map_err(|_| format!("bad server id {}", info.server_id))?;
        // ZK-2959: observers (and non-voters) never count toward a quorum:
        // every count goes by the current voters. A follower that is not
        // one (yet: a reconfig may add it) gets PROPOSAL and COMMIT and
        // acks, as ZooKeeper's forwarding followers do.
        let observer = observer_packet;
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.sid = sid;
            h.observer = observer;
            h.stage = Stage::AwaitEpoch;
        }
        match self.phase {
            Phase::Discovery => {
                let accepted = zxid.epoch();
                if accepted >= MAX_EPOCH {
                    // No epoch after it keeps zxids positive (Apache's
                    // learner rejects a negative one as below its own).
                    return Err(format!(
                        "the learner's acceptedEpoch {accepted:#x} leaves no epoch after it"
                    ));
                }
                if accepted >= self.epoch {
                    self.epoch = accepted.saturating_add(1);
                }
                if !observer {
                    self.connecting.insert(sid);
                }
                self.maybe_fix_epoch(out);
            }
            Phase::AcceptingEpoch => {}
            _ => self.send_leader_info(conn, out),
        }
        Ok(())
    }

    fn maybe_fix_epoch(&mut self, out: &mut Vec<LeaderCommand>) {
        if self.phase == Phase::Discovery && self.quorum_all(&self.connecting) {
            // Leader.getEpochToPropose: the epoch is final; acceptedEpoch first.
            self.next_phase(Phase::AcceptingEpoch);
            out.push(LeaderCommand::PersistAcceptedEpoch(self.epoch));
        }
    }

    fn send_leader_info(&mut self, conn: Conn, out: &mut Vec<LeaderCommand>) {
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.stage = Stage::AwaitAckEpoch;
            out.push(LeaderCommand::Send(
                conn,
                Packet::LeaderInfo {
                    zxid: Zxid::new(self.epoch, 0),
                    protocol: PROTOCOL_VERSION,
                },
            ));
        }
    }

    fn ack_epoch(
        &mut self,
        conn: Conn,
        zxid: Zxid,
        current_epoch: i32,
        out: &mut Vec<LeaderCommand>,
    ) -> Result<(), String> {
        let Some(h) = self.handlers.get_mut(&conn) else {
            return Ok(());
        };
        h.last_zxid = zxid;
        h.stage = Stage::AwaitSync;
        let (sid, observer) = (h.sid, h.observer);
        // Leader.waitForEpochAck: checked only until the epoch-ack quorum
        // formed; a late learner ahead of us is TRUNCated instead.
        let electing = matches!(
            self.phase,
            Phase::AwaitEpochAcks | Phase::AcceptingEpoch | Phase::Discovery
        );
        if current_epoch != -1 && electing {
            let theirs = (i64::from(current_epoch), zxid);
            let ours = (i64::from(self.summary.0), self.summary.1);
            if theirs > ours {
                return Err(format!(
                    "the learner is ahead of the leader: (epoch {}, {zxid}) > (epoch {}, {})",
                    current_epoch, self.summary.0, self.summary.1
                ));
            }
            if !observer && zxid.as_i64() != -1 {
                self.electing.insert(sid);
            }
        }
        match self.phase {
            Phase::AwaitEpochAcks => self.maybe_set_epoch(out),
            Phase::Syncing | Phase::Broadcast => self.sync_learner(conn, out),
            _ => {}
        }
        Ok(())
    }

    /// Leader.waitForEpochAck: once a quorum acked the epoch (ourselves
    /// included), currentEpoch is written.
    fn maybe_set_epoch(&mut self, out: &mut Vec<LeaderCommand>) {
        if self.phase == Phase::AwaitEpochAcks && self.quorum_all(&self.electing) {
            self.next_phase(Phase::SettingEpoch);
            out.push(LeaderCommand::PersistCurrentEpoch(self.epoch));
        }
    }

    /// The whole history the leader knows, oldest first: the recent applied
    /// txns, then the unapplied tail.
    fn history(&self) -> impl Iterator<Item = &(Zxid, Bytes)> {
        self.recent.iter().chain(self.tail.iter())
    }

    /// `LearnerHandler.syncFollower` (quorum.md §3.4) over the in-memory window.
    pub fn sync_kind(&self, peer: Zxid) -> SyncKind {
        let last = self.tail.back().map_or(self.applied, |t| t.0);
        let (min, max) = match (
            self.recent.front().or(self.tail.front()),
            self.tail.back().or(self.recent.back()),
        ) {
            (Some(a), Some(b)) => (a.0, b.0),
            _ => (last, last),
        };
        let new_epoch_zxid = peer.counter() == 0;
        if peer == last {
            return SyncKind::Diff(peer);
        }
        if peer > max && !new_epoch_zxid {
            return SyncKind::Trunc(max);
        }
        if min <= peer && peer <= max {
            if new_epoch_zxid || self.history().any(|t| t.0 == peer) {
                return SyncKind::Diff(max);
            }
            // The first txn after the peer's: the same epoch means the peer
            // holds a txn we never had (truncate to the one before); another
            // epoch means we cannot tell (snapshot).
            let mut prev = None;
            for t in self.history() {
                if t.0 > peer {
                    return match prev {
                        Some(p) if t.0.epoch() == peer.epoch() => SyncKind::Trunc(p),
                        _ => SyncKind::Snap(self.applied),
                    };
                }
                prev = Some(t.0);
            }
        }
        SyncKind::Snap(self.applied)
    }

    fn sync_learner(&mut self, conn: Conn, out: &mut Vec<LeaderCommand>) {
        let Some(h) = self.handlers.get(&conn) else {
            return;
        };
        let peer = h.last_zxid;
        let kind = self.sync_kind(peer);
        let window_min = self.history().next().map(|t| t.0);
        if matches!(kind, SyncKind::Snap(_))
            && self.cfg.diff_from_log
            && window_min.is_some_and(|min| peer < min)
        {
            if let Some(h) = self.handlers.get_mut(&conn) {
                h.stage = Stage::AwaitLogRead;
            }
            out.push(LeaderCommand::ReadLog { conn, from: peer });
            return;
        }
        let from = match kind {
            SyncKind::Diff(_) => peer,
            SyncKind::Trunc(z) | SyncKind::Snap(z) => z,
        };
        let txns: Vec<(Zxid, Bytes)> = self.history().filter(|t| t.0 > from).cloned().collect();
        self.send_sync(conn, kind, txns, out);
    }

    /// A DIFF from the on-disk log (quorum.md §3.4 case 5): the log must hold
    /// the learner's own last txn (or the learner sits on an epoch's zxid 0)
    /// and join the in-memory window without a hole; otherwise SNAP.
    fn log_read(
        &mut self,
        conn: Conn,
        txns: Option<Vec<(Zxid, Bytes)>>,
        out: &mut Vec<LeaderCommand>,
    ) {
        let Some(h) = self
            .handlers
            .get(&conn)
            .filter(|h| h.stage == Stage::AwaitLogRead)
        else {
            return;
        };
        let peer = h.last_zxid;
        let end = self.tail.back().map_or(self.applied, |t| t.0);
        let mut txns = txns.unwrap_or_default();
        // Only history: proposals still outstanding are not in it.
        txns.retain(|t| t.0 <= end);
        let starts_right = match txns.first() {
            Some(first) => first.0 == peer || (peer.counter() == 0 && first.0 > peer),
            None => false,
        };
        let mut combined: Vec<(Zxid, Bytes)> = txns.into_iter().filter(|t| t.0 > peer).collect();
        let last_read = combined.last().map_or(peer, |t| t.0);
        let rest: Vec<(Zxid, Bytes)> = self
            .history()
            .filter(|t| t.0 > last_read)
            .cloned()
            .collect();
        let joins = rest.first().is_none_or(|t| follows(last_read, t.0));
        let contiguous = combined.windows(2).all(|w| follows(w[0].0, w[1].0));
        combined.extend(rest);
        let reaches_end = combined.last().is_some_and(|t| t.0 == end);
        if starts_right && joins && contiguous && reaches_end {
            self.send_sync(conn, SyncKind::Diff(end), combined, out);
        } else {
            let txns: Vec<(Zxid, Bytes)> = self
                .history()
                .filter(|t| t.0 > self.applied)
                .cloned()
                .collect();
            self.send_sync(conn, SyncKind::Snap(self.applied), txns, out);
        }
    }

    /// Queues the sync for a learner: the DIFF / TRUNC / SNAP packet, the
    /// history `txns` as PROPOSAL + COMMIT, NEWLEADER, then the outstanding
    /// proposals (followers); the learner joins the forwarding set.
    fn send_sync(
        &mut self,
        conn: Conn,
        kind: SyncKind,
        txns: Vec<(Zxid, Bytes)>,
        out: &mut Vec<LeaderCommand>,
    ) {
        let Some(h) = self.handlers.get(&conn) else {
            return;
        };
        match kind {
            SyncKind::Diff(z) => out.push(LeaderCommand::Send(conn, Packet::Diff { zxid: z })),
            SyncKind::Trunc(z) => out.push(LeaderCommand::Send(conn, Packet::Trunc { zxid: z })),
            SyncKind::Snap(z) => {
                out.push(LeaderCommand::Send(conn, Packet::Snap { zxid: z }));
                out.push(LeaderCommand::SendSnapshot(conn));
            }
        }
        for (zxid, txn) in txns {
            out.push(LeaderCommand::Send(conn, Packet::Proposal { zxid, txn }));
            out.push(LeaderCommand::Send(conn, Packet::Commit { zxid }));
        }
        out.push(LeaderCommand::Send(
            conn,
            Packet::NewLeader {
                zxid: Zxid::new(self.epoch, 0),
                config: self.newleader_config(),
            },
        ));
        // The outstanding proposals after NEWLEADER, not before as Apache's
        // leader queues them: their COMMITs come later still, and a ZooKeeper
        // 3.8.0-3.9.2 learner forgets the proposals it queued before NEWLEADER
        // when it handles it, so a COMMIT for one of them finds its queue empty
        // and kills its sync (ZOOKEEPER-4394: NullPointerException in
        // Learner.syncWithLeader; it re-syncs, and under a steady write load
        // crash-loops). After NEWLEADER every learner version queues a
        // PROPOSAL to log and acks it, as it does the live ones that follow.
        if !h.observer {
            for p in &self.outstanding {
                out.push(LeaderCommand::Send(
                    conn,
                    Packet::Proposal {
                        zxid: p.zxid,
                        txn: p.txn.clone(),
                    },
                ));
            }
        }
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.stage = Stage::AwaitNewLeaderAck;
        }
    }

    /// Forgets a learner's connection. Until the epoch is established its
    /// NEWLEADER ACK goes with it: a learner that left may have joined a
    /// newer epoch since, and an ACK it sent us before must not complete a
    /// quorum for ours after that epoch committed writes we lack (Apache
    /// keeps such ACKs; its leader then serves stale data until it notices,
    /// a tick later, that no quorum follows it).
    fn drop_handler(&mut self, conn: Conn) {
        if let Some(h) = self.handlers.remove(&conn)
            && self.phase == Phase::Syncing
            && h.sid != self.cfg.sid
        {
            self.newleader_acks.remove(&h.sid);
        }
    }

    /// NEWLEADER's configuration text: the members (a pending reconfig's),
    /// then the version.
    fn newleader_config(&self) -> Bytes {
        let members = self
            .pending
            .as_ref()
            .map_or(&self.cfg.members, |p| &p.members);
        config_text(members, self.newleader_config_version())
    }

    fn maybe_establish(&mut self, out: &mut Vec<LeaderCommand>) {
        if self.phase != Phase::Syncing || !self.quorum_all(&self.newleader_acks) {
            return;
        }
        self.next_phase(Phase::Broadcast);
        // The configuration NEWLEADER carried is now the current one.
        self.cfg.config_version = self.newleader_config_version();
        // The history became the new epoch's committed prefix: apply the tail.
        while let Some((zxid, txn)) = self.tail.pop_front() {
            self.applied = zxid;
            self.committed = zxid;
            out.push(LeaderCommand::Apply {
                zxid,
                txn: txn.clone(),
            });
            self.remember(zxid, txn);
        }
        // A reconfig of the history is committed with it: current now.
        if let Some(p) = self.pending.take() {
            self.cfg.voters = Arc::unwrap_or_clone(p.voters);
            self.cfg.groups = None;
            self.cfg.members = p.members;
        }
        out.push(LeaderCommand::Established { epoch: self.epoch });
        for conn in self.in_stage(Stage::AwaitUpToDate) {
            self.send_uptodate(conn, out);
        }
        self.handing_over = !self.is_voter(self.cfg.sid);
    }

    fn send_uptodate(&mut self, conn: Conn, out: &mut Vec<LeaderCommand>) {
        if let Some(h) = self.handlers.get_mut(&conn) {
            h.stage = Stage::Serving;
            out.push(LeaderCommand::Send(conn, Packet::UpToDate));
        }
    }

    fn remember(&mut self, zxid: Zxid, txn: Bytes) {
        self.recent.push_back((zxid, txn));
        while self.recent.len() > self.cfg.commit_log_count {
            self.recent.pop_front();
        }
    }

    /// Commits the oldest proposals a quorum acked, strictly in zxid order.
    fn try_commit(&mut self, out: &mut Vec<LeaderCommand>) {
        if self.handing_over {
            return;
        }
        while let Some(p) = self.outstanding.front() {
            if !self.committable(p) {
                break;
            }
            let Some(p) = self.outstanding.pop_front() else {
                break;
            };
            self.committed = p.zxid;
            let activated = self
                .pending
                .take_if(|c| c.zxid == p.zxid)
                .map(|c| self.activate(c, &p));
            for (conn, h) in &self.handlers {
                if h.stage < Stage::AwaitNewLeaderAck {
                    continue;
                }
                out.push(LeaderCommand::Send(
                    *conn,
                    match (h.observer, activated) {
                        (true, None) => Packet::Inform {
                            zxid: p.zxid,
                            txn: p.txn.clone(),
                        },
                        (false, None) => Packet::Commit { zxid: p.zxid },
                        (true, Some(leader)) => Packet::InformAndActivate {
                            zxid: p.zxid,
                            leader: leader as i64,
                            txn: p.txn.clone(),
                        },
                        (false, Some(leader)) => Packet::CommitAndActivate {
                            zxid: p.zxid,
                            leader: leader as i64,
                        },
                    },
                ));
            }
            self.applied = p.zxid;
            out.push(LeaderCommand::Apply {
                zxid: p.zxid,
                txn: p.txn.clone(),
            });
            self.remember(p.zxid, p.txn);
            while let Some((z, conn)) = self.syncs.front().copied() {
                if z > self.committed {
                    break;
                }
                self.syncs.pop_front();
                out.push(LeaderCommand::Send(conn, Packet::Sync));
            }
            if activated.is_some_and(|leader| leader != self.cfg.sid) {
                // ZooKeeper's `allowedToCommit = false`: the designated
                // leader commits what follows.
                self.handing_over = true;
                return;
            }
        }
    }

    /// The reconfig `p` commits: its configuration is current from now on
    /// (its version is its zxid), the proposals after it still need the old
    /// voters' quorum too, and the designated leader is returned: this
    /// leader if it stays a voter, else the first new voter that acked it
    /// (ZooKeeper's `getDesignatedLeader`).
    fn activate(&mut self, c: PendingConfig, p: &Proposal) -> u64 {
        let new = Arc::unwrap_or_clone(c.voters);
        let old = Arc::new(std::mem::replace(&mut self.cfg.voters, new));
        self.cfg.groups = None;
        self.cfg.members = c.members;
        self.cfg.config_version = p.zxid.as_i64();
        for q in &mut self.outstanding {
            q.also = Some(old.clone());
        }
        let voters = &self.cfg.voters;
        if voters.contains(&self.cfg.sid) {
            return self.cfg.sid;
        }
        p.acks
            .iter()
            .copied()
            .filter(|s| voters.contains(s))
            .min()
            .or_else(|| voters.first().copied())
            .unwrap_or(self.cfg.sid)
    }

    /// The invariants between the pointers (debug builds, and the simulator).
    pub fn validate(&self) {
        debug_assert!(self.applied == self.committed || !self.tail.is_empty());
        debug_assert!(self.committed <= self.durable, "committed beyond durable");
        debug_assert!(self.durable <= self.proposed, "durable beyond proposed");
        debug_assert!(
            self.accepted_epoch >= self.current_epoch,
            "acceptedEpoch below currentEpoch"
        );
        // Inside debug_assert!: release builds must not walk the proposals
        // after every step (a pipelined load keeps thousands outstanding).
        debug_assert!(
            self.outstanding
                .iter()
                .try_fold(self.committed, |prev, p| (p.zxid > prev).then_some(p.zxid))
                .is_some_and(|last| last == self.proposed || self.outstanding.is_empty()),
            "outstanding proposals out of order"
        );
    }
}

/// Whether `sids` (ignoring any that are not among `voters`) are more than
/// half of `voters`.
fn majority_of<'a>(voters: &BTreeSet<u64>, sids: impl IntoIterator<Item = &'a u64>) -> bool {
    sids.into_iter().filter(|s| voters.contains(s)).count() > voters.len() / 2
}

/// Whether `next` is the txn right after `prev` (ZK-4925: no holes): the
/// next counter of the same epoch, or counter 1 of a later epoch.
fn follows(prev: Zxid, next: Zxid) -> bool {
    if next.epoch() == prev.epoch() {
        next.counter() == prev.counter().wrapping_add(1) && next > prev
    } else {
        next.epoch() > prev.epoch() && next.counter() == 1
    }
}
