//! The election simulator: zk-election cores over a simulated network, with
//! a stand-in for Zab's "a leader needs a quorum of followers" rule.
//!
//! # Model
//!
//! * **Time** is simulated milliseconds; events run in (time, sequence) order.
//! * **Network**: one connection per pair of servers, as QuorumCnxManager
//!   keeps. Each direction is FIFO; a message takes a delay drawn per seed.
//!   Sending over a pair that is down starts a connection (when both ends live
//!   and no partition separates them); when it comes up both ends get
//!   `Connected` and re-send their last notification. A **break** drops
//!   everything in flight and both ends get `Disconnected`. A **partition**
//!   breaks the pairs across it and refuses new connections until it ends. A
//!   **pause** (a blackhole that keeps the socket) holds a direction's
//!   messages until it ends, then delivers them in order.
//! * **Crash and restart**: a crash loses the core and its timers; a restart
//!   builds a new core from the server's "disk" (last zxid, current epoch).
//! * **Role stub** (Zab's part, reduced to what the election relies on): a
//!   decided learner connects to its leader (retrying every 100 ms) and gives
//!   up after `initLimit` ticks; a leader that has no quorum of attached voters
//!   within `initLimit` ticks, or loses it for `syncLimit` ticks, goes back to
//!   LOOKING, and so do its learners. When a quorum attaches the leader
//!   "establishes" epoch max+1 (fed to the cores as `EpochEstablished`) and
//!   may write a few txns, which its learners copy: later elections then see
//!   different zxids and epochs.
//!
//! # Checks
//!
//! * After every decision: no two different leaders decided for the same
//!   election epoch with a quorum of voters behind each. A server's decisions
//!   count from its start to its crash: `logicalclock` is kept in memory only,
//!   so a restarted server numbers its rounds from 1 again. A join (a
//!   decision from the notifications of servers already LEADING or
//!   FOLLOWING, `Decision::joined`) takes their round's number and does
//!   not count.
//! * After every step: each core's `validate()`.
//! * After the heal (faults end, crashed servers restart): within a bounded
//!   time every live server has decided the same leader, which leads with all
//!   of them attached.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use zk_election::{
    Command, Election, Event, Majority, Notification, Params, PeerState, Quorum, Sid, Timer,
};

use crate::common::{Pair, Pairs, Trace};
use crate::rng::Rng;

/// What one run looks like: the ensemble, its timing and its faults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of voters (sids 1..=voters).
    pub voters: usize,
    /// Number of observers (the sids after the voters).
    pub observers: usize,
    /// The election's timing.
    pub params: Params,
    /// tickTime, initLimit, syncLimit.
    pub tick_ms: u64,
    /// initLimit in ticks.
    pub init_limit: u64,
    /// syncLimit in ticks.
    pub sync_limit: u64,
    /// One-way message delay range (ms).
    pub delay_ms: (u64, u64),
    /// Connection set-up time range (ms).
    pub connect_ms: (u64, u64),
    /// Pause between starting one server and the next (ms); (0, 0) starts all at once.
    pub stagger_ms: (u64, u64),
    /// Length of the fault phase (ms); faults end and crashed servers restart then.
    pub fault_ms: u64,
    /// Number of faults drawn within the fault phase.
    pub faults: usize,
    /// After the heal, every live server must agree within this long (ms).
    pub liveness_ms: u64,
    /// What to do once the ensemble is first stable after the heal.
    pub then: Then,
}

/// A scripted step once the ensemble is stable; the run then measures the
/// time until it is stable again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Nothing: the run ends at the first stable point.
    Stop,
    /// kill -9 the leader (it stays down): the survivors must elect another.
    CrashLeader,
    /// kill -9 a follower and restart it a second later: it must rejoin the
    /// standing leader while no other server decides anything.
    BounceFollower,
    /// Restart every server in turn, highest sid first, each once the
    /// ensemble is stable again (ZOOKEEPER-1732 / ZOOKEEPER-2164: servers
    /// that never rejoined after rolling restarts); a follower's restart must
    /// not make any other server decide.
    RollingRestart,
}

impl Options {
    /// A fault-free run of `voters` servers started together on a fast network.
    pub fn calm(voters: usize, params: Params) -> Self {
        Options {
            voters,
            observers: 0,
            params,
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            delay_ms: (0, 1),
            connect_ms: (0, 1),
            stagger_ms: (0, 0),
            fault_ms: 0,
            faults: 0,
            liveness_ms: 300_000,
            then: Then::Stop,
        }
    }

    /// Swarm testing: every seed draws its own ensemble, network and faults.
    pub fn swarm(seed: u64) -> Self {
        let mut r = Rng::new(seed ^ 0xA5A5_0000_5A5A);
        let voters = if r.chance(0.5) { 3 } else { 5 };
        let observers = usize::from(r.chance(0.25));
        let delay_hi = [1, 5, 30, 150][r.below(4)];
        let stagger = if r.chance(0.5) {
            (0, 0)
        } else {
            (0, [50, 500, 5000][r.below(3)])
        };
        let finalize = [20, 50, 200][r.below(3)];
        Options {
            voters,
            observers,
            params: Params {
                finalize_wait_ms: finalize,
                min_notification_interval_ms: finalize,
                max_notification_interval_ms: [2000, 60_000][r.below(2)],
                // Both (without drawing: the seeds' other draws stay).
                early_finalize: seed.is_multiple_of(2),
                answer_losing_votes: seed.is_multiple_of(2),
            },
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            delay_ms: (0, delay_hi),
            connect_ms: (0, delay_hi),
            stagger_ms: stagger,
            fault_ms: [0, 20_000, 90_000][r.below(3)],
            faults: r.below(12),
            liveness_ms: 400_000,
            then: [
                Then::Stop,
                Then::Stop,
                Then::CrashLeader,
                Then::BounceFollower,
            ][r.below(4)],
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// A hash of every event processed (the same seed must give the same hash).
    pub trace_hash: u64,
    /// Events processed.
    pub events: u64,
    /// When (ms) the ensemble was first stable after the heal.
    pub stable_at: u64,
    /// The heal time (ms).
    pub healed_at: u64,
    /// The leader it settled on.
    pub leader: Sid,
    /// The voter with the best (epoch, zxid, sid) when the run began.
    pub initial_best: Sid,
    /// Decisions taken (all servers, all rounds).
    pub decisions: u64,
    /// Rounds abandoned because a decided leader or learner found no partner
    /// in time (the cost of a premature decision).
    pub detours: u64,
    /// With a script ([`Then`]): the time from the scripted step to the next
    /// stable point (ms).
    pub recovered_in: Option<u64>,
}

/// A run that broke a rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed (replay with it).
    pub seed: u64,
    /// Simulated time of the failure (ms).
    pub at: u64,
    /// The rule broken.
    pub what: String,
    /// The last events before it.
    pub trace: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at {} ms: {}\nreplay: ZK_SIM_SEED={} cargo test -p zk-sim --test <election|ensemble> replay -- --nocapture\nlast events:\n{}",
            self.seed, self.at, self.what, self.seed, self.trace
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Start(Sid),
    Deliver {
        from: Sid,
        to: Sid,
        generation: u64,
        msg: Notification,
    },
    Connect {
        a: Sid,
        b: Sid,
    },
    Fire {
        node: Sid,
        inc: u64,
        timer: Timer,
        generation: u64,
    },
    Attach {
        node: Sid,
        inc: u64,
    },
    LeaderCheck {
        node: Sid,
        inc: u64,
    },
    Break {
        a: Sid,
        b: Sid,
    },
    Partition {
        side: Vec<Sid>,
        until: u64,
    },
    Unblock {
        a: Sid,
        b: Sid,
    },
    Pause {
        from: Sid,
        to: Sid,
        until: u64,
    },
    Crash {
        node: Sid,
        restart_at: u64,
    },
    Restart(Sid),
    Heal,
}

/// A scripted step in progress: when it happened, the bounced follower (if
/// any) and every other server's decision count before it.
type Scripted = (u64, Option<Sid>, BTreeMap<Sid, u64>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Looking,
    Learning {
        leader: Sid,
        attached: bool,
        deadline: u64,
    },
    Leading {
        attached: BTreeSet<Sid>,
        established: bool,
        deadline: u64,
        lost_since: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Disk {
    last_zxid: i64,
    current_epoch: i64,
}

struct Node {
    core: Election<Majority>,
    inc: u64,
    timers: BTreeMap<Timer, u64>,
    role: Role,
}

/// One simulated ensemble.
struct Sim {
    seed: u64,
    opts: Options,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    nodes: BTreeMap<Sid, Option<Node>>,
    disks: BTreeMap<Sid, Disk>,
    pairs: Pairs,
    /// Per direction: the last scheduled delivery time (FIFO) and pause end.
    lanes: BTreeMap<(Sid, Sid), (u64, u64)>,
    quorum: Majority,
    incarnations: u64,
    timer_gen: u64,
    healed: bool,
    initial_best: Sid,
    /// Ghost: election epoch → leader → voters that decided it.
    decided: BTreeMap<i64, BTreeMap<Sid, BTreeSet<Sid>>>,
    events: u64,
    decisions: u64,
    detours: u64,
    /// Decisions per server (to check that a bounce decides nothing elsewhere).
    decisions_by: BTreeMap<Sid, u64>,
    /// Servers a rolling restart has still to restart.
    rolling: std::collections::VecDeque<Sid>,
    trace: Trace,
}

/// Runs one seed; `Ok` with its report, or the rule it broke.
pub fn run(seed: u64, opts: &Options) -> Result<Report, Box<Failure>> {
    let n = opts.voters + opts.observers;
    let quorum = Majority::new(1..=opts.voters as Sid);
    let mut sim = Sim {
        seed,
        opts: opts.clone(),
        rng: Rng::new(seed),
        now: 0,
        seq: 0,
        queue: BTreeMap::new(),
        nodes: (1..=n as Sid).map(|s| (s, None)).collect(),
        disks: (1..=n as Sid).map(|s| (s, Disk::default())).collect(),
        pairs: Pairs::default(),
        lanes: BTreeMap::new(),
        quorum,
        incarnations: 0,
        timer_gen: 0,
        healed: false,
        initial_best: 0,
        decided: BTreeMap::new(),
        events: 0,
        decisions: 0,
        detours: 0,
        decisions_by: BTreeMap::new(),
        rolling: Default::default(),
        trace: Trace::default(),
    };
    sim.setup();
    sim.run_to_end()
}

impl Sim {
    fn setup(&mut self) {
        let n = self.nodes.len() as Sid;
        // Servers that ran before: various zxids and epochs.
        if self.rng.chance(0.5) {
            for s in 1..=n {
                let epoch = self.rng.range(0, 3) as i64;
                let counter = self.rng.range(0, 4) as i64;
                self.disks.insert(
                    s,
                    Disk {
                        last_zxid: (epoch << 32) | counter,
                        current_epoch: epoch,
                    },
                );
            }
        }
        self.initial_best = (1..=self.opts.voters as Sid)
            .max_by_key(|s| (self.disks[s].current_epoch, self.disks[s].last_zxid, *s))
            .unwrap_or(0);
        let mut order: Vec<Sid> = (1..=n).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i + 1);
            order.swap(i, j);
        }
        let mut t = 0;
        for s in order {
            self.at(t, Ev::Start(s));
            t += self
                .rng
                .range(self.opts.stagger_ms.0, self.opts.stagger_ms.1);
        }
        for _ in 0..self.opts.faults {
            let at = self.rng.range(0, self.opts.fault_ms);
            let fault = self.draw_fault(at);
            self.at(at, fault);
        }
        self.at(self.opts.fault_ms.max(t), Ev::Heal);
    }

    fn draw_fault(&mut self, at: u64) -> Ev {
        let n = self.nodes.len() as Sid;
        let a = self.rng.range(1, n);
        let mut b = self.rng.range(1, n);
        if a == b {
            b = a % n + 1;
        }
        let until = (at + self.rng.range(100, 30_000)).min(self.opts.fault_ms);
        match self.rng.below(5) {
            0 => Ev::Break { a, b },
            1 => {
                let side: Vec<Sid> = (1..=n).filter(|_| self.rng.chance(0.4)).collect();
                Ev::Partition { side, until }
            }
            2 => Ev::Pause {
                from: a,
                to: b,
                until,
            },
            _ => Ev::Crash {
                node: a,
                restart_at: if self.rng.chance(0.7) {
                    until
                } else {
                    u64::MAX
                },
            },
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    fn fail(&self, what: String) -> Box<Failure> {
        Box::new(Failure {
            seed: self.seed,
            at: self.now,
            what,
            trace: self.trace.tail(40),
        })
    }

    fn run_to_end(mut self) -> Result<Report, Box<Failure>> {
        let mut healed_at = 0;
        let mut script: Option<Scripted> = None;
        let mut recovered_in = None;
        loop {
            let Some(((t, _), ev)) = self.queue.pop_first() else {
                return Err(self.fail("the event queue ran dry".into()));
            };
            self.now = t;
            self.events += 1;
            if self.events > 2_000_000 {
                return Err(self.fail("more than 2M events: a message storm".into()));
            }
            self.trace(&ev);
            let is_heal = ev == Ev::Heal;
            self.handle(ev)?;
            if is_heal {
                healed_at = t;
            }
            if self.healed {
                if let Some(leader) = self.stable() {
                    if let Some((at, bounced, before)) = script.take() {
                        if let Some(f) = bounced {
                            let others = self.decisions_except(f);
                            if others != before {
                                return Err(self.fail(format!(
                                    "bouncing follower {f} made others decide again: {before:?} -> {others:?}"
                                )));
                            }
                        }
                        recovered_in = Some(self.now - at);
                    }
                    if let Some(next) = self.next_scripted(leader, recovered_in.is_some()) {
                        script = Some(self.bounce(leader, next)?);
                        continue;
                    }
                    return Ok(Report {
                        seed: self.seed,
                        trace_hash: self.trace.hash(),
                        events: self.events,
                        stable_at: self.now,
                        healed_at,
                        leader,
                        initial_best: self.initial_best,
                        decisions: self.decisions,
                        detours: self.detours,
                        recovered_in,
                    });
                }
                let since = script.as_ref().map_or(healed_at, |s| s.0);
                if self.now > since + self.opts.liveness_ms {
                    let states: Vec<String> = self
                        .nodes
                        .iter()
                        .map(|(s, n)| match n {
                            Some(n) => format!("{s}:{:?}/{:?}", n.core.state(), n.role),
                            None => format!("{s}:down"),
                        })
                        .collect();
                    return Err(self.fail(format!(
                        "no stable leader {} ms after the heal: {}",
                        self.opts.liveness_ms,
                        states.join(", ")
                    )));
                }
            }
        }
    }

    fn trace(&mut self, ev: &Ev) {
        let line = format!("{:>8} {:?}", self.now, ev);
        self.trace.note(line);
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Box<Failure>> {
        match ev {
            Ev::Start(s) | Ev::Restart(s) => self.boot(s)?,
            Ev::Deliver {
                from,
                to,
                generation,
                msg,
            } => {
                let p = self.pair(from, to);
                if p.up && p.generation == generation {
                    self.feed(to, Event::Received { from, msg })?;
                }
            }
            Ev::Connect { a, b } => {
                let ok = self.alive(a) && self.alive(b) && !self.pair(a, b).blocked;
                let p = self.pair_mut(a, b);
                p.connecting = false;
                if ok && !p.up {
                    p.up = true;
                    p.generation += 1;
                    self.feed(a, Event::Connected(b))?;
                    self.feed(b, Event::Connected(a))?;
                }
            }
            Ev::Fire {
                node,
                inc,
                timer,
                generation,
            } => {
                let live = self.node(node).is_some_and(|n| {
                    n.inc == inc && n.timers.get(&timer).is_some_and(|g| *g == generation)
                });
                if live {
                    if let Some(n) = self.node_mut(node) {
                        n.timers.remove(&timer);
                    }
                    self.feed(node, Event::Timer(timer))?;
                }
            }
            Ev::Attach { node, inc } => self.attach(node, inc)?,
            Ev::LeaderCheck { node, inc } => self.leader_check(node, inc)?,
            Ev::Break { a, b } => self.break_pair(a, b)?,
            Ev::Partition { side, until } => {
                let n = self.nodes.len() as Sid;
                for a in 1..=n {
                    for b in (a + 1)..=n {
                        if side.contains(&a) != side.contains(&b) {
                            self.pair_mut(a, b).blocked = true;
                            self.break_pair(a, b)?;
                            self.sever(a, b)?;
                            self.at(until, Ev::Unblock { a, b });
                        }
                    }
                }
            }
            Ev::Unblock { a, b } => self.pair_mut(a, b).blocked = false,
            Ev::Pause { from, to, until } => {
                let lane = self.lanes.entry((from, to)).or_default();
                lane.1 = lane.1.max(until);
            }
            Ev::Crash { node, restart_at } => {
                if self.alive(node) {
                    self.crash(node)?;
                    if restart_at != u64::MAX && restart_at > self.now {
                        self.at(restart_at, Ev::Restart(node));
                    }
                }
            }
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
            }
        }
        Ok(())
    }

    /// The server the script acts on next, if any.
    fn next_scripted(&mut self, leader: Sid, done_one: bool) -> Option<Sid> {
        match self.opts.then {
            Then::Stop => None,
            Then::CrashLeader => (!done_one).then_some(leader),
            Then::BounceFollower => {
                if done_one {
                    return None;
                }
                let followers: Vec<Sid> = self
                    .nodes
                    .keys()
                    .copied()
                    .filter(|s| *s != leader)
                    .collect();
                Some(followers[self.rng.below(followers.len())])
            }
            Then::RollingRestart => {
                if !done_one {
                    self.rolling = self.nodes.keys().rev().copied().collect();
                }
                self.rolling.pop_front()
            }
        }
    }

    fn decisions_except(&self, f: Sid) -> BTreeMap<Sid, u64> {
        self.decisions_by
            .iter()
            .filter(|(s, _)| **s != f)
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    /// Crashes `target` (restarting it a second later unless the script kills
    /// the leader for good).
    fn bounce(&mut self, leader: Sid, target: Sid) -> Result<Scripted, Box<Failure>> {
        let before = self.decisions_except(target);
        self.crash(target)?;
        if self.opts.then == Then::CrashLeader {
            return Ok((self.now, None, before));
        }
        self.at(self.now + 1000, Ev::Restart(target));
        let follower = (target != leader).then_some(target);
        Ok((self.now, follower, before))
    }

    fn boot(&mut self, s: Sid) -> Result<(), Box<Failure>> {
        if self.alive(s) {
            return Ok(());
        }
        self.incarnations += 1;
        let node = Node {
            core: Election::new(s, self.quorum.clone(), self.opts.params),
            inc: self.incarnations,
            timers: BTreeMap::new(),
            role: Role::Looking,
        };
        self.nodes.insert(s, Some(node));
        self.start_looking(s)
    }

    fn start_looking(&mut self, s: Sid) -> Result<(), Box<Failure>> {
        let disk = self.disks[&s];
        if let Some(n) = self.node_mut(s) {
            n.role = Role::Looking;
        }
        self.feed(
            s,
            Event::StartLooking {
                last_zxid: disk.last_zxid,
                current_epoch: disk.current_epoch,
            },
        )
    }

    fn crash(&mut self, s: Sid) -> Result<(), Box<Failure>> {
        self.nodes.insert(s, None);
        // logicalclock lives in memory: a restarted server counts its rounds
        // from 1 again, so its earlier decisions belong to another life.
        for by_leader in self.decided.values_mut() {
            for deciders in by_leader.values_mut() {
                deciders.remove(&s);
            }
        }
        let n = self.nodes.len() as Sid;
        for o in 1..=n {
            if o != s {
                self.break_pair(s, o)?;
                self.sever(s, o)?;
            }
        }
        Ok(())
    }

    /// The quorum-port connection between a and b is gone (crash or
    /// partition): a learner loses its leader, a leader its learner.
    fn sever(&mut self, a: Sid, b: Sid) -> Result<(), Box<Failure>> {
        for (l, f) in [(a, b), (b, a)] {
            let follows = matches!(
                self.node(f).map(|n| &n.role),
                Some(Role::Learning { leader, attached: true, .. }) if *leader == l
            );
            if follows {
                self.start_looking(f)?;
            }
            let now = self.now;
            let quorum = self.quorum.clone();
            if let Some(Role::Leading {
                attached,
                lost_since,
                established,
                ..
            }) = self.node_mut(l).map(|n| &mut n.role)
            {
                attached.remove(&f);
                let mut acks = attached.clone();
                acks.insert(l);
                if *established && !quorum.contains_quorum(&acks) && lost_since.is_none() {
                    *lost_since = Some(now);
                }
            }
        }
        Ok(())
    }

    fn break_pair(&mut self, a: Sid, b: Sid) -> Result<(), Box<Failure>> {
        let p = self.pair_mut(a, b);
        if !p.up {
            return Ok(());
        }
        p.up = false;
        p.generation += 1;
        if self.alive(a) {
            self.feed(a, Event::Disconnected(b))?;
        }
        if self.alive(b) {
            self.feed(b, Event::Disconnected(a))?;
        }
        Ok(())
    }

    fn pair(&mut self, a: Sid, b: Sid) -> Pair {
        self.pairs.get(a, b)
    }

    fn pair_mut(&mut self, a: Sid, b: Sid) -> &mut Pair {
        self.pairs.get_mut(a, b)
    }

    fn alive(&self, s: Sid) -> bool {
        self.node(s).is_some()
    }

    fn node(&self, s: Sid) -> Option<&Node> {
        self.nodes.get(&s).and_then(|n| n.as_ref())
    }

    fn node_mut(&mut self, s: Sid) -> Option<&mut Node> {
        self.nodes.get_mut(&s).and_then(|n| n.as_mut())
    }

    /// Steps server `s`'s core and carries out its commands.
    fn feed(&mut self, s: Sid, ev: Event) -> Result<(), Box<Failure>> {
        let mut out = Vec::new();
        let Some(node) = self.node_mut(s) else {
            return Ok(());
        };
        node.core.step(ev, &mut out);
        node.core.validate();
        let inc = node.inc;
        for c in out {
            match c {
                Command::Send { to, msg } => self.send(s, to, msg),
                Command::SetTimer { timer, after_ms } => {
                    self.timer_gen += 1;
                    let generation = self.timer_gen;
                    if let Some(n) = self.node_mut(s) {
                        n.timers.insert(timer, generation);
                    }
                    self.at(
                        self.now + after_ms,
                        Ev::Fire {
                            node: s,
                            inc,
                            timer,
                            generation,
                        },
                    );
                }
                Command::CancelTimer(timer) => {
                    if let Some(n) = self.node_mut(s) {
                        n.timers.remove(&timer);
                    }
                }
                Command::Decided(d) => self.decided(s, inc, d)?,
            }
        }
        Ok(())
    }

    fn send(&mut self, from: Sid, to: Sid, msg: Notification) {
        if !self.nodes.contains_key(&to) {
            return;
        }
        let p = self.pair(from, to);
        if p.up {
            let delay = self.rng.range(self.opts.delay_ms.0, self.opts.delay_ms.1);
            let lane = self.lanes.entry((from, to)).or_default();
            let t = (self.now + delay).max(lane.0).max(lane.1);
            lane.0 = t;
            self.at(
                t,
                Ev::Deliver {
                    from,
                    to,
                    generation: p.generation,
                    msg,
                },
            );
        } else if !p.connecting {
            self.pair_mut(from, to).connecting = true;
            let d = self
                .rng
                .range(self.opts.connect_ms.0, self.opts.connect_ms.1);
            self.at(self.now + d, Ev::Connect { a: from, b: to });
        }
    }

    fn decided(&mut self, s: Sid, inc: u64, d: zk_election::Decision) -> Result<(), Box<Failure>> {
        self.decisions += 1;
        *self.decisions_by.entry(s).or_default() += 1;
        // A join takes the round number of the leader's followers, whose
        // own decisions counted in that round (a server that led round 1,
        // lost its quorum and rejoined the leader of round 2 through a
        // follower still reporting round 1 is not a second leader of round 1).
        if self.quorum.is_voter(s) && !d.joined {
            let by_leader = self.decided.entry(d.election_epoch).or_default();
            by_leader.entry(d.leader).or_default().insert(s);
            let backed: Vec<Sid> = by_leader
                .iter()
                .filter(|(_, v)| self.quorum.contains_quorum(v))
                .map(|(l, _)| *l)
                .collect();
            if backed.len() > 1 {
                let detail = format!("{by_leader:?}");
                return Err(self.fail(format!(
                    "election epoch {}: leaders {:?} each decided by a quorum ({detail})",
                    d.election_epoch, backed
                )));
            }
        }
        let deadline = self.now + self.opts.init_limit * self.opts.tick_ms;
        let role = if d.state == PeerState::Leading {
            self.at(deadline, Ev::LeaderCheck { node: s, inc });
            Role::Leading {
                attached: BTreeSet::new(),
                established: false,
                deadline,
                lost_since: None,
            }
        } else {
            let d2 = self
                .rng
                .range(self.opts.connect_ms.0, self.opts.connect_ms.1);
            self.at(self.now + d2, Ev::Attach { node: s, inc });
            Role::Learning {
                leader: d.leader,
                attached: false,
                deadline,
            }
        };
        if let Some(n) = self.node_mut(s) {
            n.role = role;
        }
        self.try_establish(s)
    }

    fn attach(&mut self, s: Sid, inc: u64) -> Result<(), Box<Failure>> {
        let Some(node) = self.node(s) else {
            return Ok(());
        };
        let Role::Learning {
            leader,
            attached: false,
            deadline,
        } = node.role
        else {
            return Ok(());
        };
        if node.inc != inc {
            return Ok(());
        }
        let reachable = !self.pair(s, leader).blocked;
        let leading = matches!(
            self.node(leader).map(|n| &n.role),
            Some(Role::Leading { .. })
        );
        if reachable && leading {
            if let Some(Role::Learning { attached, .. }) = self.node_mut(s).map(|n| &mut n.role) {
                *attached = true;
            }
            let quorum = self.quorum.clone();
            if let Some(Role::Leading {
                attached,
                lost_since,
                ..
            }) = self.node_mut(leader).map(|n| &mut n.role)
            {
                attached.insert(s);
                let mut acks = attached.clone();
                acks.insert(leader);
                if quorum.contains_quorum(&acks) {
                    *lost_since = None;
                }
            }
            self.sync_learner(leader, s)?;
            return self.try_establish(leader);
        }
        if self.now >= deadline {
            self.detours += 1;
            return self.start_looking(s);
        }
        self.at(self.now + 100, Ev::Attach { node: s, inc });
        Ok(())
    }

    fn try_establish(&mut self, l: Sid) -> Result<(), Box<Failure>> {
        let Some(Role::Leading {
            attached,
            established: false,
            ..
        }) = self.node(l).map(|n| n.role.clone())
        else {
            return Ok(());
        };
        let mut acks = attached.clone();
        acks.insert(l);
        if !self.quorum.contains_quorum(&acks) {
            return Ok(());
        }
        let epoch = acks
            .iter()
            .map(|s| self.disks[s].current_epoch)
            .max()
            .unwrap_or(0)
            + 1;
        let writes = self.rng.range(0, 3) as i64;
        self.disks.insert(
            l,
            Disk {
                last_zxid: (epoch << 32) | writes,
                current_epoch: epoch,
            },
        );
        if let Some(Role::Leading { established, .. }) = self.node_mut(l).map(|n| &mut n.role) {
            *established = true;
        }
        self.feed(l, Event::EpochEstablished { peer_epoch: epoch })?;
        for f in attached {
            self.sync_learner(l, f)?;
        }
        let inc = self.node(l).map(|n| n.inc).unwrap_or(0);
        self.at(
            self.now + self.opts.tick_ms,
            Ev::LeaderCheck { node: l, inc },
        );
        Ok(())
    }

    /// A learner attached to an established leader takes its epoch and log.
    fn sync_learner(&mut self, l: Sid, f: Sid) -> Result<(), Box<Failure>> {
        let established = matches!(
            self.node(l).map(|n| &n.role),
            Some(Role::Leading {
                established: true,
                ..
            })
        );
        if established {
            let d = self.disks[&l];
            self.disks.insert(f, d);
            self.feed(
                f,
                Event::EpochEstablished {
                    peer_epoch: d.current_epoch,
                },
            )?;
        }
        Ok(())
    }

    fn leader_check(&mut self, l: Sid, inc: u64) -> Result<(), Box<Failure>> {
        let Some(node) = self.node(l) else {
            return Ok(());
        };
        if node.inc != inc {
            return Ok(());
        }
        let Role::Leading {
            established,
            deadline,
            lost_since,
            ..
        } = node.role.clone()
        else {
            return Ok(());
        };
        let sync = self.opts.sync_limit * self.opts.tick_ms;
        let give_up = if !established {
            self.now >= deadline
        } else {
            lost_since.is_some_and(|t| self.now >= t + sync)
        };
        if give_up {
            self.detours += u64::from(!established);
            return self.step_down(l);
        }
        if established {
            self.at(
                self.now + self.opts.tick_ms,
                Ev::LeaderCheck { node: l, inc },
            );
        }
        Ok(())
    }

    fn step_down(&mut self, l: Sid) -> Result<(), Box<Failure>> {
        let followers: Vec<Sid> = match self.node(l).map(|n| &n.role) {
            Some(Role::Leading { attached, .. }) => attached.iter().copied().collect(),
            _ => Vec::new(),
        };
        self.start_looking(l)?;
        for f in followers {
            let follows = matches!(
                self.node(f).map(|n| &n.role),
                Some(Role::Learning { leader, attached: true, .. }) if *leader == l
            );
            if follows {
                self.start_looking(f)?;
            }
        }
        Ok(())
    }

    /// The leader every live server follows, when the ensemble is settled.
    fn stable(&self) -> Option<Sid> {
        let live = self.nodes.values().filter(|n| n.is_some()).count();
        let mut leader = None;
        for (s, n) in &self.nodes {
            let Some(n) = n else { continue };
            if let Role::Leading {
                established: true,
                attached,
                ..
            } = &n.role
            {
                if leader.is_some() || attached.len() + 1 != live {
                    return None;
                }
                leader = Some(*s);
            }
        }
        let l = leader?;
        let all = self.nodes.iter().all(|(s, n)| {
            *s == l
                || match n {
                    None => true,
                    Some(n) => matches!(&n.role,
                        Role::Learning { leader, attached: true, .. } if *leader == l),
                }
        });
        all.then_some(l)
    }
}

/// Renders a report line (for the measurement test).
pub fn describe(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "seed {} leader {} stable after {} ms ({} events, {} decisions, {} detours)",
        r.seed,
        r.leader,
        r.stable_at - r.healed_at,
        r.events,
        r.decisions,
        r.detours
    );
    s
}
