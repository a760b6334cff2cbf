//! R9: while a map catches up, the operator sees its current drain rate
//! and an estimated time to drain: positive and finite while records
//! flow, the ETA the remaining records at that rate, the rate of the order
//! of the drain's real throughput; falling (and the ETA growing) while the
//! replay is stalled; and neither once the map is live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog::{DeliveryError, Destination, MapConfig, MapState, QueuedRecord, ResumeMode};
use pauselog_tests::*;

const RECORDS: u64 = 400;

/// Accepts a record a millisecond: a drain of a few hundred records a second.
#[derive(Debug, Default)]
struct Slow(TestDest);

impl Destination for Slow {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        std::thread::sleep(Duration::from_millis(1));
        self.0.deliver(record)
    }
}

fn catching_up() -> (Fixture, Arc<Slow>) {
    let config = MapConfig { lanes: 1, replay_batch_records: 8, ..MapConfig::default() };
    let fixture = Fixture::new(config);
    let slow = Arc::new(Slow::default());
    fixture.map.set_destination(slow.clone());
    fixture.queue(RECORDS, |n| format!("K{}", n % 20));
    fixture.map.resume(ResumeMode::CatchUp).unwrap();
    (fixture, slow)
}

#[test]
fn the_drain_rate_and_eta_follow_a_catch_up_and_vanish_when_live() {
    let (fixture, _slow) = catching_up();
    let map = &fixture.map;
    let started = Instant::now();
    let mut samples = 0;
    loop {
        let stats = map.stats();
        let MapState::CatchingUp { replayed, remaining } = stats.state else { break };
        assert_eq!(replayed + remaining, RECORDS, "replayed and remaining add up");
        let rate = stats.drain_rate_per_sec;
        assert!(rate.is_finite() && rate >= 0.0, "rate {rate}");
        if rate > 0.0 {
            let eta = stats.eta.expect("an ETA while records flow");
            let expected = remaining as f64 / rate;
            assert!((eta.as_secs_f64() - expected).abs() < 0.001, "ETA {eta:?} for {remaining} records at {rate}/s");
            let elapsed = started.elapsed().as_secs_f64();
            if replayed >= 50 && elapsed > 0.05 {
                let real = replayed as f64 / elapsed;
                assert!(rate < real * 50.0 && rate > real / 50.0, "rate {rate:.0}/s, the drain's real {real:.0}/s");
                samples += 1;
            }
        } else {
            assert_eq!(stats.eta, None, "no ETA without a rate");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(samples > 0, "the rate was seen while records flowed");
    wait_running(map);
    let stats = map.stats();
    assert_eq!((stats.drain_rate_per_sec, stats.eta), (0.0, None), "no rate and no ETA once live");
}

#[test]
fn a_stalled_replay_shows_its_rate_falling_and_its_eta_growing() {
    let (fixture, slow) = catching_up();
    let map = &fixture.map;
    let deadline = Instant::now() + WAIT;
    while map.stats().drain_rate_per_sec == 0.0 || map.stats().replayed < 50 {
        assert!(Instant::now() < deadline, "the drain never showed a rate");
        std::thread::sleep(Duration::from_millis(2));
    }
    slow.0.set_unavailable(true);
    while map.stats().last_error.is_none() {
        assert!(Instant::now() < deadline, "the stall never showed");
        std::thread::sleep(Duration::from_millis(2));
    }
    let flowing = map.stats();
    // Bounded: a stall of five seconds is far past any gap between two
    // commits of this drain.
    let stall_deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stalled = map.stats();
        assert_eq!(stalled.remaining, flowing.remaining, "nothing moves while stalled");
        if stalled.drain_rate_per_sec < flowing.drain_rate_per_sec / 2.0 {
            assert!(stalled.eta > flowing.eta, "the ETA grows: {:?} then {:?}", flowing.eta, stalled.eta);
            break;
        }
        assert!(
            Instant::now() < stall_deadline,
            "stalled for 5 s, the rate still reads {:.0}/s (it read {:.0}/s while records flowed)",
            stalled.drain_rate_per_sec,
            flowing.drain_rate_per_sec
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    slow.0.set_unavailable(false);
    wait_running(map);
}
