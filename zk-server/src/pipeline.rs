//! The Zab broadcast steps, explicit, with a quorum of one.
//!
//! ```text
//! prep ──Propose(zxid, txn)──▶ log append ──(durable)──▶ Ack(sid, zxid)
//!      ──(quorum of acks, in zxid order)──▶ Commit(zxid) ──▶ apply to the tree
//! ```
//!
//! Standalone is the ensemble with one voter: the leader's own durable append is
//! its ack, and one ack is a quorum. The next step adds followers: their acks
//! arrive over the network and go through [`Broadcast::ack`] unchanged.
//!
//! The zxid pointers, named once (ZooKeeper/Zab vocabulary), always satisfy
//! `last_processed ≤ committed ≤ last_logged ≤ last_proposed`, checked by
//! [`Broadcast::validate`] after every step in debug builds.

use std::collections::VecDeque;

use zk_jute::Zxid;

/// The leader side of Zab broadcast for one epoch.
#[derive(Debug)]
pub struct Broadcast {
    my_id: u64,
    voters: Vec<u64>,
    /// Highest zxid handed out by [`Broadcast::propose`].
    last_proposed: Zxid,
    /// Highest zxid durable in our own log (our own ack).
    last_logged: Zxid,
    /// Highest zxid committed (acked by a quorum, everything before it committed).
    committed: Zxid,
    /// Highest zxid applied to the tree (ZooKeeper's lastProcessedZxid).
    last_processed: Zxid,
    /// Proposals not yet committed, in zxid order (proposed in order, committed
    /// from the front), with the voters that acked each (inline: no allocation
    /// per zxid for small ensembles).
    outstanding: VecDeque<(Zxid, smallvec::SmallVec<[u64; 3]>)>,
}

impl Broadcast {
    /// Starts broadcasting after `last_zxid` (recovered state); `voters` are the
    /// voting members (just `my_id` when standalone).
    pub fn new(my_id: u64, voters: Vec<u64>, last_zxid: Zxid) -> Self {
        let b = Self {
            my_id,
            voters,
            last_proposed: last_zxid,
            last_logged: last_zxid,
            committed: last_zxid,
            last_processed: last_zxid,
            outstanding: VecDeque::new(),
        };
        b.validate();
        b
    }

    /// The zxid [`Broadcast::propose`] hands out next ([`Zxid::next`]: once
    /// the counter is exhausted ZooKeeper's leader forces a new election;
    /// one voter just moves on to the next epoch).
    pub fn next_zxid(&self) -> Zxid {
        self.last_proposed.next()
    }

    /// Assigns the next zxid and records the proposal (Zab: PROPOSAL).
    pub fn propose(&mut self) -> Zxid {
        let zxid = self.next_zxid();
        debug_assert!(zxid > self.last_proposed);
        self.last_proposed = zxid;
        self.outstanding
            .push_back((zxid, smallvec::SmallVec::new()));
        self.validate();
        zxid
    }

    /// A voter reports `zxid` (and, acks being cumulative, every earlier one)
    /// durable (Zab: ACK). Returns the zxids that became committed, in order
    /// (Zab: COMMIT).
    pub fn ack(&mut self, sid: u64, zxid: Zxid) -> Vec<Zxid> {
        if sid == self.my_id && zxid > self.last_logged {
            self.last_logged = zxid;
        }
        for (_, acks) in self.outstanding.iter_mut().take_while(|(z, _)| *z <= zxid) {
            if !acks.contains(&sid) {
                acks.push(sid);
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        let mut committed = Vec::new();
        while let Some((z, acks)) = self.outstanding.front() {
            // Our own log must hold it too: a leader never commits what it has not logged.
            let z = *z;
            if acks.len() >= quorum && z <= self.last_logged {
                self.outstanding.pop_front();
                self.committed = z;
                committed.push(z);
            } else {
                break;
            }
        }
        self.validate();
        committed
    }

    /// The tree applied `zxid`.
    pub fn applied(&mut self, zxid: Zxid) {
        debug_assert!(zxid > self.last_processed, "applied out of order");
        debug_assert!(zxid <= self.committed, "applied before commit");
        self.last_processed = zxid;
        self.validate();
    }

    /// Checks `last_processed ≤ committed ≤ last_logged ≤ last_proposed` (debug builds).
    pub fn validate(&self) {
        debug_assert!(
            self.last_processed <= self.committed
                && self.committed <= self.last_logged
                && self.last_logged <= self.last_proposed,
            "zxid pointers out of order: processed {:#x} committed {:#x} logged {:#x} proposed {:#x}",
            self.last_processed,
            self.committed,
            self.last_logged,
            self.last_proposed
        );
    }

    /// Highest zxid durable locally.
    pub fn last_logged(&self) -> Zxid {
        self.last_logged
    }

    /// Highest zxid committed.
    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// Highest zxid applied (lastProcessedZxid).
    pub fn last_processed(&self) -> Zxid {
        self.last_processed
    }

    /// Proposals not yet committed.
    pub fn pending(&self) -> usize {
        self.outstanding.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(n: i64) -> Zxid {
        Zxid::from(n)
    }

    #[test]
    fn quorum_of_one_commits_on_own_ack_in_order() {
        let mut b = Broadcast::new(1, vec![1], Zxid::ZERO);
        let z1 = b.propose();
        let z2 = b.propose();
        let z3 = b.propose();
        assert_eq!((z1, z2, z3), (z(1), z(2), z(3)));
        assert_eq!(b.ack(1, z(2)), vec![z(1), z(2)]);
        assert_eq!(b.last_logged(), z(2));
        b.applied(z(1));
        b.applied(z(2));
        assert_eq!(b.ack(1, z(3)), vec![z(3)]);
        b.applied(z(3));
        assert_eq!(b.pending(), 0);
        assert_eq!(b.last_processed(), z(3));
    }

    #[test]
    fn three_voters_need_two_acks_including_the_leader_log() {
        let mut b = Broadcast::new(1, vec![1, 2, 3], Zxid::new(4, 9));
        let z = b.propose();
        assert_eq!(z, Zxid::new(4, 10));
        assert!(b.ack(2, z).is_empty(), "one ack is not a quorum");
        assert_eq!(b.ack(1, z), vec![z]);
    }

    #[test]
    fn continues_after_recovered_zxid_and_rolls_epoch() {
        let mut b = Broadcast::new(1, vec![1], Zxid::new(2, u32::MAX));
        assert_eq!(b.propose(), Zxid::new(3, 1));
    }
}
