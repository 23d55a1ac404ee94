//! Votes, notifications and the order between votes.

/// A server's election state, as carried in notifications
/// (`QuorumPeer.ServerState`; the wire value is the ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerState {
    /// Looking for a leader.
    Looking,
    /// Following a leader.
    Following,
    /// Leading.
    Leading,
    /// Observing (a non-voting learner).
    Observing,
}

impl PeerState {
    /// The value on the wire (0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING).
    pub fn to_wire(self) -> i32 {
        match self {
            PeerState::Looking => 0,
            PeerState::Following => 1,
            PeerState::Leading => 2,
            PeerState::Observing => 3,
        }
    }

    /// The state for a wire value; `None` for an unknown one (such a
    /// notification is skipped, as `WorkerReceiver` does).
    pub fn from_wire(v: i32) -> Option<Self> {
        Some(match v {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }

    /// ZooKeeper's lower-case name (`looking`, `following`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Looking => "looking",
            PeerState::Following => "following",
            PeerState::Leading => "leading",
            PeerState::Observing => "observing",
        }
    }
}

/// A vote: who should lead, and the two facts that rank it.
///
/// The fields stay the wire's `i64`s: observers propose `i64::MIN` for all
/// three, and an uninitialised proposal is `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vote {
    /// The proposed leader's server id.
    pub leader: i64,
    /// The proposed leader's last logged zxid.
    pub zxid: i64,
    /// The proposed leader's current epoch (`peerEpoch`).
    pub peer_epoch: i64,
}

impl Vote {
    /// The vote of a non-voter (`Long.MIN_VALUE` for id, zxid and epoch).
    pub const NON_VOTER: Vote = Vote {
        leader: i64::MIN,
        zxid: i64::MIN,
        peer_epoch: i64::MIN,
    };

    /// FLE's `totalOrderPredicate` (quorum.md §2.2): whether `self` beats `cur`,
    /// ordering by peerEpoch, then zxid, then server id. (ZooKeeper's first test,
    /// a zero weight, only matters for hierarchical quorums; with majorities
    /// every id weighs 1.)
    pub fn beats(&self, cur: &Vote) -> bool {
        (self.peer_epoch, self.zxid, self.leader) > (cur.peer_epoch, cur.zxid, cur.leader)
    }
}

/// The notification format version this crate sends (`Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION: i32 = 2;

/// A notification as the election core sees it: the sender's state, its vote
/// and its logical clock. The config text that travels with it on the wire is
/// the transport's business (we always send our static config, version 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The sender's state.
    pub state: PeerState,
    /// The sender's vote (its proposal while LOOKING, else its current vote).
    pub vote: Vote,
    /// The sender's logical clock (`electionEpoch`, the election round).
    pub election_epoch: i64,
    /// The sender's notification format version (0 for the 28- and 40-byte
    /// layouts of old servers; [`NOTIFICATION_VERSION`] for ours).
    pub version: i32,
}

/// A vote as stored in `recvset` / `outofelection`, with ZooKeeper's
/// `Vote.equals` (quorum.md §2.3 last point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ballot {
    pub vote: Vote,
    pub election_epoch: i64,
    pub state: PeerState,
    pub version: i32,
}

impl Ballot {
    /// `Vote.equals`: if either side is LOOKING all four of (id, zxid,
    /// electionEpoch, peerEpoch) must match; otherwise id and peerEpoch, or
    /// only the id when exactly one side has a version above 0
    /// (ZOOKEEPER-1732, rolling upgrades).
    pub fn same(&self, other: &Ballot) -> bool {
        if self.state == PeerState::Looking || other.state == PeerState::Looking {
            self.vote == other.vote && self.election_epoch == other.election_epoch
        } else if (self.version > 0) ^ (other.version > 0) {
            self.vote.leader == other.vote.leader
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(leader: i64, zxid: i64, peer_epoch: i64) -> Vote {
        Vote {
            leader,
            zxid,
            peer_epoch,
        }
    }

    #[test]
    fn total_order_is_epoch_then_zxid_then_id() {
        // quorum.md §2.2 totalOrderPredicate.
        assert!(v(1, 0, 2).beats(&v(3, 100, 1)), "epoch first");
        assert!(v(1, 5, 1).beats(&v(3, 4, 1)), "then zxid");
        assert!(v(3, 5, 1).beats(&v(2, 5, 1)), "then id");
        assert!(
            !v(3, 5, 1).beats(&v(3, 5, 1)),
            "a vote does not beat itself"
        );
        assert!(v(1, 0, 0).beats(&Vote::NON_VOTER));
    }

    #[test]
    fn wire_states_round_trip() {
        for s in [
            PeerState::Looking,
            PeerState::Following,
            PeerState::Leading,
            PeerState::Observing,
        ] {
            assert_eq!(PeerState::from_wire(s.to_wire()), Some(s));
        }
        assert_eq!(PeerState::from_wire(4), None);
        assert_eq!(PeerState::from_wire(-1), None);
    }

    fn b(leader: i64, zxid: i64, ee: i64, pe: i64, state: PeerState, version: i32) -> Ballot {
        Ballot {
            vote: v(leader, zxid, pe),
            election_epoch: ee,
            state,
            version,
        }
    }

    #[test]
    fn ballot_equality_follows_vote_equals() {
        use PeerState::*;
        // Either side LOOKING: all four fields.
        assert!(b(1, 5, 2, 1, Looking, 0).same(&b(1, 5, 2, 1, Following, 2)));
        assert!(!b(1, 5, 2, 1, Looking, 0).same(&b(1, 5, 3, 1, Looking, 0)));
        assert!(!b(1, 5, 2, 1, Looking, 0).same(&b(1, 6, 2, 1, Following, 0)));
        // Neither LOOKING, same version class: id and peerEpoch only.
        assert!(b(1, 5, 2, 1, Following, 2).same(&b(1, 9, 7, 1, Leading, 2)));
        assert!(!b(1, 5, 2, 1, Following, 2).same(&b(1, 5, 2, 2, Leading, 2)));
        // Exactly one with version > 0: the id alone (ZOOKEEPER-1732).
        assert!(b(1, 5, 2, 1, Following, 0).same(&b(1, 5, 2, 9, Leading, 2)));
        assert!(!b(1, 5, 2, 1, Following, 0).same(&b(2, 5, 2, 1, Leading, 2)));
    }
}
