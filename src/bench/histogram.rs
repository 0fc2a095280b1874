//! A latency histogram with bounded relative error, for `wsloop bench`.
//!
//! The buckets are [`hdrhistogram`]'s, at [`SIGNIFICANT_DIGITS`] significant digits: every
//! power of two is split into 128 equal buckets, so a reported percentile (the midpoint of
//! its bucket) is within 1/256 (0.4 %) of the true value, whatever the range. The count,
//! sum, minimum and maximum are kept exactly beside it, so the mean and the extremes the
//! reports print are exact. The counters grow with the largest value recorded (about
//! 24 KiB for latencies up to a second). Recording is an index computation and an
//! increment: cheap enough to do for every message of a load test.

/// Significant decimal digits the buckets keep (2: a bucket is at most 1/128 of its value
/// wide).
pub(crate) const SIGNIFICANT_DIGITS: u8 = 2;

/// Counts of values in log-linear buckets, plus exact count, sum, min and max (an example:
/// the test `latencies_of_one_to_a_thousand_micros`).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    buckets: hdrhistogram::Histogram<u64>,
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
    /// An empty histogram; its counters grow as larger values are recorded.
    pub(crate) fn new() -> Self {
        Self {
            buckets: hdrhistogram::Histogram::new(SIGNIFICANT_DIGITS)
                .expect("2 significant digits is within hdrhistogram's 0..=5"),
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub(crate) fn record(&mut self, value: u64) {
        // Auto-resizing covers every u64, so this never drops a value; saturate rather
        // than panic if that ever changes.
        if self.buckets.record(value).is_err() {
            self.buckets.saturating_record(value);
        }
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.len()
    }

    /// The largest value recorded (0 when empty).
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The mean (0 when empty).
    pub(crate) fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum as f64 / n as f64,
        }
    }

    /// The value at quantile `q` (0.5 for the median, 0.999 for p99.9), 0 when empty.
    ///
    /// It is the midpoint of the bucket holding the `ceil(q × count)`-th smallest value,
    /// clamped to the exact minimum and maximum.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let bucket_value = self.buckets.value_at_quantile(q.clamp(0.0, 1.0));
        self.buckets
            .median_equivalent(bucket_value)
            .clamp(self.min, self.max)
    }

    /// The heap bytes the bucket counters take (for comparing layouts).
    #[cfg(test)]
    pub(crate) fn counter_bytes(&self) -> usize {
        self.buckets.distinct_values() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_reported_within_its_bucket_precision() {
        let sweep = (0..5000u64).chain((0..64).map(|shift| (1u64 << shift) + 12_345));
        for value in sweep.chain([u64::MAX / 3, u64::MAX - 1]) {
            let mut h = Histogram::new();
            // The extremes around `value` keep the clamp from hiding the bucket midpoint.
            for v in [0, value, u64::MAX] {
                h.record(v);
            }
            let got = h.quantile(0.5);
            assert!(got.abs_diff(value) <= value / 256 + 1, "{value}: got {got}");
        }
    }

    /// Was the type's doc example while the bench was in the library (the binary's doc
    /// examples do not run).
    #[test]
    fn latencies_of_one_to_a_thousand_micros() {
        let mut latency = Histogram::new();
        for micros in 1..=1000u64 {
            latency.record(micros * 1000); // nanoseconds
        }
        let p99 = latency.quantile(0.99);
        assert!(p99.abs_diff(990_000) <= 990_000 / 256);
        assert_eq!((latency.count(), latency.max()), (1000, 1_000_000));
    }

    #[test]
    fn counters_stay_small_for_latencies() {
        let mut h = Histogram::new();
        h.record(1_000_000_000); // one second, in nanoseconds
        assert!(
            h.counter_bytes() <= 32 * 1024,
            "{} bytes",
            h.counter_bytes()
        );
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
    fn empty() {
        let a = Histogram::new();
        assert_eq!((a.quantile(0.99), a.mean(), a.max()), (0, 0.0, 0));
    }
}
