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
//! Every `RATIO` line comes from this bench's own timed runs (median of
//! [`RATIO_RUNS`], of [`DRAIN_RATIO_RUNS`] for the drains); the criterion
//! groups next to them run on a smaller queue ([`CRITERION_SHRINK`]) so that
//! their repeated setups stay short.
//! `PAUSELOG_BENCH_SCALE=quick` shrinks every size about 100x (CI smoke run).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pauselog::{
    DeliveryError, Destination, Engine, Error, KeyOrdering, MapConfig, MapState, Op, Query, QueuedRecord, Record,
    ResumeMode, SyncPolicy, TableMap,
};
use pauselog_benches::{copy_in_order, quick, report_ratio, timed_threads, touch};
use pauselog_wal::{Wal, WalOptions, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const PAYLOAD_BYTES: usize = 1000;
/// `USMF|CUST-000042`: 16 bytes.
const KEY_BYTES: usize = 16;
/// The engine's data log body: `op u8 | queued_at u64 | key_len u32 | key |
/// payload` (pauselog's `codec.rs`). The wal and sled peers write this many
/// bytes per record, so all three carry the same encoded size.
const ENCODED_BODY_BYTES: usize = 1 + 8 + 4 + KEY_BYTES + PAYLOAD_BYTES;
const KEY_COUNT_FULL: u64 = 10_000;
const QUEUE_BYTES_FULL: u64 = 1 << 30;
/// Timed runs behind each RATIO line; the median is reported.
const RATIO_RUNS: usize = 3;
/// Timed runs behind each drain RATIO line. A drain takes about 150 ms,
/// and this VM has bursts that make one run take 1.5-2x as long (on either
/// side); with 5 runs the median passes over two of them.
const DRAIN_RATIO_RUNS: usize = 5;
/// The criterion groups run on a queue this many times smaller than the
/// full one (each sample rebuilds it, untimed).
const CRITERION_SHRINK: u64 = 10;
const PAGE_LIMIT: usize = 50;
const PAGE_QUERY_COUNT: usize = 10_000;
const MAP_NAME: &str = "customers";
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
const KEY_SEED: u64 = 7;

fn scale_divisor() -> u64 {
    if quick() {
        100
    } else {
        1
    }
}

fn key_count() -> u64 {
    KEY_COUNT_FULL / scale_divisor()
}

fn queue_bytes_full() -> u64 {
    QUEUE_BYTES_FULL / scale_divisor()
}

fn queue_bytes_criterion() -> u64 {
    if quick() {
        queue_bytes_full()
    } else {
        queue_bytes_full() / CRITERION_SHRINK
    }
}

/// Criterion group names carry the scale, so that a quick run is never
/// compared with a full run's saved baseline.
fn group_name(base: &str) -> String {
    if quick() {
        format!("{base}_quick")
    } else {
        base.to_owned()
    }
}

/// Criterion's measurement time per function: `full_ms`, or a fifth of it
/// in a quick run (a smoke test, not a measurement).
fn measurement(full_ms: u64) -> Duration {
    Duration::from_millis(if quick() { full_ms / 5 } else { full_ms })
}

fn key_name(index: u64) -> String {
    let key = format!("USMF|CUST-{index:06}");
    debug_assert_eq!(key.len(), KEY_BYTES);
    key
}

fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES).map(|i| (i * 31 % 251) as u8 + 1).collect()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn mb_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Bench data lives in cargo's scratch directory under the target directory
/// (a real disk, never the source tree).
fn bench_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench temp dir")
}

fn open_engine(dir: &Path, sync: SyncPolicy) -> Engine {
    Engine::builder(dir).sync(sync).tick_interval(None).open().expect("open engine")
}

/// A destination that takes everything and only counts.
#[derive(Debug, Default)]
struct Sink {
    delivered: AtomicU64,
}

impl Destination for Sink {
    fn deliver(&self, _record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        self.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
        vec![Ok(()); batch.len()]
    }
}

// ------------------------------------------------------------- full queues

/// A paused map whose queue was filled up to its size cap (so it is blocked),
/// built with `SyncPolicy::Never` and one `Engine::sync()`.
struct FullQueue {
    // Field order matters for drop: handle, then engine, then the directory.
    map: Option<TableMap>,
    engine: Option<Engine>,
    sink: Arc<Sink>,
    config: MapConfig,
    record_count: u64,
    queued_bytes: u64,
    dir: tempfile::TempDir,
}

fn map_config(ordering: KeyOrdering, queue_bytes_max: u64) -> MapConfig {
    MapConfig { key_ordering: ordering, max_queue_bytes: queue_bytes_max, ..MapConfig::default() }
}

/// The keys of the queue, in seq order (seq = position + 1).
fn key_sequence() -> impl Iterator<Item = String> {
    let mut rng = SmallRng::seed_from_u64(KEY_SEED);
    let key_count = key_count();
    std::iter::repeat_with(move || key_name(rng.gen_range(0..key_count)))
}

fn fill_queue(ordering: KeyOrdering, queue_bytes_max: u64) -> FullQueue {
    let dir = bench_dir("pauselog-engine-bench");
    let engine = open_engine(dir.path(), SyncPolicy::Never);
    let sink = Arc::new(Sink::default());
    let config = map_config(ordering, queue_bytes_max);
    let map = engine.table_map(MAP_NAME, config.clone(), sink.clone()).expect("table map");
    map.pause().expect("pause");
    let payload = payload();
    let mut record_count = 0u64;
    for key in key_sequence() {
        match map.submit(Record::new(key, Op::Update, payload.clone())) {
            Ok(_) => record_count += 1,
            Err(Error::Blocked { .. }) => break,
            Err(error) => panic!("submit while paused: {error}"),
        }
    }
    engine.sync().expect("sync");
    let stats = map.stats();
    assert_eq!(stats.queued_records, record_count);
    FullQueue {
        map: Some(map),
        engine: Some(engine),
        sink,
        config,
        record_count,
        queued_bytes: stats.queued_bytes,
        dir,
    }
}

impl FullQueue {
    fn map(&self) -> &TableMap {
        self.map.as_ref().expect("map open")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("maps").join(MAP_NAME).join("data")
    }

    /// Clean close: handle first (it keeps the map's files open), then the engine.
    fn close(&mut self) {
        drop(self.map.take());
        if let Some(engine) = self.engine.take() {
            engine.close().expect("close");
        }
    }

    /// `Engine::open` + `table_map` after a clean close; returns its time.
    fn reopen(&mut self) -> Duration {
        self.close();
        let start = Instant::now();
        let engine = open_engine(self.dir.path(), SyncPolicy::Never);
        let map = engine.table_map(MAP_NAME, self.config.clone(), self.sink.clone()).expect("table map");
        let elapsed = start.elapsed();
        assert_eq!(map.stats().queued_records, self.record_count, "reopen finds the whole queue");
        self.engine = Some(engine);
        self.map = Some(map);
        elapsed
    }
}

impl Drop for FullQueue {
    fn drop(&mut self) {
        self.close();
    }
}

/// Catch-up drain: `resume(CatchUp)` until the map is Running.
fn drain(queue: &FullQueue) -> Duration {
    let before = queue.sink.delivered.load(Ordering::Relaxed);
    let start = Instant::now();
    queue.map().resume(ResumeMode::CatchUp).expect("resume");
    queue.map().wait_for(|s| matches!(s, MapState::Running), DRAIN_TIMEOUT).expect("drained");
    let elapsed = start.elapsed();
    assert_eq!(queue.sink.delivered.load(Ordering::Relaxed) - before, queue.record_count, "every record delivered");
    elapsed
}

/// Skip to live with `mode`: the resume call alone (it returns Running).
fn skip(queue: &FullQueue, mode: ResumeMode) -> Duration {
    let start = Instant::now();
    queue.map().resume(mode).expect("skip to live");
    let elapsed = start.elapsed();
    let stats = queue.map().stats();
    assert_eq!((stats.state, stats.queued_records), (MapState::Running, 0));
    let expected_errors = if mode == ResumeMode::SkipToLivePreserve { queue.record_count } else { 0 };
    assert_eq!(stats.error_records, expected_errors);
    elapsed
}

// ------------------------------------------------------------ memmap2 peer

fn segment_paths(data_dir: &Path) -> Vec<PathBuf> {
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
fn scan_mmap(data_dir: &Path) -> (Duration, u64) {
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

// ------------------------------------------------------ phase breakdowns

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

/// Time of `Wal::read` for `count` random seqs of the queue (what
/// `queued()` does per item of a page), with the same reads through one
/// reader each as a comparison.
fn report_read_phases(queue: &FullQueue) {
    let wal = Wal::open(&queue.data_dir(), WalOptions::default().read_only(true)).expect("open read-only");
    let mut rng = SmallRng::seed_from_u64(23);
    let seqs: Vec<u64> = (0..PAGE_QUERY_COUNT).map(|_| rng.gen_range(1..=queue.record_count)).collect();
    let start = Instant::now();
    for &seq in &seqs {
        black_box(wal.read(seq).expect("read").expect("live"));
    }
    let per_read = start.elapsed() / seqs.len() as u32;
    let start = Instant::now();
    for &seq in &seqs {
        black_box(wal.reader(seq).next());
    }
    let per_reader = start.elapsed() / seqs.len() as u32;
    println!(
        "PHASE Wal::read of one record: {:.2} µs (a page of {PAGE_LIMIT} = {} reads = {:.0} µs); Wal::reader(seq).next(): {:.2} µs",
        per_read.as_secs_f64() * 1e6,
        PAGE_LIMIT,
        (per_read * PAGE_LIMIT as u32).as_secs_f64() * 1e6,
        per_reader.as_secs_f64() * 1e6
    );
}

/// Time to unlink the data segment files of a closed full queue: what a
/// discard pays when it deletes released segments inline.
fn report_unlink_phase() {
    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
    queue.close();
    let paths = segment_paths(&queue.data_dir());
    let start = Instant::now();
    for path in &paths {
        std::fs::remove_file(path).expect("remove segment");
    }
    let elapsed = start.elapsed();
    println!(
        "PHASE unlink of the {} data segment files of a full queue (page cache warm): {:.1} ms ({:.2} ms per segment)",
        paths.len(),
        ms(elapsed),
        ms(elapsed) / paths.len() as f64
    );
}

// ------------------------------------------------- 1 + 2: drain and skip

struct DrainFigures {
    strict: Duration,
    best_effort: Duration,
    queued_bytes: u64,
}

fn report_drain() -> DrainFigures {
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

fn report_skip(drains: &DrainFigures) {
    for (name, mode) in [("preserve", ResumeMode::SkipToLivePreserve), ("discard", ResumeMode::SkipToLiveDiscard)] {
        let runs: Vec<Duration> = (0..RATIO_RUNS)
            .map(|_| {
                let queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
                skip(&queue, mode)
            })
            .collect();
        let ours = median(runs);
        println!(
            "TIME skip to live ({name}) of a full queue ({:.1} MB): {:.3} ms",
            drains.queued_bytes as f64 / 1e6,
            ms(ours)
        );
        report_ratio(
            &format!("skip to live ({name}) time / Strict drain time [target <= 0.010x]"),
            ms(ours),
            ms(drains.strict),
            "ms",
        );
        report_ratio(
            &format!("skip to live ({name}) time / BestEffort drain time [target <= 0.010x]"),
            ms(ours),
            ms(drains.best_effort),
            "ms",
        );
    }
    report_unlink_phase();
}

fn bench_drain_and_skip(c: &mut Criterion) {
    let drains = report_drain();
    report_skip(&drains);

    let bytes = queue_bytes_criterion();
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

    // A skip lasts about a millisecond and each one needs a freshly filled
    // queue: a tiny measurement time keeps criterion to a few iterations.
    let mut group = c.benchmark_group(group_name("engine_skip_to_live"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_millis(10));
    for (name, mode) in [("preserve", ResumeMode::SkipToLivePreserve), ("discard", ResumeMode::SkipToLiveDiscard)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| skip(&fill_queue(KeyOrdering::Strict, bytes), mode)).sum())
        });
    }
    group.finish();
}

// ------------------------------------------------------ 3: durable submit

/// `count` durable submits on a paused map (`SyncPolicy::Always`), split
/// over `threads` threads.
fn submit_durable(map: &TableMap, threads: u64, count: u64) -> Duration {
    let payload = payload();
    timed_threads(threads, count, |index| {
        let key = key_name(index % KEY_COUNT_FULL);
        map.submit(Record::new(key, Op::Update, payload.clone())).expect("durable submit");
    })
}

/// The wal crate's own durable append of a body of the same encoded size.
fn append_durable(wal: &Wal, threads: u64, count: u64) -> Duration {
    let body = vec![0x5a_u8; ENCODED_BODY_BYTES];
    timed_threads(threads, count, |_| {
        wal.append(&body).expect("durable append");
    })
}

/// sled's durable path: insert then `flush()` per insert; key `key ‖ seq`,
/// a value that makes the same encoded size.
fn sled_insert_durable(db: &sled::Db, threads: u64, count: u64) -> Duration {
    let next = AtomicU64::new(db.len() as u64);
    let value = vec![0x5a_u8; ENCODED_BODY_BYTES - KEY_BYTES - 8];
    timed_threads(threads, count, |index| {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        let key = sled_key(&key_name(index % KEY_COUNT_FULL), seq);
        db.insert(key, value.as_slice()).expect("sled insert");
        db.flush().expect("sled flush");
    })
}

fn sled_key(key: &str, seq: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.len() + 8);
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes
}

struct DurableTargets {
    _dirs: Vec<tempfile::TempDir>,
    engine: Engine,
    map: TableMap,
    wal: Wal,
    sled: sled::Db,
}

fn durable_targets() -> DurableTargets {
    let (engine_dir, wal_dir, sled_dir) =
        (bench_dir("pauselog-engine-submit"), bench_dir("pauselog-engine-wal"), bench_dir("pauselog-engine-sled"));
    let engine = open_engine(engine_dir.path(), SyncPolicy::Always);
    let map = engine.table_map(MAP_NAME, MapConfig::default(), Arc::new(Sink::default())).expect("table map");
    map.pause().expect("pause");
    let wal = Wal::open(wal_dir.path(), WalOptions::default().sync(SyncPolicy::Always)).expect("wal");
    let sled = sled::open(sled_dir.path()).expect("sled");
    DurableTargets { _dirs: vec![engine_dir, wal_dir, sled_dir], engine, map, wal, sled }
}

fn acks_per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn bench_submit_durable(c: &mut Criterion) {
    let count_one = if quick() { 200 } else { 2000 };
    let count_eight = count_one * 8;
    let (mut ours_1, mut ours_8, mut wal_1, mut wal_8, mut sled_8) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        let targets = durable_targets();
        ours_1.push(submit_durable(&targets.map, 1, count_one));
        wal_1.push(append_durable(&targets.wal, 1, count_one));
        ours_8.push(submit_durable(&targets.map, 8, count_eight));
        wal_8.push(append_durable(&targets.wal, 8, count_eight));
        sled_8.push(sled_insert_durable(&targets.sled, 8, count_eight));
        drop(targets.map);
        targets.engine.close().expect("close");
    }
    let ours_1 = acks_per_second(count_one, median(ours_1));
    let ours_8 = acks_per_second(count_eight, median(ours_8));
    let wal_1 = acks_per_second(count_one, median(wal_1));
    let wal_8 = acks_per_second(count_eight, median(wal_8));
    let sled_8 = acks_per_second(count_eight, median(sled_8));
    report_ratio("submit (Paused, Always) 8 threads vs wal append 8 threads [target >= 0.7x]", ours_8, wal_8, "acks/s");
    report_ratio("submit (Paused, Always) 1 thread vs wal append 1 thread", ours_1, wal_1, "acks/s");
    report_ratio("submit (Paused, Always) 8 threads vs sled insert+flush 8 threads", ours_8, sled_8, "acks/s");

    let targets = durable_targets();
    let mut group = c.benchmark_group(group_name("engine_submit_durable"));
    group.sample_size(10).warm_up_time(Duration::from_millis(200));
    group.measurement_time(measurement(2000));
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 8] {
        group.bench_function(format!("submit_{threads}_threads"), |b| {
            b.iter_custom(|iters| submit_durable(&targets.map, threads, iters))
        });
        group.bench_function(format!("wal_append_{threads}_threads"), |b| {
            b.iter_custom(|iters| append_durable(&targets.wal, threads, iters))
        });
    }
    group.bench_function("sled_insert_flush_8_threads", |b| {
        b.iter_custom(|iters| sled_insert_durable(&targets.sled, 8, iters))
    });
    group.finish();
    drop(targets.map);
    targets.engine.close().expect("close");
}

// ------------------------------------------------ 4: page of one key; 5: reopen

/// The same records as the queue, in a sled tree keyed by `key ‖ seq`.
fn sled_copy(queue: &FullQueue) -> (tempfile::TempDir, sled::Db) {
    let dir = bench_dir("pauselog-engine-sled-page");
    let db = sled::open(dir.path()).expect("sled");
    let payload = payload();
    let started = Instant::now();
    let mut batch = sled::Batch::default();
    for (index, key) in key_sequence().take(queue.record_count as usize).enumerate() {
        batch.insert(sled_key(&key, index as u64 + 1), payload.as_slice());
        if (index + 1) % 10_000 == 0 {
            db.apply_batch(std::mem::take(&mut batch)).expect("sled batch");
        }
    }
    db.apply_batch(batch).expect("sled batch");
    db.flush().expect("sled flush");
    eprintln!("sled copy of {} records in {:?}", queue.record_count, started.elapsed());
    (dir, db)
}

fn engine_page(map: &TableMap, key: &str) -> usize {
    let page = map.queued(&Query::default().key(key).limit(PAGE_LIMIT)).expect("page");
    black_box(&page);
    page.items.len()
}

fn sled_page(db: &sled::Db, key: &str) -> usize {
    let items: Vec<(Vec<u8>, Vec<u8>)> = db
        .scan_prefix(key.as_bytes())
        .take(PAGE_LIMIT)
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).expect("sled scan"))
        .collect();
    black_box(&items);
    items.len()
}

/// p50 and p99 in µs of `page` over random keys.
fn page_latency_us(mut page: impl FnMut(&str) -> usize) -> (f64, f64) {
    let mut rng = SmallRng::seed_from_u64(13);
    let mut latencies_ns: Vec<u128> = (0..PAGE_QUERY_COUNT)
        .map(|_| {
            let key = key_name(rng.gen_range(0..key_count()));
            let started = Instant::now();
            let items = page(&key);
            let elapsed = started.elapsed().as_nanos();
            assert!(items > 0, "every key has records");
            elapsed
        })
        .collect();
    latencies_ns.sort_unstable();
    let at = |q: usize| latencies_ns[(latencies_ns.len() * q / 100).min(latencies_ns.len() - 1)] as f64 / 1e3;
    (at(50), at(99))
}

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
fn report_disk_use(queue: &FullQueue, sled_dir: &Path) {
    let raw_bytes = (queue.record_count * (KEY_BYTES + PAYLOAD_BYTES) as u64) as f64;
    report_ratio(
        "disk used by a full queue / raw key+payload bytes: ours vs sled [lower is better]",
        disk_bytes(queue.dir.path()) as f64 / raw_bytes,
        disk_bytes(sled_dir) as f64 / raw_bytes,
        "x raw",
    );
}

fn bench_page_and_reopen(c: &mut Criterion) {
    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_full());
    eprintln!("full queue for pages and reopen: {} records, {} bytes", queue.record_count, queue.queued_bytes);

    // 4: pages.
    report_read_phases(&queue);
    let (sled_dir, db) = sled_copy(&queue);
    report_disk_use(&queue, sled_dir.path());
    let (mut ours_p99, mut peer_p99) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        let (ours_p50, ours) = page_latency_us(|key| engine_page(queue.map(), key));
        let (peer_p50, peer) = page_latency_us(|key| sled_page(&db, key));
        println!("LATENCY page of {PAGE_LIMIT}, one key: ours p50 {ours_p50:.1} µs p99 {ours:.1} µs; sled p50 {peer_p50:.1} µs p99 {peer:.1} µs");
        ours_p99.push(ours);
        peer_p99.push(peer);
    }
    let median_f = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    report_ratio(
        "page of 50 for one key, p99: ours vs sled scan_prefix [lower is better]",
        median_f(ours_p99),
        median_f(peer_p99),
        "µs",
    );

    let mut group = c.benchmark_group(group_name("engine_queued_page"));
    group.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(measurement(1000));
    let mut rng = SmallRng::seed_from_u64(17);
    group.bench_function("queued_one_key_limit_50", |b| {
        b.iter(|| engine_page(queue.map(), &key_name(rng.gen_range(0..key_count()))))
    });
    group.bench_function("sled_scan_prefix_take_50", |b| {
        b.iter(|| sled_page(&db, &key_name(rng.gen_range(0..key_count()))))
    });
    group.finish();
    drop(db);
    drop(sled_dir);

    // 5: reopen after a clean close.
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        ours.push(queue.reopen());
        peer.push(scan_mmap(&queue.data_dir()).0);
    }
    let (ours, peer) = (median(ours), median(peer));
    println!(
        "TIME reopen of a full queue ({:.1} MB): {:.1} ms; memmap2 scan of its data files: {:.1} ms ({:.0} MB/s)",
        queue.queued_bytes as f64 / 1e6,
        ms(ours),
        ms(peer),
        mb_per_second(queue.queued_bytes, peer)
    );
    report_ratio(
        "reopen (close, open + table_map) vs memmap2 scan of the data [lower is better]",
        ms(ours),
        ms(peer),
        "ms",
    );
    drop(queue);

    let mut queue = fill_queue(KeyOrdering::Strict, queue_bytes_criterion());
    let mut group = c.benchmark_group(group_name("engine_reopen"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(100)).measurement_time(measurement(1000));
    group.throughput(Throughput::Bytes(queue.queued_bytes));
    group.bench_function("close_then_open_table_map", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| queue.reopen()).sum())
    });
    let data_dir = queue.data_dir();
    group.bench_function("raw_memmap2_scan", |b| b.iter(|| scan_mmap(&data_dir)));
    group.finish();
}

criterion_group!(benches, bench_drain_and_skip, bench_submit_durable, bench_page_and_reopen);
criterion_main!(benches);
