//! R16b: a catch-up error whose key has had a newer record delivered since
//! is not delivered by a retry. Every delivery of a newer record — live,
//! by a BestEffort catch-up, by a retry of a later seq — makes the key's
//! older entries `Superseded` in the same commit, and a key is delivered
//! by one path at a time, so a retry and a live write of one key never
//! race each other to the destination.

use std::time::{Duration, Instant};

use pauselog::{ErrorReason, KeyOrdering, MapConfig, Query, ResumeMode, Selection};
use pauselog_tests::*;

fn reasons(map: &pauselog::TableMap) -> Vec<(u64, ErrorReason)> {
    all_errors(map, None).iter().map(|e| (e.record.seq, e.reason)).collect()
}

/// Found by review: a newer record delivered by a BestEffort catch-up did
/// not supersede the key's older errors.
#[test]
fn a_best_effort_catch_up_supersedes_older_errors_of_the_keys_it_delivers() {
    let fixture = Fixture::new(MapConfig { key_ordering: KeyOrdering::BestEffort, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(4, |n| if n == 1 { "K".into() } else { format!("O{n}") });
    dest.reject("K");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    assert_eq!(reasons(map), [(1, ErrorReason::Rejected)]);
    dest.accept("K");
    map.pause().unwrap();
    map.submit(rec("K", 5)).unwrap();
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    assert_eq!(reasons(map), [(1, ErrorReason::Superseded)], "the newer K was delivered by the catch-up");
    let progress = map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.skipped), (0, 1));
}

/// Found by review: a retry delivering a later seq of a key left its
/// earlier entries retryable, and a later plain retry would apply an old
/// version over the newer one.
#[test]
fn a_retry_of_a_later_seq_supersedes_the_earlier_entries() {
    let Fixture { map, dest, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.submit(rec("K", 2)).unwrap();
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    let progress = map.retry_errors(Selection::Seqs(vec![2])).unwrap().wait(WAIT).unwrap();
    assert_eq!(progress.delivered, 1);
    assert_eq!(reasons(map), [(1, ErrorReason::Superseded)]);
    let progress = map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.skipped), (0, 1), "the old version must not land after the new");
    assert_eq!(dest.delivered_payloads(), ["payload-2"]);
}

/// Found by review: the Superseded check and the live delivery ran outside
/// the map's lock and could race. A live write of a key waits for a retry
/// of that key in flight, so the newer version lands last.
#[test]
fn a_live_write_waits_for_a_retry_of_its_key_in_flight() {
    let Fixture { map, dest, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    dest.close_gate_for(|record| record.seq == 1);
    let job = map.retry_errors(Selection::All).unwrap();
    while dest.calls() == 0 {
        std::thread::yield_now(); // the retry is inside the destination now
    }
    let live = std::thread::spawn({
        let map = map.clone();
        move || map.submit(rec("K", 2)).unwrap()
    });
    // Give the live write every chance to overtake the retry (before the
    // fix it reached the destination at once); it must wait for the key.
    let chance = Instant::now() + Duration::from_millis(200);
    while dest.calls() < 2 && Instant::now() < chance {
        std::thread::yield_now();
    }
    dest.open_gate();
    live.join().unwrap();
    job.wait(WAIT).unwrap();
    assert_eq!(dest.delivered_payloads(), ["payload-1", "payload-2"], "the newer version lands last");
    assert!(all_errors(map, None).is_empty());
}

/// The other way round: a retry waits for a live write of its key in
/// flight, then finds its entry superseded and leaves it.
#[test]
fn a_retry_waits_for_a_live_write_of_its_key_and_then_skips_it() {
    let Fixture { map, dest, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    dest.close_gate_for(|record| record.key == "K" && record.payload == b"payload-2");
    let live = std::thread::spawn({
        let map = map.clone();
        move || map.submit(rec("K", 2)).unwrap()
    });
    while dest.calls() == 0 {
        std::thread::yield_now(); // the live write is inside the destination
    }
    let job = map.retry_errors(Selection::All).unwrap();
    dest.open_gate();
    live.join().unwrap();
    let progress = job.wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.skipped), (0, 1));
    assert_eq!(dest.delivered_payloads(), ["payload-2"]);
    assert_eq!(reasons(map), [(1, ErrorReason::Superseded)]);
}

/// Under BestEffort a catch-up delivers a key's newer records while it has
/// errors: a retry during that catch-up leaves such a key alone (its queued
/// newer record supersedes the entry when delivered).
#[test]
fn a_retry_during_a_best_effort_catch_up_leaves_keys_with_records_queued() {
    let fixture = Fixture::new(MapConfig { key_ordering: KeyOrdering::BestEffort, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(1, |_| "K".into());
    dest.reject("K");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    dest.accept("K");
    map.pause().unwrap();
    map.submit(rec("K", 2)).unwrap();
    dest.close_gate();
    map.resume(ResumeMode::CatchUp).unwrap();
    let progress = map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.skipped), (0, 1), "K still has a record queued");
    dest.open_gate();
    wait_running(map);
    assert_eq!(dest.delivered_payloads(), ["payload-2"]);
    assert_eq!(reasons(map), [(1, ErrorReason::Superseded)]);
    let page = map.catchup_errors(&Query::default()).unwrap();
    assert_eq!(page.items[0].last_error.as_deref(), Some("a newer record of this key was delivered"));
}
