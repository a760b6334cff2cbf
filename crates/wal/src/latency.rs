//! How long the fsyncs that make appends durable take: a fixed-bucket
//! histogram of relaxed atomic counters, for monitoring (the admin API's
//! `/metrics`). Recording costs one duration read and two atomic adds per
//! fsync, never a lock or an allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the histogram's buckets, in microseconds; a last bucket
/// counts the slower ones. From about half of this machine's fastest
/// preallocated `fdatasync` (70 µs) to a stalled device.
pub const SYNC_LATENCY_BOUNDS_US: [u64; 14] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

/// Buckets, the overflow bucket included.
const BUCKETS: usize = SYNC_LATENCY_BOUNDS_US.len() + 1;

/// The counters, shared by every thread that syncs the log.
#[derive(Debug, Default)]
pub(crate) struct LatencyCounters {
    /// Fsyncs per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    /// Sum of every recorded duration, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl LatencyCounters {
    /// Counts one fsync that took `took`.
    pub fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = SYNC_LATENCY_BOUNDS_US.iter().position(|&bound| micros <= bound).unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The counts now. Taken without a lock, so a snapshot taken during an
    /// fsync may hold its bucket count and not yet its duration.
    pub fn snapshot(&self) -> SyncLatency {
        SyncLatency {
            counts: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// The durations of the fsyncs that made appends durable since the log was
/// opened (the ones [`WalStats::sync_count`](crate::WalStats::sync_count)
/// counts), by bucket.
///
/// ```
/// use pauselog_wal::{SyncLatency, SYNC_LATENCY_BOUNDS_US};
/// let latency = SyncLatency::default();
/// assert_eq!(latency.count(), 0);
/// assert_eq!(latency.counts.len(), SYNC_LATENCY_BOUNDS_US.len() + 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncLatency {
    /// Fsyncs per bucket: `counts[i]` took at most
    /// `SYNC_LATENCY_BOUNDS_US[i]` µs and more than the bound before it;
    /// the last entry counts those above the last bound.
    pub counts: [u64; BUCKETS],
    /// Total time spent in them.
    pub sum: Duration,
}

impl SyncLatency {
    /// Fsyncs counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_the_first_bucket_that_holds_it() {
        let counters = LatencyCounters::default();
        for micros in [1, 50, 51, 999, 1_000_000, 1_000_001, 60_000_000] {
            counters.record(Duration::from_micros(micros));
        }
        let latency = counters.snapshot();
        assert_eq!(latency.counts[0], 2, "1 and 50 µs");
        assert_eq!(latency.counts[1], 1, "51 µs");
        assert_eq!(latency.counts[4], 1, "999 µs");
        assert_eq!(latency.counts[13], 1, "exactly 1 s");
        assert_eq!(latency.counts[14], 2, "past the last bound");
        assert_eq!(latency.count(), 7);
        assert_eq!(latency.sum, Duration::from_micros(1 + 50 + 51 + 999 + 1_000_000 + 1_000_001 + 60_000_000));
    }
}
