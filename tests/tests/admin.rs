//! The AdminServer against Apache ZooKeeper 3.8's (Jetty, built into the
//! Debian package): the same workload on both, then every command's JSON
//! compared key by key (objects by their keys, arrays by their elements,
//! scalars by JSON type; maps keyed by session ids, zxids or paths by their
//! values). Plus: the command list, aliases, errors, a port that cannot be
//! bound, bad HTTP input that must not touch the client port, and an
//! ensemble whose leader and followers each report their role.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value as Json;
use zk_integration::ensemble::{EnsembleOptions, ensemble_with};
use zk_integration::http::{assert_taken_port_keeps_serving, get, raw};
use zk_integration::{Client, Flavor, OurZk, ServerOptions, ZkServer, start_server};

/// Keys of Apache's answers this server leaves out: `command/key.path`.
const ABSENT_KEYS: [&str; 0] = [];

fn with_admin() -> ServerOptions {
    ServerOptions {
        admin: true,
        ..ServerOptions::default()
    }
}

/// Two sessions, znodes, an ephemeral, data watches on /a and /nope and
/// 130 writes (Apache's digest log keeps every 128th zxid).
fn workload(server: &ZkServer) -> (Client, Client) {
    let mut s1 = Client::connect(server.addr()).expect("session 1");
    let mut s2 = Client::connect(server.addr()).expect("session 2");
    s1.create("/a", b"hello", 0).unwrap().unwrap();
    s2.create("/e", b"", 1).unwrap().unwrap();
    for i in 0..130 {
        s1.set_data("/a", format!("v{i}").as_bytes(), -1)
            .unwrap()
            .unwrap();
    }
    s1.get_data("/a", true).unwrap().unwrap();
    s2.get_data("/a", true).unwrap().unwrap();
    assert!(s2.exists("/nope", true).unwrap().is_none());
    s1.children("/", true).unwrap().unwrap();
    (s1, s2)
}

fn command(server: &ZkServer, name: &str) -> Json {
    let addr = server.admin_addr().expect("admin on");
    let (code, body) = get(addr, &format!("/commands/{name}"))
        .unwrap_or_else(|| panic!("{}: no answer to {name}", server.flavor()));
    assert_eq!(code, 200, "{name}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
}

fn type_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(n) if n.is_f64() => "real",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A map keyed by data (session ids, zxids, paths) rather than field names.
fn keyed_by_data(m: &serde_json::Map<String, Json>) -> bool {
    !m.is_empty()
        && m.keys()
            .all(|k| k.starts_with('/') || k.parse::<i64>().is_ok())
}

/// Where the shape of `ours` differs from `apache`'s, as `path: what`.
fn shape_diffs(path: &str, apache: &Json, ours: &Json, out: &mut Vec<String>) {
    match (apache, ours) {
        (Json::Object(a), Json::Object(o)) if keyed_by_data(a) || keyed_by_data(o) => {
            // A non-empty value if there is one (Apache's expiry map keeps
            // emptied buckets for a while).
            let pick = |m: &serde_json::Map<String, Json>| {
                let empty = |v: &Json| v.as_array().is_some_and(Vec::is_empty);
                m.values()
                    .find(|v| !empty(v))
                    .or_else(|| m.values().next())
                    .cloned()
            };
            match (pick(a).as_ref(), pick(o).as_ref()) {
                (Some(av), Some(ov)) => shape_diffs(&format!("{path}.*"), av, ov, out),
                _ => out.push(format!("{path}: apache {apache} ours {ours}")),
            }
        }
        (Json::Object(a), Json::Object(o)) => {
            for (k, av) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    Some(ov) => shape_diffs(&p, av, ov, out),
                    None => out.push(format!("{p}: missing")),
                }
            }
            for k in o.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{k}: not in Apache's"));
            }
        }
        (Json::Array(a), Json::Array(o)) => match (a.first(), o.first()) {
            (Some(av), Some(ov)) => shape_diffs(&format!("{path}[]"), av, ov, out),
            (None, None) => {}
            _ => out.push(format!(
                "{path}: apache {} items, ours {}",
                a.len(),
                o.len()
            )),
        },
        _ if type_of(apache) != type_of(ours) => out.push(format!(
            "{path}: apache {} {apache}, ours {} {ours}",
            type_of(apache),
            type_of(ours)
        )),
        _ => {}
    }
}

/// Commands whose answer is a subset of Apache's keys: monitor (what this
/// server measures) and system_properties (no JVM).
fn a_subset(command: &str) -> bool {
    matches!(command, "monitor" | "system_properties")
}

/// A difference that comes from the two servers' zoo.cfg rather than from
/// the server: the `zookeeper.<key>` system properties (their values are
/// checked in `last_snapshot_and_system_properties_as_apaches`).
fn config_derived(command: &str, diff: &str) -> bool {
    command == "system_properties" && diff.starts_with(".zookeeper.")
}

fn command_names(server: &ZkServer) -> Vec<String> {
    let (code, body) = get(server.admin_addr().unwrap(), "/commands").expect("command list");
    assert_eq!(code, 200);
    body.lines()
        .filter_map(|l| l.split_once("\">")?.1.strip_suffix("</a>"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_has_apaches_json_shape() {
    let apache = start_server(Flavor::Apache, with_admin());
    let ours = start_server(Flavor::Ours, with_admin());
    let (_a1, _a2) = workload(&apache);
    let (_o1, _o2) = workload(&ours);

    let apache_names = command_names(&apache);
    let our_names = command_names(&ours);
    let missing: Vec<&String> = apache_names
        .iter()
        .filter(|n| !our_names.contains(n))
        .collect();
    assert!(missing.is_empty(), "ours lacks {missing:?}");
    assert!(our_names.iter().all(|n| apache_names.contains(n)));

    let mut diffs = Vec::new();
    for name in &our_names {
        let (a, o) = (command(&apache, name), command(&ours, name));
        assert_eq!(o["command"], Json::from(name.as_str()), "{o}");
        let mut d = Vec::new();
        shape_diffs("", &a, &o, &mut d);
        d.retain(|x| {
            let key = x.split(':').next().unwrap_or("");
            // monitor: ours prints what this server measures, a subset;
            // system_properties: ours has no JVM's (java.*, jdk.*, sun.*).
            !(ABSENT_KEYS.contains(&format!("{name}/{key}").as_str())
                || (a_subset(name) && x.ends_with(": missing"))
                || config_derived(name, x))
        });
        diffs.extend(d.into_iter().map(|x| format!("{name}: {x}")));
    }
    // Every monitor key of ours is Apache's with the same type (checked
    // above), and ours has every gauge mntr prints (tests/fourlw.rs).
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn aliases_errors_and_arguments_as_apache() {
    let apache = start_server(Flavor::Apache, with_admin());
    let ours = start_server(Flavor::Ours, with_admin());
    for s in [&apache, &ours] {
        // Aliases answer under the primary name.
        assert_eq!(command(s, "srvr")["command"], "server_stats");
        assert_eq!(command(s, "mntr")["command"], "monitor");
        assert_eq!(command(s, "isro")["read_only"], false);
        let unknown = command(s, "frobnicate");
        assert_eq!(unknown["error"], "Unknown command: frobnicate", "{s:?}");
        assert_eq!(command(s, "ruok")["error"], Json::Null);
        // Standalone: no leader, no voting view, no Zab state.
        assert_eq!(command(s, "leader")["error"], "server is not initialized");
        assert_eq!(
            command(s, "voting_view")["current_config"],
            serde_json::json!({})
        );
        assert_eq!(command(s, "zabstate")["zabstate"], "");
        let set = command(s, "set_trace_mask?traceMask=511");
        assert_eq!(
            (set["tracemask"].as_i64(), &set["error"]),
            (Some(511), &Json::Null)
        );
        assert_eq!(command(s, "gtmk")["tracemask"], 511);
        let bad = command(s, "stmk");
        assert_eq!(
            bad["error"],
            "setTraceMask requires long traceMask argument"
        );
        // Outside the command URL: not found.
        let (code, _) = get(s.admin_addr().unwrap(), "/nothing/here").unwrap();
        assert_eq!(code, 404, "{:?}", s.flavor());
    }
}

#[test]
fn a_taken_admin_port_is_logged_and_clients_are_served() {
    // Bug pinned: the operators' port must never keep a server from serving.
    assert_taken_port_keeps_serving(
        |port| {
            format!(
                "admin.serverAddress=127.0.0.1\nadmin.serverPort={port}\nadmin.enableServer=true\n"
            )
        },
        "cannot start the AdminServer",
    );
}

/// Holds many connections open, sends garbage, huge and slow requests to
/// the AdminServer; the client port keeps answering quickly throughout, and
/// the AdminServer answers again once the bad clients are gone.
#[test]
fn bad_http_input_never_reaches_the_client_port() {
    let ours = start_server(
        Flavor::Ours,
        ServerOptions {
            admin: true,
            cfg_extra: "admin.idleTimeout=1000\n".into(),
            ..ServerOptions::default()
        },
    );
    let admin = ours.admin_addr().unwrap();
    let mut client = Client::connect(ours.addr()).unwrap();
    client.create("/p", b"", 0).unwrap().unwrap();
    // Many idle connections (more than the server serves at once).
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(admin).ok())
        .collect();
    let t = std::time::Instant::now();
    client.get_data("/p", false).unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    drop(idle);
    // The server frees the idle connections' slots as it sees them close
    // (until then a new connection is turned away with 503, seen in CI).
    zk_integration::wait_for(
        "the idle connections to be freed",
        Duration::from_secs(10),
        || get(admin, "/commands/ruok").filter(|(c, _)| *c == 200),
    );
    let short = Duration::from_secs(5);
    assert_eq!(raw(admin, b"\x16\x03\x01garbage\r\n\r\n", short), Some(400));
    let mut huge = b"GET /commands/ruok HTTP/1.1\r\nX-Big: ".to_vec();
    huge.resize(1 << 20, b'a');
    assert_eq!(raw(admin, &huge, short), Some(431));
    let many_headers: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = format!("GET /commands/ruok HTTP/1.1\r\n{many_headers}\r\n");
    assert_eq!(raw(admin, req.as_bytes(), short), Some(431));
    assert_eq!(
        raw(admin, b"POST /commands/ruok HTTP/1.1\r\n\r\n", short),
        Some(405)
    );
    // Slow: half a request line, then silence past the idle timeout
    // (1 s): closed (hyper answers nothing), well before `short`.
    let t = std::time::Instant::now();
    let slow = raw(admin, b"GET /comm", short);
    assert!(matches!(slow, None | Some(408)), "{slow:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(client.exists("/p", false).unwrap().map(|_| ()), Some(()));
    // Served again once the bad clients are gone.
    zk_integration::wait_for("the AdminServer to answer", Duration::from_secs(10), || {
        get(admin, "/commands/ruok").filter(|(c, _)| *c == 200)
    });
    assert!(ours.output().lines().all(|l| !l.contains("panicked")));
}

#[test]
fn ensemble_members_report_their_roles() {
    let opts = EnsembleOptions {
        cfg_extra: "admin.enableServer=true\nadmin.serverPort=24080\n".into(),
        ..EnsembleOptions::default()
    };
    let mut members = ensemble_with(3, &opts);
    for m in &mut members {
        m.start();
    }
    let leaders: Vec<u64> = zk_integration::wait_for(
        "one leader and two followers",
        Duration::from_secs(30),
        || {
            let states: Vec<(u64, Json)> = members
                .iter()
                .map(|m| {
                    let addr = SocketAddr::new(m.addr().ip(), 24080);
                    let body = get(addr, "/commands/server_stats").map(|(_, b)| b);
                    let json = body.and_then(|b| serde_json::from_str(&b).ok());
                    (m.sid, json.unwrap_or(Json::Null))
                })
                .collect();
            let role = |j: &Json| {
                j["server_stats"]["server_state"]
                    .as_str()
                    .map(str::to_owned)
            };
            let roles: Vec<Option<String>> = states.iter().map(|(_, j)| role(j)).collect();
            let followers = roles
                .iter()
                .filter(|r| r.as_deref() == Some("follower"))
                .count();
            let leaders: Vec<u64> = states
                .iter()
                .filter(|(_, j)| role(j).as_deref() == Some("leader"))
                .map(|(sid, _)| *sid)
                .collect();
            (leaders.len() == 1 && followers == 2).then_some(leaders)
        },
    );
    let leader = leaders[0];
    for m in &members {
        let addr = SocketAddr::new(m.addr().ip(), 24080);
        let ask = |c: &str| -> Json {
            let (_, body) = get(addr, &format!("/commands/{c}")).expect("answer");
            serde_json::from_str(&body).expect("json")
        };
        let is_leader = m.sid == leader;
        let lead = ask("leader");
        assert_eq!(lead["is_leader"], is_leader, "{lead}");
        assert_eq!(lead["leader_id"], leader, "{lead}");
        assert_eq!(lead["error"], Json::Null);
        let zab = ask("zabstate");
        assert_eq!(zab["zabstate"], "broadcast", "{zab}");
        assert_eq!(zab["is_leader"], is_leader);
        assert_eq!(zab["myid"], m.sid);
        assert_eq!(zab["voting"], true);
        let view = ask("voting_view");
        let ids: Vec<&String> = view["current_config"].as_object().unwrap().keys().collect();
        assert_eq!(ids, ["1", "2", "3"], "{view}");
        let stats = ask("srvr");
        assert_eq!(stats["proposal_stats"].is_object(), is_leader, "{stats}");
        let mntr = ask("mntr");
        assert_eq!(mntr["learners"].is_number(), is_leader, "{mntr}");
        assert_eq!(mntr["quorum_size"], 3);
    }
}

/// An Apache 3.8 ensemble member (QuorumPeerMain) with its AdminServer on
/// its own loopback IP; killed on drop.
struct ApachePeer {
    ip: std::net::Ipv4Addr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for ApachePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` Apache peers configured, the first `started` of them started; the
/// sids in `observers` observe.
fn apache_ensemble(n: u8, started: usize, admin_port: u16, observers: &[u8]) -> Vec<ApachePeer> {
    apache_ensemble_with(n, started, admin_port, observers, "", &[])
}

/// [`apache_ensemble`] with `extra` zoo.cfg lines and the JVM system
/// properties `props` (`name=value`).
fn apache_ensemble_with(
    n: u8,
    started: usize,
    admin_port: u16,
    observers: &[u8],
    extra: &str,
    props: &[&str],
) -> Vec<ApachePeer> {
    use zk_integration::ensemble::{CLIENT_PORT, ELECTION_PORT, QUORUM_PORT, loopback_net};
    use zk_integration::server::{APACHE_ADMIN_CLASSPATH, APACHE_CLASSPATH};
    let (a, b) = loopback_net();
    let ips: Vec<std::net::Ipv4Addr> = (1..=n)
        .map(|s| std::net::Ipv4Addr::new(127, a, b, s))
        .collect();
    let servers: String = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let sid = i as u8 + 1;
            let role = if observers.contains(&sid) {
                ":observer"
            } else {
                ""
            };
            format!("server.{sid}={ip}:{QUORUM_PORT}:{ELECTION_PORT}{role}\n")
        })
        .collect();
    ips.iter()
        .take(started)
        .enumerate()
        .map(|(i, ip)| {
            let dir = tempfile::Builder::new()
                .prefix("zk-admin-apache-")
                .tempdir()
                .unwrap();
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let peer_type = if observers.contains(&(i as u8 + 1)) {
                "peerType=observer\n"
            } else {
                ""
            };
            let cfg = format!(
                "{peer_type}tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={CLIENT_PORT}\nclientPortAddress={ip}\n4lw.commands.whitelist=*\nadmin.serverAddress={ip}\nadmin.serverPort={admin_port}\n{servers}{extra}",
                data.display()
            );
            let cfg_path = dir.path().join("zoo.cfg");
            std::fs::write(&cfg_path, cfg).unwrap();
            let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
            let child = std::process::Command::new("java")
                .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                .args(props.iter().map(|p| format!("-D{p}")))
                .arg("-cp")
                .arg(format!("{APACHE_CLASSPATH}:{APACHE_ADMIN_CLASSPATH}"))
                .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                .arg(&cfg_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("java (Debian's zookeeper package)");
            ApachePeer {
                ip: *ip,
                child,
                _dir: dir,
            }
        })
        .collect()
}

/// `command` on each of `ips` (AdminServer on `port`), once one leads and
/// the others follow: the answers, the leader's first.
fn by_role(ips: &[std::net::IpAddr], port: u16, command: &str) -> Vec<Json> {
    zk_integration::wait_for(
        "a leader and its followers",
        Duration::from_secs(60),
        || {
            let mut all: Vec<Json> = Vec::new();
            for ip in ips {
                let (_, body) = get(SocketAddr::new(*ip, port), "/commands/server_stats")?;
                let stats: Json = serde_json::from_str(&body).ok()?;
                let (_, body) = get(SocketAddr::new(*ip, port), &format!("/commands/{command}"))?;
                let answer: Json = serde_json::from_str(&body).ok()?;
                match stats["server_stats"]["server_state"].as_str()? {
                    "leader" => all.insert(0, answer),
                    "follower" => all.push(answer),
                    _ => return None,
                }
            }
            let leads = |j: &Json| j["is_leader"] == true || j["proposal_stats"].is_object();
            (leads(&all[0]) || !matches!(command, "leader" | "zabstate")).then_some(all)
        },
    )
}

#[test]
fn ensemble_answers_have_apaches_json_shape() {
    let apache = apache_ensemble(3, 3, 24081, &[]);
    let apache_ips: Vec<std::net::IpAddr> = apache.iter().map(|p| p.ip.into()).collect();
    let opts = EnsembleOptions {
        cfg_extra: "admin.enableServer=true\nadmin.serverPort=24081\n".into(),
        ..EnsembleOptions::default()
    };
    let mut ours = ensemble_with(3, &opts);
    for m in &mut ours {
        m.start();
    }
    let our_ips: Vec<std::net::IpAddr> = ours.iter().map(|m| m.addr().ip()).collect();
    let mut diffs = Vec::new();
    for command in [
        "leader",
        "zabstate",
        "voting_view",
        "server_stats",
        "monitor",
        "configuration",
    ] {
        let a = by_role(&apache_ips, 24081, command);
        let o = by_role(&our_ips, 24081, command);
        for (role, (a, o)) in ["leader", "follower"].iter().zip(a.iter().zip(&o)) {
            let mut d = Vec::new();
            shape_diffs("", a, o, &mut d);
            d.retain(|x| {
                let key = x.split(':').next().unwrap_or("");
                !(ABSENT_KEYS.contains(&format!("{command}/{key}").as_str())
                    || (command == "monitor" && x.ends_with(": missing")))
            });
            diffs.extend(d.into_iter().map(|x| format!("{command} ({role}): {x}")));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    // dump: a follower's LearnerSessionTracker has no expiry map (only the
    // leader expires sessions); ours printed its session table's buckets.
    let sessions: Vec<Client> = [&apache_ips, &our_ips]
        .iter()
        .map(|ips| {
            Client::connect(SocketAddr::new(
                ips[0],
                zk_integration::ensemble::CLIENT_PORT,
            ))
            .expect("connect")
        })
        .collect();
    for ips in [&apache_ips, &our_ips] {
        let all = by_role(ips, 24081, "dump");
        for follower in &all[1..] {
            assert_eq!(
                follower["expiry_time_to_session_ids"],
                serde_json::json!({}),
                "{all:?}"
            );
        }
        assert_ne!(
            all[0]["expiry_time_to_session_ids"],
            serde_json::json!({}),
            "{all:?}"
        );
    }
    drop(sessions);
}

#[test]
fn a_looking_member_answers_as_apaches() {
    // One member of three: LOOKING for good, serving no client.
    lone_member_answers_as_apaches(24082, false);
}

/// The same member in read-only mode (`-Dreadonlymode.enabled=true`, local
/// sessions on): every command answers as Apache's read-only server.
#[test]
fn a_read_only_member_answers_as_apaches() {
    lone_member_answers_as_apaches(24083, true);
}

/// Server 1 of three, alone, of Apache and of ours: every AdminServer
/// command has the same status, error and JSON shape.
fn lone_member_answers_as_apaches(port: u16, read_only: bool) {
    let extra = if read_only {
        "localSessionsEnabled=true\n"
    } else {
        ""
    };
    let props: &[&str] = if read_only {
        &["readonlymode.enabled=true"]
    } else {
        &[]
    };
    let apache = apache_ensemble_with(3, 1, port, &[], extra, props);
    let opts = EnsembleOptions {
        cfg_extra: format!("admin.enableServer=true\nadmin.serverPort={port}\n{extra}"),
        ..EnsembleOptions::default()
    };
    let mut ours = ensemble_with(3, &opts);
    let flags: Vec<(&str, &str)> = props
        .iter()
        .map(|_| ("SERVER_JVMFLAGS", "-Dreadonlymode.enabled=true"))
        .collect();
    ours[0].start_env(&flags);
    let a = SocketAddr::new(apache[0].ip.into(), port);
    let o = SocketAddr::new(ours[0].addr().ip(), port);
    for addr in [a, o] {
        zk_integration::wait_for("the AdminServer", Duration::from_secs(60), || {
            let (code, body) = get(addr, "/commands/is_read_only")?;
            let ready = if read_only {
                serde_json::from_str::<Json>(&body).ok()?["read_only"] == true
            } else {
                code == 200 || code == 500
            };
            ready.then_some(())
        });
    }
    let names: Vec<String> = COMMANDS_OF_OURS.iter().map(|s| (*s).to_owned()).collect();
    let mut diffs = Vec::new();
    for name in &names {
        let (ac, ab) = get(a, &format!("/commands/{name}")).expect("apache answers");
        let (oc, ob) = get(o, &format!("/commands/{name}")).expect("ours answers");
        if ac != oc {
            diffs.push(format!("{name}: status apache {ac} ours {oc}"));
            continue;
        }
        let (Ok(aj), Ok(oj)) = (
            serde_json::from_str::<Json>(&ab),
            serde_json::from_str::<Json>(&ob),
        ) else {
            continue;
        };
        if aj["error"] != oj["error"] {
            diffs.push(format!(
                "{name}: error apache {} ours {}",
                aj["error"], oj["error"]
            ));
        }
        let mut d = Vec::new();
        shape_diffs("", &aj, &oj, &mut d);
        d.retain(|x| !(a_subset(name) && x.ends_with(": missing") || config_derived(name, x)));
        diffs.extend(d.into_iter().map(|x| format!("{name}: {x}")));
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// Our commands' primary names (as `GET /commands` lists them).
const COMMANDS_OF_OURS: &[&str] = &[
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

#[test]
fn the_command_url_is_configurable() {
    let port = zk_integration::server::free_port();
    let ours = OurZk::start(&format!(
        "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\nadmin.commandURL=/zk\n"
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (code, list) = get(addr, "/zk").expect("the list");
    assert_eq!(code, 200);
    assert!(list.contains("<a href=\"/zk/ruok\">ruok</a>"), "{list}");
    let (code, body) = get(addr, "/zk/ruok").expect("ruok");
    assert_eq!(code, 200);
    let ruok: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&ruok["command"], &ruok["error"]),
        (&Json::from("ruok"), &Json::Null)
    );
    assert_eq!(get(addr, "/commands/ruok").map(|(c, _)| c), Some(404));
    assert_eq!(get(addr, "/zkruok").map(|(c, _)| c), Some(404));
    drop(ours);
}

/// The leader lists its synced observers as Apache's leader does
/// (`observers`: each one's address, sid and packet counts), and
/// `observer_connection_stat_reset` zeroes their counts; followers list none.
#[test]
fn leaders_list_their_observers_as_apaches() {
    const PORT: u16 = 24083;
    let apache = apache_ensemble(4, 4, PORT, &[4]);
    let opts = EnsembleOptions {
        cfg_extra: format!("admin.enableServer=true\nadmin.serverPort={PORT}\n"),
        observers: vec![4],
        ..EnsembleOptions::default()
    };
    let mut ours = ensemble_with(4, &opts);
    for m in &mut ours {
        m.start();
    }
    let voters = |ips: Vec<std::net::IpAddr>| ips[..3].to_vec();
    let apache_ips = voters(apache.iter().map(|p| p.ip.into()).collect());
    let our_ips = voters(ours.iter().map(|m| m.addr().ip()).collect());
    let mut answers = Vec::new();
    for ips in [&apache_ips, &our_ips] {
        // The observer syncs after the voters: wait for it at the leader.
        let all = zk_integration::wait_for("the observer synced", Duration::from_secs(60), || {
            let all = by_role(ips, PORT, "observers");
            (all[0]["synced_observers"] == 1).then_some(all)
        });
        for follower in &all[1..] {
            assert_eq!(follower["synced_observers"], 0, "{follower}");
            assert_eq!(follower["observers"], serde_json::json!([]), "{follower}");
        }
        let leader = &all[0];
        let o = &leader["observers"][0];
        assert_eq!(o["sid"], 4, "{leader}");
        assert!(
            o["remote_socket_address"]
                .as_str()
                .unwrap()
                .starts_with('/'),
            "{o}"
        );
        answers.push(leader.clone());
    }
    let mut diffs = Vec::new();
    shape_diffs("", &answers[0], &answers[1], &mut diffs);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    // 50 writes reach the observer (INFORMs); the reset zeroes the counts.
    for ips in [&apache_ips, &our_ips] {
        let leader_ip = *ips
            .iter()
            .find(|ip| {
                let (_, body) = get(SocketAddr::new(**ip, PORT), "/commands/srvr").unwrap();
                let stats: Json = serde_json::from_str(&body).unwrap();
                stats["server_stats"]["server_state"] == "leader"
            })
            .expect("a leader");
        let admin = SocketAddr::new(leader_ip, PORT);
        let client_addr = SocketAddr::new(leader_ip, zk_integration::ensemble::CLIENT_PORT);
        let mut c = Client::connect(client_addr).expect("a session at the leader");
        for i in 0..50 {
            c.create(&format!("/obs{i}"), b"", 0).unwrap().unwrap();
        }
        let observer = |admin: SocketAddr| -> Json {
            let (_, body) = get(admin, "/commands/observers").expect("observers");
            let j: Json = serde_json::from_str(&body).unwrap();
            j["observers"][0].clone()
        };
        let before = observer(admin);
        assert!(before["packets_sent"].as_u64().unwrap() >= 50, "{before}");
        assert!(before["last_zxid"].as_i64().unwrap() > 0, "{before}");
        let (_, reset) = get(admin, "/commands/orst").expect("orst");
        let reset: Json = serde_json::from_str(&reset).unwrap();
        assert_eq!(
            (&reset["command"], &reset["error"]),
            (&Json::from("observer_connection_stat_reset"), &Json::Null)
        );
        let after = observer(admin);
        // Pings may have gone and come back since the reset.
        assert!(after["packets_sent"].as_u64().unwrap() < 10, "{after}");
        assert!(after["requests"].as_u64().unwrap() < 10, "{after}");
    }
}

/// `last_snapshot` names the newest snapshot, and `system_properties`
/// the `zookeeper.*` properties zoo.cfg set, as Apache's.
#[test]
fn last_snapshot_and_system_properties_as_apaches() {
    let opts = ServerOptions {
        admin: true,
        cfg_extra: "snapCount=100\nfooBar=baz\n".into(),
        ..ServerOptions::default()
    };
    let apache = start_server(Flavor::Apache, opts.clone());
    let ours = start_server(Flavor::Ours, opts);
    for s in [&apache, &ours] {
        let mut c = Client::connect(s.addr()).expect("session");
        // More than snapCount writes: a snapshot after the first one.
        for i in 0..300 {
            c.create(&format!("/s{i}"), b"", 0).unwrap().unwrap();
        }
        let zxid = c.exists("/s299", false).unwrap().expect("/s299").mzxid;
        let snap = zk_integration::wait_for("a new snapshot", Duration::from_secs(30), || {
            let j = command(s, "last_snapshot");
            let z = i64::from_str_radix(j["zxid"].as_str()?, 16).ok()?;
            (z > 50).then_some(j)
        });
        let z = i64::from_str_radix(snap["zxid"].as_str().unwrap(), 16).unwrap();
        assert!(z <= zxid, "{:?}: {snap}", s.flavor());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let ts = snap["timestamp"].as_i64().unwrap();
        assert!(
            (now - 120..=now + 1).contains(&ts),
            "{:?}: {snap}",
            s.flavor()
        );
        let props = command(s, "system_properties");
        assert_eq!(
            props["zookeeper.snapCount"],
            "100",
            "{:?}: {props}",
            s.flavor()
        );
        assert_eq!(
            props["zookeeper.fooBar"],
            "baz",
            "{:?}: {props}",
            s.flavor()
        );
        assert_eq!(
            props["zookeeper.admin.enableServer"],
            "true",
            "{:?}",
            s.flavor()
        );
        assert!(props.get("zookeeper.tickTime").is_none(), "{props}");
        assert!(props["os.name"].is_string() && props["user.dir"].is_string());
    }
}
