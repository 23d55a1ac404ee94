//! Prometheus' `/metrics`, read with a real exposition-format parser (the
//! `prometheus_client` Python package's `text_string_to_metric_families`),
//! compared with what Apache ZooKeeper 3.8's `mntr` prints for the same
//! workload: Apache's Prometheus provider (not in the Debian package)
//! exports exactly the metrics mntr prints, without the `zk_` prefix, as
//! gauges (`registerGauge`), counters and summaries (`ServerMetrics`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value as Json;
use zk_integration::ensemble::{EnsembleOptions, ensemble_with};
use zk_integration::http::{assert_taken_port_keeps_serving, get};
use zk_integration::server::METRICS_PROVIDER;
use zk_integration::{Client, Flavor, ServerOptions, ZkServer, four_letter, start_server};

/// The gauges Apache registers (`registerGauge` in ZooKeeperServer,
/// QuorumZooKeeperServer, LeaderZooKeeperServer, branch-3.8).
const APACHE_GAUGES: &[&str] = &[
    "approximate_data_size",
    "auth_failed_count",
    "avg_latency",
    "connection_drop_probability",
    "ephemerals_count",
    "global_sessions",
    "last_client_response_size",
    "last_proposal_size",
    "leader_uptime",
    "learners",
    "local_sessions",
    "max_client_response_size",
    "max_file_descriptor_count",
    "max_latency",
    "max_proposal_size",
    "min_client_response_size",
    "min_latency",
    "min_proposal_size",
    "non_mtls_local_conn_count",
    "non_mtls_remote_conn_count",
    "num_alive_connections",
    "open_file_descriptor_count",
    "outstanding_requests",
    "outstanding_tls_handshake",
    "packets_received",
    "packets_sent",
    "pending_syncs",
    "quorum_size",
    "synced_followers",
    "synced_non_voting_followers",
    "synced_observers",
    "uptime",
    "watch_count",
    "znode_count",
];

/// The parser's view of one family.
#[derive(Debug)]
struct Family {
    kind: String,
    /// (sample name, labels, value)
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out, allow_nan=True))
"#;

/// Scrapes `/metrics` and parses it with prometheus_client.
fn scrape(addr: SocketAddr) -> BTreeMap<String, Family> {
    let (code, body) = get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    let mut py = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs prometheus_client)");
    py.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser rejected /metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Python prints NaN bare; JSON has no NaN.
    let text = String::from_utf8_lossy(&out.stdout).replace("NaN", "null");
    let json: Json = serde_json::from_str(&text).expect("parser output");
    json.as_object()
        .unwrap()
        .iter()
        .map(|(name, f)| {
            let samples = f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect();
                    (
                        s[0].as_str().unwrap().to_owned(),
                        labels,
                        s[2].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect();
            let kind = f["type"].as_str().unwrap().to_owned();
            (name.clone(), Family { kind, samples })
        })
        .collect()
}

fn value(f: &BTreeMap<String, Family>, name: &str) -> f64 {
    f.get(name).unwrap_or_else(|| panic!("no {name}")).samples[0].2
}

fn mntr_keys(server: &ZkServer) -> BTreeSet<String> {
    let text = four_letter(server.addr(), "mntr").expect("mntr");
    text.lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_owned)
        .collect()
}

fn workload(server: &ZkServer) -> Client {
    let mut c = Client::connect(server.addr()).expect("session");
    c.create("/a", b"hello", 0).unwrap().unwrap();
    c.create("/e", b"", 1).unwrap().unwrap();
    for i in 0..20 {
        c.set_data("/a", format!("{i}").as_bytes(), -1)
            .unwrap()
            .unwrap();
        c.get_data("/a", i == 0).unwrap().unwrap();
    }
    c
}

#[test]
fn metric_names_and_types_are_apaches_mntr() {
    let apache = start_server(Flavor::Apache, ServerOptions::default());
    let ours = start_server(
        Flavor::Ours,
        ServerOptions {
            metrics: true,
            ..ServerOptions::default()
        },
    );
    let _a = workload(&apache);
    let _o = workload(&ours);
    let apache_mntr = mntr_keys(&apache);
    let our_mntr = mntr_keys(&ours);
    let families = scrape(ours.metrics_addr().unwrap());

    let mut diffs = Vec::new();
    for (name, f) in &families {
        if name.starts_with("process_") {
            continue;
        }
        match f.kind.as_str() {
            "gauge" | "counter" => {
                if !apache_mntr.contains(&format!("zk_{name}")) {
                    diffs.push(format!("{name}: not in Apache's mntr"));
                }
                let gauge = APACHE_GAUGES.contains(&name.as_str());
                if gauge != (f.kind == "gauge") {
                    diffs.push(format!("{name}: {} but Apache's is not", f.kind));
                }
            }
            "summary" => diffs.extend(summary_diffs(name, f, &apache_mntr)),
            other => diffs.push(format!("{name}: type {other}")),
        }
    }
    // Every number our mntr prints is a series (a summary's parts are
    // `zk_<part>_<summary>`).
    for k in &our_mntr {
        let name = k.strip_prefix("zk_").unwrap_or(k);
        let parts = [
            "avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_",
        ];
        let name = parts
            .iter()
            .find_map(|p| name.strip_prefix(p).filter(|n| families.contains_key(*n)))
            .unwrap_or(name);
        // A summary set's part: `<part>_<key>_<set>`.
        let name = families
            .keys()
            .filter(|f| f.ends_with("_per_namespace"))
            .find(|f| name.ends_with(&format!("_{f}")))
            .map_or(name, String::as_str);
        let text = matches!(name, "version" | "server_state" | "peer_state");
        if !text && !families.contains_key(name) {
            diffs.push(format!("{k} is in our mntr but not in /metrics"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));

    // The latencies count what the workload did; figures match mntr's.
    let count = |n: &str| {
        families[n]
            .samples
            .iter()
            .find(|(s, _, _)| s.ends_with("_count"))
            .map(|s| s.2)
            .unwrap()
    };
    // 20 reads and 22 writes; forceSync is on: each group commit's
    // fdatasync is timed.
    for (name, min) in [
        ("readlatency", 20.0),
        ("updatelatency", 22.0),
        ("fsynctime", 1.0),
    ] {
        assert!(count(name) >= min, "{:?}", families[name]);
    }
    for name in ["snapshottime", "election_time", "follower_sync_time"] {
        assert!(families.contains_key(name), "{name}");
    }
    assert_eq!(value(&families, "ephemerals_count"), 1.0);
    assert_eq!(value(&families, "global_sessions"), 1.0);
    assert!(value(&families, "znode_count") >= 6.0);
    // The process, from /proc; no JVM.
    assert!(value(&families, "process_resident_memory_bytes") > 1e6);
    assert!(value(&families, "process_open_fds") > 3.0);
    assert!(families.contains_key("process_cpu_seconds"));
    assert!(families.keys().all(|k| !k.starts_with("jvm")));
    assert!(
        ours.output().contains("no jvm_* metrics"),
        "exportJvmInfo is said once: {}",
        ours.output_tail(20)
    );
}

#[test]
fn a_taken_metrics_port_is_logged_and_clients_are_served() {
    // Bug pinned: the operators' port must never keep a server from serving.
    assert_taken_port_keeps_serving(
        |port| {
            format!(
                "metricsProvider.className={METRICS_PROVIDER}\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
            )
        },
        "cannot start the metrics endpoint",
    );
}

#[test]
fn the_leader_exports_its_learners_and_followers_do_not() {
    let opts = EnsembleOptions {
        cfg_extra: format!(
            "metricsProvider.className={METRICS_PROVIDER}\nmetricsProvider.httpPort=24070\n"
        ),
        ..EnsembleOptions::default()
    };
    let mut members = ensemble_with(3, &opts);
    for m in &mut members {
        m.start();
    }
    let scrapes = zk_integration::wait_for(
        "a leader with two synced followers",
        Duration::from_secs(30),
        || {
            let all: Vec<BTreeMap<String, Family>> = members
                .iter()
                .map(|m| {
                    let addr = SocketAddr::new(m.addr().ip(), 24070);
                    get(addr, "/metrics")
                        .map(|_| scrape(addr))
                        .unwrap_or_default()
                })
                .collect();
            let synced = all
                .iter()
                .filter_map(|f| f.get("synced_followers").map(|x| x.samples[0].2))
                .collect::<Vec<_>>();
            // Every member answers (a follower may sync before its
            // endpoint is up: the quorum starts first).
            (synced == [2.0] && all.iter().all(|f| !f.is_empty())).then_some(all)
        },
    );
    // Scraped again: a follower scraped first may have been still electing
    // when the leader, scraped later, counted it synced.
    drop(scrapes);
    let scrapes: Vec<BTreeMap<String, Family>> = members
        .iter()
        .map(|m| scrape(SocketAddr::new(m.addr().ip(), 24070)))
        .collect();
    for f in &scrapes {
        assert_eq!(value(f, "quorum_size"), 3.0);
        let leads = f.contains_key("learners");
        for g in [
            "learners",
            "pending_syncs",
            "leader_uptime",
            "max_proposal_size",
        ] {
            assert_eq!(f.contains_key(g), leads, "{g}");
        }
        if leads {
            assert_eq!(value(f, "learners"), 2.0);
        }
        // Every member took part in one election at least.
        let elections = f["election_time"]
            .samples
            .iter()
            .find(|(s, _, _)| s == "election_time_count")
            .map_or(0.0, |s| s.2);
        assert!(elections >= 1.0, "{:?}", f["election_time"]);
        // A follower timed its sync with the leader.
        let synced = f["follower_sync_time"]
            .samples
            .iter()
            .find(|(s, _, _)| s == "follower_sync_time_count")
            .map_or(0.0, |s| s.2);
        assert_eq!(synced >= 1.0, !leads, "{:?}", f["follower_sync_time"]);
    }
}

/// What differs between our summary family `name` and Apache's mntr.
fn summary_diffs(name: &str, f: &Family, apache_mntr: &BTreeSet<String>) -> Vec<String> {
    let mut diffs = Vec::new();
    if name.ends_with("_per_namespace") {
        // A summary set: a series per namespace (label `key`), each
        // Apache's `zk_<part>_<key>_<name>`; no quantile (README).
        for (_, l, _) in &f.samples {
            let key = l.get("key").cloned().unwrap_or_default();
            if !apache_mntr.contains(&format!("zk_cnt_{key}_{name}")) {
                diffs.push(format!("{name}{{key={key}}}: not in Apache's mntr"));
            }
            if l.contains_key("quantile") {
                diffs.push(format!("{name}: a quantile"));
            }
        }
        return diffs;
    }
    if !apache_mntr.contains(&format!("zk_cnt_{name}")) {
        diffs.push(format!("{name}: no zk_cnt_{name} in Apache's mntr"));
    }
    let quantiles: BTreeSet<String> = f
        .samples
        .iter()
        .filter_map(|(_, l, _)| l.get("quantile").cloned())
        .collect();
    // ServerMetrics' "advanced" summaries have three quantiles,
    // the "basic" ones the median.
    let want: &[&str] = match name {
        "readlatency" | "updatelatency" => &["0.5", "0.9", "0.99"],
        _ => &["0.5"],
    };
    if quantiles != want.iter().map(|q| (*q).to_owned()).collect() {
        diffs.push(format!("{name}: quantiles {quantiles:?}"));
    }
    diffs
}
