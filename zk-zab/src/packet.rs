//! The quorum port's packets (quorum.md §3.2), typed, and their jute form.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zk_jute::{Id, LearnerInfo, QuorumPacket, Zxid, quorum_packet as t};

/// `LearnerInfo.protocolVersion` and LEADERINFO's payload: Zab 1.0 (0x10000).
pub const PROTOCOL_VERSION: i32 = 0x10000;

/// One packet between a leader and a learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Learner → leader: a client write forwarded (session, cxid, type, body).
    Request {
        /// The raw payload.
        data: Bytes,
        /// The forwarding connection's auth ids.
        authinfo: Vec<Id>,
    },
    /// Leader → follower: a txn to log.
    Proposal {
        /// Its zxid.
        zxid: Zxid,
        /// TxnHeader + record (+ digest), opaque here.
        txn: Bytes,
    },
    /// Follower → leader: `zxid` is durable (or the NEWLEADER / UPTODATE ack).
    Ack {
        /// The zxid acknowledged.
        zxid: Zxid,
    },
    /// Leader → follower: `zxid` is committed.
    Commit {
        /// The zxid committed.
        zxid: Zxid,
    },
    /// Both ways: liveness; the learner's answer carries session touches.
    Ping {
        /// Leader: last proposed; learner: echoed.
        zxid: Zxid,
        /// Learner: `(sessionId i64, timeout i32)*` (never null); leader: none.
        data: Option<Bytes>,
    },
    /// Both ways: session revalidation (payload for the session layer).
    Revalidate {
        /// sessionId + timeout, or sessionId + valid flag.
        data: Bytes,
    },
    /// Leader → learner: the oldest pending `sync` may complete.
    Sync,
    /// Leader → observer: a committed txn.
    Inform {
        /// Its zxid.
        zxid: Zxid,
        /// The same bytes as a PROPOSAL's.
        txn: Bytes,
    },
    /// Leader → follower: `zxid`, a reconfig, is committed, and its
    /// configuration is active (`Leader.commitAndActivate`).
    CommitAndActivate {
        /// The zxid committed.
        zxid: Zxid,
        /// The leader the new configuration designates.
        leader: i64,
    },
    /// Leader → observer: INFORM of a reconfig, its configuration active.
    InformAndActivate {
        /// Its zxid.
        zxid: Zxid,
        /// The leader the new configuration designates.
        leader: i64,
        /// The same bytes as a PROPOSAL's.
        txn: Bytes,
    },
    /// Leader → learner: the new epoch is about to start (`zxid = epoch << 32`).
    NewLeader {
        /// `newEpoch << 32`.
        zxid: Zxid,
        /// The leader's config text (only used with reconfig).
        config: Bytes,
    },
    /// Follower → leader: who I am and my accepted epoch.
    FollowerInfo {
        /// `acceptedEpoch << 32`.
        zxid: Zxid,
        /// sid, protocol version, config version.
        info: LearnerInfo,
    },
    /// Observer → leader: the same as FOLLOWERINFO for a non-voter.
    ObserverInfo {
        /// `acceptedEpoch << 32`.
        zxid: Zxid,
        /// sid, protocol version, config version.
        info: LearnerInfo,
    },
    /// Leader → learner: sync is over, serve clients.
    UpToDate,
    /// Leader → learner: sync by the txns that follow.
    Diff {
        /// The leader's last committed zxid.
        zxid: Zxid,
    },
    /// Leader → learner: drop your log after `zxid`, then the txns that follow.
    Trunc {
        /// The zxid to keep up to.
        zxid: Zxid,
    },
    /// Leader → learner: a snapshot body follows (read by the runtime).
    Snap {
        /// The snapshot's zxid (the leader's lastProcessedZxid).
        zxid: Zxid,
    },
    /// Leader → learner: the proposed epoch.
    LeaderInfo {
        /// `newEpoch << 32`.
        zxid: Zxid,
        /// Protocol version (0x10000).
        protocol: i32,
    },
    /// Learner → leader: my last zxid and current epoch (-1: already accepted).
    AckEpoch {
        /// The learner's last logged zxid.
        zxid: Zxid,
        /// Its current epoch, or -1 when the proposed epoch was already accepted.
        current_epoch: i32,
    },
}

/// Why a packet could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError {
    /// The packet type.
    pub packet_type: i32,
    /// What was wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "quorum packet type {}: {}",
            self.packet_type, self.reason
        )
    }
}

impl std::error::Error for PacketError {}

/// A packet's wire fields ([`Packet::wire_parts`]), its payload borrowed
/// where the packet holds it.
#[derive(Debug)]
pub struct WireParts<'a> {
    /// The QuorumPacket type.
    pub packet_type: i32,
    /// The wire zxid.
    pub zxid: Zxid,
    /// The payload, if any.
    pub data: Option<Payload<'a>>,
    /// The auth ids (a forwarded REQUEST's; empty otherwise).
    pub authinfo: &'a [Id],
}

/// A payload the packet holds, or one made from its fields.
#[derive(Debug)]
pub enum Payload<'a> {
    /// The packet's own bytes.
    Held(&'a Bytes),
    /// Encoded from the packet's fields.
    Made(Bytes),
}

impl Payload<'_> {
    /// The payload's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Held(b) => b,
            Payload::Made(b) => b,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Payload::Held(b) => b.clone(),
            Payload::Made(b) => b,
        }
    }
}

impl Packet {
    /// The jute record for the wire.
    pub fn to_wire(&self) -> QuorumPacket {
        let w = self.wire_parts();
        QuorumPacket {
            packet_type: w.packet_type,
            zxid: w.zxid.as_i64(),
            data: w.data.map(Payload::into_bytes),
            authinfo: w.authinfo.to_vec(),
        }
    }

    /// What [`Packet::to_wire`] puts on the wire, without cloning the
    /// payload the packet holds (an encoder writing a packet out needs no
    /// `QuorumPacket`: its clone of a PROPOSAL's txn was two atomic
    /// operations a packet on a loaded leader).
    pub fn wire_parts(&self) -> WireParts<'_> {
        let minus_one = Zxid::from(-1i64);
        let (packet_type, zxid, data) = match self {
            Packet::Request { data, authinfo } => {
                return WireParts {
                    packet_type: t::REQUEST,
                    zxid: minus_one,
                    data: Some(Payload::Held(data)),
                    authinfo,
                };
            }
            Packet::Proposal { zxid, txn } => (t::PROPOSAL, *zxid, Some(Payload::Held(txn))),
            Packet::Ack { zxid } => (t::ACK, *zxid, None),
            Packet::Commit { zxid } => (t::COMMIT, *zxid, None),
            Packet::Ping { zxid, data } => (t::PING, *zxid, data.as_ref().map(Payload::Held)),
            Packet::Revalidate { data } => (t::REVALIDATE, minus_one, Some(Payload::Held(data))),
            Packet::Sync => (t::SYNC, Zxid::ZERO, None),
            Packet::Inform { zxid, txn } => (t::INFORM, *zxid, Some(Payload::Held(txn))),
            Packet::CommitAndActivate { zxid, leader } => (
                t::COMMITANDACTIVATE,
                *zxid,
                Some(Payload::Made(Bytes::copy_from_slice(&leader.to_be_bytes()))),
            ),
            Packet::InformAndActivate { zxid, leader, txn } => {
                let mut b = BytesMut::with_capacity(8 + txn.len());
                b.put_i64(*leader);
                b.put_slice(txn);
                (t::INFORMANDACTIVATE, *zxid, Some(Payload::Made(b.freeze())))
            }
            Packet::NewLeader { zxid, config } => {
                (t::NEWLEADER, *zxid, Some(Payload::Held(config)))
            }
            Packet::FollowerInfo { zxid, info } => (
                t::FOLLOWERINFO,
                *zxid,
                Some(Payload::Made(learner_info(info))),
            ),
            Packet::ObserverInfo { zxid, info } => (
                t::OBSERVERINFO,
                *zxid,
                Some(Payload::Made(learner_info(info))),
            ),
            Packet::UpToDate => (t::UPTODATE, minus_one, None),
            Packet::Diff { zxid } => (t::DIFF, *zxid, None),
            Packet::Trunc { zxid } => (t::TRUNC, *zxid, None),
            Packet::Snap { zxid } => (t::SNAP, *zxid, None),
            Packet::LeaderInfo { zxid, protocol } => (
                t::LEADERINFO,
                *zxid,
                Some(Payload::Made(Bytes::copy_from_slice(
                    &protocol.to_be_bytes(),
                ))),
            ),
            Packet::AckEpoch {
                zxid,
                current_epoch,
            } => (
                t::ACKEPOCH,
                *zxid,
                Some(Payload::Made(Bytes::copy_from_slice(
                    &current_epoch.to_be_bytes(),
                ))),
            ),
        };
        WireParts {
            packet_type,
            zxid,
            data,
            authinfo: &[],
        }
    }

    /// The typed packet for a jute record from a peer (untrusted: every
    /// payload length is checked).
    pub fn from_wire(q: QuorumPacket) -> Result<Packet, PacketError> {
        let zxid = Zxid::from(q.zxid);
        let ty = q.packet_type;
        let err = |reason| PacketError {
            packet_type: ty,
            reason,
        };
        let data = q.data;
        // A zxid is epoch << 32 | counter with the epoch below 2^31: a
        // negative one (epoch 0x80000000 and up) would sort below every
        // real zxid. REQUEST, REVALIDATE (Apache's learner) and UPTODATE
        // (its leader) carry -1, a PING whatever its sender echoes, a SYNC
        // 0 that nobody reads; the zxids of the others may not be negative.
        if zxid < Zxid::ZERO
            && !matches!(
                ty,
                t::REQUEST | t::REVALIDATE | t::PING | t::SYNC | t::UPTODATE
            )
        {
            return Err(err("negative zxid"));
        }
        Ok(match ty {
            t::REQUEST => Packet::Request {
                data: data.ok_or(err("no payload"))?,
                authinfo: q.authinfo,
            },
            t::PROPOSAL => Packet::Proposal {
                zxid,
                txn: data.ok_or(err("no txn"))?,
            },
            t::ACK => Packet::Ack { zxid },
            t::COMMIT => Packet::Commit { zxid },
            t::PING => Packet::Ping { zxid, data },
            t::REVALIDATE => Packet::Revalidate {
                data: data.ok_or(err("no payload"))?,
            },
            t::SYNC => Packet::Sync,
            t::INFORM => Packet::Inform {
                zxid,
                txn: data.ok_or(err("no txn"))?,
            },
            // Apache's learner reads the designated leader with
            // ByteBuffer.getLong: fewer than 8 bytes end the connection.
            t::COMMITANDACTIVATE => Packet::CommitAndActivate {
                zxid,
                leader: int64(data.as_ref()).ok_or(err("no designated leader"))?,
            },
            t::INFORMANDACTIVATE => {
                let mut d = data.ok_or(err("no designated leader"))?;
                let leader = int64(Some(&d)).ok_or(err("no designated leader"))?;
                d.advance(8);
                Packet::InformAndActivate {
                    zxid,
                    leader,
                    txn: d,
                }
            }
            t::NEWLEADER => Packet::NewLeader {
                zxid,
                config: data.unwrap_or_default(),
            },
            t::FOLLOWERINFO | t::OBSERVERINFO => {
                let info = parse_learner_info(data.ok_or(err("no LearnerInfo"))?)
                    .ok_or(err("LearnerInfo shorter than 8 bytes"))?;
                if ty == t::FOLLOWERINFO {
                    Packet::FollowerInfo { zxid, info }
                } else {
                    Packet::ObserverInfo { zxid, info }
                }
            }
            t::UPTODATE => Packet::UpToDate,
            t::DIFF => Packet::Diff { zxid },
            t::TRUNC => Packet::Trunc { zxid },
            t::SNAP => Packet::Snap { zxid },
            t::LEADERINFO => Packet::LeaderInfo {
                zxid,
                protocol: int32(data).ok_or(err("no protocol version"))?,
            },
            t::ACKEPOCH => Packet::AckEpoch {
                zxid,
                current_epoch: int32(data).ok_or(err("no current epoch"))?,
            },
            _ => return Err(err("unknown packet type")),
        })
    }

    /// A short name for logs (`PROPOSAL`, `ACK`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Request { .. } => "REQUEST",
            Packet::Proposal { .. } => "PROPOSAL",
            Packet::Ack { .. } => "ACK",
            Packet::Commit { .. } => "COMMIT",
            Packet::Ping { .. } => "PING",
            Packet::Revalidate { .. } => "REVALIDATE",
            Packet::Sync => "SYNC",
            Packet::Inform { .. } => "INFORM",
            Packet::CommitAndActivate { .. } => "COMMITANDACTIVATE",
            Packet::InformAndActivate { .. } => "INFORMANDACTIVATE",
            Packet::NewLeader { .. } => "NEWLEADER",
            Packet::FollowerInfo { .. } => "FOLLOWERINFO",
            Packet::ObserverInfo { .. } => "OBSERVERINFO",
            Packet::UpToDate => "UPTODATE",
            Packet::Diff { .. } => "DIFF",
            Packet::Trunc { .. } => "TRUNC",
            Packet::Snap { .. } => "SNAP",
            Packet::LeaderInfo { .. } => "LEADERINFO",
            Packet::AckEpoch { .. } => "ACKEPOCH",
        }
    }
}

fn learner_info(info: &LearnerInfo) -> Bytes {
    let mut b = BytesMut::with_capacity(20);
    b.put_i64(info.server_id);
    b.put_i32(info.protocol_version);
    b.put_i64(info.config_version);
    b.freeze()
}

/// `LearnerHandler.run`: the sid from 8 bytes, the protocol version from 12,
/// the config version from 20 (older learners send less).
fn parse_learner_info(mut data: Bytes) -> Option<LearnerInfo> {
    if data.len() < 8 {
        return None;
    }
    let server_id = data.get_i64();
    let protocol_version = if data.len() >= 4 { data.get_i32() } else { 0 };
    let config_version = if data.len() >= 8 { data.get_i64() } else { 0 };
    Some(LearnerInfo {
        server_id,
        protocol_version,
        config_version,
    })
}

fn int64(data: Option<&Bytes>) -> Option<i64> {
    let d = data?;
    (d.len() >= 8).then(|| i64::from_be_bytes(d[..8].try_into().unwrap_or_default()))
}

fn int32(data: Option<Bytes>) -> Option<i32> {
    let mut d = data?;
    (d.len() >= 4).then(|| d.get_i32())
}
