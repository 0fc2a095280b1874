//! A latency histogram with bounded relative error and fixed memory, for `wsloop bench`.
//!
//! Values (nanoseconds) fall into log-linear buckets, the layout HdrHistogram uses: below
//! [`SUB_BUCKETS`] each value has its own bucket; above, every power of two is split into
//! [`SUB_BUCKETS`] equal buckets. A reported percentile is the midpoint of its bucket, so it
//! is within 1/128 (0.8 %) of the true value, whatever the range. Recording is an index
//! computation and an increment: cheap enough to do for every message of a load test.

/// log2 of the number of buckets each power of two is split into.
const SUB_BITS: u32 = 6;
/// Buckets per power of two (64: a bucket is at most 1/64 of its value wide).
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every `u64`.
const BUCKETS: usize = ((65 - SUB_BITS) as usize) << SUB_BITS;

/// Counts of values in log-linear buckets, plus exact count, sum, min and max.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (about 30 KiB of counters).
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value recorded (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.sum as f64 / self.total as f64
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p99.9), 0 when empty.
    ///
    /// It is the midpoint of the bucket holding the `ceil(q × count)`-th smallest value,
    /// clamped to the exact minimum and maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bucket_bounds(index);
                return (low + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

/// The bucket of `value`.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    // value >= 2^SUB_BITS, so its top bit is at `top >= SUB_BITS`.
    let top = 63 - value.leading_zeros();
    let shift = top - SUB_BITS;
    let mantissa = (value >> shift) & (SUB_BUCKETS - 1);
    (((shift + 1) as usize) << SUB_BITS) | mantissa as usize
}

/// The lowest value of bucket `index` and the bucket's width.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let sub = SUB_BUCKETS as usize;
    if index < sub {
        return (index as u64, 1);
    }
    let shift = (index >> SUB_BITS) - 1;
    let mantissa = (index & (sub - 1)) as u64;
    ((SUB_BUCKETS + mantissa) << shift, 1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        let mut previous = 0;
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let index = bucket_of(value);
            assert!(index < BUCKETS);
            assert!(index >= previous, "monotonic at {value}");
            previous = index;
            let (low, width) = bucket_bounds(index);
            assert!(
                low <= value && value - low < width,
                "{value} in [{low}, +{width})"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=10 {
            h.record(v);
        }
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), 5);
        assert_eq!(h.quantile(0.9), 9);
        assert_eq!(h.quantile(1.0), 10);
        assert_eq!(h.quantile(0.0), 1);
        assert!((h.mean() - 5.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_a_uniform_range_are_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=1_000_000u64 {
            h.record(v * 1000);
        }
        for (q, expected) in [(0.5, 500_000_000.0), (0.99, 990_000_000.0), (0.999, 999e6)] {
            let got = h.quantile(q) as f64;
            assert!(
                (got - expected).abs() / expected < 0.01,
                "q{q}: {got} vs {expected}"
            );
        }
        assert_eq!(h.max(), 1_000_000_000);
    }

    #[test]
    fn a_tail_shows_in_the_high_percentiles_only() {
        let mut h = Histogram::new();
        for _ in 0..9_980 {
            h.record(100_000);
        }
        for _ in 0..20 {
            h.record(50_000_000);
        }
        assert!(h.quantile(0.99).abs_diff(100_000) < 1_000);
        assert!(h.quantile(0.999).abs_diff(50_000_000) < 500_000);
    }

    #[test]
    fn empty_and_merged() {
        let mut a = Histogram::new();
        assert_eq!((a.quantile(0.99), a.mean(), a.max()), (0, 0.0, 0));
        let mut b = Histogram::new();
        a.record(10);
        b.record(1_000);
        b.record(3_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile(0.0), 10);
        assert_eq!(a.max(), 3_000);
    }
}
