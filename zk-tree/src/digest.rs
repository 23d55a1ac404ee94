//! The tree digest, as ZooKeeper 3.6+'s `DigestCalculator` (version 2): each
//! znode outside `/zookeeper` contributes CRC-32 (IEEE) of its path (the root
//! as ""), its data and 60 bytes of persisted stat; the tree digest is the
//! wrapping sum. Matching ZooKeeper's numbers lets `hash` output be compared.

use zk_jute::StatPersisted;

/// The digest version ZooKeeper writes in `TxnDigest` (2).
pub const DIGEST_VERSION: i32 = 2;

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
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
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = tables();

/// An incremental CRC-32 (IEEE 802.3, as `java.util.zip.CRC32`), slicing by 8.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    pub(crate) fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let t = &TABLES;
        let mut c = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for b in &mut chunks {
            let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            c = t[7][(lo & 0xff) as usize]
                ^ t[6][((lo >> 8) & 0xff) as usize]
                ^ t[5][((lo >> 16) & 0xff) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xff) as usize]
                ^ t[2][((hi >> 8) & 0xff) as usize]
                ^ t[1][((hi >> 16) & 0xff) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
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
