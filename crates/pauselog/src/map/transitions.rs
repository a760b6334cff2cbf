//! The state machine (R3, R5, R8, R12, R13, R16): pause, resume, skip to
//! live, block, and the switch to Running. Every transition checks what
//! could refuse it before it changes anything (R20), and changes `Core` only
//! after the meta event that records the change was written.

use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use super::{Core, MapShared, StoppedOutcome};
use crate::clock::to_nanos;
use crate::errors_table::ErrorRun;
use crate::meta::{Commit, StoredState, WindowMark};
use crate::{Error, ErrorReason, Limit, PauseReason, Result, ResumeMode};

impl MapShared {
    /// Pauses from Running or CatchingUp (a no-op when Paused).
    pub(super) fn pause(self: &Arc<Self>, reason: PauseReason) -> Result<()> {
        let now = self.ctx.clock.now();
        let core = self.lock()?;
        let mut core = self.stop_replay_if_catching_up(core)?;
        let result = self.pause_locked(&mut core, reason, now, Vec::new());
        if result.is_err() {
            self.restart_replay_if_catching_up(&mut core);
        }
        result
    }

    /// From CatchingUp: stops the replay first (R5).
    pub(super) fn stop_replay_if_catching_up<'a>(&'a self, core: MutexGuard<'a, Core>) -> Result<MutexGuard<'a, Core>> {
        if core.state == StoredState::CatchingUp {
            self.stop_replay(core)
        } else {
            Ok(core)
        }
    }

    /// Records a pause (with the window marks that go with it, if a window
    /// caused it). From CatchingUp the caller has stopped the replay.
    pub(super) fn pause_locked(
        &self,
        core: &mut Core,
        reason: PauseReason,
        now: SystemTime,
        windows: Vec<WindowMark>,
    ) -> Result<()> {
        if let StoredState::Paused { .. } = core.state {
            return Ok(());
        }
        debug_assert!(core.replay_owner.is_none(), "the replay is stopped before a pause");
        let state = StoredState::Paused { since_nanos: to_nanos(now), reason };
        self.commit(Commit { state: Some(state), windows, ..Commit::default() }, true)?;
        core.state = state;
        core.drain.reset();
        core.replayed = 0;
        core.lanes_busy = 0;
        core.closing_tail = None;
        // What the stopped replay decided above its head (rejections, holds
        // behind an earlier failure) is for a skip that stops it, not for
        // one from Paused: while paused those records are queued, as a
        // reopen would find them, and a later resume judges them again.
        core.stopped_outcomes.clear();
        tracing::info!(map = %self.name, ?reason, queued = core.queue_records(), "table map paused");
        self.changed.notify_all();
        Ok(())
    }

    pub(super) fn block_locked(&self, core: &mut Core, limit: Limit) -> Result<()> {
        if core.blocked.is_some() {
            return Ok(());
        }
        self.commit(Commit { blocked: Some(Some(limit)), ..Commit::default() }, true)?;
        core.blocked = Some(limit);
        tracing::warn!(map = %self.name, ?limit, "table map blocked: new records are refused until it is resumed and caught up");
        self.changed.notify_all();
        Ok(())
    }

    /// Tells the replay worker to stop and waits until it has left: its
    /// calls in flight answered, what it finished committed, records it
    /// delivered above its committed head released (so nothing delivered
    /// stays queued), and its other outcomes above that head kept in
    /// `Core::stopped_outcomes` for a skip to live.
    pub fn stop_replay<'a>(&'a self, mut core: MutexGuard<'a, Core>) -> Result<MutexGuard<'a, Core>> {
        core.generation += 1;
        self.changed.notify_all();
        while core.replay_owner.is_some() {
            core = self.wait(core)?;
        }
        Ok(core)
    }

    /// Starts a replay worker for the map's current generation.
    pub fn spawn_replay(self: &Arc<Self>, core: &mut Core) -> Result<()> {
        let (map, generation) = (self.clone(), core.generation);
        let handle = std::thread::Builder::new()
            .name(format!("pauselog-replay-{}", self.name))
            .spawn(move || crate::replay::run(map, generation))
            .map_err(|e| Error::Io { path: self.data.dir().to_path_buf(), source: e })?;
        core.replay_owner = Some(core.generation);
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|worker| !worker.is_finished());
        workers.push(handle);
        Ok(())
    }

    /// After a transition out of CatchingUp was refused or failed with the
    /// replay already stopped: the map goes on catching up (R20).
    pub(super) fn restart_replay_if_catching_up(self: &Arc<Self>, core: &mut Core) {
        if core.state == StoredState::CatchingUp && core.replay_owner.is_none() {
            core.generation += 1;
            if let Err(error) = self.spawn_replay(core) {
                core.last_error = Some(format!("the replay could not be restarted: {error}"));
                tracing::error!(map = %self.name, %error, "the replay could not be restarted");
            }
        }
    }

    pub fn resume_locked(self: &Arc<Self>, core: &mut Core, mode: ResumeMode, now: SystemTime) -> Result<()> {
        if !matches!(core.state, StoredState::Paused { .. }) {
            return Err(Error::invalid_state(&self.name, &self.state_of(core), "resume"));
        }
        match mode {
            ResumeMode::CatchUp => {
                // The worker is started first and finds the state when it
                // gets the lock; if the commit fails it finds a new
                // generation and leaves, and nothing changed.
                core.generation += 1;
                self.spawn_replay(core)?;
                let committed = self.commit(Commit { state: Some(StoredState::CatchingUp), ..Commit::default() }, true);
                if let Err(error) = committed {
                    core.generation += 1;
                    return Err(error);
                }
                core.state = StoredState::CatchingUp;
                core.replayed = 0;
                core.last_error = None;
                core.drain.reset();
                core.stopped_outcomes.clear();
                core.stopped_delivered.clear();
                tracing::info!(map = %self.name, queued = core.queue_records(), "catch-up started");
                self.changed.notify_all();
                Ok(())
            }
            ResumeMode::SkipToLivePreserve => self.preserve_locked(core, now),
            ResumeMode::SkipToLiveDiscard => self.discard_locked(core),
        }
    }

    /// R16: during catch-up, go live at once, preserving or discarding what
    /// was not replayed.
    pub(super) fn skip_to_live(self: &Arc<Self>, preserve: bool) -> Result<()> {
        let now = self.ctx.clock.now();
        let core = self.lock()?;
        if core.state != StoredState::CatchingUp {
            return Err(Error::invalid_state(&self.name, &self.state_of(&core), "skip_to_live"));
        }
        if preserve {
            self.check_preserve(&core)?;
        }
        let mut core = self.stop_replay(core)?;
        let result = if preserve { self.preserve_locked(&mut core, now) } else { self.discard_locked(&mut core) };
        if result.is_err() {
            self.restart_replay_if_catching_up(&mut core);
        }
        result
    }

    /// Refuses a preserve that would take the errors past their cap (R16).
    fn check_preserve(&self, core: &Core) -> Result<()> {
        let needed_bytes = core.queue_bytes();
        if needed_bytes > 0 && core.error_bytes() + needed_bytes > self.config.max_error_bytes {
            return Err(Error::ErrorsFull {
                map: self.name.clone(),
                needed_bytes,
                error_bytes: core.error_bytes(),
                cap_bytes: self.config.max_error_bytes,
            });
        }
        Ok(())
    }

    /// Skip to live keeping the backlog: the whole queue becomes one
    /// `Preserved` run of catch-up errors, without copying a record (R13);
    /// records a stopped replay had rejected keep their own reason.
    pub fn preserve_locked(&self, core: &mut Core, now: SystemTime) -> Result<()> {
        self.check_preserve(core)?;
        let (lo, hi) = (core.head, core.tail);
        let has_backlog = lo <= hi && core.queue_records() > 0;
        let at = to_nanos(now);
        let mut add_errors: Vec<ErrorRun> = Vec::new();
        if has_backlog {
            add_errors.push(ErrorRun {
                lo,
                hi,
                reason: ErrorReason::Preserved,
                last_error: None,
                attempts: 0,
                first_failed_nanos: at,
                last_failed_nanos: at,
            });
            add_errors.extend(core.stopped_outcomes.iter().map(|outcome| outcome_run(outcome, at)));
        }
        // Records a stopped replay delivered above its head are not errors.
        // (Seq markers in the range need no such care: a marker is never
        // read as a record, whatever covers it.)
        let remove_errors = if has_backlog { core.stopped_delivered.clone() } else { Vec::new() };
        let commit = Commit {
            state: Some(StoredState::Running),
            blocked: Some(None),
            head: Some(hi + 1),
            add_errors: add_errors.clone(),
            remove_errors: remove_errors.clone(),
            ..Commit::default()
        };
        self.commit(commit, true)?;
        if has_backlog {
            for run in add_errors {
                core.error_table.add(run);
            }
            for (lo, hi) in remove_errors {
                core.error_table.remove(lo, hi);
            }
        }
        let preserved_bytes = core.queue_bytes();
        core.queue_to_errors();
        tracing::info!(map = %self.name, preserved_bytes, "skipped to live, backlog preserved as catch-up errors");
        self.go_live(core, hi + 1);
        Ok(())
    }

    /// Skip to live dropping the backlog; releases whole segments (R13).
    /// Records a stopped replay had rejected become catch-up errors.
    pub fn discard_locked(&self, core: &mut Core) -> Result<()> {
        let (lo, hi) = (core.head, core.tail);
        let at = to_nanos(self.ctx.clock.now());
        let mut kept: Vec<StoppedOutcome> = std::mem::take(&mut core.stopped_outcomes);
        kept.sort_by_key(|outcome| outcome.seq);
        // They are kept as far as the errors' cap allows; past it they go
        // with the rest of the backlog.
        let mut error_bytes = core.error_bytes();
        kept.retain(|outcome| {
            error_bytes += outcome.frame_bytes;
            error_bytes <= self.config.max_error_bytes
        });
        let add_errors: Vec<ErrorRun> = kept.iter().map(|outcome| outcome_run(outcome, at)).collect();
        let commit = Commit {
            state: Some(StoredState::Running),
            blocked: Some(None),
            head: Some(hi + 1),
            add_errors: add_errors.clone(),
            ..Commit::default()
        };
        if let Err(error) = self.commit(commit, true) {
            core.stopped_outcomes = kept;
            return Err(error);
        }
        for (outcome, run) in kept.iter().zip(add_errors) {
            core.queue_to_error(outcome.frame_bytes, run);
        }
        if lo <= hi {
            let kept_seqs: Vec<u64> = kept.iter().map(|outcome| outcome.seq).collect();
            for (lo, hi) in ranges_between(lo, hi, &kept_seqs) {
                self.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.name, e))?;
            }
        }
        tracing::info!(map = %self.name, discarded_bytes = core.queue_bytes(), "skipped to live, backlog discarded");
        core.queue_discarded();
        self.drop_dead_runs(core)?;
        self.go_live(core, hi + 1);
        Ok(())
    }

    /// In-memory half of a switch to Running whose commit is durable.
    pub fn go_live(&self, core: &mut Core, head: u64) {
        debug_assert_eq!(core.queue_bytes(), 0, "a map goes live with an empty queue");
        core.head = head;
        core.state = StoredState::Running;
        core.blocked = None;
        core.consecutive_unavailable = 0;
        core.drain.reset();
        core.lanes_busy = 0;
        core.stopped_outcomes.clear();
        core.stopped_delivered.clear();
        core.closing_tail = None;
        core.check_accounting(&self.data);
        self.changed.notify_all();
    }
}

/// The catch-up error a stopped replay's outcome becomes.
fn outcome_run(outcome: &StoppedOutcome, at_nanos: u64) -> ErrorRun {
    ErrorRun::moved(outcome.seq, outcome.reason, outcome.last_error.clone(), at_nanos)
}

/// `lo..=hi` without the (ascending) seqs of `skip`, as inclusive ranges.
fn ranges_between(lo: u64, hi: u64, skip: &[u64]) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let mut next = lo;
    for &seq in skip.iter().filter(|&&seq| (lo..=hi).contains(&seq)) {
        if seq > next {
            ranges.push((next, seq - 1));
        }
        next = seq + 1;
    }
    if next <= hi {
        ranges.push((next, hi));
    }
    ranges
}
