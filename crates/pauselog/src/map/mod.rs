//! Table maps: the public handle, the state shared by its threads, and the
//! views. The state machine lives in `transitions`, submits in `submit`,
//! rules in `rules`, catch-up error bookkeeping in `errors`; `Core` keeps
//! the counters consistent.

mod core;
mod counters;
mod errors;
mod lists;
mod rules;
mod submit;
mod transitions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pauselog_wal::{SyncPolicy, Wal};

pub(crate) use self::core::{key_hash, lane_of, Core, CoreParts, SeqState, StoppedOutcome, SEQ_RESERVE_BLOCK};
pub(crate) use self::errors::to_ranges;
pub(crate) use self::lists::{List, Lists};

use crate::clock::{from_nanos, Clock};
use crate::meta::{self, Commit, MetaEvent, Snapshot, StoredState};
use crate::retry::{RetryJob, RetryShared};
use crate::{
    CatchupError, Destination, Error, MapConfig, MapCounters, MapState, MapStats, Page, PauseRule, Query, QueuedRecord,
    Record, Result, ResumeMode, Selection, Submitted, KEY_BYTES_MAX, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX,
};

/// Meta log size after which it is compacted into one snapshot.
const META_COMPACT_BYTES: u64 = 8 * 1024 * 1024;

/// What every map of an engine shares.
#[derive(Debug)]
pub(crate) struct EngineCtx {
    pub dir: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub sync: SyncPolicy,
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
    core: Mutex<Core>,
    /// Notified on every state change, replay commit and end of a live,
    /// pass-through or retry delivery.
    pub changed: Condvar,
    /// Replay threads started so far (stopped ones exit on their own).
    pub workers: Mutex<Vec<JoinHandle<()>>>,
    pub jobs: Mutex<Vec<(Arc<RetryShared>, JoinHandle<()>)>>,
    pub closed: AtomicBool,
    /// The last submit was queued: the next one encodes its record before
    /// it takes the map lock, so the lock is held for the append and the
    /// index insert only. A hint: a wrong guess costs one encode.
    pub queueing_hint: AtomicBool,
    /// Submits by outcome, since the map was opened.
    pub submits: counters::SubmitCounters,
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

/// Checks a map's configuration before anything is opened (R20).
pub(crate) fn validate_config(name: &str, config: &MapConfig) -> Result<()> {
    let invalid = |what: String| Err(Error::InvalidInput(format!("table map {name}: {what}")));
    let health_rules =
        config.rules.iter().filter(|rule| matches!(rule, PauseRule::DestinationUnavailable { .. })).count();
    if health_rules > 1 {
        return invalid(format!(
            "{health_rules} DestinationUnavailable rules; give one (two thresholds on one count only mean the smaller)"
        ));
    }
    for rule in &config.rules {
        if let PauseRule::Window { start, end, .. } = rule {
            if end <= start {
                return invalid("a maintenance window must end after it starts".into());
            }
        }
    }
    if config.lanes == 0 || config.lanes > 256 {
        return invalid(format!("lanes is {}; it must be between 1 and 256", config.lanes));
    }
    if config.replay_batch_records == 0 || config.replay_batch_bytes == 0 {
        return invalid("replay_batch_records and replay_batch_bytes must be at least 1".into());
    }
    if config.backoff_min.is_zero() || config.backoff_min > config.backoff_max {
        return invalid("backoff_min must be above zero and at most backoff_max".into());
    }
    Ok(())
}

impl TableMap {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Submits a record: delivered live while Running (R1), queued durably
    /// while Paused or CatchingUp (R2, R3), or passed through live during
    /// catch-up when `MapConfig::live_pass_through` allows it (R23). Every
    /// record gets a seq from the map's one sequence (R21).
    pub fn submit(&self, record: Record) -> Result<Submitted> {
        let outcome = self.shared.submit(record);
        self.shared.submits.count(&outcome);
        outcome
    }

    /// Pauses the map (R5): from Running; a no-op when Paused; from
    /// CatchingUp it stops the replay with the rest still queued in order.
    pub fn pause(&self) -> Result<()> {
        self.shared.pause(crate::PauseReason::Manual)
    }

    /// Resumes a paused map (R12, R13). A refused resume changes nothing.
    pub fn resume(&self, mode: ResumeMode) -> Result<()> {
        let now = self.shared.ctx.clock.now();
        let mut core = self.shared.lock()?;
        self.shared.resume_locked(&mut core, mode, now)
    }

    /// During catch-up, goes live at once (R16): the records not replayed yet
    /// move to the catch-up errors (`preserve`) or are discarded. A refused
    /// skip (the errors list would pass its cap) changes nothing: the map
    /// goes on catching up.
    pub fn skip_to_live(&self, preserve: bool) -> Result<()> {
        self.shared.skip_to_live(preserve)
    }

    /// The state now.
    pub fn state(&self) -> MapState {
        let core = self.shared.lock_to_read();
        self.shared.state_of(&core)
    }

    /// The operator's figures (R9).
    pub fn stats(&self) -> MapStats {
        self.shared.stats()
    }

    /// Counters for monitoring: submits by outcome and the durations of
    /// the fsyncs of the map's logs, since the map was opened.
    pub fn counters(&self) -> MapCounters {
        MapCounters {
            submits: self.shared.submits.snapshot(),
            data_sync_latency: self.shared.data.sync_latency(),
            meta_sync_latency: self.shared.meta.sync_latency(),
        }
    }

    /// A page of the queued records, in seq order (R10, R11).
    pub fn queued(&self, query: &Query) -> Result<Page<QueuedRecord>> {
        let limit = page_limit(query)?;
        if let Some(key) = &query.key {
            validate_key(key)?;
        }
        let page = {
            let core = self.shared.lock_to_read();
            core.page(&self.shared.data, List::Queue, query.key.as_deref(), query.after.as_deref(), limit)?
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
            let core = self.shared.lock_to_read();
            let page =
                core.page(&self.shared.data, List::Errors, query.key.as_deref(), query.after.as_deref(), limit)?;
            let runs = crate::views::runs_of(&core.error_table, &page.seqs);
            (page, runs)
        };
        let items = crate::views::read_errors(&self.shared.data, &page.seqs, runs)?;
        Ok(Page { items, next: page.next, total: page.total })
    }

    /// Retries catch-up errors in the background (R16, R16a), in the map's
    /// lanes (R22); `Superseded` entries are left alone (R16b).
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
            let core = self.shared.lock_to_read();
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
    pub fn new(
        name: &str,
        config: MapConfig,
        ctx: &Arc<EngineCtx>,
        data: Wal,
        meta: Wal,
        destination: Arc<dyn Destination>,
        core: Core,
    ) -> MapShared {
        MapShared {
            name: name.to_owned(),
            config,
            ctx: ctx.clone(),
            data,
            meta,
            destination: RwLock::new(destination),
            core: Mutex::new(core),
            changed: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            jobs: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            queueing_hint: AtomicBool::new(false),
            submits: counters::SubmitCounters::default(),
        }
    }

    /// The map's lock, for a change. A thread that panicked while holding
    /// it (a broken invariant) left the state unknown: the map answers
    /// `Error::Poisoned` until the engine is reopened.
    pub fn lock(&self) -> Result<MutexGuard<'_, Core>> {
        self.core.lock().map_err(|_| self.poisoned_error())
    }

    /// The map's lock, to read figures: a poisoned map still shows them.
    pub fn lock_to_read(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on `changed` with the lock, keeping the poison check.
    pub fn wait<'a>(&'a self, core: MutexGuard<'a, Core>) -> Result<MutexGuard<'a, Core>> {
        self.changed.wait(core).map_err(|_| self.poisoned_error())
    }

    /// Waits on `changed` with the lock for at most `timeout`.
    pub fn wait_timeout<'a>(&'a self, core: MutexGuard<'a, Core>, timeout: Duration) -> Result<MutexGuard<'a, Core>> {
        self.changed.wait_timeout(core, timeout).map(|(core, _)| core).map_err(|_| self.poisoned_error())
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            map: self.name.clone(),
            reason: "a thread panicked while changing the map's state (a broken invariant; see the log)".into(),
        }
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
            StoredState::CatchingUp => {
                MapState::CatchingUp { replayed: core.replayed, remaining: core.queue_records() }
            }
        }
    }

    /// Appends a commit to the meta log; `durable` syncs it (unless the
    /// engine runs with `SyncPolicy::Never`). Callers change `Core` only after
    /// this succeeds, so a failed commit changes nothing.
    pub fn commit(&self, commit: Commit, durable: bool) -> Result<()> {
        let body = meta::encode_event(&MetaEvent::Commit(commit));
        let seq = self.meta.append_unsynced(&body).map_err(|e| Error::from_wal(&self.name, e))?;
        if durable && self.ctx.sync != SyncPolicy::Never {
            self.meta.sync_through(seq).map_err(|e| Error::from_wal(&self.name, e))?;
        }
        Ok(())
    }

    /// Makes sure every seq up to `seq` is covered by a durable reservation
    /// before it is handed out (R21).
    pub fn reserve_seqs(&self, core: &mut Core, seq: u64) -> Result<()> {
        if seq <= core.seqs.reserved_through {
            return Ok(());
        }
        let through = seq.checked_add(SEQ_RESERVE_BLOCK).expect("seqs stay far below u64::MAX");
        self.commit(Commit { seq_reserved: Some(through), ..Commit::default() }, true)?;
        if self.ctx.sync == SyncPolicy::Never {
            // `commit` leaves it unsynced under Never, but a seq the
            // destination may see must not come back after a crash under any
            // policy (R21); one fsync per SEQ_RESERVE_BLOCK seqs.
            self.meta.sync().map_err(|e| Error::from_wal(&self.name, e))?;
        }
        core.seqs.reserved_through = through;
        Ok(())
    }

    fn stats(&self) -> MapStats {
        let now = self.ctx.clock.now();
        let core = self.lock_to_read();
        let state = self.state_of(&core);
        let (head, tail) = (core.head, core.tail);
        let queued_records = core.queue_records();
        let catching_up = core.state == StoredState::CatchingUp;
        let rate = if catching_up { core.drain.now_per_sec() } else { 0.0 };
        let pause_time_left = match core.state {
            StoredState::Paused { since_nanos, .. } => Some(
                self.config.max_pause.saturating_sub(now.duration_since(from_nanos(since_nanos)).unwrap_or_default()),
            ),
            _ => None,
        };
        let mut stats = MapStats {
            state,
            queued_records,
            queued_bytes: core.queue_bytes(),
            oldest_queued_age: None,
            bytes_left: self.config.max_queue_bytes.saturating_sub(core.queue_bytes()),
            pause_time_left,
            blocked: core.blocked,
            replayed: core.replayed,
            remaining: if catching_up { queued_records } else { 0 },
            drain_rate_per_sec: rate,
            eta: (catching_up && rate > 0.0).then(|| Duration::from_secs_f64(queued_records as f64 / rate)),
            error_records: core.error_records(),
            error_bytes: core.error_bytes(),
            last_error: core.last_error.clone(),
            lanes_busy: if catching_up { core.lanes_busy } else { 0 },
            passed_through: core.passed_through,
            damage: None,
        };
        let oldest = core.first_queued(&self.data);
        drop(core);
        stats.damage = [&self.data, &self.meta]
            .into_iter()
            .find_map(|log| log.damage())
            .map(|damage| format!("{} at offset {}: {}", damage.path.display(), damage.offset, damage.reason));
        if let Some(seq) = oldest.filter(|&seq| (head..=tail).contains(&seq)) {
            if let Ok(Some(record)) = crate::views::read_record(&self.data, seq) {
                stats.oldest_queued_age = Some(now.duration_since(record.queued_at).unwrap_or_default());
            }
        }
        stats
    }

    /// Writes a snapshot and drops the meta log before it, when it has grown.
    pub fn compact_meta_if_needed(&self, core: &Core) -> Result<()> {
        if self.meta.live_bytes() < META_COMPACT_BYTES {
            return Ok(());
        }
        let snapshot = MetaEvent::Snapshot(Snapshot {
            state: core.state,
            blocked: core.blocked,
            head: core.head,
            errors: core.error_table.runs().cloned().collect(),
            seq_reserved: Some(core.seqs.reserved_through),
            windows: core.windows.clone(),
        });
        let wal_error = |e| Error::from_wal(&self.name, e);
        let seq = self.meta.append_unsynced(&meta::encode_event(&snapshot)).map_err(wal_error)?;
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
        if let Ok(core) = self.lock() {
            drop(self.stop_replay(core));
        }
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
        let core = self.lock()?;
        // The seqs actually handed out, so that the next open continues
        // right after them instead of after the reservation (R21).
        let issued_through = core.seqs.live_next.max(self.data.next_seq()) - 1;
        if issued_through < core.seqs.reserved_through {
            self.commit(Commit { seq_reserved: Some(issued_through), ..Commit::default() }, false)?;
        }
        self.meta.sync().map_err(wal_error)?;
        drop(core);
        // The memory run becomes a run file, so a reopen reads no log.
        self.lock()?.keys.flush().map_err(Error::from_index)?;
        tracing::debug!(map = %self.name, "table map closed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{DeliveryError, Destination, Engine, Error, MapConfig, Op, QueuedRecord, Record, Submitted};

    #[derive(Debug)]
    struct Accept;

    impl Destination for Accept {
        fn deliver(&self, _: &QueuedRecord) -> Result<(), DeliveryError> {
            Ok(())
        }
    }

    /// A thread that panicked while changing a map's state (a broken
    /// invariant, e.g. an accounting underflow) leaves it unknown: every
    /// change answers `Error::Poisoned` until the engine is reopened, which
    /// recomputes the state from the logs; the figures stay readable.
    #[test]
    fn a_panic_under_the_map_lock_poisons_the_map_until_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let open = || Engine::builder(dir.path()).tick_interval(None).open().expect("engine");
        let engine = open();
        let map = engine.table_map("m", MapConfig::default(), Arc::new(Accept)).expect("map");
        map.pause().expect("pause");
        map.submit(Record::new("K", Op::Update, b"v1".to_vec())).expect("queued");
        let shared = map.shared.clone();
        let panicked = std::thread::spawn(move || {
            let _core = shared.core.lock().expect("not poisoned yet");
            panic!("a broken invariant");
        })
        .join();
        assert!(panicked.is_err());
        let poisoned = |result: crate::Result<()>| matches!(result, Err(Error::Poisoned { .. }));
        assert!(poisoned(map.resume(crate::ResumeMode::CatchUp)));
        assert!(poisoned(map.submit(Record::new("K", Op::Update, b"v2".to_vec())).map(drop)));
        assert!(poisoned(map.discard_errors(crate::Selection::All).map(drop)));
        assert_eq!(map.stats().queued_records, 1, "the figures stay readable");
        drop(map);
        assert!(matches!(engine.close(), Err(Error::Poisoned { .. })), "close reports the poisoned map");

        let engine = open();
        let map = engine.table_map("m", MapConfig::default(), Arc::new(Accept)).expect("map");
        assert_eq!(map.stats().queued_records, 1, "nothing acknowledged was lost");
        assert!(matches!(map.submit(Record::new("K", Op::Update, b"v3".to_vec())), Ok(Submitted::Queued { .. })));
    }
}
