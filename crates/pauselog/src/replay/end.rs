//! The ends of a batch and of a catch-up: committing the finished prefix of
//! the window as the new head (R3, R15, R16b, R18), settling delivered
//! records, the switch to Running, and stopping (a pause or skip while
//! records are in flight or delivered above the head).

use std::time::Instant;

use pauselog_wal::SyncPolicy;

use super::{Outcome, Replay, CLOSING_TAIL_WAIT_MAX, CLOSING_TAIL_WAIT_MIN, PROGRESS_NOTIFY_INTERVAL, SETTLE_RECORDS};
use crate::clock::to_nanos;
use crate::errors_table::ErrorRun;
use crate::map::{Core, MapShared, StoppedOutcome};
use crate::meta::{Commit, StoredState};
use crate::{Error, ErrorReason, Result};

impl Replay<'_> {
    pub(super) fn commit_or_stall(&mut self) {
        if let Err(error) = self.commit() {
            self.stall_for(format!("recording the replay's progress failed: {error}"));
        }
    }

    /// Commits the finished prefix of the window: one meta event with the
    /// new head, the records moved to the errors and the errors a delivery
    /// superseded; then the same in memory (R3, R15, R16b, R18).
    pub(super) fn commit(&mut self) -> Result<()> {
        let mut core = self.map.lock()?;
        let (mut count, mut passed_bytes, mut error_bytes) = (0usize, 0u64, core.error_bytes());
        let mut errors_full = None;
        for slot in &self.window {
            match &slot.outcome {
                Outcome::Waiting => break,
                Outcome::Moved(_) if error_bytes + slot.frame_bytes > self.map.config.max_error_bytes => {
                    errors_full = Some(format!(
                        "catch-up errors are full ({} of {} bytes): retry or discard errors to continue",
                        core.error_bytes(),
                        self.map.config.max_error_bytes
                    ));
                    break;
                }
                Outcome::Moved(_) => error_bytes += slot.frame_bytes,
                Outcome::Delivered(_) => {}
            }
            count += 1;
            passed_bytes += slot.frame_bytes;
        }
        let new_head = match self.window.get(count) {
            Some(slot) => slot.seq,
            None => self.read_through + 1,
        };
        if new_head > core.head {
            self.commit_prefix(&mut core, count, new_head, passed_bytes)?;
        }
        if errors_full.is_some() && self.stalled_until.is_none() {
            self.stalled_until = Some(Instant::now() + self.backoff);
        }
        let stall = errors_full.or_else(|| self.stall.clone());
        if stall.is_none() {
            self.close_tail_if_near(&mut core);
        }
        self.report(&mut core, stall);
        if self.unsettled_records >= SETTLE_RECORDS {
            self.settle(&mut core)?;
        }
        Ok(())
    }

    pub(super) fn commit_prefix(
        &mut self,
        core: &mut Core,
        count: usize,
        new_head: u64,
        passed_bytes: u64,
    ) -> Result<()> {
        let now = self.map.ctx.clock.now();
        let at = to_nanos(now);
        let mut add_errors: Vec<ErrorRun> = Vec::new();
        let mut moved_keys: Vec<&str> = Vec::new();
        let mut superseded: Vec<ErrorRun> = Vec::new();
        for slot in self.window.iter().take(count) {
            match &slot.outcome {
                Outcome::Moved(moved) => {
                    add_errors.push(ErrorRun::moved(slot.seq, moved.reason, moved.last_error.clone(), at));
                    moved_keys.push(&moved.key);
                }
                Outcome::Delivered(Some(key)) => {
                    superseded.extend(self.map.supersede_runs(core, key, slot.seq, now));
                    // Errors this same commit adds count too (a key rejected
                    // and then delivered in one batch, under BestEffort).
                    let newly = add_errors.iter().zip(&moved_keys).filter(|(run, moved_key)| {
                        **moved_key == key.as_str() && run.reason != ErrorReason::Superseded
                    });
                    superseded.extend(newly.map(|(run, _)| run.superseded(at)));
                }
                Outcome::Delivered(None) | Outcome::Waiting => {}
            }
        }
        drop(moved_keys);
        let commit = Commit {
            head: Some(new_head),
            add_errors: add_errors.clone(),
            update_errors: superseded.clone(),
            ..Commit::default()
        };
        // Written to the file but not synced: a process crash keeps it; a
        // power loss only redelivers the batches since the last sync (R18).
        self.map.commit(commit, false)?;
        self.map.meta.flush().map_err(|e| Error::from_wal(&self.map.name, e))?;
        let mut runs = add_errors.into_iter();
        for _ in 0..count {
            let slot = self.window.pop_front().expect("counted above");
            self.first_id += 1;
            match slot.outcome {
                Outcome::Moved(_) => {
                    let run = runs.next().expect("one run per moved record");
                    core.queue_to_error(slot.frame_bytes, run);
                }
                Outcome::Delivered(_) => match self.unsettled.last_mut() {
                    Some(last) if last.1 + 1 == slot.seq => last.1 = slot.seq,
                    _ => self.unsettled.push((slot.seq, slot.seq)),
                },
                Outcome::Waiting => unreachable!("only finished slots are committed"),
            }
        }
        for run in superseded {
            core.error_table.add(run);
        }
        core.head_advanced(new_head, passed_bytes, count as u64);
        core.check_accounting(&self.map.data);
        self.unsettled_records += count as u64;
        Ok(())
    }

    /// Writers that keep submitting could keep the tail ahead of the replay
    /// for ever (each round lets a few new records in). When what is left
    /// fits in one round, new submits to the tail wait for a moment (at most
    /// [`CLOSING_TAIL_WAIT_MAX`]) while the replay delivers it and switches
    /// to Running (R3). An attempt that runs out of time is made again:
    /// submitters were held during it, so less is left each time.
    pub(super) fn close_tail_if_near(&self, core: &mut Core) {
        let one_round = (self.lanes.len() * self.limits.records) as u64;
        let now = Instant::now();
        if core.closing_tail.is_none_or(|until| until <= now) && core.queue_records() <= one_round {
            // About two round trips, as the last call took.
            let wait = (self.last_call * 2).clamp(CLOSING_TAIL_WAIT_MIN, CLOSING_TAIL_WAIT_MAX);
            core.closing_tail = Some(now + wait);
        }
    }

    /// Publishes the stall reason and lanes busy, and wakes watchers (at
    /// once on a change, else at most every PROGRESS_NOTIFY_INTERVAL).
    pub(super) fn report(&mut self, core: &mut Core, stall: Option<String>) {
        core.lanes_busy = self.in_flight as u32;
        let stop_requested = core.generation != self.generation;
        if core.last_error != stall || stop_requested {
            core.last_error = stall;
            self.map.changed.notify_all();
        } else if self.last_notify.elapsed() >= PROGRESS_NOTIFY_INTERVAL {
            self.last_notify = Instant::now();
            self.map.changed.notify_all();
        }
    }

    /// Releases the delivered records (whole segments are then deleted)
    /// and compacts the meta log if it has grown.
    pub(super) fn settle(&mut self, core: &mut Core) -> Result<()> {
        for (lo, hi) in self.unsettled.drain(..) {
            self.map.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.map.name, e))?;
        }
        self.unsettled_records = 0;
        self.map.drop_dead_runs(core)?;
        self.map.compact_meta_if_needed(core)
    }

    /// Nothing read is left: switch to Running if the head passed the tail
    /// (under the map lock, so no submit slips between the last replayed
    /// record and the first live one, R3); otherwise wait for the tail to
    /// be durable or keep reading. True when the replay is over.
    pub(super) fn caught_up(&mut self, bound: u64) -> bool {
        let Ok(mut core) = self.map.lock() else { return false };
        if core.generation != self.generation {
            return false;
        }
        if core.head > core.tail {
            if let Err(error) = self.settle(&mut core) {
                tracing::warn!(map = %self.map.name, %error, "replay could not settle its last batches; they will be delivered again");
            }
            if !finish(self.map, &mut core) {
                drop(core);
                self.stall_for("could not record the switch to Running".into());
                return false;
            }
            if core.replay_owner == Some(self.generation) {
                core.replay_owner = None;
            }
            self.map.changed.notify_all();
            return true;
        }
        if bound < core.tail && self.map.ctx.sync == SyncPolicy::Always {
            // The tail's group fsync is still running: join it (outside the
            // map lock, so submitters keep appending meanwhile).
            let tail = core.tail;
            drop(core);
            if let Err(error) = self.map.data.sync_through(tail) {
                // The data log is poisoned (R17): stall, visibly, until the
                // map is paused, skipped or closed.
                tracing::error!(map = %self.map.name, %error, "replay stalled: the tail cannot be made durable");
                self.stall_for(format!("the tail cannot be made durable: {error}"));
                if let Ok(mut core) = self.map.lock() {
                    self.report(&mut core, self.stall.clone());
                }
            }
        }
        false
    }

    /// Stops: waits for the calls in flight, commits what finished, and
    /// settles what finished above the committed head (see
    /// `MapShared::stop_replay`).
    pub(super) fn stop(&mut self) {
        while self.in_flight > 0 {
            let done = self.pool.next_done();
            self.apply(done);
        }
        if let Err(error) = self.commit() {
            tracing::warn!(map = %self.map.name, %error, "replay could not commit its last batches; they will be delivered again");
        }
        let ragged = self.ragged();
        self.leave(Some(ragged));
    }

    /// The finished records above the committed head, with their keys.
    pub(super) fn ragged(&self) -> Ragged {
        let delivered = self
            .window
            .iter()
            .filter(|slot| matches!(slot.outcome, Outcome::Delivered(_)))
            .map(|slot| (slot.seq, slot.frame_bytes))
            .collect();
        let outcomes = self
            .window
            .iter()
            .filter_map(|slot| match &slot.outcome {
                Outcome::Moved(moved) => Some(StoppedOutcome {
                    seq: slot.seq,
                    reason: moved.reason,
                    last_error: moved.last_error.clone(),
                    frame_bytes: slot.frame_bytes,
                }),
                _ => None,
            })
            .collect();
        Ragged { delivered, outcomes }
    }

    /// The worker's last act, under the map lock: records delivered above
    /// the head leave the queue, other outcomes are kept for a skip, and
    /// the replay owner is cleared so that `stop_replay` returns.
    pub(super) fn leave(&mut self, ragged: Option<Ragged>) {
        let (mut core, healthy) = match self.map.lock() {
            Ok(core) => (core, true),
            Err(_) => (self.map.lock_to_read(), false),
        };
        if let Some(ragged) = ragged.filter(|_| healthy) {
            // Released first: a record that stays in the log stays queued
            // (the next replay reads it again and delivers it again, R18),
            // or its bytes would leave the queue twice.
            let seqs: Vec<u64> = ragged.delivered.iter().map(|&(seq, _)| seq).collect();
            let mut released = Vec::new();
            for (lo, hi) in crate::map::to_ranges(&seqs) {
                match self.map.data.release(lo..=hi) {
                    Ok(()) => released.push((lo, hi)),
                    Err(error) => {
                        tracing::warn!(map = %self.map.name, %error, "could not release delivered records; they stay queued and will be delivered again")
                    }
                }
            }
            for (seq, frame_bytes) in ragged.delivered {
                if released.iter().any(|&(lo, hi)| (lo..=hi).contains(&seq)) {
                    core.queued_delivered(frame_bytes);
                }
            }
            core.stopped_delivered = released;
            core.stopped_outcomes = ragged.outcomes;
            core.check_accounting(&self.map.data);
            if let Err(error) = self.settle(&mut core) {
                tracing::warn!(map = %self.map.name, %error, "replay could not settle its last batches; they will be delivered again");
            }
        }
        if core.replay_owner == Some(self.generation) {
            core.replay_owner = None;
            core.lanes_busy = 0;
            core.closing_tail = None;
        }
        self.map.changed.notify_all();
    }
}

/// What a stopping replay had finished above its committed head.
#[derive(Default)]
pub(super) struct Ragged {
    /// Seq and frame bytes of each record delivered above the head.
    delivered: Vec<(u64, u64)>,
    outcomes: Vec<StoppedOutcome>,
}

/// The cursor reached the tail: switch to Running under the map lock.
/// False if the switch could not be recorded (the replay stalls and tries
/// again).
fn finish(map: &MapShared, core: &mut Core) -> bool {
    let commit = Commit { state: Some(StoredState::Running), blocked: Some(None), ..Commit::default() };
    if let Err(error) = map.commit(commit, true) {
        core.last_error = Some(error.to_string());
        tracing::error!(map = %map.name, %error, "could not record the switch to Running");
        return false;
    }
    let head = core.head;
    map.go_live(core, head);
    tracing::info!(map = %map.name, replayed = core.replayed, "catch-up complete: live");
    true
}
