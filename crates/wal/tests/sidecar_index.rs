//! Fast reopen: a sealed segment gets a sidecar index (`<first_seq>.idx`)
//! and the next open loads its frame offsets instead of scanning it. Those
//! frames are CRC-checked once, on first read or by `Wal::verify` (docs/rules.md R19
//! still holds: tests/sealed_corruption.rs). A missing, damaged or stale
//! sidecar falls back to the scan.

mod common;

use std::path::Path;

use common::{body, read_all, segment_files, small_segments};
use pauselog_wal::{SyncPolicy, Wal};

const RECORD_COUNT: u64 = 200;

fn len_of(seq: u64) -> usize {
    30 + (seq as usize * 11) % 150
}

fn expected() -> Vec<(u64, Vec<u8>)> {
    (1..=RECORD_COUNT).map(|seq| (seq, body(seq, len_of(seq)))).collect()
}

fn write_log(dir: &Path) {
    let wal = Wal::open(dir, small_segments().sync(SyncPolicy::Never)).expect("open");
    for seq in 1..=RECORD_COUNT {
        wal.append(&body(seq, len_of(seq))).expect("append");
    }
    wal.close().expect("close");
}

fn sidecars(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_sealed_segment_has_a_sidecar_and_reopen_checks_each_frame_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path());
    let segments = segment_files(dir.path());
    assert!(segments.len() >= 4);
    let expected_sidecars: Vec<_> = segments.iter().map(|s| s.with_extension("idx")).collect();
    assert_eq!(sidecars(dir.path()), expected_sidecars, "one per sealed segment, and the clean close's");

    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    common::assert_records(&read_all(&wal), &expected(), "records read through sidecar offsets");
    assert_eq!(wal.verify().expect("verify"), 0, "reading checked every frame already");
    drop(wal);

    let wal = Wal::open(dir.path(), small_segments().read_only(true)).expect("read-only reopen");
    let checked = wal.verify().expect("verify");
    assert!(checked > 0 && checked < RECORD_COUNT, "verify checks the sealed frames only: {checked}");
    assert_eq!(wal.verify().expect("verify"), 0, "each frame is checked once");
    common::assert_records(&read_all(&wal), &expected(), "after verify");
}

#[test]
fn damaged_or_mismatched_sidecar_falls_back_to_the_scan() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path());
    let all = sidecars(dir.path());
    // A flipped byte, a truncated file, and a sidecar of another segment.
    let mut damaged = std::fs::read(&all[0]).expect("read");
    damaged[40] ^= 1;
    std::fs::write(&all[0], damaged).expect("write");
    let bytes = std::fs::read(&all[1]).expect("read");
    std::fs::write(&all[1], &bytes[..bytes.len() - 3]).expect("write");
    std::fs::copy(&all[0], &all[2]).expect("copy");
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    common::assert_records(&read_all(&wal), &expected(), "after falling back to scans");
    assert_eq!(wal.verify().expect("verify"), 0, "scanned segments are verified");
}

#[test]
fn sidecar_leaves_with_its_segment() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path());
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    let before = sidecars(dir.path()).len();
    wal.release_through(RECORD_COUNT / 2).expect("release");
    // Released segments are deleted by the janitor; closing waits for it.
    wal.close().expect("close");
    let after = sidecars(dir.path());
    assert!(after.len() < before, "deleting released segments deletes their sidecars");
    for sidecar in &after {
        assert!(sidecar.with_extension("seg").exists(), "no orphan sidecar");
    }
}

/// Crash case R2: the old segment was sealed and its sidecar written, but the
/// new segment never became durable. The old one is active again; its
/// sidecar is stale once it grows, so open removes it.
#[test]
fn sidecar_of_a_segment_that_is_active_again_is_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_log(dir.path());
    let segments = segment_files(dir.path());
    let last = segments.last().expect("segments");
    let last_first_seq: u64 = last.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).expect("name");
    std::fs::remove_file(last).expect("remove the newest segment");
    let previous = &segments[segments.len() - 2];
    assert!(previous.with_extension("idx").exists());
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert!(!previous.with_extension("idx").exists(), "the stale sidecar is gone");
    let seq = wal.append(b"appended to the old segment").expect("append");
    assert_eq!(seq, last_first_seq);
    wal.close().expect("close");
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    let mut want: Vec<_> = expected().into_iter().filter(|(s, _)| *s < last_first_seq).collect();
    want.push((seq, b"appended to the old segment".to_vec()));
    common::assert_records(&read_all(&wal), &want, "appends continue in the old segment");
}

/// Issue 18: a sealed segment's frame offsets (4 bytes a record, 48 MB for
/// a full 1 GiB queue of 50-byte records) are served from its mapped
/// sidecar, page cache rather than the heap: from the seal on, and after a
/// reopen. The active segment's stay on the heap (its sidecar is written
/// only at a clean close, and read, not mapped).
#[test]
fn sealed_segments_serve_their_offsets_from_their_mapped_sidecars() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = common::faulty::FaultyStorage::over(std::sync::Arc::new(pauselog_wal::FsStorage));
    let open = || Wal::open_with_storage(dir.path(), small_segments(), std::sync::Arc::new(storage.clone()));
    let wal = open().expect("open");
    for seq in 1..=RECORD_COUNT {
        wal.append(&body(seq, len_of(seq))).expect("append");
    }
    let segments = segment_files(dir.path());
    let sealed_sidecars: Vec<_> = segments[..segments.len() - 1].iter().map(|s| s.with_extension("idx")).collect();
    let mapped_sidecars = |storage: &common::faulty::FaultyStorage| {
        let mut mapped: Vec<_> =
            storage.mapped().into_iter().filter(|p| p.extension().is_some_and(|x| x == "idx")).collect();
        mapped.sort();
        mapped.dedup();
        mapped
    };
    assert_eq!(mapped_sidecars(&storage), sealed_sidecars, "each seal maps the sidecar it wrote");
    common::assert_records(&read_all(&wal), &expected(), "read through mapped offsets");
    wal.close().expect("close");

    let before = storage.mapped().len();
    let wal = open().expect("reopen");
    let mut reopened: Vec<_> =
        storage.mapped()[before..].iter().filter(|p| p.extension().is_some_and(|x| x == "idx")).cloned().collect();
    reopened.sort();
    assert_eq!(reopened, sealed_sidecars, "open maps the sealed segments' sidecars, not the active one's");
    common::assert_records(&read_all(&wal), &expected(), "after a reopen");
    let released = RECORD_COUNT / 2;
    wal.release_through(released).expect("release");
    wal.append(b"after").expect("append");
    common::assert_records(
        &read_all(&wal)[..RECORD_COUNT as usize - released as usize],
        &expected()[released as usize..],
        "after a release",
    );
}
