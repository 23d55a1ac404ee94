//! The ensemble simulator: whole peers (zk-election + zk-zab) over a
//! simulated network and disk, with the Zab invariants checked after every
//! step.
//!
//! # Model
//!
//! * **Peers**: each server runs an election core and, once decided, a
//!   [`Leader`] or a [`Learner`] (followers and observers). The sim is their
//!   runtime: it carries out their commands exactly as zk-server must.
//! * **Disk**: a log whose records become durable only when an fsync
//!   completes (a random delay later), `acceptedEpoch` and `currentEpoch` as
//!   separate durable writes, and a snapshot (written at SNAP sync). A crash
//!   loses every write not yet durable, so it can fall between any two of
//!   "log the synced txns", "write currentEpoch" and "ACK NEWLEADER" (the
//!   windows of ZK-3911 / 4643 / 4646 / 4785). A restart rebuilds the tree
//!   from the snapshot and the durable log, as Apache's `loadDataBase`.
//! * **Roles**: a role starts once everything logged is durable, with the
//!   tree equal to the whole log (Apache reloads its database between roles;
//!   ZK-2845 came from keeping a stale one).
//! * **Network**: election connections as in [`crate::election`]; each
//!   leader-learner connection is a FIFO stream that a crash or a partition
//!   breaks. A SNAP packet travels with the leader's tree as it was when sent.
//! * **Clients**: writes are proposed at the established leader; a write is
//!   acknowledged when the leader applies it. Some are session ops: a
//!   session opened, closed, or an ephemeral created by an open one, decided
//!   against the leader's tree and what it proposed since (Apache's prep and
//!   its outstanding changes).
//! * **Reconfigs** ([`Options::reconfigs`]): some writes are reconfigs
//!   proposed as zk-server's leader does (none pending, a quorum of the new
//!   voters synced), committed by a quorum of the old and of the new
//!   voters. A server activates a configuration as zk-server does: the
//!   leader when it applies the txn or establishes an epoch with it, a
//!   learner when it applies a txn its leader committed with
//!   COMMITANDACTIVATE or at UPTODATE from NEWLEADER's, a LOOKING server
//!   from a notification carrying a later one (it then restarts its
//!   election); it is written to the disk unless it removes that server
//!   (a follower that gains or loses its vote stays in its role, its
//!   election saying FOLLOWING or OBSERVING). A server's log holding a
//!   reconfig later than its configuration is its last-seen one: pending
//!   for the leader it becomes, and counted by its elections beside the one
//!   in force (zk-election's `Joint`).
//!
//! # Checks (ensemble-testing.md §5.2)
//!
//! * **Leadership**: at most one server ever establishes a given epoch.
//! * **Agreement / Integrity**: a zxid is applied with the same txn everywhere.
//! * **PrefixConsistency / TotalOrder**: a server applies in zxid order and
//!   never skips a txn another server applied.
//! * **Committed durability**: TRUNC never removes a txn applied anywhere
//!   when the leader chose the TRUNC, and one committed since (the learner
//!   logs it again from the leader's proposals) stays durable on a quorum
//!   of the other servers; a leader that establishes an epoch holds every
//!   acknowledged write.
//! * **Epoch files**: acceptedEpoch ≥ currentEpoch on every disk.
//! * With reconfigs, a TRUNC's committed txns stay on a quorum of the voters
//!   in force when they committed.
//! * **Ephemerals follow sessions**: on every server, after every apply, no
//!   ephemeral was created by a session that was not open (and a closed
//!   session's ephemerals are gone with it).
//! * Each core's `validate()` after every step.
//! * **Liveness**: after the heal one leader is established, every other
//!   server serves under it, all trees are equal and hold every acknowledged
//!   write, within a bounded time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use zk_election::{
    Command as ElCommand, Election, Event as ElEvent, Groups, Joint, Majority, Notification,
    Params, PeerState, Quorum, Sid, Timer,
};
use zk_zab::{
    Conn, Leader, LeaderCommand, LeaderConfig, LeaderEvent, LeaderStart, Learner, LearnerCommand,
    LearnerConfig, LearnerEvent, LearnerStart, NewConfig, Packet, Zxid,
};

use crate::common::{Pair, Pairs, Trace};
use crate::election::Failure;
use crate::rng::Rng;

/// One run's ensemble, timing, faults and load.
#[derive(Debug, Clone)]
pub struct Options {
    /// Voters (sids 1..=voters).
    pub voters: usize,
    /// Observers (the sids after the voters).
    pub observers: usize,
    /// Election timing.
    pub params: Params,
    /// tickTime (ms).
    pub tick_ms: u64,
    /// initLimit (ticks).
    pub init_limit: u64,
    /// syncLimit (ticks).
    pub sync_limit: u64,
    /// One-way message delay range (ms).
    pub delay_ms: (u64, u64),
    /// fsync duration range (ms).
    pub fsync_ms: (u64, u64),
    /// Length of the fault phase (ms).
    pub fault_ms: u64,
    /// Faults drawn within it.
    pub faults: usize,
    /// Client writes spread over the fault phase (and its first seconds).
    pub writes: usize,
    /// After the heal everything must settle within this long (ms).
    pub liveness_ms: u64,
    /// Window of committed txns the leader keeps for DIFF.
    pub commit_log_count: usize,
    /// "Buggify": the chance that a server crashes (within an fsync's time)
    /// right after it sends an ACK or a COMMIT, during the fault phase, at
    /// most `targeted_crashes` times: crashes in the persistence windows of
    /// sync and broadcast, which uniform faults almost never hit.
    pub crash_after_ack: f64,
    /// The most targeted crashes per run.
    pub targeted_crashes: usize,
    /// Servers take snapshots of their own tree now and then (as zk-server
    /// does every snapCount txns) and sometimes purge the log below them,
    /// so that DIFF windows and log reads meet logs that do not reach back.
    /// Drawn from a generator of its own: off, a run keeps the draws it had
    /// before the simulator knew them.
    pub own_snapshots: bool,
    /// At most this many client writes become reconfigs (a voter removed,
    /// or one removed before added back), drawn from a generator of their
    /// own: 0 keeps a seed's run as it was before the simulator knew them.
    pub reconfigs: usize,
    /// Reconfigs may also replace any number of voters at once (down to
    /// one), where a quorum of the old voters alone would lose what the new
    /// ones elect without, and where a server back with a configuration gone
    /// stale needs its last-seen one's voters to find the ensemble again
    /// (zk-election's `Joint`).
    pub reconfig_wide: bool,
    /// Hierarchical quorums over the voters (zoo.cfg's `group.N` /
    /// `weight.N`) for the initial configuration; a reconfig's is a majority.
    pub groups: Option<Arc<Groups>>,
}

impl Options {
    /// A fault-free ensemble on a fast network, for scripted scenarios:
    /// fsyncs take 1–20 ms so a crash can fall before one completes.
    pub fn calm(voters: usize) -> Self {
        Options {
            voters,
            observers: 0,
            params: Params {
                finalize_wait_ms: 50,
                min_notification_interval_ms: 50,
                max_notification_interval_ms: 2000,
                early_finalize: true,
                answer_losing_votes: true,
            },
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            delay_ms: (0, 1),
            fsync_ms: (1, 20),
            fault_ms: 0,
            faults: 0,
            writes: 0,
            liveness_ms: 300_000,
            commit_log_count: 500,
            crash_after_ack: 0.0,
            targeted_crashes: 0,
            own_snapshots: false,
            reconfigs: 0,
            reconfig_wide: false,
            groups: None,
        }
    }

    /// Swarm testing: every seed draws its own ensemble, timing and faults.
    pub fn swarm(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0x2A2A_0000_A2A2);
        let voters = if r.chance(0.6) { 3 } else { 5 };
        let delay_hi = [1, 5, 30][r.below(3)];
        Options {
            voters,
            observers: usize::from(r.chance(0.25)),
            params: Params {
                finalize_wait_ms: [20, 50, 200][r.below(3)],
                min_notification_interval_ms: 50,
                max_notification_interval_ms: 2000,
                // Both (without drawing: the seeds' other draws stay).
                early_finalize: seed.is_multiple_of(2),
                answer_losing_votes: seed.is_multiple_of(2),
            },
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            delay_ms: (0, delay_hi),
            fsync_ms: (0, [1, 10, 50][r.below(3)]),
            fault_ms: [5_000, 30_000, 60_000][r.below(3)],
            faults: r.below(10),
            writes: [0, 20, 100][r.below(3)],
            liveness_ms: 300_000,
            commit_log_count: [3, 500][r.below(2)],
            crash_after_ack: [0.0, 0.02, 0.2][r.below(3)],
            targeted_crashes: r.below(4),
            // Without drawing (the seeds' other draws stay).
            own_snapshots: !seed.is_multiple_of(3),
            reconfigs: 0,
            reconfig_wide: false,
            groups: None,
        }
    }
}

/// A scripted fault, for the regression scenarios of ensemble-testing.md §4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// kill -9 a server (it stays down until restarted).
    Crash(Sid),
    /// Start a crashed server again.
    Restart(Sid),
    /// Cut a server off from every other (until [`Action::Heal`]).
    Isolate(Sid),
    /// End every partition.
    Heal,
    /// `n` client writes at the established leader, one per millisecond.
    Writes(u64),
}

/// When a scripted action happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// At a simulated time (ms).
    At(u64, Action),
    /// Right after server `sid` sends its first ACK of NEWLEADER from the
    /// given time on (once): the action runs before any pending fsync of that
    /// server can complete.
    AfterNewLeaderAck(Sid, u64, Action),
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Hash of the event trace.
    pub trace_hash: u64,
    /// Events processed.
    pub events: u64,
    /// Writes acknowledged to clients.
    pub acked: usize,
    /// The final leader.
    pub leader: Sid,
    /// The final epoch.
    pub epoch: u32,
    /// How the learners were synced, over the whole run.
    pub syncs: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone)]
enum QMsg {
    Packet(Packet),
    /// SNAP and the leader's tree when it was sent.
    Snap(Zxid, Vec<(Zxid, Bytes)>),
}

#[derive(Debug, Clone)]
enum Durable {
    Log {
        generation: u64,
        upto: usize,
    },
    Accepted(u32),
    Current(u32),
    Snapshot {
        zxid: Zxid,
        tree: Vec<(Zxid, Bytes)>,
    },
    /// A snapshot of the server's own tree (not a SNAP's).
    OwnSnapshot {
        tree: Vec<(Zxid, Bytes)>,
    },
}

#[derive(Debug, Clone)]
enum Ev {
    Start(Sid),
    Script(Action),
    Crash {
        node: Sid,
        restart_at: u64,
    },
    ElDeliver {
        from: Sid,
        to: Sid,
        generation: u64,
        msg: Notification,
        /// The sender's configuration (version, voters), which ZooKeeper's
        /// notifications carry.
        config: (Zxid, BTreeSet<Sid>),
    },
    ElConnect {
        a: Sid,
        b: Sid,
    },
    ElTimer {
        node: Sid,
        inc: u64,
        timer: Timer,
        generation: u64,
    },
    QDeliver {
        to: Sid,
        conn: Conn,
        to_leader: bool,
        msg: QMsg,
    },
    QConnect {
        node: Sid,
        inc: u64,
    },
    Fsync {
        node: Sid,
        inc: u64,
        what: Durable,
    },
    Tick {
        node: Sid,
        inc: u64,
    },
    RoleStart {
        node: Sid,
        inc: u64,
    },
    Write(u64),
    Partition {
        side: Vec<Sid>,
        until: u64,
    },
    Unblock {
        a: Sid,
        b: Sid,
    },
    Break {
        a: Sid,
        b: Sid,
    },
    Heal,
}

#[derive(Debug, Clone, Default)]
struct Disk {
    snap: Vec<(Zxid, Bytes)>,
    log: Vec<(Zxid, Bytes)>,
    durable: usize,
    generation: u64,
    accepted: u32,
    current: u32,
    /// The configuration activated here (its version, the reconfig's zxid,
    /// and its voters): zk-server's dynamic config file, written when the
    /// reconfig is activated and read at the next start. `None`: the
    /// initial one.
    config: Option<(Zxid, BTreeSet<Sid>)>,
}

impl Disk {
    /// Drops the log's first `n` records (all of them: `log.len()`) as one
    /// new log generation, whose pending fsyncs cannot be confused with the
    /// positions that moved.
    fn drop_log_head(&mut self, n: usize) {
        self.log.drain(..n);
        self.durable = self.durable.saturating_sub(n);
        self.generation += 1;
    }

    /// Snapshot + log: what a restart loads.
    fn history(&self, durable_only: bool) -> Vec<(Zxid, Bytes)> {
        let snap_end = self.snap.last().map_or(Zxid::ZERO, |t| t.0);
        let n = if durable_only {
            self.durable
        } else {
            self.log.len()
        };
        let mut h = self.snap.clone();
        h.extend(self.log[..n].iter().filter(|t| t.0 > snap_end).cloned());
        h
    }
}

#[allow(clippy::large_enum_variant)] // one per server; boxing buys nothing here
enum Role {
    Looking,
    Pending(PeerState, Sid),
    Leading {
        core: Leader,
        conns: BTreeMap<Conn, Sid>,
        held_snap: Option<(Conn, Zxid)>,
    },
    Learning {
        core: Learner,
        leader: Sid,
        conn: Option<Conn>,
        deadline: u64,
    },
}

struct Node {
    inc: u64,
    election: Election<Joint>,
    timers: BTreeMap<Timer, u64>,
    role: Role,
    tree: Vec<(Zxid, Bytes)>,
    /// The epoch of a leader whose TRUNC went below this server's snapshot
    /// (zk-server's `snap_from_epoch`: memory, lost in a crash).
    snap_from: Option<u32>,
    /// The configuration in force here (version, voters): the disk's, or a
    /// later one that removes this server (taken, never written).
    config: (Zxid, BTreeSet<Sid>),
}

struct QConn {
    leader: Sid,
    learner: Sid,
    alive: bool,
    /// Last scheduled delivery per direction (to_leader, to_learner): FIFO.
    lanes: (u64, u64),
}

struct Sim {
    seed: u64,
    opts: Options,
    rng: Rng,
    /// Draws the crashes inside a SNAP's persist.
    persist_rng: Rng,
    /// Draws the servers' own snapshots and purges.
    snap_rng: Rng,
    /// Draws the reconfigs.
    reconfig_rng: Rng,
    /// Reconfigs proposed so far.
    reconfigs: usize,
    /// Per learner, the reconfigs committed with COMMITANDACTIVATE and not
    /// applied yet (zk-server's `activations`).
    activations: BTreeMap<Sid, Vec<Zxid>>,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    nodes: BTreeMap<Sid, Option<Node>>,
    disks: BTreeMap<Sid, Disk>,
    pairs: Pairs,
    lanes: BTreeMap<(Sid, Sid), u64>,
    conns: BTreeMap<Conn, QConn>,
    incarnations: u64,
    next_conn: Conn,
    timer_gen: u64,
    healed: bool,
    // ghosts
    committed: BTreeMap<Zxid, Bytes>,
    /// Per connection a leader sent TRUNC(z) on, the txns after z that were
    /// committed when it chose the TRUNC (see [`Sim::truncate`]).
    trunc_chosen: BTreeMap<Conn, Vec<Zxid>>,
    acked: BTreeMap<Zxid, Bytes>,
    epoch_leader: BTreeMap<u32, Sid>,
    syncs: BTreeMap<&'static str, u64>,
    targeted: usize,
    triggers: Vec<(Sid, u64, Action)>,
    write_ids: u64,
    /// Per leader, the txns it proposed in its current role (its view of
    /// the sessions includes those not applied yet, as Apache's prep reads
    /// its outstanding changes).
    prepared: BTreeMap<Sid, Vec<(Zxid, Bytes)>>,
    /// The next client session id.
    session_ids: u64,
    events: u64,
    trace: Trace,
}

type Res = Result<(), Box<Failure>>;

/// Runs one seed.
pub fn run(seed: u64, opts: &Options) -> Result<Report, Box<Failure>> {
    let mut sim = Sim::new(seed, opts);
    for _ in 0..opts.faults {
        let at = sim.rng.range(0, opts.fault_ms);
        let f = sim.draw_fault(at);
        sim.at(at, f);
    }
    for i in 0..opts.writes {
        let at = sim.rng.range(0, opts.fault_ms + 3000);
        sim.at(at, Ev::Write(i as u64));
    }
    sim.at(opts.fault_ms, Ev::Heal);
    sim.run_to_end()
}

/// Runs a scripted scenario: `opts` without random faults or writes, the
/// steps instead; the heal comes after the last timed step, and the usual
/// checks and settling apply.
pub fn run_script(seed: u64, opts: &Options, steps: &[Step]) -> Result<Report, Box<Failure>> {
    let mut opts = opts.clone();
    opts.faults = 0;
    opts.writes = 0;
    opts.crash_after_ack = 0.0;
    let last = steps
        .iter()
        .map(|s| match s {
            Step::At(t, _) => *t,
            Step::AfterNewLeaderAck(_, t, _) => *t,
        })
        .max()
        .unwrap_or(0);
    opts.fault_ms = last + 1;
    let mut sim = Sim::new(seed, &opts);
    for step in steps {
        match step {
            Step::At(t, a) => sim.at(*t, Ev::Script(a.clone())),
            Step::AfterNewLeaderAck(sid, t, a) => sim.triggers.push((*sid, *t, a.clone())),
        }
    }
    sim.at(opts.fault_ms, Ev::Heal);
    sim.run_to_end()
}

impl Sim {
    fn new(seed: u64, opts: &Options) -> Sim {
        let n = (opts.voters + opts.observers) as Sid;
        let mut sim = Sim {
            seed,
            opts: opts.clone(),
            rng: Rng::new(seed),
            persist_rng: Rng::new(seed ^ 0x5A4B_0000_0000_B4A5),
            snap_rng: Rng::new(seed ^ 0x0053_4E41_5053_0000),
            reconfig_rng: Rng::new(seed ^ 0x5245_434F_4E46_0000),
            reconfigs: 0,
            activations: BTreeMap::new(),
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes: (1..=n).map(|s| (s, None)).collect(),
            disks: (1..=n).map(|s| (s, Disk::default())).collect(),
            pairs: Pairs::default(),
            lanes: BTreeMap::new(),
            conns: BTreeMap::new(),
            incarnations: 0,
            next_conn: 0,
            timer_gen: 0,
            healed: false,
            committed: BTreeMap::new(),
            trunc_chosen: BTreeMap::new(),
            acked: BTreeMap::new(),
            epoch_leader: BTreeMap::new(),
            syncs: BTreeMap::new(),
            targeted: 0,
            triggers: Vec::new(),
            write_ids: 1_000_000,
            prepared: BTreeMap::new(),
            session_ids: 0,
            events: 0,
            trace: Trace::default(),
        };
        for s in 1..=n {
            let t = sim.rng.range(0, 300);
            sim.at(t, Ev::Start(s));
        }
        sim
    }
}

impl Sim {
    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    fn fail(&self, what: String) -> Box<Failure> {
        Box::new(Failure {
            seed: self.seed,
            at: self.now,
            what,
            trace: self.trace.tail(60),
        })
    }

    fn note(&mut self, line: String) {
        self.trace.note(line);
    }

    fn draw_fault(&mut self, at: u64) -> Ev {
        let n = self.nodes.len() as Sid;
        let a = self.rng.range(1, n);
        let mut b = self.rng.range(1, n);
        if a == b {
            b = a % n + 1;
        }
        let until = (at + self.rng.range(100, 20_000)).min(self.opts.fault_ms);
        match self.rng.below(4) {
            0 => Ev::Break { a, b },
            1 => Ev::Partition {
                side: (1..=n).filter(|_| self.rng.chance(0.4)).collect(),
                until,
            },
            _ => Ev::Crash {
                node: a,
                restart_at: until,
            },
        }
    }

    fn run_to_end(mut self) -> Result<Report, Box<Failure>> {
        let mut healed_at = 0;
        loop {
            let Some(((t, _), ev)) = self.queue.pop_first() else {
                return Err(self.fail("the event queue ran dry".into()));
            };
            self.now = t;
            self.events += 1;
            if self.events > 3_000_000 {
                return Err(self.fail("more than 3M events".into()));
            }
            let line = format!("{t:>8} {}", short(&ev));
            self.note(line);
            if matches!(ev, Ev::Heal) {
                healed_at = t;
            }
            self.handle(ev)?;
            self.check_nodes()?;
            if self.healed && self.now > self.opts.fault_ms + 3000 {
                if let Some((sid, from, _)) = self.triggers.first() {
                    // A scripted crash that never happened would let a
                    // scenario pass without testing what it claims.
                    let what = format!(
                        "the scripted action after server {sid}'s NEWLEADER ACK (from {from} ms) never ran"
                    );
                    return Err(self.fail(what));
                }
                if let Some((leader, epoch)) = self.settled() {
                    if std::env::var_os("ZK_SIM_TRACE").is_some() {
                        eprintln!("{}", self.trace.all());
                    }
                    return Ok(Report {
                        seed: self.seed,
                        trace_hash: self.trace.hash(),
                        events: self.events,
                        acked: self.acked.len(),
                        leader,
                        epoch,
                        syncs: self.syncs.clone(),
                    });
                }
                if self.now > healed_at + self.opts.liveness_ms {
                    let states: Vec<String> = self
                        .nodes
                        .iter()
                        .map(|(s, n)| match n {
                            None => format!("{s}:down"),
                            Some(n) => format!(
                                "{s}:{} tree..{:?}",
                                role_name(&n.role),
                                n.tree.last().map(|t| t.0)
                            ),
                        })
                        .collect();
                    return Err(self.fail(format!(
                        "not settled {} ms after the heal: {}{}",
                        self.opts.liveness_ms,
                        states.join(", "),
                        self.tree_differences()
                    )));
                }
            }
        }
    }

    fn handle(&mut self, ev: Ev) -> Res {
        match ev {
            Ev::Start(s) => self.boot(s),
            Ev::Crash { node, restart_at } => {
                if self.node(node).is_some() {
                    self.crash(node)?;
                    self.at(restart_at.max(self.now + 1), Ev::Start(node));
                }
                Ok(())
            }
            Ev::ElDeliver {
                from,
                to,
                generation,
                msg,
                config,
            } => self.el_deliver(from, to, generation, msg, config),
            Ev::ElConnect { a, b } => {
                let ok =
                    self.node(a).is_some() && self.node(b).is_some() && !self.pair(a, b).blocked;
                let p = self.pair_mut(a, b);
                p.connecting = false;
                if ok && !p.up {
                    p.up = true;
                    p.generation += 1;
                    self.el_feed(a, ElEvent::Connected(b))?;
                    self.el_feed(b, ElEvent::Connected(a))?;
                }
                Ok(())
            }
            Ev::ElTimer {
                node,
                inc,
                timer,
                generation,
            } => {
                let live = self
                    .node(node)
                    .is_some_and(|n| n.inc == inc && n.timers.get(&timer) == Some(&generation));
                if live {
                    if let Some(n) = self.node_mut(node) {
                        n.timers.remove(&timer);
                    }
                    self.el_feed(node, ElEvent::Timer(timer))?;
                }
                Ok(())
            }
            Ev::QDeliver {
                to,
                conn,
                to_leader,
                msg,
            } => self.q_deliver(to, conn, to_leader, msg),
            Ev::QConnect { node, inc } => self.q_connect(node, inc),
            Ev::Fsync { node, inc, what } => self.fsync(node, inc, what),
            Ev::Tick { node, inc } => self.tick(node, inc),
            Ev::RoleStart { node, inc } => self.role_start(node, inc),
            Ev::Write(id) => self.write(id),
            Ev::Script(a) => self.script(a),
            Ev::Partition { side, until } => {
                let n = self.nodes.len() as Sid;
                for a in 1..=n {
                    for b in (a + 1)..=n {
                        if side.contains(&a) != side.contains(&b) {
                            self.pair_mut(a, b).blocked = true;
                            self.el_break(a, b)?;
                            self.q_break_between(a, b)?;
                            self.at(until, Ev::Unblock { a, b });
                        }
                    }
                }
                Ok(())
            }
            Ev::Unblock { a, b } => {
                self.pair_mut(a, b).blocked = false;
                Ok(())
            }
            Ev::Break { a, b } => self.el_break(a, b),
            Ev::Heal => {
                self.healed = true;
                self.pairs.unblock_all();
                let down: Vec<Sid> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.is_none())
                    .map(|(s, _)| *s)
                    .collect();
                for s in down {
                    self.boot(s)?;
                }
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------- nodes

    fn node(&self, s: Sid) -> Option<&Node> {
        self.nodes.get(&s).and_then(|n| n.as_ref())
    }

    fn node_mut(&mut self, s: Sid) -> Option<&mut Node> {
        self.nodes.get_mut(&s).and_then(|n| n.as_mut())
    }

    fn is_observer(&self, s: Sid) -> bool {
        s as usize > self.opts.voters
    }

    fn boot(&mut self, s: Sid) -> Res {
        if self.node(s).is_some() {
            return Ok(());
        }
        self.incarnations += 1;
        let disk = self.disks.get_mut(&s).expect("every sid has a disk");
        // A restart sees only what was durable.
        disk.log.truncate(disk.durable);
        // zk-server's recovery: a log that ends below the snapshot (a crash
        // between publishing a SNAP's snapshot and dropping the old log) is
        // dropped; across the gap its records are no DIFF material.
        if let (Some(l), Some(snap)) = (disk.log.last(), disk.snap.last())
            && l.0 < snap.0
        {
            disk.drop_log_head(disk.log.len());
        }
        let tree = disk.history(true);
        if disk.accepted < disk.current {
            return Err(self.fail(format!(
                "server {s}: acceptedEpoch below currentEpoch on disk"
            )));
        }
        let config = self.disk_config(s);
        let node = Node {
            config: config.clone(),
            inc: self.incarnations,
            election: Election::new(
                s,
                Joint::new(self.quorum_of(&config), None),
                self.opts.params,
            ),
            timers: BTreeMap::new(),
            role: Role::Looking,
            tree,
            snap_from: None,
        };
        self.nodes.insert(s, Some(node));
        let inc = self.incarnations;
        self.at(self.now + self.opts.tick_ms / 2, Ev::Tick { node: s, inc });
        self.start_looking(s)
    }

    /// ZooKeeper's last-seen configuration of `s`: a reconfig of its log
    /// (`history`) later than the one activated there, and its voters.
    fn last_seen(&self, s: Sid, history: &[(Zxid, Bytes)]) -> Option<(Zxid, BTreeSet<Sid>)> {
        let version = self.config_of(s).0;
        history
            .iter()
            .rev()
            .find_map(|(z, t)| reconfig_voters(t).map(|v| (*z, v)))
            .filter(|(z, _)| *z > version)
    }

    /// zk-server's runtime: a server going LOOKING counts (and notifies) the
    /// voters of its last-seen configuration too, a quorum of each.
    fn start_looking(&mut self, s: Sid) -> Res {
        let disk = &self.disks[&s];
        let history = disk.history(false);
        let last = history.last().map_or(Zxid::ZERO, |t| t.0);
        let current = disk.current;
        let next = self.last_seen(s, &history).map(|(_, v)| Majority::new(v));
        let in_force = self.quorum_of(&self.config_of(s));
        if let Some(n) = self.node_mut(s) {
            n.role = Role::Looking;
            n.election.set_quorum(Joint::new(in_force, next));
        }
        self.el_feed(
            s,
            ElEvent::StartLooking {
                last_zxid: last.as_i64(),
                current_epoch: i64::from(current),
            },
        )
    }

    fn crash(&mut self, s: Sid) -> Res {
        self.nodes.insert(s, None);
        let n = self.nodes.len() as Sid;
        for o in 1..=n {
            if o != s {
                self.el_break(s, o)?;
            }
        }
        let conns: Vec<Conn> = self
            .conns
            .iter()
            .filter(|(_, c)| c.alive && (c.leader == s || c.learner == s))
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.q_close(c)?;
        }
        Ok(())
    }

    /// Leaves the current role (closing its connections) and elects again.
    fn back_to_looking(&mut self, s: Sid, why: &str) -> Res {
        self.note(format!("         server {s} goes LOOKING: {why}"));
        let conns: Vec<Conn> = match self.node(s).map(|n| &n.role) {
            Some(Role::Leading { conns, .. }) => conns.keys().copied().collect(),
            Some(Role::Learning { conn: Some(c), .. }) => vec![*c],
            _ => Vec::new(),
        };
        if let Some(n) = self.node_mut(s) {
            n.role = Role::Looking;
        }
        for c in conns {
            self.q_close(c)?;
        }
        self.start_looking(s)
    }

    fn check_nodes(&self) -> Res {
        for n in self.nodes.values().flatten() {
            n.election.validate();
            match &n.role {
                Role::Leading { core, .. } => core.validate(),
                Role::Learning { core, .. } => core.validate(),
                _ => {}
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------- election

    fn el_feed(&mut self, s: Sid, ev: ElEvent) -> Res {
        let mut out = Vec::new();
        let Some(node) = self.node_mut(s) else {
            return Ok(());
        };
        node.election.step(ev, &mut out);
        let inc = node.inc;
        for c in out {
            match c {
                ElCommand::Send { to, msg } => self.el_send(s, to, msg),
                ElCommand::SetTimer { timer, after_ms } => {
                    self.timer_gen += 1;
                    let generation = self.timer_gen;
                    if let Some(n) = self.node_mut(s) {
                        n.timers.insert(timer, generation);
                    }
                    self.at(
                        self.now + after_ms,
                        Ev::ElTimer {
                            node: s,
                            inc,
                            timer,
                            generation,
                        },
                    );
                }
                ElCommand::CancelTimer(timer) => {
                    if let Some(n) = self.node_mut(s) {
                        n.timers.remove(&timer);
                    }
                }
                ElCommand::Decided(d) => {
                    if let Some(n) = self.node_mut(s) {
                        n.role = Role::Pending(d.state, d.leader);
                    }
                    self.at(self.now, Ev::RoleStart { node: s, inc });
                }
            }
        }
        Ok(())
    }

    /// A notification arrives (on the connection it was sent on). ZooKeeper's
    /// WorkerReceiver: a LOOKING server takes a later configuration a
    /// notification carries and restarts its election with it.
    fn el_deliver(
        &mut self,
        from: Sid,
        to: Sid,
        generation: u64,
        msg: Notification,
        config: (Zxid, BTreeSet<Sid>),
    ) -> Res {
        let p = self.pair(from, to);
        if !p.up || p.generation != generation {
            return Ok(());
        }
        let looking = self
            .node(to)
            .is_some_and(|n| n.election.state() == PeerState::Looking);
        if looking && self.activate(to, config.0, config.1) {
            self.start_looking(to)?;
        }
        self.el_feed(to, ElEvent::Received { from, msg })
    }

    fn el_send(&mut self, from: Sid, to: Sid, msg: Notification) {
        if !self.nodes.contains_key(&to) {
            return;
        }
        let p = self.pair(from, to);
        if p.up {
            let d = self.rng.range(self.opts.delay_ms.0, self.opts.delay_ms.1);
            let lane = self.lanes.entry((from, to)).or_default();
            let t = (self.now + d).max(*lane);
            *lane = t;
            let config = self.config_of(from);
            self.at(
                t,
                Ev::ElDeliver {
                    from,
                    to,
                    generation: p.generation,
                    msg,
                    config,
                },
            );
        } else if !p.connecting {
            self.pair_mut(from, to).connecting = true;
            let d = self.rng.range(self.opts.delay_ms.0, self.opts.delay_ms.1);
            self.at(self.now + d, Ev::ElConnect { a: from, b: to });
        }
    }

    fn el_break(&mut self, a: Sid, b: Sid) -> Res {
        let p = self.pair_mut(a, b);
        if !p.up {
            return Ok(());
        }
        p.up = false;
        p.generation += 1;
        self.el_feed(a, ElEvent::Disconnected(b))?;
        self.el_feed(b, ElEvent::Disconnected(a))
    }

    fn pair(&mut self, a: Sid, b: Sid) -> Pair {
        self.pairs.get(a, b)
    }

    fn pair_mut(&mut self, a: Sid, b: Sid) -> &mut Pair {
        self.pairs.get_mut(a, b)
    }

    // ---------------------------------------------------------------- roles

    fn role_start(&mut self, s: Sid, inc: u64) -> Res {
        let Some(node) = self.node(s) else {
            return Ok(());
        };
        let Role::Pending(state, leader) = node.role else {
            return Ok(());
        };
        if node.inc != inc {
            return Ok(());
        }
        let disk = &self.disks[&s];
        if disk.durable < disk.log.len() {
            // A role starts on a quiet log (fsyncs in flight complete first).
            self.at(self.now + 1, Ev::RoleStart { node: s, inc });
            return Ok(());
        }
        let history = disk.history(true);
        // The leader's DIFF window is read from the log, as zk-server's.
        let recent = recent_of(&disk.log, self.opts.commit_log_count);
        let (accepted, current) = (disk.accepted, disk.current);
        let last = history.last().map_or(Zxid::ZERO, |t| t.0);
        let (version, cfg_voters) = self.config_of(s);
        let pending = self.last_seen(s, &history).map(|(z, voters)| {
            let members = members_text(&voters);
            (z, NewConfig { voters, members })
        });
        let (tick, init, sync) = (
            self.opts.tick_ms,
            self.opts.init_limit,
            self.opts.sync_limit,
        );
        if let Some(n) = self.node_mut(s) {
            n.tree = history.clone();
        }
        if state == PeerState::Leading {
            let start = LeaderStart {
                accepted_epoch: accepted,
                current_epoch: current,
                applied: last,
                recent,
                tail: Vec::new(),
                pending,
            };
            let cfg = LeaderConfig {
                sid: s,
                members: members_text(&cfg_voters),
                groups: self.opts.groups.clone().filter(|_| version == Zxid::ZERO),
                voters: cfg_voters,
                init_limit: init,
                sync_limit: sync,
                commit_log_count: self.opts.commit_log_count,
                diff_from_log: true,
                config_version: version.as_i64(),
                version_config: false,
            };
            let mut out = Vec::new();
            let core = Leader::new(cfg, start, &mut out);
            self.prepared.remove(&s);
            if let Some(n) = self.node_mut(s) {
                n.role = Role::Leading {
                    core,
                    conns: BTreeMap::new(),
                    held_snap: None,
                };
            }
            self.leader_cmds(s, out)
        } else {
            let core = Learner::new(
                LearnerConfig {
                    sid: s,
                    observer: self.is_observer(s),
                    init_limit: init,
                    sync_limit: sync,
                    config_version: version.as_i64(),
                },
                LearnerStart {
                    last_zxid: last,
                    accepted_epoch: accepted,
                    current_epoch: current,
                    snap_from_epoch: self.node(s).and_then(|n| n.snap_from),
                },
            );
            let deadline = self.now + init * tick;
            if let Some(n) = self.node_mut(s) {
                n.role = Role::Learning {
                    core,
                    leader,
                    conn: None,
                    deadline,
                };
            }
            self.q_connect(s, inc)
        }
    }

    fn q_connect(&mut self, s: Sid, inc: u64) -> Res {
        let Some(node) = self.node(s) else {
            return Ok(());
        };
        let Role::Learning {
            leader,
            conn: None,
            deadline,
            ..
        } = node.role
        else {
            return Ok(());
        };
        if node.inc != inc {
            return Ok(());
        }
        let reachable = !self.pair(s, leader).blocked
            && matches!(
                self.node(leader).map(|n| &n.role),
                Some(Role::Leading { .. })
            );
        if !reachable {
            if self.now >= deadline {
                return self.back_to_looking(s, "could not reach the leader within initLimit");
            }
            self.at(self.now + 100, Ev::QConnect { node: s, inc });
            return Ok(());
        }
        let c = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            c,
            QConn {
                leader,
                learner: s,
                alive: true,
                lanes: (0, 0),
            },
        );
        if let Some(Role::Learning { conn, .. }) = self.node_mut(s).map(|n| &mut n.role) {
            *conn = Some(c);
        }
        if let Some(Role::Leading { conns, .. }) = self.node_mut(leader).map(|n| &mut n.role) {
            conns.insert(c, s);
        }
        self.leader_feed(leader, LeaderEvent::Connected(c))?;
        self.learner_feed(s, LearnerEvent::Connected)
    }

    fn q_send(&mut self, conn: Conn, to_leader: bool, msg: QMsg) {
        if let QMsg::Packet(Packet::Trunc { zxid }) = &msg {
            let after = (std::ops::Bound::Excluded(*zxid), std::ops::Bound::Unbounded);
            let chosen = self.committed.range(after).map(|(z, _)| *z).collect();
            self.trunc_chosen.insert(conn, chosen);
        }
        let acking = matches!(
            msg,
            QMsg::Packet(Packet::Ack { .. } | Packet::Commit { .. })
        );
        if acking
            && self.targeted_crash(false)
            && let Some(c) = self.conns.get(&conn)
        {
            let node = if to_leader { c.learner } else { c.leader };
            let at = self.now + self.rng.range(0, self.opts.fsync_ms.1);
            let restart_at = at + self.rng.range(100, 5000);
            self.at(at, Ev::Crash { node, restart_at });
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.alive {
            return;
        }
        let d = self.rng.range(self.opts.delay_ms.0, self.opts.delay_ms.1);
        let lane = if to_leader {
            &mut c.lanes.0
        } else {
            &mut c.lanes.1
        };
        let t = (self.now + d).max(*lane);
        *lane = t;
        let to = if to_leader { c.leader } else { c.learner };
        self.at(
            t,
            Ev::QDeliver {
                to,
                conn,
                to_leader,
                msg,
            },
        );
    }

    /// Whether a targeted crash falls here (during the fault phase, within
    /// the run's budget); counted when it does. One after a SNAP's snapshot
    /// is published (`in_persist`) is drawn from a generator of its own: a
    /// run without such a crash keeps the draws it had before the simulator
    /// knew this point (and with them the regression seeds' scenarios).
    fn targeted_crash(&mut self, in_persist: bool) -> bool {
        let chance = self.opts.crash_after_ack;
        let rng = if in_persist {
            &mut self.persist_rng
        } else {
            &mut self.rng
        };
        let hit = !self.healed && self.targeted < self.opts.targeted_crashes && rng.chance(chance);
        if hit {
            self.targeted += 1;
        }
        hit
    }

    fn q_deliver(&mut self, to: Sid, conn: Conn, to_leader: bool, msg: QMsg) -> Res {
        if !self.conns.get(&conn).is_some_and(|c| c.alive) {
            return Ok(());
        }
        if to_leader {
            let QMsg::Packet(p) = msg else {
                return Ok(());
            };
            return self.leader_feed(to, LeaderEvent::Packet(conn, p));
        }
        match msg {
            // As zk-server's runtime: COMMIT / INFORM to the core, the
            // configuration activated once the txn is applied.
            QMsg::Packet(Packet::CommitAndActivate { zxid, .. }) => {
                self.activations.entry(to).or_default().push(zxid);
                self.learner_feed(to, LearnerEvent::Packet(Packet::Commit { zxid }))
            }
            QMsg::Packet(Packet::InformAndActivate { zxid, txn, .. }) => {
                self.activations.entry(to).or_default().push(zxid);
                self.learner_feed(to, LearnerEvent::Packet(Packet::Inform { zxid, txn }))
            }
            QMsg::Packet(p) => self.learner_feed(to, LearnerEvent::Packet(p)),
            QMsg::Snap(zxid, tree) => {
                // The runtime reads the body and replaces its tree first.
                if let Some(n) = self.node_mut(to) {
                    n.tree = tree;
                }
                *self.syncs.entry("SNAP").or_default() += 1;
                self.learner_feed(to, LearnerEvent::Packet(Packet::Snap { zxid }))
            }
        }
    }

    /// Closes a leader-learner connection; the learner elects again.
    fn q_close(&mut self, c: Conn) -> Res {
        let Some(qc) = self.conns.get_mut(&c) else {
            return Ok(());
        };
        if !qc.alive {
            return Ok(());
        }
        qc.alive = false;
        let (leader, learner) = (qc.leader, qc.learner);
        let leader_has = matches!(self.node(leader).map(|n| &n.role),
            Some(Role::Leading { conns, .. }) if conns.contains_key(&c));
        if leader_has {
            if let Some(Role::Leading { conns, .. }) = self.node_mut(leader).map(|n| &mut n.role) {
                conns.remove(&c);
            }
            self.leader_feed(leader, LeaderEvent::Closed(c))?;
        }
        let learner_has = matches!(self.node(learner).map(|n| &n.role),
            Some(Role::Learning { conn: Some(x), .. }) if *x == c);
        if learner_has {
            self.back_to_looking(learner, "the leader connection closed")?;
        }
        Ok(())
    }

    fn q_break_between(&mut self, a: Sid, b: Sid) -> Res {
        let conns: Vec<Conn> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.alive && ((c.leader == a && c.learner == b) || (c.leader == b && c.learner == a))
            })
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            self.q_close(c)?;
        }
        Ok(())
    }

    fn tick(&mut self, s: Sid, inc: u64) -> Res {
        let Some(node) = self.node(s) else {
            return Ok(());
        };
        if node.inc != inc {
            return Ok(());
        }
        let which = match node.role {
            Role::Leading { .. } => 1,
            Role::Learning { conn: Some(_), .. } => 2,
            _ => 0,
        };
        self.at(self.now + self.opts.tick_ms / 2, Ev::Tick { node: s, inc });
        match which {
            1 => self.leader_feed(s, LeaderEvent::Tick),
            2 => self.learner_feed(s, LearnerEvent::Tick),
            _ => Ok(()),
        }
    }

    fn write(&mut self, id: u64) -> Res {
        let leader = self
            .nodes
            .iter()
            .find_map(|(s, n)| match n.as_ref().map(|n| &n.role) {
                Some(Role::Leading { core, .. }) if core.is_established() => Some(*s),
                _ => None,
            });
        let Some(l) = leader else {
            return Ok(());
        };
        if self.opts.reconfigs > self.reconfigs && self.reconfig_rng.chance(0.3) {
            return self.propose_reconfig(l);
        }
        let body = self.client_op(l, id);
        let mut out = Vec::new();
        if let Some(Role::Leading { core, .. }) = self.node_mut(l).map(|n| &mut n.role) {
            let zxid = core.next_zxid();
            let txn = Bytes::from(format!("{body}@{zxid}"));
            if core.propose(zxid, txn.clone(), &mut out).is_ok() {
                self.prepared.entry(l).or_default().push((zxid, txn));
            }
        }
        self.leader_cmds(l, out)
    }

    /// A reconfig at leader `l`, as zk-server's runtime checks it (none
    /// pending, a quorum of the new voters synced).
    fn propose_reconfig(&mut self, l: Sid) -> Res {
        let all: Vec<Sid> = (1..=self.opts.voters as Sid).collect();
        let Some(Role::Leading { core, .. }) = self.node(l).map(|n| &n.role) else {
            return Ok(());
        };
        if core.reconfig_pending() {
            return Ok(());
        }
        let current = core.voters().clone();
        // One voter in or out; with `reconfig_wide` half the time any other
        // non-empty set of the participants instead (a majority replaced:
        // where a quorum of the old voters alone would lose what the new
        // ones elect without).
        let mut voters = current.clone();
        let absent: Vec<Sid> = all
            .iter()
            .copied()
            .filter(|v| !voters.contains(v))
            .collect();
        if !self.opts.reconfig_wide || self.reconfig_rng.chance(0.5) {
            if !absent.is_empty() && (voters.len() <= 2 || self.reconfig_rng.chance(0.5)) {
                voters.insert(absent[self.reconfig_rng.below(absent.len())]);
            } else if voters.len() > 2 {
                let present: Vec<Sid> = voters.iter().copied().collect();
                voters.remove(&present[self.reconfig_rng.below(present.len())]);
            }
        } else {
            voters = all
                .iter()
                .copied()
                .filter(|_| self.reconfig_rng.chance(0.5))
                .collect();
        }
        if voters.is_empty() || voters == current {
            return Ok(());
        }
        let synced = match self.node(l).map(|n| &n.role) {
            Some(Role::Leading { core, .. }) => core.quorum_synced(&voters),
            _ => false,
        };
        if !synced {
            return Ok(());
        }
        self.reconfigs += 1;
        *self.syncs.entry("reconfig proposed").or_default() += 1;
        let mut out = Vec::new();
        if let Some(Role::Leading { core, .. }) = self.node_mut(l).map(|n| &mut n.role) {
            let zxid = core.next_zxid();
            let txn = Bytes::from(format!("{}@{zxid}", reconfig_body(&voters)));
            let members = members_text(&voters);
            let new = NewConfig { voters, members };
            if core
                .propose_reconfig(zxid, txn.clone(), new, &mut out)
                .is_ok()
            {
                self.prepared.entry(l).or_default().push((zxid, txn));
            }
        }
        self.note(format!("         server {l} proposes a reconfig"));
        self.leader_cmds(l, out)
    }

    /// The configuration activated on `s`'s disk: its version and voters.
    fn disk_config(&self, s: Sid) -> (Zxid, BTreeSet<Sid>) {
        self.disks[&s]
            .config
            .clone()
            .unwrap_or_else(|| (Zxid::ZERO, (1..=self.opts.voters as Sid).collect()))
    }

    /// The configuration in force on `s` (its disk's while it is down).
    fn config_of(&self, s: Sid) -> (Zxid, BTreeSet<Sid>) {
        match self.node(s) {
            Some(n) => n.config.clone(),
            None => self.disk_config(s),
        }
    }

    /// zk-server's activation: a configuration later than `s`'s becomes its
    /// own, in its election and on disk — except one that removes `s`,
    /// taken but not written (a restart reads the last one that lists it).
    fn activate(&mut self, s: Sid, zxid: Zxid, voters: BTreeSet<Sid>) -> bool {
        if zxid <= self.config_of(s).0 {
            return false;
        }
        self.note(format!(
            "         server {s} activates {voters:?} at {zxid}"
        ));
        *self.syncs.entry("reconfig activated").or_default() += 1;
        if voters.contains(&s)
            && let Some(d) = self.disks.get_mut(&s)
        {
            d.config = Some((zxid, voters.clone()));
        }
        if let Some(n) = self.node_mut(s) {
            n.config = (zxid, voters.clone());
            n.election
                .set_quorum(Joint::new(Majority::new(voters), None));
        }
        true
    }

    /// The voters of the configuration in force before `z`: those of the
    /// last committed reconfig below it (a txn is committed by a quorum of
    /// them, and a reconfig's own by the old voters and the new).
    fn voters_before(&self, z: Zxid) -> Majority {
        match self
            .committed
            .range(..z)
            .rev()
            .find_map(|(_, t)| reconfig_voters(t))
        {
            Some(voters) => Majority::new(voters),
            None => self.quorum_of(&(Zxid::ZERO, (1..=self.opts.voters as Sid).collect())),
        }
    }

    /// The quorum of a configuration: the initial one's groups, if the
    /// options give them, else a majority of its voters.
    fn quorum_of(&self, config: &(Zxid, BTreeSet<Sid>)) -> Majority {
        match &self.opts.groups {
            Some(g) if config.0 == Zxid::ZERO => Majority::hierarchical(g.clone()),
            _ => Majority::new(config.1.iter().copied()),
        }
    }

    /// What client request `id` is, prepared against leader `l`'s view of
    /// the sessions (its tree and what it proposed since): mostly a plain
    /// write `w<id>`; else a session opened `s+<k>`, closed `s-<k>` (its
    /// ephemerals go with it), or an ephemeral `e<k>/<id>` of a live one.
    fn client_op(&mut self, l: Sid, id: u64) -> String {
        let applied = self.node(l).map_or(&[][..], |n| &n.tree[..]);
        let last = applied.last().map_or(Zxid::ZERO, |t| t.0);
        let pending = self.prepared.get(&l).map_or(&[][..], |p| &p[..]);
        let live = live_sessions(
            applied
                .iter()
                .chain(pending.iter().filter(|p| p.0 > last))
                .map(|t| &t.1),
        )
        .unwrap_or_default();
        let pick = |rng: &mut Rng| live.iter().nth(rng.below(live.len())).copied();
        match self.rng.below(10) {
            0 => {
                self.session_ids += 1;
                format!("s+{}", self.session_ids)
            }
            1 if !live.is_empty() => format!("s-{}", pick(&mut self.rng).unwrap_or(0)),
            2 | 3 if !live.is_empty() => format!("e{}/{id}", pick(&mut self.rng).unwrap_or(0)),
            _ => format!("w{id}"),
        }
    }

    fn script(&mut self, a: Action) -> Res {
        self.note(format!("         script: {a:?}"));
        match a {
            Action::Crash(s) => {
                if self.node(s).is_some() {
                    self.crash(s)?;
                }
                Ok(())
            }
            Action::Restart(s) => self.boot(s),
            Action::Isolate(s) => {
                let n = self.nodes.len() as Sid;
                for o in (1..=n).filter(|o| *o != s) {
                    self.pair_mut(s, o).blocked = true;
                    self.el_break(s, o)?;
                    self.q_break_between(s, o)?;
                }
                Ok(())
            }
            Action::Heal => {
                self.pairs.unblock_all();
                Ok(())
            }
            Action::Writes(n) => {
                for i in 0..n {
                    self.write_ids += 1;
                    let id = self.write_ids;
                    self.at(self.now + i, Ev::Write(id));
                }
                Ok(())
            }
        }
    }

    fn schedule_fsync(&mut self, s: Sid, what: Durable) {
        let inc = self.node(s).map_or(0, |n| n.inc);
        let d = self.rng.range(self.opts.fsync_ms.0, self.opts.fsync_ms.1);
        self.at(self.now + d, Ev::Fsync { node: s, inc, what });
    }

    fn fsync(&mut self, s: Sid, inc: u64, what: Durable) -> Res {
        if self.node(s).is_none_or(|n| n.inc != inc) {
            return Ok(()); // the crash lost it
        }
        let disk = self.disks.get_mut(&s).expect("disk");
        let ev = match what {
            Durable::Log { generation, upto } => {
                if generation != disk.generation || upto <= disk.durable {
                    return Ok(());
                }
                disk.durable = upto.min(disk.log.len());
                let z = disk.log[disk.durable - 1].0;
                (LeaderEvent::LogDurable(z), LearnerEvent::LogDurable(z))
            }
            Durable::Accepted(e) => {
                disk.accepted = disk.accepted.max(e);
                (
                    LeaderEvent::AcceptedEpochDurable(e),
                    LearnerEvent::AcceptedEpochDurable(e),
                )
            }
            Durable::Current(e) => {
                disk.current = e;
                if disk.accepted < disk.current {
                    return Err(self.fail(format!(
                        "server {s}: currentEpoch {e} durable above acceptedEpoch"
                    )));
                }
                (
                    LeaderEvent::CurrentEpochDurable(e),
                    LearnerEvent::CurrentEpochDurable(e),
                )
            }
            Durable::OwnSnapshot { tree } => {
                // Published if newer than the snapshot on disk (zk-server
                // loads the newest); sometimes the log below it is purged
                // (zk-server keeps more, whole segments: this is the most a
                // purge can take). Only on a quiet log, whose positions the
                // pending fsyncs of a new generation cannot confuse.
                let at = tree.last().map_or(Zxid::ZERO, |t| t.0);
                let on_disk = disk.snap.last().map_or(Zxid::ZERO, |t| t.0);
                if at <= on_disk {
                    return Ok(());
                }
                disk.snap = tree;
                if self.snap_rng.chance(0.5) && disk.durable == disk.log.len() {
                    let below = disk.log.partition_point(|t| t.0 <= at);
                    if below > 0 {
                        disk.drop_log_head(below);
                        *self.syncs.entry("log purged below a snapshot").or_default() += 1;
                    }
                }
                return Ok(());
            }
            Durable::Snapshot { zxid, tree } => {
                // zk-server's order: the log's records above `zxid` go, the
                // snapshot is published, then the rest of the old log goes
                // and the snapshot replaces any other, a newer one too (the
                // one a TRUNC could not go below). A targeted crash can fall
                // after the publish: the old log stays, ending below the
                // snapshot (the next boot must not take it for history).
                let kept = disk.log.partition_point(|t| t.0 <= zxid);
                disk.log.truncate(kept);
                disk.durable = disk.durable.min(kept);
                disk.snap = tree;
                if self.targeted_crash(true) {
                    self.note(format!(
                        "         server {s} crashes after the snapshot of SNAP {zxid}, before its old log goes"
                    ));
                    *self.syncs.entry("crash inside SNAP persist").or_default() += 1;
                    let restart_at = self.now + self.rng.range(100, 5000);
                    self.crash(s)?;
                    self.at(restart_at, Ev::Start(s));
                    return Ok(());
                }
                let disk = self.disks.get_mut(&s).expect("disk");
                disk.drop_log_head(disk.log.len());
                if let Some(Some(n)) = self.nodes.get_mut(&s) {
                    n.snap_from = None;
                }
                (LeaderEvent::Tick, LearnerEvent::SnapshotDurable(zxid))
            }
        };
        match self.node(s).map(|n| &n.role) {
            Some(Role::Leading { .. }) if !matches!(ev.0, LeaderEvent::Tick) => {
                self.leader_feed(s, ev.0)
            }
            Some(Role::Learning { .. }) => self.learner_feed(s, ev.1),
            _ => Ok(()),
        }
    }

    fn append(&mut self, s: Sid, zxid: Zxid, txn: Bytes) -> Res {
        let disk = self.disks.get_mut(&s).expect("disk");
        if let Some(last) = disk.log.last().map(|t| t.0).filter(|l| *l >= zxid) {
            return Err(self.fail(format!("server {s}: log append {zxid} after {last}")));
        }
        disk.log.push((zxid, txn));
        let (generation, upto) = (disk.generation, disk.log.len());
        self.schedule_fsync(s, Durable::Log { generation, upto });
        Ok(())
    }

    /// Agreement, Integrity, PrefixConsistency and TotalOrder for one apply.
    fn apply(&mut self, s: Sid, zxid: Zxid, txn: Bytes, at_leader: bool) -> Res {
        if let Some(t) = self.committed.get(&zxid)
            && *t != txn
        {
            return Err(self.fail(format!(
                "server {s} applied {zxid} with another txn than before"
            )));
        }
        let last = self
            .node(s)
            .and_then(|n| n.tree.last().map(|t| t.0))
            .unwrap_or(Zxid::ZERO);
        if zxid <= last {
            return Err(self.fail(format!("server {s} applied {zxid} after {last}")));
        }
        if let Some((skipped, _)) = self.committed.range(last..zxid).find(|(z, _)| **z > last) {
            return Err(self.fail(format!(
                "server {s} applied {zxid} but skipped {skipped}, applied elsewhere"
            )));
        }
        self.committed.insert(zxid, txn.clone());
        if at_leader {
            self.acked.insert(zxid, txn.clone());
        }
        if let Some(n) = self.node_mut(s) {
            n.tree.push((zxid, txn));
        }
        if self.opts.own_snapshots && self.snap_rng.chance(0.05) {
            let tree = self.node(s).map(|n| n.tree.clone()).unwrap_or_default();
            let inc = self.node(s).map_or(0, |n| n.inc);
            let d = self
                .snap_rng
                .range(self.opts.fsync_ms.0, self.opts.fsync_ms.1 * 3);
            self.at(
                self.now + d,
                Ev::Fsync {
                    node: s,
                    inc,
                    what: Durable::OwnSnapshot { tree },
                },
            );
        }
        // Ephemerals follow sessions: on this server, every ephemeral is
        // created by a session still open, and goes when it closes.
        let tree = self.node(s).map_or(&[][..], |n| &n.tree[..]);
        if let Err(why) = live_sessions(tree.iter().map(|t| &t.1)) {
            return Err(self.fail(format!("server {s} applied {zxid}: {why}")));
        }
        Ok(())
    }

    // --------------------------------------------------------------- leader

    fn leader_feed(&mut self, s: Sid, ev: LeaderEvent) -> Res {
        let mut out = Vec::new();
        match self.node_mut(s).map(|n| &mut n.role) {
            Some(Role::Leading { core, .. }) => core.step(ev, &mut out),
            _ => return Ok(()),
        }
        self.leader_cmds(s, out)
    }

    fn leader_cmds(&mut self, s: Sid, out: Vec<LeaderCommand>) -> Res {
        for c in out {
            if !matches!(self.node(s).map(|n| &n.role), Some(Role::Leading { .. })) {
                break;
            }
            match c {
                LeaderCommand::Send(conn, Packet::Snap { zxid }) => {
                    if let Some(Role::Leading { held_snap, .. }) =
                        self.node_mut(s).map(|n| &mut n.role)
                    {
                        *held_snap = Some((conn, zxid));
                    }
                }
                LeaderCommand::SendSnapshot(conn) => {
                    let (held, tree) = match self.node_mut(s) {
                        Some(n) => match &mut n.role {
                            Role::Leading { held_snap, .. } => (held_snap.take(), n.tree.clone()),
                            _ => (None, Vec::new()),
                        },
                        None => (None, Vec::new()),
                    };
                    if let Some((c, zxid)) = held.filter(|h| h.0 == conn) {
                        let end = tree.last().map_or(Zxid::ZERO, |t| t.0);
                        if end != zxid {
                            return Err(self.fail(format!("SNAP {zxid} but the tree is at {end}")));
                        }
                        self.q_send(c, false, QMsg::Snap(zxid, tree));
                    }
                }
                LeaderCommand::Send(conn, p) => {
                    match &p {
                        Packet::Diff { .. } => *self.syncs.entry("DIFF").or_default() += 1,
                        Packet::Trunc { .. } => *self.syncs.entry("TRUNC").or_default() += 1,
                        _ => {}
                    }
                    self.q_send(conn, false, QMsg::Packet(p));
                }
                LeaderCommand::Close(conn, _) => self.q_close(conn)?,
                LeaderCommand::ReadLog { conn, from } => {
                    // The log (not the snapshot) from `from` on; a log purged
                    // past it makes the core fall back to SNAP.
                    // As zk-server's runtime: nothing when the log does not
                    // reach back to `from` (its first record is after it),
                    // and sometimes a refusal (too big); both end in SNAP.
                    let log = &self.disks[&s].log;
                    let reaches = log.first().is_some_and(|t| t.0 <= from);
                    let txns = (reaches && self.rng.chance(0.7))
                        .then(|| log.iter().filter(|t| t.0 >= from).cloned().collect());
                    *self.syncs.entry("ReadLog").or_default() += 1;
                    let mut out = Vec::new();
                    if let Some(Role::Leading { core, .. }) = self.node_mut(s).map(|n| &mut n.role)
                    {
                        core.step(LeaderEvent::LogRead { conn, txns }, &mut out);
                    }
                    self.leader_cmds(s, out)?;
                }
                LeaderCommand::PersistAcceptedEpoch(e) => {
                    self.schedule_fsync(s, Durable::Accepted(e))
                }
                LeaderCommand::PersistCurrentEpoch(e) => {
                    self.schedule_fsync(s, Durable::Current(e))
                }
                LeaderCommand::Append { zxid, txn } => self.append(s, zxid, txn)?,
                LeaderCommand::Apply { zxid, txn } => {
                    if let Some(voters) = reconfig_voters(&txn) {
                        self.activate(s, zxid, voters);
                    }
                    self.apply(s, zxid, txn, true)?
                }
                LeaderCommand::Established { epoch } => {
                    // A reconfig of the log the epoch made current.
                    if let Some(Role::Leading { core, .. }) = self.node(s).map(|n| &n.role) {
                        let (v, voters) = (core.config_version(), core.voters().clone());
                        self.activate(s, Zxid::from(v), voters);
                    }
                    self.established(s, epoch)?
                }
                LeaderCommand::FromLearner(..) => {}
                LeaderCommand::GoLooking(why) => self.back_to_looking(s, &why)?,
            }
        }
        Ok(())
    }

    fn established(&mut self, s: Sid, epoch: u32) -> Res {
        if let Some(other) = self.epoch_leader.insert(epoch, s)
            && other != s
        {
            return Err(self.fail(format!("epoch {epoch} established by {other} and by {s}")));
        }
        let tree: BTreeMap<Zxid, Bytes> = self
            .node(s)
            .map(|n| n.tree.iter().cloned().collect())
            .unwrap_or_default();
        if let Some((z, _)) = self.acked.iter().find(|(z, t)| tree.get(z) != Some(t)) {
            return Err(self.fail(format!(
                "leader {s} of epoch {epoch} lacks acknowledged write {z}"
            )));
        }
        self.note(format!("         server {s} established epoch {epoch}"));
        self.el_feed(
            s,
            ElEvent::EpochEstablished {
                peer_epoch: i64::from(epoch),
            },
        )
    }

    // -------------------------------------------------------------- learner

    fn learner_feed(&mut self, s: Sid, ev: LearnerEvent) -> Res {
        let mut out = Vec::new();
        let conn = match self.node_mut(s).map(|n| &mut n.role) {
            Some(Role::Learning { core, conn, .. }) => {
                core.step(ev, &mut out);
                *conn
            }
            _ => return Ok(()),
        };
        for c in out {
            if !matches!(self.node(s).map(|n| &n.role), Some(Role::Learning { .. })) {
                break;
            }
            match c {
                LearnerCommand::Send(p) => {
                    let newleader_ack = matches!(p, Packet::Ack { zxid } if zxid.counter() == 0)
                        && matches!(self.node(s).map(|n| &n.role),
                            Some(Role::Learning { core, .. }) if !core.is_serving());
                    if let Some(c) = conn {
                        self.q_send(c, true, QMsg::Packet(p));
                    }
                    if newleader_ack {
                        let now = self.now;
                        if let Some(i) = self.triggers.iter().position(|t| t.0 == s && t.1 <= now) {
                            let (_, _, a) = self.triggers.remove(i);
                            self.at(self.now, Ev::Script(a));
                        }
                    }
                }
                LearnerCommand::PersistAcceptedEpoch(e) => {
                    self.schedule_fsync(s, Durable::Accepted(e))
                }
                LearnerCommand::PersistCurrentEpoch(e) => {
                    self.schedule_fsync(s, Durable::Current(e))
                }
                LearnerCommand::Truncate(z) => self.truncate(s, conn, z)?,
                LearnerCommand::PersistSnapshot(zxid) => {
                    let tree = self.node(s).map(|n| n.tree.clone()).unwrap_or_default();
                    self.schedule_fsync(s, Durable::Snapshot { zxid, tree });
                }
                LearnerCommand::Append { zxid, txn } => self.append(s, zxid, txn)?,
                LearnerCommand::Apply { zxid, txn } => {
                    let activated = self
                        .activations
                        .get_mut(&s)
                        .and_then(|a| a.iter().position(|z| *z == zxid).map(|i| a.remove(i)));
                    if let (Some(_), Some(voters)) = (activated, reconfig_voters(&txn)) {
                        self.activate(s, zxid, voters);
                    }
                    self.apply(s, zxid, txn, false)?
                }
                LearnerCommand::StartServing {
                    epoch,
                    leader_config,
                    ..
                } => {
                    // The configuration NEWLEADER carried, adopted at UPTODATE.
                    if let Some((v, voters)) = leader_config.as_deref().and_then(parse_config) {
                        self.activate(s, v, voters);
                    }
                    self.el_feed(
                        s,
                        ElEvent::EpochEstablished {
                            peer_epoch: i64::from(epoch),
                        },
                    )?;
                }
                LearnerCommand::AnswerPing(zxid) => {
                    if let Some(c) = conn {
                        self.q_send(
                            c,
                            true,
                            QMsg::Packet(Packet::Ping {
                                zxid,
                                data: Some(Bytes::new()),
                            }),
                        );
                    }
                }
                LearnerCommand::Deliver(_) => {}
                LearnerCommand::GoLooking(why) => self.back_to_looking(s, &why)?,
            }
        }
        Ok(())
    }

    /// TRUNC over `conn`: committedLogDurability. A leader chooses TRUNC to
    /// its last committed txn when the learner is ahead of it
    /// (`LearnerHandler.syncFollower`), and sends its outstanding proposals
    /// after NEWLEADER; one of them the learner holds may commit (through
    /// other servers' ACKs) before the learner reads the TRUNC, which then
    /// removes a committed txn that the learner logs again right after,
    /// as Apache's learners do. That copy never counted towards the commit
    /// (an ACK of the learner's older connection comes before the newer
    /// connection's FOLLOWERINFO, which closes the older), so what must hold
    /// is: no txn committed when the leader chose the TRUNC goes, and any
    /// txn committed since is still durable on a quorum of the others.
    ///
    /// A TRUNC below the snapshot cannot be rebuilt from this disk (the
    /// snapshot of a SNAP whose epoch never established can hold txns the
    /// next leader lacks): as zk-server, the disk stays as it is and the
    /// learner asks this leader for SNAP; to 0 the state is the empty tree.
    fn truncate(&mut self, s: Sid, conn: Option<Conn>, z: Zxid) -> Res {
        let disk = self.disks.get(&s).expect("disk");
        let below_snap = disk.snap.last().is_some_and(|t| t.0 > z);
        if below_snap && z != Zxid::ZERO {
            let epoch = match self.node(s).map(|n| &n.role) {
                Some(Role::Learning { core, .. }) => core.epoch(),
                _ => return Ok(()),
            };
            if let Some(n) = self.node_mut(s) {
                n.snap_from = Some(epoch);
            }
            *self
                .syncs
                .entry("TRUNC below the snapshot: SNAP asked")
                .or_default() += 1;
            return self.back_to_looking(s, &format!("TRUNC to {z} below the snapshot"));
        }
        let gone: Vec<Zxid> = disk
            .history(false)
            .iter()
            .filter(|t| t.0 > z)
            .map(|t| t.0)
            .collect();
        let chosen = conn
            .and_then(|c| self.trunc_chosen.remove(&c))
            .unwrap_or_default();
        for g in gone.iter().filter(|g| self.committed.contains_key(g)) {
            if chosen.contains(g) {
                return Err(self.fail(format!(
                    "server {s}: TRUNC to {z} removes {g}, committed when the leader chose it"
                )));
            }
            let holders: BTreeSet<Sid> = self
                .disks
                .iter()
                .filter(|(o, d)| {
                    **o != s
                        && d.history(true)
                            .iter()
                            .any(|t| t.0 == *g && t.1 == self.committed[g])
                })
                .map(|(o, _)| *o)
                .collect();
            if !self.voters_before(*g).contains_quorum(&holders) {
                return Err(self.fail(format!(
                    "server {s}: TRUNC to {z} removes committed {g}, durable only on {holders:?}"
                )));
            }
            *self
                .syncs
                .entry("TRUNC of a txn committed since")
                .or_default() += 1;
        }
        let disk = self.disks.get_mut(&s).expect("disk");
        if below_snap {
            disk.snap.clear();
            *self
                .syncs
                .entry("TRUNC to 0 below the snapshot")
                .or_default() += 1;
        }
        disk.log.retain(|t| t.0 <= z);
        disk.durable = disk.durable.min(disk.log.len());
        disk.generation += 1;
        *self.syncs.entry("TRUNC applied").or_default() += 1;
        if let Some(n) = self.node_mut(s) {
            n.tree.retain(|t| t.0 <= z);
        }
        Ok(())
    }

    /// One established leader, every other server serving under it, equal
    /// trees holding every acknowledged write.
    fn settled(&self) -> Option<(Sid, u32)> {
        let mut leader = None;
        for (s, n) in &self.nodes {
            let n = n.as_ref()?;
            match &n.role {
                Role::Leading { core, .. }
                    if core.is_established() && core.committed() == core.proposed() =>
                {
                    leader = Some((*s, core.epoch()));
                }
                Role::Learning { core, .. } if core.is_serving() => {}
                _ => return None,
            }
        }
        let (l, epoch) = leader?;
        let tree = &self.node(l)?.tree;
        let all_equal = self.nodes.values().flatten().all(|n| &n.tree == tree);
        let has_acked = self
            .acked
            .iter()
            .all(|(z, t)| tree.iter().any(|x| x.0 == *z && x.1 == *t));
        (all_equal && has_acked).then_some((l, epoch))
    }
}

impl Sim {
    /// For a liveness failure: the txns some server holds and the leader does
    /// not, or the reverse.
    fn tree_differences(&self) -> String {
        let leader = self
            .nodes
            .values()
            .flatten()
            .find(|n| matches!(n.role, Role::Leading { .. }));
        let Some(l) = leader else {
            return String::new();
        };
        let mut out = String::new();
        for (s, n) in &self.nodes {
            let Some(n) = n else { continue };
            let extra: Vec<Zxid> = n
                .tree
                .iter()
                .filter(|t| !l.tree.contains(t))
                .map(|t| t.0)
                .collect();
            let missing: Vec<Zxid> = l
                .tree
                .iter()
                .filter(|t| !n.tree.contains(t))
                .map(|t| t.0)
                .collect();
            if !extra.is_empty() || !missing.is_empty() {
                out.push_str(&format!(
                    "; server {s} holds {extra:?} beyond the leader's tree, lacks {missing:?}"
                ));
            }
        }
        out
    }
}

/// zk-server's DIFF window at a leader's start: the log's last `n` txns,
/// within the epoch of its last one (`recent_txns`).
fn recent_of(log: &[(Zxid, Bytes)], n: usize) -> Vec<(Zxid, Bytes)> {
    let Some(last) = log.last().map(|t| t.0) else {
        return Vec::new();
    };
    let back = u32::try_from(n).unwrap_or(u32::MAX);
    let from = Zxid::new(last.epoch(), last.counter().saturating_sub(back));
    let start = log.partition_point(|t| t.0 < from);
    let skip = (log.len() - start).saturating_sub(n);
    log[start + skip..].to_vec()
}

fn role_name(r: &Role) -> &'static str {
    match r {
        Role::Looking => "looking",
        Role::Pending(..) => "pending",
        Role::Leading { .. } => "leading",
        Role::Learning { .. } => "learning",
    }
}

fn short(ev: &Ev) -> String {
    match ev {
        Ev::QDeliver {
            to,
            conn,
            msg: QMsg::Packet(p),
            ..
        } => format!(
            "deliver {} to {to} (conn {conn}) {:?}",
            p.name(),
            packet_zxid(p)
        ),
        Ev::QDeliver {
            to,
            conn,
            msg: QMsg::Snap(z, _),
            ..
        } => format!("deliver SNAP {z} to {to} (conn {conn})"),
        Ev::ElDeliver { from, to, msg, .. } => format!(
            "notification {from}->{to} {:?} leader {} zxid {:#x} round {}",
            msg.state, msg.vote.leader, msg.vote.zxid, msg.election_epoch
        ),
        Ev::Fsync { node, what, .. } => match what {
            Durable::Log { upto, .. } => format!("fsync {node} log upto #{upto}"),
            Durable::Accepted(e) => format!("fsync {node} acceptedEpoch {e}"),
            Durable::Current(e) => format!("fsync {node} currentEpoch {e}"),
            Durable::Snapshot { zxid, .. } => format!("fsync {node} snapshot {zxid}"),
            Durable::OwnSnapshot { tree } => format!(
                "fsync {node} own snapshot {}",
                tree.last().map_or(Zxid::ZERO, |t| t.0)
            ),
        },
        other => format!("{other:?}"),
    }
}

fn packet_zxid(p: &Packet) -> Option<Zxid> {
    match p {
        Packet::Proposal { zxid, .. }
        | Packet::Ack { zxid }
        | Packet::Commit { zxid }
        | Packet::Inform { zxid, .. }
        | Packet::NewLeader { zxid, .. }
        | Packet::Diff { zxid }
        | Packet::Trunc { zxid }
        | Packet::Snap { zxid }
        | Packet::LeaderInfo { zxid, .. }
        | Packet::AckEpoch { zxid, .. }
        | Packet::FollowerInfo { zxid, .. }
        | Packet::ObserverInfo { zxid, .. } => Some(*zxid),
        _ => None,
    }
}

/// The sessions open after `txns` (client ops as [`Sim::client_op`] writes
/// them), or the first ephemeral created by a session that is not open.
/// A reconfig txn's body: `r` and its voters (`r1.2.3`).
fn reconfig_body(voters: &BTreeSet<Sid>) -> String {
    let ids: Vec<String> = voters.iter().map(|v| v.to_string()).collect();
    format!("r{}", ids.join("."))
}

/// The voters of a reconfig txn, or `None` for any other.
fn reconfig_voters(txn: &Bytes) -> Option<BTreeSet<Sid>> {
    let text = std::str::from_utf8(txn).ok()?;
    let body = text.split('@').next()?.strip_prefix('r')?;
    body.split('.').map(|v| v.parse().ok()).collect()
}

/// The members' text a configuration carries in NEWLEADER (one line).
fn members_text(voters: &BTreeSet<Sid>) -> Bytes {
    Bytes::from(format!("{}\n", reconfig_body(voters)))
}

/// NEWLEADER's configuration text: the members' line, then `version=<hex>`.
fn parse_config(text: &[u8]) -> Option<(Zxid, BTreeSet<Sid>)> {
    let text = std::str::from_utf8(text).ok()?;
    let (members, version) = text.split_once('\n')?;
    let v = u64::from_str_radix(version.strip_prefix("version=")?, 16).ok()?;
    let voters = reconfig_voters(&Bytes::copy_from_slice(members.as_bytes()))?;
    Some((Zxid::from(v), voters))
}

fn live_sessions<'a>(txns: impl Iterator<Item = &'a Bytes>) -> Result<BTreeSet<u64>, String> {
    let mut live = BTreeSet::new();
    for t in txns {
        let text = String::from_utf8_lossy(t);
        let body = text.split('@').next().unwrap_or("");
        let session = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        if let Some(k) = body.strip_prefix("s+") {
            live.insert(session(k));
        } else if let Some(k) = body.strip_prefix("s-") {
            live.remove(&session(k));
        } else if let Some(rest) = body.strip_prefix('e') {
            let k = session(rest.split('/').next().unwrap_or(""));
            if !live.contains(&k) {
                return Err(format!(
                    "ephemeral {body} of session {k}, which is not open"
                ));
            }
        }
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txns(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|t| Bytes::from(t.to_string())).collect()
    }

    #[test]
    fn an_ephemeral_needs_an_open_session() {
        let ok = txns(&["s+1@1", "w5@2", "e1/6@3", "s+2@4", "s-1@5"]);
        assert_eq!(live_sessions(ok.iter()), Ok(BTreeSet::from([2])));
        for bad in [
            &["e1/6@1"][..],
            &["s+1@1", "s-1@2", "e1/6@3"][..],
            &["s+1@1", "e2/6@2"][..],
        ] {
            assert!(live_sessions(txns(bad).iter()).is_err(), "{bad:?}");
        }
    }
}
