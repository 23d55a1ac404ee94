//! Every record of Apache ZooKeeper's `zookeeper.jute` that a server needs, each
//! defined once with [`jute_record!`]. Field order is the wire order.
//!
//! Conventions: jute `ustring` is `String`, except reconfig's, which ZooKeeper
//! reads as null when not given (`Option<String>`); jute `buffer` is `Bytes`,
//! except znode data and other payloads where ZooKeeper keeps null (-1) apart
//! from empty, which are `Option<Bytes>`; `vector<T>` is `Vec<T>`. Fields
//! named `type` in jute get a descriptive name (`op_type`, `event_type`, ...).

use bytes::Bytes;

use crate::codec::jute_record;

// ---- org.apache.zookeeper.data ----

jute_record! {
    /// An authenticated identity or an ACL subject: `scheme:id`.
    pub struct Id {
        /// The scheme (`world`, `auth`, `digest`, `ip`, `x509`, `sasl`, `super`).
        pub scheme: String,
        /// The id within the scheme (`anyone`, `user:hash`, `10.0.0.0/8`).
        pub id: String,
    }
}

jute_record! {
    /// One access control entry.
    pub struct Acl {
        /// Permission bits ([`crate::perms`]).
        pub perms: i32,
        /// Who they are granted to.
        pub id: Id,
    }
}

jute_record! {
    /// A znode's metadata as clients see it.
    #[derive(Copy)]
    pub struct Stat {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last data change.
        pub mzxid: i64,
        /// Creation time, ms since the epoch.
        pub ctime: i64,
        /// Last modification time, ms since the epoch.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child list version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session of an ephemeral; container and TTL markers otherwise; 0 if none.
        pub ephemeral_owner: i64,
        /// Length of the data.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the last change to the child list.
        pub pzxid: i64,
    }
}

jute_record! {
    /// The metadata ZooKeeper stores per znode in a snapshot.
    #[derive(Copy)]
    pub struct StatPersisted {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last data change.
        pub mzxid: i64,
        /// Creation time, ms since the epoch.
        pub ctime: i64,
        /// Last modification time, ms since the epoch.
        pub mtime: i64,
        /// Data version.
        pub version: i32,
        /// Child list version.
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session, container or TTL marker; 0 if none.
        pub ephemeral_owner: i64,
        /// zxid of the last change to the child list.
        pub pzxid: i64,
    }
}

// ---- org.apache.zookeeper.proto ----

jute_record! {
    /// Watches to re-register after a reconnect (opcode 101).
    pub struct SetWatches {
        /// The last zxid the client saw: watches fire for changes after it.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// Watches to re-register after a reconnect, with persistent watches (opcode 105).
    pub struct SetWatches2 {
        /// The last zxid the client saw.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// The header of every request after the handshake.
    #[derive(Copy)]
    pub struct RequestHeader {
        /// Client transaction id (or a reserved xid, [`crate::xid`]).
        pub xid: i32,
        /// The opcode ([`crate::OpCode`]).
        pub op_type: i32,
    }
}

jute_record! {
    /// The header before each op of a multi request or result.
    #[derive(Copy)]
    pub struct MultiHeader {
        /// The op's opcode, -1 for an error result or the end marker.
        pub op_type: i32,
        /// True only on the end marker.
        pub done: bool,
        /// The op's error code (results), -1 in requests and the end marker.
        pub err: i32,
    }
}

jute_record! {
    /// An authentication request (opcode 100, xid -4).
    pub struct AuthPacket {
        /// Unused by ZooKeeper (0).
        pub auth_type: i32,
        /// The scheme, e.g. `digest`.
        pub scheme: String,
        /// The credentials, e.g. `user:password`.
        pub auth: Bytes,
    }
}

jute_record! {
    /// The header of every reply after the handshake.
    #[derive(Copy)]
    pub struct ReplyHeader {
        /// The request's xid (or -1 for a notification, -2 for a ping reply).
        pub xid: i32,
        /// The server's last processed zxid when it replied.
        pub zxid: i64,
        /// The error code ([`crate::ErrorCode`]).
        pub err: i32,
    }
}

jute_record! {
    /// getData (opcode 4).
    pub struct GetDataRequest {
        /// The node.
        pub path: String,
        /// Whether to leave a data watch.
        pub watch: bool,
    }
}

jute_record! {
    /// setData (opcode 5).
    pub struct SetDataRequest {
        /// The node.
        pub path: String,
        /// The new data (null is kept apart from empty).
        pub data: Option<Bytes>,
        /// Expected data version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// reconfig (opcode 16). A member list not given is null, not empty: a
    /// leader takes a request with `new_members` (even empty) as a
    /// non-incremental reconfig.
    pub struct ReconfigRequest {
        /// Servers to add (incremental mode).
        pub joining_servers: Option<String>,
        /// Server ids to remove (incremental mode).
        pub leaving_servers: Option<String>,
        /// The whole new membership (non-incremental mode).
        pub new_members: Option<String>,
        /// Expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// Reply to setData.
    pub struct SetDataResponse {
        /// The node's stat after the change.
        pub stat: Stat,
    }
}

jute_record! {
    /// A SASL token from the client (opcode 102).
    pub struct GetSaslRequest {
        /// The token.
        pub token: Bytes,
    }
}

jute_record! {
    /// A SASL token (server-side record).
    pub struct SetSaslRequest {
        /// The token.
        pub token: Bytes,
    }
}

jute_record! {
    /// Reply to a SASL request.
    pub struct SetSaslResponse {
        /// The token.
        pub token: Bytes,
    }
}

jute_record! {
    /// create, create2 and createContainer (opcodes 1, 15, 19).
    pub struct CreateRequest {
        /// The node to create (the prefix, for sequential nodes).
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The [`crate::CreateMode`].
        pub flags: i32,
    }
}

jute_record! {
    /// createTTL (opcode 21).
    pub struct CreateTtlRequest {
        /// The node to create.
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The [`crate::CreateMode`] (a TTL mode).
        pub flags: i32,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

jute_record! {
    /// delete (opcode 2).
    pub struct DeleteRequest {
        /// The node.
        pub path: String,
        /// Expected data version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// getChildren (opcode 8).
    pub struct GetChildrenRequest {
        /// The node.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// getAllChildrenNumber (opcode 104).
    pub struct GetAllChildrenNumberRequest {
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// getChildren2 (opcode 12).
    pub struct GetChildren2Request {
        /// The node.
        pub path: String,
        /// Whether to leave a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// check (opcode 13).
    pub struct CheckVersionRequest {
        /// The node.
        pub path: String,
        /// Expected data version.
        pub version: i32,
    }
}

jute_record! {
    /// sync (opcode 9).
    pub struct SyncRequest {
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// Reply to sync.
    pub struct SyncResponse {
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// getACL (opcode 6).
    pub struct GetAclRequest {
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// setACL (opcode 7).
    pub struct SetAclRequest {
        /// The node.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply to setACL.
    pub struct SetAclResponse {
        /// The node's stat after the change.
        pub stat: Stat,
    }
}

jute_record! {
    /// addWatch (opcode 106).
    pub struct AddWatchRequest {
        /// The node.
        pub path: String,
        /// The [`crate::AddWatchMode`].
        pub mode: i32,
    }
}

jute_record! {
    /// A watch notification (reply xid -1).
    pub struct WatcherEvent {
        /// The [`crate::EventType`].
        pub event_type: i32,
        /// The [`crate::KeeperState`].
        pub state: i32,
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// The result of a failed op inside a multi.
    #[derive(Copy)]
    pub struct ErrorResponse {
        /// The error code.
        pub err: i32,
    }
}

jute_record! {
    /// Reply to create.
    pub struct CreateResponse {
        /// The created node's path (with its sequence suffix).
        pub path: String,
    }
}

jute_record! {
    /// Reply to create2, createContainer and createTTL.
    pub struct Create2Response {
        /// The created node's path.
        pub path: String,
        /// Its stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// exists (opcode 3).
    pub struct ExistsRequest {
        /// The node.
        pub path: String,
        /// Whether to leave a watch (exist watch if absent, data watch if present).
        pub watch: bool,
    }
}

jute_record! {
    /// Reply to exists.
    pub struct ExistsResponse {
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Reply to getData (and to reconfig).
    pub struct GetDataResponse {
        /// The data (null when the node was created with null data).
        pub data: Option<Bytes>,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Reply to getChildren.
    pub struct GetChildrenResponse {
        /// Child names (not paths).
        pub children: Vec<String>,
    }
}

jute_record! {
    /// Reply to getAllChildrenNumber.
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

jute_record! {
    /// Reply to getChildren2.
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Reply to getACL.
    pub struct GetAclResponse {
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// checkWatches (opcode 17).
    pub struct CheckWatchesRequest {
        /// The node.
        pub path: String,
        /// The [`crate::WatcherType`].
        pub watcher_type: i32,
    }
}

jute_record! {
    /// removeWatches (opcode 18).
    pub struct RemoveWatchesRequest {
        /// The node.
        pub path: String,
        /// The [`crate::WatcherType`].
        pub watcher_type: i32,
    }
}

jute_record! {
    /// getEphemerals (opcode 103).
    pub struct GetEphemeralsRequest {
        /// Only ephemerals under this prefix (`/` for all).
        pub prefix_path: String,
    }
}

jute_record! {
    /// Reply to getEphemerals.
    pub struct GetEphemeralsResponse {
        /// Paths of the session's ephemerals.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// One authenticated identity of a session (whoAmI).
    pub struct ClientInfo {
        /// The scheme.
        pub auth_scheme: String,
        /// The user within it.
        pub user: String,
    }
}

jute_record! {
    /// Reply to whoAmI (opcode 107).
    pub struct WhoAmIResponse {
        /// The session's identities.
        pub client_info: Vec<ClientInfo>,
    }
}

// ---- org.apache.zookeeper.server.quorum ----

jute_record! {
    /// What a learner tells the leader about itself (FOLLOWERINFO / OBSERVERINFO data).
    #[derive(Copy)]
    pub struct LearnerInfo {
        /// The learner's server id (myid).
        pub server_id: i64,
        /// Protocol version (0x10000).
        pub protocol_version: i32,
        /// Version of the config the learner has.
        pub config_version: i64,
    }
}

jute_record! {
    /// The unit of leader-learner traffic.
    pub struct QuorumPacket {
        /// The packet type ([`crate::quorum_packet`]).
        pub packet_type: i32,
        /// The zxid it concerns.
        pub zxid: i64,
        /// Payload (a serialized txn for proposals).
        pub data: Option<Bytes>,
        /// Auth ids of the forwarded request's session.
        pub authinfo: Vec<Id>,
    }
}

jute_record! {
    /// Quorum SASL authentication packet.
    pub struct QuorumAuthPacket {
        /// Magic number.
        pub magic: i64,
        /// Status.
        pub status: i32,
        /// The SASL token.
        pub token: Bytes,
    }
}

// ---- org.apache.zookeeper.server.persistence ----

jute_record! {
    /// The header of ZooKeeper's log and snapshot files.
    #[derive(Copy)]
    pub struct FileHeader {
        /// `ZKLG` for logs, `ZKSN` for snapshots.
        pub magic: i32,
        /// Format version (2).
        pub version: i32,
        /// Database id (0).
        pub dbid: i64,
    }
}

// ---- org.apache.zookeeper.txn ----

jute_record! {
    /// The tree digest that follows a txn in the log (3.6+).
    #[derive(Copy)]
    pub struct TxnDigest {
        /// Digest version.
        pub version: i32,
        /// The tree digest after the txn.
        pub tree_digest: i64,
    }
}

jute_record! {
    /// The header of every txn.
    #[derive(Copy)]
    pub struct TxnHeader {
        /// The session that issued it.
        pub client_id: i64,
        /// The request's xid.
        pub cxid: i32,
        /// The txn's zxid.
        pub zxid: i64,
        /// Leader's wall-clock time, ms since the epoch.
        pub time: i64,
        /// The txn type ([`crate::OpCode`]).
        pub txn_type: i32,
    }
}

jute_record! {
    /// A create txn as written by ZooKeeper before 3.3 (no parent cversion).
    pub struct CreateTxnV0 {
        /// The node.
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// Whether it is ephemeral.
        pub ephemeral: bool,
    }
}

jute_record! {
    /// Create a persistent, ephemeral or sequential node.
    pub struct CreateTxn {
        /// The node (with its sequence suffix).
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// Whether it is ephemeral (owner is the txn's session).
        pub ephemeral: bool,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// Create a TTL node.
    pub struct CreateTtlTxn {
        /// The node.
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

jute_record! {
    /// Create a container node.
    pub struct CreateContainerTxn {
        /// The node.
        pub path: String,
        /// Its data.
        pub data: Option<Bytes>,
        /// Its ACL.
        pub acl: Vec<Acl>,
        /// The parent's cversion after this create.
        pub parent_c_version: i32,
    }
}

jute_record! {
    /// Delete a node.
    pub struct DeleteTxn {
        /// The node.
        pub path: String,
    }
}

jute_record! {
    /// Set a node's data.
    pub struct SetDataTxn {
        /// The node.
        pub path: String,
        /// The new data.
        pub data: Option<Bytes>,
        /// The new data version.
        pub version: i32,
    }
}

jute_record! {
    /// A version check inside a multi.
    pub struct CheckVersionTxn {
        /// The node.
        pub path: String,
        /// The version checked.
        pub version: i32,
    }
}

jute_record! {
    /// Set a node's ACL.
    pub struct SetAclTxn {
        /// The node.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// The new ACL version.
        pub version: i32,
    }
}

jute_record! {
    /// Create a session.
    #[derive(Copy)]
    pub struct CreateSessionTxn {
        /// The negotiated session timeout in ms.
        pub time_out: i32,
    }
}

jute_record! {
    /// Close a session (3.6+ lists the ephemerals it deletes).
    pub struct CloseSessionTxn {
        /// The ephemeral paths to delete.
        pub paths2_delete: Vec<String>,
    }
}

jute_record! {
    /// A failed request that still takes a zxid (a failed multi's op, for instance).
    #[derive(Copy)]
    pub struct ErrorTxn {
        /// The error code.
        pub err: i32,
    }
}

jute_record! {
    /// One op of a multi txn: its type and its serialized txn record.
    pub struct Txn {
        /// The op's txn type.
        pub txn_type: i32,
        /// The serialized txn record.
        pub data: Bytes,
    }
}

jute_record! {
    /// A multi txn.
    pub struct MultiTxn {
        /// The ops, in order.
        pub txns: Vec<Txn>,
    }
}
