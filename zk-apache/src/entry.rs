//! One txn log entry's payload (design/apache-disk-format.md §2, §3, §9.6):
//! `TxnHeader` (32 bytes), the record its type calls for (absent for an old
//! closeSession), then 0 bytes or a 12-byte `TxnDigest`. Nothing marks the
//! digest: it is told by the bytes left after the record.

use bytes::Bytes;
use zk_jute::{
    CloseSessionTxn, CreateTxn, CreateTxnV0, DecodeError, Jute, OpCode, Reader, TxnBody, TxnDigest,
    TxnHeader,
};

/// Bytes of a `TxnHeader`.
pub const TXN_HEADER_LEN: usize = 32;
/// Bytes of a `TxnDigest` (version i32, tree digest i64).
pub use zk_jute::TXN_DIGEST_LEN;

/// A decoded entry payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The header.
    pub header: TxnHeader,
    /// The record (an old bodiless closeSession decodes as one with no paths;
    /// a `CreateTxnV0` as a create with `parent_c_version` -1).
    pub body: TxnBody,
    /// The digest of the tree after this txn, when the writer added one.
    pub digest: Option<TxnDigest>,
    /// Bytes of header and record (the payload without the digest).
    pub record_len: usize,
}

fn digest_of(b: &[u8]) -> Result<TxnDigest, DecodeError> {
    let mut r = Reader::new(Bytes::copy_from_slice(b));
    let d = TxnDigest::read(&mut r)?;
    r.finish("txn digest")?;
    Ok(d)
}

/// Decodes `payload` as a record of type `txn_type` that fills it exactly
/// (create: falls back to `CreateTxnV0`).
fn body(txn_type: i32, payload: Bytes) -> Result<TxnBody, DecodeError> {
    let mut r = Reader::new(payload.clone());
    let first = TxnBody::read(txn_type, &mut r);
    if first.is_ok() || txn_type != OpCode::Create.code() {
        return first;
    }
    // CreateTxnV0 (ZOOKEEPER-1046): no parentCVersion.
    let mut r = Reader::new(payload);
    let v0 = CreateTxnV0::read(&mut r).and_then(|c| r.finish("create txn v0").map(|()| c));
    match v0 {
        Ok(c) => Ok(TxnBody::Create(CreateTxn {
            path: c.path,
            data: c.data,
            acl: c.acl,
            ephemeral: c.ephemeral,
            parent_c_version: -1,
        })),
        Err(_) => first,
    }
}

/// Decodes one entry's payload (§9.6). Never panics on bad bytes.
pub fn decode_txn(payload: Bytes) -> Result<Txn, DecodeError> {
    let mut r = Reader::new(payload.clone());
    let header = TxnHeader::read(&mut r)?;
    let rest = payload.slice(TXN_HEADER_LEN..);
    let t = header.txn_type;
    if t == OpCode::Check.code() {
        // A top-level check is refused by Request.isValid and by deserializeTxn.
        return Err(DecodeError::Invalid {
            what: "txn",
            reason: "check outside a multi (Unsupported Txn)",
        });
    }
    if t == OpCode::CloseSession.code() && (rest.is_empty() || rest.len() == TXN_DIGEST_LEN) {
        // No body (3.5 and older, or closeSessionTxn.enabled=false); 12 bytes
        // are a digest, whatever a CloseSessionTxn parse of them would say.
        return Ok(Txn {
            header,
            body: TxnBody::CloseSession(CloseSessionTxn::default()),
            digest: (!rest.is_empty()).then(|| digest_of(&rest)).transpose()?,
            record_len: TXN_HEADER_LEN,
        });
    }
    let whole = match body(t, rest.clone()) {
        Ok(body) => {
            return Ok(Txn {
                header,
                body,
                digest: None,
                record_len: payload.len(),
            });
        }
        Err(e) => e,
    };
    if rest.len() >= TXN_DIGEST_LEN {
        let cut = rest.len() - TXN_DIGEST_LEN;
        if let Ok(b) = body(t, rest.slice(..cut)) {
            return Ok(Txn {
                header,
                body: b,
                digest: Some(digest_of(&rest[cut..])?),
                record_len: TXN_HEADER_LEN + cut,
            });
        }
    }
    Err(whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use zk_jute::{CreateSessionTxn, SetDataTxn};

    fn hdr(t: OpCode) -> TxnHeader {
        TxnHeader {
            client_id: 0x77,
            cxid: 3,
            zxid: 0x1_0000_0009,
            time: 1234,
            txn_type: t.code(),
        }
    }

    fn payload(h: &TxnHeader, body: Option<&dyn Fn(&mut BytesMut)>, digest: Option<i64>) -> Bytes {
        let mut b = BytesMut::new();
        h.write(&mut b);
        if let Some(f) = body {
            f(&mut b);
        }
        if let Some(d) = digest {
            b.put_i32(2);
            b.put_i64(d);
        }
        b.freeze()
    }

    #[test]
    fn digest_is_told_by_the_bytes_left() {
        // Proves §9.6: 0 bytes left = no digest, 12 = TxnDigest, else error.
        let h = hdr(OpCode::SetData);
        let sd = SetDataTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            version: 4,
        };
        let w = |b: &mut BytesMut| sd.write(b);
        let plain = decode_txn(payload(&h, Some(&w), None)).unwrap();
        assert_eq!(plain.digest, None);
        assert_eq!(plain.body, TxnBody::SetData(sd.clone()));
        let p = payload(&h, Some(&w), Some(-5));
        let with = decode_txn(p.clone()).unwrap();
        assert_eq!(
            with.digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: -5
            })
        );
        assert_eq!(with.body, plain.body);
        assert_eq!(with.record_len, p.len() - 12);
        let mut odd = BytesMut::from(&p[..]);
        odd.put_u8(0);
        assert!(decode_txn(odd.freeze()).is_err(), "13 bytes left");
        assert!(decode_txn(p.slice(..31)).is_err(), "short header");
    }

    #[test]
    fn close_session_with_and_without_body() {
        // Proves §9.6's closeSession rule, including a digest whose bytes would
        // parse as a CloseSessionTxn of two empty paths.
        let h = hdr(OpCode::CloseSession);
        let none = decode_txn(payload(&h, None, None)).unwrap();
        assert_eq!(none.body, TxnBody::CloseSession(CloseSessionTxn::default()));
        let tricky = decode_txn(payload(&h, None, Some(0))).unwrap();
        assert_eq!(
            tricky.body,
            TxnBody::CloseSession(CloseSessionTxn::default())
        );
        assert_eq!(
            tricky.digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: 0
            })
        );
        let c = CloseSessionTxn {
            paths2_delete: vec!["/e".into()],
        };
        let w = |b: &mut BytesMut| c.write(b);
        let full = decode_txn(payload(&h, Some(&w), Some(9))).unwrap();
        assert_eq!(full.body, TxnBody::CloseSession(c));
        assert_eq!(full.digest.map(|d| d.tree_digest), Some(9));
    }

    #[test]
    fn create_v0_falls_back_and_create_session_needs_its_body() {
        // Proves the CreateTxnV0 fallback (parentCVersion -1), with and
        // without a digest, and that createSession has no bodiless form.
        let h = hdr(OpCode::Create);
        let v0 = CreateTxnV0 {
            path: "/old".into(),
            data: None,
            acl: vec![],
            ephemeral: true,
        };
        let w = |b: &mut BytesMut| v0.write(b);
        for d in [None, Some(1)] {
            let t = decode_txn(payload(&h, Some(&w), d)).unwrap();
            let TxnBody::Create(c) = t.body else {
                panic!("{t:?}")
            };
            assert_eq!(
                (c.path.as_str(), c.parent_c_version, c.ephemeral),
                ("/old", -1, true)
            );
            assert_eq!(t.digest.is_some(), d.is_some());
        }
        let cs = hdr(OpCode::CreateSession);
        assert!(decode_txn(payload(&cs, None, None)).is_err());
        let w = |b: &mut BytesMut| CreateSessionTxn { time_out: 30000 }.write(b);
        assert!(decode_txn(payload(&cs, Some(&w), Some(3))).is_ok());
        let check = hdr(OpCode::Check);
        assert!(decode_txn(payload(&check, None, None)).is_err());
    }
}
