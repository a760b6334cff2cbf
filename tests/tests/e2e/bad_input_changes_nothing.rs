//! R20: bad input gets a clear, typed error and changes nothing: an empty or
//! over-long key, an oversized payload, an invalid map name, a call the
//! map's state does not allow, a bad page limit or cursor, a data directory
//! already in use.

use pauselog::{
    Engine, Error, MapConfig, MapStats, Op, Query, QueuedRecord, Record, ResumeMode, Submitted, TableMap,
    KEY_BYTES_MAX, PAYLOAD_BYTES_MAX,
};
use pauselog_tests::*;

const MAP: &str = "customers";

fn snapshot(map: &TableMap) -> (MapStats, Vec<QueuedRecord>) {
    (map.stats(), all_queued(map, None))
}

/// A paused map with three queued records.
fn paused_map(engine: &Engine) -> TableMap {
    let map = open_map(engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    for n in 0..3 {
        map.submit(rec("USMF|CUST-1", n)).unwrap();
    }
    map
}

fn assert_invalid_input<T: std::fmt::Debug>(result: pauselog::Result<T>, what: &str) {
    match result {
        Err(Error::InvalidInput(message)) => assert!(!message.is_empty(), "{what}"),
        other => panic!("{what}: expected Error::InvalidInput, got {other:?}"),
    }
}

#[test]
fn bad_keys_and_payloads_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let map = paused_map(&engine);
    let before = snapshot(&map);

    assert_invalid_input(map.submit(Record::new("", Op::Create, b"x".to_vec())), "empty key");
    let long_key = "k".repeat(KEY_BYTES_MAX + 1);
    assert_invalid_input(map.submit(Record::new(long_key, Op::Create, b"x".to_vec())), "1025-byte key");
    let big = vec![0u8; PAYLOAD_BYTES_MAX + 1];
    assert_invalid_input(map.submit(Record::new("USMF|CUST-1", Op::Create, big)), "16 MiB + 1 payload");
    assert_eq!(snapshot(&map), before);

    // The limits themselves are allowed.
    let longest_key = "é".repeat(KEY_BYTES_MAX / 2); // 1024 bytes of UTF-8
    assert!(matches!(map.submit(Record::new(longest_key, Op::Delete, Vec::new())), Ok(Submitted::Queued { .. })));
    let largest = vec![7u8; PAYLOAD_BYTES_MAX];
    assert!(matches!(map.submit(Record::new("USMF|CUST-1", Op::Create, largest)), Ok(Submitted::Queued { .. })));
}

#[test]
fn bad_keys_are_refused_live_without_calling_the_destination() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let dest = TestDest::new();
    let map = open_map(&engine, MAP, MapConfig::default(), &dest);
    assert_invalid_input(map.submit(Record::new("", Op::Create, Vec::new())), "empty key while Running");
    assert_eq!(dest.calls(), 0);
}

#[test]
fn bad_map_names_are_refused_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let _map = paused_map(&engine);
    let names_before = engine.map_names().unwrap();
    let too_long = "m".repeat(65);
    for name in ["", ".", "..", "a/b", "../escape", "a b", too_long.as_str()] {
        assert_invalid_input(engine.table_map(name, MapConfig::default(), TestDest::new()), &format!("name {name:?}"));
    }
    assert_eq!(engine.map_names().unwrap(), names_before);
    let longest = "m".repeat(64);
    assert!(engine.table_map(&longest, MapConfig::default(), TestDest::new()).is_ok(), "64 characters are fine");
    assert!(engine.table_map("sales-orders_v2.1", MapConfig::default(), TestDest::new()).is_ok());
}

#[test]
fn calls_the_state_does_not_allow_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let running = open_map(&engine, "running", MapConfig::default(), &TestDest::new());
    let before = snapshot(&running);
    for mode in [ResumeMode::CatchUp, ResumeMode::SkipToLivePreserve, ResumeMode::SkipToLiveDiscard] {
        match running.resume(mode) {
            Err(Error::InvalidState { state, action, .. }) => {
                assert_eq!((state.as_str(), action.as_str()), ("Running", "resume"))
            }
            other => panic!("resume({mode:?}) while Running: {other:?}"),
        }
    }
    assert_eq!(snapshot(&running), before);

    let paused = paused_map(&engine);
    let before = snapshot(&paused);
    for preserve in [true, false] {
        match paused.skip_to_live(preserve) {
            Err(Error::InvalidState { state, action, .. }) => {
                assert_eq!((state.as_str(), action.as_str()), ("Paused", "skip_to_live"))
            }
            other => panic!("skip_to_live({preserve}) while Paused: {other:?}"),
        }
    }
    assert_eq!(snapshot(&paused), before);
}

#[test]
fn page_limits_outside_1_to_1000_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let map = paused_map(&engine);
    for limit in [0, 1001] {
        assert_invalid_input(map.queued(&Query::default().limit(limit)), &format!("queued limit {limit}"));
        assert_invalid_input(map.catchup_errors(&Query::default().limit(limit)), &format!("errors limit {limit}"));
    }
    assert_eq!(map.queued(&Query::default().limit(1000)).unwrap().items.len(), 3);
    assert_eq!(map.queued(&Query::default().limit(1)).unwrap().items.len(), 1);
}

fn assert_bad_cursor<T: std::fmt::Debug>(result: pauselog::Result<T>, what: &str) {
    match result {
        Err(Error::BadCursor(reason)) => assert!(!reason.is_empty(), "{what}"),
        other => panic!("{what}: expected Error::BadCursor, got {other:?}"),
    }
}

#[test]
fn malformed_tampered_and_foreign_cursors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let map = paused_map(&engine);
    map.submit(rec("USMF|CUST-2", 9)).unwrap();
    map.submit(rec("USMF|CUST-2", 10)).unwrap();
    let cursor = map.queued(&Query::default().key("USMF|CUST-1").limit(1)).unwrap().next.expect("more pages");

    assert_bad_cursor(map.queued(&Query::default().after("not a cursor")), "malformed");
    assert_bad_cursor(map.queued(&Query::default().after("")), "empty");
    let mut tampered = cursor.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_bad_cursor(map.queued(&Query::default().key("USMF|CUST-1").after(tampered)), "tampered");
    assert_bad_cursor(map.queued(&Query::default().key("USMF|CUST-2").after(cursor.clone())), "other key");
    assert_bad_cursor(map.queued(&Query::default().after(cursor.clone())), "key cursor without the key filter");
    assert_bad_cursor(map.catchup_errors(&Query::default().after("zz")), "errors view");
    // The good cursor still works.
    let next = map.queued(&Query::default().key("USMF|CUST-1").after(cursor)).unwrap();
    assert_eq!(next.items.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
}

#[test]
fn second_engine_on_a_directory_in_use_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), &clock());
    let map = paused_map(&engine);
    let before = snapshot(&map);

    match Engine::open(dir.path()) {
        Err(Error::Locked { dir: locked, holder }) => {
            assert_eq!(locked, dir.path());
            assert!(holder.contains(&std::process::id().to_string()), "holder names the pid: {holder}");
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    assert_eq!(snapshot(&map), before);
    // The first engine still works, and keeps its lock.
    assert_eq!(map.submit(rec("USMF|CUST-1", 3)).unwrap(), Submitted::Queued { seq: 4 });
    assert_eq!(map.queued(&Query::default()).unwrap().total, 4);
    assert!(matches!(Engine::open(dir.path()), Err(Error::Locked { .. })));
    drop(map);
    engine.close().unwrap();
    let reopened = Engine::open(dir.path()).expect("free again after close");
    drop(reopened);
}
