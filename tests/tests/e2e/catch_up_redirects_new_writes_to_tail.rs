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
