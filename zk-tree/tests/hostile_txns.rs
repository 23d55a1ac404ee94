//! Txns a hostile or broken leader could send, applied as a follower applies
//! them: every type with odd fields (paths that do not exist, the root,
//! system nodes, no path at all; versions and TTLs of any value; a
//! closeSession listing any paths; multis of all of these), from sessions
//! 0, -1, the container owner and others, each sent through its wire
//! encoding (now and then cut, flipped or extended) and decoded as a follower
//! decodes it. No apply may panic, and the tree stays whole: a tree loaded
//! from its snapshot has the same nodes, digest, sessions and ephemerals.
//!
//! `ZK_HOSTILE_TXN_SCRIPTS=n` runs n scripts (default 200);
//! `ZK_HOSTILE_TXN_SEED=s` runs script s alone, `ZK_HOSTILE_TXN_TRACE=1`
//! prints each txn and whether the tree was still whole after it.

mod common;

use bytes::BytesMut;
use common::same;
use zk_jute::hostile::{Draws, damage, txn};
use zk_jute::{TxnBody, TxnHeader};
use zk_tree::{Tree, TreeConfig};

fn run(seed: u64) {
    let mut d = Draws(seed);
    let config = TreeConfig {
        extended_types: seed.is_multiple_of(2),
        ..TreeConfig::default()
    };
    let tree = Tree::new(config.clone());
    let sessions = [0, -1, i64::MIN, 5, 6, 0x0100_0000_0000_0001, d.u64() as i64];
    for step in 1..=120 {
        let body = txn(&mut d);
        let hdr = TxnHeader {
            client_id: d.pick(&sessions),
            cxid: d.i32(),
            zxid: step,
            time: 1_000 + step,
            txn_type: body.txn_type().code(),
        };
        let mut wire = BytesMut::new();
        body.write_record(&hdr, &mut wire);
        damage(&mut d, &mut wire);
        let Ok((hdr, body, _)) = TxnBody::read_record_digest(wire.freeze()) else {
            continue;
        };
        tree.apply(&hdr, &body);
        if std::env::var_os("ZK_HOSTILE_TXN_TRACE").is_some() {
            let mut snap = Vec::new();
            tree.write_snapshot(&mut snap).unwrap();
            let loaded = Tree::read_snapshot(&snap[..], config.clone()).unwrap();
            eprintln!(
                "{} {step} {hdr:?} {body:?}",
                loaded.digest() == tree.digest()
            );
        }
    }
    let mut snap = Vec::new();
    tree.write_snapshot(&mut snap)
        .unwrap_or_else(|e| panic!("script {seed}: snapshot: {e}"));
    let loaded = Tree::read_snapshot(&snap[..], config)
        .unwrap_or_else(|e| panic!("script {seed}: its snapshot does not load: {e}"));
    same(&tree, &loaded);
}

#[test]
fn hostile_txns_leave_the_tree_whole() {
    zk_jute::hostile::run_scripts("TXN", 200, run);
}
