//! Requests that are not what they claim, answered as Apache ZooKeeper 3.8:
//! an undecodable body gets MARSHALLINGERROR and the session goes on, an
//! unknown opcode gets UNIMPLEMENTED in request order and closes the
//! connection, connections beyond maxClientCnxns are closed at accept, and a
//! re-attached session's old connection is closed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Client, read_frame};
use zk_jute::{
    CreateRequest, ExistsRequest, GetDataRequest, Jute, OpCode, Reader, ReplyHeader, Request,
    encode_frame,
};
use zk_server::{Config, Server, Whitelist};

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::standalone(dir.to_path_buf(), 0);
    c.four_letter_whitelist = Whitelist::All;
    c.pre_alloc_size_kb = 1024;
    c.client_port_address = Some("127.0.0.1".parse().unwrap());
    c
}

fn raw_request(xid: i32, op: i32, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| {
        o.extend_from_slice(&xid.to_be_bytes());
        o.extend_from_slice(&op.to_be_bytes());
        o.extend_from_slice(body);
    });
    out
}

/// The next reply header on `s` (notifications skipped); `None` once closed.
fn reply(s: &mut TcpStream) -> Option<ReplyHeader> {
    loop {
        let frame = read_frame(s).ok()?;
        let h = ReplyHeader::read(&mut Reader::new(frame)).ok()?;
        if h.xid != zk_jute::xid::NOTIFICATION {
            return Some(h);
        }
    }
}

fn exists(c: &mut Client, path: &str) -> i32 {
    c.call(Request::Exists(ExistsRequest {
        path: path.into(),
        watch: false,
    }))
    .0
    .err
}

// Regression: an undecodable body used to close the connection.
#[test]
fn undecodable_body_is_marshalling_error_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let mut c = Client::connect(server.local_addr());
    // create whose path length runs past the end of the frame: an error txn
    // takes a zxid (session 0x1, this 0x2)
    let mut body = 1000i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"/x");
    c.stream()
        .write_all(&raw_request(8, OpCode::Create.code(), &body))
        .unwrap();
    let h = reply(c.stream()).expect("answered");
    assert_eq!((h.xid, h.zxid, h.err), (8, 2, -5));
    // multi with a truncated op: the same, the reply has no multi body
    c.stream()
        .write_all(&raw_request(9, OpCode::Multi.code(), &[0, 0, 0, 1, 1]))
        .unwrap();
    let h = reply(c.stream()).expect("answered");
    assert_eq!((h.xid, h.zxid, h.err), (9, 3, -5));
    // a read: MARSHALLINGERROR with the last zxid, no txn
    c.stream()
        .write_all(&raw_request(10, OpCode::GetData.code(), &[0xff]))
        .unwrap();
    let h = reply(c.stream()).expect("answered");
    assert_eq!((h.xid, h.zxid, h.err), (10, 3, -5));
    // the connection and the session go on
    assert_eq!(exists(&mut c, "/x"), -101);
    assert_eq!(exists(&mut c, "/"), 0);
    server.shutdown();
}

// Regression: an unknown opcode used to be answered at once, ahead of the
// session's writes in flight, and the connection stayed open.
#[test]
fn unknown_opcode_is_answered_in_order_then_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    let create = Request::Create(CreateRequest {
        path: "/a".into(),
        data: Some(Bytes::new()),
        acl: zk_tree::open_acl_unsafe(),
        flags: 0,
    });
    let get = Request::GetData(GetDataRequest {
        path: "/".into(),
        watch: false,
    });
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| create.encode_frame(1, o));
    out.extend_from_slice(&raw_request(2, 999, &[]));
    encode_frame(&mut out, |o| get.encode_frame(3, o));
    c.stream().write_all(&out).unwrap();
    let mut got = Vec::new();
    while let Some(h) = reply(c.stream()) {
        got.push((h.xid, h.zxid, h.err));
    }
    assert_eq!(got, [(1, 2, 0), (2, -1, -6)], "in order, then closed");
    // the session survives: it can be resumed
    let again = Client::connect_with(addr, c.session_id(), c.passwd(), 30000, 0).unwrap();
    assert_eq!(again.session_id(), c.session_id());
    server.shutdown();
}

fn handshake(addr: SocketAddr) -> Option<Client> {
    Client::connect_with(addr, 0, Bytes::from_static(&[0; 16]), 30000, 0).ok()
}

#[test]
fn max_client_cnxns_closes_connections_beyond_the_limit_at_accept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_client_cnxns = 5;
    let server = Server::start(cfg).unwrap();
    let addr = server.local_addr();
    let mut held: Vec<Client> = (0..5).map(|_| handshake(addr).expect("within")).collect();
    for _ in 0..3 {
        assert!(handshake(addr).is_none(), "the 6th connection is refused");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"ruok");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.is_empty(), "four-letter words count too");
    }
    held.pop();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handshake(addr).is_none() {
        assert!(std::time::Instant::now() < deadline, "room again");
        std::thread::sleep(Duration::from_millis(20));
    }
    // (the connections just closed are released asynchronously)
    drop(held);
    let rejected = loop {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(b"mntr");
        let mut out = String::new();
        if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
            break out;
        }
        assert!(std::time::Instant::now() < deadline, "mntr answered");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        rejected
            .lines()
            .any(|l| l.starts_with("zk_connection_rejected\t")
                && l.split('\t').nth(1).and_then(|v| v.parse::<u64>().ok()) >= Some(6)),
        "{rejected}"
    );
    server.shutdown();
}

#[test]
fn max_client_cnxns_zero_is_unlimited() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_client_cnxns = 0;
    let server = Server::start(cfg).unwrap();
    let held: Vec<Client> = (0..70)
        .map(|_| handshake(server.local_addr()).expect("no limit"))
        .collect();
    assert_eq!(held.len(), 70);
    server.shutdown();
}

#[test]
fn default_max_client_cnxns_is_60() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let held: Vec<Client> = (0..60)
        .map(|_| handshake(server.local_addr()).expect("within 60"))
        .collect();
    assert!(
        handshake(server.local_addr()).is_none(),
        "the 61st is refused"
    );
    drop(held);
    server.shutdown();
}

#[test]
fn a_re_attached_session_closes_the_old_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let addr = server.local_addr();
    let mut old = Client::connect(addr);
    let mut new = Client::connect_with(addr, old.session_id(), old.passwd(), 30000, 0).unwrap();
    assert_eq!(new.session_id(), old.session_id());
    // whatever is written on the old connection now is not answered (no
    // SESSIONMOVED in standalone: the connection is simply closed)
    let _ = old.stream().write_all(&raw_request(
        5,
        OpCode::Exists.code(),
        &[0, 0, 0, 1, b'/', 0],
    ));
    assert!(reply(old.stream()).is_none());
    assert_eq!(exists(&mut new, "/"), 0);
    server.shutdown();
}
