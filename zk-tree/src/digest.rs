//! The tree digest, as ZooKeeper 3.6+'s `DigestCalculator` (version 2): each
//! znode not under `/zookeeper/` (`/zookeeper` itself counts) contributes CRC-32 (IEEE) of its path (the root
//! as ""), its data and 60 bytes of persisted stat; the tree digest is the
//! wrapping sum. Matching ZooKeeper's numbers lets `hash` output be compared.

use zk_jute::StatPersisted;

/// The digest version ZooKeeper writes in `TxnDigest` (2).
pub const DIGEST_VERSION: i32 = 2;

/// An incremental CRC-32 (IEEE 802.3, as `java.util.zip.CRC32`): crc32fast,
/// which folds with PCLMULQDQ where the CPU has it (an order of magnitude
/// faster than table slicing on the 100-byte values of a snapshot load).
#[derive(Debug, Clone, Default)]
pub(crate) struct Crc32(crc32fast::Hasher);

impl Crc32 {
    /// A fresh CRC, cloned from one made once: `Hasher::new` looks up the
    /// CPU's features at every call (two digests a write, thousands a
    /// snapshot load).
    pub(crate) fn new() -> Self {
        static FRESH: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
        Crc32(FRESH.get_or_init(crc32fast::Hasher::new).clone())
    }
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    pub(crate) fn value(self) -> u32 {
        self.0.finalize()
    }
}

/// Whether a path's znode counts in the tree digest: not those under
/// `/zookeeper/` (`/zookeeper` itself counts, as
/// `DigestCalculator.calculateDigest` skips only its children).
fn digested(path: &str) -> bool {
    !path.starts_with("/zookeeper/")
}

/// The path as the digest reads it (the root as "").
fn digest_path(path: &str) -> &str {
    if path == "/" { "" } else { path }
}

/// The 60 bytes of persisted stat a node digest ends with.
fn stat_bytes(s: &StatPersisted) -> [u8; 60] {
    let mut b = [0u8; 60];
    let mut o = 0;
    for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
        b[o..o + 8].copy_from_slice(&v.to_be_bytes());
        o += 8;
    }
    for v in [s.version, s.cversion, s.aversion] {
        b[o..o + 4].copy_from_slice(&v.to_be_bytes());
        o += 4;
    }
    b[o..o + 8].copy_from_slice(&s.ephemeral_owner.to_be_bytes());
    b
}

/// A node digest split where the prep stage needs it: the CRC state after
/// the path and data, to which a stat is added. A stat-only change (a
/// parent's cversion, an ACL's aversion) then costs 60 bytes of CRC, not a
/// pass over the data (the prep stage keeps this, not the data).
#[derive(Debug, Clone, Default)]
pub(crate) struct DigestPrefix(Option<Crc32>);

impl DigestPrefix {
    /// The prefix of `path` holding `data`.
    pub(crate) fn new(path: &str, data: Option<&[u8]>) -> DigestPrefix {
        if !digested(path) {
            return DigestPrefix(None);
        }
        let mut c = Crc32::new();
        c.update(digest_path(path).as_bytes());
        c.update(data.unwrap_or(&[]));
        DigestPrefix(Some(c))
    }

    /// The node digest with stat `s` (0 for a path not digested).
    pub(crate) fn with_stat(&self, s: &StatPersisted) -> u32 {
        match &self.0 {
            None => 0,
            Some(c) => {
                let mut c = c.clone();
                c.update(&stat_bytes(s));
                c.value()
            }
        }
    }
}

/// The digest of one znode (0 for paths under `/zookeeper/`; `/zookeeper`
/// itself counts).
pub(crate) fn node_digest(path: &str, data: Option<&[u8]>, s: &StatPersisted) -> u32 {
    if !digested(path) {
        return 0;
    }
    let path = digest_path(path);
    let b = stat_bytes(s);
    let data = data.unwrap_or(&[]);
    let mut c = Crc32::new();
    // crc32fast folds with PCLMULQDQ only from 128 bytes an update: a small
    // znode's three pieces go through one stack buffer (3x faster).
    let len = path.len() + data.len() + b.len();
    if len <= SMALL_DIGEST {
        let mut buf = [0u8; SMALL_DIGEST];
        buf[..path.len()].copy_from_slice(path.as_bytes());
        buf[path.len()..path.len() + data.len()].copy_from_slice(data);
        buf[path.len() + data.len()..len].copy_from_slice(&b);
        c.update(&buf[..len]);
    } else {
        c.update(path.as_bytes());
        c.update(data);
        c.update(&b);
    }
    c.value()
}

/// Znodes whose digest input (path, data, stat) fits this take one update.
const SMALL_DIGEST: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_znodes_digest_alike() {
        let s = StatPersisted {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            pzxid: 9,
        };
        for n in [0usize, 1, 100, 400, 430, 431, 432, 433, 2000] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut c = Crc32::new();
            c.update(b"/a/b");
            c.update(&data);
            let mut st = Vec::new();
            for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
                st.extend_from_slice(&v.to_be_bytes());
            }
            for v in [s.version, s.cversion, s.aversion] {
                st.extend_from_slice(&v.to_be_bytes());
            }
            st.extend_from_slice(&s.ephemeral_owner.to_be_bytes());
            c.update(&st);
            assert_eq!(node_digest("/a/b", Some(&data), &s), c.value(), "{n}");
        }
        assert_eq!(node_digest("/zookeeper/x", None, &s), 0);
        // The split form agrees, root and system paths included.
        for (path, data) in [
            ("/a/b", &b"xy"[..]),
            ("/", &b""[..]),
            ("/zookeeper/q", &b"1"[..]),
        ] {
            let prefix = DigestPrefix::new(path, Some(data));
            assert_eq!(
                prefix.with_stat(&s),
                node_digest(path, Some(data), &s),
                "{path}"
            );
        }
        // Found by the Apache snapshot oracle test: /zookeeper itself counts.
        assert_ne!(node_digest("/zookeeper", None, &s), 0);
        assert_ne!(node_digest("/zookeeperx", None, &s), 0);
    }

    #[test]
    fn crc32_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
        // Split updates and every tail length agree with a bitwise CRC.
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in 0..data.len() {
            let mut a = Crc32::new();
            a.update(&data[..n / 2]);
            a.update(&data[n / 2..n]);
            let mut slow = 0xFFFF_FFFFu32;
            for &b in &data[..n] {
                slow ^= u32::from(b);
                for _ in 0..8 {
                    slow = if slow & 1 != 0 {
                        0xEDB8_8320 ^ (slow >> 1)
                    } else {
                        slow >> 1
                    };
                }
            }
            assert_eq!(a.value(), slow ^ 0xFFFF_FFFF, "{n}");
        }
    }
}
