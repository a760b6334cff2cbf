//! Catch-up error bookkeeping shared by the paths that change the list:
//! selection, discard, and the stale-retry guard (R16, R16b).

use std::time::SystemTime;

use pauselog_index::KeyIndex;

use super::{validate_key, Core, MapShared};
use crate::clock::to_nanos;
use crate::errors_table::ErrorRun;
use crate::meta::Commit;
use crate::{Error, ErrorReason, Result, Selection};

/// Error records read at once by `discard_errors` to find their keys.
const DISCARD_READ_CHUNK_RECORDS: usize = 1024;

/// The `last_error` of an entry a newer delivery superseded.
const SUPERSEDED_TEXT: &str = "a newer record of this key was delivered";

impl MapShared {
    pub fn select_errors(&self, core: &Core, selection: &Selection) -> Result<Vec<u64>> {
        Ok(match selection {
            Selection::All => core.errors.seqs_in(0..=u64::MAX, usize::MAX),
            Selection::Key(key) => {
                validate_key(key)?;
                core.errors.key_seqs(key)
            }
            Selection::Seqs(seqs) => {
                let mut seqs: Vec<u64> = seqs.iter().copied().filter(|&seq| core.errors.contains(seq)).collect();
                seqs.sort_unstable();
                seqs.dedup();
                seqs
            }
        })
    }

    pub(super) fn discard_errors(&self, selection: Selection) -> Result<u64> {
        let mut core = self.lock()?;
        let seqs = self.select_errors(&core, &selection)?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let ranges = to_ranges(&seqs);
        // Found before the commit: reading can fail, and then nothing changed.
        let keys = if selection == Selection::All { Vec::new() } else { self.keys_of(&seqs)? };
        let bytes: u64 = ranges.iter().map(|&(lo, hi)| self.data.range_bytes(lo..=hi)).sum();
        self.commit(Commit { remove_errors: ranges.clone(), ..Commit::default() }, true)?;
        if selection == Selection::All {
            core.errors = KeyIndex::new();
        } else {
            for (seq, key) in seqs.iter().zip(&keys) {
                if let Some(key) = key {
                    core.errors.remove(key, *seq);
                }
            }
        }
        for &(lo, hi) in &ranges {
            core.error_table.remove(lo, hi);
        }
        core.errors_released(bytes);
        for &(lo, hi) in &ranges {
            self.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        core.check_accounting(&self.data);
        tracing::info!(map = %self.name, discarded = seqs.len(), "catch-up errors discarded");
        self.changed.notify_all();
        Ok(seqs.len() as u64)
    }

    /// The key of each record of `seqs`, read in chunks: a key can hold many
    /// errors, and a chunk holds its records in memory while read.
    fn keys_of(&self, seqs: &[u64]) -> Result<Vec<Option<String>>> {
        let mut keys = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(DISCARD_READ_CHUNK_RECORDS) {
            keys.extend(crate::views::read_many(&self.data, chunk)?.into_iter().map(|r| r.map(|r| r.key)));
        }
        Ok(keys)
    }

    /// The updates that mark every catch-up error of `key` below `newer_seq`
    /// as `Superseded` (R16b): a record of the key with `newer_seq` was just
    /// delivered. The caller commits them with that delivery.
    pub fn supersede_runs(&self, core: &Core, key: &str, newer_seq: u64, now: SystemTime) -> Vec<ErrorRun> {
        let at = to_nanos(now);
        core.errors
            .key_seqs(key)
            .into_iter()
            .take_while(|&seq| seq < newer_seq)
            .filter_map(|seq| core.error_table.get(seq).map(|run| (seq, run)))
            .filter(|(_, run)| run.reason != ErrorReason::Superseded)
            .map(|(seq, run)| ErrorRun {
                lo: seq,
                hi: seq,
                reason: ErrorReason::Superseded,
                last_error: Some(SUPERSEDED_TEXT.into()),
                attempts: run.attempts,
                first_failed_nanos: run.first_failed_nanos,
                last_failed_nanos: at,
            })
            .collect()
    }

    /// Commits [`MapShared::supersede_runs`] at once (a live delivery).
    pub(super) fn supersede_locked(&self, core: &mut Core, key: &str, newer_seq: u64, now: SystemTime) -> Result<()> {
        let updates = self.supersede_runs(core, key, newer_seq, now);
        if updates.is_empty() {
            return Ok(());
        }
        self.commit(Commit { update_errors: updates.clone(), ..Commit::default() }, true)?;
        for run in updates {
            core.error_table.add(run);
        }
        Ok(())
    }
}

/// Consecutive seqs merged into inclusive ranges.
pub(crate) fn to_ranges(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &seq in seqs {
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == seq => last.1 = seq,
            _ => ranges.push((seq, seq)),
        }
    }
    ranges
}
