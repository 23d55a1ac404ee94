//! Property tests for the opcode dispatch: every [`Request`], [`Response`] and
//! [`TxnBody`] variant round-trips through its encoder and decoder, and no
//! strict prefix of an encoding decodes to the same value.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

use super::*;
use crate::testing::Arb;

/// A write op of a multi.
fn write_op() -> BoxedStrategy<MultiOp> {
    Union::new(vec![
        CreateRequest::arb().prop_map(MultiOp::Create).boxed(),
        CreateRequest::arb().prop_map(MultiOp::Create2).boxed(),
        CreateRequest::arb()
            .prop_map(MultiOp::CreateContainer)
            .boxed(),
        CreateTtlRequest::arb().prop_map(MultiOp::CreateTtl).boxed(),
        DeleteRequest::arb().prop_map(MultiOp::Delete).boxed(),
        SetDataRequest::arb().prop_map(MultiOp::SetData).boxed(),
        CheckVersionRequest::arb().prop_map(MultiOp::Check).boxed(),
    ])
    .boxed()
}

/// A read op of a multiRead.
fn read_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        GetChildrenRequest::arb().prop_map(MultiOp::GetChildren),
        GetDataRequest::arb().prop_map(MultiOp::GetData),
    ]
    .boxed()
}

/// Every request variant; multis hold up to six ops.
pub(crate) fn request() -> BoxedStrategy<Request> {
    Union::new(vec![
        CreateRequest::arb().prop_map(Request::Create).boxed(),
        DeleteRequest::arb().prop_map(Request::Delete).boxed(),
        ExistsRequest::arb().prop_map(Request::Exists).boxed(),
        GetDataRequest::arb().prop_map(Request::GetData).boxed(),
        SetDataRequest::arb().prop_map(Request::SetData).boxed(),
        GetAclRequest::arb().prop_map(Request::GetAcl).boxed(),
        SetAclRequest::arb().prop_map(Request::SetAcl).boxed(),
        GetChildrenRequest::arb()
            .prop_map(Request::GetChildren)
            .boxed(),
        SyncRequest::arb().prop_map(Request::Sync).boxed(),
        Just(Request::Ping).boxed(),
        GetChildren2Request::arb()
            .prop_map(Request::GetChildren2)
            .boxed(),
        CheckVersionRequest::arb().prop_map(Request::Check).boxed(),
        proptest::collection::vec(write_op(), 0..6)
            .prop_map(Request::Multi)
            .boxed(),
        CreateRequest::arb().prop_map(Request::Create2).boxed(),
        ReconfigRequest::arb().prop_map(Request::Reconfig).boxed(),
        CheckWatchesRequest::arb()
            .prop_map(Request::CheckWatches)
            .boxed(),
        RemoveWatchesRequest::arb()
            .prop_map(Request::RemoveWatches)
            .boxed(),
        CreateRequest::arb()
            .prop_map(Request::CreateContainer)
            .boxed(),
        String::arb().prop_map(Request::DeleteContainer).boxed(),
        CreateTtlRequest::arb().prop_map(Request::CreateTtl).boxed(),
        proptest::collection::vec(read_op(), 0..6)
            .prop_map(Request::MultiRead)
            .boxed(),
        AuthPacket::arb().prop_map(Request::Auth).boxed(),
        SetWatches::arb().prop_map(Request::SetWatches).boxed(),
        GetSaslRequest::arb().prop_map(Request::Sasl).boxed(),
        GetEphemeralsRequest::arb()
            .prop_map(Request::GetEphemerals)
            .boxed(),
        GetAllChildrenNumberRequest::arb()
            .prop_map(Request::GetAllChildrenNumber)
            .boxed(),
        SetWatches2::arb().prop_map(Request::SetWatches2).boxed(),
        AddWatchRequest::arb().prop_map(Request::AddWatch).boxed(),
        Just(Request::WhoAmI).boxed(),
        CreateSessionTxn::arb()
            .prop_map(Request::CreateSession)
            .boxed(),
        Just(Request::CloseSession).boxed(),
    ])
    .boxed()
}

/// One result of a multi or multiRead, errors included.
fn multi_result() -> BoxedStrategy<MultiResult> {
    Union::new(vec![
        CreateResponse::arb().prop_map(MultiResult::Create).boxed(),
        Create2Response::arb()
            .prop_map(MultiResult::Create2)
            .boxed(),
        Just(MultiResult::Delete).boxed(),
        Just(MultiResult::Check).boxed(),
        SetDataResponse::arb()
            .prop_map(MultiResult::SetData)
            .boxed(),
        GetChildrenResponse::arb()
            .prop_map(MultiResult::GetChildren)
            .boxed(),
        GetDataResponse::arb()
            .prop_map(MultiResult::GetData)
            .boxed(),
        // Errors are weighted up: a failed multi is all error results.
        ErrorResponse::arb().prop_map(MultiResult::Error).boxed(),
        ErrorResponse::arb().prop_map(MultiResult::Error).boxed(),
    ])
    .boxed()
}

/// Every response variant with an opcode whose reply it is.
pub(crate) fn response() -> BoxedStrategy<(OpCode, Response)> {
    let any_op = proptest::sample::select(OpCode::ALL);
    Union::new(vec![
        any_op.prop_map(|op| (op, Response::Empty)).boxed(),
        CreateResponse::arb()
            .prop_map(|r| (OpCode::Create, Response::Create(r)))
            .boxed(),
        (
            proptest::sample::select(
                &[OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl][..],
            ),
            Create2Response::arb(),
        )
            .prop_map(|(op, r)| (op, Response::Create2(r)))
            .boxed(),
        (
            proptest::sample::select(&[OpCode::Exists, OpCode::SetData, OpCode::SetAcl][..]),
            Stat::arb(),
        )
            .prop_map(|(op, s)| (op, Response::Stat(s)))
            .boxed(),
        (
            proptest::sample::select(&[OpCode::GetData, OpCode::Reconfig][..]),
            GetDataResponse::arb(),
        )
            .prop_map(|(op, r)| (op, Response::GetData(r)))
            .boxed(),
        GetAclResponse::arb()
            .prop_map(|r| (OpCode::GetAcl, Response::GetAcl(r)))
            .boxed(),
        GetChildrenResponse::arb()
            .prop_map(|r| (OpCode::GetChildren, Response::GetChildren(r)))
            .boxed(),
        GetChildren2Response::arb()
            .prop_map(|r| (OpCode::GetChildren2, Response::GetChildren2(r)))
            .boxed(),
        SyncResponse::arb()
            .prop_map(|r| (OpCode::Sync, Response::Sync(r)))
            .boxed(),
        (
            proptest::sample::select(&[OpCode::Multi, OpCode::MultiRead][..]),
            proptest::collection::vec(multi_result(), 0..6),
        )
            .prop_map(|(op, r)| (op, Response::Multi(r)))
            .boxed(),
        SetSaslResponse::arb()
            .prop_map(|r| (OpCode::Sasl, Response::Sasl(r)))
            .boxed(),
        GetEphemeralsResponse::arb()
            .prop_map(|r| (OpCode::GetEphemerals, Response::GetEphemerals(r)))
            .boxed(),
        GetAllChildrenNumberResponse::arb()
            .prop_map(|r| {
                (
                    OpCode::GetAllChildrenNumber,
                    Response::GetAllChildrenNumber(r),
                )
            })
            .boxed(),
        WhoAmIResponse::arb()
            .prop_map(|r| (OpCode::WhoAmI, Response::WhoAmI(r)))
            .boxed(),
        ErrorResponse::arb()
            .prop_map(|r| (OpCode::AddWatch, Response::AddWatch(r)))
            .boxed(),
    ])
    .boxed()
}

/// A txn that may appear inside a multi txn (anything but multi).
fn sub_txn() -> BoxedStrategy<TxnBody> {
    Union::new(vec![
        CreateTxn::arb().prop_map(TxnBody::Create).boxed(),
        CreateTxn::arb().prop_map(TxnBody::Create2).boxed(),
        CreateContainerTxn::arb()
            .prop_map(TxnBody::CreateContainer)
            .boxed(),
        CreateTtlTxn::arb().prop_map(TxnBody::CreateTtl).boxed(),
        DeleteTxn::arb().prop_map(TxnBody::Delete).boxed(),
        DeleteTxn::arb().prop_map(TxnBody::DeleteContainer).boxed(),
        SetDataTxn::arb().prop_map(TxnBody::SetData).boxed(),
        SetAclTxn::arb().prop_map(TxnBody::SetAcl).boxed(),
        CheckVersionTxn::arb().prop_map(TxnBody::Check).boxed(),
        SetDataTxn::arb().prop_map(TxnBody::Reconfig).boxed(),
        CreateSessionTxn::arb()
            .prop_map(TxnBody::CreateSession)
            .boxed(),
        CloseSessionTxn::arb()
            .prop_map(TxnBody::CloseSession)
            .boxed(),
        ErrorTxn::arb().prop_map(TxnBody::Error).boxed(),
    ])
    .boxed()
}

/// Every txn variant, multi with up to six sub-txns.
pub(crate) fn txn() -> BoxedStrategy<TxnBody> {
    prop_oneof![
        3 => sub_txn(),
        1 => proptest::collection::vec(sub_txn(), 0..6).prop_map(TxnBody::Multi),
    ]
    .boxed()
}

fn request_frame(xid: i32, req: &Request) -> Bytes {
    let mut out = BytesMut::new();
    req.encode_frame(xid, &mut out);
    out.freeze()
}

fn decode_response(op: OpCode, body: Bytes) -> Result<Response, DecodeError> {
    let mut r = Reader::new(body);
    Response::read_body(op, &mut r)
}

fn txn_bytes(t: &TxnBody) -> Bytes {
    let mut out = BytesMut::new();
    t.write(&mut out);
    out.freeze()
}

fn decode_txn(txn_type: i32, body: Bytes) -> Result<TxnBody, DecodeError> {
    TxnBody::read(txn_type, &mut Reader::new(body))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_round_trips(xid in i32::arb(), req in request()) {
        let frame = request_frame(xid, &req);
        let (h, back) = Request::decode_frame(frame.clone()).expect("decodes");
        prop_assert_eq!(h, RequestHeader { xid, op_type: req.op_code().code() });
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(request_frame(xid, &back), frame.clone());
        // deleteContainer's body is the bare path, so its prefixes are shorter
        // paths; any other strict prefix must not decode to the same request.
        // Except one case: a path cut inside its last character decodes (lossily,
        // as Java's String does) to U+FFFD, the same path if that was its last
        // character.
        let lossy_tail = matches!(&req, Request::DeleteContainer(p) if p.ends_with('\u{fffd}'));
        for cut in 0..frame.len() {
            if let Ok((_, short)) = Request::decode_frame(frame.slice(..cut))
                && !lossy_tail
            {
                prop_assert_ne!(&short, &req, "{}-byte prefix decodes to the same request", cut);
            }
        }
    }

    #[test]
    fn response_round_trips((op, resp) in response()) {
        let mut body = BytesMut::new();
        resp.write(&mut body);
        let body = body.freeze();
        let back = decode_response(op, body.clone()).expect("decodes");
        prop_assert_eq!(&back, &resp);
        for cut in 0..body.len() {
            if let Ok(short) = decode_response(op, body.slice(..cut)) {
                // Only the empty prefix may decode (as Response::Empty).
                prop_assert_eq!(cut, 0);
                prop_assert_eq!(short, Response::Empty);
            }
        }
        // As a whole reply frame.
        let header = ReplyHeader { xid: 5, zxid: 0x2_0000_0001, err: 0 };
        let mut frame = BytesMut::new();
        resp.encode_frame(&header, &mut frame);
        let mut r = Reader::new(frame.freeze());
        prop_assert_eq!(ReplyHeader::read(&mut r).expect("header"), header);
        prop_assert_eq!(Response::read_body(op, &mut r).expect("body"), resp);
    }

    #[test]
    fn txn_round_trips(t in txn()) {
        let bytes = txn_bytes(&t);
        let back = decode_txn(t.txn_type().code(), bytes.clone()).expect("decodes");
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(txn_bytes(&back), bytes.clone());
        for cut in 0..bytes.len() {
            if let Ok(short) = decode_txn(t.txn_type().code(), bytes.slice(..cut)) {
                // A closeSession txn before 3.6 had no body: it reads as no paths.
                let old_close = cut == 0 && short == TxnBody::CloseSession(CloseSessionTxn::default());
                prop_assert!(old_close || short != t, "{}-byte prefix decodes to the same txn", cut);
            }
        }
    }

    /// A record read back with or without the leader's `TxnDigest` after
    /// it: the digest comes out separately; any other tail is an error.
    #[test]
    fn records_read_with_and_without_a_digest(t in txn(), d in i64::arb(), extra in 1usize..24) {
        let hdr = TxnHeader { client_id: 1, cxid: 2, zxid: 3, time: 4, txn_type: t.txn_type().code() };
        let mut b = BytesMut::new();
        t.write_record(&hdr, &mut b);
        let plain = b.clone().freeze();
        prop_assert_eq!(TxnBody::read_record_digest(plain.clone()).expect("plain"), (hdr, t.clone(), None));
        let digest = TxnDigest { version: 2, tree_digest: d };
        digest.write(&mut b);
        let with = b.freeze();
        prop_assert_eq!(TxnBody::read_record_digest(with.clone()).expect("with"), (hdr, t.clone(), Some(digest)));
        prop_assert_eq!(TxnBody::read_record(with).expect("with"), (hdr, t));
        if extra != TXN_DIGEST_LEN {
            let mut odd = BytesMut::from(&plain[..]);
            odd.extend_from_slice(&vec![0u8; extra]);
            prop_assert!(TxnBody::read_record(odd.freeze()).is_err());
        }
    }
}

#[test]
fn multi_with_several_ops_round_trips() {
    let acl = vec![Acl {
        perms: crate::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }];
    let create = CreateRequest {
        path: "/a".into(),
        data: Some(Bytes::from_static(b"x")),
        acl: acl.clone(),
        flags: 0,
    };
    let req = Request::Multi(vec![
        MultiOp::Create(create.clone()),
        MultiOp::Create2(CreateRequest {
            data: None,
            ..create.clone()
        }),
        MultiOp::CreateContainer(CreateRequest { flags: 4, ..create }),
        MultiOp::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: Some(Bytes::new()),
            acl,
            flags: 5,
            ttl: 1000,
        }),
        MultiOp::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"y")),
            version: -1,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/a".into(),
            version: 1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
    ]);
    let frame = request_frame(9, &req);
    assert_eq!(
        Request::decode_frame(frame).unwrap(),
        (
            RequestHeader {
                xid: 9,
                op_type: 14
            },
            req
        )
    );

    let read = Request::MultiRead(vec![
        MultiOp::GetData(GetDataRequest {
            path: "/a".into(),
            watch: false,
        }),
        MultiOp::GetChildren(GetChildrenRequest {
            path: "/".into(),
            watch: false,
        }),
    ]);
    let frame = request_frame(10, &read);
    assert_eq!(Request::decode_frame(frame).unwrap().1, read);

    // A failed multi as ZooKeeper sends it: ops before the failure report 0,
    // the failing op its code, later ops RUNTIMEINCONSISTENCY.
    let failed = Response::Multi(vec![
        MultiResult::Error(ErrorResponse { err: 0 }),
        MultiResult::Error(ErrorResponse { err: -103 }),
        MultiResult::Error(ErrorResponse { err: -2 }),
    ]);
    let mut body = BytesMut::new();
    failed.write(&mut body);
    assert_eq!(body.len(), 3 * (9 + 4) + 9);
    assert_eq!(
        decode_response(OpCode::Multi, body.freeze()).unwrap(),
        failed
    );
}

#[test]
fn delete_container_body_is_the_bare_path() {
    let req = Request::DeleteContainer("/container".into());
    let frame = request_frame(3, &req);
    assert_eq!(&frame[8..], b"/container");
    assert_eq!(Request::decode_frame(frame).unwrap().1, req);
}

#[test]
fn multi_txn_with_sub_txns_round_trips() {
    let t = TxnBody::Multi(vec![
        TxnBody::Create(CreateTxn {
            path: "/a".into(),
            data: None,
            acl: vec![],
            ephemeral: true,
            parent_c_version: 3,
        }),
        TxnBody::Check(CheckVersionTxn {
            path: "/a".into(),
            version: 0,
        }),
        TxnBody::Error(ErrorTxn { err: -101 }),
        TxnBody::Delete(DeleteTxn { path: "/b".into() }),
    ]);
    let bytes = txn_bytes(&t);
    assert_eq!(decode_txn(14, bytes).unwrap(), t);
    // A multi inside a multi is refused.
    let nested = TxnBody::Multi(vec![TxnBody::Multi(vec![])]);
    assert!(decode_txn(14, txn_bytes(&nested)).is_err());
}

#[test]
fn add_watch_reply_is_an_error_response_of_zero() {
    // Captured from ZooKeeper 3.8 (zkcli_session.jsonl): header then int 0.
    let body = Bytes::from_static(&[0, 0, 0, 0]);
    assert_eq!(
        decode_response(OpCode::AddWatch, body).unwrap(),
        Response::AddWatch(ErrorResponse { err: 0 })
    );
    assert_eq!(
        decode_response(OpCode::AddWatch, Bytes::new()).unwrap(),
        Response::Empty
    );
}
