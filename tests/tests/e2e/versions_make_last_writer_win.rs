//! R21: every record a map delivers, live or queued, carries a seq from one
//! per-map sequence that strictly increases in submit order and is never
//! reused, across crashes too. A destination that applies a record only
//! when its seq is greater than the one it stored for the key (the recipe
//! of `Destination`'s docs) ends with the source's last write per key,
//! through live sync, catch-up, skips to live, retries and SIGKILLs.
//!
//! The child cycles through live sync, a pause, a catch-up (sometimes cut
//! short by a skip to live that preserves, followed by a retry in the
//! background) while writers keep submitting, and prints `@@ACK key n` for
//! each acknowledged write. Its destination appends every delivery to a
//! file, which survives the kill. The parent kills it, reopens, finishes
//! (catch-up, retry), and checks the file.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pauselog::{DeliveryError, Destination, MapConfig, MapState, QueuedRecord, Record, ResumeMode, Selection};
use pauselog_tests::*;

const MAP: &str = "lww";
const WRITERS: u64 = 4;
const KEYS_PER_WRITER: u64 = 100;

/// Appends `seq key n` for every record it accepts; in the child each
/// call costs a round trip, so catch-ups last long enough to be cut short.
#[derive(Debug)]
struct FileDest {
    file: Mutex<std::fs::File>,
    round_trip: std::time::Duration,
}

impl FileDest {
    fn open(path: &Path, round_trip: std::time::Duration) -> Arc<FileDest> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("deliveries file");
        Arc::new(FileDest { file: Mutex::new(file), round_trip })
    }
}

impl Destination for FileDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.deliver_batch(std::slice::from_ref(record)).remove(0)
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        std::thread::sleep(self.round_trip);
        let mut lines = String::new();
        for record in batch {
            lines.push_str(&format!("{} {} {}\n", record.seq, record.key, String::from_utf8_lossy(&record.payload)));
        }
        self.file.lock().unwrap().write_all(lines.as_bytes()).expect("append deliveries");
        vec![Ok(()); batch.len()]
    }
}

fn deliveries_path(dir: &Path) -> PathBuf {
    dir.with_extension("deliveries")
}

fn child_name() -> String {
    child_test_name(module_path!(), "lww_child")
}

/// The child; returns at once in a normal test run.
#[test]
fn lww_child() {
    let Some((_, dir)) = crash_child_args() else { return };
    let engine = engine(&dir, &clock());
    let dest = FileDest::open(&deliveries_path(&dir), std::time::Duration::from_micros(500));
    let map = open_map_with(&engine, dest);
    let acks = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (map, acks, stop) = (&map, &acks, &stop);
            scope.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("W{writer}-K{}", (n * 37 + writer) % KEYS_PER_WRITER);
                    map.submit(Record::new(key.clone(), pauselog::Op::Update, n.to_string())).expect("submit");
                    say("ACK", &[&key, &n]);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let wait_acks = |count: u64| {
            let target = acks.load(Ordering::Relaxed) + count;
            while acks.load(Ordering::Relaxed) < target {
                std::thread::yield_now();
            }
        };
        for cycle in 0u64.. {
            wait_acks(150); // live sync
            map.pause().expect("pause");
            wait_acks(300); // queueing
            map.resume(ResumeMode::CatchUp).expect("resume");
            if cycle % 2 == 1 {
                wait_acks(50); // writers go to the tail while it drains
            } else if map.skip_to_live(true).is_ok() {
                say("SKIPPED", &[]);
                let _job = map.retry_errors(Selection::All).expect("retry");
            }
            map.wait_for(|s| matches!(s, MapState::Running), WAIT).expect("running");
            if cycle > 10_000 {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
}

fn open_map_with(engine: &pauselog::Engine, dest: Arc<FileDest>) -> pauselog::TableMap {
    engine.table_map(MAP, MapConfig { replay_batch_records: 32, ..MapConfig::default() }, dest).expect("map")
}

#[test]
fn the_destination_ends_with_the_last_write_per_key_across_crashes() {
    let mut skips = 0;
    for round in 0..crash_rounds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let acks_wanted = 1500 + round * 450;
        let events = run_and_kill(&child_name(), "lww", &dir, |events| {
            events.iter().filter(|e| e.tag == "ACK").count() >= acks_wanted
        });
        let mut last_acked: HashMap<String, u64> = HashMap::new();
        for event in events.iter().filter(|e| e.tag == "ACK") {
            let n = event.num(1);
            let last = last_acked.entry(event.fields[0].clone()).or_default();
            *last = (*last).max(n);
        }

        // Reopen, finish the catch-up and the retries, then read what the
        // destination received, before and after the crash.
        let engine = engine(&dir, &clock());
        let map = open_map_with(&engine, FileDest::open(&deliveries_path(&dir), std::time::Duration::ZERO));
        if matches!(map.state(), MapState::Paused { .. }) {
            map.resume(ResumeMode::CatchUp).unwrap();
        }
        wait_running(&map);
        map.retry_errors(Selection::All).unwrap().wait(WAIT).unwrap();
        drop(map);
        engine.close().unwrap();

        let text = std::fs::read_to_string(deliveries_path(&dir)).unwrap();
        let mut by_seq: BTreeMap<u64, (String, u64)> = BTreeMap::new();
        for line in text.lines() {
            let mut fields = line.split(' ');
            let seq: u64 = fields.next().unwrap().parse().unwrap();
            let key = fields.next().unwrap().to_owned();
            let n: u64 = fields.next().unwrap().parse().unwrap();
            if let Some(known) = by_seq.insert(seq, (key.clone(), n)) {
                assert_eq!(known, (key, n), "round {round}: seq {seq} given to two records");
            }
        }
        // Per key, versions follow submit order; the last-writer-wins
        // result is the record with the highest seq.
        let mut lww: HashMap<&str, (u64, u64)> = HashMap::new();
        for (&seq, (key, n)) in &by_seq {
            if let Some(&(previous_seq, previous_n)) = lww.get(key.as_str()) {
                assert!(
                    previous_n < *n,
                    "round {round}: {key} seq {previous_seq} has n {previous_n}, seq {seq} has n {n}"
                );
            }
            lww.insert(key, (seq, *n));
        }
        for (key, acked) in &last_acked {
            let applied = lww.get(key.as_str()).map(|&(_, n)| n);
            assert!(applied >= Some(*acked), "round {round}: {key} ends at {applied:?}, last acknowledged {acked}");
        }
        skips += events.iter().filter(|e| e.tag == "SKIPPED").count();
    }
    assert!(skips > 0, "no round skipped to live before its kill");
}
