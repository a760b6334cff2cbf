//! The engine's power-loss model: one table map on the crash-simulating
//! storage, driven by [`ModelOp`]s, against a reference model of what the
//! spec says the map holds (state, queue in seq order, catch-up errors with
//! their reasons, attempts and times, what the destination received).
//!
//! [`Harness::apply`] runs one operation on the engine and on the model and
//! then checks, at every step and after every reopen:
//! - nothing acknowledged (`Queued`) under `SyncPolicy::Always` is lost: it
//!   is queued, in the catch-up errors, delivered, or was discarded on
//!   purpose (R2, R17);
//! - every seq the map hands out is new, above every seq seen before, also
//!   after a crash; every record delivered carries the seq it was queued
//!   with, and per key the seqs accepted by the destination strictly
//!   increase across live, catch-up, skip and retry, but for a forced
//!   retry (R16b, R21);
//! - the queue, the errors and what was delivered are exactly what the
//!   spec's rules give (R3, R5–R8, R12–R16b);
//! - counts, bytes, totals and pages agree with a full listing (R6, R9, R10);
//! - state, queue and errors survive a clean reopen and a power loss
//!   unchanged: at rest, everything an operation changed is synced (R4,
//!   R17).
//!
//! The engine runs its replay and retries on threads; the harness lets each
//! operation come to rest (a catch-up whose destination is up drains to
//! Running; a retry job finishes) before it checks. One thing stays in
//! motion: a Strict catch-up whose destination is down still holds back,
//! and may commit as `BlockedByEarlierFailure`, queued records of keys that
//! have catch-up errors. Those records are *ambiguous* in the model: each
//! may be found either where the model put it or as such an error, and the
//! model adopts what it finds once the map is at rest.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pauselog::{
    CatchupError, Clock, DeliveryError, Destination, Engine, Error, ErrorReason, KeyOrdering, Limit, ManualClock,
    MapConfig, MapState, Op, PauseReason, PauseRule, Query, QueuedRecord, Record, ResumeMode, Selection, Submitted,
    SyncPolicy, TableMap,
};
use pauselog_wal::{CrashMode, SimStorage};

use crate::faults::FaultStorage;
use crate::{all_errors, all_queued, epoch, WAIT};

/// The integration keys the model submits (one not ASCII).
pub const MODEL_KEYS: [&str; 4] = ["A", "B|1", "Ç-2", "D"];
/// The map's name.
const MAP: &str = "m";
/// Data log segments of the model: the smallest the log takes, so that
/// rotations and segment deletions happen every few records.
const SEGMENT_BYTES: u64 = 4096;
/// The model's pause-age cap.
pub const MODEL_MAX_PAUSE: Duration = Duration::from_secs(3600);
/// A data log body is the record's key and payload plus this header.
const RECORD_HEADER_BYTES: usize = 13;
/// What the model's destination answers when it is down.
const DOWN_TEXT: &str = "destination is down";
/// The `last_error` of an entry a newer delivery superseded (R16b).
const SUPERSEDED_TEXT: &str = "a newer record of this key was delivered";

/// The encoded size of a queued record as the caps count it (R6).
pub fn record_bytes(key: &str, payload_bytes: usize) -> u64 {
    pauselog_wal::frame_bytes(RECORD_HEADER_BYTES + key.len() + payload_bytes)
}

fn reject_text(key: &str) -> String {
    format!("validation failed for {key}")
}

/// The configuration of one model run.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Per-key order of the catch-up (R15).
    pub ordering: KeyOrdering,
    /// Key lanes of the catch-up and of retries (R22).
    pub lanes: usize,
    /// Records per `deliver_batch` call.
    pub batch_records: usize,
    /// The size cap, `max_queue_bytes` (R6).
    pub max_queue_bytes: u64,
    /// A maintenance window: start (seconds after [`epoch`]), length in
    /// seconds, and the resume mode at its end (R14).
    pub window: Option<(u64, u64, Option<ResumeMode>)>,
    /// A `DestinationUnavailable { consecutive }` rule (R14).
    pub health_rule: Option<u32>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            ordering: KeyOrdering::Strict,
            lanes: 1,
            batch_records: 2,
            max_queue_bytes: 2000,
            window: None,
            health_rule: None,
        }
    }
}

impl ModelConfig {
    fn window(&self) -> Option<(SystemTime, SystemTime, Option<ResumeMode>)> {
        self.window.map(|(start, length, resume)| {
            let start = epoch() + Duration::from_secs(start);
            (start, start + Duration::from_secs(length.max(1)), resume)
        })
    }

    /// The map's configuration.
    pub fn map_config(&self) -> MapConfig {
        let mut rules = Vec::new();
        if let Some((start, end, resume)) = self.window() {
            rules.push(PauseRule::Window { start, end, resume });
        }
        if let Some(consecutive) = self.health_rule {
            rules.push(PauseRule::DestinationUnavailable { consecutive });
        }
        MapConfig {
            max_queue_bytes: self.max_queue_bytes,
            max_pause: MODEL_MAX_PAUSE,
            key_ordering: self.ordering,
            rules,
            replay_batch_records: self.batch_records.max(1),
            lanes: self.lanes.max(1),
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(10),
            ..MapConfig::default()
        }
    }
}

/// Which catch-up errors a retry or a discard selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// `Selection::All`.
    All,
    /// `Selection::Key` of `MODEL_KEYS[i % 4]`.
    Key(usize),
    /// `Selection::Seqs` of the model's error entries at these indexes
    /// (modulo their count), plus a seq that was never an error.
    Seqs(Vec<usize>),
}

/// One operation of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelOp {
    /// Submits a record of `MODEL_KEYS[key % 4]` with a payload of this size.
    Submit {
        /// Index into [`MODEL_KEYS`].
        key: usize,
        /// Payload bytes.
        payload_bytes: usize,
    },
    /// `pause()`.
    Pause,
    /// `resume(mode)`.
    Resume(ResumeMode),
    /// `skip_to_live(preserve)`.
    SkipToLive {
        /// Preserve the backlog as catch-up errors.
        preserve: bool,
    },
    /// `retry_errors` (or `retry_errors_forced`), waiting for the job.
    Retry {
        /// What to retry.
        pick: Pick,
        /// Also deliver `Superseded` entries.
        forced: bool,
    },
    /// `discard_errors`.
    Discard {
        /// What to discard.
        pick: Pick,
    },
    /// The destination goes down (answers `Unavailable`) or comes back.
    Destination {
        /// Down from now on.
        down: bool,
    },
    /// The destination starts or stops rejecting a key.
    Reject {
        /// Index into [`MODEL_KEYS`].
        key: usize,
        /// Reject from now on.
        rejected: bool,
    },
    /// Moves the engine's clock forward.
    Advance {
        /// Seconds.
        secs: u64,
    },
    /// `Engine::tick()`.
    Tick,
    /// A power loss: unsynced writes are dropped, or a torn prefix of
    /// `torn_bytes` of each file's unsynced writes is kept; the key index
    /// is kept or deleted; then the engine is opened again.
    Crash {
        /// Unsynced bytes kept per file (a torn write).
        torn_bytes: Option<usize>,
        /// Keep the key index (else it is deleted: R19a).
        keep_index: bool,
    },
    /// A clean close and open.
    Reopen,
}

impl ModelOp {
    /// Decodes operations from arbitrary bytes (the fuzz target's input):
    /// every byte string is a valid, deterministic sequence.
    pub fn decode_all(mut bytes: &[u8]) -> Vec<ModelOp> {
        let mut next = move || {
            let (&first, rest) = bytes.split_first()?;
            bytes = rest;
            Some(first)
        };
        let mut ops = Vec::new();
        while let Some(tag) = next() {
            let arg = next().unwrap_or(0) as usize;
            let op = match tag % 16 {
                0..=3 => ModelOp::Submit { key: arg % 4, payload_bytes: (arg / 4) * 3 },
                4 => ModelOp::Pause,
                5 => ModelOp::Resume(resume_mode(arg)),
                6 => ModelOp::SkipToLive { preserve: arg.is_multiple_of(2) },
                7 => ModelOp::Retry { pick: pick(arg), forced: arg & 0x80 != 0 },
                8 => ModelOp::Discard { pick: pick(arg) },
                9 => ModelOp::Destination { down: arg.is_multiple_of(2) },
                10 => ModelOp::Reject { key: arg % 4, rejected: arg & 4 == 0 },
                11 => ModelOp::Advance { secs: [1, 60, 600, 1800, 4000][arg % 5] },
                12 => ModelOp::Tick,
                13 => ModelOp::Crash {
                    torn_bytes: (!arg.is_multiple_of(3)).then_some(arg * 7),
                    keep_index: arg & 0x80 == 0,
                },
                14 => ModelOp::Reopen,
                _ => ModelOp::Submit { key: arg % 4, payload_bytes: 1 },
            };
            ops.push(op);
        }
        ops
    }
}

fn resume_mode(arg: usize) -> ResumeMode {
    [ResumeMode::CatchUp, ResumeMode::SkipToLivePreserve, ResumeMode::SkipToLiveDiscard][arg % 3]
}

fn pick(arg: usize) -> Pick {
    match arg % 4 {
        0 | 1 => Pick::All,
        2 => Pick::Key(arg / 4),
        _ => Pick::Seqs(vec![arg / 4, arg / 16]),
    }
}

impl ModelConfig {
    /// Decodes a configuration from two bytes (the fuzz target's input).
    pub fn decode(a: u8, b: u8) -> ModelConfig {
        ModelConfig {
            ordering: if a & 1 == 0 { KeyOrdering::Strict } else { KeyOrdering::BestEffort },
            lanes: if a & 2 == 0 { 1 } else { 3 },
            batch_records: 1 + usize::from((a >> 2) & 3),
            max_queue_bytes: 400 + 200 * u64::from(a >> 4),
            window: (b & 3 != 0).then(|| {
                let resume =
                    [None, Some(ResumeMode::CatchUp), Some(ResumeMode::SkipToLivePreserve)][usize::from(b >> 2) % 3];
                (u64::from(b >> 4) * 600, 1800, resume)
            }),
            health_rule: (b & 4 != 0).then_some(2),
        }
    }
}

/// One call the destination received, with its answer.
#[derive(Debug, Clone)]
pub struct Call {
    /// The record as delivered.
    pub record: QueuedRecord,
    /// What the destination answered.
    pub answer: Result<(), DeliveryError>,
}

/// The model's destination: records every call with its answer; can be
/// told to be down or to reject keys.
#[derive(Debug, Default)]
pub struct ModelDest {
    calls: Mutex<Vec<Call>>,
    rejected: Mutex<HashSet<String>>,
    down: AtomicBool,
}

impl ModelDest {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn set_rejected(&self, key: &str, rejected: bool) {
        let mut keys = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        if rejected {
            keys.insert(key.to_owned());
        } else {
            keys.remove(key);
        }
    }

    fn calls_from(&self, from: usize) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())[from..].to_vec()
    }
}

impl Destination for ModelDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        let answer = if self.down.load(Ordering::SeqCst) {
            Err(DeliveryError::Unavailable(DOWN_TEXT.into()))
        } else if self.rejected.lock().unwrap_or_else(|p| p.into_inner()).contains(&record.key) {
            Err(DeliveryError::Rejected(reject_text(&record.key)))
        } else {
            Ok(())
        };
        let call = Call { record: record.clone(), answer: answer.clone() };
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        answer
    }
}

/// A record as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    seq: u64,
    key: String,
    payload: Vec<u8>,
    queued_at: SystemTime,
}

impl Rec {
    fn bytes(&self) -> u64 {
        record_bytes(&self.key, self.payload.len())
    }

    fn matches(&self, record: &QueuedRecord) -> bool {
        record.seq == self.seq
            && record.key == self.key
            && record.payload == self.payload
            && record.queued_at == self.queued_at
            && record.op == Op::Update
    }
}

/// A catch-up error as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    rec: Rec,
    reason: ErrorReason,
    attempts: u32,
    last_error: Option<String>,
    first_failed_at: SystemTime,
    last_failed_at: SystemTime,
}

impl Entry {
    fn new(rec: Rec, reason: ErrorReason, attempts: u32, last_error: Option<String>, at: SystemTime) -> Entry {
        Entry { rec, reason, attempts, last_error, first_failed_at: at, last_failed_at: at }
    }

    fn matches(&self, error: &CatchupError) -> bool {
        self.rec.matches(&error.record)
            && error.reason == self.reason
            && error.attempts == self.attempts
            && error.last_error == self.last_error
            && error.first_failed_at == self.first_failed_at
            && error.last_failed_at == self.last_failed_at
    }

    /// The entry a stopped Strict replay commits for a record it held back.
    fn is_held_back(error: &CatchupError) -> bool {
        error.reason == ErrorReason::BlockedByEarlierFailure && error.attempts == 0 && error.last_error.is_none()
    }

    fn observed(rec: Rec, error: &CatchupError) -> Entry {
        Entry {
            rec,
            reason: error.reason,
            attempts: error.attempts,
            last_error: error.last_error.clone(),
            first_failed_at: error.first_failed_at,
            last_failed_at: error.last_failed_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Paused { since: SystemTime, reason: PauseReason },
    CatchingUp,
}

/// What the engine shows: queue and errors by seq, and the figures.
struct Seen {
    state: MapState,
    stats: pauselog::MapStats,
    queue: BTreeMap<u64, QueuedRecord>,
    errors: BTreeMap<u64, CatchupError>,
}

/// Figures of a run, for the long-run report.
#[derive(Debug, Default, Clone, Copy)]
pub struct ModelFigures {
    /// Operations applied.
    pub ops: u64,
    /// Simulated power losses.
    pub crashes: u64,
    /// Clean reopens.
    pub reopens: u64,
    /// Records acknowledged as queued.
    pub acked: u64,
    /// Deliveries the destination accepted.
    pub accepted: u64,
}

/// The engine under test and the reference model side by side.
pub struct Harness {
    config: ModelConfig,
    map_config: MapConfig,
    sim: SimStorage,
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    dest: Arc<ModelDest>,
    storage: FaultStorage,
    engine: Option<Engine>,
    map: Option<TableMap>,
    calls_seen: usize,

    state: State,
    blocked: Option<Limit>,
    queue: BTreeMap<u64, Rec>,
    errors: BTreeMap<u64, Entry>,
    /// Queued records a stalled Strict replay may hold back (module docs).
    ambiguous: BTreeSet<u64>,
    acked: BTreeMap<u64, Rec>,
    /// Acked seqs the destination accepted at least once.
    delivered: BTreeSet<u64>,
    /// Acked seqs discarded on purpose (skip with discard, discarded errors).
    discarded: BTreeSet<u64>,
    /// Highest seq seen so far, acknowledged or delivered.
    max_seq: u64,
    /// Highest seq the destination accepted, per key.
    key_last: HashMap<String, u64>,
    consecutive_unavailable: u32,
    /// The window's marks: started, ended.
    window_marks: (bool, bool),
    rejected: HashSet<String>,
    down: bool,
    payload_counter: u64,
    /// Acked seqs the current operation should have delivered.
    expect_delivered: Vec<u64>,
    /// A live delivery the current operation should have attempted.
    expect_live: Option<(String, Vec<u8>)>,
    forced_retry: bool,
    /// Acked seqs the destination accepted so far in the current operation.
    accepted: Vec<u64>,
    /// The model before each operation, and the operation: printed when a
    /// check fails.
    trace: Vec<String>,
    figures: ModelFigures,
}

impl std::fmt::Debug for Harness {
    /// The model's side: the engine's is what its own `Debug` shows.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("state", &self.state)
            .field("blocked", &self.blocked)
            .field("queued", &self.queue.len())
            .field("errors", &self.errors.len())
            .field("acked", &self.acked.len())
            .field("delivered", &self.delivered.len())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// An engine on a fresh simulated storage (and a temp dir for its lock
    /// and key index), with one map configured by `config`.
    pub fn new(config: ModelConfig) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = SimStorage::new();
        let clock = Arc::new(ManualClock::new(epoch()));
        let map_config = config.map_config();
        let mut harness = Harness {
            config,
            map_config,
            storage: FaultStorage::over_sim(&sim),
            sim,
            dir,
            clock,
            dest: Arc::new(ModelDest::default()),
            engine: None,
            map: None,
            calls_seen: 0,
            state: State::Running,
            blocked: None,
            queue: BTreeMap::new(),
            errors: BTreeMap::new(),
            ambiguous: BTreeSet::new(),
            acked: BTreeMap::new(),
            delivered: BTreeSet::new(),
            discarded: BTreeSet::new(),
            max_seq: 0,
            key_last: HashMap::new(),
            consecutive_unavailable: 0,
            window_marks: (false, false),
            rejected: HashSet::new(),
            down: false,
            payload_counter: 0,
            expect_delivered: Vec::new(),
            expect_live: None,
            forced_retry: false,
            accepted: Vec::new(),
            trace: Vec::new(),
            figures: ModelFigures::default(),
        };
        harness.open();
        harness
    }

    /// The figures so far.
    pub fn figures(&self) -> ModelFigures {
        self.figures
    }

    fn open(&mut self) {
        self.storage = FaultStorage::over_sim(&self.sim);
        let engine = Engine::builder(self.dir.path())
            .sync(SyncPolicy::Always)
            .clock(self.clock.clone())
            .tick_interval(None)
            .segment_bytes_max(SEGMENT_BYTES)
            .storage(self.storage.seam())
            .admin_socket(false)
            .open()
            .expect("the engine opens");
        let map = engine.table_map(MAP, self.map_config.clone(), self.dest.clone()).expect("the map opens");
        self.engine = Some(engine);
        self.map = Some(map);
    }

    fn map(&self) -> &TableMap {
        self.map.as_ref().expect("the map is open")
    }

    /// Applies one operation to the engine and the model, lets it come to
    /// rest, and checks every invariant (module docs).
    pub fn apply(&mut self, op: &ModelOp) {
        let errors: Vec<(u64, ErrorReason)> = self.errors.values().map(|e| (e.rec.seq, e.reason)).collect();
        let queue: Vec<u64> = self.queue.keys().copied().collect();
        self.trace.push(format!(
            "model {:?}, blocked {:?}, down {}, queue {queue:?}, errors {errors:?}, acked through {:?}\nop {}: {op:?}",
            self.state,
            self.blocked,
            self.down,
            self.acked.keys().next_back(),
            self.figures.ops + 1
        ));
        self.figures.ops += 1;
        self.expect_delivered.clear();
        self.expect_live = None;
        self.forced_retry = false;
        match op {
            ModelOp::Submit { key, payload_bytes } => self.submit(MODEL_KEYS[key % MODEL_KEYS.len()], *payload_bytes),
            ModelOp::Pause => self.pause(),
            ModelOp::Resume(mode) => self.resume(*mode),
            ModelOp::SkipToLive { preserve } => self.skip_to_live(*preserve),
            // While a stalled replay may still move held-back records to
            // the errors, which entries a selection takes is a race: skipped.
            ModelOp::Retry { .. } | ModelOp::Discard { .. } if self.in_motion() => {}
            ModelOp::Retry { pick, forced } => self.retry(pick, *forced),
            ModelOp::Discard { pick } => self.discard(pick),
            ModelOp::Destination { down } => {
                self.down = *down;
                self.dest.set_down(*down);
            }
            ModelOp::Reject { key, rejected } => {
                let key = MODEL_KEYS[key % MODEL_KEYS.len()];
                self.dest.set_rejected(key, *rejected);
                if *rejected {
                    self.rejected.insert(key.to_owned());
                } else {
                    self.rejected.remove(key);
                }
            }
            ModelOp::Advance { secs } => self.clock.advance(Duration::from_secs(*secs)),
            ModelOp::Tick => {
                self.engine.as_ref().expect("open").tick();
                self.evaluate_rules(self.clock.now());
            }
            ModelOp::Crash { torn_bytes, keep_index } => {
                let mode = torn_bytes.map_or(CrashMode::DropUnsynced, CrashMode::KeepUnsyncedPrefix);
                self.reopen(Some(mode), *keep_index);
            }
            ModelOp::Reopen => self.reopen(None, true),
        }
        self.come_to_rest();
        self.process_calls();
        self.check_deliveries();
        self.check(&format!("after {op:?}"));
    }

    /// Ends a run: a clean reopen changes nothing; then, with the
    /// destination up and accepting everything, the map drains to Running
    /// and a forced retry empties the errors: every acknowledged record was
    /// then delivered or discarded on purpose.
    pub fn finish(mut self) {
        self.apply(&ModelOp::Reopen);
        self.apply(&ModelOp::Destination { down: false });
        for key in 0..MODEL_KEYS.len() {
            self.apply(&ModelOp::Reject { key, rejected: false });
        }
        if matches!(self.state, State::Paused { .. }) {
            self.apply(&ModelOp::Resume(ResumeMode::CatchUp));
        }
        assert_eq!(self.state, State::Running, "the map drains to Running");
        self.apply(&ModelOp::Retry { pick: Pick::All, forced: true });
        assert!(self.errors.is_empty(), "a forced retry with the destination up empties the errors");
        for seq in self.acked.keys() {
            assert!(
                self.delivered.contains(seq) || self.discarded.contains(seq),
                "acknowledged seq {seq} was neither delivered nor discarded"
            );
        }
    }

    // ---- operations ------------------------------------------------------

    fn submit(&mut self, key: &str, payload_bytes: usize) {
        self.payload_counter += 1;
        let mut payload = format!("p{}:", self.payload_counter).into_bytes();
        payload.resize(payload_bytes.max(payload.len()), b'x');
        let now = self.clock.now();
        self.evaluate_rules(now);
        let record = Record::new(key, Op::Update, payload.clone());
        let result = self.map().submit(record);
        let rec = Rec { seq: 0, key: key.to_owned(), payload: payload.clone(), queued_at: now };
        if self.state == State::Running {
            // The live attempt took a new seq before any record queued after
            // it (a health rule's pause queues the record).
            self.expect_live = Some((key.to_owned(), payload));
            self.process_calls();
            self.submit_live(rec, result, now);
        } else {
            // A running catch-up may deliver the record before its
            // acknowledgement is noted: the calls are looked at after it.
            self.enqueue(rec, result, now);
        }
    }

    fn submit_live(&mut self, rec: Rec, result: pauselog::Result<Submitted>, now: SystemTime) {
        if self.down {
            self.consecutive_unavailable += 1;
            if self.config.health_rule.is_some_and(|n| self.consecutive_unavailable >= n.max(1)) {
                self.consecutive_unavailable = 0;
                self.set_paused(now, PauseReason::DestinationUnavailable);
                return self.enqueue(rec, result, now);
            }
            assert!(matches!(result, Err(Error::Unavailable { .. })), "live submit to a down destination: {result:?}");
        } else if self.rejected.contains(&rec.key) {
            self.consecutive_unavailable = 0;
            assert!(matches!(result, Err(Error::Rejected { .. })), "live submit of a rejected key: {result:?}");
        } else {
            self.consecutive_unavailable = 0;
            assert!(matches!(result, Ok(Submitted::Live)), "live submit: {result:?}");
            let seq = *self.key_last.get(&rec.key).expect("the live delivery was seen");
            self.supersede(&rec.key, seq, now);
        }
    }

    /// A submit while Paused or CatchingUp: queued, or refused by a cap (R6–R8).
    fn enqueue(&mut self, mut rec: Rec, result: pauselog::Result<Submitted>, now: SystemTime) {
        let refused = |limit: Limit| matches!(&result, Err(Error::Blocked { limit: l, .. }) if *l == limit);
        if let Some(limit) = self.blocked {
            assert!(refused(limit), "a blocked map refuses submits: {result:?}");
            return;
        }
        if let State::Paused { since, .. } = self.state {
            if now.duration_since(since).unwrap_or_default() >= MODEL_MAX_PAUSE {
                assert!(refused(Limit::PauseAge), "a pause past its age cap blocks: {result:?}");
                self.block(Limit::PauseAge);
                return;
            }
        }
        let queued: u64 = self.queue.values().map(Rec::bytes).sum();
        let held_back: u64 = self.ambiguous.iter().filter_map(|seq| self.queue.get(seq)).map(Rec::bytes).sum();
        let over = queued + rec.bytes() > self.config.max_queue_bytes;
        let may_fit = queued - held_back + rec.bytes() <= self.config.max_queue_bytes;
        // A stalled replay that moved held-back records to the errors has
        // freed their queue bytes: the engine may then take the record.
        if over && !(may_fit && matches!(result, Ok(Submitted::Queued { .. }))) {
            assert!(refused(Limit::Size), "a record past the size cap blocks: {result:?}");
            self.block(Limit::Size);
            return;
        }
        let Ok(Submitted::Queued { seq }) = result else { panic!("a queued submit: {result:?}") };
        assert!(seq > self.max_seq, "R21: queued seq {seq} is not above every seq seen ({})", self.max_seq);
        self.max_seq = seq;
        rec.seq = seq;
        self.figures.acked += 1;
        self.acked.insert(seq, rec.clone());
        self.queue.insert(seq, rec);
    }

    fn pause(&mut self) {
        let result = self.map().pause();
        assert!(result.is_ok(), "pause: {result:?}");
        if !matches!(self.state, State::Paused { .. }) {
            self.set_paused(self.clock.now(), PauseReason::Manual);
        }
    }

    fn set_paused(&mut self, now: SystemTime, reason: PauseReason) {
        self.state = State::Paused { since: now, reason };
    }

    fn block(&mut self, limit: Limit) {
        self.blocked = Some(limit);
    }

    fn resume(&mut self, mode: ResumeMode) {
        let result = self.map().resume(mode);
        if !matches!(self.state, State::Paused { .. }) {
            assert!(matches!(result, Err(Error::InvalidState { .. })), "resume outside Paused: {result:?}");
            return;
        }
        assert!(result.is_ok(), "resume({mode:?}): {result:?}");
        self.resumed(mode, self.clock.now());
    }

    /// The model's half of a resume from Paused.
    fn resumed(&mut self, mode: ResumeMode, now: SystemTime) {
        match mode {
            ResumeMode::CatchUp => {
                self.state = State::CatchingUp;
                self.ambiguous.clear();
            }
            ResumeMode::SkipToLivePreserve => self.preserve(now),
            ResumeMode::SkipToLiveDiscard => self.discard_queue(),
            other => unreachable!("the model knows the resume modes of docs/rules.md R7, not {other:?}"),
        }
    }

    fn skip_to_live(&mut self, preserve: bool) {
        let result = self.map().skip_to_live(preserve);
        if self.state != State::CatchingUp {
            assert!(matches!(result, Err(Error::InvalidState { .. })), "skip outside CatchingUp: {result:?}");
            return;
        }
        assert!(result.is_ok(), "skip_to_live({preserve}): {result:?}");
        if preserve {
            self.preserve(self.clock.now());
        } else {
            self.discard_queue();
        }
    }

    /// Skip to live keeping the backlog as `Preserved` errors (R13, R16).
    fn preserve(&mut self, now: SystemTime) {
        for (seq, rec) in std::mem::take(&mut self.queue) {
            self.errors.insert(seq, Entry::new(rec, ErrorReason::Preserved, 0, None, now));
        }
        self.go_live();
    }

    /// Skip to live discarding the backlog (R13, R16).
    fn discard_queue(&mut self) {
        for seq in std::mem::take(&mut self.queue).into_keys() {
            self.discarded.insert(seq);
        }
        self.go_live();
    }

    fn go_live(&mut self) {
        self.state = State::Running;
        self.blocked = None;
        self.consecutive_unavailable = 0;
    }

    fn selection(&self, pick: &Pick) -> (Selection, Vec<u64>) {
        match pick {
            Pick::All => (Selection::All, self.errors.keys().copied().collect()),
            Pick::Key(index) => {
                let key = MODEL_KEYS[index % MODEL_KEYS.len()];
                let seqs = self.errors.values().filter(|e| e.rec.key == key).map(|e| e.rec.seq).collect();
                (Selection::Key(key.to_owned()), seqs)
            }
            Pick::Seqs(indexes) => {
                let listed: Vec<u64> = self.errors.keys().copied().collect();
                let mut asked: Vec<u64> =
                    indexes.iter().filter_map(|i| listed.get(i % listed.len().max(1))).copied().collect();
                let mut seqs = asked.clone();
                asked.push(self.max_seq + 1_000); // never an error: ignored
                seqs.sort_unstable();
                seqs.dedup();
                (Selection::Seqs(asked), seqs)
            }
        }
    }

    /// A retry job, run to its end (R16, R16a, R16b, R22).
    fn retry(&mut self, pick: &Pick, forced: bool) {
        let (selection, seqs) = self.selection(pick);
        let job = if forced { self.map().retry_errors_forced(selection) } else { self.map().retry_errors(selection) };
        let progress = job.expect("retry starts").wait(WAIT).expect("the retry job finishes");
        self.forced_retry = forced;
        let now = self.clock.now();
        let strict = self.config.ordering == KeyOrdering::Strict;
        let (mut delivered, mut failed, mut skipped) = (0u64, 0u64, 0u64);
        let mut failed_keys: HashSet<String> = HashSet::new();
        for &seq in &seqs {
            let entry = self.errors.get(&seq).expect("selected from the errors").clone();
            let key = entry.rec.key.clone();
            if failed_keys.contains(&key) {
                failed += 1;
            } else if (entry.reason == ErrorReason::Superseded && !forced)
                || (self.state == State::CatchingUp && !strict && self.queue.values().any(|r| r.key == key))
            {
                // Superseded without force; or a BestEffort catch-up still
                // has newer records of the key to deliver.
                skipped += 1;
            } else if self.down || self.rejected.contains(&key) {
                let entry = self.errors.get_mut(&seq).expect("present");
                if !self.down {
                    entry.reason = ErrorReason::Rejected;
                }
                entry.attempts += 1;
                entry.last_error = Some(if self.down { DOWN_TEXT.to_owned() } else { reject_text(&key) });
                entry.last_failed_at = now;
                failed_keys.insert(key);
                failed += 1;
            } else {
                self.errors.remove(&seq);
                self.expect_delivered.push(seq);
                self.supersede(&key, seq, now);
                delivered += 1;
            }
        }
        let expected = (seqs.len() as u64, delivered, failed, skipped);
        let got = (progress.total, progress.delivered, progress.failed, progress.skipped);
        assert_eq!(got, expected, "retry progress (total, delivered, failed, skipped)");
        assert!(progress.done && !progress.cancelled, "{progress:?}");
    }

    fn discard(&mut self, pick: &Pick) {
        let (selection, seqs) = self.selection(pick);
        let discarded = self.map().discard_errors(selection).expect("discard_errors");
        assert_eq!(discarded, seqs.len() as u64, "discard_errors count");
        for seq in seqs {
            self.errors.remove(&seq);
            self.discarded.insert(seq);
        }
    }

    /// R16b: a delivery of `seq` of `key` supersedes the key's older errors.
    fn supersede(&mut self, key: &str, seq: u64, now: SystemTime) {
        for entry in self.errors.values_mut() {
            if entry.rec.key == key && entry.rec.seq < seq && entry.reason != ErrorReason::Superseded {
                entry.reason = ErrorReason::Superseded;
                entry.last_error = Some(SUPERSEDED_TEXT.to_owned());
                entry.last_failed_at = now;
            }
        }
    }

    /// Rules on the engine clock, as `submit` and `tick` evaluate them (R7, R14).
    fn evaluate_rules(&mut self, now: SystemTime) {
        if let (State::Paused { since, .. }, None) = (self.state, self.blocked) {
            if now.duration_since(since).unwrap_or_default() >= MODEL_MAX_PAUSE {
                self.block(Limit::PauseAge);
            }
        }
        let Some((start, end, resume)) = self.config.window() else { return };
        let (started, ended) = self.window_marks;
        if !started && now >= start && now < end {
            if !matches!(self.state, State::Paused { .. }) {
                self.set_paused(now, PauseReason::Window { start, end });
            }
            self.window_marks.0 = true;
        }
        if !ended && now >= end {
            let paused_by_it = matches!(self.state,
                State::Paused { reason: PauseReason::Window { start: s, end: e }, .. } if s == start && e == end);
            if let Some(mode) = resume.filter(|_| paused_by_it) {
                self.resumed(mode, now);
            }
            self.window_marks = (true, true);
        }
    }

    // ---- coming to rest ----------------------------------------------------

    /// A catch-up drains to Running when its destination is up, or when it
    /// needs no call (nothing queued, or under Strict ordering every queued
    /// record held back behind its key's errors). A stalled Strict one may
    /// hold back the queued records of keys with errors (module docs).
    fn come_to_rest(&mut self) {
        if self.state != State::CatchingUp {
            return;
        }
        let strict = self.config.ordering == KeyOrdering::Strict;
        let no_call = self.queue.is_empty() || strict && self.queue.values().all(|r| self.key_has_errors(&r.key));
        if self.down && !no_call {
            if strict {
                let held: Vec<u64> =
                    self.queue.values().filter(|r| self.key_has_errors(&r.key)).map(|r| r.seq).collect();
                self.ambiguous.extend(held);
            }
            return;
        }
        let reached = self.map().wait_for(|state| *state == MapState::Running, WAIT);
        assert!(reached.is_ok(), "the catch-up drains to Running: {:?}, {:?}", self.map().state(), self.map().stats());
        let errors = seqs_of(all_errors(self.map(), None), |e| e.record.seq);
        let now = self.clock.now();
        let mut rejected_now: HashSet<String> = HashSet::new();
        for (seq, rec) in std::mem::take(&mut self.queue) {
            let held_back = errors.get(&seq).filter(|e| self.ambiguous.contains(&seq) && Entry::is_held_back(e));
            if let Some(error) = held_back {
                self.errors.insert(seq, Entry::observed(rec, error));
            } else if strict && (rejected_now.contains(&rec.key) || self.key_has_errors(&rec.key)) {
                self.errors.insert(seq, Entry::new(rec, ErrorReason::BlockedByEarlierFailure, 0, None, now));
            } else if self.rejected.contains(&rec.key) {
                rejected_now.insert(rec.key.clone());
                let text = Some(reject_text(&rec.key));
                self.errors.insert(seq, Entry::new(rec, ErrorReason::Rejected, 1, text, now));
            } else {
                self.expect_delivered.push(seq);
                self.supersede(&rec.key, seq, now);
            }
        }
        self.ambiguous.clear();
        self.go_live();
    }

    /// A stalled Strict replay may still move held-back records.
    fn in_motion(&self) -> bool {
        self.state == State::CatchingUp && !self.ambiguous.is_empty()
    }

    fn key_has_errors(&self, key: &str) -> bool {
        self.errors.values().any(|e| e.rec.key == key)
    }

    /// Checks the destination's new calls: live attempts take new seqs,
    /// queued records arrive as they were acknowledged, and per key in
    /// increasing seq order.
    fn process_calls(&mut self) {
        let calls = self.dest.calls_from(self.calls_seen);
        self.calls_seen += calls.len();
        for call in calls {
            let record = &call.record;
            let seq = record.seq;
            if let Some(rec) = self.acked.get(&seq) {
                assert!(rec.matches(record), "seq {seq} delivered as {record:?}, acknowledged as {rec:?}");
                if call.answer.is_ok() {
                    self.accepted.push(seq);
                }
            } else {
                let expected = self.expect_live.take();
                assert!(seq > self.max_seq, "R21: live seq {seq} is not above every seq seen ({})", self.max_seq);
                assert_eq!(
                    expected.as_ref().map(|(k, p)| (k.as_str(), p.as_slice())),
                    Some((record.key.as_str(), record.payload.as_slice())),
                    "an unexpected call with a new seq {seq} (answered {:?})",
                    call.answer
                );
                self.max_seq = seq;
            }
            if call.answer.is_ok() {
                self.figures.accepted += 1;
                self.check_key_order(record);
            }
        }
    }

    /// Exactly the queued records the operation should have delivered were
    /// accepted by the destination.
    fn check_deliveries(&mut self) {
        let mut expected = std::mem::take(&mut self.expect_delivered);
        let mut accepted = std::mem::take(&mut self.accepted);
        expected.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(accepted, expected, "queued records the destination accepted");
        self.delivered.extend(accepted);
    }

    fn check_key_order(&mut self, record: &QueuedRecord) {
        let last = self.key_last.get(&record.key).copied().unwrap_or(0);
        assert!(
            record.seq > last || self.forced_retry,
            "R16b/R21: key {} got seq {} after seq {last} (not a forced retry)",
            record.key,
            record.seq
        );
        self.key_last.insert(record.key.clone(), last.max(record.seq));
    }

    // ---- crash and reopen --------------------------------------------------

    fn reopen(&mut self, crash: Option<CrashMode>, keep_index: bool) {
        if let Some(mode) = crash {
            self.figures.crashes += 1;
            self.storage.crash_now(mode);
        } else {
            self.figures.reopens += 1;
        }
        drop(self.map.take());
        let engine = self.engine.take().expect("open");
        if crash.is_some() {
            drop(engine); // its close finds the storage gone and writes nothing
        } else {
            engine.close().expect("a clean close");
        }
        if !keep_index {
            // The key index is derived data (R19a): the next open rebuilds it.
            match std::fs::remove_dir_all(self.dir.path().join("maps").join(MAP).join("keys")) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => panic!("delete the key index: {error}"),
                _ => {}
            }
        }
        self.open();
        self.consecutive_unavailable = 0;
    }

    // ---- checks ---------------------------------------------------------------

    /// Reads the engine's state, figures and full listings; while a
    /// stalled replay may move records, reads until two readings agree.
    fn observe(&self) -> Seen {
        let map = self.map();
        for _ in 0..1000 {
            let queue = seqs_of(all_queued(map, None), |r| r.seq);
            let errors = seqs_of(all_errors(map, None), |e| e.record.seq);
            let stats = map.stats();
            let state = map.state();
            let queue_again = seqs_of(all_queued(map, None), |r| r.seq);
            let errors_again = seqs_of(all_errors(map, None), |e| e.record.seq);
            let stats_again = map.stats();
            let still = queue_again.keys().eq(queue.keys())
                && errors_again.keys().eq(errors.keys())
                && stats_again.queued_records == stats.queued_records
                && stats_again.error_records == stats.error_records;
            if still {
                return Seen { state, stats, queue, errors };
            }
        }
        panic!("the map's listings never held still");
    }

    fn check(&mut self, context: &str) {
        let seen = self.observe();
        // The state (R1–R5, R8).
        match (self.state, &seen.state) {
            (State::Running, MapState::Running) => {}
            (State::Paused { since, reason }, MapState::Paused { since: s, reason: r, blocked }) => {
                assert_eq!((since, reason, self.blocked), (*s, *r, *blocked), "{context}: the pause")
            }
            (State::CatchingUp, MapState::CatchingUp { remaining, .. }) => {
                assert_eq!(*remaining, seen.queue.len() as u64, "{context}: remaining")
            }
            (expected, state) => panic!("{context}: state {state:?}, the model says {expected:?}"),
        }
        assert_eq!(seen.stats.blocked, self.blocked, "{context}: blocked");
        // Records a stalled Strict replay held back: adopted at rest,
        // tolerated while it may still move them.
        let at_rest = self.state != State::CatchingUp;
        let mut tolerated = BTreeSet::new();
        for seq in self.ambiguous.clone() {
            let Some(error) = seen.errors.get(&seq).filter(|e| Entry::is_held_back(e)) else { continue };
            if self.errors.get(&seq).is_some_and(|entry| entry.matches(error)) {
                continue;
            }
            if at_rest {
                let rec = self.acked[&seq].clone();
                self.queue.remove(&seq);
                self.discarded.remove(&seq);
                self.errors.insert(seq, Entry::observed(rec, error));
            } else if self.queue.contains_key(&seq) {
                tolerated.insert(seq);
            }
        }
        if at_rest {
            self.ambiguous.clear();
        }
        // The queue and the errors, record by record.
        for (seq, rec) in &self.queue {
            match seen.queue.get(seq) {
                Some(record) => assert!(rec.matches(record), "{context}: queued {record:?}, the model says {rec:?}"),
                None => assert!(tolerated.contains(seq), "{context}: queued record {seq} is missing: {rec:?}"),
            }
        }
        for seq in seen.queue.keys() {
            assert!(self.queue.contains_key(seq), "{context}: unexpected queued record {seq}");
        }
        for (seq, error) in &seen.errors {
            match self.errors.get(seq) {
                Some(entry) => assert!(entry.matches(error), "{context}: error {error:?}, the model says {entry:?}"),
                None => assert!(tolerated.contains(seq), "{context}: unexpected catch-up error {error:?}"),
            }
        }
        for (seq, entry) in &self.errors {
            assert!(seen.errors.contains_key(seq), "{context}: catch-up error {seq} is missing: {entry:?}");
        }
        // Nothing acknowledged is lost (R2, R17).
        for seq in self.acked.keys() {
            let kept = seen.queue.contains_key(seq) || seen.errors.contains_key(seq);
            assert!(
                kept || self.delivered.contains(seq) || self.discarded.contains(seq),
                "{context}: acknowledged seq {seq} is lost"
            );
        }
        // Counts, bytes and totals agree with the listings (R6, R9, R10).
        let stats = &seen.stats;
        let queued_bytes: u64 = seen.queue.values().map(|r| record_bytes(&r.key, r.payload.len())).sum();
        let error_bytes: u64 = seen.errors.values().map(|e| record_bytes(&e.record.key, e.record.payload.len())).sum();
        assert_eq!(stats.queued_records, seen.queue.len() as u64, "{context}: queued_records");
        assert_eq!(stats.queued_bytes, queued_bytes, "{context}: queued_bytes (R6)");
        assert_eq!(stats.bytes_left, self.config.max_queue_bytes.saturating_sub(queued_bytes), "{context}: bytes_left");
        assert_eq!(stats.error_records, seen.errors.len() as u64, "{context}: error_records");
        assert_eq!(stats.error_bytes, error_bytes, "{context}: error_bytes");
        if at_rest {
            check_pages(self.map(), &seen, context);
        }
    }
}

/// Pages of 3, with and without a key filter, visit exactly the full
/// listing, and their totals are its counts (R10, R11).
fn check_pages(map: &TableMap, seen: &Seen, context: &str) {
    for key in std::iter::once(None).chain(MODEL_KEYS.iter().map(Some)) {
        let mut query = Query::default().limit(3);
        if let Some(key) = key {
            query = query.key(*key);
        }
        let expected: Vec<u64> =
            seen.queue.values().filter(|r| key.is_none_or(|k| r.key == *k)).map(|r| r.seq).collect();
        let mut listed = Vec::new();
        let mut page = map.queued(&query).expect("a page");
        loop {
            assert_eq!(page.total, expected.len() as u64, "{context}: page total for {key:?}");
            assert!(page.items.len() <= 3, "{context}: a page holds at most its limit");
            listed.extend(page.items.iter().map(|r| r.seq));
            let Some(next) = page.next.take() else { break };
            page = map.queued(&query.clone().after(next)).expect("the next page");
        }
        assert_eq!(listed, expected, "{context}: pages of {key:?}");
        let errors = map.catchup_errors(&query.clone().limit(1000)).expect("errors page");
        let expected_errors = seen.errors.values().filter(|e| key.is_none_or(|k| e.record.key == *k)).count();
        assert_eq!(errors.total, expected_errors as u64, "{context}: errors total for {key:?}");
    }
}

fn seqs_of<T>(items: Vec<T>, seq: impl Fn(&T) -> u64) -> BTreeMap<u64, T> {
    items.into_iter().map(|item| (seq(&item), item)).collect()
}

/// Runs `ops` on a fresh harness and finishes it (see [`Harness::finish`]).
/// On a failed check, the model and the operations before it are printed.
pub fn run_model(config: ModelConfig, ops: &[ModelOp]) -> ModelFigures {
    let mut harness = Harness::new(config);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for op in ops {
            harness.apply(op);
        }
    }));
    if let Err(panic) = run {
        eprintln!("engine model: a check failed; the run so far:\n{}", harness.trace.join("\n"));
        std::panic::resume_unwind(panic);
    }
    let figures = harness.figures();
    harness.finish();
    figures
}
