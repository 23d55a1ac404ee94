//! Zab's recovery between real processes (issue 14, "Proof"): how a server
//! that missed writes is brought back (DIFF, SNAP, TRUNC: the leader's log
//! line names the sync), and what partitions (iptables), a SIGSTOP and a
//! kill -9 under load do to an ensemble of our servers. Every scenario ends
//! with every server serving the same tree at the same zxid
//! ([`assert_converged`]).
//!
//! The iptables scenarios need root (CI runs scripts/test as root, which
//! installs iptables). Every rule is removed when its [`Firewall`] drops,
//! every process killed when its `Member` drops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_integration::ensemble::{
    EnsembleOptions, Firewall, Member, QUORUM_PORT, assert_converged, assert_has,
    assert_no_digest_mismatch, assert_same_trees, connect, ensemble, ensemble_with, serving, since,
    sync, wait_until,
};
use zk_integration::{Client, ClientError, ConnectOptions, open_acl};
use zk_jute::{CreateRequest, ErrorCode, EventType, Request, SetWatches};

fn start_all(m: &mut [Member]) -> usize {
    for x in m.iter_mut() {
        x.start();
    }
    let all: Vec<usize> = (0..m.len()).collect();
    serving(m, &all)
}

fn others(m: &[Member], but: &[usize]) -> Vec<usize> {
    (0..m.len()).filter(|i| !but.contains(i)).collect()
}

fn create_req(path: &str, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: open_acl(),
        flags: 0,
    })
}

/// Creates `{prefix}0..n` with `data`, 100 requests in flight at a time;
/// every one must succeed. Returns the paths.
fn create_many(c: &mut Client, prefix: &str, n: usize, data: &[u8]) -> Vec<String> {
    let paths: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for chunk in paths.chunks(100) {
        let xids: Vec<i32> = chunk
            .iter()
            .map(|p| c.send(&create_req(p, data)).expect("send create"))
            .collect();
        for (x, p) in xids.into_iter().zip(chunk) {
            let r = c.wait(x).expect("create reply");
            assert_eq!(r.err, 0, "create {p}: {:?}", r.code());
        }
    }
    paths
}

/// Waits until the leader's output after byte `mark` shows FOLLOWERINFO
/// from server `sid` and then a sync line (`syncing learner connection N by
/// DIFF|TRUNC|SNAP`); returns the output from FOLLOWERINFO on. Used where
/// that server is the only one connecting.
fn sync_of(leader: &Member, mark: usize, sid: u64) -> String {
    wait_until(&format!("the leader to sync server {sid}"), || {
        let out = leader.output();
        let new = since(&out, mark);
        let at = new.find(&format!("FOLLOWERINFO from server {sid} "))?;
        let after = &new[at..];
        after
            .contains("syncing learner connection")
            .then(|| after.to_string())
    })
}

fn assert_synced_by(log: &str, kind: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("syncing learner connection"))
        .expect("a sync line");
    assert!(
        line.contains(&format!(" by {kind} 0x")),
        "expected a sync by {kind}: {line}"
    );
    // The operator's line names the server and the size of the sync.
    let size = if kind == "SNAP" { " bytes)" } else { " txns" };
    assert!(line.contains("(server ") && line.contains(size), "{line}");
}

/// After a sync at every member of `alive`, `path` does not exist.
fn assert_absent(m: &[Member], alive: &[usize], path: &str) {
    for &i in alive {
        let mut c = connect(&m[i]);
        sync(&mut c).expect("sync");
        assert!(
            c.exists(path, false).expect("exists").is_none(),
            "{path} exists at server {}",
            m[i].sid
        );
        let _ = c.close();
    }
}

/// A follower killed with kill -9 misses 300 writes, then 700 more (beyond
/// the leader's 500-txn window: read from the leader's log): both times it
/// comes back through DIFF, serves every write, and all three converge.
#[test]
fn a_restarted_follower_catches_up_by_diff() {
    let mut m = ensemble(3);
    let leader = start_all(&mut m);
    let f = others(&m, &[leader])[0];
    let mut c = connect(&m[leader]);
    create_many(&mut c, "/before", 10, b"b");
    for (round, n) in [(0, 300), (1, 700)] {
        m[f].kill9();
        let missed = create_many(&mut c, &format!("/missed{round}-"), n, b"m");
        let mark = m[leader].output().len();
        m[f].start();
        assert_eq!(serving(&m, &[0, 1, 2]), leader, "the leader stays");
        let log = sync_of(&m[leader], mark, m[f].sid);
        assert_synced_by(&log, "DIFF");
        assert_has(&m[f], &missed, b"m");
    }
    let _ = c.close();
    assert_converged(&m, &[0, 1, 2]);
}

/// SNAP. (1) A follower misses 40 large setData (rolling the leader's log
/// segments) and 600 creates; the survivors restart with autopurge on, and
/// the leader's first purge (at start, as Apache's) deletes the log
/// segments holding the follower's last txn, which is also below its
/// 500-txn window: only a snapshot can bring it back. (2) A follower whose
/// data dir was lost (only `myid` kept) gets SNAP too. Both serve every
/// znode afterwards.
#[test]
fn a_follower_behind_the_purged_log_and_a_wiped_one_get_snap() {
    let opts = EnsembleOptions {
        // Segments of ~2 MiB (4 × (jute.maxbuffer + 64 KiB) + 1 MiB), a
        // snapshot every 51-100 txns, three snapshots kept.
        cfg_extra: "jute.maxbuffer=200000\npreAllocSize=1\nzkrs.logZeroFill=no\nsnapCount=100\nzkrs.snapLogPercent=0\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n".into(),
        ..EnsembleOptions::default()
    };
    let mut m = ensemble_with(3, &opts);
    let leader = start_all(&mut m);
    let f = others(&m, &[leader])[0];
    let mut c = connect(&m[leader]);
    c.create("/big", b"", 0).unwrap().expect("create /big");
    create_many(&mut c, "/early", 20, b"e");
    m[f].kill9();
    let big: Vec<u8> = vec![7; 150_000];
    for _ in 0..40 {
        c.set_data("/big", &big, -1).unwrap().expect("setData");
    }
    let late = create_many(&mut c, "/late", 600, b"l");
    let _ = c.close();
    // The two survivors restart; whichever leads purges once it serves.
    let survivors = others(&m, &[f]);
    for &i in &survivors {
        m[i].kill9();
        m[i].start();
    }
    let leader = serving(&m, &survivors);
    let removed: usize = wait_until("the leader's first purge", || {
        let out = m[leader].output();
        let l = out.lines().find(|l| l.contains("Purge task completed"))?;
        let segs = l.split(" and ").nth(1)?.split_whitespace().next()?;
        segs.parse().ok()
    });
    assert!(removed > 0, "the purge removed no log segment");
    let mark = m[leader].output().len();
    m[f].start();
    assert_eq!(serving(&m, &[0, 1, 2]), leader);
    assert_synced_by(&sync_of(&m[leader], mark, m[f].sid), "SNAP");
    assert!(m[f].output().contains("loaded the leader's SNAP"));
    assert_has(&m[f], &late, b"l");
    assert_has(&m[f], &["/big".to_string()], &big);
    assert_converged(&m, &[0, 1, 2]);

    // A follower with an empty data dir.
    let w = others(&m, &[leader, f])[0];
    m[w].kill9();
    m[w].wipe_data();
    let mark = m[leader].output().len();
    m[w].start();
    assert_eq!(serving(&m, &[0, 1, 2]), leader);
    assert_synced_by(&sync_of(&m[leader], mark, m[w].sid), "SNAP");
    assert!(m[w].output().contains("loaded the leader's SNAP"));
    assert_has(&m[w], &late, b"l");
    assert_converged(&m, &[0, 1, 2]);

    // Its snapshot is the SNAP body as it came (not its tree serialized
    // again); killed, it recovers from it.
    assert!(
        m[w].output().contains("the leader's SNAP as received"),
        "{}",
        m[w].tail(30)
    );
    m[w].kill9();
    m[w].start();
    assert_eq!(serving(&m, &[0, 1, 2]), leader);
    assert_has(&m[w], &late, b"l");
    assert_converged(&m, &[0, 1, 2]);
}

/// Whether any file under `dir` contains `needle`.
fn on_disk(dir: &std::path::Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            on_disk(&p, needle)
        } else {
            std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        }
    })
}

const TRUNC_CFG: &str =
    "maxSessionTimeout=60000\njute.maxbuffer=100000\npreAllocSize=1\nzkrs.logZeroFill=no\n";

/// The znodes of the writes the old leader logs but cannot replicate.
const UNCOMMITTED: [&str; 3] = ["/uncommitted-0", "/uncommitted-1", "/uncommitted-2"];

/// The leader logs three writes it cannot replicate (iptables drops
/// everything it sends from its quorum port), then dies by kill -9; the two
/// followers elect a new leader. Returns (old leader, new leader). No
/// session is opened at the new leader (a session is a txn of the new epoch).
fn leader_with_uncommitted_txns(m: &mut [Member]) -> (usize, usize) {
    let leader = start_all(m);
    let opts = ConnectOptions {
        timeout_ms: 60_000,
        ..ConnectOptions::default()
    };
    let mut c = Client::connect_with(m[leader].addr(), &opts).expect("connect");
    c.create("/committed", b"c", 0).unwrap().expect("create");
    let mut fw = Firewall::new(&[]);
    fw.drop_from_port(&m[leader], QUORUM_PORT);
    let xids: Vec<i32> = UNCOMMITTED
        .iter()
        .map(|p| c.send(&create_req(p, b"u")).expect("send a write"))
        .collect();
    let dir = m[leader].dir().join("data");
    wait_until("the leader to log the writes", || {
        UNCOMMITTED
            .iter()
            .all(|p| on_disk(&dir, p.as_bytes()))
            .then_some(())
    });
    m[leader].kill9();
    // The rule stays until the followers have a new leader: the dead
    // leader's kernel still retransmits the queued PROPOSAL on its orphaned
    // connections (seen: without this, the followers logged the txn).
    let followers = others(m, &[leader]);
    let new = serving(m, &followers);
    drop(fw);
    for x in xids {
        assert!(c.wait(x).is_err(), "an unreplicated write was acknowledged");
    }
    (leader, new)
}

/// Three servers configured for the TRUNC scenarios.
fn trunc_ensemble() -> Vec<Member> {
    ensemble_with(
        3,
        &EnsembleOptions {
            cfg_extra: TRUNC_CFG.into(),
            ..EnsembleOptions::default()
        },
    )
}

/// The end of the TRUNC scenarios: writes through the new leader land
/// everywhere, the committed write is kept, the uncommitted ones exist
/// nowhere, and all converge.
fn writes_go_on_without_the_uncommitted(m: &[Member], new: usize) {
    let mut c = connect(&m[new]);
    let after = create_many(&mut c, "/after", 50, b"a");
    let _ = c.close();
    for x in m {
        assert_has(x, &after, b"a");
        assert_has(x, &["/committed".to_string()], b"c");
    }
    for p in UNCOMMITTED {
        assert_absent(m, &[0, 1, 2], p);
    }
    assert_converged(m, &[0, 1, 2]);
}

/// TRUNC: the old leader comes back with three logged txns nobody else has
/// (the new leader has taken no write yet): it is told TRUNC, drops them
/// (their znodes exist nowhere), follows, and converges with the others.
#[test]
fn an_uncommitted_txn_is_truncated_when_its_leader_returns() {
    let mut m = trunc_ensemble();
    let (old, new) = leader_with_uncommitted_txns(&mut m);
    let mark = m[new].output().len();
    m[old].start();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    assert_synced_by(&sync_of(&m[new], mark, m[old].sid), "TRUNC");
    assert!(
        m[old]
            .output()
            .contains("TRUNC: truncating the log after 0x"),
        "{}",
        m[old].tail(30)
    );
    writes_go_on_without_the_uncommitted(&m, new);
}

/// The same, but the new leader takes writes before the old one returns:
/// its history then has no txn of the old leader's epoch after the
/// uncommitted ones, so (as Apache's LearnerHandler: "Cannot send TRUNC to
/// peer ... from different epoch") the old leader is brought back by SNAP;
/// its uncommitted txns are gone all the same.
#[test]
fn an_uncommitted_txn_is_dropped_by_snap_after_new_epoch_writes() {
    let mut m = trunc_ensemble();
    let (old, new) = leader_with_uncommitted_txns(&mut m);
    let mut c = connect(&m[new]);
    let after = create_many(&mut c, "/after", 50, b"a");
    let _ = c.close();
    let mark = m[new].output().len();
    m[old].start();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    assert_synced_by(&sync_of(&m[new], mark, m[old].sid), "SNAP");
    for x in &m {
        assert_has(x, &after, b"a");
    }
    for p in UNCOMMITTED {
        assert_absent(&m, &[0, 1, 2], p);
    }
    assert_converged(&m, &[0, 1, 2]);
}

/// The same SNAP cut by a crash after its snapshot is published and before
/// the old log is dropped (the `learner-inside-snap-persist` failpoint):
/// the old leader's log still holds its uncommitted txns, ending below the
/// new snapshot. Restarted, it drops that log (across the gap its records
/// are no DIFF material), rejoins, and the uncommitted txns are nowhere.
#[test]
fn a_crash_between_a_snaps_snapshot_and_the_old_logs_drop_recovers() {
    let mut m = trunc_ensemble();
    let (old, new) = leader_with_uncommitted_txns(&mut m);
    let mut c = connect(&m[new]);
    let new_epoch = create_many(&mut c, "/new-epoch", 50, b"n");
    let _ = c.close();
    m[old].start_env(&[("ZK_FAILPOINTS", "learner-inside-snap-persist")]);
    let code = m[old].wait_exit();
    assert_eq!(
        code,
        Some(86),
        "not stopped inside SNAP:\n{}",
        m[old].tail(30)
    );
    assert!(m[old].output().contains("loaded the leader's SNAP"));
    let dir = m[old].dir().to_path_buf();
    assert!(UNCOMMITTED.iter().all(|p| on_disk(&dir, p.as_bytes())));
    m[old].start();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    assert!(
        m[old]
            .output()
            .contains("its records are not this snapshot's history; dropping them"),
        "{}",
        m[old].tail(30)
    );
    for x in &m {
        assert_has(x, &new_epoch, b"n");
    }
    writes_go_on_without_the_uncommitted(&m, new);
}

/// ZK-5094 / ZK-4882 (ensemble-testing.md §4 #11): a TRUNC interrupted by
/// a crash must not leave the server ahead of its log. The old leader dies
/// inside TRUNC (the log truncated, the tree not yet rebuilt: the
/// `learner-inside-trunc` failpoint); restarted, it syncs again and drops
/// the uncommitted txns all the same.
#[test]
fn a_crash_inside_trunc_restarts_and_converges() {
    let mut m = trunc_ensemble();
    let (old, new) = leader_with_uncommitted_txns(&mut m);
    m[old].start_env(&[("ZK_FAILPOINTS", "learner-inside-trunc")]);
    let code = m[old].wait_exit();
    assert_eq!(
        code,
        Some(86),
        "not stopped inside TRUNC:\n{}",
        m[old].tail(30)
    );
    assert!(
        m[old]
            .output()
            .contains("TRUNC: truncating the log after 0x")
    );
    m[old].start();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    writes_go_on_without_the_uncommitted(&m, new);
}

const CUT_OFF_IO: ConnectOptions = ConnectOptions {
    timeout_ms: 30_000,
    session: None,
    last_zxid_seen: 0,
    io_timeout: Duration::from_secs(10),
    read_only: false,
};

/// A session at `m`, opened before a cut.
fn session(m: &Member) -> Client {
    Client::connect_with(m.addr(), &CUT_OFF_IO).expect("connect")
}

/// A write through `c` (at server `sid`) after a cut: it must not be
/// acknowledged (an error code, or the connection closed).
fn not_acked(c: &mut Client, sid: u64, path: &str) {
    match c.create(path, b"x", 0) {
        Ok(Ok(p)) => panic!("server {sid} acknowledged {p} while cut off"),
        Ok(Err(_)) | Err(ClientError::Closed | ClientError::Io(_)) => {}
        Err(e) => panic!("write at server {sid}: {e}"),
    }
}

/// A write sent to `m` once it is cut off and no longer serving: no
/// session, or no acknowledgement.
fn write_fails(m: &Member, path: &str) {
    if let Ok(mut c) = Client::connect_with(m.addr(), &CUT_OFF_IO) {
        not_acked(&mut c, m.sid, path);
    }
}

/// Waits until `m` stops serving; returns how long it took.
fn steps_down(m: &Member, from: Instant) -> Duration {
    wait_until(&format!("server {} to stop serving", m.sid), || {
        m.mode().is_none().then_some(())
    });
    from.elapsed()
}

/// `m`'s output after byte `mark` says it left its role because of `why`.
fn left_role_because(m: &Member, mark: usize, why: &str) {
    let out = m.output();
    let line = since(&out, mark)
        .lines()
        .find(|l| l.contains("leaving the role, going LOOKING: "))
        .unwrap_or_else(|| panic!("server {} never left its role:\n{}", m.sid, m.tail(30)));
    assert!(line.contains(why), "server {}: {line}", m.sid);
}

/// A leader cut off from both followers (election and quorum connections,
/// both directions) stops serving within syncLimit (1 s) and accepts no
/// write; the followers elect a new leader and take writes; healed, the old
/// leader follows and catches up. Then a single follower cut off stops
/// serving and accepts no write while the other two go on.
#[test]
fn a_minority_cut_off_accepts_no_write() {
    let mut m = ensemble_with(
        3,
        &EnsembleOptions {
            own_uids: true,
            ..EnsembleOptions::default()
        },
    );
    let mut fw = Firewall::new(&m);
    let leader = start_all(&mut m);
    let fs = others(&m, &[leader]);
    let mark = m[leader].output().len();
    let mut at_leader = session(&m[leader]);
    let cut = Instant::now();
    for &f in &fs {
        fw.cut(&m[leader], &m[f]);
    }
    // A write sent at once hangs without a quorum and is never acknowledged.
    not_acked(&mut at_leader, m[leader].sid, "/lost-at-leader");
    let took = steps_down(&m[leader], cut);
    eprintln!(
        "the cut-off leader stopped serving after {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    left_role_because(
        &m[leader],
        mark,
        &format!(
            "not sufficient followers synced, only synced with sids: {{{}}}",
            m[leader].sid
        ),
    );
    write_fails(&m[leader], "/lost-at-old-leader");
    let new = serving(&m, &fs);
    let mut c = connect(&m[new]);
    let during = create_many(&mut c, "/during", 50, b"d");
    let _ = c.close();
    fw.heal();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    assert_has(&m[leader], &during, b"d");
    assert_converged(&m, &[0, 1, 2]);

    // One follower cut off.
    let lone = others(&m, &[new])[0];
    let rest = others(&m, &[lone]);
    let mark = m[lone].output().len();
    let mut at_lone = session(&m[lone]);
    for &i in &rest {
        fw.cut(&m[lone], &m[i]);
    }
    not_acked(&mut at_lone, m[lone].sid, "/lost-at-lone");
    steps_down(&m[lone], Instant::now());
    left_role_because(&m[lone], mark, "the leader was silent for 5 ticks");
    write_fails(&m[lone], "/lost-at-follower");
    assert_eq!(serving(&m, &rest), new);
    let mut c = connect(&m[new]);
    let more = create_many(&mut c, "/more", 50, b"m");
    let _ = c.close();
    fw.heal();
    serving(&m, &[0, 1, 2]);
    assert_has(&m[lone], &more, b"m");
    for p in [
        "/lost-at-leader",
        "/lost-at-old-leader",
        "/lost-at-lone",
        "/lost-at-follower",
    ] {
        assert_absent(&m, &[0, 1, 2], p);
    }
    assert_converged(&m, &[0, 1, 2]);
}

/// Five servers split 2 | 3 (the leader among the two): the two accept no
/// write, the three elect a leader and take writes; healed, all five
/// converge and the writes sent to the two exist nowhere.
#[test]
fn five_servers_split_two_three() {
    let mut m = ensemble_with(
        5,
        &EnsembleOptions {
            own_uids: true,
            ..EnsembleOptions::default()
        },
    );
    let mut fw = Firewall::new(&m);
    let leader = start_all(&mut m);
    let two = [leader, others(&m, &[leader])[0]];
    let three = others(&m, &two);
    let mark = m[leader].output().len();
    let mut sessions: Vec<Client> = two.iter().map(|&a| session(&m[a])).collect();
    for &a in &two {
        for &b in &three {
            fw.cut(&m[a], &m[b]);
        }
    }
    for (c, &a) in sessions.iter_mut().zip(&two) {
        not_acked(c, m[a].sid, &format!("/lost-early-{a}"));
    }
    steps_down(&m[leader], Instant::now());
    left_role_because(&m[leader], mark, "not sufficient followers synced");
    for &a in &two {
        steps_down(&m[a], Instant::now());
        write_fails(&m[a], &format!("/lost-{a}"));
    }
    let new = serving(&m, &three);
    let mut c = connect(&m[new]);
    let during = create_many(&mut c, "/during", 50, b"d");
    let _ = c.close();
    for &a in &two {
        assert!(m[a].mode().is_none(), "server {} serves", m[a].sid);
    }
    fw.heal();
    assert_eq!(serving(&m, &[0, 1, 2, 3, 4]), new);
    for x in &m {
        assert_has(x, &during, b"d");
    }
    for &a in &two {
        assert_absent(&m, &[0, 1, 2, 3, 4], &format!("/lost-{a}"));
        assert_absent(&m, &[0, 1, 2, 3, 4], &format!("/lost-early-{a}"));
    }
    assert_converged(&m, &[0, 1, 2, 3, 4]);
}

/// SIGSTOP of the leader for longer than syncLimit × tickTime: the
/// followers elect a new leader and take writes; after SIGCONT the old
/// leader notices, goes LOOKING and follows the new one, catching up; no
/// acknowledged write is lost.
#[test]
fn a_stopped_leader_is_replaced_and_follows_after_sigcont() {
    let mut m = ensemble(3);
    let leader = start_all(&mut m);
    let fs = others(&m, &[leader]);
    let mut c = connect(&m[fs[0]]);
    let before = create_many(&mut c, "/before", 50, b"b");
    let _ = c.close();
    let stopped = Instant::now();
    m[leader].signal("STOP");
    let new = serving(&m, &fs);
    let mut acked = before.clone();
    for &f in &fs {
        let mut c = connect(&m[f]);
        acked.extend(create_many(
            &mut c,
            &format!("/while-stopped-{f}-"),
            50,
            b"b",
        ));
        let _ = c.close();
    }
    assert!(stopped.elapsed() > Duration::from_secs(1));
    let mark = m[leader].output().len();
    m[leader].signal("CONT");
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    left_role_because(&m[leader], mark, "not sufficient followers synced");
    for x in &m {
        assert_has(x, &acked, b"b");
    }
    assert_converged(&m, &[0, 1, 2]);
}

/// What one load thread saw: its session id at the start and the end, and
/// every path it created (acknowledged, or found existing on the retry of a
/// write whose reply was lost).
struct Load {
    first_session: i64,
    last_session: i64,
    eph: String,
    acked: Vec<String>,
    resumed: usize,
}

/// Writes `/load-{t}-{i}` until `stop`, through `home` first and any of
/// `addrs` after a failure, resuming its session (4 s timeout).
fn load(
    t: usize,
    addrs: Vec<std::net::SocketAddr>,
    home: usize,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> Load {
    let opts = ConnectOptions {
        timeout_ms: 4000,
        ..ConnectOptions::default()
    };
    let mut c = Client::connect_with(addrs[home], &opts).expect("connect");
    let eph = format!("/eph-{t}");
    c.create(&eph, b"e", 1).unwrap().expect("create ephemeral");
    let first_session = c.session_id();
    let mut acked = Vec::new();
    let mut resumed = 0;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let p = format!("/load-{t}-{i}");
        match c.create(&p, b"w", 0) {
            Ok(Ok(_)) | Ok(Err(ErrorCode::NodeExists)) => {
                acked.push(p);
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok(Err(e)) => panic!("thread {t}: create {p}: {e:?}"),
            Err(_) => {
                let mut resume = c.resume_options();
                resume.io_timeout = Duration::from_secs(5);
                c = wait_until(&format!("thread {t} to resume its session"), || {
                    (0..addrs.len()).find_map(|k| {
                        let a = addrs[(home + k) % addrs.len()];
                        let mut n = Client::connect_with(a, &resume).ok()?;
                        n.ping().ok()?;
                        Some(n)
                    })
                });
                resumed += 1;
            }
        }
    }
    let last_session = c.session_id();
    c.disconnect();
    Load {
        first_session,
        last_session,
        eph,
        acked,
        resumed,
    }
}

/// Six load threads, two homed at each server.
struct LoadRun {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<Load>>,
}

impl LoadRun {
    fn start(m: &[Member]) -> LoadRun {
        let addrs: Vec<std::net::SocketAddr> = m.iter().map(Member::addr).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let threads = (0..6)
            .map(|t| {
                let (addrs, stop, count) = (addrs.clone(), stop.clone(), count.clone());
                let home = t % addrs.len();
                std::thread::spawn(move || load(t, addrs, home, stop, count))
            })
            .collect();
        LoadRun {
            stop,
            count,
            threads,
        }
    }

    /// Waits for `n` more acknowledged writes.
    fn progress(&self, n: usize, what: &str) {
        let from = self.count.load(Ordering::Relaxed);
        wait_until(what, || {
            (self.count.load(Ordering::Relaxed) >= from + n).then_some(())
        });
    }

    fn finish(self) -> Vec<Load> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    }
}

/// Every load session kept its id, and its ephemeral and every write it saw
/// acknowledged are on every member; then the members converge.
fn check_loads(m: &[Member], loads: &[Load]) {
    for l in loads {
        assert_eq!(l.first_session, l.last_session, "the session changed");
        for x in m {
            assert_has(x, &l.acked, b"w");
            assert_has(x, std::slice::from_ref(&l.eph), b"e");
        }
    }
    let all: Vec<usize> = (0..m.len()).collect();
    assert_converged(m, &all);
}

/// kill -9 of the leader under a write load from six sessions spread over
/// the three servers: every write acknowledged before, during and after the
/// kill is on every server at the end, and every session (4 s timeout)
/// survives the failover with its ephemeral.
#[test]
fn a_leader_killed_under_load_loses_no_acknowledged_write() {
    let mut m = ensemble(3);
    let leader = start_all(&mut m);
    let run = LoadRun::start(&m);
    run.progress(200, "writes before the kill");
    m[leader].kill9();
    serving(&m, &others(&m, &[leader]));
    run.progress(300, "writes after the failover");
    let loads = run.finish();
    // The two sessions homed at the leader had to move.
    let resumed: usize = loads.iter().map(|l| l.resumed).sum();
    assert!(resumed >= 2, "{resumed} sessions resumed elsewhere");
    m[leader].start();
    serving(&m, &[0, 1, 2]);
    check_loads(&m, &loads);
}

/// Three rounds under the same load: kill -9 the leader, the others fail
/// over and take writes, the killed one restarts and rejoins (any proposal
/// it logged but never replicated is truncated or replaced by a snapshot)
/// while the writes go on. No acknowledged write is lost, no session, and
/// the three converge.
#[test]
fn leaders_killed_in_turn_under_load_lose_no_acknowledged_write() {
    let mut m = ensemble(3);
    let mut leader = start_all(&mut m);
    let run = LoadRun::start(&m);
    run.progress(100, "writes before the first kill");
    for _ in 0..3 {
        m[leader].kill9();
        let new = serving(&m, &others(&m, &[leader]));
        run.progress(100, "writes after the failover");
        m[leader].start();
        assert_eq!(serving(&m, &[0, 1, 2]), new);
        run.progress(100, "writes with the old leader back");
        leader = new;
    }
    let loads = run.finish();
    check_loads(&m, &loads);
}

/// The leader is cut off from both followers under the load: its sessions
/// move to the majority within their 4 s timeout, the majority goes on
/// taking writes; healed, the old leader drops what it logged alone and
/// catches up. No acknowledged write or session is lost.
#[test]
fn a_leader_cut_off_under_load_loses_no_acknowledged_write() {
    let mut m = ensemble_with(
        3,
        &EnsembleOptions {
            own_uids: true,
            ..EnsembleOptions::default()
        },
    );
    let mut fw = Firewall::new(&m);
    let leader = start_all(&mut m);
    let run = LoadRun::start(&m);
    run.progress(100, "writes before the cut");
    let fs = others(&m, &[leader]);
    for &f in &fs {
        fw.cut(&m[leader], &m[f]);
    }
    let new = serving(&m, &fs);
    run.progress(200, "writes in the majority");
    fw.heal();
    assert_eq!(serving(&m, &[0, 1, 2]), new);
    run.progress(100, "writes after healing");
    let loads = run.finish();
    let resumed: usize = loads.iter().map(|l| l.resumed).sum();
    assert!(resumed >= 2, "{resumed} sessions resumed elsewhere");
    check_loads(&m, &loads);
}

/// A session learnt through SNAP is a session: a follower whose data dir
/// was lost gets the leader's sessions in its SNAP, becomes leader after
/// the old one dies, and expires a session whose client went away (its
/// ephemeral goes on every server) while one that keeps pinging stays
/// (disconnected when its server goes LOOKING, as by Apache's, it resumes
/// its session once a server serves again).
#[test]
fn sessions_learnt_by_snap_expire_under_the_next_leader() {
    let mut m = ensemble(3);
    let leader = start_all(&mut m);
    assert_eq!(leader, 2, "fresh data dirs: the highest sid leads");
    let opts = ConnectOptions {
        timeout_ms: 4000,
        ..ConnectOptions::default()
    };
    let mut gone = Client::connect_with(m[0].addr(), &opts).expect("connect");
    gone.create("/gone", b"g", 1)
        .unwrap()
        .expect("create an ephemeral");
    let mut kept = Client::connect_with(m[0].addr(), &opts).expect("connect");
    kept.create("/kept", b"k", 1)
        .unwrap()
        .expect("create an ephemeral");
    // Server 2 loses its disk and comes back by SNAP.
    m[1].kill9();
    m[1].wipe_data();
    let mark = m[leader].output().len();
    m[1].start();
    serving(&m, &[0, 1, 2]);
    assert_synced_by(&sync_of(&m[leader], mark, m[1].sid), "SNAP");
    kept.ping().expect("ping");
    gone.disconnect();
    // The leader dies: servers 1 and 2 have one zxid, server 2 leads.
    m[leader].kill9();
    assert_eq!(serving(&m, &[0, 1]), 1);
    let expired = Instant::now();
    let mut watch: Vec<Client> = [0, 1].iter().map(|&i| connect(&m[i])).collect();
    wait_until("the new leader to expire the abandoned session", || {
        if kept.ping().is_err() {
            let again = kept.resume_options();
            kept = [0, 1]
                .iter()
                .find_map(|&i| Client::connect_with(m[i].addr(), &again).ok())
                .expect("the kept session resumes");
        }
        let mut gone = true;
        for c in watch.iter_mut() {
            sync(c).expect("sync");
            gone &= c.exists("/gone", false).expect("exists").is_none();
        }
        gone.then_some(())
    });
    for c in watch {
        let _ = c.close();
    }
    let took = expired.elapsed();
    eprintln!("expired {} ms after the failover", took.as_millis());
    assert!(took < Duration::from_secs(8), "{took:?} for a 4 s session");
    for i in [0, 1] {
        assert_has(&m[i], &["/kept".to_string()], b"k");
    }
    let _ = kept.close();
    assert_converged(&m, &[0, 1]);
}

/// Waits until `leader` logs (after `mark`) that it sends server `sid` a
/// SNAP.
fn snap_started(leader: &Member, mark: usize, sid: u64) {
    wait_until(&format!("a SNAP to server {sid}"), || {
        let out = leader.output();
        let new = since(&out, mark);
        let at = new.find(&format!("FOLLOWERINFO from server {sid} "))?;
        new[at..].contains(" by SNAP 0x").then_some(())
    });
}

/// A SNAP of a 6 MB tree, slowed to 1 MB/s by iptables, cut short by
/// kill -9: first of the learner receiving it (it comes back and gets a
/// whole SNAP), then of the leader sending it (the learner must not serve a
/// partial tree: the two left elect a leader and agree, then the old leader
/// rejoins).
#[test]
fn a_snap_cut_short_by_kill_leaves_no_partial_tree() {
    let mut m = ensemble_with(
        3,
        &EnsembleOptions {
            own_uids: true,
            ..EnsembleOptions::default()
        },
    );
    let mut fw = Firewall::new(&m);
    let leader = start_all(&mut m);
    let w = others(&m, &[leader])[0];
    let mut c = connect(&m[leader]);
    let big = vec![5u8; 300_000];
    let paths = create_many(&mut c, "/big", 20, &big);
    let _ = c.close();
    for kill_leader in [false, true] {
        m[w].kill9();
        m[w].wipe_data();
        fw.throttle(&m[leader], &m[w], QUORUM_PORT);
        let mark = m[leader].output().len();
        m[w].start();
        snap_started(&m[leader], mark, m[w].sid);
        // Mid-transfer: 6 MB take 6 s at 1 MB/s.
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !m[w].output().contains("loaded the leader's SNAP"),
            "the SNAP was not slowed"
        );
        if !kill_leader {
            m[w].kill9();
            fw.heal();
            let mark = m[leader].output().len();
            m[w].start();
            assert_eq!(serving(&m, &[0, 1, 2]), leader);
            assert_synced_by(&sync_of(&m[leader], mark, m[w].sid), "SNAP");
            assert_has(&m[w], &paths, &big);
            assert_converged(&m, &[0, 1, 2]);
            continue;
        }
        m[leader].kill9();
        fw.heal();
        let two = others(&m, &[leader]);
        serving(&m, &two);
        for &i in &two {
            assert_has(&m[i], &paths, &big);
        }
        assert_converged(&m, &two);
        m[leader].start();
        serving(&m, &[0, 1, 2]);
        assert_converged(&m, &[0, 1, 2]);
    }
}

/// Watches across a failover: a client whose follower connection dies while
/// the leader is killed resumes its session at the other server and sets
/// its watches again from its last zxid (what Apache's clients do); the
/// changes made in between under the new leader fire them at once
/// (NodeDataChanged, NodeCreated, NodeChildrenChanged).
#[test]
fn watches_set_again_after_a_failover_fire_for_what_changed() {
    let mut m = ensemble(3);
    let leader = start_all(&mut m);
    let fs = others(&m, &[leader]);
    let opts = ConnectOptions {
        timeout_ms: 4000,
        ..ConnectOptions::default()
    };
    let mut a = Client::connect_with(m[fs[0]].addr(), &opts).expect("connect");
    a.create("/w", b"1", 0).unwrap().expect("create /w");
    a.get_data("/w", true).unwrap().expect("getData");
    a.children("/", true).unwrap().expect("getChildren");
    assert!(a.exists("/new", true).expect("exists").is_none());
    let resume = a.resume_options();
    a.disconnect();
    m[leader].kill9();
    serving(&m, &fs);
    let mut b = connect(&m[fs[1]]);
    b.set_data("/w", b"2", -1).unwrap().expect("setData");
    b.create("/new", b"n", 0).unwrap().expect("create /new");
    let _ = b.close();
    let mut a = Client::connect_with(m[fs[1]].addr(), &resume).expect("resume");
    assert_eq!(
        a.session_id(),
        resume.session.as_ref().expect("a session").0
    );
    let r = a
        .call(&Request::SetWatches(SetWatches {
            relative_zxid: resume.last_zxid_seen,
            data_watches: vec!["/w".into()],
            exist_watches: vec!["/new".into()],
            child_watches: vec!["/".into()],
        }))
        .expect("setWatches");
    assert_eq!(r.err, 0, "setWatches: {:?}", r.code());
    let mut got = Vec::new();
    while got.len() < 3 {
        match a.next_event(Duration::from_secs(5)).expect("events") {
            Some(e) => got.push((e.event_type, e.path)),
            None => break,
        }
    }
    got.sort();
    let mut want = vec![
        (EventType::NodeCreated as i32, "/new".to_string()),
        (EventType::NodeDataChanged as i32, "/w".to_string()),
        (EventType::NodeChildrenChanged as i32, "/".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    let _ = a.close();
    assert_converged(&m, &fs);
}

/// An Apache follower synced by SNAP from our leader while writes go on
/// (issue 15): it serves the same tree, and after a restart (when Apache
/// loads the snapshot it took at NEWLEADER and checks its recorded digest,
/// then replays its log checking each txn's digest) it reports no digest
/// mismatch.
#[test]
fn an_apache_follower_synced_by_snap_restarts_without_a_digest_mismatch() {
    use zk_integration::Flavor::{Apache as A, Ours as O};
    let mut m = ensemble_with(
        3,
        &EnsembleOptions {
            flavors: vec![A, O, O],
            sync_limit: 20,
            ..EnsembleOptions::default()
        },
    );
    let leader = start_all(&mut m);
    assert_ne!(m[leader].flavor, A, "an Apache server leads");
    let mut c = connect(&m[leader]);
    create_many(&mut c, "/a", 50, b"a");
    m[0].kill9();
    m[0].wipe_data();
    create_many(&mut c, "/b", 700, b"b");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = connect(&m[leader]);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                c.create(&format!("/w{n}"), b"w", 0)
                    .unwrap()
                    .expect("create");
                c.set_data("/a0", format!("{n}").as_bytes(), -1)
                    .unwrap()
                    .expect("set");
                n += 1;
            }
            n
        })
    };
    let mark = m[leader].output().len();
    m[0].start();
    assert_synced_by(&sync_of(&m[leader], mark, m[0].sid), "SNAP");
    serving(&m, &[0, 1, 2]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let n = writer.join().expect("writer");
    assert!(n > 0);
    // Trees and the per-txn digest checks, not the digest logs: Apache
    // logs digests while it applies the txns queued behind the SNAP, some
    // of which the snapshot already holds (seen once: its log then
    // differs from ours at such a zxid, the trees agreeing).
    let addrs: Vec<std::net::SocketAddr> = m.iter().map(Member::addr).collect();
    assert_same_trees(&addrs);
    assert_no_digest_mismatch(&m);
    m[0].kill9();
    m[0].start();
    serving(&m, &[0, 1, 2]);
    assert_same_trees(&addrs);
    assert_no_digest_mismatch(&m);
}

/// Mixed ensembles (issue 15), with our leader and with Apache's: a session
/// opened at each server (ours and Apache's) holds an ephemeral; the clients
/// vanish without closing, and at expiry (which only the leader decides)
/// every ephemeral is gone from every server, the session ids created on
/// one kind of server known to the other kind's leader.
#[test]
fn mixed_ensembles_remove_the_ephemerals_of_expired_sessions_everywhere() {
    use zk_integration::Flavor::{Apache as A, Ours as O};
    for flavors in [vec![A, A, O], vec![O, A, A]] {
        let mut m = ensemble_with(
            3,
            &EnsembleOptions {
                flavors,
                sync_limit: 20,
                ..EnsembleOptions::default()
            },
        );
        let leader = start_all(&mut m);
        let opts = ConnectOptions {
            timeout_ms: 1000,
            ..ConnectOptions::default()
        };
        let mut held = Vec::new();
        for x in &m {
            let mut c = Client::connect_with(x.addr(), &opts).expect("connect");
            let path = format!("/held-by-{}-{}", x.flavor, x.sid);
            c.create(&path, b"", 1)
                .unwrap()
                .expect("create an ephemeral");
            held.push((c, path));
        }
        for x in &m {
            let mut c = connect(x);
            sync(&mut c).expect("sync");
            for (_, p) in &held {
                assert!(
                    c.exists(p, false).expect("exists").is_some(),
                    "{p} at server {}",
                    x.sid
                );
            }
        }
        let paths: Vec<String> = held.iter().map(|(_, p)| p.clone()).collect();
        for (c, _) in held {
            c.disconnect();
        }
        for x in &m {
            wait_until(
                &format!(
                    "the ephemerals to go at {} server {} ({} leads)",
                    x.flavor, x.sid, m[leader].flavor
                ),
                || {
                    let mut c = Client::connect(x.addr()).ok()?;
                    sync(&mut c).ok()?;
                    let left = paths
                        .iter()
                        .filter(|p| !matches!(c.exists(p, false), Ok(None)))
                        .count();
                    (left == 0).then_some(())
                },
            );
        }
        assert_converged(&m, &[0, 1, 2]);
    }
}
