//! Starting servers for tests: Apache ZooKeeper 3.8 from the Debian package
//! (the oracle) and our `zk-server`, each as a real child process in its own
//! temp dir, killed on drop.
//!
//! Both kinds are a [`ZkServer`]: same config file handling, same log
//! capture (stdout and stderr go to files in the temp dir, printed when a
//! start fails), same `kill9` / `restart` on the same data dirs and port.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The Java class path for Apache ZooKeeper: the jar's manifest pulls in its
/// dependencies from /usr/share/java; slf4j-simple sends its log to stderr.
pub const APACHE_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// `java` running Apache ZooKeeper's `main_class` (`ZooKeeperServerMain`,
/// `QuorumPeerMain`) with a small heap, the serial GC, C1 only (it starts
/// faster), info logs on stdout and the system properties `jvm_props`
/// (`key=value`); the caller adds the zoo.cfg path.
pub fn apache_java(main_class: &str, jvm_props: &[String]) -> Command {
    apache_java_with(main_class, jvm_props, APACHE_CLASSPATH)
}

/// [`apache_java`] with the classpath `cp`.
pub fn apache_java_with(main_class: &str, jvm_props: &[String], cp: &str) -> Command {
    let mut c = Command::new("java");
    c.args([
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    ]);
    for p in jvm_props {
        c.arg(format!("-D{p}"));
    }
    c.args(["-cp", cp, main_class]);
    c
}

/// The Debian package's Netty jars (the unversioned names), which Apache's
/// `NettyServerCnxnFactory` and the Java client's `ClientCnxnSocketNetty`
/// need and the zookeeper.jar manifest does not name.
pub fn netty_classpath() -> String {
    let mut netty: Vec<String> = std::fs::read_dir("/usr/share/java")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| {
                    n.starts_with("netty-")
                        && n.ends_with(".jar")
                        && !n.chars().any(|c| c.is_ascii_digit())
                })
                .map(|n| format!("/usr/share/java/{n}"))
                .collect()
        })
        .unwrap_or_default();
    netty.sort();
    netty.join(":")
}

/// The servlet API, which Apache's AdminServer (Jetty) needs and the
/// zookeeper.jar manifest does not name (the Debian package installs it:
/// libservlet-api-java).
pub const APACHE_ADMIN_CLASSPATH: &str = "/usr/share/java/servlet-api.jar";

/// How long a server may take to answer after being started.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// What to install when Apache ZooKeeper or its clients are missing.
pub const INSTALL_HINT: &str = "install them with: apt-get install -y zookeeper zookeeper-bin \
     default-jre-headless && python3 -m pip install kazoo (scripts/test does this)";

/// Which implementation a [`ZkServer`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Apache ZooKeeper 3.8 (Debian package), `ZooKeeperServerMain`.
    Apache,
    /// Our `zk-server` binary.
    Ours,
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavor::Apache => "apache",
            Flavor::Ours => "ours",
        })
    }
}

/// Options for starting a server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra zoo.cfg lines (`key=value\n...`), appended after the defaults.
    pub cfg_extra: String,
    /// Use a separate `dataLogDir` (a `logs/` dir beside `data/`).
    pub separate_log_dir: bool,
    /// Apache only: extra JVM system properties (`-Dkey=value`), e.g.
    /// `zookeeper.extendedTypesEnabled=true` for TTL nodes.
    pub jvm_props: Vec<String>,
    /// Runs the AdminServer on 127.0.0.1 and a free port
    /// ([`ZkServer::admin_addr`]); Apache gets the servlet API on its
    /// classpath for it ([`APACHE_ADMIN_CLASSPATH`]).
    pub admin: bool,
    /// Apache only: Netty's jars on the classpath (its
    /// `NettyServerCnxnFactory`, which a TLS port needs; the zoo.cfg line
    /// `serverCnxnFactory=...` chooses it).
    pub netty: bool,
    /// Ours only (Apache's Prometheus provider is not in the Debian
    /// package): `/metrics` on 127.0.0.1 and a free port
    /// ([`ZkServer::metrics_addr`]).
    pub metrics: bool,
}

impl ServerOptions {
    /// Options with extra zoo.cfg lines.
    pub fn cfg(extra: &str) -> Self {
        Self {
            cfg_extra: extra.to_owned(),
            ..Self::default()
        }
    }

    /// Adds `-Dzookeeper.extendedTypesEnabled=true` (TTL nodes) for Apache;
    /// ours takes the same switch as the zoo.cfg key `extendedTypesEnabled`.
    pub fn extended_types(mut self) -> Self {
        self.jvm_props
            .push("zookeeper.extendedTypesEnabled=true".to_owned());
        self.cfg_extra.push_str("\nextendedTypesEnabled=true\n");
        self
    }
}

/// A running (or stopped) server in its own temp dir; killed on drop.
#[derive(Debug)]
pub struct ZkServer {
    flavor: Flavor,
    opts: ServerOptions,
    dir: TempDir,
    child: Option<Child>,
    port: u16,
    starts: u32,
    /// The AdminServer's and `/metrics`' ports (0: off).
    admin_port: u16,
    metrics_port: u16,
}

/// Starts Apache ZooKeeper 3.8 for tests.
#[derive(Debug)]
pub struct ApacheZk;

impl ApacheZk {
    /// A standalone Apache ZooKeeper on a free loopback port (tickTime 2000,
    /// all four-letter words enabled, AdminServer off). Panics with an
    /// install hint if java or the Debian package is missing.
    pub fn start() -> ZkServer {
        Self::start_with(ServerOptions::default())
    }

    /// Like [`ApacheZk::start`] with extra options.
    pub fn start_with(opts: ServerOptions) -> ZkServer {
        check_apache_installed();
        ZkServer::start(Flavor::Apache, opts)
    }
}

/// Starts our `zk-server` for tests.
#[derive(Debug)]
pub struct OurZk;

impl OurZk {
    /// Builds `zk-server` (once per test process) and starts it with
    /// `clientPort=0` plus `cfg_extra`, reading the bound address from its
    /// output.
    pub fn start(cfg_extra: &str) -> ZkServer {
        ZkServer::start(Flavor::Ours, ServerOptions::cfg(cfg_extra))
    }

    /// Like [`OurZk::start`] with full options.
    pub fn start_with(opts: ServerOptions) -> ZkServer {
        ZkServer::start(Flavor::Ours, opts)
    }
}

/// Starts a server of either flavor.
pub fn start_server(flavor: Flavor, opts: ServerOptions) -> ZkServer {
    if flavor == Flavor::Apache {
        check_apache_installed();
    }
    ZkServer::start(flavor, opts)
}

fn check_apache_installed() {
    let java = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(java, Ok(s) if s.success()),
        "`java` is not installed or does not run: Apache ZooKeeper needs it; {INSTALL_HINT}"
    );
    assert!(
        Path::new("/usr/share/java/zookeeper.jar").exists(),
        "/usr/share/java/zookeeper.jar is missing (Debian package zookeeper); {INSTALL_HINT}"
    );
}

/// The zoo.cfg value of `metricsProvider.className` that turns Prometheus on.
pub const METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// A free loopback port (bound then released; the server binds it next).
pub fn free_port() -> u16 {
    let [p] = free_ports();
    p
}

/// `N` distinct free loopback ports: every listener is held until all the
/// ports are read (taken one at a time, a port released could come back
/// for the next: the replicated-write bench saw that collision in CI).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("no free loopback port"))
        .collect();
    std::array::from_fn(|i| {
        held[i]
            .local_addr()
            .expect("a bound listener's address")
            .port()
    })
}

impl ZkServer {
    fn start(flavor: Flavor, opts: ServerOptions) -> ZkServer {
        let dir = tempfile::Builder::new()
            .prefix(&format!("zk-it-{flavor}-"))
            .tempdir()
            .expect("temp dir");
        fs::create_dir_all(dir.path().join("data")).expect("mkdir data");
        if opts.separate_log_dir {
            fs::create_dir_all(dir.path().join("logs")).expect("mkdir logs");
        }
        // Apache's client port, and the AdminServer's and /metrics' ports
        // when asked for: three distinct ports, each used or not.
        let [client, admin, metrics] = free_ports();
        let port = match flavor {
            Flavor::Apache => client,
            Flavor::Ours => 0,
        };
        let admin_port = if opts.admin { admin } else { 0 };
        let metrics_port = if opts.metrics { metrics } else { 0 };
        let mut s = ZkServer {
            flavor,
            opts,
            dir,
            child: None,
            port,
            starts: 0,
            admin_port,
            metrics_port,
        };
        s.spawn_and_wait();
        s
    }

    /// Which implementation this is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The client address (127.0.0.1:port).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The AdminServer's address (with [`ServerOptions::admin`]).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        (self.admin_port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], self.admin_port)))
    }

    /// `/metrics`' address (with [`ServerOptions::metrics`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        (self.metrics_port != 0).then(|| SocketAddr::from(([127, 0, 0, 1], self.metrics_port)))
    }

    /// `host:port` for client command lines.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temp dir holding zoo.cfg, data/, logs/ and the output files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The dataDir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The dataLogDir (the dataDir unless `separate_log_dir`).
    pub fn log_dir(&self) -> PathBuf {
        if self.opts.separate_log_dir {
            self.dir.path().join("logs")
        } else {
            self.data_dir()
        }
    }

    /// The path of zoo.cfg.
    pub fn cfg_path(&self) -> PathBuf {
        self.dir.path().join("zoo.cfg")
    }

    fn out_path(&self, n: u32) -> PathBuf {
        self.dir.path().join(format!("out.{n}.log"))
    }

    /// Everything the server printed (stdout and stderr) in its latest run.
    pub fn output(&self) -> String {
        fs::read(self.out_path(self.starts))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the latest run's output, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn write_cfg(&self) {
        let d = self.dir.path();
        let mut defaults = vec![
            ("tickTime", "2000".to_owned()),
            ("initLimit", "10".to_owned()),
            ("syncLimit", "5".to_owned()),
            ("dataDir", d.join("data").display().to_string()),
            ("clientPort", self.port.to_string()),
            ("clientPortAddress", "127.0.0.1".to_owned()),
            ("4lw.commands.whitelist", "*".to_owned()),
        ];
        if self.admin_port != 0 {
            defaults.push(("admin.enableServer", "true".to_owned()));
            defaults.push(("admin.serverAddress", "127.0.0.1".to_owned()));
            defaults.push(("admin.serverPort", self.admin_port.to_string()));
        } else {
            defaults.push(("admin.enableServer", "false".to_owned()));
        }
        if self.metrics_port != 0 {
            defaults.push(("metricsProvider.className", METRICS_PROVIDER.to_owned()));
            defaults.push(("metricsProvider.httpHost", "127.0.0.1".to_owned()));
            defaults.push(("metricsProvider.httpPort", self.metrics_port.to_string()));
        }
        if self.opts.separate_log_dir {
            defaults.push(("dataLogDir", d.join("logs").display().to_string()));
        }
        // a key given in cfg_extra replaces the default (no duplicate keys)
        let overridden: Vec<&str> = self
            .opts
            .cfg_extra
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .collect();
        let mut cfg = String::new();
        for (k, v) in defaults {
            if !overridden.contains(&k) {
                cfg.push_str(&format!("{k}={v}\n"));
            }
        }
        cfg.push_str(&self.opts.cfg_extra);
        cfg.push('\n');
        fs::write(self.cfg_path(), cfg).expect("write zoo.cfg");
    }

    fn command(&self) -> Command {
        match self.flavor {
            Flavor::Apache => {
                let mut cp = APACHE_CLASSPATH.to_owned();
                if self.opts.admin {
                    cp = format!("{cp}:{APACHE_ADMIN_CLASSPATH}");
                }
                if self.opts.netty {
                    cp = format!("{cp}:{}", netty_classpath());
                }
                let mut c = apache_java_with(
                    "org.apache.zookeeper.server.ZooKeeperServerMain",
                    &self.opts.jvm_props,
                    &cp,
                );
                c.arg(self.cfg_path());
                c
            }
            Flavor::Ours => {
                let mut c = Command::new(our_binary());
                c.arg(self.cfg_path());
                c
            }
        }
    }

    /// Spawns the server process without waiting for it to serve; its output
    /// goes to a fresh output file.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.write_cfg();
        self.starts += 1;
        let out = fs::File::create(self.out_path(self.starts)).expect("output file");
        let err = out.try_clone().expect("dup output file");
        let child = self
            .command()
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} server: {e}", self.flavor));
        self.child = Some(child);
    }

    fn spawn_and_wait(&mut self) {
        self.spawn();
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} server exited during start-up ({status}); output:\n{}",
                    self.flavor,
                    self.output_tail(60)
                );
            }
            if self.port == 0
                && let Some(port) = parse_listen_port(&self.output())
            {
                self.port = port;
            }
            if self.port != 0 && serving(self.flavor, self.addr()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} server did not answer ruok within {START_DEADLINE:?}; output:\n{}",
                self.flavor,
                self.output_tail(60)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the process and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process with SIGTERM (a clean stop), waiting up to 20 s
    /// before SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// From now on [`ZkServer::restart`] starts the other kind of server on
    /// the same zoo.cfg, dirs and port (taking over a data directory).
    pub fn switch_flavor(&mut self, flavor: Flavor) {
        assert!(self.child.is_none(), "stop the server before switching");
        self.flavor = flavor;
    }

    /// Starts the server again on the same dirs and port and waits until it
    /// answers. (A server that was never killed is killed first.)
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn_and_wait();
    }

    /// Starts the server on the same dirs and expects it to exit (refuse to
    /// start) within `timeout`; returns its exit status and output. Panics if
    /// it starts serving instead.
    pub fn start_expecting_failure(
        &mut self,
        timeout: Duration,
    ) -> (std::process::ExitStatus, String) {
        self.kill9();
        self.spawn();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return (status, self.output());
            }
            if self.port != 0 && serving(self.flavor, self.addr()) {
                let out = self.output_tail(40);
                self.kill9();
                panic!(
                    "{} server started serving but was expected to refuse; output:\n{out}",
                    self.flavor
                );
            }
            if Instant::now() > deadline {
                let out = self.output_tail(40);
                self.kill9();
                panic!(
                    "{} server neither exited nor served within {timeout:?}; output:\n{out}",
                    self.flavor
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "--- {} server output (last 40 lines, dir {}) ---\n{}",
                self.flavor,
                self.dir.path().display(),
                self.output_tail(40)
            );
        }
    }
}

/// Whether the server serves clients. `ruok` answers `imok` before Apache
/// ZooKeeper's request pipeline runs (a session opened then is dropped with
/// "ZooKeeperServer not running"), so Apache must also show `Mode:` in
/// `srvr`. For ours, a session handshake (then closeSession) is the proof
/// when `srvr` is not there.
fn serving(flavor: Flavor, addr: SocketAddr) -> bool {
    if four_letter(addr, "ruok").as_deref() != Some("imok") {
        return false;
    }
    if four_letter(addr, "srvr").is_some_and(|s| s.contains("Mode:")) {
        return true;
    }
    flavor == Flavor::Ours
        && crate::Client::connect(addr)
            .and_then(crate::Client::close)
            .is_ok_and(|r| r.err == 0)
}

/// Sends a four-letter word and returns the reply (`None` if the server does
/// not answer).
pub fn four_letter(addr: SocketAddr, cmd: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(cmd.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Finds the port in our server's "listening" line: the first
/// `127.0.0.1:<port>` (or `0.0.0.0:`/`[::1]:`) on a line that mentions
/// listening, binding or serving clients.
pub fn parse_listen_port(output: &str) -> Option<u16> {
    // Ours prints exactly one `listening on <addr>` line on stdout: it wins
    // over log lines naming other ports (the AdminServer's, /metrics').
    if let Some(addr) = output
        .lines()
        .find_map(|l| l.strip_prefix("listening on "))
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
    {
        return Some(addr.port());
    }
    for line in output.lines() {
        let l = line.to_ascii_lowercase();
        if !(l.contains("listen")
            || l.contains("bound")
            || l.contains("serving")
            || l.contains("client"))
        {
            continue;
        }
        for host in ["127.0.0.1:", "0.0.0.0:", "[::1]:", "localhost:"] {
            if let Some(i) = line.find(host) {
                let digits: String = line[i + host.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(p) = digits.parse::<u16>()
                    && p != 0
                {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// The path of our `zk-server` binary: `$ZK_SERVER_BIN` if set, else built
/// once per test process with `cargo build -p zk-server` (same target dir
/// and profile family as the tests: CARGO_TARGET_DIR is inherited).
pub fn our_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(build_our_binary)
        .clone()
        .unwrap_or_else(|e| panic!("cannot build zk-server: {e}"))
}

fn build_our_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ZK_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace dir")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "-p",
            "zk-server",
            "--bin",
            "zk-server",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build -p zk-server failed ({})", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| l.contains("\"compiler-artifact\"") && l.contains("\"executable\":\""))
        .filter_map(|l| {
            let i = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = l[i..].find('"')?;
            Some(PathBuf::from(&l[i..i + end]))
        })
        .find(|p| p.file_name().is_some_and(|n| n == "zk-server"))
        .ok_or_else(|| "cargo did not report a zk-server executable".to_owned())
}
