//! R5, R14, R4: a maintenance window that opens while the map is catching
//! up pauses it as `pause()` would, and its end resumes it with the
//! window's mode; which windows have fired is durable, so a restart inside
//! a window does not undo an operator's resume; the pause reason says
//! which window; a config with two health rules is refused.

use std::time::Duration;

use pauselog::{Error, MapConfig, MapState, PauseReason, PauseRule, ResumeMode};
use pauselog_tests::*;

fn window_config(start: std::time::SystemTime, end: std::time::SystemTime, resume: Option<ResumeMode>) -> MapConfig {
    MapConfig { rules: vec![PauseRule::Window { start, end, resume }], ..MapConfig::default() }
}

/// Found by review: the window was marked as fired and never paused a
/// CatchingUp map, so deliveries went on inside the maintenance window.
#[test]
fn a_window_opening_during_catch_up_pauses_it_and_its_end_resumes_it() {
    let start = epoch() + Duration::from_secs(3600);
    let end = start + Duration::from_secs(1800);
    let fixture = Fixture::new(window_config(start, end, Some(ResumeMode::CatchUp)));
    let (map, dest, clock) = (&fixture.map, &fixture.dest, &fixture.clock);
    fixture.queue(200, |n| format!("K{}", n % 20));
    fixture.stall_catch_up_after(50);
    assert!(matches!(map.state(), MapState::CatchingUp { .. }));

    clock.set(start);
    fixture.engine.tick();
    assert_eq!(
        map.state(),
        MapState::Paused { since: start, reason: PauseReason::Window { start, end }, blocked: None }
    );
    dest.set_unavailable(false);
    let delivered_in_window = dest.delivered().len();
    assert_eq!(map.stats().queued_records + delivered_in_window as u64, 200, "nothing lost at the pause");
    clock.advance(Duration::from_secs(60));
    fixture.engine.tick();
    assert_eq!(dest.delivered().len(), delivered_in_window, "no delivery inside the window");

    clock.set(end);
    fixture.engine.tick();
    wait_running(map);
    assert_eq!(sorted(dest.delivered_seqs()), (1..=200).collect::<Vec<u64>>());
    assert_per_key_order(&dest.delivered(), "across the window");
}

/// Found by review: which windows had fired lived only in memory, so a
/// restart inside a window paused a map again that the operator had resumed.
#[test]
fn a_restart_inside_a_window_keeps_the_operators_resume() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let start = epoch();
    let end = start + Duration::from_secs(600);
    let config = || window_config(start, end, None);
    let dest = TestDest::new();
    {
        let engine = engine(dir.path(), &clock);
        let map = open_map(&engine, "m", config(), &dest);
        engine.tick();
        assert!(matches!(map.state(), MapState::Paused { reason: PauseReason::Window { .. }, .. }));
        map.resume(ResumeMode::CatchUp).unwrap();
        wait_running(&map);
        drop(map);
        engine.close().unwrap();
    }
    clock.advance(Duration::from_secs(10));
    let engine = engine(dir.path(), &clock);
    let map = open_map(&engine, "m", config(), &dest);
    engine.tick();
    assert_eq!(map.state(), MapState::Running, "the window already fired before the restart");
    clock.set(end);
    engine.tick();
    assert_eq!(map.state(), MapState::Running);
}

/// A window that opened while the engine was down pauses the map at open
/// (its start was never acted on), and one that is entirely past does not.
#[test]
fn windows_missed_while_down_are_judged_by_their_marks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let open_now = PauseRule::Window {
        start: epoch() - Duration::from_secs(60),
        end: epoch() + Duration::from_secs(60),
        resume: None,
    };
    let past = PauseRule::Window {
        start: epoch() - Duration::from_secs(600),
        end: epoch() - Duration::from_secs(300),
        resume: Some(ResumeMode::CatchUp),
    };
    let engine = engine(dir.path(), &clock);
    let map = open_map(&engine, "m", MapConfig { rules: vec![past], ..MapConfig::default() }, &TestDest::new());
    engine.tick();
    assert_eq!(map.state(), MapState::Running, "a window entirely past does nothing");
    let map = open_map(&engine, "n", MapConfig { rules: vec![open_now], ..MapConfig::default() }, &TestDest::new());
    engine.tick();
    assert!(matches!(map.state(), MapState::Paused { reason: PauseReason::Window { .. }, .. }));
}

/// The pause reason names the window; the end of another window does not
/// resume a map this one paused.
#[test]
fn the_pause_reason_names_its_window_and_only_it_resumes() {
    let first = (epoch() + Duration::from_secs(100), epoch() + Duration::from_secs(1000));
    let second = (epoch() + Duration::from_secs(200), epoch() + Duration::from_secs(300));
    let rules = vec![
        PauseRule::Window { start: first.0, end: first.1, resume: Some(ResumeMode::CatchUp) },
        PauseRule::Window { start: second.0, end: second.1, resume: Some(ResumeMode::CatchUp) },
    ];
    let Fixture { map, engine, clock, .. } = &Fixture::new(MapConfig { rules, ..MapConfig::default() });
    clock.set(first.0);
    engine.tick();
    let reason = PauseReason::Window { start: first.0, end: first.1 };
    assert!(matches!(map.state(), MapState::Paused { reason: r, .. } if r == reason));
    clock.set(second.1);
    engine.tick();
    assert!(matches!(map.state(), MapState::Paused { reason: r, .. } if r == reason), "the second window's end");
    clock.set(first.1);
    engine.tick();
    wait_running(map);
}

#[test]
fn two_health_rules_are_refused_and_nothing_is_created() {
    let Fixture { engine, .. } = &Fixture::new(MapConfig::default());
    let rules = vec![
        PauseRule::DestinationUnavailable { consecutive: 3 },
        PauseRule::DestinationUnavailable { consecutive: 5 },
    ];
    let result = engine.table_map("twice", MapConfig { rules, ..MapConfig::default() }, TestDest::new());
    assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    assert!(!engine.map_names().unwrap().contains(&"twice".to_owned()), "nothing written for a refused config");
}
