//! The ensemble configuration's version with `reconfigEnabled=true`
//! (ZOOKEEPER-1783; zk-zab's `LeaderConfig::version_config`): a leader whose
//! configuration has version 0 sends the new epoch's first zxid as its
//! version with NEWLEADER and makes it current once the epoch is established;
//! each learner makes the version NEWLEADER carried its own at UPTODATE
//! (ZooKeeper's `processReconfig`), and so the
//! version of a reconfig an (Apache) leader commits with COMMITANDACTIVATE
//! (INFORMANDACTIVATE to an observer), once the reconfig's txn is applied.
//! Either way the new version goes to `/zookeeper/config`, to the quorum
//! thread (the election's notifications, the next role's LearnerInfo and
//! NEWLEADER) and to disk ([`crate::dynamic_config`]).
//!
//! Other members (ZooKeeper's `processReconfig` with a new verifier) are
//! taken at run time: the live members ([`crate::shared::Shared::members`]:
//! `conf`, the AdminServer, `/zookeeper/config`, the dynamic config file) and
//! the quorum thread's ([`QuorumOut::Members`]: the election's voters and
//! peers, the next role's quorum addresses), then the version. A LOOKING
//! server takes a later configuration a peer's notification carries
//! ([`Sequencer::peer_config`], ZooKeeper's WorkerReceiver) and the quorum
//! thread elects again with its members. This server's own entry: a new role
//! (participant, observer) is taken, and a learner whose vote it gives or
//! takes elects again, as ZooKeeper's learner restarts in its new role; a
//! removal is taken but not written (a configuration without this server
//! could not start it again): it then votes no more and follows as
//! ZooKeeper's non-voting participant; new addresses for this server are
//! written for its next start (it listens on the ones it started with) and
//! the server says so.

use bytes::Bytes;
use tracing::{error, info, warn};
use zk_jute::TxnBody;
use zk_jute::quorum::{HostPort, LearnerType, QuorumConfig, QuorumServer, voter_ids};
use zk_zab::Zxid;

use super::Sequencer;
use crate::msg::QuorumOut;
use crate::shared::Shared;

impl Sequencer {
    /// The configuration has version `v` from now on, if later than ours;
    /// written to disk when `persist` (not when it removes this server).
    fn adopt_config_version(&mut self, v: u64, persist: bool) {
        if v <= self.shared.control.config_version() {
            return;
        }
        self.shared.control.set_config_version(v);
        self.out(QuorumOut::ConfigVersion(v));
        self.refresh_config_node();
        info!("the ensemble's configuration is version 0x{v:x} from now on");
        let Some(zoo_cfg) = self.shared.config.source.clone().filter(|_| persist) else {
            return;
        };
        match crate::dynamic_config::persist(&zoo_cfg, &self.shared.live_config(), v) {
            Ok(path) => info!(
                "wrote {} and named it in {} (dynamicConfigFile)",
                path.display(),
                zoo_cfg.display()
            ),
            Err(e) => error!(
                "cannot write the dynamic config file of version 0x{v:x} beside {}: {e}; \
                 a restart reads the old configuration",
                zoo_cfg.display()
            ),
        }
    }

    /// Learner at UPTODATE: the configuration text NEWLEADER carried.
    pub(super) fn leader_config(&mut self, text: &[u8]) {
        self.new_config(text, "NEWLEADER");
    }

    /// LOOKING: a configuration a peer's notification carried, later than
    /// ours (ZooKeeper's WorkerReceiver); its members come back to the
    /// quorum thread, which elects again with them.
    pub(super) fn peer_config(&mut self, text: &[u8]) {
        self.new_config(text, "a peer's notification");
    }

    /// Learner: the reconfig txn a COMMITANDACTIVATE (INFORMANDACTIVATE)
    /// committed is applied; `text` is its data (the new configuration),
    /// `designated` the leader the leader named for it.
    pub(super) fn activate_config(&mut self, text: &[u8], designated: i64) {
        info!("the leader activated a reconfig (designated leader {designated})");
        self.new_config(text, "the reconfig");
    }

    /// ZooKeeper's `processReconfig`: a later version is adopted, with its
    /// members when they changed (see the module documentation).
    fn new_config(&mut self, text: &[u8], from: &str) {
        if !self.shared.config.reconfig_enabled {
            return;
        }
        let Some(leaders) = parse_config(text, from) else {
            return;
        };
        let Some(v) = leaders.version else { return };
        if v <= self.shared.control.config_version() {
            return;
        }
        let members = self.shared.members();
        if same_members(&leaders.servers, &members) {
            return self.adopt_config_version(v, true);
        }
        let me = self.shared.config.my_id;
        let mine = |servers: &[QuorumServer]| servers.iter().find(|s| s.id == me).map(key);
        let now = mine(&leaders.servers);
        // Our own addresses are those we started with: an entry that moves
        // them waits for the next start.
        let started = mine(&self.shared.config.servers);
        let moved = match (&now, &started) {
            (Some(n), Some(s)) => (&n.1, &n.2) != (&s.1, &s.2),
            _ => false,
        };
        if moved {
            return self.persist_for_restart(leaders.servers, v, from);
        }
        if now.is_none() {
            warn!(
                "the configuration of {from}, version 0x{v:x}, removes this server from the \
                 ensemble: it takes it (it votes no more) but does not write it (a configuration \
                 without this server could not start it again)"
            );
        }
        info!(
            "the configuration of {from}, version 0x{v:x}, has other members: taking them (ids {:?})",
            leaders.servers.iter().map(|s| s.id).collect::<Vec<_>>()
        );
        self.shared.set_members(leaders.servers.clone());
        let members = bytes::Bytes::from(self.shared.live_config().quorum_members_text());
        self.out(QuorumOut::Members {
            servers: leaders.servers,
            members,
        });
        self.adopt_config_version(v, now.is_some());
        // ZooKeeper's processReconfig with a changed learner type: a
        // learner that must now connect the other way (an observer given a
        // vote, a voter made an observer) elects again. A follower that
        // gains or loses its vote stays (the leader counts it by its
        // configuration; the election says FOLLOWING or OBSERVING).
        let observer = |k: &Option<Key>| k.as_ref().is_some_and(|k| k.3 == LearnerType::Observer);
        if self.is_learning() && self.is_observing() != observer(&now) {
            self.end_role(format!(
                "the configuration of {from} makes this server {}",
                if observer(&now) {
                    "an observer"
                } else {
                    "a follower"
                }
            ));
        }
    }

    /// A configuration that changes this server's own entry: written for
    /// the next start, not taken now.
    fn persist_for_restart(&self, servers: Vec<QuorumServer>, v: u64, from: &str) {
        let Some(zoo_cfg) = self.shared.config.source.clone() else {
            warn!(
                "the configuration of {from}, version 0x{v:x}, changes this server's own entry, \
                 and there is no zoo.cfg to write it to: it keeps its members"
            );
            return;
        };
        let mut next = self.shared.live_config();
        next.servers = servers;
        next.drop_groups();
        match crate::dynamic_config::persist(&zoo_cfg, &next, v) {
            Ok(path) => warn!(
                "the configuration of {from}, version 0x{v:x}, changes this server's own entry \
                 (its role or addresses): written to {} for the next start; until it restarts \
                 this server keeps its members and version 0x{:x}",
                path.display(),
                self.shared.control.config_version()
            ),
            Err(e) => error!(
                "cannot write the configuration of {from}, version 0x{v:x}, beside {}: {e}; \
                 this server keeps its members",
                zoo_cfg.display()
            ),
        }
    }
}

impl Sequencer {
    /// The last-seen configuration when a role ends, for the next election
    /// ([`QuorumOut::LastSeen`]; reconfigEnabled only): the log's newest
    /// reconfig txn (found at the role's start or logged since: a learner's
    /// proposal never committed, a leader's own) if later than the
    /// configuration in force.
    pub(super) fn report_last_seen(&mut self) {
        if self.shared.config.reconfig_enabled {
            self.out(QuorumOut::LastSeen(self.last_seen()));
        }
    }

    /// The last-seen configuration's version and servers: the log's newest
    /// reconfig if later than the configuration in force (at start-up, the
    /// one recovery loaded, for the first election: `server.rs`).
    pub(crate) fn last_seen(&self) -> Option<(u64, Vec<QuorumServer>)> {
        let in_force = self.shared.control.config_version();
        let (z, text) = self
            .last_reconfig
            .as_ref()
            .filter(|(z, _)| z.as_u64() > in_force)?;
        let c = parse_config(text, "a reconfig of the log")?;
        info!(
            "the log holds the configuration 0x{z:x}, never activated here: elections count its voters {:?} too",
            voter_ids(&c.servers)
        );
        Some((z.as_u64(), c.servers))
    }

    /// A record just logged: the newest reconfig of the log if it is one
    /// (its txn type read off the header; only a reconfig is decoded).
    pub(super) fn note_reconfig(&mut self, zxid: Zxid, record: &[u8]) {
        let reconfig = zk_jute::OpCode::Reconfig.code().to_be_bytes();
        if record.get(TXN_TYPE_AT..TXN_TYPE_AT + 4) != Some(&reconfig[..]) {
            return;
        }
        // A record may carry its digest after the body (as Apache logs it).
        if let Ok(zk_apache::Txn {
            body: TxnBody::Reconfig(t),
            ..
        }) = zk_apache::decode_txn(Bytes::copy_from_slice(record))
        {
            self.last_reconfig = Some((zxid, t.data.unwrap_or_default()));
        }
    }
}

/// Where a txn record's type is: after the header's clientId, cxid, zxid
/// and time (8 + 4 + 8 + 8 bytes).
const TXN_TYPE_AT: usize = 28;

/// ZooKeeper's last-seen configuration: with the whole log in the tree
/// and before `/zookeeper/config` is refreshed (a role's start, the
/// server's), a node written by a reconfig txn later than the
/// configuration's version (logged here and never activated: its commit was
/// not seen) — its zxid and text.
pub(super) fn logged_reconfig_in(shared: &Shared) -> Option<(Zxid, Bytes)> {
    if !shared.config.reconfig_enabled {
        return None;
    }
    let none = zk_tree::Auth::new(&[]);
    let (data, stat) = shared
        .tree
        .get_data("/zookeeper/config", &none, None)
        .ok()?;
    let version = u64::try_from(stat.mzxid).ok()?;
    (version > shared.control.config_version())
        .then(|| (Zxid::from(stat.mzxid), data.unwrap_or_default()))
}

/// A configuration's text, or `None` (logged: the text of `from` is
/// ignored) when it does not parse.
pub(super) fn parse_config(text: &[u8], from: &str) -> Option<QuorumConfig> {
    let parsed = std::str::from_utf8(text)
        .map_err(|e| e.to_string())
        .and_then(|t| QuorumConfig::parse(t).map_err(|e| e.0));
    parsed
        .map_err(|e| warn!("the configuration of {from} does not parse ({e}): ignored"))
        .ok()
}

/// A server's id, quorum and election addresses and role.
type Key = (u64, Vec<HostPort>, Vec<HostPort>, LearnerType);

/// A server's [`Key`].
fn key(s: &QuorumServer) -> Key {
    (
        s.id,
        s.quorum_addrs.clone(),
        s.election_addrs.clone(),
        s.role,
    )
}

/// The same servers with the same addresses (client addresses too: a
/// reconfig may give them, and `/zookeeper/config` shows them, as
/// ZooKeeper's) and roles.
fn same_members(a: &[QuorumServer], b: &[QuorumServer]) -> bool {
    let mut a: Vec<&QuorumServer> = a.iter().collect();
    let mut b: Vec<&QuorumServer> = b.iter().collect();
    a.sort_by_key(|s| s.id);
    b.sort_by_key(|s| s.id);
    a == b
}
