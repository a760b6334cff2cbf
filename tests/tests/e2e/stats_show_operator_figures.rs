//! R9: the operator sees state, pause start and reason, blocked limit,
//! queued count and bytes, oldest age, what is left before each cap, and
//! while catching up the replayed/remaining counts.

use std::time::Duration;

use pauselog::{MapConfig, MapState, PauseReason, ResumeMode};
use pauselog_tests::*;

#[test]
fn paused_map_reports_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = MapConfig { max_pause: Duration::from_secs(7200), ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    clock.advance(Duration::from_secs(600));
    map.submit(rec("K", 2)).unwrap();
    let stats = map.stats();
    assert_eq!(stats.state, MapState::Paused { since: epoch(), reason: PauseReason::Manual, blocked: None });
    assert_eq!(stats.queued_records, 2);
    assert!(stats.queued_bytes > 0);
    assert_eq!(stats.oldest_queued_age, Some(Duration::from_secs(600)));
    assert_eq!(stats.pause_time_left, Some(Duration::from_secs(6600)));
    assert_eq!(stats.bytes_left, MapConfig::default().max_queue_bytes - stats.queued_bytes);
}

#[test]
fn catching_up_map_reports_progress() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    for n in 0..50 {
        map.submit(rec("K", n)).unwrap();
    }
    dest.set_unavailable(true);
    map.resume(ResumeMode::CatchUp).unwrap();
    let stats = map.stats();
    assert!(matches!(stats.state, MapState::CatchingUp { .. }));
    assert_eq!(stats.replayed + stats.remaining, 50);
    let deadline = std::time::Instant::now() + WAIT;
    while map.stats().last_error.is_none() {
        assert!(std::time::Instant::now() < deadline, "the stall never showed in the stats");
        std::thread::yield_now();
    }
    assert!(map.stats().last_error.unwrap().contains("unavailable"), "a stalled replay shows its last error");
    dest.set_unavailable(false);
    wait_running(map);
    assert_eq!(map.stats().queued_records, 0);
}
