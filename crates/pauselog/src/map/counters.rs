//! Counters of submits by outcome, for monitoring (the admin API's
//! `/metrics`). Counted once per `TableMap::submit` call with one relaxed
//! atomic add: no lock, no allocation on the submit path.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result, SubmitCounts, Submitted};

/// One counter per outcome, on cache lines of their own: every submitter
/// adds to one of them, and the map's hot flags (`closed`,
/// `queueing_hint`) must not share a line with those writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct SubmitCounters {
    live: AtomicU64,
    queued: AtomicU64,
    blocked: AtomicU64,
    rejected: AtomicU64,
    unavailable: AtomicU64,
    invalid: AtomicU64,
    failed: AtomicU64,
}

impl SubmitCounters {
    /// Counts the outcome of one submit.
    pub fn count(&self, outcome: &Result<Submitted>) {
        let counter = match outcome {
            Ok(Submitted::Live) => &self.live,
            Ok(Submitted::Queued { .. }) => &self.queued,
            Err(Error::Blocked { .. }) => &self.blocked,
            Err(Error::Rejected { .. }) => &self.rejected,
            Err(Error::Unavailable { .. }) => &self.unavailable,
            Err(Error::InvalidInput(_)) => &self.invalid,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> SubmitCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SubmitCounts {
            live: load(&self.live),
            queued: load(&self.queued),
            blocked: load(&self.blocked),
            rejected: load(&self.rejected),
            unavailable: load(&self.unavailable),
            invalid: load(&self.invalid),
            failed: load(&self.failed),
        }
    }
}
