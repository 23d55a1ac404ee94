//! zk-inspect run on data directories written by the real server (zk-server as a library,
//! driven by zk-server's raw test client): log listing and filters, JSON, snapshots, verify on
//! a clean dir, a torn tail and a corrupt record, wrong file types, and that nothing is written.

#![allow(clippy::too_many_lines, reason = "one scenario, read top to bottom")]

#[path = "../../zk-server/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Client;
use zk_jute::{
    CreateRequest, DeleteRequest, MultiOp, Request, SetAclRequest, SetDataRequest, perms,
};
use zk_server::{Config, Server};

const BIN: &str = env!("CARGO_BIN_EXE_zk-inspect");

fn config(dir: &Path) -> Config {
    let mut c = Config::standalone(dir.to_path_buf(), 0);
    c.tick_time = 100;
    c.min_session_timeout = 200;
    c.max_session_timeout = 60_000;
    c.client_port_address = Some("127.0.0.1".parse().unwrap());
    // Small segments (a small jute.maxbuffer keeps the minimum segment near 1.3 MB) so the log
    // rolls; a small snapCount so several snapshots are taken; no fsync: tests only.
    c.pre_alloc_size_kb = 1024;
    c.jute_max_buffer = 8192;
    c.snap_count = 60;
    c.force_sync = false;
    c
}

fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: zk_tree::open_acl_unsafe(),
        flags,
    })
}

fn ok(c: &mut Client, req: Request) {
    let (h, r) = c.call(req);
    assert_eq!(h.err, 0, "{r:?}");
}

/// Waits until no snapshot is being written (the snapshot thread is detached).
fn settle(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    std::thread::sleep(Duration::from_millis(200));
    while std::fs::read_dir(dir)
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    {
        assert!(Instant::now() < deadline, "snapshot never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the golden data directory holds.
struct Golden {
    dir: tempfile::TempDir,
    /// Session A: alive at the end, owns /app/eph-a.
    session_a: i64,
    /// Session C: alive at the end, owns /app/eph-c.
    session_c: i64,
    /// The server's own last zxid at shutdown.
    last_zxid: i64,
    /// The first sequential node (deleted later).
    seq0: String,
}

/// Two server runs (two epochs), ~1.8 MB of txns (the log rolls once), several snapshots.
fn golden() -> &'static Golden {
    static G: OnceLock<Golden> = OnceLock::new();
    G.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; 6000];
        let server = Server::start(config(dir.path())).unwrap();
        let addr = server.local_addr();
        let mut a = Client::connect(addr);
        ok(&mut a, create("/app", b"hello", 0));
        ok(&mut a, create("/app/cfg", b"v1", 0));
        ok(
            &mut a,
            Request::SetData(SetDataRequest {
                path: "/app/cfg".into(),
                data: Some(Bytes::from_static(b"v2")),
                version: -1,
            }),
        );
        let mut seq = Vec::new();
        for _ in 0..3 {
            let (h, r) = a.call(create("/app/seq-", b"", 2));
            assert_eq!(h.err, 0);
            let zk_jute::Response::Create(c) = r else {
                panic!("{r:?}")
            };
            seq.push(c.path);
        }
        ok(&mut a, create("/app/eph-a", b"a", 1));
        ok(
            &mut a,
            Request::Multi(vec![
                MultiOp::Create(CreateRequest {
                    path: "/m1".into(),
                    data: None,
                    acl: zk_tree::open_acl_unsafe(),
                    flags: 0,
                }),
                MultiOp::Create(CreateRequest {
                    path: "/m2".into(),
                    data: Some(Bytes::from_static(b"\x00\x01binary")),
                    acl: zk_tree::open_acl_unsafe(),
                    flags: 0,
                }),
            ]),
        );
        ok(
            &mut a,
            Request::Delete(DeleteRequest {
                path: seq[0].clone(),
                version: -1,
            }),
        );
        ok(
            &mut a,
            Request::SetAcl(SetAclRequest {
                path: "/m1".into(),
                acl: zk_tree::read_acl_unsafe(),
                version: -1,
            }),
        );
        assert_eq!(zk_tree::read_acl_unsafe()[0].perms, perms::READ);
        let mut b = Client::connect(addr);
        ok(&mut b, create("/app/eph-b", b"b", 1));
        b.close();
        ok(&mut a, create("/big", b"", 0));
        for i in 0..150 {
            ok(&mut a, create(&format!("/big/n{i:03}"), &big, 0));
        }
        let session_a = a.session_id();
        settle(dir.path());
        drop(a); // the session outlives the connection
        server.shutdown();

        let server = Server::start(config(dir.path())).unwrap();
        let mut c = Client::connect(server.local_addr());
        ok(&mut c, create("/after-restart", b"epoch 2", 0));
        ok(&mut c, create("/big2", b"", 0));
        for i in 0..150 {
            ok(&mut c, create(&format!("/big2/n{i:03}"), &big, 0));
        }
        ok(&mut c, create("/app/eph-c", b"c", 1));
        // Read-only inspection next to a running server: no lock taken, the server goes on.
        let live = run(&["log", dir.path().to_str().unwrap()]);
        assert!(live.stdout.contains("EOF reached after"), "{live:?}");
        ok(&mut c, create("/after-inspection", b"", 0));
        let session_c = c.session_id();
        let last_zxid = c.last_zxid();
        settle(dir.path());
        drop(c);
        server.shutdown();
        // For a look by hand: ZK_INSPECT_KEEP=<dir> keeps a copy of the data directory.
        if let Some(keep) = std::env::var_os("ZK_INSPECT_KEEP") {
            std::fs::create_dir_all(&keep).unwrap();
            for e in std::fs::read_dir(dir.path()).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), Path::new(&keep).join(e.file_name())).unwrap();
            }
        }
        Golden {
            dir,
            session_a,
            session_c,
            last_zxid,
            seq0: seq[0].clone(),
        }
    })
}

/// A private copy of the golden directory.
fn copy_golden() -> tempfile::TempDir {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(g.dir.path()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Output for an assertion message: the last 60 lines, each cut to 200 characters.
fn short(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    let from = lines.len().saturating_sub(60);
    lines[from..]
        .iter()
        .map(|l| l.chars().take(200).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout (tail) ---\n{}\n--- stderr ---\n{}",
            self.code,
            short(&self.stdout),
            short(&self.stderr)
        )
    }
}

fn run(args: &[&str]) -> Run {
    let o = Command::new(BIN).args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn files_with(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            let hex = name.strip_prefix(prefix)?;
            Some((u64::from_str_radix(hex, 16).ok()?, p))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every txn of the log as (zxid, file, offset, op, path), from `log --json`.
fn txns(dir: &Path) -> Vec<(u64, String, u64, String, Option<String>)> {
    let r = run(&["log", "--json", s(dir)]);
    r.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "txn")
        .map(|v| {
            (
                u64::from_str_radix(v["zxid"].as_str().unwrap().trim_start_matches("0x"), 16)
                    .unwrap(),
                v["file"].as_str().unwrap().to_string(),
                v["offset"].as_u64().unwrap(),
                v["op"].as_str().unwrap().to_string(),
                v["path"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn log_lists_every_txn_as_the_toolkit() {
    let g = golden();
    let dir = g.dir.path();
    let r = run(&["log", s(dir)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "", "no progress line for a quick run");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let txn_lines: Vec<&&str> = lines.iter().filter(|l| l.contains(" session 0x")).collect();
    // Both runs: createSession and the creates of each, the multi, the closeSession.
    assert!(txn_lines.len() > 300, "{}", txn_lines.len());
    // Every zxid once, in order, contiguous across the restart.
    let zxids: Vec<u64> = txn_lines
        .iter()
        .map(|l| {
            let z = l
                .split(" zxid 0x")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            u64::from_str_radix(z, 16).unwrap()
        })
        .collect();
    assert!(
        zxids.windows(2).all(|w| w[1] == w[0] + 1),
        "{:?}",
        &zxids[..5]
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("EOF reached after {} txns.", txn_lines.len())
    );
    let want_create = " create '/app,#68656c6c6f,v{s{31,s{'world,'anyone}}},F,";
    assert!(
        txn_lines.iter().any(|l| l.contains(want_create)
            && l.contains(&format!("session 0x{:x} cxid 0x", g.session_a))),
        "{want_create}"
    );
    let create_seq = format!(" create '{},,", g.seq0);
    let delete_seq = format!(" delete '{}", g.seq0);
    for needle in [
        " createSession 30000",
        " setData '/app/cfg,#7632,1",
        create_seq.as_str(),
        " multi create:'/m1,",
        ";create:'/m2,#000162696e617279,",
        delete_seq.as_str(),
        " setACL '/m1,v{s{1,s{'world,'anyone}}},1",
        " closeSession v{'/app/eph-b}",
        " create '/after-restart,",
    ] {
        assert!(r.stdout.contains(needle), "missing {needle}");
    }
    // A header per segment.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("zk-txnlog segment "))
            .count(),
        files_with(dir, "log.").len()
    );
    assert!(files_with(dir, "log.").len() >= 2, "the log rolled");
    // The last txn is the server's last zxid.
    assert!(
        txn_lines
            .last()
            .unwrap()
            .contains(&format!(" zxid 0x{:x} ", g.last_zxid))
    );
    // One segment file on its own works too.
    let first = &files_with(dir, "log.")[0];
    let r1 = run(&["log", s(first)]);
    assert_eq!(r1.code, 0, "{r1:?}");
    assert!(r1.stdout.contains(" create '/app,"));
}

#[test]
fn log_filters_by_zxid_session_and_path() {
    let g = golden();
    let dir = s(g.dir.path());
    let count = |r: &Run| {
        r.stdout
            .lines()
            .filter(|l| l.contains(" session 0x"))
            .count()
    };

    let r = run(&["log", "--session", &format!("0x{:x}", g.session_c), dir]);
    assert_eq!(r.code, 0);
    assert_eq!(count(&r), 1 + 2 + 150 + 2, "{}", short(&r.stdout)); // createSession .. /after-inspection
    assert!(
        r.stdout
            .lines()
            .filter(|l| l.contains(" session 0x"))
            .all(|l| l.contains(&format!("session 0x{:x} ", g.session_c)))
    );
    assert!(r.stdout.contains("matched the filters"));

    let r = run(&["log", "--path", "/app/", dir]);
    let n = count(&r);
    // cfg x2, seq x3, delete seq, eph-a, eph-b, closeSession of B (deletes /app/eph-b), eph-c.
    assert_eq!(n, 10, "{}", short(&r.stdout));

    let from = format!("0x{:x}", g.last_zxid - 4);
    let to = (g.last_zxid - 2).to_string();
    let r = run(&["log", "--from", &from, "--to", &to, dir]);
    assert_eq!(count(&r), 3);
    assert!(r.stdout.contains(&format!(" zxid {from} ")));
    assert!(
        r.stdout
            .contains(&format!(" zxid 0x{:x} ", g.last_zxid - 2))
    );

    let bad = run(&["log", "--from", "zz", dir]);
    assert_eq!(bad.code, 64);
    assert!(bad.stderr.contains("not a number"), "{bad:?}");
}

#[test]
fn log_json_parses_and_agrees_with_the_text() {
    let g = golden();
    let dir = s(g.dir.path());
    let text = run(&["log", dir]);
    let r = run(&["log", "--json", dir]);
    assert_eq!(r.code, 0, "{r:?}");
    let values: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let txns: Vec<_> = values.iter().filter(|v| v["kind"] == "txn").collect();
    let summary = values.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["txns"].as_u64().unwrap(), txns.len() as u64);
    assert_eq!(
        text.stdout.lines().last().unwrap(),
        format!("EOF reached after {} txns.", txns.len())
    );
    let m2 = txns.iter().find(|t| t["op"] == "multi").expect("the multi");
    assert_eq!(m2["txn"]["ops"][1]["path"], "/m2");
    assert_eq!(m2["txn"]["ops"][1]["data_hex"], "000162696e617279");
    let app = txns.iter().find(|t| t["path"] == "/app").unwrap();
    assert_eq!(app["txn"]["data"], "hello");
    assert_eq!(app["session"], format!("0x{:x}", g.session_a));
}

/// Paths and sessions of a snapshot read directly with zk-txnlog + zk-tree.
fn snapshot_truth(file: &Path) -> (BTreeSet<String>, Vec<(i64, i32)>) {
    let key = u64::from_str_radix(
        file.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("snapshot."),
        16,
    )
    .unwrap();
    let r = zk_txnlog::SnapshotStore::open_read_only(file.parent().unwrap())
        .open_snapshot(key)
        .unwrap();
    let tree = zk_tree::Tree::read_snapshot(
        std::io::BufReader::new(r),
        zk_tree::TreeConfig {
            skip_acl: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut paths = BTreeSet::new();
    let mut stack = vec!["/".to_string()];
    let auth = zk_tree::Auth::default();
    while let Some(p) = stack.pop() {
        let (children, _) = tree.get_children(&p, &auth, None).unwrap();
        for c in children {
            stack.push(if p == "/" {
                format!("/{c}")
            } else {
                format!("{p}/{c}")
            });
        }
        paths.insert(p);
    }
    (paths, tree.sessions())
}

#[test]
fn snapshot_lists_every_node_and_session() {
    let g = golden();
    let snaps = files_with(g.dir.path(), "snapshot.");
    assert!(snaps.len() >= 3, "{snaps:?}");
    let newest = snaps.last().unwrap();
    let r = run(&["snapshot", s(newest)]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    let (truth, sessions) = snapshot_truth(newest);
    assert_eq!(lines[0], format!("ZNode Details (count={}):", truth.len()));
    let listed: BTreeSet<String> = lines
        .windows(2)
        .filter(|w| w[0] == "----" && w[1].starts_with('/'))
        .map(|w| w[1].to_string())
        .collect();
    assert_eq!(listed, truth);
    assert!(listed.contains("/app/cfg") && listed.contains("/zookeeper/quota"));
    assert!(
        r.stdout
            .contains("\n/app/cfg\n  cZxid = 0x00000000000003\n  ctime = ")
    );
    assert!(r.stdout.contains("  dataVersion = 1\n  aclVersion = 0\n  ephemeralOwner = 0x00000000000000\n  dataLength = 2\n"));
    let sess_at = lines
        .iter()
        .position(|l| *l == "Session Details (sid, timeout, ephemeralCount):")
        .unwrap();
    let listed_sessions: Vec<&str> = lines[sess_at + 1..]
        .iter()
        .take_while(|l| l.starts_with("0x"))
        .copied()
        .collect();
    assert_eq!(listed_sessions.len(), sessions.len());
    assert!(
        listed_sessions.contains(&format!("0x{:014x}, 30000, 1", g.session_a).as_str()),
        "{listed_sessions:?}"
    );
    assert!(r.stdout.contains("\nTree digest (version 2): "));
    let last = lines.last().unwrap();
    assert!(last.starts_with("Last zxid: 0x"), "{last}");

    // --data: base64 of the data; --json: a tree that parses, with every node.
    let d = run(&["snapshot", "--data", s(newest)]);
    assert!(d.stdout.contains("\n/app\n") && d.stdout.contains("  data = aGVsbG8=\n"));
    let j = run(&["snapshot", "--json", "-d", s(newest)]);
    assert_eq!(j.code, 0);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![&v["tree"]];
    while let Some(n) = stack.pop() {
        seen.insert(n["path"].as_str().unwrap().to_string());
        stack.extend(n["children"].as_array().unwrap());
    }
    assert_eq!(seen, truth);
    assert_eq!(v["sessions"].as_array().unwrap().len(), sessions.len());
    assert!(v["digest"].is_i64());

    // The summary: every /big child, 6000 bytes each.
    let sm = run(&["summary", s(newest), "/big", "1"]);
    assert_eq!(sm.code, 0, "{sm:?}");
    assert!(sm.stdout.starts_with("/big\n   children: 150\n   data: 900000\n-- /big/n000\n--   children: 0\n--   data: 6000\n"), "{}", sm.stdout);
    let sm0 = run(&["summary", s(newest)]);
    assert!(sm0.stdout.starts_with("/\n   children: "));
    assert!(sm0.stdout.contains("\n-- /big\n--   children: 150\n"));
}

#[test]
fn verify_passes_on_a_clean_dir_and_names_the_recovery_point() {
    let g = golden();
    let r = run(&["verify", s(g.dir.path())]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("verify: OK"));
    assert!(
        r.stdout.contains(&format!(
            "a server would recover to zxid 0x{:x}",
            g.last_zxid
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("(newest valid: recovery starts here)"));
    // The same state the real server recovers: start it on a copy and compare.
    let copy = copy_golden();
    let expect = r
        .stdout
        .lines()
        .find(|l| l.contains("recovered state:"))
        .unwrap()
        .to_string();
    let server = Server::start(config(copy.path())).unwrap();
    let summary = server.recovery_summary().to_string();
    server.shutdown();
    assert!(
        summary.contains(&format!("last zxid 0x{:x}", g.last_zxid)),
        "{summary}"
    );
    let znodes: &str = summary
        .split(", ")
        .find(|p| p.ends_with(" znodes"))
        .unwrap();
    assert!(
        expect.contains(&format!("recovered state: {znodes}, ")),
        "{expect} vs {summary}"
    );
}

/// The offset of the frame of the last txn of the newest segment.
fn last_record(dir: &Path) -> (PathBuf, u64, u64, u64) {
    let t = txns(dir);
    let newest = files_with(dir, "log.").pop().unwrap();
    let in_newest: Vec<_> = t.iter().filter(|x| Path::new(&x.1) == newest).collect();
    let last = in_newest.last().unwrap();
    let before = in_newest[in_newest.len() - 2];
    (newest, last.2, last.0, before.0)
}

#[test]
fn torn_tail_is_reported_with_the_recovery_point() {
    let dir = copy_golden();
    let (newest, offset, last_zxid, before) = last_record(dir.path());
    // A crash: no snapshot covers the last txn (the server snapshots on shutdown), so recovery
    // replays the log up to the tear.
    for p in files_with(dir.path(), "snapshot.") {
        let key = u64::from_str_radix(s(&p).rsplit("snapshot.").next().unwrap(), 16).unwrap();
        if key >= before {
            std::fs::remove_file(p).unwrap();
        }
    }
    let recover_to = before;
    // Truncate the newest segment in the middle of its last record.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(offset + 20).unwrap();
    drop(f);

    let v = run(&["verify", s(dir.path())]);
    assert_eq!(v.code, 1, "{v:?}");
    assert!(v.stdout.contains("torn tail"), "{}", short(&v.stdout));
    assert!(
        v.stdout
            .contains(&format!("{} offset {offset}: ", s(&newest))),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains(&format!("a server would recover to zxid 0x{recover_to:x}")),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("verify: 1 warning(s), 0 error(s)"));

    let l = run(&["log", s(dir.path())]);
    assert_eq!(l.code, 1, "{l:?}");
    assert!(!l.stdout.contains(&format!(" zxid 0x{last_zxid:x} ")));
    assert!(l.stdout.contains(&format!(
        "WARNING - {} offset {offset}: torn tail",
        s(&newest)
    )));
    assert!(l.stdout.contains(&format!(
        "a server recovers the log up to zxid 0x{before:x} (the last intact txn)"
    )));
    let j = run(&["log", "--json", s(dir.path())]);
    let last: serde_json::Value = serde_json::from_str(j.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["log_recovers_to_zxid"], format!("0x{before:x}"));

    // The real server agrees.
    let server = Server::start(config(dir.path())).unwrap();
    let summary = server.recovery_summary().to_string();
    server.shutdown();
    assert!(
        summary.contains(&format!("last zxid 0x{recover_to:x}")),
        "{summary}"
    );
}

#[test]
fn corrupt_record_in_the_middle_fails_verify_naming_file_and_offset() {
    let dir = copy_golden();
    let t = txns(dir.path());
    let oldest = files_with(dir.path(), "log.").remove(0);
    let in_oldest: Vec<_> = t.iter().filter(|x| Path::new(&x.1) == oldest).collect();
    let victim = in_oldest[in_oldest.len() / 2];
    let before = in_oldest[in_oldest.len() / 2 - 1].0;
    let mut bytes = std::fs::read(&oldest).unwrap();
    bytes[victim.2 as usize + 40] ^= 0x55;
    std::fs::write(&oldest, &bytes).unwrap();

    let v = run(&["verify", s(dir.path())]);
    assert_eq!(v.code, 2, "{v:?}");
    let want = format!(
        "ERROR - {} offset {}: corrupt record: crc mismatch",
        s(&oldest),
        victim.2
    );
    assert!(v.stdout.contains(&want), "{want}\n{}", short(&v.stdout));
    assert!(v.stdout.contains(&format!("last good zxid 0x{before:x}")));
    assert!(v.stdout.contains("a server would refuse to start"));

    let l = run(&["log", s(dir.path())]);
    assert_eq!(l.code, 2);
    assert!(l.stdout.contains(&want));
    let g = golden();
    assert!(
        l.stdout.contains(&format!(" zxid 0x{:x} ", g.last_zxid)),
        "later segments are still listed"
    );
}

#[test]
fn wrong_truncated_and_corrupt_files_are_clear_errors() {
    let dir = copy_golden();
    let d = dir.path();
    let txt = d.join("notes.txt");
    std::fs::write(&txt, "hello, this is not a log\n").unwrap();
    let r = run(&["log", s(&txt)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("is not a zk-txnlog segment (magic ZKTXNLG1): unknown magic at offset 0"),
        "{r:?}"
    );
    let r = run(&["snapshot", s(&txt)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not a zk-txnlog snapshot"), "{r:?}");

    let seg = files_with(d, "log.").remove(0);
    let snap = files_with(d, "snapshot.").pop().unwrap();
    let r = run(&["snapshot", s(&seg)]);
    assert!(
        r.stderr.contains("is a txn log segment, not a snapshot"),
        "{r:?}"
    );
    let r = run(&["log", s(&snap)]);
    assert!(
        r.stderr.contains("is a snapshot, not a txn log segment"),
        "{r:?}"
    );
    let r = run(&["log", s(&d.join("log.missing"))]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot open"), "{r:?}");

    // A truncated snapshot and one with a flipped byte.
    let len = std::fs::metadata(&snap).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&snap).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let r = run(&["snapshot", s(&snap)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing trailer"), "{r:?}");
    let other = files_with(d, "snapshot.")[0].clone();
    let mut b = std::fs::read(&other).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&other, &b).unwrap();
    let r = run(&["summary", s(&other)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("content crc mismatch"), "{r:?}");
    // verify reports both and falls back to a valid snapshot, as a server would.
    let v = run(&["verify", s(d)]);
    assert_eq!(v.code, 1, "{v:?}");
    assert_eq!(
        v.stdout.matches("INVALID").count(),
        2,
        "{}",
        short(&v.stdout)
    );
    // A segment truncated inside its header.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(30).unwrap();
    drop(f);
    let r = run(&["log", s(&seg)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("offset 0: not a readable segment"),
        "{r:?}"
    );
    // Usage errors.
    assert_eq!(run(&[]).code, 64);
    assert_eq!(run(&["frobnicate"]).code, 64);
    assert_eq!(run(&["log", "--bogus", s(d)]).code, 64);
    assert_eq!(run(&["verify", s(&txt)]).code, 2);
}

fn fingerprint(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::fs::read(e.path()).unwrap().hash(&mut h);
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), m.modified().unwrap(), h.finish()),
            )
        })
        .collect()
}

#[test]
fn never_writes_to_the_directory_it_inspects() {
    let dir = copy_golden();
    let d = dir.path();
    // Damage it first so every error path runs too.
    let (newest, offset, _, _) = last_record(d);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(offset + 7).unwrap();
    drop(f);
    std::fs::write(d.join("snapshot.ffff.tmp"), b"partial").unwrap();
    let before = fingerprint(d);
    let snap = files_with(d, "snapshot.").pop().unwrap();
    for args in [
        vec!["verify", s(d)],
        vec!["log", s(d)],
        vec!["log", "--json", s(d)],
        vec!["log", s(&newest)],
        vec!["snapshot", s(&snap)],
        vec!["snapshot", "--json", "--data", s(&snap)],
        vec!["summary", s(&snap), "/", "3"],
    ] {
        let r = run(&args);
        assert!(r.code == 0 || r.code == 1, "{args:?}: {r:?}");
    }
    assert_eq!(fingerprint(d), before);
}

#[test]
fn progress_line_on_stderr_for_slow_files() {
    let g = golden();
    let seg = files_with(g.dir.path(), "log.").remove(0);
    let snap = files_with(g.dir.path(), "snapshot.").pop().unwrap();
    for (args, label) in [
        (vec!["log", s(&seg)], format!("reading {}: ", s(&seg))),
        (
            vec!["snapshot", s(&snap)],
            format!("loading {}: ", s(&snap)),
        ),
    ] {
        let o = Command::new(BIN)
            .args(&args)
            .env("ZK_INSPECT_PROGRESS_AFTER_MS", "0")
            .output()
            .unwrap();
        assert!(o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with(&label) && err.contains(" MiB, "), "{err}");
        assert!(err.contains(": done in "), "{err}");
        // Standard output is unaffected.
        assert!(!String::from_utf8_lossy(&o.stdout).contains("MiB"));
    }
}

/// Never a panic: a real segment and snapshot cut at many points, and garbage after a valid
/// magic, give a clear message and an exit code, never a crash.
#[test]
fn damaged_files_never_panic() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let seg = std::fs::read(files_with(g.dir.path(), "log.").remove(0)).unwrap();
    let snap_path = files_with(g.dir.path(), "snapshot.").remove(0);
    let snap_name = snap_path.file_name().unwrap().to_owned();
    let snap = std::fs::read(&snap_path).unwrap();
    // The content of a snapshot, for containers that verify around damaged content.
    let key = u64::from_str_radix(s(&snap_path).rsplit("snapshot.").next().unwrap(), 16).unwrap();
    let mut content = Vec::new();
    std::io::Read::read_to_end(
        &mut zk_txnlog::SnapshotStore::open_read_only(g.dir.path())
            .open_snapshot(key)
            .unwrap(),
        &mut content,
    )
    .unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let check = |args: &[&str]| {
        let r = run(args);
        assert!(matches!(r.code, 0..=2), "{args:?}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{args:?}: {r:?}");
    };
    for i in 0..24 {
        let cut = (rnd() % 70_000) as usize;
        let mut b = seg[..cut.min(seg.len())].to_vec();
        if i % 2 == 1 && b.len() > 80 {
            let at = 64 + (rnd() as usize % (b.len() - 64));
            b[at] ^= (rnd() % 255 + 1) as u8;
        }
        let p = dir.path().join("log.1");
        std::fs::write(&p, &b).unwrap();
        check(&["log", s(&p)]);
        check(&["log", "--json", s(dir.path())]);
        check(&["verify", s(dir.path())]);
        let mut b = snap[..(rnd() as usize % snap.len())].to_vec();
        if i % 2 == 1 {
            b.extend((0..200).map(|_| rnd() as u8));
        }
        let p = dir.path().join(&snap_name);
        std::fs::write(&p, &b).unwrap();
        check(&["snapshot", s(&p)]);
        check(&["summary", s(&p), "/", "2"]);
        // A container that verifies, around content cut short or with a flipped byte.
        let cdir = tempfile::tempdir().unwrap();
        let mut c = content[..(rnd() as usize % content.len())].to_vec();
        if i % 2 == 1 && !c.is_empty() {
            let at = rnd() as usize % c.len();
            c[at] ^= 0x40;
        }
        let mut w = zk_txnlog::SnapshotStore::open(cdir.path())
            .unwrap()
            .create(key)
            .unwrap();
        std::io::Write::write_all(&mut w, &c).unwrap();
        let p = w.finish().unwrap().path;
        check(&["snapshot", "--json", s(&p)]);
        let r = run(&["snapshot", s(&p)]);
        assert!(
            r.code == 0 || r.stderr.contains("snapshot"),
            "a clear message: {r:?}"
        );
    }
    let mut junk = b"ZKTXNLG1".to_vec();
    junk.extend((0..5000).map(|_| rnd() as u8));
    let p = dir.path().join("log.1");
    std::fs::write(&p, &junk).unwrap();
    check(&["log", s(&p)]);
    check(&["verify", s(dir.path())]);
}

/// Applies `body` as txn `zxid` of session 0x42 to `tree`; returns its header.
fn apply_txn(tree: &zk_tree::Tree, zxid: i64, body: &zk_jute::TxnBody) -> zk_jute::TxnHeader {
    let h = zk_jute::TxnHeader {
        client_id: 0x42,
        cxid: 1,
        zxid,
        time: 1_700_000_000_000,
        txn_type: body.txn_type().code(),
    };
    tree.apply(&h, body);
    h
}

/// A small Apache data directory built with zk-apache's encoders: a fuzzy snapshot named 0x2
/// that already holds txn 0x3 (an ephemeral of the session it lists; its digest section is at
/// 0x3), and a log of txns 0x1-0x4, each with its digest.
fn apache_dir() -> (tempfile::TempDir, zk_tree::Tree) {
    use zk_jute::{CreateSessionTxn, CreateTxn, SetDataTxn, TxnBody};
    let tmp = tempfile::tempdir().unwrap();
    let v2 = tmp.path().join("version-2");
    std::fs::create_dir(&v2).unwrap();
    let tree = zk_tree::Tree::new(zk_tree::TreeConfig::default());
    let txn = |zxid: i64, body: TxnBody| {
        let h = apply_txn(&tree, zxid, &body);
        let mut b = bytes::BytesMut::new();
        body.write_record(&h, &mut b);
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&tree.digest().to_be_bytes());
        b.freeze()
    };
    let create = |path: &str, ephemeral: bool, pcv: i32| {
        TxnBody::Create(CreateTxn {
            path: path.into(),
            data: Some(Bytes::from_static(b"d")),
            acl: zk_tree::open_acl_unsafe(),
            ephemeral,
            parent_c_version: pcv,
        })
    };
    let mut log = vec![txn(
        1,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
    )];
    log.push(txn(2, create("/app", false, 1)));
    log.push(txn(3, create("/app/e", true, 1)));
    let snap = zk_apache::write::snapshot_stream(&tree, Some((3, tree.digest())));
    std::fs::write(v2.join("snapshot.2"), snap).unwrap();
    let set = SetDataTxn {
        path: "/app".into(),
        data: None,
        version: 1,
    };
    log.push(txn(4, TxnBody::SetData(set)));
    std::fs::write(v2.join("log.1"), zk_apache::write::log_file(&log[..])).unwrap();
    std::fs::write(v2.join("currentEpoch"), "0").unwrap();
    (tmp, tree)
}

#[test]
fn apache_files_are_read_in_the_same_shapes() {
    // Proves `log`, `snapshot` and `verify` read Apache ZooKeeper's files (by magic and name):
    // every txn listed, the snapshot's nodes and session, the take-over replayed to the last
    // zxid with its digests checked; a damaged entry is an error with file and offset.
    let (tmp, tree) = apache_dir();
    let d = tmp.path();
    let v2 = d.join("version-2");
    let r = run(&["log", s(&v2.join("log.1"))]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("with dbid 0 txnlog format version 2"),
        "{r:?}"
    );
    assert!(r.stdout.contains("zxid 0x4 setData"), "{r:?}");
    assert!(r.stdout.contains("EOF reached after 4 txns."), "{r:?}");
    let r = run(&["log", "--json", s(d)]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines[0]["format"], "apache", "{r:?}");
    let zxids: Vec<String> = lines
        .iter()
        .filter(|v| v["kind"] == "txn")
        .map(|v| v["zxid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(zxids, ["0x1", "0x2", "0x3", "0x4"]);

    let r = run(&["snapshot", s(&v2.join("snapshot.2"))]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\n/app\n"), "{r:?}");
    assert!(r.stdout.contains("0x00000000000042, 30000, 1"), "{r:?}");

    let r = run(&["verify", s(d)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("recovery: ") && r.stdout.contains("+ 2 txns from the logs"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("digests: 3 checked, 0 mismatches"),
        "{r:?}"
    );
    let want = format!("digest {}", tree.digest());
    assert!(r.stdout.contains(&want), "{want}: {r:?}");
    assert!(r.stdout.contains("take it over at zxid 0x4"), "{r:?}");

    // A damaged first entry: CRC failure with entries after it.
    let mut bytes = std::fs::read(v2.join("log.1")).unwrap();
    bytes[16 + 12 + 2] ^= 1;
    std::fs::write(v2.join("log.1"), bytes).unwrap();
    let r = run(&["verify", s(d)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("log.1 offset 16: "), "{r:?}");
    assert!(r.stdout.contains("CRC check failed"), "{r:?}");
    let r = run(&["log", s(&v2.join("log.1"))]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// An Apache data directory holding a TTL node (owner 0xff..): zk-server keeps it with
/// extendedTypesEnabled=true and, as Apache, reads it as an ephemeral of a dead session
/// without; `verify` says which it assumed (regression: it always assumed the latter, so its
/// znode count disagreed with what zk-server took over under such a zoo.cfg).
#[test]
fn verify_of_an_apache_dir_with_ttl_nodes_follows_extended_types() {
    use zk_jute::{CreateSessionTxn, CreateTtlTxn, TxnBody};
    let tmp = tempfile::tempdir().unwrap();
    let v2 = tmp.path().join("version-2");
    std::fs::create_dir(&v2).unwrap();
    let tree = zk_tree::Tree::new(zk_tree::TreeConfig {
        extended_types: true,
        ..zk_tree::TreeConfig::default()
    });
    let apply = |zxid: i64, body: TxnBody| {
        apply_txn(&tree, zxid, &body);
    };
    apply(
        1,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
    );
    apply(
        2,
        TxnBody::CreateTtl(CreateTtlTxn {
            path: "/t".into(),
            data: Some(Bytes::from_static(b"d")),
            acl: zk_tree::open_acl_unsafe(),
            parent_c_version: 1,
            ttl: 3_600_000,
        }),
    );
    let snap = zk_apache::write::snapshot_stream(&tree, Some((2, tree.digest())));
    std::fs::write(v2.join("snapshot.2"), snap).unwrap();

    let plain = run(&["verify", s(tmp.path())]);
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(
        plain
            .stdout
            .contains("dead session 0xff0000000036ee80: its 1 ephemerals deleted"),
        "{plain:?}"
    );
    assert!(plain.stdout.contains("see --extended-types"), "{plain:?}");
    let extended = run(&["verify", "--extended-types", s(tmp.path())]);
    assert_eq!(extended.code, 0, "{extended:?}");
    assert!(!extended.stdout.contains("dead session"), "{extended:?}");
    let count = |r: &Run| {
        r.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("recovered state: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{r:?}"))
    };
    assert_eq!(count(&extended), count(&plain) + 1, "{extended:?}");
}
