//! A tiny raw ZooKeeper client on zk-jute over std TcpStream, for the
//! end-to-end tests: synchronous, one request at a time (or pipelined with
//! `send` + `recv`), watch events collected on the side.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_jute::{
    ConnectRequest, ConnectResponse, Jute, OpCode, Reader, ReplyHeader, Request, Response,
    WatcherEvent, encode_frame,
};

pub struct Client {
    pub stream: TcpStream,
    pub session_id: i64,
    pub passwd: Bytes,
    pub timeout: i32,
    pub last_zxid: i64,
    xid: i32,
    pub events: Vec<WatcherEvent>,
    pending: std::collections::VecDeque<(i32, OpCode)>,
}

pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len) as usize;
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

pub fn write_frame(s: &mut TcpStream, body: impl FnOnce(&mut BytesMut)) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    encode_frame(&mut out, body);
    s.write_all(&out)
}

/// Sends a four-letter word and reads the answer to EOF.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(cmd.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::connect_with(addr, 0, Bytes::from_static(&[0; 16]), 30000, 0).expect("connect")
    }

    /// Connects; returns the ConnectResponse fields through the client (a
    /// zeroed session id means the session was refused as expired).
    pub fn connect_with(
        addr: SocketAddr,
        session_id: i64,
        passwd: Bytes,
        timeout: i32,
        last_zxid: i64,
    ) -> std::io::Result<Client> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            time_out: timeout,
            session_id,
            passwd,
            read_only: Some(false),
        };
        write_frame(&mut stream, |o| req.write(o))?;
        let frame = read_frame(&mut stream)?;
        let resp = ConnectResponse::from_bytes(frame).expect("connect response");
        Ok(Client {
            stream,
            session_id: resp.session_id,
            passwd: resp.passwd,
            timeout: resp.time_out,
            last_zxid,
            xid: 0,
            events: Vec::new(),
            pending: Default::default(),
        })
    }

    pub fn send(&mut self, req: &Request) -> i32 {
        self.xid += 1;
        let xid = match req {
            Request::Ping => zk_jute::xid::PING,
            Request::SetWatches(_) | Request::SetWatches2(_) => zk_jute::xid::SET_WATCHES,
            Request::Auth(_) => zk_jute::xid::AUTH,
            _ => self.xid,
        };
        let op = req.op_code();
        write_frame(&mut self.stream, |o| req.encode_frame(xid, o)).unwrap();
        self.pending.push_back((xid, op));
        xid
    }

    /// Reads frames until the reply to the oldest pending request; events are
    /// stored in `self.events`.
    pub fn recv(&mut self) -> (ReplyHeader, Response) {
        let (xid, op) = self.pending.pop_front().expect("nothing pending");
        loop {
            let frame = read_frame(&mut self.stream).expect("reply");
            let mut r = Reader::new(frame);
            let h = ReplyHeader::read(&mut r).unwrap();
            if h.xid == zk_jute::xid::NOTIFICATION {
                self.events.push(WatcherEvent::read(&mut r).unwrap());
                continue;
            }
            assert_eq!(h.xid, xid, "replies in request order");
            if h.zxid > 0 {
                self.last_zxid = self.last_zxid.max(h.zxid);
            }
            let resp = if h.err != 0 && !matches!(op, OpCode::Multi | OpCode::MultiRead) {
                Response::Empty
            } else {
                Response::read_body(op, &mut r).unwrap()
            };
            return (h, resp);
        }
    }

    pub fn call(&mut self, req: Request) -> (ReplyHeader, Response) {
        self.send(&req);
        self.recv()
    }

    /// Waits for the next watch event.
    pub fn next_event(&mut self) -> WatcherEvent {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        let frame = read_frame(&mut self.stream).expect("event");
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r).unwrap();
        assert_eq!(h.xid, zk_jute::xid::NOTIFICATION, "expected an event");
        WatcherEvent::read(&mut r).unwrap()
    }

    pub fn close(mut self) {
        let (h, _) = self.call(Request::CloseSession);
        assert_eq!(h.err, 0);
    }
}

/// Polls `cond` (every few ms) until it holds; panics naming `what` after 20 s.
#[allow(dead_code)] // not every test binary uses it
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
