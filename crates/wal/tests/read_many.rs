//! `Wal::read_many`: the records of any set of seqs under one lock, as a page
//! of the secondary index reads them (R10, R11), with every frame checked as
//! a reader checks it (R19).

mod common;

use common::{body, small_segments};
use pauselog_wal::{Error, SyncPolicy, Wal};

fn bodies(wal: &Wal, seqs: &[u64]) -> Vec<Option<Vec<u8>>> {
    wal.read_many(seqs).expect("read_many").into_iter().map(|e| e.map(|e| e.body().to_vec())).collect()
}

#[test]
fn any_order_repeats_and_missing_seqs_each_get_their_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), small_segments().sync(SyncPolicy::Never)).expect("open");
    for tag in 1..=40 {
        wal.append(&body(tag, 300)).expect("append");
    }
    wal.release(10..=12).expect("release");
    // Across segments, backwards, repeated, released, zero and past the tail;
    // the last records are still in the write buffer (Never).
    let seqs = [40, 3, 3, 11, 0, 41, 25, 1, 39];
    let expected: Vec<Option<Vec<u8>>> =
        seqs.iter().map(|&seq| (seq != 0 && seq <= 40 && !(10..=12).contains(&seq)).then(|| body(seq, 300))).collect();
    assert_eq!(bodies(&wal, &seqs), expected);
    assert_eq!(bodies(&wal, &[]), Vec::<Option<Vec<u8>>>::new());
    for &seq in &seqs {
        assert_eq!(
            wal.read(seq).expect("read").map(|e| e.body().to_vec()),
            expected[seqs.iter().position(|&s| s == seq).unwrap()]
        );
    }
}

#[test]
fn points_in_a_damaged_sealed_segment_are_corrupt_and_others_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    for tag in 1..=30 {
        wal.append(&body(tag, 300)).expect("append");
    }
    wal.close().expect("close");
    // After a reopen the sealed segments come from their sidecars: each frame
    // is CRC-checked on its first read.
    let first = common::segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).expect("read segment");
    let damaged_at = bytes.len() / 2;
    bytes[damaged_at] ^= 0x10;
    std::fs::write(&first, &bytes).expect("damage");
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert_eq!(bodies(&wal, &[30, 20]), vec![Some(body(30, 300)), Some(body(20, 300))]);
    let damaged: Vec<u64> = (1..=30).filter(|&seq| wal.read(seq).is_err()).collect();
    assert!(!damaged.is_empty(), "the flipped bit is found");
    match wal.read_many(&[30, damaged[0]]) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, first),
        other => panic!("expected Error::Corrupt naming {first:?}, got {other:?}"),
    }
}
