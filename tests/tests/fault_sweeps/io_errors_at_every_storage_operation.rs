//! R17, R20: an I/O error (EIO, ENOSPC) at any storage operation, once or
//! from then on, comes back as a typed error naming the map or the file;
//! a failed fsync is never retried on the same file; after a failed fsync
//! of the data log the map acknowledges no record until it is reopened
//! (after one of the meta log, its state changes are refused and records
//! still go to the healthy data log); and after the process is gone and the
//! power lost, a new engine finds every acknowledged record.

use pauselog::Error;
use pauselog_tests::faults::{Fault, FaultStorage, EIO, ENOSPC};
use pauselog_wal::CrashMode;

use crate::workloads::{
    check_after_reopen, clean_run_ops, names_a_file_under, run_workload, sweep_plan, Outcome, Workload, World, MAP,
};

/// Every error a step returned is typed and says where (R17, R20): an I/O
/// error names a file of the engine, a poisoned map names the map, a cap
/// is the workload's own.
fn assert_typed(outcome: &Outcome, world: &World, context: &str) {
    for (step, error) in &outcome.errors {
        let ok = match error {
            Error::Io { path, .. } => names_a_file_under(path, world.dir.path()) || path.as_os_str() == MAP,
            // A map poisoned by a panic is a broken invariant, not an I/O error.
            Error::Poisoned { map, reason } => map == MAP && !reason.contains("panicked"),
            // A step refused because an earlier one failed (a resume after
            // a failed pause, say) is typed too.
            Error::Blocked { map, .. } | Error::InvalidState { map, .. } => map == MAP,
            _ => false,
        };
        assert!(ok, "{context}: step {step} failed with an untyped or unplaced error: {error:?} ({error})");
    }
}

fn fail_everywhere(workload: Workload) {
    let total_ops = clean_run_ops(workload);
    let (points, seeds) = sweep_plan(total_ops);
    let (mut runs, mut injected, mut acked_checked) = (0u64, 0u64, 0usize);
    let mut errors_seen = 0usize;
    for &seed in &seeds {
        for &at in &points {
            for errno in [EIO, ENOSPC] {
                for persistent in [false, true] {
                    let world = World::new();
                    let storage = FaultStorage::over_sim(&world.sim);
                    storage.arm(Fault::Fail { at, errno, persistent });
                    let outcome = run_workload(workload, seed, &world, &storage);
                    let kind = if persistent { "from then on" } else { "once" };
                    let context =
                        format!("{workload:?}, seed {seed}, errno {errno} {kind} at operation {at} of {total_ops}");
                    assert_typed(&outcome, &world, &context);
                    let retried = storage.syncs_after_a_failed_sync();
                    assert!(retried.is_empty(), "{context}: R17: a failed fsync was retried on {retried:?}");
                    assert!(
                        outcome.acked_after_a_failed_sync.is_empty(),
                        "{context}: R17: seqs {:?} acknowledged after a failed fsync of {:?}, before a reopen; errors: {:?}",
                        outcome.acked_after_a_failed_sync,
                        storage.failed_sync_files(),
                        outcome.errors
                    );
                    injected += storage.injected();
                    errors_seen += outcome.errors.len();
                    world.sim.crash(CrashMode::DropUnsynced);
                    acked_checked += check_after_reopen(workload, &world, &outcome, &context);
                    runs += 1;
                }
            }
        }
    }
    eprintln!(
        "I/O error sweep {workload:?}: {total_ops} storage operations in a clean run; {} points x {} seeds x 2 errnos x \
         (once, persistent) = {runs} runs; {injected} faults injected, {errors_seen} typed errors returned; \
         {acked_checked} acknowledged records checked; 0 violations",
        points.len(),
        seeds.len()
    );
}

#[test]
fn io_errors_during_a_catch_up_under_appends_are_typed_and_lose_nothing() {
    fail_everywhere(Workload::CatchUpUnderAppends);
}

#[test]
fn io_errors_during_rotation_heavy_queueing_are_typed_and_lose_nothing() {
    fail_everywhere(Workload::RotationHeavy);
}

#[test]
fn io_errors_during_fill_skip_and_retry_are_typed_and_lose_nothing() {
    fail_everywhere(Workload::CapSkipRetry);
}
