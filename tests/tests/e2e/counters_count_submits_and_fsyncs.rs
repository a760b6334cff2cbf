//! R9, R24 (monitoring): a map counts every submit once by its outcome and
//! times the fsyncs of its logs, for the admin API's `/metrics`.

use pauselog::{MapConfig, Op, Record, SubmitCounts};
use pauselog_tests::*;

#[test]
fn every_submit_counts_once_by_outcome() {
    let fixture = Fixture::new(MapConfig { max_queue_bytes: 200, ..MapConfig::default() });
    let map = &fixture.map;
    assert_eq!(map.counters().submits, SubmitCounts::default());
    map.submit(rec("live", 1)).expect("live");
    fixture.dest.reject("bad");
    map.submit(rec("bad", 2)).expect_err("rejected");
    fixture.dest.set_unavailable(true);
    map.submit(rec("down", 3)).expect_err("unavailable, no rule to queue it");
    fixture.dest.set_unavailable(false);
    map.submit(Record::new("", Op::Create, Vec::new())).expect_err("an empty key");
    map.pause().expect("pause");
    map.submit(rec("q", 4)).expect("queued");
    map.submit(rec("q", 5)).expect("queued");
    while map.submit(rec("q", 6)).is_ok() {}
    map.submit(rec("q", 7)).expect_err("still blocked");

    let counts = map.counters().submits;
    let queued = map.stats().queued_records;
    assert_eq!(
        counts,
        SubmitCounts { live: 1, queued, blocked: 2, rejected: 1, unavailable: 1, invalid: 1, failed: 0 },
        "queued {queued}"
    );
    assert!(queued >= 2);
}

#[test]
fn the_fsyncs_of_both_logs_are_timed() {
    let fixture = Fixture::new(MapConfig::default());
    let before = fixture.map.counters();
    fixture.queue(3, |n| format!("k{n}"));
    let after = fixture.map.counters();
    assert!(
        after.data_sync_latency.count() >= before.data_sync_latency.count() + 3,
        "each lone durable submit waits for one fsync of the data log: {after:?}"
    );
    assert!(after.meta_sync_latency.count() > before.meta_sync_latency.count(), "the pause was synced: {after:?}");
}
