//! Feeds arbitrary bytes to the reader of Apache's SNAP body, as a learner
//! meets them on the quorum port from a broken or hostile leader (or in a
//! damaged Apache snapshot file): it must return an error or a tree, never
//! panic or allocate without bound. The first byte picks extended types
//! (TTL nodes) on or off (bit 0) and the SNAP form (with the signature) or
//! the snapshot-file form (without it; bit 1). A tree it returns must write a body that reads back
//! to the same digest, node count and bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_tree::{APACHE_MAX_LEN, Tree, TreeConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let config = || TreeConfig {
        extended_types: mode & 1 == 1,
        ..TreeConfig::default()
    };
    let mut r = body;
    let read = if mode & 2 == 0 {
        Tree::read_apache_snap(&mut r, config(), APACHE_MAX_LEN, 5)
    } else {
        Tree::read_apache_file_body(&mut r, config(), APACHE_MAX_LEN, 5)
    };
    let Ok(snap) = read else {
        return;
    };
    let mut out = Vec::new();
    snap.tree
        .write_apache_snap(&mut out)
        .expect("write to memory");
    let mut again_in = &out[..];
    let again =
        Tree::read_apache_snap(&mut again_in, config(), APACHE_MAX_LEN, 5).expect("own body reads");
    assert!(again_in.is_empty(), "own body consumed exactly");
    assert_eq!(
        (
            again.tree.digest(),
            again.tree.node_count(),
            again.tree.sessions()
        ),
        (
            snap.tree.digest(),
            snap.tree.node_count(),
            snap.tree.sessions()
        )
    );
    let mut out2 = Vec::new();
    again
        .tree
        .write_apache_snap(&mut out2)
        .expect("write to memory");
    assert_eq!(out2, out, "equal trees write equal bytes");
});
