//! The few client frames the tool sends on its hot path.
//!
//! Request frames are written straight into the connection's output buffer
//! with zk-jute's framing and primitives (no per-op record allocation); a unit
//! test decodes them with zk-jute's `Request` to prove the layout. Everything
//! else on the wire (the session handshake, reading frames and reply headers)
//! is the workspace's client, [`zk_client`], re-exported here.

use bytes::{BufMut, Bytes, BytesMut};
use zk_jute::{Jute, OpCode, encode_frame, write_buffer};

pub use zk_client::{read_frame, reply_header};

/// The kind of a benchmark op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// create (persistent, world:anyone ALL).
    Create,
    /// setData, any version.
    SetData,
    /// getData, no watch.
    GetData,
    /// delete, any version (NONODE is counted as "missing", not as an error).
    Delete,
}

impl Kind {
    /// Whether the op only reads.
    pub fn is_read(self) -> bool {
        self == Kind::GetData
    }
}

/// `world:anyone` with every permission, jute-encoded as a `vector<ACL>`.
pub fn open_acl() -> Bytes {
    zk_client::open_acl().to_bytes()
}

/// Appends one request frame (length prefix included).
pub fn encode_op(out: &mut BytesMut, xid: i32, kind: Kind, path: &str, data: &[u8], acl: &[u8]) {
    encode_frame(out, |o| {
        o.put_i32(xid);
        match kind {
            Kind::Create => {
                o.put_i32(OpCode::Create.code());
                write_buffer(o, Some(path.as_bytes()));
                write_buffer(o, Some(data));
                o.put_slice(acl);
                o.put_i32(0); // flags: persistent
            }
            Kind::SetData => {
                o.put_i32(OpCode::SetData.code());
                write_buffer(o, Some(path.as_bytes()));
                write_buffer(o, Some(data));
                o.put_i32(-1); // any version
            }
            Kind::GetData => {
                o.put_i32(OpCode::GetData.code());
                write_buffer(o, Some(path.as_bytes()));
                o.put_u8(0); // no watch
            }
            Kind::Delete => {
                o.put_i32(OpCode::Delete.code());
                write_buffer(o, Some(path.as_bytes()));
                o.put_i32(-1); // any version
            }
        }
    });
}

/// Appends a bodiless request frame (ping with xid -2, closeSession).
pub fn encode_bare(out: &mut BytesMut, xid: i32, op: OpCode) {
    encode_frame(out, |o| {
        o.put_i32(xid);
        o.put_i32(op.code());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::{
        Acl, CreateRequest, DeleteRequest, FrameDecoder, GetDataRequest, Request, SetDataRequest,
    };

    fn decode(buf: &mut BytesMut) -> (i32, Request) {
        let frame = FrameDecoder::default().decode(buf).unwrap().unwrap();
        let (h, r) = Request::decode_frame(frame).unwrap();
        (h.xid, r)
    }

    #[test]
    fn frames_decode_as_zookeeper_requests() {
        let acl = open_acl();
        let mut buf = BytesMut::new();
        encode_op(&mut buf, 7, Kind::Create, "/a/b", b"xyz", &acl);
        encode_op(&mut buf, 8, Kind::SetData, "/a", b"", &acl);
        encode_op(&mut buf, 9, Kind::GetData, "/a", b"ignored", &acl);
        encode_op(&mut buf, 10, Kind::Delete, "/a/b", b"ignored", &acl);
        encode_bare(&mut buf, -2, OpCode::Ping);
        let (xid, r) = decode(&mut buf);
        assert_eq!(xid, 7);
        assert_eq!(
            r,
            Request::Create(CreateRequest {
                path: "/a/b".into(),
                data: Some(Bytes::from_static(b"xyz")),
                acl: Vec::<Acl>::from_bytes(acl.clone()).unwrap(),
                flags: 0,
            })
        );
        assert_eq!(
            decode(&mut buf),
            (
                8,
                Request::SetData(SetDataRequest {
                    path: "/a".into(),
                    data: Some(Bytes::new()),
                    version: -1,
                })
            )
        );
        assert_eq!(
            decode(&mut buf),
            (
                9,
                Request::GetData(GetDataRequest {
                    path: "/a".into(),
                    watch: false,
                })
            )
        );
        assert_eq!(
            decode(&mut buf),
            (
                10,
                Request::Delete(DeleteRequest {
                    path: "/a/b".into(),
                    version: -1,
                })
            )
        );
        assert!(!Kind::Delete.is_read());
        assert_eq!(decode(&mut buf), (-2, Request::Ping));
        assert!(buf.is_empty());
    }
}
