//! Admin API bench (docs/rules.md R24, issue targets), each side by side with its
//! peer in one run:
//!
//! 1. `GET /v1/maps` over the data directory's Unix socket (what
//!    `pauselog status` asks a running engine), p50 and p99 over
//!    [`STATUS_REQUESTS`] requests, on an engine with 10 paused maps, one of
//!    them holding a full queue (1 GiB; the quick mode 10 MiB), vs the file
//!    view of the same directory (`pauselog::inspect`, what `pauselog status`
//!    reads when no engine serves it; median of [`RATIO_RUNS`]). Target:
//!    p99 under 5 ms.
//! 2. `submit` throughput of a paused map (`SyncPolicy::Never`, one thread,
//!    1 KiB payloads, so the admin server's idle cost is not hidden behind
//!    fsyncs) with the admin server on and idle vs off: alternating runs on
//!    fresh engines, [`SUBMIT_PAIRS`] pairs in alternating order, median of each side. Target: within noise
//!    (a ratio near 1).
//!
//! `PAUSELOG_BENCH_SCALE=quick` shrinks the sizes about 100x (CI smoke run).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pauselog::{DeliveryError, Destination, Engine, Error, MapConfig, Op, QueuedRecord, Record, SyncPolicy};
use pauselog_admin::client::Client;
use pauselog_benches::{quick, report_ratio};

const MAP_COUNT: usize = 10;
const PAYLOAD_BYTES: usize = 1000;
const KEY_COUNT: u64 = 10_000;
/// Records queued on each of the nine small maps.
const SMALL_MAP_RECORDS: u64 = 100;
/// Status requests timed for the percentiles.
const STATUS_REQUESTS: usize = 2_000;
/// Timed runs behind the file view's median.
const RATIO_RUNS: usize = 5;
/// Submit runs with the server on and off, in pairs.
const SUBMIT_PAIRS: usize = 9;
/// The target for a status request, p99.
const STATUS_P99_TARGET: Duration = Duration::from_millis(5);

fn scale_divisor() -> u64 {
    if quick() {
        100
    } else {
        1
    }
}

fn full_queue_bytes() -> u64 {
    (1 << 30) / scale_divisor()
}

/// Records per submit run; the quick mode shrinks it only 10x, as a run of
/// a few milliseconds would measure mostly noise.
fn submit_records() -> u64 {
    if quick() {
        20_000
    } else {
        200_000
    }
}

/// Status requests timed; the quick mode times a tenth of them.
fn status_requests() -> usize {
    if quick() {
        STATUS_REQUESTS / 10
    } else {
        STATUS_REQUESTS
    }
}

/// Bench data lives in cargo's scratch directory under the target directory.
fn bench_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench temp dir")
}

fn open_engine(dir: &Path, admin_socket: bool) -> Engine {
    Engine::builder(dir)
        .sync(SyncPolicy::Never)
        .tick_interval(None)
        .admin_socket(admin_socket)
        .open()
        .expect("open engine")
}

#[derive(Debug)]
struct Sink;

impl Destination for Sink {
    fn deliver(&self, _record: &QueuedRecord) -> Result<(), DeliveryError> {
        Ok(())
    }
}

fn record(n: u64) -> Record {
    Record::new(format!("USMF|CUST-{:06}", n % KEY_COUNT), Op::Update, vec![b'x'; PAYLOAD_BYTES])
}

/// Ten paused maps; `map-0` filled to its 1 GiB cap, the others with a few
/// records. Returns the engine (serving its socket) and the directory.
fn ten_maps() -> (Engine, tempfile::TempDir) {
    let dir = bench_dir("pauselog-admin-bench");
    let engine = open_engine(dir.path(), true);
    for index in 0..MAP_COUNT {
        let config = MapConfig { max_queue_bytes: full_queue_bytes(), ..MapConfig::default() };
        let map = engine.table_map(&format!("map-{index}"), config, Arc::new(Sink)).expect("map");
        map.pause().expect("pause");
        let records = if index == 0 { u64::MAX } else { SMALL_MAP_RECORDS };
        for n in 0..records {
            match map.submit(record(n)) {
                Ok(_) => {}
                Err(Error::Blocked { .. }) => break,
                Err(error) => panic!("submit: {error}"),
            }
        }
    }
    engine.sync().expect("sync");
    (engine, dir)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn us(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn bench_status(c: &mut Criterion) {
    let (engine, dir) = ten_maps();
    let client = Client::for_data_dir(dir.path()).expect("client");
    let maps = client.maps().expect("status over the socket");
    assert_eq!(maps.len(), MAP_COUNT);
    let full = maps.iter().find(|m| m.name == "map-0").expect("map-0");
    println!(
        "admin bench: {MAP_COUNT} paused maps, map-0 holds {} records ({:.1} MiB)",
        full.queued_records,
        full.queued_bytes as f64 / (1 << 20) as f64
    );

    let mut latencies: Vec<Duration> = (0..status_requests())
        .map(|_| {
            let started = Instant::now();
            black_box(client.maps().expect("status"));
            started.elapsed()
        })
        .collect();
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    let files: Vec<Duration> = (0..RATIO_RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(pauselog::inspect(dir.path()).expect("file view"));
            started.elapsed()
        })
        .collect();
    let files = median(files);
    println!(
        "admin status over the socket: p50 {:.0} us, p99 {:.0} us over {} requests (target p99 < {} ms: {}); file view {:.0} us",
        us(p50),
        us(p99),
        latencies.len(),
        STATUS_P99_TARGET.as_millis(),
        if p99 < STATUS_P99_TARGET { "met" } else { "MISSED" },
        us(files)
    );
    report_ratio("admin status p99 over the socket vs file-view status (lower is better)", us(p99), us(files), "us");

    let mut group = c.benchmark_group(if quick() { "admin-quick" } else { "admin" });
    group.bench_function("status_10_maps_over_socket", |b| b.iter(|| black_box(client.maps().expect("status"))));
    group.finish();
    drop(client);
    engine.close().expect("close");
}

/// Submits `count` records to a paused map of a fresh engine; returns the
/// elapsed time.
fn submit_run(admin_socket: bool, count: u64) -> Duration {
    let dir = bench_dir("pauselog-admin-submit");
    let engine = open_engine(dir.path(), admin_socket);
    assert_eq!(engine.admin_socket_path().is_some(), admin_socket);
    let map = engine.table_map("customers", MapConfig::default(), Arc::new(Sink)).expect("map");
    map.pause().expect("pause");
    let records: Vec<Record> = (0..count).map(record).collect();
    let started = Instant::now();
    for record in records {
        map.submit(record).expect("queued");
    }
    let elapsed = started.elapsed();
    drop(map);
    engine.close().expect("close");
    elapsed
}

fn bench_submit_server_on_off(c: &mut Criterion) {
    let count = submit_records();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    submit_run(true, count / 10); // warm the page cache and allocator
                                  // Pairs in alternating order, so a slow stretch of the machine does not
                                  // always fall on the same side.
    for pair in 0..SUBMIT_PAIRS {
        if pair % 2 == 0 {
            on.push(submit_run(true, count));
            off.push(submit_run(false, count));
        } else {
            off.push(submit_run(false, count));
            on.push(submit_run(true, count));
        }
    }
    let mut pair_ratios: Vec<f64> = on.iter().zip(&off).map(|(on, off)| off.as_secs_f64() / on.as_secs_f64()).collect();
    pair_ratios.sort_by(f64::total_cmp);
    let rate = |elapsed: Duration| count as f64 / elapsed.as_secs_f64();
    let (on, off) = (rate(median(on)), rate(median(off)));
    println!(
        "admin submit: {count} records, paused map, SyncPolicy::Never: server on and idle {on:.0}/s, off {off:.0}/s (median of {SUBMIT_PAIRS}); per-pair ratios {:.3}-{:.3}",
        pair_ratios[0],
        pair_ratios[pair_ratios.len() - 1]
    );
    report_ratio("submit with the admin server on and idle vs off", on, off, "records/s");

    let mut group = c.benchmark_group(if quick() { "admin-quick" } else { "admin" });
    group.sample_size(10);
    for (name, socket) in [("submit_server_on", true), ("submit_server_off", false)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| (0..iterations).map(|_| submit_run(socket, count / 10)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_status, bench_submit_server_on_off);
criterion_main!(benches);
