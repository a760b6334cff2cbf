//! R7, R14: rules are evaluated by the engine's background ticker on its
//! own, without `tick()` and without a submit: a maintenance window pauses
//! at its start and resumes at its end, and a pause reaches its age cap.
//! The clock is a `ManualClock` set ahead; only the wait for the ticker's
//! thread takes real time (bounded by `WAIT`).

use std::sync::Arc;
use std::time::Duration;

use pauselog::{Engine, Limit, ManualClock, MapConfig, MapState, PauseReason, PauseRule, ResumeMode, Submitted};
use pauselog_tests::*;

/// An engine whose ticker runs every 5 ms of real time.
fn ticking_engine(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::builder(dir)
        .clock(clock.clone())
        .tick_interval(Some(Duration::from_millis(5)))
        .open()
        .expect("engine opens")
}

#[test]
fn the_ticker_pauses_a_map_at_its_window_start_and_resumes_it_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = ticking_engine(dir.path(), &clock);
    let dest = TestDest::new();
    let start = epoch() + Duration::from_secs(3600);
    let end = start + Duration::from_secs(1800);
    let rule = PauseRule::Window { start, end, resume: Some(ResumeMode::CatchUp) };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &dest);

    clock.set(start);
    let paused = map.wait_for(is_paused, WAIT).expect("the ticker pauses the map at the window's start");
    assert_eq!(paused, MapState::Paused { since: start, reason: PauseReason::Window { start, end }, blocked: None });
    let Submitted::Queued { seq } = map.submit(rec("K", 1)).unwrap() else { panic!("a paused map queues") };

    clock.set(end);
    wait_running(&map);
    assert_eq!(dest.delivered_seqs(), [seq], "the window's end resumed with catch-up");
}

#[test]
fn the_ticker_blocks_a_paused_map_at_its_age_cap() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = ticking_engine(dir.path(), &clock);
    let config = MapConfig { max_pause: Duration::from_secs(60), ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &TestDest::new());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();

    clock.advance(Duration::from_secs(61));
    let blocked = map.wait_for(|s| matches!(s, MapState::Paused { blocked: Some(_), .. }), WAIT);
    assert!(
        matches!(blocked, Ok(MapState::Paused { blocked: Some(Limit::PauseAge), .. })),
        "the ticker blocks the idle map at its age cap: {blocked:?}"
    );
    assert_eq!(map.stats().queued_records, 1, "nothing queued is dropped by the block (R8)");
}
