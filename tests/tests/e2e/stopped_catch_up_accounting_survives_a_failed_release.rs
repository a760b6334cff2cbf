//! R6, R17, R18: a catch-up stopped while it has delivered records above
//! its committed head releases them from the data log; when that release
//! fails (the data log refuses writes after a failure), they stay queued,
//! and the next catch-up delivers them again (at least once) with the byte
//! accounting intact.
//!
//! Found by the I/O error sweep (RotationHeavy, seed 1, ENOSPC once at a
//! data log write): the records left the queue's accounting although they
//! stayed in the log; the next catch-up read them again, took their bytes
//! out a second time, and its thread panicked on the accounting, poisoning
//! the map.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog::{DeliveryError, Destination, Error, MapConfig, QueuedRecord, ResumeMode, SyncPolicy};
use pauselog_tests::faults::{Fault, FaultStorage, EIO};
use pauselog_tests::model::record_bytes;
use pauselog_tests::*;
use pauselog_wal::SimStorage;

/// Down for key `SLOW` until told otherwise; every other key goes through.
/// Each call waits a moment, like a round trip, so the catch-up opens its
/// lanes (R22) after its first calls.
#[derive(Debug, Default)]
struct SlowKeyDown {
    inner: TestDest,
    slow_up: AtomicBool,
}

impl Destination for SlowKeyDown {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        if record.key == "SLOW" && !self.slow_up.load(Ordering::SeqCst) {
            return Err(DeliveryError::Unavailable("SLOW is down".into()));
        }
        self.inner.deliver(record)
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        std::thread::sleep(Duration::from_micros(200));
        batch.iter().map(|record| self.deliver(record)).collect()
    }
}

#[test]
fn records_a_stopped_catch_up_cannot_release_stay_queued_and_are_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let storage = FaultStorage::over_sim(&sim);
    let engine = storage.engine(dir.path(), SyncPolicy::Always);
    let dest = Arc::new(SlowKeyDown::default());
    let config = MapConfig {
        lanes: 2,
        replay_batch_records: 1,
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(2),
        ..MapConfig::default()
    };
    let map = engine.table_map("m", config, dest.clone()).unwrap();
    map.pause().unwrap();
    map.submit(rec("SLOW", 0)).unwrap();
    let fast: Vec<String> = (1..=6).map(|n| format!("FAST-{n}")).collect();
    for (n, key) in fast.iter().enumerate() {
        map.submit(rec(key, n as u64 + 1)).unwrap();
    }
    map.resume(ResumeMode::CatchUp).unwrap();
    // The head stays at SLOW's record while the other lane delivers above it.
    let deadline = Instant::now() + WAIT;
    while dest.inner.delivered().is_empty() || map.stats().last_error.is_none() {
        assert!(Instant::now() < deadline, "no lane delivered above SLOW's record: {:?}", map.stats());
        std::thread::yield_now();
    }
    // The data log fails: the record appended at the tail is not
    // acknowledged, and the log refuses every write from now on.
    let data_dir = dir.path().join("maps").join("m").join("data");
    storage.arm_under(&data_dir, Fault::Fail { at: 1, errno: EIO, persistent: true });
    assert!(map.submit(rec("TAIL", 9)).is_err(), "the tail append fails");
    storage.disarm();
    // The stop cannot release what it delivered above the head.
    map.pause().unwrap();
    assert_eq!(map.stats().queued_records, all_queued(&map, None).len() as u64, "the accounting agrees");

    dest.slow_up.store(true, Ordering::SeqCst);
    map.resume(ResumeMode::CatchUp).unwrap();
    // The catch-up delivers everything up to the tail it cannot make durable.
    let delivered_all = || {
        let keys: HashSet<String> = dest.inner.delivered().into_iter().map(|r| r.key).collect();
        keys.contains("SLOW") && fast.iter().all(|key| keys.contains(key))
    };
    let deadline = Instant::now() + WAIT;
    while !(delivered_all() && map.stats().queued_records <= 1) {
        assert!(Instant::now() < deadline, "the catch-up did not get past the records: {:?}", map.stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = map.stats();
    let queued = all_queued(&map, None);
    let bytes: u64 = queued.iter().map(|r| record_bytes(&r.key, r.payload.len())).sum();
    assert_eq!((stats.queued_records, stats.queued_bytes), (queued.len() as u64, bytes), "{stats:?}");
    match map.pause() {
        Ok(()) => {}
        Err(Error::Poisoned { reason, .. }) => assert!(!reason.contains("panicked"), "a broken invariant: {reason}"),
        Err(other) => panic!("pause: {other}"),
    }
}
