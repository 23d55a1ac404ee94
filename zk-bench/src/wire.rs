//! The few client frames the tool sends, and a blocking session handshake.
//!
//! Request frames are written straight into the connection's output buffer
//! with zk-jute's framing and primitives (no per-op record allocation); a unit
//! test decodes them with zk-jute's `Request` to prove the layout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use zk_jute::{
    Acl, ConnectRequest, ConnectResponse, Id, Jute, OpCode, ReplyHeader, encode_frame, perms,
    write_buffer,
};

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
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
    .to_bytes()
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

/// Reads the reply header at the start of a frame.
pub fn reply_header(frame: &[u8]) -> Option<ReplyHeader> {
    let xid = i32::from_be_bytes(frame.get(0..4)?.try_into().ok()?);
    let zxid = i64::from_be_bytes(frame.get(4..12)?.try_into().ok()?);
    let err = i32::from_be_bytes(frame.get(12..16)?.try_into().ok()?);
    Some(ReplyHeader { xid, zxid, err })
}

/// Reads one whole frame (without its length prefix) from a blocking stream.
pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = usize::try_from(i32::from_be_bytes(len))
        .ok()
        .filter(|&n| n <= zk_jute::DEFAULT_MAX_PACKET)
        .ok_or_else(|| std::io::Error::other("invalid frame length"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Connects and opens a new session (blocking, with `timeout` for each step).
/// Returns the stream (still blocking, TCP_NODELAY set) and the session id.
pub fn open_session(
    addr: SocketAddr,
    session_timeout_ms: i32,
    timeout: Duration,
) -> std::io::Result<(TcpStream, i64)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: session_timeout_ms,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| req.write(o));
    s.write_all(&out)?;
    let frame = read_frame(&mut s)?;
    let resp = ConnectResponse::from_bytes(frame)
        .map_err(|e| std::io::Error::other(format!("bad ConnectResponse: {e}")))?;
    if resp.time_out <= 0 || resp.session_id == 0 {
        return Err(std::io::Error::other("the server refused the session"));
    }
    Ok((s, resp.session_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::{
        CreateRequest, DeleteRequest, FrameDecoder, GetDataRequest, Request, SetDataRequest,
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

    #[test]
    fn reply_header_parses() {
        let h = ReplyHeader {
            xid: 5,
            zxid: 0x1_0000_0002,
            err: -101,
        };
        assert_eq!(reply_header(&h.to_bytes()), Some(h));
        assert_eq!(reply_header(&[0; 15]), None);
    }
}
