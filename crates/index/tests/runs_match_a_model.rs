//! R11, R19a: `KeyRuns` answers exactly what a plain map of key → seqs
//! answers, across flushes, reopens and deleted runs; a damaged run file is
//! found at open, deleted and reported, and its range rebuilt.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use pauselog_index::{KeyRuns, RunOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert {
        key: u8,
        gap: u8,
    },
    Flush,
    Reopen,
    /// Deletes the runs that end at or below the n-th inserted seq.
    DropThrough(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..12, 1u8..4).prop_map(|(key, gap)| Op::Insert { key, gap }),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => any::<u16>().prop_map(Op::DropThrough),
    ]
}

fn key_name(key: u8) -> String {
    // Keys share prefixes and lengths, and one is not ASCII.
    if key == 11 {
        "Müller|7".to_owned()
    } else {
        format!("USMF|CUST-{key}")
    }
}

fn all_seqs(index: &KeyRuns, key: &str, range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    let mut seqs = Vec::new();
    index.for_each_seq(key, range, |seq| {
        seqs.push(seq);
        ControlFlow::Continue(())
    });
    seqs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn key_runs_answer_what_a_model_answers(ops in proptest::collection::vec(op(), 1..200)) {
        let dir = tempfile::tempdir().unwrap();
        let options = RunOptions { run_records_max: 7, read_only: false };
        let (mut index, _) = KeyRuns::open(dir.path(), options).unwrap();
        let mut model: BTreeMap<u64, String> = BTreeMap::new();
        let mut seq = 0u64;
        let mut inserted: Vec<u64> = Vec::new();
        for op in ops {
            match op {
                Op::Insert { key, gap } => {
                    seq += u64::from(gap);
                    index.insert(&key_name(key), seq).unwrap();
                    model.insert(seq, key_name(key));
                    inserted.push(seq);
                }
                Op::Flush => index.flush().unwrap(),
                Op::Reopen => {
                    // A reopen loses the memory run; the owner re-adds the
                    // records its log holds beyond the runs.
                    let covered = index.run_ranges().last().map_or(0, |r| *r.end());
                    drop(index);
                    let (reopened, report) = KeyRuns::open(dir.path(), options).unwrap();
                    prop_assert!(report.damaged.is_empty());
                    index = reopened;
                    for (&s, key) in model.range(covered + 1..) {
                        index.insert(key, s).unwrap();
                    }
                }
                Op::DropThrough(n) => {
                    let Some(&through) = inserted.get(usize::from(n) % inserted.len().max(1)) else { continue };
                    let before = index.run_ranges();
                    index.retain_runs(|_, hi| hi > through).unwrap();
                    let after = index.run_ranges();
                    for dropped in before.iter().filter(|r| !after.contains(r)) {
                        prop_assert!(*dropped.end() <= through);
                        let seqs: Vec<u64> = model.range(dropped.clone()).map(|(&s, _)| s).collect();
                        for s in seqs {
                            model.remove(&s);
                        }
                    }
                }
            }
            for key in 0..12 {
                let name = key_name(key);
                let expected: Vec<u64> = model.iter().filter(|(_, k)| **k == name).map(|(&s, _)| s).collect();
                prop_assert_eq!(all_seqs(&index, &name, 0..=u64::MAX), expected.clone(), "key {}", name);
                let middle = seq / 2;
                let expected_tail: Vec<u64> = expected.iter().copied().filter(|&s| s >= middle).collect();
                prop_assert_eq!(all_seqs(&index, &name, middle..=u64::MAX), expected_tail);
                prop_assert_eq!(index.seqs(&name, 0..=u64::MAX, 2), expected.iter().copied().take(2).collect::<Vec<_>>());
            }
            prop_assert!(index.memory_records() <= options.run_records_max);
        }
    }
}

#[test]
fn a_damaged_run_is_reported_deleted_and_rebuilt_from_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions { run_records_max: 4, read_only: false };
    let (mut index, _) = KeyRuns::open(dir.path(), options).unwrap();
    for seq in 1..=12 {
        index.insert(&format!("K{}", seq % 3), seq).unwrap();
    }
    index.flush().unwrap();
    assert_eq!(index.run_ranges(), [1..=4, 5..=8, 9..=12]);
    drop(index);
    let damaged = dir.path().join(format!("{:020}-{:020}.run", 5, 8));
    let mut bytes = std::fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&damaged, bytes).unwrap();

    let (mut index, report) = KeyRuns::open(dir.path(), options).unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert!(report.damaged[0].1.contains("CRC"), "{report:?}");
    assert!(!damaged.exists(), "the damaged file is deleted");
    assert_eq!(index.gaps(12), [5..=8]);
    let entries: Vec<(String, u64)> = (5..=8).map(|seq| (format!("K{}", seq % 3), seq)).collect();
    index.insert_run(5, 8, &entries).unwrap();
    assert_eq!(index.gaps(12), Vec::<std::ops::RangeInclusive<u64>>::new());
    assert_eq!(index.seqs("K1", 0..=u64::MAX, 100), [1, 4, 7, 10]);
}

#[test]
fn read_only_opens_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, _) = KeyRuns::open(dir.path(), RunOptions { run_records_max: 2, read_only: false }).unwrap();
    for seq in 1..=5 {
        index.insert("K", seq).unwrap();
    }
    drop(index);
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    let before = files();
    let (mut reader, _) = KeyRuns::open(dir.path(), RunOptions { run_records_max: 2, read_only: true }).unwrap();
    reader.flush().unwrap();
    assert_eq!(reader.retain_runs(|_, _| false).unwrap(), 0);
    assert_eq!(files(), before);
    assert_eq!(reader.seqs("K", 0..=u64::MAX, 10), [1, 2, 3, 4]);
}

#[test]
fn inserts_must_go_above_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut index, _) = KeyRuns::open(dir.path(), RunOptions::default()).unwrap();
    index.insert("K", 5).unwrap();
    assert!(index.insert("K", 5).is_err());
    assert!(index.insert("L", 3).is_err());
    assert_eq!(index.seqs("L", 0..=u64::MAX, 10), Vec::<u64>::new());
}

/// Runs with many keys: a lookup searches the in-memory fences (one hash
/// per page of directory), then one stride of the mapped directory. Every
/// key of runs of 1 to 3,000 keys is found with exactly its seqs, after a
/// write and after a reopen, and keys that are not there are not found.
#[test]
fn lookups_through_the_fences_find_every_key_of_a_large_run() {
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions { run_records_max: 9_000, read_only: false };
    let (mut index, _) = KeyRuns::open(dir.path(), options).unwrap();
    let mut model: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seq = 0u64;
    for keys in [1u64, 169, 170, 171, 340, 3_000] {
        let lo = seq + 1;
        let mut entries = Vec::new();
        for n in 0..keys * 3 {
            seq += 1;
            let key = format!("R{keys}|K-{}", (n * 7) % keys);
            model.entry(key.clone()).or_default().push(seq);
            entries.push((key, seq));
        }
        index.insert_run(lo, seq, &entries).unwrap();
    }
    let check = |index: &KeyRuns| {
        for (key, seqs) in &model {
            assert_eq!(&all_seqs(index, key, 0..=u64::MAX), seqs, "key {key}");
        }
        for missing in ["R170|K-170", "R3000|K-x", "", "R1|K-1"] {
            assert_eq!(all_seqs(index, missing, 0..=u64::MAX), Vec::<u64>::new(), "key {missing:?}");
        }
    };
    check(&index);
    drop(index);
    let (index, report) = KeyRuns::open(dir.path(), options).unwrap();
    assert!(report.damaged.is_empty(), "{report:?}");
    check(&index);
}
