//! The disk a full queue takes against its raw key and payload bytes, next
//! to sled holding the same records.

use std::path::Path;

use pauselog_benches::report_ratio;

use crate::full_queue::FullQueue;
use crate::{KEY_BYTES, PAYLOAD_BYTES};

/// Bytes the files under `dir` take on disk (allocated blocks, so a
/// preallocated segment counts whole).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .expect("list dir")
        .map(|entry| {
            let entry = entry.expect("dir entry");
            let metadata = entry.metadata().expect("metadata");
            if metadata.is_dir() {
                disk_bytes(&entry.path())
            } else {
                metadata.blocks() * 512
            }
        })
        .sum()
}

/// PERFORMANCE.md's "disk used / raw bytes" row: the whole engine directory
/// of a full queue against the key and payload bytes it holds, next to
/// sled holding the same records.
pub fn report_disk_use(queue: &FullQueue, sled_dir: &Path) {
    let raw_bytes = (queue.record_count * (KEY_BYTES + PAYLOAD_BYTES) as u64) as f64;
    report_ratio(
        "disk used by a full queue / raw key+payload bytes: ours vs sled [lower is better]",
        disk_bytes(queue.dir.path()) as f64 / raw_bytes,
        disk_bytes(sled_dir) as f64 / raw_bytes,
        "x raw",
    );
}
