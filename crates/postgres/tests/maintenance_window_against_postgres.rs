//! The whole story against a real PostgreSQL server (R1, R14, R15, R16,
//! R16b, R18, R21, R22): live sync into a `customers` table with a CHECK
//! constraint and a foreign key; the server is stopped for maintenance
//! (`pg_ctl stop`) and the health rule pauses the map, queueing the record
//! that tripped it, while writers keep submitting; the server is started
//! again and the map catches up in lanes while writers go on; the rows that
//! break a constraint land in the catch-up errors with the server's message;
//! the CHECK ones are fixed at the source (a newer record), the foreign-key
//! ones at the destination and retried. At the end the table equals the last
//! acknowledged write per key, and a reader polling the table throughout
//! never saw a row go back to an older version.
//!
//! The second run does the catch-up in a child process and kills it with
//! SIGKILL in the middle, then reopens the engine and finishes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pauselog::{
    Engine, Error, ErrorReason, MapConfig, MapState, Op, PauseReason, PauseRule, Record, ResumeMode, Selection,
    Submitted, SyncPolicy, TableMap,
};
use pauselog_postgres::{testing, PgDestination, ThrowawayCluster};
use pauselog_tests::{all_errors, child_test_name, crash_child_args, run_and_kill, say, Event, WAIT};

/// Integration keys `USMF|CUST-0000` ..
const KEY_COUNT: u64 = 400;
/// Concurrent writers; writer `w` owns the good keys `i % WRITER_COUNT == w`.
const WRITER_COUNT: u64 = 4;
/// Records queued while the server is down before it is started again.
const QUEUED_DURING_WINDOW_MIN: u64 = 12_000;
/// Consecutive `Unavailable` live writes that pause the map.
const UNAVAILABLE_TO_PAUSE: u32 = 3;
/// The first version the SIGKILL run's child writes (above any the parent wrote).
const CHILD_FIRST_VERSION: u64 = 1_000_000;
/// Catch-up lanes (R22).
const LANES: usize = 8;
/// The table.
const CREATE_TABLES: &str = "
CREATE TABLE regions (code text PRIMARY KEY);
INSERT INTO regions VALUES ('EMEA');
CREATE TABLE customers (
    key text PRIMARY KEY,
    seq bigint NOT NULL,
    name text NOT NULL,
    credit_limit bigint NOT NULL CHECK (credit_limit >= 0),
    region text NOT NULL REFERENCES regions (code)
);";

fn key(i: u64) -> String {
    format!("USMF|CUST-{i:04}")
}

/// Keys whose record written during the window breaks the CHECK constraint.
fn breaks_check(i: u64) -> bool {
    i % 40 == 7
}

/// Keys whose record written during the window names a region the
/// destination does not have yet (a foreign-key violation).
fn breaks_foreign_key(i: u64) -> bool {
    i % 40 == 23
}

fn is_bad_key(i: u64) -> bool {
    breaks_check(i) || breaks_foreign_key(i)
}

/// Every fifth version of a good key deletes it; the next one creates it again.
fn op_of(i: u64, version: u64) -> Op {
    if !is_bad_key(i) && version % 5 == 0 {
        Op::Delete
    } else {
        Op::Update
    }
}

/// The row version `version` of key `i` writes: (name, credit_limit, region).
fn row_of(i: u64, version: u64) -> (String, i64, String) {
    let bad_version = version == 2;
    let credit = if bad_version && breaks_check(i) { -100 } else { 1000 + version as i64 };
    let region = if bad_version && breaks_foreign_key(i) { "APAC" } else { "EMEA" };
    (format!("CUST-{i:04} v{version}"), credit, region.to_owned())
}

fn record(i: u64, version: u64) -> Record {
    let (name, credit_limit, region) = row_of(i, version);
    let payload = format!(r#"{{"name": "{name}", "credit_limit": {credit_limit}, "region": "{region}"}}"#);
    Record::new(key(i), op_of(i, version), payload.into_bytes())
}

fn version_of(name: &str) -> u64 {
    name.rsplit_once(" v").and_then(|(_, v)| v.parse().ok()).expect("a name ends in its version")
}

fn config() -> MapConfig {
    MapConfig {
        rules: vec![PauseRule::DestinationUnavailable { consecutive: UNAVAILABLE_TO_PAUSE }],
        replay_batch_records: 256,
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(200),
        lanes: LANES,
        ..MapConfig::default()
    }
}

fn destination(url: &str) -> Arc<PgDestination> {
    let dest = PgDestination::builder(url, "customers")
        .connect_timeout(Duration::from_secs(2))
        .statement_timeout(Duration::from_secs(10))
        .build()
        .expect("destination config");
    Arc::new(dest)
}

fn open(dir: &Path, url: &str) -> (Engine, TableMap) {
    let engine = pauselog_tests::engine_with(dir, &pauselog_tests::clock(), SyncPolicy::Always);
    let map = engine.table_map("customers", config(), destination(url)).expect("map opens");
    (engine, map)
}

/// Submits until the engine takes the record: a live write the destination
/// answered `Unavailable` is submitted again, as a caller would.
/// Returns whether it was queued.
fn submit_until_taken(map: &TableMap, record: Record) -> bool {
    loop {
        match map.submit(record.clone()) {
            Ok(Submitted::Live) => return false,
            Ok(Submitted::Queued { .. }) => return true,
            Err(Error::Unavailable { .. }) => std::thread::sleep(Duration::from_millis(2)),
            Err(error) => panic!("submit of {} failed: {error}", record.key),
        }
    }
}

/// The last version acknowledged per key, and per key the version a killed
/// process was submitting when it died (it may or may not have been taken).
#[derive(Debug, Default, Clone)]
struct Model {
    acked: BTreeMap<u64, u64>,
    in_flight: HashMap<u64, u64>,
}

impl Model {
    fn next_version(&self, i: u64) -> u64 {
        let acked = self.acked.get(&i).copied().unwrap_or(0);
        acked.max(self.in_flight.get(&i).copied().unwrap_or(0)) + 1
    }

    fn ack(&mut self, i: u64, version: u64) {
        self.acked.insert(i, version);
        self.in_flight.remove(&i);
    }
}

/// Writers over the good keys, until stopped.
struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<(u64, u64)>>>,
}

impl Writers {
    /// `on_submit(i, version)` runs before each submit, `on_ack` after it is taken.
    fn start(map: &TableMap, model: &Model, on_submit: fn(u64, u64), on_ack: fn(u64, u64)) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..WRITER_COUNT)
            .map(|w| {
                let (map, stop, model) = (map.clone(), stop.clone(), model.clone());
                std::thread::spawn(move || {
                    let keys: Vec<u64> = (0..KEY_COUNT).filter(|i| i % WRITER_COUNT == w && !is_bad_key(*i)).collect();
                    let mut versions: Vec<u64> = keys.iter().map(|&i| model.next_version(i)).collect();
                    let mut acks = Vec::new();
                    // Every key gets at least one new version, then on until stopped.
                    let mut round = 0;
                    while round == 0 || !stop.load(Ordering::Relaxed) {
                        for (slot, &i) in keys.iter().enumerate() {
                            on_submit(i, versions[slot]);
                            submit_until_taken(&map, record(i, versions[slot]));
                            on_ack(i, versions[slot]);
                            acks.push((i, versions[slot]));
                            versions[slot] += 1;
                        }
                        round += 1;
                    }
                    acks
                })
            })
            .collect();
        Writers { stop, threads }
    }

    fn stop_into(self, model: &mut Model) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            for (i, version) in thread.join().expect("writer thread") {
                model.ack(i, version);
            }
        }
    }
}

fn quiet(_: u64, _: u64) {}

/// A reader that polls the table and notes any row that went back to an
/// older version than one it saw before.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, Vec<String>)>,
}

impl Monitor {
    fn start(url: &str) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag) = (url.to_owned(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut seen: HashMap<String, u64> = HashMap::new();
            let (mut polls, mut regressions) = (0, Vec::new());
            let mut client: Option<postgres::Client> = None;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    client = postgres::Client::connect(&url, postgres::NoTls).ok();
                }
                let Some(connected) = client.as_mut() else { continue };
                let Ok(rows) = connected.query("SELECT key, name FROM customers", &[]) else { continue };
                polls += 1;
                for row in rows {
                    let (key, version): (String, u64) = (row.get(0), version_of(row.get(1)));
                    let highest = seen.entry(key.clone()).or_default();
                    if version < *highest {
                        regressions.push(format!("{key}: v{version} after v{highest}"));
                    }
                    *highest = (*highest).max(version);
                }
            }
            (polls, regressions)
        });
        Monitor { stop, thread }
    }

    fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (polls, regressions) = self.thread.join().expect("monitor thread");
        assert!(polls > 10, "the monitor polled the table only {polls} times");
        assert!(regressions.is_empty(), "rows went back to older versions (R21): {regressions:?}");
    }
}

/// Live sync, then the maintenance window: returns once the map is paused
/// by the health rule and holds at least `QUEUED_DURING_WINDOW_MIN` records,
/// the bad versions among them, and the server is running again.
fn live_then_window(cluster: &ThrowawayCluster, map: &TableMap, model: &mut Model) {
    for i in 0..KEY_COUNT {
        assert!(!submit_until_taken(map, record(i, 1)), "Running: version 1 is delivered live (R1)");
        model.ack(i, 1);
    }
    assert_table_equals(&cluster.url(), model, "after live sync");
    let writers = Writers::start(map, model, quiet, quiet);
    std::thread::sleep(Duration::from_millis(200));
    cluster.stop().expect("pg_ctl stop");
    let state = map
        .wait_for(|s| matches!(s, MapState::Paused { .. }), WAIT)
        .expect("the health rule pauses the map (R14)");
    assert!(
        matches!(state, MapState::Paused { reason: PauseReason::DestinationUnavailable, .. }),
        "paused by the health rule, not {state:?}"
    );
    for i in (0..KEY_COUNT).filter(|&i| is_bad_key(i)) {
        for version in [2, 3] {
            assert!(submit_until_taken(map, record(i, version)), "Paused: queued (R2)");
            model.ack(i, version);
        }
    }
    while map.stats().queued_records < QUEUED_DURING_WINDOW_MIN {
        std::thread::sleep(Duration::from_millis(20));
    }
    writers.stop_into(model);
    cluster.start_again().expect("pg_ctl start");
}

/// Catch-up errors hold exactly the bad keys: version 2 `Rejected` with the
/// server's message, version 3 `BlockedByEarlierFailure` (R15, Strict).
/// Then the CHECK keys are fixed at the source (version 4, live), the
/// foreign-key keys at the destination and retried (R16).
fn check_and_fix_errors(url: &str, map: &TableMap, model: &mut Model) {
    let errors = all_errors(map, None);
    let by_key: BTreeMap<&str, Vec<&pauselog::CatchupError>> =
        errors.iter().fold(BTreeMap::new(), |mut by_key, error| {
            by_key.entry(error.record.key.as_str()).or_default().push(error);
            by_key
        });
    let bad_keys: Vec<u64> = (0..KEY_COUNT).filter(|&i| is_bad_key(i)).collect();
    assert_eq!(by_key.len(), bad_keys.len(), "only the bad keys have catch-up errors: {:?}", by_key.keys());
    for &i in &bad_keys {
        let entries = &by_key[key(i).as_str()];
        assert_eq!(entries.len(), 2, "{}: the bad version and the one after it", key(i));
        let (rejected, blocked) = (entries[0], entries[1]);
        assert_eq!((rejected.reason, blocked.reason), (ErrorReason::Rejected, ErrorReason::BlockedByEarlierFailure));
        let message = rejected.last_error.as_deref().unwrap_or_default();
        let expected = if breaks_check(i) {
            ["violates check constraint \"customers_credit_limit_check\"", "SQLSTATE 23514"]
        } else {
            ["violates foreign key constraint \"customers_region_fkey\"", "SQLSTATE 23503"]
        };
        for part in expected {
            assert!(message.contains(part), "{}: the server's message names the constraint: {message}", key(i));
        }
    }
    for i in bad_keys.iter().copied().filter(|&i| breaks_check(i)) {
        assert!(!submit_until_taken(map, record(i, 4)), "Running: the fix is delivered live");
        model.ack(i, 4);
    }
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("client");
    client.batch_execute("INSERT INTO regions VALUES ('APAC')").expect("the missing region");
    let job = map.retry_errors(Selection::All).expect("retry");
    let progress = job.wait(WAIT).expect("the retry finishes");
    let fk_keys = bad_keys.iter().filter(|&&i| breaks_foreign_key(i)).count() as u64;
    assert_eq!(progress.delivered, 2 * fk_keys, "both versions of every foreign-key key are applied, in order");
    let left = all_errors(map, None);
    assert!(
        left.iter().all(|e| e.reason == ErrorReason::Superseded && breaks_check(key_index(&e.record.key))),
        "only the CHECK keys' old versions are left, superseded by the fix (R16b): {left:?}"
    );
    map.discard_errors(Selection::All).expect("discard the superseded versions");
}

fn key_index(key: &str) -> u64 {
    key.trim_start_matches("USMF|CUST-").parse().expect("a demo key")
}

/// The table holds exactly the last acknowledged version of every key (none
/// for a key whose last version deleted it); a key a killed process was
/// writing may instead hold that newer version.
fn assert_table_equals(url: &str, model: &Model, when: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("client");
    let rows = client.query("SELECT key, name, credit_limit, region, seq FROM customers", &[]).expect("read table");
    let mut table: HashMap<String, (String, i64, String)> = HashMap::new();
    for row in rows {
        let seq: i64 = row.get(4);
        assert!(seq > 0, "every delivery carries a seq (R21)");
        table.insert(row.get(0), (row.get(1), row.get(2), row.get(3)));
    }
    let mut wrong = Vec::new();
    for (&i, &acked) in &model.acked {
        let acceptable: Vec<u64> = std::iter::once(acked).chain(model.in_flight.get(&i).copied()).collect();
        let got = table.remove(&key(i));
        let fits = |version: u64| match op_of(i, version) {
            Op::Delete => got.is_none(),
            _ => got.as_ref() == Some(&row_of(i, version)),
        };
        if !acceptable.iter().any(|&v| fits(v)) {
            wrong.push(format!("{}: {got:?}, expected version {acceptable:?}", key(i)));
        }
    }
    wrong.extend(table.keys().map(|k| format!("{k}: a row no write made")));
    assert!(wrong.is_empty(), "{when}: {} keys differ from the last write: {:?}", wrong.len(), &wrong[..wrong.len().min(10)]);
}

#[test]
fn maintenance_window_pauses_queues_and_catches_up_into_postgres() {
    let Some(cluster) = testing::own_cluster_for("maintenance_window_pauses_queues_and_catches_up_into_postgres")
    else {
        return;
    };
    let url = cluster.url();
    postgres::Client::connect(&url, postgres::NoTls).and_then(|mut c| c.batch_execute(CREATE_TABLES)).expect("tables");
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, map) = open(dir.path(), &url);
    let monitor = Monitor::start(&url);
    let mut model = Model::default();
    live_then_window(&cluster, &map, &mut model);

    map.resume(ResumeMode::CatchUp).expect("resume (R12)");
    let writers = Writers::start(&map, &model, quiet, quiet);
    map.wait_for(|s| matches!(s, MapState::Running), WAIT).expect("the catch-up ends (R3)");
    std::thread::sleep(Duration::from_millis(100));
    writers.stop_into(&mut model);

    check_and_fix_errors(&url, &map, &mut model);
    assert_table_equals(&url, &model, "at the end");
    monitor.finish();
    drop(map);
    engine.close().expect("close");
}

/// The catch-up (with writers going on) runs in a child process, which the
/// parent kills with SIGKILL in the middle; the parent reopens and finishes.
#[test]
fn maintenance_window_survives_sigkill_during_catch_up_into_postgres() {
    let test = "maintenance_window_survives_sigkill_during_catch_up_into_postgres";
    let Some(cluster) = testing::own_cluster_for(test) else { return };
    let url = cluster.url();
    postgres::Client::connect(&url, postgres::NoTls).and_then(|mut c| c.batch_execute(CREATE_TABLES)).expect("tables");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("engine");
    let monitor = Monitor::start(&url);
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
    let writers = Writers::start(&map, &model, quiet, quiet);
    map.wait_for(|s| matches!(s, MapState::Running), WAIT).expect("the catch-up ends (R3)");
    std::thread::sleep(Duration::from_millis(100));
    writers.stop_into(&mut model);

    check_and_fix_errors(&url, &map, &mut model);
    assert_table_equals(&url, &model, "after the kill and the rest of the catch-up");
    monitor.finish();
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
    // The writers go on from a version no earlier write used.
    let mut model = Model::default();
    for i in 0..KEY_COUNT {
        model.acked.insert(i, CHILD_FIRST_VERSION - 1);
    }
    map.resume(ResumeMode::CatchUp).expect("resume");
    let on_submit = |i: u64, version: u64| say("SUBMIT", &[&i, &version]);
    let on_ack = |i: u64, version: u64| say("ACK", &[&i, &version]);
    let _writers = Writers::start(&map, &model, on_submit, on_ack);
    loop {
        if let MapState::CatchingUp { replayed, remaining } = map.state() {
            say("PROGRESS", &[&replayed, &remaining]);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
