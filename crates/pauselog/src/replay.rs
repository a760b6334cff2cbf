//! The catch-up worker: feeds the queue to the destination in seq order
//! while new submits go to the tail, then switches the map to Running (R3,
//! R15, R18).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pauselog_wal::SyncPolicy;

use crate::clock::to_nanos;
use crate::codec::{self, Commit, StoredState};
use crate::errors_table::ErrorRun;
use crate::map::{to_ranges, MapShared};
use crate::{DeliveryError, Error, ErrorReason, KeyOrdering, QueuedRecord, Result};

/// The bookkeeping of one record of a batch (its payload goes to the
/// destination in a separate vector, so it is copied once).
struct Planned {
    seq: u64,
    key: String,
    frame_bytes: u64,
    /// Strict ordering: its key already has a catch-up error.
    blocked: bool,
}

/// The replay's reader, kept across batches while the head follows it.
struct ReplayCursor {
    reader: pauselog_wal::Reader,
    /// An entry read but not taken: past the bound, or a repeated key.
    pending: Option<pauselog_wal::Entry>,
    /// The head this cursor continues from.
    head: u64,
}

/// What happened to a batch, in seq order.
#[derive(Default)]
struct Outcome {
    /// Seqs below this are done (delivered or moved to the errors).
    new_head: u64,
    delivered: Vec<u64>,
    /// seq, key, reason, error text, frame bytes.
    moved: Vec<(u64, String, ErrorReason, Option<String>, u64)>,
    passed_bytes: u64,
    passed_records: u64,
    /// The destination is unavailable (or the errors list is full): stall.
    stall: Option<String>,
}

pub(crate) fn run(map: Arc<MapShared>, generation: u64) {
    let mut backoff = map.config.backoff_min;
    let mut cursor: Option<ReplayCursor> = None;
    loop {
        let (head, tail) = {
            let mut core = map.lock();
            if core.generation != generation
                || core.state != StoredState::CatchingUp
                || map.closed.load(Ordering::Acquire)
            {
                return;
            }
            if core.head > core.tail {
                finish(&map, &mut core);
                return;
            }
            // Under Always the replay never delivers a record before it is
            // durable, so the head can never pass a record a crash may lose.
            let bound = match map.ctx.sync {
                SyncPolicy::Always => core.tail.min(map.data.stats().durable_seq),
                _ => core.tail,
            };
            if bound < core.head {
                // The tail's group fsync is still running: wait for it.
                drop(map.changed.wait_timeout(core, Duration::from_millis(1)).unwrap_or_else(|p| p.into_inner()));
                continue;
            }
            core.delivering = true;
            (core.head, bound)
        };
        if cursor.as_ref().is_none_or(|c| c.head != head) {
            cursor = Some(ReplayCursor { reader: map.data.reader(head), pending: None, head });
        }
        let planned = plan(&map, cursor.as_mut().expect("set above"), tail);
        let result = planned.map(|(batch, records)| deliver(&map, head, tail, batch, records));
        let outcome_head = result.as_ref().ok().map(|o| o.new_head);
        let stall = {
            let mut core = map.lock();
            core.delivering = false;
            let stall = match result.and_then(|outcome| commit(&map, &mut core, outcome)) {
                Ok(stall) => stall,
                Err(error) => Some(error.to_string()),
            };
            if let Some(reason) = &stall {
                tracing::warn!(map = %map.name, %reason, backoff_ms = backoff.as_millis() as u64, "replay stalled");
            }
            core.last_error = stall.clone();
            map.changed.notify_all();
            // The cursor is kept only if the head landed where it stopped
            // reading; after a stall or an error it is rebuilt from the head.
            match (&mut cursor, outcome_head) {
                (Some(c), Some(new_head)) if stall.is_none() && core.head == new_head => c.head = new_head,
                _ => cursor = None,
            }
            stall
        };
        match stall {
            None => backoff = map.config.backoff_min,
            Some(_) => {
                // Capped exponential backoff, cut short by a pause, skip or close.
                let core = map.lock();
                let _ = map
                    .changed
                    .wait_timeout_while(core, backoff, |core| {
                        core.generation == generation && !map.closed.load(Ordering::Acquire)
                    })
                    .unwrap_or_else(|p| p.into_inner());
                backoff = (backoff * 2).min(map.config.backoff_max);
            }
        }
    }
}

/// The cursor reached the tail: switch to Running under the map lock, so no
/// submit can slip between the last replayed record and the first live one.
fn finish(map: &MapShared, core: &mut crate::map::Core) {
    let commit = Commit { state: Some(StoredState::Running), blocked: Some(None), ..Commit::default() };
    if let Err(error) = map.commit(commit, true) {
        core.last_error = Some(error.to_string());
        tracing::error!(map = %map.name, %error, "could not record the switch to Running; replay stopped");
        return;
    }
    debug_assert_eq!(core.queue_bytes, 0, "a drained queue holds no bytes");
    let head = core.head;
    map.go_live(core, head);
    tracing::info!(map = %map.name, replayed = core.replayed, "catch-up complete: live");
}

/// Reads the next batch up to `bound`: at most `replay_batch_records`, and
/// under Strict ordering no two records of one key (a rejection must be able
/// to hold back the later records of its key). Returns the bookkeeping and,
/// for the records to send, the records themselves.
fn plan(map: &MapShared, cursor: &mut ReplayCursor, bound: u64) -> Result<(Vec<Planned>, Vec<QueuedRecord>)> {
    let strict = map.config.key_ordering == KeyOrdering::Strict;
    let batch_max = map.config.replay_batch_records.max(1);
    let mut keys = HashSet::new();
    let (mut batch, mut records) = (Vec::new(), Vec::new());
    while batch.len() < batch_max {
        let entry = match cursor.pending.take() {
            Some(entry) => entry,
            None => match cursor.reader.next() {
                Some(entry) => entry.map_err(|e| Error::from_wal(&map.name, e))?,
                None => break,
            },
        };
        let record = codec::decode_record(entry.seq(), entry.body()).ok_or_else(|| Error::Corrupt {
            path: map.data.dir().to_path_buf(),
            offset: 0,
            reason: format!("record seq {} does not decode", entry.seq()),
        })?;
        if entry.seq() > bound || (strict && !keys.insert(record.key.clone())) {
            cursor.pending = Some(entry);
            break;
        }
        batch.push(Planned {
            seq: record.seq,
            key: record.key.clone(),
            frame_bytes: entry.frame_bytes(),
            blocked: false,
        });
        records.push(record);
    }
    if strict {
        let core = map.lock();
        for planned in &mut batch {
            planned.blocked = core.errors.count(Some(&planned.key)) > 0;
        }
    }
    // Blocked records are not sent.
    let records = records.into_iter().zip(&batch).filter(|(_, p)| !p.blocked).map(|(r, _)| r).collect();
    Ok((batch, records))
}

fn deliver(map: &MapShared, head: u64, bound: u64, batch: Vec<Planned>, records: Vec<QueuedRecord>) -> Outcome {
    if batch.is_empty() {
        // Nothing live left in head..=bound (records lost to a crash under
        // SyncPolicy::Never): the cursor jumps past them.
        return Outcome { new_head: bound + 1, ..Outcome::default() };
    }
    let mut results = if records.is_empty() { Vec::new() } else { map.destination().deliver_batch(&records) };
    if results.len() != records.len() {
        let reason = format!("destination returned {} results for {} records", results.len(), records.len());
        results = vec![Err(DeliveryError::Unavailable(reason)); records.len()];
    }
    let mut results = results.into_iter();
    let mut outcome = Outcome { new_head: head, ..Outcome::default() };
    for planned in batch {
        let answer = if planned.blocked { None } else { results.next() };
        match answer {
            None => outcome.moved.push((
                planned.seq,
                planned.key,
                ErrorReason::BlockedByEarlierFailure,
                None,
                planned.frame_bytes,
            )),
            Some(Ok(())) => outcome.delivered.push(planned.seq),
            Some(Err(DeliveryError::Rejected(reason))) => {
                outcome.moved.push((planned.seq, planned.key, ErrorReason::Rejected, Some(reason), planned.frame_bytes))
            }
            Some(Err(DeliveryError::Unavailable(reason))) => {
                outcome.stall = Some(format!("destination unavailable: {reason}"));
                break;
            }
        }
        outcome.new_head = planned.seq + 1;
        outcome.passed_bytes += planned.frame_bytes;
        outcome.passed_records += 1;
    }
    outcome
}

/// Records a batch's result: one meta commit (the new head and the records
/// moved to the errors), then the in-memory indexes, then the release of the
/// delivered records. Returns the stall reason, if any.
fn commit(map: &MapShared, core: &mut crate::map::Core, mut outcome: Outcome) -> Result<Option<String>> {
    // The errors list has a byte cap: stop before a move that would pass it.
    let mut error_bytes = core.error_bytes;
    if let Some(index) = outcome.moved.iter().position(|(_, _, _, _, bytes)| {
        error_bytes += bytes;
        error_bytes > map.config.max_error_bytes
    }) {
        let stop_seq = outcome.moved[index].0;
        outcome.moved.truncate(index);
        outcome.delivered.retain(|&seq| seq < stop_seq);
        outcome.new_head = stop_seq;
        outcome.stall = Some(format!(
            "catch-up errors are full ({} of {} bytes): retry or discard errors to continue",
            core.error_bytes, map.config.max_error_bytes
        ));
        // Recount what passed below the stop.
        outcome.passed_records = (outcome.delivered.len() + outcome.moved.len()) as u64;
        outcome.passed_bytes = 0; // recomputed below from the log
    }
    if outcome.new_head <= core.head {
        return Ok(outcome.stall);
    }
    let at = to_nanos(map.ctx.clock.now());
    let add_errors: Vec<ErrorRun> = outcome
        .moved
        .iter()
        .map(|(seq, _, reason, error, _)| {
            let attempts = u32::from(*reason == ErrorReason::Rejected);
            ErrorRun::single(*seq, *reason, error.clone(), attempts, at)
        })
        .collect();
    let passed_bytes = if outcome.passed_bytes == 0 && outcome.passed_records > 0 {
        map.data.range_bytes(core.head..=outcome.new_head - 1)
    } else {
        outcome.passed_bytes
    };
    // Not synced: losing this commit to a crash only redelivers the batch (R18).
    map.commit(Commit { head: Some(outcome.new_head), add_errors: add_errors.clone(), ..Commit::default() }, false)?;
    map.meta.flush().map_err(|e| Error::from_wal(&map.name, e))?;
    for ((seq, key, _, _, bytes), run) in outcome.moved.iter().zip(add_errors) {
        core.queue.remove(key, *seq);
        core.errors.insert(key, *seq).map_err(Error::from_index)?;
        core.error_table.add(run);
        core.error_bytes += bytes;
    }
    core.queue.release_through(outcome.new_head - 1);
    core.queue_bytes = core.queue_bytes.saturating_sub(passed_bytes);
    core.head = outcome.new_head;
    core.replayed += outcome.passed_records;
    core.drain.record(outcome.passed_records);
    for (lo, hi) in to_ranges(&outcome.delivered) {
        map.data.release(lo..=hi).map_err(|e| Error::from_wal(&map.name, e))?;
    }
    map.compact_meta_if_needed(core)?;
    Ok(outcome.stall)
}
