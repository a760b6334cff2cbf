//! R13, R15, R16: moving ranges between the queue and the catch-up errors
//! list keeps both indexes exact, including seqs that land below entries the
//! destination already holds or below its release watermark.

use pauselog_index::{Error, KeyIndex};

fn filled(seqs: impl IntoIterator<Item = u64>, key: impl Fn(u64) -> String) -> KeyIndex {
    let mut index = KeyIndex::new();
    for seq in seqs {
        index.insert(&key(seq), seq).expect("insert");
    }
    index
}

#[test]
fn move_everything_into_an_empty_list_swaps() {
    let mut queue = filled(1..=1_000, |seq| format!("k{}", seq % 10));
    queue.release_through(100);
    let mut errors = KeyIndex::new();
    queue.move_range_into(0..=u64::MAX, &mut errors);
    queue.check_invariants();
    errors.check_invariants();
    assert_eq!((queue.len(), errors.len()), (0, 900));
    assert_eq!(errors.count(Some("k3")), 90);
    assert_eq!(errors.page(Some("k3"), None, 1).expect("page").seqs, vec![103]);
    // The queue keeps its seq history: old seqs stay refused.
    assert!(matches!(queue.insert("k", 1_000), Err(Error::OutOfOrder { .. })));
    queue.insert("k", 1_001).expect("insert");
}

#[test]
fn moved_seqs_interleave_with_the_destinations_own() {
    let mut queue = filled(1..=100, |seq| format!("k{}", seq % 3));
    let mut errors = KeyIndex::new();
    queue.move_range_into(50..=60, &mut errors);
    queue.move_range_into(10..=20, &mut errors);
    queue.move_range_into(30..=30, &mut errors);
    for index in [&queue, &errors] {
        index.check_invariants();
    }
    let mut expected: Vec<u64> = (10..=20).chain([30]).chain(50..=60).collect();
    assert_eq!(errors.seqs_in(0..=u64::MAX, 1_000), expected);
    expected.retain(|seq| seq % 3 == 1);
    assert_eq!(errors.key_seqs("k1"), expected);
    assert_eq!(queue.len(), 100 - 23);
}

#[test]
fn moved_seqs_below_the_destinations_watermark_stay_visible() {
    let mut queue = filled(1..=100, |seq| format!("k{}", seq % 4));
    let mut errors = KeyIndex::new();
    queue.move_range_into(80..=90, &mut errors);
    // The errors list releases through 85, then receives 10..=20.
    errors.release_through(85);
    queue.move_range_into(10..=20, &mut errors);
    errors.check_invariants();
    let expected: Vec<u64> = (10..=20).chain(86..=90).collect();
    assert_eq!(errors.seqs_in(0..=u64::MAX, 1_000), expected);
    assert_eq!(errors.count(Some("k2")), expected.iter().filter(|seq| *seq % 4 == 2).count() as u64);
    // A later release still drops what it names.
    errors.release_through(15);
    assert_eq!(errors.first_seq(), Some(16));
    errors.check_invariants();
}

#[test]
fn release_beyond_the_last_seq_keeps_later_inserts_visible() {
    let mut index = filled(1..=10, |_| "k".to_owned());
    index.release_through(1_000);
    assert!(index.is_empty());
    index.insert("k", 11).expect("insert");
    assert_eq!(index.key_seqs("k"), vec![11]);
    assert_eq!(index.count(None), 1);
}
