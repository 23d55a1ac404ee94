//! Feeds arbitrary bytes to the snapshot reader, as it meets a damaged or
//! foreign file on disk: it must return an error or a tree, never panic or
//! allocate without bound. A tree it returns must write a snapshot that reads
//! back to the same digest and node count.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_tree::{Tree, TreeConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = Tree::read_snapshot(data, TreeConfig::default()) else {
        return;
    };
    let mut out = Vec::new();
    tree.write_snapshot(&mut out).expect("write to memory");
    let again = Tree::read_snapshot(&out[..], TreeConfig::default()).expect("own snapshot reads");
    assert_eq!(
        (again.digest(), again.node_count()),
        (tree.digest(), tree.node_count())
    );
});
