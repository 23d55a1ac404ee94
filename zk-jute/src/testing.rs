//! Random generators for property tests (test builds only).

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

/// A proptest strategy for every jute type; records get theirs from `jute_record!`.
pub(crate) trait Arb: Sized + std::fmt::Debug {
    fn arb() -> BoxedStrategy<Self>;
}

impl Arb for i32 {
    fn arb() -> BoxedStrategy<Self> {
        prop_oneof![
            Just(0),
            Just(-1),
            Just(i32::MIN),
            Just(i32::MAX),
            any::<i32>()
        ]
        .boxed()
    }
}

impl Arb for i64 {
    fn arb() -> BoxedStrategy<Self> {
        prop_oneof![
            Just(0),
            Just(-1),
            Just(i64::MIN),
            Just(i64::MAX),
            any::<i64>()
        ]
        .boxed()
    }
}

impl Arb for bool {
    fn arb() -> BoxedStrategy<Self> {
        any::<bool>().boxed()
    }
}

impl Arb for String {
    fn arb() -> BoxedStrategy<Self> {
        prop_oneof![Just(String::new()), "/[a-z0-9/]{0,12}", any::<String>()].boxed()
    }
}

impl Arb for Bytes {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(Bytes::from)
            .boxed()
    }
}

impl Arb for Option<String> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::option::of(String::arb()).boxed()
    }
}

impl Arb for Option<Bytes> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::option::of(Bytes::arb()).boxed()
    }
}

impl<T: Arb + 'static> Arb for Vec<T> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(T::arb(), 0..4).boxed()
    }
}

/// Encodes, decodes from exactly those bytes, and compares.
pub(crate) fn assert_round_trip<T: crate::Jute + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = v.to_bytes();
    assert!(bytes.len() >= T::MIN_LEN, "shorter than MIN_LEN: {v:?}");
    let back = T::from_bytes(bytes.clone()).expect("decodes");
    assert_eq!(&back, v);
    // Every strict prefix fails cleanly (no panic); it must not decode to the same value.
    // ConnectResponse's trailing readOnly byte is optional and defaults to false,
    // so the prefix without it may legitimately decode to the same value.
    let optional_tail = usize::from(std::any::type_name::<T>().ends_with("::ConnectResponse"));
    for cut in 0..bytes.len() - optional_tail.min(bytes.len()) {
        if let Ok(short) = T::from_bytes(bytes.slice(..cut)) {
            assert_ne!(&short, v, "prefix of {cut} bytes decoded to the same value");
        }
    }
}

/// One property test per record: every record round-trips.
macro_rules! round_trip_tests {
    ($($name:ident),+ $(,)?) => {
        #[allow(non_snake_case)]
        mod round_trip {
            use super::{Arb, assert_round_trip};
            use crate::*;
            use proptest::prelude::*;
            $(
                proptest! {
                    #![proptest_config(ProptestConfig::with_cases(64))]
                    #[test]
                    fn $name(v in <$name as Arb>::arb()) {
                        assert_round_trip(&v);
                    }
                }
            )+
        }
    };
}

round_trip_tests!(
    Id,
    Acl,
    Stat,
    StatPersisted,
    ConnectRequest,
    ConnectResponse,
    SetWatches,
    SetWatches2,
    RequestHeader,
    MultiHeader,
    AuthPacket,
    ReplyHeader,
    GetDataRequest,
    SetDataRequest,
    ReconfigRequest,
    SetDataResponse,
    GetSaslRequest,
    SetSaslRequest,
    SetSaslResponse,
    CreateRequest,
    CreateTtlRequest,
    DeleteRequest,
    GetChildrenRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    CheckVersionRequest,
    SyncRequest,
    SyncResponse,
    GetAclRequest,
    SetAclRequest,
    SetAclResponse,
    AddWatchRequest,
    WatcherEvent,
    ErrorResponse,
    CreateResponse,
    Create2Response,
    ExistsRequest,
    ExistsResponse,
    GetDataResponse,
    GetChildrenResponse,
    GetAllChildrenNumberResponse,
    GetChildren2Response,
    GetAclResponse,
    CheckWatchesRequest,
    RemoveWatchesRequest,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    ClientInfo,
    WhoAmIResponse,
    LearnerInfo,
    QuorumPacket,
    QuorumAuthPacket,
    FileHeader,
    TxnDigest,
    TxnHeader,
    CreateTxnV0,
    CreateTxn,
    CreateTtlTxn,
    CreateContainerTxn,
    DeleteTxn,
    SetDataTxn,
    CheckVersionTxn,
    SetAclTxn,
    CreateSessionTxn,
    CloseSessionTxn,
    ErrorTxn,
    Txn,
    MultiTxn,
);

/// Regression: reconfig's member lists were `String`s, so a follower that
/// re-encodes a forwarded reconfig sent a list not given (null) as empty,
/// and a leader takes an empty `newMembers` as a non-incremental reconfig
/// to no members (BADARGUMENTS for zkCli's `reconfig -add`).
#[test]
fn a_reconfig_keeps_its_null_member_lists() {
    use crate::Jute;
    let r = crate::records::ReconfigRequest {
        joining_servers: Some("server.4=h:1:2;3".into()),
        leaving_servers: None,
        new_members: None,
        cur_config_id: -1,
    };
    let b = r.to_bytes();
    let after_joining = 4 + "server.4=h:1:2;3".len();
    assert_eq!(
        &b[after_joining..after_joining + 8],
        &[0xff; 8],
        "two nulls"
    );
    assert_round_trip(&r);
}
