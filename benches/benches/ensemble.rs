//! The replicated write path (issue 17): a leader and two followers, three
//! zk-server instances in this process on loopback (election and quorum
//! ports, Zab, each on its own data directory), one client, one request at a
//! time, measured from the request's write to its reply's last byte:
//!
//! * `ensemble3_leader`: create and setData of 100 B at the leader (its log's
//!   fdatasync and a follower's, in parallel, then COMMIT), getData;
//! * `ensemble3_follower`: the same through a follower (forwarded to the
//!   leader as REQUEST, answered once the follower applied the commit).
//!
//! Next to `e2e_forcesync_yes` (the standalone server, `benches/e2e.rs`) the
//! difference is what replication costs, so a regression in it shows in
//! `cargo bench`. The data directories go under [`zk_benches::durable_dir`].
//! Under `-- --test` (the CI smoke run) every bench runs once.

#![allow(missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, black_box, criterion_group, criterion_main};
use tempfile::TempDir;
use zk_benches::client::Client;
use zk_benches::{create_request, data, durable_dir};
use zk_jute::{GetDataRequest, Request, SetDataRequest};
use zk_server::{Config, Server};

/// `n` distinct ports nobody listens on now. Regression: ports picked one
/// at a time (each listener dropped before the next bind) could repeat, and
/// the ensemble's config then named one port twice (a failed CI bench run).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("a bound port").port())
        .collect()
}

/// Three servers of one ensemble, serving.
struct Ensemble {
    servers: Vec<Server>,
    _dirs: Vec<TempDir>,
}

impl Ensemble {
    fn start() -> Ensemble {
        let ports: Vec<(u16, u16, u16)> = free_ports(9)
            .chunks(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect();
        let lines: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, q, e))| format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1))
            .collect();
        let mut dirs = Vec::new();
        let mut servers = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let dir = tempfile::Builder::new()
                .prefix("zk-ensemble-bench")
                .tempdir_in(durable_dir())
                .expect("create the data directory");
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).expect("mkdir data");
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("write myid");
            let cfg = dir.path().join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{lines}",
                    data.display()
                ),
            )
            .expect("write zoo.cfg");
            let config = Config::from_file(&cfg).expect("a valid zoo.cfg");
            servers.push(Server::start(config).expect("start a server"));
            dirs.push(dir);
        }
        Ensemble {
            servers,
            _dirs: dirs,
        }
    }

    /// (the leader's address, a follower's), once every server serves.
    fn roles(&self) -> (SocketAddr, SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let modes: Vec<(SocketAddr, String)> = self
                .servers
                .iter()
                .map(|s| (s.local_addr(), mode(s.local_addr())))
                .collect();
            let leader = modes.iter().find(|m| m.1 == "leader");
            let follower = modes.iter().find(|m| m.1 == "follower");
            let all = modes.iter().all(|m| m.1 == "leader" || m.1 == "follower");
            if let (Some(l), Some(f), true) = (leader, follower, all) {
                return (l.0, f.0);
            }
            assert!(Instant::now() < deadline, "no serving ensemble: {modes:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `Mode:` from `srvr` ("" when not serving).
fn mode(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let mut out = String::new();
    if s.write_all(b"srvr").is_err() || s.read_to_string(&mut out).is_err() {
        return String::new();
    }
    out.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn ops(c: &mut Criterion, group: &str, addr: SocketAddr, tag: &str) {
    let mut client = Client::connect(addr).expect("connect");
    let mut g = c.benchmark_group(group);
    // Milliseconds per write: fewer samples, each a flat run of iterations.
    g.sample_size(20).sampling_mode(SamplingMode::Flat);
    let payload = data(100);
    let mut seq = 0u64;
    g.bench_function("create_100B", |b| {
        b.iter(|| {
            seq += 1;
            let req = create_request(&format!("/bench/{tag}-{seq:010}"), Some(payload.clone()));
            black_box(client.call_ok(&req).expect("create"))
        })
    });
    let path = format!("/bench/s-{tag}");
    client
        .call_ok(&create_request(&path, Some(payload.clone())))
        .expect("create the setData node");
    let set = Request::SetData(SetDataRequest {
        path: path.clone(),
        data: Some(payload),
        version: -1,
    });
    g.bench_function("set_data_100B", |b| {
        b.iter(|| black_box(client.call_ok(&set).expect("setData")))
    });
    let get = Request::GetData(GetDataRequest { path, watch: false });
    g.bench_function("get_data_100B", |b| {
        b.iter(|| black_box(client.call_ok(&get).expect("getData")))
    });
    g.finish();
    client.close().expect("close the session");
}

fn ensemble(c: &mut Criterion) {
    let e = Ensemble::start();
    let (leader, follower) = e.roles();
    let mut setup = Client::connect(leader).expect("connect");
    setup
        .call_ok(&create_request("/bench", None))
        .expect("create /bench");
    setup.close().expect("close");
    ops(c, "ensemble3_leader", leader, "l");
    ops(c, "ensemble3_follower", follower, "f");
    for s in e.servers {
        s.shutdown();
    }
}

criterion_group!(benches, ensemble);
criterion_main!(benches);
