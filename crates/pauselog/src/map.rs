//! Table maps: the state machine, submit, pause/resume/skip, the views.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use pauselog_index::{Checkpoint, IndexStore, KeyIndex};
use pauselog_wal::{frame_bytes, SyncPolicy, Wal};

use crate::clock::{from_nanos, to_nanos, Clock};
use crate::codec::{self, Commit, MetaEvent, StoredState};
use crate::errors_table::{ErrorRun, ErrorTable};
use crate::retry::{RetryJob, RetryShared};
use crate::{
    CatchupError, DeliveryError, Destination, Error, ErrorReason, Limit, MapConfig, MapState, MapStats, Page,
    PauseReason, PauseRule, Query, QueuedRecord, Record, Result, ResumeMode, Selection, Submitted, KEY_BYTES_MAX,
    PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, PAYLOAD_BYTES_MAX,
};

/// Meta log size after which it is compacted into one snapshot.
const META_COMPACT_BYTES: u64 = 8 * 1024 * 1024;

/// Error records read at once by `discard_errors` to find their keys.
const DISCARD_READ_CHUNK_RECORDS: usize = 1024;

/// What every map of an engine shares.
#[derive(Debug)]
pub(crate) struct EngineCtx {
    pub dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub sync: SyncPolicy,
    pub index_store: IndexStore,
    pub segment_bytes_max: u64,
    /// File I/O of the map logs (the real file system unless a test wraps it).
    pub storage: Arc<dyn pauselog_wal::Storage>,
}

/// A handle on one table map. Cheap to clone; `Send + Sync`.
///
/// The map's files stay open while any handle (or the engine) holds them.
#[derive(Clone)]
pub struct TableMap {
    pub(crate) shared: Arc<MapShared>,
}

impl std::fmt::Debug for TableMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableMap").field("name", &self.shared.name).field("state", &self.state()).finish()
    }
}

pub(crate) struct MapShared {
    pub name: String,
    pub config: MapConfig,
    pub ctx: Arc<EngineCtx>,
    pub data: Wal,
    pub meta: Wal,
    pub destination: RwLock<Arc<dyn Destination>>,
    pub core: Mutex<Core>,
    /// Notified on every state change and replay commit.
    pub changed: Condvar,
    /// Replay threads started so far (stopped ones exit on their own).
    pub workers: Mutex<Vec<JoinHandle<()>>>,
    pub jobs: Mutex<Vec<(Arc<RetryShared>, JoinHandle<()>)>>,
    pub closed: AtomicBool,
    /// The last submit was queued: the next one encodes its record before
    /// it takes the map lock, so the lock is held for the append and the
    /// index insert only. A hint: a wrong guess costs one encode.
    pub queueing_hint: AtomicBool,
}

pub(crate) struct Core {
    pub state: StoredState,
    pub blocked: Option<Limit>,
    /// Every seq below `head` has left the queue; the queue is the live data
    /// records in `head..=tail`.
    pub head: u64,
    /// Last appended seq (0 before the first).
    pub tail: u64,
    pub queue: KeyIndex,
    pub queue_bytes: u64,
    pub errors: KeyIndex,
    pub error_table: ErrorTable,
    pub error_bytes: u64,
    pub replayed: u64,
    /// A replay batch is being delivered; pause and skip wait for it.
    pub delivering: bool,
    /// Bumped to tell the replay worker to stop.
    pub generation: u64,
    pub consecutive_unavailable: u32,
    pub last_error: Option<String>,
    pub drain: DrainRate,
    pub window_started: Vec<bool>,
    pub window_ended: Vec<bool>,
}

/// Exponentially smoothed records per second of the replay.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DrainRate {
    per_sec: f64,
    last: Option<Instant>,
}

impl DrainRate {
    pub fn record(&mut self, records: u64) {
        let now = Instant::now();
        if let Some(last) = self.last {
            let elapsed = now.duration_since(last).as_secs_f64().max(1e-6);
            let sample = records as f64 / elapsed;
            self.per_sec = if self.per_sec == 0.0 { sample } else { 0.8 * self.per_sec + 0.2 * sample };
        }
        self.last = Some(now);
    }

    fn reset(&mut self) {
        *self = DrainRate::default();
    }
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "table map name {name:?} must be 1-64 characters of [A-Za-z0-9._-] and not \".\" or \"..\""
        )))
    }
}

pub(crate) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err(Error::InvalidInput(format!(
            "integration key must be 1-{KEY_BYTES_MAX} bytes of UTF-8, got {} bytes",
            key.len()
        )));
    }
    Ok(())
}

pub(crate) fn page_limit(query: &Query) -> Result<usize> {
    match query.limit {
        None => Ok(PAGE_LIMIT_DEFAULT),
        Some(limit) if (1..=PAGE_LIMIT_MAX).contains(&limit) => Ok(limit),
        Some(limit) => Err(Error::InvalidInput(format!("page limit {limit} must be between 1 and {PAGE_LIMIT_MAX}"))),
    }
}

impl TableMap {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Submits a record: delivered live while Running (R1), queued durably
    /// while Paused or CatchingUp (R2, R3).
    pub fn submit(&self, record: Record) -> Result<Submitted> {
        self.shared.submit(record)
    }

    /// Pauses the map (R5): from Running; a no-op when Paused; from
    /// CatchingUp it stops the replay with the rest still queued in order.
    pub fn pause(&self) -> Result<()> {
        let now = self.shared.ctx.clock.now();
        let mut core = self.shared.lock();
        if core.state == StoredState::CatchingUp {
            core = self.shared.stop_replay(core);
        }
        self.shared.pause_locked(&mut core, PauseReason::Manual, now)
    }

    /// Resumes a paused map (R12, R13).
    pub fn resume(&self, mode: ResumeMode) -> Result<()> {
        let now = self.shared.ctx.clock.now();
        let mut core = self.shared.lock();
        self.shared.resume_locked(&mut core, mode, now)
    }

    /// During catch-up, goes live at once (R16): the records not replayed yet
    /// move to the catch-up errors (`preserve`) or are discarded.
    pub fn skip_to_live(&self, preserve: bool) -> Result<()> {
        let now = self.shared.ctx.clock.now();
        let mut core = self.shared.lock();
        if core.state != StoredState::CatchingUp {
            return Err(Error::invalid_state(&self.shared.name, &self.shared.state_of(&core), "skip_to_live"));
        }
        core = self.shared.stop_replay(core);
        if preserve {
            self.shared.preserve_locked(&mut core, now)
        } else {
            self.shared.discard_locked(&mut core)
        }
    }

    /// The state now.
    pub fn state(&self) -> MapState {
        let core = self.shared.lock();
        self.shared.state_of(&core)
    }

    /// The operator's figures (R9).
    pub fn stats(&self) -> MapStats {
        self.shared.stats()
    }

    /// A page of the queued records, in seq order (R10, R11).
    pub fn queued(&self, query: &Query) -> Result<Page<QueuedRecord>> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
        }
        let page = {
            let core = self.shared.lock();
            core.queue.page(query.key.as_deref(), query.after.as_deref(), limit).map_err(Error::from_index)?
        };
        let items = crate::views::read_records(&self.shared.data, &page.seqs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// A page of the catch-up errors, in seq order (R11, R16).
    pub fn catchup_errors(&self, query: &Query) -> Result<Page<CatchupError>> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
        }
        let (page, runs) = {
            let core = self.shared.lock();
            let page =
                core.errors.page(query.key.as_deref(), query.after.as_deref(), limit).map_err(Error::from_index)?;
            let runs = crate::views::runs_of(&core.error_table, &page.seqs);
            (page, runs)
        };
        let items = crate::views::read_errors(&self.shared.data, &page.seqs, runs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// Retries catch-up errors in the background (R16, R16a); `Superseded`
    /// entries are left alone (R16b).
    pub fn retry_errors(&self, selection: Selection) -> Result<RetryJob> {
        crate::retry::start(&self.shared, selection, false)
    }

    /// Like [`TableMap::retry_errors`], but also delivers `Superseded` entries.
    pub fn retry_errors_forced(&self, selection: Selection) -> Result<RetryJob> {
        crate::retry::start(&self.shared, selection, true)
    }

    /// Discards catch-up errors; returns how many were discarded.
    pub fn discard_errors(&self, selection: Selection) -> Result<u64> {
        self.shared.discard_errors(selection)
    }

    /// Waits until `pred` holds for the state, or `timeout` (real time)
    /// passes. `pred` runs without the map's lock held, so it may call the map.
    pub fn wait_for(&self, pred: impl Fn(&MapState) -> bool, timeout: Duration) -> Result<MapState> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state();
            if pred(&state) {
                return Ok(state);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout);
            }
            // A change between `state()` and this wait is caught by the short
            // cap on the wait, at worst 20 ms late.
            let core = self.shared.lock();
            let wait = (deadline - now).min(Duration::from_millis(20));
            drop(self.shared.changed.wait_timeout(core, wait).unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Replaces the destination (e.g. after a reopen).
    pub fn set_destination(&self, destination: Arc<dyn Destination>) {
        *self.shared.destination.write().unwrap_or_else(|p| p.into_inner()) = destination;
    }
}

impl MapShared {
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn destination(&self) -> Arc<dyn Destination> {
        self.destination.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn state_of(&self, core: &Core) -> MapState {
        match core.state {
            StoredState::Running => MapState::Running,
            StoredState::Paused { since_nanos, reason } => {
                MapState::Paused { since: from_nanos(since_nanos), reason, blocked: core.blocked }
            }
            StoredState::CatchingUp => MapState::CatchingUp { replayed: core.replayed, remaining: core.queue.len() },
        }
    }

    pub fn read_record(&self, seq: u64) -> Result<Option<QueuedRecord>> {
        crate::views::read_record(&self.data, seq)
    }

    /// Appends a commit to the meta log; `durable` syncs it (unless the
    /// engine runs with `SyncPolicy::Never`). Callers change `Core` only after
    /// this succeeds, so a failed commit changes nothing.
    pub fn commit(&self, commit: Commit, durable: bool) -> Result<()> {
        let body = codec::encode_event(&MetaEvent::Commit(commit));
        let seq = self.meta.append_unsynced(&body).map_err(|e| Error::from_wal(&self.name, e))?;
        if durable && self.ctx.sync != SyncPolicy::Never {
            self.meta.sync_through(seq).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        Ok(())
    }

    fn submit(self: &Arc<Self>, record: Record) -> Result<Submitted> {
        validate_key(&record.key)?;
        if record.payload.len() > PAYLOAD_BYTES_MAX {
            return Err(Error::InvalidInput(format!(
                "payload of {} bytes is larger than the {PAYLOAD_BYTES_MAX} byte limit",
                record.payload.len()
            )));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let now = self.ctx.clock.now();
        let encoded = self.queueing_hint.load(Ordering::Relaxed).then(|| codec::encode_record(&record, now));
        let mut core = self.lock();
        self.evaluate_rules_locked(&mut core, now)?;
        if core.state == StoredState::Running {
            drop(core);
            self.queueing_hint.store(false, Ordering::Relaxed);
            return self.deliver_live(record, now);
        }
        self.enqueue(core, &record, encoded, now)
    }

    /// Appends to the queue tail; waits for durability outside the lock so
    /// concurrent submitters share an fsync (R2, R17).
    /// `encoded`: the record already encoded for `now`, if it was.
    fn enqueue(
        &self,
        mut core: MutexGuard<'_, Core>,
        record: &Record,
        encoded: Option<Vec<u8>>,
        now: SystemTime,
    ) -> Result<Submitted> {
        if let Some(limit) = core.blocked {
            return Err(Error::Blocked { map: self.name.clone(), limit });
        }
        if let StoredState::Paused { since_nanos, .. } = core.state {
            if now.duration_since(from_nanos(since_nanos)).unwrap_or_default() >= self.config.max_pause {
                self.block_locked(&mut core, Limit::PauseAge)?;
                return Err(Error::Blocked { map: self.name.clone(), limit: Limit::PauseAge });
            }
        }
        self.queueing_hint.store(true, Ordering::Relaxed);
        let body = encoded.unwrap_or_else(|| codec::encode_record(record, now));
        let record_bytes = frame_bytes(body.len());
        if core.queue_bytes + record_bytes > self.config.max_queue_bytes {
            self.block_locked(&mut core, Limit::Size)?;
            return Err(Error::Blocked { map: self.name.clone(), limit: Limit::Size });
        }
        let seq = self.data.append_unsynced(&body).map_err(|e| Error::from_wal(&self.name, e))?;
        core.queue.insert(&record.key, seq).map_err(Error::from_index)?;
        core.queue_bytes += record_bytes;
        core.tail = seq;
        drop(core);
        self.data.commit(seq).map_err(|e| Error::from_wal(&self.name, e))?;
        Ok(Submitted::Queued { seq })
    }

    fn deliver_live(self: &Arc<Self>, record: Record, now: SystemTime) -> Result<Submitted> {
        let live = QueuedRecord { seq: 0, key: record.key, op: record.op, payload: record.payload, queued_at: now };
        let outcome = self.destination().deliver(&live);
        let mut core = self.lock();
        match outcome {
            Ok(()) => {
                core.consecutive_unavailable = 0;
                if core.errors.count(Some(&live.key)) > 0 {
                    self.supersede_locked(&mut core, &live.key, now)?;
                }
                Ok(Submitted::Live)
            }
            Err(DeliveryError::Rejected(reason)) => {
                core.consecutive_unavailable = 0;
                Err(Error::Rejected { map: self.name.clone(), reason })
            }
            Err(DeliveryError::Unavailable(reason)) => {
                core.consecutive_unavailable += 1;
                let threshold = self.config.rules.iter().find_map(|rule| match rule {
                    PauseRule::DestinationUnavailable { consecutive } => Some(*consecutive),
                    _ => None,
                });
                let tripped = threshold.is_some_and(|n| core.consecutive_unavailable >= n.max(1));
                if tripped && core.state == StoredState::Running {
                    tracing::warn!(map = %self.name, %reason, "destination unavailable: pausing by rule");
                    core.consecutive_unavailable = 0;
                    self.pause_locked(&mut core, PauseReason::DestinationUnavailable, now)?;
                    let record = Record { key: live.key, op: live.op, payload: live.payload };
                    // The tripping record is queued, not failed (R14).
                    return self.enqueue(core, &record, None, now);
                }
                Err(Error::Unavailable { map: self.name.clone(), reason })
            }
        }
    }

    /// Marks every catch-up error of `key` as `Superseded` (R16b).
    fn supersede_locked(&self, core: &mut Core, key: &str, now: SystemTime) -> Result<()> {
        let at = to_nanos(now);
        let updates: Vec<ErrorRun> = core
            .errors
            .key_seqs(key)
            .into_iter()
            .filter_map(|seq| core.error_table.get(seq).map(|run| (seq, run)))
            .filter(|(_, run)| run.reason != crate::ErrorReason::Superseded)
            .map(|(seq, run)| ErrorRun {
                lo: seq,
                hi: seq,
                reason: crate::ErrorReason::Superseded,
                last_error: Some("a newer record of this key was delivered live".into()),
                attempts: run.attempts,
                first_failed_nanos: run.first_failed_nanos,
                last_failed_nanos: at,
            })
            .collect();
        if updates.is_empty() {
            return Ok(());
        }
        self.commit(Commit { update_errors: updates.clone(), ..Commit::default() }, true)?;
        for run in updates {
            core.error_table.add(run);
        }
        Ok(())
    }

    fn block_locked(&self, core: &mut Core, limit: Limit) -> Result<()> {
        if core.blocked.is_some() {
            return Ok(());
        }
        self.commit(Commit { blocked: Some(Some(limit)), ..Commit::default() }, true)?;
        core.blocked = Some(limit);
        tracing::warn!(map = %self.name, ?limit, "table map blocked: new records are refused until it is resumed and caught up");
        self.changed.notify_all();
        Ok(())
    }

    pub fn pause_locked(&self, core: &mut Core, reason: PauseReason, now: SystemTime) -> Result<()> {
        if let StoredState::Paused { .. } = core.state {
            return Ok(());
        }
        // From CatchingUp the caller has stopped the replay (`stop_replay`).
        debug_assert!(core.state != StoredState::CatchingUp || !core.delivering);
        let state = StoredState::Paused { since_nanos: to_nanos(now), reason };
        self.commit(Commit { state: Some(state), ..Commit::default() }, true)?;
        core.state = state;
        core.drain.reset();
        tracing::info!(map = %self.name, ?reason, queued = core.queue.len(), "table map paused");
        self.changed.notify_all();
        Ok(())
    }
}

impl MapShared {
    /// Tells the replay worker to stop and waits until no batch is in flight,
    /// so what was delivered and what was not is exact at the cut-over.
    pub fn stop_replay<'a>(&'a self, mut core: MutexGuard<'a, Core>) -> MutexGuard<'a, Core> {
        core.generation += 1;
        self.changed.notify_all();
        while core.delivering {
            core = self.changed.wait(core).unwrap_or_else(|p| p.into_inner());
        }
        core
    }

    pub fn resume_locked(self: &Arc<Self>, core: &mut Core, mode: ResumeMode, now: SystemTime) -> Result<()> {
        if !matches!(core.state, StoredState::Paused { .. }) {
            return Err(Error::invalid_state(&self.name, &self.state_of(core), "resume"));
        }
        match mode {
            ResumeMode::CatchUp => {
                self.commit(Commit { state: Some(StoredState::CatchingUp), ..Commit::default() }, true)?;
                core.state = StoredState::CatchingUp;
                core.replayed = 0;
                core.last_error = None;
                core.drain.reset();
                core.generation += 1;
                tracing::info!(map = %self.name, queued = core.queue.len(), "catch-up started");
                self.spawn_replay(core.generation)?;
                self.changed.notify_all();
                Ok(())
            }
            ResumeMode::SkipToLivePreserve => self.preserve_locked(core, now),
            ResumeMode::SkipToLiveDiscard => self.discard_locked(core),
        }
    }

    pub fn spawn_replay(self: &Arc<Self>, generation: u64) -> Result<()> {
        let map = self.clone();
        let handle = std::thread::Builder::new()
            .name(format!("pauselog-replay-{}", self.name))
            .spawn(move || crate::replay::run(map, generation))
            .map_err(|e| Error::Io { path: self.data.dir().to_path_buf(), source: e })?;
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|worker| !worker.is_finished());
        workers.push(handle);
        Ok(())
    }

    /// Skip to live keeping the backlog: the whole queue becomes one
    /// `Preserved` run of catch-up errors. No record is copied (R13).
    pub fn preserve_locked(&self, core: &mut Core, now: SystemTime) -> Result<()> {
        let (lo, hi) = (core.head, core.tail);
        let has_backlog = lo <= hi && !core.queue.is_empty();
        if has_backlog && core.error_bytes + core.queue_bytes > self.config.max_error_bytes {
            return Err(Error::ErrorsFull {
                map: self.name.clone(),
                needed_bytes: core.queue_bytes,
                error_bytes: core.error_bytes,
                cap_bytes: self.config.max_error_bytes,
            });
        }
        let at = to_nanos(now);
        let run = has_backlog.then_some(ErrorRun {
            lo,
            hi,
            reason: ErrorReason::Preserved,
            last_error: None,
            attempts: 0,
            first_failed_nanos: at,
            last_failed_nanos: at,
        });
        let commit = Commit {
            state: Some(StoredState::Running),
            blocked: Some(None),
            head: Some(hi + 1),
            add_errors: run.clone().into_iter().collect(),
            ..Commit::default()
        };
        self.commit(commit, true)?;
        if let Some(run) = run {
            let Core { queue, errors, .. } = core;
            queue.move_range_into(lo..=hi, errors);
            core.error_table.add(run);
        }
        core.error_bytes += core.queue_bytes;
        tracing::info!(map = %self.name, preserved_bytes = core.queue_bytes, "skipped to live, backlog preserved as catch-up errors");
        self.go_live(core, hi + 1);
        Ok(())
    }

    /// Skip to live dropping the backlog; releases whole segments (R13).
    pub fn discard_locked(&self, core: &mut Core) -> Result<()> {
        let (lo, hi) = (core.head, core.tail);
        let commit =
            Commit { state: Some(StoredState::Running), blocked: Some(None), head: Some(hi + 1), ..Commit::default() };
        self.commit(commit, true)?;
        if lo <= hi {
            let whole = core.queue.first_seq().is_none_or(|first| first >= lo)
                && core.queue.last_seq().is_none_or(|last| last <= hi);
            if whole {
                // Freeing a million posting entries takes milliseconds; the
                // caller should not wait for it (R13: proportional to segments).
                let old = std::mem::take(&mut core.queue);
                let _ = std::thread::Builder::new().name("pauselog-free".into()).spawn(move || drop(old));
            } else {
                core.queue.drop_range(lo..=hi);
            }
            self.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        tracing::info!(map = %self.name, discarded_bytes = core.queue_bytes, "skipped to live, backlog discarded");
        self.go_live(core, hi + 1);
        Ok(())
    }

    /// In-memory half of a switch to Running whose commit is durable.
    pub fn go_live(&self, core: &mut Core, head: u64) {
        core.head = head;
        core.queue_bytes = 0;
        core.state = StoredState::Running;
        core.blocked = None;
        core.consecutive_unavailable = 0;
        core.drain.reset();
        self.changed.notify_all();
    }

    /// Evaluates rules against the engine clock (R7, R14).
    pub fn evaluate_rules_locked(self: &Arc<Self>, core: &mut Core, now: SystemTime) -> Result<()> {
        if let (StoredState::Paused { since_nanos, .. }, None) = (core.state, core.blocked) {
            if now.duration_since(from_nanos(since_nanos)).unwrap_or_default() >= self.config.max_pause {
                self.block_locked(core, Limit::PauseAge)?;
            }
        }
        for (index, rule) in self.config.rules.iter().enumerate() {
            let PauseRule::Window { start, end, resume } = rule else { continue };
            if !core.window_started[index] && now >= *start && now < *end {
                core.window_started[index] = true;
                if core.state == StoredState::Running {
                    tracing::info!(map = %self.name, "maintenance window opens: pausing");
                    self.pause_locked(core, PauseReason::Window, now)?;
                }
            }
            if !core.window_ended[index] && now >= *end {
                core.window_started[index] = true;
                core.window_ended[index] = true;
                let paused_by_window = matches!(core.state, StoredState::Paused { reason: PauseReason::Window, .. });
                if let (Some(mode), true) = (resume, paused_by_window) {
                    tracing::info!(map = %self.name, ?mode, "maintenance window closes: resuming");
                    if let Err(error) = self.resume_locked(core, *mode, now) {
                        tracing::warn!(map = %self.name, %error, "resume at the end of a maintenance window failed");
                    }
                }
            }
        }
        Ok(())
    }

    pub fn tick(self: &Arc<Self>) {
        let now = self.ctx.clock.now();
        let mut core = self.lock();
        if let Err(error) = self.evaluate_rules_locked(&mut core, now) {
            tracing::warn!(map = %self.name, %error, "rule evaluation failed");
        }
    }

    fn stats(&self) -> MapStats {
        let now = self.ctx.clock.now();
        let core = self.lock();
        let state = self.state_of(&core);
        let (head, tail) = (core.head, core.tail);
        let queued_records = core.queue.len();
        let catching_up = core.state == StoredState::CatchingUp;
        let rate = if catching_up { core.drain.per_sec } else { 0.0 };
        let pause_time_left = match core.state {
            StoredState::Paused { since_nanos, .. } => Some(
                self.config.max_pause.saturating_sub(now.duration_since(from_nanos(since_nanos)).unwrap_or_default()),
            ),
            _ => None,
        };
        let mut stats = MapStats {
            state,
            queued_records,
            queued_bytes: core.queue_bytes,
            oldest_queued_age: None,
            bytes_left: self.config.max_queue_bytes.saturating_sub(core.queue_bytes),
            pause_time_left,
            blocked: core.blocked,
            replayed: core.replayed,
            remaining: if catching_up { queued_records } else { 0 },
            drain_rate_per_sec: rate,
            eta: (catching_up && rate > 0.0).then(|| Duration::from_secs_f64(queued_records as f64 / rate)),
            error_records: core.errors.len(),
            error_bytes: core.error_bytes,
            last_error: core.last_error.clone(),
        };
        drop(core);
        if head <= tail {
            if let Some(Ok(entry)) = self.data.reader(head).next() {
                if let (true, Some(record)) = (entry.seq() <= tail, codec::decode_record(entry.seq(), entry.body())) {
                    stats.oldest_queued_age = Some(now.duration_since(record.queued_at).unwrap_or_default());
                }
            }
        }
        stats
    }

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

    fn discard_errors(&self, selection: Selection) -> Result<u64> {
        let mut core = self.lock();
        let seqs = self.select_errors(&core, &selection)?;
        if seqs.is_empty() {
            return Ok(0);
        }
        let ranges = to_ranges(&seqs);
        self.commit(Commit { remove_errors: ranges.clone(), ..Commit::default() }, true)?;
        if selection == Selection::All {
            core.errors = KeyIndex::new();
        } else {
            // In chunks: a key can hold many errors, and each chunk holds
            // its records in memory and the data log's lock while planned.
            for chunk in seqs.chunks(DISCARD_READ_CHUNK_RECORDS) {
                for (&seq, record) in chunk.iter().zip(crate::views::read_many(&self.data, chunk)?) {
                    if let Some(record) = record {
                        core.errors.remove(&record.key, seq);
                    }
                }
            }
        }
        for &(lo, hi) in &ranges {
            core.error_table.remove(lo, hi);
            core.error_bytes = core.error_bytes.saturating_sub(self.data.range_bytes(lo..=hi));
            self.data.release(lo..=hi).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        tracing::info!(map = %self.name, discarded = seqs.len(), "catch-up errors discarded");
        self.changed.notify_all();
        Ok(seqs.len() as u64)
    }

    /// Writes a snapshot and drops the meta log before it, when it has grown.
    pub fn compact_meta_if_needed(&self, core: &Core) -> Result<()> {
        if self.meta.live_bytes() < META_COMPACT_BYTES {
            return Ok(());
        }
        let snapshot = MetaEvent::Snapshot {
            state: core.state,
            blocked: core.blocked,
            head: core.head,
            errors: core.error_table.runs().cloned().collect(),
        };
        let wal_error = |e| Error::from_wal(&self.name, e);
        let seq = self.meta.append_unsynced(&codec::encode_event(&snapshot)).map_err(wal_error)?;
        self.meta.sync_through(seq).map_err(wal_error)?;
        self.meta.release_through(seq - 1).map_err(wal_error)?;
        tracing::debug!(map = %self.name, "meta log compacted into a snapshot");
        Ok(())
    }

    /// Stops background work and saves the index checkpoints (clean close).
    pub fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        drop(self.stop_replay(self.lock()));
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            let _ = worker.join();
        }
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()));
        for (job, _) in &jobs {
            job.cancel();
        }
        for (_, handle) in jobs {
            let _ = handle.join();
        }
        let wal_error = |e| Error::from_wal(&self.name, e);
        self.data.sync().map_err(wal_error)?;
        self.meta.sync().map_err(wal_error)?;
        let core = self.lock();
        let checkpoint = Checkpoint { applied_through: core.tail, tag: self.meta.next_seq() - 1 };
        let store = &self.ctx.index_store;
        store.save(&format!("{}/queue", self.name), &core.queue, checkpoint).map_err(Error::from_index)?;
        store.save(&format!("{}/errors", self.name), &core.errors, checkpoint).map_err(Error::from_index)?;
        tracing::debug!(map = %self.name, "table map closed");
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
