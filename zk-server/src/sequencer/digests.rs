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
//! kept with the decoded txn ([`Received`]) until that txn is applied.

use std::time::{Duration, Instant};

use tracing::{error, warn};
use zk_jute::{TXN_DIGEST_LEN, TxnBody, TxnHeader};
use zk_zab::Packet;

/// How long repeats of a mismatch are only counted (ZooKeeper's
/// `RateLogger` in DataTree: 15 minutes).
const RATE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// The mismatch message (ZooKeeper's, which operators' alerts look for).
const MISMATCH: &str = "Digests are not matching. Value is Zxid.";

/// The digests received and not yet applied, and the mismatch log.
#[derive(Debug, Default)]
pub(super) struct DigestCheck {
    /// Whether a mismatch was ever seen (the first is logged in full).
    seen: bool,
    /// The rate limiter: repeats since the last line, the last zxid, when
    /// the last line was written.
    repeats: u64,
    last: i64,
    logged_at: Option<Instant>,
}

impl DigestCheck {
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

/// A txn a learner received in a PROPOSAL or INFORM, decoded once: the
/// packet keeps the bytes to log, this the record to apply at COMMIT.
#[derive(Debug, PartialEq)]
pub(super) struct Received {
    pub(super) hdr: TxnHeader,
    pub(super) body: TxnBody,
    /// The tree digest the txn leads to (version-2 `TxnDigest`), if sent.
    pub(super) digest: Option<i64>,
}

/// Decodes a PROPOSAL's or INFORM's txn (any other packet: `None`) and
/// takes a version-2 `TxnDigest` off it (a txn without one, or with a digest
/// of another version, which ZooKeeper does not compare either, is kept as
/// it came). A txn that does not decode, or carries another zxid than its
/// packet, is an error (the leader is broken): a learner logs only txns that
/// decode and carry their packet's zxid, since a record that does not would
/// stop the next recovery.
pub(super) fn decode_received(p: Packet) -> Result<(Packet, Option<Received>), String> {
    let (zxid, txn, inform) = match p {
        Packet::Proposal { zxid, txn } => (zxid, txn, false),
        Packet::Inform { zxid, txn } => (zxid, txn, true),
        p => return Ok((p, None)),
    };
    let name = if inform { "INFORM" } else { "PROPOSAL" };
    // ZooKeeper's own reading (`deserializeTxn`: the body, then a digest in
    // the 12 bytes left) decodes the body once; Apache's older forms (a
    // closeSession without a body, a CreateTxnV0) and a top-level check,
    // which the whole-payload reading below tells apart or refuses, are
    // left to it. It tries the body over
    // the whole payload first, which fails (and decodes again) for every
    // txn that carries a digest.
    let fast = match TxnBody::read_record_digest(txn.clone()) {
        Ok((header, body, digest))
            if !matches!(body, TxnBody::CloseSession(_) | TxnBody::Check(_)) =>
        {
            let record_len = txn.len() - digest.map_or(0, |_| TXN_DIGEST_LEN);
            Some(zk_apache::Txn {
                header,
                body,
                digest,
                record_len,
            })
        }
        _ => None,
    };
    let t = match fast {
        Some(t) => t,
        None => zk_apache::decode_txn(txn.clone())
            .map_err(|e| format!("{name} 0x{zxid:x} does not decode: {e}"))?,
    };
    if t.header.zxid != zxid.as_i64() {
        return Err(format!(
            "{name} 0x{zxid:x} carries the txn of 0x{:x}",
            t.header.zxid
        ));
    }
    let (txn, digest) = match t.digest {
        Some(d) if d.version == zk_tree::DIGEST_VERSION => {
            (txn.slice(..t.record_len), Some(d.tree_digest))
        }
        _ => (txn, None),
    };
    let p = if inform {
        Packet::Inform { zxid, txn }
    } else {
        Packet::Proposal { zxid, txn }
    };
    let r = Received {
        hdr: t.header,
        body: t.body,
        digest,
    };
    Ok((p, Some(r)))
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use zk_jute::{ErrorTxn, Jute, OpCode, TxnHeader};

    use bytes::Bytes;
    use zk_jute::Zxid;

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
    /// as is; the txn is decoded once, for its COMMIT.
    #[test]
    fn a_txn_digest_is_split_off() {
        let mut b = BytesMut::new();
        hdr().write(&mut b);
        ErrorTxn { err: -101 }.write(&mut b);
        let plain = b.clone().freeze();
        b.put_i32(zk_tree::DIGEST_VERSION);
        b.put_i64(0x1234_5678);
        let with = b.clone().freeze();
        let received = |digest| Received {
            hdr: hdr(),
            body: TxnBody::Error(ErrorTxn { err: -101 }),
            digest,
        };
        assert_eq!(
            decode_received(proposal(with)),
            Ok((proposal(plain.clone()), Some(received(Some(0x1234_5678)))))
        );
        assert_eq!(
            decode_received(proposal(plain.clone())),
            Ok((proposal(plain), Some(received(None))))
        );
        let mut bad = b.to_vec();
        let at = bad.len() - zk_apache::TXN_DIGEST_LEN;
        bad[at + 3] = 3; // version 3: not a digest we know
        let bad = Bytes::from(bad);
        assert_eq!(
            decode_received(proposal(bad.clone())),
            Ok((proposal(bad), Some(received(None))))
        );
        assert_eq!(decode_received(Packet::Sync), Ok((Packet::Sync, None)));
    }

    /// A txn that does not decode, or that names another zxid than its
    /// packet, ends the learner's role (the leader is broken).
    #[test]
    fn a_bad_txn_is_refused() {
        let mut b = BytesMut::new();
        hdr().write(&mut b);
        ErrorTxn { err: -101 }.write(&mut b);
        let good = b.freeze();
        let other = Packet::Proposal {
            zxid: Zxid::from(0x1_0000_0004i64),
            txn: good.clone(),
        };
        let e = decode_received(other).unwrap_err();
        assert!(e.contains("carries the txn of 0x100000003"), "{e}");
        let cut = Packet::Inform {
            zxid: Zxid::from(0x1_0000_0003i64),
            txn: good.slice(..good.len() - 2),
        };
        let e = decode_received(cut).unwrap_err();
        assert!(e.starts_with("INFORM 0x100000003 does not decode"), "{e}");
    }

    /// The single streaming decode leaves Apache's special forms to the
    /// whole-payload reading: a closeSession with no body but a digest (its
    /// 12 bytes are no CloseSessionTxn), a top-level check (refused).
    #[test]
    fn special_txns_take_apaches_reading() {
        let with_type = |t: OpCode| TxnHeader {
            txn_type: t.code(),
            ..hdr()
        };
        let mut b = BytesMut::new();
        with_type(OpCode::CloseSession).write(&mut b);
        let bare = b.clone().freeze();
        b.put_i32(zk_tree::DIGEST_VERSION);
        b.put_i64(77);
        assert_eq!(
            decode_received(proposal(b.freeze())),
            Ok((
                proposal(bare),
                Some(Received {
                    hdr: with_type(OpCode::CloseSession),
                    body: TxnBody::CloseSession(Default::default()),
                    digest: Some(77),
                })
            ))
        );
        let mut b = BytesMut::new();
        with_type(OpCode::Check).write(&mut b);
        zk_jute::CheckVersionTxn {
            path: "/a".into(),
            version: 1,
        }
        .write(&mut b);
        let e = decode_received(proposal(b.freeze())).unwrap_err();
        assert!(e.contains("does not decode"), "{e}");
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
