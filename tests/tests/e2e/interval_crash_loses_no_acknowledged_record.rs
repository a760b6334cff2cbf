//! R17 under `SyncPolicy::Interval`: a record acknowledged as `Queued` has
//! been handed to the operating system before `submit` returns, so a crash
//! of the process (SIGKILL) loses none of them; only a power loss may lose
//! up to one interval.
//!
//! The same shape as `crash_loses_no_acknowledged_record.rs` (which covers
//! `Always`): the parent re-executes this test binary, running only
//! [`interval_crash_child`] with `PAUSELOG_CRASH_CHILD=<scenario>`; the child
//! prints one `@@ACK seq key payload` line per `Queued { seq }` and is killed
//! with SIGKILL once the parent has seen enough. The interval is one hour,
//! so no interval sync ever runs in the child: what survives the kill is
//! only what each submit wrote before it returned.
//!
//! Each scenario is killed 3 times by default. Long mode:
//! `PAUSELOG_CRASH_ROUNDS=1000 cargo test -p pauselog-tests --test e2e interval_crash`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use pauselog::{Engine, MapConfig, SyncPolicy};
use pauselog_tests::*;

const MAP: &str = "interval";
/// No interval sync runs before the kill.
const INTERVAL: Duration = Duration::from_secs(3600);
/// Concurrent submitting threads of the paused child.
const WRITER_COUNT: u64 = 8;
/// The child keeps going until it is killed; this bound only stops a child
/// whose parent is gone.
const CHILD_SUBMITS_MAX: u64 = 2_000_000;

fn child_name() -> String {
    child_test_name(module_path!(), "interval_crash_child")
}

/// The child side of every scenario; returns at once in a normal test run.
#[test]
fn interval_crash_child() {
    let Some((scenario, dir)) = crash_child_args() else { return };
    let engine = engine_with(&dir, &clock(), SyncPolicy::Interval(INTERVAL));
    match scenario.as_str() {
        "paused_writers" => child_paused_writers(&engine),
        "catching_up" => child_catching_up(&engine),
        other => panic!("unknown crash scenario {other}"),
    }
    wait_for_the_kill();
}

fn child_paused_writers(engine: &Engine) {
    let map = open_map(engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().expect("pause");
    submit_from_threads(&map, 0..WRITER_COUNT, CHILD_SUBMITS_MAX);
}

/// How long the catching-up child's destination takes per record: the
/// replay must still be running when the kill comes.
const DELIVERY_DELAY: Duration = Duration::from_millis(2);
const CATCH_UP_BACKLOG: u64 = 1_000;
/// Replay batch of the catching-up child: several rounds of distinct keys.
const CATCH_UP_BATCH_RECORDS: usize = 20;

/// A backlog queued while paused, then a catch-up with two writers still
/// submitting (their records go to the tail while the replay runs).
fn child_catching_up(engine: &Engine) {
    let config = MapConfig { replay_batch_records: CATCH_UP_BATCH_RECORDS, ..MapConfig::default() };
    let map = engine.table_map(MAP, config, Arc::new(SlowPrintingDest(DELIVERY_DELAY))).expect("map opens");
    // Two writers keep submitting while the replay runs.
    catch_up_under_writers(&map, CATCH_UP_BACKLOG, 1..3, CHILD_SUBMITS_MAX);
}

/// Acks before the kill, different each round: several write buffers' worth
/// (a record here is under 100 bytes framed, the buffer 1 MiB).
fn kill_after(round: usize) -> usize {
    40_000 + (round * 7_919) % 30_000
}

#[test]
fn interval_paused_writers_keep_every_acknowledged_record_after_sigkill() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let threshold = kill_after(round);
        let acks = Tally::of("ACK");
        let events = run_and_kill(&child_name(), "paused_writers", &dir, |events| acks.count(events) >= threshold);
        let acked = acked_records(&events);

        let engine = engine(&dir, &clock());
        let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
        assert!(is_paused(&map.state()), "round {round}: {:?}", map.state());
        let queued = all_queued(&map, None);
        let by_seq: HashMap<u64, (String, String)> = queued.iter().map(|r| (r.seq, key_payload(r))).collect();
        let lost: Vec<u64> = acked.keys().copied().filter(|seq| !by_seq.contains_key(seq)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged records lost, seqs {}..={}",
            lost.len(),
            acked.len(),
            lost[0],
            lost[lost.len() - 1]
        );
        for (seq, record) in &acked {
            assert_eq!(by_seq.get(seq), Some(record), "round {round}: acknowledged seq {seq}");
        }
        // A process crash leaves a prefix of what was written: 1..=n.
        let seqs: Vec<u64> = queued.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "round {round}");
        drop(map);
        engine.close().expect("close");
    }
}

#[test]
fn interval_catching_up_map_delivers_every_acknowledged_record_after_sigkill() {
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        // Fewer than the paused writers: all of these records are replayed
        // on reopen, and Strict ordering over 14 keys replays them in small
        // batches.
        let threshold = CATCH_UP_BACKLOG as usize + 2_000 + (round * 7_919) % 3_000;
        // Bounded, so that a long run's later rounds do not wait for
        // thousands of slow deliveries while the writers run on.
        let deliveries = 20 + (round * 13) % 200;
        // Kill after enough acks and deliveries (some replay batches are
        // committed, one may be in flight), or as soon as submits go live.
        let (acks, delivered, live) = (Tally::of("ACK"), Tally::of("DELIVERED"), Tally::of("LIVE"));
        let enough = |events: &[Event]| {
            let (acks, delivered, live) = (acks.count(events), delivered.count(events), live.count(events));
            (acks >= threshold && delivered >= deliveries) || live > 0
        };
        let events = run_and_kill(&child_name(), "catching_up", &dir, enough);
        let acked = acked_records(&events);
        assert!(events.iter().any(|e| e.tag == "RESUMED"), "round {round}: the child resumed");
        let delivered_before: BTreeSet<u64> =
            events.iter().filter(|e| e.tag == "DELIVERED").map(|e| e.num(0)).collect();

        let dest = TestDest::new();
        let engine = engine(&dir, &clock());
        let map = open_map(&engine, MAP, MapConfig::default(), &dest);
        wait_running(&map);
        let delivered_after: BTreeMap<u64, (String, String)> =
            dest.delivered().iter().map(|r| (r.seq, key_payload(r))).collect();
        let lost: Vec<u64> = acked
            .keys()
            .copied()
            .filter(|seq| !delivered_before.contains(seq) && !delivered_after.contains_key(seq))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged records never delivered",
            lost.len(),
            acked.len()
        );
        for (seq, record) in &delivered_after {
            if let Some(expected) = acked.get(seq) {
                assert_eq!(record, expected, "round {round}: seq {seq}");
            }
        }
        assert_eq!(map.stats().queued_records, 0, "round {round}");
        drop(map);
        engine.close().expect("close");
    }
}
