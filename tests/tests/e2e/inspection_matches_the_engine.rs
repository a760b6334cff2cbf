//! docs/rules.md §8, R10, R11: the read-only inspection (`pauselog status`, `queued`,
//! `errors`) shows what the engine itself shows: the same counts and bytes,
//! and page by page the same records with the same cursors, filtered by key
//! or not. The inspection reads the logs' indexes and the records of each
//! page; the engine answers from its key indexes.

use pauselog::{Engine, MapConfig, MapState, Query, ResumeMode};
use pauselog_tests::*;

/// 40 keys, one of which the destination rejects; small segments, so that
/// the lists span sealed segments, some of them released.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock();
    let engine = Engine::builder(dir.path())
        .clock(clock.clone())
        .tick_interval(None)
        .segment_bytes_max(8 * 1024)
        .open()
        .expect("open");
    let dest = TestDest::new();
    let map = open_map(&engine, "m", MapConfig::default(), &dest);
    let fixture = Fixture { map, engine, dest, clock, dir };
    fixture.dest.reject("K7");
    fixture.queue(600, |n| format!("K{}", n % 40));
    fixture.map.resume(ResumeMode::CatchUp).expect("resume");
    wait_running(&fixture.map);
    fixture.map.pause().expect("pause again");
    for n in 0..300 {
        fixture.map.submit(rec(&format!("K{}", n % 40), 1000 + n)).expect("queued");
    }
    fixture
}

fn queries() -> Vec<Query> {
    let mut queries = vec![Query::default(), Query::default().limit(7), Query::default().limit(1000)];
    for key in ["K7", "K8", "K39", "missing"] {
        queries.push(Query::default().key(key).limit(3));
    }
    queries
}

#[test]
fn status_and_every_page_match_what_the_engine_shows() {
    let fixture = fixture();
    let stats = fixture.map.stats();
    assert!(stats.queued_records == 300 && stats.error_records > 0, "{stats:?}");
    let segments = std::fs::read_dir(fixture.dir.path().join("maps/m/data")).expect("data log").count();
    assert!(segments > 10, "the lists span many segments: {segments} files");
    let inspector = pauselog::inspect_map(fixture.dir.path(), "m").expect("inspect while the engine runs");
    let reports = pauselog::inspect(fixture.dir.path()).expect("status");
    let report = &reports[0];
    assert_eq!(
        (report.queued_records, report.queued_bytes, report.error_records, report.error_bytes),
        (stats.queued_records, stats.queued_bytes, stats.error_records, stats.error_bytes)
    );
    assert!(matches!(report.state, MapState::Paused { .. }), "{:?}", report.state);

    for query in queries() {
        // Follow the cursors of both to the end: the same pages, the same cursors.
        let (mut engine_query, mut inspector_query) = (query.clone(), query.clone());
        loop {
            let expected = fixture.map.queued(&engine_query).expect("engine page");
            let page = inspector.queued(&inspector_query).expect("inspector page");
            assert_eq!(
                (&page.items, &page.next, page.total),
                (&expected.items, &expected.next, expected.total),
                "{query:?}"
            );
            let Some(next) = expected.next else { break };
            (engine_query, inspector_query) = (engine_query.after(next.clone()), inspector_query.after(next));
        }
        let (mut engine_query, mut inspector_query) = (query.clone(), query.clone());
        loop {
            let expected = fixture.map.catchup_errors(&engine_query).expect("engine errors page");
            let page = inspector.catchup_errors(&inspector_query).expect("inspector errors page");
            assert_eq!(page.items.len(), expected.items.len(), "{query:?}");
            for (found, wanted) in page.items.iter().zip(&expected.items) {
                assert_eq!(
                    (&found.record, found.reason, found.attempts),
                    (&wanted.record, wanted.reason, wanted.attempts)
                );
            }
            assert_eq!((&page.next, page.total), (&expected.next, expected.total), "{query:?}");
            let Some(next) = expected.next else { break };
            (engine_query, inspector_query) = (engine_query.after(next.clone()), inspector_query.after(next));
        }
    }
}
