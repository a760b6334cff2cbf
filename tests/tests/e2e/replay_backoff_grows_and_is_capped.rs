//! R15: an `Unavailable` answer during catch-up is retried with capped
//! exponential backoff. The replay's backoff runs on real time (it paces
//! calls to a real destination; the engine clock is for rules and ages),
//! so this test measures the spacing of a destination's calls, with
//! bounds that cannot flake: growth by lower bounds only (a wait is never
//! shorter than its backoff), the cap by a count of calls that no
//! uncapped doubling could reach in the time allowed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pauselog::{DeliveryError, Destination, MapConfig, QueuedRecord, ResumeMode};
use pauselog_tests::*;

const BACKOFF_MIN: Duration = Duration::from_millis(4);
const BACKOFF_MAX: Duration = Duration::from_millis(32);
/// Calls to wait for: uncapped, the 40th would come 4 ms × 2^39 after the first.
const CALLS: usize = 40;

/// Answers `Unavailable` and notes when each call came.
#[derive(Debug, Default)]
struct Down {
    calls: Mutex<Vec<Instant>>,
}

impl Destination for Down {
    fn deliver(&self, _: &QueuedRecord) -> Result<(), DeliveryError> {
        self.calls.lock().unwrap().push(Instant::now());
        Err(DeliveryError::Unavailable("down for maintenance".into()))
    }
}

#[test]
fn unavailable_answers_are_retried_with_doubling_backoff_up_to_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let down = std::sync::Arc::new(Down::default());
    let config = MapConfig { lanes: 1, backoff_min: BACKOFF_MIN, backoff_max: BACKOFF_MAX, ..MapConfig::default() };
    let map = engine.table_map("m", config, down.clone()).unwrap();
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.resume(ResumeMode::CatchUp).unwrap();

    let deadline = Instant::now() + WAIT;
    while down.calls.lock().unwrap().len() < CALLS {
        assert!(
            Instant::now() < deadline,
            "the backoff is not capped: {} calls in {WAIT:?}",
            down.calls.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let calls = down.calls.lock().unwrap().clone();
    for (i, pair) in calls.windows(2).enumerate() {
        let backoff = BACKOFF_MIN.saturating_mul(1 << i.min(20)).min(BACKOFF_MAX);
        let gap = pair[1] - pair[0];
        assert!(gap >= backoff, "call {} came {gap:?} after the one before, under its backoff of {backoff:?}", i + 2);
    }
    let first = calls[1] - calls[0];
    let capped: Vec<Duration> = calls.windows(2).skip(4).map(|pair| pair[1] - pair[0]).collect();
    eprintln!("backoff: first gap {first:?}; gaps at the cap {capped:?}");

    map.set_destination(TestDest::new());
    wait_running(&map);
}
