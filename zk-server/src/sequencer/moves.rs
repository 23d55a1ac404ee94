//! Sessions moving between the servers of an ensemble (quorum.md §3.8, §6):
//! REVALIDATE, and the leader's session owners behind SESSIONMOVED.
//!
//! * A client reconnecting to a learner with its session id and password:
//!   the password is checked here (every server computes it from the id),
//!   then the learner asks the leader (REVALIDATE: id i64, timeout i32). The
//!   leader touches the session and, if it lives, makes that learner
//!   connection its owner; it answers (id i64, valid bool) and the learner
//!   finishes the handshake with the answer (Apache: `Learner.validateSession`,
//!   `Leader.revalidateSession`, `finishSessionInit`).
//! * The leader records each session's owner: itself (a client connected
//!   here) or a learner connection. createSession, REVALIDATE and a
//!   reconnect here set it; after a leader change the first request claims
//!   it (owners are not replicated). A write whose owner is another server
//!   becomes a SESSIONMOVED error txn (the first op of a multi fails with it,
//!   the rest with RUNTIMEINCONSISTENCY, as Apache's prep), and the server
//!   that answers it closes that client connection instead of replying
//!   (Apache's FinalRequestProcessor, ZOOKEEPER-710): the client moved on.
//!   closeSession is never checked (the leader's expiry sends it too).

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tracing::{info, warn};
use zk_jute::{ConnectRequest, ErrorCode, ErrorTxn, Jute, Reader, Request, TxnBody};
use zk_zab::{Conn, Packet};

use super::Sequencer;
use super::role::Role;
use crate::msg::{LoopMsg, QuorumOut};

/// Who a session is attached to, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// A client connection of the leader itself.
    Here,
    /// A learner's connection to the leader (a new connection of the same
    /// server is another owner, as Apache's LearnerHandler objects).
    Learner(Conn),
}

/// Leader: the owners of the sessions that were created, revalidated or
/// used during this leader's epoch.
pub(super) type Owners = hashbrown::HashMap<i64, Owner>;

/// Learner: a client handshake waiting for the leader's REVALIDATE answer.
pub(super) struct PendingRevalidation {
    conn: u64,
    peer: SocketAddr,
    timeout: i32,
}

/// Learner: handshakes waiting for REVALIDATE answers, per session, in the
/// order asked.
pub(super) type Revalidations = hashbrown::HashMap<i64, VecDeque<PendingRevalidation>>;

/// Whether an applied txn tells its client that the session moved.
pub(super) fn is_session_moved(body: &TxnBody) -> bool {
    let moved = ErrorCode::SessionMoved.code();
    match body {
        TxnBody::Error(e) => e.err == moved,
        TxnBody::Multi(ops) => ops
            .iter()
            .any(|op| matches!(op, TxnBody::Error(e) if e.err == moved)),
        _ => false,
    }
}

/// The txn of a write refused with SESSIONMOVED.
fn moved_txn(req: &Request) -> TxnBody {
    refusal_txn(req, ErrorCode::SessionMoved)
}

/// The error txn of a write refused before prep with `code`: a multi's first
/// op fails with it and the rest with RUNTIMEINCONSISTENCY, as Apache's prep.
fn refusal_txn(req: &Request, code: ErrorCode) -> TxnBody {
    let err = |code: ErrorCode| TxnBody::Error(ErrorTxn { err: code.code() });
    match req {
        Request::Multi(ops) if !ops.is_empty() => {
            let mut txns = vec![err(code)];
            txns.extend((1..ops.len()).map(|_| err(ErrorCode::RuntimeInconsistency)));
            TxnBody::Multi(txns)
        }
        _ => err(code),
    }
}

/// The client writes ZooKeeper's prep checks the session of
/// (`checkSession` in `pRequest2Txn`): not createSession / closeSession, nor
/// the server's own deleteContainer, nor an empty multi (no op to check).
fn checks_session(req: &Request) -> bool {
    match req {
        Request::Multi(ops) => !ops.is_empty(),
        _ => matches!(
            req,
            Request::Create(_)
                | Request::Create2(_)
                | Request::CreateContainer(_)
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Reconfig(_)
        ),
    }
}

impl Sequencer {
    /// Learner: a client resumes its session here; the leader decides.
    pub(super) fn revalidate(
        &mut self,
        conn: u64,
        peer: SocketAddr,
        req: &ConnectRequest,
        timeout: i32,
    ) {
        let session = req.session_id;
        let password_ok = {
            let st = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            req.passwd.as_ref() == st.password(session)
        };
        let Some(Role::Learning(l)) = &mut self.role else {
            return;
        };
        if !password_ok {
            warn!("Incorrect password from /{peer} for session 0x{session:x}");
            return self.refuse_session(conn);
        }
        l.revalidations
            .entry(session)
            .or_default()
            .push_back(PendingRevalidation {
                conn,
                peer,
                timeout,
            });
        let mut data = BytesMut::with_capacity(12);
        data.extend_from_slice(&session.to_be_bytes());
        data.extend_from_slice(&timeout.to_be_bytes());
        self.out(QuorumOut::ToLeader(Packet::Revalidate {
            data: data.freeze(),
        }));
    }

    /// Learner: the leader's REVALIDATE answer finishes the oldest handshake
    /// waiting for that session.
    pub(super) fn revalidated(&mut self, data: &Bytes) {
        let (session, valid) = match (data.get(..8), data.get(8)) {
            (Some(id), Some(&v)) => (
                i64::from_be_bytes(id.try_into().unwrap_or_default()),
                v != 0,
            ),
            _ => {
                warn!("a REVALIDATE answer of {} bytes: ignored", data.len());
                return;
            }
        };
        let Some(Role::Learning(l)) = &mut self.role else {
            return;
        };
        let pending = l
            .revalidations
            .get_mut(&session)
            .and_then(VecDeque::pop_front);
        if l.revalidations
            .get(&session)
            .is_some_and(VecDeque::is_empty)
        {
            l.revalidations.remove(&session);
        }
        let Some(p) = pending else {
            warn!("a REVALIDATE answer for session 0x{session:x}, which waits for none: ignored");
            return;
        };
        if !valid {
            info!(
                "Invalid session 0x{session:x} for client /{}, probably expired",
                p.peer
            );
            return self.refuse_session(p.conn);
        }
        self.resume_session(session, p.conn, p.timeout, true);
        info!(
            "Established session 0x{session:x} with negotiated timeout {} for client /{} (revalidated by the leader)",
            p.timeout, p.peer
        );
        self.connected(p.conn, session, p.timeout);
    }

    /// Binds a resumed session to `conn` here (touched; its previous
    /// connection here, if any, is closed). `known_valid`: the leader said
    /// it lives, so a lagging learner tracks it even before its
    /// createSession arrives.
    pub(super) fn resume_session(
        &mut self,
        session: i64,
        conn: u64,
        timeout: i32,
        known_valid: bool,
    ) {
        let now = self.shared.now_ms();
        let old = {
            let mut st = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if known_valid && st.get(session).is_none() {
                st.add(session, timeout, now);
            }
            st.touch(session, now);
            st.set_owner(session, conn)
        };
        if old != 0 && old != conn {
            self.send(old, LoopMsg::Close { conn: old });
        }
    }

    /// The handshake answer for a session that cannot be resumed: timeOut 0,
    /// session 0 and a zeroed password, then the connection closes.
    pub(super) fn refuse_session(&self, conn: u64) {
        self.send_connect_response(conn, 0, 0, Bytes::from_static(&[0; 16]), true);
    }

    /// Leader: a learner's REVALIDATE.
    pub(super) fn answer_revalidate(
        &mut self,
        conn: Conn,
        sid: u64,
        data: &Bytes,
    ) -> Option<zk_zab::LeaderEvent> {
        let mut r = Reader::new(data.clone());
        let (Ok(session), Ok(_timeout)) = (i64::read(&mut r), i32::read(&mut r)) else {
            // ZooKeeper's LearnerHandler ends on the exception reading it.
            warn!(
                "a REVALIDATE from server {sid} of {} bytes: closing its connection",
                data.len()
            );
            return self.close_learner(conn, "a REVALIDATE shorter than its session and timeout");
        };
        let now = self.shared.now_ms();
        let valid = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .touch(session, now);
        if valid {
            self.set_session_owner(session, Owner::Learner(conn));
        }
        let mut answer = BytesMut::with_capacity(9);
        answer.extend_from_slice(&session.to_be_bytes());
        answer.extend_from_slice(&[u8::from(valid)]);
        self.out(QuorumOut::ToLearner(
            conn,
            Packet::Revalidate {
                data: answer.freeze(),
            },
        ));
        None
    }

    /// Leader: `session` is now attached to `owner`.
    pub(super) fn set_session_owner(&mut self, session: i64, owner: Owner) {
        if !self.ensemble {
            return;
        }
        if let Some(Role::Leading(l)) = &mut self.role {
            l.owners.insert(session, owner);
        }
    }

    /// Leader: the session's owner is forgotten with the session.
    pub(super) fn forget_session_owner(&mut self, session: i64) {
        if let Some(Role::Leading(l)) = &mut self.role {
            l.owners.remove(&session);
        }
    }

    /// Leader: the error txn for a write of `session` from `owner` that
    /// ZooKeeper's `checkSession` refuses before prep, if any: the session
    /// closing (expired, or its closeSession on the way) or unknown →
    /// SESSIONEXPIRED (UNKNOWNSESSION standalone, as `SessionTrackerImpl`);
    /// with localSessionsEnabled an unknown session of another server is
    /// that server's local session and passes (`LeaderSessionTracker`).
    /// Then the owner check ([`Self::moved_check`]). Without the session
    /// check a learner's create of an ephemeral, forwarded while the leader
    /// closed the session, made a node that no session would ever delete.
    pub(super) fn refusal(&mut self, session: i64, owner: Owner, req: &Request) -> Option<TxnBody> {
        if checks_session(req) {
            let known = {
                let st = self
                    .shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                st.get(session).map(|s| s.closing)
            };
            let code = match known {
                Some(false) => None,
                Some(true) => Some(ErrorCode::SessionExpired),
                None if !self.ensemble => Some(ErrorCode::UnknownSession),
                None if self.shared.config.local_sessions_enabled
                    && (session >> 56) as u8 != self.shared.config.my_id as u8 =>
                {
                    None
                }
                None => Some(ErrorCode::SessionExpired),
            };
            if let Some(code) = code {
                return Some(refusal_txn(req, code));
            }
        }
        self.moved_check(session, owner, req)
    }

    /// Leader: the SESSIONMOVED txn for `req` if `session` is attached to
    /// another owner than the one sending it (an unowned session becomes
    /// the sender's, as Apache's `checkSession`).
    pub(super) fn moved_check(
        &mut self,
        session: i64,
        owner: Owner,
        req: &Request,
    ) -> Option<TxnBody> {
        if !self.ensemble || matches!(req, Request::CloseSession | Request::CreateSession(_)) {
            return None;
        }
        let Some(Role::Leading(l)) = &mut self.role else {
            return None;
        };
        match *l.owners.entry(session).or_insert(owner) {
            o if o == owner => None,
            _ => Some(moved_txn(req)),
        }
    }

    /// Learner leaving its role: the handshakes waiting for the leader are
    /// closed (their clients retry elsewhere).
    pub(super) fn drop_revalidations(&mut self) {
        let Some(Role::Learning(l)) = &mut self.role else {
            return;
        };
        let conns: Vec<u64> = l
            .revalidations
            .drain()
            .flat_map(|(_, q)| q.into_iter().map(|p| p.conn))
            .collect();
        for conn in conns {
            self.send(conn, LoopMsg::Close { conn });
        }
    }
}
