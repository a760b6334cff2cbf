//! docs/rules.md R17: under `SyncPolicy::Always` concurrent appenders share fsyncs
//! (group commit); every acknowledged record is durable, and seqs are
//! distinct and gap-free across threads.

mod common;

use std::sync::Arc;

use common::{body, burst, read_all};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

const THREAD_COUNT: u64 = 8;
const APPENDS_PER_THREAD: u64 = 150;

#[test]
fn eight_threads_get_distinct_gap_free_seqs_that_survive_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(64 * 1024);
    let wal = Arc::new(Wal::open(dir.path(), options.clone()).expect("open"));
    let threads: Vec<_> = (0..THREAD_COUNT)
        .map(|thread| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                (0..APPENDS_PER_THREAD)
                    .map(|i| {
                        let tag = thread * 1_000_000 + i;
                        let seq = wal.append(&body(tag, 100 + (i as usize % 50))).expect("append");
                        assert!(wal.stats().durable_seq >= seq, "acknowledged before durable");
                        (seq, tag, 100 + (i as usize % 50))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, u64, usize)> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    acked.sort();
    let total = THREAD_COUNT * APPENDS_PER_THREAD;
    assert_eq!(acked.iter().map(|a| a.0).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>(), "seqs are 1..=N");
    drop(Arc::into_inner(wal).expect("last handle"));

    let wal = Wal::open(dir.path(), options).expect("reopen");
    let expected: Vec<(u64, Vec<u8>)> = acked.iter().map(|&(seq, tag, len)| (seq, body(tag, len))).collect();
    common::assert_records(&read_all(&wal), &expected, "after reopen");
    assert_eq!(wal.stats().next_seq, total + 1);
}

/// Found by review of the gathering step: the caller holding an incomplete
/// group's deadline can be made durable by `Wal::sync` (or a rotation)
/// while others sleep on the same group. It must hand the group on when it
/// leaves, or they sleep until some later fsync, which may never come.
#[test]
fn callers_covered_by_an_explicit_sync_never_strand_their_group() {
    const WAITER_COUNT: usize = 3;
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Arc::new(Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Always)).expect("open"));
    for round in 0..100 {
        // Groups of 8: the next group waits for 8 records, and only 3 come.
        burst(&wal, 8);
        let (done, finished) = std::sync::mpsc::channel();
        for _ in 0..WAITER_COUNT {
            let (wal, done) = (wal.clone(), done.clone());
            std::thread::spawn(move || {
                let seq = wal.append_unsynced(b"waiter").expect("append");
                wal.sync_through(seq).expect("sync through");
                done.send(seq).expect("report");
            });
        }
        wal.sync().expect("explicit sync");
        for _ in 0..WAITER_COUNT {
            let seq = finished
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("round {round}: a caller covered by the explicit sync never returned"));
            assert!(wal.stats().durable_seq >= seq);
        }
    }
}

/// Group commit really shares fsyncs: 8 writers appending at once are
/// acknowledged by fewer `fdatasync`s than appends, counted at the storage
/// seam (not by the log's own counter). The figure is printed.
#[test]
fn eight_writers_share_their_fsyncs() {
    use common::faulty::{FaultyStorage, OpKind};
    const APPENDS: u64 = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = FaultyStorage::over(Arc::new(pauselog_wal::FsStorage));
    let options = WalOptions::default().sync(SyncPolicy::Always);
    let wal = Arc::new(Wal::open_with_storage(dir.path(), options, Arc::new(storage.clone())).expect("open"));
    let syncs_before = storage.count_on(".seg", OpKind::SyncData);
    let threads: Vec<_> = (0..THREAD_COUNT)
        .map(|thread| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..APPENDS {
                    let seq = wal.append(&body(thread << 32 | i, 100)).expect("append");
                    assert!(wal.stats().durable_seq >= seq, "acknowledged before durable");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer");
    }
    let syncs = storage.count_on(".seg", OpKind::SyncData) - syncs_before;
    let acks = THREAD_COUNT * APPENDS;
    let acks_per_fsync = acks as f64 / syncs as f64;
    println!("{acks} acknowledged appends from {THREAD_COUNT} writers took {syncs} fdatasyncs: {acks_per_fsync:.2} acks per fsync");
    assert!(syncs > 0 && acks_per_fsync > 1.0, "{acks} acks, {syncs} fsyncs: no fsync was shared");
}
