//! A log starts its janitor thread only when a whole segment is released
//! for the first time, and stops it on close: an engine with many idle
//! table maps (two logs each) must not hold two threads per map.
//!
//! Its own test binary (one test), so no other test's log adds janitors to
//! the threads this process counts.
#![cfg(target_os = "linux")]

mod common;

use common::{body, segment_files, small_segments};
use pauselog_wal::Wal;

/// Threads of this process named like the janitor (`/proc` keeps 15 bytes).
fn janitor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.expect("task").path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "pauselog-wal-ja")
        .count()
}

#[test]
fn the_janitor_runs_from_the_first_deletion_until_close() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    for tag in 0..20 {
        wal.append(&body(tag, 900)).expect("append");
    }
    assert!(segment_files(dir.path()).len() > 2, "the records span several segments");
    wal.release(1..=1).expect("release one record");
    assert_eq!(janitor_threads(), 0, "no segment was deleted yet: no janitor");

    wal.release(1..=8).expect("release the first segments");
    wal.settle();
    assert_eq!(janitor_threads(), 1, "the first deletion starts the janitor");
    let first_live = wal.first_live_seq().expect("records left");
    let files = segment_files(dir.path());
    assert!(files.len() < 6, "the released segments were deleted: {files:?}");

    wal.close().expect("close");
    assert_eq!(janitor_threads(), 0, "closing stops the janitor");
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert_eq!(wal.first_live_seq(), Some(first_live));
}
