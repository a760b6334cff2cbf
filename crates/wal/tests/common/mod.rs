//! Helpers shared by the wal integration tests, so an API change touches one place.
#![allow(dead_code)]

pub mod crash_points;
pub mod faulty;

use std::path::{Path, PathBuf};

use pauselog_wal::{Wal, WalOptions};
use std::sync::Arc;

/// The smallest segment the log accepts: many rotations with few records.
pub const SMALL_SEGMENT_BYTES: u64 = 4096;

/// A body that names its record: `len` bytes derived from `tag`, none zero
/// (so zero-filling any part of a frame always changes it).
pub fn body(tag: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let mixed = tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (mixed.wrapping_mul(0x94D0_49BB_1331_11EB) >> 56) as u8 | 1
        })
        .collect()
}

/// Every live record, in reader order, as `(seq, body)`.
pub fn read_all(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    wal.reader(1).map(|e| e.map(|e| (e.seq(), e.body().to_vec()))).collect::<Result<_, _>>().expect("read the log")
}

/// Options for a log of small segments.
pub fn small_segments() -> WalOptions {
    WalOptions::default().segment_bytes_max(SMALL_SEGMENT_BYTES)
}

/// Segment files of a log directory, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list log dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    paths.sort();
    paths
}

/// Leaves a closed log's directory as a crash after its last write would:
/// a clean close writes the active segment's sidecar (crash case C1 in
/// `pauselog_wal::format`) and a crash leaves none, so the next open scans
/// the active segment as recovery after a crash does.
pub fn as_after_a_crash(dir: &Path) {
    if let Some(active) = segment_files(dir).last() {
        std::fs::remove_file(active.with_extension("idx")).expect("the clean close's sidecar");
    }
}

/// Copies every regular file of `from` into the new directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("list dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// Asserts `actual == expected` on `(seq, body)` lists, reporting seqs only
/// (bodies would flood the output).
pub fn assert_records(actual: &[(u64, Vec<u8>)], expected: &[(u64, Vec<u8>)], what: &str) {
    let seqs = |records: &[(u64, Vec<u8>)]| records.iter().map(|(s, _)| *s).collect::<Vec<u64>>();
    assert_eq!(seqs(actual), seqs(expected), "seqs: {what}");
    for ((seq, a), (_, e)) in actual.iter().zip(expected) {
        assert!(a == e, "body of seq {seq} differs ({} vs {} bytes): {what}", a.len(), e.len());
    }
}

/// One durable append from each of `thread_count` threads at once: under
/// `SyncPolicy::Always` the next group then expects that many records.
pub fn burst(wal: &Arc<Wal>, thread_count: usize) {
    let threads: Vec<_> = (0..thread_count)
        .map(|_| {
            let wal = wal.clone();
            std::thread::spawn(move || wal.append(b"burst").expect("append"))
        })
        .collect();
    for thread in threads {
        thread.join().expect("appender");
    }
}
