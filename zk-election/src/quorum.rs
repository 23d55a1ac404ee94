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
    /// Whether `sid` votes (a participant of the current config).
    fn is_voter(&self, sid: Sid) -> bool;
    /// The voters, in increasing sid order.
    fn voters(&self) -> Vec<Sid>;
    /// Whether the voters among `acks` form a quorum. Non-voters in `acks`
    /// never count (ZooKeeper's `SyncedLearnerTracker.addAck`).
    fn contains_quorum(&self, acks: &BTreeSet<Sid>) -> bool;
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
    fn non_voters_never_count() {
        let q = Majority::new([1, 2, 3]);
        assert!(!q.contains_quorum(&set(&[1, 7, 8, 9])));
        assert!(!q.is_voter(7));
    }
}
