//! The AdminServer: Apache ZooKeeper's HTTP command interface
//! (`admin.serverAddress`:`admin.serverPort`, default 0.0.0.0:8080).
//!
//! `GET <commandURL>` (default `/commands`) lists the commands as links;
//! `GET <commandURL>/<name>` runs one and answers 200 with Apache's JSON:
//! the command's fields, `command` (its primary name) and `error` (null, or
//! why it did not run: an unknown name, a server not serving). Every name
//! Apache accepts for a command works (`srvr` for `server_stats`, `mntr`
//! for `monitor`, ...). The figures come from [`crate::figures`], as the
//! four-letter words' do. The HTTP side is [`crate::http`] (bounded).
//!
//! All of Apache 3.8's commands are here. `system_properties` has no JVM
//! to describe: it lists the `zookeeper.*` properties Apache would have set
//! from zoo.cfg and the process facts Java's standard properties name
//! (README, "AdminServer").

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};
use zk_tree::WatchKind;

use crate::config::dir_size;
use crate::control::Mode;
use crate::figures::{
    VERSION, Value, environment, expiry_buckets, monitor, server_summary, session_of_conn,
};
use crate::http::{Handler, HttpServer, Response};
use crate::shared::Shared;
use crate::stats::ConnStats;

/// A command's names (the primary first) and whether it needs a serving
/// server (Apache's `CommandBase.serverRequired`).
struct Command {
    names: &'static [&'static str],
    needs_server: bool,
}

const COMMANDS: &[Command] = &[
    cmd(&["connection_stat_reset", "crst"], true),
    cmd(&["configuration", "conf", "config"], true),
    cmd(&["connections", "cons"], true),
    cmd(&["hash"], true),
    cmd(&["dirs"], true),
    cmd(&["dump"], true),
    cmd(&["environment", "env", "envi"], false),
    cmd(&["get_trace_mask", "gtmk"], false),
    cmd(&["initial_configuration", "icfg"], true),
    cmd(&["is_read_only", "isro"], true),
    cmd(&["last_snapshot", "lsnp"], true),
    cmd(&["leader", "lead"], true),
    cmd(&["monitor", "mntr"], false),
    cmd(&["observer_connection_stat_reset", "orst"], true),
    cmd(&["observers", "obsr"], true),
    cmd(&["ruok"], true),
    cmd(&["set_trace_mask", "stmk"], false),
    cmd(&["server_stats", "srvr"], true),
    cmd(&["stats", "stat"], true),
    cmd(&["stat_reset", "srst"], true),
    cmd(&["system_properties", "sysp"], false),
    cmd(&["voting_view"], true),
    cmd(&["watches", "wchc"], true),
    cmd(&["watches_by_path", "wchp"], true),
    cmd(&["watch_summary", "wchs"], true),
    cmd(&["zabstate"], false),
];

const fn cmd(names: &'static [&'static str], needs_server: bool) -> Command {
    Command {
        names,
        needs_server,
    }
}

/// Starts the AdminServer if `admin.enableServer` is on. A port that cannot
/// be bound is logged and the server goes on serving clients without it
/// (README, "AdminServer").
pub(crate) fn start(shared: &Arc<Shared>) -> Option<HttpServer> {
    let cfg = &shared.config.admin;
    if !cfg.enabled {
        return None;
    }
    let addr = std::net::SocketAddr::new(cfg.address, cfg.port);
    let url = cfg.command_url.clone();
    let weak = Arc::downgrade(shared);
    let handler: Handler = Arc::new(move |path: &str, query: &str| match weak.upgrade() {
        Some(shared) => route(&shared, &url, path, query),
        None => Response::status(503),
    });
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    match HttpServer::start("zk-admin", addr, idle, handler) {
        Ok(srv) => {
            tracing::info!(
                "started AdminServer on {} with command URL {}",
                srv.local_addr(),
                cfg.command_url
            );
            Some(srv)
        }
        Err(e) => {
            tracing::warn!("cannot start the AdminServer on {addr}: {e}; going on without it");
            None
        }
    }
}

/// Answers one request path.
fn route(shared: &Shared, url: &str, path: &str, query: &str) -> Response {
    let Some(rest) = path.strip_prefix(url) else {
        return Response::status(404);
    };
    let name = match rest.strip_prefix('/') {
        None if rest.is_empty() => "",
        Some(name) => name,
        None => return Response::status(404),
    };
    if name.is_empty() {
        return Response::ok("text/html; charset=utf-8", command_links(url));
    }
    let (status, body) = run(shared, name, query);
    let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
    text.push('\n');
    Response {
        status,
        ..Response::ok("application/json; charset=utf-8", text)
    }
}

/// The command list: one link per primary name, sorted (as Apache's).
fn command_links(url: &str) -> String {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.names[0]).collect();
    names.sort_unstable();
    names
        .iter()
        .map(|n| format!("<a href=\"{url}/{n}\">{n}</a>\n<br/>\n"))
        .collect()
}

/// Runs the command called `name`: the HTTP status and the JSON object.
pub(crate) fn run(shared: &Shared, name: &str, query: &str) -> (u16, Json) {
    const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";
    let Some(command) = COMMANDS.iter().find(|c| c.names.contains(&name)) else {
        return (
            200,
            error_response(name, &format!("Unknown command: {name}")),
        );
    };
    if command.needs_server && !shared.control.serving() {
        return (200, error_response(name, NOT_SERVING));
    }
    if command.names[0] == "monitor" && !shared.control.serving() {
        // Apache's monitor has no server to read while an ensemble member
        // is LOOKING and fails with 500; ours says why, with the same status.
        return (500, error_response(name, NOT_SERVING));
    }
    let primary = command.names[0];
    let mut out = Map::new();
    let error = fill(shared, primary, query, &mut out);
    out.insert("command".into(), json!(primary));
    // A command's own error replaces the null (Apache's `response.put`).
    out.insert("error".into(), error.map_or(Json::Null, Json::String));
    (200, Json::Object(out))
}

fn error_response(name: &str, error: &str) -> Json {
    json!({ "command": name, "error": error })
}

/// Fills `out` with command `primary`'s fields; returns its error, if any.
fn fill(
    shared: &Shared,
    primary: &str,
    query: &str,
    out: &mut Map<String, Json>,
) -> Option<String> {
    let mut put = |k: &str, v: Json| {
        out.insert(k.to_string(), v);
    };
    match primary {
        "connection_stat_reset" => shared.stats.connections().iter().for_each(|c| c.reset()),
        "configuration" => configuration(shared, &mut put),
        "connections" => {
            put("connections", connections(shared, false, false));
            put("secure_connections", connections(shared, false, true));
        }
        "hash" => {
            let digests: Vec<Json> = shared
                .tree
                .digest_log()
                .into_iter()
                .map(|(zxid, digest)| json!({"zxid": zxid, "digest": digest, "digest_version": 2}))
                .collect();
            put("digests", Json::Array(digests));
        }
        "dirs" => {
            put("datadir_size", json!(dir_size(&shared.config.data_dir)));
            put("logdir_size", json!(dir_size(&shared.config.data_log_dir)));
        }
        "dump" => dump(shared, &mut put),
        "environment" => environment()
            .into_iter()
            .for_each(|(k, v)| put(k, json!(v))),
        "get_trace_mask" => put("tracemask", json!(shared.stats.trace_mask.load(Relaxed))),
        // A read-only server (ReadOnlyZooKeeperServer) has no initial
        // configuration of its own: Apache's answers null.
        "initial_configuration" => put(
            "initial_configuration",
            match shared.control.mode() {
                Mode::ReadOnly => Json::Null,
                _ => json!(shared.config.initial_text),
            },
        ),
        "is_read_only" => put("read_only", json!(shared.control.mode() == Mode::ReadOnly)),
        "leader" => return leader(shared, &mut put),
        "monitor" => {
            for f in monitor(shared) {
                put(&f.name, value_json(&f.value));
            }
        }
        "ruok" => {}
        "set_trace_mask" => return set_trace_mask(shared, query, &mut put),
        "server_stats" => server_stats(shared, &mut put),
        "stats" => {
            server_stats(shared, &mut put);
            put("connections", connections(shared, true, false));
            put("secure_connections", connections(shared, true, true));
        }
        "stat_reset" => shared.stats.reset(),
        "voting_view" => put("current_config", voting_view(shared)),
        "watches" => {
            let mut m = Map::new();
            for (conn, paths) in shared.tree.watches_by_watcher(WatchKind::Data) {
                let session = session_of_conn(shared, conn);
                m.insert(session.to_string(), json!(paths));
            }
            put("session_id_to_watched_paths", Json::Object(m));
        }
        "watches_by_path" => {
            let mut m = Map::new();
            for (path, conns) in shared.tree.watches_by_path(WatchKind::Data) {
                let ids: Vec<i64> = conns.iter().map(|c| session_of_conn(shared, *c)).collect();
                m.insert(path, json!(ids));
            }
            put("path_to_session_ids", Json::Object(m));
        }
        "watch_summary" => {
            let s = shared.tree.watch_summary(WatchKind::Data);
            put("num_connections", json!(s.watchers));
            put("num_paths", json!(s.paths));
            put("num_total_watches", json!(s.total));
        }
        "zabstate" => zabstate(shared, &mut put),
        _ => more(shared, primary, &mut put),
    }
    None
}

/// The commands of Apache 3.6+ (snapshots, observers, properties).
fn more(shared: &Shared, primary: &str, put: &mut impl FnMut(&str, Json)) {
    let leading = shared.control.mode() == Mode::Leader;
    match primary {
        "last_snapshot" => {
            let (zxid, secs) = last_snapshot(shared);
            // Long.toHexString: no 0x, -1 as 16 f's.
            put("zxid", json!(format!("{:x}", zxid as u64)));
            put("timestamp", json!(secs));
        }
        "observer_connection_stat_reset" if leading => {
            for l in shared.stats.learners.synced_observers() {
                l.reset();
            }
        }
        "observers" => {
            // A follower serves no observers (no observerMasterPort here):
            // Apache's answer for a server without any.
            let observers = if leading {
                shared.stats.learners.synced_observers()
            } else {
                Vec::new()
            };
            put("synced_observers", json!(observers.len()));
            let info: Vec<Json> = observers.iter().map(|l| learner_handler_info(l)).collect();
            put("observers", Json::Array(info));
        }
        "system_properties" => {
            for (k, v) in system_properties(shared) {
                put(&k, json!(v));
            }
        }
        _ => {}
    }
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(round4(*f)),
        Value::Text(s) => json!(s),
    }
}

/// Apache's averages have 4 decimals (`AvgMinMaxCounter.getAvg`).
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The newest snapshot in the data dir: its zxid and its file's mtime in
/// seconds, (-1, -1) without one. Apache keeps the last one it took (the
/// one it started from until then), which is the newest file.
fn last_snapshot(shared: &Shared) -> (i64, i64) {
    let store = zk_txnlog::SnapshotStore::open_read_only(&shared.config.data_dir);
    let newest = store.list().ok().and_then(|l| l.into_iter().last());
    let Some(snap) = newest else {
        return (-1, -1);
    };
    let secs = std::fs::metadata(&snap.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    (snap.key as i64, secs)
}

/// Apache's `LearnerHandler.getLearnerHandlerInfo`.
fn learner_handler_info(l: &crate::stats::LearnerHandlerStats) -> Json {
    json!({
        // InetSocketAddress.toString of an accepted socket.
        "remote_socket_address": format!("/{}", l.peer),
        "sid": l.sid.load(Relaxed),
        "established": l.established,
        "queued_packets": l.queued_packets.load(Relaxed),
        "queued_packets_size": l.queued_bytes.load(Relaxed),
        "packets_received": l.received.load(Relaxed),
        "packets_sent": l.sent.load(Relaxed),
        "requests": l.requests.load(Relaxed),
        "last_zxid": l.last_zxid.load(Relaxed),
    })
}

/// `system_properties`, sorted: the `zookeeper.<key>` properties Apache's
/// config parser sets from zoo.cfg, and the process facts that Java's
/// standard properties name (the OS, the user, the directories). There is
/// no JVM, so no `java.*` property.
fn system_properties(shared: &Shared) -> Vec<(String, String)> {
    let mut props = crate::config::Config::apache_system_properties(&shared.config.initial_text);
    for (k, v) in environment() {
        if k.starts_with("os.") && !k.starts_with("os.memory") || k.starts_with("user.") {
            props.push((k.to_string(), v));
        }
    }
    props.push(("file.separator".into(), "/".into()));
    props.push(("path.separator".into(), ":".into()));
    props.push(("line.separator".into(), "\n".into()));
    props.sort();
    props
}

/// `configuration`: Apache's `ZooKeeperServerConf`.
fn configuration(shared: &Shared, put: &mut impl FnMut(&str, Json)) {
    let c = &shared.config;
    let abs = |p: &std::path::Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    put(
        "client_port",
        json!(shared.client_ports().0.map_or(-1, i32::from)),
    );
    put("data_dir", json!(abs(&c.data_dir)));
    put("data_log_dir", json!(abs(&c.data_log_dir)));
    put("tick_time", json!(c.tick_time));
    put("max_client_cnxns", json!(c.max_client_cnxns));
    put("min_session_timeout", json!(c.min_session_timeout));
    put("max_session_timeout", json!(c.max_session_timeout));
    put("server_id", json!(c.my_id));
    put("client_port_listen_backlog", json!(-1));
}

/// Apache's `ServerCnxn.getConnectionInfo(brief)`.
fn connection_info(c: &ConnStats, brief: bool) -> Json {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.peer.to_string()));
    let interest = if c.four_letter.load(Relaxed) { 0 } else { 1 };
    m.insert("interest_ops".into(), json!(interest));
    let outstanding = c.outstanding.load(Relaxed).max(0);
    m.insert("outstanding_requests".into(), json!(outstanding));
    m.insert("packets_received".into(), json!(c.received.load(Relaxed)));
    m.insert("packets_sent".into(), json!(c.sent.load(Relaxed)));
    if !brief {
        let (min, avg, max, _) = c.latency.get();
        let lop = *c.last_op.lock().unwrap_or_else(|e| e.into_inner());
        let fields = [
            ("session_id", json!(c.session_id.load(Relaxed))),
            ("last_operation", json!(lop)),
            ("established", json!(c.established.load(Relaxed))),
            ("session_timeout", json!(c.timeout.load(Relaxed))),
            ("last_cxid", json!(c.last_cxid.load(Relaxed))),
            ("last_zxid", json!(c.last_zxid.load(Relaxed))),
            ("last_response_time", json!(c.last_response.load(Relaxed))),
            ("last_latency", json!(c.last_latency.load(Relaxed))),
            ("min_latency", json!(min)),
            ("avg_latency", json!(avg.round() as u64)),
            ("max_latency", json!(max)),
        ];
        for (k, v) in fields {
            m.insert(k.into(), v);
        }
    }
    Json::Object(m)
}

/// The connections on the client port, or on the secure one.
fn connections(shared: &Shared, brief: bool, secure: bool) -> Json {
    let list = shared.stats.connections();
    Json::Array(
        list.iter()
            .filter(|c| c.secure.load(Relaxed) == secure)
            .map(|c| connection_info(c, brief))
            .collect(),
    )
}

/// `server_stats` (and the first part of `stats`).
fn server_stats(shared: &Shared, put: &mut impl FnMut(&str, Json)) {
    let s = server_summary(shared);
    let (min, avg, max) = s.latency;
    let (last, min_size, max_size) = s.response_sizes;
    let buffers = json!({
        "last_buffer_size": last,
        "min_buffer_size": min_size,
        "max_buffer_size": max_size,
    });
    let stats = json!({
        "packets_sent": s.sent,
        "packets_received": s.received,
        "fsync_threshold_exceed_count": shared.stats.fsync.exceeded.load(Relaxed),
        "client_response_stats": buffers,
        "data_dir_size": dir_size(&shared.config.data_dir),
        "log_dir_size": dir_size(&shared.config.data_log_dir),
        "provider_null": false,
        "server_state": s.mode.name(),
        "last_processed_zxid": s.zxid,
        "outstanding_requests": s.outstanding,
        "avg_latency": round4(avg),
        "max_latency": max,
        "min_latency": min,
        "num_alive_client_connections": s.connections,
        "uptime": s.uptime_ms,
        "auth_failed_count": s.auth_failed,
        "non_mtlsremote_conn_count": 0,
        "non_mtlslocal_conn_count": 0,
    });
    put("version", json!(VERSION));
    put("read_only", json!(s.mode == Mode::ReadOnly));
    put("server_stats", stats);
    put("client_response", buffers);
    if let Some((last, min, max)) = s.proposal_sizes {
        put(
            "proposal_stats",
            json!({"last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max}),
        );
    }
    put("node_count", json!(s.node_count));
}

/// `dump`: session expiry buckets (deadline in the server's monotonic ms,
/// as Apache's elapsed-time clock; none on a learner or a read-only server,
/// whose LearnerSessionTracker answers an empty map) and ephemerals by
/// session.
fn dump(shared: &Shared, put: &mut impl FnMut(&str, Json)) {
    let mut expiry = Map::new();
    let learner = matches!(
        shared.control.mode(),
        Mode::Follower | Mode::Observer | Mode::ReadOnly
    );
    for (deadline, ids) in expiry_buckets(shared).into_iter().filter(|_| !learner) {
        expiry.insert(deadline.to_string(), json!(ids));
    }
    put("expiry_time_to_session_ids", Json::Object(expiry));
    let mut eph = Map::new();
    for (session, paths) in shared.tree.ephemerals_by_session() {
        eph.insert(session.to_string(), json!(paths));
    }
    put("session_id_to_ephemeral_paths", Json::Object(eph));
}

/// The leader's id (this server's when leading), -1 when there is none.
fn leader_id(shared: &Shared) -> i64 {
    match shared.control.mode() {
        Mode::Leader => shared.config.my_id as i64,
        Mode::Standalone | Mode::ReadOnly => -1,
        Mode::Follower | Mode::Observer => shared.control.learner_master(),
    }
}

fn leader(shared: &Shared, put: &mut impl FnMut(&str, Json)) -> Option<String> {
    // Only a quorum server answers (a read-only one is not).
    if !shared.config.is_ensemble() || shared.control.mode() == Mode::ReadOnly {
        return Some("server is not initialized".into());
    }
    let id = leader_id(shared);
    // QuorumPeer.getLeaderAddress: the leader's quorum hosts, `|`-joined.
    let ip = shared
        .members()
        .iter()
        .find(|s| s.id as i64 == id)
        .map(|s| {
            let hosts: Vec<&str> = s.quorum_addrs.iter().map(|h| h.host.as_str()).collect();
            hosts.join("|")
        })
        .unwrap_or_default();
    put("is_leader", json!(shared.control.mode() == Mode::Leader));
    put("leader_id", json!(id));
    put("leader_ip", json!(ip));
    None
}

fn set_trace_mask(
    shared: &Shared,
    query: &str,
    put: &mut impl FnMut(&str, Json),
) -> Option<String> {
    let arg = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("traceMask="));
    let Some(arg) = arg else {
        return Some("setTraceMask requires long traceMask argument".into());
    };
    let Ok(mask) = arg.parse::<i64>() else {
        return Some(format!(
            "setTraceMask requires long traceMask argument, got {arg}"
        ));
    };
    shared.stats.trace_mask.store(mask, Relaxed);
    put("tracemask", json!(mask));
    None
}

/// `voting_view`: the voting members (empty standalone).
fn voting_view(shared: &Shared) -> Json {
    let mut m = Map::new();
    if !shared.config.is_ensemble() || shared.control.mode() == Mode::ReadOnly {
        return Json::Object(m);
    }
    for s in shared
        .members()
        .iter()
        .filter(|s| s.role == zk_jute::quorum::LearnerType::Participant)
    {
        let addrs = |a: &[zk_jute::quorum::HostPort]| -> Vec<String> {
            a.iter().map(ToString::to_string).collect()
        };
        let client = s.client_addr.as_ref().map(ToString::to_string);
        m.insert(
            s.id.to_string(),
            json!({
                "server_addresses": addrs(&s.quorum_addrs),
                "election_addresses": addrs(&s.election_addrs),
                "client_address": client.unwrap_or_default(),
                "learner_type": "participant",
            }),
        );
    }
    Json::Object(m)
}

/// Apache's `MultipleAddresses` as Jackson writes it (a bean: every getter
/// becomes a key). The "reachable" ones are the configured addresses: this
/// server does not probe them (README, "AdminServer").
fn multiple_addresses(addrs: &[zk_jute::quorum::HostPort]) -> Json {
    let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let wildcard: Vec<String> = addrs
        .iter()
        .map(|a| format!("0.0.0.0:{}", a.port))
        .collect();
    let ports: Vec<u16> = addrs.iter().map(|a| a.port).collect();
    let hosts: Vec<&str> = addrs.iter().map(|a| a.host.as_str()).collect();
    let one = all.first().cloned().unwrap_or_default();
    json!({
        "empty": all.is_empty(),
        "all_addresses": all,
        "all_reachable_addresses": all,
        "one": one,
        "reachable_address": one,
        "wildcard_addresses": wildcard,
        "all_ports": ports,
        "all_host_strings": hosts,
        "all_reachable_addresses_or_all": all,
        "reachable_or_one": one,
    })
}

/// `zabstate`: this member's Zab phase (a serving member is in broadcast;
/// one that does not serve, or serves read-only, answers as Apache's with no
/// quorum server).
fn zabstate(shared: &Shared, put: &mut impl FnMut(&str, Json)) {
    let cfg = &shared.config;
    let members = shared.members();
    let me = members.iter().find(|s| s.id == cfg.my_id);
    let quorum_serving = shared.control.serving() && shared.control.mode() != Mode::ReadOnly;
    let (Some(me), true) = (me, cfg.is_ensemble() && quorum_serving) else {
        put("voting", json!(false));
        put("zabstate", json!(""));
        return;
    };
    let zxid = shared.last_zxid();
    put("myid", json!(cfg.my_id));
    put("is_leader", json!(shared.control.mode() == Mode::Leader));
    put("quorum_address", multiple_addresses(&me.quorum_addrs));
    put("election_address", multiple_addresses(&me.election_addrs));
    put("client_address", json!(shared.local_addr().to_string()));
    put(
        "voting",
        json!(me.role == zk_jute::quorum::LearnerType::Participant),
    );
    put("last_zxid", json!(format!("0x{zxid:x}")));
    put("zab_epoch", json!(zxid >> 32));
    put("zab_counter", json!(zxid & 0xffff_ffff));
    put("zabstate", json!("broadcast"));
}
