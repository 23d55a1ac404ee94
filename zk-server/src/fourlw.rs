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

use zk_tree::WatchKind;

use crate::control::Mode;
use crate::figures::{
    VERSION, environment, expiry_buckets, java_double, monitor, server_summary, session_of_conn,
};
use crate::shared::Shared;

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

/// Runs `cmd` and returns its full answer. `rest` is what the client sent
/// after the four letters (`stmk` takes its new mask as 8 big-endian bytes).
pub fn run(shared: &Shared, cmd: &str, rest: &[u8]) -> String {
    if !shared.config.four_letter_whitelist.allows(cmd) {
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    if !shared.control.serves_clients() {
        // A leader with leaderServes=no has no server for its clients either.
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
        "isro" if shared.control.mode() == Mode::ReadOnly => out.push_str("ro"),
        "isro" => out.push_str("rw"),
        "srvr" => server_stats(shared, &mut out, false),
        "stat" => server_stats(shared, &mut out, true),
        "conf" => {
            let version =
                (shared.control.mode() != Mode::ReadOnly).then(|| shared.control.config_version());
            let config = shared.live_config();
            out.push_str(&config.conf_text(shared.client_ports(), version));
        }
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
    if shared.control.mode() == Mode::ReadOnly {
        // StatCommand / StatResetCommand's line for a read-only server.
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
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
    let s = server_summary(shared);
    let (min, avg, max) = s.latency;
    let _ = writeln!(out, "Latency min/avg/max: {min}/{}/{max}", java_double(avg));
    let _ = writeln!(out, "Received: {}", s.received);
    let _ = writeln!(out, "Sent: {}", s.sent);
    let _ = writeln!(out, "Connections: {}", s.connections);
    let _ = writeln!(out, "Outstanding: {}", s.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.zxid);
    let _ = writeln!(out, "Mode: {}", s.mode.name());
    let _ = writeln!(out, "Node count: {}", s.node_count);
    if let Some((last, min, max)) = s.proposal_sizes {
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    for (k, v) in environment() {
        let _ = writeln!(out, "{k}={v}");
    }
}

/// `mntr`: [`monitor`]'s figures, `zk_<name>\t<value>` each.
fn mntr(shared: &Shared, out: &mut String) {
    for f in monitor(shared) {
        let _ = writeln!(out, "zk_{}\t{}", f.name, f.value.mntr_text());
    }
}

/// Formats wall-clock ms like Java's `Date.toString()` in UTC
/// (`Sun Nov 22 03:41:25 UTC 2026`).
pub(crate) fn java_date(ms: i64) -> String {
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

/// `Session Sets (n)/(total):` and each expiry bucket's sessions
/// (SessionTrackerImpl.dumpSessions).
fn session_sets(shared: &Shared, out: &mut String, buckets: &[(u64, Vec<i64>)]) {
    let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
    let _ = writeln!(out, "Session Sets ({})/({}):", buckets.len(), total);
    for (deadline, ids) in buckets {
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
}

fn dump(shared: &Shared, out: &mut String) {
    out.push_str("SessionTracker dump:\n");
    if matches!(
        shared.control.mode(),
        Mode::Follower | Mode::Observer | Mode::ReadOnly
    ) {
        // LearnerSessionTracker.dumpSessions: its local sessions' sets (with
        // localSessionsEnabled), then the global sessions and timeouts.
        let (local, global) = {
            let st = shared.lock_sessions();
            (st.local_expiry_buckets(), st.global_sessions())
        };
        if shared.config.local_sessions_enabled {
            out.push_str("Local ");
            session_sets(shared, out, &local);
        }
        let _ = writeln!(out, "Global Sessions({}):", global.len());
        for (id, timeout) in global {
            let _ = writeln!(out, "0x{id:x}\t{timeout}ms");
        }
    } else {
        session_sets(shared, out, &expiry_buckets(shared));
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
}
