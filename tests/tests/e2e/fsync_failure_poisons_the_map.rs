//! R17: an fsync failure is never retried on the same file: the map refuses
//! further writes with a clear error until the engine is reopened, and
//! nothing acknowledged before it is lost.

use std::sync::Arc;

use pauselog::{Engine, Error, MapConfig, Query, Submitted, SyncPolicy};
use pauselog_tests::*;

#[test]
fn a_failed_fsync_refuses_writes_until_reopen_and_keeps_the_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let storage = FaultyStorage::new();
    let acked: Vec<u64> = {
        let engine = Engine::builder(dir.path())
            .sync(SyncPolicy::Always)
            .clock(clock.clone())
            .tick_interval(None)
            .storage(storage.clone() as Arc<dyn pauselog::Storage>)
            .open()
            .unwrap();
        let map = open_map(&engine, "m", MapConfig::default(), &TestDest::new());
        map.pause().unwrap();
        let acked: Vec<u64> = (1..=20)
            .map(|n| match map.submit(rec("K", n)).unwrap() {
                Submitted::Queued { seq } => seq,
                Submitted::Live => unreachable!("paused"),
            })
            .collect();
        storage.fail_syncs();
        let failed = map.submit(rec("K", 21));
        assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
        for n in 22..25 {
            let refused = map.submit(rec("K", n));
            assert!(matches!(refused, Err(Error::Poisoned { .. })), "no retry on the same file: {refused:?}");
        }
        let message = map.submit(rec("K", 30)).unwrap_err().to_string();
        assert!(message.contains("Reopen"), "the error says what to do: {message}");
        drop(map);
        drop(engine); // close fails to sync: logged, nothing more is acknowledged
        acked
    };
    let engine = engine(dir.path(), &clock);
    let map = open_map(&engine, "m", MapConfig::default(), &TestDest::new());
    let queued: Vec<u64> = map.queued(&Query::default().limit(100)).unwrap().items.iter().map(|r| r.seq).collect();
    for seq in &acked {
        assert!(queued.contains(seq), "acknowledged seq {seq} survived");
    }
    assert!(matches!(map.submit(rec("K", 40)).unwrap(), Submitted::Queued { .. }), "writable again after reopen");
}
