//! Retrying catch-up errors as a tracked background job (R16, R16a, R16b,
//! R22).
//!
//! The job thread reads the selected records in seq order, a chunk at a
//! time, and hands each to its key's lane; each lane delivers its records
//! in seq order, in batches of distinct keys, one call in flight. Per key,
//! a record is never attempted after an earlier one of the same key failed
//! in this job. A key is delivered by one path at a time: a retry waits
//! while a live, pass-through or other retry delivery of the key is in
//! flight, and marks the key busy while its own is. An entry whose key has
//! had a newer record delivered since is `Superseded` and skipped unless
//! the retry is forced; a success supersedes the key's older entries in
//! the same commit.

use std::collections::{HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::clock::to_nanos;
use crate::errors_table::ErrorRun;
use crate::map::{key_hash, lane_of, Core, List, MapShared};
use crate::meta::{Commit, StoredState};
use crate::{DeliveryError, Error, ErrorReason, KeyOrdering, QueuedRecord, Result, Selection};

/// Progress of a [`RetryJob`]. Non-exhaustive: the engine builds it and
/// may report more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
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
        let core = map.lock()?;
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

/// Records read at once from the data log by the job thread.
const READ_CHUNK_RECORDS: usize = 1024;
/// While every record a lane holds waits for a key busy elsewhere: how
/// long to wait for a change before looking again.
const BUSY_WAIT: Duration = Duration::from_millis(5);

fn run(map: &Arc<MapShared>, seqs: Vec<u64>, forced: bool, job: &Arc<RetryShared>) {
    let _span = tracing::info_span!("retry", map = %map.name, records = seqs.len(), forced).entered();
    let lanes = map.config.lanes;
    if lanes == 1 {
        let mut lane = Lane::new(map, forced, job);
        read_into(map, &seqs, job, |_, record| {
            lane.pending.push_back(record);
            if lane.pending.len() >= lane.batch_records() {
                lane.deliver_some();
            }
            true
        });
        lane.finish();
    } else {
        let batch = map.config.replay_batch_records.max(1);
        let mut senders = Vec::with_capacity(lanes);
        let mut threads = Vec::with_capacity(lanes);
        for index in 0..lanes {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<QueuedRecord>(batch * 2);
            let (lane_map, lane_job) = (map.clone(), job.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("pauselog-retry-{}-{index}", map.name))
                .spawn(move || Lane::new(&lane_map, forced, &lane_job).run(receiver));
            match spawned {
                Ok(thread) => {
                    senders.push(sender);
                    threads.push(thread);
                }
                Err(error) => {
                    tracing::error!(map = %map.name, %error, "retry lane could not start");
                    job.update(|p| p.cancelled = true);
                    break;
                }
            }
        }
        if senders.len() == lanes {
            read_into(map, &seqs, job, |lane, record| senders[lane].send(record).is_ok());
        }
        drop(senders);
        for thread in threads {
            let _ = thread.join();
        }
    }
    job.update(|p| p.done = true);
}

/// Reads the records of `seqs` in chunks and hands each to `to_lane(lane,
/// record)` (false stops the reading). Entries gone meanwhile count as
/// skipped.
fn read_into(map: &MapShared, seqs: &[u64], job: &RetryShared, mut to_lane: impl FnMut(usize, QueuedRecord) -> bool) {
    for chunk in seqs.chunks(READ_CHUNK_RECORDS) {
        if job.cancel.load(Ordering::Acquire) || map.closed.load(Ordering::Acquire) {
            job.update(|p| p.cancelled = true);
            return;
        }
        let records = match crate::views::read_many(&map.data, chunk) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(map = %map.name, %error, "retry could not read catch-up errors");
                job.update(|p| p.failed += chunk.len() as u64);
                continue;
            }
        };
        for record in records {
            let Some(record) = record else {
                job.update(|p| p.skipped += 1);
                continue;
            };
            let lane = lane_of(key_hash(&record.key), map.config.lanes);
            if !to_lane(lane, record) {
                return;
            }
        }
    }
}

/// One lane of a retry job.
struct Lane<'a> {
    map: &'a MapShared,
    forced: bool,
    job: &'a RetryShared,
    pending: VecDeque<QueuedRecord>,
    /// Keys with a failure in this job: their later records are not tried.
    failed_keys: HashSet<String>,
}

/// What a lane decided for one record of a batch, under the map's lock.
enum Decision {
    Deliver(ErrorRun),
    Skip,
    /// Held back behind an earlier failure of its key in this job.
    Fail,
    /// Its key is busy elsewhere: try it in a later batch.
    Wait,
}

impl<'a> Lane<'a> {
    fn new(map: &'a MapShared, forced: bool, job: &'a RetryShared) -> Self {
        Lane { map, forced, job, pending: VecDeque::new(), failed_keys: HashSet::new() }
    }

    fn batch_records(&self) -> usize {
        self.map.config.replay_batch_records.max(1)
    }

    fn stopped(&self) -> bool {
        self.job.cancel.load(Ordering::Acquire) || self.map.closed.load(Ordering::Acquire)
    }

    /// Lane thread: takes records as they come, delivers them in batches.
    fn run(mut self, receiver: std::sync::mpsc::Receiver<QueuedRecord>) {
        loop {
            if self.pending.is_empty() {
                match receiver.recv() {
                    Ok(record) => self.pending.push_back(record),
                    Err(_) => return self.finish(),
                }
            }
            while self.pending.len() < self.batch_records() {
                match receiver.try_recv() {
                    Ok(record) => self.pending.push_back(record),
                    Err(_) => break,
                }
            }
            if self.stopped() {
                self.job.update(|p| p.cancelled = true);
                return;
            }
            self.deliver_some();
        }
    }

    /// Delivers what is pending, then stops.
    fn finish(&mut self) {
        while !self.pending.is_empty() {
            if self.stopped() {
                self.job.update(|p| p.cancelled = true);
                return;
            }
            self.deliver_some();
        }
    }

    /// One batch: distinct keys from the front of `pending`, in seq order.
    fn deliver_some(&mut self) {
        let mut batch: Vec<(QueuedRecord, ErrorRun)> = Vec::new();
        let mut hashes: Vec<u64> = Vec::new();
        let mut kept: VecDeque<QueuedRecord> = VecDeque::new();
        let mut waiting: HashSet<u64> = HashSet::new();
        let outcome = self.map.lock().map(|mut core| {
            while let Some(record) = self.pending.pop_front() {
                if batch.len() >= self.batch_records() {
                    self.pending.push_front(record);
                    break;
                }
                let hash = key_hash(&record.key);
                if waiting.contains(&hash) || hashes.contains(&hash) {
                    waiting.insert(hash);
                    kept.push_back(record);
                    continue;
                }
                match self.decide(&core, &record, hash) {
                    Decision::Deliver(run) => {
                        hashes.push(hash);
                        batch.push((record, run));
                    }
                    Decision::Skip => self.job.update(|p| p.skipped += 1),
                    Decision::Fail => self.job.update(|p| p.failed += 1),
                    Decision::Wait => {
                        waiting.insert(hash);
                        kept.push_back(record);
                    }
                }
            }
            for &hash in &hashes {
                core.busy_keys.insert(hash);
            }
        });
        while let Some(record) = kept.pop_back() {
            self.pending.push_front(record);
        }
        if let Err(error) = outcome {
            tracing::warn!(map = %self.map.name, %error, "retry stopped");
            self.job.update(|p| p.failed += self.pending.len() as u64);
            self.pending.clear();
            return;
        }
        if batch.is_empty() {
            if !self.pending.is_empty() {
                self.wait_for_busy_keys();
            }
            return;
        }
        let records: Vec<QueuedRecord> = batch.iter().map(|(record, _)| record.clone()).collect();
        let results = call(self.map, &records);
        self.record_outcomes(batch, &hashes, results);
    }

    /// The decision for one record, under the map's lock.
    fn decide(&self, core: &Core, record: &QueuedRecord, hash: u64) -> Decision {
        if !core.is_error(&self.map.data, record.seq) {
            return Decision::Skip; // retried or discarded meanwhile
        }
        let Some(run) = core.error_table.get(record.seq).cloned() else { return Decision::Skip };
        if self.failed_keys.contains(&record.key) {
            return Decision::Fail;
        }
        if run.reason == ErrorReason::Superseded && !self.forced {
            return Decision::Skip;
        }
        if core.key_busy(hash) {
            return Decision::Wait;
        }
        // Under BestEffort a catch-up delivers a key's newer records even
        // while it has errors: leave the key alone until they are through
        // (their delivery then supersedes this entry).
        let catching_up = core.state == StoredState::CatchingUp;
        if catching_up
            && self.map.config.key_ordering == KeyOrdering::BestEffort
            && core.key_in(&self.map.data, List::Queue, &record.key)
        {
            return Decision::Skip;
        }
        Decision::Deliver(run)
    }

    fn wait_for_busy_keys(&self) {
        let core = self.map.lock_to_read();
        drop(self.map.changed.wait_timeout(core, BUSY_WAIT).unwrap_or_else(|p| p.into_inner()));
    }

    /// Records a batch's answers in one commit: successes leave the list
    /// (superseding their key's older entries), failures stay with their
    /// attempts and error updated.
    fn record_outcomes(
        &mut self,
        batch: Vec<(QueuedRecord, ErrorRun)>,
        hashes: &[u64],
        results: Vec<std::result::Result<(), DeliveryError>>,
    ) {
        let now = self.map.ctx.clock.now();
        let at = to_nanos(now);
        let mut core = match self.map.lock() {
            Ok(core) => core,
            Err(error) => {
                let mut core = self.map.lock_to_read();
                for hash in hashes {
                    core.busy_keys.remove(hash);
                }
                self.map.changed.notify_all();
                tracing::warn!(map = %self.map.name, %error, "retry stopped");
                self.job.update(|p| p.failed += batch.len() as u64);
                return;
            }
        };
        for hash in hashes {
            core.busy_keys.remove(hash);
        }
        let mut delivered: Vec<(QueuedRecord, u64)> = Vec::new();
        let mut updates: Vec<ErrorRun> = Vec::new();
        let mut failed = 0u64;
        for ((record, run), result) in batch.into_iter().zip(results) {
            if !core.is_error(&self.map.data, record.seq) {
                continue; // discarded while in flight
            }
            match result {
                Ok(()) => {
                    let bytes = self.map.data.record_bytes(record.seq).unwrap_or(0);
                    updates.extend(self.map.supersede_runs(&core, &record.key, record.seq, now));
                    delivered.push((record, bytes));
                }
                Err(error) => {
                    let reason = match error {
                        DeliveryError::Rejected(_) => ErrorReason::Rejected,
                        DeliveryError::Unavailable(_) => run.reason,
                    };
                    let (DeliveryError::Rejected(text) | DeliveryError::Unavailable(text)) = error;
                    updates.push(ErrorRun {
                        lo: record.seq,
                        hi: record.seq,
                        reason,
                        last_error: Some(text),
                        attempts: run.attempts.saturating_add(1),
                        first_failed_nanos: run.first_failed_nanos,
                        last_failed_nanos: at,
                    });
                    self.failed_keys.insert(record.key);
                    failed += 1;
                }
            }
        }
        let removed: Vec<u64> = delivered.iter().map(|(record, _)| record.seq).collect();
        // A success's own entry is removed, not superseded.
        updates.retain(|run| !removed.contains(&run.lo));
        let commit = Commit {
            remove_errors: crate::map::to_ranges(&removed),
            update_errors: updates.clone(),
            ..Commit::default()
        };
        // Synced, as a live delivery's supersede is: once the destination
        // has a newer record of a key, a power loss must not bring back its
        // older entries unmarked for a later retry to deliver over it (R16b).
        let committed = self
            .map
            .commit(commit, true)
            .and_then(|()| self.map.meta.flush().map_err(|e| Error::from_wal(&self.map.name, e)));
        if let Err(error) = committed {
            tracing::warn!(map = %self.map.name, %error, "retry could not record its outcomes; the entries stay");
            self.job.update(|p| p.failed += (removed.len() as u64) + failed);
            self.map.changed.notify_all();
            return;
        }
        for (record, _) in &delivered {
            core.error_table.remove(record.seq, record.seq);
        }
        if !delivered.is_empty() {
            core.errors_released(delivered.len() as u64, delivered.iter().map(|(_, bytes)| bytes).sum());
        }
        for run in updates {
            core.error_table.add(run);
        }
        for (record, _) in &delivered {
            if let Err(error) = self.map.data.release(record.seq..=record.seq) {
                tracing::warn!(map = %self.map.name, %error, "could not release a retried record");
            }
        }
        self.map.changed.notify_all();
        drop(core);
        let delivered_count = delivered.len() as u64;
        self.job.update(|p| {
            p.delivered += delivered_count;
            p.failed += failed;
        });
    }
}

/// One `deliver_batch` call; a wrong count or a panic reads as
/// `Unavailable` for every record.
fn call(map: &MapShared, records: &[QueuedRecord]) -> Vec<std::result::Result<(), DeliveryError>> {
    let destination = map.destination();
    match catch_unwind(AssertUnwindSafe(|| destination.deliver_batch(records))) {
        Ok(results) if results.len() == records.len() => results,
        Ok(results) => {
            let reason = format!("destination returned {} results for {} records", results.len(), records.len());
            vec![Err(DeliveryError::Unavailable(reason)); records.len()]
        }
        Err(_) => vec![Err(DeliveryError::Unavailable("destination panicked in deliver_batch".into())); records.len()],
    }
}
