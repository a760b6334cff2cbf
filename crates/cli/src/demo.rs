//! `pauselog demo`: the whole story on one table map against a simulated
//! destination — live sync, pause, concurrent queueing, the queued view,
//! catch-up under new writes with a progress bar, rejected records, retry,
//! and a second act that skips to live preserving the backlog. Every step
//! checks the engine's promises and the run fails (exit 1) if one breaks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pauselog::admin::{error_dto, record_dto};
use pauselog::{
    CatchupError, Engine, ErrorReason, MapConfig, MapState, MapStats, Op, Query, QueuedRecord, Record, ResumeMode,
    Selection, Submitted, SyncPolicy, TableMap,
};

use crate::inspect_cmd::{errors_table, queued_table, state_text};
use crate::sim_destination::SimDestination;
use crate::table::{self, Align};
use crate::CliError;

/// The demo's table map.
const MAP_NAME: &str = "customers";
/// Concurrent writers during catch-up (their records go to the tail).
const TAIL_WRITER_COUNT: u64 = 2;
/// Most distinct integration keys.
const KEY_COUNT_MAX: u64 = 10_000;
/// Size of each demo payload.
const PAYLOAD_BYTES: usize = 200;
/// Keys the destination rejects during catch-up.
const REJECTED_KEY_COUNT: usize = 3;
/// Records left queued at the end when the directory is kept.
const BACKLOG_RECORDS_MAX: u64 = 1_000;
/// Records queued in the second act.
const ACT_TWO_RECORDS_MAX: u64 = 3_000;
/// Simulated work of the destination per record.
const DESTINATION_COST: Duration = Duration::from_micros(3);
/// Longest wait for the catch-up or a retry before the demo gives up.
const WAIT_MAX: Duration = Duration::from_secs(600);
/// How often progress bars poll.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Data directory to use and keep (must not hold a `customers` map yet).
    /// Default: a fresh temporary directory, removed at the end.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Records to queue while paused.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    pub records: u64,
    /// Concurrent writers while paused (SyncPolicy::Always shares one fsync
    /// among the writers waiting on it, so more writers queue faster).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub writers: u64,
    /// Data log segment size in bytes (engine default: 64 MiB). Small
    /// segments show rotation and the release of drained segments.
    #[arg(long, value_parser = clap::value_parser!(u64).range(4096..=(1 << 30)))]
    pub segment_bytes: Option<u64>,
    /// After the demo, keep the engine and its admin socket up, with the
    /// map paused on a backlog and a few catch-up errors, until interrupted
    /// (Ctrl-C or SIGTERM), so that `pauselog pause|resume|retry|watch ..`
    /// can steer it from a second terminal.
    #[arg(long)]
    pub hold: bool,
    /// Run against this PostgreSQL server instead of a simulated destination
    /// (`postgres://user:password@host:port/db`); the demo works in a schema
    /// of its own, `pauselog_demo`, made anew at the start and kept.
    #[arg(long, value_name = "URL", conflicts_with = "hold")]
    pub postgres: Option<String>,
    /// Also serve the admin API and its web page on this loopback address
    /// (e.g. 127.0.0.1:8080; port 0 picks one), with a fresh token written
    /// to `<dir>/admin-token` (mode 0600). The demo prints the page's
    /// address and the token to log in with; add `--hold` to keep it up.
    #[arg(long, value_name = "ADDR", conflicts_with = "postgres")]
    pub admin: Option<std::net::SocketAddr>,
}

/// `pauselog demo`.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let (dir, temporary) = match &args.dir {
        Some(dir) => {
            if dir.join("maps").join(MAP_NAME).exists() {
                return Err(CliError::Usage(format!(
                    "{} already holds a {MAP_NAME} map; give the demo an empty or new directory",
                    dir.display()
                )));
            }
            (dir.clone(), false)
        }
        None => (fresh_temp_dir()?, true),
    };
    let keep_backlog = !temporary || args.hold;
    let result = match &args.postgres {
        Some(url) => crate::demo_postgres::run(args, url, &dir),
        None => Demo::open(&dir, args, keep_backlog).and_then(|demo| demo.run(args.hold.then_some(dir.as_path()))),
    };
    if temporary {
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            eprintln!("warning: could not remove the demo directory {}: {error}", dir.display());
        }
    } else {
        println!("\ndata kept in {}; try `pauselog status --dir {}`", dir.display(), dir.display());
    }
    result
}

fn fresh_temp_dir() -> Result<PathBuf, CliError> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("pauselog-demo-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Pass/fail lines, printed as they happen.
#[derive(Debug, Default)]
struct Checks {
    passed: u64,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Display) {
        if ok {
            self.passed += 1;
            println!("  [ok]   {what}");
        } else {
            println!("  [FAIL] {what}");
            self.failed.push(what.to_string());
        }
    }
}

/// Timings and counts for the summary.
#[derive(Debug, Default)]
struct Figures {
    live_initial: u64,
    queued: u64,
    queued_bytes: u64,
    queue_elapsed: Duration,
    tail_queued: u64,
    tail_live: u64,
    replayed: u64,
    drain_elapsed: Duration,
    errors_before_retry: u64,
    errors_after_retry: u64,
    retry_elapsed: Duration,
    act_two_preserved: u64,
    act_two_discarded: u64,
}

struct Demo {
    engine: Engine,
    map: TableMap,
    destination: Arc<SimDestination>,
    record_count: u64,
    writer_count: u64,
    /// The directory is kept: leave a paused map with a backlog to inspect.
    keep_backlog: bool,
    key_count: u64,
    checks: Checks,
    figures: Figures,
    step: u32,
    /// Seqs acknowledged as `Queued` in act one (all must be delivered once).
    acked_seqs: HashSet<u64>,
    /// Queued records per key index, from act one's writers.
    per_key: HashMap<u64, u64>,
    started: Instant,
}

impl Demo {
    fn open(dir: &Path, args: &DemoArgs, keep_backlog: bool) -> Result<Demo, CliError> {
        let started = Instant::now();
        let record_count = args.records;
        let mut builder = Engine::builder(dir).sync(SyncPolicy::Always);
        if let Some(bytes) = args.segment_bytes {
            builder = builder.segment_bytes_max(bytes);
        }
        let token = match args.admin {
            Some(addr) => {
                let (token, file) = write_admin_token(dir)?;
                builder = builder.admin_tcp(addr, &file);
                Some((token, file))
            }
            None => None,
        };
        let engine = builder.open()?;
        if let (Some(addr), Some((token, file))) = (engine.admin_tcp_addr(), &token) {
            print_admin_page(addr, token, file);
        }
        let destination = Arc::new(SimDestination::new(DESTINATION_COST));
        let map = engine.table_map(MAP_NAME, MapConfig::default(), destination.clone())?;
        println!("pauselog demo: {record_count} records, data directory {}", dir.display());
        println!("engine open (SyncPolicy::Always: every Queued answer is fsynced, writers share fsyncs)");
        Ok(Demo {
            engine,
            map,
            destination,
            record_count,
            writer_count: args.writers,
            keep_backlog,
            key_count: (record_count / 20).clamp(10, KEY_COUNT_MAX),
            checks: Checks::default(),
            figures: Figures::default(),
            step: 0,
            acked_seqs: HashSet::new(),
            per_key: HashMap::new(),
            started,
        })
    }

    /// Runs every act; with `hold`, then keeps the engine open on that
    /// directory until interrupted.
    fn run(mut self, hold: Option<&Path>) -> Result<(), CliError> {
        self.live_sync()?;
        self.pause()?;
        self.queue_records()?;
        self.show_queued()?;
        self.show_stats("R9 figures while paused");
        let rejected = self.catch_up()?;
        self.show_errors(&rejected)?;
        self.retry()?;
        self.check_deliveries();
        self.act_two()?;
        if self.keep_backlog {
            self.leave_backlog()?;
        }
        self.summary();
        let outcome = if self.checks.failed.is_empty() {
            println!("\nall {} checks passed", self.checks.passed);
            Ok(())
        } else {
            Err(CliError::Failed(format!(
                "{} of {} checks failed: {}",
                self.checks.failed.len(),
                self.checks.failed.len() as u64 + self.checks.passed,
                self.checks.failed.join("; ")
            )))
        };
        if let Some(dir) = hold {
            hold_until_interrupted(&self.engine, dir)?;
        }
        self.engine.close()?;
        outcome
    }

    fn heading(&mut self, title: &str) {
        self.step += 1;
        println!("\n== {}. {title} ==", self.step);
    }

    fn live_sync(&mut self) -> Result<(), CliError> {
        self.heading("Live sync (Running)");
        let live_count = 5;
        let mut live = 0;
        for index in 0..live_count {
            if self.map.submit(demo_record(self.key_count, index, 0))? == Submitted::Live {
                live += 1;
            }
        }
        self.figures.live_initial = live;
        self.checks.check(live == live_count, format!("{live}/{live_count} records delivered live"));
        self.checks.check(self.destination.ledger().delivered == live_count, "the destination received them");
        Ok(())
    }

    fn pause(&mut self) -> Result<(), CliError> {
        self.heading("Pause for maintenance");
        self.map.pause()?;
        let state = self.map.state();
        println!("  state: {}", state_text(&state));
        self.checks.check(matches!(state, MapState::Paused { .. }), "map is Paused");
        Ok(())
    }

    fn queue_records(&mut self) -> Result<(), CliError> {
        let total = self.record_count;
        let writers = self.writer_count;
        self.heading(&format!("Queue {total} records from {writers} concurrent writers over {} keys", self.key_count));
        let submitted = AtomicU64::new(0);
        let started = Instant::now();
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|writer| {
                    let (map, submitted, key_count) = (&self.map, &submitted, self.key_count);
                    scope.spawn(move || queue_share(map, writer, writers, total, key_count, submitted))
                })
                .collect();
            let bar = progress_bar(total, "queueing");
            while !handles.iter().all(|h| h.is_finished()) {
                bar.set_position(submitted.load(Ordering::Relaxed));
                std::thread::sleep(POLL_INTERVAL);
            }
            bar.finish_and_clear();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into())))
                .collect::<Vec<_>>()
        });
        self.figures.queue_elapsed = started.elapsed();
        let mut in_order = true;
        for result in results {
            let acked = result.map_err(CliError::Failed)?;
            in_order &= acked.windows(2).all(|w| w[0].0 < w[1].0);
            for (seq, key_index) in acked {
                self.acked_seqs.insert(seq);
                *self.per_key.entry(key_index).or_default() += 1;
            }
        }
        let stats = self.map.stats();
        self.figures.queued = total;
        self.figures.queued_bytes = stats.queued_bytes;
        let secs = self.figures.queue_elapsed.as_secs_f64();
        println!(
            "  {total} records ({}) queued in {} = {:.0} records/s, {:.1} MB/s",
            table::bytes(stats.queued_bytes),
            table::duration(self.figures.queue_elapsed),
            total as f64 / secs,
            stats.queued_bytes as f64 / secs / 1e6
        );
        self.checks.check(self.acked_seqs.len() as u64 == total, format!("{total} distinct seqs acknowledged"));
        self.checks.check(in_order, "each writer saw strictly increasing seqs");
        self.checks.check(stats.queued_records == total, format!("stats: {} queued records", stats.queued_records));
        self.checks.check(
            self.destination.ledger().delivered == self.figures.live_initial,
            "nothing reached the destination while paused",
        );
        Ok(())
    }

    fn show_queued(&mut self) -> Result<(), CliError> {
        self.heading("Queued records, first page (R10)");
        let page = self.map.queued(&Query::default().limit(10))?;
        table::print(&queued_table(&records(&page.items)));
        println!(
            "  {} shown of {}; next cursor: {}",
            page.items.len(),
            page.total,
            page.next.as_deref().unwrap_or("-")
        );
        self.checks.check(page.total == self.record_count, format!("page total = {}", page.total));
        self.checks.check(page.items.windows(2).all(|w| w[0].seq < w[1].seq), "page is in seq order");
        if let (Some(next), Some(last)) = (&page.next, page.items.last()) {
            let second = self.map.queued(&Query::default().limit(10).after(next.clone()))?;
            let first_of_second = second.items.first().map_or(0, |r| r.seq);
            self.checks.check(first_of_second > last.seq, format!("the next page continues after seq {}", last.seq));
        }

        let Some(first) = page.items.first() else { return Ok(()) };
        let key = first.key.clone();
        self.heading(&format!("Key filter: {key} (R11)"));
        let page = self.map.queued(&Query::default().key(key.clone()).limit(10))?;
        table::print(&queued_table(&records(&page.items)));
        let expected = key_index(&key).and_then(|index| self.per_key.get(&index).copied()).unwrap_or(0);
        println!("  {} shown of {} records for this key", page.items.len(), page.total);
        self.checks.check(page.items.iter().all(|r| r.key == key), "every record has that key");
        self.checks.check(page.total == expected, format!("key total {} = records queued for it", page.total));
        Ok(())
    }

    fn show_stats(&mut self, title: &str) {
        self.heading(title);
        table::print(&stats_table(&self.map.stats()));
    }

    /// Resumes with catch-up while tail writers keep submitting; some keys
    /// are rejected. Returns the rejected key indices.
    fn catch_up(&mut self) -> Result<Vec<u64>, CliError> {
        self.heading(&format!("Resume with CatchUp while {TAIL_WRITER_COUNT} writers keep submitting (R3, R12)"));
        let rejected = self.pick_rejected_keys();
        let rejected_names: Vec<String> = rejected.iter().map(|&i| customer_key(i)).collect();
        println!("  the destination will reject keys {}", rejected_names.join(", "));
        self.destination.reject_keys(rejected_names);
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        self.map.resume(ResumeMode::CatchUp)?;
        let (outcome, tails) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..TAIL_WRITER_COUNT)
                .map(|writer| {
                    let (map, stop, rejected) = (&self.map, &stop, &rejected);
                    let (key_count, limit) = (self.key_count, self.record_count);
                    scope.spawn(move || tail_writer(map, writer, key_count, rejected, limit, stop))
                })
                .collect();
            let outcome = drain_with_progress(&self.map, self.record_count, started);
            // Let the tail writers cross into live sync before stopping them.
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
            let tails: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a tail writer panicked".into())))
                .collect();
            (outcome, tails)
        });
        self.figures.drain_elapsed = outcome?;
        for tail in tails {
            let tail = tail.map_err(CliError::Failed)?;
            self.figures.tail_live += tail.live;
            self.figures.tail_queued += tail.queued_seqs.len() as u64;
            self.acked_seqs.extend(tail.queued_seqs);
        }
        let stats = self.map.stats();
        self.figures.replayed = stats.replayed;
        let secs = self.figures.drain_elapsed.as_secs_f64();
        let drained = self.figures.queued + self.figures.tail_queued;
        let record_bytes_mean = self.figures.queued_bytes as f64 / self.figures.queued.max(1) as f64;
        println!(
            "  caught up in {}: {drained} records = {:.0} records/s, {:.1} MB/s; {} tail records queued behind the backlog, {} delivered live after the switch",
            table::duration(self.figures.drain_elapsed),
            drained as f64 / secs,
            drained as f64 * record_bytes_mean / secs / 1e6,
            self.figures.tail_queued,
            self.figures.tail_live,
        );
        self.checks.check(matches!(stats.state, MapState::Running), "map is Running");
        self.checks.check(stats.queued_records == 0, "the queue is empty");
        Ok(rejected)
    }

    /// The first keys (by index) with at least two queued records, so both
    /// `Rejected` and `BlockedByEarlierFailure` show up.
    fn pick_rejected_keys(&self) -> Vec<u64> {
        let mut candidates: Vec<u64> = self.per_key.iter().filter(|(_, &n)| n >= 2).map(|(&k, _)| k).collect();
        candidates.sort_unstable();
        candidates.truncate(REJECTED_KEY_COUNT);
        candidates
    }

    fn show_errors(&mut self, rejected: &[u64]) -> Result<(), CliError> {
        self.heading("Catch-up errors (R15)");
        let expected_total: u64 = rejected.iter().map(|k| self.per_key.get(k).copied().unwrap_or(0)).sum();
        let page = self.map.catchup_errors(&Query::default().limit(12))?;
        table::print(&errors_table(&errors(&page.items)));
        println!("  {} shown of {}", page.items.len(), page.total);
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut query = Query::default().limit(1000);
        loop {
            let page = self.map.catchup_errors(&query)?;
            for entry in &page.items {
                *counts.entry(format!("{:?}", entry.reason)).or_default() += 1;
            }
            match page.next {
                Some(next) => query = Query::default().limit(1000).after(next),
                None => break,
            }
        }
        for (reason, count) in &counts {
            println!("  {reason}: {count}");
        }
        let count = |reason: ErrorReason| counts.get(&format!("{reason:?}")).copied().unwrap_or(0);
        self.figures.errors_before_retry = self.map.stats().error_records;
        self.checks.check(
            page.total == expected_total,
            format!("{expected_total} errors: every queued record of the rejected keys"),
        );
        self.checks.check(count(ErrorReason::Rejected) == rejected.len() as u64, "one Rejected entry per rejected key");
        self.checks.check(
            count(ErrorReason::BlockedByEarlierFailure) == expected_total.saturating_sub(rejected.len() as u64),
            "the rest are BlockedByEarlierFailure (Strict key ordering)",
        );
        Ok(())
    }

    fn retry(&mut self) -> Result<(), CliError> {
        self.heading("Destination fixed: retry the errors (R16a)");
        self.destination.accept_all();
        let started = Instant::now();
        let job = self.map.retry_errors(Selection::All)?;
        let progress = job.wait(WAIT_MAX)?;
        self.figures.retry_elapsed = started.elapsed();
        println!(
            "  retry job: {} total, {} delivered, {} failed again, {} skipped, in {}",
            progress.total,
            progress.delivered,
            progress.failed,
            progress.skipped,
            table::duration(self.figures.retry_elapsed)
        );
        let stats = self.map.stats();
        self.figures.errors_after_retry = stats.error_records;
        self.checks.check(progress.delivered == self.figures.errors_before_retry, "every error was delivered");
        self.checks.check(progress.failed == 0 && !progress.cancelled, "nothing failed again");
        self.checks.check(stats.error_records == 0 && stats.error_bytes == 0, "the errors list is empty");
        Ok(())
    }

    /// Every acknowledged seq reached the destination exactly once, in seq
    /// order per key (the ledger checked order and duplicates as they came).
    fn check_deliveries(&mut self) {
        self.heading("Delivery invariants (R3, R18)");
        let ledger = self.destination.ledger();
        let missing = self.acked_seqs.iter().filter(|seq| !ledger.delivered_seqs.contains(seq)).count();
        self.checks.check(
            missing == 0,
            format!("all {} acknowledged records delivered ({missing} missing)", self.acked_seqs.len()),
        );
        let live_expected = self.figures.live_initial + self.figures.tail_live;
        let expected = self.acked_seqs.len() as u64 + live_expected;
        self.checks.check(
            ledger.delivered == expected && ledger.delivered_seqs.len() as u64 == expected,
            format!(
                "{} deliveries ({} queued, {live_expected} live), each with its own seq",
                ledger.delivered,
                self.acked_seqs.len()
            ),
        );
        self.checks.check(
            ledger.violation_count == 0,
            format!("per key, seqs strictly increased, live and queued alike ({} violations)", ledger.violation_count),
        );
        for violation in &ledger.violations {
            println!("         {violation}");
        }
    }

    fn act_two(&mut self) -> Result<(), CliError> {
        let count = self.record_count.min(ACT_TWO_RECORDS_MAX);
        self.heading(&format!("Act two: pause, queue {count}, skip to live preserving them (R13)"));
        self.map.pause()?;
        let delivered_before = self.destination.ledger().delivered;
        let submitted = AtomicU64::new(0);
        let writers = 4;
        let (map, key_count) = (&self.map, self.key_count);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    scope.spawn({
                        let submitted = &submitted;
                        move || queue_share(map, w, writers, count, key_count, submitted)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into()))).collect()
        });
        for result in results {
            result.map_err(CliError::Failed)?;
        }
        println!("  queued {count}; stats:");
        table::print(&stats_table(&self.map.stats()));
        self.map.resume(ResumeMode::SkipToLivePreserve)?;
        let stats = self.map.stats();
        self.figures.act_two_preserved = stats.error_records;
        println!(
            "  after resume(SkipToLivePreserve): state {}, {} catch-up errors",
            state_text(&stats.state),
            stats.error_records
        );
        let page = self.map.catchup_errors(&Query::default().limit(5))?;
        table::print(&errors_table(&errors(&page.items)));
        self.checks.check(matches!(stats.state, MapState::Running), "live at once");
        self.checks.check(
            stats.queued_records == 0 && stats.error_records == count,
            format!("all {count} moved to the errors"),
        );
        self.checks.check(page.items.iter().all(|e| e.reason == ErrorReason::Preserved), "reason Preserved");
        let live = self.map.submit(demo_record(key_count, 0, 1))?;
        self.checks.check(live == Submitted::Live, "a new record goes live");
        let discarded = self.map.discard_errors(Selection::All)?;
        self.figures.act_two_discarded = discarded;
        let stats = self.map.stats();
        println!("  discard_errors(All) discarded {discarded}");
        self.checks.check(discarded == count, format!("{discarded} discarded"));
        self.checks.check(stats.error_records == 0 && stats.error_bytes == 0, "the errors list is empty");
        let delivered_after = self.destination.ledger().delivered;
        self.checks.check(delivered_after == delivered_before + 1, "no preserved record was delivered");
        Ok(())
    }

    /// With `--dir`, leaves the map paused with a backlog and a few
    /// catch-up errors, so `pauselog status|queued|errors --dir` have
    /// something to show.
    fn leave_backlog(&mut self) -> Result<(), CliError> {
        let count = self.record_count.min(BACKLOG_RECORDS_MAX);
        self.heading(&format!("Leave {count} queued records and a few errors, to inspect with `pauselog status`"));
        let submitted = AtomicU64::new(0);
        self.map.pause()?;
        let acked = queue_share(&self.map, 0, 1, count, self.key_count, &submitted).map_err(CliError::Failed)?;
        let rejected_key = acked.first().map_or(0, |&(_, key_index)| key_index);
        let expected_errors = acked.iter().filter(|&&(_, key_index)| key_index == rejected_key).count() as u64;
        self.destination.reject_keys([customer_key(rejected_key)]);
        self.map.resume(ResumeMode::CatchUp)?;
        self.map.wait_for(|state| matches!(state, MapState::Running), WAIT_MAX)?;
        self.destination.accept_all();
        self.map.pause()?;
        let acked = queue_share(&self.map, 0, 1, count, self.key_count, &submitted).map_err(CliError::Failed)?;
        let stats = self.map.stats();
        println!(
            "  {} records queued ({}), {} catch-up errors for {}",
            stats.queued_records,
            table::bytes(stats.queued_bytes),
            stats.error_records,
            customer_key(rejected_key)
        );
        self.checks
            .check(acked.len() as u64 == count && stats.queued_records == count, format!("{count} records queued"));
        self.checks.check(stats.error_records == expected_errors, format!("{expected_errors} catch-up errors"));
        Ok(())
    }

    fn summary(&mut self) {
        self.heading("Summary");
        let f = &self.figures;
        let per_sec = |records: u64, elapsed: Duration| records as f64 / elapsed.as_secs_f64().max(1e-9);
        let record_bytes_mean = f.queued_bytes as f64 / f.queued.max(1) as f64;
        let drained = f.queued + f.tail_queued;
        let mut rows = table::new(&[("", Align::Left), ("VALUE", Align::Right)]);
        let mut row = |name: &str, value: String| {
            rows.add_row(vec![name.to_owned(), value]);
        };
        row("records queued while paused", f.queued.to_string());
        row("bytes queued (encoded, framed)", table::bytes(f.queued_bytes));
        row("records queued at the tail during catch-up", f.tail_queued.to_string());
        row("records replayed", f.replayed.to_string());
        row("records delivered live", (f.live_initial + f.tail_live).to_string());
        row("catch-up errors before retry", f.errors_before_retry.to_string());
        row("catch-up errors after retry", f.errors_after_retry.to_string());
        row("act two: preserved / discarded", format!("{} / {}", f.act_two_preserved, f.act_two_discarded));
        row("queueing time", table::duration(f.queue_elapsed));
        row("queueing throughput", format!("{:.0} records/s", per_sec(f.queued, f.queue_elapsed)));
        row("", format!("{:.1} MB/s", f.queued_bytes as f64 / f.queue_elapsed.as_secs_f64().max(1e-9) / 1e6));
        row("catch-up time", table::duration(f.drain_elapsed));
        row("draining throughput", format!("{:.0} records/s", per_sec(drained, f.drain_elapsed)));
        row(
            "",
            format!("{:.1} MB/s", drained as f64 * record_bytes_mean / f.drain_elapsed.as_secs_f64().max(1e-9) / 1e6),
        );
        row("retry time", table::duration(f.retry_elapsed));
        row("total time", table::duration(self.started.elapsed()));
        table::print(&rows);
    }
}

/// The file `--admin` keeps its token in, inside the data directory.
const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Writes a fresh token to `<dir>/admin-token`, readable by this user only.
fn write_admin_token(dir: &Path) -> Result<(pauselog_admin::Token, PathBuf), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let token = pauselog_admin::Token::generate();
    let path = dir.join(ADMIN_TOKEN_FILE);
    let io = |e: std::io::Error| CliError::Io(format!("cannot write the admin token file {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
    writeln!(file, "{}", token.as_str()).map_err(io)?;
    Ok((token, path))
}

fn print_admin_page(addr: std::net::SocketAddr, token: &pauselog_admin::Token, file: &Path) {
    println!("admin web page: http://{addr}/ui/");
    println!("admin token: {} (in {})", token.as_str(), file.display());
    println!("metrics: http://{addr}/metrics (Authorization: Bearer <token>)");
}

/// Keeps `engine` open until SIGINT or SIGTERM, after saying where its
/// admin socket is and what to try.
fn hold_until_interrupted(engine: &Engine, dir: &Path) -> Result<(), CliError> {
    let (interrupted, wait) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = interrupted.send(());
    })
    .map_err(|e| CliError::Io(format!("cannot catch Ctrl-C to hold the engine: {e}")))?;
    let socket = engine.admin_socket_path().ok_or_else(|| {
        CliError::Failed("the engine serves no admin socket, so there is nothing to hold it open for".into())
    })?;
    let dir = dir.display();
    println!("\n== Holding the engine open until interrupted (Ctrl-C) ==");
    if let Some(addr) = engine.admin_tcp_addr() {
        println!(
            "admin web page: http://{addr}/ui/ (log in with the token printed above, in {dir}/{ADMIN_TOKEN_FILE})"
        );
    }
    println!("admin socket: {}", socket.display());
    println!("the map {MAP_NAME} is paused with a backlog and a few catch-up errors; from a second terminal try:");
    for command in [
        format!("pauselog status --dir {dir}"),
        format!("pauselog queued --dir {dir} --limit 5"),
        format!("pauselog resume --dir {dir} --mode catch-up"),
        format!("pauselog watch --dir {dir}"),
        format!("pauselog retry --dir {dir} --wait"),
        format!("pauselog pause --dir {dir}"),
    ] {
        println!("  {command}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = wait.recv();
    println!("interrupted: closing the engine");
    Ok(())
}

/// Polls `map.stats()` into a progress bar until the map is Running.
fn drain_with_progress(map: &TableMap, record_count: u64, started: Instant) -> Result<Duration, CliError> {
    let bar = progress_bar(record_count, "draining");
    loop {
        let stats = map.stats();
        if matches!(stats.state, MapState::Running) {
            bar.finish_and_clear();
            return Ok(started.elapsed());
        }
        if started.elapsed() > WAIT_MAX {
            bar.abandon();
            return Err(CliError::Failed(format!(
                "catch-up did not finish within {}; last error: {}",
                table::duration(WAIT_MAX),
                stats.last_error.as_deref().unwrap_or("none")
            )));
        }
        bar.set_length(stats.replayed + stats.remaining);
        bar.set_position(stats.replayed);
        let eta = stats.eta.map_or_else(|| "-".to_owned(), table::duration);
        let stalled = stats.last_error.as_deref().map_or(String::new(), |e| format!(" (last error: {e})"));
        bar.set_message(format!("{:.0} records/s, ETA {eta}{stalled}", stats.drain_rate_per_sec));
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// What a tail writer did.
struct TailOutcome {
    queued_seqs: Vec<u64>,
    live: u64,
}

/// Submits share `writer` of `total` records (every `writers`-th index);
/// returns (seq, key index) in acknowledgment order. All must be `Queued`.
fn queue_share(
    map: &TableMap,
    writer: u64,
    writers: u64,
    total: u64,
    key_count: u64,
    submitted: &AtomicU64,
) -> Result<Vec<(u64, u64)>, String> {
    let mut acked = Vec::with_capacity((total / writers + 1) as usize);
    let mut index = writer;
    while index < total {
        let key_index = mix(index) % key_count;
        match map.submit(demo_record(key_count, index, 0)) {
            Ok(Submitted::Queued { seq }) => acked.push((seq, key_index)),
            Ok(Submitted::Live) => return Err(format!("record {index} was delivered live while the map was paused")),
            Err(error) => return Err(format!("submit failed: {error}")),
        }
        submitted.fetch_add(1, Ordering::Relaxed);
        index += writers;
    }
    Ok(acked)
}

/// Submits records (never of a `rejected` key) until `stop`, at most `limit`.
fn tail_writer(
    map: &TableMap,
    writer: u64,
    key_count: u64,
    rejected: &[u64],
    limit: u64,
    stop: &AtomicBool,
) -> Result<TailOutcome, String> {
    let mut outcome = TailOutcome { queued_seqs: Vec::new(), live: 0 };
    let mut index = (writer + 1) << 40;
    for _ in 0..limit {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        index += 1;
        if rejected.contains(&(mix(index) % key_count)) {
            continue;
        }
        match map.submit(demo_record(key_count, index, 0)) {
            Ok(Submitted::Queued { seq }) => outcome.queued_seqs.push(seq),
            Ok(Submitted::Live) => outcome.live += 1,
            Err(error) => return Err(format!("tail submit failed: {error}")),
        }
    }
    Ok(outcome)
}

/// A customer record: key from a hash of `index`, ~200-byte JSON payload.
fn demo_record(key_count: u64, index: u64, act: u64) -> Record {
    let key_index = mix(index) % key_count;
    let op = match index % 10 {
        0 => Op::Create,
        9 => Op::Delete,
        _ => Op::Update,
    };
    let mut payload = format!(
        r#"{{"dataAreaId":"USMF","CustomerAccount":"CUST-{key_index:05}","Name":"Customer {key_index}","CreditLimit":{},"Currency":"USD","Revision":{index},"Act":{act},"Notes":""#,
        (key_index * 37 % 100) * 1000,
    );
    let pad = PAYLOAD_BYTES.saturating_sub(payload.len() + 2);
    payload.extend(std::iter::repeat_n('.', pad));
    payload.push_str("\"}");
    Record::new(customer_key(key_index), op, payload.into_bytes())
}

fn customer_key(key_index: u64) -> String {
    format!("USMF|CUST-{key_index:05}")
}

fn key_index(key: &str) -> Option<u64> {
    key.strip_prefix("USMF|CUST-")?.parse().ok()
}

/// SplitMix64's finaliser: spreads record indices over keys deterministically.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn progress_bar(length: u64, prefix: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let style = ProgressStyle::with_template("  {prefix:>9} [{bar:40}] {pos}/{len} {msg}")
        .expect("the template is a valid constant")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(prefix);
    bar
}

/// Queued records in the admin API's schema, as the tables take them.
fn records(items: &[QueuedRecord]) -> Vec<pauselog_admin::schema::QueuedRecord> {
    items.iter().cloned().map(|record| record_dto(record, false)).collect()
}

/// Catch-up errors in the admin API's schema.
fn errors(items: &[CatchupError]) -> Vec<pauselog_admin::schema::CatchupError> {
    items.iter().cloned().map(|entry| error_dto(entry, false)).collect()
}

/// `map.stats()` as a key/value table (R9).
fn stats_table(stats: &MapStats) -> comfy_table::Table {
    let optional = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), table::duration);
    table::key_values(&[
        ("state", state_text(&stats.state)),
        ("queued records", stats.queued_records.to_string()),
        ("queued bytes", format!("{} ({})", stats.queued_bytes, table::bytes(stats.queued_bytes))),
        ("oldest queued age", optional(stats.oldest_queued_age)),
        ("bytes left before the size cap", table::bytes(stats.bytes_left)),
        ("time left before the pause cap", optional(stats.pause_time_left)),
        ("blocked", stats.blocked.map_or_else(|| "-".to_owned(), |limit| format!("{limit:?}"))),
        ("replayed", stats.replayed.to_string()),
        ("remaining", stats.remaining.to_string()),
        ("drain rate", format!("{:.0} records/s", stats.drain_rate_per_sec)),
        ("eta", optional(stats.eta)),
        ("error records", stats.error_records.to_string()),
        ("error bytes", stats.error_bytes.to_string()),
        ("last error", stats.last_error.clone().unwrap_or_else(|| "-".to_owned())),
    ])
}
