//! Reply frames: the length-prefixed bytes a loop writes to a client
//! (reply header + body, a header alone, a watch event). A leaf: used by the
//! sequencer, the loops and the local reads.

use bytes::{Bytes, BytesMut};
use zk_jute::{ErrorCode, Jute, ReplyHeader, Response, WatcherEvent, encode_frame, xid};

/// A reply frame with only a header (errors, and body-less replies).
pub(crate) fn error_frame(xid: i32, zxid: i64, err: ErrorCode) -> Bytes {
    let mut out = BytesMut::with_capacity(20);
    encode_frame(&mut out, |o| {
        ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        }
        .write(o)
    });
    out.freeze()
}

/// A failed SASL step's reply: the error, and a `SetSASLResponse` whose
/// token is null (a client mid-exchange reads a token after any header;
/// without one it drops the connection instead of reporting AuthFailed).
pub(crate) fn sasl_error_frame(xid: i32, err: ErrorCode) -> Bytes {
    let mut out = BytesMut::with_capacity(24);
    encode_frame(&mut out, |o| {
        ReplyHeader {
            xid,
            zxid: 0,
            err: err.code(),
        }
        .write(o);
        bytes::BufMut::put_i32(o, -1);
    });
    out.freeze()
}

/// A reply frame: header and body.
pub(crate) fn response_frame(xid: i32, zxid: i64, resp: &Response) -> Bytes {
    // Room for a header and a stat (88 bytes for setData) without regrowing.
    let mut out = BytesMut::with_capacity(128);
    encode_frame(&mut out, |o| {
        resp.encode_frame(&ReplyHeader { xid, zxid, err: 0 }, o)
    });
    out.freeze()
}

/// A watch notification frame (xid -1, zxid -1).
pub(crate) fn event_frame(ev: &WatcherEvent) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + ev.path.len());
    encode_frame(&mut out, |o| {
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: -1,
            err: 0,
        }
        .write(o);
        ev.write(o);
    });
    out.freeze()
}
