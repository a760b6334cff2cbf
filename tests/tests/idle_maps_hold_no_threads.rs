//! Table maps that only sync live, or only queue, hold no thread of their
//! own: a sync service may run hundreds of maps in one engine. Background
//! threads start with the work that needs them (a catch-up, a retry, the
//! deletion of drained segments) and end with it.
//!
//! Its own test binary (one test), so no other test's engine adds threads
//! to the ones this process counts.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::{Duration, Instant};

use pauselog::{Engine, MapConfig, ResumeMode, SyncPolicy};
use pauselog_tests::{clock, engine, open_map, rec, wait_running, TestDest, WAIT};

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

/// The names once they equal `expected`, or after [`WAIT`]: a worker
/// whose work is done ends on its own, a moment after the work.
fn thread_names_once(expected: &[String], also: impl Fn() -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let names = thread_names();
        if (names == expected && also()) || Instant::now() > deadline {
            return names;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn segment_count(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir)
        .expect("list the data log")
        .filter(|entry| entry.as_ref().expect("entry").path().extension().is_some_and(|x| x == "seg"))
        .count()
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

    // A map that synced live (more seqs than markers fill, so its data log
    // skips ahead: R21), paused, queued several segments, caught up and
    // went idle, twice: the replay and the data log's janitor, which
    // deleted the drained segments, ended with their work.
    let small = tempfile::tempdir().expect("temp dir");
    let small_engine = Engine::builder(small.path())
        .sync(SyncPolicy::Never)
        .clock(clock.clone())
        .tick_interval(None)
        .segment_bytes_max(64 * 1024)
        // Its server thread names itself once it runs, perhaps after a
        // look at the threads: it would seem to start later.
        .admin_socket(false)
        .open()
        .expect("engine");
    let map = open_map(&small_engine, "drained", MapConfig::default(), &dest);
    let data_dir = small.path().join("maps/drained/data");
    for round in 0..2u64 {
        for n in 0..300 {
            map.submit(rec("live", round * 10_000 + n)).expect("live submit");
        }
        map.pause().expect("pause");
        for n in 0..8000 {
            map.submit(rec(&format!("k{}", n % 50), round * 10_000 + n)).expect("queued submit");
        }
        assert!(segment_count(&data_dir) > 3, "round {round}: the backlog spans several segments");
        map.resume(ResumeMode::CatchUp).expect("catch up");
        wait_running(&map);
        let idle = thread_names_once(&before, || segment_count(&data_dir) <= 2);
        assert_eq!(idle, before, "round {round}: threads left after the map drained and went idle");
        assert!(segment_count(&data_dir) <= 2, "round {round}: the drained segments were deleted");
    }
}
