//! Who votes, and which sets of voters make a quorum.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

use crate::Sid;

/// Quorum verification (ZooKeeper's `QuorumVerifier`): the voters, and whether
/// a set of servers holds a quorum.
///
/// Implementations are plain values (`Clone + Eq + Hash`) so that an
/// [`Election`](crate::Election) holding one stays a value a simulator or a
/// model checker can copy, compare and hash.
pub trait Quorum: Clone + Debug + Eq + Hash {
    /// Whether `sid` votes: its notifications are counted, ours go to it.
    fn is_voter(&self, sid: Sid) -> bool;
    /// Whether `sid` is a voter of the configuration in force: it may be
    /// proposed as leader and, not leading, follows rather than observes.
    /// The same as [`Quorum::is_voter`] but for [`Joint`]'s last-seen voters.
    fn is_current_voter(&self, sid: Sid) -> bool {
        self.is_voter(sid)
    }
    /// The voters, in increasing sid order.
    fn voters(&self) -> Vec<Sid>;
    /// Whether the voters among `acks` form a quorum. Non-voters in `acks`
    /// never count (ZooKeeper's `SyncedLearnerTracker.addAck`).
    fn contains_quorum(&self, acks: &BTreeSet<Sid>) -> bool;
    /// Whether the voters in force among `acks` form a quorum: what joining
    /// an established leader needs. The same as [`Quorum::contains_quorum`]
    /// but for [`Joint`], whose last-seen voters do not count there.
    fn contains_current_quorum(&self, acks: &BTreeSet<Sid>) -> bool {
        self.contains_quorum(acks)
    }
}

/// Simple majorities (ZooKeeper's `QuorumMaj`): more than half of the voters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Majority {
    voters: BTreeSet<Sid>,
}

impl Majority {
    /// A majority quorum over `voters` (observers are simply not listed).
    pub fn new(voters: impl IntoIterator<Item = Sid>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
        }
    }
}

impl Quorum for Majority {
    fn is_voter(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }

    fn voters(&self) -> Vec<Sid> {
        self.voters.iter().copied().collect()
    }

    fn contains_quorum(&self, acks: &BTreeSet<Sid>) -> bool {
        let counted = acks.iter().filter(|s| self.voters.contains(s)).count();
        counted > self.voters.len() / 2
    }
}

/// The voters in force and those of the last-seen configuration, a
/// reconfig this server logged and never saw activated (ZooKeeper's
/// `getLastSeenQuorumVerifier`): both are notified and counted, and a
/// quorum needs a majority of each (`SyncedLearnerTracker` with both
/// verifiers), so that a server whose configuration went stale cannot elect
/// itself with the voters of that configuration alone. Only voters in force
/// may lead, and joining a leader that a quorum already follows needs a
/// quorum of the voters in force only (unlike ZooKeeper): that leader's
/// epoch was established by the quorums its own history asked for, and a
/// last-seen configuration it does not hold is a proposal it dropped, which
/// the joining server's sync truncates (zk-sim's wide reconfigs, seed 1680:
/// such a server stayed LOOKING beside a serving ensemble).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Joint {
    current: Majority,
    next: Option<Majority>,
}

impl Joint {
    /// The voters in force, and the last-seen configuration's if there is one.
    pub fn new(current: Majority, next: Option<Majority>) -> Self {
        Self { current, next }
    }

    /// The voters in force.
    pub fn current(&self) -> &Majority {
        &self.current
    }

    /// The last-seen configuration's voters, if any.
    pub fn next(&self) -> Option<&Majority> {
        self.next.as_ref()
    }
}

impl Quorum for Joint {
    fn is_voter(&self, sid: Sid) -> bool {
        self.current.is_voter(sid) || self.next.as_ref().is_some_and(|n| n.is_voter(sid))
    }

    fn is_current_voter(&self, sid: Sid) -> bool {
        self.current.is_voter(sid)
    }

    fn voters(&self) -> Vec<Sid> {
        let mut all: BTreeSet<Sid> = self.current.voters.clone();
        if let Some(n) = &self.next {
            all.extend(n.voters.iter().copied());
        }
        all.into_iter().collect()
    }

    fn contains_quorum(&self, acks: &BTreeSet<Sid>) -> bool {
        self.current.contains_quorum(acks)
            && self.next.as_ref().is_none_or(|n| n.contains_quorum(acks))
    }

    fn contains_current_quorum(&self, acks: &BTreeSet<Sid>) -> bool {
        self.current.contains_quorum(acks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[Sid]) -> BTreeSet<Sid> {
        v.iter().copied().collect()
    }

    #[test]
    fn majority_of_three_and_five() {
        let q = Majority::new([1, 2, 3]);
        assert!(!q.contains_quorum(&set(&[1])));
        assert!(q.contains_quorum(&set(&[1, 3])));
        let q = Majority::new([1, 2, 3, 4, 5]);
        assert!(!q.contains_quorum(&set(&[1, 2])));
        assert!(q.contains_quorum(&set(&[2, 4, 5])));
    }

    #[test]
    fn even_ensembles_need_more_than_half() {
        // QuorumMaj: ackSet.size() > votingMembers.size() / 2.
        let q = Majority::new([1, 2, 3, 4]);
        assert!(!q.contains_quorum(&set(&[1, 2])));
        assert!(q.contains_quorum(&set(&[1, 2, 3])));
    }

    #[test]
    fn a_joint_quorum_needs_a_majority_of_both_and_only_current_voters_lead() {
        let q = Joint::new(Majority::new([1, 2, 3]), Some(Majority::new([3, 4, 5])));
        assert_eq!(q.voters(), vec![1, 2, 3, 4, 5]);
        assert!(!q.contains_quorum(&set(&[1, 2])), "no majority of 3, 4, 5");
        assert!(!q.contains_quorum(&set(&[4, 5])), "no majority of 1, 2, 3");
        assert!(q.contains_quorum(&set(&[1, 3, 4])));
        assert!(q.is_voter(5) && !q.is_current_voter(5) && q.is_current_voter(1));
        let alone = Joint::new(Majority::new([2]), Some(Majority::new([1, 3, 4, 5])));
        assert!(
            !alone.contains_quorum(&set(&[2])),
            "a stale one-voter configuration elects nobody alone"
        );
        let plain = Joint::new(Majority::new([1, 2, 3]), None);
        assert!(plain.contains_quorum(&set(&[1, 2])) && !plain.is_voter(4));
    }

    #[test]
    fn non_voters_never_count() {
        let q = Majority::new([1, 2, 3]);
        assert!(!q.contains_quorum(&set(&[1, 7, 8, 9])));
        assert!(!q.is_voter(7));
    }
}
