//! A hostile peer on the quorum port, for the property test beside it and
//! the `peer` fuzz target (which includes this file): the bytes of an input
//! script packets that decode (`Packet::from_wire`, as the runtime does with
//! what arrives) and feed them, among the events an honest runtime produces
//! (durability reports for what the core asked, ticks, connections coming
//! and going), to a leader core with learners {2, 3} or to a learner core.
//!
//! Whatever a peer sends, a core must never panic, keep its invariants
//! (`validate`) and never ask its runtime for something impossible: apply a
//! txn at or below one it applied (outside a TRUNC or SNAP, which reset the
//! tree), or append a txn at or below the last one it appended since the
//! log was last reset. A bad packet may end the role (`GoLooking`), close a
//! learner's connection, or be ignored.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{BufMut, Bytes, BytesMut};
use zk_jute::{QuorumPacket, Zxid, quorum_packet as t};
use zk_zab::{
    Conn, Leader, LeaderCommand, LeaderConfig, LeaderEvent, LeaderStart, Learner, LearnerCommand,
    LearnerConfig, LearnerEvent, LearnerStart, Packet,
};

/// `ZK_HOSTILE_TRACE=1`: print every event fed and command returned.
fn tracing() -> bool {
    std::env::var_os("ZK_HOSTILE_TRACE").is_some()
}

/// The core's commands taken from `out`, each printed when tracing.
fn traced<C: std::fmt::Debug>(out: &mut Vec<C>) -> Vec<C> {
    let commands = std::mem::take(out);
    if tracing() {
        for c in &commands {
            eprintln!("  -> {c:?}");
        }
    }
    commands
}

/// The input, read a few bytes at a time (zeros once it is used up).
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn bytes(&mut self, max: usize) -> Bytes {
        let n = usize::from(self.u8()) % (max + 1);
        Bytes::from((0..n).map(|_| self.u8()).collect::<Vec<u8>>())
    }

    /// A zxid near the ones in play (epochs 0-3, small counters), or the
    /// extremes, or anything.
    fn zxid(&mut self) -> Zxid {
        const EPOCHS: [u32; 6] = [0, 1, 2, 3, u32::MAX, 0x8000_0000];
        const COUNTERS: [u32; 8] = [0, 1, 2, 4, 5, 6, 7, u32::MAX];
        match self.u8() % 8 {
            0 => Zxid::from(i64::from(self.u32()) << 32 | i64::from(self.u32())),
            _ => Zxid::new(
                EPOCHS[usize::from(self.u8()) % EPOCHS.len()],
                COUNTERS[usize::from(self.u8()) % COUNTERS.len()],
            ),
        }
    }

    /// A packet as it would arrive: a jute record, decoded like the
    /// runtime's; payloads mostly well formed for their type.
    fn packet(&mut self) -> Option<Packet> {
        const TYPES: [i32; 17] = [
            t::REQUEST,
            t::PROPOSAL,
            t::ACK,
            t::COMMIT,
            t::PING,
            t::REVALIDATE,
            t::SYNC,
            t::INFORM,
            t::NEWLEADER,
            t::FOLLOWERINFO,
            t::OBSERVERINFO,
            t::UPTODATE,
            t::DIFF,
            t::TRUNC,
            t::SNAP,
            t::LEADERINFO,
            t::ACKEPOCH,
        ];
        let pick = self.u8();
        let packet_type = if pick == 255 {
            self.u32() as i32
        } else {
            TYPES[usize::from(pick) % TYPES.len()]
        };
        let zxid = self.zxid().as_i64();
        let data = match (self.u8() % 4, packet_type) {
            (0, _) => None,
            (1, _) => Some(self.bytes(40)),
            (_, t::FOLLOWERINFO | t::OBSERVERINFO) => {
                let mut b = BytesMut::new();
                b.put_i64(i64::from(self.u8() % 6));
                b.put_i32(if self.u8().is_multiple_of(4) {
                    0
                } else {
                    0x10000
                });
                b.put_i64(0);
                Some(b.freeze())
            }
            (_, t::ACKEPOCH | t::LEADERINFO) => {
                let mut b = BytesMut::new();
                b.put_i32(match self.u8() % 4 {
                    0 => -1,
                    1 => 0x10000,
                    _ => i32::from(self.u8() % 5),
                });
                Some(b.freeze())
            }
            _ => Some(self.bytes(24)),
        };
        Packet::from_wire(QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo: Vec::new(),
        })
        .ok()
    }
}

/// How far a script got, so that a test can tell it reached the protocol's
/// later phases (not only the first packet's rejection).
#[derive(Debug, Default, Clone, Copy)]
pub struct Reached {
    /// Events fed.
    pub steps: usize,
    /// The leader established its epoch / the learner started serving.
    pub serving: bool,
    /// Txns applied.
    pub applied: usize,
    /// The role ended (`GoLooking`).
    pub ended: bool,
}

/// The history both cores start from: epoch 1's txns 1..=`n`.
fn history(n: u32) -> Vec<(Zxid, Bytes)> {
    (1..=n).map(|c| (Zxid::new(1, c), txn(c))).collect()
}

/// What the core asked its log for: appends above the last one, applies
/// above the last one.
#[derive(Default)]
struct Log {
    appended: Option<Zxid>,
    applied: Option<Zxid>,
}

impl Log {
    fn append(&mut self, zxid: Zxid) {
        assert!(
            self.appended.is_none_or(|a| zxid > a),
            "append of {zxid:?} after {:?}",
            self.appended
        );
        self.appended = Some(zxid);
    }

    fn apply(&mut self, zxid: Zxid) {
        assert!(
            self.applied.is_none_or(|a| zxid > a),
            "apply of {zxid:?} after {:?}",
            self.applied
        );
        self.applied = Some(zxid);
    }

    fn reset(&mut self, to: Zxid) {
        self.appended = Some(to);
        self.applied = Some(to);
    }
}

/// The packet with its zxid replaced (a peer's slip or lie).
fn with_zxid(p: Packet, z: Zxid) -> Packet {
    match p {
        Packet::Proposal { txn, .. } => Packet::Proposal { zxid: z, txn },
        Packet::Ack { .. } => Packet::Ack { zxid: z },
        Packet::Commit { .. } => Packet::Commit { zxid: z },
        Packet::Ping { data, .. } => Packet::Ping { zxid: z, data },
        Packet::Inform { txn, .. } => Packet::Inform { zxid: z, txn },
        Packet::NewLeader { config, .. } => Packet::NewLeader { zxid: z, config },
        Packet::FollowerInfo { info, .. } => Packet::FollowerInfo { zxid: z, info },
        Packet::ObserverInfo { info, .. } => Packet::ObserverInfo { zxid: z, info },
        Packet::Diff { .. } => Packet::Diff { zxid: z },
        Packet::Trunc { .. } => Packet::Trunc { zxid: z },
        Packet::Snap { .. } => Packet::Snap { zxid: z },
        Packet::LeaderInfo { protocol, .. } => Packet::LeaderInfo { zxid: z, protocol },
        Packet::AckEpoch { current_epoch, .. } => Packet::AckEpoch {
            zxid: z,
            current_epoch,
        },
        other => other,
    }
}

/// What the peer sends next: the honest packet it has queued, or (with a
/// chance of `hostility` in 16) that packet with its zxid changed, or
/// nothing in its place, or a packet of the input's.
fn next_packet(
    input: &mut Input<'_>,
    honest: &mut VecDeque<Packet>,
    hostility: u8,
) -> Option<Packet> {
    if input.u8() % 16 >= hostility {
        return honest.pop_front();
    }
    match input.u8() % 4 {
        0 => {
            // Through the wire, as every packet the runtime feeds.
            let z = input.zxid();
            honest
                .pop_front()
                .and_then(|p| Packet::from_wire(with_zxid(p, z).to_wire()).ok())
        }
        1 => {
            honest.pop_front();
            None
        }
        _ => input.packet(),
    }
}

/// How hostile a script's peer is (chance in 16 per packet).
fn hostility(input: &mut Input<'_>) -> u8 {
    [0, 1, 2, 4, 8, 16][usize::from(input.u8()) % 6]
}

/// Leader 1 of voters {1, 2, 3}; its learners (connections 0-3) answer as
/// honest followers would, with the input's slips and lies among them.
pub fn leader_under_hostile_learners(data: &[u8]) -> Reached {
    drive(LeaderSide::new(data))
}

/// A core under test with its runtime and its peers.
trait Side {
    type Event: std::fmt::Debug;
    /// How far the script got (and whether the role ended).
    fn reached(&mut self) -> &mut Reached;
    /// The script is used up.
    fn done(&self) -> bool;
    /// Carries out the core's commands; the peers queue their answers.
    fn run_commands(&mut self);
    /// The next event the input picks (`None`: it did something else, or
    /// nothing).
    fn next_event(&mut self) -> Option<Self::Event>;
    /// Feeds `event` to the core (if any), then checks its invariants.
    fn step(&mut self, event: Option<Self::Event>);
}

/// Runs a side until its script ends, its role ends, or 2000 steps.
fn drive<S: Side>(mut side: S) -> Reached {
    while !side.done() && !side.reached().ended && side.reached().steps < 2000 {
        side.reached().steps += 1;
        side.run_commands();
        if side.reached().ended {
            break;
        }
        let event = side.next_event();
        if tracing()
            && let Some(e) = &event
        {
            eprintln!("{e:?}");
        }
        side.step(event);
    }
    *side.reached()
}

/// A leader core and the runtime and learners around it.
struct LeaderSide<'a> {
    input: Input<'a>,
    hostility: u8,
    core: Leader,
    out: Vec<LeaderCommand>,
    log: Log,
    /// Durability reports and log reads the runtime owes the core.
    pending: Vec<LeaderEvent>,
    /// Per open connection: the honest learner's next packets.
    open: BTreeMap<Conn, VecDeque<Packet>>,
    r: Reached,
}

impl<'a> LeaderSide<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut input = Input { data, at: 0 };
        let hostility = hostility(&mut input);
        let commit_log_count = usize::from(input.u8() % 8);
        // One byte: DIFF from the log, and reconfigEnabled's versioning
        // (ZOOKEEPER-1783) of a configuration of version 0 or 1.
        let b = input.u8();
        let cfg = LeaderConfig {
            sid: 1,
            voters: BTreeSet::from([1, 2, 3]),
            groups: None,
            init_limit: 5,
            sync_limit: 2,
            commit_log_count,
            members: Bytes::from_static(b"server.1=a:1:2:participant\n"),
            diff_from_log: b.is_multiple_of(2),
            config_version: i64::from(b >> 2 & 1),
            version_config: b & 2 != 0,
        };
        let mut recent = history(5);
        let tail = if input.u8().is_multiple_of(2) {
            recent.split_off(4)
        } else {
            Vec::new()
        };
        recent.drain(..recent.len().saturating_sub(cfg.commit_log_count));
        let applied = Zxid::new(1, if tail.is_empty() { 5 } else { 4 });
        let start = LeaderStart {
            accepted_epoch: 1,
            current_epoch: 1,
            applied,
            recent,
            tail,
            pending: None,
        };
        let mut out = Vec::new();
        let core = Leader::new(cfg, start, &mut out);
        let mut log = Log::default();
        log.reset(applied);
        LeaderSide {
            input,
            hostility,
            core,
            out,
            log,
            pending: Vec::new(),
            open: BTreeMap::new(),
            r: Reached::default(),
        }
    }

    /// What an honest follower answers to `p`.
    fn honest_reply(&mut self, p: Packet) -> Option<Packet> {
        match p {
            Packet::LeaderInfo { .. } => Some(Packet::AckEpoch {
                zxid: [
                    Zxid::new(1, 5),
                    Zxid::new(1, 3),
                    Zxid::new(1, 7),
                    Zxid::ZERO,
                ][usize::from(self.input.u8()) % 4],
                current_epoch: 1,
            }),
            Packet::NewLeader { zxid, .. } | Packet::Proposal { zxid, .. } => {
                Some(Packet::Ack { zxid })
            }
            Packet::UpToDate => Some(Packet::Ack {
                zxid: Zxid::new(self.core.proposed().epoch(), 0),
            }),
            Packet::Ping { zxid, .. } => Some(Packet::Ping {
                zxid,
                data: Some(Bytes::new()),
            }),
            _ => None,
        }
    }
}

impl Side for LeaderSide<'_> {
    type Event = LeaderEvent;

    fn reached(&mut self) -> &mut Reached {
        &mut self.r
    }

    fn done(&self) -> bool {
        self.input.done()
    }

    fn run_commands(&mut self) {
        for c in traced(&mut self.out) {
            match c {
                LeaderCommand::Send(conn, p) => {
                    let reply = self.honest_reply(p);
                    if let (Some(q), Some(reply)) = (self.open.get_mut(&conn), reply) {
                        q.push_back(reply);
                    }
                }
                LeaderCommand::Append { zxid, .. } => {
                    self.log.append(zxid);
                    self.pending.push(LeaderEvent::LogDurable(zxid));
                }
                LeaderCommand::Apply { zxid, .. } => {
                    self.log.apply(zxid);
                    self.r.applied += 1;
                }
                LeaderCommand::Established { .. } => self.r.serving = true,
                LeaderCommand::PersistAcceptedEpoch(e) => {
                    self.pending.push(LeaderEvent::AcceptedEpochDurable(e))
                }
                LeaderCommand::PersistCurrentEpoch(e) => {
                    self.pending.push(LeaderEvent::CurrentEpochDurable(e))
                }
                LeaderCommand::ReadLog { conn, from } => {
                    let txns = (from >= Zxid::new(1, 1))
                        .then(|| history(5).into_iter().filter(|t| t.0 >= from).collect());
                    self.pending.push(LeaderEvent::LogRead { conn, txns });
                }
                LeaderCommand::Close(conn, _) => {
                    self.open.remove(&conn);
                }
                LeaderCommand::GoLooking(_) => self.r.ended = true,
                _ => {}
            }
        }
    }

    fn next_event(&mut self) -> Option<LeaderEvent> {
        let input = &mut self.input;
        let conn = Conn::from(input.u8() % 4);
        match input.u8() % 12 {
            0 if !self.open.contains_key(&conn) => {
                // Servers 2 and 3, an observer 4, or a stranger 9.
                let sid = [2, 3, 2, 3, 4, 9][usize::from(input.u8()) % 6];
                let info = zk_jute::LearnerInfo {
                    server_id: sid,
                    protocol_version: 0x10000,
                    config_version: 0,
                };
                let zxid = Zxid::new(1, 0);
                let hello = if sid == 4 {
                    Packet::ObserverInfo { zxid, info }
                } else {
                    Packet::FollowerInfo { zxid, info }
                };
                self.open.insert(conn, VecDeque::from([hello]));
                Some(LeaderEvent::Connected(conn))
            }
            1..=6 => {
                let q = self.open.get_mut(&conn)?;
                next_packet(input, q, self.hostility).map(|p| LeaderEvent::Packet(conn, p))
            }
            7 => self.open.remove(&conn).map(|_| LeaderEvent::Closed(conn)),
            8 => Some(LeaderEvent::Tick),
            9 => self
                .open
                .contains_key(&conn)
                .then_some(LeaderEvent::Sync(conn)),
            10 => {
                let last = self.core.proposed();
                let zxid = Zxid::new(last.epoch(), last.counter().wrapping_add(1));
                let _ = self
                    .core
                    .propose(zxid, Bytes::from_static(b"w"), &mut self.out);
                None
            }
            _ if !self.pending.is_empty() => {
                let i = usize::from(input.u8()) % self.pending.len();
                Some(self.pending.remove(i))
            }
            _ => None,
        }
    }

    fn step(&mut self, event: Option<LeaderEvent>) {
        if let Some(e) = event {
            self.core.step(e, &mut self.out);
        }
        self.core.validate();
    }
}

/// Learner 2 (a follower, or an observer) of an honest leader of epoch 2
/// (syncing it by DIFF, TRUNC or SNAP as the input says), with the input's
/// slips and lies among its packets.
pub fn learner_under_hostile_leader(data: &[u8]) -> Reached {
    drive(LearnerSide::new(data))
}

/// A learner core, its runtime and its leader.
struct LearnerSide<'a> {
    input: Input<'a>,
    hostility: u8,
    observer: bool,
    core: Learner,
    out: Vec<LearnerCommand>,
    log: Log,
    /// Durability reports the runtime owes the core.
    pending: Vec<LearnerEvent>,
    /// The honest leader's next packets.
    honest: VecDeque<Packet>,
    /// The leader's last proposal.
    proposed: Zxid,
    r: Reached,
}

impl<'a> LearnerSide<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut input = Input { data, at: 0 };
        let hostility = hostility(&mut input);
        let observer = input.u8().is_multiple_of(4);
        let cfg = LearnerConfig {
            sid: 2,
            observer,
            init_limit: 5,
            sync_limit: 2,
            config_version: 0,
        };
        let last = Zxid::new(1, 5);
        let start = LearnerStart {
            last_zxid: last,
            accepted_epoch: 1,
            current_epoch: 1,
            snap_from_epoch: input.u8().is_multiple_of(8).then_some(2),
        };
        let mut core = Learner::new(cfg, start);
        let mut out = Vec::new();
        core.step(LearnerEvent::Connected, &mut out);
        core.validate();
        let mut log = Log::default();
        log.reset(last);
        LearnerSide {
            input,
            hostility,
            observer,
            core,
            out,
            log,
            pending: Vec::new(),
            honest: VecDeque::new(),
            proposed: Zxid::new(2, 0),
            r: Reached::default(),
        }
    }

    /// What an honest leader of epoch 2 sends after the learner's `p`.
    fn leader_answers(&mut self, p: Packet) {
        match p {
            Packet::FollowerInfo { .. } | Packet::ObserverInfo { .. } => {
                self.honest.push_back(Packet::LeaderInfo {
                    zxid: Zxid::new(2, 0),
                    protocol: 0x10000,
                })
            }
            Packet::AckEpoch { .. } => {
                let sync = match self.input.u8() % 4 {
                    0 => vec![Packet::Trunc {
                        zxid: Zxid::new(1, 4),
                    }],
                    1 => vec![Packet::Snap {
                        zxid: Zxid::new(1, 7),
                    }],
                    _ => vec![
                        Packet::Diff {
                            zxid: Zxid::new(1, 6),
                        },
                        Packet::Proposal {
                            zxid: Zxid::new(1, 6),
                            txn: txn(6),
                        },
                        Packet::Commit {
                            zxid: Zxid::new(1, 6),
                        },
                    ],
                };
                self.honest.extend(sync);
                self.honest.push_back(Packet::NewLeader {
                    zxid: Zxid::new(2, 0),
                    config: Bytes::new(),
                });
            }
            Packet::Ack { zxid } if zxid == Zxid::new(2, 0) => {
                self.honest.push_back(Packet::UpToDate)
            }
            _ => {}
        }
    }
}

impl Side for LearnerSide<'_> {
    type Event = LearnerEvent;

    fn reached(&mut self) -> &mut Reached {
        &mut self.r
    }

    fn done(&self) -> bool {
        self.input.done()
    }

    fn run_commands(&mut self) {
        for c in traced(&mut self.out) {
            match c {
                LearnerCommand::Send(p) => self.leader_answers(p),
                LearnerCommand::Append { zxid, .. } => {
                    self.log.append(zxid);
                    self.pending.push(LearnerEvent::LogDurable(zxid));
                }
                LearnerCommand::Apply { zxid, .. } => {
                    self.log.apply(zxid);
                    self.r.applied += 1;
                }
                LearnerCommand::StartServing { .. } => self.r.serving = true,
                LearnerCommand::PersistAcceptedEpoch(e) => {
                    self.pending.push(LearnerEvent::AcceptedEpochDurable(e))
                }
                LearnerCommand::PersistCurrentEpoch(e) => {
                    self.pending.push(LearnerEvent::CurrentEpochDurable(e))
                }
                LearnerCommand::Truncate(z) => self.log.reset(z),
                LearnerCommand::PersistSnapshot(z) => {
                    self.pending.push(LearnerEvent::SnapshotDurable(z))
                }
                LearnerCommand::GoLooking(_) => self.r.ended = true,
                _ => {}
            }
        }
    }

    fn next_event(&mut self) -> Option<LearnerEvent> {
        match self.input.u8() % 16 {
            0..=8 => {
                let p = next_packet(&mut self.input, &mut self.honest, self.hostility)?;
                // The runtime has read a SNAP's body and replaced its tree
                // before the packet is fed.
                if let Packet::Snap { zxid } = &p {
                    self.log.reset(*zxid);
                }
                Some(LearnerEvent::Packet(p))
            }
            9 | 10 => {
                // The leader proposes (an observer is informed once it is
                // committed).
                self.proposed = Zxid::new(2, self.proposed.counter().wrapping_add(1));
                let (zxid, txn) = (self.proposed, txn(self.proposed.counter()));
                if self.observer {
                    self.honest.push_back(Packet::Inform { zxid, txn });
                } else {
                    self.honest.push_back(Packet::Proposal { zxid, txn });
                    self.honest.push_back(Packet::Commit { zxid });
                }
                None
            }
            11 => {
                self.honest.push_back(Packet::Ping {
                    zxid: self.proposed,
                    data: None,
                });
                None
            }
            12 => Some(LearnerEvent::Tick),
            _ if !self.pending.is_empty() => {
                let i = usize::from(self.input.u8()) % self.pending.len();
                Some(self.pending.remove(i))
            }
            _ => None,
        }
    }

    fn step(&mut self, event: Option<LearnerEvent>) {
        if let Some(e) = event {
            self.core.step(e, &mut self.out);
        }
        self.core.validate();
    }
}

/// A txn's bytes.
fn txn(counter: u32) -> Bytes {
    Bytes::from(vec![counter as u8; 3])
}
