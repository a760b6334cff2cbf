//! docs/rules.md R19: a record read from the log can say where it lies, so an owner
//! that finds it unusable (a body that passed its CRC but does not decode)
//! can name the file and byte offset in its error, as the log does for
//! damage it finds itself.

mod common;

use common::{body, small_segments};
use pauselog_wal::{SyncPolicy, Wal, FRAME_HEADER_BYTES};

#[test]
fn every_entry_names_the_segment_file_and_offset_of_its_frame() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), small_segments().sync(SyncPolicy::Never)).expect("open");
    for seq in 1..=300 {
        wal.append(&body(seq, 30 + seq as usize)).expect("append");
    }
    wal.release(10..=20).expect("release");
    let by_scan: Vec<_> = wal.reader(1).collect::<Result<_, _>>().expect("scan");
    let by_point = wal.read_many(&[5, 50, 299]).expect("points");
    // Under `Never` the last records were read from the writer's buffer;
    // they are at the named place once written.
    wal.flush().expect("flush");
    let files: std::collections::HashSet<_> = by_scan.iter().map(|entry| entry.path().to_path_buf()).collect();
    assert!(files.len() > 3, "the records span several segments");
    for entry in by_scan.iter().chain(by_point.iter().flatten()) {
        let bytes = std::fs::read(entry.path()).expect("the named file");
        let at = entry.offset() as usize;
        let header = &bytes[at..at + FRAME_HEADER_BYTES as usize];
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        assert_eq!(
            (seq, len),
            (entry.seq(), entry.body().len()),
            "the frame at {} offset {at}",
            entry.path().display()
        );
        let body_at = at + FRAME_HEADER_BYTES as usize;
        assert_eq!(&bytes[body_at..body_at + len], entry.body());
    }
}
