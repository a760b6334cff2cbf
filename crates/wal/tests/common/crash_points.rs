//! Crash-point enumeration over a scripted workload of opens, closes,
//! appends, rotations and skips: a simulated power loss right before each
//! storage operation a clean run performs (see `faulty.rs`), keeping
//! nothing unsynced or a torn prefix of it. After each, the log must open,
//! hold every acknowledged record with its body and nothing never
//! appended, agree with an independent audit of its files, assign no seq
//! at or below a completed skip, and take appends that survive a clean
//! close and the reopen after it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use pauselog_wal::storage::{CrashMode, SimStorage};
use pauselog_wal::{audit_with_storage, Wal, WalOptions};

use super::faulty::{Fault, FaultyStorage};
use super::{body, read_all};

const DIR: &str = "/sim/log";

/// One step of a workload.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Open,
    Close,
    /// Appends this many records, one call each.
    Append(u64),
    Rotate,
    /// `skip_to(next_seq + n)`.
    SkipTo(u64),
}

/// What a run of the workload was told.
#[derive(Debug, Default)]
struct Told {
    acked: BTreeMap<u64, Vec<u8>>,
    attempted: BTreeSet<Vec<u8>>,
    /// The highest seq a completed `skip_to` made the next one.
    skipped_to: u64,
}

/// Runs the workload until the first error (after the crash every
/// operation fails).
fn run(storage: &FaultyStorage, workload: &[Step], options: &WalOptions) -> Told {
    let mut told = Told::default();
    let mut wal: Option<Wal> = None;
    let mut tag = 0u64;
    for step in workload {
        let result = match *step {
            Step::Open => Wal::open_with_storage(Path::new(DIR), options.clone(), Arc::new(storage.clone()))
                .map(|opened| wal = Some(opened)),
            Step::Close => wal.take().expect("open").close(),
            Step::Append(count) => (0..count).try_for_each(|_| {
                tag += 1;
                let record = body(tag, 100 + (tag as usize * 37) % 400);
                told.attempted.insert(record.clone());
                let seq = wal.as_ref().expect("open").append(&record)?;
                told.acked.insert(seq, record);
                Ok(())
            }),
            Step::Rotate => wal.as_ref().expect("open").rotate(),
            Step::SkipTo(ahead) => {
                let wal = wal.as_ref().expect("open");
                let seq = wal.next_seq() + ahead;
                wal.skip_to(seq).map(|()| told.skipped_to = told.skipped_to.max(seq))
            }
        };
        if result.is_err() {
            break;
        }
    }
    told
}

/// Crashes `workload` before each of its storage operations, in both
/// crash modes, and checks what reopens (see the module docs).
pub fn every_power_loss(workload: &[Step], options: WalOptions) {
    let (total, clean) = {
        let sim = SimStorage::new();
        let storage = FaultyStorage::over_sim(&sim);
        let told = run(&storage, workload, &options);
        (storage.ops(), told)
    };
    let appends: u64 = workload.iter().map(|step| if let Step::Append(n) = step { *n } else { 0 }).sum();
    assert_eq!(clean.acked.len() as u64, appends, "a clean run acknowledges every append");
    for at in 1..=total {
        for mode in [CrashMode::DropUnsynced, CrashMode::KeepUnsyncedPrefix((at as usize * 131) % 3000)] {
            let what = format!("power loss before operation {at} of {total} ({mode:?})");
            let sim = SimStorage::new();
            let storage = FaultyStorage::over_sim(&sim);
            storage.arm(Fault::Crash { at, mode });
            let told = run(&storage, workload, &options);
            assert!(storage.crashed(), "{what}: the crash point was reached");
            check_after_crash(&sim, &options, &told, &what);
        }
    }
}

fn check_after_crash(sim: &SimStorage, options: &WalOptions, told: &Told, what: &str) {
    let open = || Wal::open_with_storage(Path::new(DIR), options.clone(), Arc::new(sim.clone()));
    let wal = open().unwrap_or_else(|e| panic!("{what}: the log does not open: {e}"));
    let found: BTreeMap<u64, Vec<u8>> = read_all(&wal).into_iter().collect();
    for (seq, record) in &told.acked {
        assert!(found.get(seq) == Some(record), "{what}: acknowledged seq {seq} lost or changed");
    }
    for (seq, record) in &found {
        assert!(told.attempted.contains(record), "{what}: seq {seq} holds a body never appended");
    }
    let audit = audit_with_storage(Path::new(DIR), sim).expect("audit");
    assert!(audit.damage().is_empty(), "{what}: {:?}", audit.damage());
    assert_eq!(audit.live_records(), found.len() as u64, "{what}: audit of the files");
    assert_eq!(wal.stats().live_records, found.len() as u64, "{what}: accounting");
    let last = found.keys().max().copied().unwrap_or(0);
    let seq = wal.append(b"after").unwrap_or_else(|e| panic!("{what}: append: {e}"));
    assert!(seq > last, "{what}: seq {seq} reused");
    assert!(seq >= told.skipped_to, "{what}: seq {seq} below a completed skip to {}", told.skipped_to);
    wal.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
    let wal = open().expect("reopen after a clean close");
    assert_eq!(wal.read(seq).expect("read").expect("live").body(), b"after", "{what}");
    wal.close().expect("close");
}
