//! A small raw ZooKeeper client: the wire protocol through [`zk_jute`] over a
//! blocking [`std::net::TcpStream`]. No async, no threads, nothing in the
//! background.
//!
//! It is the one client of the workspace's own tools: the integration tests
//! and their fault harness (`tests/`), zk-server's end-to-end tests, the
//! Criterion benches (`benches/`) and the load generator (`zk-bench`, which
//! opens its sessions here and then drives the sockets itself).
//!
//! It is deliberately raw: every request is a [`zk_jute::Request`] value and
//! every reply a [`Reply`] carrying the header's xid, zxid and error code next
//! to the decoded body, so a test can send any opcode (including ones the Java
//! client never sends) and compare answers field by field. ZooKeeper error
//! codes are answers, not failures: they are in [`Reply::err`], and only
//! [`Client::call_ok`] turns them into a [`ClientError::Server`].
//!
//! * [`Client::connect`] / [`Client::connect_with`] open or resume a session
//!   ([`ConnectOptions`]; a refused session is [`ClientError::SessionExpired`]).
//! * [`Client::send`] writes a request and returns its xid without waiting,
//!   so many can be in flight (pipelining); [`Client::wait`] reads until the
//!   reply with that xid arrives, keeping other replies and queueing watch
//!   notifications in arrival order; [`Client::recv`] returns the next reply
//!   in arrival order (to check that replies come in request order).
//! * [`Client::call`] is `send` + `wait`; [`Client::call_ok`] also fails on a
//!   non-zero error code.
//! * Notifications (xid -1) queue in [`Client::events`], drained by
//!   [`Client::take_events`] and [`Client::next_event`].
//! * Pings are sent only by [`Client::ping`] (the session-expiry tests rely on
//!   that); auth is [`Client::add_auth`]; multi is
//!   `call(&Request::Multi(ops))`, its body decoded also when it failed.
//! * Conveniences for the common ops ([`Client::create`],
//!   [`Client::get_data`], ...) return `Ok(Err(code))` for a ZooKeeper error.
//!
//! Below the client, for code that drives sockets itself: [`open_session`]
//! (the handshake on a fresh blocking socket), [`read_frame`] /
//! [`write_frame`] (length-prefixed frames), [`reply_header`] (peek a reply's
//! header without decoding its body) and [`four_letter`] (`ruok`, `mntr`, ...).

mod client;
mod frame;

pub use client::{Client, Reply};
pub use frame::{four_letter, read_frame, reply_header, write_frame};

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_jute::{Acl, ConnectRequest, ConnectResponse, Id, Jute, OpCode, encode_frame, perms};

/// How long a blocking read or write may wait before a call fails (a hung
/// server must fail a test, not hang it).
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The server sent bytes that do not decode.
    Decode(zk_jute::DecodeError),
    /// The server closed the connection.
    Closed,
    /// The server refused the session (expired or unknown): `timeOut == 0`.
    SessionExpired,
    /// [`Client::call_ok`] only: the server answered this request with a
    /// non-zero error code.
    Server {
        /// The request's opcode.
        op: OpCode,
        /// The error code in the reply header.
        err: i32,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o error: {e}"),
            ClientError::Decode(e) => write!(f, "undecodable reply: {e}"),
            ClientError::Closed => f.write_str("connection closed by the server"),
            ClientError::SessionExpired => {
                f.write_str("session expired (timeOut 0 in ConnectResponse)")
            }
            ClientError::Server { op, err } => {
                let name = zk_jute::ErrorCode::try_from(*err)
                    .map_or_else(|_| err.to_string(), |c| c.name().to_owned());
                write!(f, "{op:?}: {name}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ClientError::Closed
        } else {
            ClientError::Io(e)
        }
    }
}

impl From<zk_jute::DecodeError> for ClientError {
    fn from(e: zk_jute::DecodeError) -> Self {
        ClientError::Decode(e)
    }
}

/// Result of a client call.
pub type ClientResult<T> = Result<T, ClientError>;

/// How to open a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Requested session timeout in ms.
    pub timeout_ms: i32,
    /// `Some((id, password))` to resume a session, `None` for a new one.
    pub session: Option<(i64, Bytes)>,
    /// The last zxid this client saw (resuming clients send it).
    pub last_zxid_seen: i64,
    /// Connect timeout, and socket read and write timeout for every call.
    pub io_timeout: Duration,
    /// The handshake's `readOnly` flag (the Java client's `canBeReadOnly`):
    /// a server in read-only mode accepts only such clients.
    pub read_only: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            session: None,
            last_zxid_seen: 0,
            io_timeout: DEFAULT_IO_TIMEOUT,
            read_only: false,
        }
    }
}

/// Connects to `addr` and opens (or resumes) a session: the bare handshake,
/// for code that drives the socket itself afterwards (zk-bench hands it to
/// mio). The stream is blocking, with `TCP_NODELAY` and `opts.io_timeout` as
/// its read and write timeouts; nothing past the `ConnectResponse` has been
/// read from it. A refusal (`timeOut <= 0` or session id 0) is
/// [`ClientError::SessionExpired`].
pub fn open_session(
    addr: SocketAddr,
    opts: &ConnectOptions,
) -> ClientResult<(TcpStream, ConnectResponse)> {
    let mut stream = TcpStream::connect_timeout(&addr, opts.io_timeout)?;
    stream.set_read_timeout(Some(opts.io_timeout))?;
    stream.set_write_timeout(Some(opts.io_timeout))?;
    stream.set_nodelay(true)?;
    let (session_id, passwd) = opts
        .session
        .clone()
        .unwrap_or((0, Bytes::from_static(&[0; 16])));
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: opts.last_zxid_seen,
        time_out: opts.timeout_ms,
        session_id,
        passwd,
        read_only: Some(opts.read_only),
    };
    let mut out = BytesMut::new();
    encode_frame(&mut out, |o| req.write(o));
    stream.write_all(&out)?;
    let resp = ConnectResponse::from_bytes(read_frame(&mut stream)?)?;
    if resp.time_out <= 0 || resp.session_id == 0 {
        return Err(ClientError::SessionExpired);
    }
    Ok((stream, resp))
}

/// One ACL entry.
pub fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id {
            scheme: scheme.into(),
            id: id.into(),
        },
    }
}

/// The world-readable, world-writable ACL (`world:anyone`, all permissions):
/// what most clients send.
pub fn open_acl() -> Vec<Acl> {
    vec![acl(perms::ALL, "world", "anyone")]
}

#[cfg(test)]
mod tests;
