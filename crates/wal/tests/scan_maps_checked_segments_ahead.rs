//! A scan over segments whose frames this process has checked already (a
//! catch-up drain reads what the engine wrote) has its helper thread map
//! the pages of the next segments ahead of the reader, so the reader takes
//! no page faults there; the reader never does it itself.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::body;
use pauselog_wal::storage::{SimStorage, Storage, ViewEvent};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

const RECORD_COUNT: u64 = 4000;
/// Past the reader's first batch of 1024: the second one looks ahead.
const READ_FIRST: u64 = 1500;

#[test]
fn a_scan_has_the_helper_map_the_next_checked_segments() {
    let sim = SimStorage::new();
    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let options = WalOptions::default().sync(SyncPolicy::Never).segment_bytes_max(1 << 20);
    let wal = Wal::open_with_storage(Path::new("/sim/log"), options, storage).expect("open");
    for tag in 0..RECORD_COUNT {
        wal.append(&body(tag, 1000)).expect("append");
    }
    wal.sync().expect("sync");

    let mut reader = wal.reader(1);
    for expected in 1..=READ_FIRST {
        assert_eq!(reader.next().expect("a record").expect("read").seq(), expected);
    }
    // The helper works on its own time: wait for it, with a deadline far
    // beyond what mapping two segments takes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let populated = sim.view_events_by_thread(ViewEvent::Populated);
        assert!(populated.keys().all(|thread| thread == "pauselog-wal-check"), "{populated:?}");
        if populated.get("pauselog-wal-check").is_some_and(|&count| count >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "the helper mapped no segment ahead of the scan");
        std::thread::yield_now();
    }
    assert_eq!(reader.count() as u64, RECORD_COUNT - READ_FIRST, "the scan reads on to the end");
}
