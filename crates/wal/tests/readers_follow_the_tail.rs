//! Readers run concurrently with appends and rotations (memmap2 views of
//! segments that are still being written) and see every record exactly once,
//! in seq order, with the right body. Under docs/rules.md R18 delivery is in seq order.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::body;
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

fn follow_while_appending(sync: SyncPolicy, record_count: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WalOptions::default().sync(sync).segment_bytes_max(8192);
    let wal = Arc::new(Wal::open(dir.path(), options).expect("open"));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut reader = wal.reader(1);
                let mut expected_seq = 1;
                let deadline = Instant::now() + Duration::from_secs(60);
                while expected_seq <= record_count {
                    match reader.next() {
                        Some(entry) => {
                            let entry = entry.expect("read");
                            assert_eq!(entry.seq(), expected_seq, "every record once, in order");
                            assert!(entry.body() == body(entry.seq(), len_of(entry.seq())), "body of {expected_seq}");
                            expected_seq += 1;
                        }
                        None => {
                            assert!(Instant::now() < deadline, "reader stalled at {expected_seq}");
                            std::thread::yield_now();
                        }
                    }
                }
                assert!(reader.next().is_none(), "nothing past the last append");
            })
        })
        .collect();
    for seq in 1..=record_count {
        assert_eq!(wal.append(&body(seq, len_of(seq))).expect("append"), seq);
        if seq % 97 == 0 {
            wal.rotate().expect("explicit rotation");
        }
    }
    for reader in readers {
        reader.join().expect("reader thread");
    }
    assert!(wal.stats().segment_count > 10, "the test spans many rotations");
}

fn len_of(seq: u64) -> usize {
    (seq as usize * 37) % 700
}

#[test]
fn readers_follow_buffered_appends_and_rotations() {
    follow_while_appending(SyncPolicy::Never, 5000);
}

#[test]
fn readers_follow_durable_appends_and_rotations() {
    follow_while_appending(SyncPolicy::Always, 600);
}
