//! Requests answered from the tree without a txn: reads, and the session
//! housekeeping that must stay ordered with them (ping, sync, setWatches,
//! watch removal, whoAmI). A loop serves them for a session with nothing in
//! flight; the sequencer serves them once the session's writes before them
//! are answered. Also the auth packet's check, and `cons`'s op names.

use bytes::{Bytes, BytesMut};
use zk_jute::{
    AddWatchMode, ClientInfo, ErrorCode, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, Id, MultiOp, MultiResult, Request, Response, SetWatches2, SyncResponse,
    WatcherType, WhoAmIResponse, xid,
};
use zk_tree::{Auth, Tree};

use crate::frames::{error_frame, event_frame, response_frame};
use crate::msg::Ctx;
use crate::shared::Shared;

/// Requests answered from the tree without a txn (reads, and the session
/// housekeeping that must stay ordered with them).
pub(crate) fn is_local(req: &Request) -> bool {
    matches!(
        req,
        Request::Exists(_)
            | Request::GetData(_)
            | Request::GetAcl(_)
            | Request::GetChildren(_)
            | Request::GetChildren2(_)
            | Request::GetAllChildrenNumber(_)
            | Request::GetEphemerals(_)
            | Request::MultiRead(_)
            | Request::CheckWatches(_)
            | Request::RemoveWatches(_)
            | Request::AddWatch(_)
            | Request::SetWatches(_)
            | Request::SetWatches2(_)
            | Request::Sync(_)
            | Request::Ping
            | Request::WhoAmI
            | Request::Sasl(_)
    )
}

/// ZooKeeper's short names for `cons` (`lop=`).
pub(crate) fn op_short_name(req: &Request) -> &'static str {
    match req {
        Request::Create(_)
        | Request::Create2(_)
        | Request::CreateContainer(_)
        | Request::CreateTtl(_) => "CREA",
        Request::Delete(_) | Request::DeleteContainer(_) => "DELE",
        Request::Exists(_) => "EXIS",
        Request::GetData(_) => "GETD",
        Request::SetData(_) => "SETD",
        Request::GetAcl(_) => "GETA",
        Request::SetAcl(_) => "SETA",
        Request::GetChildren(_) => "GETC",
        Request::GetChildren2(_) => "GETC",
        Request::Sync(_) => "SYNC",
        Request::Ping => "PING",
        Request::Check(_) => "CHEC",
        Request::Multi(_) => "MULT",
        Request::MultiRead(_) => "MLTR",
        Request::SetWatches(_) | Request::SetWatches2(_) => "SETW",
        Request::CloseSession => "CLOS",
        Request::AddWatch(_) => "ADDW",
        Request::WhoAmI => "HOMI",
        _ => "NA",
    }
}

/// Answers a read (or ping, sync, setWatches, ...) from the tree: the reply
/// frame, preceded by the events setWatches fires.
pub(crate) fn serve_read(shared: &Shared, ctx: &Ctx, req: Request) -> Bytes {
    let tree = &shared.tree;
    let auth = Auth::new(&ctx.auth);
    let zxid = shared.last_zxid();
    let watch = |w: bool| w.then_some(ctx.conn);
    let mut xid = ctx.xid;
    let mut prefix = BytesMut::new();
    let res: Result<Response, ErrorCode> = match req {
        Request::Ping => {
            xid = xid::PING;
            Ok(Response::Empty)
        }
        Request::Exists(r) => tree
            .exists(&r.path, &auth, watch(r.watch))
            .map(Response::Stat),
        Request::GetData(r) => tree
            .get_data(&r.path, &auth, watch(r.watch))
            .map(|(data, stat)| Response::GetData(GetDataResponse { data, stat })),
        Request::GetAcl(r) => tree
            .get_acl(&r.path, &auth)
            .map(|(acl, stat)| Response::GetAcl(GetAclResponse { acl, stat })),
        Request::GetChildren(r) => tree
            .get_children(&r.path, &auth, watch(r.watch))
            .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
        Request::GetChildren2(r) => {
            tree.get_children(&r.path, &auth, watch(r.watch))
                .map(|(children, stat)| {
                    Response::GetChildren2(GetChildren2Response { children, stat })
                })
        }
        Request::GetAllChildrenNumber(r) => tree.get_all_children_number(&r.path, &auth).map(|n| {
            Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: n })
        }),
        Request::GetEphemerals(r) => Ok(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: tree.get_ephemerals(ctx.session_id, &r.prefix_path),
        })),
        Request::MultiRead(ops) => Ok(multi_read(tree, &auth, &ops, watch)),
        Request::CheckWatches(_) | Request::RemoveWatches(_) | Request::AddWatch(_) => {
            watch_request(tree, ctx.conn, req)
        }
        Request::SetWatches(sw) => {
            let w2 = SetWatches2 {
                relative_zxid: sw.relative_zxid,
                data_watches: sw.data_watches,
                exist_watches: sw.exist_watches,
                child_watches: sw.child_watches,
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            };
            for ev in tree.set_watches(&w2, ctx.conn) {
                prefix.extend_from_slice(&event_frame(&ev));
            }
            Ok(Response::Empty)
        }
        Request::SetWatches2(sw) => {
            for ev in tree.set_watches(&sw, ctx.conn) {
                prefix.extend_from_slice(&event_frame(&ev));
            }
            Ok(Response::Empty)
        }
        Request::Sync(r) => Ok(Response::Sync(SyncResponse { path: r.path })),
        Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
            client_info: java_set_order(&ctx.auth)
                .into_iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    user: user_name(id).to_string(),
                })
                .collect(),
        })),
        _ => Err(ErrorCode::Unimplemented),
    };
    let frame = match res {
        Ok(resp) => response_frame(xid, zxid, &resp),
        Err(e) => error_frame(xid, zxid, e),
    };
    if prefix.is_empty() {
        frame
    } else {
        prefix.extend_from_slice(&frame);
        prefix.freeze()
    }
}

/// Handles an auth packet: the ids to add, or `None` (AUTHFAILED).
pub(crate) fn authenticate(shared: &Shared, auth: &zk_jute::AuthPacket) -> Option<Vec<Id>> {
    match auth.scheme.as_str() {
        "digest" => {
            // DigestAuthenticationProvider takes any bytes: `new String`
            // (malformed UTF-8 replaced), the user is what precedes the
            // first ':' (all of it without one).
            let creds = String::from_utf8_lossy(&auth.auth);
            let digest = zk_tree::digest_id(&creds);
            let mut ids = vec![Id {
                scheme: "digest".into(),
                id: digest.clone(),
            }];
            if shared.config.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            Some(ids)
        }
        _ => None,
    }
}

/// A multiRead's results: getChildren and getData ops, each with its own
/// result or error; any other op is BADARGUMENTS.
fn multi_read(
    tree: &Tree,
    auth: &Auth<'_>,
    ops: &[MultiOp],
    watch: impl Fn(bool) -> Option<u64>,
) -> Response {
    let results = ops
        .iter()
        .map(|op| match op {
            MultiOp::GetChildren(r) => match tree.get_children(&r.path, auth, watch(r.watch)) {
                Ok((children, _)) => MultiResult::GetChildren(GetChildrenResponse { children }),
                Err(e) => MultiResult::Error(ErrorResponse { err: e.code() }),
            },
            MultiOp::GetData(r) => match tree.get_data(&r.path, auth, watch(r.watch)) {
                Ok((data, stat)) => MultiResult::GetData(GetDataResponse { data, stat }),
                Err(e) => MultiResult::Error(ErrorResponse { err: e.code() }),
            },
            _ => MultiResult::Error(ErrorResponse {
                err: ErrorCode::BadArguments.code(),
            }),
        })
        .collect();
    Response::Multi(results)
}

/// checkWatches, removeWatches and addWatch for connection `conn`.
fn watch_request(tree: &Tree, conn: u64, req: Request) -> Result<Response, ErrorCode> {
    match req {
        Request::CheckWatches(r) => match WatcherType::try_from(r.watcher_type) {
            Ok(t) => tree
                .check_watches(&r.path, t, conn)
                .map(|()| Response::Empty),
            Err(_) => Err(ErrorCode::BadArguments),
        },
        Request::RemoveWatches(r) => match WatcherType::try_from(r.watcher_type) {
            Ok(t) => tree
                .remove_watches(&r.path, t, conn)
                .map(|()| Response::Empty),
            Err(_) => Err(ErrorCode::BadArguments),
        },
        Request::AddWatch(r) => match AddWatchMode::try_from(r.mode) {
            Ok(m) => {
                tree.add_watch(&r.path, m, conn);
                Ok(Response::AddWatch(ErrorResponse { err: 0 }))
            }
            Err(_) => Err(ErrorCode::BadArguments),
        },
        _ => Err(ErrorCode::Unimplemented),
    }
}

/// The user whoAmI names for an auth id, as ZooKeeper's
/// `AuthUtil.getUser`: a digest id's user before its first ':'
/// (`DigestAuthenticationProvider.getUserName`), "" for a scheme no
/// provider serves (`super`), the id itself for the others.
fn user_name(id: &zk_jute::Id) -> &str {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or(""),
        "super" => "",
        _ => &id.id,
    }
}

/// Java's `String.hashCode` (over UTF-16 units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// `ids` in the order ZooKeeper's `ServerCnxn.getAuthInfo` lists them: its
/// auth ids are a set backed by a `ConcurrentHashMap` (16 buckets below 12
/// entries, doubling at three quarters full; the order a resize leaves
/// within a bucket is not modelled), iterated bucket by bucket
/// by the jute `Id.hashCode` (17, then ×37 + scheme's hash, ×37 + id's), in
/// insertion order within a bucket. With TLS, Apache lists `x509:...`
/// before `ip:...`.
fn java_set_order(ids: &[zk_jute::Id]) -> Vec<&zk_jute::Id> {
    let mut buckets = 16usize;
    while ids.len() >= buckets * 3 / 4 {
        buckets *= 2;
    }
    let bucket = |id: &zk_jute::Id| {
        let h = 17i32
            .wrapping_mul(37)
            .wrapping_add(java_string_hash(&id.scheme))
            .wrapping_mul(37)
            .wrapping_add(java_string_hash(&id.id));
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        spread as usize & (buckets - 1)
    };
    let mut ordered: Vec<&zk_jute::Id> = ids.iter().collect();
    ordered.sort_by_key(|id| bucket(id));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> zk_jute::Id {
        zk_jute::Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// Regression: whoAmI listed a TLS client's ids as they were added
    /// (`ip`, then `x509`); Apache 3.8's answer, seen with zkCli over TLS:
    /// `x509: CN=client,O=zk-rs` then `ip: 127.0.0.1`.
    #[test]
    fn auth_ids_list_in_javas_set_order() {
        let ids = [id("ip", "127.0.0.1"), id("x509", "CN=client,O=zk-rs")];
        let order: Vec<&str> = java_set_order(&ids)
            .iter()
            .map(|i| i.scheme.as_str())
            .collect();
        assert_eq!(order, ["x509", "ip"]);
        assert_eq!(java_string_hash("ip"), 3367);
        assert_eq!(java_string_hash("é"), 233);
        assert_eq!(java_set_order(&[]).len(), 0);
    }

    /// Regression: whoAmI named a digest user with its password hash
    /// (`bob:ttt4...`), where Apache names the user (`bob`).
    #[test]
    fn who_am_i_names_users_as_apache() {
        assert_eq!(user_name(&id("digest", "bob:ttt4KD2l")), "bob");
        assert_eq!(user_name(&id("digest", "nocolon")), "nocolon");
        assert_eq!(user_name(&id("digest", ":x")), "");
        assert_eq!(user_name(&id("ip", "127.0.0.1")), "127.0.0.1");
        assert_eq!(user_name(&id("x509", "CN=a,O=b")), "CN=a,O=b");
        assert_eq!(user_name(&id("super", "CN=a")), "");
    }
}
