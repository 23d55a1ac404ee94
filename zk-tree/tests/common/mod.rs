//! Test harness: a server-like pipeline over one tree (prepare, apply,
//! drop pending), logging every txn so it can be replayed.

#![allow(dead_code)]

use bytes::Bytes;
use zk_jute::{
    Acl, CreateRequest, DeleteRequest, ErrorCode, ErrorTxn, Id, OpCode, Request, SetDataRequest,
    TxnBody, TxnHeader,
};
use zk_tree::{ApplyOutcome, Auth, PendingChanges, RequestContext, Tree, TreeConfig, prepare};

pub struct Harness {
    pub tree: Tree,
    pub pending: PendingChanges,
    pub zxid: i64,
    pub time: i64,
    pub log: Vec<(TxnHeader, TxnBody)>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(TreeConfig::default())
    }

    pub fn with(cfg: TreeConfig) -> Self {
        Harness {
            tree: Tree::new(cfg),
            pending: PendingChanges::new(),
            zxid: 0,
            time: 1000,
            log: Vec::new(),
        }
    }

    /// Prepares a request as `session` with `ids`; returns the txn (an error
    /// txn on failure, as ZooKeeper logs) without applying it.
    pub fn prep(&mut self, session: i64, ids: &[Id], req: &Request) -> (TxnHeader, TxnBody) {
        self.zxid += 1;
        self.time += 10;
        let ctx = RequestContext {
            session_id: session,
            auth: Auth {
                ids,
                is_super: false,
            },
            zxid: self.zxid,
            time_ms: self.time,
        };
        let body = match prepare(&self.tree, &mut self.pending, &ctx, req.clone()) {
            Ok(b) => b,
            Err(e) => TxnBody::Error(ErrorTxn { err: e.code() }),
        };
        (self.header(session, &body), body)
    }

    /// The header of `body` from `session` at the current zxid and time.
    fn header(&self, session: i64, body: &TxnBody) -> TxnHeader {
        TxnHeader {
            client_id: session,
            cxid: 0,
            zxid: self.zxid,
            time: self.time,
            txn_type: body.txn_type().code(),
        }
    }

    /// Applies `body` from `session` at the next zxid, as a leader's txn
    /// that no prep made.
    pub fn apply_txn(&mut self, session: i64, body: TxnBody) -> ApplyOutcome {
        self.zxid += 1;
        self.time += 10;
        self.apply(self.header(session, &body), body)
    }

    pub fn apply(&mut self, hdr: TxnHeader, body: TxnBody) -> ApplyOutcome {
        let out = self.tree.apply(&hdr, &body);
        self.pending.applied(hdr.zxid);
        self.log.push((hdr, body));
        out
    }

    pub fn req_as(&mut self, session: i64, ids: &[Id], req: Request) -> ApplyOutcome {
        let (h, b) = self.prep(session, ids, &req);
        self.apply(h, b)
    }

    pub fn req(&mut self, session: i64, req: Request) -> ApplyOutcome {
        self.req_as(session, &[], req)
    }

    pub fn create(&mut self, session: i64, path: &str, data: &[u8], flags: i32) -> ApplyOutcome {
        self.req(session, Request::Create2(create_req(path, data, flags)))
    }

    pub fn set(&mut self, session: i64, path: &str, data: &[u8], version: i32) -> ApplyOutcome {
        self.req(
            session,
            Request::SetData(SetDataRequest {
                path: path.into(),
                data: Some(Bytes::copy_from_slice(data)),
                version,
            }),
        )
    }

    pub fn delete(&mut self, session: i64, path: &str, version: i32) -> ApplyOutcome {
        self.req(
            session,
            Request::Delete(DeleteRequest {
                path: path.into(),
                version,
            }),
        )
    }

    pub fn open_session(&mut self, session: i64, timeout: i32) -> ApplyOutcome {
        self.req(
            session,
            Request::CreateSession(zk_jute::CreateSessionTxn { time_out: timeout }),
        )
    }

    pub fn close_session(&mut self, session: i64) -> ApplyOutcome {
        self.req(session, Request::CloseSession)
    }
}

pub fn create_req(path: &str, data: &[u8], flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: zk_tree::open_acl_unsafe(),
        flags,
    }
}

pub fn id(scheme: &str, id: &str) -> Id {
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

pub fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
    Acl {
        perms,
        id: id(scheme, i),
    }
}

pub const SUPER: Auth<'static> = Auth {
    ids: &[],
    is_super: true,
};

/// Every node (path, data, stat, acl), sorted by path, read through the
/// public API as the super user.
pub fn dump(tree: &Tree) -> Vec<(String, Option<Bytes>, zk_jute::Stat, Vec<Acl>)> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let Ok((data, stat)) = tree.get_data(&p, &SUPER, None) else {
            continue;
        };
        let (acl, _) = tree.get_acl(&p, &SUPER).expect("acl");
        let (children, _) = tree.get_children(&p, &SUPER, None).expect("children");
        for c in children {
            stack.push(if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            });
        }
        out.push((p, data, stat, acl));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub fn is_error(o: &ApplyOutcome, e: ErrorCode) -> bool {
    o.err == e && o.txn_type == OpCode::Error
}

/// `a` and `b` hold the same nodes, digest, sessions, ephemerals, counts,
/// zxid and expiry candidates.
pub fn same(a: &Tree, b: &Tree) {
    assert_eq!(dump(a), dump(b));
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.sessions(), b.sessions());
    assert_eq!(a.ephemerals_by_session(), b.ephemerals_by_session());
    assert_eq!(a.node_count(), b.node_count());
    assert_eq!(a.approximate_data_size(), b.approximate_data_size());
    assert_eq!(a.last_processed_zxid(), b.last_processed_zxid());
    assert_eq!(
        a.expired_ttl_and_empty_containers(i64::MAX),
        b.expired_ttl_and_empty_containers(i64::MAX)
    );
}
