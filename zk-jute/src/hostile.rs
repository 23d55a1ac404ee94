//! Seeded generators of hostile ZooKeeper values, for tests that feed a
//! server what a broken or malicious peer could send: requests of every
//! opcode with odd paths, ACLs, flags and TTLs, txns of every type with odd
//! fields, and byte damage. Built with the `hostile` feature (test builds of
//! the crates above); nothing here is used by a server.
//!
//! Each generator takes a [`Draws`] stream, so a seed replays a scenario.

use bytes::{Bytes, BytesMut};

use crate::{
    Acl, AddWatchRequest, CheckVersionRequest, CheckVersionTxn, CheckWatchesRequest,
    CloseSessionTxn, CreateContainerTxn, CreateRequest, CreateSessionTxn, CreateTtlRequest,
    CreateTtlTxn, CreateTxn, DeleteRequest, DeleteTxn, ErrorTxn, ExistsRequest, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest, GetDataRequest,
    GetEphemeralsRequest, Id, MultiOp, OpCode, ReconfigRequest, RemoveWatchesRequest, Request,
    SetAclRequest, SetAclTxn, SetDataRequest, SetDataTxn, SetWatches2, SyncRequest, TxnBody,
};

/// Runs `script` for seeds `0..n`, `n` from `ZK_HOSTILE_{name}_SCRIPTS`
/// (else `default`), or for the one seed `ZK_HOSTILE_{name}_SEED` names; a
/// script that panics fails the run naming its seed and how to replay it.
pub fn run_scripts(name: &str, default: u64, script: impl Fn(u64) + std::panic::RefUnwindSafe) {
    let var = |what: &str| {
        let key = format!("ZK_HOSTILE_{name}_{what}");
        std::env::var(&key).ok().map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{key}: a number"))
        })
    };
    if let Some(seed) = var("SEED") {
        return script(seed);
    }
    for seed in 0..var("SCRIPTS").unwrap_or(default) {
        let r = std::panic::catch_unwind(|| script(seed));
        assert!(
            r.is_ok(),
            "script {seed} failed (ZK_HOSTILE_{name}_SEED={seed})"
        );
    }
}

/// splitmix64: a seeded stream of draws.
pub struct Draws(pub u64);

impl Draws {
    /// The next 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A draw in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.u64() % 100 < percent
    }

    /// One of `of`.
    pub fn pick<T: Clone>(&mut self, of: &[T]) -> T {
        of[self.below(of.len())].clone()
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.u64() as u8).collect()
    }

    /// An i32, often 0, -1, a bound or small.
    pub fn i32(&mut self) -> i32 {
        match self.below(6) {
            0 => 0,
            1 => -1,
            2 => i32::MIN,
            3 => i32::MAX,
            4 => self.below(8) as i32,
            _ => self.u64() as i32,
        }
    }
}

/// A path: usually one of ZooKeeper's edge cases (root, system nodes,
/// relative, trailing or double slash, dots, NUL), sometimes random bytes.
pub fn path(d: &mut Draws) -> String {
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

/// Node data: null, 16 KiB, or a few random bytes.
pub fn data(d: &mut Draws) -> Option<Bytes> {
    match d.below(8) {
        0 => None,
        1 => Some(Bytes::from(vec![7; 1 << 14])),
        _ => Some(Bytes::from(d.bytes(40))),
    }
}

/// An id of a known or unknown scheme, well formed or not.
pub fn id(d: &mut Draws) -> Id {
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

/// Zero to three ACL entries of any ids and permission bits.
pub fn acl(d: &mut Draws) -> Vec<Acl> {
    (0..d.below(4))
        .map(|_| Acl {
            perms: if d.chance(60) { 31 } else { d.i32() },
            id: id(d),
        })
        .collect()
}

/// Create flags: mostly a defined mode, sometimes any i32.
pub fn flags(d: &mut Draws) -> i32 {
    if d.chance(80) {
        d.below(7) as i32
    } else {
        d.i32()
    }
}

/// A create/create2/createContainer body.
pub fn create_request(d: &mut Draws) -> CreateRequest {
    CreateRequest {
        path: path(d),
        data: data(d),
        acl: acl(d),
        flags: flags(d),
    }
}

/// A createTTL body of any flags and TTL.
pub fn ttl_request(d: &mut Draws) -> CreateTtlRequest {
    CreateTtlRequest {
        path: path(d),
        data: data(d),
        acl: acl(d),
        flags: flags(d),
        ttl: match d.below(4) {
            0 => 0,
            1 => -1,
            2 => 1000,
            _ => d.u64() as i64,
        },
    }
}

/// A write request of a kind a multi may hold: create, create2,
/// createContainer, createTTL, delete, setData, check.
fn write_op(d: &mut Draws) -> Request {
    match d.below(7) {
        0 => Request::Create(create_request(d)),
        1 => Request::Create2(create_request(d)),
        2 => Request::CreateContainer(create_request(d)),
        3 => Request::CreateTtl(ttl_request(d)),
        4 => Request::Delete(DeleteRequest {
            path: path(d),
            version: d.i32(),
        }),
        5 => Request::SetData(SetDataRequest {
            path: path(d),
            data: data(d),
            version: d.i32(),
        }),
        _ => Request::Check(CheckVersionRequest {
            path: path(d),
            version: d.i32(),
        }),
    }
}

/// One op of a multi, reads among them.
pub fn multi_op(d: &mut Draws) -> MultiOp {
    match d.below(9) {
        7 => MultiOp::GetData(GetDataRequest {
            path: path(d),
            watch: false,
        }),
        8 => MultiOp::GetChildren(GetChildrenRequest {
            path: path(d),
            watch: true,
        }),
        _ => match write_op(d) {
            Request::Create(r) => MultiOp::Create(r),
            Request::Create2(r) => MultiOp::Create2(r),
            Request::CreateContainer(r) => MultiOp::CreateContainer(r),
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            Request::Delete(r) => MultiOp::Delete(r),
            Request::SetData(r) => MultiOp::SetData(r),
            Request::Check(r) => MultiOp::Check(r),
            other => unreachable!("write_op made {other:?}"),
        },
    }
}

/// A request body of some opcode, well formed (the caller may damage it).
pub fn request(d: &mut Draws) -> (i32, BytesMut) {
    let mut body = BytesMut::new();
    let req = match d.below(15) {
        0..=5 => write_op(d),
        6 | 7 => read_request(d),
        8 => Request::DeleteContainer(path(d)),
        9 => Request::SetAcl(SetAclRequest {
            path: path(d),
            acl: acl(d),
            version: d.i32(),
        }),
        10 => Request::Multi((0..d.below(5)).map(|_| multi_op(d)).collect()),
        11 => Request::Reconfig(ReconfigRequest {
            joining_servers: Some(String::from_utf8_lossy(&d.bytes(8)).into_owned()),
            leaving_servers: Some("1".into()),
            new_members: None,
            cur_config_id: -1,
        }),
        12 => Request::CloseSession,
        13 => {
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

/// A read (or watch, sync, whoAmI) request of odd paths, watcher types and
/// modes.
pub fn read_request(d: &mut Draws) -> Request {
    let paths = |d: &mut Draws| (0..d.below(3)).map(|_| path(d)).collect::<Vec<_>>();
    match d.below(15) {
        0 => Request::Exists(ExistsRequest {
            path: path(d),
            watch: d.chance(50),
        }),
        1 => Request::GetData(GetDataRequest {
            path: path(d),
            watch: d.chance(50),
        }),
        2 => Request::GetChildren(GetChildrenRequest {
            path: path(d),
            watch: d.chance(50),
        }),
        3 => Request::GetChildren2(GetChildren2Request {
            path: path(d),
            watch: d.chance(50),
        }),
        4 => Request::GetAcl(GetAclRequest { path: path(d) }),
        5 => Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: path(d) }),
        6 => Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: path(d),
        }),
        7 => Request::Sync(SyncRequest { path: path(d) }),
        8 => Request::CheckWatches(CheckWatchesRequest {
            path: path(d),
            watcher_type: d.i32(),
        }),
        9 => Request::RemoveWatches(RemoveWatchesRequest {
            path: path(d),
            watcher_type: d.i32(),
        }),
        10 => Request::AddWatch(AddWatchRequest {
            path: path(d),
            mode: d.i32(),
        }),
        11 => Request::SetWatches2(SetWatches2 {
            relative_zxid: d.u64() as i64,
            data_watches: paths(d),
            exist_watches: paths(d),
            child_watches: paths(d),
            persistent_watches: paths(d),
            persistent_recursive_watches: paths(d),
        }),
        12 => Request::MultiRead((0..d.below(4)).map(|_| multi_op(d)).collect()),
        13 => Request::WhoAmI,
        _ => Request::Ping,
    }
}

/// Cuts, flips or extends `b` now and then.
pub fn damage(d: &mut Draws, b: &mut BytesMut) {
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

/// A txn body of any type, as a leader could send it: paths that may not
/// exist (or be the root, or no path), versions of any value, a
/// closeSession listing any paths, multis of any of these.
pub fn txn(d: &mut Draws) -> TxnBody {
    txn_at(d, 0)
}

fn txn_at(d: &mut Draws, depth: usize) -> TxnBody {
    let create = |d: &mut Draws| CreateTxn {
        path: path(d),
        data: data(d),
        acl: acl(d),
        ephemeral: d.chance(30),
        parent_c_version: d.i32(),
    };
    match d.below(if depth == 0 { 15 } else { 14 }) {
        0 | 1 => TxnBody::Create(create(d)),
        2 => TxnBody::Create2(create(d)),
        3 => TxnBody::CreateContainer(CreateContainerTxn {
            path: path(d),
            data: data(d),
            acl: acl(d),
            parent_c_version: d.i32(),
        }),
        4 => TxnBody::CreateTtl(CreateTtlTxn {
            path: path(d),
            data: data(d),
            acl: acl(d),
            parent_c_version: d.i32(),
            ttl: d.u64() as i64 >> d.below(64),
        }),
        5 => TxnBody::Delete(DeleteTxn { path: path(d) }),
        6 => TxnBody::DeleteContainer(DeleteTxn { path: path(d) }),
        7 | 8 => TxnBody::SetData(SetDataTxn {
            path: path(d),
            data: data(d),
            version: d.i32(),
        }),
        9 => TxnBody::SetAcl(SetAclTxn {
            path: path(d),
            acl: acl(d),
            version: d.i32(),
        }),
        10 => TxnBody::Check(CheckVersionTxn {
            path: path(d),
            version: d.i32(),
        }),
        11 => TxnBody::CreateSession(CreateSessionTxn { time_out: d.i32() }),
        12 => TxnBody::CloseSession(CloseSessionTxn {
            paths2_delete: (0..d.below(4)).map(|_| path(d)).collect(),
        }),
        13 => TxnBody::Error(ErrorTxn { err: d.i32() }),
        _ => TxnBody::Multi((0..d.below(5)).map(|_| txn_at(d, depth + 1)).collect()),
    }
}
