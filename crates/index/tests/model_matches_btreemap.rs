//! R10, R11, R19a: a `KeyIndex` (and its save/load through a real
//! `IndexStore`) behaves exactly like a `BTreeMap<String, Vec<u64>>` model
//! under random inserts, removes, releases, moves between two indexes,
//! drops, paging with random limits, and save/load/invalidate.

use std::collections::BTreeMap;

use pauselog_index::{Checkpoint, Error, IndexStore, KeyIndex};
use proptest::prelude::*;

const KEYS: [&str; 6] = ["USMF|CUST-1", "USMF|CUST-2", "k", "clé-ü", "a|b|c", "DAT|X"];

type Model = BTreeMap<String, Vec<u64>>;

#[derive(Debug, Clone)]
enum Op {
    Insert { to_b: bool, key: usize },
    InsertOutOfOrder { to_b: bool, key: usize, back: u64 },
    Remove { in_b: bool, pick: usize, wrong_key: bool },
    Release { in_b: bool, through: u64 },
    Move { a_to_b: bool, lo: u64, width: u64 },
    MoveAll { a_to_b: bool },
    Drop { in_b: bool, lo: u64, width: u64 },
    Page { in_b: bool, key: Option<usize>, limit: usize },
    SaveLoad { in_b: bool, tag: u64 },
    Invalidate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<bool>(), 0..KEYS.len()).prop_map(|(to_b, key)| Op::Insert { to_b, key }),
        1 => (any::<bool>(), 0..KEYS.len(), 0..3u64).prop_map(|(to_b, key, back)| Op::InsertOutOfOrder { to_b, key, back }),
        2 => (any::<bool>(), any::<usize>(), any::<bool>()).prop_map(|(in_b, pick, wrong_key)| Op::Remove { in_b, pick, wrong_key }),
        2 => (any::<bool>(), 0..80u64).prop_map(|(in_b, through)| Op::Release { in_b, through }),
        2 => (any::<bool>(), 0..80u64, 0..20u64).prop_map(|(a_to_b, lo, width)| Op::Move { a_to_b, lo, width }),
        1 => any::<bool>().prop_map(|a_to_b| Op::MoveAll { a_to_b }),
        1 => (any::<bool>(), 0..80u64, 0..20u64).prop_map(|(in_b, lo, width)| Op::Drop { in_b, lo, width }),
        3 => (any::<bool>(), proptest::option::of(0..KEYS.len()), 1..8usize)
            .prop_map(|(in_b, key, limit)| Op::Page { in_b, key, limit }),
        1 => (any::<bool>(), any::<u64>()).prop_map(|(in_b, tag)| Op::SaveLoad { in_b, tag }),
        1 => Just(Op::Invalidate),
    ]
}

struct Side {
    index: KeyIndex,
    model: Model,
    /// Highest seq inserted or moved in, as the index must track it.
    last_accepted: Option<u64>,
}

impl Side {
    fn new() -> Self {
        Side { index: KeyIndex::new(), model: Model::new(), last_accepted: None }
    }

    fn all(&self) -> Vec<(u64, String)> {
        let mut all: Vec<(u64, String)> =
            self.model.iter().flat_map(|(key, seqs)| seqs.iter().map(move |&seq| (seq, key.clone()))).collect();
        all.sort();
        all
    }

    fn model_take(&mut self, lo: u64, hi: u64) -> Vec<(u64, String)> {
        let mut taken = Vec::new();
        for (key, seqs) in &mut self.model {
            seqs.retain(|&seq| {
                let inside = (lo..=hi).contains(&seq);
                if inside {
                    taken.push((seq, key.clone()));
                }
                !inside
            });
        }
        self.model.retain(|_, seqs| !seqs.is_empty());
        taken
    }

    fn model_add(&mut self, entries: Vec<(u64, String)>) {
        for (seq, key) in entries {
            self.last_accepted = self.last_accepted.max(Some(seq));
            let seqs = self.model.entry(key).or_default();
            seqs.push(seq);
            seqs.sort_unstable();
        }
    }

    fn check(&self) {
        self.index.check_invariants();
        let all = self.all();
        assert_eq!(self.index.len(), all.len() as u64);
        assert_eq!(self.index.is_empty(), all.is_empty());
        assert_eq!(self.index.count(None), all.len() as u64);
        assert_eq!(self.index.key_count(), self.model.len());
        assert_eq!(self.index.first_seq(), all.first().map(|e| e.0));
        assert_eq!(self.index.last_seq(), all.last().map(|e| e.0));
        let seqs: Vec<u64> = all.iter().map(|e| e.0).collect();
        assert_eq!(self.index.seqs_in(0..=u64::MAX, usize::MAX), seqs);
        assert_eq!(
            self.index.seqs_in(10..=30, 5),
            seqs.iter().copied().filter(|s| (10..=30).contains(s)).take(5).collect::<Vec<_>>()
        );
        for key in KEYS {
            let expected = self.model.get(key).cloned().unwrap_or_default();
            assert_eq!(self.index.key_seqs(key), expected, "key {key}");
            assert_eq!(self.index.count(Some(key)), expected.len() as u64);
        }
        for seq in 0..=seqs.last().copied().unwrap_or(0) + 1 {
            assert_eq!(self.index.contains(seq), seqs.binary_search(&seq).is_ok(), "contains {seq}");
        }
    }

    fn walk_pages(&self, key: Option<&str>, limit: usize) {
        let expected: Vec<u64> = match key {
            Some(key) => self.model.get(key).cloned().unwrap_or_default(),
            None => self.all().iter().map(|e| e.0).collect(),
        };
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.index.page(key, after.as_deref(), limit).expect("valid cursor");
            assert_eq!(page.total, expected.len() as u64);
            assert!(page.seqs.len() <= limit);
            seen.extend_from_slice(&page.seqs);
            assert_eq!(page.next.is_some(), seen.len() < expected.len(), "next iff more");
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IndexStore::open(dir.path()).expect("open store");
    let (mut a, mut b) = (Side::new(), Side::new());
    let mut next_seq = 1u64;
    for op in ops {
        match op {
            Op::Insert { to_b, key } => {
                let side = if to_b { &mut b } else { &mut a };
                side.index.insert(KEYS[key], next_seq).expect("increasing insert");
                side.model_add(vec![(next_seq, KEYS[key].to_owned())]);
                next_seq += 1;
            }
            Op::InsertOutOfOrder { to_b, key, back } => {
                let side = if to_b { &mut b } else { &mut a };
                if let Some(last) = side.last_accepted {
                    let seq = last.saturating_sub(back);
                    let result = side.index.insert(KEYS[key], seq);
                    assert!(matches!(result, Err(Error::OutOfOrder { seq: s, last: l }) if s == seq && l == last));
                }
            }
            Op::Remove { in_b, pick, wrong_key } => {
                let side = if in_b { &mut b } else { &mut a };
                let all = side.all();
                if all.is_empty() {
                    assert!(!side.index.remove("k", 1));
                } else {
                    let (seq, key) = all[pick % all.len()].clone();
                    let asked = if wrong_key { KEYS.iter().find(|k| **k != key).copied().unwrap_or("k") } else { &key };
                    let removed = side.index.remove(asked, seq);
                    assert_eq!(removed, !wrong_key);
                    if removed {
                        side.model_take(seq, seq);
                    }
                }
            }
            Op::Release { in_b, through } => {
                let side = if in_b { &mut b } else { &mut a };
                side.index.release_through(through);
                side.model_take(0, through);
            }
            Op::Move { a_to_b, lo, width } => {
                let (from, to) = if a_to_b { (&mut a, &mut b) } else { (&mut b, &mut a) };
                from.index.move_range_into(lo..=lo + width, &mut to.index);
                let taken = from.model_take(lo, lo + width);
                to.model_add(taken);
            }
            Op::MoveAll { a_to_b } => {
                let (from, to) = if a_to_b { (&mut a, &mut b) } else { (&mut b, &mut a) };
                from.index.move_range_into(0..=u64::MAX, &mut to.index);
                let taken = from.model_take(0, u64::MAX);
                to.model_add(taken);
            }
            Op::Drop { in_b, lo, width } => {
                let side = if in_b { &mut b } else { &mut a };
                side.index.drop_range(lo..=lo + width);
                side.model_take(lo, lo + width);
            }
            Op::Page { in_b, key, limit } => {
                let side = if in_b { &b } else { &a };
                side.walk_pages(key.map(|k| KEYS[k]), limit);
            }
            Op::SaveLoad { in_b, tag } => {
                let (side, name) = if in_b { (&mut b, "map.errors") } else { (&mut a, "map.queue") };
                let checkpoint = Checkpoint { applied_through: next_seq - 1, tag };
                store.save(name, &side.index, checkpoint).expect("save");
                let (loaded, loaded_checkpoint) = store.load(name).expect("load").expect("saved");
                assert_eq!(loaded_checkpoint, checkpoint);
                side.index = loaded;
            }
            Op::Invalidate => {
                store.save("map.queue", &a.index, Checkpoint { applied_through: 0, tag: 0 }).expect("save");
                store.invalidate("map.queue").expect("invalidate");
                assert!(store.load("map.queue").expect("load").is_none());
            }
        }
        a.check();
        b.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn key_index_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops);
    }
}
