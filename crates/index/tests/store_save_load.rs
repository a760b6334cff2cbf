//! R19a: a saved index loads back equal, a later save replaces an earlier
//! one whole, `invalidate` and `remove` forget it, and damage is reported as
//! `CorruptStore` rather than loaded.

use pauselog_index::{Checkpoint, Error, IndexStore, KeyIndex};

fn build(count: u64, key_count: u64, first: u64) -> KeyIndex {
    let mut index = KeyIndex::new();
    for seq in first..first + count {
        index.insert(&format!("USMF|CUST-{:05}", seq * 31 % key_count), seq).expect("insert");
    }
    index
}

fn assert_same(a: &KeyIndex, b: &KeyIndex) {
    a.check_invariants();
    b.check_invariants();
    assert_eq!(a.len(), b.len());
    assert_eq!(a.key_count(), b.key_count());
    assert_eq!(a.seqs_in(0..=u64::MAX, usize::MAX), b.seqs_in(0..=u64::MAX, usize::MAX));
    for k in 0..50 {
        let key = format!("USMF|CUST-{k:05}");
        assert_eq!(a.key_seqs(&key), b.key_seqs(&key));
    }
}

#[test]
fn save_then_load_round_trips_with_released_head_and_holes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IndexStore::open(dir.path()).expect("open");
    assert!(store.load("q").expect("load").is_none());
    let mut index = build(200_000, 997, 1);
    index.release_through(1_234);
    assert!(index.remove(&format!("USMF|CUST-{:05}", 1_500 * 31 % 997), 1_500));
    index.drop_range(50_000..=50_100);
    let checkpoint = Checkpoint { applied_through: 200_000, tag: 42 };
    store.save("q", &index, checkpoint).expect("save");
    drop(store);
    let store = IndexStore::open(dir.path()).expect("reopen");
    let (loaded, at) = store.load("q").expect("load").expect("saved");
    assert_eq!(at, checkpoint);
    assert_same(&index, &loaded);
    // The loaded index keeps refusing old seqs and accepting new ones.
    let mut loaded = loaded;
    assert!(matches!(loaded.insert("x", 200_000), Err(Error::OutOfOrder { .. })));
    loaded.insert("x", 200_001).expect("insert after load");
}

#[test]
fn a_second_save_replaces_the_first_entirely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IndexStore::open(dir.path()).expect("open");
    // The first save has many chunks, the second few: no chunk of the first
    // may survive into the second.
    let big = build(300_000, 10_000, 1);
    store.save("q", &big, Checkpoint { applied_through: 1, tag: 1 }).expect("save");
    let small = build(10, 3, 500_000);
    store.save("q", &small, Checkpoint { applied_through: 2, tag: 2 }).expect("save");
    drop(store);
    let store = IndexStore::open(dir.path()).expect("reopen");
    let (loaded, at) = store.load("q").expect("load").expect("saved");
    assert_eq!(at, Checkpoint { applied_through: 2, tag: 2 });
    assert_same(&small, &loaded);
}

#[test]
fn names_are_independent_and_invalidate_or_remove_forget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IndexStore::open(dir.path()).expect("open");
    let queue = build(100, 7, 1);
    let errors = build(10, 2, 1);
    store.save("customers.queue", &queue, Checkpoint { applied_through: 100, tag: 0 }).expect("save");
    store.save("customers.errors", &errors, Checkpoint { applied_through: 100, tag: 0 }).expect("save");
    store.invalidate("customers.queue").expect("invalidate");
    assert!(store.load("customers.queue").expect("load").is_none());
    assert_same(&errors, &store.load("customers.errors").expect("load").expect("kept").0);
    store.remove("customers.errors").expect("remove");
    assert!(store.load("customers.errors").expect("load").is_none());
    drop(store);
    let store = IndexStore::open(dir.path()).expect("reopen");
    assert!(store.load("customers.queue").expect("load").is_none());
    assert!(store.load("customers.errors").expect("load").is_none());
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IndexStore::open(dir.path()).expect("open");
    let mut index = build(5, 2, 1);
    index.release_through(5);
    store.save("q", &index, Checkpoint { applied_through: 5, tag: 9 }).expect("save");
    let (mut loaded, _) = store.load("q").expect("load").expect("saved");
    assert!(loaded.is_empty());
    assert!(matches!(loaded.insert("k", 5), Err(Error::OutOfOrder { seq: 5, last: 5 })));
}

#[test]
fn damaged_values_are_reported_not_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = IndexStore::open(dir.path()).expect("open");
        store.save("q", &build(1_000, 10, 1), Checkpoint { applied_through: 1_000, tag: 0 }).expect("save");
    }
    for victim in [&b"meta"[..], b"ranges", b"chunk\0\0\0\0"] {
        let copy = tempfile::tempdir().expect("tempdir");
        copy_dir(dir.path(), copy.path());
        {
            let db = sled::open(copy.path()).expect("sled");
            let tree = db.open_tree("keyindex:q").expect("tree");
            let mut value = tree.get(victim).expect("get").expect("present").to_vec();
            let middle = value.len() / 2;
            value[middle] ^= 0x10;
            tree.insert(victim, value).expect("insert");
            db.flush().expect("flush");
        }
        let store = IndexStore::open(copy.path()).expect("open");
        match store.load("q") {
            Err(Error::CorruptStore { name, reason }) => assert!(name == "q" && !reason.is_empty()),
            other => panic!("damaged {victim:?} gave {other:?}"),
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
