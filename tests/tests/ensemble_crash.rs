//! Crashes inside sync that timing alone cannot reach (issue 16): the Apache
//! bugs that lost data (ensemble-testing.md §4: ZK-3911, ZK-4643, ZK-4646,
//! ZK-4785) were slips in the order "synced txns durable → currentEpoch
//! written → NEWLEADER acked". The server's failpoints (`ZK_FAILPOINTS`,
//! compiled into debug builds) stop a real process exactly between two of
//! those steps, as a kill -9 there would; on restart it must sync again,
//! serve every acknowledged write, and converge with the others (same tree,
//! zxid and digests).

use bytes::Bytes;
use zk_integration::ensemble::{Member, assert_converged, assert_has, connect, ensemble, serving};
use zk_integration::{Client, open_acl};
use zk_jute::{CreateRequest, Request};

/// The exit status of a server stopped at a failpoint
/// (`zk_server::failpoint::EXIT_CODE`).
const FAILPOINT_EXIT: i32 = 86;

/// Creates `{prefix}0..n` (pipelined); each must be acknowledged.
fn creates(c: &mut Client, prefix: &str, n: usize) -> Vec<String> {
    let paths: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let xids: Vec<i32> = paths
        .iter()
        .map(|p| {
            c.send(&Request::Create(CreateRequest {
                path: p.clone(),
                data: Some(Bytes::from_static(b"x")),
                acl: open_acl(),
                flags: 0,
            }))
            .expect("send create")
        })
        .collect();
    for (x, p) in xids.into_iter().zip(&paths) {
        let r = c.wait(x).expect("create reply");
        assert_eq!(r.err, 0, "create {p}: {:?}", r.code());
    }
    paths
}

/// Starts `m[i]` with `point` armed and waits until it stops there.
fn crash_at(m: &mut [Member], i: usize, point: &str) {
    m[i].start_env(&[("ZK_FAILPOINTS", point)]);
    let code = m[i].wait_exit();
    assert_eq!(
        code,
        Some(FAILPOINT_EXIT),
        "server {} did not stop at {point}:\n{}",
        m[i].sid,
        m[i].tail(30)
    );
    assert!(
        m[i].output()
            .contains(&format!("failpoint {point}: exiting")),
        "{}",
        m[i].tail(30)
    );
}

/// A follower misses writes and a new epoch (the leader restarts while it
/// is down), restarts, and dies at `point` of its sync with the leader; the
/// ensemble goes on; restarted, it serves everything. (Rejoining the epoch
/// it already had, a follower has no currentEpoch to write.)
fn learner_crashes_in_sync(point: &str) {
    let mut m = ensemble(3);
    for x in m.iter_mut() {
        x.start();
    }
    let leader = serving(&m, &[0, 1, 2]);
    let f = (leader + 1) % 3;
    let mut c = connect(&m[leader]);
    let before = creates(&mut c, "/before", 20);
    m[f].kill9();
    let missed = creates(&mut c, "/missed", 200);
    let _ = c.close();
    m[leader].kill9();
    m[leader].start();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != f).collect();
    let leader = serving(&m, &survivors);
    let mut c = connect(&m[leader]);
    crash_at(&mut m, f, point);
    let during = creates(&mut c, "/during", 50);
    m[f].start();
    serving(&m, &[0, 1, 2]);
    let _ = c.close();
    for x in &m {
        for paths in [&before, &missed, &during] {
            assert_has(x, paths, b"x");
        }
    }
    assert_converged(&m, &[0, 1, 2]);
}

#[test]
fn a_learner_dying_before_writing_current_epoch_recovers() {
    learner_crashes_in_sync("learner-before-current-epoch");
}

#[test]
fn a_learner_dying_before_acking_newleader_recovers() {
    learner_crashes_in_sync("learner-before-newleader-ack");
}

/// A leader whose epoch-ack quorum formed dies before writing its
/// currentEpoch (its acceptedEpoch is written): the others elect a new
/// leader in a later epoch and take writes; the old one comes back and
/// follows, and nothing acknowledged is lost.
#[test]
fn a_leader_dying_before_writing_current_epoch_is_replaced_and_follows() {
    let mut m = ensemble(3);
    // Equal histories: the highest sid (server 3) wins the election.
    m[0].start();
    m[1].start();
    crash_at(&mut m, 2, "leader-before-current-epoch");
    let leader = serving(&m, &[0, 1]);
    let mut c = connect(&m[leader]);
    let written = creates(&mut c, "/w", 100);
    let _ = c.close();
    m[2].start();
    serving(&m, &[0, 1, 2]);
    for x in &m {
        assert_has(x, &written, b"x");
    }
    assert_converged(&m, &[0, 1, 2]);
}
