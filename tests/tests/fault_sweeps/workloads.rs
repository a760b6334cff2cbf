//! The three workloads the sweeps fault at every storage operation, and
//! what is checked after the engine is opened again.
//!
//! Each workload runs one engine "process" over a [`FaultStorage`] on a
//! [`SimStorage`]; a step that fails is recorded and the workload goes on
//! (after a crash everything fails). Then the process is gone: the storage
//! loses what was not synced, a new engine opens what is left, and
//! [`check_after_reopen`] holds it to the promises: every acknowledged
//! record is there or was delivered, seqs are never reused, the figures
//! agree with the listings, and the map drains to deliver everything.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog::{Engine, Error, MapConfig, MapState, Record, ResumeMode, Selection, Submitted, SyncPolicy, TableMap};
use pauselog_tests::faults::FaultStorage;
use pauselog_tests::model::record_bytes;
use pauselog_tests::{all_errors, all_queued, clock, rec, TestDest, WAIT};
use pauselog_wal::{CrashMode, SimStorage};

/// The map every workload uses.
pub const MAP: &str = "m";

/// A workload of the sweeps (SPEC R2, R3, R6, R13, R16, R17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Paused appends, then a catch-up while appends keep coming (R3).
    CatchUpUnderAppends,
    /// Records larger than a tenth of a 4 KiB segment, queued and drained
    /// twice: rotations, sealing and segment deletions all the time.
    RotationHeavy,
    /// Fill to the size cap, skip to live preserving, retry the errors,
    /// then queue and drain again (R6, R8, R13, R16).
    CapSkipRetry,
}

impl Workload {
    fn config(self) -> MapConfig {
        let base = MapConfig {
            lanes: 2,
            replay_batch_records: 4,
            backoff_min: Duration::from_millis(1),
            backoff_max: Duration::from_millis(20),
            ..MapConfig::default()
        };
        match self {
            Workload::CapSkipRetry => MapConfig { max_queue_bytes: 3000, ..base },
            _ => base,
        }
    }

    fn segment_bytes(self) -> u64 {
        match self {
            Workload::RotationHeavy => 4096,
            _ => 16 * 1024,
        }
    }
}

/// A small deterministic generator (splitmix64) for payload sizes and keys.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    /// The next value below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// What a crash keeps for `seed`: nothing unsynced, or a torn prefix.
pub fn crash_mode(seed: u64) -> CrashMode {
    match Rng::new(seed ^ 0xC0FFEE).below(3) {
        0 => CrashMode::DropUnsynced,
        n => CrashMode::KeepUnsyncedPrefix((n as usize) * 37 + (seed as usize % 500)),
    }
}

/// The simulated disk, the directory for the lock and the key index, the
/// clock and the destination, shared by the process that is faulted and
/// the one that opens after it.
pub struct World {
    /// The simulated disk of the map logs.
    pub sim: SimStorage,
    /// The engine directory.
    pub dir: tempfile::TempDir,
    /// The engine clock.
    pub clock: Arc<pauselog::ManualClock>,
    /// The destination of both processes.
    pub dest: Arc<TestDest>,
}

impl World {
    /// A fresh world.
    pub fn new() -> World {
        World {
            sim: SimStorage::new(),
            dir: tempfile::tempdir().expect("temp dir"),
            clock: clock(),
            dest: TestDest::new(),
        }
    }

    fn open(&self, workload: Workload, storage: &FaultStorage) -> pauselog::Result<(Engine, TableMap)> {
        let engine = Engine::builder(self.dir.path())
            .sync(SyncPolicy::Always)
            .clock(self.clock.clone())
            .tick_interval(None)
            .segment_bytes_max(workload.segment_bytes())
            .storage(storage.seam())
            .admin_socket(false)
            .open()?;
        let map = engine.table_map(MAP, workload.config(), self.dest.clone())?;
        Ok((engine, map))
    }
}

/// What a faulted run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Acknowledged records: seq -> (key, payload).
    pub acked: BTreeMap<u64, (String, Vec<u8>)>,
    /// Every step that failed, with its error.
    pub errors: Vec<(&'static str, Error)>,
    /// Acknowledgements that came after a sync of the data log had failed
    /// (R17: none; see `io_errors_at_every_storage_operation`).
    pub acked_after_a_failed_sync: Vec<u64>,
}

struct Driver<'a> {
    map: &'a TableMap,
    storage: &'a FaultStorage,
    /// The map's data log, where records go.
    data_dir: std::path::PathBuf,
    rng: Rng,
    out: Outcome,
    n: u64,
}

impl Driver<'_> {
    fn submit(&mut self, key_count: u64, payload_min: u64, payload_span: u64) -> Option<Submitted> {
        self.n += 1;
        let key = format!("K{}", self.rng.below(key_count));
        let size = (payload_min + self.rng.below(payload_span)) as usize;
        let mut payload = format!("n{}:", self.n).into_bytes();
        payload.resize(size.max(payload.len()), b'.');
        let failed_sync_before = self.storage.failed_sync_files().iter().any(|file| file.starts_with(&self.data_dir));
        let submitted =
            self.step("submit", self.map.submit(Record::new(key.clone(), pauselog::Op::Update, payload.clone())))?;
        if let Submitted::Queued { seq } = submitted {
            if failed_sync_before {
                self.out.acked_after_a_failed_sync.push(seq);
            }
            self.out.acked.insert(seq, (key, payload));
        }
        Some(submitted)
    }

    fn step<T>(&mut self, what: &'static str, result: pauselog::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.out.errors.push((what, error));
                None
            }
        }
    }

    fn faulted(&self) -> bool {
        self.storage.crashed() || self.storage.injected() > 0
    }

    /// Waits for Running; after a fault only briefly (a stalled replay may
    /// never get there).
    fn wait_running(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut faulted_at: Option<Instant> = None;
        while self.map.state() != MapState::Running {
            if self.storage.crashed() {
                return; // nothing of this process moves any more
            }
            if self.faulted() {
                let since = *faulted_at.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(100) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the catch-up never ended: {:?}", self.map.stats());
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs `workload` with `seed` on `world` through `storage` (armed or
/// not). The engine is dropped at the end, as a process that exits.
pub fn run_workload(workload: Workload, seed: u64, world: &World, storage: &FaultStorage) -> Outcome {
    let (engine, map) = match world.open(workload, storage) {
        Ok(opened) => opened,
        Err(error) => return Outcome { errors: vec![("open", error)], ..Outcome::default() },
    };
    let data_dir = world.dir.path().join("maps").join(MAP).join("data");
    let mut run = Driver { map: &map, storage, data_dir, rng: Rng::new(seed), out: Outcome::default(), n: 0 };
    match workload {
        Workload::CatchUpUnderAppends => {
            run.step("pause", map.pause());
            for _ in 0..30 {
                run.submit(5, 10, 200);
            }
            run.step("resume", map.resume(ResumeMode::CatchUp));
            for _ in 0..40 {
                run.submit(5, 10, 200);
            }
            run.wait_running();
            for _ in 0..5 {
                run.submit(5, 10, 50);
            }
        }
        Workload::RotationHeavy => {
            for round in 0..2 {
                run.step("pause", map.pause());
                for _ in 0..(50 - round * 25) {
                    run.submit(7, 400, 300);
                }
                run.step("resume", map.resume(ResumeMode::CatchUp));
                run.wait_running();
            }
            for _ in 0..3 {
                run.submit(7, 10, 50);
            }
        }
        Workload::CapSkipRetry => {
            run.step("pause", map.pause());
            for _ in 0..100 {
                if run.submit(4, 20, 150).is_none() {
                    // The size cap blocking the map is the expected end of the filling.
                    if let Some((_, Error::Blocked { .. })) = run.out.errors.last() {
                        run.out.errors.pop();
                    }
                    break;
                }
            }
            run.step("resume", map.resume(ResumeMode::SkipToLivePreserve));
            if let Some(job) = run.step("retry", map.retry_errors(Selection::All)) {
                let waited = job.wait(WAIT);
                run.step("retry wait", waited.map(drop));
            }
            for _ in 0..5 {
                run.submit(4, 10, 50);
            }
            run.step("pause", map.pause());
            for _ in 0..10 {
                run.submit(4, 20, 150);
            }
            run.step("resume", map.resume(ResumeMode::CatchUp));
            run.wait_running();
        }
    }
    let out = std::mem::take(&mut run.out);
    drop(map);
    drop(engine);
    out
}

/// The most storage operations of five clean runs of `workload`: the
/// count moves with thread timing (a catch-up that ends sooner leaves more
/// submits to go live, which touch no file).
pub fn clean_run_ops(workload: Workload) -> u64 {
    (0..5)
        .map(|seed| {
            let world = World::new();
            let storage = FaultStorage::over_sim(&world.sim);
            let outcome = run_workload(workload, seed, &world, &storage);
            assert!(outcome.errors.is_empty(), "a clean run fails nothing: {:?}", outcome.errors);
            storage.ops()
        })
        .max()
        .expect("five runs")
}

/// Every seq the destination has accepted so far, with key and payload.
fn accepted(dest: &TestDest) -> BTreeMap<u64, (String, Vec<u8>)> {
    dest.delivered().into_iter().map(|r| (r.seq, (r.key, r.payload))).collect()
}

/// After the faulted process is gone and the storage lost what was not
/// synced: opens the engine and checks the promises (module docs).
/// Returns the number of acknowledged records checked.
pub fn check_after_reopen(workload: Workload, world: &World, outcome: &Outcome, context: &str) -> usize {
    let delivered_before = accepted(&world.dest);
    let max_seq_before = outcome.acked.keys().chain(delivered_before.keys()).max().copied().unwrap_or(0);
    let storage = FaultStorage::over_sim(&world.sim);
    // A map that was catching up starts again at once: with the
    // destination down it delivers nothing while the listings are read.
    world.dest.set_unavailable(true);
    let (engine, map) = world.open(workload, &storage).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    let (queued, errors, stats) = still_listings(&map);
    // Nothing acknowledged is lost, and what is kept is what was acknowledged (R2, R17, R19).
    let mut kept: BTreeMap<u64, (String, Vec<u8>)> = BTreeMap::new();
    for record in queued.iter().chain(errors.iter().map(|e| &e.record)) {
        kept.insert(record.seq, (record.key.clone(), record.payload.clone()));
    }
    for (seq, record) in &outcome.acked {
        let found = kept.get(seq).or_else(|| delivered_before.get(seq));
        assert_eq!(found, Some(record), "{context}: acknowledged seq {seq} lost or changed by the fault");
    }
    // The figures agree with the listings (R6, R9).
    let bytes = |records: &mut dyn Iterator<Item = &pauselog::QueuedRecord>| -> u64 {
        records.map(|r| record_bytes(&r.key, r.payload.len())).sum()
    };
    assert_eq!(stats.queued_records, queued.len() as u64, "{context}: queued_records");
    assert_eq!(stats.queued_bytes, bytes(&mut queued.iter()), "{context}: queued_bytes");
    assert_eq!(stats.error_records, errors.len() as u64, "{context}: error_records");
    assert_eq!(stats.error_bytes, bytes(&mut errors.iter().map(|e| &e.record)), "{context}: error_bytes");
    // The map drains: every acknowledged record reaches the destination.
    world.dest.set_unavailable(false);
    match map.state() {
        MapState::Paused { .. } => map.resume(ResumeMode::CatchUp).unwrap_or_else(|e| panic!("{context}: resume: {e}")),
        MapState::CatchingUp { .. } | MapState::Running => {}
    }
    map.wait_for(|s| *s == MapState::Running, WAIT).unwrap_or_else(|e| panic!("{context}: drain: {e}"));
    let job = map.retry_errors_forced(Selection::All).unwrap_or_else(|e| panic!("{context}: retry: {e}"));
    job.wait(WAIT).unwrap_or_else(|e| panic!("{context}: retry wait: {e}"));
    assert_eq!(
        map.stats().error_records,
        0,
        "{context}: a forced retry to an accepting destination empties the errors"
    );
    let delivered = accepted(&world.dest);
    for seq in outcome.acked.keys().chain(kept.keys()) {
        assert!(delivered.contains_key(seq), "{context}: seq {seq} was never delivered");
    }
    // A seq is never reused, also after a crash (R21).
    match map.submit(rec("K-after", 0)).unwrap_or_else(|e| panic!("{context}: submit after reopen: {e}")) {
        Submitted::Live => {
            let seq = world.dest.delivered().last().expect("delivered live").seq;
            assert!(seq > max_seq_before, "{context}: seq {seq} reused (R21): {max_seq_before} was seen before");
        }
        Submitted::Queued { .. } => panic!("{context}: a Running map delivers live"),
    }
    drop(map);
    engine.close().unwrap_or_else(|e| panic!("{context}: close: {e}"));
    outcome.acked.len()
}

/// The queue, the errors and the figures, read until two readings agree
/// (a stalled Strict replay may still move held-back records).
fn still_listings(map: &TableMap) -> (Vec<pauselog::QueuedRecord>, Vec<pauselog::CatchupError>, pauselog::MapStats) {
    loop {
        let (queued, errors, stats) = (all_queued(map, None), all_errors(map, None), map.stats());
        let (queued_again, errors_again) = (all_queued(map, None), all_errors(map, None));
        if queued == queued_again && errors == errors_again && map.stats() == stats {
            return (queued, errors, stats);
        }
    }
}

/// True if `path` is under `dir` (an error names the file it is about).
pub fn names_a_file_under(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}

/// How many points to fault, and with how many seeds: `PAUSELOG_FAULT_SWEEP`
/// (`full`: every operation with 8 seeds; a number: that many evenly
/// spread operations, 1 seed). Default: 8 operations, 1 seed (CI).
pub fn sweep_plan(total_ops: u64) -> (Vec<u64>, Vec<u64>) {
    let setting = std::env::var("PAUSELOG_FAULT_SWEEP").unwrap_or_default();
    let seeds_env = std::env::var("PAUSELOG_FAULT_SEEDS").ok().and_then(|v| v.parse().ok());
    let (points, seeds) = match setting.as_str() {
        "full" => (total_ops, seeds_env.unwrap_or(8)),
        other => (other.parse().unwrap_or(8).min(total_ops), seeds_env.unwrap_or(1)),
    };
    let step = (total_ops as f64 / points.max(1) as f64).max(1.0);
    let mut at: Vec<u64> = (0..points).map(|i| 1 + (i as f64 * step) as u64).filter(|&n| n <= total_ops).collect();
    at.dedup();
    (at, (1..=seeds).collect())
}
