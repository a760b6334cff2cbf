//! Experiment 4: a page of 50 records of one key on a full paused queue
//! against sled's `scan_prefix` over the same records.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use pauselog::{Query, TableMap};
use pauselog_benches::report_ratio;
use pauselog_wal::{Wal, WalOptions};
use rand::{rngs::SmallRng, Rng, SeedableRng};

use crate::full_queue::{key_sequence, FullQueue};
use crate::{bench_dir, group_name, key_count, key_name, measurement, payload, sled_key, RATIO_RUNS};

/// Records in one page.
const PAGE_LIMIT: usize = 50;
/// Random page queries behind each p99.
const PAGE_QUERY_COUNT: usize = 10_000;

/// The same records as the queue, in a sled tree keyed by `key ‖ seq`.
pub fn sled_copy(queue: &FullQueue) -> (tempfile::TempDir, sled::Db) {
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
/// Time of `Wal::read` for `count` random seqs of the queue (what
/// `queued()` does per item of a page), with the same reads through one
/// reader each as a comparison.
pub fn report_read_phases(queue: &FullQueue) {
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

/// The p99 of a page of one key, ours against sled (median of
/// [`RATIO_RUNS`]).
pub fn report(queue: &FullQueue, db: &sled::Db) {
    let (mut ours_p99, mut peer_p99) = (Vec::new(), Vec::new());
    for _ in 0..RATIO_RUNS {
        let (ours_p50, ours) = page_latency_us(|key| engine_page(queue.map(), key));
        let (peer_p50, peer) = page_latency_us(|key| sled_page(db, key));
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
}

/// The criterion group of pages, on the same full queue and sled copy.
pub fn bench(c: &mut Criterion, queue: &FullQueue, db: &sled::Db) {
    let mut group = c.benchmark_group(group_name("engine_queued_page"));
    group.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(measurement(1000));
    let mut rng = SmallRng::seed_from_u64(17);
    group.bench_function("queued_one_key_limit_50", |b| {
        b.iter(|| engine_page(queue.map(), &key_name(rng.gen_range(0..key_count()))))
    });
    group.bench_function("sled_scan_prefix_take_50", |b| {
        b.iter(|| sled_page(db, &key_name(rng.gen_range(0..key_count()))))
    });
    group.finish();
}
