//! Quorum wire formats outside `zookeeper.jute`: the fast leader election
//! notification, the election connection's initial message, and the quorum
//! configuration text (`server.N=...` lines plus `version=...`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;
use crate::codec::Reader;

/// A server's election state as carried in notifications (`QuorumPeer.ServerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ServerState {
    /// Looking for a leader.
    Looking = 0,
    /// Following a leader.
    Following = 1,
    /// Leading.
    Leading = 2,
    /// Observing (non-voting).
    Observing = 3,
}

impl TryFrom<i32> for ServerState {
    type Error = DecodeError;
    fn try_from(v: i32) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => ServerState::Looking,
            1 => ServerState::Following,
            2 => ServerState::Leading,
            3 => ServerState::Observing,
            other => {
                return Err(DecodeError::UnknownValue {
                    what: "server state",
                    value: i64::from(other),
                });
            }
        })
    }
}

/// The notification version this crate writes (`Notification.CURRENTVERSION`).
pub const NOTIFICATION_VERSION: i32 = 0x2;

/// A fast leader election notification (a vote).
///
/// Layout: `int state, long leader, long zxid, long electionEpoch, long peerEpoch,
/// int version, int configLength, byte[config]` (44 bytes plus the config). Older
/// peers send only the first four fields (28 bytes: `peer_epoch` is taken from
/// the zxid's epoch) or 40 bytes (the trailing int is not read as a version);
/// both decode with `version` 0 and an empty config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The sender's state ([`ServerState`] as a raw value).
    pub state: i32,
    /// The proposed leader's id.
    pub leader: i64,
    /// The proposed leader's last zxid.
    pub zxid: i64,
    /// The sender's logical clock (election epoch).
    pub election_epoch: i64,
    /// The proposed leader's epoch.
    pub peer_epoch: i64,
    /// The notification format version.
    pub version: i32,
    /// The sender's quorum configuration text (may be empty).
    pub config: Bytes,
}

impl Notification {
    /// Encodes in the current (version 2) layout.
    pub fn write(&self, out: &mut BytesMut) {
        out.put_i32(self.state);
        out.put_i64(self.leader);
        out.put_i64(self.zxid);
        out.put_i64(self.election_epoch);
        out.put_i64(self.peer_epoch);
        out.put_i32(self.version);
        out.put_i32(crate::codec::len_i32(self.config.len()));
        out.put_slice(&self.config);
    }

    /// Decodes a notification message (the payload after its length prefix),
    /// exactly as Apache ZooKeeper 3.8's `FastLeaderElection.WorkerReceiver`
    /// reads it:
    ///
    /// * fewer than 28 bytes: invalid (skipped);
    /// * exactly 28 bytes: the pre-3.4 layout, `peer_epoch` is the zxid's epoch;
    /// * exactly 40 bytes: `peer_epoch` present, the trailing int is not read
    ///   and the version is 0;
    /// * otherwise `peer_epoch` and the version int must be present (29..=39
    ///   bytes is invalid); a version above 1 is followed by `configLength`,
    ///   which must be in `0..=len` and fit in what remains. Bytes after the
    ///   config (or after the version when it is 0 or 1) are ignored.
    ///
    /// The state is not checked here (an unknown state is the caller's to skip).
    pub fn decode(msg: Bytes) -> Result<Self, DecodeError> {
        let len = msg.len();
        if len < 28 {
            return Err(DecodeError::Invalid {
                what: "notification",
                reason: "shorter than 28 bytes",
            });
        }
        let mut r = Reader::new(msg);
        let state = r.read_i32()?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let mut version = 0;
        let mut config = Bytes::new();
        let peer_epoch = if len == 28 {
            crate::Zxid::from(zxid).epoch_i64()
        } else {
            let peer_epoch = r.read_i64()?;
            if len != 40 {
                version = r.read_i32()?;
                if version > 0x1 {
                    let offset = r.offset();
                    let n = r.read_i32()?;
                    if n < 0 || n as usize > len || n as usize > r.remaining() {
                        return Err(DecodeError::BadLength {
                            offset,
                            len: i64::from(n),
                        });
                    }
                    config = r.take_rest().slice(..n as usize);
                }
            }
            peer_epoch
        };
        Ok(Self {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// `QuorumCnxManager`'s protocol version marker for the initial message (V1).
pub const INITIAL_MESSAGE_V1: i64 = -65536;
/// Protocol version marker V2 (multiple addresses separated by `|`).
pub const INITIAL_MESSAGE_V2: i64 = -65535;
/// The longest address text accepted in an initial message
/// (`QuorumCnxManager.InitialMessage.maxBuffer`).
pub const MAX_INITIAL_ADDRESS: usize = 2048;

/// The first message on an election connection: who is connecting and where
/// it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    /// Protocol marker ([`INITIAL_MESSAGE_V1`] or [`INITIAL_MESSAGE_V2`]); the
    /// old format, a bare server id, decodes with `protocol == 0`.
    pub protocol: i64,
    /// The connecting server's id.
    pub sid: i64,
    /// Its election address(es), `host:port[|host:port...]`; empty in the old format.
    pub addresses: String,
}

impl InitialMessage {
    /// Encodes the message.
    pub fn write(&self, out: &mut BytesMut) {
        if self.protocol == 0 {
            out.put_i64(self.sid);
            return;
        }
        out.put_i64(self.protocol);
        out.put_i64(self.sid);
        out.put_i32(crate::codec::len_i32(self.addresses.len()));
        out.put_slice(self.addresses.as_bytes());
    }

    /// Decodes the message from the start of `buf`.
    pub fn decode(buf: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let first = r.read_i64()?;
        if first >= 0 {
            r.finish("initial message")?;
            return Ok(Self {
                protocol: 0,
                sid: first,
                addresses: String::new(),
            });
        }
        if first != INITIAL_MESSAGE_V1 && first != INITIAL_MESSAGE_V2 {
            return Err(DecodeError::UnknownValue {
                what: "initial message protocol",
                value: first,
            });
        }
        let sid = r.read_i64()?;
        let offset = r.offset();
        let n = r.read_i32()?;
        if n < 1 || n as usize > MAX_INITIAL_ADDRESS {
            return Err(DecodeError::BadLength {
                offset,
                len: i64::from(n),
            });
        }
        let raw = r.take_rest();
        if raw.len() != n as usize {
            return Err(DecodeError::Invalid {
                what: "initial message",
                reason: "address length does not match the message",
            });
        }
        let addresses = String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Invalid {
            what: "initial message",
            reason: "address is not UTF-8",
        })?;
        Ok(Self {
            protocol: first,
            sid,
            addresses,
        })
    }
}

/// A member's role in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LearnerType {
    /// A voting member.
    #[default]
    Participant,
    /// A non-voting observer.
    Observer,
}

/// A `host:port` pair; IPv6 hosts are kept without brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One `server.N=` entry: `host:quorumPort:electionPort[:participant|observer]
/// [;[clientAddr:]clientPort]`, with `|`-separated alternative quorum/election
/// addresses (multiAddress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    /// The server id (the `myid` of that server).
    pub id: u64,
    /// Quorum (leader-follower) addresses.
    pub quorum_addrs: Vec<HostPort>,
    /// Election addresses, parallel to `quorum_addrs`.
    pub election_addrs: Vec<HostPort>,
    /// Participant or observer.
    pub role: LearnerType,
    /// The client address, if given.
    pub client_addr: Option<HostPort>,
}

/// Why a `server.N` line or quorum config text is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn split_host_ports(s: &str) -> Result<Vec<String>, ConfigError> {
    // Splits "host:p1:p2:role" respecting [ipv6] brackets.
    let mut parts = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped
                .find(']')
                .ok_or_else(|| ConfigError(format!("unterminated '[' in {s:?}")))?;
            parts.push(stripped[..end].to_string());
            rest = &stripped[end + 1..];
            rest = rest.strip_prefix(':').unwrap_or(rest);
            continue;
        }
        match rest.find(':') {
            Some(i) => {
                parts.push(rest[..i].to_string());
                rest = &rest[i + 1..];
            }
            None => {
                parts.push(rest.to_string());
                rest = "";
            }
        }
    }
    Ok(parts)
}

fn parse_port(s: &str, what: &str, line: &str) -> Result<u16, ConfigError> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ConfigError(format!("invalid {what} {s:?} in {line:?}")))
}

impl QuorumServer {
    /// Parses the value of a `server.<id>=` line.
    pub fn parse(id: u64, value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        let (addrs, client) = match value.split_once(';') {
            Some((a, c)) => (a, Some(c.trim())),
            None => (value, None),
        };
        let mut quorum_addrs = Vec::new();
        let mut election_addrs = Vec::new();
        let mut role = LearnerType::Participant;
        for (i, addr) in addrs.split('|').enumerate() {
            let parts = split_host_ports(addr.trim())?;
            if parts.len() < 3 || parts.len() > 4 {
                return Err(ConfigError(format!(
                    "server.{id}: expected host:quorumPort:electionPort[:role], got {addr:?}"
                )));
            }
            let host = parts[0].clone();
            if host.is_empty() {
                return Err(ConfigError(format!("server.{id}: empty host in {addr:?}")));
            }
            quorum_addrs.push(HostPort {
                host: host.clone(),
                port: parse_port(&parts[1], "quorum port", value)?,
            });
            election_addrs.push(HostPort {
                host,
                port: parse_port(&parts[2], "election port", value)?,
            });
            if let Some(r) = parts.get(3) {
                let this_role = match r.to_ascii_lowercase().as_str() {
                    "participant" => LearnerType::Participant,
                    "observer" => LearnerType::Observer,
                    other => {
                        return Err(ConfigError(format!(
                            "server.{id}: unknown role {other:?} (participant or observer)"
                        )));
                    }
                };
                if i > 0 && this_role != role {
                    return Err(ConfigError(format!(
                        "server.{id}: addresses disagree on the role"
                    )));
                }
                role = this_role;
            }
        }
        let client_addr = match client {
            None | Some("") => None,
            Some(c) => {
                let parts = split_host_ports(c)?;
                match parts.as_slice() {
                    [port] => Some(HostPort {
                        host: "0.0.0.0".to_string(),
                        port: parse_port(port, "client port", value)?,
                    }),
                    [host, port] => Some(HostPort {
                        host: host.clone(),
                        port: parse_port(port, "client port", value)?,
                    }),
                    _ => {
                        return Err(ConfigError(format!(
                            "server.{id}: bad client address {c:?}"
                        )));
                    }
                }
            }
        };
        Ok(Self {
            id,
            quorum_addrs,
            election_addrs,
            role,
            client_addr,
        })
    }

    /// The value part of the `server.<id>=` line, as ZooKeeper writes it in
    /// dynamic config text.
    pub fn to_config_value(&self) -> String {
        let role = match self.role {
            LearnerType::Participant => "participant",
            LearnerType::Observer => "observer",
        };
        // Apache's QuorumServer.toString: the addresses joined by '|', then
        // the role once.
        let addrs: Vec<String> = self
            .quorum_addrs
            .iter()
            .zip(&self.election_addrs)
            .map(|(q, e)| format!("{q}:{}", e.port))
            .collect();
        let mut s = format!("{}:{role}", addrs.join("|"));
        if let Some(c) = &self.client_addr {
            s.push(';');
            s.push_str(&c.to_string());
        }
        s
    }
}

/// The ids of the voting members (participants) among `servers`.
pub fn voter_ids<'a>(
    servers: impl IntoIterator<Item = &'a QuorumServer>,
) -> std::collections::BTreeSet<u64> {
    servers
        .into_iter()
        .filter(|s| s.role == LearnerType::Participant)
        .map(|s| s.id)
        .collect()
}

/// Quorum configuration text: `server.N=...` lines, for hierarchical
/// quorums `group.N=a:b:c` and `weight.N=w` lines, and an optional
/// `version=<hex>` line (the zxid that created the config), in the order
/// ZooKeeper's verifiers print them (`QuorumHierarchical.toString`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumConfig {
    /// Members, ordered by id.
    pub servers: Vec<QuorumServer>,
    /// `group.N` → its server ids (empty: a majority quorum).
    pub groups: std::collections::BTreeMap<u64, Vec<u64>>,
    /// `weight.N` → N's weight.
    pub weights: std::collections::BTreeMap<u64, u64>,
    /// Config version, if present.
    pub version: Option<u64>,
}

/// A `group.N` line's value: server ids separated by `:` (ZooKeeper's
/// `QuorumHierarchical.parse`), in increasing order.
pub fn parse_group(key: &str, value: &str) -> Result<Vec<u64>, ConfigError> {
    let mut ids = value
        .split(':')
        .map(|id| id.trim().parse::<u64>())
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| {
            ConfigError(format!(
                "{key}: expected server ids separated by ':', got {value:?}"
            ))
        })?;
    ids.sort_unstable();
    Ok(ids)
}

impl QuorumConfig {
    /// Parses config text. Blank lines and `#` comments are skipped; keys other than
    /// `server.N` and `version` are an error (they belong in zoo.cfg, not here).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut cfg = QuorumConfig::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("expected key=value, got {line:?}")))?;
            let k = k.trim();
            if let Some(id) = k.strip_prefix("server.") {
                let id: u64 = id
                    .parse()
                    .map_err(|_| ConfigError(format!("invalid server id in {k:?}")))?;
                if cfg.servers.iter().any(|s| s.id == id) {
                    return Err(ConfigError(format!("server.{id} is defined twice")));
                }
                cfg.servers.push(QuorumServer::parse(id, v)?);
            } else if k == "version" {
                let v = u64::from_str_radix(v.trim(), 16)
                    .map_err(|_| ConfigError(format!("invalid version {v:?}")))?;
                cfg.version = Some(v);
            } else if let Some(gid) = k.strip_prefix("group.") {
                let gid: u64 = gid
                    .parse()
                    .map_err(|_| ConfigError(format!("invalid group id in {k:?}")))?;
                cfg.groups.insert(gid, parse_group(k, v)?);
            } else if let Some(sid) = k.strip_prefix("weight.") {
                let sid: u64 = sid
                    .parse()
                    .map_err(|_| ConfigError(format!("invalid server id in {k:?}")))?;
                let w = v
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{k}: invalid weight {v:?}")))?;
                cfg.weights.insert(sid, w);
            } else {
                return Err(ConfigError(format!(
                    "unexpected key {k:?} in quorum config"
                )));
            }
        }
        cfg.servers.sort_by_key(|s| s.id);
        Ok(cfg)
    }

    /// The config as text, as ZooKeeper stores it in `/zookeeper/config`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for srv in &self.servers {
            s.push_str(&format!("server.{}={}\n", srv.id, srv.to_config_value()));
        }
        for (gid, ids) in &self.groups {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            s.push_str(&format!("group.{gid}={}\n", ids.join(":")));
        }
        for (sid, w) in &self.weights {
            s.push_str(&format!("weight.{sid}={w}\n"));
        }
        if let Some(v) = self.version {
            s.push_str(&format!("version={v:x}"));
        }
        s
    }

    /// The voting members.
    pub fn voters(&self) -> impl Iterator<Item = &QuorumServer> {
        self.servers
            .iter()
            .filter(|s| s.role == LearnerType::Participant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_layouts() {
        let n = Notification {
            state: 0,
            leader: 3,
            zxid: 0x1_0000_0005,
            election_epoch: 7,
            peer_epoch: 1,
            version: NOTIFICATION_VERSION,
            config: Bytes::from_static(b"server.1=a:1:2:participant\nversion=0"),
        };
        let mut b = BytesMut::new();
        n.write(&mut b);
        assert_eq!(b.len(), 44 + n.config.len());
        assert_eq!(Notification::decode(b.clone().freeze()).unwrap(), n);
        let old = b.freeze().slice(..28);
        let o = Notification::decode(old).unwrap();
        assert_eq!((o.peer_epoch, o.version), (1, 0));
        assert!(Notification::decode(Bytes::from_static(&[0; 27])).is_err());
    }

    /// The layouts `FastLeaderElection.WorkerReceiver` accepts (quorum.md §2.1).
    #[test]
    fn notification_lengths_as_worker_receiver() {
        let n = Notification {
            state: 1,
            leader: 3,
            zxid: 0x2_0000_0005,
            election_epoch: 7,
            peer_epoch: 9,
            version: NOTIFICATION_VERSION,
            config: Bytes::from_static(b"server.1=a:1:2:participant\nversion=0"),
        };
        let mut b = BytesMut::new();
        n.write(&mut b);
        let full = b.freeze();
        // 40 bytes: peerEpoch read, the trailing int (here 2) is not a version.
        let o = Notification::decode(full.slice(..40)).unwrap();
        assert_eq!((o.peer_epoch, o.version, o.config.len()), (9, 0, 0));
        // 28 bytes: peerEpoch is the zxid's epoch.
        let o = Notification::decode(full.slice(..28)).unwrap();
        assert_eq!((o.peer_epoch, o.version), (2, 0));
        // 29..=39 bytes: peerEpoch or the version int is cut: malformed.
        for len in 29..40 {
            assert!(Notification::decode(full.slice(..len)).is_err(), "{len}");
        }
        // Version 2 with the config length or the config cut: malformed.
        for len in 41..full.len() {
            assert!(Notification::decode(full.slice(..len)).is_err(), "{len}");
        }
        // Trailing bytes after the config are ignored.
        let mut longer = BytesMut::from(&full[..]);
        longer.put_slice(b"xyz");
        assert_eq!(Notification::decode(longer.freeze()).unwrap(), n);
        // A negative config length is malformed.
        let mut neg = BytesMut::from(&full[..40]);
        neg.put_i32(-1);
        assert!(Notification::decode(neg.freeze()).is_err());
        // Version 1 (or 0) in a long message: nothing after the version is read.
        let mut v1 = BytesMut::from(&full[..36]);
        v1.put_i32(1);
        v1.put_slice(&[0xff; 9]);
        let o = Notification::decode(v1.freeze()).unwrap();
        assert_eq!((o.version, o.config.len()), (1, 0));
    }

    #[test]
    fn initial_message() {
        let m = InitialMessage {
            protocol: INITIAL_MESSAGE_V2,
            sid: 2,
            addresses: "127.0.0.1:3888".into(),
        };
        let mut b = BytesMut::new();
        m.write(&mut b);
        assert_eq!(InitialMessage::decode(b.freeze()).unwrap(), m);
        let mut b = BytesMut::new();
        b.put_i64(INITIAL_MESSAGE_V1);
        b.put_i64(1);
        b.put_i32(1_000_000);
        assert!(InitialMessage::decode(b.freeze()).is_err());
        // N must be 1..=2048 (`InitialMessage.parse`, maxBuffer).
        for n in [0usize, 2049] {
            let mut b = BytesMut::new();
            b.put_i64(INITIAL_MESSAGE_V1);
            b.put_i64(1);
            b.put_i32(n as i32);
            b.put_slice(&vec![b'a'; n]);
            assert!(InitialMessage::decode(b.freeze()).is_err(), "{n}");
        }
    }

    #[test]
    fn server_lines() {
        let s = QuorumServer::parse(1, "127.0.0.1:2888:3888").unwrap();
        assert_eq!(s.quorum_addrs[0].port, 2888);
        assert_eq!(s.election_addrs[0].port, 3888);
        assert_eq!(s.role, LearnerType::Participant);
        let s = QuorumServer::parse(4, "zk4:2888:3888:observer;2181").unwrap();
        assert_eq!(s.role, LearnerType::Observer);
        assert_eq!(s.client_addr.as_ref().unwrap().port, 2181);
        let s = QuorumServer::parse(2, "[::1]:2888:3888;[::1]:2182").unwrap();
        assert_eq!(s.quorum_addrs[0].host, "::1");
        assert_eq!(
            s.to_config_value(),
            "[::1]:2888:3888:participant;[::1]:2182"
        );
        assert!(QuorumServer::parse(1, "host:2888").is_err());
        assert!(QuorumServer::parse(1, "host:x:3888").is_err());
        assert!(QuorumServer::parse(1, "host:2888:3888:leader").is_err());
        let text = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nversion=100000000";
        let c = QuorumConfig::parse(text).unwrap();
        assert_eq!(c.version, Some(0x1_0000_0000));
        assert_eq!(c.to_text(), text);
    }

    /// `QuorumHierarchical.toString`: the servers, then each group's ids
    /// joined by ':', then every weight, then the version.
    #[test]
    fn hierarchical_config_text() {
        let text = "server.1=a:1:2:participant\nserver.2=b:1:2:participant\n\
                    server.3=c:1:2:participant\ngroup.1=1:2\ngroup.2=3\n\
                    weight.1=1\nweight.2=1\nweight.3=0\nversion=0";
        let c = QuorumConfig::parse(text).unwrap();
        assert_eq!(c.groups, [(1, vec![1, 2]), (2, vec![3])].into());
        assert_eq!(c.weights, [(1, 1), (2, 1), (3, 0)].into());
        assert_eq!(c.to_text(), text);
        assert_eq!(
            QuorumConfig::parse("group.1=2:1").unwrap().groups,
            [(1, vec![1, 2])].into()
        );
        for bad in [
            "group.x=1",
            "group.1=1:a",
            "group.1=",
            "weight.1=-1",
            "weight.y=1",
        ] {
            assert!(QuorumConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
