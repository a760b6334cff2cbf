//! docs/rules.md R17 under `SyncPolicy::Interval`: an append is written to the OS
//! before it is acknowledged, so another process sees it (and a crash of
//! this one keeps it, `sigkill.rs`), while no fsync runs before the interval
//! is due. Concurrent appenders share the write as they share fsyncs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::body;
use common::faulty::{FaultyStorage, OpKind};
use pauselog_wal::{FsStorage, SyncPolicy, Wal, WalOptions};

const THREAD_COUNT: u64 = 8;
const APPENDS_PER_THREAD: u64 = 500;

fn len_of(index: u64) -> usize {
    64 + (index as usize * 37) % 300
}

#[test]
fn interval_appends_are_written_to_the_os_before_append_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = FaultyStorage::over(Arc::new(FsStorage));
    let options = WalOptions::default().sync(SyncPolicy::Interval(Duration::from_secs(3600)));
    let wal = Wal::open_with_storage(dir.path(), options, Arc::new(storage.clone())).expect("open");
    let syncs_at_open = storage.count_on(".seg", OpKind::SyncData) + storage.count_on(".seg", OpKind::SyncAll);
    let acked: Vec<(u64, Vec<u8>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREAD_COUNT)
            .map(|thread| {
                let wal = &wal;
                scope.spawn(move || {
                    (0..APPENDS_PER_THREAD)
                        .map(|i| {
                            let body = body(thread << 32 | i, len_of(i));
                            (wal.append(&body).expect("append"), body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().expect("appender")).collect()
    });

    // Another process's view of the directory, taken while the log is open
    // and has synced nothing: every acknowledged record is in the file.
    let syncs = storage.count_on(".seg", OpKind::SyncData) + storage.count_on(".seg", OpKind::SyncAll);
    assert_eq!(syncs, syncs_at_open, "no fsync before the interval is due");
    let view = Wal::open(dir.path(), WalOptions::default().read_only(true)).expect("read-only open");
    let mut expected = acked.clone();
    expected.sort();
    common::assert_records(&common::read_all(&view), &expected, "the records in the file");

    // One write per acknowledged append at most; the figure shows sharing.
    let writes = storage.count_on(".seg", OpKind::Write);
    let appends = THREAD_COUNT * APPENDS_PER_THREAD;
    println!(
        "{appends} appends from {THREAD_COUNT} threads took {writes} writes ({:.2} appends per write)",
        appends as f64 / writes as f64
    );
    assert!(writes <= appends + 1, "{writes} writes for {appends} appends");
}
