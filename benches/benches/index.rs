//! Index bench (R11, R19a): pages served by the key index against the same
//! page answered by scanning the log, and reopening a saved index against
//! rebuilding it by a log scan.
//!
//! Workload: 1,000,000 records of a 16-byte key and a 1000-byte payload
//! over 10,000 keys (~1 GB of log); one key in 100 records is a hot key, so
//! it has 10,000 entries and a deep page after its 5,000th. Set
//! `PAUSELOG_BENCH_SCALE=quick` for a 100x smaller smoke run.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use pauselog_index::{Checkpoint, IndexStore, KeyIndex, SeqPage};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const PAYLOAD_BYTES: usize = 1000;
const PAGE_LIMIT: usize = 50;
const HOT_KEY: &str = "USMF|CUST-HOT-01";
const HOT_EVERY: u64 = 100;
const DEEP_AFTER_MATCHES: usize = 5_000;
const P99_QUERY_COUNT: usize = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    wal: Wal,
    index: KeyIndex,
    store_dir: std::path::PathBuf,
    key_count: u64,
    deep_cursor: Option<String>,
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

fn setup() -> Fixture {
    let scale = if pauselog_benches::quick() { 100 } else { 1 };
    let (record_count, key_count) = (1_000_000 / scale, 10_000 / scale);
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(&dir.path().join("wal"), WalOptions::default().sync(SyncPolicy::Never)).expect("wal");
    let mut rng = SmallRng::seed_from_u64(7);
    let payload = vec![0xab_u8; PAYLOAD_BYTES];
    let mut index = KeyIndex::new();
    let started = Instant::now();
    for n in 1..=record_count {
        let key = key_of(n, &mut rng, key_count);
        let seq = wal.append(&encode(&key, &payload)).expect("append");
        index.insert(&key, seq).expect("insert");
    }
    wal.sync().expect("sync");
    eprintln!("setup: {record_count} records over {key_count} keys in {:?}", started.elapsed());
    let store_dir = dir.path().join("index");
    let store = IndexStore::open(&store_dir).expect("store");
    store.save("bench.queue", &index, Checkpoint { applied_through: record_count, tag: 0 }).expect("save");
    drop(store);
    let hot = index.key_seqs(HOT_KEY);
    let deep_cursor = (hot.len() > PAGE_LIMIT).then(|| {
        let skip = DEEP_AFTER_MATCHES.min(hot.len() - PAGE_LIMIT);
        let mut after: Option<String> = None;
        let mut seen = 0;
        while seen < skip {
            let page = index.page(Some(HOT_KEY), after.as_deref(), PAGE_LIMIT.min(skip - seen)).expect("page");
            seen += page.seqs.len();
            after = page.next;
        }
        after.expect("more pages")
    });
    Fixture { _dir: dir, wal, index, store_dir, key_count, deep_cursor }
}

/// The peer: the same page (and its total) by reading every record.
fn scan_page(wal: &Wal, key: &str, after_matches: usize) -> SeqPage {
    let mut page = SeqPage { seqs: Vec::with_capacity(PAGE_LIMIT), next: None, total: 0 };
    for entry in wal.reader(1) {
        let entry = entry.expect("read");
        if key_in(entry.body()) == key.as_bytes() {
            if page.total as usize >= after_matches && page.seqs.len() < PAGE_LIMIT {
                page.seqs.push(entry.seq());
            }
            page.total += 1;
        }
    }
    page
}

/// The peer of a reopen: rebuild the index from the log.
fn scan_rebuild(wal: &Wal) -> KeyIndex {
    let mut index = KeyIndex::new();
    for entry in wal.reader(1) {
        let entry = entry.expect("read");
        let key = std::str::from_utf8(key_in(entry.body())).expect("utf-8 key");
        index.insert(key, entry.seq()).expect("insert");
    }
    index
}

fn load(store_dir: &Path) -> KeyIndex {
    let store = IndexStore::open(store_dir).expect("store");
    store.load("bench.queue").expect("load").expect("saved").0
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
    let (index, wal, key_count) = (&fixture.index, &fixture.wal, fixture.key_count);
    let mut rng = SmallRng::seed_from_u64(11);

    // Sanity: index and scan answer the same pages.
    let probe = random_key(&mut rng, key_count);
    assert_eq!(index.page(Some(&probe), None, PAGE_LIMIT).expect("page").seqs, scan_page(wal, &probe, 0).seqs);

    let mut group = c.benchmark_group("index_page");
    group.bench_function("first_page_random_key", |b| {
        b.iter(|| {
            let key = random_key(&mut rng, key_count);
            black_box(index.page(Some(&key), None, PAGE_LIMIT).expect("page"))
        })
    });
    if let Some(cursor) = &fixture.deep_cursor {
        group.bench_function("deep_page_hot_key", |b| {
            b.iter(|| black_box(index.page(Some(HOT_KEY), Some(cursor), PAGE_LIMIT).expect("page")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("log_scan");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.bench_function("first_page_random_key", |b| {
        b.iter(|| black_box(scan_page(wal, &random_key(&mut rng, key_count), 0)))
    });
    group.bench_function("deep_page_hot_key", |b| b.iter(|| black_box(scan_page(wal, HOT_KEY, DEEP_AFTER_MATCHES))));
    group.bench_function("rebuild_index", |b| b.iter(|| black_box(scan_rebuild(wal))));
    group.finish();

    let mut group = c.benchmark_group("index_reopen");
    group.sample_size(10);
    group.bench_function("load_from_store", |b| b.iter(|| black_box(load(&fixture.store_dir))));
    group.finish();

    report(&fixture);
}

/// Ratios and a p99, measured outside criterion (which reports means).
fn report(fixture: &Fixture) {
    let (index, wal, key_count) = (&fixture.index, &fixture.wal, fixture.key_count);
    let mut rng = SmallRng::seed_from_u64(13);
    let mut latencies_ns: Vec<u128> = (0..P99_QUERY_COUNT)
        .map(|_| {
            let key = random_key(&mut rng, key_count);
            let started = Instant::now();
            black_box(index.page(Some(&key), None, PAGE_LIMIT).expect("page"));
            started.elapsed().as_nanos()
        })
        .collect();
    latencies_ns.sort_unstable();
    let p50 = latencies_ns[latencies_ns.len() / 2];
    let p99 = latencies_ns[latencies_ns.len() * 99 / 100];
    println!("LATENCY index first page (limit {PAGE_LIMIT}, random key): p50 {p50} ns, p99 {p99} ns");
    if let Some(cursor) = &fixture.deep_cursor {
        let mut deep_ns: Vec<u128> = (0..P99_QUERY_COUNT)
            .map(|_| {
                let started = Instant::now();
                black_box(index.page(Some(HOT_KEY), Some(cursor), PAGE_LIMIT).expect("page"));
                started.elapsed().as_nanos()
            })
            .collect();
        deep_ns.sort_unstable();
        println!("LATENCY index deep page (hot key): p99 {} ns", deep_ns[deep_ns.len() * 99 / 100]);
    }

    let key = random_key(&mut rng, key_count);
    let ours = median_of(101, || {
        black_box(index.page(Some(&key), None, PAGE_LIMIT).expect("page"));
    });
    let peer = median_of(3, || {
        black_box(scan_page(wal, &key, 0));
    });
    pauselog_benches::report_ratio("first page: index vs log scan", ns(ours), ns(peer), "ns");
    if let Some(cursor) = &fixture.deep_cursor {
        let ours = median_of(101, || {
            black_box(index.page(Some(HOT_KEY), Some(cursor), PAGE_LIMIT).expect("page"));
        });
        let peer = median_of(3, || {
            black_box(scan_page(wal, HOT_KEY, DEEP_AFTER_MATCHES));
        });
        pauselog_benches::report_ratio("deep page: index vs log scan", ns(ours), ns(peer), "ns");
    }
    let ours = median_of(5, || {
        black_box(load(&fixture.store_dir));
    });
    let peer = median_of(3, || {
        black_box(scan_rebuild(wal));
    });
    pauselog_benches::report_ratio("reopen: index load vs log scan", ms(ours), ms(peer), "ms");
    println!(
        "MEMORY index: {} entries, {} keys, memory_bytes {}",
        index.len(),
        index.key_count(),
        index.memory_bytes()
    );
}

fn ns(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

criterion_group!(benches, bench_index);
criterion_main!(benches);
