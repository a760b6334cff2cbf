//! The raw peer of a replay and of a reopen: the queue's data segment files
//! walked through memmap2, without the wal.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pauselog_benches::touch;
use pauselog_wal::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};

pub fn segment_paths(data_dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir)
        .expect("list data dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    paths.sort();
    paths
}

/// The raw replay peer: maps each segment file in order and walks its
/// frames by their length fields, touching every frame byte (header and
/// body). No CRC, no decoding, no bookkeeping. Returns the time and the
/// frame bytes touched.
pub fn scan_mmap(data_dir: &Path) -> (Duration, u64) {
    let paths = segment_paths(data_dir);
    let start = Instant::now();
    let (mut sum, mut frame_bytes) = (0u64, 0u64);
    for path in paths {
        let file = std::fs::File::open(&path).expect("open segment");
        // SAFETY: nothing writes, truncates or deletes the segments while
        // this map is alive (the engine is paused, or closed).
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("map segment");
        let header = FRAME_HEADER_BYTES as usize;
        let mut offset = SEGMENT_HEADER_BYTES as usize;
        while offset + header <= map.len() {
            let len = u32::from_le_bytes(map[offset..offset + 4].try_into().expect("4 bytes")) as usize;
            let seq = u64::from_le_bytes(map[offset + 8..offset + 16].try_into().expect("8 bytes"));
            if seq == 0 {
                break; // the preallocated zeros of the active segment
            }
            let end = offset + header + len;
            sum = sum.wrapping_add(touch(&map[offset..end]));
            frame_bytes += (end - offset) as u64;
            offset = end;
        }
    }
    black_box(sum);
    (start.elapsed(), frame_bytes)
}
