//! R3, R15, R16, R18, R22: a catch-up delivers in batches of distinct keys
//! over several lanes, yet what reaches the destination and the catch-up
//! errors is exactly what a record-by-record replay gives (each key in seq
//! order), also when the replay stalls, is paused or is skipped in the
//! middle of a batch.
//!
//! Batches of 128 records over a few thousand records over 50 keys, so
//! every batch has many rounds and every scenario stops mid-queue.

use pauselog::{ErrorReason, KeyOrdering, MapConfig, MapState, ResumeMode};
use pauselog_tests::*;

const RECORD_COUNT: u64 = 3000;
const BATCH_RECORDS: usize = 128;

fn key(n: u64) -> String {
    format!("K{}", n % 50)
}

fn config(ordering: KeyOrdering, batch_records: usize) -> MapConfig {
    MapConfig { key_ordering: ordering, replay_batch_records: batch_records, ..MapConfig::default() }
}

/// Drains a queue with two rejected keys; returns the delivered seqs and
/// the catch-up errors as (seq, reason). Under Strict ordering, also checks that no `deliver_batch` call holds
/// two records of one key.
fn drain_with_rejections(ordering: KeyOrdering, batch_records: usize) -> (Vec<u64>, Vec<(u64, ErrorReason)>) {
    let fixture = Fixture::new(config(ordering, batch_records));
    fixture.queue(RECORD_COUNT, key);
    fixture.dest.reject("K7");
    fixture.dest.reject("K13");
    fixture.map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&fixture.map);
    let errors = all_errors(&fixture.map, None).iter().map(|e| (e.record.seq, e.reason)).collect();
    if ordering == KeyOrdering::Strict {
        fixture.dest.assert_no_call_repeats_a_key();
    }
    assert_per_key_order(&fixture.dest.delivered(), &format!("{ordering:?}, batches of {batch_records}"));
    (fixture.dest.delivered_seqs(), errors)
}

#[test]
fn a_batched_catch_up_delivers_and_moves_what_a_record_by_record_one_does() {
    for ordering in [KeyOrdering::Strict, KeyOrdering::BestEffort] {
        let (one_by_one, one_by_one_errors) = drain_with_rejections(ordering, 1);
        let (batched, batched_errors) = drain_with_rejections(ordering, BATCH_RECORDS);
        assert_eq!(sorted(batched.clone()), sorted(one_by_one), "{ordering:?}: same records delivered");
        assert_eq!(batched_errors, one_by_one_errors, "{ordering:?}: same catch-up errors");
        assert_eq!(batched.len() + batched_errors.len(), RECORD_COUNT as usize);
    }
}

#[test]
fn a_stall_mid_batch_redelivers_nothing_and_skips_nothing() {
    let fixture = Fixture::new(config(KeyOrdering::Strict, BATCH_RECORDS));
    fixture.queue(RECORD_COUNT, key);
    // 1000 is not a multiple of 128: the stall is in the middle of a batch.
    fixture.stall_catch_up_after(1000);
    fixture.dest.set_unavailable(false);
    wait_running(&fixture.map);
    let expected: Vec<u64> = (1..=RECORD_COUNT).collect();
    assert_eq!(sorted(fixture.dest.delivered_seqs()), expected, "each record once");
    assert_per_key_order(&fixture.dest.delivered(), "after a stall");
}

#[test]
fn pausing_mid_batch_keeps_the_rest_queued_in_order() {
    let fixture = Fixture::new(config(KeyOrdering::Strict, BATCH_RECORDS));
    fixture.queue(RECORD_COUNT, key);
    fixture.stall_catch_up_after(1000);
    fixture.map.pause().unwrap();
    let queued: Vec<u64> = all_queued(&fixture.map, None).iter().map(|r| r.seq).collect();
    assert!(queued.windows(2).all(|pair| pair[0] < pair[1]), "the rest is queued in seq order");
    let mut all = fixture.dest.delivered_seqs();
    all.extend(&queued);
    assert_eq!(sorted(all), (1..=RECORD_COUNT).collect::<Vec<u64>>(), "delivered + queued = everything, once");
    fixture.dest.set_unavailable(false);
    fixture.map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&fixture.map);
    let expected: Vec<u64> = (1..=RECORD_COUNT).collect();
    assert_eq!(sorted(fixture.dest.delivered_seqs()), expected, "each record once");
    assert_per_key_order(&fixture.dest.delivered(), "across the pause");
}

#[test]
fn skipping_mid_batch_splits_exactly_at_the_cut_over() {
    for preserve in [true, false] {
        let fixture = Fixture::new(config(KeyOrdering::Strict, BATCH_RECORDS));
        fixture.queue(RECORD_COUNT, key);
        fixture.stall_catch_up_after(1000);
        fixture.map.skip_to_live(preserve).unwrap();
        assert_eq!(fixture.map.state(), MapState::Running);
        let delivered = fixture.dest.delivered_seqs();
        assert_eq!(delivered.len(), 1000, "delivered before the stall");
        let errors: Vec<u64> = all_errors(&fixture.map, None).iter().map(|e| e.record.seq).collect();
        if preserve {
            let mut all = delivered.clone();
            all.extend(&errors);
            assert_eq!(sorted(all), (1..=RECORD_COUNT).collect::<Vec<u64>>(), "the rest, exactly, became errors");
        } else {
            assert!(errors.is_empty(), "discarded");
        }
        assert_eq!(fixture.map.stats().queued_records, 0);
    }
}
