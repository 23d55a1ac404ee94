//! Shared by the targets.

use zk_tree::{Tree, TreeConfig};

/// Writes `tree` as a snapshot and reads it back: the copy must have the same
/// digest and node count.
pub fn round_trip(tree: &Tree) -> Tree {
    let mut out = Vec::new();
    tree.write_snapshot(&mut out).expect("write to memory");
    let again = Tree::read_snapshot(&out[..], TreeConfig::default()).expect("own snapshot reads");
    assert_eq!(
        (again.digest(), again.node_count()),
        (tree.digest(), tree.node_count())
    );
    again
}
