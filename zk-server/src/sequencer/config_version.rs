//! The ensemble configuration's version with `reconfigEnabled=true`
//! (ZOOKEEPER-1783; zk-zab's `LeaderConfig::version_config`): a leader whose
//! configuration has version 0 sends the new epoch's first zxid as its
//! version with NEWLEADER and makes it current once the epoch is established;
//! each learner makes the version NEWLEADER carried its own at UPTODATE
//! (ZooKeeper's `processReconfig`), when the members are ours, and so the
//! version of a reconfig an (Apache) leader commits with COMMITANDACTIVATE
//! (INFORMANDACTIVATE to an observer), once the reconfig's txn is applied.
//! Either way the new version goes to `/zookeeper/config`, to the quorum
//! thread (the election's notifications, the next role's LearnerInfo and
//! NEWLEADER) and to disk ([`crate::dynamic_config`]).
//!
//! Changing the members at run time is not built (nor is the reconfig
//! operation on our leader): a configuration naming other members (another
//! server, or this one with another role) is written to disk as the dynamic
//! config file, which the next start reads, and the running server keeps its
//! members and version meanwhile, saying so. It stays in its role: ZooKeeper's
//! learner leaves it only for a change of its own role, which here would take
//! the restart all the same.

use tracing::{error, info, warn};
use zk_jute::quorum::{QuorumConfig, QuorumServer};

use super::Sequencer;
use crate::msg::QuorumOut;

impl Sequencer {
    /// The configuration has version `v` from now on, if later than ours.
    pub(super) fn adopt_config_version(&mut self, v: u64) {
        if v <= self.shared.control.config_version() {
            return;
        }
        self.shared.control.set_config_version(v);
        self.out(QuorumOut::ConfigVersion(v));
        self.refresh_config_node();
        info!("the ensemble's configuration is version 0x{v:x} from now on");
        let Some(zoo_cfg) = self.shared.config.source.clone() else {
            return;
        };
        match crate::dynamic_config::persist(&zoo_cfg, &self.shared.config, v) {
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

    /// Learner: the reconfig txn a COMMITANDACTIVATE (INFORMANDACTIVATE)
    /// committed is applied; `text` is its data (the new configuration),
    /// `designated` the leader the leader named for it.
    pub(super) fn activate_config(&mut self, text: &[u8], designated: i64) {
        info!("the leader activated a reconfig (designated leader {designated})");
        self.new_config(text, "the reconfig");
    }

    /// ZooKeeper's `processReconfig` as far as built here: a later version
    /// of our members is adopted; other members go to disk for the next start.
    fn new_config(&mut self, text: &[u8], from: &str) {
        if !self.shared.config.reconfig_enabled {
            return;
        }
        let parsed = std::str::from_utf8(text)
            .map_err(|e| e.to_string())
            .and_then(|t| QuorumConfig::parse(t).map_err(|e| e.0));
        let leaders = match parsed {
            Ok(c) => c,
            Err(e) => {
                warn!("the configuration of {from} does not parse ({e}): ignored");
                return;
            }
        };
        let Some(v) = leaders.version else { return };
        if v <= self.shared.control.config_version() {
            return;
        }
        if same_members(&leaders.servers, &self.shared.config.servers) {
            return self.adopt_config_version(v);
        }
        let Some(zoo_cfg) = self.shared.config.source.clone() else {
            warn!(
                "the configuration of {from}, version 0x{v:x}, has other members than ours, and \
                 this server has no zoo.cfg to write them to: it keeps its members (changing them \
                 at run time is not built here)"
            );
            return;
        };
        let mut next = self.shared.config.clone();
        next.servers = leaders.servers;
        match crate::dynamic_config::persist(&zoo_cfg, &next, v) {
            Ok(path) => warn!(
                "the configuration of {from}, version 0x{v:x}, has other members than ours: \
                 written to {} for the next start; until this server restarts it keeps its \
                 members and version 0x{:x} (changing them at run time is not built here)",
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

/// The same servers with the same quorum and election addresses and roles
/// (a client address may differ: it is each server's own business).
fn same_members(a: &[QuorumServer], b: &[QuorumServer]) -> bool {
    let key = |s: &QuorumServer| {
        (
            s.id,
            s.quorum_addrs.clone(),
            s.election_addrs.clone(),
            s.role,
        )
    };
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort_by_key(|k| k.0);
    b.sort_by_key(|k| k.0);
    a == b
}
