//! Experiment 1: the catch-up drain of a full queue against a wal replay of
//! the same log, with the phases of a replay rebuilt from the wal's reader.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use pauselog::{KeyOrdering, MapConfig, MapState, ResumeMode};
use pauselog_benches::{copy_in_order, report_ratio, touch};
use pauselog_wal::{Wal, WalOptions};

use crate::full_queue::{fill_queue, FullQueue};
use crate::mmap::scan_mmap;
use crate::{group_name, mb_per_second, measurement, median, ms, queue_bytes_full, DRAIN_RATIO_RUNS, KEY_BYTES};

/// Longest wait for a drain to reach Running.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Catch-up drain: `resume(CatchUp)` until the map is Running.
pub fn drain(queue: &FullQueue) -> Duration {
    let before = queue.sink.delivered.load(Ordering::Relaxed);
    let start = Instant::now();
    queue.map().resume(ResumeMode::CatchUp).expect("resume");
    queue.map().wait_for(|s| matches!(s, MapState::Running), DRAIN_TIMEOUT).expect("drained");
    let elapsed = start.elapsed();
    assert_eq!(queue.sink.delivered.load(Ordering::Relaxed) - before, queue.record_count, "every record delivered");
    elapsed
}

/// The integration key inside an encoded record body (`codec.rs` layout).
fn body_key(body: &[u8]) -> &[u8] {
    &body[13..13 + KEY_BYTES]
}

/// How the replay loop spends its time, rebuilt from the wal crate's public
/// reader on the same data files (opened read-only next to the paused
/// engine): one reader across all batches, as the replay keeps; a batch
/// holds at most `batch_records`, and `strict` cuts it into rounds of
/// distinct keys (a key set per round); with `copy` each body is copied
/// into one of as many reused buffers as the engine's default batch holds
/// records, as the replay decodes the record `deliver_batch` gets.
fn replay_model(data_dir: &Path, strict: bool, batch_records: usize, copy: bool) -> (Duration, u64) {
    let wal = Wal::open(data_dir, WalOptions::default().read_only(true)).expect("open read-only");
    replay_model_on(&wal, strict, batch_records, copy)
}

/// The wal replay of the same log once its frames are checked (the second
/// pass of one read-only open): how the drain's own reader finds the log,
/// since the engine wrote every frame in this process.
fn replay_checked(data_dir: &Path) -> Duration {
    let wal = Wal::open(data_dir, WalOptions::default().read_only(true)).expect("open read-only");
    replay_model_on(&wal, false, usize::MAX, false);
    replay_model_on(&wal, false, usize::MAX, false).0
}

fn replay_model_on(wal: &Wal, strict: bool, batch_records: usize, copy: bool) -> (Duration, u64) {
    let batch_records = batch_records.max(1);
    let buffer_count = if copy { MapConfig::default().replay_batch_records } else { 0 };
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); buffer_count];
    let mut next_buffer = 0;
    let start = Instant::now();
    let (mut batch_count, mut taken, mut sum) = (0u64, 0usize, 0u64);
    let mut keys = std::collections::HashSet::new();
    for entry in wal.reader(1) {
        let entry = entry.expect("read");
        if taken == 0 {
            batch_count += 1;
            keys.clear();
        }
        if strict && !keys.insert(body_key(entry.body()).to_vec()) {
            // A repeated key starts the next round of the batch.
            keys.clear();
            keys.insert(body_key(entry.body()).to_vec());
        }
        let body = match buffers.get_mut(next_buffer) {
            Some(buffer) => {
                next_buffer = (next_buffer + 1) % buffer_count;
                copy_in_order(buffer, entry.body());
                buffer.as_slice()
            }
            None => entry.body(),
        };
        sum = sum.wrapping_add(touch(body));
        taken = (taken + 1) % batch_records;
    }
    black_box((sum, &buffers));
    (start.elapsed(), batch_count)
}

/// Prints what a drain of `queue` costs in the wal reader alone, so the
/// rest of the drain time is the engine's per-batch bookkeeping.
fn report_drain_phases(queue: &FullQueue, name: &str, strict: bool) {
    let data_dir = queue.data_dir();
    let batch = queue.config.replay_batch_records;
    let (one_reader, _) = replay_model(&data_dir, false, usize::MAX, false);
    let (one_reader_copy, _) = replay_model(&data_dir, false, usize::MAX, true);
    let (batched, batch_count) = replay_model(&data_dir, strict, batch, true);
    let mb = |d: Duration| mb_per_second(queue.queued_bytes, d);
    println!(
        "PHASE drain {name} model: one wal reader touching bodies {:.1} ms ({:.0} MB/s); + 1 payload copy/record {:.1} ms ({:.0} MB/s); + batches ({batch_count} batches, {:.0} records/batch{}) {:.1} ms ({:.0} MB/s)",
        ms(one_reader),
        mb(one_reader),
        ms(one_reader_copy),
        mb(one_reader_copy),
        queue.record_count as f64 / batch_count as f64,
        if strict { ", rounds of distinct keys" } else { "" },
        ms(batched),
        mb(batched),
    );
}

// ------------------------------------------------- 1 + 2: drain and skip

/// The median drain times of [`report`], which the skips are measured against.
pub struct DrainFigures {
    pub strict: Duration,
    pub best_effort: Duration,
    pub queued_bytes: u64,
}

/// Drains of a full queue, Strict and BestEffort, against the wal replay
/// and the raw scan (median of [`DRAIN_RATIO_RUNS`]).
pub fn report() -> DrainFigures {
    let mut queued_bytes = 0;
    let mut figures = Vec::new();
    for (name, ordering) in [("Strict", KeyOrdering::Strict), ("BestEffort", KeyOrdering::BestEffort)] {
        let (mut ours, mut peer, mut replay, mut replay_of_checked) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..DRAIN_RATIO_RUNS {
            let queue = fill_queue(ordering, queue_bytes_full());
            if run == 0 {
                report_drain_phases(&queue, name, ordering == KeyOrdering::Strict);
            }
            let (peer_time, peer_bytes) = scan_mmap(&queue.data_dir());
            assert_eq!(peer_bytes, queue.queued_bytes, "the peer touches exactly the queued frames");
            replay.push(replay_model(&queue.data_dir(), false, usize::MAX, false).0);
            replay_of_checked.push(replay_checked(&queue.data_dir()));
            ours.push(drain(&queue));
            peer.push(peer_time);
            queued_bytes = queue.queued_bytes;
            eprintln!(
                "drain {name}: {} records, {:.1} MB in {:?}; memmap2 scan {:?}",
                queue.record_count,
                queue.queued_bytes as f64 / 1e6,
                ours.last().expect("run"),
                peer_time
            );
        }
        let (ours, peer, replay, replay_of_checked) =
            (median(ours), median(peer), median(replay), median(replay_of_checked));
        // The peer: replaying the same log with the wal's reader, so
        // the ratio is what the engine's bookkeeping costs beyond reading.
        report_ratio(
            &format!("catch-up drain ({name}) vs wal replay of the same log [target >= 0.5x]"),
            mb_per_second(queued_bytes, ours),
            mb_per_second(queued_bytes, replay),
            "MB/s",
        );
        report_ratio(
            &format!("catch-up drain ({name}) vs wal replay of the same log, frames already checked (informational)"),
            mb_per_second(queued_bytes, ours),
            mb_per_second(queued_bytes, replay_of_checked),
            "MB/s",
        );
        report_ratio(
            &format!("catch-up drain ({name}) vs raw memmap2 byte walk (page cache warm, informational)"),
            mb_per_second(queued_bytes, ours),
            mb_per_second(queued_bytes, peer),
            "MB/s",
        );
        figures.push(ours);
    }
    DrainFigures { strict: figures[0], best_effort: figures[1], queued_bytes }
}

/// The criterion group of drains, on queues of `queue_bytes` (each sample
/// refills one, untimed), with the raw scan beside them.
pub fn bench(c: &mut Criterion, queue_bytes: u64) {
    let bytes = queue_bytes;
    let mut group = c.benchmark_group(group_name("engine_drain"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(100)).measurement_time(measurement(3000));
    group.throughput(Throughput::Bytes(bytes));
    for (name, ordering) in
        [("catch_up_strict", KeyOrdering::Strict), ("catch_up_best_effort", KeyOrdering::BestEffort)]
    {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| drain(&fill_queue(ordering, bytes))).sum())
        });
    }
    let queue = fill_queue(KeyOrdering::Strict, bytes);
    group.bench_function("raw_memmap2", |b| b.iter(|| scan_mmap(&queue.data_dir())));
    drop(queue);
    group.finish();
}
