//! R10: following cursors visits every matching entry exactly once, in seq
//! order, while another thread appends at the tail and releases the head.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pauselog_index::KeyIndex;

const KEYS: [&str; 5] = ["a", "b", "c", "d", "e"];
const INITIAL_COUNT: u64 = 3_000;
const INSERTED_COUNT: u64 = 6_000;
const RELEASED_THROUGH_MAX: u64 = 2_000;

fn key_of(seq: u64) -> &'static str {
    KEYS[(seq * 7 % 5) as usize]
}

fn walk(key: Option<&'static str>, limit: usize) {
    let index = Arc::new(Mutex::new(KeyIndex::new()));
    {
        let mut index = index.lock().expect("lock");
        for seq in 1..=INITIAL_COUNT {
            index.insert(key_of(seq), seq).expect("insert");
        }
    }
    let walking = Arc::new(AtomicBool::new(true));
    let writer = {
        let (index, walking) = (index.clone(), walking.clone());
        std::thread::spawn(move || {
            for seq in INITIAL_COUNT + 1..=INITIAL_COUNT + INSERTED_COUNT {
                let mut index = index.lock().expect("lock");
                index.insert(key_of(seq), seq).expect("insert");
                if seq % 3 == 0 {
                    index.release_through((seq - INITIAL_COUNT) / 3 + (seq % 2) * 5);
                }
                drop(index);
                if seq % 64 == 0 {
                    std::thread::yield_now();
                }
                if !walking.load(Ordering::Relaxed) && seq > INITIAL_COUNT + 100 {
                    break;
                }
            }
            index.lock().expect("lock").release_through(RELEASED_THROUGH_MAX);
        })
    };
    let mut seen: Vec<u64> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = index.lock().expect("lock").page(key, after.as_deref(), limit).expect("page");
        for &seq in &page.seqs {
            if let Some(&last) = seen.last() {
                assert!(seq > last, "seq {seq} after {last}: not ascending or seen twice");
            }
            if let Some(key) = key {
                assert_eq!(key_of(seq), key);
            }
            seen.push(seq);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        std::thread::yield_now();
    }
    walking.store(false, Ordering::Relaxed);
    writer.join().expect("writer");
    // Present during the whole walk: there at the start, never released.
    let released_through = index.lock().expect("lock").first_seq().map_or(u64::MAX, |first| first - 1);
    assert!(released_through >= RELEASED_THROUGH_MAX);
    for seq in released_through + 1..=INITIAL_COUNT {
        if key.is_none_or(|key| key_of(seq) == key) {
            assert!(seen.binary_search(&seq).is_ok(), "seq {seq} was present throughout but never listed");
        }
    }
}

#[test]
fn all_keys_walk_sees_each_seq_once() {
    walk(None, 37);
}

#[test]
fn one_key_walk_sees_each_seq_once() {
    walk(Some("c"), 11);
}
