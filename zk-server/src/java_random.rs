//! Session passwords as Apache ZooKeeper computes them, so that a client can
//! reconnect to any member of a mixed ensemble (design/quorum.md §6).
//!
//! `ZooKeeperServer.generatePasswd(id)` is 16 bytes of
//! `new java.util.Random(id ^ 0xB3415C00L).nextBytes`: every server recomputes
//! it from the session id alone (`checkPasswd`), so ours must be Java's linear
//! congruential generator bit for bit:
//!
//! * seed: `(seed ^ 0x5DEECE66D) & (2^48 - 1)` — only the low 48 bits of the
//!   session id matter, so ids that differ only in the top 16 bits (the
//!   server id byte among them) have the same password, as in Java;
//! * `next(bits)`: `seed = (seed * 0x5DEECE66D + 0xB) mod 2^48`, result
//!   `seed >>> (48 - bits)` as a 32-bit int;
//! * `nextBytes`: one `next(32)` per 4 bytes, written low byte first (the
//!   last int is cut short when the length is not a multiple of 4).
//!
//! Session ids themselves: Apache's `SessionTrackerImpl.initializeNextSessionId`
//! is `((elapsedMs << 24) >>> 8) | (myid << 56)` (plus one if that is the
//! container marker). `sessions::initial_session_id` computes the same bits
//! for server ids 0..=255 (checked below against values printed by a JVM);
//! the only difference is the time it is fed: Apache uses
//! `Time.currentElapsedTime()` (a monotonic clock with an arbitrary origin),
//! we pass wall-clock milliseconds. Ids only need to be unique, so either
//! clock interoperates.

// In ensemble mode the session tracker's passwords are this one
// (`SessionTracker::use_apache_passwords`).

/// `ZooKeeperServer.superSecret`.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// `java.util.Random`'s multiplier, addend and 48-bit mask.
const MULTIPLIER: u64 = 0x5_DEEC_E66D;
const ADDEND: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;

/// `java.util.Random`, bit-exact for the methods ZooKeeper uses.
#[derive(Debug, Clone)]
pub(crate) struct JavaRandom {
    /// The 48-bit state.
    seed: u64,
}

impl JavaRandom {
    /// `new Random(seed)` (with `initialScramble`).
    pub(crate) fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    /// `next(bits)`, `1 <= bits <= 32`.
    fn next(&mut self, bits: u32) -> i32 {
        debug_assert!((1..=32).contains(&bits));
        self.seed = self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND) & MASK;
        // `(int)(seed >>> (48 - bits))`: keep the low 32 bits.
        (self.seed >> (48 - bits)) as u32 as i32
    }

    /// `nextInt()`.
    pub(crate) fn next_int(&mut self) -> i32 {
        self.next(32)
    }

    /// `nextBytes(bytes)`.
    pub(crate) fn next_bytes(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(4) {
            let rnd = self.next_int().to_le_bytes();
            chunk.copy_from_slice(&rnd[..chunk.len()]);
        }
    }
}

/// The password Apache ZooKeeper gives session `session_id`
/// (`ZooKeeperServer.generatePasswd`).
pub(crate) fn session_password(session_id: i64) -> [u8; 16] {
    let mut p = [0u8; 16];
    JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut p);
    p
}

#[cfg(test)]
mod tests {
    //! Golden values printed once by OpenJDK 17 (`javac Gen.java && java Gen`):
    //!
    //! ```java
    //! import java.util.Random;
    //! public class Gen {
    //!     static String hex(byte[] b) { StringBuilder s = new StringBuilder();
    //!         for (byte x : b) s.append(String.format("%02x", x & 0xff)); return s.toString(); }
    //!     public static void main(String[] a) {
    //!         long[] ids = {0L, 1L, 42L, -1L, Long.MIN_VALUE, Long.MAX_VALUE, 0xB3415C00L,
    //!             0x0100000000000000L, 0x01000a1b2c3d0000L, 0xff0123456789abcdL,
    //!             0xfe00000000000001L, -0x7123456789abcdefL};
    //!         for (long id : ids) {
    //!             Random r = new Random(id ^ 0XB3415C00L);
    //!             byte[] p = new byte[16];
    //!             r.nextBytes(p);
    //!             System.out.println(String.format("0x%016x", id) + " " + hex(p));
    //!         }
    //!         Random r = new Random(12345L);
    //!         byte[] p = new byte[7]; r.nextBytes(p);
    //!         System.out.println("seed12345 bytes7 " + hex(p));
    //!         Random r2 = new Random(-7L);
    //!         StringBuilder s = new StringBuilder();
    //!         for (int i = 0; i < 5; i++) s.append(r2.nextInt()).append(",");
    //!         System.out.println("seed-7 ints " + s);
    //!         long[][] sids = {{1, 1700000000000L}, {3, 1700000000000L}, {255, 123456789L},
    //!             {254, 0x7fffffffffL}, {0, 1L}, {1, 0xffffffffffffL}};
    //!         for (long[] x : sids) {   // SessionTrackerImpl.initializeNextSessionId
    //!             long nextSid = (x[1] << 24) >>> 8;
    //!             nextSid = nextSid | (x[0] << 56);
    //!             System.out.println("sid myid=" + x[0] + " ms=" + x[1] + " "
    //!                 + String.format("0x%016x", nextSid));
    //!         }
    //!     }
    //! }
    //! ```
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// (session id, password) as printed by the JVM.
    const PASSWORDS: &[(u64, &str)] = &[
        (0x0000000000000000, "f22acd4a97e69d6d20a49bb638eadb38"),
        (0x0000000000000001, "054cc74a37327db215e702e20c73f005"),
        (0x000000000000002a, "c813ee495620c3a68794ef27a239e8a9"),
        (0xffffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"),
        (0x8000000000000000, "f22acd4a97e69d6d20a49bb638eadb38"),
        (0x7fffffffffffffff, "20f62cb5648dc2d771471c8a2486a9ee"),
        (0x00000000b3415c00, "60b420bb3851d9d47acb933dbe70399b"),
        (0x0100000000000000, "f22acd4a97e69d6d20a49bb638eadb38"),
        (0x01000a1b2c3d0000, "99540115b2ac339b9f3f41ba4b39270b"),
        (0xff0123456789abcd, "b1b80984a941d5338ded1efc34ea8038"),
        (0xfe00000000000001, "054cc74a37327db215e702e20c73f005"),
        (0x8edcba9876543211, "2e74d8745b2bd34212094b504c02322e"),
    ];

    #[test]
    fn passwords_match_the_jvm() {
        for &(id, want) in PASSWORDS {
            assert_eq!(
                hex(&session_password(id as i64)),
                want,
                "session 0x{id:016x}"
            );
        }
    }

    #[test]
    fn only_the_low_48_bits_of_the_id_matter() {
        // Java's seed is 48 bits: the server id byte does not change the
        // password (0x01.. and 0x00.. above print the same bytes too).
        for &(id, _) in PASSWORDS {
            let other = (id ^ 0xabcd_0000_0000_0000) as i64;
            assert_eq!(session_password(id as i64), session_password(other));
        }
    }

    #[test]
    fn next_bytes_cuts_the_last_int_short() {
        let mut r = JavaRandom::new(12345);
        let mut b = [0u8; 7];
        r.next_bytes(&mut b);
        assert_eq!(hex(&b), "d6209f5c31b361");
    }

    #[test]
    fn next_int_sequence_matches_the_jvm() {
        let mut r = JavaRandom::new(-7);
        let got: Vec<i32> = (0..5).map(|_| r.next_int()).collect();
        assert_eq!(
            got,
            [1155869324, -423064701, -1403676116, -232591881, -2055186340]
        );
    }

    #[test]
    fn session_id_formula_matches_the_jvm() {
        // (myid, ms, initializeNextSessionId) as printed by the JVM.
        let cases: &[(u8, u64, u64)] = &[
            (1, 1_700_000_000_000, 0x018bcfe568000000),
            (3, 1_700_000_000_000, 0x038bcfe568000000),
            (255, 123_456_789, 0xff00075bcd150000),
            (254, 0x7f_ffff_ffff, 0xfe7fffffffff0000),
            (0, 1, 0x0000000000010000),
            (1, 0xffff_ffff_ffff, 0x01ffffffffff0000),
        ];
        for &(myid, ms, want) in cases {
            assert_eq!(
                crate::sessions::initial_session_id(myid, ms),
                want as i64,
                "myid {myid} ms {ms}"
            );
        }
    }
}
