//! R3, R17, R21 under `SyncPolicy::Always`: writers keep submitting while a
//! catch-up drains and switches the map to Running. Under Always the
//! replay delivers only what is durable and joins the tail's group fsync
//! before the switch, a path `Never` does not take. Every record a writer
//! submitted is delivered exactly once, each writer's in the order it
//! submitted them, every acknowledged seq with the record it was
//! acknowledged for, and no seq twice.

use std::collections::{BTreeMap, HashSet};

use pauselog::{MapConfig, Record, ResumeMode, Submitted, SyncPolicy};
use pauselog_tests::*;

const WRITERS: u64 = 4;
const RECORDS_PER_WRITER: u64 = 400;

#[test]
fn writers_racing_the_drain_switch_under_always_lose_and_duplicate_nothing() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(dir.path(), &clock(), SyncPolicy::Always);
        let dest = TestDest::new();
        let config = MapConfig { lanes: 2, replay_batch_records: 16, ..MapConfig::default() };
        let map = open_map(&engine, "m", config, &dest);
        map.pause().unwrap();
        for n in 0..300 {
            map.submit(rec(&format!("B{}", n % 13), n)).unwrap();
        }
        map.resume(ResumeMode::CatchUp).unwrap();
        // Each writer: (payload, the seq it was acknowledged with, if queued).
        let sent: Vec<Vec<(String, Option<u64>)>> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let map = map.clone();
                    scope.spawn(move || {
                        (0..RECORDS_PER_WRITER)
                            .map(|i| {
                                let payload = format!("w{w}-{i}");
                                let record = Record::new(format!("W{w}"), pauselog::Op::Update, payload.clone());
                                let seq = match map.submit(record).unwrap() {
                                    Submitted::Queued { seq } => Some(seq),
                                    Submitted::Live => None,
                                };
                                (payload, seq)
                            })
                            .collect()
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        wait_running(&map);
        let delivered = dest.delivered();
        let by_payload: BTreeMap<String, u64> =
            delivered.iter().map(|r| (String::from_utf8_lossy(&r.payload).into_owned(), r.seq)).collect();
        for (w, sent) in sent.iter().enumerate() {
            let got: Vec<String> = delivered
                .iter()
                .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
                .filter(|p| p.starts_with(&format!("w{w}-")))
                .collect();
            let expected: Vec<String> = sent.iter().map(|(payload, _)| payload.clone()).collect();
            assert_eq!(got, expected, "round {round}: writer {w} lost, duplicated or reordered records");
            for (payload, seq) in sent {
                if let Some(seq) = seq {
                    assert_eq!(
                        by_payload.get(payload),
                        Some(seq),
                        "round {round}: {payload} acknowledged as seq {seq}"
                    );
                }
            }
        }
        let mut seqs = HashSet::new();
        assert!(delivered.iter().all(|r| seqs.insert(r.seq)), "round {round}: a seq was delivered twice (R21)");
        assert_eq!(delivered.len() as u64, 300 + WRITERS * RECORDS_PER_WRITER, "round {round}: delivered count");
        assert_per_key_order(&delivered, &format!("round {round}"));
    }
}
