//! [`Client`]: one session on one blocking connection.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_jute::{
    Acl, AuthPacket, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, ExistsRequest,
    FrameDecoder, GetAclRequest, GetChildren2Request, GetDataRequest, Jute, OpCode, Reader,
    ReplyHeader, Request, Response, SetDataRequest, Stat, WatcherEvent, encode_frame, xid,
};

use crate::{
    ClientError, ClientResult, ConnectOptions, DEFAULT_IO_TIMEOUT, open_acl, open_session,
};

/// One reply: the header fields and the decoded body ([`Response::Empty`] for
/// errors and body-less replies; a multi's body is decoded also when it
/// failed, as it carries the per-op results).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's xid.
    pub xid: i32,
    /// The zxid in the reply header.
    pub zxid: i64,
    /// The error code in the reply header (0 = OK).
    pub err: i32,
    /// The decoded body.
    pub body: Response,
}

impl Reply {
    /// The error code as an [`ErrorCode`] (unknown codes map to `SystemError`).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::try_from(self.err).unwrap_or(ErrorCode::SystemError)
    }

    /// The reply header (xid, zxid, err).
    pub fn header(&self) -> ReplyHeader {
        ReplyHeader {
            xid: self.xid,
            zxid: self.zxid,
            err: self.err,
        }
    }

    /// Panics with `what` unless the reply is OK.
    pub fn expect_ok(self, what: &str) -> Reply {
        assert_eq!(self.err, 0, "{what}: expected OK, got {}", self.code());
        self
    }
}

/// A connected session. See the [crate] documentation for the model: raw
/// requests, replies matched by xid, notifications queued, no background
/// activity.
pub struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
    /// bytes read and not yet decoded into frames
    buf: BytesMut,
    /// the write buffer, reused for every request
    out: BytesMut,
    next_xid: i32,
    /// opcode of every request sent and not yet answered, by xid
    pending: HashMap<i32, OpCode>,
    /// replies read while waiting for another xid, in arrival order
    parked: VecDeque<Reply>,
    events: VecDeque<WatcherEvent>,
    session_id: i64,
    passwd: Bytes,
    negotiated_timeout: i32,
    /// The server answered the handshake as a read-only server.
    read_only: bool,
    last_zxid: i64,
    addr: SocketAddr,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("in_flight", &self.pending.len())
            .finish()
    }
}

impl Client {
    /// Opens a new session with a 30 s timeout.
    pub fn connect(addr: SocketAddr) -> ClientResult<Client> {
        Self::connect_with(addr, &ConnectOptions::default())
    }

    /// Opens or resumes a session. Fails with [`ClientError::SessionExpired`]
    /// when the server refuses it (`timeOut == 0`).
    pub fn connect_with(addr: SocketAddr, opts: &ConnectOptions) -> ClientResult<Client> {
        let (stream, resp) = open_session(addr, opts)?;
        Ok(Client {
            stream,
            decoder: FrameDecoder::default(),
            buf: BytesMut::with_capacity(64 * 1024),
            out: BytesMut::with_capacity(4 * 1024),
            next_xid: 1,
            pending: HashMap::new(),
            parked: VecDeque::new(),
            events: VecDeque::new(),
            session_id: resp.session_id,
            passwd: resp.passwd,
            negotiated_timeout: resp.time_out,
            read_only: resp.read_only,
            last_zxid: opts.last_zxid_seen,
            addr,
        })
    }

    /// The session id the server assigned.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password (to resume the session on another connection).
    pub fn passwd(&self) -> Bytes {
        self.passwd.clone()
    }

    /// Whether the server gave this session in read-only mode (the
    /// handshake reply's `readOnly`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The negotiated session timeout in ms.
    pub fn negotiated_timeout(&self) -> i32 {
        self.negotiated_timeout
    }

    /// The highest zxid seen in a reply header (what a resuming client sends
    /// as `lastZxidSeen`).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Options that resume this session on a new connection.
    pub fn resume_options(&self) -> ConnectOptions {
        ConnectOptions {
            timeout_ms: self.negotiated_timeout,
            session: Some((self.session_id, self.passwd.clone())),
            last_zxid_seen: self.last_zxid,
            io_timeout: DEFAULT_IO_TIMEOUT,
            read_only: self.read_only,
        }
    }

    /// The raw socket (for tests that write garbage after a handshake, or
    /// read frames themselves with [`crate::read_frame`]; bytes the client
    /// has already buffered are not seen there).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends `req` with the next xid (or the reserved xid its opcode uses:
    /// -2 for ping, -4 for auth) and returns that xid without waiting.
    pub fn send(&mut self, req: &Request) -> ClientResult<i32> {
        let xid = match req {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            _ => {
                let x = self.next_xid;
                self.next_xid = self.next_xid.wrapping_add(1) & i32::MAX;
                x
            }
        };
        self.send_with_xid(xid, req)?;
        Ok(xid)
    }

    /// Sends `req` with an explicit xid.
    pub fn send_with_xid(&mut self, xid: i32, req: &Request) -> ClientResult<()> {
        self.out.clear();
        encode_frame(&mut self.out, |o| req.encode_frame(xid, o));
        self.stream.write_all(&self.out)?;
        self.pending.insert(xid, req.op_code());
        Ok(())
    }

    /// Sends a raw frame body (header + body, without the length prefix) and
    /// records that a reply to `xid` decodes as opcode `op`.
    pub fn send_raw(&mut self, xid: i32, op: OpCode, body: &[u8]) -> ClientResult<()> {
        self.out.clear();
        encode_frame(&mut self.out, |o| o.extend_from_slice(body));
        self.stream.write_all(&self.out)?;
        self.pending.insert(xid, op);
        Ok(())
    }

    /// Waits for the reply to `xid`, queueing notifications and keeping other
    /// replies met on the way (for a later `wait` or [`Client::recv`]).
    pub fn wait(&mut self, xid: i32) -> ClientResult<Reply> {
        if let Some(i) = self.parked.iter().position(|r| r.xid == xid)
            && let Some(r) = self.parked.remove(i)
        {
            return Ok(r);
        }
        loop {
            let r = self.read_reply()?;
            if r.xid == xid {
                return Ok(r);
            }
            self.parked.push_back(r);
        }
    }

    /// The next reply in arrival order, whatever its xid (one kept by an
    /// earlier [`Client::wait`] first), queueing notifications met on the way.
    pub fn recv(&mut self) -> ClientResult<Reply> {
        match self.parked.pop_front() {
            Some(r) => Ok(r),
            None => self.read_reply(),
        }
    }

    /// Sends `req` and waits for its reply.
    pub fn call(&mut self, req: &Request) -> ClientResult<Reply> {
        let xid = self.send(req)?;
        self.wait(xid)
    }

    /// Sends `req` and returns the body of its reply; a non-zero error code
    /// is [`ClientError::Server`].
    pub fn call_ok(&mut self, req: &Request) -> ClientResult<Response> {
        let r = self.call(req)?;
        if r.err != 0 {
            return Err(ClientError::Server {
                op: req.op_code(),
                err: r.err,
            });
        }
        Ok(r.body)
    }

    /// Reads frames until a reply, queueing notifications.
    fn read_reply(&mut self) -> ClientResult<Reply> {
        loop {
            if let Some(r) = self.read_one()? {
                return Ok(r);
            }
        }
    }

    /// Reads one frame: a reply, or `None` for a notification (queued).
    fn read_one(&mut self) -> ClientResult<Option<Reply>> {
        let frame = self.read_frame()?;
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r)?;
        if h.xid == xid::NOTIFICATION {
            self.events.push_back(WatcherEvent::read(&mut r)?);
            return Ok(None);
        }
        let op = self.pending.remove(&h.xid).unwrap_or(OpCode::Ping);
        let multi = matches!(op, OpCode::Multi | OpCode::MultiRead);
        let body = if h.err != 0 && !(multi && r.remaining() > 0) {
            Response::Empty
        } else {
            Response::read_body(op, &mut r)?
        };
        self.last_zxid = self.last_zxid.max(h.zxid);
        Ok(Some(Reply {
            xid: h.xid,
            zxid: h.zxid,
            err: h.err,
            body,
        }))
    }

    fn read_frame(&mut self) -> ClientResult<Bytes> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf)? {
                return Ok(f);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Notifications received and not yet taken, oldest first.
    pub fn events(&self) -> &VecDeque<WatcherEvent> {
        &self.events
    }

    /// Notifications received so far, oldest first (drains the queue).
    pub fn take_events(&mut self) -> Vec<WatcherEvent> {
        self.events.drain(..).collect()
    }

    /// Waits until a notification arrives (or `timeout` passes); replies read
    /// meanwhile are kept.
    pub fn next_event(&mut self, timeout: Duration) -> ClientResult<Option<WatcherEvent>> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + timeout;
        let saved = self.stream.read_timeout()?;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.read_one() {
                Ok(Some(reply)) => self.parked.push_back(reply),
                Ok(None) => break Ok(self.events.pop_front()),
                Err(ClientError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Ok(None);
                }
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(saved)?;
        result
    }

    /// Sends a ping and waits for its reply.
    pub fn ping(&mut self) -> ClientResult<Reply> {
        self.call(&Request::Ping)
    }

    /// A round trip that guarantees every notification the server queued for
    /// this session before now has been received (replies and notifications
    /// are ordered on a connection).
    pub fn flush(&mut self) -> ClientResult<()> {
        self.call(&Request::Exists(ExistsRequest {
            path: "/".into(),
            watch: false,
        }))?;
        Ok(())
    }

    /// Adds credentials (`addauth scheme auth`); returns the reply error code.
    pub fn add_auth(&mut self, scheme: &str, auth: &str) -> ClientResult<i32> {
        let r = self.call(&Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Bytes::copy_from_slice(auth.as_bytes()),
        }))?;
        Ok(r.err)
    }

    /// Sends closeSession and waits for its reply (the server then closes the
    /// socket).
    pub fn close(mut self) -> ClientResult<Reply> {
        let r = self.call(&Request::CloseSession);
        let _ = self.stream.shutdown(Shutdown::Both);
        r
    }

    /// Drops the TCP connection without closing the session.
    pub fn disconnect(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Conveniences for the common ops: `Ok(value)`, or `Ok(Err(code))` when the
/// server answers with an error; the `*_node` / [`Client::node`] forms panic
/// unless the server says OK.
impl Client {
    /// create with open ACL; returns the created path.
    pub fn create(
        &mut self,
        path: &str,
        data: &[u8],
        flags: i32,
    ) -> ClientResult<Result<String, ErrorCode>> {
        let r = self.call(&Request::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            acl: open_acl(),
            flags,
        }))?;
        Ok(match r.body {
            Response::Create(c) if r.err == 0 => Ok(c.path),
            _ => Err(r.code()),
        })
    }

    /// Creates `path` of any kind: `data` (`None` = null), `acl`, `flags`
    /// (CreateMode: 4 container, 5/6 TTL of one hour, else create2); returns
    /// the created path. Panics unless the server says OK.
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        flags: i32,
    ) -> String {
        let data = data.map(Bytes::copy_from_slice);
        let path_s = path.to_string();
        let req = match flags {
            4 => Request::CreateContainer(CreateRequest {
                path: path_s,
                data,
                acl,
                flags,
            }),
            5 | 6 => Request::CreateTtl(CreateTtlRequest {
                path: path_s,
                data,
                acl,
                flags,
                ttl: 3_600_000,
            }),
            _ => Request::Create2(CreateRequest {
                path: path_s,
                data,
                acl,
                flags,
            }),
        };
        let r = self.call(&req).expect("create").expect_ok(path);
        match r.body {
            Response::Create2(c) => c.path,
            other => panic!("create {path}: {other:?}"),
        }
    }

    /// What the server answers for `path`: data (null kept apart from
    /// empty), stat and ACL. Panics unless both reads succeed.
    pub fn node(&mut self, path: &str) -> (Option<Bytes>, Stat, Vec<Acl>) {
        let r = self
            .call(&Request::GetData(GetDataRequest {
                path: path.into(),
                watch: false,
            }))
            .expect("getData")
            .expect_ok(path);
        let Response::GetData(g) = r.body else {
            panic!("getData {path}: {:?}", r.body)
        };
        let r = self
            .call(&Request::GetAcl(GetAclRequest { path: path.into() }))
            .expect("getACL")
            .expect_ok(path);
        let Response::GetAcl(a) = r.body else {
            panic!("getACL {path}: {:?}", r.body)
        };
        (g.data, g.stat, a.acl)
    }

    /// getData; returns data (null as empty) and stat.
    pub fn get_data(
        &mut self,
        path: &str,
        watch: bool,
    ) -> ClientResult<Result<(Bytes, Stat), ErrorCode>> {
        let r = self.call(&Request::GetData(GetDataRequest {
            path: path.into(),
            watch,
        }))?;
        Ok(match r.body {
            Response::GetData(g) if r.err == 0 => Ok((g.data.unwrap_or_default(), g.stat)),
            _ => Err(r.code()),
        })
    }

    /// setData; returns the new stat.
    pub fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
    ) -> ClientResult<Result<Stat, ErrorCode>> {
        let r = self.call(&Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            version,
        }))?;
        Ok(match r.body {
            Response::Stat(s) if r.err == 0 => Ok(s),
            _ => Err(r.code()),
        })
    }

    /// delete.
    pub fn delete(&mut self, path: &str, version: i32) -> ClientResult<Result<(), ErrorCode>> {
        let r = self.call(&Request::Delete(DeleteRequest {
            path: path.into(),
            version,
        }))?;
        Ok(if r.err == 0 { Ok(()) } else { Err(r.code()) })
    }

    /// exists; `Ok(None)` when the node does not exist.
    pub fn exists(&mut self, path: &str, watch: bool) -> ClientResult<Option<Stat>> {
        let r = self.call(&Request::Exists(ExistsRequest {
            path: path.into(),
            watch,
        }))?;
        Ok(match r.body {
            Response::Stat(s) if r.err == 0 => Some(s),
            _ => None,
        })
    }

    /// getChildren2; returns the children (sorted) and the stat.
    pub fn children(
        &mut self,
        path: &str,
        watch: bool,
    ) -> ClientResult<Result<(Vec<String>, Stat), ErrorCode>> {
        let r = self.call(&Request::GetChildren2(GetChildren2Request {
            path: path.into(),
            watch,
        }))?;
        Ok(match r.body {
            Response::GetChildren2(mut c) if r.err == 0 => {
                c.children.sort();
                Ok((c.children, c.stat))
            }
            _ => Err(r.code()),
        })
    }
}
