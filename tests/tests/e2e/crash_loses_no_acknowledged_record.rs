//! R4, R17, R18: a real crash (SIGKILL of a child process) loses no
//! acknowledged record, and the map comes back in the state it was left in.
//!
//! The parent re-executes this test binary, running only [`crash_child`] with
//! `PAUSELOG_CRASH_CHILD=<scenario>` and `PAUSELOG_CRASH_DIR=<dir>`. The child
//! works on an engine under `SyncPolicy::Always` and prints one `@@ACK seq key
//! payload` line per `Submitted::Queued { seq }` it got back (flushed before
//! it goes on). The parent kills it once it has seen enough, reads what the
//! child printed before it died, reopens the directory and checks every
//! acknowledged record.
//!
//! Each scenario is killed 3 times by default, at a different point each
//! time. Long mode: `PAUSELOG_CRASH_ROUNDS=50 cargo test -p pauselog-tests
//! --test e2e crash_` kills each scenario 50 times.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pauselog::{Engine, KeyOrdering, MapConfig, MapState, PauseReason, PauseRule, Record, ResumeMode, Submitted};
use pauselog_tests::*;

const MAP: &str = "crash";

fn child_name() -> String {
    child_test_name(module_path!(), "crash_child")
}

/// The child side of every scenario; returns at once in a normal test run.
#[test]
fn crash_child() {
    let Some((scenario, dir)) = crash_child_args() else { return };
    match scenario.as_str() {
        "paused_writers" => child_paused_writers(&dir),
        "catching_up" => child_catching_up(&dir),
        "skip_preserve" => child_skip_preserve(&dir),
        "rule_trips" => child_rule_trips(&dir),
        other => panic!("unknown crash scenario {other}"),
    }
    wait_for_the_kill();
}

fn submit_and_ack(map: &pauselog::TableMap, record: Record) -> u64 {
    match map.submit(record.clone()).expect("submit") {
        Submitted::Queued { seq } => {
            say_ack(seq, &record);
            seq
        }
        Submitted::Live => panic!("expected the record to be queued"),
    }
}

/// The child keeps going until it is killed; this bound only stops a child
/// whose parent is gone.
const CHILD_SUBMITS_MAX: u64 = 200_000;

fn child_paused_writers(dir: &Path) {
    let engine = engine(dir, &clock());
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    say("PAUSED", &[]);
    submit_from_threads(&map, 0..4, CHILD_SUBMITS_MAX);
}

/// How long the catching-up child's destination takes per record: the
/// replay must still be running when the kill comes.
const DELIVERY_DELAY: Duration = Duration::from_millis(5);

const CATCH_UP_BACKLOG: u64 = 200;
/// Replay batch of the catching-up child: several rounds of distinct keys.
const CATCH_UP_BATCH_RECORDS: usize = 20;

fn child_catching_up(dir: &Path) {
    let engine = engine(dir, &clock());
    let config = MapConfig { replay_batch_records: CATCH_UP_BATCH_RECORDS, ..MapConfig::default() };
    let map = engine.table_map(MAP, config, Arc::new(SlowPrintingDest(DELIVERY_DELAY))).unwrap();
    // One writer keeps submitting while the replay runs.
    catch_up_under_writers(&map, CATCH_UP_BACKLOG, 1..2, CHILD_SUBMITS_MAX);
}

const RECORDS_PER_SKIP: u64 = 15;

/// BestEffort ordering: with the destination down the catch-up stalls, so
/// only the skip takes records out of the queue. Under Strict ordering every
/// key has a catch-up error after the first preserve, and the catch-up would
/// move the backlog behind them (`BlockedByEarlierFailure`) and could go live
/// before the skip. Found by 20 crash rounds: one child lost that race.
fn skip_preserve_config() -> MapConfig {
    MapConfig { key_ordering: KeyOrdering::BestEffort, ..MapConfig::default() }
}

fn child_skip_preserve(dir: &Path) {
    let engine = engine(dir, &clock());
    let dest = TestDest::new();
    dest.set_unavailable(true); // the replay stalls; nothing is ever delivered
    let map = open_map(&engine, MAP, skip_preserve_config(), &dest);
    let mut n = 0;
    for round in 0.. {
        map.pause().unwrap();
        let mut last = 0;
        for _ in 0..RECORDS_PER_SKIP {
            last = submit_and_ack(&map, crash_record(0, n));
            n += 1;
        }
        if round % 2 == 0 {
            map.resume(ResumeMode::CatchUp).unwrap();
            map.skip_to_live(true).unwrap();
        } else {
            map.resume(ResumeMode::SkipToLivePreserve).unwrap();
        }
        say("PRESERVED_THROUGH", &[&last]);
        if n > CHILD_SUBMITS_MAX {
            break;
        }
    }
}

const TRIP_AFTER: u32 = 3;

fn child_rule_trips(dir: &Path) {
    let engine = engine(dir, &clock());
    let dest = TestDest::new();
    let config = MapConfig {
        rules: vec![PauseRule::DestinationUnavailable { consecutive: TRIP_AFTER }],
        ..MapConfig::default()
    };
    let map = open_map(&engine, MAP, config, &dest);
    let mut n = 0;
    let mut next = move || {
        n += 1;
        crash_record(0, n)
    };
    for _ in 0..CHILD_SUBMITS_MAX {
        dest.set_unavailable(false);
        for _ in 0..10 {
            assert_eq!(map.submit(next()).unwrap(), Submitted::Live);
        }
        dest.set_unavailable(true);
        for _ in 1..TRIP_AFTER {
            assert!(matches!(map.submit(next()), Err(pauselog::Error::Unavailable { .. })));
        }
        let record = next();
        let Submitted::Queued { seq } = map.submit(record.clone()).unwrap() else { panic!("the rule trips") };
        say_ack(seq, &record);
        say("TRIPPED", &[&seq]);
        for _ in 0..20 {
            submit_and_ack(&map, next());
        }
        map.resume(ResumeMode::SkipToLivePreserve).unwrap();
        say("PRESERVED_THROUGH", &[&seq]);
    }
}

fn acks_at_least(count: usize) -> impl Fn(&[Event]) -> bool {
    move |events| events.iter().filter(|e| e.tag == "ACK").count() >= count
}

fn reopen(dir: &Path, dest: &Arc<TestDest>, config: MapConfig) -> (Engine, pauselog::TableMap) {
    let engine = engine(dir, &clock());
    let map = open_map(&engine, MAP, config, dest);
    (engine, map)
}

/// Threshold of acks before the kill, different each round.
fn kill_after(round: usize) -> usize {
    300 + (round * 97) % 250
}

#[test]
fn paused_map_with_concurrent_writers_keeps_every_acknowledged_record() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let events = run_and_kill(&child_name(), "paused_writers", &dir, acks_at_least(kill_after(round)));
        let acked = acked_records(&events);

        let (engine, map) = reopen(&dir, &TestDest::new(), MapConfig::default());
        assert!(
            matches!(map.state(), MapState::Paused { reason: PauseReason::Manual, blocked: None, .. }),
            "round {round}: {:?}",
            map.state()
        );
        let queued = all_queued(&map, None);
        let by_seq: HashMap<u64, (String, String)> = queued.iter().map(|r| (r.seq, key_payload(r))).collect();
        for (seq, record) in &acked {
            assert_eq!(by_seq.get(seq), Some(record), "round {round}: acknowledged seq {seq}");
        }
        // Seqs are handed out in order and a torn tail is cut at its first
        // damage, so what survives is exactly 1..=n (some unacknowledged at most
        // at the end).
        let seqs: Vec<u64> = queued.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "round {round}");
        assert_eq!(map.stats().queued_records, seqs.len() as u64);
        // The map takes new records after its seqs, never reusing one: after
        // a crash, past the block of seqs it had reserved (R21).
        let Submitted::Queued { seq } = map.submit(rec("after", 0)).unwrap() else { panic!("paused") };
        assert!(seq > seqs.len() as u64, "round {round}: seq {seq} reused");
        drop(map);
        engine.close().unwrap();
    }
}

#[test]
fn catching_up_map_finishes_after_a_crash_delivering_every_acknowledged_record_in_order() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let threshold = CATCH_UP_BACKLOG as usize + 100 + round * 37;
        let deliveries = 20 + round * 13;
        // Kill after enough acks and deliveries (some replay batches are
        // committed, one may be in flight), or as soon as the replay has
        // caught up and submits go live (if the disk is slower than the
        // destination).
        let enough = |events: &[Event]| {
            let delivered = events.iter().filter(|e| e.tag == "DELIVERED").count() >= deliveries;
            (acks_at_least(threshold)(events) && delivered) || events.iter().any(|e| e.tag == "LIVE")
        };
        let events = run_and_kill(&child_name(), "catching_up", &dir, enough);
        let acked = acked_records(&events);
        assert!(events.iter().any(|e| e.tag == "RESUMED"), "round {round}: the child resumed");
        let delivered_before: BTreeSet<u64> =
            events.iter().filter(|e| e.tag == "DELIVERED").map(|e| e.num(0)).collect();

        let dest = TestDest::new();
        let (engine, map) = reopen(&dir, &dest, MapConfig::default());
        wait_running(&map);
        let delivered_after = dest.delivered();
        let after_seqs: Vec<u64> = delivered_after.iter().map(|r| r.seq).collect();
        // R18: in seq order per key, and the engine itself delivers nothing twice.
        assert_per_key_order(&delivered_after, &format!("round {round}"));
        assert!(sorted(after_seqs.clone()).windows(2).all(|w| w[0] < w[1]), "round {round}: {after_seqs:?}");
        for record in &delivered_after {
            if let Some(expected) = acked.get(&record.seq) {
                assert_eq!(&key_payload(record), expected, "round {round}: seq {}", record.seq);
            }
        }
        let after: BTreeSet<u64> = after_seqs.iter().copied().collect();
        for seq in acked.keys() {
            assert!(
                delivered_before.contains(seq) || after.contains(seq),
                "round {round}: acknowledged seq {seq} was never delivered"
            );
        }
        // Redelivered: only what the replay had delivered but not committed
        // when it was killed: at most its window (32 batches per lane).
        let redelivered: Vec<u64> = after.intersection(&delivered_before).copied().collect();
        let window = MapConfig::default().lanes * CATCH_UP_BATCH_RECORDS * 32;
        assert!(redelivered.len() <= window, "round {round}: redelivered {redelivered:?}");
        assert_eq!(map.stats().queued_records, 0);
        drop(map);
        engine.close().unwrap();
    }
}

#[test]
fn crash_around_skip_to_live_preserve_keeps_every_record_queued_or_in_the_errors() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let events = run_and_kill(&child_name(), "skip_preserve", &dir, acks_at_least(kill_after(round)));
        let acked = acked_records(&events);
        let preserved_through =
            events.iter().filter(|e| e.tag == "PRESERVED_THROUGH").map(|e| e.num(0)).max().unwrap_or(0);

        let dest = TestDest::new();
        dest.set_unavailable(true); // if it comes back catching up, nothing leaves the queue
        let (engine, map) = reopen(&dir, &dest, skip_preserve_config());
        let queued: HashMap<u64, (String, String)> =
            all_queued(&map, None).iter().map(|r| (r.seq, key_payload(r))).collect();
        let errors = all_errors(&map, None);
        let errored: HashMap<u64, (String, String)> =
            errors.iter().map(|e| (e.record.seq, key_payload(&e.record))).collect();
        assert!(errors.iter().all(|e| e.reason == pauselog::ErrorReason::Preserved), "round {round}");
        assert!(queued.keys().all(|seq| !errored.contains_key(seq)), "round {round}: queued and in errors at once");
        for (seq, record) in &acked {
            let found = errored.get(seq).or(queued.get(seq));
            assert_eq!(found, Some(record), "round {round}: acknowledged seq {seq} was lost");
            if *seq <= preserved_through {
                assert!(errored.contains_key(seq), "round {round}: seq {seq} was preserved before the crash");
            }
        }
        assert_eq!(map.stats().error_records, errors.len() as u64);
        drop(map);
        engine.close().unwrap();
    }
}

#[test]
fn record_that_trips_the_unavailable_rule_survives_a_crash() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let events = run_and_kill(&child_name(), "rule_trips", &dir, acks_at_least(kill_after(round) / 2));
        let acked = acked_records(&events);
        let tripped: Vec<u64> = events.iter().filter(|e| e.tag == "TRIPPED").map(|e| e.num(0)).collect();
        assert!(!tripped.is_empty(), "round {round}: the rule tripped");
        let preserved_through =
            events.iter().filter(|e| e.tag == "PRESERVED_THROUGH").map(|e| e.num(0)).max().unwrap_or(0);

        let dest = TestDest::new();
        let config = MapConfig {
            rules: vec![PauseRule::DestinationUnavailable { consecutive: TRIP_AFTER }],
            ..MapConfig::default()
        };
        let (engine, map) = reopen(&dir, &dest, config);
        let state = map.state();
        assert!(
            matches!(state, MapState::Running | MapState::Paused { reason: PauseReason::DestinationUnavailable, .. }),
            "round {round}: {state:?}"
        );
        let queued: HashMap<u64, (String, String)> =
            all_queued(&map, None).iter().map(|r| (r.seq, key_payload(r))).collect();
        let errored: HashMap<u64, (String, String)> =
            all_errors(&map, None).iter().map(|e| (e.record.seq, key_payload(&e.record))).collect();
        for (seq, record) in &acked {
            let found = errored.get(seq).or(queued.get(seq));
            assert_eq!(found, Some(record), "round {round}: acknowledged seq {seq} was lost");
        }
        let last_trip = *tripped.last().unwrap();
        if queued.contains_key(&last_trip) {
            // Killed while paused by the rule: it still is, with the record queued.
            assert!(matches!(state, MapState::Paused { .. }), "round {round}: {state:?}");
        } else {
            assert!(errored.contains_key(&last_trip), "round {round}: tripping seq {last_trip} lost");
        }
        assert!(tripped.iter().all(|seq| *seq > preserved_through || errored.contains_key(seq)), "round {round}");
        assert!(dest.delivered().is_empty(), "reopening delivers nothing by itself");
        drop(map);
        engine.close().unwrap();
    }
}
