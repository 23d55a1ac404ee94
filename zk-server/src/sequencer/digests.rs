//! Txn digests (quorum.md §3.7; ZooKeeper 3.6+'s `TxnDigest`): a leader
//! sends with each proposal the tree digest the txn leads to, computed at
//! prep over the outstanding changes ([`zk_tree::PendingChanges::txn_digest`]);
//! every server that applies the txn compares it with its tree's digest
//! (`DataTree.compareDigest`), so a replica that diverged says so at the
//! first txn that shows it instead of serving a different tree silently.
//!
//! As ZooKeeper: an error txn carries no digest; a server checks only what
//! it applies while serving (a learner's sync replays over a fuzzy snapshot
//! are not checked); a mismatch is counted (mntr's
//! `zk_digest_mismatches_count`) and logged through a rate limiter with
//! ZooKeeper's words, `Digests are not matching. Value is Zxid.`, the first
//! one also as an error naming the txn; nothing else changes (ZooKeeper does
//! not stop either). Learners keep their logs as before: the digest is
//! taken off a received proposal (a learner's log holds the bare txn) and
//! kept here until that txn is applied.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{error, warn};
use zk_jute::{TxnBody, TxnHeader, Zxid};
use zk_zab::Packet;

/// How long repeats of a mismatch are only counted (ZooKeeper's
/// `RateLogger` in DataTree: 15 minutes).
const RATE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The mismatch message (ZooKeeper's, which operators' alerts look for).
const MISMATCH: &str = "Digests are not matching. Value is Zxid.";

/// The digests received and not yet applied, and the mismatch log.
#[derive(Debug, Default)]
pub(super) struct DigestCheck {
    /// Learner: (zxid, digest) of proposals received while serving.
    expected: VecDeque<(i64, i64)>,
    /// Whether a mismatch was ever seen (the first is logged in full).
    seen: bool,
    /// The rate limiter: repeats since the last line, the last zxid, when
    /// the last line was written.
    repeats: u64,
    last: i64,
    logged_at: Option<Instant>,
}

impl DigestCheck {
    /// Learner: `zxid`'s proposal came with `digest`.
    pub(super) fn expect(&mut self, zxid: Zxid, digest: i64) {
        self.expected.push_back((zxid.as_i64(), digest));
    }

    /// Learner: the digest `zxid` came with (those of older zxids, never
    /// applied here, are dropped).
    pub(super) fn take(&mut self, zxid: i64) -> Option<i64> {
        while let Some(&(z, d)) = self.expected.front() {
            if z > zxid {
                return None;
            }
            self.expected.pop_front();
            if z == zxid {
                return Some(d);
            }
        }
        None
    }

    /// A role ends: nothing received is applied any more.
    pub(super) fn clear(&mut self) {
        self.expected.clear();
    }

    /// Compares the digest `hdr`'s txn came with and the tree's after it;
    /// returns whether they differ (the caller counts it).
    pub(super) fn check(
        &mut self,
        hdr: &TxnHeader,
        body: &TxnBody,
        expected: i64,
        actual: i64,
    ) -> bool {
        if expected == actual {
            self.flush();
            return false;
        }
        let zxid = hdr.zxid;
        let now = Instant::now();
        match self.logged_at {
            Some(t) if now.duration_since(t) < RATE_INTERVAL => {
                self.repeats += 1;
                self.last = zxid;
            }
            Some(_) => {
                self.repeats += 1;
                self.last = zxid;
                self.flush();
                self.logged_at = Some(now);
            }
            None => {
                warn!("Message:{MISMATCH} Value:{zxid}");
                self.logged_at = Some(now);
                self.last = zxid;
            }
        }
        if !self.seen {
            self.seen = true;
            error!(
                "First digest mismatch on txn: 0x{zxid:x} (session 0x{:x}, cxid {}, type {}), {body:?}, \
                 expected digest is {expected}, actual digest is {actual}",
                hdr.client_id, hdr.cxid, hdr.txn_type
            );
        }
        true
    }

    /// Writes the repeats counted since the last line (a match ends a run
    /// of mismatches).
    fn flush(&mut self) {
        if self.logged_at.is_none() {
            return;
        }
        if self.repeats > 0 {
            let times = if self.repeats > 1 {
                format!("[{} times] ", self.repeats)
            } else {
                String::new()
            };
            warn!("{times}Message: {MISMATCH} Last value:{}", self.last);
        }
        self.repeats = 0;
        self.logged_at = None;
    }
}

/// A proposal's or inform's txn without its version-2 `TxnDigest`, and the
/// digest; any other packet, or a txn without a digest we know (none, or
/// another version, which ZooKeeper does not compare either), as is.
pub(super) fn split_digest(p: Packet) -> (Packet, Option<i64>) {
    let split = |txn: Bytes| match zk_apache::decode_txn(txn.clone()) {
        Ok(t) => match t.digest {
            Some(d) if d.version == zk_tree::DIGEST_VERSION => {
                (txn.slice(..t.record_len), Some(d.tree_digest))
            }
            _ => (txn, None),
        },
        Err(_) => (txn, None),
    };
    match p {
        Packet::Proposal { zxid, txn } => {
            let (txn, d) = split(txn);
            (Packet::Proposal { zxid, txn }, d)
        }
        Packet::Inform { zxid, txn } => {
            let (txn, d) = split(txn);
            (Packet::Inform { zxid, txn }, d)
        }
        p => (p, None),
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use zk_jute::{ErrorTxn, Jute, OpCode, TxnHeader};

    use super::*;

    fn proposal(txn: Bytes) -> Packet {
        Packet::Proposal {
            zxid: Zxid::from(0x1_0000_0003i64),
            txn,
        }
    }

    fn hdr() -> TxnHeader {
        TxnHeader {
            client_id: 1,
            cxid: 2,
            zxid: 0x1_0000_0003,
            time: 4,
            txn_type: OpCode::Error as i32,
        }
    }

    /// An Apache 3.8 leader's PROPOSAL ends with a TxnDigest: it is taken
    /// off; a txn without one, or with 12 bytes that are no digest, is left
    /// as is.
    #[test]
    fn a_txn_digest_is_split_off() {
        let mut b = BytesMut::new();
        hdr().write(&mut b);
        ErrorTxn { err: -101 }.write(&mut b);
        let plain = b.clone().freeze();
        b.put_i32(zk_tree::DIGEST_VERSION);
        b.put_i64(0x1234_5678);
        let with = b.clone().freeze();
        assert_eq!(
            split_digest(proposal(with)),
            (proposal(plain.clone()), Some(0x1234_5678))
        );
        assert_eq!(
            split_digest(proposal(plain.clone())),
            (proposal(plain), None)
        );
        let mut bad = b.to_vec();
        let at = bad.len() - zk_apache::TXN_DIGEST_LEN;
        bad[at + 3] = 3; // version 3: not a digest we know
        let bad = Bytes::from(bad);
        assert_eq!(split_digest(proposal(bad.clone())), (proposal(bad), None));
        assert_eq!(split_digest(Packet::Sync), (Packet::Sync, None));
    }

    #[test]
    fn expected_digests_are_taken_by_zxid() {
        let mut c = DigestCheck::default();
        c.expect(Zxid::from(5i64), 50);
        c.expect(Zxid::from(7i64), 70);
        assert_eq!(c.take(4), None);
        assert_eq!(c.take(6), None); // 5 was never applied: dropped
        assert_eq!(c.take(7), Some(70));
        assert_eq!(c.take(7), None);
    }

    #[test]
    fn mismatches_are_reported_and_matches_are_not() {
        let mut c = DigestCheck::default();
        let body = TxnBody::Error(ErrorTxn { err: -101 });
        assert!(!c.check(&hdr(), &body, 9, 9));
        assert!(c.check(&hdr(), &body, 9, 10));
        assert!(c.check(&hdr(), &body, 9, 11));
        assert_eq!(c.repeats, 1);
        assert!(!c.check(&hdr(), &body, 3, 3));
        assert_eq!((c.repeats, c.logged_at), (0, None));
    }
}
