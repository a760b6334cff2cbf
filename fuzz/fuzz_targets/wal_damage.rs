//! A log of fuzz-chosen records over small segments, closed cleanly, then one
//! fuzz-chosen damage (truncation, a zeroed range or a flipped bit) to one of
//! its segment files, and a reopen. Whatever the damage, the log never hands
//! out a wrong record (R19): every record read back is the one written under
//! that seq, in seq order; every record of the segments before the damaged
//! one reads back; the only error is `Error::Corrupt` naming the damaged
//! file; and a log that opens takes new appends.
//!
//! Input: `count, kind, segment, offset (4 bytes LE), length bytes...`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pauselog_wal::{Error, SyncPolicy, Wal};

/// The wal's integration-test helpers: small segments (4 KiB, a few
/// records each, so most inputs have sealed ones), record bodies, and the
/// listing of a log's segment files.
#[path = "../../crates/wal/tests/common/mod.rs"]
mod common;

use common::{body, segment_files, small_segments};

/// A segment file is named for its first seq.
fn first_seq(path: &Path) -> u64 {
    path.file_stem().and_then(|stem| stem.to_str()).and_then(|stem| stem.parse().ok()).expect("segment name")
}

fn damage(path: &Path, kind: u8, offset: u32, length: u8) {
    let mut bytes = std::fs::read(path).expect("read segment");
    if bytes.is_empty() {
        return;
    }
    let offset = offset as usize % bytes.len();
    match kind % 3 {
        0 => bytes.truncate(offset),
        1 => {
            let end = (offset + usize::from(length) + 1).min(bytes.len());
            bytes[offset..end].fill(0);
        }
        _ => bytes[offset] ^= 1 << (length % 8),
    }
    std::fs::write(path, &bytes).expect("write damaged segment");
}

fuzz_target!(|data: &[u8]| {
    let [count, kind, segment, o0, o1, o2, o3, lengths @ ..] = data else { return };
    let count = u64::from(count % 64) + 1;
    let written: Vec<Vec<u8>> = (1..=count)
        .map(|seq| body(seq, usize::from(lengths.get(seq as usize - 1).copied().unwrap_or(100)) * 7 % 1500))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = small_segments().sync(SyncPolicy::Never);
    let wal = Wal::open(dir.path(), options.clone()).expect("open a new log");
    for body in &written {
        wal.append(body).expect("append");
    }
    wal.close().expect("close");

    let files = segment_files(dir.path());
    let target = files[usize::from(*segment) % files.len()].clone();
    let intact_below = first_seq(&target);
    damage(&target, *kind, u32::from_le_bytes([*o0, *o1, *o2, *o3]), *lengths.first().unwrap_or(&0));

    let wal = match Wal::open(dir.path(), options) {
        Ok(wal) => wal,
        Err(Error::Corrupt { path, .. }) => {
            assert_eq!(path, target, "Corrupt names the damaged file");
            return;
        }
        Err(other) => panic!("reopen after damage: {other}"),
    };
    let mut next_expected = 1;
    for entry in wal.reader(1) {
        match entry {
            Ok(entry) => {
                assert!(entry.seq() >= next_expected, "seqs ascend");
                assert_eq!(
                    entry.body(),
                    written[entry.seq() as usize - 1].as_slice(),
                    "seq {} reads back",
                    entry.seq()
                );
                next_expected = entry.seq() + 1;
            }
            Err(Error::Corrupt { path, .. }) => {
                assert_eq!(path, target, "Corrupt names the damaged file");
                break;
            }
            Err(other) => panic!("read after damage: {other}"),
        }
    }
    assert!(next_expected >= intact_below, "every record before the damaged segment reads back");
    let seq = wal.append(b"after recovery").expect("append after recovery");
    assert_eq!(wal.read(seq).expect("read").map(|entry| entry.body().to_vec()), Some(b"after recovery".to_vec()));
});
