//! The client against a scripted fake server on loopback.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use zk_jute::{
    ConnectResponse, ErrorCode, ExistsRequest, Jute, OpCode, ReplyHeader, Request, Response, Stat,
    WatcherEvent,
};

use crate::{Client, ClientError, read_frame, write_frame};

/// A server that answers the handshake with `resp`, then runs `script` on
/// the connection.
fn fake_server(
    resp: ConnectResponse,
    script: impl FnOnce(TcpStream) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        read_frame(&mut s).unwrap();
        write_frame(&mut s, |o| resp.write(o)).unwrap();
        script(s);
    });
    (addr, t)
}

/// Reads one request frame; returns its xid.
fn request_xid(s: &mut TcpStream) -> i32 {
    let frame = read_frame(s).unwrap();
    i32::from_be_bytes(frame[..4].try_into().unwrap())
}

fn session() -> ConnectResponse {
    ConnectResponse {
        time_out: 4000,
        session_id: 0x42,
        passwd: Bytes::from_static(&[7; 16]),
        ..Default::default()
    }
}

fn exists(path: &str) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch: false,
    })
}

fn reply(
    s: &mut TcpStream,
    xid: i32,
    zxid: i64,
    err: i32,
    body: impl FnOnce(&mut bytes::BytesMut),
) {
    write_frame(s, |o| {
        ReplyHeader { xid, zxid, err }.write(o);
        body(o);
    })
    .unwrap();
}

#[test]
fn pipelined_replies_are_matched_by_xid_and_events_queued() {
    let (addr, server) = fake_server(session(), |mut s| {
        let a = request_xid(&mut s);
        let b = request_xid(&mut s);
        // out of order, with a notification in between
        reply(&mut s, b, 9, 0, |o| Stat::default().write(o));
        reply(&mut s, -1, -1, 0, |o| {
            WatcherEvent {
                event_type: 3,
                state: 3,
                path: "/w".into(),
            }
            .write(o);
        });
        reply(&mut s, a, 7, ErrorCode::NoNode.code(), |_| {});
        let c = request_xid(&mut s);
        reply(&mut s, c, 10, ErrorCode::NoNode.code(), |_| {});
        // a ping, never answered: the connection closes
        assert_eq!(request_xid(&mut s), -2);
    });
    let mut c = Client::connect(addr).unwrap();
    assert_eq!((c.session_id(), c.negotiated_timeout()), (0x42, 4000));
    assert_eq!(c.passwd(), Bytes::from_static(&[7; 16]));
    let a = c.send(&exists("/a")).unwrap();
    let b = c.send(&exists("/b")).unwrap();
    assert_ne!(a, b);
    let ra = c.wait(a).unwrap();
    assert_eq!(
        (ra.xid, ra.code(), ra.body),
        (a, ErrorCode::NoNode, Response::Empty)
    );
    assert_eq!(c.events().len(), 1);
    let rb = c.recv().unwrap();
    assert_eq!((rb.xid, rb.zxid), (b, 9));
    assert_eq!(rb.body, Response::Stat(Stat::default()));
    assert_eq!(c.last_zxid(), 9);
    let ev = c.next_event(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(ev.path, "/w");
    match c.call_ok(&exists("/c")) {
        Err(ClientError::Server { op, err }) => {
            assert_eq!((op, err), (OpCode::Exists, ErrorCode::NoNode.code()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.next_event(Duration::from_millis(1)).unwrap(), None);
    assert!(matches!(
        c.ping(),
        Err(ClientError::Closed | ClientError::Io(_))
    ));
    server.join().unwrap();
}

#[test]
fn a_refused_session_is_session_expired() {
    let (addr, server) = fake_server(ConnectResponse::default(), drop);
    assert!(matches!(
        Client::connect(addr),
        Err(ClientError::SessionExpired)
    ));
    server.join().unwrap();
}
