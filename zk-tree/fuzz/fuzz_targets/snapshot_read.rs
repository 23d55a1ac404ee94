//! Feeds arbitrary bytes to the snapshot reader, as it meets a damaged or
//! foreign file on disk: it must return an error or a tree, never panic or
//! allocate without bound. A tree it returns must write a snapshot that reads
//! back to the same digest and node count.

#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use zk_tree::{Tree, TreeConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = Tree::read_snapshot(data, TreeConfig::default()) else {
        return;
    };
    common::round_trip(&tree);
});
