//! Writing Apache's formats (design/apache-disk-format.md §10), uncompressed and unpadded, as
//! Apache 3.8 accepts them: a snapshot stream (header, body, seal 1, optionally the digest
//! section with seal 2) and a log file (header, entries). Used to build test inputs; the start
//! of an export.

use zk_tree::Tree;

use crate::adler32;
use crate::log::LOG_MAGIC;
use crate::snap::SNAP_MAGIC;

/// The SNAP body's signature, which a snapshot file does not carry.
const SIGNATURE: &[u8] = b"\0\0\0\x0aBenWasHere";

/// Appends a seal: the Adler-32 of everything in `stream`, then `"/"`.
pub fn seal(stream: &mut Vec<u8>) {
    let v = u64::from(adler32(stream));
    stream.extend_from_slice(&v.to_be_bytes());
    stream.extend_from_slice(&[0, 0, 0, 1, b'/']);
}

/// The checked snapshot stream of `tree` (what `snapshot.<hex>` holds uncompressed): header,
/// body, seal 1, then with `digest = Some((zxid, tree digest))` the digest section and seal 2.
pub fn snapshot_stream(tree: &Tree, digest: Option<(i64, i64)>) -> Vec<u8> {
    let mut s = SNAP_MAGIC.to_vec();
    s.extend_from_slice(&2i32.to_be_bytes());
    s.extend_from_slice(&(-1i64).to_be_bytes());
    let at = s.len();
    // Writing into a Vec cannot fail.
    let _ = tree.write_apache_snap(&mut s);
    if s[at..].ends_with(SIGNATURE) {
        s.truncate(s.len() - SIGNATURE.len());
    }
    seal(&mut s);
    if let Some((zxid, d)) = digest {
        s.extend_from_slice(&zxid.to_be_bytes());
        s.extend_from_slice(&zk_tree::DIGEST_VERSION.to_be_bytes());
        s.extend_from_slice(&d.to_be_bytes());
        seal(&mut s);
    }
    s
}

/// One log entry: Adler-32 of `payload` as a long, its length, the payload, `'B'`.
pub fn log_entry(payload: &[u8]) -> Vec<u8> {
    let mut b = u64::from(adler32(payload)).to_be_bytes().to_vec();
    // Entries are far below 2 GiB (the reader's limit is about 2 MiB).
    b.extend_from_slice(
        &i32::try_from(payload.len())
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    b.extend_from_slice(payload);
    b.push(b'B');
    b
}

/// A log file: the header (`ZKLG`, version 2, dbid 0), then one entry per payload, unpadded.
pub fn log_file<P: AsRef<[u8]>>(payloads: &[P]) -> Vec<u8> {
    let mut b = LOG_MAGIC.to_vec();
    b.extend_from_slice(&2i32.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    for p in payloads {
        b.extend(log_entry(p.as_ref()));
    }
    b
}
