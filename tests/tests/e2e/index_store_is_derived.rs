//! R19a: the logs are the source of truth; the key index (run files under
//! `<dir>/maps/<map>/keys`) is derived. Deleting it or damaging it loses
//! nothing — the missing ranges are rebuilt from the data log — and a crash
//! between a log append and the index update is repaired on open.

use std::collections::BTreeMap;
use std::path::Path;

use pauselog::{CatchupError, MapConfig, MapState, Query, QueuedRecord, ResumeMode, Submitted, TableMap};
use pauselog_tests::*;

const MAP: &str = "customers";
const KEYS: [&str; 4] = ["USMF|CUST-1", "USMF|CUST-2", "USMF|CUST-3", "DEMF|CUST-9"];

/// Everything the index serves: the pages, the per-key filters and totals,
/// the catch-up errors (all and per key).
#[derive(Debug, PartialEq)]
struct Served {
    state: MapState,
    queued: Vec<QueuedRecord>,
    first_page: (Vec<u64>, u64),
    per_key: Vec<(Vec<u64>, u64)>,
    errors: Vec<CatchupError>,
    errors_per_key: Vec<(Vec<u64>, u64)>,
}

fn served(map: &TableMap) -> Served {
    let first = map.queued(&Query::default().limit(7)).unwrap();
    let per_key = KEYS
        .iter()
        .map(|key| {
            let seqs = all_queued(map, Some(key)).iter().map(|r| r.seq).collect();
            (seqs, map.queued(&Query::default().key(*key)).unwrap().total)
        })
        .collect();
    let errors_per_key = KEYS
        .iter()
        .map(|key| {
            let seqs = all_errors(map, Some(key)).iter().map(|e| e.record.seq).collect();
            (seqs, map.catchup_errors(&Query::default().key(*key)).unwrap().total)
        })
        .collect();
    Served {
        state: map.state(),
        queued: all_queued(map, None),
        first_page: (first.items.iter().map(|r| r.seq).collect(), first.total),
        per_key,
        errors: all_errors(map, None),
        errors_per_key,
    }
}

/// A paused map with queued records of every key and catch-up errors of one
/// key; returns what it serves, after closing the engine.
fn leave_queue_and_errors(dir: &Path) -> Served {
    let clock = clock();
    let engine = engine(dir, &clock);
    let dest = TestDest::new();
    let map = open_map(&engine, MAP, MapConfig::default(), &dest);
    map.pause().unwrap();
    for n in 0..40 {
        map.submit(rec(KEYS[(n % 3) as usize], n)).unwrap();
    }
    dest.reject(KEYS[1]);
    map.resume(ResumeMode::CatchUp).unwrap();
    wait_running(&map);
    map.pause().unwrap();
    for n in 40..100 {
        map.submit(rec(KEYS[(n % 4) as usize], n)).unwrap();
    }
    let before = served(&map);
    assert!(!before.errors.is_empty() && before.queued.len() == 60, "{before:?}");
    drop(map);
    engine.close().unwrap();
    before
}

fn reopen_served(dir: &Path) -> Served {
    let engine = engine(dir, &clock());
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    let now = served(&map);
    drop(map);
    engine.close().unwrap();
    now
}

#[test]
fn deleting_the_index_store_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = leave_queue_and_errors(dir.path());
    let index = key_index_dir(dir.path());
    assert!(walk(&index).iter().any(|f| f.extension().is_some_and(|e| e == "run")), "run files in {index:?}");
    std::fs::remove_dir_all(&index).unwrap();

    assert_eq!(reopen_served(dir.path()), before);
    assert_eq!(reopen_served(dir.path()), before, "and the rebuilt store serves the same on the next open");
}

#[test]
fn garbage_in_the_index_store_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = leave_queue_and_errors(dir.path());
    let mut damaged = 0;
    for entry in walk(&key_index_dir(dir.path())) {
        let len = std::fs::metadata(&entry).unwrap().len().max(64) as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(&entry, garbage).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "the index store has files");

    assert_eq!(reopen_served(dir.path()), before);
}

fn key_index_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("maps").join(MAP).join("keys")
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The child of [`crash_between_append_and_index_update_is_repaired_on_open`]:
/// submits to an already paused map until killed.
#[test]
fn crash_child() {
    let Some((_, dir)) = crash_child_args() else { return };
    let engine = engine(&dir, &clock());
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    std::thread::scope(|scope| {
        for writer in 0..2u64 {
            let map = map.clone();
            scope.spawn(move || {
                for n in 0..1_000_000u64 {
                    let key = KEYS[((n + writer) % 4) as usize];
                    let Submitted::Queued { seq } = map.submit(rec(key, n)).unwrap() else { panic!("paused") };
                    say("ACK", &[&seq, &key]);
                }
            });
        }
    });
}

#[test]
fn crash_between_append_and_index_update_is_repaired_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // A clean close first, so the index store holds a checkpoint the crash
    // then leaves behind the log.
    let before = leave_queue_and_errors(&dir);
    let child = child_test_name(module_path!(), "crash_child");
    let events = run_and_kill(&child, "index", &dir, |events| events.len() >= 200);
    let acked: BTreeMap<u64, String> = events.iter().map(|e| (e.num(0), e.fields[1].clone())).collect();

    let after = reopen_served(&dir);
    assert_eq!(after.errors, before.errors);
    let by_seq: BTreeMap<u64, &str> = after.queued.iter().map(|r| (r.seq, r.key.as_str())).collect();
    for (seq, key) in &acked {
        assert_eq!(by_seq.get(seq).copied(), Some(key.as_str()), "acknowledged seq {seq}");
    }
    for (key, (seqs, total)) in KEYS.iter().zip(&after.per_key) {
        let expected: Vec<u64> = after.queued.iter().filter(|r| r.key == *key).map(|r| r.seq).collect();
        assert_eq!((seqs, *total), (&expected, expected.len() as u64), "key {key}");
    }
    assert_eq!(after.first_page.1, after.queued.len() as u64);
}
