//! R4: the state, the queue, the replay position and the catch-up errors
//! survive a restart; a map that was CatchingUp continues catching up once
//! its destination is attached again.
//!
//! Each test leaves a map in one state, closes the engine (handles first: a
//! map's files stay open while any handle lives), reopens it, and compares
//! everything an operator can see.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pauselog::{
    CatchupError, Error, Limit, ManualClock, MapConfig, MapState, PauseReason, QueuedRecord, ResumeMode, Submitted,
    SyncPolicy, TableMap,
};
use pauselog_tests::*;

const MAP: &str = "customers";
const KEYS: [&str; 3] = ["USMF|CUST-1", "USMF|CUST-2", "USMF|CUST-3"];

/// What an operator sees of a map, minus the per-run figures (replayed
/// count and drain rate restart at zero with the process).
#[derive(Debug, PartialEq)]
struct Seen {
    state: MapState,
    queued: Vec<QueuedRecord>,
    per_key_totals: Vec<u64>,
    errors: Vec<CatchupError>,
    queued_records: u64,
    queued_bytes: u64,
    oldest_queued_age: Option<Duration>,
    bytes_left: u64,
    pause_time_left: Option<Duration>,
    blocked: Option<Limit>,
    error_records: u64,
    error_bytes: u64,
}

fn seen(map: &TableMap) -> Seen {
    let stats = map.stats();
    let state = match stats.state {
        MapState::CatchingUp { remaining, .. } => MapState::CatchingUp { replayed: 0, remaining },
        state => state,
    };
    let per_key_totals =
        KEYS.iter().map(|key| map.queued(&pauselog::Query::default().key(*key)).unwrap().total).collect();
    Seen {
        state,
        queued: all_queued(map, None),
        per_key_totals,
        errors: all_errors(map, None),
        queued_records: stats.queued_records,
        queued_bytes: stats.queued_bytes,
        oldest_queued_age: stats.oldest_queued_age,
        bytes_left: stats.bytes_left,
        pause_time_left: stats.pause_time_left,
        blocked: stats.blocked,
        error_records: stats.error_records,
        error_bytes: stats.error_bytes,
    }
}

/// Closes the engine (its map handle first) and opens it again.
fn restart(dir: &Path, clock: &Arc<ManualClock>, engine: pauselog::Engine, map: TableMap) -> pauselog::Engine {
    drop(map);
    engine.close().expect("engine closes");
    engine_reopen(dir, clock)
}

fn engine_reopen(dir: &Path, clock: &Arc<ManualClock>) -> pauselog::Engine {
    engine(dir, clock)
}

fn submit_round_robin(map: &TableMap, count: u64) -> Vec<u64> {
    (0..count)
        .map(|n| match map.submit(rec(KEYS[(n % 3) as usize], n)).unwrap() {
            Submitted::Queued { seq } => seq,
            Submitted::Live => panic!("record {n} went live"),
        })
        .collect()
}

#[test]
fn running_map_keeps_its_catch_up_errors() {
    let Fixture { map, engine, dest, clock, dir } = Fixture::named(MAP, MapConfig::default());
    map.pause().unwrap();
    submit_round_robin(&map, 30);
    dest.reject(KEYS[1]);
    clock.advance(Duration::from_secs(60));
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    let before = seen(&map);
    assert_eq!(before.errors.len(), 10, "every record of the rejected key is a catch-up error");
    assert_eq!(before.state, MapState::Running);

    let engine = restart(dir.path(), &clock, engine, map);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    assert_eq!(seen(&map), before);
}

#[test]
fn paused_map_keeps_its_queue_and_pause_start() {
    let Fixture { map, engine, dest, clock, dir } = Fixture::named(MAP, MapConfig::default());
    map.pause().unwrap();
    let seqs = submit_round_robin(&map, 45);
    clock.advance(Duration::from_secs(3600));
    let before = seen(&map);
    assert_eq!(before.queued.iter().map(|r| r.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(before.state, MapState::Paused { since: epoch(), reason: PauseReason::Manual, blocked: None });

    let engine = restart(dir.path(), &clock, engine, map);
    let map = open_map(&engine, MAP, MapConfig::default(), &dest);
    assert_eq!(seen(&map), before);
    assert_eq!(map.submit(rec(KEYS[0], 99)).unwrap(), Submitted::Queued { seq: 46 }, "seqs are never reused");
    assert!(dest.delivered().is_empty());
}

#[test]
fn map_blocked_by_its_size_cap_stays_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = || MapConfig { max_queue_bytes: 1000, ..MapConfig::default() };
    let map = open_map(&engine, MAP, config(), &TestDest::new());
    map.pause().unwrap();
    let mut queued = 0;
    let limit = loop {
        match map.submit(rec(KEYS[0], queued)) {
            Ok(Submitted::Queued { .. }) => queued += 1,
            Err(Error::Blocked { limit, .. }) => break limit,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(limit, Limit::Size);
    let before = seen(&map);
    assert_eq!(before.blocked, Some(Limit::Size));
    assert_eq!(before.queued_records, queued);

    let engine = restart(dir.path(), &clock, engine, map);
    let map = open_map(&engine, MAP, config(), &TestDest::new());
    assert_eq!(seen(&map), before);
    assert!(matches!(map.submit(rec(KEYS[0], 0)), Err(Error::Blocked { limit: Limit::Size, .. })));
    assert_eq!(seen(&map), before, "a refused record changes nothing");
}

#[test]
fn map_blocked_by_its_pause_age_stays_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let config = || MapConfig { max_pause: Duration::from_secs(3600), ..MapConfig::default() };
    let map = open_map(&engine, MAP, config(), &TestDest::new());
    map.pause().unwrap();
    submit_round_robin(&map, 12);
    clock.advance(Duration::from_secs(3600));
    engine.tick();
    let before = seen(&map);
    assert_eq!(
        before.state,
        MapState::Paused { since: epoch(), reason: PauseReason::Manual, blocked: Some(Limit::PauseAge) }
    );
    assert_eq!(before.pause_time_left, Some(Duration::ZERO));

    let engine = restart(dir.path(), &clock, engine, map);
    let map = open_map(&engine, MAP, config(), &TestDest::new());
    assert_eq!(seen(&map), before);
    assert!(matches!(map.submit(rec(KEYS[0], 0)), Err(Error::Blocked { limit: Limit::PauseAge, .. })));
}

#[test]
fn catching_up_map_continues_after_a_restart_delivering_each_record_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let down = TestDest::new();
    down.set_unavailable(true);
    let map = open_map(&engine, MAP, MapConfig::default(), &down);
    map.pause().unwrap();
    let seqs = submit_round_robin(&map, 60);
    map.resume(ResumeMode::CatchUp).unwrap();
    let before = seen(&map);
    assert_eq!(before.state, MapState::CatchingUp { replayed: 0, remaining: 60 });

    let engine = restart(dir.path(), &clock, engine, map);
    assert!(down.delivered().is_empty(), "the replay stalled on an unavailable destination");
    let up = TestDest::new();
    up.close_gate(); // hold the replay so the state can be seen before it drains
    let map = open_map(&engine, MAP, MapConfig::default(), &up);
    assert_eq!(seen(&map), before);
    // New writes still go to the tail while catching up (R3).
    assert_eq!(map.submit(rec(KEYS[2], 60)).unwrap(), Submitted::Queued { seq: 61 });
    up.open_gate();
    wait_running(&map);
    let expected: Vec<u64> = seqs.into_iter().chain([61]).collect();
    assert_eq!(sorted(up.delivered_seqs()), sorted(expected), "every queued record once");
    assert_per_key_order(&up.delivered(), "after a restart");
    assert!(up.delivered_payloads().iter().any(|p| p == "payload-60"), "the record queued after the restart");
    assert_eq!(map.stats().queued_records, 0);
}

#[test]
fn records_made_durable_by_sync_survive_a_restart_under_sync_never() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine_with(dir.path(), &clock, SyncPolicy::Never);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    submit_round_robin(&map, 40);
    engine.sync().unwrap();
    let before = seen(&map);

    drop(map);
    engine.close().unwrap();
    let engine = engine_with(dir.path(), &clock, SyncPolicy::Never);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    assert_eq!(seen(&map), before);
}

/// The child of [`records_made_durable_by_sync_survive_a_crash_under_sync_never`].
#[test]
fn crash_child() {
    let Some((_, dir)) = crash_child_args() else { return };
    let engine = engine_with(&dir, &clock(), SyncPolicy::Never);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    let mut n = 0;
    loop {
        for _ in 0..50 {
            let Submitted::Queued { seq } = map.submit(rec(KEYS[(n % 3) as usize], n)).unwrap() else {
                panic!("paused")
            };
            n += 1;
            say("QUEUED", &[&seq]);
        }
        engine.sync().unwrap();
        say("SYNCED", &[&n]);
        if n > 1_000_000 {
            return;
        }
    }
}

#[test]
fn records_made_durable_by_sync_survive_a_crash_under_sync_never() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let child = child_test_name(module_path!(), "crash_child");
    let events =
        run_and_kill(&child, "sync_never", &dir, |events| events.iter().filter(|e| e.tag == "SYNCED").count() >= 4);
    let synced = events.iter().filter(|e| e.tag == "SYNCED").map(|e| e.num(0)).max().unwrap();

    let engine = engine_with(&dir, &clock(), SyncPolicy::Never);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    assert!(matches!(map.state(), MapState::Paused { .. }));
    let queued = all_queued(&map, None);
    assert!(queued.len() as u64 >= synced, "{} queued, {synced} synced", queued.len());
    for (n, record) in queued.iter().take(synced as usize).enumerate() {
        assert_eq!((record.seq, record.payload.clone()), (n as u64 + 1, format!("payload-{n}").into_bytes()));
    }
}
