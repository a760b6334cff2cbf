//! docs/rules.md R4, R17, R19: a reopen after a clean close does not scan
//! the active segment. The close writes the active segment's sidecar
//! (crash case C1 in `pauselog_wal::format`); the next open loads the
//! frame offsets from it and reads neither the frames nor the preallocated
//! zeros after them. The sidecar is removed, durably, before anything is
//! written to the segment again (C2), so a crash never leaves one that
//! hides frames written after it: a power loss at every storage operation
//! of closes, reopens and appends around them keeps every acknowledged
//! record. Damage in the active segment after a clean close is found by
//! the background check, naming the file and offset.

mod common;

use std::path::Path;

use common::crash_points::{every_power_loss, Step};
use common::{body, read_all, segment_files};
use pauselog_wal::{frame_bytes, Error, SyncPolicy, Wal, WalOptions, SEGMENT_HEADER_BYTES};

fn options() -> WalOptions {
    WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(8192)
}

fn sidecar_of_active(dir: &Path) -> std::path::PathBuf {
    segment_files(dir).last().expect("a segment").with_extension("idx")
}

#[test]
fn reopen_after_a_clean_close_loads_the_active_segment_from_its_sidecar() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    let expected: Vec<(u64, Vec<u8>)> = (1..=500).map(|seq| (seq, body(seq, 100))).collect();
    for (_, record) in &expected {
        wal.append(record).expect("append");
    }
    wal.close().expect("close");
    assert!(sidecar_of_active(dir.path()).exists(), "the clean close wrote the active segment's sidecar");

    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    // Frames loaded from a sidecar are unverified until checked: all 500
    // are, so none was read at open.
    assert_eq!(wal.verify().expect("verify"), 500, "the active segment was not scanned");
    common::assert_records(&read_all(&wal), &expected, "after a reopen from the sidecar");
    assert!(sidecar_of_active(dir.path()).exists(), "kept while nothing is written");
    let seq = wal.append(b"after").expect("append");
    assert_eq!(seq, 501);
    wal.flush().expect("write out");
    assert!(!sidecar_of_active(dir.path()).exists(), "removed before the first write to the segment");
    wal.close().expect("close");

    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    let mut expected = expected;
    expected.push((501, b"after".to_vec()));
    common::assert_records(&read_all(&wal), &expected, "after a second clean close");
}

/// The removal before the first write is what keeps a stale sidecar from
/// ever being found; should one be found anyway (here restored by hand),
/// the frame after its end is not zeros, so open scans instead.
#[test]
fn a_stale_clean_close_sidecar_is_not_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append_batch(&[b"one", b"two"]).expect("append");
    wal.close().expect("close");
    let stale = std::fs::read(sidecar_of_active(dir.path())).expect("the clean close's sidecar");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    wal.append(b"three").expect("append");
    drop(wal);
    std::fs::write(sidecar_of_active(dir.path()), stale).expect("restore the stale sidecar");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    let bodies: Vec<Vec<u8>> = read_all(&wal).into_iter().map(|(_, body)| body).collect();
    assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    assert_eq!(wal.verify().expect("verify"), 0, "the active segment was scanned");
}

#[test]
fn a_read_only_open_scans_and_leaves_the_sidecar() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append_batch(&[b"a", b"b"]).expect("append");
    wal.close().expect("close");
    let wal = Wal::open(dir.path(), WalOptions::default().read_only(true)).expect("read-only open");
    assert_eq!(read_all(&wal).len(), 2);
    assert_eq!(wal.verify().expect("verify"), 0, "a read-only open scans the active segment");
    drop(wal);
    assert!(sidecar_of_active(dir.path()).exists());
}

#[test]
fn damage_in_the_active_segment_after_a_clean_close_is_found_by_the_background_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    for seq in 1..=100 {
        wal.append(&body(seq, 200)).expect("append");
    }
    wal.close().expect("close");
    let active = segment_files(dir.path()).pop().expect("a segment");
    let damaged_offset = SEGMENT_HEADER_BYTES + 40 * frame_bytes(200);
    let mut bytes = std::fs::read(&active).expect("read");
    bytes[damaged_offset as usize + 30] ^= 0xFF;
    std::fs::write(&active, &bytes).expect("write");

    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open does not read the frames");
    let damage = wal.wait_background_check().expect("the background check finds the damage");
    assert_eq!((damage.path.as_path(), damage.offset), (active.as_path(), damaged_offset), "{damage}");
    match wal.read(41) {
        Err(Error::Corrupt { path, offset, .. }) => assert_eq!((path, offset), (active.clone(), damaged_offset)),
        other => panic!("reading the damaged frame: {other:?}"),
    }
    assert_eq!(wal.read(40).expect("read").expect("live").body(), body(40, 200).as_slice());
}

/// Closes and reopens around appends, a reopen with no write before the
/// next close (the sidecar is kept), and a rotation right after a reopen
/// (the sealed segment's sidecar replaces the clean close's).
#[test]
fn a_power_loss_at_every_operation_around_clean_closes_keeps_every_acknowledged_record() {
    use Step::*;
    let workload = [
        Open,
        Append(12),
        Close,
        Open,
        Append(1),
        Append(3),
        Close,
        Open,
        Close,
        Open,
        Rotate,
        Append(2),
        Close,
        Open,
        Append(30),
        Close,
    ];
    every_power_loss(&workload, options());
}
