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

use crate::server::Shared;

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

/// What the tree contributes to the answers.
#[derive(Debug, Default, Clone)]
pub struct TreeInfo {
    /// Number of znodes.
    pub node_count: usize,
    /// Approximate data size (paths + data).
    pub data_size: u64,
    /// Number of ephemeral nodes.
    pub ephemerals_count: usize,
    /// Number of watches.
    pub watch_count: usize,
    /// Watches by connection id.
    pub watches_by_conn: Vec<(u64, Vec<String>)>,
    /// Watches by path (connection ids).
    pub watches_by_path: Vec<(String, Vec<u64>)>,
    /// Ephemeral paths by session.
    pub ephemerals: Vec<(i64, Vec<String>)>,
}

/// Runs `cmd` and returns its full answer.
pub fn run(shared: &Shared, cmd: &str) -> String {
    if !shared.config.four_letter_whitelist.allows(cmd) {
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    if !shared.stats.serving.load(Relaxed) && !matches!(cmd, "ruok" | "conf" | "envi" | "dirs") {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
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
        "envi" => envi(shared, &mut out),
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
        "wchs" => {
            let info = shared.tree_info();
            let _ = writeln!(
                out,
                "{} connections watching {} paths",
                info.watches_by_conn.len(),
                info.watches_by_path.len()
            );
            let _ = writeln!(out, "Total watches:{}", info.watch_count);
        }
        "wchc" => {
            let info = shared.tree_info();
            for (conn, paths) in &info.watches_by_conn {
                let _ = writeln!(out, "0x{:x}", shared.session_of_conn(*conn));
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
        }
        "wchp" => {
            let info = shared.tree_info();
            for (path, conns) in &info.watches_by_path {
                let _ = writeln!(out, "{path}");
                for c in conns {
                    let _ = writeln!(out, "\t0x{:x}", shared.session_of_conn(*c));
                }
            }
        }
        "dump" => dump(shared, &mut out),
        "gtmk" => out.push_str("0\n"),
        "stmk" => out.push_str("0\n"),
        "hash" => out.push_str("Digest in every 128 zxids (zxid, digest):\n"),
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
    let _ = writeln!(
        out,
        "Outstanding: {}",
        shared.stats.outstanding.load(Relaxed).max(0)
    );
    let _ = writeln!(out, "Zxid: 0x{:x}", shared.last_zxid());
    let _ = writeln!(out, "Mode: standalone");
    let _ = writeln!(out, "Node count: {}", shared.tree_info().node_count);
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

fn envi(shared: &Shared, out: &mut String) {
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
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", kernel_release()),
        ("user.name", env("USER")),
        ("user.home", env("HOME")),
        ("user.dir", cwd),
        ("os.memory.free", "0MB".into()),
        ("os.memory.max", "0MB".into()),
        ("os.memory.total", "0MB".into()),
        (
            "zookeeper.data.dir",
            shared.config.data_dir.display().to_string(),
        ),
    ];
    for (k, v) in pairs {
        let _ = writeln!(out, "{k}={v}");
    }
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

fn mntr(shared: &Shared, out: &mut String) {
    let info = shared.tree_info();
    let (min, avg, max, _) = shared.stats.latency.get();
    let sessions = shared.session_count();
    let lines: Vec<(&str, String)> = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", "standalone".into()),
        ("zk_avg_latency", java_double(avg)),
        ("zk_max_latency", max.to_string()),
        ("zk_min_latency", min.to_string()),
        (
            "zk_packets_received",
            shared.stats.received.load(Relaxed).to_string(),
        ),
        (
            "zk_packets_sent",
            shared.stats.sent.load(Relaxed).to_string(),
        ),
        (
            "zk_num_alive_connections",
            shared.stats.connections().len().to_string(),
        ),
        (
            "zk_outstanding_requests",
            shared.stats.outstanding.load(Relaxed).max(0).to_string(),
        ),
        ("zk_znode_count", info.node_count.to_string()),
        ("zk_watch_count", info.watch_count.to_string()),
        ("zk_ephemerals_count", info.ephemerals_count.to_string()),
        ("zk_approximate_data_size", info.data_size.to_string()),
        ("zk_open_file_descriptor_count", open_fds().to_string()),
        ("zk_max_file_descriptor_count", max_fds().to_string()),
        (
            "zk_uptime",
            shared.stats.started.elapsed().as_millis().to_string(),
        ),
        ("zk_global_sessions", sessions.to_string()),
        ("zk_local_sessions", "0".into()),
        (
            "zk_auth_failed_count",
            shared.stats.auth_failed.load(Relaxed).to_string(),
        ),
        (
            "zk_fsync_threshold_exceed_count",
            shared.stats.fsync_slow.load(Relaxed).to_string(),
        ),
        (
            "zk_connection_rejected",
            shared.stats.rejected.load(Relaxed).to_string(),
        ),
        ("zk_last_proposal_size", "-1".into()),
        ("zk_max_proposal_size", "-1".into()),
        ("zk_min_proposal_size", "-1".into()),
    ];
    for (k, v) in lines {
        let _ = writeln!(out, "{k}\t{v}");
    }
}

fn dump(shared: &Shared, out: &mut String) {
    let buckets = shared.expiry_buckets();
    let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
    out.push_str("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), total);
    for (deadline, ids) in &buckets {
        let _ = writeln!(
            out,
            "{} expire at {}:",
            ids.len(),
            shared.monotonic_to_wall(*deadline)
        );
        for id in ids {
            let _ = writeln!(out, "\t0x{id:x}");
        }
    }
    let info = shared.tree_info();
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", info.ephemerals.len());
    for (sid, paths) in &info.ephemerals {
        let _ = writeln!(out, "0x{sid:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    let conns = shared.stats.connections();
    let _ = writeln!(out, "Connections Sets (1)/({})", conns.len());
    for c in conns {
        let sid = c.session_id.load(Relaxed);
        if sid != 0 {
            let _ = writeln!(out, "0x{sid:x}");
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
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0), "2.0");
        assert_eq!(java_double(2.5), "2.5");
        assert_eq!(java_double(1.0 / 3.0), "0.3333");
    }
}
