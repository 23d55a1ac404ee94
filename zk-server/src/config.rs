//! zoo.cfg: the keys of the ZooKeeper admin guide, parsed as Java properties.
//!
//! Unknown keys are kept as warnings (ZooKeeper turns them into `zookeeper.<key>`
//! system properties); a value that does not parse is an error naming the key and
//! the line. Keys ZooKeeper knows but this server does not act on are accepted
//! with a warning that says so, so a config copied from the docs works as-is.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use zk_jute::quorum::{LearnerType, QuorumServer};

/// The data directory used when the server starts without a config file.
pub const DEFAULT_DATA_DIR: &str = "/tmp/zookeeper";
/// The client port used when none is configured.
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// ZooKeeper's default `jute.maxbuffer`.
pub const DEFAULT_JUTE_MAX_BUFFER: usize = 0xfffff;

/// An invalid configuration: what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// 1-based line number, when the error is about one line.
    pub line: Option<usize>,
    /// The key concerned, if any.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl ConfigError {
    fn at(line: usize, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: Some(line),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    pub(crate) fn general(message: impl Into<String>) -> Self {
        Self {
            file: None,
            line: None,
            key: None,
            message: message.into(),
        }
    }
}

/// Which four-letter words are enabled (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    /// `*`: every command.
    All,
    /// Only these (lower-case four-letter names).
    Only(Vec<String>),
}

impl Whitelist {
    /// Whether `cmd` may run.
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(list) => list.iter().any(|c| c == cmd),
        }
    }
}

impl Default for Whitelist {
    /// ZooKeeper's default: `srvr` only.
    fn default() -> Self {
        Whitelist::Only(vec!["srvr".to_string()])
    }
}

/// The server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    /// tickTime in ms (default 3000).
    pub tick_time: u32,
    /// initLimit in ticks (ensemble only).
    pub init_limit: u32,
    /// syncLimit in ticks (ensemble only).
    pub sync_limit: u32,
    /// dataDir: snapshots, `myid`, the server secret.
    pub data_dir: PathBuf,
    /// dataLogDir: log segments (defaults to dataDir).
    pub data_log_dir: PathBuf,
    /// clientPort (0 = an ephemeral port, reported at startup).
    pub client_port: u16,
    /// clientPortAddress (default: all interfaces).
    pub client_port_address: Option<IpAddr>,
    /// secureClientPort: the TLS client port (None when unset or 0, as
    /// ZooKeeper's), served with [`Config::tls`].
    pub secure_client_port: Option<u16>,
    /// secureClientPortAddress (default: all interfaces).
    pub secure_client_port_address: Option<IpAddr>,
    /// `ssl.keyStore.*`, `ssl.trustStore.*`, `ssl.clientAuth` and
    /// `X509AuthenticationProvider.superUser` (zoo.cfg keys, else the JVM's
    /// `-Dzookeeper.ssl...` properties: [`Config::read_jvm_flags`]).
    pub tls: crate::tls::TlsSettings,
    /// Whether the plain client port is served: false when zoo.cfg sets a
    /// secureClientPort and no clientPort (nor a client address in this
    /// server's line), as ZooKeeper then serves TLS only.
    pub plain_client_port: bool,
    /// `client.portUnification` (ZooKeeper's `zookeeper.client.portUnification`):
    /// the client port also takes TLS clients, told apart by their first byte.
    pub client_port_unification: bool,
    /// The [`TLS_KEYS`] zoo.cfg set (the JVM's properties count for the others).
    tls_keys_set: Vec<String>,
    /// maxClientCnxns per client IP (0 = unlimited; default 60).
    pub max_client_cnxns: u32,
    /// maxCnxns (ZooKeeper's `zookeeper.maxCnxns`): client connections in
    /// all, four-letter words included (0 = unlimited, the default; a
    /// negative value is 0 with a warning, as Apache).
    pub max_cnxns: u32,
    /// clientPortListenBacklog: the client port's listen backlog (≤ 0, the
    /// default: the system's, 128 here; Apache's JVM default is 50).
    pub client_port_listen_backlog: i32,
    /// clientTcpKeepAlive (ZooKeeper's `zookeeper.clientTcpKeepAlive`,
    /// default false): TCP keep-alive on client connections.
    pub client_tcp_keep_alive: bool,
    /// connectToLearnerMasterLimit (ticks): how long a learner dials its
    /// leader before it elects again (0, the default: initLimit).
    pub connect_to_learner_master_limit: u32,
    /// minSessionTimeout in ms (default 2 × tickTime).
    pub min_session_timeout: u32,
    /// maxSessionTimeout in ms (default 20 × tickTime).
    pub max_session_timeout: u32,
    /// autopurge.snapRetainCount (default and minimum 3).
    pub snap_retain_count: u32,
    /// autopurge.purgeInterval in hours (0 = off).
    pub purge_interval_hours: u32,
    /// snapCount: txns between snapshots (randomised in [snapCount/2+1, snapCount]).
    pub snap_count: u64,
    /// snapSizeLimitInKb: a snapshot is also due once this many KiB of log
    /// were written since the last one, whatever snapCount says (default
    /// 4 GiB; 0 or negative turns it off).
    pub snap_size_limit_kb: i64,
    /// zkrs.snapLogPercent: a snapCount-triggered snapshot also waits until the
    /// log written since the last snapshot is at least this percentage of that
    /// snapshot's size (default 50; 0 = ZooKeeper's rule alone). Writing a
    /// whole large tree to save replaying a log a fraction of its size costs
    /// the write path CPU and disk for nothing; replay stays bounded.
    pub snap_log_percent: u64,
    /// zkrs.snapReplayPercent: a snapshot is also due, whatever snapCount
    /// says, once the log written since the last one reaches this percentage
    /// of the size a snapshot of the tree would have now (and at least
    /// 1 MiB; each txn counted at least 200 bytes, its replay cost), so
    /// that a restart never replays more log than that; such an interim
    /// snapshot replaces the previous interim one (default 100; 0 = off).
    pub snap_replay_percent: u64,
    /// preAllocSize in KB: the log segment size (default 16384; Apache's
    /// 65536 is the step its log files grow by). A start scans the newest
    /// segment's records to find the log's end, so smaller segments start
    /// faster: a 64 MiB one filled to 37 MB took ~8 ms of a follower's
    /// restart.
    pub pre_alloc_size_kb: u64,
    /// zkrs.logZeroFill (default yes): prepare the next log segment ahead,
    /// zero-filled on a helper thread, so that a sync into it commits no
    /// extent conversion to the filesystem journal; `no` preallocates each
    /// segment with fallocate at the roll instead (no background writes).
    pub log_zero_fill: bool,
    /// flushDelay in ms (ZooKeeper's zookeeper.flushDelay, default 0): how long
    /// the log's sync thread waits for more txns before a sync (0: sync as soon
    /// as one is queued; txns arriving during a sync form the next batch).
    pub flush_delay_ms: u64,
    /// zkrs.busySyncGather (default 16): with flushDelay 0, when at least this
    /// many txns were logged while the previous batch was written and synced,
    /// the sync thread waits up to that batch's time (at most 2 ms) for more
    /// before the next sync: a busy server syncs fewer, larger batches, one
    /// logging slowly syncs at once. 0 turns it off.
    pub busy_sync_gather: usize,
    /// maxBatchSize (ZooKeeper's zookeeper.maxBatchSize): most txns one sync
    /// makes durable (None: zk-txnlog's default, 4096).
    pub max_batch_size: Option<usize>,
    /// globalOutstandingLimit (default 1000).
    pub global_outstanding_limit: u32,
    /// 4lw.commands.whitelist.
    pub four_letter_whitelist: Whitelist,
    /// jute.maxbuffer: the largest request accepted.
    pub jute_max_buffer: usize,
    /// forceSync (default yes). `no` acknowledges writes before they are durable.
    pub force_sync: bool,
    /// The super user's digest (`superDigest`, `user:base64(sha1(user:pw))`).
    pub super_digest: Option<String>,
    /// The most bytes queued for one connection before it stops being read
    /// (and is closed if it still grows).
    pub max_output_queue_bytes: usize,
    /// Loop threads for client connections (0 = min(2, this server's share of
    /// the cores), see `server::loop_count`).
    pub loop_threads: usize,
    /// zkrs.schedBatch: the server's threads run under Linux's SCHED_BATCH
    /// policy (a thread woken does not preempt the one running; see
    /// `sched.rs`). `None` (the default, or `auto`): when more than one
    /// configured server has its quorum address on this host.
    pub sched_batch: Option<bool>,
    /// extendedTypesEnabled: TTL nodes (createTTL is UNIMPLEMENTED without it).
    pub extended_types: bool,
    /// skipACL: every ACL check passes (unsafe).
    pub skip_acl: bool,
    /// emulate353TTLNodes (ZooKeeper's `zookeeper.emulate353TTLNodes`, with
    /// extendedTypesEnabled): owners `0x80..|ttl` are TTL nodes written by
    /// ZooKeeper 3.5.3 (for a data dir taken over from one).
    pub emulate_353_ttl: bool,
    /// enforceQuota (ZooKeeper's `zookeeper.enforceQuota`): creates and
    /// setDatas past a quota's hard limit fail with QUOTAEXCEEDED.
    pub enforce_quota: bool,
    /// SASL (DIGEST-MD5) client authentication, with the users of this JAAS
    /// file (`zkrs.jaasConfig`; else `-Djava.security.auth.login.config=`
    /// in `SERVER_JVMFLAGS` or `JVMFLAGS`, as zkServer.sh passes it).
    pub jaas_config: Option<PathBuf>,
    /// The JAAS section of the server's users (`sasl.serverconfig`,
    /// ZooKeeper's `zookeeper.sasl.serverconfig`; default `Server`).
    pub sasl_section: String,
    /// `authProvider.N=...SASLAuthenticationProvider`: ACLs of scheme `sasl`.
    pub sasl_acl: bool,
    /// `superUser` (`zookeeper.superUser`): the SASL user that is super.
    pub super_user: Option<String>,
    /// The auth schemes every request needs one id of, else the connection
    /// is closed with SESSIONCLOSEDREQUIRESASLAUTH (`enforce.auth.enabled`
    /// with `enforce.auth.schemes`, or `sessionRequireClientSASLAuth`:
    /// `sasl`); empty: not enforced.
    pub enforce_auth: Vec<String>,
    /// `allowSaslFailedClients`: a failed SASL exchange keeps the
    /// connection (unless SASL is enforced).
    pub allow_sasl_failed_clients: bool,
    /// `enforce.auth.enabled`, `enforce.auth.schemes` and
    /// `sessionRequireClientSASLAuth` as read (settled into `enforce_auth`).
    enforce_keys: (bool, Vec<String>, bool),
    /// digest.enabled (ZooKeeper's `zookeeper.digest.enabled`, default
    /// true): a leader sends the tree digest with each proposal, and every
    /// server checks the digests it is sent against its tree.
    pub digest_enabled: bool,
    /// reconfigEnabled: a leader gives a configuration of version 0 its first
    /// epoch's zxid as its version and every member writes it to a dynamic
    /// config file (`crate::dynamic_config`), as ZooKeeper; the reconfig
    /// operation itself still fails (not built; RECONFIGDISABLED when off).
    pub reconfig_enabled: bool,
    /// znode.container.checkIntervalMs: how often empty containers and expired
    /// TTL nodes are deleted (default 60000).
    pub container_check_interval_ms: u64,
    /// localSessionsEnabled: this server creates no local sessions (every
    /// session is global, as with the key off), but as leader it takes the
    /// writes Apache learners forward for their local sessions (an unknown
    /// session of another server), as ZooKeeper's `LeaderSessionTracker`.
    pub local_sessions_enabled: bool,
    /// Read-only mode (ZooKeeper's `readonlymode.enabled`, a Java system
    /// property only: `-Dreadonlymode.enabled=true` in `SERVER_JVMFLAGS` or
    /// `JVMFLAGS`, [`Config::read_jvm_flags`]): a LOOKING server of an
    /// ensemble serves reads to read-only clients after max(2 s, tickTime).
    pub read_only_mode: bool,
    /// leaderServes (ZooKeeper's `zookeeper.leaderServes`, default yes): `no`
    /// keeps client connections off the leader (its 4lw answer "not serving",
    /// as Apache's, whose leader then has no server for its clients).
    pub leader_serves: bool,
    /// standaloneEnabled (default true): false makes a configuration of one
    /// voter a quorum of one instead of a standalone server.
    pub standalone_enabled: bool,
    /// `server.X` lines (zoo.cfg's, or its `dynamicConfigFile`'s).
    pub servers: Vec<QuorumServer>,
    /// dynamicConfigFile: the file the `server.X` lines came from, as
    /// ZooKeeper 3.5+ writes it once reconfig is enabled (zoo.cfg then holds
    /// none).
    pub dynamic_config_file: Option<PathBuf>,
    /// The configuration's version: the hex suffix of the dynamic config
    /// file's name (`zoo.cfg.dynamic.100000000`), 0 for a static config. It
    /// is sent in notifications, LearnerInfo and NEWLEADER, and stored in
    /// `/zookeeper/config`; ZooKeeper's leader refuses a learner whose
    /// version is ahead of its own.
    pub config_version: u64,
    /// `group.N` lines: hierarchical quorums (ZooKeeper's
    /// `QuorumHierarchical`), each group's server ids in increasing order.
    pub groups: BTreeMap<u64, Vec<u64>>,
    /// `weight.N` lines; with groups, every voter's weight (1 unless given),
    /// as ZooKeeper prints its configuration.
    pub weights: BTreeMap<u64, u64>,
    /// The hierarchical quorum the groups and weights make (validated), if
    /// any: the election and Zab count with it instead of a majority.
    pub quorum_groups: Option<std::sync::Arc<zk_election::Groups>>,
    /// This server's id (from `myid`, 0 when standalone without one).
    pub my_id: u64,
    /// The line of each entry of `servers` (for error messages).
    pub server_lines: Vec<usize>,
    /// peerType: this server's role as zoo.cfg states it; its own server.X
    /// line wins when they differ (with a warning), as in ZooKeeper.
    pub peer_type: LearnerType,
    /// quorumListenOnAllIPs: listen on the election and quorum ports on every
    /// interface (0.0.0.0) instead of the server.X host.
    pub quorum_listen_on_all_ips: bool,
    /// cnxTimeout (ms): how long dialing a peer's election port may take
    /// (ZooKeeper's `zookeeper.cnxTimeout`, default 5000).
    pub cnx_timeout_ms: u64,
    /// electionPortBindRetry: attempts to bind the election port, 1 s apart,
    /// before giving up (0 = forever; default 3).
    pub election_port_bind_retry: u32,
    /// zkrs.electionFinalizeWaitMs: the election's finalize wait and first
    /// notification interval (default `zk_election::DEFAULT_FINALIZE_WAIT_MS`;
    /// ZooKeeper's is 200).
    pub election_finalize_wait_ms: u64,
    /// Whether zoo.cfg set clientPort (else this server's `server.X` line may
    /// give it, after `;`).
    pub client_port_explicit: bool,
    /// fsync.warningthresholdms (default 1000): a txn log sync slower than
    /// this is logged and counted (`fsync_threshold_exceed_count`).
    pub fsync_warning_threshold_ms: u64,
    /// The AdminServer (`admin.*` keys).
    pub admin: AdminConfig,
    /// The Prometheus endpoint (`metricsProvider.*` keys), if
    /// `metricsProvider.className` names Apache's Prometheus provider.
    pub metrics: Option<MetricsConfig>,
    /// The zoo.cfg text as read (the AdminServer's `initial_configuration`).
    pub initial_text: String,
    /// Warnings met while parsing (unknown keys, ignored keys); the caller logs them.
    pub warnings: Vec<String>,
}

/// The AdminServer's settings, with Apache ZooKeeper's defaults (it is on
/// unless `admin.enableServer=false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// admin.enableServer (default true).
    pub enabled: bool,
    /// admin.serverAddress (default 0.0.0.0).
    pub address: IpAddr,
    /// admin.serverPort (default 8080; 0 lets the kernel choose).
    pub port: u16,
    /// admin.commandURL (default `/commands`).
    pub command_url: String,
    /// admin.idleTimeout in ms (default 30000): how long a connection may
    /// stay silent before it is closed.
    pub idle_timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            address: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 8080,
            command_url: "/commands".into(),
            idle_timeout_ms: 30_000,
        }
    }
}

/// The class name that turns the Prometheus endpoint on, as in Apache's zoo.cfg.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// The Prometheus endpoint's settings (`metricsProvider.*`, Apache's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// metricsProvider.httpHost (default 0.0.0.0).
    pub host: IpAddr,
    /// metricsProvider.httpPort (default 7000; 0 lets the kernel choose).
    pub port: u16,
    /// metricsProvider.exportJvmInfo (default true): accepted; there is no
    /// JVM to describe, which the server logs once.
    pub export_jvm_info: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            port: 7000,
            export_jvm_info: true,
        }
    }
}

/// The `metricsProvider.*` keys as read, settled once every line is.
#[derive(Debug, Default)]
struct MetricsKeys {
    class_name: Option<String>,
    host: Option<IpAddr>,
    port: Option<u16>,
    export_jvm_info: Option<bool>,
}

impl Default for Config {
    /// What an empty zoo.cfg gives (dataDir /tmp/zookeeper): Apache's
    /// defaults, the AdminServer on.
    fn default() -> Self {
        let mut c = Self::standalone(PathBuf::from(DEFAULT_DATA_DIR), DEFAULT_CLIENT_PORT);
        c.admin.enabled = true;
        c
    }
}

/// The Java system property `name` as `-Dname=value` in `SERVER_JVMFLAGS`,
/// else in `JVMFLAGS` (what zkServer.sh passes to ZooKeeper's JVM): its value
/// (quotes around it dropped), `""` for a bare `-Dname`.
pub fn jvm_system_property(name: &str) -> Option<String> {
    ["SERVER_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .find_map(|var| system_property_in(&std::env::var(var).ok()?, name))
}

/// The value of `-Dname=...` (or a bare `-Dname`) among JVM `flags`.
fn system_property_in(flags: &str, name: &str) -> Option<String> {
    flags.split_whitespace().find_map(|f| {
        let rest = f.strip_prefix("-D")?.strip_prefix(name)?;
        match rest.strip_prefix('=') {
            Some(v) => Some(v.trim_matches('"').to_string()),
            None => rest.is_empty().then(String::new),
        }
    })
}

/// Keys Apache ZooKeeper knows that this server accepts but does not act on.
const KNOWN_IGNORED: &[&str] = &[
    "syncEnabled",
    "localSessionsUpgradingEnabled",
    "observerMasterPort",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "snapshot.compression.method",
    "txnLogSizeLimitInKb",
    "watchManagerName",
    "sslQuorum",
    "portUnification",
    "serverCnxnFactory",
    "quorum.auth.enableSasl",
];

/// The zoo.cfg keys of the secure client port's TLS (ZooKeeper makes each
/// the system property `zookeeper.<key>`; [`Config::set_tls_key`]).
const TLS_KEYS: &[&str] = &[
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "X509AuthenticationProvider.superUser",
];

/// Whether `key` is one [`Config::apply_tls_line`] takes.
fn is_tls_key(key: &str) -> bool {
    key.starts_with("secureClientPort")
        || key == "ssl.authProvider"
        || key == "client.portUnification"
        || TLS_KEYS.contains(&key)
}

/// Two servers on one `host:port` (quorum or election port, in any
/// combination, also within one line): the text of the error, naming the
/// earlier line.
fn address_clash(servers: &[QuorumServer], lines: &[usize], new: &QuorumServer) -> Option<String> {
    let own: Vec<_> = new.quorum_addrs.iter().chain(&new.election_addrs).collect();
    for (i, a) in own.iter().enumerate() {
        if own[..i].contains(a) {
            return Some(format!("{a} is both its quorum and its election address"));
        }
    }
    for (s, line) in servers.iter().zip(lines) {
        if let Some(a) = s
            .quorum_addrs
            .iter()
            .chain(&s.election_addrs)
            .find(|a| own.contains(a))
        {
            return Some(format!(
                "{a} is already used by server.{} on line {line}",
                s.id
            ));
        }
    }
    None
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

impl Config {
    /// The ensemble's configuration text as ZooKeeper stores it in
    /// `/zookeeper/config` and sends it in notifications and NEWLEADER:
    /// `server.N=...` lines by id, then `version=<hex>` ([`Config::config_version`]).
    pub fn quorum_config_text(&self) -> String {
        self.quorum_config_text_at(self.config_version)
    }

    /// [`Config::quorum_config_text`] at configuration version `version`.
    pub fn quorum_config_text_at(&self, version: u64) -> String {
        self.quorum_config(Some(version)).to_text()
    }

    /// The members' `server.N=...` lines, each ending in a newline (the
    /// configuration text without its version).
    pub fn quorum_members_text(&self) -> String {
        self.quorum_config(None).to_text()
    }

    /// The members ordered by id (a dynamic config file lists them sorted as
    /// text: server.10 before server.2).
    fn quorum_config(&self, version: Option<u64>) -> zk_jute::quorum::QuorumConfig {
        let mut servers = self.servers.clone();
        servers.sort_by_key(|s| s.id);
        zk_jute::quorum::QuorumConfig {
            servers,
            groups: self.groups.clone(),
            weights: self.weights.clone(),
            version,
        }
    }

    /// A standalone configuration with ZooKeeper's defaults, except that
    /// the AdminServer is off: a program embedding the server (or a test)
    /// turns it on with `admin.enabled`; zoo.cfg keeps Apache's default, on.
    pub fn standalone(data_dir: PathBuf, client_port: u16) -> Self {
        let tick = 3000;
        Self {
            source: None,
            tick_time: tick,
            init_limit: 10,
            sync_limit: 5,
            data_log_dir: data_dir.clone(),
            data_dir,
            client_port,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            tls: Default::default(),
            client_port_unification: false,
            plain_client_port: true,
            tls_keys_set: Vec::new(),
            max_client_cnxns: 60,
            max_cnxns: 0,
            client_port_listen_backlog: -1,
            client_tcp_keep_alive: false,
            connect_to_learner_master_limit: 0,
            min_session_timeout: 2 * tick,
            max_session_timeout: 20 * tick,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            snap_count: 100_000,
            snap_size_limit_kb: 4 << 20,
            snap_log_percent: 50,
            snap_replay_percent: 100,
            pre_alloc_size_kb: 16384,
            log_zero_fill: true,
            flush_delay_ms: 0,
            busy_sync_gather: 16,
            max_batch_size: None,
            global_outstanding_limit: 1000,
            four_letter_whitelist: Whitelist::default(),
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            force_sync: true,
            super_digest: None,
            max_output_queue_bytes: 16 << 20,
            loop_threads: 0,
            sched_batch: None,
            extended_types: false,
            skip_acl: false,
            digest_enabled: true,
            emulate_353_ttl: false,
            enforce_quota: false,
            jaas_config: None,
            sasl_section: "Server".into(),
            sasl_acl: false,
            super_user: None,
            enforce_auth: Vec::new(),
            allow_sasl_failed_clients: false,
            enforce_keys: (false, Vec::new(), false),
            reconfig_enabled: false,
            container_check_interval_ms: 60_000,
            standalone_enabled: true,
            leader_serves: true,
            local_sessions_enabled: false,
            read_only_mode: false,
            servers: Vec::new(),
            dynamic_config_file: None,
            config_version: 0,
            groups: BTreeMap::new(),
            weights: BTreeMap::new(),
            quorum_groups: None,
            my_id: 0,
            server_lines: Vec::new(),
            peer_type: LearnerType::Participant,
            quorum_listen_on_all_ips: false,
            cnx_timeout_ms: 5000,
            election_port_bind_retry: 3,
            election_finalize_wait_ms: zk_election::DEFAULT_FINALIZE_WAIT_MS,
            client_port_explicit: false,
            fsync_warning_threshold_ms: 1000,
            admin: AdminConfig {
                enabled: false,
                ..AdminConfig::default()
            },
            metrics: None,
            initial_text: String::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads and validates a zoo.cfg file (and `myid` in its dataDir).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = read_config_file(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        let mut cfg = Self::parse(&text).map_err(|mut e| {
            // An error in the dynamic config file names that file.
            e.file.get_or_insert_with(|| path.to_path_buf());
            e
        })?;
        cfg.source = Some(path.to_path_buf());
        cfg.read_myid()?;
        Ok(cfg)
    }

    /// Takes the Java system properties this server honours from the
    /// environment, as zkServer.sh hands them to ZooKeeper's JVM
    /// ([`jvm_system_property`]): `readonlymode.enabled`.
    pub fn read_jvm_flags(&mut self) {
        // Java's Boolean.getBoolean: "true" in any case.
        self.read_only_mode = jvm_system_property("readonlymode.enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        self.take_tls_properties(jvm_system_property);
        if !self
            .tls_keys_set
            .iter()
            .any(|k| k == "client.portUnification")
            && let Some(v) = jvm_system_property("zookeeper.client.portUnification")
        {
            self.client_port_unification = v.eq_ignore_ascii_case("true");
        }
    }

    /// Whether clients may connect with TLS: a secure client port, or
    /// client port unification (ZooKeeper then registers its x509 provider).
    pub fn tls_configured(&self) -> bool {
        self.secure_client_port.is_some() || self.client_port_unification
    }

    /// The `zookeeper.<key>` system properties of the [`TLS_KEYS`] zoo.cfg
    /// has no line for (`property` looks one up): zoo.cfg's ssl keys become
    /// these properties in ZooKeeper, over whatever the JVM was given.
    fn take_tls_properties(&mut self, property: impl Fn(&str) -> Option<String>) {
        for key in TLS_KEYS {
            if !self.tls_keys_set.iter().any(|k| k == key)
                && let Some(v) = property(&format!("zookeeper.{key}"))
                && !self.set_tls_key(key, &v)
            {
                self.warnings.push(format!(
                    "-Dzookeeper.{key}={v}: invalid value (none, want or need); ignored"
                ));
            }
        }
    }

    /// A line of the secure client port: `secureClientPort`,
    /// `secureClientPortAddress`, `ssl.authProvider` or one of [`TLS_KEYS`].
    fn apply_tls_line(&mut self, l: &Line<'_>) -> Result<(), ConfigError> {
        let (line_no, key, value) = (l.no, l.key, l.value);
        match key {
            "secureClientPort" => {
                self.secure_client_port = Some(l.int(0, 65535)? as u16).filter(|&p| p != 0)
            }
            "secureClientPortAddress" => {
                self.secure_client_port_address = Some(value.parse().map_err(|_| {
                    ConfigError::at(line_no, key, format!("invalid IP address {value:?}"))
                })?)
            }
            "ssl.authProvider" if value != "x509" => {
                return Err(ConfigError::at(
                    line_no,
                    key,
                    format!(
                        "only ZooKeeper's x509 provider authenticates TLS clients here, not {value:?}"
                    ),
                ));
            }
            "ssl.authProvider" => {}
            "client.portUnification" => {
                // Java's Boolean.getBoolean: "true" in any case.
                self.client_port_unification = value.eq_ignore_ascii_case("true");
                self.tls_keys_set.push(key.to_string());
            }
            k if TLS_KEYS.contains(&k) => {
                if !self.set_tls_key(k, value) {
                    return Err(ConfigError::at(
                        line_no,
                        key,
                        format!("invalid value {value:?} (none, want or need)"),
                    ));
                }
            }
            k => self
                .warnings
                .push(format!("line {line_no}: unknown key {k}; ignored")),
        }
        Ok(())
    }

    /// Sets one of [`TLS_KEYS`]; false for a value it does not take.
    fn set_tls_key(&mut self, key: &str, value: &str) -> bool {
        let t = &mut self.tls;
        match key {
            "ssl.keyStore.location" => {
                t.key_store.location = Some(PathBuf::from(value)).filter(|_| !value.is_empty())
            }
            "ssl.keyStore.password" => t.key_store.password = value.to_string(),
            "ssl.keyStore.type" => t.key_store.kind = Some(value.to_string()),
            "ssl.trustStore.location" => {
                t.trust_store.location = Some(PathBuf::from(value)).filter(|_| !value.is_empty())
            }
            "ssl.trustStore.password" => t.trust_store.password = value.to_string(),
            "ssl.trustStore.type" => t.trust_store.kind = Some(value.to_string()),
            "ssl.clientAuth" => match crate::tls::ClientAuth::parse(value) {
                Some(a) => t.client_auth = a,
                None => return false,
            },
            "ssl.enabledProtocols" => t.protocols = Some(value.to_string()),
            "ssl.ciphersuites" => t.cipher_suites = Some(value.to_string()),
            "X509AuthenticationProvider.superUser" => t.super_user = Some(value.to_string()),
            _ => return false,
        }
        self.tls_keys_set.push(key.to_string());
        true
    }

    /// Parses zoo.cfg text (without reading `myid`; see [`Config::read_myid`]),
    /// and the dynamic config file it names, if any.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        let mut later = Later::default();
        // As ZooKeeper: with a dynamic config file, the membership is there
        // only.
        let dynamic = property_lines(text).any(|(_, k, _)| k == "dynamicConfigFile");
        for (no, key, value) in property_lines(text) {
            if dynamic && is_membership_key(key) {
                return Err(ConfigError::at(
                    no,
                    key,
                    "must be in the dynamic config file (dynamicConfigFile is set)",
                ));
            }
            cfg.apply(&Line { no, key, value }, &mut later)?;
        }
        if let Some((no, path)) = later.dynamic_file.take() {
            cfg.read_dynamic_file(no, &path)?;
        }
        cfg.initial_text = text.to_string();
        cfg.finish(later)
    }

    /// Reads the membership from `path` (zoo.cfg's `dynamicConfigFile` on
    /// line `no`), as ZooKeeper's `QuorumPeerConfig.parse`: `server.X`,
    /// `group.X` and `weight.X` lines; the version is the hex suffix of the
    /// file's name (0 without one), never a line of the file. Errors name
    /// the dynamic file.
    fn read_dynamic_file(&mut self, no: usize, path: &Path) -> Result<(), ConfigError> {
        let text = read_config_file(path).map_err(|e| {
            ConfigError::at(
                no,
                "dynamicConfigFile",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let in_file = |mut e: ConfigError| {
            e.file = Some(path.to_path_buf());
            e
        };
        let mut unused = Later::default();
        for (no, key, value) in property_lines(&text) {
            if key == "version" {
                return Err(in_file(ConfigError::at(
                    no,
                    key,
                    "a dynamic config file holds no version line (its name's suffix is the version)",
                )));
            }
            if is_membership_key(key) {
                self.apply(&Line { no, key, value }, &mut unused)
                    .map_err(in_file)?;
            } else {
                self.warnings.push(format!(
                    "{}: line {no}: {key} does not belong in a dynamic config file; ignored",
                    path.display()
                ));
            }
        }
        self.config_version = version_of_dynamic_file(path);
        self.dynamic_config_file = Some(path.to_path_buf());
        Ok(())
    }

    /// The `zookeeper.<key>` system properties Apache's `QuorumPeerConfig`
    /// sets from `text`: every key it does not parse itself (snapCount,
    /// admin.*, 4lw.commands.whitelist, ...), with its value (the AdminServer's
    /// `system_properties`).
    pub(crate) fn apache_system_properties(text: &str) -> Vec<(String, String)> {
        const PARSED: &[&str] = &[
            "dataDir",
            "dataLogDir",
            "clientPort",
            "localSessionsEnabled",
            "localSessionsUpgradingEnabled",
            "clientPortAddress",
            "secureClientPort",
            "secureClientPortAddress",
            "clientPortListenBacklog",
            "observerMasterPort",
            "electionAlg",
            "quorumListenOnAllIPs",
            "peerType",
            "syncEnabled",
            "dynamicConfigFile",
            "autopurge.snapRetainCount",
            "autopurge.purgeInterval",
            "standaloneEnabled",
            "reconfigEnabled",
            "sslQuorum",
            "portUnification",
            "sslQuorumReloadCertFiles",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "initLimit",
            "syncLimit",
            "connectToLearnerMasterLimit",
            "quorum.cnxn.threads.size",
            "metricsProvider.className",
            "multiAddress.enabled",
            "multiAddress.reachabilityCheckTimeoutMs",
            "multiAddress.reachabilityCheckEnabled",
            "oraclePath",
        ];
        const PARSED_PREFIXES: &[&str] = &[
            "server.",
            "group",
            "weight",
            "metricsProvider.",
            "quorum.auth.",
            "jvm.pause.",
        ];
        // Sorted by key; a later line replaces an earlier one.
        let props: std::collections::BTreeMap<String, String> = property_lines(text)
            .filter(|(_, k, _)| {
                !(PARSED.contains(k) || PARSED_PREFIXES.iter().any(|p| k.starts_with(p)))
            })
            .map(|(_, k, v)| (format!("zookeeper.{k}"), v.to_string()))
            .collect();
        props.into_iter().collect()
    }

    /// One line's key: the server's own keys here, the ensemble's (and
    /// unknown ones) in [`Config::apply_ensemble`].
    fn apply(&mut self, l: &Line<'_>, later: &mut Later) -> Result<(), ConfigError> {
        let (line_no, key, value) = (l.no, l.key, l.value);
        match key {
            "tickTime" => self.tick_time = l.u32v(1)?,
            "initLimit" => self.init_limit = l.u32v(1)?,
            "syncLimit" => self.sync_limit = l.u32v(1)?,
            "dataDir" => later.data_dir = Some(non_empty_path(line_no, key, value)?),
            "dataLogDir" => later.data_log_dir = Some(non_empty_path(line_no, key, value)?),
            "dynamicConfigFile" => {
                later.dynamic_file = Some((line_no, non_empty_path(line_no, key, value)?))
            }
            "clientPort" => later.client_port = Some(l.int(0, 65535)? as u16),
            "clientPortAddress" => {
                self.client_port_address = Some(value.parse().map_err(|_| {
                    ConfigError::at(line_no, key, format!("invalid IP address {value:?}"))
                })?)
            }
            k if is_tls_key(k) => self.apply_tls_line(l)?,
            "maxClientCnxns" => self.max_client_cnxns = l.u32v(0)?,
            "maxCnxns" => self.max_cnxns = self.zero_if_negative(l)?,
            "minSessionTimeout" => later.min_to = Some((line_no, l.int(-1, i64::from(i32::MAX))?)),
            "maxSessionTimeout" => later.max_to = Some((line_no, l.int(-1, i64::from(i32::MAX))?)),
            "autopurge.snapRetainCount" => {
                let v = l.u32v(0)?;
                if v < 3 {
                    self.warnings.push(format!(
                        "line {line_no}: autopurge.snapRetainCount={v} is below the minimum 3; using 3"
                    ));
                }
                self.snap_retain_count = v.max(3);
            }
            "autopurge.purgeInterval" => self.purge_interval_hours = l.u32v(0)?,
            "snapCount" => self.snap_count = l.int(2, i64::MAX)? as u64,
            "snapSizeLimitInKb" => self.snap_size_limit_kb = l.int(i64::MIN, i64::MAX)?,
            "zkrs.snapLogPercent" => self.snap_log_percent = l.int(0, 1_000_000)? as u64,
            "zkrs.busySyncGather" => self.busy_sync_gather = l.int(0, 1_000_000)? as usize,
            "zkrs.snapReplayPercent" => self.snap_replay_percent = l.int(0, 1_000_000)? as u64,
            "preAllocSize" => self.pre_alloc_size_kb = l.int(1, 1 << 30)? as u64,
            "globalOutstandingLimit" => self.global_outstanding_limit = l.u32v(1)?,
            "4lw.commands.whitelist" => self.four_letter_whitelist = parse_whitelist(value),
            "jute.maxbuffer" => self.jute_max_buffer = l.int(1024, i64::from(i32::MAX))? as usize,
            "forceSync" => self.force_sync = l.yes_no()?,
            "zkrs.logZeroFill" => self.log_zero_fill = l.yes_no()?,
            "flushDelay" => self.flush_delay_ms = l.int(0, 60_000)? as u64,
            "maxBatchSize" => self.max_batch_size = Some(l.int(1, 1 << 20)? as usize),
            "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                if !value.contains(':') {
                    return Err(ConfigError::at(
                        line_no,
                        key,
                        "expected user:base64(sha1(user:password))",
                    ));
                }
                self.super_digest = Some(value.to_string());
            }
            "zkrs.maxOutputQueueBytes" => {
                self.max_output_queue_bytes = l.int(4096, i64::MAX)? as usize
            }
            "extendedTypesEnabled"
            | "skipACL"
            | "localSessionsEnabled"
            | "standaloneEnabled"
            | "reconfigEnabled"
            | "digest.enabled"
            | "emulate353TTLNodes"
            | "enforceQuota" => {
                let v = parse_bool(value).ok_or_else(|| {
                    ConfigError::at(
                        line_no,
                        key,
                        format!("invalid value {value:?}: expected true or false"),
                    )
                })?;
                match key {
                    "extendedTypesEnabled" => self.extended_types = v,
                    "skipACL" => self.skip_acl = v,
                    "digest.enabled" => self.digest_enabled = v,
                    "emulate353TTLNodes" => self.emulate_353_ttl = v,
                    "enforceQuota" => self.enforce_quota = v,
                    "standaloneEnabled" => self.standalone_enabled = v,
                    "localSessionsEnabled" => self.local_sessions_enabled = v,
                    _ => self.reconfig_enabled = v,
                }
            }
            "znode.container.checkIntervalMs" => {
                self.container_check_interval_ms = l.int(1, i64::MAX)? as u64
            }
            "zkrs.loopThreads" => self.loop_threads = l.int(0, 64)? as usize,
            "zkrs.schedBatch" => self.sched_batch = l.yes_no_auto()?,
            "fsync.warningthresholdms" => {
                self.fsync_warning_threshold_ms = l.int(0, i64::MAX)? as u64
            }
            k if is_auth_key(k) => self.apply_auth(l),
            k if k.starts_with("admin.") || k.starts_with("metricsProvider.") => {
                self.apply_ops(l, &mut later.metrics)?
            }
            _ => self.apply_ensemble(l)?,
        }
        Ok(())
    }

    /// The SASL keys: authentication providers, the super user, the JAAS
    /// file and section.
    fn apply_auth(&mut self, l: &Line<'_>) {
        match l.key {
            "superUser" => self.super_user = Some(l.value.to_string()),
            "sasl.serverconfig" => self.sasl_section = l.value.to_string(),
            "zkrs.jaasConfig" => self.jaas_config = Some(PathBuf::from(l.value)),
            // Java's Boolean.parseBoolean: "true" in any case, else false.
            "enforce.auth.enabled" => self.enforce_keys.0 = l.value.eq_ignore_ascii_case("true"),
            "enforce.auth.schemes" => {
                self.enforce_keys.1 = l.value.split(',').map(|s| s.trim().to_string()).collect();
            }
            "sessionRequireClientSASLAuth" => {
                self.enforce_keys.2 = l.value.eq_ignore_ascii_case("true");
            }
            "allowSaslFailedClients" => {
                self.allow_sasl_failed_clients = l.value.eq_ignore_ascii_case("true");
            }
            _ if l.value.ends_with(".SASLAuthenticationProvider") => self.sasl_acl = true,
            // Registered with TLS anyway (`Config::tls_configured`).
            _ if l.value.ends_with(".X509AuthenticationProvider") => {}
            _ => self.warnings.push(format!(
                "line {}: {}={}: this authentication provider is not supported (ignored)",
                l.no, l.key, l.value
            )),
        }
    }

    /// `AuthenticationHelper`: which schemes are enforced, each one an
    /// authentication provider this server has (ip, digest; sasl with its
    /// provider), as Apache refuses to start otherwise.
    fn settle_enforced_auth(&mut self) -> Result<(), ConfigError> {
        let (enabled, schemes, require_sasl) = std::mem::take(&mut self.enforce_keys);
        self.enforce_auth = if require_sasl {
            vec!["sasl".to_string()]
        } else if enabled {
            let schemes: Vec<String> = schemes.into_iter().filter(|s| !s.is_empty()).collect();
            if schemes.is_empty() {
                return Err(ConfigError::general(
                    "enforce.auth.enabled is true: enforce.auth.schemes must be configured",
                ));
            }
            schemes
        } else {
            Vec::new()
        };
        for s in &self.enforce_auth {
            // ZooKeeper registers the x509 provider when a secure port is set.
            let known = matches!(s.as_str(), "ip" | "digest")
                || (s == "sasl" && self.sasl_acl)
                || (s == "x509" && self.tls_configured());
            if !known {
                return Err(ConfigError::general(format!(
                    "enforced authentication scheme {s} is not available (sasl needs \
                     authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider)"
                )));
            }
        }
        Ok(())
    }

    /// An int value, 0 (with a warning) when negative, as Apache's
    /// `ServerCnxnFactory.initMaxCnxns`.
    fn zero_if_negative(&mut self, l: &Line<'_>) -> Result<u32, ConfigError> {
        let v = l.int(i64::from(i32::MIN), i64::from(i32::MAX))?;
        if v < 0 {
            self.warnings.push(format!(
                "line {}: {} should be greater than or equal to 0, using 0",
                l.no, l.key
            ));
        }
        Ok(v.max(0) as u32)
    }

    /// The operators' endpoints: `admin.*` (the AdminServer) and
    /// `metricsProvider.*` (Prometheus, settled in [`Config::finish`]).
    fn apply_ops(&mut self, l: &Line<'_>, metrics: &mut MetricsKeys) -> Result<(), ConfigError> {
        let ip = |l: &Line<'_>| {
            l.value.parse::<IpAddr>().map_err(|_| {
                ConfigError::at(l.no, l.key, format!("invalid IP address {:?}", l.value))
            })
        };
        match l.key {
            "admin.enableServer" => self.admin.enabled = l.yes_no()?,
            "admin.serverAddress" => self.admin.address = ip(l)?,
            "admin.serverPort" => self.admin.port = l.int(0, 65535)? as u16,
            "admin.commandURL" => {
                if !l.value.starts_with('/') {
                    return Err(ConfigError::at(
                        l.no,
                        l.key,
                        format!(
                            "invalid value {:?}: expected a path starting with /",
                            l.value
                        ),
                    ));
                }
                self.admin.command_url = l.value.trim_end_matches('/').to_string();
            }
            "admin.idleTimeout" => {
                self.admin.idle_timeout_ms = l.int(1, i64::from(i32::MAX))? as u64
            }
            "metricsProvider.className" => metrics.class_name = Some(l.value.to_string()),
            "metricsProvider.httpHost" => metrics.host = Some(ip(l)?),
            "metricsProvider.httpPort" => metrics.port = Some(l.int(0, 65535)? as u16),
            "metricsProvider.exportJvmInfo" => metrics.export_jvm_info = Some(l.yes_no()?),
            k => self.warnings.push(format!(
                "line {}: {k} is not supported by this server; ignored",
                l.no
            )),
        }
        Ok(())
    }

    /// Turns the Prometheus endpoint on when `metricsProvider.className`
    /// names Apache's provider; any other provider is warned about.
    fn settle_metrics(&mut self, keys: MetricsKeys) {
        match keys.class_name.as_deref() {
            Some(PROMETHEUS_PROVIDER) => {
                let d = MetricsConfig::default();
                self.metrics = Some(MetricsConfig {
                    host: keys.host.unwrap_or(d.host),
                    port: keys.port.unwrap_or(d.port),
                    export_jvm_info: keys.export_jvm_info.unwrap_or(d.export_jvm_info),
                });
            }
            // Apache's default provider: metrics for mntr only.
            None | Some("org.apache.zookeeper.metrics.impl.DefaultMetricsProvider") => {}
            Some(other) => self.warnings.push(format!(
                "metricsProvider.className={other} is not supported (only {PROMETHEUS_PROVIDER}); no metrics endpoint"
            )),
        }
    }

    /// The ensemble's keys (peerType, server.N, election settings), the
    /// keys accepted with a warning, and unknown keys.
    fn apply_ensemble(&mut self, l: &Line<'_>) -> Result<(), ConfigError> {
        let (line_no, key, value) = (l.no, l.key, l.value);
        match key {
            // Leader.lead: anything but "no" serves.
            "leaderServes" => self.leader_serves = value != "no",
            "clientPortListenBacklog" => {
                self.client_port_listen_backlog =
                    l.int(i64::from(i32::MIN), i64::from(i32::MAX))? as i32
            }
            // Java's Boolean.getBoolean: "true" in any case, anything else false.
            "clientTcpKeepAlive" => self.client_tcp_keep_alive = value.eq_ignore_ascii_case("true"),
            "connectToLearnerMasterLimit" => self.connect_to_learner_master_limit = l.u32v(0)?,
            // QuorumPeerConfig: fast leader election is the only one left.
            "electionAlg" if value.parse::<i32>() != Ok(3) => {
                return Err(ConfigError::at(
                    line_no,
                    key,
                    format!("invalid value {value:?}: only 3 (fast leader election) is supported"),
                ));
            }
            "electionAlg" => {}
            "peerType" => {
                self.peer_type = match value.to_ascii_lowercase().as_str() {
                    "participant" => LearnerType::Participant,
                    "observer" => LearnerType::Observer,
                    _ => {
                        return Err(ConfigError::at(
                            line_no,
                            key,
                            format!("invalid value {value:?}: expected participant or observer"),
                        ));
                    }
                }
            }
            "quorumListenOnAllIPs" => self.quorum_listen_on_all_ips = l.yes_no()?,
            "cnxTimeout" => self.cnx_timeout_ms = l.int(1, 3_600_000)? as u64,
            "electionPortBindRetry" => self.election_port_bind_retry = l.u32v(0)?,
            // Ensembles always replicate with Zab; `off` chose a role stub
            // that replicated nothing, removed (an older config saying `on`
            // still starts).
            "zkrs.zab" if value == "on" => {}
            "zkrs.zab" => {
                return Err(ConfigError::at(
                    line_no,
                    key,
                    format!(
                        "{value:?} is not supported: ensembles always replicate with Zab (remove the line)"
                    ),
                ));
            }
            "zkrs.electionFinalizeWaitMs" => {
                self.election_finalize_wait_ms = l.int(1, 60_000)? as u64
            }
            k if k.starts_with("server.") => {
                let id: u64 = k["server.".len()..]
                    .parse()
                    .map_err(|_| ConfigError::at(line_no, key, "expected server.<number>"))?;
                let server = QuorumServer::parse(id, value)
                    .map_err(|e| ConfigError::at(line_no, key, e.0))?;
                if let Some(i) = self.servers.iter().position(|s| s.id == id) {
                    return Err(ConfigError::at(
                        line_no,
                        key,
                        format!(
                            "server {id} is defined twice (also on line {})",
                            self.server_lines[i]
                        ),
                    ));
                }
                if let Some(clash) = address_clash(&self.servers, &self.server_lines, &server) {
                    return Err(ConfigError::at(line_no, key, clash));
                }
                self.servers.push(server);
                self.server_lines.push(line_no);
            }
            k if k.starts_with("group.") || k.starts_with("weight.") => {
                self.apply_group_line(line_no, key, value)?;
            }
            // QuorumPeerConfig makes it `zookeeper.readonlymode.enabled`,
            // which nothing reads: only the JVM's own property counts.
            "readonlymode.enabled" => self.warnings.push(format!(
                "line {line_no}: readonlymode.enabled is a Java system property, not a zoo.cfg \
                 key (as in ZooKeeper, it has no effect here): set -Dreadonlymode.enabled=true \
                 in SERVER_JVMFLAGS"
            )),
            k if KNOWN_IGNORED.contains(&k) || k.starts_with("ssl.") => self.warnings.push(
                format!("line {line_no}: {k} is not supported by this server; ignored"),
            ),
            k => self
                .warnings
                .push(format!("line {line_no}: unknown key {k}; ignored")),
        }
        Ok(())
    }

    /// What needs every line first: dataDir (dataLogDir's default), the
    /// client port's default, the session timeouts' defaults and order.
    fn finish(mut self, mut later: Later) -> Result<Self, ConfigError> {
        self.settle_groups()?;
        self.settle_metrics(std::mem::take(&mut later.metrics));
        self.settle_enforced_auth()?;
        let data_dir = later
            .data_dir
            .ok_or_else(|| ConfigError::general("dataDir is not set"))?;
        self.data_log_dir = later.data_log_dir.unwrap_or_else(|| data_dir.clone());
        self.data_dir = data_dir;
        match later.client_port {
            Some(p) => {
                self.client_port = p;
                self.client_port_explicit = true;
            }
            // TLS only, as ZooKeeper (unless this server's line names a
            // client address: `client_from_server_line`).
            None if self.secure_client_port.is_some() => self.plain_client_port = false,
            None => {
                self.client_port = DEFAULT_CLIENT_PORT;
                self.warnings.push(format!(
                    "clientPort is not set; using {DEFAULT_CLIENT_PORT}"
                ));
            }
        }
        self.min_session_timeout = match later.min_to {
            Some((_, v)) if v >= 0 => v as u32,
            _ => self.tick_time.saturating_mul(2),
        };
        self.max_session_timeout = match later.max_to {
            Some((_, v)) if v >= 0 => v as u32,
            _ => self.tick_time.saturating_mul(20),
        };
        if self.min_session_timeout > self.max_session_timeout {
            let line = later.max_to.or(later.min_to).map(|(l, _)| l);
            return Err(ConfigError {
                file: None,
                line,
                key: Some("minSessionTimeout".into()),
                message: format!(
                    "minSessionTimeout {} must not be larger than maxSessionTimeout {}",
                    self.min_session_timeout, self.max_session_timeout
                ),
            });
        }
        Ok(self)
    }

    /// Reads `myid` from dataDir when the ensemble has more than one server (as
    /// ZooKeeper, it is optional with one) and checks it names a listed server.
    pub fn read_myid(&mut self) -> Result<(), ConfigError> {
        let path = self.data_dir.join("myid");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ConfigError::general(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        match text {
            Some(t) => {
                let first = t.lines().next().unwrap_or("");
                let id = first.trim().parse::<u64>().map_err(|_| {
                    ConfigError::general(format!(
                        "{}: line 1: expected a server id, found {:?}",
                        path.display(),
                        first.trim()
                    ))
                })?;
                self.my_id = id;
            }
            None if self.is_ensemble() => {
                return Err(ConfigError::general(format!(
                    "{} is missing: an ensemble member needs its id there",
                    path.display()
                )));
            }
            None => {
                self.my_id = self.servers.first().map_or(0, |s| s.id);
            }
        }
        self.validate_ensemble()?;
        if let Some(me) = self.servers.iter().find(|s| s.id == self.my_id)
            && self.is_ensemble()
            && me.role != self.peer_type
        {
            // QuorumPeerConfig.setupPeerType: the servers list wins.
            self.warnings.push(format!(
                "peerType {:?} does not match server.{} ({:?}); using the server line",
                self.peer_type, self.my_id, me.role
            ));
            self.peer_type = me.role;
        }
        self.client_from_server_line()
    }

    /// `QuorumPeerConfig.setupClientPort`: the client address after `;` in
    /// this server's own line is where it serves; zoo.cfg's clientPort /
    /// clientPortAddress, if set, must agree with it.
    fn client_from_server_line(&mut self) -> Result<(), ConfigError> {
        let Some((i, c)) = self
            .servers
            .iter()
            .enumerate()
            .find(|(_, s)| s.id == self.my_id)
            .and_then(|(i, s)| s.client_addr.clone().map(|c| (i, c)))
        else {
            return Ok(());
        };
        let line = self.server_lines.get(i).copied().unwrap_or(0);
        let key = format!("server.{}", self.my_id);
        let ip = (c.host.as_str(), c.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
            .ok_or_else(|| {
                ConfigError::at(line, &key, format!("cannot resolve the client address {c}"))
            })?;
        let ip = (!ip.is_unspecified()).then_some(ip);
        let disagrees = self.client_port_explicit
            && (self.client_port != c.port
                || matches!((self.client_port_address, ip), (Some(a), Some(b)) if a != b));
        if disagrees {
            let stat = match self.client_port_address {
                Some(a) => format!("{a}:{}", self.client_port),
                None => format!("0.0.0.0:{}", self.client_port),
            };
            return Err(ConfigError::at(
                line,
                &key,
                format!(
                    "the client address {c} differs from clientPort/clientPortAddress ({stat})"
                ),
            ));
        }
        self.client_port = c.port;
        self.plain_client_port = true;
        if ip.is_some() {
            self.client_port_address = ip;
        }
        if !self.client_port_explicit {
            self.warnings
                .retain(|w| !w.starts_with("clientPort is not set"));
        }
        Ok(())
    }

    /// A `group.N=a:b:c` or `weight.N=w` line (checked as a whole by
    /// [`Config::settle_groups`]).
    fn apply_group_line(
        &mut self,
        line_no: usize,
        key: &str,
        value: &str,
    ) -> Result<(), ConfigError> {
        if let Some(gid) = key.strip_prefix("group.") {
            let gid: u64 = gid
                .parse()
                .map_err(|_| ConfigError::at(line_no, key, "expected group.<number>"))?;
            let ids = zk_jute::quorum::parse_group(key, value)
                .map_err(|e| ConfigError::at(line_no, key, e.0))?;
            self.groups.insert(gid, ids);
        } else if let Some(sid) = key.strip_prefix("weight.") {
            let sid: u64 = sid
                .parse()
                .map_err(|_| ConfigError::at(line_no, key, "expected weight.<server id>"))?;
            let w = value.trim().parse().map_err(|_| {
                ConfigError::at(
                    line_no,
                    key,
                    format!("expected a weight (0 or more), got {value:?}"),
                )
            })?;
            self.weights.insert(sid, w);
        }
        Ok(())
    }

    /// `group.N` / `weight.N` lines make a hierarchical quorum
    /// (`QuorumPeerConfig`: any such key; then every voter must be in
    /// exactly one group), validated by [`zk_election::Groups::new`].
    fn settle_groups(&mut self) -> Result<(), ConfigError> {
        if self.groups.is_empty() && self.weights.is_empty() {
            return Ok(());
        }
        let voters = zk_jute::quorum::voter_ids(&self.servers);
        let g = zk_election::Groups::new(&voters, &self.groups, &self.weights)
            .map_err(|e| ConfigError::general(format!("hierarchical quorums: {e}")))?;
        self.weights = g.weights().clone();
        self.quorum_groups = Some(std::sync::Arc::new(g));
        Ok(())
    }

    /// A majority quorum from now on: a reconfig's configuration (this
    /// server builds or takes no hierarchical one).
    pub fn drop_groups(&mut self) {
        self.groups.clear();
        self.weights.clear();
        self.quorum_groups = None;
    }

    fn validate_ensemble(&self) -> Result<(), ConfigError> {
        // QuorumPeerConfig.parseDynamicConfig's rules.
        let voters = self.participants();
        let observers = self.servers.len() - voters;
        if voters == 0 && !self.standalone_enabled {
            return Err(ConfigError::general(
                "standaloneEnabled=false needs at least one participant server.X line",
            ));
        }
        if voters == 0 && observers > 0 {
            return Err(ConfigError::general(
                "observers without participants is an invalid configuration",
            ));
        }
        if voters == 1 && self.standalone_enabled && observers > 0 {
            return Err(ConfigError::general(
                "observers without a quorum (one participant and standaloneEnabled=true) \
                 is an invalid configuration",
            ));
        }
        if self.is_ensemble() && !self.servers.iter().any(|s| s.id == self.my_id) {
            return Err(ConfigError::general(format!(
                "{}: myid {} is not one of the server.X lines",
                self.data_dir.join("myid").display(),
                self.my_id
            )));
        }
        if self.my_id > 255 {
            return Err(ConfigError::general(format!(
                "server id {} does not fit the top byte of a session id (0..=255)",
                self.my_id
            )));
        }
        Ok(())
    }

    /// Whether this config describes an ensemble, as ZooKeeper's
    /// `QuorumPeerConfig.isDistributed`: more than one voter, or one with
    /// `standaloneEnabled=false` (a one-voter quorum that elects itself,
    /// `Mode: leader`, and that reconfig could grow).
    pub fn is_ensemble(&self) -> bool {
        let voters = self.participants();
        voters > 1 || (voters == 1 && !self.standalone_enabled)
    }

    /// The voting members (1 standalone).
    pub fn voters(&self) -> usize {
        if !self.is_ensemble() {
            return 1;
        }
        self.participants()
    }

    /// The `server.X` lines of participants.
    fn participants(&self) -> usize {
        zk_jute::quorum::voter_ids(&self.servers).len()
    }

    /// The session timeout granted for a requested one: clamped to
    /// `[minSessionTimeout, maxSessionTimeout]`.
    pub fn negotiate_timeout(&self, requested: i32) -> i32 {
        let min = self.min_session_timeout as i64;
        let max = self.max_session_timeout as i64;
        (requested as i64).clamp(min, max) as i32
    }

    /// The `conf` four-letter word's text (ZooKeeper's key order), the
    /// membership at configuration version `version`; none without one
    /// (a read-only server: ReadOnlyZooKeeperServer.dumpConf).
    pub fn conf_text(&self, ports: (Option<u16>, Option<u16>), version: Option<u64>) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "clientPort={}", ports.0.map_or(-1, i32::from));
        let _ = writeln!(s, "secureClientPort={}", ports.1.map_or(-1, i32::from));
        let _ = writeln!(s, "dataDir={}", abs(&self.data_dir).display());
        let _ = writeln!(s, "dataDirSize={}", dir_size(&self.data_dir));
        let _ = writeln!(s, "dataLogDir={}", abs(&self.data_log_dir).display());
        let _ = writeln!(s, "dataLogSize={}", dir_size(&self.data_log_dir));
        let _ = writeln!(s, "tickTime={}", self.tick_time);
        let _ = writeln!(s, "maxClientCnxns={}", self.max_client_cnxns);
        let _ = writeln!(s, "minSessionTimeout={}", self.min_session_timeout);
        let _ = writeln!(s, "maxSessionTimeout={}", self.max_session_timeout);
        let _ = writeln!(s, "clientPortListenBacklog=-1");
        let _ = writeln!(s, "serverId={}", self.my_id);
        if let Some(me) = self.servers.iter().find(|x| x.id == self.my_id)
            && self.is_ensemble()
        {
            // QuorumZooKeeperServer.dumpConf: the quorum keys, then the
            // membership as /zookeeper/config holds it.
            let ports = |a: &[zk_jute::quorum::HostPort]| {
                a.iter()
                    .map(|h| h.port.to_string())
                    .collect::<Vec<_>>()
                    .join("|")
            };
            let _ = writeln!(s, "initLimit={}", self.init_limit);
            let _ = writeln!(s, "syncLimit={}", self.sync_limit);
            let _ = writeln!(s, "electionAlg=3");
            let _ = writeln!(s, "electionPort={}", ports(&me.election_addrs));
            let _ = writeln!(s, "quorumPort={}", ports(&me.quorum_addrs));
            let peer_type = match self.peer_type {
                LearnerType::Participant => 0,
                LearnerType::Observer => 1,
            };
            let _ = writeln!(s, "peerType={peer_type}");
            if let Some(version) = version {
                s.push_str("membership: \n");
                s.push_str(&self.quorum_config_text_at(version));
            }
        }
        s
    }
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Total size of the regular files directly in `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn non_empty_path(line: usize, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
    if value.is_empty() {
        Err(ConfigError::at(line, key, "empty path"))
    } else {
        Ok(PathBuf::from(value))
    }
}

fn parse_whitelist(value: &str) -> Whitelist {
    let cmds: Vec<String> = value
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    if cmds.iter().any(|c| c == "*") {
        Whitelist::All
    } else {
        Whitelist::Only(cmds)
    }
}

/// One `key=value` line of zoo.cfg, with the value parsers that name the
/// line and key in their errors.
struct Line<'a> {
    no: usize,
    key: &'a str,
    value: &'a str,
}

impl Line<'_> {
    /// An integer in `min..=max`.
    fn int(&self, min: i64, max: i64) -> Result<i64, ConfigError> {
        let value = self.value;
        value
            .parse::<i64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                ConfigError::at(
                    self.no,
                    self.key,
                    format!("invalid value {value:?}: expected an integer in {min}..={max}"),
                )
            })
    }

    /// A u32 of at least `min`.
    fn u32v(&self, min: i64) -> Result<u32, ConfigError> {
        self.int(min, i64::from(u32::MAX)).map(|v| v as u32)
    }

    /// yes or no (also true / false).
    fn yes_no(&self) -> Result<bool, ConfigError> {
        parse_bool(self.value).ok_or_else(|| self.expected("yes or no"))
    }

    /// `auto` (`None`), or yes or no.
    fn yes_no_auto(&self) -> Result<Option<bool>, ConfigError> {
        if self.value.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        parse_bool(self.value)
            .map(Some)
            .ok_or_else(|| self.expected("yes, no or auto"))
    }

    /// The error for a value that is not one of `what`.
    fn expected(&self, what: &str) -> ConfigError {
        let value = self.value;
        ConfigError::at(
            self.no,
            self.key,
            format!("invalid value {value:?}: expected {what}"),
        )
    }
}

/// Values [`Config::finish`] settles once every line is read.
#[derive(Default)]
struct Later {
    metrics: MetricsKeys,
    data_dir: Option<PathBuf>,
    data_log_dir: Option<PathBuf>,
    client_port: Option<u16>,
    /// (line, value) of minSessionTimeout / maxSessionTimeout.
    min_to: Option<(usize, i64)>,
    max_to: Option<(usize, i64)>,
    /// (line, path) of dynamicConfigFile.
    dynamic_file: Option<(usize, PathBuf)>,
}

/// The most a zoo.cfg or dynamic config file may hold (a thousand servers'
/// lines take some 60 KB): `/dev/zero` or a log file named by mistake is an
/// error, not the server's memory.
const MAX_CONFIG_FILE: u64 = 4 << 20;

/// A config file's text, at most [`MAX_CONFIG_FILE`] bytes of UTF-8.
pub(crate) fn read_config_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_CONFIG_FILE} bytes"
        )));
    }
    Ok(text)
}

/// A key [`Config::apply_auth`] takes.
fn is_auth_key(k: &str) -> bool {
    k.starts_with("authProvider.")
        || matches!(
            k,
            "superUser"
                | "sasl.serverconfig"
                | "zkrs.jaasConfig"
                | "enforce.auth.enabled"
                | "enforce.auth.schemes"
                | "sessionRequireClientSASLAuth"
                | "allowSaslFailedClients"
        )
}

/// A key of the ensemble's membership: zoo.cfg's, or its dynamic config
/// file's.
fn is_membership_key(key: &str) -> bool {
    key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight")
}

/// The version a dynamic config file's name gives (ZooKeeper's
/// `getVersionFromFilename`): the hex after its last `.`, 0 when that is not
/// hex (or is beyond a positive i64, which ZooKeeper's Long cannot hold).
fn version_of_dynamic_file(path: &Path) -> u64 {
    let name = path.to_string_lossy();
    let suffix = name.rsplit_once('.').map_or("", |(_, s)| s);
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return 0;
    }
    u64::from_str_radix(suffix, 16)
        .ok()
        .filter(|&v| i64::try_from(v).is_ok())
        .unwrap_or(0)
}

/// Splits a Java properties line at the first unescaped `=`, `:` or whitespace.
/// The properties of `text` as (line number, key, value), comments and
/// blank lines skipped, values trimmed.
fn property_lines(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(idx, raw)| {
        let (key, value) = property(raw)?;
        Some((idx + 1, key, value.trim()))
    })
}

/// One zoo.cfg line's (key, value), None for a blank line or a comment.
pub(crate) fn property(raw: &str) -> Option<(&str, &str)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
        return None;
    }
    Some(split_property(line))
}

fn split_property(line: &str) -> (&str, &str) {
    let idx = line.find(['=', ':', ' ', '\t']);
    match idx {
        None => (line, ""),
        Some(i) => {
            let key = &line[..i];
            let mut rest = line[i..].trim_start_matches([' ', '\t']);
            if let Some(r) = rest.strip_prefix(['=', ':']) {
                rest = r;
            }
            (key, rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "tickTime=2000\ndataDir=/var/lib/zookeeper\nclientPort=2181\n";
    const SEPARATE_LOG: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zookeeper/data\ndataLogDir=/tmp/zookeeper/dataLog\nclientPort=2181\n";
    const THREE_LOCAL: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/zk-cluster/zk-01/data\ndataLogDir=/tmp/zk-cluster/zk-01/logs\nclientPort=2181\nserver.1=127.0.0.1:2111:3111\nserver.2=127.0.0.1:2222:3222\nserver.3=127.0.0.1:2333:3333\n";
    const THREE_HOSTS: &str = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/opt/zookeeper/data\ndataLogDir=/opt/zookeeper/logs\nclientPort=2181\n#maxClientCnxns=60\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\nserver.1=0.0.0.0:2888:3888\nserver.2=10.150.19.15:2888:3888\nserver.3=10.100.124.217:2888:3888\n";

    #[test]
    fn minimal_standalone() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.tick_time, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/zookeeper"));
        assert_eq!(c.data_log_dir, c.data_dir);
        assert_eq!(c.client_port, 2181);
        assert_eq!(
            (c.min_session_timeout, c.max_session_timeout),
            (4000, 40000)
        );
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.four_letter_whitelist, Whitelist::default());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!c.is_ensemble());
    }

    #[test]
    fn separate_log_dir() {
        let c = Config::parse(SEPARATE_LOG).unwrap();
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/zookeeper/dataLog"));
        assert_eq!((c.init_limit, c.sync_limit), (10, 5));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn three_servers_with_myid() {
        let dir = tempfile::tempdir().unwrap();
        let text = THREE_LOCAL.replace("/tmp/zk-cluster/zk-01/data", dir.path().to_str().unwrap());
        let mut c = Config::parse(&text).unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[1].quorum_addrs[0].port, 2222);
        assert!(c.read_myid().is_err(), "myid is required in an ensemble");
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        c.read_myid().unwrap();
        assert_eq!(c.my_id, 2);
        std::fs::write(dir.path().join("myid"), "7\n").unwrap();
        assert!(c.read_myid().is_err(), "myid must be listed");
        assert!(c.is_ensemble());
    }

    /// Regression: `standaloneEnabled=false` was ignored; as ZooKeeper's
    /// `isDistributed` and `parseDynamicConfig`, it makes one voter a quorum
    /// (myid required), and configurations ZooKeeper refuses are errors.
    #[test]
    fn standalone_enabled_decides_a_one_voter_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!(
            "dataDir={}\ninitLimit=5\nsyncLimit=2\n",
            dir.path().display()
        );
        let one = format!("{base}server.1=127.0.0.1:2888:3888\n");
        let mut c = Config::parse(&one).unwrap();
        c.read_myid().unwrap();
        assert!(!c.is_ensemble(), "one server line: standalone");
        let mut c = Config::parse(&format!("{one}standaloneEnabled=false\n")).unwrap();
        assert!(c.is_ensemble());
        assert!(c.read_myid().is_err(), "a quorum member needs its myid");
        std::fs::write(dir.path().join("myid"), "1\n").unwrap();
        c.read_myid().unwrap();
        assert_eq!(c.voters(), 1);
        let refused = |text: &str| {
            let mut c = Config::parse(text).unwrap();
            c.read_myid().unwrap_err().message
        };
        let e = refused(&format!("{one}server.2=127.0.0.1:2889:3889:observer\n"));
        assert!(e.contains("observers without a quorum"), "{e}");
        let e = refused(&format!(
            "{base}server.1=127.0.0.1:2888:3888:observer\nserver.2=127.0.0.1:2889:3889:observer\n"
        ));
        assert!(e.contains("observers without participants"), "{e}");
        let e = refused(&format!("{base}standaloneEnabled=false\n"));
        assert!(e.contains("at least one participant"), "{e}");
    }

    /// Regression: `dynamicConfigFile` was ignored with a warning, so a
    /// zoo.cfg as ZooKeeper 3.5+ rewrites it once reconfig is enabled (no
    /// `server.X` lines of its own) started a member of an ensemble as a
    /// standalone server on the ensemble's data.
    #[test]
    fn the_membership_comes_from_the_dynamic_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let dynamic = dir.path().join("zoo.cfg.dynamic.100000000");
        // As ZooKeeper writes it: sorted, roles and client addresses given.
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183",
        )
        .unwrap();
        let zoo = |extra: &str| {
            format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n{extra}dynamicConfigFile={}\n",
                dir.path().display(),
                dynamic.display()
            )
        };
        let mut c = Config::parse(&zoo("")).unwrap();
        assert_eq!(c.servers.len(), 3);
        assert_eq!(c.servers[2].role, LearnerType::Observer);
        assert_eq!(c.config_version, 0x1_0000_0000);
        assert_eq!(c.dynamic_config_file.as_deref(), Some(dynamic.as_path()));
        assert!(c.is_ensemble());
        assert!(
            c.quorum_config_text().ends_with("\nversion=100000000"),
            "{}",
            c.quorum_config_text()
        );
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        c.read_myid().unwrap();
        assert_eq!(c.client_port, 2182, "its own server line's client port");
        assert!(c.warnings.iter().all(|w| !w.contains("dynamicConfigFile")));

        // The membership only there, as ZooKeeper requires.
        let e = Config::parse(&zoo("server.4=127.0.0.1:2891:3891\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("server.4")),
            "{e}"
        );
        // A version line in it, or a bad server line, is an error naming the
        // file and line.
        for second in ["version=100000000", "server.2=nonsense"] {
            std::fs::write(
                &dynamic,
                format!("server.1=127.0.0.1:2888:3888\n{second}\n"),
            )
            .unwrap();
            let e = Config::parse(&zoo("")).unwrap_err();
            assert_eq!(
                (e.file.as_deref(), e.line),
                (Some(dynamic.as_path()), Some(2)),
                "{e}"
            );
        }
        // A missing file names zoo.cfg's line.
        std::fs::remove_file(&dynamic).unwrap();
        let e = Config::parse(&zoo("")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("dynamicConfigFile")),
            "{e}"
        );
        assert!(e.message.contains("cannot read"), "{e}");
        // A name without a hex suffix is version 0, as ZooKeeper's.
        let plain = dir.path().join("zoo.cfg.dynamic");
        std::fs::write(
            &plain,
            "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
        )
        .unwrap();
        let text = zoo("").replace(&dynamic.display().to_string(), &plain.display().to_string());
        let c = Config::parse(&text).unwrap();
        assert_eq!((c.servers.len(), c.config_version), (2, 0));
        let huge = zoo("").replace(&dynamic.display().to_string(), "/dev/zero");
        let e = Config::parse(&huge).unwrap_err();
        assert!(e.message.contains("larger than"), "{e}");
        assert_eq!(version_of_dynamic_file(Path::new("a.cafe")), 0xcafe);
        assert_eq!(version_of_dynamic_file(Path::new("a.ffffffffffffffff")), 0);
    }

    #[test]
    fn ensemble_keys() {
        let text = format!(
            "{THREE_LOCAL}peerType=observer\nquorumListenOnAllIPs=true\ncnxTimeout=700\nelectionPortBindRetry=0\nzkrs.electionFinalizeWaitMs=120\n\
             connectToLearnerMasterLimit=3\nleaderServes=no\n"
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(
            (c.connect_to_learner_master_limit, c.leader_serves),
            (3, false)
        );
        assert_eq!(c.peer_type, LearnerType::Observer);
        assert!(c.quorum_listen_on_all_ips);
        assert_eq!(
            (
                c.cnx_timeout_ms,
                c.election_port_bind_retry,
                c.election_finalize_wait_ms
            ),
            (700, 0, 120)
        );
        assert_eq!(c.server_lines, vec![7, 8, 9]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = Config::parse(THREE_LOCAL).unwrap();
        assert_eq!(
            c.election_finalize_wait_ms,
            zk_election::DEFAULT_FINALIZE_WAIT_MS
        );
        assert_eq!((c.cnx_timeout_ms, c.election_port_bind_retry), (5000, 3));
        assert_eq!(
            (c.connect_to_learner_master_limit, c.leader_serves),
            (0, true)
        );
        assert!(Config::parse("dataDir=/d\npeerType=leader\n").is_err());
    }

    /// QuorumPeerConfig.setupClientPort: `;[host:]port` in our own line.
    #[test]
    fn client_address_from_the_server_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2").unwrap();
        let d = dir.path().display();
        let lines =
            "server.1=127.0.0.1:2111:3111;2181\nserver.2=127.0.0.1:2222:3222;127.0.0.2:2182\n";
        let mut c = Config::parse(&format!("dataDir={d}\n{lines}")).unwrap();
        c.read_myid().unwrap();
        assert_eq!(c.client_port, 2182);
        assert_eq!(c.client_port_address, Some("127.0.0.2".parse().unwrap()));
        assert!(
            c.warnings.iter().all(|w| !w.contains("clientPort")),
            "{:?}",
            c.warnings
        );
        // Agreeing zoo.cfg keys are fine; a different port names the line.
        let mut c = Config::parse(&format!("dataDir={d}\nclientPort=2182\n{lines}")).unwrap();
        c.read_myid().unwrap();
        let mut c = Config::parse(&format!("dataDir={d}\nclientPort=9999\n{lines}")).unwrap();
        let e = c.read_myid().unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("server.2")));
        // A wildcard client host keeps clientPortAddress unset.
        std::fs::write(dir.path().join("myid"), "1").unwrap();
        let mut c = Config::parse(&format!("dataDir={d}\n{lines}")).unwrap();
        c.read_myid().unwrap();
        assert_eq!((c.client_port, c.client_port_address), (2181, None));
    }

    #[test]
    fn ensemble_errors_name_the_line() {
        let base = "dataDir=/d\nserver.1=127.0.0.1:2111:3111\n";
        let e = Config::parse(&format!("{base}server.1=127.0.0.1:2222:3222\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("server.1")));
        assert!(e.message.contains("twice"), "{e}");
        let e = Config::parse(&format!("{base}server.2=127.0.0.1:3111:3222\n")).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("server.1 on line 2"), "{e}");
        let e = Config::parse("dataDir=/d\nserver.1=h:2111:2111\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        // The same port on another host is fine.
        Config::parse(&format!("{base}server.2=127.0.0.2:2111:3111\n")).unwrap();
    }

    #[test]
    fn myid_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = THREE_LOCAL.replace("/tmp/zk-cluster/zk-01/data", dir.path().to_str().unwrap());
        let mut c = Config::parse(&text).unwrap();
        let e = c.read_myid().unwrap_err().to_string();
        assert!(e.contains("myid") && e.contains("missing"), "{e}");
        std::fs::write(dir.path().join("myid"), "two\n").unwrap();
        let e = c.read_myid().unwrap_err().to_string();
        assert!(e.contains("myid: line 1") && e.contains("two"), "{e}");
        std::fs::write(dir.path().join("myid"), "9").unwrap();
        let e = c.read_myid().unwrap_err().to_string();
        assert!(e.contains("myid 9 is not one of the server.X lines"), "{e}");
        // peerType disagreeing with the server line: the line wins.
        std::fs::write(dir.path().join("myid"), "3").unwrap();
        let mut c = Config::parse(&format!("{text}peerType=observer\n")).unwrap();
        c.read_myid().unwrap();
        assert_eq!(c.peer_type, LearnerType::Participant);
        assert!(c.warnings.iter().any(|w| w.contains("peerType")));
    }

    #[test]
    fn three_hosts_autopurge() {
        let c = Config::parse(THREE_HOSTS).unwrap();
        assert_eq!((c.snap_retain_count, c.purge_interval_hours), (3, 1));
        assert_eq!(c.servers[0].quorum_addrs[0].host, "0.0.0.0");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn every_listed_key() {
        let c = Config::parse(
            "tickTime=1000\ndataDir=/d\ndataLogDir=/l\nclientPort=0\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=5\nminSessionTimeout=1500\nmaxSessionTimeout=9000\n\
             autopurge.snapRetainCount=5\nautopurge.purgeInterval=2\nsnapCount=1000\npreAllocSize=1024\n\
             snapSizeLimitInKb=2048\nzkrs.snapLogPercent=0\nzkrs.snapReplayPercent=25\nglobalOutstandingLimit=50\n4lw.commands.whitelist=ruok, stat,MNTR\njute.maxbuffer=4096\nforceSync=no\n\
             zkrs.logZeroFill=no\nflushDelay=2\nmaxBatchSize=100\nzkrs.busySyncGather=0\n",
        )
        .unwrap();
        assert_eq!((c.flush_delay_ms, c.max_batch_size), (2, Some(100)));
        assert_eq!(c.busy_sync_gather, 0);
        let d = Config::parse("dataDir=/d\n").unwrap();
        assert_eq!((d.flush_delay_ms, d.max_batch_size), (0, None));
        assert_eq!(d.busy_sync_gather, 16);
        assert_eq!(d.pre_alloc_size_kb, 16384);
        for bad in [
            "flushDelay=-1",
            "flushDelay=soon",
            "maxBatchSize=0",
            "zkrs.busySyncGather=-3",
        ] {
            let e = Config::parse(&format!("dataDir=/d\n{bad}\n")).unwrap_err();
            assert_eq!(e.key.as_deref(), bad.split('=').next(), "{bad}");
        }
        assert_eq!(c.client_port, 0);
        assert_eq!(c.client_port_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((c.min_session_timeout, c.max_session_timeout), (1500, 9000));
        assert_eq!(c.snap_retain_count, 5);
        assert_eq!(c.snap_count, 1000);
        assert_eq!((c.snap_replay_percent, d.snap_replay_percent), (25, 100));
        assert_eq!(c.pre_alloc_size_kb, 1024);
        assert_eq!((c.snap_size_limit_kb, c.snap_log_percent), (2048, 0));
        assert_eq!(c.global_outstanding_limit, 50);
        assert!(c.four_letter_whitelist.allows("mntr") && !c.four_letter_whitelist.allows("srvr"));
        assert_eq!(c.jute_max_buffer, 4096);
        assert!(!c.force_sync && !c.log_zero_fill);
        assert!(Config::parse("dataDir=/d\n").unwrap().log_zero_fill);
        let e = Config::parse("dataDir=/d\nzkrs.logZeroFill=sometimes\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("zkrs.logZeroFill"));
        let batch = |v: &str| Config::parse(&format!("dataDir=/d\nzkrs.schedBatch={v}\n"));
        assert_eq!(Config::parse("dataDir=/d\n").unwrap().sched_batch, None);
        assert_eq!(batch("auto").unwrap().sched_batch, None);
        assert_eq!(batch("yes").unwrap().sched_batch, Some(true));
        assert_eq!(batch("no").unwrap().sched_batch, Some(false));
        let e = batch("always").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("zkrs.schedBatch"));
        assert!(Config::parse("dataDir=/d\nzkrs.zab=on\n").is_ok());
        for v in ["off", "yes"] {
            let e = Config::parse(&format!("dataDir=/d\nzkrs.zab={v}\n")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("zkrs.zab"));
        }
        assert_eq!(c.negotiate_timeout(100), 1500);
        assert_eq!(c.negotiate_timeout(100_000), 9000);
        assert_eq!(c.negotiate_timeout(5000), 5000);
        let all = Config::parse("dataDir=/d\n4lw.commands.whitelist=*\n").unwrap();
        assert_eq!(all.four_letter_whitelist, Whitelist::All);
        assert!(d.digest_enabled && !d.emulate_353_ttl);
        let t =
            Config::parse("dataDir=/d\ndigest.enabled=false\nemulate353TTLNodes=true\n").unwrap();
        assert!(!t.digest_enabled && t.emulate_353_ttl && !t.enforce_quota);
        assert!(
            Config::parse("dataDir=/d\nenforceQuota=true\n")
                .unwrap()
                .enforce_quota
        );
        let e = Config::parse("dataDir=/d\nemulate353TTLNodes=maybe\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("emulate353TTLNodes"));
    }

    #[test]
    fn enforced_auth_schemes_must_be_providers_we_have() {
        let sasl = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n";
        let e = |extra: &str| Config::parse(&format!("dataDir=/d\n{extra}"));
        assert!(e("enforce.auth.enabled=true\n").is_err());
        assert!(e("enforce.auth.enabled=true\nenforce.auth.schemes=sasl\n").is_err());
        assert!(e("sessionRequireClientSASLAuth=true\n").is_err());
        let c = e(&format!(
            "{sasl}enforce.auth.enabled=TRUE\nenforce.auth.schemes=sasl, digest\n"
        ))
        .unwrap();
        assert_eq!(c.enforce_auth, ["sasl", "digest"]);
        let c = e(&format!(
            "{sasl}sessionRequireClientSASLAuth=true\nenforce.auth.schemes=ip\n"
        ))
        .unwrap();
        assert_eq!(c.enforce_auth, ["sasl"]);
        // Java's parseBoolean: "yes" is false, so x509 is never checked.
        let c = e("enforce.auth.enabled=yes\nenforce.auth.schemes=x509\n").unwrap();
        assert!(c.enforce_auth.is_empty());
        let c = e("authProvider.2=com.example.MyProvider\n").unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("not supported")));
    }

    #[test]
    fn invalid_values_name_key_and_line() {
        let e = Config::parse("dataDir=/d\ntickTime=abc\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("tickTime")));
        assert!(e.to_string().contains("line 2: tickTime"), "{e}");
        let e = Config::parse("dataDir=/d\n\nclientPort=70000\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("clientPort")));
        let e = Config::parse("dataDir=/d\nforceSync=maybe\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("forceSync"));
        let e = Config::parse("dataDir=/d\nserver.1=host-only\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("server.1")));
        let e = Config::parse("dataDir=/d\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n")
            .unwrap_err();
        assert!(e.to_string().contains("minSessionTimeout"), "{e}");
        assert!(
            Config::parse("clientPort=2181\n").is_err(),
            "dataDir is required"
        );
    }

    #[test]
    fn apache_system_properties_are_the_keys_it_does_not_parse() {
        let text = "tickTime=2000\ndataDir=/d\nsnapCount=100\nsnapCount = 200\n\
                    admin.serverPort=9\nserver.1=a:1:2\nmetricsProvider.httpPort=7\n\
                    # c\n4lw.commands.whitelist=*\n";
        let props = Config::apache_system_properties(text);
        let props: Vec<(&str, &str)> = props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            props,
            [
                ("zookeeper.4lw.commands.whitelist", "*"),
                ("zookeeper.admin.serverPort", "9"),
                ("zookeeper.snapCount", "200"),
            ]
        );
    }

    /// electionAlg was accepted whatever its value; ZooKeeper 3.8 refuses
    /// anything but 3 ("Only 3 is supported").
    #[test]
    fn only_election_algorithm_3_is_accepted() {
        let c = Config::parse("dataDir=/d\nelectionAlg=3\n").unwrap();
        assert!(
            c.warnings.iter().all(|w| !w.contains("electionAlg")),
            "{:?}",
            c.warnings
        );
        for bad in ["0", "1", "2", "4", "fast"] {
            let e = Config::parse(&format!("dataDir=/d\nelectionAlg={bad}\n")).unwrap_err();
            assert_eq!(
                (e.line, e.key.as_deref()),
                (Some(2), Some("electionAlg")),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_keys_warn_by_name() {
        let c = Config::parse("dataDir=/d\nclientPort=1\nfrobnicate=3\nadmin.frob=8080\n").unwrap();
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings[0].contains("frobnicate"));
        assert!(c.warnings[1].contains("admin.frob"));
    }

    /// `group.N` / `weight.N` lines make ZooKeeper's hierarchical quorum;
    /// the configuration text lists them as `QuorumHierarchical.toString`
    /// (groups, then every voter's weight, then the version).
    #[test]
    fn group_and_weight_lines_make_a_hierarchical_quorum() {
        let servers = "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nserver.4=d:1:2:observer\n";
        let c = Config::parse(&format!(
            "dataDir=/d\nclientPort=1\n{servers}group.2=3\ngroup.1=2:1\nweight.3=0\n"
        ))
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let g = c.quorum_groups.as_ref().expect("hierarchical");
        assert_eq!((g.weight(1), g.weight(3)), (1, 0));
        assert_eq!(c.weights, [(1, 1), (2, 1), (3, 0)].into());
        assert!(c.quorum_config_text_at(0).ends_with(
            "server.4=d:1:2:observer\ngroup.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=1\nweight.3=0\nversion=0"
        ));
        let mut plain = c.clone();
        plain.drop_groups();
        assert!(plain.quorum_groups.is_none() && !plain.quorum_members_text().contains("group"));
        let err = |extra: &str| {
            Config::parse(&format!("dataDir=/d\nclientPort=1\n{servers}{extra}"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("group.1=1:2\n").contains("server 3 is not in a group"));
        assert!(err("weight.1=2\n").contains("server 1 is not in a group"));
        assert!(err("group.1=1:2\ngroup.2=2:3\n").contains("in groups 1 and 2"));
        assert!(err("group.1=1:2:3:4\n").contains("server 4 is not a voter"));
        assert!(err("group.1=1:x\n").contains("group.1"));
        assert!(err("group.1=1:2:3\nweight.2=-1\n").contains("weight.2"));
        assert!(err("group.one=1:2:3\n").contains("group.one"));
    }

    #[test]
    fn admin_and_metrics_keys_with_apache_defaults() {
        let c = Config::parse("dataDir=/d\n").unwrap();
        assert_eq!(c.admin, AdminConfig::default());
        assert!(c.admin.enabled && c.admin.port == 8080 && c.admin.command_url == "/commands");
        assert_eq!(c.metrics, None);
        let c = Config::parse(
            "dataDir=/d\nclientPort=1\nadmin.enableServer=false\nadmin.serverPort=9999\nadmin.serverAddress=127.0.0.1\n\
             admin.commandURL=/cmds/\nadmin.idleTimeout=500\nmetricsProvider.httpPort=7001\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n",
        )
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.port, 9999);
        assert_eq!(c.admin.address.to_string(), "127.0.0.1");
        assert_eq!(c.admin.command_url, "/cmds");
        assert_eq!(c.admin.idle_timeout_ms, 500);
        let m = c.metrics.unwrap();
        assert_eq!(
            (m.host.to_string(), m.port, m.export_jvm_info),
            ("0.0.0.0".into(), 7001, true)
        );
        assert!(Config::parse("dataDir=/d\nadmin.serverPort=x\n").is_err());
        assert!(Config::parse("dataDir=/d\nmetricsProvider.httpHost=nohost\n").is_err());
        let other =
            Config::parse("dataDir=/d\nclientPort=1\nmetricsProvider.className=x.Y\n").unwrap();
        assert!(other.metrics.is_none() && other.warnings[0].contains("x.Y"));
    }

    #[test]
    fn property_separators_and_comments() {
        let c = Config::parse("# comment\n! also\ndataDir : /x\n  tickTime 500  \nclientPort=1\n")
            .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/x"));
        assert_eq!(c.tick_time, 500);
    }

    const HOSTILE_KEYS: &[&str] = &[
        "tickTime",
        "initLimit",
        "syncLimit",
        "dataDir",
        "dataLogDir",
        "clientPort",
        "clientPortAddress",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "snapCount",
        "snapSizeLimitInKb",
        "zkrs.snapLogPercent",
        "zkrs.busySyncGather",
        "zkrs.snapReplayPercent",
        "preAllocSize",
        "globalOutstandingLimit",
        "4lw.commands.whitelist",
        "jute.maxbuffer",
        "forceSync",
        "zkrs.logZeroFill",
        "flushDelay",
        "maxBatchSize",
        "superDigest",
        "zkrs.maxOutputQueueBytes",
        "emulate353TTLNodes",
        "extendedTypesEnabled",
        "skipACL",
        "digest.enabled",
        "znode.container.checkIntervalMs",
        "zkrs.loopThreads",
        "zkrs.schedBatch",
        "fsync.warningthresholdms",
        "admin.enableServer",
        "admin.serverAddress",
        "admin.serverPort",
        "admin.commandURL",
        "admin.idleTimeout",
        "metricsProvider.className",
        "metricsProvider.httpHost",
        "metricsProvider.httpPort",
        "metricsProvider.exportJvmInfo",
        "peerType",
        "quorumListenOnAllIPs",
        "cnxTimeout",
        "electionPortBindRetry",
        "zkrs.zab",
        "zkrs.electionFinalizeWaitMs",
        "standaloneEnabled",
        "reconfigEnabled",
        "localSessionsEnabled",
        "electionAlg",
        "secureClientPort",
        "secureClientPortAddress",
        "ssl.clientAuth",
        "ssl.authProvider",
        "ssl.enabledProtocols",
        "client.portUnification",
        "observerMasterPort",
        "dynamicConfigFile",
        "unknown.key",
        "",
    ];
    const HOSTILE_VALUES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "3",
        "10",
        "2000",
        "65535",
        "65536",
        "2147483647",
        "2147483648",
        "-2147483648",
        "9223372036854775807",
        "99999999999999999999",
        "+5",
        "0x10",
        "1e3",
        "1.5",
        "5ms",
        "",
        " ",
        "yes",
        "no",
        "true",
        "false",
        "*",
        "ruok, stat,MNTR",
        "/tmp/d",
        "relative/dir",
        "127.0.0.1",
        "0.0.0.0",
        "::1",
        "[::1]",
        "localhost",
        "é",
        "\u{0}",
        "=",
        "a=b",
        "super:xyz",
        "participant",
        "observer",
        "on",
        "off",
        "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
    ];
    const HOSTILE_SERVERS: &[&str] = &[
        "127.0.0.1:2888:3888",
        "127.0.0.1:2888:3888:participant",
        "127.0.0.1:2888:3888:observer",
        "127.0.0.1:2888:3888;2181",
        "127.0.0.1:2888:3888;127.0.0.1:2181",
        "127.0.0.1:2888:3888;[::1]:2181",
        "[::1]:2888:3888",
        "[::1:2888:3888",
        "host-only",
        "h:1",
        "h:1:2:3:4",
        "h:0:0",
        "h:70000:3888",
        "h:-1:3888",
        "h:2888:3888|h2:2889:3889",
        ":2888:3888",
        "h::",
        "h:2888:3888;",
        "h:2888:3888;x",
        "",
    ];

    /// One line of a hostile zoo.cfg.
    fn hostile_config_line(d: &mut zk_jute::hostile::Draws) -> String {
        match d.below(10) {
            0..=4 => format!("{}={}", d.pick(HOSTILE_KEYS), d.pick(HOSTILE_VALUES)),
            5 | 6 => {
                let sid = d.pick(&["1", "2", "3", "0", "-1", "256", "x", "1.5", ""]);
                format!("server.{sid}={}", d.pick(HOSTILE_SERVERS))
            }
            7 => {
                let g = d.pick(&[
                    "group.1=1:2:3",
                    "group.2=4",
                    "group.x=1",
                    "weight.1=0",
                    "weight.2=-1",
                    "weight.3=x",
                    "group.1=",
                    "weight.9=1",
                ]);
                g.to_string()
            }
            8 => d
                .pick(&[
                    "# comment",
                    "",
                    "   ",
                    "novalue",
                    "=orphan",
                    "key = spaced ",
                    "\t tickTime\t=\t3000",
                    "key:colon",
                    "\u{feff}tickTime=1",
                ])
                .to_string(),
            _ => String::from_utf8_lossy(&d.bytes(20)).into_owned(),
        }
    }

    /// Hostile zoo.cfg files and myid files: lines of known keys with odd
    /// values (extremes, negatives, signs, units, unicode, empty), server
    /// lines of every shape, groups and weights, garbage, in random order.
    /// Parsing never panics: a file is a config or an error naming its
    /// line; a config's derived values (voters, timeouts, conf text) are
    /// computed without panicking; and a myid file of any bytes is read or
    /// refused. `ZK_HOSTILE_CONFIGS=n` runs n files (default 3000).
    #[test]
    fn hostile_config_files_are_errors_not_panics() {
        use zk_jute::hostile::Draws;
        let scripts: u64 = std::env::var("ZK_HOSTILE_CONFIGS")
            .map(|n| n.parse().expect("ZK_HOSTILE_CONFIGS: a number"))
            .unwrap_or(3000);
        let dir = tempfile::tempdir().unwrap();
        let (mut configs, mut ensembles) = (0, 0);
        for seed in 0..scripts {
            let mut d = Draws(seed);
            let mut text = String::new();
            if d.chance(70) {
                text.push_str(&format!("dataDir={}\n", dir.path().display()));
            }
            let base = d.chance(40);
            if base {
                // A valid ensemble for the odd lines to amend.
                for sid in 1..=3 {
                    text.push_str(&format!(
                        "server.{sid}=127.0.0.1:{}:{}\n",
                        2880 + sid,
                        3880 + sid
                    ));
                }
            }
            for _ in 0..d.below(if base { 5 } else { 12 }) {
                let line = hostile_config_line(&mut d);
                text.push_str(&line);
                text.push(if d.chance(90) { '\n' } else { '\r' });
            }
            let parsed = std::panic::catch_unwind(|| Config::parse(&text));
            let Ok(result) = parsed else {
                panic!("config {seed} panicked:\n{text}");
            };
            let Ok(mut cfg) = result else {
                let e = result.unwrap_err().to_string();
                assert!(!e.is_empty(), "config {seed}: an empty error");
                continue;
            };
            configs += 1;
            let derived = std::panic::AssertUnwindSafe(|| {
                let _ = (cfg.voters(), cfg.is_ensemble(), cfg.quorum_config_text());
                let _ = cfg.conf_text((Some(2181), None), Some(cfg.config_version));
                for t in [i32::MIN, -1, 0, 1, 4000, i32::MAX] {
                    let _ = cfg.negotiate_timeout(t);
                }
                let _ = Config::apache_system_properties(&text);
            });
            assert!(
                std::panic::catch_unwind(derived).is_ok(),
                "config {seed}: a derived value panicked:\n{text}"
            );
            if cfg.is_ensemble() {
                ensembles += 1;
                let myid = dir.path().join("myid");
                let bytes = match d.below(4) {
                    0 => d.bytes(12),
                    1 => b"1\n".to_vec(),
                    2 => b" 2 ".to_vec(),
                    _ => b"99999999999999999999".to_vec(),
                };
                std::fs::write(&myid, &bytes).unwrap();
                cfg.data_dir = dir.path().to_path_buf();
                let read = std::panic::AssertUnwindSafe(|| cfg.read_myid());
                assert!(
                    std::panic::catch_unwind(read).is_ok(),
                    "config {seed}: myid {bytes:?} panicked:\n{text}"
                );
            }
        }
        // The files reach past the first error often enough to test more
        // than the key list.
        eprintln!("{scripts} files: {configs} configs, {ensembles} ensembles");
        assert!(configs * 20 >= scripts && ensembles * 100 >= scripts);
    }

    #[test]
    fn system_properties_are_read_from_jvm_flags() {
        let flags = "-Xmx1g -Dreadonlymode.enabledX=1 -Dreadonlymode.enabled=true -Dbare \
                     -Djava.security.auth.login.config=\"/etc/jaas.conf\"";
        let got = |name| system_property_in(flags, name);
        assert_eq!(got("readonlymode.enabled").as_deref(), Some("true"));
        assert_eq!(got("bare").as_deref(), Some(""));
        assert_eq!(
            got("java.security.auth.login.config").as_deref(),
            Some("/etc/jaas.conf")
        );
        assert_eq!(got("readonlymode"), None);
        assert_eq!(got("Xmx1g"), None);
    }

    #[test]
    fn tls_settings_come_from_zoo_cfg_then_jvm_properties() {
        let mut c = Config::parse(
            "dataDir=/d\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n\
             ssl.keyStore.location=/k.jks\nssl.keyStore.password=pw\nssl.clientAuth=WANT\n\
             ssl.authProvider=x509\nssl.protocol=TLSv1.3\nssl.enabledProtocols=TLSv1.3\n",
        )
        .unwrap();
        assert_eq!(c.secure_client_port, Some(2281));
        // No clientPort beside a secureClientPort: TLS only, as ZooKeeper.
        assert!(!c.plain_client_port);
        assert!(
            !c.warnings
                .iter()
                .any(|w| w.contains("clientPort is not set"))
        );
        let both = Config::parse("dataDir=/d\nclientPort=2181\nsecureClientPort=2281\n").unwrap();
        assert!(both.plain_client_port);
        assert_eq!(
            c.secure_client_port_address,
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(c.tls.client_auth, crate::tls::ClientAuth::Want);
        assert_eq!(c.tls.protocols.as_deref(), Some("TLSv1.3"));
        assert!(
            c.warnings.iter().any(|w| w.contains("ssl.protocol")),
            "{:?}",
            c.warnings
        );
        let flags = "-Dzookeeper.ssl.keyStore.location=/other.jks \
                     -Dzookeeper.ssl.trustStore.location=/t.p12 -Dzookeeper.ssl.trustStore.type=PKCS12";
        c.take_tls_properties(|name| system_property_in(flags, name));
        // zoo.cfg's line wins; the property fills what zoo.cfg leaves out.
        assert_eq!(c.tls.key_store.location, Some(PathBuf::from("/k.jks")));
        assert_eq!(c.tls.key_store.password, "pw");
        assert_eq!(c.tls.trust_store.location, Some(PathBuf::from("/t.p12")));
        assert_eq!(c.tls.trust_store.kind.as_deref(), Some("PKCS12"));
        // An x509 scheme may be enforced once a secure port is set.
        Config::parse("dataDir=/d\nsecureClientPort=2281\nenforce.auth.enabled=true\nenforce.auth.schemes=x509\n")
            .unwrap();
        assert!(
            Config::parse("dataDir=/d\nenforce.auth.enabled=true\nenforce.auth.schemes=x509\n")
                .is_err()
        );
        assert_eq!(
            Config::parse("dataDir=/d\nsecureClientPort=0\n")
                .unwrap()
                .secure_client_port,
            None
        );
        for bad in [
            "ssl.clientAuth=sometimes",
            "ssl.authProvider=custom",
            "secureClientPort=70000",
            "secureClientPortAddress=nowhere",
        ] {
            let e = Config::parse(&format!("dataDir=/d\n{bad}\n")).unwrap_err();
            assert_eq!(e.line, Some(2), "{bad}: {e}");
        }
    }

    #[test]
    fn readonlymode_in_zoo_cfg_is_a_warning_that_says_where_it_belongs() {
        let c = Config::parse("dataDir=/d\nreadonlymode.enabled=true\n").unwrap();
        assert!(!c.read_only_mode);
        assert!(
            c.warnings.iter().any(|w| w.contains("SERVER_JVMFLAGS")),
            "{:?}",
            c.warnings
        );
    }
}
