//! docs/rules.md §8, R19: a read-only open (what `pauselog status|queued|verify` use)
//! gives a consistent answer on a log another process is changing: a
//! segment deleted since the listing was drained, not an error; a frame
//! being written is the end of the log, not damage; and the active segment,
//! which sealing shortens, is read with `read_at`, never mapped (reading a
//! mapping past a file's new end is a SIGBUS).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::faulty::FaultyStorage;
use common::{body, read_all, segment_files, small_segments};
use pauselog_wal::{audit, FsStorage, SyncPolicy, Wal, WalOptions};

/// A log of small segments with 200 records, the first 60 released.
fn write_log(dir: &Path) -> Wal {
    let wal = Wal::open(dir, small_segments()).expect("open");
    for seq in 1..=200 {
        wal.append(&body(seq, 100)).expect("append");
    }
    wal
}

#[test]
fn a_segment_deleted_after_the_listing_counts_as_drained() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = write_log(dir.path());
    // As a janitor would between a reader's listing and its opens.
    let storage = FaultyStorage::over(Arc::new(FsStorage));
    storage.after_next_list(|dir| std::fs::remove_file(&segment_files(dir)[0]).expect("delete the oldest segment"));
    let view = Wal::open_with_storage(dir.path(), small_segments().read_only(true), Arc::new(storage))
        .expect("a vanished segment is no error");
    let records = read_all(&view);
    let first = records.first().map(|(seq, _)| *seq).expect("later segments are read");
    assert!(first > 1, "the deleted segment's records are gone, the others are there");
    assert_eq!(records.last().map(|(seq, _)| *seq), Some(200));
    assert_eq!(view.stats().live_records, records.len() as u64);
    drop(wal);
}

#[test]
fn read_only_open_never_maps_the_active_segment_and_a_partial_frame_ends_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = write_log(dir.path());
    wal.flush().expect("flush");
    // Half a frame after the last one, as a reader sees a frame being written.
    let active = segment_files(dir.path()).pop().expect("segments");
    let end = std::fs::metadata(&active).expect("metadata").len();
    let records_before = read_all(&wal).len();
    let mut partial = Vec::new();
    pauselog_wal_frame(&mut partial, 201, &body(201, 100));
    let file = std::fs::OpenOptions::new().write(true).open(&active).expect("open active");
    let offset = active_frames_end(&active, end);
    std::os::unix::fs::FileExt::write_all_at(&file, &partial[..40], offset).expect("write half a frame");

    let storage = FaultyStorage::over(Arc::new(FsStorage));
    let view = Wal::open_with_storage(dir.path(), small_segments().read_only(true), Arc::new(storage.clone()))
        .expect("a frame being written is no damage");
    assert!(!storage.mapped().contains(&active), "the active segment was mapped at open");
    assert_eq!(read_all(&view).len(), records_before, "the records before the partial frame");
    drop(wal);
}

/// Where the active segment's frames end: the first all-zero 16 bytes.
fn active_frames_end(path: &Path, len: u64) -> u64 {
    let bytes = std::fs::read(path).expect("read");
    let mut offset = 32usize;
    while offset + 16 <= len as usize && bytes[offset..offset + 16].iter().any(|&b| b != 0) {
        let body_len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        offset += 16 + body_len;
    }
    offset as u64
}

/// A frame as format.rs lays it out.
fn pauselog_wal_frame(out: &mut Vec<u8>, seq: u64, body: &[u8]) {
    let len = (body.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(&seq.to_le_bytes());
    hasher.update(body);
    out.extend_from_slice(&len);
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(body);
}

/// The live case on real files: a writer appends (preallocated segments
/// sealed and cut every few dozen records), releases and lets the janitor
/// delete, while another thread opens the log read-only, reads it all and
/// audits it, again and again. Nothing fails, nothing is called damage, and
/// each view is consistent: gap-free after its first live record, with
/// exact accounting.
#[test]
fn read_only_views_of_a_log_being_written_and_drained_are_consistent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = WalOptions::default()
        .segment_bytes_max(32 * 1024)
        .sync(SyncPolicy::Interval(std::time::Duration::from_secs(3600)));
    let wal = Wal::open(dir.path(), options).expect("open");
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for seq in 1..=20_000u64 {
                wal.append(&body(seq, 50 + (seq as usize * 7) % 200)).expect("append");
                if seq % 100 == 0 {
                    wal.release_through(seq - 50).expect("release");
                }
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut views = 0;
        while !done.load(Ordering::SeqCst) || views < 20 {
            let view = Wal::open(dir.path(), WalOptions::default().read_only(true)).expect("read-only open");
            let records = read_all(&view);
            for window in records.windows(2) {
                assert_eq!(window[1].0, window[0].0 + 1, "view {views}: gap-free");
            }
            for (seq, found) in &records {
                assert!(found == &body(*seq, 50 + (*seq as usize * 7) % 200), "view {views}: body of seq {seq}");
            }
            let bytes: u64 = records.iter().map(|(_, b)| pauselog_wal::frame_bytes(b.len())).sum();
            assert_eq!((view.stats().live_records, view.live_bytes()), (records.len() as u64, bytes));
            let found = audit(dir.path()).expect("audit");
            assert!(found.damage().is_empty(), "view {views}: {:?}", found.damage());
            views += 1;
        }
    });
}
