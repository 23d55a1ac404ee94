//! The end-to-end tests drive the server with the workspace's raw client,
//! [`zk_client`]; this module only adds the tests' shorthands on top of it:
//! calls that panic when the round trip fails (a ZooKeeper error code is
//! still an answer, in the returned header), and replies checked to come in
//! request order.

#![allow(dead_code, unused_imports, reason = "each test binary uses a part")]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytes::Bytes;
pub use zk_client::{ClientError, read_frame, write_frame};
use zk_client::{ClientResult, ConnectOptions};
use zk_jute::{ReplyHeader, Request, Response, WatcherEvent};

/// How long a test waits for a watch event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A [`zk_client::Client`] (all of its methods through `Deref`) whose
/// shorthands below panic on a failed round trip.
#[derive(Debug)]
pub struct Client {
    inner: zk_client::Client,
    /// xids of the requests [`Client::send`] sent and [`Client::recv`] has
    /// not yet matched, oldest first
    sent: VecDeque<i32>,
}

impl Deref for Client {
    type Target = zk_client::Client;
    fn deref(&self) -> &zk_client::Client {
        &self.inner
    }
}

impl DerefMut for Client {
    fn deref_mut(&mut self) -> &mut zk_client::Client {
        &mut self.inner
    }
}

/// Sends a four-letter word and reads the answer to EOF.
pub fn four_letter(addr: SocketAddr, cmd: &str) -> String {
    zk_client::four_letter(addr, cmd, Duration::from_secs(10)).expect("four-letter word")
}

impl Client {
    /// Opens a new session (30 s timeout); panics if that fails.
    pub fn connect(addr: SocketAddr) -> Client {
        Self::connect_with(addr, 0, Bytes::new(), 30000, 0).expect("connect")
    }

    /// Opens a session (`session_id` 0) or resumes one, asking for `timeout`
    /// ms and sending `last_zxid` as lastZxidSeen. A refused session is
    /// [`ClientError::SessionExpired`].
    pub fn connect_with(
        addr: SocketAddr,
        session_id: i64,
        passwd: Bytes,
        timeout: i32,
        last_zxid: i64,
    ) -> ClientResult<Client> {
        let opts = ConnectOptions {
            timeout_ms: timeout,
            session: (session_id != 0).then_some((session_id, passwd)),
            last_zxid_seen: last_zxid,
            ..ConnectOptions::default()
        };
        let inner = zk_client::Client::connect_with(addr, &opts)?;
        Ok(Client {
            inner,
            sent: VecDeque::new(),
        })
    }

    /// Sends `req` without waiting; returns its xid.
    pub fn send(&mut self, req: &Request) -> i32 {
        let xid = self.inner.send(req).expect("send");
        self.sent.push_back(xid);
        xid
    }

    /// The reply to the oldest request [`Client::send`] sent; panics unless
    /// it is the next reply on the connection (replies come in request order).
    pub fn recv(&mut self) -> (ReplyHeader, Response) {
        let xid = self.sent.pop_front().expect("nothing pending");
        let r = self.inner.recv().expect("reply");
        assert_eq!(r.xid, xid, "replies in request order");
        (r.header(), r.body)
    }

    /// Sends `req` and waits for its reply.
    pub fn call(&mut self, req: Request) -> (ReplyHeader, Response) {
        let r = self.inner.call(&req).expect("call");
        (r.header(), r.body)
    }

    /// Waits for the next watch event (20 s at most).
    pub fn next_event(&mut self) -> WatcherEvent {
        self.inner
            .next_event(EVENT_TIMEOUT)
            .expect("event")
            .expect("a watch event within 20 s")
    }

    /// Closes the session; panics unless the server says OK.
    pub fn close(self) {
        assert_eq!(self.inner.close().expect("closeSession").err, 0);
    }
}

/// Polls `cond` (every few ms) until it holds; panics naming `what` after 20 s.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
