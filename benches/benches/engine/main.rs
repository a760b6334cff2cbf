//! Engine bench: the targets for a full queue, each measured side by
//! side with its peer in one run (PERFORMANCE.md workload: records of a
//! 16-byte integration key and a 1000-byte payload over 10,000 keys; a full
//! queue is the default cap, 1 GiB, about 1,000,000 records).
//!
//! 1. Catch-up drain (`resume(CatchUp)` → `wait_for(Running)`) into a
//!    destination that does nothing, Strict and BestEffort key ordering, vs
//!    replaying the same log with the wal crate's reader and touching every
//!    body byte. Target: >= 0.5x. Also, for information, vs walking the data
//!    segment files through memmap2 without the wal.
//! 2. Skip to live (preserve / discard) on a full queue vs draining it.
//!    Target: skip time <= 1/100 of the drain time.
//! 3. Durable `submit` while Paused (`SyncPolicy::Always`), 8 threads, vs the
//!    wal crate's own 8-thread durable append of the same encoded size.
//!    Target: >= 0.7x. Also 1 thread vs 1 thread, and 8 threads vs sled
//!    (insert + `flush()` per insert).
//! 4. A page of 50 for one key on a full paused queue, p99 over 10,000
//!    random keys, vs sled `scan_prefix(key).take(50)` on the same records;
//!    and the disk both use for those records against their raw bytes.
//! 5. Reopen of the full queue after a clean close vs a memmap2 scan of its
//!    data files.
//!
//! One module per experiment: [`drain`] (1), [`skip`] (2), [`submit`] (3),
//! [`page`] (4, with [`disk`] on the same queue) and [`reopen`] (5); they
//! share the full queue of [`full_queue`] and the raw peer of [`mmap`].
//! This file holds the workload's sizes, the scale and the order the
//! experiments run in.
//!
//! Every `RATIO` line comes from this bench's own timed runs (median of
//! [`RATIO_RUNS`], of [`DRAIN_RATIO_RUNS`] for the drains); the criterion
//! groups next to them run on a smaller queue ([`CRITERION_SHRINK`]) so that
//! their repeated setups stay short.
//! `PAUSELOG_BENCH_SCALE=quick` shrinks every size about 100x (CI smoke run).

mod disk;
mod drain;
mod full_queue;
mod mmap;
mod page;
mod reopen;
mod skip;
mod submit;

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pauselog::{Engine, KeyOrdering, SyncPolicy};
use pauselog_benches::quick;

use full_queue::fill_queue;

pub const PAYLOAD_BYTES: usize = 1000;
/// `USMF|CUST-000042`: 16 bytes.
pub const KEY_BYTES: usize = 16;
/// The engine's data log body: `op u8 | queued_at u64 | key_len u32 | key |
/// payload` (pauselog's `codec.rs`). The wal and sled peers write this many
/// bytes per record, so all three carry the same encoded size.
pub const ENCODED_BODY_BYTES: usize = 1 + 8 + 4 + KEY_BYTES + PAYLOAD_BYTES;
pub const KEY_COUNT_FULL: u64 = 10_000;
const QUEUE_BYTES_FULL: u64 = 1 << 30;
/// Timed runs behind each RATIO line; the median is reported.
pub const RATIO_RUNS: usize = 3;
/// Timed runs behind each drain RATIO line. A drain takes about 150 ms,
/// and this VM has bursts that make one run take 1.5-2x as long (on either
/// side); with 5 runs the median passes over two of them.
pub const DRAIN_RATIO_RUNS: usize = 5;
/// The criterion groups run on a queue this many times smaller than the
/// full one (each sample rebuilds it, untimed).
const CRITERION_SHRINK: u64 = 10;
pub const MAP_NAME: &str = "customers";

fn scale_divisor() -> u64 {
    if quick() {
        100
    } else {
        1
    }
}

pub fn key_count() -> u64 {
    KEY_COUNT_FULL / scale_divisor()
}

pub fn queue_bytes_full() -> u64 {
    QUEUE_BYTES_FULL / scale_divisor()
}

pub fn queue_bytes_criterion() -> u64 {
    if quick() {
        queue_bytes_full()
    } else {
        queue_bytes_full() / CRITERION_SHRINK
    }
}

/// Criterion group names carry the scale, so that a quick run is never
/// compared with a full run's saved baseline.
pub fn group_name(base: &str) -> String {
    if quick() {
        format!("{base}_quick")
    } else {
        base.to_owned()
    }
}

/// Criterion's measurement time per function: `full_ms`, or a fifth of it
/// in a quick run (a smoke test, not a measurement).
pub fn measurement(full_ms: u64) -> Duration {
    Duration::from_millis(if quick() { full_ms / 5 } else { full_ms })
}

pub fn key_name(index: u64) -> String {
    let key = format!("USMF|CUST-{index:06}");
    debug_assert_eq!(key.len(), KEY_BYTES);
    key
}

pub fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES).map(|i| (i * 31 % 251) as u8 + 1).collect()
}

pub fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

pub fn mb_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Bench data lives in cargo's scratch directory under the target directory
/// (a real disk, never the source tree).
pub fn bench_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench temp dir")
}

pub fn open_engine(dir: &Path, sync: SyncPolicy) -> Engine {
    Engine::builder(dir).sync(sync).tick_interval(None).open().expect("open engine")
}

/// sled's key for a record: `key ‖ seq` (big-endian), so a key's records
/// sort by seq under `scan_prefix(key)`.
pub fn sled_key(key: &str, seq: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.len() + 8);
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes
}

fn bench_drain_and_skip(c: &mut Criterion) {
    let drains = drain::report();
    skip::report(&drains);
    let queue_bytes = queue_bytes_criterion();
    drain::bench(c, queue_bytes);
    skip::bench(c, queue_bytes);
}

fn bench_submit_durable(c: &mut Criterion) {
    submit::report();
    submit::bench(c);
}

/// Experiments 4 and 5 on one full queue: pages (with the disk use of the
/// same records), then reopens; the reopen group fills a queue of its own.
fn bench_page_and_reopen(c: &mut Criterion) {
    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
    eprintln!("full queue for pages and reopen: {} records, {} bytes", queue.record_count, queue.queued_bytes);

    page::report_read_phases(&queue);
    let (sled_dir, db) = page::sled_copy(&queue);
    disk::report_disk_use(&queue, sled_dir.path());
    page::report(&queue, &db);
    page::bench(c, &queue, &db);
    drop(db);
    drop(sled_dir);

    reopen::report(&mut queue);
    drop(queue);
    reopen::bench(c);
}

criterion_group!(benches, bench_drain_and_skip, bench_submit_durable, bench_page_and_reopen);
criterion_main!(benches);
