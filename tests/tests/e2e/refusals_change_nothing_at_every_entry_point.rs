//! R16, R20: a call the map's state does not allow, and a preserve that
//! would take the catch-up errors past their cap, are refused through
//! every entry point (`resume`, `skip_to_live`, a window rule's resume),
//! and each refusal changes nothing: state, queue, errors and figures are
//! the same before and after, and a refused skip leaves the catch-up
//! running.

use std::time::Duration;

use pauselog::{CatchupError, Error, MapConfig, MapState, PauseReason, PauseRule, QueuedRecord, ResumeMode, TableMap};
use pauselog_tests::*;

const MODES: [ResumeMode; 3] = [ResumeMode::CatchUp, ResumeMode::SkipToLivePreserve, ResumeMode::SkipToLiveDiscard];

/// Everything an operator sees of a map, but what a stalled replay keeps
/// moving (its last error text, lanes busy) and what the clock moves (ages).
#[derive(Debug, PartialEq)]
struct Seen {
    state: MapState,
    figures: (u64, u64, u64, u64, u64, Option<pauselog::Limit>),
    queue: Vec<QueuedRecord>,
    errors: Vec<CatchupError>,
}

fn seen(map: &TableMap) -> Seen {
    let s = map.stats();
    Seen {
        state: map.state(),
        figures: (s.queued_records, s.queued_bytes, s.error_records, s.error_bytes, s.replayed, s.blocked),
        queue: all_queued(map, None),
        errors: all_errors(map, None),
    }
}

fn assert_invalid_state(result: pauselog::Result<()>, state: &str, action: &str) {
    match result {
        Err(Error::InvalidState { state: s, action: a, map }) => {
            assert_eq!((s.as_str(), a.as_str(), map.as_str()), (state, action, "m"))
        }
        other => panic!("{action} while {state}: {other:?}"),
    }
}

/// A map whose errors hold 4 preserved records and whose queue holds 4
/// more, with `max_error_bytes` room for 6: any preserve is refused.
fn errors_nearly_full(config: MapConfig) -> Fixture {
    let record_bytes = pauselog_tests::model::record_bytes("K1", "payload-1".len());
    let fixture = Fixture::new(MapConfig { max_error_bytes: record_bytes * 6, ..config });
    fixture.queue(4, |n| format!("K{n}"));
    fixture.map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    // Other keys: under Strict ordering a catch-up holds back the records of
    // keys with errors, and with the errors full it would stall on them.
    fixture.queue(4, |n| format!("Q{n}"));
    fixture
}

#[test]
fn resume_is_refused_unless_paused_and_changes_nothing() {
    let fixture = Fixture::new(MapConfig::default());
    let map = &fixture.map;
    let before = seen(map);
    for mode in MODES {
        assert_invalid_state(map.resume(mode), "Running", "resume");
    }
    assert_eq!(seen(map), before);

    fixture.queue(5, |n| format!("K{n}"));
    fixture.stall_catch_up_after(2);
    let before = seen(map);
    for mode in MODES {
        assert_invalid_state(map.resume(mode), "CatchingUp", "resume");
    }
    assert_eq!(seen(map), before);
    fixture.dest.set_unavailable(false);
    wait_running(map);
    assert_eq!(sorted(fixture.dest.delivered_seqs()), (1..=5).collect::<Vec<u64>>());
}

#[test]
fn skip_to_live_is_refused_unless_catching_up_and_changes_nothing() {
    let fixture = Fixture::new(MapConfig::default());
    let map = &fixture.map;
    let before = seen(map);
    for preserve in [true, false] {
        assert_invalid_state(map.skip_to_live(preserve), "Running", "skip_to_live");
    }
    assert_eq!(seen(map), before);
    fixture.queue(3, |n| format!("K{n}"));
    let before = seen(map);
    for preserve in [true, false] {
        assert_invalid_state(map.skip_to_live(preserve), "Paused", "skip_to_live");
    }
    assert_eq!(seen(map), before);
}

#[test]
fn a_preserve_past_the_error_cap_is_refused_by_resume_and_changes_nothing() {
    let fixture = errors_nearly_full(MapConfig::default());
    let map = &fixture.map;
    let before = seen(map);
    let refused = map.resume(ResumeMode::SkipToLivePreserve);
    assert!(matches!(refused, Err(Error::ErrorsFull { .. })), "{refused:?}");
    assert_eq!(seen(map), before);
    assert!(refused.unwrap_err().to_string().contains("discard or retry errors"), "the error says what to do");
}

/// Issue 12, defect 4: a refused `skip_to_live(true)` used to leave the map
/// CatchingUp with its replay stopped and no worker.
#[test]
fn a_preserve_past_the_error_cap_is_refused_by_skip_to_live_and_the_catch_up_goes_on() {
    let fixture = errors_nearly_full(MapConfig { lanes: 1, ..MapConfig::default() });
    let map = &fixture.map;
    fixture.dest.set_unavailable(true);
    map.resume(ResumeMode::CatchUp).unwrap();
    while map.stats().last_error.is_none() {
        std::thread::yield_now();
    }
    let before = seen(map);
    let refused = map.skip_to_live(true);
    assert!(matches!(refused, Err(Error::ErrorsFull { .. })), "{refused:?}");
    assert_eq!(seen(map), before);
    fixture.dest.set_unavailable(false);
    wait_running(map);
    assert_eq!(fixture.dest.delivered().len(), 4, "the refused skip left the catch-up running: the queue drained");
}

#[test]
fn a_window_ending_with_a_refused_preserve_leaves_the_map_paused_and_says_why() {
    let start = epoch() + Duration::from_secs(60);
    let end = start + Duration::from_secs(600);
    let rule = PauseRule::Window { start, end, resume: Some(ResumeMode::SkipToLivePreserve) };
    let fixture = errors_nearly_full(MapConfig { rules: vec![rule], ..MapConfig::default() });
    let (map, clock, engine) = (&fixture.map, &fixture.clock, &fixture.engine);
    fixture.map.resume(ResumeMode::SkipToLiveDiscard).unwrap();
    clock.set(start);
    engine.tick();
    assert!(matches!(map.state(), MapState::Paused { reason: PauseReason::Window { .. }, .. }), "{:?}", map.state());
    for n in 0..4 {
        map.submit(rec(&format!("W{n}"), n)).unwrap();
    }
    let before = seen(map);
    clock.set(end);
    engine.tick();
    let after = seen(map);
    assert_eq!(after, before, "the refused resume at the window's end changed nothing");
    let why = map.stats().last_error.expect("the refusal is shown");
    assert!(why.contains("maintenance window"), "{why}");
    engine.tick();
    assert_eq!(seen(map), before, "the refused resume is not tried again");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
}
