//! docs/rules.md R17, R19: the log at every storage operation of a workload with
//! rotations, skips and releases (segments of 4 KiB, so a rotation every few
//! records, and fully released segments deleted by the janitor).
//!
//! - **Crash-point enumeration**: for every operation N that changes or
//!   persists something (writes, length changes, allocations, syncs,
//!   creates, removes, renames, directory syncs; see
//!   `common/faulty.rs`), a simulated power loss right before N, keeping
//!   nothing unsynced or a torn prefix of it. Then the log must open, hold
//!   every acknowledged record (`Always`), or every record `durable_seq`
//!   covered (`Interval`), with its body, bring back no record released
//!   before the last successful sync, hold nothing that was never appended,
//!   count exactly what an independent audit of the files counts, and take
//!   appends after its last acknowledged seq.
//! - **I/O error sweep**: operation N fails with EIO or ENOSPC, once
//!   (transient) or from then on (persistent). A failure while writing or
//!   syncing appended data, sealing or creating a segment, or syncing
//!   release.log poisons the log: that call and every later write return
//!   `Error::Poisoned`. A failure writing release.log or rewriting it fails
//!   that release (or the append whose rotation compacted it) with
//!   `Error::Io`, and the log goes on. A failed removal of a released
//!   segment is only logged. In every case, reopening (after a restart, and
//!   after a power loss) finds every acknowledged record.
//!
//! CI runs 2 seeds per workload; `PAUSELOG_WAL_SWEEP_SEEDS=8 cargo test
//! --release -p pauselog-wal --test fault_sweep -- --nocapture` is the long
//! mode (it prints the figures).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::body;
use common::faulty::{Fault, FaultyStorage};
use pauselog_wal::storage::{CrashMode, SimStorage};
use pauselog_wal::{audit_with_storage, Error, SyncPolicy, Wal, WalOptions};

const DIR: &str = "/sim/log";
const SEGMENT_BYTES: u64 = 4096;
const STEPS: usize = 60;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn seeds() -> u64 {
    std::env::var("PAUSELOG_WAL_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

fn options(policy: SyncPolicy) -> WalOptions {
    WalOptions::default().segment_bytes_max(SEGMENT_BYTES).sync(policy)
}

/// splitmix64: a deterministic stream per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[derive(Debug, Clone)]
enum Step {
    Append(usize),
    Batch(Vec<usize>),
    /// Releases `next - back ..= next - back + span` (clamped).
    Release {
        back: u64,
        span: u64,
    },
    /// Releases everything up to `next - back`.
    ReleaseThrough(u64),
    Rotate,
    /// `skip_to(next + n)`: a rotation past records, a rename of an empty
    /// active segment.
    SkipTo(u64),
    Sync,
}

fn workload(seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed);
    (0..STEPS)
        .map(|_| match rng.below(20) {
            0..=8 => Step::Append(rng.below(700) as usize),
            9..=10 => Step::Batch((0..1 + rng.below(5)).map(|_| rng.below(400) as usize).collect()),
            11..=13 => Step::Release { back: rng.below(30), span: rng.below(6) },
            14..=15 => Step::ReleaseThrough(rng.below(15)),
            16 => Step::Rotate,
            17 => Step::SkipTo(1 + rng.below(40)),
            _ => Step::Sync,
        })
        .collect()
}

/// What the workload was told: the base truth the checks compare with.
#[derive(Debug, Default)]
struct Told {
    /// Records whose append returned `Ok`, by seq.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Every body an append was asked to write (acknowledged or not).
    attempted: BTreeSet<Vec<u8>>,
    /// Seqs a release call covered (returned `Ok` or not): they may be gone.
    maybe_released: BTreeSet<u64>,
    /// Seqs released by a call that returned `Ok` and covered by a later
    /// successful sync: a power loss must not bring them back.
    released_durable: BTreeSet<u64>,
    /// Released by calls that returned `Ok`, not yet synced.
    released_unsynced: BTreeSet<u64>,
    /// Every seq up to this was durable at the last look (`durable_seq`).
    durable_seq: u64,
    /// The first error and the step it came from.
    first_error: Option<(usize, String)>,
    /// Whether the log reported itself poisoned.
    poisoned: bool,
}

impl Told {
    fn synced(&mut self) {
        let unsynced = std::mem::take(&mut self.released_unsynced);
        self.released_durable.extend(unsynced);
    }
}

/// Runs the workload on `wal`, recording what every call answered. After a
/// call fails, the rest still run (and must fail as documented).
fn run(wal: &Wal, steps: &[Step], seed: u64, policy: SyncPolicy) -> Told {
    let mut told = Told::default();
    for (index, step) in steps.iter().enumerate() {
        let tag = |n: usize| (seed << 32) | ((index as u64) << 8) | n as u64;
        let next = wal.next_seq();
        let result = match step {
            Step::Append(len) => {
                let body = body(tag(0), *len);
                told.attempted.insert(body.clone());
                wal.append(&body).map(|seq| {
                    told.acked.insert(seq, body);
                })
            }
            Step::Batch(lens) => {
                let bodies: Vec<Vec<u8>> = lens.iter().enumerate().map(|(n, len)| body(tag(n), *len)).collect();
                told.attempted.extend(bodies.iter().cloned());
                wal.append_batch(&bodies).map(|seqs| told.acked.extend(seqs.zip(bodies)))
            }
            Step::Release { back, span } => {
                let lo = next.saturating_sub(*back).max(1);
                release(wal, &mut told, lo..=lo + span)
            }
            Step::ReleaseThrough(back) => release(wal, &mut told, 1..=next.saturating_sub(*back)),
            Step::Rotate => wal.rotate(),
            Step::SkipTo(ahead) => wal.skip_to(next + ahead),
            Step::Sync => wal.sync().map(|()| told.synced()),
        };
        // Deletions run on the janitor thread: waiting for them keeps the
        // order of operations, and so their numbering, the same every run.
        wal.settle();
        let appended = matches!(step, Step::Append(_) | Step::Batch(_));
        if result.is_ok() && appended && policy == SyncPolicy::Always {
            told.synced(); // an acknowledged append under Always synced release.log too
        }
        told.durable_seq = wal.stats().durable_seq;
        if let Err(error) = result {
            check_error_kind(&mut told, index, step, &error);
        }
    }
    told
}

/// Releases `seqs`; the log clamps them to the seqs assigned so far.
fn release(wal: &Wal, told: &mut Told, seqs: std::ops::RangeInclusive<u64>) -> Result<(), Error> {
    let assigned = 1..wal.next_seq();
    let covered: Vec<u64> = seqs.clone().filter(|seq| assigned.contains(seq)).collect();
    told.maybe_released.extend(covered.iter().copied());
    wal.release(seqs).map(|()| told.released_unsynced.extend(covered))
}

/// The documented kinds: once poisoned, every write says so; before, a
/// failure is `Poisoned` or `Io`.
fn check_error_kind(told: &mut Told, index: usize, step: &Step, error: &Error) {
    match error {
        Error::Poisoned { .. } => told.poisoned = true,
        Error::Io { .. } if !told.poisoned => {}
        other => panic!("step {index} {step:?}: undocumented error {other:?} (poisoned before: {})", told.poisoned),
    }
    told.first_error.get_or_insert((index, error.to_string()));
}

/// Reopens the log and checks it against what the workload was told.
/// `durable`: the seqs that must be back with their bodies.
fn check_reopened(
    storage: &SimStorage,
    policy: SyncPolicy,
    told: &Told,
    durable: &dyn Fn(u64) -> bool,
    after_power_loss: bool,
    what: &str,
) {
    let wal = Wal::open_with_storage(Path::new(DIR), options(policy), Arc::new(storage.clone()))
        .unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
    let found: BTreeMap<u64, Vec<u8>> = common::read_all(&wal).into_iter().collect();
    for (seq, body) in &told.acked {
        if durable(*seq) && !told.maybe_released.contains(seq) {
            assert!(found.get(seq) == Some(body), "{what}: acknowledged seq {seq} lost or changed");
        }
    }
    for (seq, body) in &found {
        assert!(told.attempted.contains(body), "{what}: seq {seq} holds a body never appended");
        if let Some(acked) = told.acked.get(seq) {
            assert!(acked == body, "{what}: seq {seq} holds another record's body");
        }
        let released = if after_power_loss { &told.released_durable } else { &told.released_durable_or_written() };
        assert!(!released.contains(seq), "{what}: seq {seq} was released, and is back");
    }
    let stats = wal.stats();
    let bytes: u64 = found.values().map(|body| pauselog_wal::frame_bytes(body.len())).sum();
    assert_eq!((stats.live_records, stats.live_bytes), (found.len() as u64, bytes), "{what}: accounting");
    let audit = audit_with_storage(Path::new(DIR), storage).expect("audit");
    assert!(audit.damage().is_empty(), "{what}: {:?}", audit.damage());
    assert_eq!((audit.live_records(), audit.live_bytes()), (found.len() as u64, bytes), "{what}: audit of the files");
    let last_acked = told.acked.keys().copied().filter(|seq| durable(*seq)).max().unwrap_or(0);
    let seq = wal.append(b"after").unwrap_or_else(|e| panic!("{what}: append after reopen: {e}"));
    assert!(seq > last_acked, "{what}: seq {seq} reused after {last_acked}");
    wal.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
}

impl Told {
    /// Released by a call that returned `Ok`: after a restart without a
    /// power loss, its release.log entry was written, so none comes back.
    fn released_durable_or_written(&self) -> BTreeSet<u64> {
        self.released_durable.union(&self.released_unsynced).copied().collect()
    }
}

/// Counted operations of one clean run (open included), to number the faults.
fn clean_run_ops(steps: &[Step], seed: u64, policy: SyncPolicy) -> u64 {
    let sim = SimStorage::new();
    let storage = FaultyStorage::over_sim(&sim);
    let wal = Wal::open_with_storage(Path::new(DIR), options(policy), Arc::new(storage.clone())).expect("open");
    let told = run(&wal, steps, seed, policy);
    assert!(told.first_error.is_none(), "a clean run fails: {:?}", told.first_error);
    wal.close().expect("close");
    storage.ops()
}

/// The policies the sweeps run under: acknowledged means fsynced, and
/// acknowledged means written (never synced by an interval).
fn policies() -> [SyncPolicy; 2] {
    [SyncPolicy::Always, SyncPolicy::Interval(Duration::from_secs(3600))]
}

/// Opens a log on a fresh simulated storage with `fault` armed and runs the
/// workload; the log is returned still open (`None` if open failed).
fn run_with_fault(
    policy: SyncPolicy,
    seed: u64,
    steps: &[Step],
    fault: Fault,
) -> (SimStorage, FaultyStorage, Told, Option<Wal>) {
    let sim = SimStorage::new();
    let storage = FaultyStorage::over_sim(&sim);
    storage.arm(fault);
    match Wal::open_with_storage(Path::new(DIR), options(policy), Arc::new(storage.clone())) {
        Ok(wal) => {
            let told = run(&wal, steps, seed, policy);
            (sim, storage, told, Some(wal))
        }
        Err(error) => {
            let died = matches!(fault, Fault::Crash { .. });
            assert!(died || matches!(error, Error::Io { .. }), "open fails with {error:?}");
            (sim, storage, Told::default(), None)
        }
    }
}

/// One run of the sweep: a policy, a seed (its workload), and the operation
/// a fault hits, of `total` in a clean run.
struct Point<'a> {
    policy: SyncPolicy,
    seed: u64,
    steps: &'a [Step],
    at: u64,
    total: u64,
}

/// Calls `check` for every operation of every workload under every policy;
/// returns how many operations there were.
fn every_operation(mut check: impl FnMut(&Point<'_>)) -> u64 {
    let mut operations = 0;
    for policy in policies() {
        for seed in 1..=seeds() {
            let steps = workload(seed);
            let total = clean_run_ops(&steps, seed, policy);
            operations += total;
            for at in 1..=total {
                check(&Point { policy, seed, steps: &steps, at, total });
            }
        }
    }
    operations
}

#[test]
fn a_power_loss_at_every_operation_keeps_every_acknowledged_record() {
    let mut crashes = 0u64;
    let operations = every_operation(|&Point { policy, seed, steps, at, total }| {
        let torn = (seed * 997 + at * 131) as usize % 3000;
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepUnsyncedPrefix(torn)] {
            let what = format!("{policy:?} seed {seed}: power loss before operation {at} of {total} ({mode:?})");
            let (sim, storage, told, wal) = run_with_fault(policy, seed, steps, Fault::Crash { at, mode });
            drop(wal); // its close fails: the "process" is gone
            assert!(storage.crashed(), "{what}: the crash point was reached");
            crashes += 1;
            let durable_seq = told.durable_seq;
            check_reopened(&sim, policy, &told, &|seq| seq <= durable_seq, true, &what);
        }
    });
    println!(
        "crash points: {operations} operations over {} seeds x {} policies, {crashes} power losses, 0 violations",
        seeds(),
        policies().len()
    );
}

#[test]
fn an_io_error_at_every_operation_loses_nothing_acknowledged() {
    let mut faults = 0u64;
    let operations = every_operation(|&Point { policy, seed, steps, at, total }| {
        for (errno, persistent) in [(EIO, false), (EIO, true), (ENOSPC, false), (ENOSPC, true)] {
            let fault = Fault::Fail { at, errno, persistent };
            let what =
                format!("{policy:?} seed {seed}: errno {errno} at operation {at} of {total}, persistent {persistent}");
            // The process goes on and is restarted: every acknowledged
            // record is back (written, if not synced).
            let (sim, storage, told, wal) = run_with_fault(policy, seed, steps, fault);
            if let Some(wal) = wal {
                if told.poisoned {
                    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })), "{what}: poisoned stays poisoned");
                }
            }
            assert!(storage.injected() > 0, "{what}: the fault was injected");
            storage.disarm();
            check_reopened(&sim, policy, &told, &|_| true, false, &format!("{what}, restarted"));
            // The power fails right after the workload: what was durable
            // then is back.
            let (sim, _, told, wal) = run_with_fault(policy, seed, steps, fault);
            sim.crash(CrashMode::DropUnsynced);
            drop(wal);
            let durable_seq = told.durable_seq;
            check_reopened(&sim, policy, &told, &|seq| seq <= durable_seq, true, &format!("{what}, power loss"));
            faults += 1;
        }
    });
    println!(
        "I/O error sweep: {operations} operations over {} seeds x {} policies, {faults} faults (EIO and ENOSPC, transient and persistent), each checked after a restart and after a power loss, 0 violations",
        seeds(),
        policies().len()
    );
}
