//! The figures the operators' interfaces report, gathered in one place: the
//! four-letter words (`fourlw`) print them as text, the AdminServer
//! (`admin`) as JSON and `/metrics` (`metrics`) as Prometheus series, so the
//! three cannot drift apart.
//!
//! [`monitor`] is `mntr`'s list (names without the `zk_` prefix, each with
//! the kind Apache's metrics provider registers it as), [`server_summary`]
//! is what `srvr` and `stat` show, and the helpers below read sessions,
//! connections and the process.

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;

use zk_tree::Tree;

use crate::control::Mode;
use crate::shared::Shared;

/// The version string printed by `srvr`, `stat`, `envi` and `mntr`. It keeps the
/// shape of Apache ZooKeeper's (`<version>-<id>, built on <date> <time> <tz>`)
/// so that clients parsing it work.
pub const VERSION: &str = "3.8.4-zk-rs-0.1.0, built on 01/01/2026 00:00 GMT";

/// One figure's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// An integer.
    Int(i64),
    /// A real (latency averages, probabilities).
    Float(f64),
    /// Text (the version, the server state).
    Text(String),
}

impl Value {
    /// The value as `mntr` prints it (reals like Java's `Double.toString`).
    pub fn mntr_text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => java_double(*v),
            Value::Text(s) => s.clone(),
        }
    }

    /// The value as a number, for Prometheus (text has none).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Text(_) => None,
        }
    }
}

/// How Apache's metrics provider registers a figure (and so how `/metrics`
/// exports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No series of its own: text (the version, the state), or a part of
    /// a summary that `/metrics` exports whole (`avg_readlatency`, ...).
    Info,
    /// A gauge (`registerGauge`).
    Gauge,
    /// A counter (`ServerMetrics`' `getCounter`).
    Counter,
}

/// One line of `mntr`.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// The name without the `zk_` prefix (Prometheus' and the JSON's name).
    pub name: Cow<'static, str>,
    /// Its value now.
    pub value: Value,
    /// How it is exported.
    pub kind: Kind,
}

fn fig(name: impl Into<Cow<'static, str>>, value: Value, kind: Kind) -> Figure {
    Figure {
        name: name.into(),
        value,
        kind,
    }
}

fn gauge(name: &'static str, v: impl TryInto<i64>) -> Figure {
    fig(
        name,
        Value::Int(v.try_into().unwrap_or(i64::MAX)),
        Kind::Gauge,
    )
}

/// The tree's figures in `srvr`, `stat` and `mntr`.
#[derive(Debug, Default, Clone)]
pub(crate) struct TreeInfo {
    /// Number of znodes.
    pub node_count: usize,
    /// Approximate data size (paths + data).
    pub data_size: u64,
    /// Number of ephemeral nodes.
    pub ephemerals_count: usize,
    /// Number of watches.
    pub watch_count: usize,
}

/// Tree figures for the four-letter words.
pub(crate) fn tree_info(tree: &Tree) -> TreeInfo {
    TreeInfo {
        // ZooKeeper's count includes the root twice.
        node_count: tree.node_count() + 1,
        data_size: tree.approximate_data_size().max(0) as u64,
        ephemerals_count: tree.ephemerals_count(),
        watch_count: tree.watch_count(),
    }
}

/// (global, local) session counts: mntr's `global_sessions` (the sessions
/// txns created) and `local_sessions` (read-only mode's).
fn session_counts(shared: &Shared) -> (usize, usize) {
    let st = shared.lock_sessions();
    let local = st.local_count();
    (st.len() - local, local)
}

/// The session tracker's expiry buckets: (deadline in ms of the server's
/// monotonic clock, session ids).
pub(crate) fn expiry_buckets(shared: &Shared) -> Vec<(u64, Vec<i64>)> {
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expiry_buckets()
}

/// The session of connection `conn` (0 before its handshake or once gone).
pub(crate) fn session_of_conn(shared: &Shared, conn: u64) -> i64 {
    shared
        .stats
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&conn)
        .map_or(0, |c| c.session_id.load(Relaxed))
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The soft limit on open file descriptors.
pub(crate) fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// What `srvr` and `stat` report (Apache's `ServerStats` and the node count).
#[derive(Debug, Clone)]
pub(crate) struct ServerSummary {
    /// Latency min, avg and max in ms.
    pub latency: (u64, f64, u64),
    /// Packets received and sent.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Live client connections.
    pub connections: usize,
    /// Requests in the pipeline.
    pub outstanding: i64,
    /// The last zxid applied.
    pub zxid: i64,
    /// The server's role.
    pub mode: Mode,
    /// Znodes (as Apache counts them).
    pub node_count: usize,
    /// Reply sizes: last, min, max (-1 before the first).
    pub response_sizes: (i64, i64, i64),
    /// The leader's proposal sizes (last, min, max), on a leader only.
    pub proposal_sizes: Option<(i64, i64, i64)>,
    /// Failed authentications.
    pub auth_failed: u64,
    /// Ms since the server started.
    pub uptime_ms: u64,
}

/// Gathers [`ServerSummary`].
pub(crate) fn server_summary(shared: &Shared) -> ServerSummary {
    let st = &shared.stats;
    let (min, avg, max, _) = st.latency.get();
    let mode = shared.control.mode();
    let size = |i: usize| st.response_size[i].load(Relaxed);
    ServerSummary {
        latency: (min, avg, max),
        received: st.received.load(Relaxed),
        sent: st.sent.load(Relaxed),
        connections: st.connections().len(),
        outstanding: shared.control.outstanding().max(0),
        zxid: shared.last_zxid(),
        mode,
        node_count: tree_info(&shared.tree).node_count,
        response_sizes: (size(0), size(1), size(2)),
        proposal_sizes: (mode == Mode::Leader).then(|| shared.control.proposal_sizes()),
        auth_failed: st.auth_failed.load(Relaxed),
        uptime_ms: st.started.elapsed().as_millis() as u64,
    }
}

/// `mntr`: `version` and `server_state`, then the gauges of a standalone
/// Apache ZooKeeper 3.8 in the order it prints them (its metrics provider's
/// hash order), then the counters this server keeps, also in Apache's
/// order, then the ensemble's gauges. Apache's other counters and summaries
/// (request processor queues, JVM pauses, TLS, the response cache, ...) are
/// left out: this server has no such parts, and a zero would claim a
/// measurement.
pub(crate) fn monitor(shared: &Shared) -> Vec<Figure> {
    let info = tree_info(&shared.tree);
    let st = &shared.stats;
    let s = server_summary(shared);
    let (min, avg, max) = s.latency;
    let (last_size, min_size, max_size) = s.response_sizes;
    let mode = s.mode;
    let mut lines = vec![
        fig("version", Value::Text(VERSION.into()), Kind::Info),
        fig("server_state", Value::Text(mode.name().into()), Kind::Info),
    ];
    if let Some(state) = peer_state(mode) {
        lines.push(fig("peer_state", Value::Text(state.into()), Kind::Info));
    }
    if mode == Mode::Observer {
        // ObserverZooKeeperServer.dumpMonitorValues: the server it syncs
        // from (printed, not a registered gauge).
        let master = shared.control.learner_master();
        lines.push(fig("observer_master_id", Value::Int(master), Kind::Info));
    }
    let (global_sessions, local_sessions) = session_counts(shared);
    lines.extend([
        gauge("ephemerals_count", info.ephemerals_count),
        gauge("num_alive_connections", s.connections),
        fig("avg_latency", Value::Float(avg), Kind::Gauge),
        gauge("outstanding_requests", s.outstanding),
        gauge("znode_count", info.node_count),
        gauge("global_sessions", global_sessions),
        gauge("non_mtls_remote_conn_count", 0),
        gauge("last_client_response_size", last_size),
        gauge("packets_sent", s.sent),
        gauge("packets_received", s.received),
        gauge("max_client_response_size", max_size),
        fig(
            "connection_drop_probability",
            Value::Float(0.0),
            Kind::Gauge,
        ),
        gauge("watch_count", info.watch_count),
        gauge("auth_failed_count", s.auth_failed),
        gauge("min_latency", min),
        gauge("max_file_descriptor_count", max_fds()),
        gauge("approximate_data_size", info.data_size),
        gauge("open_file_descriptor_count", open_fds()),
        gauge("local_sessions", local_sessions),
        gauge("uptime", s.uptime_ms),
        gauge("max_latency", max),
        gauge("outstanding_tls_handshake", 0),
        gauge("min_client_response_size", min_size),
        gauge("non_mtls_local_conn_count", 0),
        fig(
            "connection_rejected",
            Value::Int(st.rejected.load(Relaxed) as i64),
            Kind::Counter,
        ),
        fig(
            "digest_mismatches_count",
            Value::Int(st.digest_mismatches.load(Relaxed) as i64),
            Kind::Counter,
        ),
    ]);
    lines.extend(summaries(st));
    if shared.config.is_ensemble() && mode != Mode::ReadOnly {
        // QuorumZooKeeperServer's gauge: the voting members (a read-only
        // server is not one).
        let voters = shared
            .members()
            .iter()
            .filter(|x| x.role == zk_jute::quorum::LearnerType::Participant)
            .count();
        lines.push(gauge("quorum_size", voters));
    }
    lines.extend(per_namespace(&shared.tree));
    if mode == Mode::Leader {
        // LeaderZooKeeperServer's gauges (no reconfig here, so no
        // non-voting followers).
        let (c, uptime) = shared.control.leader_gauges();
        let (last, min, max) = shared.control.proposal_sizes();
        lines.extend([
            gauge("learners", c.learners),
            gauge("synced_followers", c.synced_followers),
            gauge("synced_non_voting_followers", 0),
            gauge("synced_observers", c.synced_observers),
            gauge("pending_syncs", c.pending_syncs),
            gauge("leader_uptime", uptime),
            gauge("last_proposal_size", last),
            gauge("max_proposal_size", max),
            gauge("min_proposal_size", min),
        ]);
    }
    lines
}

/// The mntr names of the `node_*_watch_count` summaries' parts (basic), in
/// the order of `ServerStats::watch_counts`.
pub(crate) const WATCH_COUNTS: [[&str; 5]; 4] = [
    [
        "avg_node_created_watch_count",
        "min_node_created_watch_count",
        "max_node_created_watch_count",
        "cnt_node_created_watch_count",
        "sum_node_created_watch_count",
    ],
    [
        "avg_node_deleted_watch_count",
        "min_node_deleted_watch_count",
        "max_node_deleted_watch_count",
        "cnt_node_deleted_watch_count",
        "sum_node_deleted_watch_count",
    ],
    [
        "avg_node_changed_watch_count",
        "min_node_changed_watch_count",
        "max_node_changed_watch_count",
        "cnt_node_changed_watch_count",
        "sum_node_changed_watch_count",
    ],
    [
        "avg_node_children_watch_count",
        "min_node_children_watch_count",
        "max_node_children_watch_count",
        "cnt_node_children_watch_count",
        "sum_node_children_watch_count",
    ],
];

/// The mntr names of the start's recovery summaries (basic), in the order
/// of `ServerStats::startup`.
pub(crate) const STARTUP: [[&str; 5]; 4] = [
    [
        "avg_dbinittime",
        "min_dbinittime",
        "max_dbinittime",
        "cnt_dbinittime",
        "sum_dbinittime",
    ],
    [
        "avg_startup_snap_load_time",
        "min_startup_snap_load_time",
        "max_startup_snap_load_time",
        "cnt_startup_snap_load_time",
        "sum_startup_snap_load_time",
    ],
    [
        "avg_startup_txns_loaded",
        "min_startup_txns_loaded",
        "max_startup_txns_loaded",
        "cnt_startup_txns_loaded",
        "sum_startup_txns_loaded",
    ],
    [
        "avg_startup_txns_load_time",
        "min_startup_txns_load_time",
        "max_startup_txns_load_time",
        "cnt_startup_txns_load_time",
        "sum_startup_txns_load_time",
    ],
];

/// The mntr names of `follower_sync_time`'s parts (a basic summary).
const FOLLOWER_SYNC_TIME: [&str; 5] = [
    "avg_follower_sync_time",
    "min_follower_sync_time",
    "max_follower_sync_time",
    "cnt_follower_sync_time",
    "sum_follower_sync_time",
];

/// The mntr names of `observer_sync_time`'s parts (a basic summary).
const OBSERVER_SYNC_TIME: [&str; 5] = [
    "avg_observer_sync_time",
    "min_observer_sync_time",
    "max_observer_sync_time",
    "cnt_observer_sync_time",
    "sum_observer_sync_time",
];

/// The mntr names of `fsynctime`'s parts (a basic summary).
const FSYNC_TIME: [&str; 5] = [
    "avg_fsynctime",
    "min_fsynctime",
    "max_fsynctime",
    "cnt_fsynctime",
    "sum_fsynctime",
];

/// The mntr names of `snapshottime`'s parts (a basic summary).
const SNAPSHOT_TIME: [&str; 5] = [
    "avg_snapshottime",
    "min_snapshottime",
    "max_snapshottime",
    "cnt_snapshottime",
    "sum_snapshottime",
];

/// The mntr names of `election_time`'s parts (a basic summary).
const ELECTION_TIME: [&str; 5] = [
    "avg_election_time",
    "min_election_time",
    "max_election_time",
    "cnt_election_time",
    "sum_election_time",
];

/// The mntr names of `updatelatency`'s parts, in Apache's order.
const UPDATE_LATENCY: [&str; 9] = [
    "avg_updatelatency",
    "min_updatelatency",
    "max_updatelatency",
    "cnt_updatelatency",
    "sum_updatelatency",
    "p50_updatelatency",
    "p95_updatelatency",
    "p99_updatelatency",
    "p999_updatelatency",
];

/// The mntr names of `readlatency`'s parts, in Apache's order.
const READ_LATENCY: [&str; 9] = [
    "avg_readlatency",
    "min_readlatency",
    "max_readlatency",
    "cnt_readlatency",
    "sum_readlatency",
    "p50_readlatency",
    "p95_readlatency",
    "p99_readlatency",
    "p999_readlatency",
];

/// A summary as Apache's `AvgMinMaxCounter` prints it: avg (4 decimals),
/// min, max, count, sum, and for an `AvgMinMaxPercentileCounter` (9 names)
/// the 50th, 95th, 99th and 99.9th percentiles (0 before the first value).
fn summary_figures(names: &[&'static str], s: &crate::stats::Summary) -> Vec<Figure> {
    let (count, sum) = s.count_sum();
    let (min, max) = s.min_max();
    let avg = average(sum, count);
    let q = |q: f64| Value::Int(s.quantile(q).unwrap_or(0) as i64);
    let values = [
        Value::Float(avg),
        Value::Int(min as i64),
        Value::Int(max as i64),
        Value::Int(count as i64),
        Value::Int(sum as i64),
        q(0.5),
        q(0.95),
        q(0.99),
        q(0.999),
    ];
    names
        .iter()
        .copied()
        .zip(values)
        .map(|(name, value)| fig(name, value, Kind::Info))
        .collect()
}

/// Apache's `AvgMinMaxCounter` average: to 4 decimals, 0 when empty.
fn average(sum: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        (sum as f64 / count as f64 * 10_000.0).round() / 10_000.0
    }
}

/// ServerMetrics' summaries that this server measures, in the order
/// Apache's mntr prints them ("basic" ones without percentiles).
fn summaries(st: &crate::stats::ServerStats) -> Vec<Figure> {
    let mut lines = Vec::new();
    let [created, deleted, changed, children] = &st.watch_counts;
    let [created_n, deleted_n, changed_n, children_n] = &WATCH_COUNTS;
    let [db_init, snap_load, txns_loaded, txns_load] = &st.startup;
    let [db_init_n, snap_load_n, txns_loaded_n, txns_load_n] = &STARTUP;
    for (names, s) in [
        (&created_n[..], created),
        (deleted_n, deleted),
        (txns_load_n, txns_load),
        (&FOLLOWER_SYNC_TIME, &st.follower_sync_time),
        (&FSYNC_TIME, &st.fsync.time),
        (&SNAPSHOT_TIME, &st.snapshot_time),
        (txns_loaded_n, txns_loaded),
        (db_init_n, db_init),
        (&ELECTION_TIME, &st.election_time),
        (children_n, children),
        (&OBSERVER_SYNC_TIME, &st.observer_sync_time),
        (changed_n, changed),
        (snap_load_n, snap_load),
        (&UPDATE_LATENCY, &st.update_latency),
        (&READ_LATENCY, &st.read_latency),
    ] {
        lines.extend(summary_figures(names, s));
    }
    lines
}

/// The per-namespace figures: two summary sets and a counter set
/// (`<key>_quota_exceeded_error_per_namespace`).
fn per_namespace(tree: &Tree) -> Vec<Figure> {
    let mut lines = namespace_figures("read_per_namespace", &tree.read_namespaces());
    lines.extend(namespace_figures(
        "write_per_namespace",
        &tree.write_namespaces(),
    ));
    for (ns, n) in tree.quota_exceeded_namespaces() {
        let name = format!("{ns}_quota_exceeded_error_per_namespace");
        lines.push(fig(name, Value::Int(n as i64), Kind::Info));
    }
    lines
}

/// A summary set's mntr lines (Apache's `AvgMinMaxCounterSet`): five per
/// key, `avg_<key>_<name>` ... `sum_<key>_<name>`, kept whole by `/metrics`.
fn namespace_figures(name: &str, stats: &[(String, zk_tree::NamespaceStat)]) -> Vec<Figure> {
    let mut out = Vec::with_capacity(stats.len() * 5);
    for (ns, s) in stats {
        let values = [
            ("avg", Value::Float(average(s.sum, s.count))),
            ("min", Value::Int(s.min as i64)),
            ("max", Value::Int(s.max as i64)),
            ("cnt", Value::Int(s.count as i64)),
            ("sum", Value::Int(s.sum as i64)),
        ];
        out.extend(
            values
                .into_iter()
                .map(|(part, v)| fig(format!("{part}_{ns}_{name}"), v, Kind::Info)),
        );
    }
    out
}

/// mntr's `zk_peer_state` (Apache's `QuorumPeer.getDetailedPeerState`: the
/// peer state, the Zab phase, the sync mode while syncing): a server that
/// answers mntr serves, so its role is in broadcast. Standalone has none, nor
/// has a read-only server (not a quorum server: Apache's registers none).
fn peer_state(mode: Mode) -> Option<&'static str> {
    match mode {
        Mode::Standalone | Mode::ReadOnly => None,
        Mode::Leader => Some("leading - broadcast"),
        Mode::Follower => Some("following - broadcast"),
        Mode::Observer => Some("observing - broadcast"),
    }
}

/// Formats like Java's `Double.toString` for the values latencies take.
pub(crate) fn java_double(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    }
}

/// `envi`'s pairs (Java's system properties as Apache's `Environment`
/// lists them; the JVM's are empty or say there is none).
pub(crate) fn environment() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    vec![
        ("zookeeper.version", VERSION.to_string()),
        ("host.name", host),
        ("java.version", "none (zk-rs, Rust)".into()),
        ("java.vendor", "none".into()),
        ("java.home", String::new()),
        ("java.class.path", String::new()),
        ("java.library.path", String::new()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".into()),
        ("os.name", java_os_name()),
        ("os.arch", java_os_arch()),
        ("os.version", kernel_release()),
        ("user.name", user_name().unwrap_or_else(|| env("USER"))),
        ("user.home", env("HOME")),
        ("user.dir", cwd),
        ("os.memory.free", "0MB".into()),
        ("os.memory.max", "0MB".into()),
        ("os.memory.total", "0MB".into()),
    ]
}

/// Java's `os.name` for this OS.
fn java_os_name() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        "macos" => "Mac OS X".into(),
        "freebsd" => "FreeBSD".into(),
        other => other.into(),
    }
}

/// Java's `os.arch` for this CPU.
fn java_os_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".into(),
        "x86" => "i386".into(),
        other => other.into(),
    }
}

/// The name of the process's real uid (Java's `user.name`), from /etc/passwd.
fn user_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(1.0 / 3.0), "0.3333");
    }
}
