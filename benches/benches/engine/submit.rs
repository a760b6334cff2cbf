//! Experiment 3: durable `submit` while Paused against the wal's own durable
//! append and against sled's insert + flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use pauselog::{Engine, MapConfig, Op, Record, SyncPolicy, TableMap};
use pauselog_benches::{quick, report_ratio, timed_threads};
use pauselog_wal::{Wal, WalOptions};

use crate::full_queue::Sink;
use crate::{
    bench_dir, group_name, key_name, measurement, median, open_engine, payload, sled_key, ENCODED_BODY_BYTES,
    KEY_BYTES, KEY_COUNT_FULL, MAP_NAME, RATIO_RUNS,
};

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

/// Acks per second of durable submits, 1 and 8 threads, against the wal
/// and sled (median of [`RATIO_RUNS`], each on fresh directories).
pub fn report() {
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
}

/// The criterion group of durable submits and their peers.
pub fn bench(c: &mut Criterion) {
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
