//! R15, R16b under Strict ordering: a record the catch-up held back behind
//! its key's errors must not stay a plain catch-up error once a newer
//! record of that key has been delivered, whatever happened to the errors
//! that held it back meanwhile; otherwise a plain retry delivers the older
//! record over the newer one.

use pauselog::{ErrorReason, MapConfig, ResumeMode, Selection, Submitted};
use pauselog_tests::*;

#[test]
fn a_held_back_record_is_superseded_when_a_newer_one_of_its_key_is_delivered() {
    let fixture = Fixture::new(MapConfig { lanes: 1, replay_batch_records: 2, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    // K has a catch-up error.
    map.pause().unwrap();
    map.submit(rec("K", 1)).unwrap();
    map.resume(ResumeMode::SkipToLivePreserve).unwrap();
    // A catch-up stalls on X; in the same batch it holds back K's record.
    map.pause().unwrap();
    map.submit(rec("X", 2)).unwrap();
    let Submitted::Queued { seq: held } = map.submit(rec("K", 3)).unwrap() else { panic!("paused") };
    dest.set_unavailable(true);
    map.resume(ResumeMode::CatchUp).unwrap();
    while map.stats().last_error.is_none() {
        std::thread::yield_now();
    }
    // The error that held it back goes; a newer record of K joins the tail.
    assert_eq!(map.discard_errors(Selection::Key("K".into())).unwrap(), 1);
    let Submitted::Queued { seq: newer } = map.submit(rec("K", 4)).unwrap() else { panic!("catching up") };
    dest.set_unavailable(false);
    wait_running(map);

    let delivered_k: Vec<u64> = dest.delivered().iter().filter(|r| r.key == "K").map(|r| r.seq).collect();
    let errors = all_errors(map, Some("K"));
    if delivered_k.contains(&newer) {
        for error in &errors {
            assert!(
                error.record.seq > newer || error.reason == ErrorReason::Superseded,
                "seq {} stays {:?} after the newer seq {newer} of its key was delivered",
                error.record.seq,
                error.reason
            );
        }
    }
    map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
    assert_per_key_order(&dest.delivered(), "a plain retry after the catch-up");
    assert!(held < newer);
}
