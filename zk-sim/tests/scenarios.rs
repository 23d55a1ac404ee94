//! Scripted regression scenarios from ensemble-testing.md §4, run over
//! several seeds each (the seed varies message and fsync timing). Each test
//! opens with the Apache bug it pins. A failure prints the seed and the trace.

use zk_sim::ensemble::{Action, Options, Step, run_script};

fn scenario(name: &str, voters: usize, steps: &[Step]) {
    let seeds = match std::env::var("ZK_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(s) => s..s + 1,
        None => 0..40,
    };
    for seed in seeds {
        if let Err(f) = run_script(seed, &Options::calm(voters), steps) {
            panic!("{name}: {f}");
        }
    }
}

#[test]
fn zk_3911_newleader_acked_before_the_synced_txns_are_durable() {
    // ZOOKEEPER-3911 / 4643 / 4646: a follower ACKed NEWLEADER (with its
    // currentEpoch written) before the txns of the DIFF were on disk and
    // crashed; restarted, its higher currentEpoch won the next election and
    // its leadership TRUNCated committed, acknowledged writes elsewhere.
    use Action::*;
    use Step::*;
    scenario(
        "ZK-3911",
        3,
        &[
            At(2000, Writes(3)),
            At(3000, Isolate(1)),
            At(3500, Writes(2)),
            At(4500, Crash(2)),
            At(4500, Crash(3)),
            At(5000, Heal),
            At(5100, Restart(3)),
            AfterNewLeaderAck(1, 5000, Crash(1)),
            At(9000, Crash(3)),
            At(9500, Restart(1)),
            At(9500, Restart(2)),
            At(15_000, Writes(2)),
        ],
    );
}

#[test]
fn zk_2845_an_isolated_leaders_uncommitted_txn_never_survives() {
    // ZOOKEEPER-2845: a leader cut off with a txn nobody else logged rejoins
    // (without a process restart) under a leader that wrote more; its extra
    // txn must be TRUNCated, not kept through a DIFF.
    use Action::*;
    use Step::*;
    scenario(
        "ZK-2845",
        3,
        &[
            At(2000, Writes(2)),
            At(3000, Isolate(3)),
            At(3000, Writes(1)),
            At(9000, Heal),
            At(12_000, Writes(2)),
        ],
    );
}

#[test]
fn zk_1154_the_highest_zxid_joining_late_is_truncated() {
    // ZOOKEEPER-1154 / 1156: the server with the highest zxid is absent at
    // the election and joins later; its extra uncommitted txns are removed.
    use Action::*;
    use Step::*;
    scenario(
        "ZK-1154",
        5,
        &[
            At(2000, Writes(3)),
            At(3000, Isolate(5)),
            At(3000, Writes(2)),
            At(3200, Crash(5)),
            At(6000, Heal),
            At(6500, Restart(5)),
            At(9000, Writes(2)),
        ],
    );
}

#[test]
fn a_rejoining_server_behind_a_newer_epoch_gets_a_snapshot() {
    // The other side of ZK-2845: when the new leader has written in its
    // epoch, the old leader's extra txn cannot be placed by TRUNC (the next
    // txn is another epoch's) and it is replaced by SNAP.
    use Action::*;
    use Step::*;
    scenario(
        "SNAP after a newer epoch",
        3,
        &[
            At(2000, Writes(2)),
            At(3000, Isolate(3)),
            At(3000, Writes(1)),
            At(6000, Writes(3)),
            At(9000, Heal),
            At(12_000, Writes(2)),
        ],
    );
}

#[test]
fn leader_failover_keeps_every_acknowledged_write() {
    // The seeds' walk-through: the leader is stopped, the others carry on
    // under a new leader, the old one returns as a follower.
    use Action::*;
    use Step::*;
    scenario(
        "failover",
        3,
        &[
            At(2000, Writes(5)),
            At(3000, Crash(3)),
            At(3000, Writes(5)),
            At(6000, Writes(5)),
            At(8000, Restart(3)),
            At(11_000, Writes(5)),
        ],
    );
}

#[test]
fn zk_335_two_leaders_never_commit_in_one_epoch() {
    // ZOOKEEPER-335: followers did not persist the epoch they acked, so after
    // restarting they could ack a second leader of the same epoch while the
    // old one (not yet timed out) still led, and two txns got one zxid.
    // Here the leader is cut off holding an uncommitted txn, both followers
    // restart and elect a leader of the next epoch, and the old leader
    // returns before its syncLimit ran out. Leadership (one leader per
    // epoch) and Agreement (one txn per zxid) are checked at every step.
    use Action::*;
    use Step::*;
    scenario(
        "ZK-335",
        3,
        &[
            At(2000, Writes(2)),
            At(3000, Isolate(3)),
            At(3000, Writes(1)),
            At(3100, Crash(1)),
            At(3100, Crash(2)),
            At(3200, Restart(1)),
            At(3200, Restart(2)),
            At(3300, Heal),
            At(3400, Writes(3)),
            At(8000, Writes(2)),
        ],
    );
}

#[test]
fn zk_4394_commits_right_after_the_newleader_ack() {
    // ZOOKEEPER-4394: a COMMIT that arrives right after the NEWLEADER ACK,
    // for a proposal the DIFF left outstanding, was applied wrongly (or hit
    // an NPE). A follower rejoins while writes keep coming, so proposals and
    // commits interleave with its sync.
    use Action::*;
    use Step::*;
    scenario(
        "ZK-4394",
        3,
        &[
            At(2000, Writes(3)),
            At(3000, Crash(1)),
            At(3200, Writes(5)),
            At(5000, Restart(1)),
            At(5000, Writes(60)),
            At(9000, Writes(2)),
        ],
    );
}

#[test]
fn zk_4785_a_follower_bounced_during_diff_keeps_what_it_acked() {
    // ZOOKEEPER-4785: a follower bounced in the middle of a DIFF sync, before
    // it had written every txn of the sync, lost txns it had acknowledged.
    // Here it crashes right after its NEWLEADER ACK while writes continue,
    // restarts, and then the leader dies: whoever leads next must hold every
    // acknowledged write (committed durability).
    use Action::*;
    use Step::*;
    scenario(
        "ZK-4785",
        3,
        &[
            At(2000, Writes(3)),
            At(3000, Crash(1)),
            At(3200, Writes(5)),
            At(5000, Restart(1)),
            At(5000, Writes(30)),
            AfterNewLeaderAck(1, 5000, Crash(1)),
            At(7000, Restart(1)),
            At(9000, Writes(3)),
            At(10_000, Crash(3)),
            At(14_000, Writes(3)),
        ],
    );
}
