//! The sequencer (the `zk-core` thread): the single writer of the write path.
//!
//! ```text
//! Request ─▶ prep (zk-tree `prepare` over the outstanding-changes overlay,
//!            zxid = epoch << 32 | counter)            ── zk_zab::Leader::propose
//!         ─▶ log append (zk-txnlog, group commit on its sync thread)
//!         ─▶ durable callback ─▶ DurableMark (+ CoreMsg::Durable) ── LeaderEvent::LogDurable (our ack)
//!         ─▶ quorum ─▶ commit, in zxid order           ── LeaderCommand::Apply
//!         ─▶ apply to the tree, events, reply
//! ```
//!
//! Standalone is the one-voter case of the same code ([`zk_zab::Leader::standalone`]:
//! a quorum of one, established at start, no election, learners or epoch
//! files); an ensemble's leader and learners are the roles of `role.rs`.
//!
//! Prep and apply share this thread: the tree's prep overlay and the applier
//! need no handoff, and the expensive parts (fsync, socket I/O) are elsewhere.
//!
//! Per-session order: every request routed here is queued per session behind
//! the session's writes in flight; a read (or ping, sync, setWatches) is
//! answered only once the writes before it are applied and answered, as
//! ZooKeeper's CommitProcessor does. Loops serve reads of sessions with nothing
//! in flight themselves.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::inbox::Inbox;
use bytes::{Bytes, BytesMut};
use tracing::{error, info, warn};
use zk_jute::{
    ConnectRequest, ConnectResponse, Create2Response, CreateResponse, CreateSessionTxn, ErrorCode,
    ErrorTxn, Id, Jute, OpCode, Request, Response, TxnBody, TxnHeader, Zxid, encode_frame,
};
use zk_tree::{Auth, PendingChanges, RequestContext};

use crate::epoch_files::EpochFiles;
use crate::frames::{error_frame, event_frame, response_frame};
use crate::msg::{CoreMsg, Ctx, LoopMsg, Reject, loop_of};
use crate::reads::{is_local, serve_read};
use crate::shared::{Shared, stop_loops};
use crate::storage::{Recovered, Storage};

mod config_version;
mod digests;
#[cfg(test)]
mod ensemble_tests;
mod moves;
mod read_only;
mod reconfig;
mod role;
mod session_order;
mod snapshots;
#[cfg(test)]
mod tests;

use session_order::SessionOrder;
use snapshots::{Purge, Snapshots};

enum Origin {
    /// Server-initiated (session expiry), or a learner's request (answered
    /// by that learner).
    Internal,
    Client(Ctx, OpCode),
    Connect {
        conn: u64,
        timeout: i32,
        peer: SocketAddr,
    },
}

/// The durable callbacks' side of the core: the highest zxid made durable,
/// and whether a [`CoreMsg::Durable`] is on its way. The sync thread runs one
/// callback per record, in zxid order; instead of one message each (which
/// would queue behind client requests in the core's channel), a callback
/// raises the mark and sends a message only if none is pending. The core
/// also reads the mark between messages, so commits do not wait for the
/// requests queued before the message.
#[derive(Debug, Default)]
pub(crate) struct DurableMark {
    hi: AtomicI64,
    pending: AtomicBool,
    /// When the newest callback ran, ns since `stage_base()` (stage times only).
    at_ns: AtomicU64,
}

/// Within a batch of messages (a learner's DIFF, a burst of proposals can
/// keep the core busy for a long while) durability is asked for after this
/// many records...
const ARM_EVERY: u32 = 64;
/// ... or once the first of them waited this long: our ACKs must not wait
/// for the end of the batch (a leader drops a follower whose ACKs lag by
/// syncLimit; it did, with a batch of thousands in a debug build).
const ARM_AFTER: Duration = Duration::from_millis(1);

fn stage_base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

struct Proposal {
    hdr: TxnHeader,
    body: TxnBody,
    origin: Origin,
    /// The tree digest the txn leads to, when its proposal carried one.
    digest: Option<i64>,
}

impl Proposal {
    /// Whether the txn holds its session's place in [`SessionOrder`]: the
    /// writes of clients (and session creations), not the server's own.
    fn session_ordered(&self) -> bool {
        matches!(self.origin, Origin::Client(..) | Origin::Connect { .. })
            && self.hdr.client_id != 0
    }
}

/// What waits in [`SessionOrder`] behind a session's writes.
enum Waiting {
    Read(Ctx, Request),
    /// A rejected request answered without a txn, in order like a read.
    Rejected(Ctx, Reject),
}

pub(crate) struct Sequencer {
    shared: Arc<Shared>,
    storage: Storage,
    rx: Inbox<CoreMsg>,
    tx: Inbox<CoreMsg>,
    durable: Arc<DurableMark>,
    /// The records appended since the last [`Self::arm_durable`]: the
    /// first, when, how many, and the last.
    pub(super) unarmed: Option<(Zxid, Instant, u32)>,
    unarmed_hi: Zxid,
    /// The newest reconfig txn in the log (its zxid and configuration text),
    /// found at a role's start or logged since: the last-seen configuration
    /// while this server has not activated it (`config_version.rs`).
    last_reconfig: Option<(Zxid, Bytes)>,
    /// The role cores' command buffers, kept between steps.
    leader_out: Vec<zk_zab::LeaderCommand>,
    learner_out: Vec<zk_zab::LearnerCommand>,
    /// The log record being encoded (reused: no allocation per txn).
    record: BytesMut,
    my_id: u64,
    overlay: PendingChanges,
    /// Proposals in zxid order: appended as proposed, committed from the front.
    proposals: VecDeque<Proposal>,
    order: SessionOrder<Waiting>,
    snapshots: Snapshots,
    shutting_down: bool,
    failed: bool,
    purge: Purge,
    next_container_check: Instant,
    /// The Zab role hosted here: standalone's one-voter leader from the
    /// start; in an ensemble `None` while LOOKING (nothing is served then).
    role: Option<role::Role>,
    /// Ensemble mode (configured, or a role was ever started): roles come
    /// from elections, epoch files are kept.
    ensemble: bool,
    /// Where the role's packets go (the quorum side).
    outbox: Option<crate::msg::Outbox>,
    /// The SNAP body a learner loaded, being written as the snapshot at its
    /// zxid until `persist_snapshot` publishes it (`role.rs`).
    snap_body: Option<crate::storage::SnapBodySave>,
    /// The epoch of a leader whose TRUNC went below our newest snapshot: we
    /// ask it for SNAP (`zk_zab::LearnerStart::snap_from_epoch`; `role.rs`).
    snap_from_epoch: Option<u32>,
    /// The tree is a SNAP's, not yet durable (until `persist_snapshot`): a
    /// role that ends first reloads the tree from the disk (`role.rs`).
    snap_unpersisted: bool,
    /// Loops sent a message since the last [`Sequencer::wake_loops`] (bit =
    /// loop index), woken once per batch of messages handled.
    loops_to_wake: std::cell::Cell<u64>,
    /// The connections answered in this pass and when each request was
    /// received: their latencies are recorded when the replies are handed
    /// to the loops ([`Sequencer::wake_loops`]), one clock reading and one
    /// lock of the connection table per pass, not two and one per reply.
    replied: Vec<(u64, Instant)>,
    /// Learner: the requests this server forwarded to the leader, answered
    /// when the txn with their (session, cxid) is applied.
    forwarded: hashbrown::HashMap<(i64, i32), Origin>,
    /// Learner: forwarded `sync`s waiting for the leader's SYNC, in the
    /// order sent (the leader answers them in that order, quorum.md §3.8).
    syncs: VecDeque<(Ctx, Request)>,
    /// Learner: syncs the leader answered whose session still has earlier
    /// writes in flight, by (session, cxid).
    synced: hashbrown::HashMap<(i64, i32), (Ctx, Request)>,
    /// The highest durable zxid reported to the role (this log generation).
    role_durable: Zxid,
    /// `currentEpoch` / `acceptedEpoch` in dataDir.
    epochs: EpochFiles,
    /// Read-only mode while LOOKING (`read_only.rs`).
    read_only: read_only::ReadOnly,
    /// Txn digests received and not yet applied; the mismatch log.
    digests: digests::DigestCheck,
    /// Tests: the learner command before which this server "crashes" (stops
    /// doing anything), to take its disk at that point.
    #[cfg(test)]
    crash_before: Option<fn(&zk_zab::LearnerCommand) -> bool>,
}

impl Sequencer {
    pub fn new(
        shared: Arc<Shared>,
        storage: Storage,
        rx: Inbox<CoreMsg>,
        tx: Inbox<CoreMsg>,
        recovered: &Recovered,
    ) -> Self {
        let last_zxid = recovered.last_zxid;
        let my_id = shared.config.my_id;
        // Recovery loaded the whole log: a reconfig in it never activated here.
        let last_reconfig = config_version::logged_reconfig_in(&shared);
        let mut seq = Self {
            durable: Arc::new(DurableMark::default()),
            record: BytesMut::with_capacity(4096),
            my_id,
            overlay: PendingChanges::new(),
            proposals: VecDeque::new(),
            unarmed: None,
            unarmed_hi: Zxid::ZERO,
            last_reconfig,
            leader_out: Vec::new(),
            learner_out: Vec::new(),
            order: SessionOrder::default(),
            snapshots: Snapshots::new(
                &shared.config,
                recovered.replayed_bytes,
                recovered.replayed_txns,
                recovered.snapshot_bytes,
            ),
            shutting_down: false,
            failed: false,
            purge: Purge::new(&shared.config),
            next_container_check: Instant::now()
                + Duration::from_millis(shared.config.container_check_interval_ms),
            role: None,
            ensemble: shared.config.is_ensemble(),
            outbox: None,
            snap_body: None,
            snap_from_epoch: None,
            snap_unpersisted: false,
            loops_to_wake: std::cell::Cell::new(0),
            replied: Vec::new(),
            forwarded: hashbrown::HashMap::new(),
            syncs: VecDeque::new(),
            synced: hashbrown::HashMap::new(),
            role_durable: Zxid::ZERO,
            epochs: EpochFiles::new(shared.config.data_dir.clone()),
            read_only: read_only::ReadOnly::new(shared.config.is_ensemble()),
            digests: digests::DigestCheck::default(),
            #[cfg(test)]
            crash_before: None,
            shared,
            storage,
            rx,
            tx,
        };
        if !seq.ensemble {
            seq.start_standalone(last_zxid);
        }
        seq
    }

    pub fn run(mut self) {
        let mut batch = VecDeque::new();
        loop {
            let now = self.shared.now_ms();
            let wait = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .wait_time(now);
            let mut wait = Duration::from_millis(wait.clamp(1, 1000));
            if let Some(w) = self.read_only_wait() {
                wait = wait.min(w.max(Duration::from_millis(1)));
            }
            self.turn(&mut batch, wait);
            if self.stops() {
                break;
            }
        }
        stop_loops(&self.shared);
        if let Err(e) = self.storage.log.flush() {
            warn!("log flush at shutdown failed: {e}");
        }
        while self.snapshots.running() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if crate::stages::enabled() {
            info!("{}", crate::stages::report());
        }
        info!(
            "core stopped: last processed 0x{:x}, logged 0x{:x}, {} proposals pending",
            self.shared.tree.last_processed_zxid(),
            self.storage.log.last_key().unwrap_or(0),
            self.proposals.len()
        );
    }

    /// Whether the thread stops now: shutting down, and (standalone) every
    /// txn in flight done, which the log's sync brings. In an ensemble the
    /// quorum thread has stopped first and a proposal can only be decided
    /// by the other servers (and must not be answered here): the thread
    /// stops at once, as Apache's does, its log flushed after the loop.
    /// Regression: a leader that lost its learners while a proposal was in
    /// flight, then got SIGTERM, waited for that commit forever (found by
    /// kazoo's suite, whose harness stops the servers one after the other).
    fn stops(&self) -> bool {
        self.shutting_down && (self.ensemble || self.proposals.is_empty())
    }

    /// One turn of the thread: waits up to `wait` for messages, handles
    /// every queued one (reading the durable mark after each), then the
    /// timers (expiry, autopurge, containers).
    fn turn(&mut self, batch: &mut VecDeque<CoreMsg>, wait: Duration) {
        self.rx.recv_into(batch, wait);
        // Take whatever else is queued before looking at timers.
        while !batch.is_empty() {
            self.role_warm(batch);
            for m in batch.drain(..) {
                self.on_msg(m);
                if let Some((_, at, n)) = self.unarmed
                    && (n >= ARM_EVERY || at.elapsed() >= ARM_AFTER)
                {
                    self.arm_durable();
                }
                self.poll_durable();
            }
            self.arm_durable();
            self.wake_quorum();
            self.wake_loops();
            self.rx.recv_into(batch, Duration::ZERO);
        }
        // Not serving (ensemble mode until Zab, issue 14): no session expiry
        // or container sweep may write a txn behind the election's back.
        if !self.shutting_down && !self.failed && self.shared.control.serving() && self.proposes() {
            self.expire_sessions();
            self.purge
                .maybe_run(&self.shared.config, &self.storage.log, &self.storage.snaps);
            self.check_containers();
        }
        self.read_only_turn();
        self.publish_leader_gauges();
        self.arm_durable();
        self.wake_quorum();
        self.wake_loops();
    }

    fn on_msg(&mut self, m: CoreMsg) {
        match m {
            CoreMsg::Connect {
                conn,
                peer,
                req,
                timeout,
            } => self.on_connect(conn, peer, req, timeout),
            CoreMsg::Request { ctx, req } => self.on_request(ctx, req),
            CoreMsg::Rejected { ctx, reject } => self.on_rejected(ctx, reject),
            CoreMsg::ConnClosed { conn, session_id } => {
                self.shared.tree.remove_watcher(conn);
                self.shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .release_owner(session_id, conn);
            }
            CoreMsg::Durable => {
                // Cleared before the mark is read: a callback that finds it
                // set knows this read comes after its raise.
                self.durable.pending.store(false, SeqCst);
                self.poll_durable();
            }
            CoreMsg::LogFailed { zxid, error } => {
                self.fatal(&format!("the txn log failed at zxid 0x{zxid:x}: {error}"))
            }
            CoreMsg::Quorum(q) => self.on_quorum(q),
            CoreMsg::Shutdown => {
                if !self.shutting_down {
                    let n = self.proposals.len();
                    if self.ensemble {
                        info!(
                            "stopping with {n} proposals in flight (logged; the ensemble decides them)"
                        );
                    } else {
                        info!("finishing {n} txns in flight before stopping");
                    }
                }
                self.shutting_down = true;
                self.shared.control.set_serving(false);
            }
        }
    }

    /// Our own ACK for everything the log made durable since the last look;
    /// commits what that completes.
    fn poll_durable(&mut self) {
        self.role_poll_durable();
    }

    /// A storage failure: no write is acknowledged any more; stop serving.
    fn fatal(&mut self, what: &str) {
        if !self.failed {
            error!("{what}; this server stops serving (restart it to recover from the log)");
            self.shared.control.set_failure(what);
        }
        self.failed = true;
        self.shutting_down = true;
        self.proposals.clear();
        self.shared.control.set_serving(false);
        self.close_clients();
    }

    fn send(&self, conn: u64, m: LoopMsg) {
        // zkrs.loopThreads is at most 64: a bit per loop.
        let i = loop_of(conn);
        if let Some(l) = self.shared.loops().get(i)
            && l.queue(m)
        {
            self.loops_to_wake.set(self.loops_to_wake.get() | 1 << i);
        }
    }

    /// Closes every client connection of every loop (ZooKeeper's
    /// `closeAllConnections`): the server stopped serving.
    fn close_clients(&self) {
        for (i, l) in self.shared.loops().iter().enumerate() {
            if l.queue(LoopMsg::CloseClients) {
                self.loops_to_wake.set(self.loops_to_wake.get() | 1 << i);
            }
        }
    }

    /// Wakes the loops [`Sequencer::send`] queued replies for, after
    /// recording the latencies of the replies among them.
    fn wake_loops(&mut self) {
        self.record_latencies();
        let mut bits = self.loops_to_wake.replace(0);
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(l) = self.shared.loops().get(i) {
                l.wake();
            }
        }
    }

    fn reply(&self, conn: u64, frame: Bytes, close: bool) {
        self.send(
            conn,
            LoopMsg::Out {
                conn,
                frame,
                close,
                trace: None,
            },
        );
    }

    // ---- sessions ----

    fn on_connect(&mut self, conn: u64, peer: SocketAddr, req: ConnectRequest, timeout: i32) {
        if self.shutting_down {
            self.send(conn, LoopMsg::Close { conn });
            return;
        }
        if self.read_only_active() {
            return self.read_only_connect(conn, peer, &req, timeout);
        }
        if self.learner_not_synced(conn) {
            return;
        }
        if req.session_id == 0 && self.is_learning() {
            self.forward_create_session(conn, peer, timeout);
            return;
        }
        if req.session_id == 0 {
            let now = self.shared.now_ms();
            let session = {
                let mut st = self
                    .shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let session = st.next_session_id();
                st.add(session, timeout, now);
                st.set_owner(session, conn);
                session
            };
            self.set_session_owner(session, moves::Owner::Here);
            let body = TxnBody::CreateSession(CreateSessionTxn { time_out: timeout });
            self.propose(
                session,
                0,
                body,
                Origin::Connect {
                    conn,
                    timeout,
                    peer,
                },
            );
            return;
        }
        if self.is_learning() {
            // The leader decides whether the session lives (REVALIDATE).
            self.revalidate(conn, peer, &req, timeout);
            return;
        }
        if self.resume_or_refuse(conn, peer, &req, timeout, "reconnected") {
            self.set_session_owner(req.session_id, moves::Owner::Here);
        }
    }

    /// A client resuming `req`'s session on `conn`: resumed and answered if
    /// the session is live and the password matches, else refused (timeOut
    /// 0). Whether it was resumed; `how` ends the log line.
    fn resume_or_refuse(
        &mut self,
        conn: u64,
        peer: SocketAddr,
        req: &ConnectRequest,
        timeout: i32,
        how: &str,
    ) -> bool {
        let session = req.session_id;
        let valid = {
            let st = self.shared.lock_sessions();
            st.is_live(session) && req.passwd.as_ref() == st.password(session)
        };
        if valid {
            self.resume_session(session, conn, timeout, false);
            info!(
                "Established session 0x{session:x} with negotiated timeout {timeout} for client /{peer} ({how})"
            );
            self.connected(conn, session, timeout);
        } else {
            info!("Invalid session 0x{session:x} for client /{peer}, probably expired");
            self.refuse_session(conn);
        }
        valid
    }

    fn connected(&self, conn: u64, session: i64, timeout: i32) {
        let passwd = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .password(session);
        self.send_connect_response(
            conn,
            session,
            timeout,
            Bytes::copy_from_slice(&passwd),
            false,
        );
    }

    /// Sends the handshake reply; `close` closes the connection once it is written.
    fn send_connect_response(
        &self,
        conn: u64,
        session: i64,
        timeout: i32,
        passwd: Bytes,
        close: bool,
    ) {
        let resp = ConnectResponse {
            protocol_version: 0,
            time_out: timeout,
            session_id: session,
            passwd,
            // As ZooKeeper's finishSessionInit: whether this server is
            // read-only, also in a refusal.
            read_only: self.read_only_active(),
        };
        let mut out = BytesMut::new();
        encode_frame(&mut out, |o| resp.write(o));
        self.send(
            conn,
            LoopMsg::Connected {
                conn,
                frame: out.freeze(),
                session_id: session,
                timeout,
                close,
            },
        );
    }

    fn expire_sessions(&mut self) {
        let now = self.shared.now_ms();
        let expired = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expired(now);
        for session in expired {
            let (timeout, owner) = {
                let st = self
                    .shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                st.get(session).map_or((0, 0), |s| (s.timeout, s.owner))
            };
            info!("Expiring session 0x{session:x}, timeout of {timeout}ms exceeded");
            if owner != 0 {
                self.send(owner, LoopMsg::Close { conn: owner });
            }
            self.prep_and_propose(session, 0, Request::CloseSession, Origin::Internal, &[]);
        }
    }

    /// ZooKeeper's ContainerManager: empty containers (that had a child) and
    /// expired TTL nodes are removed with deleteContainer txns.
    fn check_containers(&mut self) {
        if Instant::now() < self.next_container_check {
            return;
        }
        self.next_container_check =
            Instant::now() + Duration::from_millis(self.shared.config.container_check_interval_ms);
        let candidates = self
            .shared
            .tree
            .expired_ttl_and_empty_containers(crate::stats::wall_ms());
        for path in candidates.into_iter().take(10_000) {
            self.prep_and_propose(0, 0, Request::DeleteContainer(path), Origin::Internal, &[]);
        }
    }

    // ---- requests ----

    fn on_request(&mut self, ctx: Ctx, req: Request) {
        if self.failed {
            // Never acknowledge anything once the log failed.
            self.send(ctx.conn, LoopMsg::Close { conn: ctx.conn });
            return;
        }
        let Some((ctx, req)) = self.read_only_request(ctx, req) else {
            return;
        };
        let session = ctx.session_id;
        if !is_local(&req) && self.learner_not_synced(ctx.conn) {
            return;
        }
        if matches!(req, Request::Sync(_)) && self.is_learning() {
            self.forward_sync(ctx, req);
            return;
        }
        if is_local(&req) {
            if let Some(ready) = self.order.wait_or_ready(session, Waiting::Read(ctx, req)) {
                self.answer_waiting(ready);
            }
            return;
        }
        if matches!(req, Request::CloseSession) {
            self.shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_closing(session);
        }
        if self.is_learning() {
            self.forward_request(ctx, &req);
            return;
        }
        let op = req.op_code();
        if let Some(body) = self.refusal(session, moves::Owner::Here, &req) {
            let xid = ctx.xid;
            self.propose(session, xid, body, Origin::Client(ctx, op));
            return;
        }
        let auth = ctx.auth.clone();
        let xid = ctx.xid;
        let t_core = crate::stages::now();
        if let Some(t) = t_core {
            crate::stages::record(crate::stages::Stage::LoopToCore, ctx.received, t);
        }
        self.prep_and_propose(session, xid, req, Origin::Client(ctx, op), &auth);
        if let Some(t) = t_core {
            crate::stages::record(crate::stages::Stage::Prep, t, Instant::now());
        }
    }

    fn on_rejected(&mut self, ctx: Ctx, reject: Reject) {
        if self.failed {
            self.send(ctx.conn, LoopMsg::Close { conn: ctx.conn });
            return;
        }
        let session = ctx.session_id;
        // A learner answers an undecodable write itself, without a txn (the
        // leader has no body to prepare): MARSHALLINGERROR with the last zxid.
        let reject = if reject == Reject::MarshallingTxn && self.is_learning() {
            Reject::Marshalling
        } else {
            self.read_only_reject(session, reject)
        };
        if reject == Reject::MarshallingTxn {
            let body = TxnBody::Error(ErrorTxn {
                err: ErrorCode::MarshallingError.code(),
            });
            let xid = ctx.xid;
            // OpCode::Error: the reply is the error header alone (no multi body).
            self.propose(session, xid, body, Origin::Client(ctx, OpCode::Error));
            return;
        }
        if let Some(ready) = self
            .order
            .wait_or_ready(session, Waiting::Rejected(ctx, reject))
        {
            self.answer_waiting(ready);
        }
    }

    /// Answers a read or a rejected request whose turn has come.
    fn answer_waiting(&self, item: Waiting) {
        match item {
            Waiting::Read(ctx, req) => {
                let frame = serve_read(&self.shared, &ctx, req);
                self.reply(ctx.conn, frame, false);
            }
            Waiting::Rejected(ctx, reject) => {
                let frame = reject.reply(ctx.xid, self.shared.last_zxid());
                self.reply(ctx.conn, frame, reject.closes());
            }
        }
    }

    fn prep_and_propose(
        &mut self,
        session: i64,
        cxid: i32,
        req: Request,
        origin: Origin,
        auth: &[Id],
    ) {
        if !self.proposes() {
            // LOOKING, a learner, or a leader whose epoch is not established
            // yet (a request that was in flight when the role changed): it
            // cannot be proposed, so it is not prepared either (the overlay
            // would keep changes that never happen).
            self.refuse(origin);
            return;
        }
        let zxid_next = self.next_zxid();
        let time = crate::stats::wall_ms();
        let rctx = RequestContext {
            session_id: session,
            auth: Auth::new(auth),
            zxid: zxid_next.as_i64(),
            time_ms: time,
        };
        let prepared = match req {
            Request::Reconfig(r) if self.ensemble => self
                .prep_reconfig(&rctx, &r)
                .map(|(body, new)| (body, Some(new))),
            req => zk_tree::prepare(&self.shared.tree, &mut self.overlay, &rctx, req)
                .map(|b| (b, None)),
        };
        let (body, reconfig) = match prepared {
            Ok(b) => b,
            Err(code) => (TxnBody::Error(ErrorTxn { err: code.code() }), None),
        };
        let z = self.role_propose(session, cxid, time, body, origin, reconfig);
        debug_assert_eq!(z, zxid_next);
    }

    fn propose(&mut self, session: i64, cxid: i32, body: TxnBody, origin: Origin) {
        let time = crate::stats::wall_ms();
        self.role_propose(session, cxid, time, body, origin, None);
    }

    /// Appends one log record; its durability raises the [`DurableMark`]
    /// (our ACK) once [`Self::arm_durable`] has asked for it. A failure is
    /// fatal.
    fn append_record(&mut self, zxid: Zxid, record: &[u8]) {
        self.snapshots.logged(record.len() as u64);
        // Quiet: the sync thread is woken when [`Self::arm_durable`] asks for
        // the run's durability, so a burst (a learner's DIFF, a batch of
        // proposals) is one sync, not its first record's and then the rest's.
        if let Err(e) = self.storage.log.append_quiet(zxid.as_u64(), record) {
            return self.fatal(&format!(
                "cannot append zxid 0x{zxid:x} to the txn log: {e}"
            ));
        }
        match &mut self.unarmed {
            Some((_, _, n)) => *n += 1,
            None => self.unarmed = Some((zxid, Instant::now(), 1)),
        }
        self.unarmed_hi = zxid;
        if self.shared.config.reconfig_enabled {
            self.note_reconfig(zxid, record);
        }
    }

    /// One durability callback for every record appended since the last
    /// one (the log is synced in order: the last record durable means all
    /// are), raising the [`DurableMark`] to the last zxid; called after each
    /// batch of messages and after the timers, and within a batch once
    /// [`ARM_EVERY`] records wait or the first is [`ARM_AFTER`] old. A
    /// callback boxed per record (allocation, two `Arc` clones) was ~6 % of
    /// a loaded follower's core.
    fn arm_durable(&mut self) {
        let Some((first, at, _)) = self.unarmed.take() else {
            return;
        };
        let t_append = crate::stages::enabled().then_some(at);
        let zxid = self.unarmed_hi;
        let tx = self.tx.clone();
        let mark = self.durable.clone();
        let res = self.storage.log.on_durable(move |r| match r {
            Ok(_) => {
                if let Some(t) = t_append {
                    let now = Instant::now();
                    crate::stages::record(crate::stages::Stage::Durable, t, now);
                    let ns = now.saturating_duration_since(stage_base()).as_nanos();
                    mark.at_ns.store(ns as u64, Relaxed);
                }
                mark.hi.fetch_max(zxid.as_i64(), SeqCst);
                if !mark.pending.swap(true, SeqCst) {
                    tx.send(CoreMsg::Durable);
                }
            }
            Err(e) => {
                tx.send(CoreMsg::LogFailed { zxid, error: e });
            }
        });
        if let Err(e) = res {
            self.fatal(&format!(
                "the txn log failed after zxids 0x{first:x}..0x{zxid:x}: {e}"
            ));
        }
    }

    /// What follows a txn's apply: the session table, the reads that waited
    /// behind it, and whether a snapshot is due.
    fn after_apply(&mut self, p: &Proposal) {
        if let TxnBody::CloseSession(_) = p.body {
            self.shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(p.hdr.client_id);
            self.forget_session_owner(p.hdr.client_id);
        }
        if p.session_ordered() {
            for item in self.order.write_committed(p.hdr.client_id, p.hdr.cxid) {
                self.answer_waiting(item);
            }
            if !self.synced.is_empty() {
                self.complete_syncs(p.hdr.client_id);
            }
        }
        // A learner still syncing with its leader starts no snapshot: one due
        // after recovery's replay took the CPU from the rest of the sync (a
        // rejoin's DIFF); the next check once it serves starts it.
        if let Some(kind) = self
            .snapshots
            .committed(&self.shared.config, &self.shared.tree)
            .filter(|_| self.shared.control.serving())
        {
            self.snapshots.start(
                &self.shared.config,
                kind,
                self.shared.tree.clone(),
                self.storage.snaps.clone(),
                Zxid::from(self.shared.tree.last_processed_zxid()),
                self.shared.stats.snapshot_time.clone(),
            );
        }
    }

    /// Applies a committed txn to the tree and sends its watch events and
    /// its reply, all under the write gate (a loop's read never sees the
    /// change before the event that announces it).
    fn apply(&mut self, p: &Proposal) {
        let zxid = p.hdr.zxid;
        let t_commit = crate::stages::now();
        let shared = self.shared.clone();
        let _gate = shared.gate.write().unwrap_or_else(|e| e.into_inner());
        let out = shared.tree.apply(&p.hdr, &p.body);
        if let Some(d) = p.digest
            && self.digests.check(&p.hdr, &p.body, d, shared.tree.digest())
        {
            shared.stats.digest_mismatches.fetch_add(1, Relaxed);
        }
        self.overlay.applied(zxid);
        shared.control.set_last_zxid(zxid);
        // Each event goes with its node's ACL: the connection's loop,
        // which knows its current auth ids, drops it without READ
        // (ApplyOutcome::deliverable's rule, applied where the ids live).
        for e in &out.events {
            self.send_event(e);
        }
        shared.stats.watches_fired(&out.watch_counts);
        match &p.origin {
            Origin::Client(ctx, _) if moves::is_session_moved(&p.body) => {
                // SESSIONMOVED: the client is attached elsewhere; its
                // connection here closes without an answer (ZOOKEEPER-710).
                info!(
                    "session 0x{:x} moved to another server: closing its connection here",
                    p.hdr.client_id
                );
                self.send(ctx.conn, LoopMsg::Close { conn: ctx.conn });
            }
            Origin::Client(ctx, op) => {
                let frame = write_reply(ctx, *op, zxid, &p.body, out);
                let close = *op == OpCode::CloseSession;
                self.replied.push((ctx.conn, ctx.received));
                let trace = t_commit.map(|t| {
                    let now = Instant::now();
                    crate::stages::record(crate::stages::Stage::Apply, t, now);
                    (ctx.received, now)
                });
                self.send(
                    ctx.conn,
                    LoopMsg::Out {
                        conn: ctx.conn,
                        frame,
                        close,
                        trace,
                    },
                );
            }
            Origin::Connect {
                conn,
                timeout,
                peer,
            } => {
                info!(
                    "Established session 0x{:x} with negotiated timeout {timeout} for client /{peer}",
                    p.hdr.client_id
                );
                self.connected(*conn, p.hdr.client_id, *timeout);
            }
            Origin::Internal => {}
        }
    }

    /// Records the latencies of the pass's replies (received → handed to
    /// the loop): a run of replies to one connection with the same latency
    /// (in ms, as ZooKeeper counts it) is one update of each counter.
    fn record_latencies(&mut self) {
        if self.replied.is_empty() {
            return;
        }
        let now = Instant::now();
        let wall = crate::stats::wall_ms();
        let zxid = self.shared.tree.last_processed_zxid();
        let stats = &self.shared.stats;
        let conns = stats.conns.lock().unwrap_or_else(|e| e.into_inner());
        let lat_of = |at: Instant| now.saturating_duration_since(at).as_millis() as u64;
        let mut rest = &self.replied[..];
        while let Some(&(conn, at)) = rest.first() {
            let lat = lat_of(at);
            let n = rest
                .iter()
                .take_while(|&&(c, a)| c == conn && lat_of(a) == lat)
                .count();
            rest = &rest[n..];
            let n = n as u64;
            // One writer (this thread): shard 0.
            stats.answered(&stats.update_latency, 0, lat, n);
            if let Some(c) = conns.get(&conn) {
                c.answered(lat, n, wall, zxid);
            }
        }
        drop(conns);
        self.replied.clear();
    }

    fn send_event(&self, e: &zk_tree::Event) {
        self.send(
            e.watcher,
            LoopMsg::Event {
                conn: e.watcher,
                frame: event_frame(&e.event),
                acl: e.acl.clone(),
            },
        );
    }
}

/// The header of the txn `body` for `session`'s request `cxid` at `zxid`.
fn txn_header(session: i64, cxid: i32, zxid: Zxid, time: i64, body: &TxnBody) -> TxnHeader {
    TxnHeader {
        client_id: session,
        cxid,
        zxid: zxid.as_i64(),
        time,
        txn_type: body.txn_type().code(),
    }
}

/// The reply to a client's write `op` once its txn `body` is applied. A
/// reconfig (only ever a learner's, forwarded to an Apache leader) is
/// answered as FinalRequestProcessor does: the new configuration and the
/// stat of /zookeeper/config.
fn write_reply(
    ctx: &Ctx,
    op: OpCode,
    zxid: i64,
    body: &TxnBody,
    out: zk_tree::ApplyOutcome,
) -> Bytes {
    if op == OpCode::Multi {
        return response_frame(ctx.xid, zxid, &Response::Multi(out.multi_results()));
    }
    if out.err != ErrorCode::Ok {
        return error_frame(ctx.xid, zxid, out.err);
    }
    let path = out.path.unwrap_or_default();
    let stat = out.stat.unwrap_or_default();
    let resp = match op {
        OpCode::Create => Response::Create(CreateResponse { path }),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2(Create2Response { path, stat })
        }
        OpCode::SetData | OpCode::SetAcl => Response::Stat(stat),
        OpCode::Reconfig => match body {
            TxnBody::Reconfig(t) => Response::GetData(zk_jute::GetDataResponse {
                data: t.data.clone(),
                stat,
            }),
            _ => Response::Empty,
        },
        _ => Response::Empty,
    };
    response_frame(ctx.xid, zxid, &resp)
}
