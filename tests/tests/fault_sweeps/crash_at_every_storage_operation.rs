//! R2, R4, R17, R19, R21: a power loss before any storage operation of a
//! workload loses no acknowledged record, never reuses a seq, leaves
//! figures that agree with the listings, and a map that drains completely.

use pauselog_tests::faults::{Fault, FaultStorage};

use crate::workloads::{check_after_reopen, clean_run_ops, crash_mode, run_workload, sweep_plan, Workload, World};

fn crash_everywhere(workload: Workload) {
    let total_ops = clean_run_ops(workload);
    let (points, seeds) = sweep_plan(total_ops);
    let (mut runs, mut acked_checked, mut crashed_in_run) = (0u64, 0usize, 0u64);
    for &seed in &seeds {
        for &at in &points {
            let world = World::new();
            let storage = FaultStorage::over_sim(&world.sim);
            let mode = crash_mode(seed.wrapping_mul(1_000_003) ^ at);
            storage.arm(Fault::Crash { at, mode });
            let outcome = run_workload(workload, seed, &world, &storage);
            if storage.crashed() {
                crashed_in_run += 1;
            } else {
                // Threads make the count of a run vary a little: this run
                // ended before operation `at`, so the power loss comes last.
                storage.crash_now(mode);
            }
            let context = format!("{workload:?}, seed {seed}, crash before operation {at} of {total_ops} ({mode:?})");
            acked_checked += check_after_reopen(workload, &world, &outcome, &context);
            runs += 1;
        }
    }
    eprintln!(
        "crash sweep {workload:?}: {total_ops} storage operations in a clean run; {} crash points x {} seeds = {runs} runs \
         ({crashed_in_run} crashed mid-run); {acked_checked} acknowledged records checked; 0 violations",
        points.len(),
        seeds.len()
    );
}

#[test]
fn crash_during_a_catch_up_under_appends_loses_no_acknowledged_record() {
    crash_everywhere(Workload::CatchUpUnderAppends);
}

#[test]
fn crash_during_rotation_heavy_queueing_loses_no_acknowledged_record() {
    crash_everywhere(Workload::RotationHeavy);
}

#[test]
fn crash_during_fill_skip_and_retry_loses_no_acknowledged_record() {
    crash_everywhere(Workload::CapSkipRetry);
}
