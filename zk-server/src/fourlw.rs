//! Four-letter words on the client port, with ZooKeeper's output formats
//! (clients and tools parse them: kazoo reads `envi`, go-zookeeper regex-parses
//! `srvr` and `cons`, `zkServer.sh status` greps `Mode:` out of `srvr`).
//!
//! A 4lw is recognised only as the first four bytes of a connection, before any
//! handshake, as ZooKeeper's `NIOServerCnxn.checkFourLetterWord`. The answer is
//! written and the connection closed. Commands outside `4lw.commands.whitelist`
//! answer `<cmd> is not executed because it is not in the whitelist.`

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use zk_tree::{Tree, WatchKind};

use crate::control::Mode;
use crate::shared::Shared;

/// The version string printed by `srvr`, `stat`, `envi` and `mntr`. It keeps the
/// shape of Apache ZooKeeper's (`<version>-<id>, built on <date> <time> <tz>`)
/// so that clients parsing it work.
pub const VERSION: &str = "3.8.4-zk-rs-0.1.0, built on 01/01/2026 00:00 GMT";

/// Every four-letter word ZooKeeper knows.
const ALL: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "isro", "wchs", "wchc", "wchp", "dirs",
    "dump", "crst", "srst", "gtmk", "stmk", "hash",
];

/// The command named by the first four bytes of a connection, if they are one.
pub fn recognise(first4: &[u8]) -> Option<&'static str> {
    let s = std::str::from_utf8(first4).ok()?;
    ALL.iter().copied().find(|c| *c == s)
}

/// The tree's figures in `srvr`, `stat` and `mntr`.
#[derive(Debug, Default, Clone)]
struct TreeInfo {
    /// Number of znodes.
    node_count: usize,
    /// Approximate data size (paths + data).
    data_size: u64,
    /// Number of ephemeral nodes.
    ephemerals_count: usize,
    /// Number of watches.
    watch_count: usize,
}

fn session_count(shared: &Shared) -> usize {
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .len()
}

fn expiry_buckets(shared: &Shared) -> Vec<(u64, Vec<i64>)> {
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expiry_buckets()
}

fn session_of_conn(shared: &Shared, conn: u64) -> i64 {
    shared
        .stats
        .conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&conn)
        .map_or(0, |c| c.session_id.load(Relaxed))
}

/// Tree figures for the four-letter words.
fn tree_info(tree: &Tree) -> TreeInfo {
    TreeInfo {
        // ZooKeeper's count includes the root twice.
        node_count: tree.node_count() + 1,
        data_size: tree.approximate_data_size().max(0) as u64,
        ephemerals_count: tree.ephemerals_count(),
        watch_count: tree.watch_count(),
    }
}

/// Runs `cmd` and returns its full answer. `rest` is what the client sent
/// after the four letters (`stmk` takes its new mask as 8 big-endian bytes).
pub fn run(shared: &Shared, cmd: &str, rest: &[u8]) -> String {
    if !shared.config.four_letter_whitelist.allows(cmd) {
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    if !shared.control.serving() {
        // Apache 3.8's commands (server/command/*) check isZKServerRunning():
        // ruok, envi, gtmk and stmk answer anyway, isro says "null" and hash
        // prints the text without a newline (compared with a LOOKING 3.8.0 in
        // tests/tests/election.rs).
        const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";
        match cmd {
            "ruok" | "envi" | "gtmk" | "stmk" => {}
            "isro" => return "null".to_string(),
            "hash" => return NOT_SERVING.to_string(),
            _ => return format!("{NOT_SERVING}\n"),
        }
    }
    let mut out = String::new();
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("rw"),
        "srvr" => server_stats(shared, &mut out, false),
        "stat" => server_stats(shared, &mut out, true),
        "conf" => out.push_str(&shared.config.conf_text(shared.local_addr().port())),
        "cons" => {
            for c in shared.stats.connections() {
                let _ = writeln!(out, "{}", c.cons_line());
            }
            out.push('\n');
        }
        "crst" => {
            for c in shared.stats.connections() {
                c.reset();
            }
            out.push_str("Connection stats reset.\n");
        }
        "srst" => {
            shared.stats.reset();
            out.push_str("Server stats reset.\n");
        }
        "envi" => envi(&mut out),
        "dirs" => {
            let _ = writeln!(
                out,
                "datadir_size: {}",
                crate::config::dir_size(&shared.config.data_dir)
            );
            let _ = writeln!(
                out,
                "logdir_size: {}",
                crate::config::dir_size(&shared.config.data_log_dir)
            );
        }
        "mntr" => mntr(shared, &mut out),
        // As Apache 3.8's DataTree.dumpWatches*: data watches only (exists and
        // getData), then an empty line.
        "wchs" => {
            let summary = shared.tree.watch_summary(WatchKind::Data);
            let _ = writeln!(
                out,
                "{} connections watching {} paths",
                summary.watchers, summary.paths
            );
            let _ = writeln!(out, "Total watches:{}", summary.total);
        }
        "wchc" => {
            for (conn, paths) in &shared.tree.watches_by_watcher(WatchKind::Data) {
                let _ = writeln!(out, "0x{:x}", session_of_conn(shared, *conn));
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out.push('\n');
        }
        "wchp" => {
            for (path, conns) in &shared.tree.watches_by_path(WatchKind::Data) {
                let _ = writeln!(out, "{path}");
                for c in conns {
                    let _ = writeln!(out, "\t0x{:x}", session_of_conn(shared, *c));
                }
            }
            out.push('\n');
        }
        "dump" => dump(shared, &mut out),
        // ZooTrace's text trace mask, printed without a newline.
        "gtmk" => out.push_str(&shared.stats.trace_mask.load(Relaxed).to_string()),
        "stmk" => {
            // Apache reads the 8 bytes once; without them it answers nothing.
            if let Some(mask) = rest.get(..8) {
                let mask = i64::from_be_bytes(mask.try_into().unwrap_or([0; 8]));
                shared.stats.trace_mask.store(mask, Relaxed);
                out.push_str(&mask.to_string());
            }
        }
        // Apache's digest log: `zxid: digest` for the applied zxids that are
        // multiples of 128 (the newest 1024).
        "hash" => {
            for (zxid, digest) in shared.tree.digest_log() {
                let _ = writeln!(out, "{zxid:x}: {digest}");
            }
        }
        _ => {}
    }
    out
}

fn server_stats(shared: &Shared, out: &mut String, with_clients: bool) {
    let _ = writeln!(out, "Zookeeper version: {VERSION}");
    if with_clients {
        out.push_str("Clients:\n");
        for c in shared.stats.connections() {
            let line = c.cons_line();
            // `stat` prints the brief form: up to `sent=N`.
            let brief = match line.find(",sid=") {
                Some(i) => format!("{})", &line[..i]),
                None => line,
            };
            let _ = writeln!(out, "{brief}");
        }
        out.push('\n');
    }
    let (min, avg, max, _) = shared.stats.latency.get();
    let _ = writeln!(out, "Latency min/avg/max: {min}/{}/{max}", java_double(avg));
    let _ = writeln!(out, "Received: {}", shared.stats.received.load(Relaxed));
    let _ = writeln!(out, "Sent: {}", shared.stats.sent.load(Relaxed));
    let _ = writeln!(out, "Connections: {}", shared.stats.connections().len());
    let _ = writeln!(out, "Outstanding: {}", shared.control.outstanding().max(0));
    let _ = writeln!(out, "Zxid: 0x{:x}", shared.last_zxid());
    let _ = writeln!(out, "Mode: {}", shared.control.mode().name());
    let _ = writeln!(out, "Node count: {}", tree_info(&shared.tree).node_count);
    if shared.control.mode() == Mode::Leader {
        let (last, min, max) = shared.control.proposal_sizes();
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
}

/// Formats like Java's `Double.toString` for the values latencies take.
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    }
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let pairs = [
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
    ];
    for (k, v) in pairs {
        let _ = writeln!(out, "{k}={v}");
    }
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// `mntr`: `zk_version` and `zk_server_state`, then the gauges of a
/// standalone Apache ZooKeeper 3.8 in the order it prints them (its metrics
/// provider's hash order), then the counters this server keeps, also in
/// Apache's order. Apache's other counters and summaries (request processor
/// queues, JVM pauses, learners, TLS, the response cache, ...) are left out:
/// this server has no such parts, and a zero would claim a measurement.
fn mntr(shared: &Shared, out: &mut String) {
    let info = tree_info(&shared.tree);
    let st = &shared.stats;
    let (min, avg, max, _) = st.latency.get();
    let sessions = session_count(shared);
    let size = |i: usize| st.response_size[i].load(Relaxed).to_string();
    let mut lines: Vec<(&str, String)> = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", shared.control.mode().name().into()),
    ];
    if let Some(state) = peer_state(shared.control.mode()) {
        lines.push(("zk_peer_state", state.into()));
    }
    if shared.control.mode() == Mode::Observer {
        // ObserverZooKeeperServer.dumpMonitorValues: the server it syncs from.
        let master = shared.control.learner_master().to_string();
        lines.push(("zk_observer_master_id", master));
    }
    lines.extend([
        ("zk_ephemerals_count", info.ephemerals_count.to_string()),
        (
            "zk_num_alive_connections",
            st.connections().len().to_string(),
        ),
        ("zk_avg_latency", java_double(avg)),
        (
            "zk_outstanding_requests",
            shared.control.outstanding().max(0).to_string(),
        ),
        ("zk_znode_count", info.node_count.to_string()),
        ("zk_global_sessions", sessions.to_string()),
        ("zk_non_mtls_remote_conn_count", "0".into()),
        ("zk_last_client_response_size", size(0)),
        ("zk_packets_sent", st.sent.load(Relaxed).to_string()),
        ("zk_packets_received", st.received.load(Relaxed).to_string()),
        ("zk_max_client_response_size", size(2)),
        ("zk_connection_drop_probability", "0.0".into()),
        ("zk_watch_count", info.watch_count.to_string()),
        (
            "zk_auth_failed_count",
            st.auth_failed.load(Relaxed).to_string(),
        ),
        ("zk_min_latency", min.to_string()),
        ("zk_max_file_descriptor_count", max_fds().to_string()),
        ("zk_approximate_data_size", info.data_size.to_string()),
        ("zk_open_file_descriptor_count", open_fds().to_string()),
        ("zk_local_sessions", "0".into()),
        ("zk_uptime", st.started.elapsed().as_millis().to_string()),
        ("zk_max_latency", max.to_string()),
        ("zk_outstanding_tls_handshake", "0".into()),
        ("zk_min_client_response_size", size(1)),
        ("zk_non_mtls_local_conn_count", "0".into()),
        (
            "zk_connection_rejected",
            st.rejected.load(Relaxed).to_string(),
        ),
        (
            "zk_digest_mismatches_count",
            st.digest_mismatches.load(Relaxed).to_string(),
        ),
    ]);
    if shared.config.is_ensemble() {
        // QuorumZooKeeperServer's gauge: the voting members.
        let voters = shared
            .config
            .servers
            .iter()
            .filter(|x| x.role == zk_jute::quorum::LearnerType::Participant)
            .count();
        lines.push(("zk_quorum_size", voters.to_string()));
    }
    if shared.control.mode() == Mode::Leader {
        // LeaderZooKeeperServer's gauges (no reconfig here, so no
        // non-voting followers).
        let (c, uptime) = shared.control.leader_gauges();
        lines.push(("zk_learners", c.learners.to_string()));
        lines.push(("zk_synced_followers", c.synced_followers.to_string()));
        lines.push(("zk_synced_non_voting_followers", "0".into()));
        lines.push(("zk_synced_observers", c.synced_observers.to_string()));
        lines.push(("zk_pending_syncs", c.pending_syncs.to_string()));
        lines.push(("zk_leader_uptime", uptime.to_string()));
        let (last, min, max) = shared.control.proposal_sizes();
        lines.push(("zk_last_proposal_size", last.to_string()));
        lines.push(("zk_max_proposal_size", max.to_string()));
        lines.push(("zk_min_proposal_size", min.to_string()));
    }
    for (k, v) in lines {
        let _ = writeln!(out, "{k}\t{v}");
    }
}

/// mntr's `zk_peer_state` (Apache's `QuorumPeer.getDetailedPeerState`: the
/// peer state, the Zab phase, the sync mode while syncing): a server that
/// answers mntr serves, so its role is in broadcast. Standalone has none.
fn peer_state(mode: Mode) -> Option<&'static str> {
    match mode {
        Mode::Standalone => None,
        Mode::Leader => Some("leading - broadcast"),
        Mode::Follower => Some("following - broadcast"),
        Mode::Observer => Some("observing - broadcast"),
    }
}

/// Formats wall-clock ms like Java's `Date.toString()` in UTC
/// (`Sun Nov 22 03:41:25 UTC 2026`).
fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        tod / 3600,
        tod / 60 % 60,
        tod % 60,
        year
    )
}

/// NIOServerCnxnFactory's connection expiry interval (sessionless
/// connections time out after it; it is also the bucket width).
const CNXN_EXPIRY_INTERVAL_MS: i64 = 10_000;

fn dump(shared: &Shared, out: &mut String) {
    let buckets = expiry_buckets(shared);
    let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), total);
    for (deadline, ids) in &buckets {
        let _ = writeln!(
            out,
            "{} expire at {}:",
            ids.len(),
            java_date(shared.monotonic_to_wall(*deadline))
        );
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    let ephemerals = shared.tree.ephemerals_by_session();
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", ephemerals.len());
    for (session, paths) in &ephemerals {
        let _ = writeln!(out, "0x{session:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    // Connections in NIOServerCnxnFactory's expiry queue: each expires its
    // session timeout (10 s without a session) after its last packet, rounded
    // up to the 10 s bucket.
    out.push_str("Connections dump:\n");
    let mut buckets: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    let conns = shared.stats.connections();
    for c in &conns {
        let timeout = match c.timeout.load(Relaxed) {
            t if t > 0 => t,
            _ => CNXN_EXPIRY_INTERVAL_MS,
        };
        let due = c.touched.load(Relaxed) + timeout;
        let bucket = (due / CNXN_EXPIRY_INTERVAL_MS + 1) * CNXN_EXPIRY_INTERVAL_MS;
        buckets.entry(bucket).or_default().push(format!(
            "ip: /{} sessionId: 0x{:x}",
            c.peer,
            c.session_id.load(Relaxed)
        ));
    }
    let _ = writeln!(
        out,
        "Connections Sets ({})/({}):",
        buckets.len(),
        conns.len()
    );
    for (at, list) in &buckets {
        let _ = writeln!(out, "{} expire at {}:", list.len(), java_date(*at));
        for l in list {
            let _ = writeln!(out, "\t{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_known_words() {
        assert_eq!(recognise(b"ruok"), Some("ruok"));
        assert_eq!(recognise(b"mntr"), Some("mntr"));
        assert_eq!(recognise(b"RUOK"), None);
        assert_eq!(recognise(&[0, 0, 0, 44]), None);
    }

    #[test]
    fn dates_print_like_java_date_in_utc() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_318_885_000), "Sun Nov 22 03:41:25 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(1.0 / 3.0), "0.3333");
    }
}
