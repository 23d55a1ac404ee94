//! Adler-32 (RFC 1950), what `java.util.zip.Adler32` computes: Apache's log
//! entries and snapshot seals use it.

const MOD: u32 = 65521;
/// Bytes that can be summed before `b` may overflow a u32 (zlib's NMAX).
const NMAX: usize = 5552;

/// A running Adler-32.
#[derive(Debug, Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(NMAX) {
            for &x in chunk {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= MOD;
            self.b %= MOD;
        }
    }

    /// The checksum of everything added so far.
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// Adler-32 of `bytes`.
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut a = Adler32::default();
    a.update(bytes);
    a.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Proves the sums against RFC 1950's definition (values from zlib).
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        let big = vec![0xffu8; 100_000];
        let mut split = Adler32::default();
        split.update(&big[..7]);
        split.update(&big[7..]);
        assert_eq!(split.value(), adler32(&big));
        assert_eq!(
            adler32(&big),
            0x149a_302c,
            "zlib.adler32(b'\\xff' * 100000)"
        );
    }
}
