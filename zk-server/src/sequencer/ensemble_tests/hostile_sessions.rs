//! A learner whose session-layer packets are hostile. zk-zab's hostile-peer
//! test and fuzz target drive the Zab cores, which pass REQUEST, PING and
//! REVALIDATE payloads on undecoded; here they reach the leader's sequencer:
//! seeded scripts of requests of every opcode with odd fields (paths, ACLs,
//! flags, TTLs, multis, session ids, auth ids), cut short, with bytes
//! flipped or appended, among honest clients' writes and clients' odd
//! requests (the same generators, decoded as a connection loop decodes
//! them) at every server. Whatever a script
//! sends, no server may panic, end its role, fail its storage or see a txn
//! whose digest is not its tree's, and the three trees converge; afterwards
//! new sessions write through every server.
//!
//! `ZK_HOSTILE_SESSION_SCRIPTS=n` runs n scripts (default 24);
//! `ZK_HOSTILE_SESSION_SEED=s` runs script s alone.

use super::*;
use zk_jute::ErrorCode;
use zk_jute::hostile::{Draws, damage, id, request};

/// One hostile session-layer packet from a learner.
fn packet(d: &mut Draws, sessions: &[i64]) -> Packet {
    let session = match d.below(10) {
        0 => 0,
        1 => -1,
        2 => d.u64() as i64,
        _ => d.pick(sessions),
    };
    match d.below(10) {
        0 => {
            let mut b = BytesMut::new();
            for _ in 0..d.below(4) {
                let s = if d.chance(70) {
                    d.pick(sessions)
                } else {
                    d.u64() as i64
                };
                b.extend_from_slice(&s.to_be_bytes());
                b.extend_from_slice(&d.i32().to_be_bytes());
            }
            damage(d, &mut b);
            Packet::Ping {
                zxid: Zxid::ZERO,
                data: Some(b.freeze()),
            }
        }
        1 => {
            let mut b = BytesMut::new();
            b.extend_from_slice(&session.to_be_bytes());
            b.extend_from_slice(&d.i32().to_be_bytes());
            damage(d, &mut b);
            Packet::Revalidate { data: b.freeze() }
        }
        _ => {
            let (op, body) = request(d);
            let mut b = BytesMut::new();
            b.extend_from_slice(&session.to_be_bytes());
            b.extend_from_slice(&d.i32().to_be_bytes());
            b.extend_from_slice(&op.to_be_bytes());
            b.extend_from_slice(&body);
            damage(d, &mut b);
            Packet::Request {
                data: b.freeze(),
                authinfo: (0..d.below(3)).map(|_| id(d)).collect(),
            }
        }
    }
}

/// An honest create through server `sid`, answered or its connection
/// closed (a script may have closed the session).
fn try_write(c: &mut Cluster, sid: u64, session: i64, xid: i32) {
    c.request(sid, session, xid, create(&format!("/h/w{xid}")));
    c.run_until("the honest write's answer", |c| {
        c.node(sid).replies.iter().any(|m| match m {
            LoopMsg::Out { frame, .. } => reply_header(frame).0 == xid,
            LoopMsg::Close { .. } => true,
            _ => false,
        })
    });
    c.node_mut(sid).replies.clear();
}

/// A client's request at server `sid` as its connection loop would pass it
/// on: the body decoded (the loop answers the rest itself), any auth ids,
/// the connection's session or, now and then, another; not waited for.
fn client_request(d: &mut Draws, c: &mut Cluster, sessions: &[i64], xid: i32) {
    let sid = 1 + d.below(3) as u64;
    let (op, mut body) = request(d);
    damage(d, &mut body);
    let mut r = zk_jute::Reader::new(body.freeze());
    let Ok(req) = Request::read_body(op, &mut r) else {
        return;
    };
    if matches!(
        req,
        Request::CreateSession(_) | Request::Auth(_) | Request::Check(_)
    ) {
        return; // answered by the loop
    }
    let session = if d.chance(90) {
        sessions[sid as usize - 1]
    } else {
        d.pick(sessions)
    };
    let auth = (0..d.below(3)).map(|_| id(d)).collect();
    if std::env::var_os("ZK_HOSTILE_SESSION_TRACE").is_some() {
        eprintln!("client at server {sid}: {req:?}");
    }
    c.request_as(sid, session, xid, auth, req);
}

/// Learner 2 back after the leader closed its connection (a packet cut short
/// of what the leader reads first): its role ends (the `closes`th time), it
/// follows again and syncs.
fn rejoin_if_closed(c: &mut Cluster, closes: &mut usize) {
    if c.conn_of.contains_key(&2) {
        return;
    }
    *closes += 1;
    let n = *closes;
    c.run_until("learner 2's role ended", |c| c.roles_ended(2) >= n);
    c.follow(2);
    c.run_until("learner 2 synced again", |c| {
        c.node(1).shared.control.leader_gauges().0.synced_followers == 2
            && c.node(2).shared.control.serving()
    });
}

/// Runs script `seed`; panics (naming it) when a server breaks.
fn run_script(seed: u64) {
    let mut d = Draws(seed);
    let mut c = established(500);
    // Honest sessions at each server, and a parent for the scripts' paths.
    let (s1, _) = c.connect(1);
    let (s2, _) = c.connect(2);
    let (s3, _) = c.connect(3);
    assert_eq!(c.write(1, s1, 1, create("/h")).1, 0);
    let sessions = [s1, s2, s3];
    let mut closes = 0;
    let mut xid = 10;
    for _ in 0..48 {
        rejoin_if_closed(&mut c, &mut closes);
        if d.chance(30) {
            xid += 1;
            client_request(&mut d, &mut c, &sessions, xid);
            c.pump();
            continue;
        }
        let p = packet(&mut d, &sessions);
        if std::env::var_os("ZK_HOSTILE_SESSION_TRACE").is_some() {
            let zxid = c.zxid(1);
            eprintln!("at 0x{zxid:x}: {p:?}");
        }
        let conn = c.conn_of[&2];
        c.send(1, CoreMsg::Quorum(QuorumIn::FromLearner(conn, p)));
        for _ in 0..d.below(3) {
            c.pump();
        }
        if d.chance(10) {
            // An honest client's write among them (its session may have
            // been closed by the script: any answer will do).
            let sid = 1 + d.below(3) as u64;
            xid += 1;
            try_write(&mut c, sid, sessions[sid as usize - 1], xid);
        }
    }
    c.pump();
    rejoin_if_closed(&mut c, &mut closes);
    c.run_until("the trees converge", Cluster::converged);
    for sid in 1..=VOTERS {
        let n = c.node(sid);
        // Learner 2's ended only when the leader closed its connection.
        assert_eq!(
            c.roles_ended(sid),
            if sid == 2 { closes } else { 0 },
            "script {seed}: server {sid}'s roles ended: {:?}",
            n.events
        );
        assert!(
            !n.seq.as_ref().unwrap().failed,
            "script {seed}: server {sid} failed"
        );
        let mismatches = n
            .shared
            .stats
            .digest_mismatches
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(mismatches, 0, "script {seed}: server {sid}'s digests");
    }
    for sid in 1..=VOTERS {
        let (session, _) = c.connect(sid);
        let before = c.zxid(1);
        let (z, err) = c.write(sid, session, 1, create(&format!("/after{sid}")));
        // A script may have set the root's ACL (a learner's authinfo can
        // name the super scheme, as in ZooKeeper): NOAUTH is then the
        // answer, an error txn committed like any other.
        assert!(
            err == 0 || err == ErrorCode::NoAuth.code(),
            "script {seed}: a write through server {sid}: {err}"
        );
        assert!(z > before, "script {seed}: the write took no zxid");
        c.run_until("the write everywhere", |c| {
            c.converged() && (1..=VOTERS).all(|s| c.zxid(s) >= z)
        });
    }
}

#[test]
fn hostile_session_packets_from_a_learner() {
    zk_jute::hostile::run_scripts("SESSION", 24, run_script);
}
