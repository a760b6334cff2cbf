//! R19: `verify` recomputes the accounting from the bytes on disk instead of
//! trusting the counters an open log derives, so damage to what the counts
//! rest on is reported: a release.log entry edited behind the log's back
//! (it would silently drop queued records), and a release.log entry damaged
//! in the middle of the file (the log would ignore every entry after it and
//! deliver those records again).
//!
//! release.log (crates/wal/src/format.rs): 20-byte entries `lo u64 LE | hi
//! u64 LE | crc32(lo ‖ hi) u32 LE`, inclusive seq ranges released.

use std::path::{Path, PathBuf};

use pauselog::{MapConfig, ResumeMode};
use pauselog_tests::*;

const ENTRY_BYTES: usize = 20;

/// CRC32 (IEEE), as crc32fast computes it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn entry(lo: u64, hi: u64) -> Vec<u8> {
    let mut entry = [lo.to_le_bytes(), hi.to_le_bytes()].concat();
    entry.extend_from_slice(&crc32(&entry).to_le_bytes());
    entry
}

fn release_log(dir: &Path) -> PathBuf {
    dir.join("maps").join("m").join("data").join("release.log")
}

/// A closed engine whose map has delivered 3 backlogs of 20 records (each
/// catch-up releases them in its own release.log entry) and holds 100
/// queued ones, whose seqs it returns.
fn closed_engine_with_a_queue() -> (tempfile::TempDir, Vec<u64>) {
    let fixture = Fixture::new(MapConfig::default());
    for backlog in 0..3 {
        fixture.queue(20, |n| format!("K{backlog}-{n}"));
        fixture.map.resume(ResumeMode::CatchUp).expect("resume");
        wait_running(&fixture.map);
    }
    fixture.queue(100, |n| format!("Q{n}"));
    let queued: Vec<u64> = all_queued(&fixture.map, None).iter().map(|record| record.seq).collect();
    assert_eq!(queued.len(), 100);
    let Fixture { map, engine, dir, .. } = fixture;
    drop(map);
    engine.close().expect("close");
    let report = pauselog::verify(dir.path()).expect("verify");
    assert!(report.problems.is_empty(), "a healthy directory: {:?}", report.problems);
    (dir, queued)
}

#[test]
fn a_release_log_entry_added_behind_the_log_releasing_queued_records_is_reported() {
    let (dir, queued) = closed_engine_with_a_queue();
    // Release ten queued records in the middle of the queue.
    let (lo, hi) = (queued[20], queued[29]);
    assert_eq!(hi - lo, 9, "queued seqs are consecutive");
    let path = release_log(dir.path());
    let mut bytes = std::fs::read(&path).expect("read release.log");
    bytes.extend_from_slice(&entry(lo, hi));
    std::fs::write(&path, bytes).expect("write release.log");

    let report = pauselog::verify(dir.path()).expect("verify");
    let found =
        report.problems.iter().find(|p| p.contains("queued seqs")).unwrap_or_else(|| panic!("{:?}", report.problems));
    assert!(found.contains(&format!("10 queued seqs between {lo} and {hi}")), "{found}");
}

#[test]
fn a_release_log_entry_damaged_before_valid_ones_is_reported_with_its_offset() {
    let (dir, _) = closed_engine_with_a_queue();
    let path = release_log(dir.path());
    let mut bytes = std::fs::read(&path).expect("read release.log");
    assert!(bytes.len() >= 2 * ENTRY_BYTES, "several releases: {} bytes", bytes.len());
    bytes[ENTRY_BYTES + 3] ^= 0x40; // the second entry's `lo`
    std::fs::write(&path, bytes).expect("write release.log");

    let report = pauselog::verify(dir.path()).expect("verify");
    let expected = format!("{} at offset {ENTRY_BYTES}", path.display());
    assert!(report.problems.iter().any(|p| p.contains(&expected)), "{:?}", report.problems);
}
