//! R13, R16: skipping to live preserves the backlog as catch-up errors
//! (`Preserved`) or discards it, at once; during catch-up the split is exact
//! at the cut-over; the errors list has its own byte cap.

use pauselog::{Error, ErrorReason, MapConfig, MapState, Query, ResumeMode, Submitted};
use pauselog_tests::*;

#[test]
fn resume_skip_preserve_moves_the_queue_to_errors() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    for n in 1..=30 {
        map.submit(rec(&format!("K{}", n % 3), n)).unwrap();
    }
    let queued_bytes = map.stats().queued_bytes;
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    assert_eq!(map.state(), MapState::Running);
    assert_eq!(dest.calls(), 0, "nothing replayed");
    let stats = map.stats();
    assert_eq!((stats.queued_records, stats.queued_bytes), (0, 0));
    assert_eq!((stats.error_records, stats.error_bytes), (30, queued_bytes));
    let errors = map.catchup_errors(&Query::default().limit(100)).unwrap();
    assert_eq!(errors.total, 30);
    assert!(errors.items.iter().all(|e| e.reason == ErrorReason::Preserved && e.attempts == 0));
    assert_eq!(errors.items.iter().map(|e| e.record.seq).collect::<Vec<_>>(), (1..=30).collect::<Vec<u64>>());
    assert_eq!(map.catchup_errors(&Query::default().key("K1")).unwrap().total, 10);
    assert_eq!(map.submit(rec("K9", 99)).unwrap(), Submitted::Live);
}

#[test]
fn resume_skip_discard_drops_the_queue() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    for n in 1..=30 {
        map.submit(rec("K", n)).unwrap();
    }
    map.resume(ResumeMode::SkipToLiveDiscard).unwrap();
    let stats = map.stats();
    assert_eq!((stats.queued_records, stats.queued_bytes, stats.error_records), (0, 0, 0));
    assert_eq!(dest.calls(), 0);
    let Fixture { map, engine, dest, clock, dir } = fixture;
    drop(map);
    drop(engine);
    let reopened = pauselog_tests::engine(dir.path(), &clock);
    let map = open_map(&reopened, "m", MapConfig::default(), &dest);
    assert_eq!(map.stats().queued_records, 0, "a discard is durable");
    assert_eq!(map.state(), MapState::Running);
}

#[test]
fn skip_during_catch_up_splits_exactly_at_the_cut_over() {
    for preserve in [true, false] {
        let fixture = Fixture::new(MapConfig { replay_batch_records: 7, ..MapConfig::default() });
        let (map, dest) = (&fixture.map, &fixture.dest);
        fixture.queue(100, |n| format!("K{n}"));
        // The replay delivers 20 records, then stalls on an unavailable destination.
        fixture.stall_catch_up_after(20);
        map.skip_to_live(preserve).unwrap();
        assert_eq!(map.state(), MapState::Running);
        let delivered = dest.delivered_seqs();
        let errors: Vec<u64> =
            map.catchup_errors(&Query::default().limit(1000)).unwrap().items.iter().map(|e| e.record.seq).collect();
        if preserve {
            let mut all = delivered.clone();
            all.extend(&errors);
            assert_eq!(sorted(all), (1..=100).collect::<Vec<u64>>(), "delivered + preserved = all, each once");
        } else {
            assert!(errors.is_empty());
        }
        assert_eq!(delivered.len(), 20, "exactly what was replayed was delivered");
        assert_eq!(map.stats().queued_records, 0);
    }
}

#[test]
fn skip_to_live_is_only_for_catching_up() {
    let Fixture { map, .. } = &Fixture::new(MapConfig::default());
    assert!(matches!(map.skip_to_live(true), Err(Error::InvalidState { .. })));
    map.pause().unwrap();
    assert!(matches!(map.skip_to_live(false), Err(Error::InvalidState { .. })));
}

#[test]
fn preserve_over_the_error_cap_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = MapConfig { max_error_bytes: 100, ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    for n in 1..=10 {
        map.submit(rec("K", n)).unwrap();
    }
    let before = map.stats();
    let refused = map.resume(ResumeMode::SkipToLivePreserve);
    assert!(matches!(refused, Err(Error::ErrorsFull { .. })), "{refused:?}");
    let after = map.stats();
    assert_eq!((after.state, after.queued_records, after.error_records), (before.state, 10, 0));
}

/// Found by review: a `skip_to_live(true)` refused for the errors' cap had
/// already stopped the replay, so the map stayed CatchingUp with no worker.
/// A refused skip changes nothing: the catch-up goes on and finishes.
#[test]
fn a_refused_skip_leaves_the_catch_up_running() {
    let config = MapConfig { max_error_bytes: 100, ..MapConfig::default() };
    let fixture = Fixture::new(config);
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(50, |n| format!("K{}", n % 5));
    fixture.stall_catch_up_after(10);
    let before = map.stats();
    let refused = map.skip_to_live(true);
    assert!(matches!(refused, Err(Error::ErrorsFull { .. })), "{refused:?}");
    let after = map.stats();
    assert!(matches!(after.state, MapState::CatchingUp { .. }), "{:?}", after.state);
    assert_eq!((after.queued_records, after.error_records), (before.queued_records, 0));
    dest.set_unavailable(false);
    wait_running(map);
    assert_eq!(sorted(dest.delivered_seqs()), (1..=50).collect::<Vec<u64>>());
}
