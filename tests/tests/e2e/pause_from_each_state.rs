//! R5: pause from Running; pausing a Paused map is a no-op; pausing a
//! CatchingUp map stops the replay with the rest still queued in order.

use pauselog::{MapConfig, MapState, Query, ResumeMode};
use pauselog_tests::*;

#[test]
fn pause_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let map = open_map(&engine, "m", MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    let first = map.state();
    clock.advance(std::time::Duration::from_secs(60));
    map.pause().unwrap();
    assert_eq!(map.state(), first, "second pause changes nothing, not even `since`");
}

#[test]
fn pausing_catch_up_keeps_the_rest_queued_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let dest = TestDest::new();
    let config = MapConfig { replay_batch_records: 10, ..MapConfig::default() };
    let map = open_map(&engine, "m", config, &dest);
    map.pause().unwrap();
    for n in 1..=100 {
        map.submit(rec(&format!("K{n}"), n)).unwrap();
    }
    dest.close_gate();
    map.resume(ResumeMode::CatchUp).unwrap();
    let pauser = {
        let map = map.clone();
        std::thread::spawn(move || map.pause())
    };
    // Let the in-flight batch finish; pause waits for it.
    while dest.calls() == 0 {
        std::thread::yield_now();
    }
    dest.open_gate();
    pauser.join().unwrap().unwrap();
    assert!(is_paused(&map.state()));
    let delivered = dest.delivered_seqs();
    let page = map.queued(&Query::default().limit(1000)).unwrap();
    let queued: Vec<u64> = page.items.iter().map(|r| r.seq).collect();
    let mut all = delivered.clone();
    all.extend(&queued);
    assert_eq!(all, (1..=100).collect::<Vec<u64>>(), "delivered prefix + queued rest = everything, once, in order");
    assert!(!queued.is_empty(), "the replay stopped before the end");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    assert_eq!(dest.delivered_seqs(), (1..=100).collect::<Vec<u64>>());
    assert!(matches!(map.state(), MapState::Running));
}
