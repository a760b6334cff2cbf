//! Index bench (R11, R19a): pages for one key served by the key runs
//! against the same page answered by scanning the log, and opening the key
//! runs against rebuilding them by a log scan.
//!
//! Workload: 1,000,000 records of a 16-byte key and a 1000-byte payload
//! over 10,000 keys (~1 GB of log); one key in 100 records is a hot key, so
//! it has 10,000 entries and a deep page after its 5,000th. Set
//! `PAUSELOG_BENCH_SCALE=quick` for a 100x smaller smoke run.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pauselog_index::{KeyRuns, RunOptions};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const PAYLOAD_BYTES: usize = 1000;
const PAGE_LIMIT: usize = 50;
const HOT_KEY: &str = "USMF|CUST-HOT-01";
const HOT_EVERY: u64 = 100;
const DEEP_AFTER_MATCHES: usize = 5_000;
const P99_QUERY_COUNT: usize = 10_000;

struct Fixture {
    dir: tempfile::TempDir,
    wal: Wal,
    keys: KeyRuns,
    key_count: u64,
    /// The seq after which the deep page of the hot key starts.
    deep_after: u64,
}

fn key_of(seq: u64, rng: &mut SmallRng, key_count: u64) -> String {
    if seq.is_multiple_of(HOT_EVERY) {
        HOT_KEY.to_owned()
    } else {
        format!("USMF|CUST-{:06}", rng.gen_range(0..key_count))
    }
}

/// A record body: `u16` LE key length, key, payload.
fn encode(key: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + key.len() + payload.len());
    body.extend_from_slice(&(key.len() as u16).to_le_bytes());
    body.extend_from_slice(key.as_bytes());
    body.extend_from_slice(payload);
    body
}

fn key_in(body: &[u8]) -> &[u8] {
    let len = u16::from_le_bytes([body[0], body[1]]) as usize;
    &body[2..2 + len]
}

fn keys_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("keys")
}

fn setup() -> Fixture {
    let scale = if pauselog_benches::quick() { 100 } else { 1 };
    let (record_count, key_count) = (1_000_000 / scale, 10_000 / scale);
    let dir = tempfile::Builder::new().prefix("index").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let wal = Wal::open(&dir.path().join("wal"), WalOptions::default().sync(SyncPolicy::Never)).expect("wal");
    let (mut keys, _) = KeyRuns::open(&keys_dir(dir.path()), RunOptions::default()).expect("key runs");
    let mut rng = SmallRng::seed_from_u64(7);
    let payload = vec![0xab_u8; PAYLOAD_BYTES];
    let started = Instant::now();
    for n in 1..=record_count {
        let key = key_of(n, &mut rng, key_count);
        let seq = wal.append(&encode(&key, &payload)).expect("append");
        keys.insert(&key, seq).expect("insert");
    }
    keys.flush().expect("flush");
    wal.sync().expect("sync");
    eprintln!("setup: {record_count} records over {key_count} keys in {:?}", started.elapsed());
    let hot = keys.seqs(HOT_KEY, 0..=u64::MAX, usize::MAX);
    let deep_after = hot[DEEP_AFTER_MATCHES.min(hot.len() - 1)];
    Fixture { dir, wal, keys, key_count, deep_after }
}

/// A page for one key from the key runs: its first `PAGE_LIMIT` seqs after
/// `after`, and its total.
fn runs_page(keys: &KeyRuns, key: &str, after: u64) -> (Vec<u64>, u64) {
    let seqs = keys.seqs(key, after + 1..=u64::MAX, PAGE_LIMIT);
    let mut total = 0u64;
    keys.for_each_seq(key, 0..=u64::MAX, |_| {
        total += 1;
        std::ops::ControlFlow::Continue(())
    });
    (seqs, total)
}

/// The peer: the same page (and its total) by reading every record.
fn scan_page(wal: &Wal, key: &str, after: u64) -> (Vec<u64>, u64) {
    let (mut seqs, mut total) = (Vec::with_capacity(PAGE_LIMIT), 0u64);
    for entry in wal.reader(1) {
        let entry = entry.expect("read");
        if key_in(entry.body()) == key.as_bytes() {
            if entry.seq() > after && seqs.len() < PAGE_LIMIT {
                seqs.push(entry.seq());
            }
            total += 1;
        }
    }
    (seqs, total)
}

/// The peer of a reopen: index the log from scratch (in memory).
fn scan_rebuild(wal: &Wal) -> KeyRuns {
    let mut keys = KeyRuns::in_memory();
    for entry in wal.reader(1) {
        let entry = entry.expect("read");
        let key = std::str::from_utf8(key_in(entry.body())).expect("utf-8 key");
        keys.insert(key, entry.seq()).expect("insert");
    }
    keys
}

fn reopen(dir: &Path) -> KeyRuns {
    KeyRuns::open(&keys_dir(dir), RunOptions::default()).expect("key runs").0
}

fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn random_key(rng: &mut SmallRng, key_count: u64) -> String {
    format!("USMF|CUST-{:06}", rng.gen_range(0..key_count))
}

fn bench_index(c: &mut Criterion) {
    let fixture = setup();
    let (keys, wal, key_count) = (&fixture.keys, &fixture.wal, fixture.key_count);
    let mut rng = SmallRng::seed_from_u64(11);

    // Sanity: the runs and the scan answer the same pages.
    let probe = random_key(&mut rng, key_count);
    assert_eq!(runs_page(keys, &probe, 0), scan_page(wal, &probe, 0));
    assert_eq!(runs_page(keys, HOT_KEY, fixture.deep_after), scan_page(wal, HOT_KEY, fixture.deep_after));

    let mut group = c.benchmark_group("index_page");
    group.bench_function("first_page_random_key", |b| {
        b.iter(|| black_box(runs_page(keys, &random_key(&mut rng, key_count), 0)))
    });
    group.bench_function("deep_page_hot_key", |b| b.iter(|| black_box(runs_page(keys, HOT_KEY, fixture.deep_after))));
    group.finish();

    let mut group = c.benchmark_group("index_reopen");
    group.sample_size(10);
    group.bench_function("open_key_runs", |b| b.iter(|| black_box(reopen(fixture.dir.path()))));
    group.finish();

    report(&fixture);
}

/// Ratios and a p99, measured outside criterion (which reports means).
fn report(fixture: &Fixture) {
    let (keys, wal, key_count) = (&fixture.keys, &fixture.wal, fixture.key_count);
    let mut rng = SmallRng::seed_from_u64(13);
    let mut latencies_ns: Vec<u128> = (0..P99_QUERY_COUNT)
        .map(|_| {
            let key = random_key(&mut rng, key_count);
            let started = Instant::now();
            black_box(runs_page(keys, &key, 0));
            started.elapsed().as_nanos()
        })
        .collect();
    latencies_ns.sort_unstable();
    let p50 = latencies_ns[latencies_ns.len() / 2];
    let p99 = latencies_ns[latencies_ns.len() * 99 / 100];
    println!(
        "LATENCY key runs first page (limit {PAGE_LIMIT}, random key, with its total): p50 {p50} ns, p99 {p99} ns"
    );

    let key = random_key(&mut rng, key_count);
    let ours = median_of(101, || {
        black_box(runs_page(keys, &key, 0));
    });
    let peer = median_of(3, || {
        black_box(scan_page(wal, &key, 0));
    });
    pauselog_benches::report_ratio("first page: key runs vs log scan", ns(ours), ns(peer), "ns");
    let ours = median_of(101, || {
        black_box(runs_page(keys, HOT_KEY, fixture.deep_after));
    });
    let peer = median_of(3, || {
        black_box(scan_page(wal, HOT_KEY, fixture.deep_after));
    });
    pauselog_benches::report_ratio("deep page of a hot key: key runs vs log scan", ns(ours), ns(peer), "ns");
    let ours = median_of(5, || {
        black_box(reopen(fixture.dir.path()));
    });
    let peer = median_of(3, || {
        black_box(scan_rebuild(wal));
    });
    pauselog_benches::report_ratio("reopen: open the key runs vs index the log", ms(ours), ms(peer), "ms");
    println!("MEMORY key runs: {} heap bytes, {} run files", keys.memory_bytes(), keys.run_ranges().len());
}

fn ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

criterion_group!(benches, bench_index);
criterion_main!(benches);
