//! Ensembles of our server, or of ours and Apache ZooKeeper's
//! ([`EnsembleOptions::flavors`]), as real processes on loopback: each
//! ensemble gets its own `127.a.b.sid` addresses with fixed ports, a temp
//! dir per member (zoo.cfg, data/, one output file per start), helpers to
//! start, kill -9, SIGSTOP and restart members, to read `srvr`, and to
//! compare what the members serve ([`assert_same_trees`], [`assert_converged`]).
//!
//! [`Firewall`] cuts members apart with iptables (root only): every member
//! started with [`EnsembleOptions::own_uids`] runs under its own uid, and a
//! mangle rule marks every connection it opens with that uid, so that a rule
//! can drop both directions of any server-to-server connection (the servers
//! connect from 127.0.0.1, so addresses alone do not tell them apart). Every
//! rule carries the comment `zk-test-<pid>-<n>` and is removed on drop.
//! Every process is killed when its [`Member`] drops.

use std::collections::BTreeMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use zk_jute::{ErrorCode, Request, Stat, SyncRequest};

use crate::server::{Flavor, apache_java, our_binary};
use crate::{Client, ClientResult, four_letter};

/// Every member's client port (on its own address).
pub const CLIENT_PORT: u16 = 22181;
/// Every member's quorum port.
pub const QUORUM_PORT: u16 = 22888;
/// Every member's election port.
pub const ELECTION_PORT: u16 = 23888;
/// How long a polled condition may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A `127.a.b` prefix for one ensemble, distinct across the test processes
/// nextest runs at once and across the ensembles of one process.
pub fn loopback_net() -> (u8, u8) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let v = (std::process::id()
        .wrapping_mul(31)
        .wrapping_add(n.wrapping_mul(7919))
        % 65_000) as u16;
    let (a, b) = ((v >> 8) as u8, v as u8);
    (a.max(1), b)
}

/// How to build an ensemble.
#[derive(Debug, Clone, Default)]
pub struct EnsembleOptions {
    /// Extra zoo.cfg lines, appended to every member's config.
    pub cfg_extra: String,
    /// Run each member under its own uid (for [`Firewall`]; needs root).
    pub own_uids: bool,
    /// Start each process through `setpriv --pdeathsig KILL`, so that it
    /// dies with the thread that started it even when the test process is
    /// killed (no unwinding, so no [`Member`] drop): the fault tests, whose
    /// servers would otherwise keep their private network namespace alive.
    pub die_with_test: bool,
    /// Which server each member runs (member `i` gets `flavors[i]`; ours
    /// where the list is shorter).
    pub flavors: Vec<Flavor>,
    /// The sids of the members that are observers (`:observer` on their
    /// `server.X` lines, `peerType=observer` in their own config).
    pub observers: Vec<u64>,
    /// syncLimit in ticks of 200 ms (0: 5). Tests that only need a stable
    /// ensemble on a loaded machine take more (a follower that misses its
    /// leader for syncLimit drops its clients).
    pub sync_limit: u32,
}

/// One server of an ensemble; its process is killed on drop.
#[derive(Debug)]
pub struct Member {
    /// The server id (1-based, `myid`).
    pub sid: u64,
    /// Whose server it runs.
    pub flavor: Flavor,
    dir: TempDir,
    /// Its address (`127.a.b.sid`).
    pub ip: Ipv4Addr,
    child: Option<Child>,
    starts: u32,
    uid: Option<u32>,
    die_with_test: bool,
}

/// `n` members with the default options.
pub fn ensemble(n: u64) -> Vec<Member> {
    ensemble_with(n, &EnsembleOptions::default())
}

/// `n` members (not started): tickTime=200, initLimit=10, syncLimit=5 (or
/// [`EnsembleOptions::sync_limit`]), ours with a 200 ms election finalize
/// wait, plus `opts.cfg_extra`.
pub fn ensemble_with(n: u64, opts: &EnsembleOptions) -> Vec<Member> {
    let (a, b) = loopback_net();
    let ips: Vec<Ipv4Addr> = (1..=n as u8)
        .map(|sid| Ipv4Addr::new(127, a, b, sid))
        .collect();
    let servers: String = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let sid = i as u64 + 1;
            let role = if opts.observers.contains(&sid) {
                ":observer"
            } else {
                ""
            };
            format!("server.{sid}={ip}:{QUORUM_PORT}:{ELECTION_PORT}{role}\n")
        })
        .collect();
    ips.into_iter()
        .enumerate()
        .map(|(i, ip)| {
            let sid = i as u64 + 1;
            let dir = tempfile::Builder::new()
                .prefix(&format!("zk-ensemble-{sid}-"))
                .tempdir()
                .expect("temp dir");
            let data = dir.path().join("data");
            let flavor = opts.flavors.get(i).copied().unwrap_or(Flavor::Ours);
            // The AdminServer is off unless the options set admin.* keys
            // (each member has its own IP, so one port serves them all).
            let admin = if opts.cfg_extra.contains("admin.serverAddress") {
                String::new()
            } else if opts.cfg_extra.contains("admin.") {
                format!("admin.serverAddress={ip}\n")
            } else {
                "admin.enableServer=false\n".to_owned()
            };
            // Prometheus, if asked for, on the member's own IP too.
            let metrics = if opts.cfg_extra.contains("metricsProvider.")
                && !opts.cfg_extra.contains("metricsProvider.httpHost")
            {
                format!("metricsProvider.httpHost={ip}\n")
            } else {
                String::new()
            };
            let own = match flavor {
                Flavor::Ours => "zkrs.electionFinalizeWaitMs=200\n",
                Flavor::Apache => "",
            };
            let peer_type = if opts.observers.contains(&sid) {
                "peerType=observer\n"
            } else {
                ""
            };
            let cfg = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit={}\ndataDir={}\nclientPort={CLIENT_PORT}\nclientPortAddress={ip}\n4lw.commands.whitelist=*\n{own}{admin}{metrics}{peer_type}{servers}{}\n",
                if opts.sync_limit == 0 { 5 } else { opts.sync_limit },
                data.display(),
                opts.cfg_extra,
            );
            fs::write(dir.path().join("zoo.cfg"), cfg).expect("write zoo.cfg");
            // A uid per member of this ensemble: 200000 + 8 × (a·256 + b) + sid.
            let uid = opts
                .own_uids
                .then(|| 200_000 + 8 * ((u32::from(a) << 8) | u32::from(b)) + sid as u32);
            let m = Member {
                sid,
                flavor,
                dir,
                ip,
                child: None,
                starts: 0,
                uid,
                die_with_test: opts.die_with_test,
            };
            m.make_data_dir();
            m
        })
        .collect()
}

impl Member {
    /// The member's temp dir (zoo.cfg, data/, output files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data dir (`myid`, log segments, snapshots, epoch files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether a process was started and has not been killed or seen to exit.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The output file of the current (or last) start.
    pub fn out_path(&self) -> PathBuf {
        self.dir.path().join(format!("out.{}.log", self.starts))
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, CLIENT_PORT))
    }

    /// The uid the member runs under, if its own.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn make_data_dir(&self) {
        let data = self.dir.path().join("data");
        fs::create_dir_all(&data).expect("mkdir data");
        fs::write(data.join("myid"), format!("{}\n", self.sid)).expect("write myid");
        if let Some(uid) = self.uid {
            for p in [self.dir.path(), &data, &data.join("myid")] {
                std::os::unix::fs::chown(p, Some(uid), None).expect("chown (needs root)");
            }
        }
    }

    /// Replaces the data dir by an empty one holding only `myid` (a server
    /// whose disk was lost); the member must be stopped.
    pub fn wipe_data(&self) {
        assert!(self.child.is_none(), "server {} is running", self.sid);
        fs::remove_dir_all(self.dir.path().join("data")).expect("remove data");
        self.make_data_dir();
    }

    /// Starts the process; its output goes to a new file.
    pub fn start(&mut self) {
        self.start_env(&[]);
    }

    /// [`Member::start`] with extra environment variables (e.g.
    /// `ZK_FAILPOINTS`).
    pub fn start_env(&mut self, env: &[(&str, &str)]) {
        self.start_wrapped(&[], env);
    }

    /// [`Member::start_env`] through a wrapper that execs the server in the
    /// same process (e.g. `fiu-run -x`), so that [`Member::pid`] and
    /// [`Member::kill9`] still reach the server itself.
    pub fn start_wrapped(&mut self, wrapper: &[&str], env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "server {} already running", self.sid);
        self.starts += 1;
        let out = fs::File::create(self.out_path()).expect("output file");
        let err = out.try_clone().expect("dup output file");
        let mut wrapper = wrapper.to_vec();
        if self.die_with_test {
            wrapper.splice(0..0, ["setpriv", "--pdeathsig", "KILL"]);
        }
        let base = match self.flavor {
            Flavor::Ours => Command::new(our_binary()),
            Flavor::Apache => apache_java("org.apache.zookeeper.server.quorum.QuorumPeerMain", &[]),
        };
        let mut cmd = match wrapper.split_first() {
            None => base,
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(base.get_program()).args(base.get_args());
                c
            }
        };
        cmd.arg(self.dir.path().join("zoo.cfg"))
            .env("RUST_LOG", "info")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .envs(env.iter().copied());
        if let Some(uid) = self.uid {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start server {}: {e}", self.sid));
        self.child = Some(child);
    }

    /// kill -9 (also of a stopped process).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (up to [`DEADLINE`]) for the process to exit by itself;
    /// returns its exit code (`None`: killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let status = crate::wait_for("the server to exit", DEADLINE, || {
            child.try_wait().expect("try_wait")
        });
        self.child = None;
        status.code()
    }

    /// Whether the process has exited by itself (it is then still counted
    /// as running until [`Member::wait_exit`] or [`Member::kill9`]).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_some())
    }

    /// Sends `signal` (`STOP`, `CONT`) to the running process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("running");
        // The shell's kill builtin: /bin/kill (procps) may be missing.
        let st = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {pid}")])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{signal} {pid}");
        if signal == "STOP" {
            wait_stopped(pid);
        }
    }

    /// The output of every start so far, oldest first.
    pub fn outputs(&self) -> String {
        outputs(self.dir.path(), self.starts)
    }

    /// The output of the current (or last) start.
    pub fn output(&self) -> String {
        fs::read(self.out_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Mode:` from `srvr` (`leader`, `follower`), if it serves.
    pub fn mode(&self) -> Option<String> {
        let srvr = four_letter(self.addr(), "srvr")?;
        srvr.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// `Zxid:` from `srvr`, if it serves.
    pub fn zxid(&self) -> Option<String> {
        let srvr = four_letter(self.addr(), "srvr")?;
        srvr.lines()
            .find_map(|l| l.strip_prefix("Zxid: "))
            .map(|z| z.trim().to_string())
    }

    /// The last zxid the current start replayed from its own disk (its
    /// `recovered ... last zxid 0x..` line), 0 if it recovered nothing.
    /// An Apache server's: `Snapshot loaded in N ms, highest zxid is 0x..`
    /// (its snapshot plus the log replayed after it).
    pub fn recovered_zxid(&self) -> i64 {
        let (ours, apache) = ("txns from the log: last zxid 0x", "highest zxid is 0x");
        self.output()
            .lines()
            .find_map(|l| l.split_once(ours).or_else(|| l.split_once(apache)))
            .and_then(|(_, r)| i64::from_str_radix(r.split(',').next()?, 16).ok())
            .unwrap_or(0)
    }

    /// The last `n` lines of the output.
    pub fn tail(&self, n: usize) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- server {} (last 40 lines) ---\n{}",
                self.sid,
                self.tail(40)
            );
        }
    }
}

/// Polls `cond` every 20 ms until it returns `Some`, or panics after
/// [`DEADLINE`].
pub fn wait_until<T>(what: &str, cond: impl FnMut() -> Option<T>) -> T {
    crate::wait_for(what, DEADLINE, cond)
}

/// Waits until the members `alive` (indexes) serve with one leader and the
/// others following; returns the leader's index.
pub fn serving(m: &[Member], alive: &[usize]) -> usize {
    wait_until(&format!("servers {alive:?} to serve"), || {
        let modes: Vec<String> = alive.iter().map(|&i| m[i].mode()).collect::<Option<_>>()?;
        let leaders: Vec<usize> = alive
            .iter()
            .zip(&modes)
            .filter(|(_, md)| md.as_str() == "leader")
            .map(|(&i, _)| i)
            .collect();
        let learners = modes
            .iter()
            .filter(|md| matches!(md.as_str(), "follower" | "observer"))
            .count();
        (leaders.len() == 1 && learners == alive.len() - 1).then(|| leaders[0])
    })
}

/// Creates `n` persistent znodes `<prefix>0..<prefix>n-1` holding `data`
/// through `c`, each acknowledged; returns their paths.
pub fn create_acked(c: &mut Client, prefix: &str, n: usize, data: &[u8]) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = format!("{prefix}{i}");
            c.create(&p, data, 0).unwrap().expect("create");
            p
        })
        .collect()
}

/// `sync /`: the server has caught up with the leader as of this call.
pub fn sync(c: &mut Client) -> ClientResult<()> {
    let r = c.call(&Request::Sync(SyncRequest { path: "/".into() }))?;
    assert_eq!(r.err, 0, "sync failed: {:?}", r.code());
    Ok(())
}

/// Waits until every thread of `pid` is stopped. kill(2) returns once
/// SIGSTOP is queued: one thread takes it and only then stops the others,
/// so for a moment the rest still run (regression: a test's SIGSTOPped
/// leader answered a follower's forwarded `sync` in that moment on a
/// loaded CI machine).
fn wait_stopped(pid: u32) {
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    wait_until(&format!("every thread of {pid} stopped"), || {
        let mut states = fs::read_dir(&tasks).ok()?.map(|t| {
            let stat = fs::read_to_string(t.ok()?.path().join("stat")).ok()?;
            // "tid (comm) S ...": comm may hold spaces and parentheses.
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(matches!(state, 'T' | 't'))
        });
        states.all(|s| s == Some(true)).then_some(())
    });
}

/// Connects to `m` (retrying while it does not serve yet).
pub fn connect(m: &Member) -> Client {
    wait_until(&format!("a session at server {}", m.sid), || {
        Client::connect(m.addr()).ok()
    })
}

/// After a sync at `m`, every path of `paths` has the data `data`.
pub fn assert_has(m: &Member, paths: &[String], data: &[u8]) {
    let mut c = connect(m);
    sync(&mut c).expect("sync");
    for p in paths {
        match c.get_data(p, false).expect("getData") {
            Ok((d, _)) => assert_eq!(&d[..], data, "{p} at server {}", m.sid),
            Err(e) => panic!("{p} missing at server {}: {e:?}", m.sid),
        }
    }
    let _ = c.close();
}

/// Every znode under `/` with its data and stat, as read through `c`
/// (without READ on a node: its stat alone, its data as `<no read>`, and
/// its children unlisted; the servers' digest logs cover those).
/// A connection that fails on the way is an error (the caller may read again).
pub fn read_tree(c: &mut Client) -> ClientResult<BTreeMap<String, (Bytes, Stat)>> {
    let mut tree = BTreeMap::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = match c.get_data(&path, false)? {
            Ok(v) => v,
            Err(ErrorCode::NoAuth) => match c.exists(&path, false)? {
                Some(stat) => (Bytes::from_static(b"<no read>"), stat),
                None => panic!("{path} listed but gone"),
            },
            Err(e) => panic!("{path} listed but unreadable: {e:?}"),
        };
        let kids = match c.children(&path, false)? {
            Ok((kids, _)) => kids,
            Err(ErrorCode::NoAuth) => Vec::new(),
            Err(e) => panic!("{path} has no children list: {e:?}"),
        };
        for k in kids {
            todo.push(if path == "/" {
                format!("/{k}")
            } else {
                format!("{path}/{k}")
            });
        }
        tree.insert(path, (data, stat));
    }
    Ok(tree)
}

/// The servers at `addrs` serve the same tree: after a `sync` at each, a
/// walk of the whole tree gives the same paths, data and stats (czxid,
/// mzxid, pzxid, times, versions, ephemeralOwner, ...; `/zookeeper/config`'s
/// mtime aside, which each server sets when it loads its database).
pub fn assert_same_trees(addrs: &[SocketAddr]) {
    let trees: Vec<BTreeMap<String, (Bytes, Stat)>> = addrs
        .iter()
        .map(|&a| {
            // A server may drop its clients on the way (a re-election under
            // load): read again from a new session.
            let mut t = wait_until(&format!("the tree at {a}"), || {
                let mut c = Client::connect(a).ok()?;
                sync(&mut c).ok()?;
                let t = read_tree(&mut c).ok()?;
                let _ = c.close();
                Some(t)
            });
            // Every server (ours and Apache's) writes /zookeeper/config at
            // its own load time: its mtime is each server's own.
            if let Some((_, stat)) = t.get_mut("/zookeeper/config") {
                stat.mtime = 0;
            }
            t
        })
        .collect();
    for (i, t) in trees.iter().enumerate().skip(1) {
        let (a, b) = (&trees[0], t);
        let only_a: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
        let only_b: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
        assert!(
            only_a.is_empty() && only_b.is_empty(),
            "paths only at {}: {only_a:?}; only at {}: {only_b:?}",
            addrs[0],
            addrs[i]
        );
        for (p, v) in a {
            assert_eq!(
                v, &b[p],
                "{p} differs between {} and {}",
                addrs[0], addrs[i]
            );
        }
    }
}

/// The end of every scenario: the members `alive` serve the same tree and,
/// once the test's own sessions have closed, report one zxid; their digest
/// logs agree (above the zxids each replayed at its start, see
/// [`assert_same_digests`]).
pub fn assert_converged(m: &[Member], alive: &[usize]) {
    let addrs: Vec<SocketAddr> = alive.iter().map(|&i| m[i].addr()).collect();
    assert_same_trees(&addrs);
    wait_until(&format!("one zxid on servers {alive:?}"), || {
        let zxids: Vec<String> = alive.iter().map(|&i| m[i].zxid()).collect::<Option<_>>()?;
        zxids.iter().all(|z| *z == zxids[0]).then_some(())
    });
    let floors: Vec<i64> = alive.iter().map(|&i| m[i].recovered_zxid()).collect();
    assert_same_digests(&addrs, &floors);
    assert_no_digest_mismatch(m);
}

/// The outputs `out.1.log` .. `out.{starts}.log` in `dir`, concatenated.
pub fn outputs(dir: &Path, starts: u32) -> String {
    (1..=starts)
        .map(|k| {
            fs::read(dir.join(format!("out.{k}.log")))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// ZooKeeper's words for an applied txn whose `TxnDigest` is not the tree's.
pub const DIGEST_MISMATCH: &str = "Digests are not matching";

/// The first line of a server's output `out` that reports a digest
/// mismatch met while serving (see [`assert_no_digest_mismatch`] for the
/// start-up replay of Apache's, which is written to stderr instead).
pub fn live_digest_mismatch(flavor: Flavor, sid: u64, out: &str) -> Option<&str> {
    let mut live = None;
    // The highest zxid a replay of Apache's own disk reported.
    let mut replayed: Option<i64> = None;
    for l in out.lines().filter(|l| l.contains(DIGEST_MISMATCH)) {
        let zxid = mismatch_zxid(l);
        if flavor == Flavor::Apache && (l.starts_with("[main]") || l.starts_with("[QuorumPeer")) {
            eprintln!("note: Apache server {sid} replaying its own disk: {l}");
            replayed = replayed.max(zxid);
        } else if flavor == Flavor::Apache && zxid.is_some() && zxid <= replayed {
            // The same txns checked again live (re-sent in its next sync)
            // on the tree that replay left: the replay's issue, carried.
            eprintln!("note: Apache server {sid} again, after that replay: {l}");
        } else if live.is_none() {
            live = Some(l);
        }
    }
    live
}

/// The zxid an Apache mismatch line names (`Value:<n>` or, for a
/// rate-limited summary, `Last value:<n>`).
fn mismatch_zxid(line: &str) -> Option<i64> {
    let (_, v) = line.rsplit_once("alue:")?;
    v.trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// No member ever applied a txn whose digest (sent by the leader with its
/// proposal) differed from its tree's after it.
///
/// One exception, reported on stderr and not failed: an Apache server's
/// check while it replays its own disk, at start (its thread `[main]`) or
/// when a TRUNC makes it reload its database (thread `[QuorumPeer..]`);
/// its live checks run on its commit processor threads. Seen once in the
/// rolling replacement (a txn of our leader's epoch, applied unchecked in
/// the Apache follower's SNAP sync, then replayed after a TRUNC) and as
/// below.
/// Once in six runs of `five_mixed_servers_leaders_killed_under_load`
/// (restart of all after two leader kills) one Apache server reported a
/// mismatch there, at a txn of a one-second epoch of ours ended by a
/// kill -9, while every server had checked every txn it applied live
/// without one, and the trees agreed. Most likely Apache 3.8.0's ZK-4712
/// (ensemble-testing.md §4 #9, fixed in 3.9.3): a follower that loses its
/// leader while its log queue is busy still logs the queued proposals after
/// its DB reset, and replays them at its next start, where its digest check
/// catches the stale txn. Ours check every txn they apply while serving,
/// the leader its own too. Once in CI, after such a replay (mismatches at
/// 0x2000001f1..0x200000226), the same Apache server's commit processor
/// reported 0x2000001f4 again when its next sync re-sent that range: a
/// live report at or below the highest zxid its replay reported is taken
/// as that replay's, and printed too.
pub fn assert_no_digest_mismatch(m: &[Member]) {
    let reports = digest_mismatch_reports(m);
    assert!(reports.is_empty(), "{}", reports.join("\n\n"));
}

/// Each member's first live digest mismatch (see
/// [`assert_no_digest_mismatch`]) with the lines that tell how it synced.
fn digest_mismatch_reports(m: &[Member]) -> Vec<String> {
    let mut reports = Vec::new();
    for x in m {
        let out = x.outputs();
        if let Some(line) = live_digest_mismatch(x.flavor, x.sid, &out) {
            // Apache's and ours: the first mismatch also names the txn.
            let first = out
                .lines()
                .find(|l| l.contains("First digest mismatch"))
                .unwrap_or("");
            // How it synced and what it loaded, to tell where the digest
            // came from (the output files are gone with the temp dir).
            let keys = [
                "napshot",
                "Truncating",
                "Getting a",
                "SNAP",
                "DIFF",
                "TRUNC",
                "LEADING",
                "FOLLOWING",
                "election decided",
                "syncing learner",
                "following: last zxid",
                "leading: last zxid",
                "replayed",
                DIGEST_MISMATCH,
            ];
            let history: Vec<&str> = out
                .lines()
                .filter(|l| keys.iter().any(|k| l.contains(k)))
                .collect();
            reports.push(format!(
                "{} server {} reports a digest mismatch: {line}\n{first}\n{}",
                x.flavor,
                x.sid,
                history.join("\n")
            ));
        }
    }
    reports
}

/// The servers' digest logs (`hash`: the tree digest after every 128th
/// zxid each applied) agree wherever two of them logged the same zxid above
/// both their `floors`.
///
/// The floor is the last zxid a server replayed from its log at start
/// ([`Member::recovered_zxid`]): it replays over a fuzzy snapshot (written
/// while txns were applied, so holding some changes of txns after its key),
/// and until the replay passes the last txn the snapshot reflects, the
/// digest it logs is that of a tree ahead of the zxid. Only the final state
/// of a replay is exact; a fault test with writes during snapshots showed
/// two servers with equal trees disagreeing at a replayed zxid.
pub fn assert_same_digests(addrs: &[SocketAddr], floors: &[i64]) {
    let logs: Vec<std::collections::BTreeMap<i64, String>> = addrs
        .iter()
        .map(|a| {
            let text = four_letter(*a, "hash").unwrap_or_default();
            text.lines()
                .filter_map(|l| l.split_once(": "))
                .filter_map(|(z, d)| Some((i64::from_str_radix(z, 16).ok()?, d.to_string())))
                .collect()
        })
        .collect();
    for (i, log) in logs.iter().enumerate().skip(1) {
        let floor = floors[0].max(floors[i]);
        for (z, d) in log.range(floor + 1..) {
            if let Some(d0) = logs[0].get(z) {
                assert_eq!(
                    d0, d,
                    "tree digest after zxid {z:#x} differs between {} and {}",
                    addrs[0], addrs[i]
                );
            }
        }
    }
}

/// The lines of `text` after the first `from` bytes (output since a mark).
pub fn since(text: &str, from: usize) -> &str {
    text.get(from..).unwrap_or("")
}

/// iptables rules for one test, removed on drop (also on panic).
#[derive(Debug)]
pub struct Firewall {
    tag: String,
    /// (table, rule spec) in the order added.
    rules: Vec<(&'static str, Vec<String>)>,
    /// How many of `rules` are the permanent connection marks.
    marks: usize,
}

impl Firewall {
    /// Marks every connection a member of `m` opens with its uid (members
    /// built with [`EnsembleOptions::own_uids`]); call before starting them.
    pub fn new(m: &[Member]) -> Firewall {
        sweep_dead_tests_rules();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut fw = Firewall {
            tag: format!("zk-test-{}-{n}", std::process::id()),
            rules: Vec::new(),
            marks: 0,
        };
        for x in m {
            let uid = x.uid.expect("a member with its own uid").to_string();
            fw.add(
                "mangle",
                &[
                    "-m",
                    "owner",
                    "--uid-owner",
                    &uid,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "CONNMARK",
                    "--set-mark",
                    &uid,
                ],
            );
        }
        fw.marks = fw.rules.len();
        fw
    }

    fn iptables(table: &str, op: &str, spec: &[String]) -> Result<(), String> {
        let out = Command::new("iptables")
            .args(["-w", "-t", table, op, "OUTPUT"])
            .args(spec)
            .output()
            .map_err(|e| format!("cannot run iptables: {e} (apt-get install iptables)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "iptables -t {table} {op} OUTPUT {}: {}",
                spec.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Appends a rule to `table`'s OUTPUT chain (every loopback packet
    /// passes OUTPUT once; `nat` sees a connection's first packet), tagged
    /// with this firewall's comment.
    pub fn add(&mut self, table: &'static str, spec: &[&str]) {
        let mut spec: Vec<String> = spec.iter().map(|s| s.to_string()).collect();
        spec.extend(["-m", "comment", "--comment", &self.tag].map(String::from));
        if let Err(e) = Self::iptables(table, "-A", &spec) {
            panic!("{e}");
        }
        self.rules.push((table, spec));
    }

    /// [`Firewall::add`] for a rule that [`Firewall::heal`] keeps (as the
    /// connection marks); only before any other rule.
    pub fn add_permanent(&mut self, table: &'static str, spec: &[&str]) {
        assert_eq!(self.rules.len(), self.marks, "a fault rule is in place");
        self.add(table, spec);
        self.marks += 1;
    }

    /// Drops the packets `from` sends from its port `port` (whatever the
    /// destination: the replies on connections made to that port).
    pub fn drop_from_port(&mut self, from: &Member, port: u16) {
        let (ip, port) = (from.ip.to_string(), port.to_string());
        self.add(
            "filter",
            &["-s", &ip, "-p", "tcp", "--sport", &port, "-j", "DROP"],
        );
    }

    /// Cuts `a` and `b` apart: both directions of every connection between
    /// them (a connection carries the uid of the member that opened it, and
    /// the other's address as destination one way and source the other).
    pub fn cut(&mut self, a: &Member, b: &Member) {
        for (x, y) in [(a, b), (b, a)] {
            let mark = x.uid.expect("a member with its own uid").to_string();
            let ip = y.ip.to_string();
            for dir in ["-d", "-s"] {
                self.add(
                    "filter",
                    &["-m", "connmark", "--mark", &mark, dir, &ip, "-j", "DROP"],
                );
            }
        }
    }

    /// Slows what `from` sends on the connections `to` opened to `from`'s
    /// `port` to 1 MB/s (the excess is dropped; TCP resends it).
    pub fn throttle(&mut self, from: &Member, to: &Member, port: u16) {
        let mark = to.uid.expect("a member with its own uid").to_string();
        let (ip, port) = (from.ip.to_string(), port.to_string());
        let name = format!("zk{mark}");
        self.add(
            "filter",
            &[
                "-m",
                "connmark",
                "--mark",
                &mark,
                "-s",
                &ip,
                "-p",
                "tcp",
                "--sport",
                &port,
                "-m",
                "hashlimit",
                "--hashlimit-above",
                "1mb/s",
                "--hashlimit-burst",
                "1mb",
                "--hashlimit-mode",
                "srcip",
                "--hashlimit-name",
                &name,
                "-j",
                "DROP",
            ],
        );
    }

    /// Removes every rule but the connection marks.
    pub fn heal(&mut self) {
        while self.rules.len() > self.marks {
            let (table, spec) = self.rules.pop().expect("a rule");
            if let Err(e) = Self::iptables(table, "-D", &spec) {
                panic!("{e}");
            }
        }
    }
}

/// Removes the rules of test processes that died without dropping their
/// [`Firewall`] (killed by a timeout or ^C): `zk-test-<pid>-` comments whose
/// pid no longer runs.
fn sweep_dead_tests_rules() {
    for table in ["filter", "mangle"] {
        let Ok(out) = Command::new("iptables")
            .args(["-w", "-t", table, "-S", "OUTPUT"])
            .output()
        else {
            return;
        };
        for rule in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(pid) = rule
                .split("zk-test-")
                .nth(1)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if let Some(spec) = rule.strip_prefix("-A OUTPUT ") {
                // `-S` prints the rule as it was given; a comment holds no space.
                let _ = Command::new("iptables")
                    .args(["-w", "-t", table, "-D", "OUTPUT"])
                    .args(spec.split_whitespace())
                    .status();
            }
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        while let Some((table, spec)) = self.rules.pop() {
            if let Err(e) = Self::iptables(table, "-D", &spec) {
                eprintln!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_apache_report_within_its_replayed_range_is_the_replays() {
        // Lines as Apache 3.8 logs them (rate-limited summaries included).
        let out = "[QuorumPeer[myid=1](plain=x)] WARN DataTree - Message:Digests are not matching. Value is Zxid. Value:8589935089\n\
                   [QuorumPeer[myid=1](plain=x)] WARN DataTree - [53 times] Message: Digests are not matching. Value is Zxid. Last value:8589935142\n\
                   [CommitProcessor:1] WARN DataTree - [3 times] Message: Digests are not matching. Value is Zxid. Last value:8589935092\n";
        assert_eq!(live_digest_mismatch(Flavor::Apache, 1, out), None);
        let later = format!(
            "{out}[CommitProcessor:1] WARN DataTree - Message:Digests are not matching. Value is Zxid. Value:8589935143\n"
        );
        assert!(live_digest_mismatch(Flavor::Apache, 1, &later).is_some());
        assert_eq!(mismatch_zxid("x Last value:12 y"), Some(12));
    }
}
