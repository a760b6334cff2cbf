//! R17: under `SyncPolicy::Always` concurrent submitters share one fsync
//! (group commit). Counted through the storage seam, on real files with
//! real fsyncs: the fsyncs of the map's data log, against the records
//! acknowledged.

use std::sync::Arc;

use pauselog::{FsStorage, MapConfig, Submitted, SyncPolicy};
use pauselog_tests::faults::FaultStorage;
use pauselog_tests::*;

/// Acknowledgements per data log fsync when `writers` threads each queue
/// `records_per_writer` records on a paused map.
fn acks_per_fsync(writers: u64, records_per_writer: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultStorage::over(Arc::new(FsStorage));
    let engine = storage.engine(dir.path(), SyncPolicy::Always);
    let map = open_map(&engine, "m", MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    let data_dir = dir.path().join("maps").join("m").join("data");
    let syncs_before = storage.syncs_under(&data_dir);
    std::thread::scope(|scope| {
        for writer in 0..writers {
            let map = map.clone();
            scope.spawn(move || {
                for n in 0..records_per_writer {
                    let submitted = map.submit(rec(&format!("W{writer}|K{}", n % 10), n)).unwrap();
                    assert!(matches!(submitted, Submitted::Queued { .. }));
                }
            });
        }
    });
    let acks = writers * records_per_writer;
    (acks, storage.syncs_under(&data_dir) - syncs_before)
}

#[test]
fn concurrent_submitters_share_the_data_logs_fsyncs() {
    let (acks, fsyncs) = acks_per_fsync(8, 150);
    let shared = acks as f64 / fsyncs.max(1) as f64;
    let (alone_acks, alone_fsyncs) = acks_per_fsync(1, 100);
    eprintln!(
        "group commit through the engine: 8 writers {acks} acks / {fsyncs} data log fsyncs = {shared:.2} per fsync; \
         1 writer {alone_acks} acks / {alone_fsyncs} fsyncs"
    );
    assert!(alone_fsyncs >= alone_acks, "one writer waits for an fsync per record: {alone_fsyncs} for {alone_acks}");
    assert!(shared > 1.5, "8 writers share fsyncs: {shared:.2} acknowledgements per fsync");
}
