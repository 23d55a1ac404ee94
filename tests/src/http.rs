//! A minimal HTTP/1.0 GET for the tests of the AdminServer and `/metrics`
//! (one request per connection, as those servers answer).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `GET path` on `addr`: the status and the body, or `None` if the
/// connection failed or the answer is not HTTP.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    parse_response(&out)
}

/// Sends raw bytes and returns the status line's code, if an answer came.
pub fn raw(addr: SocketAddr, bytes: &[u8], read_timeout: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(read_timeout)).ok()?;
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out).map(|(code, _)| code)
}

fn parse_response(out: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(out);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// Starts our server with `cfg(port)` on an HTTP port that is already
/// taken: the client port must still serve (a create succeeds) and the
/// output must say `logged` (what could not start).
pub fn assert_taken_port_keeps_serving(cfg: impl Fn(u16) -> String, logged: &str) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let ours = crate::OurZk::start(&cfg(port));
    let mut c = crate::Client::connect(ours.addr()).expect("clients are served");
    c.create("/x", b"", 0).unwrap().unwrap();
    assert!(ours.output().contains(logged), "{}", ours.output_tail(20));
}
