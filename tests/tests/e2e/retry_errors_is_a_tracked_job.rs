//! R16, R16a, R16b: catch-up errors are retried asynchronously as a job
//! with progress, wait and cancel, in per-key order; a success leaves the
//! list, a failure stays with its attempts and error updated; entries
//! superseded by a newer live delivery are not retried unless forced; errors
//! can be discarded.

use pauselog::{ErrorReason, MapConfig, Query, ResumeMode, Selection};
use pauselog_tests::*;

/// A map whose catch-up left the three records of key A (seqs 3, 6, 9) in
/// the catch-up errors.
fn with_errors() -> Fixture {
    let fixture = Fixture::new(MapConfig::default());
    fixture.queue(9, |n| ["A", "B", "C"][(n % 3) as usize].to_owned());
    fixture.dest.reject("A");
    fixture.map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&fixture.map);
    assert_eq!(fixture.map.stats().error_records, 3);
    fixture
}

#[test]
fn retry_delivers_in_order_and_empties_the_list() {
    let Fixture { map, dest, .. } = &with_errors();
    dest.accept("A");
    let job = map.retry_errors(Selection::All).unwrap();
    let progress = job.wait(WAIT).unwrap();
    assert_eq!((progress.total, progress.delivered, progress.failed, progress.done), (3, 3, 0, true));
    let a: Vec<u64> = dest.delivered().iter().filter(|r| r.key == "A").map(|r| r.seq).collect();
    assert_eq!(a, [3, 6, 9], "per-key order within a retry");
    assert_eq!(map.catchup_errors(&Query::default()).unwrap().total, 0);
    assert_eq!(map.stats().error_bytes, 0);
}

#[test]
fn a_failed_retry_keeps_the_entry_with_updated_attempts() {
    let Fixture { map, clock, .. } = &with_errors();
    clock.advance(std::time::Duration::from_secs(30));
    let progress = map.retry_errors(Selection::Key("A".into())).unwrap().wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.failed), (0, 3), "the first fails; the later ones are held back");
    let errors = map.catchup_errors(&Query::default()).unwrap();
    assert_eq!(errors.items[0].attempts, 2);
    assert_eq!(errors.items[0].last_failed_at, epoch() + std::time::Duration::from_secs(30));
    assert_eq!(errors.items[0].first_failed_at, epoch());
    assert_eq!(errors.items[1].attempts, 0, "a held-back record was not attempted");
}

#[test]
fn superseded_entries_are_not_retried_unless_forced() {
    let Fixture { map, dest, .. } = &with_errors();
    dest.accept("A");
    map.submit(rec("A", 100)).unwrap(); // a newer version of A goes live
    let errors = map.catchup_errors(&Query::default()).unwrap();
    assert!(errors.items.iter().all(|e| e.reason == ErrorReason::Superseded));
    let progress = map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_eq!((progress.delivered, progress.skipped), (0, 3), "an old version must not overwrite a newer one");
    assert_eq!(map.catchup_errors(&Query::default()).unwrap().total, 3);
    let forced = map.retry_errors_forced(Selection::Seqs(vec![3])).unwrap().wait(WAIT).unwrap();
    assert_eq!(forced.delivered, 1);
    assert_eq!(map.catchup_errors(&Query::default()).unwrap().total, 2);
}

#[test]
fn discard_removes_entries_and_their_bytes() {
    let Fixture { map, .. } = &with_errors();
    assert_eq!(map.discard_errors(Selection::Seqs(vec![6, 42])).unwrap(), 1);
    assert_eq!(
        map.catchup_errors(&Query::default()).unwrap().items.iter().map(|e| e.record.seq).collect::<Vec<_>>(),
        [3, 9]
    );
    assert_eq!(map.discard_errors(Selection::All).unwrap(), 2);
    let stats = map.stats();
    assert_eq!((stats.error_records, stats.error_bytes), (0, 0));
}

#[test]
fn a_cancelled_job_stops() {
    let Fixture { map, dest, .. } = &with_errors();
    dest.accept("A");
    dest.close_gate();
    let job = map.retry_errors(Selection::All).unwrap();
    job.cancel();
    dest.open_gate();
    let progress = job.wait(WAIT).unwrap();
    assert!(progress.done);
    assert!(progress.delivered <= 1, "at most the record in flight: {progress:?}");
    assert_eq!(map.stats().error_records, 3 - progress.delivered);
}

/// Discarding one key's errors reads their records in chunks of 1024 to find
/// the key of each; a key with more errors than that loses all of them, and
/// no other key loses any.
#[test]
fn discarding_a_key_with_thousands_of_errors_removes_exactly_those() {
    let fixture = Fixture::new(MapConfig::default());
    fixture.queue(3000, |n| if n % 3 == 0 { "B".to_owned() } else { "A".to_owned() });
    fixture.map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    let (b_count, a_count) = (1000, 2000);
    assert_eq!(fixture.map.stats().error_records, a_count + b_count);
    assert_eq!(fixture.map.discard_errors(Selection::Key("A".into())).unwrap(), a_count);
    let rest = all_errors(&fixture.map, None);
    assert_eq!(rest.len() as u64, b_count);
    assert!(rest.iter().all(|e| e.record.key == "B"));
    assert_eq!(fixture.map.catchup_errors(&Query::default().key("A")).unwrap().total, 0);
}
