//! Bytes from a socket or a disk never cause a panic: random input fed to every
//! decoder either fails with a [`DecodeError`] or decodes to a value that
//! re-encodes and decodes to itself again.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use zk_jute::quorum::{InitialMessage, Notification};
use zk_jute::{
    ConnectRequest, ConnectResponse, DEFAULT_MAX_PACKET, DecodeError, FrameDecoder, Jute, OpCode,
    Reader, Request, Response, TxnBody, encode_frame,
};

/// Random bytes, biased towards the small lengths and counts jute decoders
/// branch on.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            1 => Just(0u8),
            1 => Just(0xffu8),
            1 => 1u8..8,
        ],
        0..256,
    )
}

/// A known opcode or any number.
fn op() -> impl Strategy<Value = i32> {
    prop_oneof![
        3 => proptest::sample::select(OpCode::ALL).prop_map(OpCode::code),
        1 => any::<i32>(),
    ]
}

fn request(frame: Bytes) -> Result<(i32, Request), DecodeError> {
    Request::decode_frame(frame).map(|(h, r)| (h.xid, r))
}

/// A decoded request re-encodes to a frame that decodes to the same request.
fn check_request(frame: Bytes) {
    if let Ok((xid, req)) = request(frame) {
        let mut out = BytesMut::new();
        req.encode_frame(xid, &mut out);
        assert_eq!(request(out.freeze()), Ok((xid, req)));
    }
}

fn response(op: OpCode, body: Bytes) -> Result<Response, DecodeError> {
    Response::read_body(op, &mut Reader::new(body))
}

fn txn(txn_type: i32, body: Bytes) -> Result<TxnBody, DecodeError> {
    TxnBody::read(txn_type, &mut Reader::new(body))
}

/// Splits `stream` into frames and decodes them as a server does: the first as
/// the handshake, the rest as requests.
fn serve(stream: &[u8], chunk: usize) {
    let decoder = FrameDecoder::new(DEFAULT_MAX_PACKET);
    let mut buf = BytesMut::new();
    let mut first = true;
    for piece in stream.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) if first => {
                    first = false;
                    if let Ok(c) = ConnectRequest::from_bytes(frame) {
                        assert_eq!(ConnectRequest::from_bytes(c.to_bytes()), Ok(c));
                    }
                }
                Ok(Some(frame)) => check_request(frame),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_streams_never_panic(bytes in garbage(), chunk in 1usize..40) {
        serve(&bytes, chunk);
    }

    /// Well-framed streams of random frames, so the decoders past the framing
    /// see plenty of input.
    #[test]
    fn random_frames_never_panic(
        frames in proptest::collection::vec((any::<i32>(), op(), garbage()), 1..6),
    ) {
        let mut stream = BytesMut::new();
        for (xid, op, body) in &frames {
            encode_frame(&mut stream, |o| {
                o.extend_from_slice(&xid.to_be_bytes());
                o.extend_from_slice(&op.to_be_bytes());
                o.extend_from_slice(body);
            });
        }
        serve(&stream, stream.len());
    }

    #[test]
    fn random_request_bodies_never_panic(xid in any::<i32>(), op in op(), body in garbage()) {
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&xid.to_be_bytes());
        frame.extend_from_slice(&op.to_be_bytes());
        frame.extend_from_slice(&body);
        check_request(frame.freeze());
    }

    #[test]
    fn random_response_bodies_never_panic(body in garbage()) {
        let body = Bytes::from(body);
        for &op in OpCode::ALL {
            if let Ok(resp) = response(op, body.clone()) {
                let mut out = BytesMut::new();
                resp.write(&mut out);
                prop_assert_eq!(response(op, out.freeze()), Ok(resp));
            }
        }
    }

    #[test]
    fn random_txns_never_panic(txn_type in op(), body in garbage()) {
        if let Ok(t) = txn(txn_type, Bytes::from(body)) {
            let mut out = BytesMut::new();
            t.write(&mut out);
            prop_assert_eq!(txn(t.txn_type().code(), out.freeze()), Ok(t));
        }
    }

    /// A multi txn made of random sub-txns: the nested decoder sees random data.
    #[test]
    fn random_multi_txns_never_panic(subs in proptest::collection::vec((op(), garbage()), 0..5)) {
        let mut body = BytesMut::new();
        body.extend_from_slice(&i32::try_from(subs.len()).unwrap().to_be_bytes());
        for (t, data) in &subs {
            body.extend_from_slice(&t.to_be_bytes());
            body.extend_from_slice(&i32::try_from(data.len()).unwrap().to_be_bytes());
            body.extend_from_slice(data);
        }
        if let Ok(t) = txn(OpCode::Multi.code(), body.freeze()) {
            let mut out = BytesMut::new();
            t.write(&mut out);
            prop_assert_eq!(txn(OpCode::Multi.code(), out.freeze()), Ok(t));
        }
    }

    #[test]
    fn random_handshakes_and_election_messages_never_panic(body in garbage()) {
        let body = Bytes::from(body);
        if let Ok(c) = ConnectRequest::from_bytes(body.clone()) {
            prop_assert_eq!(ConnectRequest::from_bytes(c.to_bytes()), Ok(c));
        }
        if let Ok(c) = ConnectResponse::from_bytes(body.clone()) {
            prop_assert_eq!(ConnectResponse::from_bytes(c.to_bytes()), Ok(c));
        }
        if let Ok(n) = Notification::decode(body.clone()) {
            let mut out = BytesMut::new();
            n.write(&mut out);
            prop_assert_eq!(Notification::decode(out.freeze()), Ok(n));
        }
        if let Ok(m) = InitialMessage::decode(body) {
            let mut out = BytesMut::new();
            m.write(&mut out);
            prop_assert_eq!(InitialMessage::decode(out.freeze()), Ok(m));
        }
    }
}
