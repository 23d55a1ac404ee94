//! Feeds arbitrary bytes to zk-apache's snapshot reader as a whole file; the first byte picks
//! the stream mode (plain, gzip, xerial snappy) and extended types. It must return an error or
//! a checked snapshot, never panic or allocate without bound. A useful seed: a real Apache
//! `snapshot.*` file with a mode byte 0 (plain), 1 (`.gz`) or 2 (`.snappy`) in front.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zk_apache::{Compression, read_snapshot_from};
use zk_tree::TreeConfig;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let compression = match mode % 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        _ => Compression::Snappy,
    };
    let config = TreeConfig {
        extended_types: mode & 4 != 0,
        ..TreeConfig::default()
    };
    if let Ok(s) = read_snapshot_from(file, compression, 5, config, "snapshot.5".as_ref()) {
        assert_eq!(s.tree.last_processed_zxid(), 5);
    }
});
