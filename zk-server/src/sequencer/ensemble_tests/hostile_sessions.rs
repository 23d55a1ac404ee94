//! A learner whose session-layer packets are hostile. zk-zab's hostile-peer
//! test and fuzz target drive the Zab cores, which pass REQUEST, PING and
//! REVALIDATE payloads on undecoded; here they reach the leader's sequencer:
//! seeded scripts of requests of every opcode with odd fields (paths, ACLs,
//! flags, TTLs, multis, session ids, auth ids), cut short, with bytes
//! flipped or appended, among honest clients' writes. Whatever a script
//! sends, no server may panic, end its role, fail its storage or see a txn
//! whose digest is not its tree's, and the three trees converge; afterwards
//! new sessions write through every server.
//!
//! `ZK_HOSTILE_SESSION_SCRIPTS=n` runs n scripts (default 24);
//! `ZK_HOSTILE_SESSION_SEED=s` runs script s alone.

use super::*;
use zk_jute::{
    Acl, CheckVersionRequest, CreateTtlRequest, DeleteRequest, Id, MultiOp, OpCode,
    ReconfigRequest, SetAclRequest, SetDataRequest, SyncRequest,
};

/// splitmix64: a seeded stream of draws.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, of: &[T]) -> T {
        of[self.below(of.len())].clone()
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn i32(&mut self) -> i32 {
        match self.below(6) {
            0 => 0,
            1 => -1,
            2 => i32::MIN,
            3 => i32::MAX,
            4 => self.below(8) as i32,
            _ => self.next() as i32,
        }
    }
}

fn path(d: &mut Draws) -> String {
    const PATHS: &[&str] = &[
        "/",
        "",
        "/h",
        "/h/a",
        "/h/b",
        "/h/a/c",
        "/h/a/c/d",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "/zookeeper/quota/h/zookeeper_limits",
        "h",
        "/h/",
        "//h",
        "/h/./a",
        "/h/../a",
        "/h\u{0}a",
        "/h/é",
        "/h/a0000000001",
    ];
    if d.chance(15) {
        String::from_utf8_lossy(&d.bytes(12)).into_owned()
    } else {
        d.pick(PATHS).to_string()
    }
}

fn data(d: &mut Draws) -> Option<Bytes> {
    match d.below(8) {
        0 => None,
        1 => Some(Bytes::from(vec![7; 1 << 14])),
        _ => Some(Bytes::from(d.bytes(40))),
    }
}

fn id(d: &mut Draws) -> Id {
    const IDS: &[(&str, &str)] = &[
        ("world", "anyone"),
        ("world", "someone"),
        ("auth", ""),
        ("digest", "u:ZG9lc25vdG1hdHRlcg=="),
        ("digest", "no-colon"),
        ("ip", "127.0.0.1"),
        ("ip", "10.0.0.0/8"),
        ("ip", "10.0.0.0/99"),
        ("ip", "not an address"),
        ("x509", "CN=x"),
        ("sasl", "user"),
        ("super", "x"),
        ("", ""),
        ("nosuchscheme", "x"),
    ];
    let (scheme, id) = d.pick(IDS);
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

fn acl(d: &mut Draws) -> Vec<Acl> {
    (0..d.below(4))
        .map(|_| Acl {
            perms: if d.chance(60) { 31 } else { d.i32() },
            id: id(d),
        })
        .collect()
}

fn flags(d: &mut Draws) -> i32 {
    if d.chance(80) {
        d.below(7) as i32
    } else {
        d.i32()
    }
}

fn create_request(d: &mut Draws) -> CreateRequest {
    CreateRequest {
        path: path(d),
        data: data(d),
        acl: acl(d),
        flags: flags(d),
    }
}

fn ttl_request(d: &mut Draws) -> CreateTtlRequest {
    CreateTtlRequest {
        path: path(d),
        data: data(d),
        acl: acl(d),
        flags: flags(d),
        ttl: match d.below(4) {
            0 => 0,
            1 => -1,
            2 => 1000,
            _ => d.next() as i64,
        },
    }
}

fn multi_op(d: &mut Draws) -> MultiOp {
    match d.below(9) {
        0 => MultiOp::Create(create_request(d)),
        1 => MultiOp::Create2(create_request(d)),
        2 => MultiOp::CreateContainer(create_request(d)),
        3 => MultiOp::CreateTtl(ttl_request(d)),
        4 => MultiOp::Delete(DeleteRequest {
            path: path(d),
            version: d.i32(),
        }),
        5 => MultiOp::SetData(SetDataRequest {
            path: path(d),
            data: data(d),
            version: d.i32(),
        }),
        6 => MultiOp::Check(CheckVersionRequest {
            path: path(d),
            version: d.i32(),
        }),
        7 => MultiOp::GetData(zk_jute::GetDataRequest {
            path: path(d),
            watch: false,
        }),
        _ => MultiOp::GetChildren(zk_jute::GetChildrenRequest {
            path: path(d),
            watch: true,
        }),
    }
}

/// A request body of some opcode, well formed (the caller may damage it).
fn request(d: &mut Draws) -> (i32, BytesMut) {
    let mut body = BytesMut::new();
    let req = match d.below(16) {
        0..=2 => Request::Create(create_request(d)),
        3 => Request::Create2(create_request(d)),
        4 => Request::CreateContainer(create_request(d)),
        5 => Request::CreateTtl(ttl_request(d)),
        6 => Request::Delete(DeleteRequest {
            path: path(d),
            version: d.i32(),
        }),
        7 => Request::DeleteContainer(path(d)),
        8 => Request::SetData(SetDataRequest {
            path: path(d),
            data: data(d),
            version: d.i32(),
        }),
        9 => Request::SetAcl(SetAclRequest {
            path: path(d),
            acl: acl(d),
            version: d.i32(),
        }),
        10 => Request::Check(CheckVersionRequest {
            path: path(d),
            version: d.i32(),
        }),
        11 => Request::Multi((0..d.below(5)).map(|_| multi_op(d)).collect()),
        12 => Request::Reconfig(ReconfigRequest {
            joining_servers: String::from_utf8_lossy(&d.bytes(8)).into_owned(),
            leaving_servers: "1".into(),
            new_members: String::new(),
            cur_config_id: -1,
        }),
        13 => Request::CloseSession,
        14 => {
            // createSession: the leader reads its timeout.
            body.extend_from_slice(&d.i32().to_be_bytes());
            return (OpCode::CreateSession.code(), body);
        }
        _ => {
            // Any opcode at all, a read among them, or none ZooKeeper has.
            let op = if d.chance(50) {
                d.pick(&[
                    3, 4, 6, 8, 11, 12, 17, 18, 22, 100, 101, 103, 104, 105, 106, 107,
                ])
            } else {
                d.i32()
            };
            if op == OpCode::Sync.code() {
                Request::Sync(SyncRequest { path: path(d) }).write_body(&mut body);
            } else {
                body.extend_from_slice(&d.bytes(24));
            }
            return (op, body);
        }
    };
    req.write_body(&mut body);
    (req.op_code().code(), body)
}

/// Cuts, flips or extends `b` now and then.
fn damage(d: &mut Draws, b: &mut BytesMut) {
    if d.chance(15) && !b.is_empty() {
        let at = d.below(b.len());
        b.truncate(at);
    }
    if d.chance(10) && !b.is_empty() {
        let at = d.below(b.len());
        b[at] ^= 1 << d.below(8);
    }
    if d.chance(8) {
        let more = d.bytes(16);
        b.extend_from_slice(&more);
    }
}

/// One hostile session-layer packet from a learner.
fn packet(d: &mut Draws, sessions: &[i64]) -> Packet {
    let session = match d.below(10) {
        0 => 0,
        1 => -1,
        2 => d.next() as i64,
        _ => d.pick(sessions),
    };
    match d.below(10) {
        0 => {
            let mut b = BytesMut::new();
            for _ in 0..d.below(4) {
                let s = if d.chance(70) {
                    d.pick(sessions)
                } else {
                    d.next() as i64
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
    let ctx = Ctx {
        conn: CLIENT,
        session_id: session,
        xid,
        auth: Arc::new(Vec::new()),
        received: Instant::now(),
    };
    let req = create(&format!("/h/w{xid}"));
    c.send(sid, CoreMsg::Request { ctx, req });
    c.run_until("the honest write's answer", |c| {
        c.node(sid).replies.iter().any(|m| match m {
            LoopMsg::Out { frame, .. } => reply_header(frame).0 == xid,
            LoopMsg::Close { .. } => true,
            _ => false,
        })
    });
    c.node_mut(sid).replies.clear();
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
    let conn = c.conn_of[&2];
    let mut xid = 10;
    for _ in 0..48 {
        let p = packet(&mut d, &sessions);
        if std::env::var_os("ZK_HOSTILE_SESSION_TRACE").is_some() {
            let zxid = c.zxid(1);
            eprintln!("at 0x{zxid:x}: {p:?}");
        }
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
    c.run_until("the trees converge", Cluster::converged);
    for sid in 1..=VOTERS {
        let n = c.node(sid);
        assert!(
            !n.events
                .iter()
                .any(|e| matches!(e, QuorumOut::RoleEnded { .. })),
            "script {seed}: server {sid}'s role ended: {:?}",
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
        let (z, err) = c.write(sid, session, 1, create(&format!("/after{sid}")));
        assert_eq!(err, 0, "script {seed}: a write through server {sid}");
        c.run_until("the write everywhere", |c| {
            c.converged() && (1..=VOTERS).all(|s| c.zxid(s) >= z)
        });
    }
}

#[test]
fn hostile_session_packets_from_a_learner() {
    if let Ok(seed) = std::env::var("ZK_HOSTILE_SESSION_SEED") {
        return run_script(seed.parse().expect("ZK_HOSTILE_SESSION_SEED: a number"));
    }
    let scripts: u64 = std::env::var("ZK_HOSTILE_SESSION_SCRIPTS")
        .map(|n| n.parse().expect("ZK_HOSTILE_SESSION_SCRIPTS: a number"))
        .unwrap_or(24);
    for seed in 0..scripts {
        run_script(seed);
    }
}
