//! Catch-up error bookkeeping shared by the paths that change the list:
//! selection, discard, and the stale-retry guard (R16, R16b).

use std::time::SystemTime;

use super::{validate_key, Core, List, MapShared};
use crate::clock::to_nanos;
use crate::errors_table::ErrorRun;
use crate::meta::Commit;
use crate::{Error, ErrorReason, Result, Selection};

impl MapShared {
    pub fn select_errors(&self, core: &Core, selection: &Selection) -> Result<Vec<u64>> {
        Ok(match selection {
            Selection::All => core.all_error_seqs(&self.data),
            Selection::Key(key) => {
                validate_key(key)?;
                core.key_seqs(&self.data, List::Errors, key, u64::MAX)
            }
            Selection::Seqs(seqs) => {
                let mut seqs: Vec<u64> = seqs.iter().copied().filter(|&seq| core.is_error(&self.data, seq)).collect();
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
        let bytes: u64 = ranges.iter().map(|&(lo, hi)| self.data.range_bytes(lo..=hi)).sum();
        self.commit(Commit { remove_errors: ranges.clone(), ..Commit::default() }, true)?;
        for &(lo, hi) in &ranges {
            core.error_table.remove(lo, hi);
        }
        core.errors_released(seqs.len() as u64, bytes);
        for &(lo, hi) in &ranges {
            self.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        self.drop_dead_runs(&mut core)?;
        core.check_accounting(&self.data);
        tracing::info!(map = %self.name, discarded = seqs.len(), "catch-up errors discarded");
        self.changed.notify_all();
        Ok(seqs.len() as u64)
    }

    /// Deletes the key runs whose records have all left the data log.
    pub fn drop_dead_runs(&self, core: &mut Core) -> Result<()> {
        let data = &self.data;
        // A run that reaches the queue holds queued records; only runs
        // wholly below the head (released, or catch-up errors) are counted.
        let head = core.head;
        core.keys.retain_runs(|lo, hi| hi >= head || data.range_records(lo..=hi) > 0).map_err(Error::from_index)?;
        Ok(())
    }

    /// The updates that mark every catch-up error of `key` below `newer_seq`
    /// as `Superseded` (R16b): a record of the key with `newer_seq` was just
    /// delivered. The caller commits them with that delivery.
    pub fn supersede_runs(&self, core: &Core, key: &str, newer_seq: u64, now: SystemTime) -> Vec<ErrorRun> {
        let at = to_nanos(now);
        core.key_seqs(&self.data, List::Errors, key, newer_seq)
            .into_iter()
            .filter_map(|seq| core.error_table.get(seq).map(|run| (seq, run)))
            .filter(|(_, run)| run.reason != ErrorReason::Superseded)
            .map(|(seq, run)| ErrorRun { lo: seq, hi: seq, ..run.superseded(at) })
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
