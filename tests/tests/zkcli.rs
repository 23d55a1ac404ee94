//! zkCli.sh (the Java CLI from the Debian package), scripted as a new user
//! types it (sample-configs.md): `create -e /firstNode "first"`, `set`,
//! `get` (prints `test`), `ls /` (prints `[firstNode, zookeeper]`).
//!
//! zkCli.sh reads commands line by line from stdin when stdin is not a tty
//! (JLine is disabled), queues them until the session is connected and exits
//! at end of input. One JVM start costs ~0.5-1.5 s, so everything runs in one
//! process.

use zk_integration::{ApacheZk, OurZk, ZkServer};

/// The lines of `server`'s mntr that contain `needle`, in mntr's order.
fn mntr_lines(server: &ZkServer, needle: &str) -> Vec<String> {
    let mntr = zk_integration::server::four_letter(server.addr(), "mntr").expect("mntr");
    mntr.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn run_zkcli(server: &ZkServer, script: &str) -> String {
    let (ok, text) = zk_integration::zkcli::run(&server.host_port(), script, None);
    assert!(ok, "zkCli.sh failed:\n{text}");
    text
}

fn first_session(server: &ZkServer) {
    let out = run_zkcli(
        server,
        "create -e /firstNode \"first\"\nset /firstNode test\nget /firstNode\nls /\n\
         get -s /firstNode\ncreate /p\ncreate -s /p/seq x\nls /p\nstat /p\ndelete /p\n\
         deleteall /p\nls /\n",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let find = |want: &str| {
        assert!(
            lines.contains(&want),
            "zkCli.sh against {}: expected a line `{want}` in:\n{out}",
            server.flavor()
        )
    };
    find("Created /firstNode");
    find("test");
    find("[firstNode, zookeeper]");
    find("dataVersion = 1");
    find("dataLength = 4");
    find("Created /p");
    find("Created /p/seq0000000000");
    find("[seq0000000000]");
    find("numChildren = 1");
    find("Node not empty: /p");
    find("[firstNode, zookeeper]");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ephemeralOwner = 0x") && *l != "ephemeralOwner = 0x0"),
        "get -s of an ephemeral must show its owner:\n{out}"
    );
}

#[test]
fn zkcli_first_session_apache() {
    first_session(&ApacheZk::start());
}

#[test]
fn zkcli_first_session_ours() {
    first_session(&OurZk::start(""));
}

/// zkCli's `setquota` / `listquota`, before and after a restart: the
/// `Output stat` lines (the server-kept usage) as printed.
fn quota_usage(server: &mut ZkServer) -> Vec<String> {
    let script = "create /q one\nsetquota -n 10 /q\ncreate /q/a abc\ncreate /q/b\n\
                  create /q/b/c 12345\nset /q/a abcdefgh\ndelete /q/b/c\nlistquota /q\n";
    let mut lines = output_lines(&run_zkcli(server, script));
    server.restart();
    lines.extend(output_lines(&run_zkcli(
        server,
        "create /q/d xy\nlistquota /q\n",
    )));
    // A second restart loads a snapshot that holds the quota (Apache takes
    // one as it starts), so its recount is what shows.
    server.restart();
    lines.extend(output_lines(&run_zkcli(
        server,
        "delete /q/d\nlistquota /q\n",
    )));
    lines
}

fn output_lines(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Output "))
        .map(str::to_string)
        .collect()
}

/// Regression: our server left `zookeeper_stats` as zkCli wrote it
/// (`count=0,bytes=0`), so `listquota` never showed the usage Apache shows.
#[test]
fn zkcli_quota_usage_matches_apache() {
    let ours = quota_usage(&mut OurZk::start(""));
    let apache = quota_usage(&mut ApacheZk::start());
    assert_eq!(ours, apache, "listquota: ours vs Apache");
    assert_eq!(
        ours,
        [
            "Output quota for /q count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            "Output stat for /q count=3,bytes=11",
            "Output quota for /q count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            "Output stat for /q count=4,bytes=13",
            "Output quota for /q count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            "Output stat for /q count=3,bytes=11",
        ]
    );
}

/// enforceQuota=true: hard limits (`setquota -N` / `-B`) refuse creates
/// and setDatas; what zkCli prints of it.
fn enforced_quota(server: &ZkServer) -> Vec<String> {
    let script = "create /q\nsetquota -N 3 /q\ncreate /q/a\ncreate /q/b\ncreate /q/c\n\
                  setquota -B 5 /q\nset /q/a 12345\nset /q/b 6\ncreate /free 0123456789\n\
                  delete /q/b\ncreate /q/c\nlistquota /q\n";
    let mut lines: Vec<String> = run_zkcli(server, script)
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Created ")
                || l.starts_with("Output ")
                || l.to_lowercase().contains("quota")
        })
        .filter(|l| !l.contains("WatchedEvent") && !l.contains(" INFO ") && !l.contains(" WARN "))
        .map(str::to_string)
        .collect();
    // The refusals counted per namespace (Apache's counter set).
    lines.extend(mntr_lines(server, "quota_exceeded"));
    lines
}

/// Regression: enforceQuota was ignored (QUOTAEXCEEDED never returned).
#[test]
fn zkcli_enforced_quota_matches_apache() {
    let opts = || zk_integration::server::ServerOptions::cfg("enforceQuota=true");
    let ours = enforced_quota(&OurZk::start_with(opts()));
    let apache = enforced_quota(&ApacheZk::start_with(opts()));
    assert_eq!(ours, apache, "zkCli with enforceQuota: ours vs Apache");
    assert!(
        ours.iter()
            .filter(|l| l.contains("Quota has exceeded"))
            .count()
            == 2
            && ours.contains(&"zk_q_quota_exceeded_error_per_namespace\t2".to_string()),
        "two writes refused, and counted: {ours:#?}"
    );
}

/// mntr's `read_per_namespace` / `write_per_namespace` lines after zkCli's
/// writes and reads (multi-byte names count in UTF-16 units, as Java).
fn namespace_lines(server: &ZkServer) -> Vec<String> {
    let script = "create /app x\ncreate /app/b y\nset /app/b zzz\nget /app/b\nls /app\nstat /app\n\
                  create /other\nget /missing\ncreate /é\ncreate /é/ü 12\nls /é\ndelete /é/ü\n\
                  ls /\n";
    run_zkcli(server, script);
    let mut lines = mntr_lines(server, "_per_namespace");
    lines.sort();
    lines
}

/// Regression: mntr had no per-namespace byte counts (Apache's
/// `DataTree.updateReadStat` / `updateWriteStat`).
#[test]
fn mntr_namespace_bytes_match_apache() {
    let ours = namespace_lines(&OurZk::start(""));
    let apache = namespace_lines(&ApacheZk::start());
    assert_eq!(ours, apache, "per-namespace mntr lines: ours vs Apache");
    assert!(
        ours.contains(&"zk_sum_app_write_per_namespace\t21".to_string()),
        "{ours:#?}"
    );
}

/// mntr's `node_*_watch_count` summaries after zkCli's watches fire: data,
/// child, exist and persistent-recursive watches, a delete's data and child
/// triggers, and changes nobody watches.
fn watch_count_lines(server: &ZkServer) -> Vec<String> {
    let script = "create /w\nget -w /w\nls -w /w\nset /w x\ncreate /w/c\nstat -w /w/d\n\
                  create /w/d\nget -w /w/d\nls -w /w/d\ndelete /w/d\nset /w y\n\
                  addWatch -m PERSISTENT_RECURSIVE /w\ncreate /w/e\nset /w/e y\ndelete /w/e\n\
                  delete /w/c\n";
    run_zkcli(server, script);
    // zkCli exits without closing its session; the server drops the
    // connection's watches (`zk_watch_count`) when it sees the socket
    // close, which may come after the mntr below: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = mntr_lines(server, "_watch_count");
        if lines.iter().any(|l| l == "zk_watch_count\t0") || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Regression: mntr had no `node_created_watch_count` ... summaries
/// (Apache's WatchManager records how many watchers each trigger fired);
/// and a flaky CI run read `zk_watch_count` before a server had seen
/// zkCli's socket close.
#[test]
fn mntr_watch_counts_match_apache() {
    let mut ours = watch_count_lines(&OurZk::start(""));
    let mut apache = watch_count_lines(&ApacheZk::start());
    ours.sort();
    apache.sort();
    assert_eq!(ours, apache, "node_*_watch_count: ours vs Apache");
    assert!(
        ours.contains(&"zk_cnt_node_deleted_watch_count\t6".to_string()),
        "{ours:#?}"
    );
}

/// `addauth` as zkCli sends it: digest credentials without a ':' (Apache's
/// DigestAuthenticationProvider takes any bytes: the whole string is the
/// user) and an unknown scheme (AUTHFAILED), and what mntr counts of them.
fn addauth_lines(server: &ZkServer) -> Vec<String> {
    let mut lines = Vec::new();
    for script in [
        "addauth digest nocolon\ncreate /mine x auth::cdrwa\ngetAcl /mine\nls /\n",
        "addauth foo bar\nls /\n",
    ] {
        let (ok, out) = zk_integration::zkcli::run(&server.host_port(), script, None);
        lines.push(format!("exit ok: {ok}"));
        lines.extend(
            out.lines()
                .map(str::trim)
                .filter(|l| {
                    l.starts_with('[')
                        || l.starts_with('\'')
                        || l.starts_with("Created")
                        || l.contains("AuthFailed")
                        || l.contains("ConnectionLoss")
                })
                .map(str::to_string),
        );
    }
    lines.extend(mntr_lines(server, "auth_failed"));
    lines
}

/// Regression: a digest addauth without ':' failed (AUTHFAILED and a
/// closed connection) where Apache authenticates it, and failed addauths
/// were counted in zk_auth_failed_count, which Apache keeps for TLS
/// handshake failures.
#[test]
fn addauth_matches_apache() {
    let ours = addauth_lines(&OurZk::start(""));
    let apache = addauth_lines(&ApacheZk::start());
    assert_eq!(ours, apache, "addauth: ours vs Apache");
    assert!(
        ours.iter().any(|l| l.starts_with("'digest,'nocolon:")),
        "{ours:#?}"
    );
}

/// Regression: whoami named a digest user with its password hash
/// (`digest: bob:ttt4...`, Apache: `digest: bob`) and listed the ids in the
/// order they were added, where Apache lists its hash set's order.
#[test]
fn whoami_matches_apache() {
    let script = "addauth digest bob:x\naddauth digest alice:y\naddauth digest u:p\nwhoami\n";
    let lines = |server: &ZkServer| -> Vec<String> {
        let out = run_zkcli(server, script);
        out.lines()
            .map(str::trim)
            .skip_while(|l| *l != "Auth scheme: User")
            .take_while(|l| l.contains(':'))
            .map(str::to_string)
            .collect()
    };
    let ours = lines(&OurZk::start(""));
    let apache = lines(&ApacheZk::start());
    assert_eq!(ours, apache, "whoami: ours vs Apache");
    assert_eq!(ours.len(), 5, "{ours:#?}");
    assert!(ours.contains(&"digest: bob".to_string()), "{ours:#?}");
}
