//! docs/rules.md R19, R17: damage early in the *active* segment, followed by frames
//! written long after it, is corruption of acknowledged records, not a torn
//! tail: open reports `Error::Corrupt` naming the file and the damaged
//! frame's offset, and changes nothing. Only damage within the reach of a
//! torn write (`TORN_WRITE_WINDOW_BYTES` before the last valid frame) is cut
//! back as a torn tail (tests/torn_tail.rs).
//!
//! Recovery scans the active segment after a crash; the logs here are
//! closed, then left as a crash leaves them (no sidecar of the active
//! segment). After a clean close the damage is found by the background
//! check instead (tests/clean_close.rs).

mod common;

use std::path::Path;

use common::{body, read_all, segment_files};
use pauselog_wal::{frame_bytes, Error, SyncPolicy, Wal, WalOptions, SEGMENT_HEADER_BYTES, TORN_WRITE_WINDOW_BYTES};

const BODY_BYTES: usize = 1000;

fn options() -> WalOptions {
    WalOptions::default().sync(SyncPolicy::Never)
}

fn write_log(dir: &Path, record_count: u64) {
    let wal = Wal::open(dir, options()).expect("open");
    for seq in 1..=record_count {
        wal.append(&body(seq, BODY_BYTES)).expect("append");
    }
    wal.close().expect("close");
    common::as_after_a_crash(dir);
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).expect("read segment");
    bytes[offset as usize] ^= 0xFF;
    std::fs::write(path, bytes).expect("write segment");
}

/// Found by the CLI tests (`verify_today_misses_damage_early_in_the_active_segment`):
/// one flipped byte in the first frame of a 64 MiB active segment made
/// recovery truncate every later, acknowledged record with only a warning.
#[test]
fn flipped_byte_in_the_first_frame_of_the_active_segment_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    // More than the torn-write window of frames after the damaged one.
    let record_count = TORN_WRITE_WINDOW_BYTES / frame_bytes(BODY_BYTES) + 1000;
    write_log(dir.path(), record_count);
    let segments = segment_files(dir.path());
    assert_eq!(segments.len(), 1, "everything is in the active segment");
    let active = &segments[0];
    for within in [0u64, 5, 9, 16 + BODY_BYTES as u64 - 1] {
        flip_byte(active, SEGMENT_HEADER_BYTES + within);
        let before = std::fs::read(active).expect("read");
        for read_only in [false, true] {
            match Wal::open(dir.path(), options().read_only(read_only)) {
                Err(Error::Corrupt { path, offset, reason }) => {
                    assert_eq!(&path, active, "names the damaged file");
                    assert_eq!(offset, SEGMENT_HEADER_BYTES, "names the damaged frame ({reason})");
                }
                other => panic!("byte {within}: expected Error::Corrupt, got {other:?}"),
            }
        }
        assert!(std::fs::read(active).expect("read") == before, "nothing was truncated");
        flip_byte(active, SEGMENT_HEADER_BYTES + within);
    }
    let wal = Wal::open(dir.path(), options()).expect("the repaired log opens");
    assert_eq!(wal.stats().live_records, record_count, "every record is still there");
}

/// The same damage in the middle of the active segment, with more than the
/// window of frames after it: corrupt at that frame's offset.
#[test]
fn damage_in_the_middle_of_the_active_segment_is_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let record_count = 2 * (TORN_WRITE_WINDOW_BYTES / frame_bytes(BODY_BYTES)) + 100;
    write_log(dir.path(), record_count);
    let active = &segment_files(dir.path())[0];
    let damaged_seq = 50;
    let damaged_offset = SEGMENT_HEADER_BYTES + (damaged_seq - 1) * frame_bytes(BODY_BYTES);
    flip_byte(active, damaged_offset + 100);
    match Wal::open(dir.path(), options()) {
        Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, damaged_offset),
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
}

/// Today's limit, by design: damage followed by less than the torn-write
/// window of frames cannot be told apart from a torn tail, so the segment is
/// cut there (with a warning), as for any torn write.
#[test]
fn damage_within_the_torn_write_window_is_cut_as_a_torn_tail() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path(), 100);
    let active = &segment_files(dir.path())[0];
    let damaged_offset = SEGMENT_HEADER_BYTES + 90 * frame_bytes(BODY_BYTES);
    flip_byte(active, damaged_offset + 20);
    let wal = Wal::open(dir.path(), options()).expect("a torn tail opens");
    assert_eq!(read_all(&wal).len(), 90, "the frames before the damage survive");
}
