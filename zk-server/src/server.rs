//! Start-up, recovery, the threads, and shutdown.
//!
//! ```text
//! loop 0 (accepts) ─┐                         ┌─ zk-txnlog sync thread (group commit)
//! loop 1 ───────────┼── CoreMsg ──▶ core ─────┤      │ durable → CoreMsg::Durable
//!                   │◀── LoopMsg + Waker ──   └──────┘
//!                   └── reads of idle sessions straight from the tree (read lock)
//! snapshot thread: fuzzy snapshot every snapCount txns; autopurge timer
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::inbox::Inbox;
use tracing::{info, warn};
use zk_tree::{Tree, TreeConfig};

use crate::config::Config;
use crate::core::{Core, CoreMsg};
use crate::fourlw::TreeInfo;
use crate::net::{EventLoop, LoopHandle, LoopMsg};
use crate::sessions::SessionTracker;
use crate::stats::ServerStats;
use crate::storage::Storage;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A socket or directory could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The log or a snapshot could not be recovered.
    #[error("recovery failed: {0}")]
    Recovery(String),
    /// Not built yet.
    #[error("{0}")]
    Unsupported(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}

/// State shared by the loops, the core and the 4lw.
pub(crate) struct Shared {
    pub config: Config,
    pub stats: ServerStats,
    pub sessions: Mutex<SessionTracker>,
    pub tree: Arc<Tree>,
    /// Taken for writing by the core around "apply a txn and queue its events
    /// and reply", and for reading by a loop around "drain my mailbox, then
    /// serve a read": a client never sees data before the event that announces it.
    pub gate: RwLock<()>,
    loops: OnceLock<Vec<LoopHandle>>,
    core_tx: Inbox<CoreMsg>,
    clock: Instant,
    wall_at_start: i64,
    local_addr: OnceLock<SocketAddr>,
}

impl Shared {
    pub fn loops(&self) -> &[LoopHandle] {
        self.loops.get().map_or(&[], |v| v.as_slice())
    }

    pub fn send_core(&self, m: CoreMsg) {
        self.core_tx.send(m);
    }

    /// Monotonic ms since start.
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    /// Wall-clock time (ms) of a monotonic instant.
    pub fn monotonic_to_wall(&self, ms: u64) -> i64 {
        self.wall_at_start + ms as i64
    }

    pub fn last_zxid(&self) -> i64 {
        self.stats.last_zxid.load(Relaxed)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
            .get()
            .copied()
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    /// A read guard on the tree for a loop thread (see [`Shared::gate`]).
    pub fn read_gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn expiry_buckets(&self) -> Vec<(u64, Vec<i64>)> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expiry_buckets()
    }

    pub fn session_of_conn(&self, conn: u64) -> i64 {
        self.stats
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&conn)
            .map_or(0, |c| c.session_id.load(Relaxed))
    }

    pub fn tree_info(&self) -> TreeInfo {
        crate::core::tree_info(&self.tree)
    }
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    recovered: String,
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
        if config.is_ensemble() {
            return Err(StartError::Unsupported(format!(
                "{} servers are configured: ensemble mode is not implemented yet (run with one server.X line or none)",
                config.servers.len()
            )));
        }
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
        let secret = crate::sessions::load_or_create_secret(&config.data_dir)
            .map_err(io_err("cannot read or create server.secret in dataDir"))?;

        let tree_cfg = TreeConfig {
            extended_types: config.extended_types,
            skip_acl: config.skip_acl,
            reconfig_enabled: config.reconfig_enabled,
            ..TreeConfig::default()
        };
        if config.skip_acl {
            warn!("skipACL is set: every ACL check passes");
        }
        let (storage, tree, recovered) = Storage::open_and_recover(&config, tree_cfg)?;
        let tree = Arc::new(tree);
        let last_zxid = recovered.last_zxid;

        let clock = Instant::now();
        let mut tracker = SessionTracker::new(
            config.my_id as u8,
            secret,
            u64::from(config.tick_time),
            0,
            crate::stats::wall_ms() as u64,
        );
        for (sid, timeout) in &recovered.sessions {
            tracker.add(*sid, *timeout, 0);
        }

        let bind_ip = config
            .client_port_address
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(bind_ip, config.client_port);
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(io_err(format!("cannot bind client port {addr}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(io_err("cannot set the listener non-blocking"))?;
        let local = std_listener
            .local_addr()
            .map_err(io_err("cannot read the bound address"))?;

        let core_tx = Inbox::new();
        let core_rx = core_tx.clone();
        let stats = ServerStats::default();
        stats.last_zxid.store(last_zxid, Relaxed);
        let shared = Arc::new(Shared {
            config: config.clone(),
            stats,
            sessions: Mutex::new(tracker),
            tree: tree.clone(),
            gate: RwLock::new(()),
            loops: OnceLock::new(),
            core_tx: core_tx.clone(),
            clock,
            wall_at_start: crate::stats::wall_ms(),
            local_addr: OnceLock::new(),
        });
        let _ = shared.local_addr.set(local);

        let n_loops = if config.loop_threads > 0 {
            config.loop_threads
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, 2)
        };
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
        let _ = shared.loops.set(loops);

        let mut threads = Vec::new();
        let core = Core::new(shared.clone(), storage, core_rx, core_tx, &recovered);
        threads.push(
            std::thread::Builder::new()
                .name("zk-core".into())
                .spawn(move || core.run())
                .map_err(io_err("cannot start the core thread"))?,
        );
        let mut listener = Some(mio::net::TcpListener::from_std(std_listener));
        for (idx, (poll, rx)) in loop_parts.into_iter().enumerate() {
            let el = EventLoop::new(idx, poll, listener.take(), rx, shared.clone())
                .map_err(io_err("cannot register the listener"))?;
            threads.push(
                std::thread::Builder::new()
                    .name(format!("zk-loop-{idx}"))
                    .spawn(move || el.run())
                    .map_err(io_err("cannot start an event loop"))?,
            );
        }
        shared.stats.serving.store(true, Relaxed);
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
        Ok(Server {
            shared,
            threads,
            recovered: summary,
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
        self.shared.stats.serving.store(false, Relaxed);
        // The core finishes what is in flight, then tells the loops to stop.
        self.shared.send_core(CoreMsg::Shutdown);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        info!("shutdown complete");
    }

    /// Blocks until the server stops (after [`ShutdownHandle::shutdown`] or a fatal error).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// A handle that can stop the server from another thread (signal handler).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
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
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownHandle")
    }
}

impl ShutdownHandle {
    /// Asks the server to stop; [`Server::wait`] then returns.
    pub fn shutdown(&self) {
        self.shared.stats.serving.store(false, Relaxed);
        self.shared.send_core(CoreMsg::Shutdown);
    }
}

/// Tells every loop to stop (called by the core once it drained).
pub(crate) fn stop_loops(shared: &Shared) {
    for l in shared.loops() {
        l.send(LoopMsg::Shutdown);
    }
}
