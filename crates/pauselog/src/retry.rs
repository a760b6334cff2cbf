//! Retrying catch-up errors as a tracked background job (R16, R16a, R16b).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::clock::to_nanos;
use crate::codec::Commit;
use crate::errors_table::ErrorRun;
use crate::map::MapShared;
use crate::{DeliveryError, Error, ErrorReason, Result, Selection};

/// Progress of a [`RetryJob`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryProgress {
    /// Entries selected when the job started.
    pub total: u64,
    /// Delivered and removed from the errors list.
    pub delivered: u64,
    /// Failed again (kept, attempts and error updated), or held back behind
    /// an earlier failure of the same key in this job.
    pub failed: u64,
    /// Not attempted: `Superseded` (without force), or gone meanwhile.
    pub skipped: u64,
    /// The job has finished (or was cancelled).
    pub done: bool,
    /// The job was cancelled before it finished.
    pub cancelled: bool,
}

/// A retry running in the background. Dropping the handle does not stop it.
#[derive(Debug, Clone)]
pub struct RetryJob {
    shared: Arc<RetryShared>,
}

#[derive(Debug, Default)]
pub(crate) struct RetryShared {
    progress: Mutex<RetryProgress>,
    changed: Condvar,
    cancel: AtomicBool,
}

impl RetryShared {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    fn update(&self, change: impl FnOnce(&mut RetryProgress)) {
        change(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()));
        self.changed.notify_all();
    }
}

impl RetryJob {
    /// Progress now.
    pub fn progress(&self) -> RetryProgress {
        *self.shared.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the job is done, or `timeout` (real time) passes.
    pub fn wait(&self, timeout: Duration) -> Result<RetryProgress> {
        let deadline = Instant::now() + timeout;
        let mut progress = self.shared.progress.lock().unwrap_or_else(|p| p.into_inner());
        while !progress.done {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            progress = self.shared.changed.wait_timeout(progress, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
        Ok(*progress)
    }

    /// Asks the job to stop after the record in flight.
    pub fn cancel(&self) {
        self.shared.cancel();
    }
}

pub(crate) fn start(map: &Arc<MapShared>, selection: Selection, forced: bool) -> Result<RetryJob> {
    if map.closed.load(Ordering::Acquire) {
        return Err(Error::Closed);
    }
    let seqs = {
        let core = map.lock();
        map.select_errors(&core, &selection)?
    };
    let shared = Arc::new(RetryShared::default());
    shared.update(|p| p.total = seqs.len() as u64);
    let (job, worker_map) = (shared.clone(), map.clone());
    let handle = std::thread::Builder::new()
        .name(format!("pauselog-retry-{}", map.name))
        .spawn(move || run(&worker_map, seqs, forced, &job))
        .map_err(|e| Error::Io { path: map.data.dir().to_path_buf(), source: e })?;
    let mut jobs = map.jobs.lock().unwrap_or_else(|p| p.into_inner());
    jobs.retain(|(_, handle)| !handle.is_finished());
    jobs.push((shared.clone(), handle));
    tracing::info!(map = %map.name, ?selection, forced, "retry of catch-up errors started");
    Ok(RetryJob { shared })
}

fn run(map: &MapShared, seqs: Vec<u64>, forced: bool, job: &RetryShared) {
    let _span = tracing::info_span!("retry", map = %map.name, records = seqs.len(), forced).entered();
    let mut failed_keys: HashSet<String> = HashSet::new();
    for seq in seqs {
        if job.cancel.load(Ordering::Acquire) || map.closed.load(Ordering::Acquire) {
            job.update(|p| p.cancelled = true);
            break;
        }
        match retry_one(map, seq, forced, &mut failed_keys) {
            Ok(Attempt::Delivered) => job.update(|p| p.delivered += 1),
            Ok(Attempt::Failed) => job.update(|p| p.failed += 1),
            Ok(Attempt::Skipped) => job.update(|p| p.skipped += 1),
            Err(error) => {
                tracing::warn!(map = %map.name, seq, %error, "retry of a catch-up error failed");
                job.update(|p| p.failed += 1);
            }
        }
    }
    job.update(|p| p.done = true);
}

enum Attempt {
    Delivered,
    Failed,
    Skipped,
}

fn retry_one(map: &MapShared, seq: u64, forced: bool, failed_keys: &mut HashSet<String>) -> Result<Attempt> {
    let Some(run) = ({
        let core = map.lock();
        core.errors.contains(seq).then(|| core.error_table.get(seq).cloned()).flatten()
    }) else {
        return Ok(Attempt::Skipped);
    };
    let Some(record) = map.read_record(seq)? else { return Ok(Attempt::Skipped) };
    if failed_keys.contains(&record.key) {
        // Per-key order within a retry: never apply a later record of a key
        // whose earlier record just failed.
        return Ok(Attempt::Failed);
    }
    if run.reason == ErrorReason::Superseded && !forced {
        return Ok(Attempt::Skipped);
    }
    let outcome = map.destination().deliver(&record);
    let now = to_nanos(map.ctx.clock.now());
    let mut core = map.lock();
    if !core.errors.contains(seq) {
        return Ok(Attempt::Skipped); // discarded while in flight
    }
    match outcome {
        Ok(()) => {
            map.commit(Commit { remove_errors: vec![(seq, seq)], ..Commit::default() }, false)?;
            map.meta.flush().map_err(|e| Error::from_wal(&map.name, e))?;
            let bytes = map.data.record_bytes(seq).unwrap_or(0);
            core.errors.remove(&record.key, seq);
            core.error_table.remove(seq, seq);
            core.error_bytes = core.error_bytes.saturating_sub(bytes);
            map.data.release(seq..=seq).map_err(|e| Error::from_wal(&map.name, e))?;
            map.changed.notify_all();
            Ok(Attempt::Delivered)
        }
        Err(error) => {
            let reason = match error {
                DeliveryError::Rejected(_) => ErrorReason::Rejected,
                DeliveryError::Unavailable(_) => run.reason,
            };
            let text = match error {
                DeliveryError::Rejected(text) | DeliveryError::Unavailable(text) => text,
            };
            let update = ErrorRun {
                lo: seq,
                hi: seq,
                reason,
                last_error: Some(text),
                attempts: run.attempts.saturating_add(1),
                first_failed_nanos: run.first_failed_nanos,
                last_failed_nanos: now,
            };
            map.commit(Commit { update_errors: vec![update.clone()], ..Commit::default() }, false)?;
            map.meta.flush().map_err(|e| Error::from_wal(&map.name, e))?;
            core.error_table.add(update);
            failed_keys.insert(record.key);
            map.changed.notify_all();
            Ok(Attempt::Failed)
        }
    }
}
