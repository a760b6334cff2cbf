//! R2: while Paused, `submit` appends to the queue and returns
//! `Queued { seq }` once durable; nothing reaches the destination. R17:
//! concurrent submitters under `SyncPolicy::Always` all get distinct seqs.

use pauselog::{MapConfig, MapState, PauseReason, Query, Submitted};
use pauselog_tests::*;

#[test]
fn paused_map_queues_and_delivers_nothing() {
    let Fixture { map, dest, .. } = &Fixture::named("customers", MapConfig::default());
    map.pause().unwrap();
    assert!(matches!(map.state(), MapState::Paused { reason: PauseReason::Manual, blocked: None, .. }));
    for n in 1..=5 {
        assert_eq!(map.submit(rec("USMF|CUST-1", n)).unwrap(), Submitted::Queued { seq: n });
    }
    assert_eq!(dest.calls(), 0, "nothing is sent while paused");
    let page = map.queued(&Query::default()).unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.items.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(page.items[0].queued_at, epoch(), "queued_at comes from the engine clock");
}

#[test]
fn acknowledged_records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    {
        let engine = engine(dir.path(), &clock);
        let map = open_map(&engine, "customers", MapConfig::default(), &TestDest::new());
        map.pause().unwrap();
        for n in 1..=100 {
            map.submit(rec(&format!("K{}", n % 7), n)).unwrap();
        }
    }
    let engine = engine(dir.path(), &clock);
    let map = open_map(&engine, "customers", MapConfig::default(), &TestDest::new());
    let page = map.queued(&Query::default().limit(1000)).unwrap();
    assert_eq!(page.total, 100);
    for (i, record) in page.items.iter().enumerate() {
        let n = i as u64 + 1;
        assert_eq!(
            (record.seq, record.key.clone(), record.payload.clone()),
            (n, format!("K{}", n % 7), format!("payload-{n}").into_bytes())
        );
    }
}

#[test]
fn concurrent_submitters_get_distinct_gap_free_seqs() {
    let Fixture { map, .. } = &Fixture::named("customers", MapConfig::default());
    map.pause().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let map = map.clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|i| match map.submit(rec(&format!("T{t}"), i)).unwrap() {
                        Submitted::Queued { seq } => seq,
                        Submitted::Live => panic!("paused map delivered live"),
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=1600).collect::<Vec<u64>>());
}
