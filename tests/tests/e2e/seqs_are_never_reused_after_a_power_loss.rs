//! R21: the seq a map hands to a live delivery is never handed out again,
//! across a power loss too, under every sync policy: the blocks of seqs
//! reserved ahead are on stable storage before the first of them is used.
//! (Under `SyncPolicy::Never` a power loss may lose queued records, R17,
//! but not the promise that a seq the destination has seen stays unique.)

use std::sync::Arc;
use std::time::Duration;

use pauselog::{Engine, MapConfig, Submitted, SyncPolicy};
use pauselog_tests::faults::FaultStorage;
use pauselog_tests::*;
use pauselog_wal::{CrashMode, SimStorage};

fn open(
    dir: &std::path::Path,
    sim: &SimStorage,
    sync: SyncPolicy,
    dest: &Arc<TestDest>,
) -> (Engine, pauselog::TableMap) {
    let engine = FaultStorage::over_sim(sim).engine(dir, sync);
    let map = open_map(&engine, "m", MapConfig::default(), dest);
    (engine, map)
}

#[test]
fn live_seqs_are_not_reused_after_a_power_loss_under_any_sync_policy() {
    for sync in [SyncPolicy::Always, SyncPolicy::Interval(Duration::from_secs(3600)), SyncPolicy::Never] {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimStorage::new();
        let dest = TestDest::new();
        let (engine, map) = open(dir.path(), &sim, sync, &dest);
        for n in 0..5 {
            assert_eq!(map.submit(rec("K", n)).unwrap(), Submitted::Live);
        }
        let seen = dest.delivered_seqs();
        sim.crash(CrashMode::DropUnsynced);
        drop(map);
        drop(engine);

        let (_engine, map) = open(dir.path(), &sim, sync, &dest);
        assert_eq!(map.submit(rec("K", 5)).unwrap(), Submitted::Live);
        let after = *dest.delivered_seqs().last().unwrap();
        let before = *seen.iter().max().unwrap();
        assert!(
            after > before,
            "{sync:?}: seq {after} handed out again after a power loss (seqs up to {before} were seen)"
        );
    }
}
