//! The in-memory znode tree of a ZooKeeper-compatible server: ZooKeeper's
//! data model (stats, ACLs, ephemerals, sequential, container and TTL nodes,
//! the `/zookeeper` system nodes), exact to Apache ZooKeeper 3.8's
//! `DataTree`, `PrepRequestProcessor` and `WatchManager`.
//!
//! * [`Tree`]: the shared tree. One applier thread calls [`Tree::apply`] in
//!   zxid order; any number of network threads read (`get_data`, `exists`,
//!   `get_children`, ...), registering watches atomically with the read. A
//!   multi applies under one write lock, so no reader sees half of it.
//! * [`prepare`] with a [`PendingChanges`] overlay: the prep thread's
//!   validation (path syntax, parent, ephemeral parent, versions, ACLs) and
//!   txn building, seeing the effects of txns prepared but not yet applied
//!   (ZooKeeper's "outstanding changes").
//! * Watches: one-shot data / exist / child watches and 3.6 persistent and
//!   persistent-recursive watches; [`Tree::apply`] returns the events to send.
//! * Snapshots: [`Tree::write_snapshot`] (fuzzy, in short read-locked chunks)
//!   and [`Tree::read_snapshot`]; replaying the log from the snapshot's zxid
//!   makes it exact.
//! * The tree digest of ZooKeeper 3.6+ ([`Tree::digest`]), kept incrementally.
//!
//! ```
//! use zk_jute::{CreateRequest, Request, TxnHeader, perms, Acl, Id};
//! use zk_tree::{Auth, PendingChanges, RequestContext, Tree, TreeConfig, prepare};
//!
//! let tree = Tree::new(TreeConfig::default());
//! let mut pending = PendingChanges::new();
//! let req = Request::Create(CreateRequest {
//!     path: "/app".into(),
//!     data: Some(b"hi".to_vec().into()),
//!     acl: zk_tree::open_acl_unsafe(),
//!     flags: 0,
//! });
//! let ctx = RequestContext { session_id: 1, auth: Auth::default(), zxid: 1, time_ms: 1000 };
//! let txn = prepare(&tree, &mut pending, &ctx, req).unwrap();
//! let hdr = TxnHeader { client_id: 1, cxid: 1, zxid: 1, time: 1000, txn_type: txn.txn_type().code() };
//! let out = tree.apply(&hdr, &txn);
//! pending.applied(1);
//! assert_eq!(out.path.as_deref(), Some("/app"));
//! let (data, stat) = tree.get_data("/app", &Auth::default(), None).unwrap();
//! assert_eq!(data.as_deref(), Some(&b"hi"[..]));
//! assert_eq!(stat.czxid, 1);
//! ```

#![forbid(unsafe_code)]

mod acl;
mod apache_snap;
mod arena;
mod digest;
mod ns_stats;
mod path;
mod prep;
mod quota;
mod snapshot;
mod store;
mod tree;
mod watch;

use zk_jute::{ErrorCode, MultiResult, OpCode, Stat};

pub use acl::{
    Auth, check_acl, digest_id, fixup_acl, ip_matches, open_acl_unsafe, read_acl_unsafe,
};
pub use apache_snap::{APACHE_MAX_LEN, ApacheSnap, ApacheSnapError};
pub use digest::DIGEST_VERSION;
pub use ns_stats::{MAX_NAMESPACES, NamespaceStat};
pub use path::validate_path;
pub use prep::{PendingChanges, RequestContext, prepare, prepare_reconfig};
pub use snapshot::{SNAP_BODY_MAGIC, SnapshotError};
pub use store::{
    CONTAINER_EPHEMERAL_OWNER, DIGEST_LOG_INTERVAL, DIGEST_LOG_LIMIT, EphemeralType, MAX_TTL,
    OwnerTypes, ttl_owner,
};
pub use tree::{Tree, WatchKind, WatchSummary};

/// An opaque watcher id chosen by the server (e.g. the session id, or a
/// connection id). Events are addressed to it.
pub type WatcherId = u64;

/// Tree settings; the default is ZooKeeper's defaults (everything off).
#[derive(Debug, Clone, Default)]
pub struct TreeConfig {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes. Off by default, when
    /// createTTL fails with UNIMPLEMENTED and 0xff.. owners are sessions.
    pub extended_types: bool,
    /// `skipACL`: every ACL check passes.
    pub skip_acl: bool,
    /// Whether `exists` checks READ on nodes that exist (ZooKeeper 3.8.4+,
    /// 3.9.2+). Default false, as the oracle installed here (Debian's
    /// 3.8.0-11+deb12u2, checked in its bytecode: exists goes straight to
    /// statNode; it does carry the backported watch-event ACL filter, see
    /// [`ApplyOutcome::deliverable`]). Set true to behave as 3.8.4+.
    pub exists_checks_read: bool,
    /// Auth schemes accepted in ACLs besides world, auth, digest and ip
    /// (e.g. `x509`, `sasl`); their ids match by equality.
    pub extra_auth_schemes: Vec<String>,
    /// `znode.container.maxNeverUsedIntervalMs`: an empty container that never
    /// had a child is a deletion candidate after this long (0 = never).
    pub container_max_never_used_ms: i64,
    /// `reconfigEnabled`: when false reconfig fails with RECONFIGDISABLED,
    /// otherwise UNIMPLEMENTED (dynamic reconfig is not built).
    pub reconfig_enabled: bool,
    /// `zookeeper.emulate353TTLNodes` (with `extended_types`): TTL nodes
    /// written by ZooKeeper 3.5.3 (owner `0x80..|ttl`) are TTL nodes, not
    /// ephemerals of a dead session (see [`OwnerTypes`]).
    pub emulate_353_ttl: bool,
    /// `zookeeper.enforceQuota`: a create or setData that would take a
    /// quota's usage past its hard limit (`countHardLimit`,
    /// `byteHardLimit`) fails with QUOTAEXCEEDED.
    pub enforce_quota: bool,
}

/// The result of one op of an applied txn (ZooKeeper's `ProcessTxnResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutcome {
    /// The op's txn type ([`OpCode::Error`] for a failed or rolled-back op).
    pub txn_type: OpCode,
    /// Its result code.
    pub err: ErrorCode,
    /// The path it acted on (the created path for creates).
    pub path: Option<String>,
    /// The node's stat after the op (creates, setData, setACL).
    pub stat: Option<Stat>,
}

/// What applying a txn did: the reply material and the watch events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The txn's zxid.
    pub zxid: i64,
    /// The txn type.
    pub txn_type: OpCode,
    /// The result: OK, the error of an error txn, the first failing op's code
    /// for a multi, or NONODE / NODEEXISTS met while replaying.
    pub err: ErrorCode,
    /// The path acted on (the created path, with its sequence suffix).
    pub path: Option<String>,
    /// The stat after the op (create2/container/TTL, setData, setACL; create
    /// too, though its reply carries only the path).
    pub stat: Option<Stat>,
    /// Per-op results of a multi, in order.
    pub multi: Vec<OpOutcome>,
    /// Watch events to send, in order. A watcher receives an event at most
    /// once per trigger, as ZooKeeper.
    pub events: Vec<Event>,
    /// How many watchers each trigger that found any fired, with its event
    /// type (Apache's `node_*_watch_count` summaries; watchers a delete's
    /// child trigger skips because its data trigger fired them count too).
    pub watch_counts: Vec<(zk_jute::EventType, usize)>,
}

/// A watch event to send: to which watcher, what, and the ACL of the node
/// it is about (the parent's for NodeChildrenChanged) when it fired.
/// ZooKeeper 3.8.4+ delivers an event only to a connection whose ids pass
/// READ on that ACL (the watch is consumed either way): see
/// [`ApplyOutcome::deliverable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The watcher (the server's connection id).
    pub watcher: WatcherId,
    /// The notification.
    pub event: zk_jute::WatcherEvent,
    /// The node's ACL when the event fired.
    pub acl: std::sync::Arc<[zk_jute::Acl]>,
}

/// An event is the (watcher, notification) pair, whatever its ACL.
impl PartialEq<(WatcherId, zk_jute::WatcherEvent)> for Event {
    fn eq(&self, other: &(WatcherId, zk_jute::WatcherEvent)) -> bool {
        self.watcher == other.0 && self.event == other.1
    }
}

impl Default for ApplyOutcome {
    fn default() -> Self {
        ApplyOutcome {
            zxid: 0,
            txn_type: OpCode::Error,
            err: ErrorCode::Ok,
            path: None,
            stat: None,
            multi: Vec::new(),
            events: Vec::new(),
            watch_counts: Vec::new(),
        }
    }
}

impl ApplyOutcome {
    /// Whether event `i` of [`ApplyOutcome::events`] may be delivered to a
    /// connection authenticated as `auth` (READ on the node's ACL, as
    /// `NIOServerCnxn.process` since 3.8.4; skip the check to behave as
    /// earlier releases).
    pub fn deliverable(&self, i: usize, auth: &Auth<'_>) -> bool {
        self.events
            .get(i)
            .is_none_or(|e| check_acl(&e.acl, zk_jute::perms::READ, auth).is_ok())
    }

    /// The multi reply's results, as FinalRequestProcessor builds them:
    /// every op of a failed multi is an error result (OK for ops before the
    /// failing one, its code, RUNTIMEINCONSISTENCY after).
    pub fn multi_results(&self) -> Vec<MultiResult> {
        self.multi
            .iter()
            .map(|op| {
                if op.err != ErrorCode::Ok || op.txn_type == OpCode::Error {
                    return MultiResult::Error(zk_jute::ErrorResponse { err: op.err.code() });
                }
                let path = op.path.clone().unwrap_or_default();
                match op.txn_type {
                    OpCode::Create => MultiResult::Create(zk_jute::CreateResponse { path }),
                    OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                        MultiResult::Create2(zk_jute::Create2Response {
                            path,
                            stat: op.stat.unwrap_or_default(),
                        })
                    }
                    OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
                    OpCode::SetData => MultiResult::SetData(zk_jute::SetDataResponse {
                        stat: op.stat.unwrap_or_default(),
                    }),
                    OpCode::Check => MultiResult::Check,
                    _ => MultiResult::Error(zk_jute::ErrorResponse {
                        err: ErrorCode::RuntimeInconsistency.code(),
                    }),
                }
            })
            .collect()
    }
}
