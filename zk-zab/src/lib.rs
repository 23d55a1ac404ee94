//! Zab, ZooKeeper's atomic broadcast, as sans-I/O state machines.
//!
//! [`Leader`] and [`Learner`] speak Apache ZooKeeper 3.8's quorum protocol
//! ([`Packet`], quorum.md §3): discovery (FOLLOWERINFO → LEADERINFO →
//! ACKEPOCH), synchronisation (DIFF / TRUNC / SNAP, NEWLEADER, UPTODATE) and
//! broadcast (PROPOSAL → ACK → COMMIT / INFORM). Each owns no socket, file,
//! thread or clock: the runtime feeds events (packets, durability reports,
//! ticks) and carries out commands (send, append, persist an epoch, apply,
//! go LOOKING) in order. `DESIGN.md` beside this crate has the phases, the
//! persistence order with the Apache bugs behind each rule, the sync decision
//! table and the recovery table.

#![forbid(unsafe_code)]

mod leader;
mod learner;
mod packet;

pub use leader::{
    Conn, Leader, LeaderCommand, LeaderConfig, LeaderEvent, LeaderStart, LearnerCounts, NewConfig,
    ProposeError, SyncKind, config_text,
};
pub use learner::{Learner, LearnerCommand, LearnerConfig, LearnerEvent, LearnerStart};
pub use packet::{PROTOCOL_VERSION, Packet, PacketError, Payload, WireParts};
pub use zk_jute::Zxid;

#[cfg(test)]
mod tests;
