//! Lanes bench (R22, R23): catching up at the destination's speed.
//!
//! 1. Drain of 100,000 queued records over 10,000 keys (16-byte keys,
//!    1000-byte payloads) into a destination whose every call costs a fixed
//!    round trip (1 ms, a `thread::sleep`), with 1, 2, 4 and 8 lanes, Strict
//!    and BestEffort, at batches of 1024 (the default) and 128 records.
//!    Peers in the same run: 1 lane (target: 8 lanes >= 6x) and the ideal
//!    `lanes x batch records / round trip` (target: >= 0.8x), both with the
//!    nominal 1 ms and with the call time the destination measured (its
//!    1 ms sleep, with the thread's timer slack set to 1 ns, still takes a
//!    wake-up longer, which no engine can win back); under Strict, the
//!    mean records per call against the batch size (target: >= 0.8x).
//! 2. Pass-through (R23): during a catch-up of a full queue (1 GiB; the
//!    quick mode 10 MiB) into the same 1 ms destination, a writer submits to
//!    keys without backlog; the time from its submit to the destination's
//!    receipt, p50 and p99, with pass-through on vs off (target: p99 under
//!    10 ms with it on).
//!
//! `PAUSELOG_BENCH_SCALE=quick` shrinks the sizes (CI smoke run). The
//! criterion group times one 8-lane Strict drain for regression tracking.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pauselog::{
    DeliveryError, Destination, Engine, KeyOrdering, MapConfig, MapState, Op, QueuedRecord, Record, ResumeMode,
    SyncPolicy, TableMap,
};
use pauselog_benches::{quick, report_ratio};

const ROUND_TRIP: Duration = Duration::from_millis(1);
const PAYLOAD_BYTES: usize = 1000;
const KEY_COUNT: u64 = 10_000;
const DRAIN_RECORDS_FULL: u64 = 100_000;
const LANES: [usize; 4] = [1, 2, 4, 8];
const BATCHES: [usize; 2] = [1024, 128];
const WAIT_MAX: Duration = Duration::from_secs(600);
/// Runs behind each figure; the median is reported.
const RUNS: usize = 3;

fn drain_records() -> u64 {
    if quick() {
        DRAIN_RECORDS_FULL / 10
    } else {
        DRAIN_RECORDS_FULL
    }
}

fn backlog_bytes() -> u64 {
    if quick() {
        10 << 20
    } else {
        1 << 30
    }
}

fn key_name(index: u64) -> String {
    format!("USMF|CUST-{index:06}")
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// A destination whose every call costs one round trip, and which notes
/// when each record of a watched key prefix arrived.
#[derive(Debug)]
struct RoundTrip {
    calls: AtomicU64,
    records: AtomicU64,
    /// Time spent inside calls: a 1 ms sleep takes longer (timer slack,
    /// wake-up), and the ideal is what the calls really cost.
    call_nanos: AtomicU64,
    /// Arrival times of records whose key starts with `WATCHED`.
    arrivals: Mutex<HashMap<String, Instant>>,
}

const WATCHED: &str = "LIVE|";

impl RoundTrip {
    fn new() -> Arc<RoundTrip> {
        Arc::new(RoundTrip {
            calls: AtomicU64::new(0),
            records: AtomicU64::new(0),
            call_nanos: AtomicU64::new(0),
            arrivals: Mutex::default(),
        })
    }

    fn note(&self, batch: &[QueuedRecord]) {
        let now = Instant::now();
        let watched = batch.iter().filter(|record| record.key.starts_with(WATCHED));
        let mut arrivals = self.arrivals.lock().expect("arrivals");
        for record in watched {
            arrivals.insert(record.key.clone(), now);
        }
    }
}

impl Destination for RoundTrip {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.deliver_batch(std::slice::from_ref(record)).remove(0)
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        precise_sleeps_on_this_thread();
        let start = Instant::now();
        std::thread::sleep(ROUND_TRIP);
        self.call_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.note(batch);
        vec![Ok(()); batch.len()]
    }
}

/// Makes this thread's sleeps end on time: Linux lets a sleep overrun by
/// the thread's timer slack (50 us by default) to batch wake-ups; the
/// emulated round trip should cost what it says, so the calling thread's
/// slack is set to 1 ns, once per thread. What remains is the wake-up.
fn precise_sleeps_on_this_thread() {
    thread_local! {
        static SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    SET.with(|set| {
        if !set.replace(true) {
            // SAFETY: PR_SET_TIMERSLACK takes one integer argument and
            // changes only the calling thread's timer slack.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        }
    });
}

fn bench_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("lanes").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench temp dir")
}

fn open(dir: &Path, config: MapConfig, dest: &Arc<RoundTrip>) -> (Engine, TableMap) {
    let engine = Engine::builder(dir).sync(SyncPolicy::Never).tick_interval(None).open().expect("engine");
    let map = engine.table_map("customers", config, dest.clone()).expect("map");
    (engine, map)
}

/// Pauses `map` and queues `count` records over [`KEY_COUNT`] keys.
fn queue(engine: &Engine, map: &TableMap, count: u64) {
    map.pause().expect("pause");
    let payload = vec![7u8; PAYLOAD_BYTES];
    for n in 0..count {
        map.submit(Record::new(key_name(n % KEY_COUNT), Op::Update, payload.clone())).expect("queued");
    }
    engine.sync().expect("sync");
}

fn catch_up(map: &TableMap) -> Duration {
    let start = Instant::now();
    map.resume(ResumeMode::CatchUp).expect("resume");
    map.wait_for(|state| matches!(state, MapState::Running), WAIT_MAX).expect("drained");
    start.elapsed()
}

struct Drain {
    records_per_sec: f64,
    records_per_call: f64,
    /// Mean time of one call, as the destination measured it.
    call_secs: f64,
}

fn drain_once(ordering: KeyOrdering, lanes: usize, batch: usize) -> Drain {
    let dir = bench_dir();
    let dest = RoundTrip::new();
    let config = MapConfig { key_ordering: ordering, lanes, replay_batch_records: batch, ..MapConfig::default() };
    let (engine, map) = open(dir.path(), config, &dest);
    let count = drain_records();
    queue(&engine, &map, count);
    let elapsed = catch_up(&map);
    assert_eq!(dest.records.load(Ordering::Relaxed), count, "every record delivered once");
    let calls = dest.calls.load(Ordering::Relaxed).max(1);
    let call_secs = dest.call_nanos.load(Ordering::Relaxed) as f64 / 1e9 / calls as f64;
    drop(map);
    engine.close().expect("close");
    Drain {
        records_per_sec: count as f64 / elapsed.as_secs_f64(),
        records_per_call: count as f64 / calls as f64,
        call_secs,
    }
}

fn report_drains() {
    for batch in BATCHES {
        for (name, ordering) in [("Strict", KeyOrdering::Strict), ("BestEffort", KeyOrdering::BestEffort)] {
            let mut one_lane = 0.0;
            for lanes in LANES {
                let runs: Vec<Drain> = (0..RUNS).map(|_| drain_once(ordering, lanes, batch)).collect();
                let rate = median(runs.iter().map(|d| d.records_per_sec).collect());
                let per_call = median(runs.iter().map(|d| d.records_per_call).collect());
                let call_secs = median(runs.iter().map(|d| d.call_secs).collect());
                println!(
                    "DRAIN {name}, batches of {batch}, {lanes} lane(s): {rate:.0} records/s, {per_call:.0} records per call, {:.3} ms per call",
                    call_secs * 1e3
                );
                let ideal = lanes as f64 * batch as f64 / ROUND_TRIP.as_secs_f64();
                report_ratio(
                    &format!("drain {name} batch {batch}, {lanes} lanes vs ideal lanes x batch / 1 ms"),
                    rate,
                    ideal,
                    "records/s",
                );
                let ideal_measured = lanes as f64 * batch as f64 / call_secs;
                report_ratio(
                    &format!(
                        "drain {name} batch {batch}, {lanes} lanes vs ideal lanes x batch / measured call time [8 lanes: target >= 0.8x]"
                    ),
                    rate,
                    ideal_measured,
                    "records/s",
                );
                if lanes == 1 {
                    one_lane = rate;
                    if ordering == KeyOrdering::Strict {
                        report_ratio(
                            &format!("mean records per call, Strict, batch {batch} [target >= 0.8x]"),
                            per_call,
                            batch as f64,
                            "records",
                        );
                    }
                } else {
                    report_ratio(
                        &format!("drain {name} batch {batch}, {lanes} lanes vs 1 lane [8 lanes: target >= 6x]"),
                        rate,
                        one_lane,
                        "records/s",
                    );
                }
            }
        }
    }
}

/// Submit-to-receipt times of writes to keys without backlog during a
/// catch-up of a full queue.
fn pass_through_latencies(pass_through: bool) -> Vec<Duration> {
    let dir = bench_dir();
    let dest = RoundTrip::new();
    let config = MapConfig { live_pass_through: pass_through, max_queue_bytes: u64::MAX, ..MapConfig::default() };
    let (engine, map) = open(dir.path(), config, &dest);
    let count = backlog_bytes() / (PAYLOAD_BYTES as u64 + 50);
    queue(&engine, &map, count);
    let done = AtomicBool::new(false);
    let sent: Mutex<Vec<(String, Instant)>> = Mutex::default();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0u64;
            while !done.load(Ordering::Acquire) {
                let key = format!("{WATCHED}{n:08}");
                let at = Instant::now();
                map.submit(Record::new(key.clone(), Op::Update, vec![1u8; PAYLOAD_BYTES])).expect("submit");
                sent.lock().expect("sent").push((key, at));
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        catch_up(&map);
        done.store(true, Ordering::Release);
    });
    map.wait_for(|state| matches!(state, MapState::Running), WAIT_MAX).expect("drained");
    let arrivals = dest.arrivals.lock().expect("arrivals").clone();
    let latencies = sent
        .into_inner()
        .expect("sent")
        .into_iter()
        .filter_map(|(key, at)| Some(arrivals.get(&key)?.duration_since(at)));
    let latencies: Vec<Duration> = latencies.collect();
    drop(map);
    engine.close().expect("close");
    latencies
}

fn percentile(latencies: &mut [Duration], fraction: f64) -> Duration {
    latencies.sort();
    latencies[((latencies.len() as f64 * fraction) as usize).min(latencies.len() - 1)]
}

fn report_pass_through() {
    let mut on = pass_through_latencies(true);
    let mut off = pass_through_latencies(false);
    let (on_p50, on_p99) = (percentile(&mut on, 0.5), percentile(&mut on, 0.99));
    let (off_p50, off_p99) = (percentile(&mut off, 0.5), percentile(&mut off, 0.99));
    println!(
        "PASS-THROUGH during a {:.0} MiB catch-up: on p50 {:.2} ms p99 {:.2} ms over {} writes; off p50 {:.1} ms p99 {:.1} ms over {} writes",
        backlog_bytes() as f64 / (1 << 20) as f64,
        on_p50.as_secs_f64() * 1e3,
        on_p99.as_secs_f64() * 1e3,
        on.len(),
        off_p50.as_secs_f64() * 1e3,
        off_p99.as_secs_f64() * 1e3,
        off.len()
    );
    report_ratio(
        "write to a key without backlog during catch-up, p99 submit-to-delivery, pass-through on vs off [target on < 10 ms]",
        on_p99.as_secs_f64() * 1e3,
        off_p99.as_secs_f64() * 1e3,
        "ms",
    );
}

fn bench_lanes(c: &mut Criterion) {
    report_drains();
    report_pass_through();
    let mut group = c.benchmark_group(if quick() { "lanes_quick" } else { "lanes" });
    group.sample_size(10);
    group.bench_function("drain_strict_8_lanes_1ms", |b| {
        b.iter(|| drain_once(KeyOrdering::Strict, 8, 1024).records_per_sec)
    });
    group.finish();
}

criterion_group!(benches, bench_lanes);
criterion_main!(benches);
