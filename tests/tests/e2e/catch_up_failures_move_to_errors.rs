//! R15: a record the destination rejects during catch-up moves to the
//! catch-up errors and the replay goes on; under Strict ordering the later
//! records of its key follow it (`BlockedByEarlierFailure`); an
//! `Unavailable` answer stalls the replay with backoff and moves nothing.

use pauselog::{ErrorReason, KeyOrdering, MapConfig, Query, ResumeMode};
use pauselog_tests::*;

fn queue(map: &pauselog::TableMap) {
    map.pause().unwrap();
    for n in 1..=12 {
        map.submit(rec(["A", "B", "C"][(n % 3) as usize], n)).unwrap();
    }
}

#[test]
fn strict_ordering_holds_back_the_rest_of_a_rejected_key() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    queue(map);
    dest.reject("B"); // keys: n%3==1 -> B (seqs 1,4,7,10)
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    let delivered = dest.delivered_seqs();
    assert_eq!(sorted(delivered), [2, 3, 5, 6, 8, 9, 11, 12], "the replay went on past the rejection");
    assert_per_key_order(&dest.delivered(), "past a rejection");
    let errors = map.catchup_errors(&Query::default()).unwrap();
    let listed: Vec<(u64, ErrorReason)> = errors.items.iter().map(|e| (e.record.seq, e.reason)).collect();
    assert_eq!(
        listed,
        [
            (1, ErrorReason::Rejected),
            (4, ErrorReason::BlockedByEarlierFailure),
            (7, ErrorReason::BlockedByEarlierFailure),
            (10, ErrorReason::BlockedByEarlierFailure)
        ]
    );
    let rejected = &errors.items[0];
    assert_eq!(rejected.attempts, 1);
    assert_eq!(rejected.last_error.as_deref(), Some("validation failed for B"));
    assert_eq!(rejected.first_failed_at, epoch());
    assert_eq!(map.stats().error_records, 4);
}

#[test]
fn strict_ordering_never_sends_two_records_of_a_key_in_one_call() {
    // One lane: its first call holds the first record of each key (a
    // repeat waits for a later call); the rejection of B in it holds back
    // B's later records.
    let fixture = Fixture::new(MapConfig { lanes: 1, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    queue(map);
    dest.reject("B");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    dest.assert_no_call_repeats_a_key();
    let calls = dest.batch_keys();
    assert_eq!(calls.first().map(Vec::len), Some(3), "the first call holds one record of each key");
    assert!(calls.iter().skip(1).flatten().all(|key| key != "B"), "B is held back after its rejection: {calls:?}");
    assert_eq!(map.stats().error_records, 4);
}

#[test]
fn best_effort_moves_only_the_rejected_records() {
    let fixture = Fixture::new(MapConfig { key_ordering: KeyOrdering::BestEffort, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    queue(map);
    dest.reject("B");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    let errors = map.catchup_errors(&Query::default()).unwrap();
    assert!(errors.items.iter().all(|e| e.reason == ErrorReason::Rejected));
    assert_eq!(errors.total, 4, "every B record was tried and rejected on its own");
    assert_eq!(dest.delivered_seqs().len(), 8);
}

#[test]
fn unavailable_stalls_without_moving_anything() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    queue(map);
    dest.set_unavailable(true);
    map.resume(ResumeMode::CatchUp).unwrap();
    while map.stats().last_error.is_none() {
        std::thread::yield_now();
    }
    let first_attempt = dest.calls();
    while dest.calls() <= first_attempt {
        std::thread::yield_now(); // a second attempt: the backoff retries
    }
    let stats = map.stats();
    assert_eq!(stats.error_records, 0, "nothing moves to the errors on Unavailable");
    assert_eq!(stats.queued_records, 12);
    assert!(stats.last_error.is_some());
    dest.set_unavailable(false);
    wait_running(map);
    assert_eq!(sorted(dest.delivered_seqs()), (1..=12).collect::<Vec<u64>>());
    assert_per_key_order(&dest.delivered(), "after a stall");
    assert_eq!(map.stats().last_error, None);
}
