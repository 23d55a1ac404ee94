//! The tree digest, as ZooKeeper 3.6+'s `DigestCalculator` (version 2): each
//! znode outside `/zookeeper` contributes CRC-32 (IEEE) of its path (the root
//! as ""), its data and 60 bytes of persisted stat; the tree digest is the
//! wrapping sum. Matching ZooKeeper's numbers lets `hash` output be compared.

use zk_jute::StatPersisted;

/// The digest version ZooKeeper writes in `TxnDigest` (2).
pub const DIGEST_VERSION: i32 = 2;

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// An incremental CRC-32 (IEEE 802.3, as `java.util.zip.CRC32`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    pub(crate) fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    pub(crate) fn value(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

/// The digest of one znode (0 for `/zookeeper...` paths).
pub(crate) fn node_digest(path: &str, data: Option<&[u8]>, s: &StatPersisted) -> u32 {
    if path.starts_with("/zookeeper") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
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
    let mut c = Crc32::new();
    c.update(path.as_bytes());
    if let Some(d) = data {
        c.update(d);
    }
    c.update(&b);
    c.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xCBF4_3926);
    }
}
