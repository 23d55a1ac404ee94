//! Drives the node store with a sequence of creates, setDatas and deletes
//! decoded from the input (names from a small alphabet so that paths meet;
//! data sizes from 0 to 2 KiB, so that blocks move between the arena's size
//! classes and its boxed blocks), checking every node's data against a model
//! after each step, then that a snapshot of the result reads back to the same
//! digest and node count and the same data.

#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use zk_jute::{CreateTxn, DeleteTxn, SetDataTxn, TxnBody, TxnHeader};
use zk_tree::{Auth, Tree, TreeConfig, open_acl_unsafe};

fn path(bytes: &[u8]) -> String {
    // Up to three levels of one-letter names from "abcd".
    let mut p = String::new();
    for &b in bytes
        .iter()
        .take(1 + usize::from(bytes.first().copied().unwrap_or(0) % 3))
    {
        p.push('/');
        p.push(char::from(b'a' + b % 4));
    }
    p
}

fn data(len_byte: u8, fill: u8) -> Option<Bytes> {
    match len_byte {
        0 => None,
        n => {
            // 1..=255 maps onto 0..2040 bytes, denser around the 1 KiB boundary.
            let len = if n > 200 {
                1000 + usize::from(n - 200)
            } else {
                usize::from(n) * 10
            };
            Some(Bytes::from(vec![fill; len]))
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let tree = Tree::new(TreeConfig::default());
    let mut model: BTreeMap<String, Option<Bytes>> = BTreeMap::new();
    let auth = Auth::default();
    for (i, op) in input.chunks(6).enumerate() {
        if op.len() < 6 {
            break;
        }
        let zxid = i as i64 + 1;
        let p = path(&op[1..4]);
        let hdr = |t: i32| TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid,
            time: zxid,
            txn_type: t,
        };
        match op[0] % 3 {
            0 => {
                let parent_ok = match p.rfind('/') {
                    Some(0) => true,
                    Some(k) => model.contains_key(&p[..k]),
                    None => false,
                };
                if !parent_ok || model.contains_key(&p) {
                    continue;
                }
                let d = data(op[4], op[5]);
                let body = TxnBody::Create(CreateTxn {
                    path: p.clone(),
                    data: d.clone(),
                    acl: open_acl_unsafe(),
                    ephemeral: false,
                    parent_c_version: -1,
                });
                let out = tree.apply(&hdr(1), &body);
                assert_eq!(out.err, zk_jute::ErrorCode::Ok, "create {p}");
                model.insert(p.clone(), d);
            }
            1 => {
                if !model.contains_key(&p) {
                    continue;
                }
                let d = data(op[4], op[5]);
                let body = TxnBody::SetData(SetDataTxn {
                    path: p.clone(),
                    data: d.clone(),
                    version: 1,
                });
                let out = tree.apply(&hdr(5), &body);
                assert_eq!(out.err, zk_jute::ErrorCode::Ok, "set {p}");
                model.insert(p.clone(), d);
            }
            _ => {
                let has_children = model.keys().any(|k| k.starts_with(&format!("{p}/")));
                if !model.contains_key(&p) || has_children {
                    continue;
                }
                let out = tree.apply(&hdr(2), &TxnBody::Delete(DeleteTxn { path: p.clone() }));
                assert_eq!(out.err, zk_jute::ErrorCode::Ok, "delete {p}");
                model.remove(&p);
            }
        }
        for (k, d) in &model {
            let (got, _) = tree.get_data(k, &auth, None).expect("model node exists");
            assert_eq!(got.as_deref(), d.as_deref(), "data of {k}");
        }
    }
    let again = common::round_trip(&tree);
    for (k, d) in &model {
        let (got, _) = again.get_data(k, &auth, None).expect("model node exists");
        assert_eq!(
            got.as_deref(),
            d.as_deref(),
            "data of {k} after the snapshot"
        );
    }
});
