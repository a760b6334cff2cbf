//! R18, R22: catch-up delivers the queue to the destination in `seq` order
//! per key (the lanes interleave keys), at least once; without a crash,
//! every queued record exactly once. Checked with both key orderings (R15).

use pauselog::{KeyOrdering, MapConfig, ResumeMode, Submitted, SyncPolicy};
use pauselog_tests::*;

const KEY_COUNT: u64 = 100;

/// Queues `records` over [`KEY_COUNT`] keys, catches up, and checks that the
/// destination saw each seq once, in seq order, with its own key and payload.
fn catch_up_delivers_each_record_once_in_seq_order(ordering: KeyOrdering, records: u64) {
    let dir = tempfile::tempdir().unwrap();
    // Never: this is about delivery, not durability; keeps 10,000 submits fast.
    let engine = engine_with(dir.path(), &clock(), SyncPolicy::Never);
    let dest = TestDest::new();
    let config = MapConfig { key_ordering: ordering, ..MapConfig::default() };
    let map = open_map(&engine, "orders", config, &dest);
    map.pause().unwrap();
    for n in 0..records {
        let key = format!("USMF|CUST-{:03}", n % KEY_COUNT);
        assert_eq!(map.submit(rec(&key, n)).unwrap(), Submitted::Queued { seq: n + 1 });
    }
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);

    let delivered = dest.delivered();
    let seqs: Vec<u64> = delivered.iter().map(|r| r.seq).collect();
    assert_eq!(sorted(seqs), (1..=records).collect::<Vec<_>>(), "{ordering:?}: every seq once");
    assert_per_key_order(&delivered, &format!("{ordering:?}"));
    for record in &delivered {
        let n = record.seq - 1;
        assert_eq!(record.key, format!("USMF|CUST-{:03}", n % KEY_COUNT));
        assert_eq!(record.payload, format!("payload-{n}").into_bytes());
    }
    let stats = map.stats();
    assert_eq!((stats.queued_records, stats.queued_bytes, stats.error_records), (0, 0, 0));
}

#[test]
fn best_effort_catch_up_of_10000_records_over_100_keys_delivers_each_once_in_seq_order() {
    catch_up_delivers_each_record_once_in_seq_order(KeyOrdering::BestEffort, 10_000);
}

#[test]
fn strict_catch_up_delivers_each_record_once_in_seq_order() {
    catch_up_delivers_each_record_once_in_seq_order(KeyOrdering::Strict, 3_000);
}
