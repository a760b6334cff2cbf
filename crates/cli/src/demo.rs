//! `pauselog demo`: the whole story on one table map against a simulated
//! destination — live sync, pause, concurrent queueing, the queued view,
//! catch-up under new writes with a progress bar, rejected records, retry,
//! and a second act that skips to live preserving the backlog. Every step
//! checks the engine's promises and the run fails (exit 1) if one breaks.
//!
//! This file opens the engine and runs the acts in order; each act is a
//! module: [`queueing`] (live sync, pause, queueing, the queued view),
//! [`catch_up`] (catch-up under new writes, errors, retry, the delivery
//! invariants), [`skip`] (act two), [`summary`] (the tables), with the
//! records of [`workload`] and the `--admin`/`--hold` extras of [`admin`].

mod admin;
mod catch_up;
mod queueing;
mod skip;
mod summary;
mod workload;

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pauselog::{Engine, MapConfig, SyncPolicy, TableMap};

use crate::sim_destination::SimDestination;
use crate::CliError;
use admin::{hold_until_interrupted, print_admin_page, write_admin_token};

/// The demo's table map.
const MAP_NAME: &str = "customers";
/// Most distinct integration keys.
const KEY_COUNT_MAX: u64 = 10_000;
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
