//! Feeds arbitrary bytes to the zk-jute decoders as a server meets them.
//!
//! * As a client stream: split by [`FrameDecoder`] (jute.maxbuffer 0xfffff); the
//!   first frame is a [`ConnectRequest`], every later one a request frame.
//! * As raw bodies: a reply body for every opcode, a txn whose type is the first
//!   four bytes, a connect response and an election notification.
//!
//! Whatever decodes must re-encode to bytes that decode to the same value, and
//! re-encoding that value must give the same bytes again.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_jute::quorum::Notification;
use zk_jute::{
    ConnectRequest, ConnectResponse, FrameDecoder, Jute, OpCode, Reader, Request, Response, TxnBody,
};

fn request(frame: Bytes) {
    let Ok((h, req)) = Request::decode_frame(frame) else {
        return;
    };
    let mut once = BytesMut::new();
    req.encode_frame(h.xid, &mut once);
    let once = once.freeze();
    let (h2, again) = Request::decode_frame(once.clone()).expect("re-encoded request decodes");
    assert_eq!((h2.xid, &again), (h.xid, &req));
    let mut twice = BytesMut::new();
    again.encode_frame(h.xid, &mut twice);
    assert_eq!(once, twice.freeze());
}

fn connect(frame: Bytes) {
    if let Ok(c) = ConnectRequest::from_bytes(frame) {
        let once = c.to_bytes();
        let again = ConnectRequest::from_bytes(once.clone()).expect("re-encoded connect decodes");
        assert_eq!(again, c);
        assert_eq!(again.to_bytes(), once);
    }
}

fn response(op: OpCode, body: &Bytes) {
    let Ok(resp) = Response::read_body(op, &mut Reader::new(body.clone())) else {
        return;
    };
    let mut once = BytesMut::new();
    resp.write(&mut once);
    let once = once.freeze();
    let again = Response::read_body(op, &mut Reader::new(once.clone()))
        .expect("re-encoded response decodes");
    assert_eq!(again, resp);
    let mut twice = BytesMut::new();
    again.write(&mut twice);
    assert_eq!(once, twice.freeze());
}

fn txn(raw: &Bytes) {
    let Some(prefix) = raw.first_chunk::<4>() else {
        return;
    };
    let txn_type = i32::from_be_bytes(*prefix);
    let Ok(t) = TxnBody::read(txn_type, &mut Reader::new(raw.slice(4..))) else {
        return;
    };
    let mut once = BytesMut::new();
    t.write(&mut once);
    let once = once.freeze();
    let again = TxnBody::read(t.txn_type().code(), &mut Reader::new(once.clone()))
        .expect("re-encoded txn decodes");
    assert_eq!(again, t);
    let mut twice = BytesMut::new();
    again.write(&mut twice);
    assert_eq!(once, twice.freeze());
}

fn others(raw: &Bytes) {
    if let Ok(c) = ConnectResponse::from_bytes(raw.clone()) {
        assert_eq!(ConnectResponse::from_bytes(c.to_bytes()), Ok(c));
    }
    if let Ok(n) = Notification::decode(raw.clone()) {
        let mut once = BytesMut::new();
        n.write(&mut once);
        assert_eq!(Notification::decode(once.freeze()), Ok(n));
    }
}

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::new(0xfffff);
    let mut buf = BytesMut::from(data);
    let mut first = true;
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        if first {
            first = false;
            connect(frame);
        } else {
            request(frame);
        }
    }

    let raw = Bytes::copy_from_slice(data);
    for &op in OpCode::ALL {
        response(op, &raw);
    }
    txn(&raw);
    others(&raw);
});
