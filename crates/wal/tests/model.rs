//! Model test of the log against a `BTreeMap` of live records: appends,
//! batches, releases, rotations, reopens and simulated power losses.
//!
//! docs/rules.md R6 (exact byte accounting: `live_bytes` is the sum of the encoded
//! sizes of the unreleased records), R17 (what is acknowledged survives a
//! crash; under `Never` what `durable_seq` claims survives) and R19 (a torn
//! tail is cut back to whole records). A crash may bring back records
//! released since the last sync (at least once), never one released before it.
//!
//! `PROPTEST_CASES` raises the case count (default 256 simulated, 24 on disk).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::body;
use pauselog_wal::storage::{CrashMode, SimStorage, Storage};
use pauselog_wal::{frame_bytes, FsStorage, SyncPolicy, Wal, WalOptions};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    AppendBatch(Vec<usize>),
    /// Releases through `next_seq - 1 - back` (saturating; may be 0).
    ReleaseThrough(u64),
    /// Releases `lo..=lo + span`, `lo` taken modulo `next_seq + 2` (may be 0).
    Release(u64, u64),
    Rotate,
    /// `skip_to(next_seq + n)`.
    SkipTo(u64),
    Sync,
    Reopen,
    Crash(CrashMode),
}

fn op(with_crash: bool) -> BoxedStrategy<Op> {
    let len = 0usize..600;
    let mut choices = vec![
        (10, len.clone().prop_map(Op::Append).boxed()),
        (3, prop::collection::vec(len, 1..12).prop_map(Op::AppendBatch).boxed()),
        (2, (0u64..20).prop_map(Op::ReleaseThrough).boxed()),
        (3, (0u64..1000, 0u64..8).prop_map(|(lo, span)| Op::Release(lo, span)).boxed()),
        (1, Just(Op::Rotate).boxed()),
        (1, (1u64..50).prop_map(Op::SkipTo).boxed()),
        (1, Just(Op::Sync).boxed()),
        (1, Just(Op::Reopen).boxed()),
    ];
    if with_crash {
        let mode = prop_oneof![Just(CrashMode::DropUnsynced), (0usize..2000).prop_map(CrashMode::KeepUnsyncedPrefix),];
        choices.push((2, mode.prop_map(Op::Crash).boxed()));
    }
    prop::strategy::Union::new_weighted(choices).boxed()
}

/// `Interval` once with an interval always due (a sync per append, as
/// `Always`) and once never due (writes without syncs): the model expects of
/// both only what `durable_seq` claims.
fn policy() -> impl Strategy<Value = SyncPolicy> {
    prop_oneof![
        Just(SyncPolicy::Always),
        Just(SyncPolicy::Never),
        Just(SyncPolicy::Interval(Duration::ZERO)),
        Just(SyncPolicy::Interval(Duration::from_secs(3600))),
    ]
}

struct Model {
    /// Live records: seq -> body.
    live: BTreeMap<u64, Vec<u8>>,
    /// Released since the last sync: a crash may bring these back.
    released_unsynced: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    /// Tags bodies so that a reused seq (after a crash under `Never`) is told apart.
    tag: u64,
}

impl Model {
    fn release(&mut self, lo: u64, hi: u64) {
        if lo > hi {
            return;
        }
        let seqs: Vec<u64> = self.live.range(lo..=hi).map(|(&s, _)| s).collect();
        for seq in seqs {
            let body = self.live.remove(&seq).expect("listed above");
            self.released_unsynced.insert(seq, body);
        }
    }

    fn synced(&mut self) {
        self.released_unsynced.clear();
    }
}

fn check(wal: &Wal, model: &Model) {
    let expected_bytes: u64 = model.live.values().map(|b| frame_bytes(b.len())).sum();
    assert_eq!(wal.live_bytes(), expected_bytes, "live_bytes (R6 accounting)");
    let stats = wal.stats();
    assert_eq!(stats.live_records, model.live.len() as u64, "live_records");
    assert_eq!(stats.live_bytes, expected_bytes, "stats().live_bytes");
    assert_eq!(stats.next_seq, model.next_seq, "next_seq");
    let read = common::read_all(wal);
    let expected: Vec<(u64, Vec<u8>)> = model.live.iter().map(|(&s, b)| (s, b.clone())).collect();
    common::assert_records(&read, &expected, "a reader from 1 yields exactly the live records");
    assert_eq!(wal.first_live_seq(), model.live.keys().next().copied(), "first_live_seq");
    if let Some((&seq, body)) = model.live.iter().next_back() {
        assert_eq!(wal.record_bytes(seq), Some(frame_bytes(body.len())));
        assert_eq!(wal.range_bytes(1..=seq), expected_bytes, "range_bytes over everything");
    }
}

fn open(dir: &Path, policy: SyncPolicy, storage: &Arc<dyn Storage>) -> Wal {
    let options = WalOptions::default().segment_bytes_max(4096).sync(policy);
    Wal::open_with_storage(dir, options, storage.clone()).expect("open the log")
}

/// After a power loss: every record `durable_seq` covered is back with its
/// body; nothing released before the last sync is back; anything else found
/// is a record that was appended (unsynced) or released (unsynced).
fn adopt_recovered(wal: &Wal, model: &mut Model, durable_seq: u64) {
    let recovered: BTreeMap<u64, Vec<u8>> = common::read_all(wal).into_iter().collect();
    for (seq, body) in &model.live {
        if *seq <= durable_seq {
            assert_eq!(recovered.get(seq), Some(body), "durable record {seq} lost by a crash (R17)");
        }
    }
    for (seq, body) in &recovered {
        let known = model.live.get(seq).or_else(|| model.released_unsynced.get(seq));
        assert_eq!(known, Some(body), "record {seq} came back after a crash but was never live unsynced");
    }
    model.live = recovered;
    model.released_unsynced.clear();
    model.next_seq = wal.stats().next_seq;
    assert!(model.next_seq > durable_seq, "a crash moved next_seq below durable records");
}

fn run(ops: Vec<Op>, policy: SyncPolicy, storage: Arc<dyn Storage>, sim: Option<&SimStorage>, dir: &Path) {
    let mut wal = Some(open(dir, policy, &storage));
    let mut model = Model { live: BTreeMap::new(), released_unsynced: BTreeMap::new(), next_seq: 1, tag: 0 };
    for op in ops {
        let log = wal.as_ref().expect("open");
        match op {
            Op::Append(len) => {
                model.tag += 1;
                let body = body(model.tag, len);
                let seq = log.append(&body).expect("append");
                assert_eq!(seq, model.next_seq, "seqs are gap-free");
                model.live.insert(seq, body);
                model.next_seq += 1;
                if policy == SyncPolicy::Always {
                    model.synced();
                }
            }
            Op::AppendBatch(lens) => {
                let bodies: Vec<Vec<u8>> = lens
                    .iter()
                    .map(|&len| {
                        model.tag += 1;
                        body(model.tag, len)
                    })
                    .collect();
                let seqs = log.append_batch(&bodies).expect("append_batch");
                assert_eq!(*seqs.start(), model.next_seq);
                assert_eq!(seqs.clone().count(), bodies.len());
                for (seq, body) in seqs.zip(bodies) {
                    model.live.insert(seq, body);
                }
                model.next_seq += lens.len() as u64;
                if policy == SyncPolicy::Always {
                    model.synced();
                }
            }
            Op::ReleaseThrough(back) => {
                let seq = (model.next_seq - 1).saturating_sub(back);
                log.release_through(seq).expect("release_through");
                model.release(1, seq);
            }
            Op::Release(lo, span) => {
                let lo = lo % (model.next_seq + 2);
                log.release(lo..=lo + span).expect("release");
                model.release(lo, lo + span);
            }
            Op::Rotate => log.rotate().expect("rotate"),
            Op::SkipTo(ahead) => {
                log.skip_to(model.next_seq + ahead).expect("skip_to");
                model.next_seq += ahead;
            }
            Op::Sync => {
                log.sync().expect("sync");
                model.synced();
            }
            Op::Reopen => {
                wal.take().expect("open").close().expect("close");
                wal = Some(open(dir, policy, &storage));
                model.synced();
            }
            Op::Crash(mode) => {
                let durable_seq = log.stats().durable_seq;
                // Deletions run on a background thread that a real crash
                // would end; here it must not act on the post-crash state.
                log.settle();
                sim.expect("crashes only on simulated storage").crash(mode);
                // Dropped after the crash: its close fails on stale handles and writes nothing.
                drop(wal.take());
                let reopened = open(dir, policy, &storage);
                adopt_recovered(&reopened, &mut model, durable_seq);
                wal = Some(reopened);
            }
        }
        check(wal.as_ref().expect("open"), &model);
    }
    // A clean reopen at the end changes nothing.
    wal.take().expect("open").close().expect("close");
    check(&open(dir, policy, &storage), &model);
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn simulated_storage_matches_the_model(policy in policy(), ops in prop::collection::vec(op(true), 1..80)) {
        let sim = SimStorage::new();
        let storage: Arc<dyn Storage> = Arc::new(sim.clone());
        run(ops, policy, storage, Some(&sim), Path::new("/sim/log"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

    #[test]
    fn real_files_match_the_model(policy in policy(), ops in prop::collection::vec(op(false), 1..40)) {
        let dir = tempfile::tempdir().expect("temp dir");
        run(ops, policy, Arc::new(FsStorage), None, dir.path());
    }
}
