//! Throughput of `pauselog-wal` next to the plain-file baselines it must stay
//! close to (PERFORMANCE.md, "Physical facts"). Records are 1 KiB.
//!
//! - `wal_bulk_append`: `SyncPolicy::Never` appends of 256 MiB vs a 1 MiB
//!   `BufWriter<File>` writing the same number of framed bytes; both end with
//!   one `sync_data`. Target: >= 0.8x.
//! - `wal_durable_append`: `SyncPolicy::Always`, 1 writer thread vs 8 (group
//!   commit). Target: 8 threads >= 5x one.
//! - `wal_replay`: a reader from seq 1 over a 1 GB log, touching every body,
//!   vs walking the same segment files raw through memmap2 and touching the
//!   same bytes. Target: >= 0.7x. The log's sealed segments have sidecar
//!   indexes, so each fresh open CRC-checks their frames on this first read.
//! - `wal_reopen`: opening that 1 GB log (sealed segments with sidecars,
//!   only the active segment scanned) vs the raw memmap2 walk of the same
//!   files; the ratio is how many times faster the open is.
//!
//! The durable-append group also prints `ACKS_PER_FSYNC`, from
//! `WalStats::sync_count`, and the 8-thread rate while two CPU-bound
//! threads keep both cores busy (informational: waiting writers must not
//! give their cores away for whole time slices).
//!
//! `PAUSELOG_BENCH_SCALE=quick` shrinks every size about 100x. Besides
//! criterion's figures, each group prints a `RATIO` line computed from its
//! own timed runs (median of a few), since criterion does not expose its
//! estimates.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pauselog_benches::{quick, report_ratio, timed_threads, touch};
use pauselog_wal::{frame_bytes, SyncPolicy, Wal, WalOptions, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};

const RECORD_BYTES: usize = 1024;
const MIB: u64 = 1024 * 1024;
/// Timed runs behind each RATIO line; the median is reported.
const RATIO_RUNS: usize = 3;

fn record() -> Vec<u8> {
    (0..RECORD_BYTES).map(|i| (i * 31 % 251) as u8 + 1).collect()
}

fn scaled(full: u64) -> u64 {
    if quick() {
        full / 100
    } else {
        full
    }
}

/// Where the bench logs live: cargo's scratch directory under the target
/// directory (a real disk, like a deployment's data directory, not a tmpfs;
/// and never inside the source tree).
fn bench_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pauselog-wal-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("bench temp dir")
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    amount / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------- bulk append

fn bulk_records() -> u64 {
    scaled(256 * MIB) / RECORD_BYTES as u64
}

fn bulk_bytes() -> u64 {
    bulk_records() * frame_bytes(RECORD_BYTES)
}

/// Appends every record under `SyncPolicy::Never`, then one sync.
fn bulk_wal() -> Duration {
    let dir = bench_dir();
    let body = record();
    let wal = Wal::open(dir.path(), WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    let start = Instant::now();
    for _ in 0..bulk_records() {
        wal.append(&body).expect("append");
    }
    wal.sync().expect("sync");
    let elapsed = start.elapsed();
    wal.close().expect("close");
    elapsed
}

/// The plain baseline: the same framed bytes (header and body) through a
/// 1 MiB `BufWriter`, then one `sync_data`. It computes no CRC.
fn bulk_bufwriter() -> Duration {
    let dir = bench_dir();
    let body = record();
    let file = File::create(dir.path().join("plain.log")).expect("create");
    let start = Instant::now();
    let mut out = BufWriter::with_capacity(MIB as usize, file);
    for seq in 1..=bulk_records() {
        let mut header = [0u8; FRAME_HEADER_BYTES as usize];
        header[0..4].copy_from_slice(&(RECORD_BYTES as u32).to_le_bytes());
        header[8..16].copy_from_slice(&seq.to_le_bytes());
        out.write_all(&header).expect("write");
        out.write_all(&body).expect("write");
    }
    let file = out.into_inner().expect("flush");
    file.sync_data().expect("sync");
    start.elapsed()
}

fn bench_bulk_append(c: &mut Criterion) {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        ours.push(bulk_wal());
        peer.push(bulk_bufwriter());
    }
    let mb = bulk_bytes() as f64 / 1e6;
    report_ratio(
        "wal bulk append (Never) vs BufWriter",
        per_second(mb, median(ours)),
        per_second(mb, median(peer)),
        "MB/s",
    );

    let mut group = c.benchmark_group("wal_bulk_append");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(bulk_bytes()));
    group.bench_function("pauselog_wal_never", |b| b.iter_custom(|iters| (0..iters).map(|_| bulk_wal()).sum()));
    group.bench_function("bufwriter_1mib", |b| b.iter_custom(|iters| (0..iters).map(|_| bulk_bufwriter()).sum()));
    group.finish();
}

// ------------------------------------------------------------ durable append

/// `append_count` durable appends split over `thread_count` threads.
fn durable_appends(wal: &Arc<Wal>, thread_count: u64, append_count: u64) -> Duration {
    let body = record();
    timed_threads(thread_count, append_count, |_| {
        wal.append(&body).expect("durable append");
    })
}

/// CPU-bound threads running beside the writers of
/// [`durable_appends_beside_busy_threads`]: one per core of this project's VM.
const BUSY_THREADS: u64 = 2;

/// [`durable_appends`] while [`BUSY_THREADS`] threads burn CPU: the writers'
/// waiting must not hand their cores to others for whole time slices.
fn durable_appends_beside_busy_threads(wal: &Arc<Wal>, thread_count: u64, append_count: u64) -> Duration {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..BUSY_THREADS {
            scope.spawn(|| {
                let mut sum = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sum = std::hint::black_box(sum.wrapping_add(1));
                }
            });
        }
        let elapsed = durable_appends(wal, thread_count, append_count);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        elapsed
    })
}

fn durable_wal(dir: &Path) -> Arc<Wal> {
    Arc::new(Wal::open(dir, WalOptions::default().sync(SyncPolicy::Always)).expect("open"))
}

fn bench_durable_append(c: &mut Criterion) {
    let append_count = if quick() { 200 } else { 4000 };
    let (mut one, mut eight, mut eight_busy) = (Vec::new(), Vec::new(), Vec::new());
    let (mut one_syncs, mut eight_syncs) = (0, 0);
    for _ in 0..RATIO_RUNS {
        let dir = bench_dir();
        let wal = durable_wal(dir.path());
        let syncs = wal.stats().sync_count;
        one.push(durable_appends(&wal, 1, append_count));
        let middle = wal.stats().sync_count;
        eight.push(durable_appends(&wal, 8, append_count * 8));
        one_syncs += middle - syncs;
        eight_syncs += wal.stats().sync_count - middle;
        eight_busy.push(durable_appends_beside_busy_threads(&wal, 8, append_count * 8));
    }
    let runs = RATIO_RUNS as f64;
    let (one, eight, eight_busy) = (median(one), median(eight), median(eight_busy));
    println!(
        "ACKS_PER_FSYNC wal durable append (Always): 1 thread {:.2}, 8 threads {:.2}",
        (append_count as f64 * runs) / one_syncs.max(1) as f64,
        (append_count as f64 * 8.0 * runs) / eight_syncs.max(1) as f64,
    );
    report_ratio(
        "wal durable append (Always) 8 threads vs 1 thread",
        per_second((append_count * 8) as f64, eight),
        per_second(append_count as f64, one),
        "acks/s",
    );
    report_ratio(
        &format!("wal durable append (Always) 8 threads beside {BUSY_THREADS} CPU-bound threads vs 8 threads alone (informational)"),
        per_second((append_count * 8) as f64, eight_busy),
        per_second((append_count * 8) as f64, eight),
        "acks/s",
    );

    let mut group = c.benchmark_group("wal_durable_append");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    for thread_count in [1u64, 8] {
        let dir = bench_dir();
        let wal = durable_wal(dir.path());
        group.bench_function(format!("always_{thread_count}_threads"), |b| {
            b.iter_custom(|iters| durable_appends(&wal, thread_count, iters))
        });
    }
    group.finish();
}

// -------------------------------------------------------------------- replay

struct ReplayLog {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: u64,
}

fn replay_log() -> ReplayLog {
    let dir = bench_dir();
    let path = dir.path().join("log");
    let records = scaled(1_000_000_000) / RECORD_BYTES as u64;
    let body = record();
    let wal = Wal::open(&path, WalOptions::default().sync(SyncPolicy::Never)).expect("open");
    for _ in 0..records {
        wal.append(&body).expect("append");
    }
    wal.close().expect("close");
    ReplayLog { _dir: dir, path, bytes: records * frame_bytes(RECORD_BYTES) }
}

/// Opens the log read-only (untimed: recovery is not replay), then times a
/// reader from seq 1 over every record.
fn replay_wal(log: &ReplayLog) -> (Duration, u64) {
    let wal = Wal::open(&log.path, WalOptions::default().read_only(true)).expect("open");
    let start = Instant::now();
    let mut sum = 0u64;
    for entry in wal.reader(1) {
        sum = sum.wrapping_add(touch(entry.expect("read").body()));
    }
    (start.elapsed(), sum)
}

/// Like [`replay_wal`], but times a second pass over the same open log:
/// every frame was CRC-checked by the first pass (once per process), so this
/// is the reader's own cost.
fn replay_wal_second_pass(log: &ReplayLog) -> (Duration, u64) {
    let wal = Wal::open(&log.path, WalOptions::default().read_only(true)).expect("open");
    wal.verify().expect("verify");
    let start = Instant::now();
    let mut sum = 0u64;
    for entry in wal.reader(1) {
        sum = sum.wrapping_add(touch(entry.expect("read").body()));
    }
    (start.elapsed(), sum)
}

/// The raw baseline: maps each segment file and walks its frames by their
/// length fields, touching the same body bytes. No CRC, no bookkeeping.
fn replay_mmap(log: &ReplayLog) -> (Duration, u64) {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&log.path)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let start = Instant::now();
    let mut sum = 0u64;
    for path in segments {
        let file = File::open(&path).expect("open segment");
        // SAFETY: nothing writes or truncates the segments during the bench.
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
        let mut offset = SEGMENT_HEADER_BYTES as usize;
        while offset + FRAME_HEADER_BYTES as usize <= map.len() {
            let len = u32::from_le_bytes(map[offset..offset + 4].try_into().expect("4 bytes")) as usize;
            let seq = u64::from_le_bytes(map[offset + 8..offset + 16].try_into().expect("8 bytes"));
            if seq == 0 {
                break; // the preallocated zeros of the last segment
            }
            let body_start = offset + FRAME_HEADER_BYTES as usize;
            sum = sum.wrapping_add(touch(&map[body_start..body_start + len]));
            offset = body_start + len;
        }
    }
    (start.elapsed(), sum)
}

fn bench_replay(c: &mut Criterion) {
    let log = replay_log();
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        let (ours_time, ours_sum) = replay_wal(&log);
        let (peer_time, peer_sum) = replay_mmap(&log);
        assert_eq!(ours_sum, peer_sum, "both replays touch the same bytes");
        ours.push(ours_time);
        peer.push(peer_time);
    }
    let mb = log.bytes as f64 / 1e6;
    report_ratio(
        "wal replay (reader) vs raw memmap2 walk",
        per_second(mb, median(ours)),
        per_second(mb, median(peer)),
        "MB/s",
    );
    let (mut second, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        second.push(replay_wal_second_pass(&log).0);
        peer.push(replay_mmap(&log).0);
    }
    report_ratio(
        "wal replay (reader, frames already verified) vs raw memmap2 walk",
        per_second(mb, median(second)),
        per_second(mb, median(peer)),
        "MB/s",
    );

    let mut group = c.benchmark_group("wal_replay");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(log.bytes));
    group
        .bench_function("pauselog_wal_reader", |b| b.iter_custom(|iters| (0..iters).map(|_| replay_wal(&log).0).sum()));
    group.bench_function("raw_memmap2", |b| b.iter_custom(|iters| (0..iters).map(|_| replay_mmap(&log).0).sum()));
    group.finish();
    bench_reopen(c, &log);
}

// -------------------------------------------------------------------- reopen

/// Times a writable open of the log (lock, sidecars, scan of the active
/// segment, release log); the close is not timed.
fn reopen_wal(log: &ReplayLog) -> Duration {
    let start = Instant::now();
    let wal = Wal::open(&log.path, WalOptions::default()).expect("reopen");
    let elapsed = start.elapsed();
    assert_eq!(wal.stats().live_records, log.bytes / frame_bytes(RECORD_BYTES), "every record is found");
    wal.close().expect("close");
    elapsed
}

fn bench_reopen(c: &mut Criterion, log: &ReplayLog) {
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        ours.push(reopen_wal(log));
        peer.push(replay_mmap(log).0);
    }
    let mb = log.bytes as f64 / 1e6;
    report_ratio(
        "wal reopen of the log vs raw memmap2 walk of its files",
        per_second(mb, median(ours)),
        per_second(mb, median(peer)),
        "MB/s",
    );
    let mut group = c.benchmark_group("wal_reopen");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(log.bytes));
    group.bench_function("pauselog_wal_open", |b| b.iter_custom(|iters| (0..iters).map(|_| reopen_wal(log)).sum()));
    group.bench_function("raw_memmap2", |b| b.iter_custom(|iters| (0..iters).map(|_| replay_mmap(log).0).sum()));
    group.finish();
}

criterion_group!(benches, bench_bulk_append, bench_durable_append, bench_replay);
criterion_main!(benches);
