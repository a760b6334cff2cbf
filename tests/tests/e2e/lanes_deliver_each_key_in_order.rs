//! R22: the catch-up runs in key lanes, one call in flight per lane, so
//! several calls are in flight per map (once the calls are seen to wait); each key is in one lane and is
//! delivered in seq order, never in two calls at once; the committed head
//! is the finished prefix. A rejection in one lane does not stop the
//! others; `Unavailable` backs off the map and redelivers nothing; a pause
//! or skip while one lane is held splits the backlog exactly, though the
//! other lanes ran ahead of the head.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pauselog::{DeliveryError, Destination, ErrorReason, KeyOrdering, MapConfig, MapState, QueuedRecord, ResumeMode};
use pauselog_tests::*;

/// A destination that watches its calls: how many overlap, and that no key
/// is in two calls at once. Each call takes a moment, so lanes overlap.
#[derive(Debug, Default)]
struct Watch {
    calls_now: AtomicUsize,
    calls_max: AtomicUsize,
    keys_in_flight: Mutex<HashSet<String>>,
    violations: Mutex<Vec<String>>,
    delivered: Mutex<Vec<QueuedRecord>>,
    /// The next call holding this key answers Unavailable (once).
    unavailable_once_for: Mutex<Option<String>>,
    /// Calls answer at once instead of waiting 300 µs like a round trip.
    answers_at_once: AtomicBool,
}

impl Destination for Watch {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.deliver_batch(std::slice::from_ref(record)).remove(0)
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        let now = self.calls_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.calls_max.fetch_max(now, Ordering::SeqCst);
        // A BestEffort batch may hold a key twice; two calls may not.
        let batch_keys: HashSet<&str> = batch.iter().map(|r| r.key.as_str()).collect();
        {
            let mut keys = self.keys_in_flight.lock().unwrap();
            for key in &batch_keys {
                if !keys.insert((*key).to_owned()) {
                    self.violations.lock().unwrap().push(format!("key {key} in two calls at once"));
                }
            }
        }
        if !self.answers_at_once.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_micros(300));
        }
        let unavailable = {
            let mut once = self.unavailable_once_for.lock().unwrap();
            let hit = once.as_ref().is_some_and(|key| batch.iter().any(|r| &r.key == key));
            if hit {
                once.take();
            }
            hit
        };
        let mut keys = self.keys_in_flight.lock().unwrap();
        for key in &batch_keys {
            keys.remove(*key);
        }
        drop(keys);
        self.calls_now.fetch_sub(1, Ordering::SeqCst);
        if unavailable {
            return vec![Err(DeliveryError::Unavailable("throttled".into())); batch.len()];
        }
        self.delivered.lock().unwrap().extend_from_slice(batch);
        vec![Ok(()); batch.len()]
    }
}

fn catch_up_through(lanes: usize, ordering: KeyOrdering, records: u64, keys: u64) -> std::sync::Arc<Watch> {
    catch_up_into(Watch::default(), lanes, ordering, records, keys)
}

fn catch_up_into(dest: Watch, lanes: usize, ordering: KeyOrdering, records: u64, keys: u64) -> std::sync::Arc<Watch> {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), &clock(), pauselog::SyncPolicy::Never);
    let dest = std::sync::Arc::new(dest);
    let config = MapConfig { lanes, key_ordering: ordering, replay_batch_records: 64, ..MapConfig::default() };
    let map = engine.table_map("m", config, dest.clone()).unwrap();
    map.pause().unwrap();
    for n in 0..records {
        map.submit(rec(&format!("K{}", n % keys), n)).unwrap();
    }
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    dest
}

#[test]
fn every_record_once_per_key_in_seq_order_whatever_the_lanes() {
    for lanes in [1, 2, 8] {
        for ordering in [KeyOrdering::Strict, KeyOrdering::BestEffort] {
            let context = format!("{lanes} lanes, {ordering:?}");
            let dest = catch_up_through(lanes, ordering, 3000, 200);
            let delivered = dest.delivered.lock().unwrap().clone();
            assert_eq!(
                sorted(delivered.iter().map(|r| r.seq).collect()),
                (1..=3000).collect::<Vec<u64>>(),
                "{context}"
            );
            assert_per_key_order(&delivered, &context);
            assert_eq!(*dest.violations.lock().unwrap(), Vec::<String>::new(), "{context}");
            let calls_max = dest.calls_max.load(Ordering::SeqCst);
            assert!(calls_max <= lanes, "{context}: {calls_max} calls at once");
            if lanes > 1 {
                assert!(calls_max >= 2, "{context}: the lanes never overlapped");
            }
        }
    }
}

/// The replay delivers on its own thread until its calls are seen to wait
/// (a round trip, a server) longer than it works between them; then it
/// opens the configured lanes. Against a destination that answers at once
/// it stays in one lane, where more would only add threads and hand-overs.
#[test]
fn lanes_open_for_a_destination_that_waits_and_stay_shut_for_one_that_does_not() {
    let waits = catch_up_through(8, KeyOrdering::Strict, 3000, 200);
    assert!(waits.calls_max.load(Ordering::SeqCst) >= 2, "calls that wait: the lanes opened");
    let at_once = Watch { answers_at_once: AtomicBool::new(true), ..Watch::default() };
    let at_once = catch_up_into(at_once, 8, KeyOrdering::Strict, 3000, 200);
    assert_eq!(at_once.delivered.lock().unwrap().len(), 3000);
    assert_eq!(at_once.calls_max.load(Ordering::SeqCst), 1, "calls that answer at once: one lane");
}

#[test]
fn a_rejection_in_one_lane_does_not_stop_the_others() {
    let fixture = Fixture::new(MapConfig { replay_batch_records: 16, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(800, |n| format!("K{}", n % 40));
    dest.reject("K7");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    let errors = all_errors(map, None);
    assert_eq!(errors.len(), 20, "every K7 record");
    assert_eq!(errors[0].reason, ErrorReason::Rejected);
    assert!(errors[1..].iter().all(|e| e.reason == ErrorReason::BlockedByEarlierFailure));
    assert_eq!(dest.delivered().len(), 780, "the other 39 keys all went through");
    assert_per_key_order(&dest.delivered(), "around a rejection");
}

#[test]
fn one_unavailable_call_backs_off_the_map_and_redelivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let dest = std::sync::Arc::new(Watch::default());
    *dest.unavailable_once_for.lock().unwrap() = Some("K3".into());
    let config = MapConfig { replay_batch_records: 16, ..MapConfig::default() };
    let map = engine.table_map("m", config, dest.clone()).unwrap();
    map.pause().unwrap();
    for n in 0..600 {
        map.submit(rec(&format!("K{}", n % 30), n)).unwrap();
    }
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    let delivered = dest.delivered.lock().unwrap().clone();
    assert_eq!(sorted(delivered.iter().map(|r| r.seq).collect()), (1..=600).collect::<Vec<u64>>(), "each once");
    assert_per_key_order(&delivered, "after one Unavailable call");
    assert!(dest.unavailable_once_for.lock().unwrap().is_none(), "the Unavailable answer happened");
    assert_eq!(map.stats().error_records, 0, "Unavailable moves nothing to the errors");
}

/// One key's lane is held inside the destination while the other lanes run
/// ahead: the committed head stays at that lane's first record, and the
/// records delivered above it must neither stay queued nor become errors.
#[test]
fn a_skip_or_pause_while_one_lane_is_held_splits_the_backlog_exactly() {
    for action in ["preserve", "discard", "pause"] {
        let fixture = Fixture::new(MapConfig { replay_batch_records: 8, ..MapConfig::default() });
        let (map, dest) = (&fixture.map, &fixture.dest);
        let total = 1200u64;
        fixture.queue(total, |n| format!("K{}", n % 48));
        dest.reject("K5");
        // Calls that wait like round trips: the lanes open after the first
        // few calls, which the replay makes on its own thread; K0's lane is
        // held from then on.
        dest.round_trip(Duration::from_micros(200));
        dest.close_gate_for(|record| record.key == "K0" && record.seq > 200);
        map.resume(ResumeMode::CatchUp).unwrap();
        while dest.delivered().len() < 600 {
            std::thread::yield_now(); // the other lanes run ahead of K0's
        }
        let released = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let stopper = scope.spawn(|| match action {
                "preserve" => map.skip_to_live(true),
                "discard" => map.skip_to_live(false),
                _ => map.pause(),
            });
            // The stop waits for the held call to answer.
            while !stopper.is_finished() && !released.load(Ordering::SeqCst) {
                dest.open_gate();
                released.store(true, Ordering::SeqCst);
            }
            stopper.join().unwrap().unwrap();
        });
        let delivered: BTreeSet<u64> = dest.delivered_seqs().into_iter().collect();
        let errors = all_errors(map, None);
        let queued: Vec<u64> = all_queued(map, None).iter().map(|r| r.seq).collect();
        let error_seqs: BTreeSet<u64> = errors.iter().map(|e| e.record.seq).collect();
        let lowest_open = error_seqs.iter().chain(&queued).min().copied().unwrap_or(u64::MAX);
        assert!(delivered.iter().any(|&seq| seq > lowest_open), "{action}: no lane ran ahead of the head");
        assert!(delivered.is_disjoint(&error_seqs), "{action}: a delivered record became an error");
        assert!(queued.iter().all(|seq| !delivered.contains(seq)), "{action}: a delivered record stayed queued");
        // K5's first record was rejected, above the head or below it: it
        // keeps its reason; its records never attempted are Preserved.
        let k5: Vec<ErrorReason> = errors.iter().filter(|e| e.record.key == "K5").map(|e| e.reason).collect();
        assert_eq!(k5.first(), Some(&ErrorReason::Rejected), "{action}: {k5:?}");
        let accounted = delivered.len() + error_seqs.len() + queued.len();
        match action {
            "preserve" => assert_eq!(accounted as u64, total, "{action}: delivered + errors = all"),
            "discard" => {
                assert!(queued.is_empty());
                assert!(errors.iter().all(|e| e.record.key == "K5"), "{action}: only rejections are kept");
            }
            _ => {
                assert_eq!(accounted as u64, total, "pause: delivered + errors + queued = all");
                assert!(queued.windows(2).all(|w| w[0] < w[1]), "pause: the rest stays queued in order");
                map.resume(ResumeMode::CatchUp).unwrap();
                wait_running(map);
                let again = sorted(dest.delivered_seqs());
                assert!(again.windows(2).all(|w| w[0] < w[1]), "pause: nothing delivered twice after the resume");
                assert_per_key_order(&dest.delivered(), "pause and resume");
            }
        }
        let stats = map.stats();
        assert_eq!(stats.error_records, all_errors(map, None).len() as u64, "{action}");
        if action != "pause" {
            assert_eq!((stats.state, stats.queued_records, stats.queued_bytes), (MapState::Running, 0, 0), "{action}");
        }
    }
}
