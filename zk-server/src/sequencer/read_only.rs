//! Read-only mode (ZooKeeper's `readonlymode.enabled`, its
//! `ReadOnlyZooKeeperServer`): a server of an ensemble that has been LOOKING
//! for max(2 s, tickTime) serves what its tree holds to clients that said they
//! can live with a read-only server (the handshake's `readOnly` flag), until
//! an election decides.
//!
//! | while read-only                      | answer (as ZooKeeper 3.8)                        |
//! |--------------------------------------|--------------------------------------------------|
//! | handshake without `readOnly`         | connection closed                                |
//! | new session, localSessionsEnabled    | a local session, `readOnly` in the reply         |
//! | new session, no local sessions       | connection closed (ZooKeeper's read-only server  |
//! |                                      | refuses a global createSession; its client then  |
//! |                                      | fails to read the reply)                         |
//! | a local session resumed              | resumed if its password matches                  |
//! | a global session resumed             | connection closed                                |
//! | reads, watches, ping, auth           | served from the tree                             |
//! | writes, sync (of a local session)    | NOTREADONLY, the session goes on                 |
//! | closeSession (of a local session)    | the session is forgotten, the connection closed  |
//! | `isro` / `srvr` / mntr               | `ro` / `Mode: read-only` / `read-only`           |
//!
//! A local session is never logged, proposed nor replicated: it lives in
//! the session table, marked local, and expires there. When a role starts
//! (the election decided), every local session is forgotten and its
//! connection closed, as ZooKeeper's read-only server closes all its
//! connections at shutdown; its client finds a read-write server by itself.
//! Nothing of this changes the tree or the log: the election's vote and the
//! next role's sync see the disk as read-only mode found it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::info;
use zk_jute::{ConnectRequest, ErrorCode, Request};

use super::{Sequencer, Waiting};
use crate::control::Mode;
use crate::frames::error_frame;
use crate::msg::{Ctx, LoopMsg, Reject};

/// ZooKeeper's lower bound on the grace before read-only mode
/// (`QuorumPeer.run`: `Math.max(2000, tickTime)`).
const MIN_GRACE: Duration = Duration::from_secs(2);

/// Read-only mode's state in the sequencer.
#[derive(Debug, Default)]
pub(super) struct ReadOnly {
    /// When this server last started LOOKING; `None` while it has a role.
    looking_since: Option<Instant>,
    /// Serving read-only: the mode shown before, restored at the end.
    active: Option<Mode>,
}

impl ReadOnly {
    /// A server that starts LOOKING (an ensemble's) or not (standalone).
    pub(super) fn new(looking: bool) -> Self {
        Self {
            looking_since: looking.then(Instant::now),
            active: None,
        }
    }

    /// Tests: LOOKING since `ago`.
    #[cfg(test)]
    pub(super) fn looking_for(&mut self, ago: Duration) {
        self.looking_since = Instant::now().checked_sub(ago);
    }
}

impl Sequencer {
    fn read_only_grace(&self) -> Duration {
        MIN_GRACE.max(Duration::from_millis(u64::from(
            self.shared.config.tick_time,
        )))
    }

    /// Whether this server serves read-only now.
    pub(super) fn read_only_active(&self) -> bool {
        self.read_only.active.is_some()
    }

    /// The role ended: LOOKING from now.
    pub(super) fn looking_again(&mut self) {
        self.read_only.looking_since = Some(Instant::now());
    }

    /// A role starts (the election decided): read-only mode ends, its
    /// sessions are forgotten and their connections closed.
    pub(super) fn role_starts(&mut self) {
        self.read_only.looking_since = None;
        let Some(before) = self.read_only.active.take() else {
            return;
        };
        let control = &self.shared.control;
        control.set_serving(false);
        control.set_mode(before);
        let local = {
            let mut st = self.shared.lock_sessions();
            let local = st.local_sessions();
            for (id, _) in &local {
                st.remove(*id);
            }
            local
        };
        for &(_, conn) in &local {
            if conn != 0 {
                self.send(conn, LoopMsg::Close { conn });
            }
        }
        info!(
            "read-only mode ends (the election decided): closed {} read-only sessions",
            local.len()
        );
    }

    /// How long the sequencer may sleep before read-only mode is due.
    pub(super) fn read_only_wait(&self) -> Option<Duration> {
        let since = self.read_only.looking_since?;
        (self.shared.config.read_only_mode && !self.read_only_active())
            .then(|| self.read_only_grace().saturating_sub(since.elapsed()))
    }

    /// Once per turn: read-only mode starts when due; its sessions expire.
    pub(super) fn read_only_turn(&mut self) {
        if !self.shared.config.read_only_mode || self.shutting_down || self.failed {
            return;
        }
        if self.read_only_active() {
            return self.expire_local_sessions();
        }
        let due = self.role.is_none()
            && self
                .read_only
                .looking_since
                .is_some_and(|t| t.elapsed() >= self.read_only_grace());
        if !due {
            return;
        }
        let control = &self.shared.control;
        self.read_only.active = Some(control.mode());
        control.set_mode(Mode::ReadOnly);
        control.set_clients_off(false);
        control.set_serving(true);
        info!(
            "Read-only server started: LOOKING for {} ms, serving read-only clients at zxid 0x{:x}",
            self.read_only_grace().as_millis(),
            self.shared.tree.last_processed_zxid()
        );
        if !self.shared.config.local_sessions_enabled {
            info!(
                "read-only mode gives local sessions only and localSessionsEnabled=false: \
                 new sessions are refused, as ZooKeeper's read-only server refuses them"
            );
        }
    }

    fn expire_local_sessions(&mut self) {
        let now = self.shared.now_ms();
        let mut st = self.shared.lock_sessions();
        let expired = st.expired_local(now);
        let gone: Vec<_> = expired
            .into_iter()
            .filter_map(|id| st.remove(id).map(|s| (id, s)))
            .collect();
        drop(st);
        for (id, s) in gone {
            info!(
                "Expiring session 0x{id:x}, timeout of {}ms exceeded (read-only)",
                s.timeout
            );
            if s.owner != 0 {
                self.send(s.owner, LoopMsg::Close { conn: s.owner });
            }
        }
    }

    /// A handshake while read-only (see the module's table).
    pub(super) fn read_only_connect(
        &mut self,
        conn: u64,
        peer: SocketAddr,
        req: &ConnectRequest,
        timeout: i32,
    ) {
        if req.read_only != Some(true) {
            info!("Refusing session request for not-read-only client /{peer}");
            return self.send(conn, LoopMsg::Close { conn });
        }
        let now = self.shared.now_ms();
        let mut st = self.shared.lock_sessions();
        if req.session_id == 0 {
            if !self.shared.config.local_sessions_enabled {
                drop(st);
                info!(
                    "Refusing session request for client /{peer}: read-only mode gives local \
                     sessions only (localSessionsEnabled=false)"
                );
                return self.send(conn, LoopMsg::Close { conn });
            }
            let session = st.next_session_id();
            st.add_local(session, timeout, now);
            st.set_owner(session, conn);
            drop(st);
            info!(
                "Established session 0x{session:x} with negotiated timeout {timeout} for client /{peer} (local, read-only)"
            );
            return self.connected(conn, session, timeout);
        }
        let session = req.session_id;
        if st.get(session).is_some_and(|s| !s.local) {
            drop(st);
            info!("Refusing global session reconnection in RO mode /{peer}");
            return self.send(conn, LoopMsg::Close { conn });
        }
        drop(st);
        self.resume_or_refuse(conn, peer, req, timeout, "local, read-only, reconnected");
    }

    /// A request of a local session that read-only mode answers itself
    /// (writes, sync, closeSession): answered, and `None`; anything else
    /// comes back to be served as usual.
    pub(super) fn read_only_request(&mut self, ctx: Ctx, req: Request) -> Option<(Ctx, Request)> {
        let session = ctx.session_id;
        let local = self.read_only_active() && self.shared.lock_sessions().is_local(session);
        if !local || (crate::reads::is_local(&req) && !matches!(req, Request::Sync(_))) {
            return Some((ctx, req));
        }
        if matches!(req, Request::CloseSession) {
            self.shared.lock_sessions().remove(session);
            info!("Closed read-only session 0x{session:x}");
            let frame = error_frame(ctx.xid, self.shared.last_zxid(), ErrorCode::Ok);
            self.reply(ctx.conn, frame, true);
            return None;
        }
        if let Some(ready) = self
            .order
            .wait_or_ready(session, Waiting::Rejected(ctx, Reject::NotReadOnly))
        {
            self.answer_waiting(ready);
        }
        None
    }

    /// A rejected request while read-only: an undecodable write of a local
    /// session is a write all the same (NOTREADONLY; ZooKeeper's read-only
    /// filter looks at the opcode before anything decodes the body).
    pub(super) fn read_only_reject(&self, session: i64, reject: Reject) -> Reject {
        let local = || self.shared.lock_sessions().is_local(session);
        if reject == Reject::MarshallingTxn && self.read_only_active() && local() {
            Reject::NotReadOnly
        } else {
            reject
        }
    }
}
