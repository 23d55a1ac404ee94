//! The messages between the threads, in a leaf module that every thread
//! imports and that imports none of them: [`CoreMsg`] (loops and the log's
//! sync thread → the sequencer), [`LoopMsg`] (sequencer → a loop) with the
//! loop's mailbox [`LoopHandle`], and the request context [`Ctx`].
//!
//! Connection ids: `seq << 8 | loop`: the low byte is the index of the loop
//! that owns the connection ([`loop_of`]), the upper 56 bits a per-loop
//! sequence number starting at 1 (so 0 is never a connection). A connection
//! id is also the watcher id of the connection's watches in zk-tree, and a
//! session's `owner`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;
use mio::Waker;
use mio::net::TcpStream;
use zk_jute::{ConnectRequest, ErrorCode, Id, Request, Zxid};

use crate::frames::error_frame;

/// Who sent a request and when.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Connection id (also the watcher id of its watches).
    pub conn: u64,
    pub session_id: i64,
    pub xid: i32,
    /// The connection's authenticated ids (`ip:<addr>`, `digest:...`, `super:`).
    pub auth: Arc<Vec<Id>>,
    pub received: Instant,
}

/// A message to the core.
#[derive(Debug)]
pub(crate) enum CoreMsg {
    /// A handshake: a new session (`req.session_id == 0`, a createSession
    /// txn) or a reconnection; `timeout` is already negotiated.
    Connect {
        conn: u64,
        peer: SocketAddr,
        req: ConnectRequest,
        timeout: i32,
    },
    /// A decoded request: a write becomes a txn; a read is answered in its
    /// session's order.
    Request { ctx: Ctx, req: Request },
    /// A request the loop could not turn into a [`Request`] (undecodable body,
    /// unknown opcode): answered with an error in the session's request order.
    Rejected { ctx: Ctx, reject: Reject },
    /// A connection closed: its watches go, and its session no longer has
    /// an owner (the session lives on until it expires).
    ConnClosed { conn: u64, session_id: i64 },
    /// zk-txnlog made records durable: everything up to [`DurableMark`]'s
    /// high mark is. At most one of these is in the channel at a time.
    Durable,
    /// zk-txnlog could not make the record of `zxid` durable.
    LogFailed { zxid: Zxid, error: zk_txnlog::Error },
    /// From the quorum side (the election's decision, the quorum port's
    /// packets, ticks): drives the Zab role the sequencer hosts.
    Quorum(QuorumIn),
    /// Stop: finish the txns in flight, answer them, then stop the loops.
    Shutdown,
}

/// The quorum side → the sequencer (the `zk-quorum` thread; in tests, a
/// router between several sequencers).
#[derive(Debug)]
pub(crate) enum QuorumIn {
    /// The election made this server the leader: start a [`zk_zab::Leader`].
    Lead(zk_zab::LeaderConfig),
    /// The election chose another leader: start a [`zk_zab::Learner`].
    Follow {
        /// The learner's configuration.
        cfg: zk_zab::LearnerConfig,
        /// The elected leader's server id.
        leader: u64,
    },
    /// Leader: a learner connected to the quorum port.
    LearnerConnected(zk_zab::Conn),
    /// Leader: a packet from a learner's connection.
    FromLearner(zk_zab::Conn, zk_zab::Packet),
    /// Leader: a learner's connection closed.
    LearnerClosed(zk_zab::Conn),
    /// Learner: the connection to the leader is up.
    LeaderConnected,
    /// Learner: a packet from the leader (SNAP comes as [`QuorumIn::Snap`]).
    FromLeader(zk_zab::Packet),
    /// Learner: SNAP(zxid), and the snapshot body that follows it (Apache's
    /// serialization, quorum.md §4) fed as the quorum side reads it.
    Snap {
        zxid: Zxid,
        feed: crate::snap_feed::SnapFeed,
    },
    /// Learner: the connection to the leader closed.
    LeaderClosed,
    /// Half a tickTime passed.
    Tick,
    /// LOOKING: a peer's notification carried this configuration text, later
    /// than ours (ZooKeeper's WorkerReceiver takes it and restarts its
    /// election).
    PeerConfig(Bytes),
}

/// The sequencer → the quorum side: what the hosted role asks of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QuorumOut {
    /// Leader: a packet to a learner's connection.
    ToLearner(zk_zab::Conn, zk_zab::Packet),
    /// Leader: a piece of the body of the SNAP last sent to that learner
    /// (as a `ToLearner` packet), right after what went before; `last` on an
    /// empty piece after the body. (The leader sends the pieces as it
    /// serializes the tree.)
    SnapMore {
        conn: zk_zab::Conn,
        piece: Bytes,
        last: bool,
    },
    /// Leader: close a learner's connection.
    CloseLearner(zk_zab::Conn, String),
    /// Learner: a packet to the leader.
    ToLeader(zk_zab::Packet),
    /// The role serves clients in `epoch` (the election's vote carries it).
    EpochEstablished(u32),
    /// The ensemble configuration has version `v` from now on (reconfigEnabled:
    /// the version an established epoch gave it): the election's
    /// notifications and the next role's LearnerInfo and NEWLEADER carry it.
    ConfigVersion(u64),
    /// The ensemble's members are these from now on (a reconfig the leader
    /// committed; a [`QuorumOut::ConfigVersion`] follows): the election
    /// counts their voters and dials their election ports, the next role
    /// their quorum ports. `members` is their `server.N=` text.
    Members {
        servers: Vec<zk_jute::quorum::QuorumServer>,
        members: Bytes,
    },
    /// The role ended (GoLooking): close the quorum connections, elect again
    /// with `last_zxid`, the last zxid logged now (the role changed it).
    RoleEnded { reason: String, last_zxid: i64 },
    /// This server's last-seen configuration (reconfigEnabled: a reconfig
    /// logged here and never activated), its version and servers, or none;
    /// sent before [`QuorumOut::RoleEnded`]: the next elections count a
    /// quorum of its voters too and notify them (zk-election's `Joint`).
    LastSeen(Option<(u64, Vec<zk_jute::quorum::QuorumServer>)>),
}

/// Where the sequencer's [`QuorumOut`] go: a channel of batches, and the
/// waker of the `zk-quorum` thread's poll (none in tests, where a router
/// reads it). What is sent gathers here and goes as one batch when the
/// sequencer wakes the thread, once per batch of messages it handled: a
/// channel message per packet (a PROPOSAL and a COMMIT per follower per
/// write) cost a send and a receive each, ~10 % of the leader's quorum thread.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: Sender<Vec<QuorumOut>>,
    waker: Option<Arc<Waker>>,
    notified: Arc<AtomicBool>,
    /// Sent since the last [`Outbox::wake`] (this handle's; one thread uses
    /// a handle, so no lock: a mutex per packet was two atomic operations
    /// per PROPOSAL and COMMIT on the leader's write path).
    pending: RefCell<Vec<QuorumOut>>,
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
            notified: self.notified.clone(),
            pending: RefCell::new(Vec::new()),
        }
    }
}

/// Packets an [`Outbox`] gathers before it hands them on unasked (a long
/// pass, a DIFF): the batch stays bounded; the order is kept.
const OUTBOX_BATCH: usize = 256;

impl Outbox {
    pub(crate) fn new(tx: Sender<Vec<QuorumOut>>, waker: Option<Arc<Waker>>) -> Self {
        Self {
            tx,
            waker,
            notified: Arc::new(AtomicBool::new(false)),
            pending: RefCell::new(Vec::new()),
        }
    }

    fn pending(&self) -> std::cell::RefMut<'_, Vec<QuorumOut>> {
        self.pending.borrow_mut()
    }

    /// Queues `m`; the quorum thread gets it with the rest of the batch at
    /// the next [`Outbox::wake`] (a wake per packet cost an eventfd write and
    /// a context switch each, and a socket write each on the other side).
    pub(crate) fn send(&self, m: QuorumOut) {
        let mut p = self.pending();
        p.push(m);
        if p.len() >= OUTBOX_BATCH {
            let batch = std::mem::replace(&mut *p, Vec::with_capacity(OUTBOX_BATCH));
            let _ = self.tx.send(batch);
        }
    }

    /// Hands on what was sent since the last wake, and wakes the quorum
    /// thread if it was.
    pub(crate) fn wake(&self) {
        let batch = {
            let mut p = self.pending();
            if p.is_empty() {
                Vec::new()
            } else {
                // The next batch starts with room for one as long as this
                // one: a Vec grown from empty reallocated some seven times a
                // batch.
                let room = p.len().next_power_of_two().min(OUTBOX_BATCH);
                std::mem::replace(&mut *p, Vec::with_capacity(room))
            }
        };
        if !batch.is_empty() {
            let _ = self.tx.send(batch);
        } else if self.tx.is_empty() {
            return;
        }
        if let Some(w) = &self.waker
            && {
                std::sync::atomic::fence(SeqCst);
                !self.notified.swap(true, SeqCst)
            }
        {
            let _ = w.wake();
        }
    }

    /// Called by the quorum thread right before it drains the channel.
    pub(crate) fn clear_notified(&self) {
        self.notified.store(false, SeqCst);
        std::sync::atomic::fence(SeqCst);
    }
}

/// Why a request was rejected before it became a [`Request`], and how
/// ZooKeeper 3.8 answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// The body of a txn-producing op (create*, delete, setData, setACL,
    /// check, multi, and a createSession sent as a request) does not decode:
    /// PrepRequestProcessor has already given it a txn header, so it becomes an
    /// error txn (MARSHALLINGERROR) that takes a zxid, is logged, and is
    /// answered with that zxid. The session goes on.
    MarshallingTxn,
    /// The body of any other op (reads, sync, setWatches, reconfig, ...) does
    /// not decode: FinalRequestProcessor answers MARSHALLINGERROR with the last
    /// zxid, no txn. The session goes on.
    Marshalling,
    /// An opcode ZooKeeper does not know (`Request.isValid`): UNIMPLEMENTED with
    /// zxid -1, then the connection is closed (UnimplementedRequestProcessor);
    /// the session survives.
    Unimplemented,
    /// A write or sync (or undecodable write) of a session a server in
    /// read-only mode gave: NOTREADONLY with the last zxid
    /// (ReadOnlyRequestProcessor). The session goes on.
    NotReadOnly,
}

impl Reject {
    /// The reply frame for request `xid` when the last zxid is `last_zxid`.
    pub(crate) fn reply(self, xid: i32, last_zxid: i64) -> Bytes {
        match self {
            Reject::Unimplemented => error_frame(xid, -1, ErrorCode::Unimplemented),
            Reject::Marshalling | Reject::MarshallingTxn => {
                error_frame(xid, last_zxid, ErrorCode::MarshallingError)
            }
            Reject::NotReadOnly => error_frame(xid, last_zxid, ErrorCode::NotReadOnly),
        }
    }

    /// Whether the connection is closed once the reply is written.
    pub(crate) fn closes(self) -> bool {
        self == Reject::Unimplemented
    }
}

/// A message to a loop thread.
#[derive(Debug)]
pub(crate) enum LoopMsg {
    /// A connection accepted by loop 0 for this loop (true: on the secure
    /// client port, TLS).
    NewConn(TcpStream, SocketAddr, bool),
    /// The answer to a handshake.
    Connected {
        conn: u64,
        frame: Bytes,
        session_id: i64,
        timeout: i32,
        /// The session is invalid: send the zeroed reply, then close.
        close: bool,
    },
    /// The reply to a request the loop sent to the sequencer (each one ends
    /// a request counted as outstanding). Watch events are [`LoopMsg::Event`].
    Out {
        conn: u64,
        frame: Bytes,
        /// Close the connection once this is written (closeSession).
        close: bool,
        /// (received, handed to the loop) of a write, for stage times.
        trace: Option<(Instant, Instant)>,
    },
    /// A watch event, with the ACL of the node it is about: dropped (the
    /// watch is consumed either way) when the connection's ids lack READ on
    /// it, as ZooKeeper 3.8's `ServerCnxn.process` (see
    /// `zk_tree::ApplyOutcome::deliverable`).
    Event {
        conn: u64,
        frame: Bytes,
        acl: Arc<[zk_jute::Acl]>,
    },
    /// Close a connection (session moved to another connection, or expired).
    Close { conn: u64 },
    /// Close every client connection (one with a session or asking for
    /// one): the server left its role, or read-only mode ended (ZooKeeper's
    /// `closeAllConnections`).
    CloseClients,
    /// Stop: close every connection and exit.
    Shutdown,
}

/// A loop's mailbox.
#[derive(Debug, Clone)]
pub(crate) struct LoopHandle {
    pub tx: Sender<LoopMsg>,
    pub waker: Arc<Waker>,
    /// Set by the first sender after the loop said it may sleep (cleared right
    /// before its poll): only that sender writes the waker's eventfd, so the
    /// replies a busy loop is sent cost no wake-up syscall, and a sleeping
    /// loop is woken once.
    notified: Arc<AtomicBool>,
}

impl LoopHandle {
    pub fn new(tx: Sender<LoopMsg>, waker: Arc<Waker>) -> Self {
        Self {
            tx,
            waker,
            notified: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn send(&self, m: LoopMsg) {
        if self.queue(m) {
            self.wake();
        }
    }

    /// Queues `m` without waking the loop; [`LoopHandle::wake`] does, once
    /// for everything queued (the sequencer's replies: a wake in the middle
    /// of its batch let the loop preempt it on a busy machine and write a
    /// few replies at a time).
    pub fn queue(&self, m: LoopMsg) -> bool {
        self.tx.send(m).is_ok()
    }

    /// Wakes the loop for what [`LoopHandle::queue`] put in its mailbox, if
    /// it may be sleeping. The messages are in the channel before the flag
    /// is looked at, and the loop clears the flag before it checks the
    /// channel and sleeps: either this swap sees false (and wakes), or the
    /// loop's clear comes after it and the check that follows sees the
    /// messages (and does not sleep).
    pub fn wake(&self) {
        std::sync::atomic::fence(SeqCst);
        if !self.notified.swap(true, SeqCst) {
            let _ = self.waker.wake();
        }
    }

    /// Called by the loop right before it checks its mailbox and sleeps.
    pub(crate) fn clear_notified(&self) {
        self.notified.store(false, SeqCst);
        std::sync::atomic::fence(SeqCst);
    }
}

/// The loop index a connection id belongs to (low byte).
pub(crate) fn loop_of(conn: u64) -> usize {
    (conn & 0xff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(rx: &crossbeam_channel::Receiver<Vec<QuorumOut>>) -> Vec<Vec<i64>> {
        rx.try_iter()
            .map(|b| {
                b.into_iter()
                    .map(|m| match m {
                        QuorumOut::ToLeader(zk_zab::Packet::Ping { zxid, .. }) => zxid.as_i64(),
                        other => panic!("{other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    fn ping(n: usize) -> QuorumOut {
        QuorumOut::ToLeader(zk_zab::Packet::Ping {
            zxid: zk_zab::Zxid::from(n as i64),
            data: None,
        })
    }

    /// Pins the outbox's batching: packets go to the quorum thread as one
    /// batch per wake, in order; a pass that sends more than a batch hands
    /// the full batches on unasked, still in order; a wake with nothing
    /// sent sends nothing.
    #[test]
    fn the_outbox_hands_on_one_batch_per_wake_in_order() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let out = Outbox::new(tx, None);
        out.wake();
        assert!(packets(&rx).is_empty());
        for n in 1..=3 {
            out.send(ping(n));
        }
        assert!(packets(&rx).is_empty(), "nothing before the wake");
        out.wake();
        assert_eq!(packets(&rx), vec![vec![1, 2, 3]]);
        out.wake();
        assert!(packets(&rx).is_empty());
        for n in 0..OUTBOX_BATCH + 2 {
            out.send(ping(n % 7));
        }
        let raw: Vec<Vec<QuorumOut>> = rx.try_iter().collect();
        assert!(
            raw.iter().all(|b| b.capacity() <= OUTBOX_BATCH),
            "never grown past a batch"
        );
        let (tx2, rx2) = crossbeam_channel::unbounded();
        for b in raw {
            tx2.send(b).unwrap();
        }
        let full = packets(&rx2);
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].len(), OUTBOX_BATCH);
        out.wake();
        let rest = packets(&rx);
        assert_eq!(
            rest,
            vec![vec![
                (OUTBOX_BATCH % 7) as i64,
                ((OUTBOX_BATCH + 1) % 7) as i64
            ]]
        );
    }
}
