//! The server's log record (a jute `TxnHeader` then the txn body, keyed by the zxid; see
//! `zk_jute::TxnBody::read_record`) and its renderings: zkTxnLogToolkit's line and JSON.

use bytes::Bytes;
use zk_jute::{Acl, DecodeError, OpCode, TxnBody, TxnHeader};

use crate::text::{self, Obj, csv_buf, csv_str, json_array, json_str};

/// Decodes one log record's payload.
pub fn decode(payload: Vec<u8>) -> Result<(TxnHeader, TxnBody), DecodeError> {
    TxnBody::read_record(Bytes::from(payload))
}

/// The name of a txn type (`Request.op2String`).
pub fn op_name(txn_type: i32) -> String {
    match OpCode::try_from(txn_type) {
        Ok(op) => op.name().to_string(),
        Err(_) => format!("unknown {txn_type}"),
    }
}

/// Every path a txn touches (the sub-txns of a multi, the ephemerals a closeSession deletes).
pub fn paths(body: &TxnBody) -> Vec<&str> {
    let mut out = Vec::new();
    collect_paths(body, &mut out);
    out
}

fn collect_paths<'a>(body: &'a TxnBody, out: &mut Vec<&'a str>) {
    match body {
        TxnBody::CloseSession(t) => out.extend(t.paths2_delete.iter().map(String::as_str)),
        TxnBody::Multi(subs) => subs.iter().for_each(|s| collect_paths(s, out)),
        _ => out.extend(body.path()),
    }
}

fn csv_acl(out: &mut String, acl: &[Acl]) {
    out.push_str("v{");
    for (i, a) in acl.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("s{{{},s{{", a.perms));
        csv_str(out, &a.id.scheme);
        out.push(',');
        csv_str(out, &a.id.id);
        out.push_str("}}");
    }
    out.push('}');
}

fn csv_bool(b: bool) -> &'static str {
    if b { "T" } else { "F" }
}

/// The txn as jute's `Record.toString()` renders it (zkTxnLogToolkit), e.g.
/// `'/a,#626262,v{s{31,s{'world,'anyone}}},F,1`; a multi as `op:txn;op:txn`.
pub fn csv(body: &TxnBody) -> String {
    let mut s = String::new();
    match body {
        TxnBody::Create(t) | TxnBody::Create2(t) => {
            csv_str(&mut s, &t.path);
            s.push(',');
            csv_buf(&mut s, t.data.as_deref());
            s.push(',');
            csv_acl(&mut s, &t.acl);
            s.push_str(&format!(
                ",{},{}",
                csv_bool(t.ephemeral),
                t.parent_c_version
            ));
        }
        TxnBody::CreateContainer(t) => {
            csv_str(&mut s, &t.path);
            s.push(',');
            csv_buf(&mut s, t.data.as_deref());
            s.push(',');
            csv_acl(&mut s, &t.acl);
            s.push_str(&format!(",{}", t.parent_c_version));
        }
        TxnBody::CreateTtl(t) => {
            csv_str(&mut s, &t.path);
            s.push(',');
            csv_buf(&mut s, t.data.as_deref());
            s.push(',');
            csv_acl(&mut s, &t.acl);
            s.push_str(&format!(",{},{}", t.parent_c_version, t.ttl));
        }
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => csv_str(&mut s, &t.path),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            csv_str(&mut s, &t.path);
            s.push(',');
            csv_buf(&mut s, t.data.as_deref());
            s.push_str(&format!(",{}", t.version));
        }
        TxnBody::SetAcl(t) => {
            csv_str(&mut s, &t.path);
            s.push(',');
            csv_acl(&mut s, &t.acl);
            s.push_str(&format!(",{}", t.version));
        }
        TxnBody::Check(t) => {
            csv_str(&mut s, &t.path);
            s.push_str(&format!(",{}", t.version));
        }
        TxnBody::CreateSession(t) => s.push_str(&t.time_out.to_string()),
        TxnBody::CloseSession(t) => {
            s.push_str("v{");
            for (i, p) in t.paths2_delete.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                csv_str(&mut s, p);
            }
            s.push('}');
        }
        TxnBody::Error(t) => s.push_str(&t.err.to_string()),
        TxnBody::Multi(subs) => {
            for (i, sub) in subs.iter().enumerate() {
                if i > 0 {
                    s.push(';');
                }
                s.push_str(sub.txn_type().name());
                s.push(':');
                s.push_str(&csv(sub));
            }
        }
        _ => s.push_str("(not rendered)"),
    }
    s
}

/// One line of zkTxnLogToolkit: `<date> session 0x… cxid 0x… zxid 0x… <op> <txn>`.
pub fn line(hdr: &TxnHeader, body: &TxnBody) -> String {
    format!(
        "{} session {} cxid {} zxid {} {} {}",
        text::short_date(hdr.time),
        text::hex(hdr.client_id),
        text::hex(i64::from(hdr.cxid as u32)),
        text::hex(hdr.zxid),
        op_name(hdr.txn_type),
        csv(body)
    )
}

fn json_data(o: Obj, data: Option<&[u8]>) -> Obj {
    match data {
        None => o.raw("data", "null"),
        Some(d) => {
            let o = o.str("data_hex", &text::hex_bytes(d));
            match std::str::from_utf8(d) {
                Ok(t) => o.str("data", t),
                Err(_) => o.raw("data", "null"),
            }
        }
    }
}

fn json_acl(acl: &[Acl]) -> String {
    json_array(acl.iter().map(|a| {
        Obj::new()
            .num("perms", a.perms)
            .str("scheme", &a.id.scheme)
            .str("id", &a.id.id)
            .end()
    }))
}

/// The txn body as a JSON object with its `op` and fields.
pub fn json(body: &TxnBody) -> String {
    let o = Obj::new().str("op", body.txn_type().name());
    let o = match body {
        TxnBody::Create(t) | TxnBody::Create2(t) => {
            json_data(o.str("path", &t.path), t.data.as_deref())
                .raw("acl", &json_acl(&t.acl))
                .bool("ephemeral", t.ephemeral)
                .num("parent_cversion", t.parent_c_version)
        }
        TxnBody::CreateContainer(t) => json_data(o.str("path", &t.path), t.data.as_deref())
            .raw("acl", &json_acl(&t.acl))
            .num("parent_cversion", t.parent_c_version),
        TxnBody::CreateTtl(t) => json_data(o.str("path", &t.path), t.data.as_deref())
            .raw("acl", &json_acl(&t.acl))
            .num("parent_cversion", t.parent_c_version)
            .num("ttl", t.ttl),
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => o.str("path", &t.path),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            json_data(o.str("path", &t.path), t.data.as_deref()).num("version", t.version)
        }
        TxnBody::SetAcl(t) => o
            .str("path", &t.path)
            .raw("acl", &json_acl(&t.acl))
            .num("version", t.version),
        TxnBody::Check(t) => o.str("path", &t.path).num("version", t.version),
        TxnBody::CreateSession(t) => o.num("timeout", t.time_out),
        TxnBody::CloseSession(t) => o.raw(
            "deletes",
            &json_array(t.paths2_delete.iter().map(|p| json_str(p))),
        ),
        TxnBody::Error(t) => o.num("err", t.err),
        TxnBody::Multi(subs) => o.raw("ops", &json_array(subs.iter().map(json))),
        _ => o,
    };
    o.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_jute::{CloseSessionTxn, CreateTxn, DeleteTxn, Id};

    #[test]
    fn renders_as_the_toolkit() {
        let create = TxnBody::Create(CreateTxn {
            path: "/andor".into(),
            data: Some(Bytes::from_static(b"bbb")),
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            ephemeral: false,
            parent_c_version: 1,
        });
        assert_eq!(
            csv(&create),
            "'/andor,#626262,v{s{31,s{'world,'anyone}}},F,1"
        );
        let hdr = TxnHeader {
            client_id: 0x1_0000_0001,
            cxid: -1,
            zxid: 0x1_0000_0002,
            time: 1_532_093_261_000,
            txn_type: 1,
        };
        assert_eq!(
            line(&hdr, &create),
            "7/20/18, 1:27:41 PM UTC session 0x100000001 cxid 0xffffffff zxid 0x100000002 create '/andor,#626262,v{s{31,s{'world,'anyone}}},F,1"
        );
        let multi = TxnBody::Multi(vec![
            create.clone(),
            TxnBody::Delete(DeleteTxn { path: "/x".into() }),
        ]);
        assert!(csv(&multi).ends_with(";delete:'/x"));
        assert_eq!(paths(&multi), vec!["/andor", "/x"]);
        let close = TxnBody::CloseSession(CloseSessionTxn {
            paths2_delete: vec!["/e1".into(), "/e2".into()],
        });
        assert_eq!(csv(&close), "v{'/e1,'/e2}");
        assert!(json(&create).contains(r#""data":"bbb""#));
    }
}
