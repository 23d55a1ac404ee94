//! The HTTP server behind the operators' endpoints (the AdminServer and
//! Prometheus' `/metrics`): hyper's HTTP/1 server on a single-threaded
//! tokio runtime of its own thread, so neither the runtime nor anything an
//! HTTP client sends reaches the client port's event loop.
//!
//! hyper does all of HTTP (parsing, framing, HEAD, error answers); this
//! module only bounds it against bad clients:
//! * at most [`MAX_CONNECTIONS`] connections are served at once; up to as
//!   many more are answered 503 at once, and beyond that a connection is
//!   closed unanswered;
//! * a request head larger than [`MAX_HEAD`] bytes or with more than
//!   [`MAX_HEADERS`] headers is answered 431 (hyper's limits), garbage 400,
//!   a method other than GET or HEAD 405;
//! * one request per connection (`Connection: close`); the head must
//!   arrive within the idle timeout, and the whole exchange must end within
//!   twice the idle timeout, or the connection is closed;
//! * the handler runs on the runtime's blocking pool (a few threads), and
//!   a handler that panics answers 500.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, warn};

/// Connections served at once; as many more are answered 503.
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// The largest request head read (request line and headers): hyper's read
/// buffer limit.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Headers parsed at most (more: 431).
const MAX_HEADERS: usize = 64;
/// Threads that run handlers at once.
const HANDLER_THREADS: usize = 4;

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
/// the `?`; empty if none), returns the answer. It runs on a thread of the
/// server's blocking pool.
pub(crate) type Handler = Arc<dyn Fn(&str, &str) -> Response + Send + Sync>;

/// A running HTTP server; stopped (and its thread joined) on drop.
pub(crate) struct HttpServer {
    name: String,
    local: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
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
    /// `idle` bounds how long a connection may take to send its request
    /// head (and twice that for the whole exchange).
    pub fn start(
        name: &str,
        addr: SocketAddr,
        idle: Duration,
        handler: Handler,
    ) -> std::io::Result<HttpServer> {
        // Bound here, so that a taken port is the caller's error.
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(HANDLER_THREADS)
            .thread_name(format!("{name}-handler"))
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let served = runtime.block_on(serve(listener, idle, handler, stopped));
                if let Err(e) = served {
                    warn!("HTTP server on {local} stopped: {e}");
                }
                // Handlers still running are not waited for long.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(HttpServer {
            name: name.to_string(),
            local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The name it was started with (its thread's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bound address (the kernel's port when asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, drops the connections being served and joins the
    /// server's thread; the port is free when it returns.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The accept loop, until `stopped`.
async fn serve(
    listener: TcpListener,
    idle: Duration,
    handler: Handler,
    mut stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let served = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let refused = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of fds and the like: do not spin.
                    warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let io = TokioIo::new(stream);
        if let Ok(permit) = served.clone().try_acquire_owned() {
            let handler = handler.clone();
            let service = service_fn(move |req| answer(req, handler.clone()));
            tokio::spawn(async move {
                let conn = builder(idle).serve_connection(io, service);
                match tokio::time::timeout(idle * 2, conn).await {
                    Ok(Err(e)) => debug!("HTTP connection from {peer}: {e}"),
                    Err(_) => debug!("HTTP connection from {peer}: too slow, closed"),
                    Ok(Ok(())) => {}
                }
                drop(permit);
            });
        } else if let Ok(permit) = refused.clone().try_acquire_owned() {
            debug!("HTTP: too many connections; answering {peer} 503");
            let service = service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(to_hyper(Response::status(503)))
            });
            tokio::spawn(async move {
                let conn = builder(idle).serve_connection(io, service);
                let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                drop(permit);
            });
        } else {
            debug!("HTTP: far too many connections; closing {peer}'s");
        }
    }
}

/// hyper's HTTP/1 settings: the limits above, one request per connection.
fn builder(idle: Duration) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.keep_alive(false)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    b
}

/// Runs the handler for a GET or HEAD (hyper leaves a HEAD's body out).
async fn answer(
    req: Request<Incoming>,
    handler: Handler,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(to_hyper(Response::status(405)));
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = match tokio::task::spawn_blocking(move || handler(&path, &query)).await {
        Ok(r) => r,
        Err(e) => {
            warn!("HTTP handler for {:?} failed: {e}", req.uri().path());
            Response::status(500)
        }
    };
    Ok(to_hyper(resp))
}

fn to_hyper(resp: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(resp.content_type),
    );
    out
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    fn server() -> HttpServer {
        let handler: Handler = Arc::new(|path: &str, query: &str| match path {
            "/hello" => Response::ok("text/plain", "hi"),
            "/query" => Response::ok("text/plain", query.to_string()),
            "/panic" => panic!("handler bug"),
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
        let lower = ok.to_ascii_lowercase();
        assert!(lower.contains("connection: close") && lower.contains("content-type: text/plain"));
        assert!(exchange(a, b"GET /query?x=1&y HTTP/1.0\r\n\r\n").ends_with("\r\n\r\nx=1&y"));
        let head_only = exchange(a, b"HEAD /hello HTTP/1.0\r\n\r\n");
        assert!(
            head_only.to_ascii_lowercase().contains("content-length: 2")
                && head_only.ends_with("\r\n\r\n"),
            "{head_only}"
        );
        assert!(exchange(a, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(exchange(a, b"POST /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(exchange(a, b"GET /panic HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 500"));
        assert!(exchange(a, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        let mut huge = b"GET /hello HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD + 100, b'a');
        assert!(exchange(a, &huge).starts_with("HTTP/1.1 431"));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let req = format!("GET /hello HTTP/1.1\r\n{many}\r\n");
        assert!(exchange(a, req.as_bytes()).starts_with("HTTP/1.1 431"));
        // Silent: answered 408 or closed after the idle timeout, never held.
        let t = std::time::Instant::now();
        let slow = exchange(a, b"GET /hel");
        assert!(
            slow.is_empty() || slow.starts_with("HTTP/1.1 408"),
            "{slow}"
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        srv.stop();
        assert!(TcpStream::connect(a).is_err());
    }

    #[test]
    fn too_many_connections_are_refused_then_served_again() {
        let srv = server();
        let a = srv.local_addr();
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(a).unwrap())
            .collect();
        // Accepted in order: every slot is taken before the next connects.
        std::thread::sleep(Duration::from_millis(100));
        assert!(exchange(a, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        drop(idle);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !exchange(a, b"GET /hello HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200") {
            assert!(std::time::Instant::now() < deadline, "never served again");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
