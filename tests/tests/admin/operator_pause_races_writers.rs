//! R24 target, R2, R5: an operator's pause through the admin socket, while
//! writers submit, takes effect before the next submit returns: every
//! submit that starts after the API answered is queued, and no record is
//! lost or doubled across the switch.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use pauselog::{MapConfig, Submitted};
use pauselog_admin::schema::MapStateName;
use pauselog_tests::{all_queued, rec, Fixture};

use super::client;

const WRITERS: u64 = 4;

/// What one writer saw: payloads acknowledged live before the pause, (seq,
/// payload) acknowledged as queued, and live answers to submits that
/// started after the pause answered (must be none).
type WriterOutcome = (Vec<String>, Vec<(u64, String)>, u64);
/// Records each writer submits after the pause answered.
const AFTER_PAUSE: u64 = 200;

#[test]
fn pause_through_the_socket_queues_every_later_submit_and_loses_nothing() {
    let Fixture { dir, engine, dest, map, .. } = Fixture::named("customers", MapConfig::default());
    let paused = AtomicBool::new(false);
    let live_submits = AtomicU64::new(0);

    let outcomes: Vec<WriterOutcome> = thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (map, paused, live_submits) = (&map, &paused, &live_submits);
                scope.spawn(move || {
                    let (mut live, mut queued, mut late_live) = (Vec::new(), Vec::new(), 0u64);
                    let mut after_pause = 0;
                    for n in 0.. {
                        let started_after_pause = paused.load(Ordering::SeqCst);
                        let record = rec(&format!("key-{}", n % 7), writer * 1_000_000 + n);
                        let payload = String::from_utf8(record.payload.clone()).expect("ASCII payload");
                        match map.submit(record).expect("submit") {
                            Submitted::Live if started_after_pause => late_live += 1,
                            Submitted::Live => {
                                live.push(payload);
                                live_submits.fetch_add(1, Ordering::SeqCst);
                            }
                            Submitted::Queued { seq } => queued.push((seq, payload)),
                        }
                        if started_after_pause {
                            after_pause += 1;
                            if after_pause == AFTER_PAUSE {
                                break;
                            }
                        }
                    }
                    (live, queued, late_live)
                })
            })
            .collect();
        while live_submits.load(Ordering::SeqCst) < 100 * WRITERS {
            thread::yield_now();
        }
        let status = client(dir.path()).pause("customers").expect("pause through the socket");
        paused.store(true, Ordering::SeqCst);
        assert_eq!(status.state, MapStateName::Paused, "the answer shows the map paused");
        writers.into_iter().map(|w| w.join().expect("writer")).collect()
    });

    let late_live: u64 = outcomes.iter().map(|(_, _, late)| late).sum();
    assert_eq!(late_live, 0, "a submit that started after the pause answered was delivered live");
    let acked_live: HashSet<String> = outcomes.iter().flat_map(|(live, _, _)| live.iter().cloned()).collect();
    let delivered: HashSet<String> = dest.delivered_payloads().into_iter().collect();
    assert_eq!(delivered.len(), dest.delivered().len(), "no live record was delivered twice");
    assert_eq!(delivered, acked_live, "every live acknowledgement was delivered, nothing else");
    let acked_queued: HashSet<(u64, String)> = outcomes.iter().flat_map(|(_, q, _)| q.iter().cloned()).collect();
    assert!(acked_queued.len() as u64 >= WRITERS * AFTER_PAUSE);
    let stored: HashSet<(u64, String)> = all_queued(&map, None)
        .into_iter()
        .map(|r| (r.seq, String::from_utf8(r.payload).expect("ASCII payload")))
        .collect();
    assert_eq!(stored, acked_queued, "the queue holds exactly the acknowledged queued records");
    drop(map);
    engine.close().expect("close");
}
