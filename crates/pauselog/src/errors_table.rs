//! Metadata of the catch-up errors, kept as runs of consecutive seqs that
//! share it, so preserving a whole backlog is one run, not a million
//! entries (R13). The records themselves stay in the data log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ErrorReason;

/// Metadata shared by the seqs `lo..=hi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorRun {
    pub lo: u64,
    pub hi: u64,
    pub reason: ErrorReason,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub first_failed_nanos: u64,
    pub last_failed_nanos: u64,
}

/// The `last_error` of an entry a newer delivery of its key superseded (R16b).
pub const SUPERSEDED_TEXT: &str = "a newer record of this key was delivered";

impl ErrorRun {
    /// The entry a record moved from the queue by a catch-up becomes: one
    /// failed attempt unless it was held back without a call.
    pub fn moved(seq: u64, reason: ErrorReason, last_error: Option<String>, at_nanos: u64) -> Self {
        let attempts = u32::from(reason != ErrorReason::BlockedByEarlierFailure);
        ErrorRun::single(seq, reason, last_error, attempts, at_nanos)
    }

    /// This entry marked `Superseded` at `at_nanos` (R16b): a newer record
    /// of its key was delivered.
    pub fn superseded(&self, at_nanos: u64) -> Self {
        ErrorRun {
            reason: ErrorReason::Superseded,
            last_error: Some(SUPERSEDED_TEXT.into()),
            last_failed_nanos: at_nanos,
            ..self.clone()
        }
    }

    pub fn single(seq: u64, reason: ErrorReason, last_error: Option<String>, attempts: u32, at_nanos: u64) -> Self {
        ErrorRun {
            lo: seq,
            hi: seq,
            reason,
            last_error,
            attempts,
            first_failed_nanos: at_nanos,
            last_failed_nanos: at_nanos,
        }
    }

    fn with_bounds(&self, lo: u64, hi: u64) -> Self {
        ErrorRun { lo, hi, ..self.clone() }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct ErrorTable {
    runs: BTreeMap<u64, ErrorRun>,
}

impl ErrorTable {
    pub fn get(&self, seq: u64) -> Option<&ErrorRun> {
        self.runs.range(..=seq).next_back().map(|(_, run)| run).filter(|run| run.hi >= seq)
    }

    pub fn add(&mut self, run: ErrorRun) {
        debug_assert!(run.lo <= run.hi);
        self.remove(run.lo, run.hi);
        self.runs.insert(run.lo, run);
    }

    /// Forgets the metadata of `lo..=hi`, splitting runs that straddle it.
    pub fn remove(&mut self, lo: u64, hi: u64) {
        let overlapping: Vec<u64> =
            self.runs.range(..=hi).rev().take_while(|(_, run)| run.hi >= lo).map(|(&start, _)| start).collect();
        for start in overlapping {
            let run = self.runs.remove(&start).expect("collected from the map");
            if run.lo < lo {
                self.runs.insert(run.lo, run.with_bounds(run.lo, lo - 1));
            }
            if run.hi > hi {
                self.runs.insert(hi + 1, run.with_bounds(hi + 1, run.hi));
            }
        }
    }

    pub fn runs(&self) -> impl Iterator<Item = &ErrorRun> {
        self.runs.values()
    }

    pub fn clear(&mut self) {
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_lookup() {
        let mut table = ErrorTable::default();
        table.add(ErrorRun::single(1, ErrorReason::Preserved, None, 0, 0).with_bounds(1, 100));
        table.remove(50, 50);
        assert!(table.get(50).is_none());
        assert_eq!(table.get(49).map(|r| (r.lo, r.hi)), Some((1, 49)));
        assert_eq!(table.get(51).map(|r| (r.lo, r.hi)), Some((51, 100)));
        table.add(ErrorRun::single(60, ErrorReason::Rejected, Some("bad".into()), 1, 5));
        assert_eq!(table.get(60).map(|r| r.reason), Some(ErrorReason::Rejected));
        assert_eq!(table.get(61).map(|r| (r.lo, r.reason)), Some((61, ErrorReason::Preserved)));
        assert_eq!(table.runs().count(), 4);
    }
}
