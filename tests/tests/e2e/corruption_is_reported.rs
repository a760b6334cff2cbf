//! R19: every frame carries a CRC32. Damage inside a sealed segment is
//! reported as `Error::Corrupt` naming the file and offset, never skipped; a
//! torn or zeroed tail of the active segment is cut back to the last whole
//! record, and zeros never decode as a record.
//!
//! The tests edit the files of a closed engine. Layout (crates/wal/src/format.rs):
//! a 32-byte segment header, then frames `len u32 LE | crc u32 | seq u64 LE |
//! body`; the active (last) segment is preallocated, so zeros follow its data.
//! A torn tail is what a crash leaves, so the tests that tear one first
//! remove what only a clean close leaves: the active segment's sidecar.

use std::path::{Path, PathBuf};

use pauselog::{Engine, Error, MapConfig, Page, Query, Submitted, SyncPolicy};
use pauselog_tests::*;

const MAP: &str = "orders";
const SEGMENT_BYTES_MAX: u64 = 64 * 1024;
const SEGMENT_HEADER_BYTES: usize = 32;
const FRAME_HEADER_BYTES: usize = 16;
const RECORDS: u64 = 300;

/// A frame found in a segment file: where it starts, its seq, its size.
#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: usize,
    seq: u64,
    frame_bytes: usize,
}

/// The frames of a segment, read up to the first all-zero (preallocated) header.
fn frames(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap();
    let mut frames = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset + FRAME_HEADER_BYTES <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[offset + 8..offset + 16].try_into().unwrap());
        if len == 0 && seq == 0 {
            break;
        }
        let frame_bytes = FRAME_HEADER_BYTES + len;
        assert!(offset + frame_bytes <= bytes.len(), "frame at {offset} of {} runs past the file", path.display());
        frames.push(Frame { offset, seq, frame_bytes });
        offset += frame_bytes;
    }
    frames
}

/// Leaves the active segment as a crash would: without the sidecar a clean
/// close writes for it (crash case C1 in crates/wal/src/format.rs).
fn as_after_a_crash(active: &Path) {
    std::fs::remove_file(active.with_extension("idx")).unwrap();
}

fn data_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("maps").join(MAP).join("data"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    segments.sort();
    segments
}

fn small_segment_engine(dir: &Path) -> Engine {
    Engine::builder(dir)
        .sync(SyncPolicy::Never)
        .clock(clock())
        .tick_interval(None)
        .segment_bytes_max(SEGMENT_BYTES_MAX)
        .open()
        .expect("engine opens")
}

/// A payload of about 1 KiB naming `n`, so 64 KiB segments hold ~60 records.
fn payload(n: u64) -> Vec<u8> {
    let mut payload = format!("payload-{n}-").into_bytes();
    payload.resize(1000, b'x');
    payload
}

/// Queues [`RECORDS`] records in a paused map and closes the engine.
fn queue_and_close(dir: &Path) {
    let engine = small_segment_engine(dir);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    map.pause().unwrap();
    for n in 0..RECORDS {
        let record = pauselog::Record::new(format!("K{}", n % 5), pauselog::Op::Create, payload(n));
        assert_eq!(map.submit(record).unwrap(), Submitted::Queued { seq: n + 1 });
    }
    drop(map);
    engine.close().unwrap();
    assert!(data_segments(dir).len() >= 3, "several data segments: {:?}", data_segments(dir));
}

/// Reopens and returns the queued seqs, checking each payload.
fn reopen_queued_seqs(dir: &Path) -> Vec<u64> {
    let engine = small_segment_engine(dir);
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    let queued = all_queued(&map, None);
    for record in &queued {
        assert_eq!(record.payload, payload(record.seq - 1), "seq {}", record.seq);
    }
    assert_eq!(map.stats().queued_records, queued.len() as u64);
    queued.iter().map(|r| r.seq).collect()
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    queue_and_close(dir.path());
    let segments = data_segments(dir.path());
    let sealed = &segments[1];
    let frames = frames(sealed);
    let frame = frames[frames.len() / 2];
    let flipped_at = frame.offset + FRAME_HEADER_BYTES + 100;
    let mut bytes = std::fs::read(sealed).unwrap();
    assert_eq!(bytes.len(), frames.last().map(|f| f.offset + f.frame_bytes).unwrap(), "a sealed segment is exact");
    bytes[flipped_at] ^= 0x01;
    std::fs::write(sealed, &bytes).unwrap();

    let engine = small_segment_engine(dir.path());
    // A sealed segment with a valid sidecar is not scanned at open; its frames
    // are checked on first read. Either way the damage must surface.
    let error = match engine.table_map(MAP, MapConfig::default(), TestDest::new()) {
        Err(error) => error,
        Ok(map) => {
            let mut query = Query::default().limit(1000);
            loop {
                match map.queued(&query) {
                    Ok(Page { next: Some(next), .. }) => query = Query::default().limit(1000).after(next),
                    Ok(_) => panic!("every queued record was read without an error"),
                    Err(error) => break error,
                }
            }
        }
    };
    match error {
        Error::Corrupt { path, offset, reason } => {
            assert_eq!(path, *sealed, "{reason}");
            assert!(
                (frame.offset as u64..=flipped_at as u64).contains(&offset),
                "offset {offset} points at the damaged frame ({}..={flipped_at}): {reason}",
                frame.offset
            );
        }
        other => panic!("expected Error::Corrupt, got {other:?}"),
    }
    // Nothing was skipped or repaired behind the operator's back.
    assert_eq!(std::fs::read(sealed).unwrap(), bytes);
}

#[test]
fn torn_last_frame_of_the_active_segment_is_cut_back_to_the_whole_frames() {
    let dir = tempfile::tempdir().unwrap();
    queue_and_close(dir.path());
    let active = data_segments(dir.path()).pop().unwrap();
    as_after_a_crash(&active);
    let last = *frames(&active).last().expect("the active segment holds records");
    assert_eq!(last.seq, RECORDS);
    let file = std::fs::OpenOptions::new().write(true).open(&active).unwrap();
    file.set_len((last.offset + last.frame_bytes / 2) as u64).unwrap();
    drop(file);

    assert_eq!(reopen_queued_seqs(dir.path()), (1..RECORDS).collect::<Vec<_>>());
}

#[test]
fn zeroed_tail_of_the_active_segment_never_decodes_as_a_record() {
    let dir = tempfile::tempdir().unwrap();
    queue_and_close(dir.path());
    let active = data_segments(dir.path()).pop().unwrap();
    as_after_a_crash(&active);
    let frames = frames(&active);
    assert!(frames.len() >= 2, "the active segment holds several records");
    let last = *frames.last().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes[last.offset..].fill(0);
    std::fs::write(&active, &bytes).unwrap();

    assert_eq!(reopen_queued_seqs(dir.path()), (1..RECORDS).collect::<Vec<_>>());
}

#[test]
fn zeroed_frame_header_with_its_body_left_is_a_torn_tail_too() {
    let dir = tempfile::tempdir().unwrap();
    queue_and_close(dir.path());
    let active = data_segments(dir.path()).pop().unwrap();
    as_after_a_crash(&active);
    let last = *frames(&active).last().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes[last.offset..last.offset + FRAME_HEADER_BYTES].fill(0);
    std::fs::write(&active, &bytes).unwrap();

    assert_eq!(reopen_queued_seqs(dir.path()), (1..RECORDS).collect::<Vec<_>>());
}

/// R19: damage in a sealed segment that its sidecar lets the open skip is
/// found right after the open by the check of sealed segments, before any
/// reader reaches it, and the map's figures name the file and the offset.
#[test]
fn damage_found_after_open_shows_in_the_stats_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    queue_and_close(dir.path());
    let sealed = data_segments(dir.path())[1].clone();
    let frame = frames(&sealed)[3];
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[frame.offset + FRAME_HEADER_BYTES + 10] ^= 0x20;
    std::fs::write(&sealed, &bytes).unwrap();

    let engine = small_segment_engine(dir.path());
    let map = open_map(&engine, MAP, MapConfig::default(), &TestDest::new());
    let deadline = std::time::Instant::now() + WAIT;
    let damage = loop {
        if let Some(damage) = map.stats().damage {
            break damage;
        }
        assert!(std::time::Instant::now() < deadline, "the background check never reported the damage");
        std::thread::yield_now();
    };
    assert!(damage.contains(&sealed.display().to_string()), "{damage}");
    assert!(damage.contains(&format!("offset {}", frame.offset)), "{damage}");
}
