//! The prep stage (`PrepRequestProcessor`): validates a write request against
//! the committed tree plus the txns prepared but not yet applied
//! ([`PendingChanges`], ZooKeeper's "outstanding changes"), and builds its txn.
//!
//! Failures and zxids. ZooKeeper 3.8 gives every write request a zxid before
//! validating it; a request that fails validation is logged and applied as
//! an `error` txn carrying its code (header type -1), and the reply carries
//! that code. [`prepare`] returns that code as `Err(code)` and leaves the
//! overlay untouched; to advance zxids exactly as ZooKeeper, the server logs
//! and applies `TxnBody::Error(ErrorTxn { err })` under `ctx.zxid` (it may
//! instead reply at once without taking a zxid, at the price of zxid
//! numbering that differs from ZooKeeper's). A failed multi is not an `Err`:
//! it is `Ok(TxnBody::Multi(..))` whose ops are the txns of the ops before
//! the failing one, an error txn with the failing op's code, and
//! RUNTIMEINCONSISTENCY error txns after it, exactly the txn ZooKeeper logs;
//! applying it changes nothing and yields ZooKeeper's multi results.
//!
//! Not checked here (the server's session tracker owns them): session
//! validity (SESSIONEXPIRED, SESSIONMOVED), local sessions
//! (EPHEMERALONLOCALSESSION). Quota hard limits are checked here, with
//! `TreeConfig::enforce_quota`, against the applied usage (as Apache).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use hashbrown::HashMap;
use zk_jute::{
    Acl, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateMode, CreateTtlTxn, CreateTxn,
    DeleteTxn, ErrorCode, ErrorTxn, MultiOp, Request, SetAclTxn, SetDataTxn, TxnBody, perms,
};

use crate::acl::{Auth, check_acl, fixup_acl};
use crate::digest::DigestPrefix;
use crate::path::validate_path;
use crate::store::{CONTAINER_EPHEMERAL_OWNER, EphemeralType, OwnerTypes, new_stat, ttl_owner};
use crate::tree::{NodeRecord, Tree};

/// Who sends the request, and the zxid and time the server assigned to it.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The session (owner of ephemerals it creates; the session closed by
    /// closeSession).
    pub session_id: i64,
    /// The session's authentication.
    pub auth: Auth<'a>,
    /// The zxid the txn will carry (all ops of a multi share it).
    pub zxid: i64,
    /// The txn time (leader wall clock, ms), the same as in its header.
    pub time_ms: i64,
}

#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    node: Option<NodeRecord>,
}

/// The previous overlay entries of the paths a multi touched.
type UndoLog = Vec<(Arc<str>, Option<Rec>)>;

/// Where a multi began: the overlay's seq and digest then, and the entries
/// it replaced since.
#[derive(Debug)]
struct Undo {
    seq: u64,
    digest: Option<i64>,
    log: UndoLog,
}

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    zxid: i64,
    /// The key of its [`PendingChanges::by_path`] record (one allocation
    /// of the path for both).
    path: Arc<str>,
    /// The node's owner, `None` for a delete.
    owner: Option<i64>,
}

/// The prep thread's overlay of prepared but not yet applied changes: the
/// latest pending state per path (stat, child count, ACL, or deleted), and
/// the tree digest once they are all applied. Owned by the prep thread;
/// tell it when txns are applied.
///
/// Digests, as ZooKeeper's `PrecalculatedDigest`: each change subtracts
/// the node's share as it stood (its record's `base`) and adds its new
/// share; the running sum starts from the committed tree's digest whenever
/// nothing is outstanding. [`PendingChanges::txn_digest`] is then the
/// digest the tree will have after the last prepared txn, which the leader
/// sends with it (`TxnDigest`) for its followers to check.
#[derive(Debug, Default)]
pub struct PendingChanges {
    by_path: HashMap<Arc<str>, Rec>,
    order: VecDeque<Entry>,
    seq: u64,
    undo: Option<Undo>,
    /// The tree digest after every prepared change; `None`: the tree's own.
    digest: Option<i64>,
    /// The ACL of the last node created here, shared by the next one with
    /// the same ACL (a create load's nodes mostly have one).
    last_acl: Option<Arc<[Acl]>>,
}

impl PendingChanges {
    /// An empty overlay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the changes of every txn with zxid <= `zxid` (call after the
    /// applier has applied `zxid`).
    pub fn applied(&mut self, zxid: i64) {
        while let Some(e) = self.order.front() {
            if e.zxid > zxid {
                break;
            }
            let e = self.order.pop_front().expect("front exists");
            if let hashbrown::hash_map::Entry::Occupied(r) = self.by_path.entry(e.path)
                && r.get().seq == e.seq
            {
                r.remove();
            }
        }
        if self.order.is_empty() {
            // Everything prepared is in the tree, its digest included.
            self.digest = None;
        }
    }

    /// The tree digest after every txn prepared so far is applied (the
    /// committed tree's when nothing is outstanding): the `TxnDigest` of the
    /// txn prepared last.
    pub fn txn_digest(&self, tree: &Tree) -> i64 {
        self.digest.unwrap_or_else(|| tree.digest())
    }

    /// Drops everything (leader change, resync).
    pub fn clear(&mut self) {
        self.by_path.clear();
        self.order.clear();
        self.undo = None;
        self.digest = None;
    }

    /// Number of change records outstanding.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn key(path: &str) -> &str {
        if path.is_empty() { "/" } else { path }
    }

    fn get(&self, tree: &Tree, path: &str) -> Result<NodeRecord, ErrorCode> {
        self.get_with(tree, path, true)
    }

    /// [`Self::get`] for a setData, which replaces the record's prefix: one
    /// read from the tree does not run the old data through the CRC.
    fn get_for_new_data(&self, tree: &Tree, path: &str) -> Result<NodeRecord, ErrorCode> {
        self.get_with(tree, path, false)
    }

    fn get_with(&self, tree: &Tree, path: &str, prefix: bool) -> Result<NodeRecord, ErrorCode> {
        match self.by_path.get(Self::key(path)) {
            Some(r) => r.node.clone().ok_or(ErrorCode::NoNode),
            None => tree.record(path, prefix).ok_or(ErrorCode::NoNode),
        }
    }

    /// Records `node` (its stat changed by the txn at `zxid`) as `path`'s
    /// latest state.
    fn put(&mut self, tree: &Tree, zxid: i64, path: &str, mut node: NodeRecord) {
        let new = node.digest();
        self.move_digest(tree, node.base, new);
        node.base = new;
        self.add(zxid, path, Some(node));
    }

    /// Records `path` (whose digest share was `old`) as deleted at `zxid`.
    fn delete(&mut self, tree: &Tree, zxid: i64, path: &str, old: u32) {
        self.move_digest(tree, old, 0);
        self.add(zxid, path, None);
    }

    fn move_digest(&mut self, tree: &Tree, old: u32, new: u32) {
        let d = self.txn_digest(tree);
        self.digest = Some(d.wrapping_sub(i64::from(old)).wrapping_add(i64::from(new)));
    }

    /// `acl` as a new node's record holds it: the previous node's when equal.
    fn shared_acl(&mut self, acl: &[Acl]) -> Arc<[Acl]> {
        match &self.last_acl {
            Some(a) if **a == *acl => a.clone(),
            _ => {
                let a: Arc<[Acl]> = Arc::from(acl);
                self.last_acl = Some(a.clone());
                a
            }
        }
    }

    fn add(&mut self, zxid: i64, path: &str, node: Option<NodeRecord>) {
        let path: Arc<str> = Arc::from(Self::key(path));
        if let Some(u) = &mut self.undo {
            u.log.push((path.clone(), self.by_path.get(&path).cloned()));
        }
        self.seq += 1;
        let seq = self.seq;
        self.order.push_back(Entry {
            seq,
            zxid,
            path: path.clone(),
            owner: node.as_ref().map(|n| n.stat.ephemeral_owner),
        });
        self.by_path.insert(path, Rec { seq, node });
    }

    fn begin(&mut self) {
        self.undo = Some(Undo {
            seq: self.seq,
            digest: self.digest,
            log: Vec::new(),
        });
    }

    fn rollback(&mut self) {
        if let Some(u) = self.undo.take() {
            while self.order.back().is_some_and(|e| e.seq > u.seq) {
                self.order.pop_back();
            }
            for (path, prev) in u.log.into_iter().rev() {
                match prev {
                    Some(r) => self.by_path.insert(path, r),
                    None => self.by_path.remove(&path),
                };
            }
            self.digest = u.digest;
            self.begin();
        }
    }

    fn end(&mut self) {
        self.undo = None;
    }
}

fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

/// `getParentPathAndValidate`: no `/`, a NUL or a system path is BADARGUMENTS.
fn parent_of_deletable(path: &str) -> Result<&str, ErrorCode> {
    let i = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if path.contains('\0') || is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(&path[..i])
}

struct Prep<'a, 'b> {
    tree: &'a Tree,
    p: &'a mut PendingChanges,
    ctx: &'a RequestContext<'b>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CreateKind {
    Create,
    Create2,
    Container,
    Ttl,
}

impl Prep<'_, '_> {
    fn acl_ok(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        if self.tree.config.skip_acl {
            Ok(())
        } else {
            check_acl(acl, perm, &self.ctx.auth)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        kind: CreateKind,
        mut path: String,
        data: Option<bytes::Bytes>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Result<TxnBody, ErrorCode> {
        let cfg = &self.tree.config;
        let mode = CreateMode::try_from(flags).map_err(|_| ErrorCode::BadArguments)?;
        if mode.is_ttl() && !cfg.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_owner_value = if mode.is_ttl() {
            Some(ttl_owner(ttl).ok_or(ErrorCode::BadArguments)?)
        } else if ttl >= 0 || kind == CreateKind::Ttl {
            // A createTTL of another mode (ttl < 0) would make a CreateTTLTxn
            // of no valid TTL: ZooKeeper 3.8 accepts it and its apply throws,
            // which stops the server.
            return Err(ErrorCode::BadArguments);
        } else {
            None
        };
        let slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let acl = fixup_acl(acl, &self.ctx.auth, &cfg.extra_auth_schemes)?;
        let parent = self.p.get(self.tree, &path[..slash])?;
        self.acl_ok(&parent.acl, perms::CREATE)?;
        // The request's path becomes the txn's (a sequential one grows; the
        // parent stays `path[..slash]`).
        if mode.is_sequential() {
            path.push_str(&format!("{:010}", parent.stat.cversion));
        }
        validate_path(&path)?;
        if self.p.get(self.tree, &path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        if EphemeralType::of(parent.stat.ephemeral_owner, OwnerTypes::of(cfg))
            == EphemeralType::Normal
        {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cv = parent.stat.cversion.wrapping_add(1);
        let data_len = data.as_ref().map_or(0, |d| d.len() as i64);
        self.tree.check_quota(&path, 1, data_len)?;
        // The node the txn makes: its type decides, as the apply does, not
        // the flags (ZooKeeper's prep takes the owner from the flags, so a
        // createContainer with the ephemeral flag or a create with the
        // container flag made a digest and a pending record that the apply
        // then contradicted).
        let owner = match (kind, ttl_owner_value) {
            (CreateKind::Container, _) => CONTAINER_EPHEMERAL_OWNER,
            (_, Some(o)) => o,
            _ if mode.is_ephemeral() => self.ctx.session_id,
            _ => 0,
        };
        let z = self.ctx.zxid;
        let mut parent = parent;
        parent.children += 1;
        parent.stat.cversion = new_cv;
        parent.stat.pzxid = z;
        self.p.put(self.tree, z, &path[..slash], parent);
        let node = NodeRecord {
            stat: new_stat(z, self.ctx.time_ms, owner),
            children: 0,
            acl: self.p.shared_acl(&acl),
            prefix: DigestPrefix::new(&path, data.as_deref()),
            base: 0,
            data_len,
        };
        self.p.put(self.tree, z, &path, node);
        // The txn takes the request's path and data, and the ACL (no copies).
        Ok(match kind {
            CreateKind::Container => TxnBody::CreateContainer(CreateContainerTxn {
                path,
                data,
                acl,
                parent_c_version: new_cv,
            }),
            CreateKind::Ttl => TxnBody::CreateTtl(CreateTtlTxn {
                path,
                data,
                acl,
                parent_c_version: new_cv,
                ttl,
            }),
            CreateKind::Create | CreateKind::Create2 => {
                let t = CreateTxn {
                    path,
                    data,
                    acl,
                    ephemeral: mode.is_ephemeral(),
                    parent_c_version: new_cv,
                };
                if kind == CreateKind::Create2 {
                    TxnBody::Create2(t)
                } else {
                    TxnBody::Create(t)
                }
            }
        })
    }

    fn delete(&mut self, path: String, version: i32) -> Result<TxnBody, ErrorCode> {
        let parent_path = parent_of_deletable(&path)?;
        let parent = self.p.get(self.tree, parent_path)?;
        self.acl_ok(&parent.acl, perms::DELETE)?;
        let node = self.p.get(self.tree, &path)?;
        check_version(node.stat.version, version)?;
        if node.children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(parent_path, parent, &path, node.base);
        Ok(TxnBody::Delete(DeleteTxn { path }))
    }

    fn delete_container(&mut self, path: &str) -> Result<TxnBody, ErrorCode> {
        let parent_path = parent_of_deletable(path)?;
        let node = self.p.get(self.tree, path)?;
        if node.children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if EphemeralType::of(node.stat.ephemeral_owner, OwnerTypes::of(&self.tree.config))
            == EphemeralType::Normal
        {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.p.get(self.tree, parent_path)?;
        self.remove(parent_path, parent, path, node.base);
        Ok(TxnBody::DeleteContainer(DeleteTxn {
            path: path.to_string(),
        }))
    }

    /// `path` (digest share `old`) goes, and its parent's record changes.
    fn remove(&mut self, parent_path: &str, mut parent: NodeRecord, path: &str, old: u32) {
        let z = self.ctx.zxid;
        parent.children -= 1;
        parent.stat.pzxid = z;
        self.p.put(self.tree, z, parent_path, parent);
        self.p.delete(self.tree, z, path, old);
    }

    fn set_data(
        &mut self,
        path: String,
        data: Option<bytes::Bytes>,
        version: i32,
    ) -> Result<TxnBody, ErrorCode> {
        validate_path(&path)?;
        let node = self.p.get_for_new_data(self.tree, &path)?;
        self.acl_ok(&node.acl, perms::WRITE)?;
        let data_len = data.as_ref().map_or(0, |d| d.len() as i64);
        self.tree.check_quota(&path, 0, data_len - node.data_len)?;
        let v = check_version(node.stat.version, version)?;
        self.put_data(&path, node, data.as_deref(), v);
        // The txn takes the request's path and data (no copies).
        Ok(TxnBody::SetData(SetDataTxn {
            path,
            data,
            version: v,
        }))
    }

    /// Records `node` at `path` with new `data` and data version `version`,
    /// modified by this txn.
    fn put_data(&mut self, path: &str, mut node: NodeRecord, data: Option<&[u8]>, version: i32) {
        node.stat.version = version;
        node.data_len = data.map_or(0, |d| d.len() as i64);
        node.stat.mtime = self.ctx.time_ms;
        node.stat.mzxid = self.ctx.zxid;
        node.prefix = DigestPrefix::new(path, data);
        self.p.put(self.tree, self.ctx.zxid, path, node);
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<TxnBody, ErrorCode> {
        validate_path(path)?;
        let acl = fixup_acl(acl, &self.ctx.auth, &self.tree.config.extra_auth_schemes)?;
        let mut node = self.p.get(self.tree, path)?;
        self.acl_ok(&node.acl, perms::ADMIN)?;
        let v = check_version(node.stat.aversion, version)?;
        node.stat.aversion = v;
        node.acl = Arc::from(&acl[..]);
        self.p.put(self.tree, self.ctx.zxid, path, node);
        Ok(TxnBody::SetAcl(SetAclTxn {
            path: path.to_string(),
            acl,
            version: v,
        }))
    }

    fn check(&mut self, path: &str, version: i32) -> Result<TxnBody, ErrorCode> {
        validate_path(path)?;
        let node = self.p.get(self.tree, path)?;
        self.acl_ok(&node.acl, perms::READ)?;
        let v = check_version(node.stat.version, version)?;
        Ok(TxnBody::Check(CheckVersionTxn {
            path: path.to_string(),
            version: v,
        }))
    }

    fn close_session(&mut self) -> Result<TxnBody, ErrorCode> {
        let session = self.ctx.session_id;
        let mut es: BTreeSet<String> = self.tree.get_ephemerals(session, "/").into_iter().collect();
        // Only a session id that is an ephemeral owner owns nodes: the
        // pending records of persistent nodes (owner 0), containers and TTL
        // nodes are no session's, whatever id a closeSession names
        // (ZooKeeper's prep matches the owner alone: a closeSession of
        // session 0 listed every persistent node being changed).
        let owns =
            EphemeralType::of(session, OwnerTypes::of(&self.tree.config)) == EphemeralType::Normal;
        for e in &self.p.order {
            match e.owner {
                None => {
                    es.remove(&*e.path);
                }
                Some(o) if o == session && owns => {
                    es.insert(e.path.to_string());
                }
                Some(_) => {}
            }
        }
        let z = self.ctx.zxid;
        for path in &es {
            if let Some(i) = path.rfind('/')
                && let Ok(mut parent) = self.p.get(self.tree, &path[..i])
            {
                parent.stat.pzxid = z;
                parent.children -= 1;
                self.p.put(self.tree, z, &path[..i], parent);
            }
            let old = self.p.get(self.tree, path).map_or(0, |n| n.base);
            self.p.delete(self.tree, z, path, old);
        }
        Ok(TxnBody::CloseSession(CloseSessionTxn {
            paths2_delete: es.into_iter().collect(),
        }))
    }

    fn op(&mut self, op: MultiOp) -> Result<TxnBody, ErrorCode> {
        match op {
            MultiOp::Create(r) => {
                self.create(CreateKind::Create, r.path, r.data, &r.acl, r.flags, -1)
            }
            MultiOp::Create2(r) => {
                self.create(CreateKind::Create2, r.path, r.data, &r.acl, r.flags, -1)
            }
            MultiOp::CreateContainer(r) => {
                self.create(CreateKind::Container, r.path, r.data, &r.acl, r.flags, -1)
            }
            MultiOp::CreateTtl(r) => {
                self.create(CreateKind::Ttl, r.path, r.data, &r.acl, r.flags, r.ttl)
            }
            MultiOp::Delete(r) => self.delete(r.path, r.version),
            MultiOp::SetData(r) => self.set_data(r.path, r.data, r.version),
            MultiOp::Check(r) => self.check(&r.path, r.version),
            _ => Err(ErrorCode::MarshallingError),
        }
    }
}

/// A reconfig's txn, once the leader checked the request and built the new
/// configuration's text `config` (`server.N=...` lines, then `version=`):
/// WRITE on `/zookeeper/config` is checked (unless skipACL, or the super
/// user), and the node takes the text with data version -1, as ZooKeeper's
/// `PrepRequestProcessor` records it (its apply sets that version).
pub fn prepare_reconfig(
    tree: &Tree,
    pending: &mut PendingChanges,
    ctx: &RequestContext<'_>,
    config: bytes::Bytes,
) -> Result<TxnBody, ErrorCode> {
    let mut p = Prep {
        tree,
        p: pending,
        ctx,
    };
    let path = "/zookeeper/config";
    let node = p.p.get_for_new_data(tree, path)?;
    p.acl_ok(&node.acl, perms::WRITE)?;
    p.put_data(path, node, Some(&config), -1);
    Ok(TxnBody::Reconfig(SetDataTxn {
        path: path.to_string(),
        data: Some(config),
        version: -1,
    }))
}

/// Validates a write request and builds its txn, recording its effects in
/// `pending` (see the module notes on failures and zxids).
///
/// Write requests: create, create2, createContainer, createTTL, delete,
/// deleteContainer, setData, setACL, check, multi, reconfig (fails:
/// RECONFIGDISABLED, or UNIMPLEMENTED when enabled), createSession,
/// closeSession (its txn lists the session's ephemerals, pending ones
/// included). Any other request is BADARGUMENTS; a multi containing read ops
/// is MARSHALLINGERROR, as ZooKeeper refuses to decode it.
pub fn prepare(
    tree: &Tree,
    pending: &mut PendingChanges,
    ctx: &RequestContext<'_>,
    req: Request,
) -> Result<TxnBody, ErrorCode> {
    let mut p = Prep {
        tree,
        p: pending,
        ctx,
    };
    match req {
        Request::Create(r) => p.create(CreateKind::Create, r.path, r.data, &r.acl, r.flags, -1),
        Request::Create2(r) => p.create(CreateKind::Create2, r.path, r.data, &r.acl, r.flags, -1),
        Request::CreateContainer(r) => {
            p.create(CreateKind::Container, r.path, r.data, &r.acl, r.flags, -1)
        }
        Request::CreateTtl(r) => p.create(CreateKind::Ttl, r.path, r.data, &r.acl, r.flags, r.ttl),
        Request::Delete(r) => p.delete(r.path, r.version),
        Request::DeleteContainer(path) => p.delete_container(&path),
        Request::SetData(r) => p.set_data(r.path, r.data, r.version),
        Request::SetAcl(r) => p.set_acl(&r.path, &r.acl, r.version),
        // A check outside a multi has no txn: ZooKeeper 3.8.0 logged a
        // CheckVersionTxn for it that no server can read back (its followers'
        // deserializeTxn refuses the type, and so does its own restart:
        // ZOOKEEPER-2623); later releases refuse the request. It reaches
        // here only from a learner (the client port refuses it), and takes
        // an error txn any learner reads.
        Request::Check(_) => Err(ErrorCode::Unimplemented),
        Request::Reconfig(_) => Err(if tree.config.reconfig_enabled {
            ErrorCode::Unimplemented
        } else {
            ErrorCode::ReconfigDisabled
        }),
        Request::CreateSession(t) => Ok(TxnBody::CreateSession(t)),
        Request::CloseSession => p.close_session(),
        Request::Multi(ops) => {
            if ops.iter().any(|o| o.is_read()) {
                return Err(ErrorCode::MarshallingError);
            }
            p.p.begin();
            let mut txns = Vec::with_capacity(ops.len());
            let mut failed = false;
            for op in ops {
                if failed {
                    txns.push(TxnBody::Error(ErrorTxn {
                        err: ErrorCode::RuntimeInconsistency.code(),
                    }));
                    continue;
                }
                match p.op(op) {
                    Ok(t) => txns.push(t),
                    Err(e) => {
                        failed = true;
                        p.p.rollback();
                        txns.push(TxnBody::Error(ErrorTxn { err: e.code() }));
                    }
                }
            }
            p.p.end();
            Ok(TxnBody::Multi(txns))
        }
        _ => Err(ErrorCode::BadArguments),
    }
}
