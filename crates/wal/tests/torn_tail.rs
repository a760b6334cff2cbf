//! docs/rules.md R19: a torn tail of the active segment is cut back to the last whole
//! record, and a tail that reads back as zeros never decodes as a record.
//!
//! For every byte offset inside the last two frames of the last segment, the
//! file is cut there (a torn write) or zero-filled from there to its end (a
//! preallocated tail whose data never reached the disk). Exactly the whole
//! frames before the damage come back, and the log keeps working.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{body, read_all, segment_files, small_segments};
use pauselog_wal::{frame_bytes, Wal, SEGMENT_HEADER_BYTES};

const RECORD_COUNT: u64 = 100;

fn len_of(seq: u64) -> usize {
    40 + (seq as usize * 7) % 80
}

#[derive(Clone, Copy)]
enum Damage {
    Truncate,
    ZeroFill,
}

fn damage(path: &Path, offset: u64, how: Damage) {
    let file = OpenOptions::new().write(true).open(path).expect("open segment");
    match how {
        Damage::Truncate => file.set_len(offset).expect("truncate"),
        Damage::ZeroFill => {
            let len = file.metadata().expect("metadata").len();
            file.write_all_at(&vec![0u8; (len - offset) as usize], offset).expect("zero-fill");
        }
    }
}

#[test]
fn torn_or_zeroed_tail_is_cut_back_to_whole_frames() {
    let origin = tempfile::tempdir().expect("temp dir");
    {
        let wal = Wal::open(origin.path(), small_segments()).expect("open");
        for seq in 1..=RECORD_COUNT {
            assert_eq!(wal.append(&body(seq, len_of(seq))).expect("append"), seq);
        }
        wal.close().expect("close");
    }
    // A torn tail is what a crash leaves, and a crash leaves no sidecar.
    common::as_after_a_crash(origin.path());
    let segments = segment_files(origin.path());
    assert!(segments.len() >= 3, "small segments rotate");
    let last = segments.last().expect("a segment");
    let last_first_seq: u64 = last.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("name");
    // Frame boundaries of the last segment, from the record sizes.
    let mut frame_starts = vec![SEGMENT_HEADER_BYTES];
    for seq in last_first_seq..=RECORD_COUNT {
        frame_starts.push(frame_starts.last().expect("non-empty") + frame_bytes(len_of(seq)));
    }
    assert!(frame_starts.len() >= 3, "the last segment holds at least two frames");
    let frames_end = *frame_starts.last().expect("non-empty");
    let damage_from = frame_starts[frame_starts.len() - 3];
    assert!(
        std::fs::metadata(last).expect("metadata").len() > frames_end,
        "the active segment is preallocated past its frames"
    );

    let scratch = tempfile::tempdir().expect("temp dir");
    for (case, how) in [Damage::Truncate, Damage::ZeroFill].into_iter().enumerate() {
        for offset in damage_from..frames_end {
            let dir = scratch.path().join(format!("{case}-{offset}"));
            common::copy_dir(origin.path(), &dir);
            damage(&dir.join(last.file_name().expect("file name")), offset, how);

            // Whole frames before the damage survive; the damaged one goes.
            let whole_frames = frame_starts.iter().skip(1).filter(|&&end| end <= offset).count() as u64;
            let survivors = last_first_seq - 1 + whole_frames;
            let expected: Vec<(u64, Vec<u8>)> = (1..=survivors).map(|s| (s, body(s, len_of(s)))).collect();
            let wal = Wal::open(&dir, small_segments()).expect("reopen after damage");
            common::assert_records(&read_all(&wal), &expected, &format!("damage at offset {offset}"));
            let expected_bytes: u64 = (1..=survivors).map(|s| frame_bytes(len_of(s))).sum();
            assert_eq!(wal.live_bytes(), expected_bytes, "accounting after truncation at {offset}");

            // Appends continue right after the survivors, and survive a reopen.
            let appended = wal.append(b"after the damage").expect("append after recovery");
            assert_eq!(appended, survivors + 1);
            wal.close().expect("close");
            let wal = Wal::open(&dir, small_segments()).expect("second reopen");
            let mut expected = expected;
            expected.push((appended, b"after the damage".to_vec()));
            common::assert_records(
                &read_all(&wal),
                &expected,
                &format!("append after damage at {offset} survives a reopen"),
            );
            wal.close().expect("close");
            std::fs::remove_dir_all(&dir).expect("clean up");
        }
    }
}
