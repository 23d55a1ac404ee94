//! A compact log-linear latency histogram.
//!
//! Values (nanoseconds) below `2^PRECISION` get one bucket each; above that,
//! every power of two is split into `2^PRECISION` equal sub-buckets, so a
//! bucket is never wider than `1 / 2^PRECISION` (1.6 %) of the values it holds.
//! That is HdrHistogram's layout with the precision fixed at compile time: 3,776
//! `u64` counters (30 KiB) cover the whole `u64` range, recording is a
//! leading-zeros count and an add, and two histograms merge by adding counters.
//! A percentile is reported as the highest value its bucket can hold (so it
//! never understates), clamped to the exact maximum recorded.

/// Sub-bucket bits: 64 sub-buckets per power of two.
const PRECISION: u32 = 6;
const SUB: u64 = 1 << PRECISION;
/// Buckets: the linear range, then one group of `SUB` per remaining exponent.
const BUCKETS: usize = ((64 - PRECISION as usize) + 1) * SUB as usize;

/// Latency histogram over `u64` values (the tool records nanoseconds).
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= PRECISION
    let shift = exp - PRECISION;
    let sub = (v >> shift) - SUB; // 0..SUB
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The highest value that falls into bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    /// The largest value recorded, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest bucket bound such
    /// that at least `ceil(q * count)` values are at or below it, clamped to
    /// `[min, max]`. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        assert_eq!(index(0), 0);
        assert_eq!(index(SUB - 1), SUB as usize - 1);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
        for i in 1..BUCKETS {
            // every bucket starts right after the previous one ends
            assert_eq!(index(bucket_high(i - 1) + 1), i, "bucket {i}");
            assert_eq!(index(bucket_high(i)), i, "bucket {i}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=50 {
            h.record(v);
        }
        assert_eq!(h.count(), 50);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 50);
        assert_eq!(h.quantile(0.5), 25);
        assert_eq!(h.quantile(0.99), 50);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(1.0), 50);
        assert!((h.mean() - 25.5).abs() < 1e-9);
    }

    #[test]
    fn relative_error_is_bounded() {
        let mut v = 1u64;
        while v < u64::MAX / 3 {
            let mut h = Histogram::new();
            h.record(1); // so the clamp to min/max does not hide the bucket bound
            h.record(v);
            h.record(u64::MAX / 2);
            let got = h.quantile(0.5);
            assert!(got >= v, "{got} < {v}");
            assert!((got - v) as f64 <= v as f64 / SUB as f64, "{v} -> {got}");
            v = v * 3 + 1;
        }
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 us .. 100 ms
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        let p999 = h.quantile(0.999) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 99_000_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert!((p999 / 99_900_000.0 - 1.0).abs() < 0.02, "{p999}");
        assert!(p50 <= p99 && p99 <= p999 && p999 <= h.max() as f64);
        assert_eq!(h.max(), 100_000_000);
    }

    #[test]
    fn merge_equals_recording_everything_once() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..10_000u64 {
            let x = v * v % 7_777_777;
            if v % 3 == 0 { &mut a } else { &mut b }.record(x);
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!((a.min(), a.max()), (all.min(), all.max()));
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn empty_is_zero() {
        let h = Histogram::new();
        assert_eq!(
            (h.count(), h.min(), h.max(), h.quantile(0.99)),
            (0, 0, 0, 0)
        );
        assert_eq!(h.mean(), 0.0);
        let mut m = Histogram::new();
        m.merge(&h);
        assert_eq!(m.min(), 0);
    }
}
