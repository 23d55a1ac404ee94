//! kazoo's own test suite (the `kazoo.tests` package pip installs, ~490
//! tests: recipes, watchers, caches, transactions, session expiry, SASL,
//! servers stopped and restarted under the client) against a 3-server
//! ensemble of ours, and against a mixed one (ours as server 1, Apache
//! ZooKeeper 3.8 as servers 2 and 3). kazoo's harness starts its cluster
//! with `java ... QuorumPeerMain zoo.cfg`; `tests/python/kazoo_java.sh`,
//! first on its PATH as `java`, runs our zk-server on that zoo.cfg instead
//! (Apache's QuorumPeerMain for the ids in `ZK_APACHE_IDS`). Apache under
//! the same harness passes every test (490 passed, 3 skipped on
//! 2026-12-06); so does ours (TLS client ports, the last tests it failed,
//! were built on 2026-12-06). A test that fails fails these tests.
//!
//! Regressions, each found by a run of the suite: kazoo's harness passes an
//! empty JAAS file to every server, and ours refused to start ("no section
//! Server") where ZooKeeper starts without SASL; in the mixed cluster our
//! server followed a peer that never led (a decision on part of the votes)
//! for initLimit ticks instead of giving up as Apache's learner does, and
//! forwarded a reconfig's null member lists as empty ones, left an Apache
//! leader at its COMMITANDACTIVATE and answered a forwarded reconfig
//! without the new configuration; read-only mode
//! (`TestReadOnlyMode`, which the harness's `-Dreadonlymode.enabled=true`
//! asks of every server) was not built, nor was `reconfig` on our leader
//! (`TestReconfig`).
//!
//! Some of kazoo's tests are left out. One (with its eventlet twin,
//! `TestEventletLock::test_rw_lock`): `test_lock.py::KazooLockTests::test_rw_lock`
//! ([`RACY`]) races on its own condition variable. Its main thread hands the
//! lock from a reader to a writer by setting the reader's event and waiting
//! for `active_thread` to go back to `None`; the reader clears it and
//! releases the lock, and the writer, woken by its watch, takes the lock and
//! sets `active_thread` again. When the writer gets there before the main
//! thread looks (two server round trips against one re-acquisition of a
//! Python lock: a fast server on two loaded cores, the GIL), the main thread
//! waits for a `None` it missed and the writer for an event the main thread
//! will never set. Seen twice in CI runs against our ensemble (2026-12-06,
//! with `py-spy dump`: the writer's thread in `event.wait()` holding the
//! lock, the main thread at `while self.active_thread` after setting the
//! reader's event, the servers idle with every request answered); the whole
//! suite then hung until [`DEADLINE`].
//!
//! So are the two `test_sasl.py` `test_invalid_sasl_auth` tests (DIGEST-MD5
//! through `sasl_options`, and the legacy `sasl` auth data): they expect
//! `start()` to raise `AuthFailedError`, which it does only when kazoo's
//! connection thread loses a race. kazoo reports CONNECTED before its SASL
//! exchange, `start()` wakes and checks `connected`; if the connection
//! thread has taken the server's AUTHFAILED reply by then (one or two round
//! trips: a fast server, a main thread descheduled on two loaded cores),
//! `start()` raises `KazooTimeoutError` instead. A clean-clone CI run failed
//! `TestSASLDigestAuthentication::test_invalid_sasl_auth` against our
//! ensemble once (2026-12-06; the retry passed). `sasl::kazoo_sasl_matches_apache`
//! checks the same wrong password against ours and Apache through kazoo,
//! by the session state kazoo reports rather than by which exception won.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zk_integration::server::APACHE_CLASSPATH;

const DEADLINE: Duration = Duration::from_secs(15 * 60);

/// kazoo's tests that race on their own threads (module doc): not run.
const RACY: &str = "not test_rw_lock and not test_invalid_sasl_auth";

fn python(code: &str) -> Option<String> {
    let out = Command::new("python3").args(["-c", code]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Ports `26500..26525` (kazoo's harness: 10 per server), below the
/// ephemeral range the other tests' servers draw their ports from.
#[test]
fn kazoo_own_suite_against_an_ensemble_of_ours() {
    suite_fails(26500, "", &[]);
}

/// Ours as server 1, Apache as 2 and 3 (which leads: the highest id). A
/// client may connect to any of them (kazoo shuffles its hosts): a reconfig through our follower reaches the Apache
/// leader (which commits it to ours with COMMITANDACTIVATE), read-only
/// mode is asked of our server 1: every test passes. Ports `26600..26625`.
#[test]
fn kazoo_own_suite_against_a_mixed_ensemble() {
    suite_fails(26600, "2 3", &[]);
}

/// Runs the suite: the tests in `expected` must fail, and no other may.
fn suite_fails(port_offset: u16, apache_ids: &str, expected: &[&str]) {
    let tests_dir = python("import kazoo.tests, os; print(os.path.dirname(kazoo.tests.__file__))")
        .expect("kazoo is missing: python3 -m pip install kazoo (scripts/test does this)");
    assert!(
        python(
            "import pytest, objgraph, jks, eventlet, gevent, OpenSSL.crypto as c; \
             assert hasattr(c.X509, 'add_extensions')"
        )
        .is_some(),
        "kazoo's test harness needs pytest, objgraph, pyjks, eventlet, gevent and pyOpenSSL < 24.3 \
         (without eventlet and gevent a third of the suite is skipped): python3 -m pip install \
         pytest objgraph pyjks eventlet gevent 'pyopenssl<24.3' (scripts/test does this)"
    );
    let (status, output) = run_suite(&tests_dir, port_offset, apache_ids);
    let tail = |n: usize| {
        let lines: Vec<&str> = output.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    };
    let status =
        status.unwrap_or_else(|| panic!("kazoo's suite ran past {DEADLINE:?}:\n{}", tail(80)));
    let (failed, passed) = summary(&output);
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        failed,
        expected,
        "kazoo's suite, Apache servers {apache_ids:?} ({status}, {passed} passed): the failures \
         are not exactly the expected ones\n{}",
        tail(120)
    );
    assert!(
        passed >= 400,
        "only {passed} of kazoo's tests passed:\n{}",
        tail(80)
    );
}

/// The classpath of Apache's QuorumPeerMain under kazoo's harness: its
/// config asks for the Netty connection factory and the AdminServer.
fn apache_classpath() -> String {
    format!(
        "{APACHE_CLASSPATH}:/usr/share/java/servlet-api.jar:{}",
        zk_integration::server::netty_classpath()
    )
}

/// Runs pytest on `tests_dir` with the stand-in `java` first on its PATH
/// (the cluster's ports from `port_offset`; `apache_ids` run Apache): its
/// exit status (`None`: killed at [`DEADLINE`]) and its output.
fn run_suite(
    tests_dir: &str,
    port_offset: u16,
    apache_ids: &str,
) -> (Option<std::process::ExitStatus>, String) {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let standin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/kazoo_java.sh");
    std::os::unix::fs::symlink(&standin, bin.join("java")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out_path = dir.path().join("pytest.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfE",
            "-k",
            RACY,
        ])
        .arg(tests_dir)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("ZK_RS_BIN", zk_integration::server::our_binary())
        .env("ZK_APACHE_IDS", apache_ids)
        .env("ZOOKEEPER_PORT_OFFSET", port_offset.to_string())
        .env("ZOOKEEPER_VERSION", "3.8.0")
        .env("ZOOKEEPER_CLASSPATH", apache_classpath())
        // kazoo's suite reads `CI` as "kazoo's own CI": its build checks then
        // compare ZOOKEEPER_VERSION (the harness's config switch) with each
        // server's version, which differs between ours (3.8.4-zk-rs) and
        // Apache's (3.8.0) in a mixed cluster.
        .env_remove("CI")
        .env_remove("ZOOKEEPER_CLUSTER_SIZE")
        .env_remove("ZOOKEEPER_OBSERVER_START_ID")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Its own process group: the servers go with it if it overruns.
        .process_group(0)
        .spawn()
        .expect("python3 is not installed");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > DEADLINE {
            // Not `kill -9 -PGID`: util-linux's kill takes `-PGID` as an
            // option, and a hung suite outlived its deadline (the servers and
            // pytest kept running); the group goes after `--`.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut output = String::new();
    std::fs::File::open(&out_path)
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    (status, output)
}

/// The failed tests (`-rfE`: a line per failure or error, `FAILED
/// <path>kazoo/tests/<file>::<test> - <why>`), as `<file>::<test>`, and how
/// many passed (pytest's last line, `N failed, M passed, ...`).
fn summary(output: &str) -> (BTreeSet<String>, usize) {
    let failed = output
        .lines()
        .filter_map(|l| {
            l.strip_prefix("FAILED ")
                .or_else(|| l.strip_prefix("ERROR "))
        })
        .map(|l| {
            let id = l.split(" - ").next().unwrap_or(l);
            id.rsplit_once("kazoo/tests/")
                .map_or(id, |(_, t)| t)
                .to_string()
        })
        .collect();
    let passed = output
        .lines()
        .rev()
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words
                .iter()
                .position(|w| w.trim_end_matches(',') == "passed")?;
            words.get(i.checked_sub(1)?)?.parse().ok()
        })
        .unwrap_or(0);
    (failed, passed)
}

#[test]
fn the_summary_names_each_failure_and_counts_the_passes() {
    let out = "....F..E\n=== short test summary info ===\n\
               FAILED /x/site-packages/kazoo/tests/test_client.py::TestSSLClient::test_create - kazoo.handlers.threading.KazooTimeoutError: Connection time-out\n\
               ERROR /x/site-packages/kazoo/tests/test_lock.py::TestSemaphore::test_basic\n\
               1 failed, 485 passed, 3 skipped, 1 error in 205.43s (0:03:25)\n";
    let (failed, passed) = summary(out);
    assert_eq!(
        failed.into_iter().collect::<Vec<_>>(),
        [
            "test_client.py::TestSSLClient::test_create",
            "test_lock.py::TestSemaphore::test_basic"
        ]
    );
    assert_eq!(passed, 485);
}
