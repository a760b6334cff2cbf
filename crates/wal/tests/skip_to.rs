//! docs/rules.md R21: `Wal::skip_to(seq)` makes the next append get `seq`,
//! durably, so that no seq is handed out twice. The engine calls it each
//! time a table map switches from live deliveries to queueing, so the
//! common case, an empty active segment, must be cheap: the segment is
//! renamed to start at `seq` (crash case S1 in `pauselog_wal::format`),
//! with no file created or deleted and so no janitor thread started. An
//! active segment that holds records is sealed and the next one starts at
//! `seq`, again with nothing to delete.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::crash_points::{every_power_loss, Step};
use common::faulty::{FaultyStorage, OpKind};
use common::{read_all, segment_files};
use pauselog_wal::storage::{CrashMode, SimStorage};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

fn options() -> WalOptions {
    WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(8192)
}

#[test]
fn skipping_on_an_empty_active_segment_renames_it_and_creates_or_deletes_nothing() {
    let sim = SimStorage::new();
    let storage = FaultyStorage::over_sim(&sim);
    let dir = Path::new("/sim/log");
    let wal = Wal::open_with_storage(dir, options(), Arc::new(storage.clone())).expect("open");
    let (creates, removes) = (storage.count(OpKind::Create), storage.count(OpKind::Remove));
    wal.skip_to(1000).expect("skip");
    assert_eq!(storage.count(OpKind::Create), creates, "no file created");
    assert_eq!(storage.count(OpKind::Remove), removes, "no file deleted");
    assert_eq!(storage.count(OpKind::Rename), 1, "the empty segment renamed");
    assert_eq!(wal.stats().segment_count, 1);
    assert_eq!(wal.append(b"first").expect("append"), 1000);
    assert_eq!(wal.stats().durable_seq, 1000);
    drop(wal);

    // The skip and the append are durable: a power loss keeps both.
    sim.crash(CrashMode::DropUnsynced);
    let wal = Wal::open_with_storage(dir, options(), Arc::new(sim.clone())).expect("reopen");
    assert_eq!(read_all(&wal), [(1000, b"first".to_vec())]);
    assert_eq!(wal.append(b"second").expect("append"), 1001);
}

#[test]
fn skipping_past_records_seals_their_segment_and_deletes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(dir.path(), options()).expect("open");
    wal.append_batch(&[b"a", b"b"]).expect("append");
    wal.skip_to(50).expect("skip");
    assert_eq!(wal.append(b"c").expect("append"), 50);
    let names: Vec<String> = segment_files(dir.path())
        .iter()
        .map(|path| path.file_name().and_then(|n| n.to_str()).expect("name").to_owned())
        .collect();
    assert_eq!(names, ["00000000000000000001.seg", "00000000000000000050.seg"]);
    wal.skip_to(60).expect("skip again");
    wal.skip_to(70).expect("and again, on the empty segment");
    assert_eq!(wal.append(b"d").expect("append"), 70);
    wal.close().expect("close");
    let wal = Wal::open(dir.path(), options()).expect("reopen");
    let seqs: Vec<u64> = read_all(&wal).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [1, 2, 50, 70]);
    assert_eq!(wal.next_seq(), 71);
}

/// A skip on an empty fresh segment, past records, on the empty segment
/// a skip left, after a clean close left a sidecar of an empty or a
/// non-empty active segment; a power loss before each storage operation.
#[test]
fn a_power_loss_at_every_operation_of_skips_reuses_no_seq() {
    use Step::*;
    let workload = [
        Open,
        SkipTo(10),
        Append(3),
        SkipTo(100),
        SkipTo(50),
        Append(2),
        Close,
        Open,
        SkipTo(7),
        Close,
        Open,
        SkipTo(5),
        Append(1),
        Close,
    ];
    every_power_loss(&workload, options());
}
