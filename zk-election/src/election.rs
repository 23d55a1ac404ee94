//! The fast leader election state machine (quorum.md §2).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::Sid;
use crate::quorum::Quorum;
use crate::vote::{Ballot, NOTIFICATION_VERSION, Notification, PeerState, Vote};

/// The election's timing parameters, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    /// How long the proposal must stand unchallenged, once a quorum agrees
    /// with it, before the server decides (ZooKeeper's `finalizeWait`).
    pub finalize_wait_ms: u64,
    /// The first wait for a notification before re-sending ours
    /// (`zookeeper.fastleader.minNotificationInterval`).
    pub min_notification_interval_ms: u64,
    /// The longest such wait; each silent wait doubles it up to this
    /// (`zookeeper.fastleader.maxNotificationInterval`).
    pub max_notification_interval_ms: u64,
    /// Decide without waiting out the finalize wait once every voter but
    /// those whose connection went down (and did not come back) votes for
    /// the proposal in this round: a better vote can then only come from a
    /// server that lost its connection, e.g. a leader killed. Not Apache's
    /// (false there); see the crate documentation ("The finalize wait").
    pub early_finalize: bool,
    /// Answer a LOOKING voter of this round whose vote loses to our
    /// proposal with the proposal. Apache answers only voters of earlier
    /// rounds, so a voter that went LOOKING just after our notification
    /// reached it (while it still followed) waits for a notification
    /// interval to learn our vote: a failover took two intervals (100 ms)
    /// that way. Not Apache's (false there).
    pub answer_losing_votes: bool,
}

impl Params {
    /// Apache ZooKeeper 3.8's values: 200 ms finalize wait, 200 ms first
    /// re-send, doubling up to 60 s.
    pub const APACHE: Params = Params {
        finalize_wait_ms: 200,
        min_notification_interval_ms: 200,
        max_notification_interval_ms: 60_000,
        early_finalize: false,
        answer_losing_votes: false,
    };
}

impl Default for Params {
    /// Our defaults: see the crate documentation ("The finalize wait") for
    /// the measurement behind them.
    fn default() -> Self {
        Params {
            finalize_wait_ms: crate::DEFAULT_FINALIZE_WAIT_MS,
            min_notification_interval_ms: crate::DEFAULT_FINALIZE_WAIT_MS,
            max_notification_interval_ms: 60_000,
            early_finalize: true,
            answer_losing_votes: true,
        }
    }
}

/// The election's named timers. Arming a timer replaces its previous
/// deadline; a timer that fires after it was cancelled or re-armed must not
/// be delivered (the runtime keeps one deadline per name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// No notification arrived for the current notification interval:
    /// re-send ours (and let the transport re-dial lost peers).
    Notify,
    /// The finalize wait passed without a better vote: decide.
    Finalize,
}

/// What happens to an election.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// Start a new election round (at start-up, or when the server lost its
    /// leader or its followers). `last_zxid` is the last logged zxid and
    /// `current_epoch` the persisted current epoch.
    StartLooking {
        /// The last zxid in the server's log.
        last_zxid: i64,
        /// The server's current epoch (`currentEpoch` file).
        current_epoch: i64,
    },
    /// A notification arrived from server `from` (already decoded; malformed
    /// ones and unknown states are dropped by the transport). One that claims
    /// our own sid is ignored: ours loop back inside the core.
    Received {
        /// The sender (from the connection's initial message).
        from: Sid,
        /// What it said.
        msg: Notification,
    },
    /// A timer armed with [`Command::SetTimer`] fired.
    Timer(Timer),
    /// A connection to `sid` was (re-)established: the last notification sent
    /// to it is sent again (`SendWorker` re-sends `lastMessageSent`).
    Connected(Sid),
    /// The connection to `sid` was lost. Nothing in the election depends on
    /// it (a later send re-dials); it is an event so that the runtime and a
    /// simulator report every connection change the same way.
    Disconnected(Sid),
    /// Zab established `peer_epoch` under the elected leader: the vote this
    /// server reports to joiners carries it (`QuorumPeer.updateElectionVote`).
    EpochEstablished {
        /// The new epoch.
        peer_epoch: i64,
    },
}

/// The election's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// LEADING, FOLLOWING or OBSERVING.
    pub state: PeerState,
    /// The elected leader's server id.
    pub leader: Sid,
    /// The winning vote (leader, its zxid and its epoch).
    pub vote: Vote,
    /// The election round it was decided in.
    pub election_epoch: i64,
    /// Decided by joining a leader that a quorum already follows (the
    /// LEADING / FOLLOWING notifications of another round,
    /// `outofelection`), whose round number it takes, rather than by the
    /// votes of our own round.
    pub joined: bool,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// Send `msg` to server `to` (with our config text, version 0). Only the
    /// newest unsent notification per peer needs to be kept.
    Send {
        /// The destination server.
        to: Sid,
        /// The notification.
        msg: Notification,
    },
    /// Arm `timer` to fire after `after_ms` (replacing an earlier deadline).
    SetTimer {
        /// Which timer.
        timer: Timer,
        /// Its delay in milliseconds.
        after_ms: u64,
    },
    /// Disarm `timer`.
    CancelTimer(Timer),
    /// The election is over: run the role.
    Decided(Decision),
}

/// QuorumPeer's `currentVote`: what this server reports once it has decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CurrentVote {
    vote: Vote,
    election_epoch: i64,
}

/// One server's fast leader election.
///
/// Events go in through [`Election::step`], commands come out. The value holds
/// no clock, socket or randomness and is `Clone + Eq + Hash` (ordered maps
/// only), so a simulator can copy it, compare it and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Election<Q: Quorum> {
    me: Sid,
    quorum: Q,
    params: Params,
    state: PeerState,
    /// Inside a round (between `StartLooking` and the decision).
    in_round: bool,
    /// `logicalclock`: the election round.
    logical_clock: i64,
    /// This server's own vote for the round (`getInitId`, ...).
    init: Vote,
    /// The vote this server currently proposes.
    proposal: Vote,
    /// The vote reported once decided; `None` before the first round.
    current: Option<CurrentVote>,
    /// Votes of this round, by sender.
    recvset: BTreeMap<Sid, Ballot>,
    /// FOLLOWING / LEADING votes of any round, by sender.
    out_of_election: BTreeMap<Sid, Ballot>,
    /// A quorum agrees with the proposal; waiting `finalize_wait_ms` for a
    /// better vote.
    finalizing: bool,
    /// The current notification interval.
    not_timeout_ms: u64,
    /// The last notification sent to each peer (re-sent on reconnection).
    last_sent: BTreeMap<Sid, Notification>,
    /// Peers whose connection went down ([`Event::Disconnected`]) and has
    /// not come back ([`Event::Connected`]), for [`Params::early_finalize`].
    /// A peer never connected yet is not in it: at start-up every voter
    /// may still vote.
    down: BTreeSet<Sid>,
}

impl<Q: Quorum> Election<Q> {
    /// A server `me` of the ensemble `quorum`, not yet in a round: feed
    /// [`Event::StartLooking`] to begin.
    pub fn new(me: Sid, quorum: Q, params: Params) -> Self {
        Self {
            me,
            quorum,
            params,
            state: PeerState::Looking,
            in_round: false,
            logical_clock: 0,
            init: Vote {
                leader: -1,
                zxid: -1,
                peer_epoch: -1,
            },
            proposal: Vote {
                leader: -1,
                zxid: -1,
                peer_epoch: -1,
            },
            current: None,
            recvset: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalizing: false,
            not_timeout_ms: params.min_notification_interval_ms,
            last_sent: BTreeMap::new(),
            down: BTreeSet::new(),
        }
    }

    /// This server's id.
    pub fn me(&self) -> Sid {
        self.me
    }

    /// The current state.
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// The election round (`logicalclock`).
    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    /// The vote proposed in the current round.
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    /// The decided vote, if any round has been decided.
    pub fn current_vote(&self) -> Option<Vote> {
        self.current.map(|c| c.vote)
    }

    /// Whether a quorum agrees and the finalize wait is running.
    pub fn is_finalizing(&self) -> bool {
        self.finalizing
    }

    /// The quorum this election counts with.
    pub fn quorum(&self) -> &Q {
        &self.quorum
    }

    /// Counts with `quorum` from now on (a reconfig the leader committed,
    /// while this server follows it: ZooKeeper restarts its election with
    /// the new verifier then). The votes kept are counted anew at the next
    /// one received; those of servers that are no voters any more are
    /// dropped (only voters' votes count). A server that follows says from
    /// now on whether it does so with a vote (FOLLOWING) or without
    /// (OBSERVING): voters count only the former.
    pub fn set_quorum(&mut self, quorum: Q) {
        self.recvset.retain(|s, _| quorum.is_voter(*s));
        self.quorum = quorum;
        if matches!(self.state, PeerState::Following | PeerState::Observing) {
            self.state = if self.quorum.is_current_voter(self.me) {
                PeerState::Following
            } else {
                PeerState::Observing
            };
        }
    }

    /// Feeds one event; the commands it causes are appended to `out` in order.
    pub fn step(&mut self, event: Event, out: &mut Vec<Command>) {
        let mut loopback = VecDeque::new();
        match event {
            Event::StartLooking {
                last_zxid,
                current_epoch,
            } => self.start_looking(last_zxid, current_epoch, out, &mut loopback),
            // Our own notifications loop back inside the core; one that
            // claims to come from us over the network is not ours.
            Event::Received { from, .. } if from == self.me => {}
            Event::Received { from, msg } => self.receive(from, msg, out, &mut loopback),
            Event::Timer(Timer::Notify) => {
                if self.in_round && !self.finalizing {
                    // lookForLeader's poll timed out: re-send and back off.
                    self.send_notifications(out, &mut loopback);
                    self.not_timeout_ms = (self.not_timeout_ms.saturating_mul(2))
                        .min(self.params.max_notification_interval_ms);
                    self.arm_notify(out);
                }
            }
            Event::Timer(Timer::Finalize) => {
                if self.in_round && self.finalizing {
                    let (vote, epoch) = (self.proposal, self.logical_clock);
                    self.decide(vote, epoch, false, out);
                }
            }
            Event::Connected(sid) => {
                self.down.remove(&sid);
                if let Some(msg) = self.last_sent.get(&sid).filter(|_| sid != self.me) {
                    out.push(Command::Send { to: sid, msg: *msg });
                }
            }
            Event::Disconnected(sid) => {
                if sid != self.me {
                    self.down.insert(sid);
                }
            }
            Event::EpochEstablished { peer_epoch } => {
                if let Some(c) = &mut self.current {
                    c.vote.peer_epoch = peer_epoch;
                }
            }
        }
        // Notifications to ourselves go through the receive queue, as
        // `QuorumCnxManager.toSend` loops them back.
        while let Some(msg) = loopback.pop_front() {
            if !self.in_round {
                break; // leaveInstance clears the receive queue
            }
            self.receive(self.me, msg, out, &mut loopback);
        }
        if self.params.early_finalize
            && self.in_round
            && self.finalizing
            && self.every_reachable_voter_agrees()
        {
            let (vote, epoch) = (self.proposal, self.logical_clock);
            self.decide(vote, epoch, false, out);
        }
        self.validate();
    }

    /// Whether this round's votes of every voter but those known down are
    /// the proposal, and they are a quorum.
    fn every_reachable_voter_agrees(&self) -> bool {
        let target = self.proposal_ballot();
        let agrees = |v: &Sid| self.recvset.get(v).is_some_and(|b| target.same(b));
        self.quorum
            .voters()
            .iter()
            .filter(|v| !self.down.contains(v))
            .all(agrees)
            && self.has_quorum(&self.recvset, &target)
    }

    fn start_looking(
        &mut self,
        last_zxid: i64,
        current_epoch: i64,
        out: &mut Vec<Command>,
        loopback: &mut VecDeque<Notification>,
    ) {
        self.state = PeerState::Looking;
        self.in_round = true;
        self.finalizing = false;
        self.recvset.clear();
        self.out_of_election.clear();
        self.init = if self.quorum.is_current_voter(self.me) {
            Vote {
                leader: self.me as i64,
                zxid: last_zxid,
                peer_epoch: current_epoch,
            }
        } else {
            Vote::NON_VOTER
        };
        // QuorumPeer.startLeaderElection: the reported vote starts as our own.
        if self.current.is_none() {
            self.current = Some(CurrentVote {
                vote: Vote {
                    leader: self.me as i64,
                    zxid: last_zxid,
                    peer_epoch: current_epoch,
                },
                election_epoch: -1,
            });
        }
        // Java's incrementAndGet wraps: a peer may have sent a round of
        // Long.MAX_VALUE, which we adopted.
        self.logical_clock = self.logical_clock.wrapping_add(1);
        self.proposal = self.init;
        self.not_timeout_ms = self.params.min_notification_interval_ms;
        out.push(Command::CancelTimer(Timer::Finalize));
        self.send_notifications(out, loopback);
        self.arm_notify(out);
    }

    /// `WorkerReceiver.run`: replies that do not wait for the election loop,
    /// then the election loop itself while LOOKING.
    fn receive(
        &mut self,
        from: Sid,
        n: Notification,
        out: &mut Vec<Command>,
        loopback: &mut VecDeque<Notification>,
    ) {
        if !self.quorum.is_voter(from) {
            // A non-voter (an observer) always gets our current vote, our
            // round and our state, and is never counted (quorum.md §2.4, §2.5).
            let cur = self.reported_vote();
            self.send(
                from,
                Notification {
                    state: self.state,
                    vote: cur.vote,
                    election_epoch: self.logical_clock,
                    version: NOTIFICATION_VERSION,
                },
                out,
            );
            return;
        }
        if self.state == PeerState::Looking {
            if n.state == PeerState::Looking && n.election_epoch < self.logical_clock {
                // A LOOKING voter behind us learns our round and proposal.
                self.send(
                    from,
                    Notification {
                        state: PeerState::Looking,
                        vote: self.proposal,
                        election_epoch: self.logical_clock,
                        version: NOTIFICATION_VERSION,
                    },
                    out,
                );
            }
            if self.in_round {
                self.look(from, n, out, loopback);
            }
        } else if n.state == PeerState::Looking && from != self.me {
            // Decided: tell a LOOKING voter whom we follow or that we lead.
            let cur = self.reported_vote();
            self.send(
                from,
                Notification {
                    state: self.state,
                    vote: cur.vote,
                    election_epoch: cur.election_epoch,
                    version: NOTIFICATION_VERSION,
                },
                out,
            );
        }
    }

    fn reported_vote(&self) -> CurrentVote {
        self.current.unwrap_or(CurrentVote {
            vote: self.proposal,
            election_epoch: self.logical_clock,
        })
    }

    /// One iteration of `lookForLeader`'s loop for a notification from a voter.
    fn look(
        &mut self,
        from: Sid,
        n: Notification,
        out: &mut Vec<Command>,
        loopback: &mut VecDeque<Notification>,
    ) {
        if self.finalizing {
            // A voter that already decided for the proposal's leader in this
            // round agrees, whatever epoch that leader has established
            // since: with `early_finalize` it counts as a LOOKING vote for
            // the proposal would. (It answers our notifications with its
            // decision only; five servers waited out the finalize wait for
            // it in one failover of two.)
            let decided_alike = matches!(n.state, PeerState::Following | PeerState::Leading)
                && n.election_epoch == self.logical_clock
                && n.vote.leader == self.proposal.leader
                && n.vote.zxid == self.proposal.zxid
                && self.quorum.is_voter(from);
            if self.params.early_finalize && decided_alike {
                self.recvset.insert(from, self.proposal_ballot());
                return;
            }
            if !(n.vote.beats(&self.proposal) && self.weighs(&n.vote)) {
                // Discarded (a candidate of weight 0 loses
                // `totalOrderPredicate`). Unlike Apache's poll, the wait keeps its
                // deadline: the peers' repeated notifications (their own
                // notification interval equals the wait) stretched elections
                // to twice the wait, and a vote that cannot win tells
                // nothing worth waiting for. One that agrees is kept for
                // `early_finalize` (Apache drops it with the others).
                let this_round = n.state == PeerState::Looking
                    && n.election_epoch == self.logical_clock
                    && self.quorum.is_voter(from);
                if self.params.early_finalize && this_round && n.vote == self.proposal {
                    self.recvset.insert(from, self.proposal_ballot());
                } else if self.params.answer_losing_votes
                    && this_round
                    && from != self.me
                    && !n.vote.beats(&self.proposal)
                {
                    // A voter that went LOOKING after our notifications
                    // reached it (it still followed) sends its own, losing
                    // vote; without an answer it learns ours only at its
                    // next notification interval, and everyone's wait for
                    // its agreement runs out first (five servers, one
                    // failover of two: 50 ms and more).
                    self.answer(from, out);
                }
                return;
            }
            // A better vote: leave the finalize wait and handle it.
            self.finalizing = false;
            out.push(Command::CancelTimer(Timer::Finalize));
        }
        if self.valid_voter(n.vote.leader) {
            match n.state {
                PeerState::Looking => {
                    if self.looking_notification(from, n, out, loopback) {
                        return;
                    }
                }
                PeerState::Observing => {}
                PeerState::Following | PeerState::Leading => {
                    if let Some((vote, epoch, joined)) = self.following_notification(from, n) {
                        self.decide(vote, epoch, joined, out);
                        return;
                    }
                }
            }
        } else if n.state == PeerState::Looking
            && n.election_epoch > self.logical_clock
            && !self.quorum.is_current_voter(from)
        {
            // A voter of the last-seen configuration only proposes nobody (its
            // init vote): ZooKeeper ignores such a notification, and a voter
            // in force behind it in rounds then never joins its round, nor it
            // ours (each ignores the other: seed 739 of zk-sim's wide reconfigs
            // stayed LOOKING). Its round is taken with our own proposal.
            self.logical_clock = n.election_epoch;
            self.recvset.clear();
            self.proposal = self.init;
            self.send_notifications(out, loopback);
        }
        self.arm_notify(out);
    }

    /// Sends our proposal of this round to `to` alone (its losing vote's
    /// answer, [`Params::answer_losing_votes`]).
    fn answer(&mut self, to: Sid, out: &mut Vec<Command>) {
        let msg = Notification {
            state: PeerState::Looking,
            vote: self.proposal,
            election_epoch: self.logical_clock,
            version: NOTIFICATION_VERSION,
        };
        self.send(to, msg, out);
    }

    /// The LOOKING case of `lookForLeader`; true when the finalize wait began.
    fn looking_notification(
        &mut self,
        from: Sid,
        n: Notification,
        out: &mut Vec<Command>,
        loopback: &mut VecDeque<Notification>,
    ) -> bool {
        if self.init.zxid == -1 || n.vote.zxid == -1 {
            return false;
        }
        if n.election_epoch > self.logical_clock {
            // A later round: join it, forget this round's votes.
            self.logical_clock = n.election_epoch;
            self.recvset.clear();
            self.proposal = if n.vote.beats(&self.init) && self.may_lead(&n.vote) {
                n.vote
            } else {
                self.init
            };
            self.send_notifications(out, loopback);
        } else if n.election_epoch < self.logical_clock {
            return false;
        } else if n.vote.beats(&self.proposal) && self.may_lead(&n.vote) {
            self.proposal = n.vote;
            self.send_notifications(out, loopback);
        } else if self.params.answer_losing_votes
            && n.vote != self.proposal
            && from != self.me
            && !n.vote.beats(&self.proposal)
        {
            // Only a vote that loses: one that wins but may not lead (a
            // candidate of weight 0) would answer ours back, and the two
            // would answer each other forever (zk-sim, hierarchical
            // quorums, seed 394).
            self.answer(from, out);
        }
        self.recvset.insert(
            from,
            Ballot {
                vote: n.vote,
                election_epoch: n.election_epoch,
                state: PeerState::Looking,
                version: 0,
            },
        );
        let target = self.proposal_ballot();
        if self.has_quorum(&self.recvset, &target) {
            self.finalizing = true;
            out.push(Command::CancelTimer(Timer::Notify));
            out.push(Command::SetTimer {
                timer: Timer::Finalize,
                after_ms: self.params.finalize_wait_ms,
            });
            return true;
        }
        false
    }

    /// `receivedFollowingNotification` (also used for LEADING senders): the
    /// vote and round to decide, if a quorum stands behind a leader that has
    /// told us itself that it leads.
    /// A LEADING / FOLLOWING server's notification: the vote and round to
    /// decide, and whether it is a join (see [`Decision::joined`]).
    fn following_notification(&mut self, from: Sid, n: Notification) -> Option<(Vote, i64, bool)> {
        let leader = n.vote.leader;
        let target = Ballot {
            vote: n.vote,
            election_epoch: n.election_epoch,
            state: n.state,
            version: n.version,
        };
        if n.election_epoch == self.logical_clock {
            // Votes of this round count together, whatever the state.
            self.recvset.insert(
                from,
                Ballot {
                    version: 0,
                    ..target
                },
            );
            if self.has_quorum(&self.recvset, &target)
                && self.check_leader(&self.recvset, leader, n.election_epoch)
            {
                return Some((n.vote, n.election_epoch, false));
            }
        }
        // Joining an established ensemble: a quorum (of the voters in force,
        // see `Joint`) must follow the same leader.
        self.out_of_election.insert(from, target);
        if self
            .quorum
            .contains_current_quorum(&agreeing(&self.out_of_election, &target))
            && self.check_leader(&self.out_of_election, leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            return Some((n.vote, n.election_epoch, true));
        }
        None
    }

    /// `checkLeader`: another leader must have told us itself that it leads;
    /// we may lead only from the round we are in.
    fn check_leader(&self, votes: &BTreeMap<Sid, Ballot>, leader: i64, epoch: i64) -> bool {
        if leader != self.me as i64 {
            u64::try_from(leader)
                .ok()
                .and_then(|l| votes.get(&l))
                .is_some_and(|b| b.state == PeerState::Leading)
        } else {
            self.logical_clock == epoch
        }
    }

    /// `getVoteTracker(..).hasAllQuorums()`.
    /// Our proposal as a LOOKING ballot of this round (what agreeing
    /// votes in `recvset` equal).
    fn proposal_ballot(&self) -> Ballot {
        Ballot {
            vote: self.proposal,
            election_epoch: self.logical_clock,
            state: PeerState::Looking,
            version: 0,
        }
    }

    fn has_quorum(&self, votes: &BTreeMap<Sid, Ballot>, target: &Ballot) -> bool {
        self.quorum.contains_quorum(&agreeing(votes, target))
    }

    /// Whether `v`'s leader is a voter in force (`totalOrderPredicate`
    /// weighs a candidate with the current verifier only) of a weight
    /// other than 0 (`getWeight(newId) == 0` loses there).
    fn may_lead(&self, v: &Vote) -> bool {
        u64::try_from(v.leader).is_ok_and(|s| self.quorum.is_current_voter(s)) && self.weighs(v)
    }

    /// Whether `v`'s leader has a weight other than 0 (`getWeight(newId) ==
    /// 0` loses `totalOrderPredicate`).
    fn weighs(&self, v: &Vote) -> bool {
        u64::try_from(v.leader).is_ok_and(|s| self.quorum.weight(s) > 0)
    }

    fn valid_voter(&self, sid: i64) -> bool {
        u64::try_from(sid).is_ok_and(|s| self.quorum.is_voter(s))
    }

    fn decide(&mut self, vote: Vote, election_epoch: i64, joined: bool, out: &mut Vec<Command>) {
        let Ok(leader) = u64::try_from(vote.leader) else {
            return; // unreachable: only valid voters are ever proposed by voters
        };
        self.state = if leader == self.me {
            PeerState::Leading
        } else if self.quorum.is_current_voter(self.me) {
            PeerState::Following
        } else {
            PeerState::Observing
        };
        self.in_round = false;
        self.finalizing = false;
        self.current = Some(CurrentVote {
            vote,
            election_epoch,
        });
        out.push(Command::CancelTimer(Timer::Notify));
        out.push(Command::CancelTimer(Timer::Finalize));
        out.push(Command::Decided(Decision {
            state: self.state,
            leader,
            vote,
            election_epoch,
            joined,
        }));
    }

    /// `sendNotifications`: our proposal to every voter, ourselves included.
    fn send_notifications(
        &mut self,
        out: &mut Vec<Command>,
        loopback: &mut VecDeque<Notification>,
    ) {
        let msg = Notification {
            state: PeerState::Looking,
            vote: self.proposal,
            election_epoch: self.logical_clock,
            version: NOTIFICATION_VERSION,
        };
        for sid in self.quorum.voters() {
            if sid == self.me {
                loopback.push_back(msg);
            } else {
                self.send(sid, msg, out);
            }
        }
    }

    fn send(&mut self, to: Sid, msg: Notification, out: &mut Vec<Command>) {
        self.last_sent.insert(to, msg);
        out.push(Command::Send { to, msg });
    }

    fn arm_notify(&self, out: &mut Vec<Command>) {
        if self.in_round && !self.finalizing {
            out.push(Command::SetTimer {
                timer: Timer::Notify,
                after_ms: self.not_timeout_ms,
            });
        }
    }

    /// The invariants between the fields, checked after every step in debug
    /// builds (and by the simulator).
    pub fn validate(&self) {
        debug_assert!(
            !self.finalizing || self.in_round,
            "finalizing outside a round"
        );
        debug_assert!(
            !self.in_round || self.state == PeerState::Looking,
            "a round runs only while LOOKING"
        );
        debug_assert!(
            self.state == PeerState::Looking || self.current.is_some(),
            "a decided server has a current vote"
        );
        debug_assert!(
            self.not_timeout_ms
                >= self
                    .params
                    .min_notification_interval_ms
                    .min(self.params.max_notification_interval_ms)
                && self.not_timeout_ms
                    <= self
                        .params
                        .max_notification_interval_ms
                        .max(self.params.min_notification_interval_ms),
            "notification interval out of bounds"
        );
        debug_assert!(
            self.recvset.keys().all(|s| self.quorum.is_voter(*s)),
            "only voters' votes are kept"
        );
        debug_assert!(
            self.state != PeerState::Leading
                || self
                    .current
                    .is_some_and(|c| c.vote.leader == self.me as i64),
            "a leader's vote names itself"
        );
    }
}

/// The senders of `votes` whose ballot is `target` (the `Vote.equals` rule).
fn agreeing(votes: &BTreeMap<Sid, Ballot>, target: &Ballot) -> BTreeSet<Sid> {
    votes
        .iter()
        .filter(|(_, b)| target.same(b))
        .map(|(sid, _)| *sid)
        .collect()
}
