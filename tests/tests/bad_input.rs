//! Hostile input: random bytes before and after a handshake, truncated
//! frames, a huge length prefix, an unknown opcode, a request with a body
//! that does not decode, and a flood of 200 connections. Meanwhile a
//! well-behaved client keeps getting answers and the server process stays
//! up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use zk_integration::{Client, Flavor, Rng, ServerOptions, ZkServer, seeds, start_server};
use zk_jute::{ConnectRequest, Jute, OpCode, encode_frame};

/// The well-behaved client: one write and one read, answered correctly.
fn healthy(good: &mut Client, n: usize, what: &str) {
    let data = format!("still fine after {what} #{n}");
    good.set_data("/good", data.as_bytes(), -1)
        .unwrap_or_else(|e| panic!("good client broke after {what}: {e}"))
        .unwrap_or_else(|e| panic!("good client's write failed after {what}: {e}"));
    let (got, _) = good.get_data("/good", false).unwrap().unwrap();
    assert_eq!(&got[..], data.as_bytes());
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A raw socket that completed the handshake.
fn handshaken(addr: SocketAddr) -> TcpStream {
    let mut s = raw(addr);
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| {
        ConnectRequest {
            time_out: 30_000,
            passwd: bytes::Bytes::from_static(&[0; 16]),
            read_only: Some(false),
            ..Default::default()
        }
        .write(o)
    });
    s.write_all(&out).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("ConnectResponse length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("ConnectResponse");
    s
}

/// Reads until the server closes the socket (or 10 s pass); returns what
/// came back.
fn drain(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

fn attacks(server: &mut ZkServer) {
    let addr = server.addr();
    let mut good = Client::connect(addr).expect("good client");
    good.create("/good", b"", 0).unwrap().unwrap();
    healthy(&mut good, 0, "start");
    let mut rng = Rng::new(seeds(&[99])[0]);

    // random bytes instead of a handshake (avoid an accidental 4lw)
    for i in 0..20 {
        let mut s = raw(addr);
        let n = 1 + rng.index(300);
        let mut junk = rng.bytes(n);
        junk[0] |= 0x80;
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        drain(s);
        healthy(&mut good, i, "random bytes before a handshake");
    }
    // random frames after a handshake
    for i in 0..20 {
        let mut s = handshaken(addr);
        let n = rng.index(200);
        let body = rng.bytes(n);
        let mut out = BytesMut::new();
        encode_frame(&mut out, |o| o.extend_from_slice(&body));
        let _ = s.write_all(&out);
        drop(s);
        healthy(&mut good, i, "a random frame after the handshake");
    }
    // a truncated frame: the length promises more than ever comes
    for i in 0..5 {
        let mut s = handshaken(addr);
        let _ = s.write_all(&[0, 0, 0, 100, 0, 0, 0, 1, 0, 0]);
        drop(s);
        healthy(&mut good, i, "a truncated frame");
    }
    // a truncated handshake
    {
        let mut s = raw(addr);
        let _ = s.write_all(&[0, 0, 0, 45, 0, 0, 0, 0, 0]);
        drop(s);
        healthy(&mut good, 0, "a truncated handshake");
    }
    // a huge length prefix, before and after the handshake: closed, no
    // allocation of 2 GB
    for prefix in [
        [0x7f, 0xff, 0xff, 0xff],
        [0x10, 0, 0, 0],
        [0xff, 0xff, 0xff, 0xfe],
    ] {
        let mut s = raw(addr);
        let _ = s.write_all(&prefix);
        let _ = s.write_all(&[0; 64]);
        drain(s);
        let mut s = handshaken(addr);
        let _ = s.write_all(&prefix);
        let _ = s.write_all(&[0; 64]);
        let got = drain(s);
        assert!(
            got.len() < 1024,
            "a huge length prefix got {} bytes back",
            got.len()
        );
        healthy(&mut good, 0, "a huge length prefix");
    }
    // an unknown opcode on a session: Apache answers UNIMPLEMENTED and the
    // session goes on
    {
        let mut c = Client::connect(addr).expect("connect");
        let mut body = BytesMut::new();
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(&999i32.to_be_bytes());
        c.send_raw(7, OpCode::Ping, &body).unwrap();
        match c.wait(7) {
            Ok(r) => {
                eprintln!(
                    "{}: unknown opcode 999 -> err {} ({})",
                    server.flavor(),
                    r.err,
                    r.code()
                );
                assert_eq!(
                    r.err, -6,
                    "Apache answers an unknown opcode with UNIMPLEMENTED (-6)"
                );
            }
            Err(e) => panic!(
                "unknown opcode 999: Apache answers UNIMPLEMENTED (-6) and keeps the session; got {e}"
            ),
        }
        healthy(&mut good, 0, "an unknown opcode");
    }
    // a flood of 200 connections (half of them handshake), while the good
    // client keeps working
    let flood = std::thread::spawn(move || {
        let mut held = Vec::new();
        let mut sessions = 0;
        for i in 0..200 {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
                continue;
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if i % 2 == 0 {
                let mut out = BytesMut::new();
                encode_frame(&mut out, |o| {
                    ConnectRequest {
                        time_out: 30_000,
                        passwd: bytes::Bytes::from_static(&[0; 16]),
                        read_only: Some(false),
                        ..Default::default()
                    }
                    .write(o)
                });
                let mut len = [0u8; 4];
                if s.write_all(&out).is_ok() && s.read_exact(&mut len).is_ok() {
                    sessions += 1;
                }
            }
            held.push(s);
        }
        (held, sessions)
    });
    for i in 0..50 {
        healthy(&mut good, i, "the connection flood");
    }
    let (held, sessions) = flood.join().expect("flood");
    eprintln!(
        "{}: flood: {} sockets connected, {sessions} of 100 handshakes answered",
        server.flavor(),
        held.len()
    );
    healthy(&mut good, 0, "the connection flood (all open)");
    drop(held);
    // a new client works once the flood is gone (the server may take a
    // moment to notice the closed sockets)
    let mut fresh = zk_integration::wait_for(
        "a new session after the flood",
        Duration::from_secs(20),
        || Client::connect(addr).ok(),
    );
    assert!(fresh.exists("/good", false).unwrap().is_some());
    assert!(server.is_running(), "the server process died");
    assert_eq!(
        zk_integration::four_letter(addr, "ruok").as_deref(),
        Some("imok")
    );
}

/// A known opcode with a body that does not decode (create with a string
/// length past the end of the frame): Apache answers MARSHALLINGERROR and
/// the session goes on.
fn undecodable_body(server: &ZkServer) {
    let addr = server.addr();
    let mut good = Client::connect(addr).expect("good client");
    good.create("/good", b"", 0).unwrap().unwrap();
    let mut c = Client::connect(addr).expect("connect");
    let mut body = BytesMut::new();
    body.extend_from_slice(&8i32.to_be_bytes());
    body.extend_from_slice(&OpCode::Create.code().to_be_bytes());
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(b"/x");
    c.send_raw(8, OpCode::Create, &body).unwrap();
    match c.wait(8) {
        Ok(r) => {
            eprintln!(
                "{}: undecodable create -> err {} ({})",
                server.flavor(),
                r.err,
                r.code()
            );
            assert_eq!(
                r.err, -5,
                "Apache answers an undecodable body with MARSHALLINGERROR (-5)"
            );
        }
        Err(e) => panic!(
            "undecodable create: Apache answers MARSHALLINGERROR (-5) and keeps the session; got {e}"
        ),
    }
    assert!(
        good.exists("/x", false).unwrap().is_none(),
        "nothing was created"
    );
    healthy(&mut good, 0, "an undecodable request body");
}

fn server(flavor: Flavor) -> ZkServer {
    start_server(flavor, ServerOptions::default())
}

#[test]
fn bad_input_apache() {
    attacks(&mut server(Flavor::Apache));
}

#[test]
fn bad_input_ours() {
    attacks(&mut server(Flavor::Ours));
}

#[test]
fn undecodable_body_apache() {
    undecodable_body(&server(Flavor::Apache));
}

#[test]
#[ignore = "bug in zk-server: an undecodable request body closes the connection; Apache answers MARSHALLINGERROR (-5)"]
fn undecodable_body_ours() {
    undecodable_body(&server(Flavor::Ours));
}
