//! R3, R15, R16, R18, R22: a catch-up delivers in batches of distinct keys
//! over several lanes, yet what reaches the destination and the catch-up
//! errors is exactly what a record-by-record replay gives (each key in seq
//! order), also when the replay stalls, is paused or is skipped in the
//! middle of a batch.
//!
//! Batches of 128 records over a few thousand records over 50 keys, so
//! every batch has many rounds and every scenario stops mid-queue.

use std::sync::Arc;

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

/// Answers `Unavailable` for the first record of its first call and
/// accepts everything else: a destination that comes back in the middle of
/// a call (or applies what it can of a batch).
#[derive(Default)]
struct BackMidCall {
    first_call_done: std::sync::atomic::AtomicBool,
    accepted: std::sync::Mutex<Vec<pauselog::QueuedRecord>>,
}

impl pauselog::Destination for BackMidCall {
    fn deliver(&self, record: &pauselog::QueuedRecord) -> Result<(), pauselog::DeliveryError> {
        self.accepted.lock().unwrap().push(record.clone());
        Ok(())
    }

    fn deliver_batch(&self, batch: &[pauselog::QueuedRecord]) -> Vec<Result<(), pauselog::DeliveryError>> {
        let first_call = !self.first_call_done.swap(true, std::sync::atomic::Ordering::SeqCst);
        (batch.iter().enumerate())
            .map(|(index, record)| match index == 0 && first_call {
                true => Err(pauselog::DeliveryError::Unavailable("coming back".into())),
                false => self.deliver(record),
            })
            .collect()
    }
}

/// Found by the engine model test: a call answered `Unavailable` for its
/// first record and accepted the rest; the replay sent everything from the
/// first `Unavailable` again, so records the destination had accepted were
/// delivered twice and, under BestEffort, an older record of a key followed
/// a newer one of the same call (R16b, R18). Every answer counts now.
#[test]
fn every_answer_of_a_call_counts_when_the_destination_comes_back_mid_call() {
    for ordering in [KeyOrdering::Strict, KeyOrdering::BestEffort] {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), &clock());
        let dest = Arc::new(BackMidCall::default());
        let map = engine.table_map("m", config(ordering, 8), dest.clone()).unwrap();
        map.pause().unwrap();
        for (n, key) in ["K0", "K1", "K0", "K2"].into_iter().enumerate() {
            map.submit(rec(key, n as u64)).unwrap();
        }
        map.resume(ResumeMode::CatchUp).unwrap();
        wait_running(&map);
        let accepted = dest.accepted.lock().unwrap().clone();
        assert_per_key_order(&accepted, &format!("{ordering:?}"));
        let errors: Vec<(u64, ErrorReason, u32)> =
            all_errors(&map, None).iter().map(|e| (e.record.seq, e.reason, e.attempts)).collect();
        let seqs: Vec<u64> = accepted.iter().map(|r| r.seq).collect();
        match ordering {
            // A batch never holds K0 twice: seq 1 waits out the backoff and
            // goes before seq 3; seqs 2 and 4 are not sent again.
            KeyOrdering::Strict => {
                assert_eq!(seqs, [2, 4, 1, 3], "Strict: each record once");
                assert_eq!(errors, []);
            }
            // The call held seqs 1 and 3 of K0 and the destination took 3:
            // seq 1 must never follow it and stays as a Superseded error.
            _ => {
                assert_eq!(seqs, [2, 3, 4], "BestEffort: each record once");
                assert_eq!(errors, [(1, ErrorReason::Superseded, 1)]);
            }
        }
    }
}
