//! The quorum port's bytes (quorum.md §3.1, §4), parsed incrementally from a
//! connection's buffer: jute `QuorumPacket` records back to back (no length
//! prefix), and after a SNAP packet the raw snapshot body, whose end only
//! its structure tells.
//!
//! As in `wire.rs`, a parser answers "need more bytes" (`Ok(None)`), "can
//! never become valid" (`Err(reason)`: the connection is closed with a log
//! line), or the value and the bytes it took. Every length is bounded before
//! anything is allocated; nothing here panics on any input.

use bytes::{BufMut, Bytes};
use zk_jute::{Id, QuorumPacket};
use zk_zab::{Packet, Payload};

/// Auth ids in one packet's authinfo, at most (a forwarded request carries
/// its connection's ids: `ip`, a few `digest`s, `super`).
pub(crate) const MAX_AUTH_IDS: usize = 64;
/// Bytes of an auth id's scheme or id, at most.
pub(crate) const MAX_AUTH_STR: usize = 4096;
/// Slack above jute.maxbuffer for a packet's data: a PROPOSAL carries a
/// TxnHeader, the txn's own fields and a TxnDigest around a znode's data.
pub(crate) const DATA_SLACK: usize = 1024;

/// Why a parse stopped.
enum Stop {
    More,
    Bad(String),
}

type Step<T> = Result<T, Stop>;

/// A read cursor over a buffer that may end too early.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn take(&mut self, n: usize) -> Step<&[u8]> {
        let end = self.at.checked_add(n).ok_or(Stop::More)?;
        if end > self.b.len() {
            return Err(Stop::More);
        }
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn i32(&mut self) -> Step<i32> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn i64(&mut self) -> Step<i64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }

    /// A jute buffer or ustring: int32 length (-1 = null), then the bytes.
    fn blob(&mut self, what: &str, max: usize) -> Step<Option<&[u8]>> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > max {
            return Err(Stop::Bad(format!("{what} length {n} is not in -1..={max}")));
        }
        self.take(n as usize).map(Some)
    }

    fn string(&mut self, what: &str, max: usize) -> Step<String> {
        let b = self.blob(what, max)?.unwrap_or_default();
        String::from_utf8(b.to_vec()).map_err(|_| Stop::Bad(format!("{what} is not UTF-8")))
    }
}

fn finish<T>(r: Step<T>) -> Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::More) => Ok(None),
        Err(Stop::Bad(why)) => Err(why),
    }
}

/// One `QuorumPacket` at the start of `buf` and the bytes it took; its data
/// is at most `max_data` bytes (jute.maxbuffer + [`DATA_SLACK`]).
pub(crate) fn parse_packet(
    buf: &[u8],
    max_data: usize,
) -> Result<Option<(QuorumPacket, usize)>, String> {
    let mut c = Cur { b: buf, at: 0 };
    finish((|| {
        let packet_type = c.i32()?;
        let zxid = c.i64()?;
        let data = c.blob("packet data", max_data)?.map(Bytes::copy_from_slice);
        let n = c.i32()?;
        if n < -1 || n > MAX_AUTH_IDS as i32 {
            return Err(Stop::Bad(format!(
                "authinfo count {n} is not in -1..={MAX_AUTH_IDS}"
            )));
        }
        let mut authinfo = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n.max(0) {
            let scheme = c.string("auth scheme", MAX_AUTH_STR)?;
            let id = c.string("auth id", MAX_AUTH_STR)?;
            authinfo.push(Id { scheme, id });
        }
        let p = QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo,
        };
        Ok((p, c.at))
    })())
}

/// Appends `p`'s wire form to `out` (what `BinaryOutputArchive.writeRecord`
/// writes of `p.to_wire()`), from its borrowed fields; returns its wire
/// zxid. Written in place: a buffer per packet, copied over, was ~10 % of a
/// loaded leader's quorum thread.
pub(crate) fn write_zab(p: &Packet, out: &mut Vec<u8>) -> i64 {
    let w = p.wire_parts();
    let zxid = w.zxid.as_i64();
    let data = w.data.as_ref().map(Payload::as_slice);
    write_parts(w.packet_type, zxid, data, w.authinfo, out);
    zxid
}

/// A QuorumPacket's wire form from its fields, appended to `out`.
fn write_parts(
    packet_type: i32,
    zxid: i64,
    data: Option<&[u8]>,
    authinfo: &[Id],
    out: &mut Vec<u8>,
) {
    out.reserve(24 + data.map_or(0, <[u8]>::len));
    out.put_i32(packet_type);
    out.put_i64(zxid);
    match data {
        Some(d) => {
            out.put_i32(d.len() as i32);
            out.put_slice(d);
        }
        None => out.put_i32(-1),
    }
    if authinfo.is_empty() {
        out.put_i32(-1);
    } else {
        out.put_i32(authinfo.len() as i32);
        for id in authinfo {
            for s in [&id.scheme, &id.id] {
                out.put_i32(s.len() as i32);
                out.put_slice(s.as_bytes());
            }
        }
    }
}

/// Where the scan of a SNAP body stands (quorum.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnapState {
    SessionCount,
    /// Sessions (i64, i32) left.
    Sessions(u32),
    AclCount,
    /// ACL map entries left; the next starts with its id.
    AclEntry(u32),
    /// In an entry: ACLs of this entry left, entries after it.
    Acls {
        left: u32,
        entries: u32,
    },
    /// A node (path, data, acl id, StatPersisted), or the terminator "/".
    Node,
    /// The ustring "BenWasHere".
    Signature,
    Done,
}

/// Size of a `StatPersisted`: 6 i64 and 3 i32.
const STAT_LEN: usize = 6 * 8 + 3 * 4;

/// Finds where a SNAP body ends in a growing buffer, item by item, resuming
/// where it stopped when more bytes arrive (nothing is scanned twice).
#[derive(Debug, Clone)]
pub(crate) struct SnapScan {
    at: usize,
    /// Bytes scanned and forgotten before `at` (for error messages).
    gone: usize,
    state: SnapState,
    max_len: usize,
    nodes: u64,
}

impl SnapScan {
    /// A scan whose strings and buffers are at most `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> Self {
        SnapScan {
            at: 0,
            gone: 0,
            state: SnapState::SessionCount,
            max_len,
            nodes: 0,
        }
    }

    /// Scans `body` (every byte received after the SNAP packet so far): the
    /// body's length once its signature is in, `Ok(None)` while it needs
    /// more. `body` must only grow between calls.
    pub(crate) fn advance(&mut self, body: &[u8]) -> Result<Option<usize>, String> {
        loop {
            if self.state == SnapState::Done {
                return Ok(Some(self.at));
            }
            let mut c = Cur {
                b: body,
                at: self.at,
            };
            match self.item(&mut c) {
                Ok(next) => {
                    self.at = c.at;
                    self.state = next;
                }
                Err(Stop::More) => return Ok(None),
                Err(Stop::Bad(why)) => {
                    return Err(format!("SNAP body at byte {}: {why}", self.total()));
                }
            }
        }
    }

    /// Bytes scanned so far (since the last [`SnapScan::forget`]).
    pub(crate) fn scanned(&self) -> usize {
        self.at
    }

    /// Bytes scanned since the body's start, forgotten ones included.
    pub(crate) fn total(&self) -> usize {
        self.gone + self.at
    }

    /// The first `n` scanned bytes are gone from the buffer: the next
    /// [`SnapScan::advance`] gets what followed them.
    pub(crate) fn forget(&mut self, n: usize) {
        let n = n.min(self.at);
        self.at -= n;
        self.gone += n;
    }

    fn count(c: &mut Cur<'_>, what: &str) -> Step<u32> {
        let n = c.i32()?;
        u32::try_from(n).map_err(|_| Stop::Bad(format!("{what} {n} is negative")))
    }

    /// One item (or a run of sessions) from the cursor; the state after it.
    fn item(&mut self, c: &mut Cur<'_>) -> Step<SnapState> {
        use SnapState as S;
        Ok(match self.state {
            S::SessionCount => S::Sessions(Self::count(c, "session count")?),
            S::Sessions(0) => S::AclCount,
            S::Sessions(left) => {
                let avail = (c.b.len() - c.at) / 12;
                let n = (left as usize).min(avail);
                if n == 0 {
                    return Err(Stop::More);
                }
                c.take(n * 12)?;
                S::Sessions(left - n as u32)
            }
            S::AclCount => S::AclEntry(Self::count(c, "ACL map size")?),
            S::AclEntry(0) => S::Node,
            S::AclEntry(entries) => {
                c.i64()?;
                let n = c.i32()?;
                let left = if n == -1 {
                    0
                } else {
                    u32::try_from(n)
                        .map_err(|_| Stop::Bad(format!("ACL vector count {n} is negative")))?
                };
                S::Acls {
                    left,
                    entries: entries - 1,
                }
            }
            S::Acls { left: 0, entries } => S::AclEntry(entries),
            S::Acls { left, entries } => {
                c.i32()?;
                c.blob("ACL scheme", self.max_len)?;
                c.blob("ACL id", self.max_len)?;
                S::Acls {
                    left: left - 1,
                    entries,
                }
            }
            S::Node => {
                let path = c.blob("node path", self.max_len)?;
                if path == Some(b"/".as_slice()) {
                    S::Signature
                } else {
                    c.blob("node data", self.max_len)?;
                    c.take(8 + STAT_LEN)?;
                    self.nodes += 1;
                    S::Node
                }
            }
            S::Signature => {
                c.blob("signature", self.max_len)?;
                S::Done
            }
            S::Done => S::Done,
        })
    }

    /// Nodes scanned so far.
    pub(crate) fn nodes(&self) -> u64 {
        self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use zk_jute::quorum_packet;

    /// A jute record's wire form, appended to `out`.
    fn write_packet(p: &QuorumPacket, out: &mut Vec<u8>) {
        write_parts(p.packet_type, p.zxid, p.data.as_deref(), &p.authinfo, out);
    }

    fn packet(ty: i32, data: Option<&[u8]>, auth: &[(&str, &str)]) -> QuorumPacket {
        QuorumPacket {
            packet_type: ty,
            zxid: 0x1_0000_0002,
            data: data.map(Bytes::copy_from_slice),
            authinfo: auth
                .iter()
                .map(|(s, i)| Id {
                    scheme: (*s).into(),
                    id: (*i).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn zab_packets_written_from_their_fields_are_what_to_wire_writes() {
        let z = zk_jute::Zxid::from(0x5_0000_0007_i64);
        for p in [
            Packet::Proposal {
                zxid: z,
                txn: Bytes::from_static(b"a txn's bytes"),
            },
            Packet::Proposal {
                zxid: z,
                txn: Bytes::new(),
            },
            Packet::Commit { zxid: z },
            Packet::Ack { zxid: z },
            Packet::Ping {
                zxid: z,
                data: None,
            },
            Packet::UpToDate,
            Packet::Request {
                data: Bytes::from_static(b"a request"),
                authinfo: vec![Id {
                    scheme: "ip".into(),
                    id: "127.0.0.1".into(),
                }],
            },
            Packet::FollowerInfo {
                zxid: z,
                info: zk_jute::LearnerInfo {
                    server_id: 2,
                    protocol_version: 0x10000,
                    config_version: -1,
                },
            },
            Packet::LeaderInfo {
                zxid: z,
                protocol: 0x10000,
            },
        ] {
            let (mut direct, mut via) = (vec![9], vec![9]);
            let zxid = write_zab(&p, &mut direct);
            let wire = p.to_wire();
            write_packet(&wire, &mut via);
            assert_eq!((zxid, &direct), (wire.zxid, &via), "{p:?}");
        }
    }

    #[test]
    fn packets_round_trip_cut_anywhere() {
        let ps = [
            packet(quorum_packet::PROPOSAL, Some(b"txn bytes"), &[]),
            packet(quorum_packet::ACK, None, &[]),
            packet(
                quorum_packet::REQUEST,
                Some(b"req"),
                &[("ip", "127.0.0.1"), ("digest", "u:p")],
            ),
            packet(quorum_packet::PING, Some(b""), &[]),
        ];
        let mut all = Vec::new();
        for p in &ps {
            write_packet(p, &mut all);
        }
        // Matches zk-jute's own encoding of the record (authinfo -1 when empty
        // is what Java writes for a null vector; zk-jute reads it as empty).
        let mut at = 0;
        for p in &ps {
            for cut in at..at + 12 {
                assert_eq!(parse_packet(&all[at..cut], 100), Ok(None));
            }
            let (got, used) = parse_packet(&all[at..], 100).unwrap().unwrap();
            assert_eq!(&got, p);
            at += used;
        }
        assert_eq!(at, all.len());
        let p = &ps[2];
        let mut one = Vec::new();
        write_packet(p, &mut one);
        for cut in 0..one.len() {
            assert_eq!(parse_packet(&one[..cut], 100), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn packet_lengths_are_bounded() {
        let mut b = Vec::new();
        write_packet(&packet(2, Some(&[7; 101]), &[]), &mut b);
        assert!(parse_packet(&b, 100).unwrap_err().contains("101"));
        // A huge length is refused at once, before its bytes arrive.
        let mut h = vec![0, 0, 0, 2];
        h.extend_from_slice(&0i64.to_be_bytes());
        h.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_packet(&h, 100).is_err());
        let mut neg = h[..12].to_vec();
        neg.extend_from_slice(&(-2i32).to_be_bytes());
        assert!(parse_packet(&neg, 100).is_err());
        let mut auth = h[..12].to_vec();
        auth.extend_from_slice(&(-1i32).to_be_bytes());
        auth.extend_from_slice(&65i32.to_be_bytes());
        assert!(parse_packet(&auth, 100).unwrap_err().contains("authinfo"));
    }

    /// A SNAP body by hand: 2 sessions, 2 ACL entries (one null vector), the
    /// root and two nodes (one with null data), "/", the signature.
    fn body() -> Vec<u8> {
        let mut b = BytesMut::new();
        let s = |b: &mut BytesMut, t: &str| {
            b.put_i32(t.len() as i32);
            b.put_slice(t.as_bytes());
        };
        b.put_i32(2);
        for i in 0..2 {
            b.put_i64(i);
            b.put_i32(30_000);
        }
        b.put_i32(2);
        b.put_i64(1);
        b.put_i32(1);
        b.put_i32(31);
        s(&mut b, "world");
        s(&mut b, "anyone");
        b.put_i64(2);
        b.put_i32(-1);
        for (path, data) in [("", Some("")), ("/a", None), ("/a/b", Some("xyz0123"))] {
            s(&mut b, path);
            match data {
                Some(d) => s(&mut b, d),
                None => b.put_i32(-1),
            }
            b.put_i64(1);
            b.put_slice(&[0; STAT_LEN]);
        }
        s(&mut b, "/");
        s(&mut b, "BenWasHere");
        b.to_vec()
    }

    #[test]
    fn snap_scan_finds_the_end_in_any_chunking() {
        let mut fresh = Vec::new();
        zk_tree::Tree::new(zk_tree::TreeConfig::default())
            .write_apache_snap(&mut fresh)
            .unwrap();
        for b in [body(), fresh] {
            // Byte by byte, then in chunks of 7, with a packet's bytes after.
            for step in [1, 7, b.len()] {
                let mut more = b.clone();
                more.extend_from_slice(&[0, 0, 0, 12, 1, 2, 3]);
                let mut scan = SnapScan::new(1 << 20);
                let mut got = None;
                let mut have = 0;
                while got.is_none() {
                    have = (have + step).min(more.len());
                    got = scan.advance(&more[..have]).unwrap();
                    if got.is_none() {
                        assert!(have < b.len(), "not found at {have}");
                    }
                }
                assert_eq!(got, Some(b.len()), "step {step}");
            }
        }
    }

    #[test]
    fn snap_scan_finds_the_end_when_scanned_bytes_are_dropped() {
        // As the learner's port does: what was scanned leaves the buffer.
        let b = body();
        for step in [1, 5, 64] {
            let mut scan = SnapScan::new(1 << 20);
            let (mut buf, mut fed, mut dropped) = (Vec::new(), 0, 0);
            let end = loop {
                let n = step.min(b.len() - fed);
                buf.extend_from_slice(&b[fed..fed + n]);
                fed += n;
                let got = scan.advance(&buf).unwrap();
                let k = scan.scanned();
                if let Some(len) = got {
                    break dropped + len;
                }
                buf.drain(..k);
                scan.forget(k);
                dropped += k;
            };
            assert_eq!(end, b.len(), "step {step}");
        }
        // Errors still name the byte from the body's start.
        let mut scan = SnapScan::new(6);
        scan.advance(&b[..4]).unwrap();
        let k = scan.scanned();
        scan.forget(k);
        let e = scan.advance(&b[k..]).unwrap_err();
        let mut whole = SnapScan::new(6);
        assert_eq!(e, whole.advance(&b).unwrap_err());
    }

    #[test]
    fn snap_scan_rejects_bad_lengths() {
        let b = body();
        let mut neg = b.clone();
        neg[..4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(SnapScan::new(100).advance(&neg).is_err());
        // A node's data above the bound.
        let mut scan = SnapScan::new(6);
        let e = scan.advance(&b).unwrap_err();
        assert!(e.contains("node data length 7"), "{e}");
    }

    /// Random and mutated inputs: never a panic, never more than was given.
    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut seed_packet = Vec::new();
        write_packet(
            &packet(quorum_packet::REQUEST, Some(b"abc"), &[("ip", "x")]),
            &mut seed_packet,
        );
        let seeds = [body(), seed_packet];
        for i in 0..100_000 {
            let mut b = if i % 2 == 0 {
                seeds[i % 4 / 2].clone()
            } else {
                let len = (next() % 96) as usize;
                (0..len).map(|_| next() as u8).collect()
            };
            if !b.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
                b.truncate((next() as usize) % (b.len() + 1));
            }
            if let Ok(Some((_, used))) = parse_packet(&b, 1 << 20) {
                assert!(used <= b.len());
            }
            let mut scan = SnapScan::new(1 << 20);
            let cut = (next() as usize) % (b.len() + 1);
            if let Ok(Some(n)) = scan.advance(&b[..cut]) {
                assert!(n <= cut);
            } else if let Ok(Some(n)) = scan.advance(&b) {
                assert!(n <= b.len());
            }
        }
    }
}
