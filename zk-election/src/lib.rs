//! ZooKeeper's fast leader election (FLE), as a sans-I/O state machine.
//!
//! This crate decides who leads an ensemble exactly as Apache ZooKeeper 3.8's
//! `FastLeaderElection` does, so that our servers and Apache servers elect one
//! leader together. It owns no socket, thread, file or clock: the runtime
//! (zk-server, or a simulator) feeds [`Event`]s into [`Election::step`] and
//! carries out the [`Command`]s that come back. The wire bytes are in
//! `zk_jute::quorum`; the rules are in `shared/design/quorum.md` §2, whose
//! section numbers the code and tests cite.
//!
//! # States and messages
//!
//! A server is LOOKING until the election decides, then LEADING, FOLLOWING or
//! OBSERVING ([`PeerState`]) until the runtime starts a new round with
//! [`Event::StartLooking`] (its leader or its quorum was lost). Every message
//! is a [`Notification`]: the sender's state, its vote (leader id, the leader's
//! last zxid and epoch) and its round (`electionEpoch`, the logical clock).
//! Votes are ordered by (peerEpoch, zxid, id) ([`Vote::beats`]).
//!
//! # The rules (quorum.md §2)
//!
//! | rule | where |
//! |---|---|
//! | a round starts with our own vote (`i64::MIN` for observers), `logicalclock + 1`, sent to every voter including ourselves (§2.2) | `start_looking` |
//! | the total order (peerEpoch, zxid, sid) (§2.2) | [`Vote::beats`] |
//! | LOOKING notification: a later round is joined and the round's votes dropped; an earlier one is ignored; a better vote in our round is adopted and re-sent; a vote from a -1 zxid is ignored (§2.3) | `looking_notification` |
//! | a quorum of the round's votes equal to our proposal starts the finalize wait; a better vote ends it, any other is dropped (Apache's poll restarts the wait then; ours keeps its deadline, which stretched elections to twice the wait); the wait's end decides, or (ours) every voter not known down agreeing (§2.3) | `look`, [`Timer::Finalize`], `every_reachable_voter_agrees` |
//! | FOLLOWING / LEADING notification: counted in the round if from the same round, and always in `outofelection`; decide when a quorum agrees and `checkLeader` holds (§2.3) | `following_notification`, `check_leader` |
//! | vote equality: all four fields if either side is LOOKING, else (id, peerEpoch), or the id alone across notification versions (§2.3, ZOOKEEPER-1732) | `Ballot::same` |
//! | a decided server answers a LOOKING voter with its vote, its round and its state; a LOOKING server answers a LOOKING voter of an earlier round with its proposal (§2.4) | `receive` |
//! | a non-voter (observer) always gets our current vote, our round and our state, and never counts; observers decide OBSERVING (§2.4, §2.5) | `receive`, `decide` |
//! | notifications from non-voters or for a non-voter leader never enter the election (`validVoter`) | `receive`, `look` |
//! | no notification for the notification interval: re-send, and double the interval up to its maximum (§2.3) | [`Timer::Notify`] |
//! | a new connection gets the last notification sent to that peer again, so duplicates are normal and harmless (§1.3) | [`Event::Connected`] |
//! | after Zab's sync the reported vote carries the new epoch (§2.4, `updateElectionVote`) | [`Event::EpochEstablished`] |
//!
//! Safety of the ensemble does not rest on the election: two servers can
//! briefly believe in different leaders, and Zab's epochs (the next part)
//! make sure at most one of them ever commits. The election's own promise is
//! that, once the network is quiet, every live server decides the same leader.
//!
//! # The finalize wait
//!
//! ZooKeeper waits 200 ms after a quorum agrees before it decides, in case a
//! better vote is still on its way; the same value is the first notification
//! interval. The wait costs every election its full length. Its only purpose
//! is to avoid deciding for a server that a better vote is about to displace;
//! when that happens anyway the followers wait for a leader that is not
//! leading until Zab's `initLimit` runs out, and a new round starts. A shorter
//! wait is as safe (Zab's epochs) and decides sooner; it only makes that
//! detour more likely when the servers' messages take longer than the wait to
//! cross. [`DEFAULT_FINALIZE_WAIT_MS`] documents the value we chose and the
//! measurement behind it; [`Params::APACHE`] gives ZooKeeper's.
//!
//! Ours also ends the wait early ([`Params::early_finalize`]) once every
//! voter agrees with the proposal except those whose connection went down
//! (and has not come back): no better vote can then come but from a server
//! this one just lost, such as the leader that died and started the round.
//! A voter that already decided for the proposal's leader in this round
//! (its FOLLOWING or LEADING answer) agrees too. A failover then takes the
//! time the survivors need to exchange their votes, not the wait. A voter never connected yet (at start-up) still
//! counts, so a cold start waits as before.
//!
//! # Quorums
//!
//! Who votes and what a quorum is sits behind the [`Quorum`] trait; simple
//! majorities ([`Majority`]) are what zoo.cfg describes without `group.` and
//! `weight.` lines. With reconfig, [`Joint`] adds the voters of the
//! server's last-seen configuration (a reconfig it logged and never
//! activated): notified and counted, a majority of each configuration
//! needed to decide, as ZooKeeper's last-seen verifier; only voters in force
//! may lead, and joining a leader that a quorum of them already follows needs
//! them alone (a last-seen configuration that leader's history dropped would
//! keep the server out; ZooKeeper asks both).

#![forbid(unsafe_code)]

mod election;
mod quorum;
mod vote;

pub use election::{Command, Decision, Election, Event, Params, Timer};
pub use quorum::{Groups, Joint, Majority, Quorum};
pub use vote::{NOTIFICATION_VERSION, Notification, PeerState, Vote};

/// A server id (`myid`, the `X` of `server.X`).
pub type Sid = u64;

/// Our default finalize wait (and first notification interval), in ms: 50.
///
/// Measured in the election simulator (`cargo test -p zk-sim --release --test
/// election finalize_wait -- --ignored --nocapture`; 400 seeds per line, time
/// from start, or from the leader's death, until one leader is followed by
/// all; a "detour" is a round abandoned after `initLimit` because a server
/// decided for a leader that did not lead):
///
/// | scenario (3 voters; 5 alike) | 200 ms (Apache) | 100 ms | **50 ms** | 20 ms | 10 ms |
/// |---|---|---|---|---|---|
/// | start together, one-way delay 0–5 ms: median | 213 ms | 113 ms | **63 ms** | 33 ms | 23 ms |
/// | leader killed, 0–5 ms: median / p99 | 210 / 308 ms | 110 / 208 | **60 / 158** | 30 / 128 | 20 / 118 |
/// | leader killed, 0–50 ms: detours per 400 runs (3 / 5 voters) | 0 / 0 | 0 / 0 | **12 / 0** | 72 / 22 | 93 / 58 |
/// | starts 0–300 ms apart, 0–5 ms: detours (3 / 5 voters) | 1 / 7 | 3 / 0 | **2 / 3** | 0 / 0 | 1 / 0 |
///
/// (Detours re-measured when the wait stopped restarting on a vote that
/// cannot win; the medians did not move.)
///
/// With [`Params::early_finalize`] (our default) a killed leader's
/// survivors decide as soon as they agree: leader killed over 0–5 ms links,
/// median / p99 10 / 108 ms (3 voters) and 12 / 109 ms (5 voters) whatever
/// the wait, over 0–50 ms links 118 / 181 ms with the same detours as the
/// wait alone (12 / 0 at 50 ms; 0 / 0 at 200 ms). Starts are unchanged: no
/// voter is known down then.
///
/// The wait only has to outlast the time a better vote needs to cross the
/// network, a few one-way delays. Within a data centre (delays well under
/// 5 ms, where ZooKeeper ensembles live) 50 ms never caused a detour and
/// elects in a quarter of Apache's time; at 20 ms and below detours appear
/// once delays reach tens of milliseconds, each costing `initLimit` ticks
/// (20 s by default). Ensembles stretched over slow links should set
/// `zkrs.electionFinalizeWaitMs=200` (ZooKeeper's value). (The remaining
/// ~100 ms of the p99s is the simulated learner's 100 ms retry to reach a
/// leader that has not decided yet, not the election.)
pub const DEFAULT_FINALIZE_WAIT_MS: u64 = 50;

#[cfg(test)]
mod tests;
