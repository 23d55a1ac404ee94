//! ZooKeeper's numeric codes as Rust types, with ZooKeeper's exact numbers.
//!
//! Every enum converts from its wire `i32` with `TryFrom`, failing with
//! [`DecodeError::UnknownValue`] for a number ZooKeeper does not define.

use crate::DecodeError;

/// Defines a fieldless enum with explicit wire numbers, its `TryFrom<i32>`,
/// `code()` and a `name()` as ZooKeeper spells it.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every defined value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// The wire number.
            pub const fn code(self) -> i32 {
                self as i32
            }

            /// The name ZooKeeper uses for this value.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = DecodeError;
            fn try_from(v: i32) -> Result<Self, DecodeError> {
                match v {
                    $( x if x == $value => Ok($name::$variant), )+
                    other => Err(DecodeError::UnknownValue { what: $what, value: i64::from(other) }),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.code()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

code_enum! {
    /// Request and txn types (`ZooDefs.OpCode`).
    pub enum OpCode: "opcode" {
        /// A watch notification (xid -1); never sent by a client.
        Notification = 0 => "notification",
        /// create
        Create = 1 => "create",
        /// delete
        Delete = 2 => "delete",
        /// exists
        Exists = 3 => "exists",
        /// getData
        GetData = 4 => "getData",
        /// setData
        SetData = 5 => "setData",
        /// getACL
        GetAcl = 6 => "getACL",
        /// setACL
        SetAcl = 7 => "setACL",
        /// getChildren
        GetChildren = 8 => "getChildren",
        /// sync
        Sync = 9 => "sync",
        /// ping
        Ping = 11 => "ping",
        /// getChildren2
        GetChildren2 = 12 => "getChildren2",
        /// check (version check, only inside multi)
        Check = 13 => "check",
        /// multi
        Multi = 14 => "multi",
        /// create2
        Create2 = 15 => "create2",
        /// reconfig
        Reconfig = 16 => "reconfig",
        /// checkWatches
        CheckWatches = 17 => "checkWatches",
        /// removeWatches
        RemoveWatches = 18 => "removeWatches",
        /// createContainer
        CreateContainer = 19 => "createContainer",
        /// deleteContainer (server-internal)
        DeleteContainer = 20 => "deleteContainer",
        /// createTTL
        CreateTtl = 21 => "createTTL",
        /// multiRead
        MultiRead = 22 => "multiRead",
        /// auth
        Auth = 100 => "auth",
        /// setWatches
        SetWatches = 101 => "setWatches",
        /// sasl
        Sasl = 102 => "sasl",
        /// getEphemerals
        GetEphemerals = 103 => "getEphemerals",
        /// getAllChildrenNumber
        GetAllChildrenNumber = 104 => "getAllChildrenNumber",
        /// setWatches2
        SetWatches2 = 105 => "setWatches2",
        /// addWatch
        AddWatch = 106 => "addWatch",
        /// whoAmI
        WhoAmI = 107 => "whoAmI",
        /// createSession (txn type)
        CreateSession = -10 => "createSession",
        /// closeSession
        CloseSession = -11 => "closeSession",
        /// error (txn type)
        Error = -1 => "error",
    }
}

code_enum! {
    /// Result codes (`KeeperException.Code`).
    pub enum ErrorCode: "error code" {
        /// Everything is OK.
        Ok = 0 => "OK",
        /// A system error.
        SystemError = -1 => "SYSTEMERROR",
        /// A runtime inconsistency (also the result of the untried ops of a failed multi).
        RuntimeInconsistency = -2 => "RUNTIMEINCONSISTENCY",
        /// A data inconsistency.
        DataInconsistency = -3 => "DATAINCONSISTENCY",
        /// Connection to the server has been lost.
        ConnectionLoss = -4 => "CONNECTIONLOSS",
        /// Error while marshalling or unmarshalling data.
        MarshallingError = -5 => "MARSHALLINGERROR",
        /// Operation is unimplemented.
        Unimplemented = -6 => "UNIMPLEMENTED",
        /// Operation timeout.
        OperationTimeout = -7 => "OPERATIONTIMEOUT",
        /// Invalid arguments.
        BadArguments = -8 => "BADARGUMENTS",
        /// Unknown session (internal).
        UnknownSession = -12 => "UNKNOWNSESSION",
        /// No quorum of new config is connected.
        NewConfigNoQuorum = -13 => "NEWCONFIGNOQUORUM",
        /// Another reconfiguration is in progress.
        ReconfigInProgress = -14 => "RECONFIGINPROGRESS",
        /// API errors (marker).
        ApiError = -100 => "APIERROR",
        /// Node does not exist.
        NoNode = -101 => "NONODE",
        /// Not authenticated.
        NoAuth = -102 => "NOAUTH",
        /// Version conflict.
        BadVersion = -103 => "BADVERSION",
        /// Ephemeral nodes may not have children.
        NoChildrenForEphemerals = -108 => "NOCHILDRENFOREPHEMERALS",
        /// The node already exists.
        NodeExists = -110 => "NODEEXISTS",
        /// The node has children.
        NotEmpty = -111 => "NOTEMPTY",
        /// The session has been expired by the server.
        SessionExpired = -112 => "SESSIONEXPIRED",
        /// Invalid callback specified.
        InvalidCallback = -113 => "INVALIDCALLBACK",
        /// Invalid ACL specified.
        InvalidAcl = -114 => "INVALIDACL",
        /// Client authentication failed.
        AuthFailed = -115 => "AUTHFAILED",
        /// Session moved to another server.
        SessionMoved = -118 => "SESSIONMOVED",
        /// State-changing request passed to a read-only server.
        NotReadOnly = -119 => "NOTREADONLY",
        /// Attempt to create an ephemeral node on a local session.
        EphemeralOnLocalSession = -120 => "EPHEMERALONLOCALSESSION",
        /// Attempt to remove a watcher that does not exist.
        NoWatcher = -121 => "NOWATCHER",
        /// Request not completed within the maximum allowed time.
        RequestTimeout = -122 => "REQUESTTIMEOUT",
        /// Attempt to reconfigure while reconfiguration is disabled.
        ReconfigDisabled = -123 => "RECONFIGDISABLED",
        /// The session was closed because it requires SASL authentication.
        SessionClosedRequireSaslAuth = -124 => "SESSIONCLOSEDREQUIRESASLAUTH",
        /// A hard quota was exceeded.
        QuotaExceeded = -125 => "QUOTAEXCEEDED",
        /// The operation was throttled.
        ThrottledOp = -127 => "THROTTLEDOP",
    }
}

code_enum! {
    /// Node creation modes (`CreateMode`), the `flags` of a create request.
    pub enum CreateMode: "create mode" {
        /// Persistent.
        Persistent = 0 => "PERSISTENT",
        /// Ephemeral, deleted with its session.
        Ephemeral = 1 => "EPHEMERAL",
        /// Persistent with a sequence suffix.
        PersistentSequential = 2 => "PERSISTENT_SEQUENTIAL",
        /// Ephemeral with a sequence suffix.
        EphemeralSequential = 3 => "EPHEMERAL_SEQUENTIAL",
        /// A container, removed once empty after it had a child.
        Container = 4 => "CONTAINER",
        /// Persistent with a time to live.
        PersistentWithTtl = 5 => "PERSISTENT_WITH_TTL",
        /// Persistent sequential with a time to live.
        PersistentSequentialWithTtl = 6 => "PERSISTENT_SEQUENTIAL_WITH_TTL",
    }
}

impl CreateMode {
    /// Whether the node is owned by a session.
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the name gets a `%010d` sequence suffix.
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node is a container.
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }

    /// Whether the node has a time to live.
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

code_enum! {
    /// Watch event types (`Watcher.Event.EventType`).
    pub enum EventType: "event type" {
        /// No node event (connection state change).
        None = -1 => "None",
        /// A node was created.
        NodeCreated = 1 => "NodeCreated",
        /// A node was deleted.
        NodeDeleted = 2 => "NodeDeleted",
        /// A node's data changed.
        NodeDataChanged = 3 => "NodeDataChanged",
        /// A node's children changed.
        NodeChildrenChanged = 4 => "NodeChildrenChanged",
        /// A data watch was removed.
        DataWatchRemoved = 5 => "DataWatchRemoved",
        /// A child watch was removed.
        ChildWatchRemoved = 6 => "ChildWatchRemoved",
        /// A persistent watch was removed.
        PersistentWatchRemoved = 7 => "PersistentWatchRemoved",
    }
}

code_enum! {
    /// Client connection states (`Watcher.Event.KeeperState`).
    pub enum KeeperState: "keeper state" {
        /// Unknown (deprecated).
        Unknown = -1 => "Unknown",
        /// Disconnected.
        Disconnected = 0 => "Disconnected",
        /// No sync connected (deprecated).
        NoSyncConnected = 1 => "NoSyncConnected",
        /// Connected.
        SyncConnected = 3 => "SyncConnected",
        /// Authentication failed.
        AuthFailed = 4 => "AuthFailed",
        /// Connected to a read-only server.
        ConnectedReadOnly = 5 => "ConnectedReadOnly",
        /// SASL authenticated.
        SaslAuthenticated = 6 => "SaslAuthenticated",
        /// The session expired.
        Expired = -112 => "Expired",
        /// The client closed the session.
        Closed = 7 => "Closed",
    }
}

code_enum! {
    /// Watcher kinds for checkWatches / removeWatches (`Watcher.WatcherType`).
    pub enum WatcherType: "watcher type" {
        /// Child watches.
        Children = 1 => "Children",
        /// Data (and exist) watches.
        Data = 2 => "Data",
        /// Any watch.
        Any = 3 => "Any",
        /// Persistent watches.
        Persistent = 4 => "Persistent",
        /// Persistent recursive watches.
        PersistentRecursive = 5 => "PersistentRecursive",
    }
}

code_enum! {
    /// The `mode` of an addWatch request (`AddWatchMode`).
    pub enum AddWatchMode: "add watch mode" {
        /// A persistent watch on one node.
        Persistent = 0 => "PERSISTENT",
        /// A persistent watch on a node and all its descendants.
        PersistentRecursive = 1 => "PERSISTENT_RECURSIVE",
    }
}

/// ACL permission bits (`ZooDefs.Perms`).
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set the ACL.
    pub const ADMIN: i32 = 16;
    /// All of the above.
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// Reserved xids (`ClientCnxn`).
pub mod xid {
    /// A watch notification from the server.
    pub const NOTIFICATION: i32 = -1;
    /// A ping.
    pub const PING: i32 = -2;
    /// An auth packet.
    pub const AUTH: i32 = -4;
    /// setWatches after a reconnect.
    pub const SET_WATCHES: i32 = -8;
}

/// Quorum packet types (`Leader`'s constants), the `packet_type` of a
/// [`crate::QuorumPacket`].
pub mod quorum_packet {
    /// A request forwarded by a learner.
    pub const REQUEST: i32 = 1;
    /// A proposal from the leader.
    pub const PROPOSAL: i32 = 2;
    /// An acknowledgement of a proposal.
    pub const ACK: i32 = 3;
    /// A commit.
    pub const COMMIT: i32 = 4;
    /// A ping.
    pub const PING: i32 = 5;
    /// Session revalidation.
    pub const REVALIDATE: i32 = 6;
    /// A sync request.
    pub const SYNC: i32 = 7;
    /// An inform (for observers).
    pub const INFORM: i32 = 8;
    /// Commit and activate a new config.
    pub const COMMITANDACTIVATE: i32 = 9;
    /// The new leader's announcement.
    pub const NEWLEADER: i32 = 10;
    /// A follower's info.
    pub const FOLLOWERINFO: i32 = 11;
    /// The learner is up to date.
    pub const UPTODATE: i32 = 12;
    /// Sync by diff.
    pub const DIFF: i32 = 13;
    /// Sync by truncation.
    pub const TRUNC: i32 = 14;
    /// Sync by snapshot.
    pub const SNAP: i32 = 15;
    /// An observer's info.
    pub const OBSERVERINFO: i32 = 16;
    /// The leader's info.
    pub const LEADERINFO: i32 = 17;
    /// Acknowledgement of the new epoch.
    pub const ACKEPOCH: i32 = 18;
    /// Inform and activate (for observers).
    pub const INFORMANDACTIVATE: i32 = 19;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_unknowns_fail() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::try_from(op.code()), Ok(*op));
        }
        for e in ErrorCode::ALL {
            assert_eq!(ErrorCode::try_from(e.code()), Ok(*e));
        }
        assert!(OpCode::try_from(10).is_err());
        assert!(OpCode::try_from(i32::MIN).is_err());
        assert!(ErrorCode::try_from(-126).is_err());
        assert!(CreateMode::try_from(7).is_err());
        assert_eq!(ErrorCode::NoNode.code(), -101);
        assert_eq!(OpCode::WhoAmI.code(), 107);
        assert_eq!(perms::ALL, 31);
    }
}
