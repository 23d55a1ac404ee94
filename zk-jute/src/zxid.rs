//! The ZooKeeper transaction id.

use std::fmt;

/// A zxid: the epoch of the leader that proposed the txn in the high 32 bits,
/// a counter within that epoch in the low 32 (Apache's `ZxidUtils`).
///
/// Kept as the signed 64-bit long of the wire and of txn headers (negative
/// values do occur there: observers announce `Long.MIN_VALUE` in election
/// notifications); zk-txnlog keys records by the same bits as a `u64`.
/// Convert with `From` both ways; for the zxids a server assigns (never
/// negative) the two orders agree.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(i64);

impl Zxid {
    /// Zxid 0: nothing yet.
    pub const ZERO: Zxid = Zxid(0);

    /// `epoch << 32 | counter` (`ZxidUtils.makeZxid`).
    pub const fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }

    /// The epoch: the high 32 bits.
    pub const fn epoch(self) -> u32 {
        ((self.0 as u64) >> 32) as u32
    }

    /// The epoch as `ZxidUtils.getEpochFromZxid` computes it: an arithmetic
    /// shift of the long, so negative for a negative zxid (the form election
    /// notifications use).
    pub const fn epoch_i64(self) -> i64 {
        self.0 >> 32
    }

    /// The counter: the low 32 bits.
    pub const fn counter(self) -> u32 {
        self.0 as u32
    }

    /// The zxid a leader proposes after this one: the counter plus one, or,
    /// once the counter is exhausted, counter 1 of the next epoch (where
    /// Apache's leader forces a new election; a quorum of one just moves on).
    pub const fn next(self) -> Zxid {
        if self.counter() == u32::MAX {
            Zxid::new(self.epoch() + 1, 1)
        } else {
            Zxid(self.0 + 1)
        }
    }

    /// The signed long of the wire and txn headers.
    pub const fn as_i64(self) -> i64 {
        self.0
    }

    /// The same bits as a `u64` (zk-txnlog's key).
    pub const fn as_u64(self) -> u64 {
        self.0 as u64
    }
}

impl From<i64> for Zxid {
    fn from(v: i64) -> Zxid {
        Zxid(v)
    }
}

impl From<u64> for Zxid {
    fn from(v: u64) -> Zxid {
        Zxid(v as i64)
    }
}

impl From<Zxid> for i64 {
    fn from(z: Zxid) -> i64 {
        z.0
    }
}

impl From<Zxid> for u64 {
    fn from(z: Zxid) -> u64 {
        z.0 as u64
    }
}

/// Hex, as ZooKeeper logs zxids (`0x{:x}`).
impl fmt::LowerHex for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_conversions() {
        let z = Zxid::new(4, 9);
        assert_eq!((z.epoch(), z.counter()), (4, 9));
        assert_eq!(z.as_i64(), 0x4_0000_0009);
        assert_eq!(Zxid::from(0x4_0000_0009u64), z);
        assert_eq!(u64::from(z), 0x4_0000_0009);
        assert_eq!(format!("0x{z:x} {z}"), "0x400000009 0x400000009");
    }

    #[test]
    fn next_rolls_the_epoch_when_the_counter_is_exhausted() {
        assert_eq!(Zxid::ZERO.next(), Zxid::new(0, 1));
        assert_eq!(Zxid::new(2, 7).next(), Zxid::new(2, 8));
        assert_eq!(Zxid::new(2, u32::MAX).next(), Zxid::new(3, 1));
    }

    #[test]
    fn epoch_i64_is_apaches_arithmetic_shift() {
        let min = Zxid::from(i64::MIN);
        assert_eq!(min.epoch_i64(), i64::MIN >> 32);
        assert_eq!(min.epoch(), 0x8000_0000);
        assert_eq!(Zxid::new(5, 1).epoch_i64(), 5);
    }
}
