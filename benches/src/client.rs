//! A small synchronous ZooKeeper client on zk-jute over a blocking
//! [`TcpStream`], for end-to-end benches.
//!
//! One request at a time: [`Client::call`] writes one frame and blocks until
//! its reply. `TCP_NODELAY` is set, so a request leaves at once instead of
//! waiting for Nagle's algorithm, and each call's latency is the server's
//! round trip plus loopback. Watch notifications that arrive before a reply are
//! skipped. Nothing here is tuned beyond reusing the write buffer: it is a
//! measuring probe, not a client library.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_jute::{
    ConnectRequest, ConnectResponse, DEFAULT_MAX_PACKET, Jute, OpCode, Reader, ReplyHeader,
    Request, Response, encode_frame, xid,
};

/// A connected session.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    session_id: i64,
    xid: i32,
    out: BytesMut,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Client {
    /// Connects and opens a new session (30 s timeout requested). Reads time
    /// out after 30 s so that a stuck server fails the bench instead of
    /// hanging it.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client {
            stream,
            session_id: 0,
            xid: 0,
            out: BytesMut::with_capacity(4096),
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30_000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        c.write(|o| req.write(o))?;
        let resp = ConnectResponse::from_bytes(c.read_frame()?).map_err(invalid)?;
        if resp.session_id == 0 {
            return Err(invalid("session refused by the server"));
        }
        c.session_id = resp.session_id;
        Ok(c)
    }

    /// The session id the server assigned.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Sends `req` and waits for its reply. A reply with a non-zero error code
    /// is returned as is, its body as [`Response::Empty`] (the header's `err`
    /// says which error).
    pub fn call(&mut self, req: &Request) -> io::Result<(ReplyHeader, Response)> {
        let xid = match req {
            Request::Ping => xid::PING,
            _ => {
                self.xid = self.xid.wrapping_add(1) & i32::MAX;
                self.xid
            }
        };
        self.write(|o| req.encode_frame(xid, o))?;
        loop {
            let mut r = Reader::new(self.read_frame()?);
            let h = ReplyHeader::read(&mut r).map_err(invalid)?;
            if h.xid == xid::NOTIFICATION {
                continue;
            }
            if h.xid != xid {
                return Err(invalid(format!("reply xid {} to request {xid}", h.xid)));
            }
            let op = req.op_code();
            let resp = if h.err != 0 && !matches!(op, OpCode::Multi | OpCode::MultiRead) {
                Response::Empty
            } else {
                Response::read_body(op, &mut r).map_err(invalid)?
            };
            return Ok((h, resp));
        }
    }

    /// Like [`Client::call`], but a non-zero error code is an error.
    pub fn call_ok(&mut self, req: &Request) -> io::Result<Response> {
        let (h, resp) = self.call(req)?;
        if h.err != 0 {
            return Err(io::Error::other(format!(
                "{:?}: error code {}",
                req.op_code(),
                h.err
            )));
        }
        Ok(resp)
    }

    /// Closes the session (closeSession, then the socket).
    pub fn close(mut self) -> io::Result<()> {
        self.call_ok(&Request::CloseSession).map(drop)
    }

    fn write(&mut self, body: impl FnOnce(&mut BytesMut)) -> io::Result<()> {
        self.out.clear();
        encode_frame(&mut self.out, body);
        self.stream.write_all(&self.out)
    }

    /// One length-prefixed frame; a length outside `0..=jute.maxbuffer` is an
    /// error (never an allocation of what a bad prefix claims).
    fn read_frame(&mut self) -> io::Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let n = i32::from_be_bytes(len);
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= DEFAULT_MAX_PACKET)
            .ok_or_else(|| invalid(format!("frame length {n}")))?;
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }
}
