//! Durability: a pipelined write load (creates and sets through the raw
//! client), the server killed with SIGKILL at a random moment, restarted on
//! the same dirs; every acknowledged write must be there with its data (a
//! write in flight at the kill may or may not be). Ten rounds, checked
//! cumulatively.
//!
//! Plus the log's failure cases: the newest log file truncated at a random
//! offset after a kill → the server starts and serves; a byte corrupted in
//! the middle of a log file (inside a record followed by more records) →
//! the server refuses to start, and ours names the file and the offset.
//!
//! `ZK_TEST_SEED=<n>` reproduces one run's kill points and offsets.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_integration::{Client, Flavor, Rng, ServerOptions, ZkServer, open_acl, seeds, start_server};
use zk_jute::{CreateRequest, GetDataRequest, Request, Response, SetDataRequest};

const ROUNDS: usize = 10;
const WINDOW: usize = 32;
const MAX_OPS_PER_ROUND: usize = 3000;

/// What a node may hold: its last acknowledged value, or a value from a set
/// that was in flight when the server died.
#[derive(Debug, Default)]
struct Expect {
    created_acked: bool,
    acked: Option<Vec<u8>>,
    in_flight: Vec<Vec<u8>>,
}

struct InFlight {
    xid: i32,
    path: String,
    value: Vec<u8>,
}

fn sigkill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// Runs the load until the connection dies (the kill) or the op limit.
fn load(
    server: &ZkServer,
    round: usize,
    rng: &mut Rng,
    model: &mut BTreeMap<String, Expect>,
) -> usize {
    // the kill may come before the session is open
    let Ok(mut c) = Client::connect(server.addr()) else {
        return 0;
    };
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut created: Vec<String> = Vec::new();
    let mut acked_ops = 0;
    let mut next = 0usize;
    'outer: loop {
        while inflight.len() < WINDOW && next < MAX_OPS_PER_ROUND {
            let set_target = (!created.is_empty() && rng.chance(40))
                .then(|| created[rng.index(created.len())].clone());
            let (req, path, value) = match set_target {
                Some(path) => {
                    let value = format!("set r{round} op{next} {}", "s".repeat(rng.index(200)))
                        .into_bytes();
                    let req = Request::SetData(SetDataRequest {
                        path: path.clone(),
                        data: Some(Bytes::from(value.clone())),
                        version: -1,
                    });
                    (req, path, value)
                }
                None => {
                    let path = format!("/d/r{round}-{next}");
                    let value = format!("create r{round} op{next} {}", "c".repeat(rng.index(200)))
                        .into_bytes();
                    let req = Request::Create(CreateRequest {
                        path: path.clone(),
                        data: Some(Bytes::from(value.clone())),
                        acl: open_acl(),
                        flags: 0,
                    });
                    (req, path, value)
                }
            };
            next += 1;
            model
                .entry(path.clone())
                .or_default()
                .in_flight
                .push(value.clone());
            match c.send(&req) {
                Ok(xid) => inflight.push_back(InFlight { xid, path, value }),
                Err(_) => break 'outer,
            }
        }
        let Some(front) = inflight.pop_front() else {
            break;
        };
        match c.wait(front.xid) {
            Ok(r) => {
                assert_eq!(r.err, 0, "write to {} failed: {}", front.path, r.code());
                let e = model.get_mut(&front.path).expect("model entry");
                if !e.created_acked {
                    e.created_acked = true;
                    created.push(front.path.clone());
                }
                // acknowledged: older in-flight values can no longer show
                let pos = e
                    .in_flight
                    .iter()
                    .position(|v| *v == front.value)
                    .expect("in flight");
                e.in_flight.drain(..=pos);
                e.acked = Some(front.value);
                acked_ops += 1;
            }
            Err(_) => break,
        }
    }
    acked_ops
}

/// Every acknowledged write is present with an allowed value.
fn verify(server: &ZkServer, model: &BTreeMap<String, Expect>, context: &str) {
    let mut c = Client::connect(server.addr()).expect("connect after restart");
    let paths: Vec<&String> = model.keys().collect();
    for chunk in paths.chunks(WINDOW) {
        let xids: Vec<i32> = chunk
            .iter()
            .map(|p| {
                c.send(&Request::GetData(GetDataRequest {
                    path: (*p).clone(),
                    watch: false,
                }))
                .expect("send getData")
            })
            .collect();
        for (p, xid) in chunk.iter().zip(xids) {
            let r = c.wait(xid).expect("getData reply");
            let e = &model[*p];
            match (&r.body, e.created_acked) {
                (Response::GetData(g), _) => {
                    let data = g.data.clone().unwrap_or_default().to_vec();
                    let ok = e.acked.as_ref() == Some(&data) || e.in_flight.contains(&data);
                    assert!(
                        ok,
                        "{context}: {p} holds {:?}; acknowledged {:?}, in flight {:?}",
                        String::from_utf8_lossy(&data),
                        e.acked
                            .as_ref()
                            .map(|v| String::from_utf8_lossy(v).into_owned()),
                        e.in_flight.len()
                    );
                }
                (_, true) => panic!("{context}: acknowledged create of {p} lost ({})", r.code()),
                (_, false) => {}
            }
        }
    }
    c.close().expect("close");
}

fn crash_rounds(flavor: Flavor) {
    for seed in seeds(&[7]) {
        let mut rng = Rng::new(seed);
        let mut server = start_server(flavor, ServerOptions::default());
        let mut model = BTreeMap::new();
        let mut c = Client::connect(server.addr()).expect("connect");
        c.create("/d", b"", 0).unwrap().expect("create /d");
        c.close().expect("close");
        let start = Instant::now();
        for round in 0..ROUNDS {
            let pid = server.pid().expect("running");
            let delay = Duration::from_millis(30 + rng.below(300));
            let killer = std::thread::spawn(move || {
                std::thread::sleep(delay);
                sigkill(pid);
            });
            let acked = load(&server, round, &mut rng, &mut model);
            killer.join().expect("killer");
            server.kill9();
            server.restart();
            verify(
                &server,
                &model,
                &format!(
                    "seed {seed} round {round} (kill after {delay:?}, {acked} writes acknowledged)"
                ),
            );
        }
        eprintln!(
            "{flavor}: {ROUNDS} kill -9 rounds, {} nodes checked, {:?}",
            model.len(),
            start.elapsed()
        );
    }
}

/// Log files (`log.<hex>`) under `dir`, recursively.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(log_files(&p));
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("log.") && u64::from_str_radix(&n[4..], 16).is_ok())
        {
            out.push(p);
        }
    }
    out
}

fn newest_log(server: &ZkServer) -> PathBuf {
    let mut logs = log_files(server.dir());
    logs.sort_by_key(|p| {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("log.0");
        u64::from_str_radix(&n[4..], 16).unwrap_or(0)
    });
    logs.pop()
        .unwrap_or_else(|| panic!("no log.<hex> file under {}", server.dir().display()))
}

/// Writes `n` nodes whose data carries findable markers, acknowledged.
fn write_marked(server: &ZkServer, n: usize) {
    let mut c = Client::connect(server.addr()).expect("connect");
    let xids: Vec<i32> = (0..n)
        .map(|i| {
            c.send(&Request::Create(CreateRequest {
                path: format!("/m{i:05}"),
                data: Some(Bytes::from(format!("MARKER-{i:05}-{}", "x".repeat(64)))),
                acl: open_acl(),
                flags: 0,
            }))
            .expect("send")
        })
        .collect();
    for x in xids {
        c.wait(x).expect("reply").expect_ok("create");
    }
    c.disconnect();
}

fn truncated_tail(flavor: Flavor) {
    for seed in seeds(&[11]) {
        let mut rng = Rng::new(seed);
        let mut server = start_server(flavor, ServerOptions::default());
        write_marked(&server, 300);
        server.kill9();
        let log = newest_log(&server);
        let bytes = fs::read(&log).expect("read log");
        let end = bytes.iter().rposition(|b| *b != 0).unwrap_or(0) + 1;
        let cut = end / 2 + rng.index(end / 2);
        fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .and_then(|f| f.set_len(cut as u64))
            .expect("truncate");
        eprintln!(
            "{flavor}: truncated {} from {} (data end {end}) to {cut}",
            log.display(),
            bytes.len()
        );
        server.restart();
        let mut c = Client::connect(server.addr()).expect("connect after truncation");
        let (first, _) = c
            .get_data("/m00000", false)
            .unwrap()
            .expect("an early write survives a torn tail");
        assert!(first.starts_with(b"MARKER-00000"));
        c.create("/after-truncation", b"ok", 0)
            .unwrap()
            .expect("writes work after truncation");
        assert_eq!(
            &c.get_data("/after-truncation", false).unwrap().unwrap().0[..],
            b"ok"
        );
        c.close().unwrap();
        // and it comes back once more with the new write
        server.kill9();
        server.restart();
        let mut c = Client::connect(server.addr()).expect("connect");
        assert!(c.exists("/after-truncation", false).unwrap().is_some());
        c.close().unwrap();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Corrupts a byte inside the data of the 150th of 300 records and expects
/// a refusal. Returns the server output.
fn corrupt_middle(flavor: Flavor) -> (String, PathBuf, usize) {
    let mut server = start_server(flavor, ServerOptions::default());
    write_marked(&server, 300);
    server.kill9();
    let marker = b"MARKER-00150-";
    let (log, off) = log_files(server.dir())
        .into_iter()
        .find_map(|p| {
            let bytes = fs::read(&p).ok()?;
            find(&bytes, marker).map(|o| (p, o + 3))
        })
        .expect("a log file holding record 150");
    let mut bytes = fs::read(&log).expect("read");
    bytes[off] ^= 0x5a;
    fs::write(&log, &bytes).expect("write corrupted log");
    let (status, output) = server.start_expecting_failure(Duration::from_secs(60));
    assert!(
        !status.success(),
        "{flavor} must exit with an error status on a corrupt log, got {status}"
    );
    (output, log, off)
}

#[test]
fn kill9_rounds_apache() {
    crash_rounds(Flavor::Apache);
}

#[test]
fn kill9_rounds_ours() {
    crash_rounds(Flavor::Ours);
}

#[test]
fn truncated_log_tail_apache() {
    truncated_tail(Flavor::Apache);
}

#[test]
fn truncated_log_tail_ours() {
    truncated_tail(Flavor::Ours);
}

#[test]
fn corrupt_log_middle_apache() {
    let (out, log, _) = corrupt_middle(Flavor::Apache);
    // Apache names the problem but not the offset
    let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        out.contains("CRC check failed") || out.contains(name),
        "Apache should report the CRC failure:\n{out}"
    );
}

#[test]
fn corrupt_log_middle_ours() {
    let (out, log, off) = corrupt_middle(Flavor::Ours);
    let name = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        out.contains(name),
        "the error must name the file {name}:\n{out}"
    );
    assert!(
        out.to_ascii_lowercase().contains("offset"),
        "the error must give the offset (byte {off} was corrupted):\n{out}"
    );
}
