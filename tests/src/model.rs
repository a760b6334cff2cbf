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
//!
//! [`input`] holds what a run is made of (configuration and operations),
//! [`dest`] the destination; the [`Harness`] here owns the engine and the
//! model, [`operations`] steps both, [`rest`] lets an operation come to rest
//! and [`check`] compares the two after it.

mod check;
mod dest;
mod input;
mod operations;
mod rest;

pub use dest::{Call, ModelDest};
pub use input::{ModelConfig, ModelOp, Pick};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pauselog::{
    CatchupError, Clock, Engine, ErrorReason, Limit, ManualClock, MapConfig, MapState, Op, PauseReason, QueuedRecord,
    ResumeMode, SyncPolicy, TableMap,
};
use pauselog_wal::{CrashMode, SimStorage};

use crate::epoch;
use crate::faults::FaultStorage;

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
    /// The current operation brought the destination back during a stalled
    /// catch-up: a call in flight may have straddled it (see `come_to_rest`).
    came_back_mid_call: bool,
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
            came_back_mid_call: false,
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
        self.came_back_mid_call = false;
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
                self.came_back_mid_call = self.state == State::CatchingUp && self.down && !*down;
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
