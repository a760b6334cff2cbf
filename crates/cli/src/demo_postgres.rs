//! `pauselog demo --postgres URL`: the story against a real PostgreSQL
//! server, through `pauselog-postgres`, on the `customers` sample
//! (`pauselog_postgres::sample`) in a schema of the demo's own,
//! `pauselog_demo` (dropped and made anew at the start, kept at the end).
//!
//! Live sync; a maintenance window (a migration holds the table's exclusive
//! lock, so every write times out and answers `Unavailable`) during which
//! the health rule pauses the map and writers keep queueing, some records
//! breaking the table's CHECK constraint or foreign key; catch-up in 8 lanes
//! while writers go on (live pass-through for keys with nothing queued); the rejected rows in the catch-up errors with the
//! server's messages; fixes at the source and at the destination, a retry;
//! and the checks that the table equals the last write per key and that no
//! row ever went back to an older version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pauselog::{Engine, MapConfig, MapState, PauseRule, ResumeMode, SyncPolicy, TableMap};
use pauselog_postgres::sample::{self, Model, Monitor, WriterPlan, Writers};
use pauselog_postgres::PgDestination;

use crate::demo::DemoArgs;
use crate::CliError;

/// The demo's schema on the server.
const SCHEMA: &str = "pauselog_demo";
/// The table, qualified.
const TABLE: &str = "pauselog_demo.customers";
/// How long a write may wait on the server before it counts as `Unavailable`.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Consecutive `Unavailable` live writes that pause the map.
const UNAVAILABLE_TO_PAUSE: u32 = 3;
/// Catch-up lanes.
const LANES: usize = 8;
/// Most distinct keys.
const KEY_COUNT_MAX: u64 = 10_000;
/// A catch-up writer's pause after each record.
const CATCH_UP_WRITER_PACE: Duration = Duration::from_micros(200);
/// How often a reader checks that no row goes back to an older version.
const MONITOR_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait for a state change before the demo gives up.
const WAIT_MAX: Duration = Duration::from_secs(600);

/// Runs the PostgreSQL demo on the engine directory `dir`.
pub fn run(args: &DemoArgs, url: &str, dir: &std::path::Path) -> Result<(), CliError> {
    let started = Instant::now();
    let mut admin = connect(url)?;
    prepare_schema(&mut admin)?;
    let destination = PgDestination::builder(url, TABLE)
        .statement_timeout(STATEMENT_TIMEOUT)
        .build()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    destination.check().map_err(|e| CliError::Failed(e.to_string()))?;
    let engine = Engine::builder(dir).sync(SyncPolicy::Always).open()?;
    let config = MapConfig {
        rules: vec![PauseRule::DestinationUnavailable { consecutive: UNAVAILABLE_TO_PAUSE }],
        lanes: LANES,
        // Writers go on during the catch-up: without pass-through (R23) their
        // records keep the tail ahead of the lanes and the catch-up never ends.
        live_pass_through: true,
        ..MapConfig::default()
    };
    let map = engine.table_map("customers", config, Arc::new(destination))?;
    let key_count = (args.records / 20).clamp(100, KEY_COUNT_MAX);
    println!("pauselog demo against PostgreSQL: table {TABLE}, {key_count} keys, engine in {}", dir.display());
    let mut story = Story { map, url: url.to_owned(), key_count, writer_count: args.writers, failed: Vec::new() };
    story.run(&mut admin, args.records)?;
    drop(story.map);
    engine.close()?;
    println!("\ndone in {:.1} s; the table is kept: psql {url} -c 'TABLE {TABLE}'", started.elapsed().as_secs_f64());
    if story.failed.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        Err(CliError::Failed(format!("{} checks failed: {}", story.failed.len(), story.failed.join("; "))))
    }
}

fn connect(url: &str) -> Result<postgres::Client, CliError> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|e| CliError::Failed(format!("cannot connect to PostgreSQL at {url}: {e}")))
}

fn sql_failed(what: &str, error: &postgres::Error) -> CliError {
    let text = error.as_db_error().map_or_else(|| error.to_string(), |db| db.message().to_owned());
    CliError::Failed(format!("{what}: {text}"))
}

/// A fresh `pauselog_demo` schema with the sample's tables. A new engine's
/// seqs start again at 1, so the old run's rows and tombstones must go too
/// (they would outrank every new record).
fn prepare_schema(admin: &mut postgres::Client) -> Result<(), CliError> {
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
        .map_err(|e| sql_failed("creating the demo schema", &e))?;
    let tombstones: Option<String> = admin
        .query_one("SELECT to_regclass('pauselog.tombstones')::text", &[])
        .map_err(|e| sql_failed("catalog", &e))?
        .get(0);
    if tombstones.is_some() {
        admin
            .execute("DELETE FROM pauselog.tombstones WHERE table_name = $1", &[&TABLE])
            .map_err(|e| sql_failed("clearing old tombstones", &e))?;
    }
    sample::create_tables(admin, SCHEMA).map_err(|e| sql_failed("creating the demo tables", &e))
}

struct Story {
    map: TableMap,
    url: String,
    key_count: u64,
    writer_count: u64,
    failed: Vec<String>,
}

impl Story {
    fn check(&mut self, ok: bool, what: impl std::fmt::Display) {
        println!("  [{}] {what}", if ok { "ok" } else { "FAIL" });
        if !ok {
            self.failed.push(what.to_string());
        }
    }

    fn run(&mut self, admin: &mut postgres::Client, queue_target: u64) -> Result<(), CliError> {
        let mut model = Model::default();
        println!("\n== 1. Live sync (Running): version 1 of every key");
        let started = Instant::now();
        let live = sample::write_first_versions(&self.map, &mut model, self.key_count, self.writer_count)?;
        let elapsed = started.elapsed().as_secs_f64();
        println!("  {live} records applied live in {elapsed:.2} s by {} writers", self.writer_count);
        self.check(live == self.key_count, "every record was delivered live");
        self.check_table(admin, &model, "the table equals the last write per key");

        let monitor = Monitor::start(&self.url, TABLE, MONITOR_POLL_INTERVAL);
        let writers = self.writers(&model, false);
        std::thread::sleep(Duration::from_millis(500));
        println!("\n== 2. Maintenance: a migration holds {TABLE}'s exclusive lock");
        let mut migration = connect(&self.url)?;
        let mut lock = migration.transaction().map_err(|e| sql_failed("begin", &e))?;
        lock.batch_execute(&format!("LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE"))
            .map_err(|e| sql_failed("lock", &e))?;
        let state = self.map.wait_for(|s| matches!(s, MapState::Paused { .. }), WAIT_MAX)?;
        println!(
            "  writes time out after {STATEMENT_TIMEOUT:?} (Unavailable); the health rule paused the map: {state:?}"
        );
        for i in (0..self.key_count).filter(|&i| sample::is_bad_key(i)) {
            for version in [sample::BAD_VERSION, sample::BAD_VERSION + 1] {
                sample::submit_until_taken(&self.map, sample::record(i, version))?;
                model.ack(i, version);
            }
        }
        let started = Instant::now();
        while self.map.stats().queued_records < queue_target {
            std::thread::sleep(Duration::from_millis(50));
        }
        let queued = self.map.stats().queued_records;
        println!(
            "  writers queued {queued} records ({:.0}/s), some breaking the CHECK constraint or naming a missing region",
            queued as f64 / started.elapsed().as_secs_f64()
        );
        writers.stop_into(&mut model)?;

        println!("\n== 3. Maintenance over: catch up in {LANES} lanes while writers go on");
        lock.commit().map_err(|e| sql_failed("commit", &e))?;
        let writers = self.writers(&model, true);
        let started = Instant::now();
        self.map.resume(ResumeMode::CatchUp)?;
        self.show_catch_up()?;
        let elapsed = started.elapsed();
        let tail = writers.stop_into(&mut model)?;
        let replayed = self.map.stats().replayed;
        println!(
            "  caught up in {:.2} s: {:.0} records/s into PostgreSQL; writers added {tail} records meanwhile",
            elapsed.as_secs_f64(),
            replayed as f64 / elapsed.as_secs_f64()
        );

        println!("\n== 4. Catch-up errors: the server's messages");
        let errors = sample::all_errors(&self.map)?;
        for error in errors.iter().take(4) {
            println!(
                "  seq {:>7} {} {:?}: {}",
                error.record.seq,
                error.record.key,
                error.reason,
                error.last_error.as_deref().unwrap_or("-")
            );
        }
        println!("  ... {} entries", errors.len());
        let wrong = sample::error_differences(&errors, self.key_count);
        self.check(wrong.is_empty(), format!("exactly the bad keys' records, Rejected then blocked: {wrong:?}"));

        println!(
            "\n== 5. Fix: CHECK keys at the source (a newer record), the missing region at the destination, retry"
        );
        let progress =
            sample::fix_errors(&self.map, &mut model, admin, SCHEMA, self.key_count).map_err(CliError::Failed)?;
        println!(
            "  retry: {} delivered, {} failed again, {} skipped (superseded)",
            progress.delivered, progress.failed, progress.skipped
        );
        self.check(self.map.stats().error_records == 0, "no catch-up errors left");

        println!("\n== 6. Checks");
        self.check_table(admin, &model, "the table equals the last acknowledged write per key");
        let (polls, regressions) = monitor.finish();
        self.check(regressions.is_empty(), format!("a reader polled the table {polls} times and never saw a row go back to an older version {regressions:?}"));
        Ok(())
    }

    /// `--writers` writers at full speed, or two paced ones (while catching
    /// up: a service writing faster than the destination takes records
    /// would keep the catch-up from ever ending).
    fn writers(&self, model: &Model, paced: bool) -> Writers {
        let plan = if paced {
            WriterPlan { key_count: self.key_count, writer_count: 2, pause_between_submits: CATCH_UP_WRITER_PACE }
        } else {
            WriterPlan {
                key_count: self.key_count,
                writer_count: self.writer_count,
                pause_between_submits: Duration::ZERO,
            }
        };
        Writers::start(&self.map, model, plan, (sample::no_hook, sample::no_hook))
    }

    fn check_table(&mut self, admin: &mut postgres::Client, model: &Model, what: &str) {
        match model.differences(admin, TABLE) {
            Ok(wrong) => self.check(
                wrong.is_empty(),
                format!("{what} ({} differ: {:?})", wrong.len(), &wrong[..wrong.len().min(3)]),
            ),
            Err(error) => self.check(false, format!("{what}: {}", sql_failed("reading the table", &error))),
        }
    }

    fn show_catch_up(&self) -> Result<(), CliError> {
        let bar = ProgressBar::new(self.map.stats().remaining.max(1));
        bar.set_style(
            ProgressStyle::with_template("  catching up {bar:40} {pos}/{len} {msg}").expect("a valid template"),
        );
        let deadline = Instant::now() + WAIT_MAX;
        while Instant::now() < deadline {
            let stats = self.map.stats();
            if matches!(stats.state, MapState::Running) {
                bar.finish_and_clear();
                return Ok(());
            }
            bar.set_length(stats.replayed + stats.remaining);
            bar.set_position(stats.replayed);
            bar.set_message(format!("{:.0} records/s", stats.drain_rate_per_sec));
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(CliError::Failed("the catch-up did not end in time".into()))
    }
}
