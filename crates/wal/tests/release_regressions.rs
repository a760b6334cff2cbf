//! Regressions for release and reader bugs, each found by the model test
//! (tests/model.rs). docs/rules.md R6 (released bytes leave the accounting exactly)
//! and R18 (records come back only if released since the last sync).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{body, read_all};
use pauselog_wal::storage::{CrashMode, SimStorage, Storage};
use pauselog_wal::{frame_bytes, SyncPolicy, Wal, WalOptions};

fn open_sim(storage: &SimStorage, sync: SyncPolicy) -> Wal {
    let storage: Arc<dyn Storage> = Arc::new(storage.clone());
    let options = WalOptions::default().sync(sync).segment_bytes_max(4096);
    Wal::open_with_storage(Path::new("/sim/log"), options, storage).expect("open")
}

/// Found by the model test: `release(0..=n)` wrote a release.log entry with
/// lo 0, which reading takes for a torn tail, so the release (and every
/// later one) was forgotten on reopen.
#[test]
fn release_from_seq_zero_survives_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append(b"one").expect("append");
    wal.append(b"two").expect("append");
    wal.release(0..=1).expect("release");
    wal.append(b"three").expect("append");
    wal.release(3..=3).expect("release");
    wal.close().expect("close");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    assert_eq!(read_all(&wal), [(2, b"two".to_vec())]);
    assert_eq!(wal.live_bytes(), frame_bytes(3));
}

/// Found by the model test: under `SyncPolicy::Never` a reader starting at a
/// flushed seq stopped at the end of the flushed part when the records there
/// were released, never flushing the buffer: it missed live records.
#[test]
fn reader_sees_buffered_records_after_released_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    wal.append(b"one").expect("append");
    wal.release_through(1).expect("release");
    assert!(read_all(&wal).is_empty()); // flushes seq 1
    wal.append(b"two").expect("append"); // buffered
    assert_eq!(read_all(&wal), [(2, b"two".to_vec())]);
}

/// Found by the model test: release.log was created without syncing its
/// directory entry, so after `release` + `sync()` a power loss could drop
/// the whole file and bring released records back.
#[test]
fn synced_release_survives_power_loss() {
    let sim = SimStorage::new();
    let wal = open_sim(&sim, SyncPolicy::Never);
    wal.append_batch(&[b"a", b"b", b"c"]).expect("append");
    wal.release_through(2).expect("release");
    wal.sync().expect("sync");
    sim.crash(CrashMode::DropUnsynced);
    drop(wal);
    let wal = open_sim(&sim, SyncPolicy::Never);
    assert_eq!(read_all(&wal), [(3, b"c".to_vec())]);
}

/// Found while fixing the above: a release.log entry can name seqs past the
/// recovered tail (a process crash under `Never` keeps the written entry but
/// loses the buffered records). Those seqs are assigned again after the
/// crash, and the new records must not start out released.
#[test]
fn stale_release_entry_does_not_release_reused_seqs() {
    let sim = SimStorage::new();
    let wal = open_sim(&sim, SyncPolicy::Never);
    wal.append_batch(&[b"a", b"b"]).expect("append"); // buffered, never synced
    wal.release_through(2).expect("release");
    // The release entry reaches the disk, the records do not.
    sim.crash(CrashMode::KeepUnsyncedPrefix(usize::MAX));
    drop(wal);
    let wal = open_sim(&sim, SyncPolicy::Always);
    assert!(read_all(&wal).is_empty());
    let seqs = wal.append_batch(&[body(1, 10), body(2, 10)]).expect("append");
    assert_eq!(seqs, 1..=2, "seqs of lost records are assigned again");
    drop(wal);
    let wal = open_sim(&sim, SyncPolicy::Always);
    assert_eq!(read_all(&wal), [(1, body(1, 10)), (2, body(2, 10))], "new records are live");
}

/// Found by the I/O error sweep (tests/fault_sweep.rs): a release whose
/// release.log write failed had already released its records in memory, so
/// a later release of the same records returned `Ok` without writing an
/// entry, and a restart brought them back. Now the entry is written first:
/// a failed release changes nothing, and the retry records it.
#[test]
fn a_release_that_failed_to_write_its_entry_releases_nothing() {
    use common::faulty::{Fault, FaultyStorage, OpKind};
    let sim = SimStorage::new();
    let storage = FaultyStorage::over_sim(&sim);
    let options = WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(4096);
    let wal = Wal::open_with_storage(Path::new("/sim/log"), options.clone(), Arc::new(storage.clone())).expect("open");
    for n in 1..=5 {
        wal.append(&body(n, 50)).expect("append");
    }
    let writes_before = storage.count_on("release.log", OpKind::Write);
    storage.arm(Fault::Fail { at: 1, errno: 5, persistent: false });
    assert!(matches!(wal.release(1..=3), Err(pauselog_wal::Error::Io { .. })), "the entry's write fails");
    assert_eq!(storage.count_on("release.log", OpKind::Write), writes_before + 1, "the failed write was the entry");
    assert_eq!(wal.stats().live_records, 5, "a failed release changes nothing");
    wal.release(1..=3).expect("the retry");
    wal.close().expect("close");
    let wal = Wal::open_with_storage(Path::new("/sim/log"), options, Arc::new(sim.clone())).expect("reopen");
    assert_eq!(read_all(&wal).iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [4, 5], "released by the retry");
}
