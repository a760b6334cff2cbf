//! R23: with `MapConfig::live_pass_through`, while a map catches up a new
//! record whose key has nothing queued, nothing in flight and no catch-up
//! errors is delivered live at once; any other record goes to the tail.
//! Per-key order holds, every record is delivered once, and the drain still
//! ends with the atomic switch (R3).

use std::collections::HashMap;

use pauselog::{ErrorReason, MapConfig, MapState, Record, ResumeMode, Selection, Submitted};
use pauselog_tests::*;

fn pass_through() -> MapConfig {
    MapConfig { live_pass_through: true, ..MapConfig::default() }
}

#[test]
fn a_key_without_backlog_goes_live_while_the_backlog_waits() {
    let fixture = Fixture::new(pass_through());
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(100, |n| format!("A{}", n % 10));
    dest.close_gate_for(|record| record.key.starts_with('A'));
    map.resume(ResumeMode::CatchUp).unwrap();
    assert_eq!(map.submit(rec("B1", 1)).unwrap(), Submitted::Live, "no backlog: live at once");
    assert!(matches!(map.state(), MapState::CatchingUp { .. }), "the backlog is still held");
    assert_eq!(dest.delivered_payloads(), ["payload-1"]);
    assert!(matches!(map.submit(rec("A3", 2)).unwrap(), Submitted::Queued { .. }), "A3 has a backlog");
    assert_eq!(map.stats().passed_through, 1);
    dest.open_gate();
    wait_running(map);
    assert_eq!(dest.delivered().len(), 102);
    assert_per_key_order(&dest.delivered(), "pass-through");
    let seqs = sorted(dest.delivered_seqs());
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "every delivery has its own seq (R21)");
}

#[test]
fn pass_through_is_off_by_default() {
    let fixture = Fixture::new(MapConfig::default());
    let (map, dest) = (&fixture.map, &fixture.dest);
    fixture.queue(10, |n| format!("A{n}"));
    dest.close_gate();
    map.resume(ResumeMode::CatchUp).unwrap();
    assert!(matches!(map.submit(rec("B1", 1)).unwrap(), Submitted::Queued { .. }));
    dest.open_gate();
    wait_running(map);
    assert_eq!(map.stats().passed_through, 0);
}

#[test]
fn a_key_with_catch_up_errors_does_not_pass_through() {
    let fixture = Fixture::new(pass_through());
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    map.submit(rec("E", 1)).unwrap();
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    fixture.queue(10, |n| format!("A{n}"));
    dest.close_gate_for(|record| record.key.starts_with('A'));
    map.resume(ResumeMode::CatchUp).unwrap();
    assert!(matches!(map.submit(rec("E", 2)).unwrap(), Submitted::Queued { .. }), "E has an error");
    dest.open_gate();
    wait_running(map);
    // Strict ordering held the newer E back behind the old one; a retry
    // applies both, in order.
    let reasons: Vec<ErrorReason> = all_errors(map, None).iter().map(|e| e.reason).collect();
    assert_eq!(reasons, [ErrorReason::Preserved, ErrorReason::BlockedByEarlierFailure]);
    let job = map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_eq!(job.delivered, 2);
    let e: Vec<String> =
        dest.delivered().into_iter().filter(|r| r.key == "E").map(|r| String::from_utf8(r.payload).unwrap()).collect();
    assert_eq!(e, ["payload-1", "payload-2"]);
}

/// Writers on keys with and without a backlog while the catch-up drains:
/// each key's records reach the destination in the order its writer
/// submitted them, each once.
#[test]
fn concurrent_writers_keep_per_key_order() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(dir.path(), &clock(), pauselog::SyncPolicy::Never);
        let dest = TestDest::new();
        let map = open_map(&engine, "m", pass_through(), &dest);
        map.pause().unwrap();
        for n in 0..2000 {
            map.submit(rec(&format!("W{}-{}", n % 4, n % 7), n)).unwrap();
        }
        // The backlog's keys are held at the destination while the writers
        // run, so the catch-up lasts as long as they do.
        let backlog_key = |key: &str| key.rsplit_once('-').is_some_and(|(_, n)| n.parse::<u64>().is_ok_and(|n| n < 7));
        dest.close_gate_for(move |record| backlog_key(&record.key));
        map.resume(ResumeMode::CatchUp).unwrap();
        let sent: Vec<Vec<(String, String)>> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let map = &map;
                    scope.spawn(move || {
                        let mut sent = Vec::new();
                        for i in 0..300 {
                            // Keys W{w}-0..6 have a backlog; W{w}-7..13 do not.
                            let key = format!("W{w}-{}", i % 14);
                            let payload = format!("w{w}-{i}");
                            map.submit(Record::new(key.clone(), pauselog::Op::Update, payload.clone().into_bytes()))
                                .unwrap();
                            sent.push((key, payload));
                        }
                        sent
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        dest.open_gate();
        wait_running(&map);
        let mut got: HashMap<String, Vec<String>> = HashMap::new();
        for record in dest.delivered() {
            let payload = String::from_utf8(record.payload.clone()).unwrap();
            if payload.starts_with('w') {
                got.entry(record.key.clone()).or_default().push(payload);
            }
        }
        for (key, payloads) in sent.iter().flatten().fold(HashMap::<&str, Vec<&str>>::new(), |mut by_key, (k, p)| {
            by_key.entry(k).or_default().push(p);
            by_key
        }) {
            let delivered: Vec<&str> = got.get(key).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default();
            assert_eq!(delivered, payloads, "round {round}: key {key}");
        }
        assert_per_key_order(&dest.delivered(), &format!("round {round}"));
        assert!(map.stats().passed_through > 0, "round {round}: some keys passed through");
        drop(map);
        engine.close().unwrap();
    }
}
