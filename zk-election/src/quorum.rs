//! Who votes, and which sets of voters make a quorum.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

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
    /// `sid`'s weight (ZooKeeper's `getWeight`: 1 but in a weighted
    /// configuration, [`Groups`]). A voter of weight 0 votes but never
    /// counts, and is never adopted as the election's candidate.
    fn weight(&self, _sid: Sid) -> u64 {
        1
    }
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

/// Simple majorities (ZooKeeper's `QuorumMaj`): more than half of the
/// voters; or, with [`Groups`] (zoo.cfg's `group.N` / `weight.N` lines),
/// ZooKeeper's hierarchical quorums (`QuorumHierarchical`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Majority {
    voters: BTreeSet<Sid>,
    groups: Option<Arc<Groups>>,
}

impl Majority {
    /// A majority quorum over `voters` (observers are simply not listed).
    pub fn new(voters: impl IntoIterator<Item = Sid>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            groups: None,
        }
    }

    /// A hierarchical quorum: `groups`' voters are the voters.
    pub fn hierarchical(groups: Arc<Groups>) -> Self {
        Self {
            voters: groups.weights.keys().copied().collect(),
            groups: Some(groups),
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

    fn weight(&self, sid: Sid) -> u64 {
        self.groups.as_ref().map_or(1, |g| g.weight(sid))
    }

    fn contains_quorum(&self, acks: &BTreeSet<Sid>) -> bool {
        if let Some(g) = &self.groups {
            return g.contains_quorum(acks);
        }
        let counted = acks.iter().filter(|s| self.voters.contains(s)).count();
        counted > self.voters.len() / 2
    }
}

/// ZooKeeper's hierarchical quorums (`QuorumHierarchical`, zoo.cfg's
/// `group.N=a:b:c` and `weight.a=w` lines): each voter is in exactly one
/// group and has a weight (1 unless given; 0 votes but never counts). A set
/// of servers is a quorum when, in more than half of the groups whose total
/// weight is not 0, its members carry more than half of the group's weight
/// (both halves rounded down, as ZooKeeper's integer division).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Groups {
    /// Each voter's group.
    group: BTreeMap<Sid, u64>,
    /// Each voter's weight.
    weights: BTreeMap<Sid, u64>,
    /// Each group's total weight.
    totals: BTreeMap<u64, u64>,
}

impl Groups {
    /// The groups (`group.N` → its voters) and the weights given
    /// (`weight.sid`; a voter without one weighs 1) over `voters`. Errors,
    /// as ZooKeeper's: a server in two groups, a voter in none; and, where
    /// ZooKeeper would fail later or count a server that never votes: a
    /// group member or a weight that is not a voter, a total weight that
    /// overflows.
    pub fn new(
        voters: &BTreeSet<Sid>,
        groups: &BTreeMap<u64, Vec<Sid>>,
        weights: &BTreeMap<Sid, u64>,
    ) -> Result<Self, String> {
        let mut group = BTreeMap::new();
        for (&gid, members) in groups {
            for &sid in members {
                if !voters.contains(&sid) {
                    return Err(format!("group.{gid}: server {sid} is not a voter"));
                }
                if let Some(other) = group.insert(sid, gid) {
                    return Err(format!("server {sid} is in groups {other} and {gid}"));
                }
            }
        }
        if let Some(sid) = weights.keys().find(|s| !voters.contains(s)) {
            return Err(format!("weight.{sid}: server {sid} is not a voter"));
        }
        let mut all = BTreeMap::new();
        let mut totals: BTreeMap<u64, u64> = groups.keys().map(|&g| (g, 0)).collect();
        for &sid in voters {
            let Some(&gid) = group.get(&sid) else {
                return Err(format!("server {sid} is not in a group"));
            };
            let w = weights.get(&sid).copied().unwrap_or(1);
            all.insert(sid, w);
            let total = totals.entry(gid).or_default();
            *total = total
                .checked_add(w)
                .ok_or_else(|| format!("group.{gid}: total weight overflows"))?;
        }
        Ok(Self {
            group,
            weights: all,
            totals,
        })
    }

    /// `sid`'s weight (0 for a server that is not a voter).
    pub fn weight(&self, sid: Sid) -> u64 {
        self.weights.get(&sid).copied().unwrap_or(0)
    }

    /// Every voter's weight, in increasing sid order.
    pub fn weights(&self) -> &BTreeMap<Sid, u64> {
        &self.weights
    }

    /// Whether the voters among `acks` are a quorum (see [`Groups`]).
    pub fn contains_quorum<'a>(&self, acks: impl IntoIterator<Item = &'a Sid>) -> bool {
        let mut carried: BTreeMap<u64, u64> = BTreeMap::new();
        for sid in acks {
            if let (Some(&gid), Some(&w)) = (self.group.get(sid), self.weights.get(sid)) {
                let c = carried.entry(gid).or_default();
                *c = c.saturating_add(w);
            }
        }
        let won = carried
            .iter()
            .filter(|(gid, w)| **w > self.totals.get(gid).copied().unwrap_or(0) / 2)
            .count();
        let counted = self.totals.values().filter(|t| **t > 0).count();
        won > counted / 2
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

    fn weight(&self, sid: Sid) -> u64 {
        self.current.weight(sid)
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

    fn groups(voters: &[Sid], groups: &[(u64, &[Sid])], weights: &[(Sid, u64)]) -> Groups {
        let groups = groups.iter().map(|(g, m)| (*g, m.to_vec())).collect();
        Groups::new(&set(voters), &groups, &weights.iter().copied().collect()).unwrap()
    }

    #[test]
    fn hierarchical_quorums_are_a_majority_of_groups_by_a_majority_of_weight() {
        // QuorumHierarchical.containsQuorum: groups {1,2}, {3,4}, {5}.
        let g = groups(
            &[1, 2, 3, 4, 5],
            &[(1, &[1, 2]), (2, &[3, 4]), (3, &[5])],
            &[],
        );
        let q = Majority::hierarchical(Arc::new(g));
        assert_eq!(q.voters(), vec![1, 2, 3, 4, 5]);
        assert!(
            !q.contains_quorum(&set(&[2, 3, 4])),
            "a majority, one group"
        );
        assert!(q.contains_quorum(&set(&[1, 2, 5])), "two groups of three");
        assert!(q.contains_quorum(&set(&[3, 4, 5])));
        assert!(
            !q.contains_quorum(&set(&[1, 3, 5])),
            "half of a group's weight is not more"
        );
        assert!(!q.contains_quorum(&set(&[])));
        // Nine servers in three groups: a hierarchical quorum of four, and a
        // majority of five that shares no server with it.
        let nine: Vec<Sid> = (1..=9).collect();
        let g = groups(
            &nine,
            &[(1, &[1, 2, 3]), (2, &[4, 5, 6]), (3, &[7, 8, 9])],
            &[],
        );
        assert!(g.contains_quorum(&set(&[1, 2, 4, 5])));
        assert!(!g.contains_quorum(&set(&[3, 6, 7, 8, 9])));
        assert!(Majority::new(nine).contains_quorum(&set(&[3, 6, 7, 8, 9])));
    }

    #[test]
    fn weights_count_and_zero_weight_groups_do_not() {
        // Server 3 weighs 0: it votes, never counts; group {3} weighs 0 and
        // is not counted among the groups (numGroups--).
        let g = groups(&[1, 2, 3], &[(1, &[1]), (2, &[2]), (3, &[3])], &[(3, 0)]);
        assert_eq!((g.weight(1), g.weight(3), g.weight(9)), (1, 0, 0));
        assert!(
            !g.contains_quorum(&set(&[1, 3])),
            "one group of two counted"
        );
        assert!(g.contains_quorum(&set(&[1, 2])));
        let q = Joint::new(Majority::hierarchical(Arc::new(g)), None);
        assert_eq!((q.weight(1), q.weight(3)), (1, 0));
        // A heavy server carries its group alone.
        let g = groups(&[1, 2, 3], &[(1, &[1, 2, 3])], &[(1, 3)]);
        assert!(g.contains_quorum(&set(&[1])) && !g.contains_quorum(&set(&[2, 3])));
        assert_eq!(g.weights(), &BTreeMap::from([(1, 3), (2, 1), (3, 1)]));
    }

    #[test]
    fn groups_that_zookeeper_refuses_are_errors() {
        let v = set(&[1, 2, 3]);
        let g = |groups: &[(u64, &[Sid])], weights: &[(Sid, u64)]| {
            let groups = groups.iter().map(|(g, m)| (*g, m.to_vec())).collect();
            Groups::new(&v, &groups, &weights.iter().copied().collect()).unwrap_err()
        };
        assert!(g(&[(1, &[1, 2]), (2, &[2, 3])], &[]).contains("in groups 1 and 2"));
        assert!(g(&[(1, &[1, 2])], &[]).contains("server 3 is not in a group"));
        assert!(g(&[(1, &[1, 2, 3, 4])], &[]).contains("server 4 is not a voter"));
        assert!(g(&[(1, &[1, 2, 3])], &[(7, 1)]).contains("weight.7"));
        assert!(g(&[(1, &[1, 2, 3])], &[(1, u64::MAX), (2, 1)]).contains("overflows"));
    }

    #[test]
    fn non_voters_never_count() {
        let q = Majority::new([1, 2, 3]);
        assert!(!q.contains_quorum(&set(&[1, 7, 8, 9])));
        assert!(!q.is_voter(7));
    }
}
