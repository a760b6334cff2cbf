//! The whole story against a real PostgreSQL server (R1, R2, R3, R4, R14,
//! R15, R16, R16b, R18, R21, R22, R23): live sync into a `customers` table with a
//! CHECK constraint and a foreign key; the server is stopped for
//! maintenance (`pg_ctl stop`) and the health rule pauses the map, queueing
//! the record that tripped it, while writers keep submitting; the server is
//! started again and the map catches up in lanes while writers go on (their
//! records of keys with nothing queued pass through live, R23); the
//! rows that break a constraint land in the catch-up errors with the
//! server's message; the CHECK ones are fixed at the source (a newer
//! record), the foreign-key ones at the destination and retried. At the end
//! the table equals the last acknowledged write per key, and a reader
//! polling the table throughout never saw a row go back to an older version.
//!
//! The second run does the catch-up in a child process and kills it with
//! SIGKILL in the middle, then reopens the engine and finishes.
//! The sample's keys, versions and checks are `pauselog_postgres::sample`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pauselog::{Engine, MapConfig, MapState, PauseReason, PauseRule, ResumeMode, SyncPolicy, TableMap};
use pauselog_postgres::sample::{self, Model, Monitor, WriterPlan, Writers};
use pauselog_postgres::{testing, PgDestination, ThrowawayCluster};
use pauselog_tests::{child_test_name, crash_child_args, run_and_kill, say, Event, WAIT};

/// Keys `0..KEY_COUNT`.
const KEY_COUNT: u64 = 400;
/// Concurrent writers.
const WRITER_COUNT: u64 = 4;
/// A catch-up writer's pause after each record.
const WRITER_PACE: Duration = Duration::from_micros(200);
/// Records queued while the server is down before it is started again.
const QUEUED_DURING_WINDOW_MIN: u64 = 12_000;
/// Consecutive `Unavailable` live writes that pause the map.
const UNAVAILABLE_TO_PAUSE: u32 = 3;
/// The first version the SIGKILL run's child writes (above any the parent wrote).
const CHILD_FIRST_VERSION: u64 = 1_000_000;
/// Catch-up lanes (R22).
const LANES: usize = 8;
/// The sample's tables live in the throwaway cluster's `public` schema.
const SCHEMA: &str = "public";

fn config() -> MapConfig {
    MapConfig {
        rules: vec![PauseRule::DestinationUnavailable { consecutive: UNAVAILABLE_TO_PAUSE }],
        replay_batch_records: 256,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(200),
        lanes: LANES,
        // Writers go on during the catch-up: without pass-through (R23) their
        // records keep the tail ahead of the lanes and the catch-up never ends.
        live_pass_through: true,
        ..MapConfig::default()
    }
}

fn open(dir: &Path, url: &str) -> (Engine, TableMap) {
    let dest = PgDestination::builder(url, "customers")
        .connect_timeout(Duration::from_secs(2))
        .statement_timeout(Duration::from_secs(10))
        .build()
        .expect("destination config");
    let engine = pauselog_tests::engine_with(dir, &pauselog_tests::clock(), SyncPolicy::Always);
    let map = engine.table_map("customers", config(), Arc::new(dest)).expect("map opens");
    (engine, map)
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("client")
}

/// Writers at full speed (live and while paused), or paced (while catching
/// up: a service writing faster than the destination takes records would
/// keep the catch-up from ever ending).
fn writers(map: &TableMap, model: &Model, paced: bool) -> Writers {
    Writers::start(map, model, plan(paced), (sample::no_hook, sample::no_hook))
}

fn plan(paced: bool) -> WriterPlan {
    let pause_between_submits = if paced { WRITER_PACE } else { Duration::ZERO };
    WriterPlan { key_count: KEY_COUNT, writer_count: WRITER_COUNT, pause_between_submits }
}

fn assert_table_equals(url: &str, model: &Model, when: &str) {
    let wrong = model.differences(&mut client(url), "customers").expect("read the table");
    assert!(
        wrong.is_empty(),
        "{when}: {} keys differ from the last write: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// Live sync, then the maintenance window: returns once the map is paused
/// by the health rule and holds at least `QUEUED_DURING_WINDOW_MIN` records,
/// the bad versions among them, and the server is running again.
fn live_then_window(cluster: &ThrowawayCluster, map: &TableMap, model: &mut Model) {
    let live = sample::write_first_versions(map, model, KEY_COUNT, WRITER_COUNT).expect("submit");
    assert_eq!(live, KEY_COUNT, "Running: version 1 is delivered live (R1)");
    assert_table_equals(&cluster.url(), model, "after live sync");
    let writers = writers(map, model, false);
    std::thread::sleep(Duration::from_millis(200));
    cluster.stop().expect("pg_ctl stop");
    let state =
        map.wait_for(|s| matches!(s, MapState::Paused { .. }), WAIT).expect("the health rule pauses the map (R14)");
    assert!(
        matches!(state, MapState::Paused { reason: PauseReason::DestinationUnavailable, .. }),
        "paused by the health rule, not {state:?}"
    );
    for i in (0..KEY_COUNT).filter(|&i| sample::is_bad_key(i)) {
        for version in [sample::BAD_VERSION, sample::BAD_VERSION + 1] {
            assert!(
                sample::submit_until_taken(map, sample::record(i, version)).expect("submit"),
                "Paused: queued (R2)"
            );
            model.ack(i, version);
        }
    }
    while map.stats().queued_records < QUEUED_DURING_WINDOW_MIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    writers.stop_into(model).expect("writers");
    cluster.start_again().expect("pg_ctl start");
}

/// Writers go on while the catch-up ends; then the errors are checked and
/// fixed, and the table must equal the model.
fn finish(url: &str, map: &TableMap, model: &mut Model, monitor: Monitor) {
    let writers = writers(map, model, true);
    map.wait_for(|s| matches!(s, MapState::Running), WAIT).expect("the catch-up ends (R3)");
    std::thread::sleep(Duration::from_millis(100));
    writers.stop_into(model).expect("writers");

    let errors = sample::all_errors(map).expect("errors");
    let wrong = sample::error_differences(&errors, KEY_COUNT);
    assert!(wrong.is_empty(), "catch-up errors (R15): {wrong:?}");
    let progress = sample::fix_errors(map, model, &mut client(url), SCHEMA, KEY_COUNT).expect("fix");
    let foreign_key_count = (0..KEY_COUNT).filter(|&i| sample::breaks_foreign_key(i)).count() as u64;
    assert_eq!(progress.delivered, 2 * foreign_key_count, "the retry applies both versions of each (R16)");
    assert_table_equals(url, model, "at the end");
    let (polls, regressions) = monitor.finish();
    assert!(polls > 10, "the monitor read the table only {polls} times");
    assert!(regressions.is_empty(), "rows went back to older versions (R21): {regressions:?}");
}

fn start(test: &str) -> Option<(ThrowawayCluster, String, Monitor)> {
    let cluster = testing::own_cluster_for(test)?;
    let url = cluster.url();
    sample::create_tables(&mut client(&url), SCHEMA).expect("tables");
    let monitor = Monitor::start(&url, "customers", Duration::from_millis(10));
    Some((cluster, url, monitor))
}

#[test]
fn maintenance_window_pauses_queues_and_catches_up_into_postgres() {
    let Some((cluster, url, monitor)) = start("maintenance_window_pauses_queues_and_catches_up_into_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, map) = open(dir.path(), &url);
    let mut model = Model::default();
    live_then_window(&cluster, &map, &mut model);
    map.resume(ResumeMode::CatchUp).expect("resume (R12)");
    finish(&url, &map, &mut model, monitor);
    drop(map);
    engine.close().expect("close");
}

/// The catch-up (with writers going on) runs in a child process, which the
/// parent kills with SIGKILL in the middle; the parent reopens and finishes.
#[test]
fn maintenance_window_survives_sigkill_during_catch_up_into_postgres() {
    let test = "maintenance_window_survives_sigkill_during_catch_up_into_postgres";
    let Some((cluster, url, monitor)) = start(test) else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("engine");
    let mut model = Model::default();
    {
        let (engine, map) = open(&data, &url);
        live_then_window(&cluster, &map, &mut model);
        assert!(model.acked.values().all(|&v| v < CHILD_FIRST_VERSION), "the child's versions are new");
        drop(map);
        engine.close().expect("close");
    }

    let child = child_test_name(module_path!(), "catch_up_child");
    let events = run_and_kill(&child, &url, &data, |events| {
        events.iter().any(|e| e.tag == "PROGRESS" && e.num(0) > 0 && e.num(1) > 0)
    });
    apply_child_events(&events, &mut model);

    let (engine, map) = open(&data, &url);
    assert!(
        matches!(map.state(), MapState::CatchingUp { .. } | MapState::Running),
        "after the kill the map goes on catching up (R4): {:?}",
        map.state()
    );
    finish(&url, &map, &mut model, monitor);
    drop(map);
    engine.close().expect("close");
}

/// What the child printed: `SUBMIT i v` before a submit, `ACK i v` once it
/// was taken. A submit without its ack may or may not have been taken.
fn apply_child_events(events: &[Event], model: &mut Model) {
    let progress = events.iter().filter(|e| e.tag == "PROGRESS").count();
    let acks = events.iter().filter(|e| e.tag == "ACK").count();
    assert!(progress > 0 && acks > 0, "the child caught up and wrote before the kill ({progress}, {acks})");
    for event in events {
        match event.tag.as_str() {
            "SUBMIT" => {
                model.in_flight.insert(event.num(0), event.num(1));
            }
            "ACK" => model.ack(event.num(0), event.num(1)),
            _ => {}
        }
    }
}

/// The child of the SIGKILL run: resumes the catch-up with writers going on
/// and reports progress until it is killed.
#[test]
fn catch_up_child() {
    let Some((url, dir)) = crash_child_args() else { return };
    let (_engine, map) = open(&dir, &url);
    let mut model = Model::default();
    for i in 0..KEY_COUNT {
        model.acked.insert(i, CHILD_FIRST_VERSION - 1);
    }
    map.resume(ResumeMode::CatchUp).expect("resume");
    let on_submit = |i: u64, version: u64| say("SUBMIT", &[&i, &version]);
    let on_ack = |i: u64, version: u64| say("ACK", &[&i, &version]);
    let _writers = Writers::start(&map, &model, plan(true), (on_submit, on_ack));
    loop {
        if let MapState::CatchingUp { replayed, remaining } = map.state() {
            say("PROGRESS", &[&replayed, &remaining]);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
