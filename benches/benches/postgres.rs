//! PostgreSQL bench: the catch-up of a queue into a real PostgreSQL table
//! through `pauselog-postgres`, next to the loop a user would otherwise
//! write, on the same server in the same run.
//!
//! - ours: 100,000 queued records over 10,000 keys (JSON payloads of a name
//!   and a credit limit) drained by `resume(CatchUp)` → `wait_for(Running)`,
//!   with 1 and with 8 catch-up lanes (R22), Strict key ordering, batches of
//!   up to 1024 records, each batch one round trip and one transaction.
//! - peer: one prepared `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
//!   seq < EXCLUDED.seq` per record on one connection, each its own
//!   transaction, the records already in memory and already split into
//!   columns (no log to read, no JSON to parse: the peer gets the easy part).
//!   Its cost per record does not depend on the queue's length, so it runs
//!   over every tenth record of the same stream ([`LOOP_SHARE`]); the
//!   figures are records/s.
//!
//! Target: 8 lanes >= 10x the loop. Before each run the table holds every
//! key at seq 0, so every record of both sides is an update.
//!
//! The server: `PAUSELOG_PG_URL`, else a throwaway cluster (`initdb` and
//! `pg_ctl` installed), else the bench prints a `SKIPPED` line and ends.
//! `PAUSELOG_BENCH_SCALE=quick` shrinks the queue 100x.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pauselog::{Engine, MapConfig, MapState, Op, Record, ResumeMode, SyncPolicy};
use pauselog_benches::{quick, report_ratio};
use pauselog_postgres::testing::{TestSchema, URL_ENV};
use pauselog_postgres::{PgDestination, ThrowawayCluster};

const RECORDS_FULL: u64 = 100_000;
const KEYS_FULL: u64 = 10_000;
/// The loop applies one record in this many of the stream.
const LOOP_SHARE: u64 = 10;
/// Timed runs behind each RATIO line; the median is reported.
const RATIO_RUNS: usize = 3;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
const LANES: [usize; 2] = [1, 8];

fn records() -> u64 {
    if quick() {
        RECORDS_FULL / 100
    } else {
        RECORDS_FULL
    }
}

fn keys() -> u64 {
    if quick() {
        KEYS_FULL / 100
    } else {
        KEYS_FULL
    }
}

fn key(n: u64) -> String {
    format!("USMF|CUST-{:06}", n % keys())
}

fn name(n: u64) -> String {
    format!("r{n}")
}

fn credit_limit(n: u64) -> i64 {
    (n % 100_000) as i64
}

fn payload(n: u64) -> Vec<u8> {
    format!(r#"{{"name": "{}", "credit_limit": {}}}"#, name(n), credit_limit(n)).into_bytes()
}

/// A server and a schema of the bench's own on it.
struct Target {
    url: String,
    table: String,
    schema: TestSchema,
    _cluster: Option<ThrowawayCluster>,
}

fn target() -> Option<Target> {
    let (url, cluster) = match std::env::var(URL_ENV) {
        Ok(url) => (url, None),
        Err(_) => match ThrowawayCluster::start() {
            Ok(cluster) => (cluster.url(), Some(cluster)),
            Err(error) => {
                println!("SKIPPED postgres bench: no PostgreSQL server: set {URL_ENV} or install PostgreSQL ({error})");
                return None;
            }
        },
    };
    let schema = TestSchema::create(&url, "bench").expect("bench schema");
    let table = schema.table("customers");
    let ddl = format!(
        "CREATE TABLE {table} (key text PRIMARY KEY, seq bigint NOT NULL, name text NOT NULL, \
         credit_limit bigint NOT NULL CHECK (credit_limit >= 0))"
    );
    schema.client().expect("client").batch_execute(&ddl).expect("bench table");
    Some(Target { url, table, schema, _cluster: cluster })
}

impl Target {
    /// Every key at seq 0, then a checkpoint so no run pays for another's writes.
    fn reset(&self) {
        let mut client = self.schema.client().expect("client");
        let sql = format!(
            "TRUNCATE {t}; INSERT INTO {t} (key, seq, name, credit_limit) \
             SELECT format('USMF|CUST-%s', lpad(i::text, 6, '0')), 0, 'initial', 0 FROM generate_series(0, {last}) i; \
             ANALYZE {t}; CHECKPOINT",
            t = self.table,
            last = keys() - 1
        );
        client.batch_execute(&sql).expect("reset table");
    }

    /// Each key holds its last record among those `n` for which `wrote(n)`,
    /// or its initial row if there is none.
    fn check(&self, wrote: impl Fn(u64) -> bool) {
        let mut client = self.schema.client().expect("client");
        let rows = client.query(&format!("SELECT key, name, credit_limit FROM {}", self.table), &[]).expect("rows");
        let mut last = std::collections::HashMap::new();
        for n in (0..records()).filter(|&n| wrote(n)) {
            last.insert(key(n), n);
        }
        let wrong = rows
            .iter()
            .filter(|row| {
                let key: String = row.get(0);
                let expected = last.get(&key).map_or(("initial".to_owned(), 0), |&n| (name(n), credit_limit(n)));
                (row.get::<_, String>(1), row.get::<_, i64>(2)) != expected
            })
            .count();
        assert_eq!(wrong, 0, "every key holds its last record");
    }

    /// Queues every record on a fresh engine (untimed), then times the
    /// catch-up into the table with `lanes` lanes.
    fn drain(&self, lanes: usize) -> Duration {
        self.reset();
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::builder(dir.path()).sync(SyncPolicy::Never).tick_interval(None).open().expect("engine");
        let dest = PgDestination::builder(&self.url, &self.table).build().expect("destination");
        dest.check().expect("destination connects");
        let config = MapConfig { lanes, ..MapConfig::default() };
        let map = engine.table_map("customers", config, Arc::new(dest)).expect("map");
        map.pause().expect("pause");
        for n in 0..records() {
            map.submit(Record::new(key(n), Op::Update, payload(n))).expect("queued");
        }
        let start = Instant::now();
        map.resume(ResumeMode::CatchUp).expect("resume");
        map.wait_for(|s| matches!(s, MapState::Running), DRAIN_TIMEOUT).expect("drained");
        let elapsed = start.elapsed();
        assert_eq!(map.stats().error_records, 0, "every record applied: {:?}", map.stats().last_error);
        drop(map);
        engine.close().expect("close");
        self.check(|_| true);
        elapsed
    }

    /// One `INSERT ... ON CONFLICT` per record, one connection, every
    /// [`LOOP_SHARE`]th record of the stream. Returns the time and count.
    fn insert_loop(&self) -> (Duration, u64) {
        self.reset();
        let mut client = self.schema.client().expect("client");
        let statement = client
            .prepare(&format!(
                "INSERT INTO {} AS t (key, seq, name, credit_limit) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, name = EXCLUDED.name, \
                 credit_limit = EXCLUDED.credit_limit WHERE t.seq < EXCLUDED.seq",
                self.table
            ))
            .expect("prepare");
        let rows: Vec<(String, i64, String, i64)> = (0..records())
            .filter(|n| n % LOOP_SHARE == 0)
            .map(|n| (key(n), n as i64 + 1, name(n), credit_limit(n)))
            .collect();
        let start = Instant::now();
        for (key, seq, name, credit_limit) in &rows {
            client.execute(&statement, &[key, seq, name, credit_limit]).expect("insert");
        }
        let elapsed = start.elapsed();
        self.check(|n| n % LOOP_SHARE == 0);
        (elapsed, rows.len() as u64)
    }
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// [`RATIO_RUNS`] rounds, each running the loop and then the catch-up with
/// each lane count, so that a slow spell of the shared disk or CPU falls on
/// both sides; the medians are reported.
fn report(target: &Target) {
    let (mut peer, mut ours) = (Vec::new(), vec![Vec::new(); LANES.len()]);
    for _ in 0..RATIO_RUNS {
        let (elapsed, count) = target.insert_loop();
        peer.push(per_second(count, elapsed));
        for (runs, lanes) in ours.iter_mut().zip(LANES) {
            runs.push(per_second(records(), target.drain(lanes)));
        }
    }
    let peer = median(peer);
    println!("TIME one INSERT ... ON CONFLICT per record, one connection: {peer:.0} records/s");
    for (runs, lanes) in ours.into_iter().zip(LANES) {
        let ours = median(runs);
        println!("TIME catch-up of {} records over {} keys, {lanes} lane(s): {ours:.0} records/s", records(), keys());
        let target_text = if lanes == 8 { " [target >= 10x]" } else { "" };
        report_ratio(
            &format!("catch-up into PostgreSQL, {lanes} lane(s), vs one INSERT per record{target_text}"),
            ours,
            peer,
            "records/s",
        );
    }
}

fn bench_postgres(c: &mut Criterion) {
    let Some(target) = target() else { return };
    report(&target);
    let mut group = c.benchmark_group("postgres");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(records()));
    for lanes in LANES {
        group.bench_function(format!("catch-up, {lanes} lane(s)"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| target.drain(lanes)).sum())
        });
    }
    group.throughput(Throughput::Elements(records() / LOOP_SHARE));
    group.bench_function("one INSERT per record", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| target.insert_loop().0).sum())
    });
    group.finish();
}

criterion_group!(benches, bench_postgres);
criterion_main!(benches);
