//! Arbitrary bytes as the only segment of a log: opening must never panic,
//! and whatever it recovers must read back with every frame checked (R19).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let segment = dir.path().join("00000000000000000001.seg");
    std::fs::write(&segment, data).expect("write segment");
    let options = WalOptions::default().sync(SyncPolicy::Never).segment_bytes_max(64 * 1024);
    if let Ok(wal) = Wal::open(dir.path(), options) {
        let records = wal.reader(1).filter_map(Result::ok).count() as u64;
        assert_eq!(records, wal.stats().live_records);
        let seq = wal.append(b"after recovery").expect("append after recovery");
        assert_eq!(wal.read(seq).expect("read").map(|e| e.body().to_vec()), Some(b"after recovery".to_vec()));
    }
});
