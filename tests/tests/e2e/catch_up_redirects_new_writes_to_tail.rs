//! R3, R12: catching up replays the queue in seq order while new submits go
//! to the tail; the switch to Running is atomic with respect to concurrent
//! submitters — nothing lost, nothing delivered twice, nothing reordered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pauselog::{MapConfig, MapState, ResumeMode, Submitted};
use pauselog_tests::*;

#[test]
fn catch_up_replays_in_order_then_goes_live() {
    let Fixture { map, dest, .. } = &Fixture::named("customers", MapConfig::default());
    map.pause().unwrap();
    for n in 1..=500 {
        map.submit(rec(&format!("K{}", n % 13), n)).unwrap();
    }
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    assert_eq!(sorted(dest.delivered_seqs()), (1..=500).collect::<Vec<u64>>());
    assert_per_key_order(&dest.delivered(), "catch-up");
    assert_eq!(map.stats().queued_records, 0);
    assert_eq!(map.stats().queued_bytes, 0);
    assert_eq!(map.submit(rec("K1", 501)).unwrap(), Submitted::Live);
}

#[test]
fn submits_during_catch_up_go_to_the_tail() {
    let Fixture { map, dest, .. } = &Fixture::named("customers", MapConfig::default());
    map.pause().unwrap();
    for n in 1..=10 {
        map.submit(rec("A", n)).unwrap();
    }
    dest.close_gate(); // hold the replay inside its first delivery
    map.resume(ResumeMode::CatchUp).unwrap();
    assert!(matches!(map.state(), MapState::CatchingUp { .. }));
    assert_eq!(map.submit(rec("A", 11)).unwrap(), Submitted::Queued { seq: 11 }, "new write goes to the tail");
    dest.open_gate();
    wait_running(map);
    assert_eq!(dest.delivered_seqs(), (1..=11).collect::<Vec<u64>>());
}

/// Writers race the drain switch: every payload must arrive exactly once and
/// each writer's payloads in the order it submitted them.
#[test]
fn writers_racing_the_switch_lose_and_duplicate_nothing() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let clock = clock();
        let engine = engine_with(dir.path(), &clock, pauselog::SyncPolicy::Never);
        let dest = TestDest::new();
        let map = open_map(&engine, "customers", MapConfig::default(), &dest);
        map.pause().unwrap();
        for n in 0..2000 {
            map.submit(rec(&format!("Q{}", n % 50), n)).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (map, stop) = (map.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut sent = Vec::new();
                    let mut i = 0u64;
                    // Bounded, and yielding, so the drain can overtake the writers.
                    while i < 3000 && (!stop.load(Ordering::SeqCst) || i < 50) {
                        let payload = format!("w{w}-{i}");
                        map.submit(pauselog::Record::new(
                            format!("W{w}"),
                            pauselog::Op::Update,
                            payload.clone().into_bytes(),
                        ))
                        .unwrap();
                        sent.push(payload);
                        i += 1;
                        std::thread::yield_now();
                    }
                    sent
                })
            })
            .collect();
        map.resume(ResumeMode::CatchUp).unwrap();
        wait_running(&map);
        stop.store(true, Ordering::SeqCst);
        let sent: Vec<Vec<String>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let delivered = dest.delivered_payloads();
        for (w, sent) in sent.iter().enumerate() {
            let got: Vec<&String> = delivered.iter().filter(|p| p.starts_with(&format!("w{w}-"))).collect();
            assert_eq!(got.len(), sent.len(), "round {round}: writer {w} lost or duplicated records");
            assert!(got.iter().zip(sent).all(|(a, b)| *a == b), "round {round}: writer {w} reordered");
        }
        assert_per_key_order(&dest.delivered(), &format!("round {round}"));
        let seqs = sorted(dest.delivered_seqs());
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "round {round}: a seq delivered twice");
        assert_eq!(seqs.len() as u64, *seqs.last().unwrap(), "round {round}: a seq is missing");
    }
}

/// A destination whose every call takes a round trip.
#[derive(Debug, Default)]
struct RoundTrip {
    delivered: std::sync::Mutex<Vec<pauselog::QueuedRecord>>,
}

impl pauselog::Destination for RoundTrip {
    fn deliver(&self, record: &pauselog::QueuedRecord) -> Result<(), pauselog::DeliveryError> {
        self.deliver_batch(std::slice::from_ref(record)).remove(0)
    }

    fn deliver_batch(&self, batch: &[pauselog::QueuedRecord]) -> Vec<Result<(), pauselog::DeliveryError>> {
        std::thread::sleep(std::time::Duration::from_millis(5));
        self.delivered.lock().unwrap().extend_from_slice(batch);
        vec![Ok(()); batch.len()]
    }
}

/// Found by the PostgreSQL scenario: writers that never stop kept a few new
/// records at the tail after every round, so the catch-up never reached
/// it. When what is left fits in one round, new submits wait a moment
/// while the replay delivers it, and the switch happens (R3).
#[test]
fn a_catch_up_ends_although_writers_never_stop() {
    let dir = tempfile::tempdir().unwrap();
    // Never: the writers outpace any round trip.
    let engine = engine_with(dir.path(), &clock(), pauselog::SyncPolicy::Never);
    let dest = Arc::new(RoundTrip::default());
    let map = engine.table_map("customers", MapConfig::default(), dest.clone()).unwrap();
    map.pause().unwrap();
    for n in 0..3000 {
        map.submit(rec(&format!("K{}", n % 1000), n)).unwrap();
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (map, stop) = (&map, &stop);
            scope.spawn(move || {
                let mut n = 0u64;
                // About a thousand writes a second each: fewer than the drain
                // takes, but some arrive during every round trip.
                while !stop.load(Ordering::SeqCst) {
                    map.submit(rec(&format!("K{}", (n * 4 + w) % 1000), 10_000 + n)).unwrap();
                    n += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            });
        }
        map.resume(ResumeMode::CatchUp).unwrap();
        let reached = map.wait_for(|s| matches!(s, MapState::Running), WAIT);
        stop.store(true, Ordering::SeqCst);
        reached.expect("the catch-up ends while writers keep writing");
    });
    let delivered = dest.delivered.lock().unwrap().clone();
    assert_per_key_order(&delivered, "writers never stopped");
}
