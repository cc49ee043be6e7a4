//! Latency histograms a partition keeps about its own durability: how long
//! each group-commit `fdatasync` took, and how long each durable append
//! waited between its `write(2)` and its ack. Benchmarks read them (through
//! [`Log::usage`](super::Log::usage)) to split an end-to-end ack latency
//! into what the disk took, what the group commit queued, and what the
//! request path around the store added.
//!
//! Recording is lock-free (one relaxed atomic add per sample) and the
//! memory is fixed (about 1 KiB per histogram). Buckets are logarithmic
//! with four steps per power of two, so a quantile is within 12.5 % of the
//! true value. This is not a metrics system: no time windows, no export
//! format; the counts run from the partition's open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Steps per power of two.
const SUB: u32 = 4;
/// Octaves covered (microseconds up to 2^31, about 36 minutes).
const OCTAVES: u32 = 30;
/// Buckets: the first `SUB` are exact (0..SUB µs), then `SUB` per octave.
const BUCKETS: usize = (SUB + (OCTAVES * SUB)) as usize;

/// A fixed-size, lock-free histogram of durations, in microseconds.
pub(crate) struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("summary", &self.summary())
            .finish()
    }
}

/// The bucket of `us` microseconds.
fn bucket(us: u64) -> usize {
    if us < u64::from(SUB) {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros(); // >= log2(SUB)
    let shift = octave - SUB.trailing_zeros();
    let step = (us >> shift) & u64::from(SUB - 1);
    let index = SUB + (octave - SUB.trailing_zeros()) * SUB + step as u32;
    (index as usize).min(BUCKETS - 1)
}

/// The midpoint of bucket `index`, in microseconds.
fn midpoint(index: usize) -> u64 {
    let index = index as u32;
    if index < SUB {
        return u64::from(index);
    }
    let octave = (index - SUB) / SUB + SUB.trailing_zeros();
    let step = u64::from((index - SUB) % SUB);
    let shift = octave - SUB.trailing_zeros();
    let low = (u64::from(SUB) + step) << shift;
    low + (1u64 << shift) / 2
}

impl LatencyHistogram {
    pub(crate) fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }

    /// Counts one sample.
    pub(crate) fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Count, median, 99th percentile and maximum of what was recorded.
    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        let quantile = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(midpoint(index).min(max_us));
                }
            }
            Duration::from_micros(max_us)
        };
        LatencySummary {
            count,
            p50: quantile(0.50),
            p99: quantile(0.99),
            max: Duration::from_micros(max_us),
        }
    }
}

/// What a latency histogram holds, summarised ([`Usage`](super::Usage)).
/// Quantiles are within 12.5 % of the true value; all zero when nothing was
/// recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencySummary {
    /// Samples recorded since the partition was opened.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_midpoints_fall_inside_their_bucket() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b >= last, "bucket({us}) = {b} < {last}");
            last = b;
        }
        for index in 0..BUCKETS - 1 {
            assert_eq!(bucket(midpoint(index)), index, "midpoint of {index}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_an_eighth_of_the_samples() {
        let h = LatencyHistogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max, Duration::from_micros(1000));
        let near = |got: Duration, want: u64| {
            let got = got.as_micros() as f64;
            (got - want as f64).abs() <= want as f64 / 8.0
        };
        assert!(near(s.p50, 500), "p50 {:?}", s.p50);
        assert!(near(s.p99, 990), "p99 {:?}", s.p99);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zero() {
        assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    }
}
