//! Rules (R7, R14): the pause-age cap and maintenance windows, evaluated on
//! the engine's clock on every submit, by the ticker and by `Engine::tick`.
//!
//! A window's marks are durable (meta log): once its start has been acted
//! on it never pauses the map again, so a map an operator resumed by hand
//! inside a window stays resumed across a restart. Each mark is written
//! after the action it records: a crash in between repeats the action
//! (pausing a paused map, or resuming a map no longer paused by that window,
//! changes nothing), never skips it.

use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use super::{Core, MapShared};
use crate::clock::from_nanos;
use crate::meta::{window_mark, Commit, StoredState, WindowMark};
use crate::{Limit, PauseReason, PauseRule, Result, ResumeMode};

impl MapShared {
    /// Evaluates the rules against `now`. May stop the replay (a window that
    /// opens while the map catches up pauses it, as `pause` would, R5), so
    /// it takes the guard and gives it back.
    pub(super) fn evaluate_rules<'a>(
        self: &'a Arc<Self>,
        mut core: MutexGuard<'a, Core>,
        now: SystemTime,
    ) -> Result<MutexGuard<'a, Core>> {
        if let (StoredState::Paused { since_nanos, .. }, None) = (core.state, core.blocked) {
            if now.duration_since(from_nanos(since_nanos)).unwrap_or_default() >= self.config.max_pause {
                self.block_locked(&mut core, Limit::PauseAge)?;
            }
        }
        let windows = self.config.rules.iter().filter_map(|rule| match rule {
            PauseRule::Window { start, end, resume } => Some((*start, *end, *resume)),
            PauseRule::DestinationUnavailable { .. } => None,
        });
        for (index, (start, end, resume)) in windows.enumerate() {
            let mark = core.windows[index];
            if !mark.started && now >= start && now < end {
                core = self.window_opens(core, start, end, now)?;
                self.set_mark(&mut core, index, window_mark(start, end, true, false))?;
            }
            if !mark.ended && now >= end {
                self.window_closes(&mut core, start, end, resume, now);
                self.set_mark(&mut core, index, window_mark(start, end, true, true))?;
            }
        }
        Ok(core)
    }

    fn window_opens<'a>(
        self: &'a Arc<Self>,
        core: MutexGuard<'a, Core>,
        start: SystemTime,
        end: SystemTime,
        now: SystemTime,
    ) -> Result<MutexGuard<'a, Core>> {
        if matches!(core.state, StoredState::Paused { .. }) {
            return Ok(core);
        }
        tracing::info!(map = %self.name, "maintenance window opens: pausing");
        let mut core = self.stop_replay_if_catching_up(core)?;
        if let Err(error) = self.pause_locked(&mut core, PauseReason::Window { start, end }, now, Vec::new()) {
            self.restart_replay_if_catching_up(&mut core);
            return Err(error);
        }
        Ok(core)
    }

    /// At a window's end, a map this window paused resumes with the
    /// window's mode. A refused resume (e.g. a preserve past the errors'
    /// cap) leaves the map paused, says why in `last_error`, and is not
    /// tried again: the operator decides.
    fn window_closes(
        self: &Arc<Self>,
        core: &mut Core,
        start: SystemTime,
        end: SystemTime,
        resume: Option<ResumeMode>,
        now: SystemTime,
    ) {
        let paused_by_this_window = matches!(
            core.state,
            StoredState::Paused { reason: PauseReason::Window { start: s, end: e }, .. } if s == start && e == end
        );
        let Some(mode) = resume.filter(|_| paused_by_this_window) else { return };
        tracing::info!(map = %self.name, ?mode, "maintenance window closes: resuming");
        if let Err(error) = self.resume_locked(core, mode, now) {
            tracing::warn!(map = %self.name, %error, "resume at the end of a maintenance window was refused");
            core.last_error = Some(format!("the maintenance window's end could not resume the map: {error}"));
            self.changed.notify_all();
        }
    }

    fn set_mark(&self, core: &mut Core, index: usize, mark: WindowMark) -> Result<()> {
        if core.windows[index] == mark {
            return Ok(());
        }
        self.commit(Commit { windows: vec![mark], ..Commit::default() }, true)?;
        core.windows[index] = mark;
        Ok(())
    }

    pub fn tick(self: &Arc<Self>) {
        let now = self.ctx.clock.now();
        let result = self.lock().and_then(|core| self.evaluate_rules(core, now).map(drop));
        if let Err(error) = result {
            tracing::warn!(map = %self.name, %error, "rule evaluation failed");
        }
    }
}
