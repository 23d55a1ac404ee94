//! Start-up, recovery, the threads, and shutdown.
//!
//! ```text
//! loop 0 (accepts) ─┐                         ┌─ zk-txnlog sync thread (group commit)
//! loop 1 ───────────┼── CoreMsg ──▶ core ─────┤      │ durable → CoreMsg::Durable
//!                   │◀── LoopMsg + Waker ──   └──────┘
//!                   └── reads of idle sessions straight from the tree (read lock)
//! snapshot thread: fuzzy snapshot every snapCount txns; autopurge timer
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use tracing::{info, warn};
use zk_tree::TreeConfig;

use crate::config::Config;
use crate::control::{Control, Mode};
use crate::error::{StartError, io_err};
use crate::inbox::Inbox;
use crate::msg::{CoreMsg, LoopHandle, LoopMsg};
use crate::net::EventLoop;
use crate::sequencer::Sequencer;
use crate::sessions::SessionTracker;
use crate::shared::Shared;
use crate::storage::Storage;

/// Logs the config's warnings, creates dataDir and dataLogDir, and reads (or
/// creates) the server secret the session passwords derive from.
fn prepare_dirs(config: &Config) -> Result<[u8; 16], StartError> {
    for w in &config.warnings {
        warn!("{w}");
    }
    std::fs::create_dir_all(&config.data_dir).map_err(io_err(format!(
        "cannot create dataDir {}",
        config.data_dir.display()
    )))?;
    std::fs::create_dir_all(&config.data_log_dir).map_err(io_err(format!(
        "cannot create dataLogDir {}",
        config.data_log_dir.display()
    )))?;
    crate::sessions::load_or_create_secret(&config.data_dir)
        .map_err(io_err("cannot read or create server.secret in dataDir"))
}

/// Binds clientPortAddress:clientPort, non-blocking: the listener and the
/// bound address (the kernel's port with `clientPort=0`).
fn bind_client_port(config: &Config) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    bind_port(
        config,
        config.client_port_address,
        config.client_port,
        "client port",
    )
}

/// The client ports' listeners and TLS ([`bind_secure_port`], then the
/// plain port unless the server serves TLS only), the address the server
/// reports (the secure one when TLS only), and the secure port's.
fn bind_client_ports(
    config: &Config,
) -> Result<(crate::net::Listeners, SocketAddr, Option<SocketAddr>), StartError> {
    let (tls, secure) = bind_secure_port(config)?;
    let secure_addr = secure.as_ref().map(|(_, a)| *a);
    let (plain, local) = match secure_addr {
        Some(addr) if !config.plain_client_port => (None, addr),
        _ => {
            let (listener, local) = bind_client_port(config)?;
            (Some(mio::net::TcpListener::from_std(listener)), local)
        }
    };
    let listeners = crate::net::Listeners {
        plain,
        secure: secure.map(|(l, _)| l),
        tls,
        unify: config.client_port_unification,
    };
    Ok((listeners, local, secure_addr))
}

/// The secure client port's listener and bound address.
type SecurePort = (mio::net::TcpListener, SocketAddr);

/// The client ports' TLS when a secure client port or client port
/// unification is configured (an error names the store or setting), then
/// the secure port's bind.
fn bind_secure_port(
    config: &Config,
) -> Result<(Option<crate::tls::Acceptor>, Option<SecurePort>), StartError> {
    if config.secure_client_port.is_none() && !config.client_port_unification {
        return Ok((None, None));
    }
    let acceptor = crate::tls::Acceptor::new(&config.tls)
        .map_err(|e| StartError::Config(crate::config::ConfigError::general(e)))?;
    if config.client_port_unification {
        info!("client.portUnification: the client port takes TLS clients too");
    }
    let Some(port) = config.secure_client_port else {
        return Ok((Some(acceptor), None));
    };
    let ip = config.secure_client_port_address;
    let (listener, addr) = bind_port(config, ip, port, "secure client port")?;
    info!("binding to port {addr} (secure client port, TLS)");
    let listener = mio::net::TcpListener::from_std(listener);
    Ok((Some(acceptor), Some((listener, addr))))
}

/// Binds `ip` (all interfaces by default) and `port` for clients, as
/// [`bind_client_port`].
fn bind_port(
    config: &Config,
    ip: Option<IpAddr>,
    port: u16,
    what: &str,
) -> Result<(std::net::TcpListener, SocketAddr), StartError> {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    let listener =
        std::net::TcpListener::bind(addr).map_err(io_err(format!("cannot bind {what} {addr}")))?;
    if config.client_port_listen_backlog > 0 {
        // Listening again only sets the queue's length (clientPortListenBacklog).
        socket2::SockRef::from(&listener)
            .listen(config.client_port_listen_backlog)
            .map_err(io_err("cannot set clientPortListenBacklog"))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot set the listener non-blocking"))?;
    let local = listener
        .local_addr()
        .map_err(io_err("cannot read the bound address"))?;
    Ok((listener, local))
}

/// Takes over an Apache data directory if there is one and none of ours,
/// then recovers ours; warns when Apache wrote past our last zxid.
fn recover(
    config: &Config,
    tree_cfg: TreeConfig,
    fsync: Arc<crate::stats::SyncStats>,
) -> Result<(Storage, zk_tree::Tree, crate::storage::Recovered), StartError> {
    // Before our log exists: an Apache directory with none of our files
    // becomes our snapshot, which the recovery below then loads.
    let took_over = crate::takeover::take_over(config, tree_cfg.clone())?;
    if let Some(line) = &took_over {
        info!("{line}");
    }
    let started = std::time::Instant::now();
    let (storage, tree, mut recovered) = Storage::open_and_recover(config, tree_cfg, fsync)?;
    recovered.db_init_ms = started.elapsed().as_millis() as u64;
    if took_over.is_none()
        && let Some(w) = crate::takeover::apache_newer(config, recovered.last_zxid)
    {
        warn!("{w}");
    }
    Ok((storage, tree, recovered))
}

/// The number of connection loops: zkrs.loopThreads when set, else
/// min(2, this server's share of the cores), the share being the cores
/// divided among the configured servers on this host (at least 1). Three
/// servers on two cores each take one loop, as ZooKeeper's NIO factory takes
/// one selector thread on two cores; a server with a host to itself takes
/// two from two cores.
fn loop_count(configured: usize, cores: usize, servers_here: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        (cores / servers_here.max(1)).clamp(1, 2)
    }
}

/// How many `server.X` lines have a quorum address on this host: a loopback
/// address, or one a socket can bind here (an address of a local
/// interface). 0 when standalone.
fn servers_on_this_host(config: &Config) -> usize {
    use std::net::ToSocketAddrs;
    let local = |hp: &zk_jute::quorum::HostPort| {
        (hp.host.as_str(), 0).to_socket_addrs().is_ok_and(|mut a| {
            a.any(|a| a.ip().is_loopback() || std::net::UdpSocket::bind(a).is_ok())
        })
    };
    config
        .servers
        .iter()
        .filter(|s| s.quorum_addrs.iter().any(local))
        .count()
}

/// The server's threads under SCHED_BATCH (`sched.rs`) when
/// zkrs.schedBatch says so, by default when more than one configured server
/// has its quorum address on this host (`here`): servers sharing the cores
/// preempted each other's threads mid-batch at every hand-off. The threads
/// spawned while the returned scope lives inherit the policy.
fn batch_threads(config: &Config, here: usize) -> Option<crate::sched::BatchSpawns> {
    if !wants_batch(config.sched_batch, here) {
        return None;
    }
    match crate::sched::BatchSpawns::start() {
        Ok(scope) => {
            if scope.switched() {
                info!(
                    "threads scheduled as SCHED_BATCH (zkrs.schedBatch; {here} configured server(s) on this host)"
                );
            }
            Some(scope)
        }
        Err(e) => {
            warn!("cannot schedule the threads as SCHED_BATCH: {e}");
            None
        }
    }
}

/// zkrs.schedBatch's `yes` / `no`, else (`auto`) whether more than one
/// configured server is on this host.
fn wants_batch(setting: Option<bool>, here: usize) -> bool {
    setting.unwrap_or(here > 1)
}

/// The parts of one event loop before its thread starts: its poll and the
/// receiving end of its mailbox.
type LoopParts = (mio::Poll, crossbeam_channel::Receiver<LoopMsg>);

/// Starts the event loops; loop 0 takes the listeners, every loop the
/// secure port's TLS configuration.
fn spawn_loops(
    shared: &Arc<Shared>,
    parts: Vec<LoopParts>,
    mut listeners: crate::net::Listeners,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<(), StartError> {
    for (idx, (poll, rx)) in parts.into_iter().enumerate() {
        let these = crate::net::Listeners {
            plain: listeners.plain.take(),
            secure: listeners.secure.take(),
            tls: listeners.tls.clone(),
            unify: listeners.unify,
        };
        let el = EventLoop::new(idx, poll, these, rx, shared.clone())
            .map_err(io_err("cannot register the listener"))?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("zk-loop-{idx}"))
                .spawn(move || el.run())
                .map_err(io_err("cannot start an event loop"))?,
        );
    }
    Ok(())
}

/// One mailbox per event loop ([`loop_count`]), each with a waker on the
/// loop's poll.
fn loop_mailboxes(
    config: &Config,
    here: usize,
) -> Result<(Vec<LoopHandle>, Vec<LoopParts>), StartError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let here = here.max(1);
    let n_loops = loop_count(config.loop_threads, cores, here);
    info!(
        "{n_loops} connection loop(s) ({cores} core(s), {here} configured server(s) on this host)"
    );
    let mut loops = Vec::with_capacity(n_loops);
    let mut loop_parts = Vec::with_capacity(n_loops);
    for _ in 0..n_loops {
        let poll = mio::Poll::new().map_err(io_err("cannot create an event loop"))?;
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), EventLoop::waker_token())
                .map_err(io_err("cannot create a waker"))?,
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        loops.push(LoopHandle::new(tx, waker));
        loop_parts.push((poll, rx));
    }
    Ok((loops, loop_parts))
}

/// Starts the sequencer's thread; with Zab its role's packets go to the
/// quorum thread `zab` prepared.
fn spawn_core(
    mut core: Sequencer,
    zab: Option<&crate::quorum::Prepared>,
) -> Result<JoinHandle<()>, StartError> {
    if let Some(p) = zab {
        core.set_outbox(p.outbox());
    }
    std::thread::Builder::new()
        .name("zk-core".into())
        .spawn(move || core.run())
        .map_err(io_err("cannot start the core thread"))
}

/// The session tracker, with the recovered sessions.
fn session_tracker(config: &Config, secret: [u8; 16], sessions: &[(i64, i32)]) -> SessionTracker {
    let mut tracker = SessionTracker::new(
        config.my_id as u8,
        secret,
        u64::from(config.tick_time),
        0,
        crate::stats::wall_ms() as u64,
    );
    if config.is_ensemble() || crate::takeover::apache_passwords(&config.data_dir) {
        // Every server of an ensemble (Apache's too) validates a moving
        // client's password from the session id alone; after taking over
        // Apache's data, its sessions keep their passwords.
        tracker.use_apache_passwords();
    }
    for (session, timeout) in sessions {
        tracker.add(*session, *timeout, 0);
    }
    tracker
}

/// Ensemble mode (more than one server.X line): the election and the
/// quorum port run on their own thread, and the server serves once the
/// sequencer's Zab role does.
/// Standalone: it serves at once.
fn start_quorum(
    shared: &Arc<Shared>,
    quorum: Option<(std::net::TcpListener, crate::quorum::Prepared)>,
    last_zxid: i64,
    last_seen: Option<(u64, Vec<zk_jute::quorum::QuorumServer>)>,
    core_tx: Inbox<CoreMsg>,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<Option<crate::quorum::QuorumStop>, StartError> {
    let Some((listener, prepared)) = quorum else {
        shared.control.set_serving(true);
        return Ok(None);
    };
    let (stop, thread) = crate::quorum::start(
        &shared.config,
        listener,
        last_zxid,
        last_seen,
        prepared,
        core_tx,
        &shared.stats,
    )?;
    threads.push(thread);
    Ok(Some(stop))
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    recovered: String,
    quorum: Option<crate::quorum::QuorumStop>,
    /// The AdminServer and `/metrics`, when on and bound.
    http: Vec<crate::http::HttpServer>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

impl Server {
    /// Recovers the data in the configured directories, binds the client port
    /// and starts serving. Returns once clients can connect.
    pub fn start(config: Config) -> Result<Server, StartError> {
        let here = servers_on_this_host(&config);
        // Every thread is spawned below, while this lives.
        let _batch = batch_threads(&config, here);
        let secret = prepare_dirs(&config)?;
        // Ensemble mode (more than one server.X line): the election port first.
        let election_port = if config.is_ensemble() {
            Some(crate::quorum::bind_election_port(&config)?)
        } else {
            None
        };

        let tree_cfg = tree_config(&config);
        if config.skip_acl {
            warn!("skipACL is set: every ACL check passes");
        }
        // The log's syncs are timed from the start (mntr's zk_*_fsynctime).
        let fsync = Arc::new(crate::stats::SyncStats::default());
        let (storage, tree, recovered) = recover(&config, tree_cfg, fsync.clone())?;
        let tree = Arc::new(tree);
        let last_zxid = recovered.last_zxid;

        let clock = Instant::now();
        let tracker = session_tracker(&config, secret, &recovered.sessions);

        let (listeners, local, secure_addr) = bind_client_ports(&config)?;

        let core_tx = Inbox::new();
        let core_rx = core_tx.clone();
        let mut shared = Shared::new(
            config.clone(),
            {
                let control = Control::new(Mode::Standalone, last_zxid.as_i64());
                control.set_config_version(config.config_version);
                control
            },
            tracker,
            tree.clone(),
            core_tx.clone(),
            clock,
        );
        shared.stats.fsync = fsync;
        shared.stats.started_from(&recovered);
        if let Some(users) = crate::sasl::load_users(&config)? {
            let _ = shared.sasl.set(users);
        }
        let shared = Arc::new(shared);
        shared.set_local_addr(local);
        if let Some(addr) = secure_addr {
            shared.set_secure_addr(addr);
        }

        let (loops, loop_parts) = loop_mailboxes(&config, here)?;
        shared.set_loops(loops);

        let mut threads = Vec::new();
        // Ensemble mode: the quorum thread's poll first, so that the Zab
        // role's outbox (sequencer → quorum port) can wake it.
        let prepared = match &election_port {
            Some(_) => Some(crate::quorum::Prepared::new()?),
            None => None,
        };
        let core = Sequencer::new(
            shared.clone(),
            storage,
            core_rx,
            core_tx.clone(),
            &recovered,
        );
        // The first election counts the last-seen configuration recovery found.
        let last_seen = core.last_seen();
        threads.push(spawn_core(core, prepared.as_ref())?);
        spawn_loops(&shared, loop_parts, listeners, &mut threads)?;
        let quorum = start_quorum(
            &shared,
            election_port.zip(prepared),
            last_zxid.as_i64(),
            last_seen,
            core_tx,
            &mut threads,
        )?;
        let summary = recovered.summary.clone();
        info!("{summary}");
        info!(
            "binding to port {local}; tickTime {} ms, sessions {}..{} ms, dataDir {}, dataLogDir {}",
            config.tick_time,
            config.min_session_timeout,
            config.max_session_timeout,
            config.data_dir.display(),
            config.data_log_dir.display()
        );
        // The operators' endpoints last: a port they cannot bind is logged
        // and the server serves clients without them.
        let http = [crate::admin::start(&shared), crate::metrics::start(&shared)]
            .into_iter()
            .flatten()
            .collect();
        Ok(Server {
            shared,
            threads,
            recovered: summary,
            quorum,
            http,
        })
    }

    /// The bound client address (useful with `clientPort=0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    /// What recovery found, one line.
    pub fn recovery_summary(&self) -> &str {
        &self.recovered
    }

    /// The AdminServer's bound address, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.http
            .iter()
            .find(|h| h.name() == "zk-admin")
            .map(|h| h.local_addr())
    }

    /// The Prometheus endpoint's bound address, if it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http
            .iter()
            .find(|h| h.name() == "zk-metrics")
            .map(|h| h.local_addr())
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.shared.config.data_dir.clone()
    }

    /// Stops accepting, lets requests in flight finish and be answered, closes
    /// every connection, flushes the log, and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        info!("shutting down");
        for h in &mut self.http {
            h.stop();
        }
        self.shared.control.set_serving(false);
        if let Some(q) = &self.quorum {
            q.stop();
        }
        // The core finishes what is in flight, then tells the loops to stop.
        self.shared.send_core(CoreMsg::Shutdown);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        info!("shutdown complete");
    }

    /// Blocks until the server stops (after [`ShutdownHandle::shutdown`] or a
    /// fatal error); `Err` names the failure that stopped it (a storage
    /// error: the txn log or an epoch file could not be written).
    pub fn wait(mut self) -> Result<(), String> {
        let mut threads = self.threads.drain(..);
        // The core first: it ends on shutdown or on a fatal error, and then
        // the quorum thread (elections, the quorum port) must stop too.
        if let Some(core) = threads.next() {
            let _ = core.join();
        }
        if let Some(q) = &self.quorum {
            q.stop();
        }
        for t in threads {
            let _ = t.join();
        }
        for h in &mut self.http {
            h.stop();
        }
        match self.shared.control.failure() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// A handle that can stop the server from another thread (signal handler).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
            quorum: self.quorum.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops a server from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    quorum: Option<crate::quorum::QuorumStop>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownHandle")
    }
}

impl ShutdownHandle {
    /// Asks the server to stop; [`Server::wait`] then returns.
    pub fn shutdown(&self) {
        self.shared.control.set_serving(false);
        if let Some(q) = &self.quorum {
            q.stop();
        }
        self.shared.send_core(CoreMsg::Shutdown);
    }
}

/// The tree's settings from zoo.cfg's.
fn tree_config(config: &Config) -> TreeConfig {
    TreeConfig {
        extended_types: config.extended_types,
        emulate_353_ttl: config.emulate_353_ttl,
        skip_acl: config.skip_acl,
        reconfig_enabled: config.reconfig_enabled,
        enforce_quota: config.enforce_quota,
        // ZooKeeper's registered providers beyond ip and digest: SASL's when
        // configured, X509's with a secure port (configureSSLAuth).
        extra_auth_schemes: [("sasl", config.sasl_acl), ("x509", config.tls_configured())]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| s.to_string())
            .collect(),
        ..TreeConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling policy of each of this process's threads named `name`.
    #[cfg(target_os = "linux")]
    fn policies_of(name: &str) -> Vec<i32> {
        let mut found = Vec::new();
        for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == name {
                found.push(crate::sched::policy_in(&t.path().join("stat")));
            }
        }
        found
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn zkrs_sched_batch_puts_the_servers_threads_and_not_the_callers_under_sched_batch() {
        if crate::sched::policy_in("/proc/thread-self/stat".as_ref()) != 0 {
            eprintln!("skipped: the tests run under another policy than SCHED_OTHER");
            return;
        }
        for (setting, expected) in [(Some(true), 3), (None, 0), (Some(false), 0)] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config::standalone(dir.path().to_path_buf(), 0);
            config.sched_batch = setting;
            let caller = std::thread::Builder::new()
                .spawn(move || {
                    let server = Server::start(config).unwrap();
                    // A thread names itself once it runs: wait for both.
                    let deadline = Instant::now() + std::time::Duration::from_secs(5);
                    let seen = loop {
                        let seen = (policies_of("zk-core"), policies_of("zk-loop-0"));
                        if !seen.0.is_empty() && !seen.1.is_empty() || Instant::now() > deadline {
                            break seen;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    };
                    let mine = crate::sched::policy_in("/proc/thread-self/stat".as_ref());
                    server.shutdown();
                    (seen, mine)
                })
                .unwrap();
            let ((core, looped), caller) = caller.join().unwrap();
            assert_eq!(core, [expected], "{setting:?}: the sequencer");
            assert_eq!(looped, [expected], "{setting:?}: a loop");
            assert_eq!(
                caller, 0,
                "{setting:?}: the caller's thread is left as it was"
            );
        }
    }

    #[test]
    fn sched_batch_auto_switches_when_servers_share_the_host() {
        assert!(!wants_batch(None, 0), "standalone");
        assert!(!wants_batch(None, 1), "a host to itself");
        assert!(wants_batch(None, 2));
        assert!(wants_batch(None, 5));
        assert!(!wants_batch(Some(false), 3));
        assert!(wants_batch(Some(true), 0));
    }

    #[test]
    fn servers_sharing_a_host_share_its_cores_among_their_loops() {
        assert_eq!(loop_count(0, 2, 0), 2, "standalone on two cores");
        assert_eq!(loop_count(0, 1, 0), 1);
        assert_eq!(loop_count(0, 16, 1), 2, "a host to itself");
        assert_eq!(loop_count(0, 2, 3), 1, "three servers on two cores");
        assert_eq!(loop_count(0, 2, 5), 1);
        assert_eq!(loop_count(0, 8, 3), 2);
        assert_eq!(loop_count(3, 2, 3), 3, "zkrs.loopThreads wins");
    }

    #[test]
    fn servers_on_this_host_are_those_with_a_local_quorum_address() {
        let text = |hosts: &[&str]| {
            let mut t = String::from("tickTime=2000\ndataDir=/tmp/x\nclientPort=2181\n");
            for (i, h) in hosts.iter().enumerate() {
                t += &format!("server.{}={h}:{}:{}\n", i + 1, 2888 + i, 3888 + i);
            }
            t
        };
        let here = |hosts: &[&str]| servers_on_this_host(&Config::parse(&text(hosts)).unwrap());
        assert_eq!(here(&[]), 0);
        assert_eq!(here(&["127.0.0.1", "127.0.0.2", "localhost"]), 3);
        // TEST-NET-3 (RFC 5737) is no address of this host (this VM has one of TEST-NET-1).
        assert_eq!(here(&["127.0.0.1", "203.0.113.7", "203.0.113.8"]), 1);
        assert_eq!(here(&["0.0.0.0", "203.0.113.7", "203.0.113.8"]), 1);
    }
}
