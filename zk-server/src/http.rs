//! A small HTTP/1.1 server for the operators' endpoints (the AdminServer
//! and Prometheus' `/metrics`), bounded against bad clients: it runs on its
//! own threads and sockets, so nothing it meets reaches the client port.
//!
//! * The request head is parsed by `httparse` (the parser hyper uses); this
//!   module only frames: one request per connection, answered with
//!   `Connection: close`.
//! * At most [`MAX_CONNECTIONS`] connections are served at once (a thread
//!   each, small stacks); one more is answered 503 and closed at once.
//! * A request head larger than [`MAX_HEAD`] bytes is answered 431; garbage
//!   400; a method other than GET or HEAD 405.
//! * The whole head must arrive within the idle timeout (a slow client is
//!   closed, 408), and the answer must be written within it too.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// Connections served at once; more are answered 503 and closed.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The largest request head read (request line and headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most (more: 431).
const MAX_HEADERS: usize = 64;

/// An answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// The Content-Type header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A 200 with `body`.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
        }
    }
}

/// What serves a request: given the path and the query string (without
/// the `?`; empty if none), returns the answer. It runs on the
/// connection's thread.
pub(crate) type Handler = Arc<dyn Fn(&str, &str) -> Response + Send + Sync>;

/// A running HTTP server; stopped (and its accept thread joined) on drop.
pub(crate) struct HttpServer {
    name: String,
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("local", &self.local)
            .finish()
    }
}

impl HttpServer {
    /// Binds `addr` and serves it with `handler` on a thread named `name`.
    /// `idle` bounds how long a connection may take to send its request and
    /// read the answer.
    pub fn start(
        name: &str,
        addr: SocketAddr,
        idle: Duration,
        handler: Handler,
    ) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || accept_loop(&listener, &flag, idle, &handler))?;
        Ok(HttpServer {
            name: name.to_string(),
            local,
            stop,
            accept: Some(accept),
        })
    }

    /// The name it was started with (its accept thread's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bound address (the kernel's port when asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and joins the accept thread (connections being
    /// served finish on their own, within the idle timeout).
    pub fn stop(&mut self) {
        let Some(t) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let ip = match self.local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let _ = TcpStream::connect_timeout(
            &SocketAddr::new(ip, self.local.port()),
            Duration::from_secs(1),
        );
        let _ = t.join();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, idle: Duration, handler: &Handler) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of fds and the like: do not spin.
                warn!("HTTP accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            debug!("HTTP: too many connections; answering {peer} 503");
            refuse(stream);
            continue;
        }
        let (active2, handler) = (active.clone(), handler.clone());
        let spawned = std::thread::Builder::new()
            .name("zk-http-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                serve_connection(stream, idle, &handler);
                active2.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Answers 503 without waiting on the peer, and closes.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(&head(503, "text/plain; charset=utf-8", 0));
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn head(status: u16, content_type: &str, len: usize) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        reason(status)
    )
    .into_bytes()
}

/// What reading a request head gave.
enum Head {
    /// A GET (`body`) or HEAD (not `body`) of this path and query.
    Request {
        path: String,
        query: String,
        body: bool,
    },
    /// Answer this status and close.
    Refuse(u16),
    /// Close without an answer (the peer went away).
    Gone,
}

fn read_head(stream: &mut TcpStream, idle: Duration) -> Head {
    let deadline = Instant::now() + idle;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Head::Refuse(408);
        }
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) => return Head::Gone,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Head::Refuse(408);
            }
            Err(_) => return Head::Gone,
        };
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let target = req.path.unwrap_or("/");
                let target = target.split('#').next().unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let (path, query) = (path.to_string(), query.to_string());
                return match req.method {
                    Some("GET") => Head::Request {
                        path,
                        query,
                        body: true,
                    },
                    Some("HEAD") => Head::Request {
                        path,
                        query,
                        body: false,
                    },
                    _ => Head::Refuse(405),
                };
            }
            Ok(httparse::Status::Partial) if len == buf.len() => return Head::Refuse(431),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Head::Refuse(431),
            Err(httparse::Error::Version) => return Head::Refuse(505),
            Err(_) => return Head::Refuse(400),
        }
    }
}

fn serve_connection(mut stream: TcpStream, idle: Duration, handler: &Handler) {
    let _ = stream.set_write_timeout(Some(idle));
    let (resp, body) = match read_head(&mut stream, idle) {
        Head::Gone => return,
        Head::Refuse(status) => (Response::status(status), false),
        Head::Request { path, query, body } => {
            let resp = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handler(&path, &query)
            })) {
                Ok(r) => r,
                Err(_) => {
                    warn!("HTTP handler for {path:?} panicked");
                    Response::status(500)
                }
            };
            (resp, body)
        }
    };
    let mut out = head(resp.status, resp.content_type, resp.body.len());
    if body {
        out.extend_from_slice(&resp.body);
    }
    let _ = stream.write_all(&out);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Drain a little of what the client may still send, so that closing
    // does not reset the connection before it read the answer.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> HttpServer {
        let handler: Handler = Arc::new(|path: &str, _query: &str| match path {
            "/hello" => Response::ok("text/plain", "hi"),
            _ => Response::status(404),
        });
        HttpServer::start(
            "test-http",
            "127.0.0.1:0".parse().unwrap(),
            Duration::from_millis(500),
            handler,
        )
        .unwrap()
    }

    fn exchange(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(req);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn answers_and_refuses() {
        let mut srv = server();
        let a = srv.local_addr();
        let ok = exchange(a, b"GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("\r\n\r\nhi"),
            "{ok}"
        );
        let head_only = exchange(a, b"HEAD /hello HTTP/1.0\r\n\r\n");
        assert!(head_only.contains("Content-Length: 2") && head_only.ends_with("\r\n\r\n"));
        assert!(exchange(a, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(exchange(a, b"POST /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(exchange(a, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        let mut huge = b"GET /hello HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD + 100, b'a');
        assert!(exchange(a, &huge).starts_with("HTTP/1.1 431"));
        // Silent: closed after the idle timeout.
        assert!(exchange(a, b"GET /hel").starts_with("HTTP/1.1 408"));
        srv.stop();
        assert!(TcpStream::connect(a).is_err());
    }
}
