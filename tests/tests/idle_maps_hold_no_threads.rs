//! Table maps that only sync live, or only queue, hold no thread of their
//! own: a sync service may run hundreds of maps in one engine. Background
//! threads start with the work that needs them (a catch-up, a retry, the
//! deletion of drained segments) and end with it.
//!
//! Its own test binary (one test), so no other test's engine adds threads
//! to the ones this process counts.
#![cfg(target_os = "linux")]

use pauselog::MapConfig;
use pauselog_tests::{clock, engine, open_map, rec, TestDest};

/// Names of this process's pauselog threads (`/proc` keeps 15 bytes of
/// each). sled's I/O pool is left out: it grows and shrinks on its own.
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("list this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.expect("task").path().join("comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .filter(|name| name.starts_with("pauselog"))
        .collect();
    names.sort();
    names
}

#[test]
fn maps_that_sync_live_or_queue_add_no_threads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock();
    let engine = engine(dir.path(), &clock);
    let dest = TestDest::new();
    let warm_up = open_map(&engine, "warm-up", MapConfig::default(), &dest);
    warm_up.submit(rec("k", 0)).expect("live submit");
    let before = thread_names();

    let maps: Vec<_> = (0..16).map(|i| open_map(&engine, &format!("map-{i}"), MapConfig::default(), &dest)).collect();
    for (i, map) in maps.iter().enumerate() {
        map.submit(rec("live", i as u64)).expect("live submit");
        map.pause().expect("pause");
        map.submit(rec("queued", i as u64)).expect("queued submit");
    }
    let after = thread_names();
    assert_eq!(after, before, "16 more maps, live and paused, started threads");
}
