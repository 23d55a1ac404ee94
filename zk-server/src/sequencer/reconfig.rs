//! `reconfig` on the leader of an ensemble (ZooKeeper's
//! `PrepRequestProcessor`, opcode 16): the request is checked and the new
//! configuration built here, zk-tree records its txn (a `SetDataTxn` of
//! `/zookeeper/config`, data version -1) and zk-zab proposes it with the new
//! voters (`Leader::propose_reconfig`: a quorum of the old and of the new
//! voters, COMMITANDACTIVATE / INFORMANDACTIVATE at its commit). Once the
//! txn is applied the leader takes the configuration as a learner does
//! (`config_version.rs`: members, the quorum thread, the version, the
//! dynamic config file).
//!
//! The checks, in ZooKeeper's order (a failure is an error txn, as
//! ZooKeeper's, and takes a zxid):
//!
//! | check | error |
//! |---|---|
//! | reconfigEnabled off | RECONFIGDISABLED (zk-tree, before this module) |
//! | standalone | UNIMPLEMENTED |
//! | a reconfig proposed and not committed | RECONFIGINPROGRESS |
//! | curConfigId neither -1 nor the version | BADVERSION |
//! | newMembers given (non-incremental): `,`-separated properties; a key other than `server.N` / `version`, a spec that does not parse | BADARGUMENTS |
//! | ... a server id that is not a number; no participant (standaloneEnabled off, or observers); one participant and observers (standaloneEnabled on) | MARSHALLINGERROR (ZooKeeper's runtime exceptions) |
//! | else incremental: leaving ids (not a number: MARSHALLINGERROR, unknown: ignored), then joining `server.N=spec;client` entries replacing any of the same id (no `=`, a spec that does not parse, no client address, an address another member has: BADARGUMENTS) | |
//! | fewer than 2 voters (1 without standaloneEnabled) | BADARGUMENTS |
//! | the new voters' quorum not synced with this leader | NEWCONFIGNOQUORUM |
//! | no WRITE on `/zookeeper/config` (unless skipACL or super) | NOAUTH (zk-tree) |
//!
//! The ACL check comes last, as ZooKeeper's: an unauthenticated client learns
//! BADVERSION, BADARGUMENTS and NEWCONFIGNOQUORUM (kazoo's tests rely on it).
//! Weighted / hierarchical quorums: while zoo.cfg's `group.N` / `weight.N`
//! lines are in force every reconfig is BADARGUMENTS. ZooKeeper refuses an
//! incremental one too ("non-majority quorum system") but takes new members
//! (a majority configuration without group lines, a hierarchical one with
//! them); ours builds no configuration with groups, and one that dropped
//! them while keeping the same members would leave the election counting
//! groups where the leader counts majorities. New members with `group.N` /
//! `weight.N` lines are BADARGUMENTS in any case (a key other than
//! `server.N` / `version`).

use std::collections::BTreeMap;

use bytes::Bytes;
use zk_jute::quorum::{HostPort, QuorumServer, voter_ids};
use zk_jute::{ErrorCode, ReconfigRequest, TxnBody};
use zk_tree::RequestContext;
use zk_zab::NewConfig;

use super::Sequencer;
use super::role::Role;

impl Sequencer {
    /// The txn of a reconfig request and the configuration it proposes, or
    /// the error ZooKeeper's leader answers it with.
    pub(super) fn prep_reconfig(
        &mut self,
        rctx: &RequestContext<'_>,
        r: &ReconfigRequest,
    ) -> Result<(TxnBody, NewConfig), ErrorCode> {
        let cfg = &self.shared.config;
        if !cfg.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        // (A standalone server's reconfig never comes here: zk-tree answers
        // it UNIMPLEMENTED.)
        let Some(Role::Leading(l)) = &self.role else {
            return Err(ErrorCode::Unimplemented);
        };
        if l.core.reconfig_pending() {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let version = self.shared.control.config_version();
        if r.cur_config_id != -1 && r.cur_config_id as u64 != version {
            return Err(ErrorCode::BadVersion);
        }
        // ZooKeeper refuses an incremental reconfig of a hierarchical
        // configuration and takes new members as a majority one; ours
        // refuses both (see the module doc).
        if self.shared.groups_in_force() {
            return Err(ErrorCode::BadArguments);
        }
        let servers = match r.new_members.as_deref() {
            Some(text) => non_incremental(text, cfg.standalone_enabled)?,
            None => incremental(
                &self.shared.members(),
                r.joining_servers.as_deref().unwrap_or_default(),
                r.leaving_servers.as_deref().unwrap_or_default(),
            )?,
        };
        let voters = voter_ids(&servers);
        if voters.len() < if cfg.standalone_enabled { 2 } else { 1 } {
            return Err(ErrorCode::BadArguments);
        }
        if !l.core.quorum_synced(&voters) {
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let new = self.zab_config(servers);
        let text = zk_zab::config_text(&new.members, rctx.zxid);
        let body = zk_tree::prepare_reconfig(&self.shared.tree, &mut self.overlay, rctx, text)?;
        Ok((body, new))
    }

    /// The voters and members of a configuration's text (a reconfig's
    /// data), or `None` (logged) when it does not parse.
    pub(super) fn new_config_of(&self, text: &[u8]) -> Option<NewConfig> {
        let servers = super::config_version::parse_config(text, "a logged reconfig")?.servers;
        Some(self.zab_config(servers))
    }

    /// `servers` as zk-zab's leader takes a configuration: the voters, and
    /// the members' lines as this server writes them.
    fn zab_config(&self, servers: Vec<QuorumServer>) -> NewConfig {
        let voters = voter_ids(&servers);
        let mut next = self.shared.live_config();
        next.servers = servers;
        next.drop_groups();
        let members = Bytes::from(next.quorum_members_text());
        NewConfig { voters, members }
    }
}

/// Java's `Long.parseLong` of a server id: not a number is ZooKeeper's
/// NumberFormatException (MARSHALLINGERROR); a negative one names no server.
fn server_id(s: &str) -> Result<u64, ErrorCode> {
    let id: i64 = s.parse().map_err(|_| ErrorCode::MarshallingError)?;
    u64::try_from(id).map_err(|_| ErrorCode::BadArguments)
}

/// A server spec as `QuorumServer`'s constructor takes it: it parses and its
/// quorum and election ports differ.
fn spec(id: u64, value: &str) -> Result<QuorumServer, ErrorCode> {
    let s = QuorumServer::parse(id, value).map_err(|_| ErrorCode::BadArguments)?;
    let same_port = s
        .quorum_addrs
        .iter()
        .zip(&s.election_addrs)
        .any(|(q, e)| q == e);
    if same_port {
        return Err(ErrorCode::BadArguments);
    }
    Ok(s)
}

/// `newMembers`: the whole membership, `,`-separated `key=value`
/// properties (QuorumPeerConfig.parseDynamicConfig).
fn non_incremental(text: &str, standalone_enabled: bool) -> Result<Vec<QuorumServer>, ErrorCode> {
    let mut servers = BTreeMap::new();
    for line in text.split([',', '\n', '\r']) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        // java.util.Properties: the key ends at the first '=', ':' or blank.
        let end = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(line.len());
        let (key, rest) = line.split_at(end);
        let value = rest
            .trim_start()
            .strip_prefix(['=', ':'])
            .unwrap_or(rest)
            .trim();
        if let Some(id) = key.strip_prefix("server.") {
            let id = server_id(id)?;
            servers.insert(id, spec(id, value)?);
        } else if key != "version" {
            return Err(ErrorCode::BadArguments);
        }
    }
    let voters = voter_ids(servers.values()).len();
    let observers = servers.len() - voters;
    let refused = match voters {
        0 => !standalone_enabled || observers > 0,
        1 => standalone_enabled && observers > 0,
        _ => false,
    };
    if refused {
        return Err(ErrorCode::MarshallingError);
    }
    Ok(servers.into_values().collect())
}

/// `leavingServers` (ids) out of the members, then `joiningServers`
/// (`server.N=spec;client`) in, each replacing a member of its id.
fn incremental(
    members: &[QuorumServer],
    joining: &str,
    leaving: &str,
) -> Result<Vec<QuorumServer>, ErrorCode> {
    let mut next: BTreeMap<u64, QuorumServer> = members.iter().map(|s| (s.id, s.clone())).collect();
    let pieces = |s: &str| {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for id in pieces(leaving) {
        next.remove(&server_id(&id)?);
    }
    for joiner in pieces(joining) {
        // StringUtils.split on '=': empty pieces dropped, exactly two left.
        let parts: Vec<&str> = joiner.split('=').filter(|p| !p.is_empty()).collect();
        let [name, value] = parts[..] else {
            return Err(ErrorCode::BadArguments);
        };
        let id = server_id(name.rsplit('.').next().unwrap_or(name))?;
        let s = spec(id, value)?;
        if s.client_addr.is_none() {
            return Err(ErrorCode::BadArguments);
        }
        let clash = next
            .values()
            .filter(|o| o.id != id)
            .any(|o| shares_an_address(&s, o));
        if clash {
            return Err(ErrorCode::BadArguments);
        }
        next.insert(id, s);
    }
    Ok(next.into_values().collect())
}

/// `QuorumServer.checkAddressDuplicate`: a quorum or election address of
/// `a` that `b` has too (wildcard and loopback addresses excepted: servers
/// on one host tell each other apart by port only there).
fn shares_an_address(a: &QuorumServer, b: &QuorumServer) -> bool {
    let addrs = |s: &QuorumServer| -> Vec<HostPort> {
        s.quorum_addrs
            .iter()
            .chain(&s.election_addrs)
            .cloned()
            .collect()
    };
    let local = |h: &HostPort| {
        matches!(
            h.host.as_str(),
            "0.0.0.0" | "::" | "localhost" | "::1" | "0:0:0:0:0:0:0:1"
        ) || h.host.starts_with("127.")
    };
    let theirs = addrs(b);
    addrs(a).iter().any(|x| !local(x) && theirs.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::quorum::LearnerType;

    fn members() -> Vec<QuorumServer> {
        (1..=3)
            .map(|i| spec(i, &format!("10.0.0.{i}:2888:3888:participant;0.0.0.0:2181")).unwrap())
            .collect()
    }

    fn ids(v: &[QuorumServer]) -> Vec<(u64, LearnerType)> {
        v.iter().map(|s| (s.id, s.role)).collect()
    }

    #[test]
    fn incremental_leaves_then_joins_and_a_join_replaces_its_id() {
        use LearnerType::*;
        let got = incremental(
            &members(),
            "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456, 2=10.0.0.9:2888:3888;2181",
            "3",
        )
        .unwrap();
        assert_eq!(
            ids(&got),
            [(1, Participant), (2, Participant), (100, Observer)]
        );
        assert_eq!(got[1].quorum_addrs[0].host, "10.0.0.9");
        // Unknown leaving ids are ignored; empty pieces dropped.
        let got = incremental(&members(), "", " ,42,").unwrap();
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn incremental_refuses_as_zookeeper() {
        let m = members();
        let bad = |j: &str, l: &str| incremental(&m, j, l).unwrap_err();
        assert_eq!(bad("some thing", ""), ErrorCode::BadArguments, "no '='");
        assert_eq!(bad("server.4=a=b", ""), ErrorCode::BadArguments);
        assert_eq!(bad("server.x=h:1:2;3", ""), ErrorCode::MarshallingError);
        assert_eq!(bad("", "one"), ErrorCode::MarshallingError);
        assert_eq!(
            bad("server.4=h:1:2", ""),
            ErrorCode::BadArguments,
            "no client"
        );
        assert_eq!(
            bad("server.4=h:1;3", ""),
            ErrorCode::BadArguments,
            "two ports"
        );
        assert_eq!(
            bad("server.4=h:1:1;3", ""),
            ErrorCode::BadArguments,
            "same port"
        );
        assert_eq!(
            bad("server.4=10.0.0.1:2888:3999;2181", ""),
            ErrorCode::BadArguments,
            "server 1's quorum address"
        );
        // Loopback and wildcard addresses are shared by servers of one host.
        assert!(incremental(&m, "server.4=0.0.0.0:2888:3888;2181", "").is_ok());
    }

    #[test]
    fn non_incremental_takes_the_whole_membership() {
        use LearnerType::*;
        let got = non_incremental(
            "server.1=h:1:2;3,server.2 = h:4:5:participant;6,server.3:h:7:8:observer;9,version=1a",
            true,
        )
        .unwrap();
        assert_eq!(
            ids(&got),
            [(1, Participant), (2, Participant), (3, Observer)]
        );
        let bad = |t: &str, sa: bool| non_incremental(t, sa).unwrap_err();
        assert_eq!(
            bad("server.1=h:1:2,peerType=observer", true),
            ErrorCode::BadArguments
        );
        assert_eq!(
            bad("group.1=1:2", true),
            ErrorCode::BadArguments,
            "hierarchical"
        );
        assert_eq!(bad("server.1=h:1", true), ErrorCode::BadArguments);
        assert_eq!(bad("server.one=h:1:2", true), ErrorCode::MarshallingError);
        assert_eq!(
            bad("server.1=h:1:2:observer", true),
            ErrorCode::MarshallingError
        );
        assert_eq!(
            bad("server.1=h:1:2,server.2=h:3:4:observer", true),
            ErrorCode::MarshallingError,
            "one participant and observers"
        );
        assert!(non_incremental("server.1=h:1:2,server.2=h:3:4:observer", false).is_ok());
        assert_eq!(bad("", false), ErrorCode::MarshallingError, "nobody");
        assert_eq!(
            non_incremental("", true),
            Ok(vec![]),
            "the voter count refuses it"
        );
    }
}
