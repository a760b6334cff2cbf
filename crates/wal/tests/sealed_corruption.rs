//! docs/rules.md R19: corruption inside an older, sealed segment is reported as an
//! error naming the file and offset — never skipped silently, never truncated.
//!
//! A sealed segment with a valid sidecar index is not scanned at open (fast
//! reopen): its damage is found by the background check that starts right
//! after open (`Wal::damage`), by the first read of the damaged frame and by
//! `Wal::verify`, all naming the same file and offset. Without its sidecar
//! the segment is scanned, and open fails.

mod common;

use std::path::Path;

use common::{body, segment_files, small_segments};
use pauselog_wal::{frame_bytes, Error, Wal, WalOptions, SEGMENT_HEADER_BYTES};

const RECORD_COUNT: u64 = 120;

fn len_of(seq: u64) -> usize {
    50 + (seq as usize * 13) % 90
}

fn write_log(dir: &Path) {
    let wal = Wal::open(dir, small_segments()).expect("open");
    for seq in 1..=RECORD_COUNT {
        wal.append(&body(seq, len_of(seq))).expect("append");
    }
    wal.close().expect("close");
}

fn first_seq_of(path: &Path) -> u64 {
    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("segment name")
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).expect("read segment");
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(path, bytes).expect("write segment");
}

fn open_error(dir: &Path) -> Error {
    Wal::open(dir, small_segments()).expect_err("a damaged sealed segment must not open")
}

/// The damage as the log reports it: at open, or else from the background
/// check, on read and from `verify` (all must agree on file and offset).
fn damage_error(dir: &Path) -> Error {
    let wal = match Wal::open(dir, small_segments()) {
        Err(error) => return error,
        Ok(wal) => wal,
    };
    let early = wal.wait_background_check().expect("the background check finds damage without any read");
    let read = wal.reader(1).find_map(Result::err).expect("reading a damaged sealed segment must fail");
    let verified = wal.verify().expect_err("verify must report a damaged sealed segment");
    match (&read, &verified) {
        (Error::Corrupt { path: a, offset: x, .. }, Error::Corrupt { path: b, offset: y, .. }) => {
            assert_eq!((a, x), (b, y), "read and verify name the same damage");
            assert_eq!((a, *x), (&early.path, early.offset), "so does the background check");
        }
        other => panic!("expected Error::Corrupt from read and verify, got {other:?}"),
    }
    read
}

fn sidecar_of(segment: &Path) -> std::path::PathBuf {
    segment.with_extension("idx")
}

#[test]
fn bit_flip_in_a_sealed_segment_names_file_and_frame_offset() {
    let origin = tempfile::tempdir().expect("temp dir");
    write_log(origin.path());
    let segments = segment_files(origin.path());
    assert!(segments.len() >= 3);
    // The second segment: sealed, with frames on both sides of the damage.
    let sealed = &segments[1];
    let first_seq = first_seq_of(sealed);
    let next_first_seq = first_seq_of(&segments[2]);
    let mut offset = SEGMENT_HEADER_BYTES;
    let scratch = tempfile::tempdir().expect("temp dir");
    for seq in first_seq..next_first_seq {
        let frame = frame_bytes(len_of(seq));
        // Damage the length, the CRC, the seq and the body in turn.
        for (case, within) in [0u64, 5, 9, frame - 1].into_iter().enumerate() {
            let dir = scratch.path().join(format!("{seq}-{case}"));
            common::copy_dir(origin.path(), &dir);
            let damaged = dir.join(sealed.file_name().expect("name"));
            flip_bit(&damaged, offset + within, (seq % 8) as u8);
            assert!(sidecar_of(&damaged).exists(), "a sealed segment has a sidecar");
            match damage_error(&dir) {
                Error::Corrupt { path, offset: at, .. } => {
                    assert_eq!(path, damaged, "the error names the damaged file");
                    assert_eq!(at, offset, "the error names the damaged frame's offset (seq {seq})");
                }
                other => panic!("expected Error::Corrupt, got {other:?}"),
            }
            // Without its sidecar the segment is scanned: open itself fails.
            std::fs::remove_file(sidecar_of(&damaged)).expect("remove sidecar");
            match open_error(&dir) {
                Error::Corrupt { path, offset: at, .. } => assert_eq!((path, at), (damaged.clone(), offset)),
                other => panic!("expected Error::Corrupt at open, got {other:?}"),
            }
            std::fs::remove_dir_all(&dir).expect("clean up");
        }
        offset += frame;
    }
    assert_eq!(offset, std::fs::metadata(sealed).expect("metadata").len(), "a sealed segment ends at its last frame");
}

#[test]
fn damaged_segment_header_is_corrupt_at_offset_zero() {
    let origin = tempfile::tempdir().expect("temp dir");
    write_log(origin.path());
    let segments = segment_files(origin.path());
    let scratch = tempfile::tempdir().expect("temp dir");
    // A sealed segment's header, and the last segment's header while it holds frames.
    for (case, segment) in [&segments[0], &segments[1], segments.last().expect("last")].into_iter().enumerate() {
        for header_byte in [0u64, 8, 16, 28] {
            let dir = scratch.path().join(format!("{case}-{header_byte}"));
            common::copy_dir(origin.path(), &dir);
            let damaged = dir.join(segment.file_name().expect("name"));
            flip_bit(&damaged, header_byte, 3);
            match open_error(&dir) {
                Error::Corrupt { path, offset, .. } => {
                    assert_eq!(path, damaged);
                    assert_eq!(offset, 0);
                }
                other => panic!("expected Error::Corrupt, got {other:?}"),
            }
            // Read-only open reports the same damage and changes nothing.
            let before = std::fs::read(&damaged).expect("read");
            assert!(matches!(Wal::open(&dir, small_segments().read_only(true)), Err(Error::Corrupt { .. })));
            assert_eq!(std::fs::read(&damaged).expect("read"), before);
            std::fs::remove_dir_all(&dir).expect("clean up");
        }
    }
    // The undamaged original still opens with every record.
    let wal = Wal::open(origin.path(), WalOptions::default().segment_bytes_max(4096)).expect("open");
    assert_eq!(wal.stats().live_records, RECORD_COUNT);
}

/// Segments large enough that a scan hands their check to the helper thread
/// that verifies ahead of the reader (`ahead.rs`).
#[test]
fn damage_in_a_segment_checked_ahead_stops_the_scan_at_the_damaged_frame() {
    const BODY_BYTES: usize = 1000;
    const RECORD_COUNT_LARGE: u64 = 12_000;
    // In the third segment; the damage below goes into the second.
    const RELEASED: std::ops::RangeInclusive<u64> = 9000..=9500;
    // Several helper runs per segment (1 MiB each), and reader runs between them.
    let options = || WalOptions::default().segment_bytes_max(4 << 20);
    let origin = tempfile::tempdir().expect("temp dir");
    {
        let wal = Wal::open(origin.path(), options()).expect("open");
        for seq in 1..=RECORD_COUNT_LARGE {
            wal.append(&body(seq, BODY_BYTES)).expect("append");
        }
        // Released frames inside a segment checked ahead: the helper checks
        // them, the reader skips them.
        wal.release(RELEASED.clone()).expect("release");
        wal.close().expect("close");
    }
    // A clean scan through the helper returns every record intact.
    {
        let wal = Wal::open(origin.path(), options()).expect("open");
        let records = common::read_all(&wal);
        let expected: Vec<u64> = (1..=RECORD_COUNT_LARGE).filter(|seq| !RELEASED.contains(seq)).collect();
        assert_eq!(records.iter().map(|(seq, _)| *seq).collect::<Vec<u64>>(), expected);
        assert!(records.iter().all(|(seq, bytes)| *bytes == body(*seq, BODY_BYTES)), "bodies read back intact");
        wal.verify().expect("verify");
    }
    let segments = segment_files(origin.path());
    let sealed = &segments[1];
    let first_seq = first_seq_of(sealed);
    let frames = first_seq_of(&segments[2]) - first_seq;
    let scratch = tempfile::tempdir().expect("temp dir");
    for local in [0, 1, frames / 3, frames / 2, frames - 1] {
        let dir = scratch.path().join(local.to_string());
        common::copy_dir(origin.path(), &dir);
        let damaged = dir.join(sealed.file_name().expect("name"));
        let offset = SEGMENT_HEADER_BYTES + local * frame_bytes(BODY_BYTES);
        flip_bit(&damaged, offset + 20, 2);
        let wal = Wal::open(&dir, options()).expect("a sidecar-indexed segment opens");
        let mut reader = wal.reader(1);
        let read_before: Vec<u64> = reader.by_ref().map_while(Result::ok).map(|e| e.seq()).collect();
        assert_eq!(read_before, (1..first_seq + local).collect::<Vec<u64>>(), "every frame before the damage");
        drop(reader);
        match wal.reader(1).find_map(Result::err) {
            Some(Error::Corrupt { path, offset: at, .. }) => assert_eq!((path, at), (damaged.clone(), offset)),
            other => panic!("expected Error::Corrupt at frame {local}, got {other:?}"),
        }
    }
}
