//! R6, R7, R8: the size cap is exact (encoded bytes, framing included) and
//! the pause-age cap runs on the engine clock; a blocked map refuses
//! `submit` with `Error::Blocked`, writes nothing, drops nothing, and stays
//! blocked until resumed and caught up (or skipped).

use std::time::Duration;

use pauselog::{Error, Limit, MapConfig, MapState, Query, ResumeMode};
use pauselog_tests::*;

/// Encoded bytes of `rec(key, n)`: 16-byte frame header + 13-byte record
/// header + key + payload.
fn encoded(key: &str, n: u64) -> u64 {
    16 + 13 + key.len() as u64 + format!("payload-{n}").len() as u64
}

#[test]
fn size_cap_is_exact_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let one = encoded("K", 1);
    let config = MapConfig { max_queue_bytes: one * 3, ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    for n in 1..=3 {
        map.submit(rec("K", n)).unwrap();
    }
    assert_eq!(map.stats().queued_bytes, one * 3, "accounting is exact");
    assert_eq!(map.stats().bytes_left, 0);
    let refused = map.submit(rec("K", 4));
    assert!(matches!(refused, Err(Error::Blocked { limit: Limit::Size, .. })), "{refused:?}");
    assert!(matches!(map.state(), MapState::Paused { blocked: Some(Limit::Size), .. }));
    assert_eq!(map.stats().queued_records, 3, "nothing written, nothing dropped");
    assert_eq!(map.queued(&Query::default()).unwrap().items.len(), 3);
}

#[test]
fn a_blocked_map_unblocks_after_catch_up() {
    let fixture = Fixture::new(MapConfig { max_queue_bytes: encoded("K", 1) * 2, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.submit(rec("K", 2)).unwrap();
    assert!(map.submit(rec("K", 3)).is_err());
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    assert_eq!(dest.delivered_seqs(), [1, 2]);
    assert_eq!(map.stats().blocked, None);
    map.pause().unwrap();
    map.submit(rec("K", 4)).unwrap();
    assert_eq!(map.stats().queued_bytes, encoded("K", 4), "released bytes are free again");
}

#[test]
fn pause_age_cap_blocks_on_the_engine_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = MapConfig { max_pause: Duration::from_secs(3600), ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    clock.advance(Duration::from_secs(3599));
    map.submit(rec("K", 2)).unwrap();
    assert_eq!(map.stats().pause_time_left, Some(Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    let refused = map.submit(rec("K", 3));
    assert!(matches!(refused, Err(Error::Blocked { limit: Limit::PauseAge, .. })), "{refused:?}");
    assert_eq!(map.stats().queued_records, 2, "nothing queued is dropped at the cap");
}

#[test]
fn the_ticker_blocks_an_idle_map_at_the_age_cap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = MapConfig { max_pause: Duration::from_secs(60), ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    clock.advance(Duration::from_secs(61));
    engine.tick();
    assert!(matches!(map.state(), MapState::Paused { blocked: Some(Limit::PauseAge), .. }));
}

#[test]
fn default_caps_are_one_gib_and_one_day() {
    let config = MapConfig::default();
    assert_eq!(config.max_queue_bytes, 1_073_741_824);
    assert_eq!(config.max_error_bytes, 1_073_741_824);
    assert_eq!(config.max_pause, Duration::from_secs(86_400));
}
