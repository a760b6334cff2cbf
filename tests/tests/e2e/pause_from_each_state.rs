//! R5: pause from Running; pausing a Paused map is a no-op; pausing a
//! CatchingUp map stops the replay with the rest still queued in order.

use pauselog::{MapConfig, MapState, Query, ResumeMode};
use pauselog_tests::*;

#[test]
fn pause_is_idempotent() {
    let Fixture { map, clock, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    let first = map.state();
    clock.advance(std::time::Duration::from_secs(60));
    map.pause().unwrap();
    assert_eq!(map.state(), first, "second pause changes nothing, not even `since`");
}

#[test]
fn pausing_catch_up_keeps_the_rest_queued_in_order() {
    let fixture = Fixture::new(MapConfig { replay_batch_records: 10, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(100, |n| format!("K{n}"));
    // The replay delivers 20 records, then stalls on an unavailable
    // destination: the pause lands in the middle of the catch-up.
    fixture.stall_catch_up_after(20);
    map.pause().unwrap();
    dest.set_unavailable(false);
    assert!(is_paused(&map.state()));
    let delivered = dest.delivered_seqs();
    let page = map.queued(&Query::default().limit(1000)).unwrap();
    let queued: Vec<u64> = page.items.iter().map(|r| r.seq).collect();
    assert!(queued.windows(2).all(|w| w[0] < w[1]), "the rest stays queued in seq order");
    let mut all = delivered.clone();
    all.extend(&queued);
    assert_eq!(sorted(all), (1..=100).collect::<Vec<u64>>(), "delivered + queued rest = everything, once");
    assert_eq!(delivered.len(), 20, "the replay stopped where it was");
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(map);
    assert_eq!(sorted(dest.delivered_seqs()), (1..=100).collect::<Vec<u64>>());
    assert_per_key_order(&dest.delivered(), "across the pause");
    assert!(matches!(map.state(), MapState::Running));
}
