//! A log's janitor thread runs only while it has released segments to
//! delete: a deletion starts it, it ends once they are gone, and the next
//! deletion starts it again. An engine with many idle table maps (two logs
//! each) must hold no thread for them, also after a map drained its
//! backlog. The deletions still run on the janitor, never on the thread
//! that released the records.
//!
//! Its own test binary (one test), so no other test's log adds janitors to
//! the threads this process counts.
#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;

use common::faulty::FaultyStorage;
use common::{body, segment_files, small_segments};
use pauselog_wal::storage::FsStorage;
use pauselog_wal::Wal;

/// Threads of this process named like the janitor (`/proc` keeps 15 bytes).
fn janitor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.expect("task").path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "pauselog-wal-ja")
        .count()
}

/// The names of the threads that removed segment files so far.
fn segment_removers(storage: &FaultyStorage) -> Vec<String> {
    storage
        .removed()
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|x| x == "seg"))
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn the_janitor_runs_only_while_it_has_segments_to_delete() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = FaultyStorage::over(Arc::new(FsStorage));
    let wal = Wal::open_with_storage(dir.path(), small_segments(), Arc::new(storage.clone())).expect("open");
    for tag in 0..20 {
        wal.append(&body(tag, 900)).expect("append");
    }
    assert!(segment_files(dir.path()).len() > 2, "the records span several segments");
    wal.release(1..=1).expect("release one record");
    wal.settle();
    assert_eq!(janitor_threads(), 0, "no segment was deleted yet: no janitor");
    assert!(segment_removers(&storage).is_empty());

    wal.release(1..=8).expect("release the first segments");
    wal.settle();
    let first = segment_removers(&storage);
    assert!(!first.is_empty(), "released segments were deleted");
    assert!(first.iter().all(|thread| thread == "pauselog-wal-janitor"), "deleted by the janitor: {first:?}");
    assert_eq!(janitor_threads(), 0, "the janitor ended with its work");

    wal.release(1..=14).expect("release more segments");
    wal.settle();
    let second = segment_removers(&storage);
    assert!(second.len() > first.len(), "the next deletion started the janitor again");
    assert!(second.iter().all(|thread| thread == "pauselog-wal-janitor"), "deleted by the janitor: {second:?}");
    assert_eq!(janitor_threads(), 0, "and it ended again");
    let first_live = wal.first_live_seq().expect("records left");

    wal.close().expect("close");
    assert_eq!(janitor_threads(), 0);
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert_eq!(wal.first_live_seq(), Some(first_live));
}
