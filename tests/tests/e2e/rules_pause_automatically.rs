//! R14: a maintenance window pauses at its start and (with a resume mode)
//! resumes at its end; the destination-health rule pauses after `n`
//! consecutive `Unavailable` live writes and queues the tripping record.
//! Rules run on the engine clock: on submit, on the ticker, on `tick()`.

use std::time::Duration;

use pauselog::{MapConfig, MapState, PauseReason, PauseRule, Query, ResumeMode, Submitted};
use pauselog_tests::*;

#[test]
fn window_pauses_at_start_and_resumes_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let dest = TestDest::new();
    let start = epoch() + Duration::from_secs(3600);
    let end = start + Duration::from_secs(1800);
    let rule = PauseRule::Window { start, end, resume: Some(ResumeMode::CatchUp) };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &dest);
    engine.tick();
    assert_eq!(map.state(), MapState::Running, "before the window");
    clock.set(start);
    engine.tick();
    assert_eq!(
        map.state(),
        MapState::Paused { since: start, reason: PauseReason::Window { start, end }, blocked: None }
    );
    assert!(matches!(map.submit(rec("K", 1)).unwrap(), Submitted::Queued { .. }));
    clock.set(end);
    engine.tick();
    wait_running(&map);
    assert_eq!(dest.delivered_seqs(), [1]);
    engine.tick();
    assert_eq!(map.state(), MapState::Running, "a window fires once");
}

#[test]
fn window_is_evaluated_on_submit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let start = epoch() + Duration::from_secs(10);
    let rule = PauseRule::Window { start, end: start + Duration::from_secs(10), resume: None };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &TestDest::new());
    clock.set(start);
    assert_eq!(map.submit(rec("K", 1)).unwrap(), Submitted::Queued { seq: 1 }, "the submit itself sees the window");
    clock.advance(Duration::from_secs(60));
    engine.tick();
    assert!(is_paused(&map.state()), "without a resume mode the map stays paused");
}

#[test]
fn a_manual_resume_inside_a_window_is_not_undone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let start = epoch();
    let rule = PauseRule::Window { start, end: start + Duration::from_secs(600), resume: None };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &TestDest::new());
    engine.tick();
    assert!(is_paused(&map.state()));
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    clock.advance(Duration::from_secs(1));
    engine.tick();
    assert_eq!(map.state(), MapState::Running);
}

#[test]
fn health_rule_pauses_and_queues_the_tripping_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let dest = TestDest::new();
    let rule = PauseRule::DestinationUnavailable { consecutive: 3 };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &dest);
    dest.set_unavailable(true);
    assert!(map.submit(rec("K", 1)).is_err());
    assert!(map.submit(rec("K", 2)).is_err());
    // Seqs 1-3 went to the live attempts (R21: one sequence, never reused).
    assert_eq!(map.submit(rec("K", 3)).unwrap(), Submitted::Queued { seq: 4 }, "the third trips the rule");
    assert!(matches!(map.state(), MapState::Paused { reason: PauseReason::DestinationUnavailable, .. }));
    let queued = map.queued(&Query::default()).unwrap();
    assert_eq!(queued.items[0].payload, b"payload-3");
    dest.set_unavailable(false);
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    assert_eq!(dest.delivered_payloads(), ["payload-3"]);
}

#[test]
fn a_success_resets_the_health_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let dest = TestDest::new();
    let rule = PauseRule::DestinationUnavailable { consecutive: 2 };
    let map = open_map(&engine, "m", MapConfig { rules: vec![rule], ..MapConfig::default() }, &dest);
    dest.set_unavailable(true);
    assert!(map.submit(rec("K", 1)).is_err());
    dest.set_unavailable(false);
    assert_eq!(map.submit(rec("K", 2)).unwrap(), Submitted::Live);
    dest.set_unavailable(true);
    assert!(map.submit(rec("K", 3)).is_err(), "only one in a row since the success");
    assert_eq!(map.state(), MapState::Running);
}
