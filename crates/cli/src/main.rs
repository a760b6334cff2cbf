//! `pauselog`: the operator's command line (docs/rules.md §8).
//!
//! - `pauselog demo` runs the whole pause → queue → catch-up → retry story
//!   against a simulated destination and checks the delivery invariants;
//!   `--hold` keeps its engine and admin socket up afterwards; `--admin
//!   127.0.0.1:PORT` also serves the admin web page there, with a fresh
//!   token it prints.
//! - `pauselog status|queued|errors --dir D` show the live figures through
//!   the admin API when an engine serves `D`, else read its files without
//!   taking the lock (with a note saying so).
//! - `pauselog pause|resume|skip-to-live|retry|discard-errors|jobs|watch
//!   --dir D` steer the engine serving `D` through its admin API (R24).
//! - `pauselog verify --dir D` checks every frame's CRC and the accounting.
//!
//! Exit codes: 0 success; 1 a failure (an I/O or engine error, damage found
//! by `verify`, a broken invariant in `demo`); 2 bad usage; 3 no engine
//! serves the directory (for commands that need one); 4 the engine refused
//! the request (state, map, cursor or input; nothing changed); 5 a
//! `retry --wait` finished with records that failed again, or was cancelled.

#![forbid(unsafe_code)]

mod demo;
mod demo_postgres;
mod inspect_cmd;
mod live;
mod sim_destination;
mod table;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, for `--help`.
const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure (an I/O or engine error, damage found by verify, a failed demo check); \
2 bad usage; 3 no engine serves the directory (commands that need one); 4 the engine refused the request, nothing changed; \
5 retry --wait left records failing or was cancelled.";

/// Pause table maps for maintenance without losing a record.
#[derive(Debug, Parser)]
#[command(name = "pauselog", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Log what the engine does to stderr (-v info, -vv debug, -vvv trace;
    /// `RUST_LOG` overrides). Default: warnings only.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the demo: pause, queue, inspect, catch up, retry, summarise.
    Demo(demo::DemoArgs),
    /// One row per table map: state, pause, limits, queue, catch-up progress, errors.
    Status(StatusArgs),
    /// List queued records, a page at a time.
    Queued(ListArgs),
    /// List catch-up errors, a page at a time.
    Errors(ListArgs),
    /// Check every frame's CRC and the accounting; exit 1 on damage.
    Verify(VerifyArgs),
    /// Pause a map of the running engine (its records queue from the next submit on).
    Pause(ActionArgs),
    /// Resume a paused map of the running engine.
    Resume(ResumeArgs),
    /// During catch-up, go live at once, preserving (default) or discarding the rest.
    SkipToLive(SkipArgs),
    /// Retry catch-up errors as a background job of the running engine.
    Retry(RetryArgs),
    /// Discard catch-up errors (all, one key's, or chosen seqs).
    DiscardErrors(SelectionArgs),
    /// List the retry jobs of the running engine, or cancel one.
    Jobs(JobsArgs),
    /// The status table, refreshed until interrupted.
    Watch(WatchArgs),
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Only this table map.
    #[arg(long)]
    pub map: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Read the files even when an engine serves the directory.
    #[arg(long)]
    pub files: bool,
}

/// Arguments of `queued` and `errors`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The table map; may be left out when the directory holds only one.
    #[arg(long)]
    pub map: Option<String>,
    /// Only records with this integration key.
    #[arg(long)]
    pub key: Option<String>,
    /// Page size, 1..=1000. Default: 50.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Continue after this cursor (the `next` of the previous page).
    #[arg(long)]
    pub after: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Include payloads in the JSON, as lossy UTF-8 (never in tables or logs).
    #[arg(long, requires = "json")]
    pub show_payload: bool,
    /// Read the files even when an engine serves the directory.
    #[arg(long)]
    pub files: bool,
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory.
    #[arg(long)]
    pub dir: PathBuf,
}

/// The data directory and map of an action on the running engine.
#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The data directory of the running engine.
    #[arg(long)]
    pub dir: PathBuf,
    /// The table map; may be left out when the engine has only one open.
    #[arg(long)]
    pub map: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--mode` of `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Replay the queue, new writes to its tail, then live (R12).
    CatchUp,
    /// Live at once; the queue becomes catch-up errors (R13).
    SkipPreserve,
    /// Live at once; the queue is discarded (R13).
    SkipDiscard,
}

/// Arguments of `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// How to resume.
    #[arg(long, value_enum)]
    pub mode: ModeArg,
}

/// Arguments of `skip-to-live`.
#[derive(Debug, Args)]
pub struct SkipArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Discard the records not replayed yet instead of keeping them as
    /// catch-up errors.
    #[arg(long)]
    pub discard: bool,
}

/// Which catch-up errors: all (default), one key's, or chosen seqs.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    /// Only the errors of this integration key.
    #[arg(long, conflicts_with = "seq")]
    pub key: Option<String>,
    /// Only the errors with these seqs (repeat the option).
    #[arg(long)]
    pub seq: Vec<u64>,
}

/// Arguments of `retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Also deliver `Superseded` entries (an older version may then
    /// overwrite a newer one in the destination, R16b).
    #[arg(long)]
    pub forced: bool,
    /// Wait for the job with a progress bar; exit 5 if records failed again.
    #[arg(long)]
    pub wait: bool,
}

/// Arguments of `jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The data directory of the running engine.
    #[arg(long)]
    pub dir: PathBuf,
    /// Cancel this job (it stops after the record in flight).
    #[arg(long)]
    pub cancel: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The data directory of the running engine.
    #[arg(long)]
    pub dir: PathBuf,
    /// Only this table map.
    #[arg(long)]
    pub map: Option<String>,
    /// Milliseconds between refreshes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    pub interval_ms: u64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// Print one JSON line per refresh instead of redrawing a table.
    #[arg(long)]
    pub json: bool,
}

/// Why a command failed. `Display` says what to do; [`CliError::exit_code`]
/// is the documented exit code.
#[derive(Debug)]
pub enum CliError {
    /// The engine (or the inspection API) failed.
    Engine(pauselog::Error),
    /// The arguments do not make sense together or for this directory.
    Usage(String),
    /// A check failed: `verify` found damage or `demo` saw a broken invariant.
    Failed(String),
    /// Writing output or a temporary directory failed.
    Io(String),
    /// The command needs a running engine and none serves the directory.
    NotServing(String),
    /// The engine refused the request; nothing changed.
    Refused(pauselog_admin::ApiError),
    /// A waited-for retry left records failing (or was cancelled).
    RetryIncomplete(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Engine(_) | CliError::Failed(_) | CliError::Io(_) => 1,
            CliError::Usage(_) => 2,
            CliError::NotServing(_) => 3,
            CliError::Refused(_) => 4,
            CliError::RetryIncomplete(_) => 5,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Engine(error) => write!(f, "{error}"),
            CliError::Refused(error) => write!(f, "refused: {} ({:?}); nothing changed", error.message, error.code),
            CliError::Usage(message)
            | CliError::Failed(message)
            | CliError::Io(message)
            | CliError::NotServing(message)
            | CliError::RetryIncomplete(message) => f.write_str(message),
        }
    }
}

impl From<pauselog::Error> for CliError {
    fn from(error: pauselog::Error) -> Self {
        CliError::Engine(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Status(args) => live::status(&args),
        Command::Queued(args) => live::queued(&args),
        Command::Errors(args) => live::errors(&args),
        Command::Verify(args) => inspect_cmd::verify(&args),
        Command::Pause(args) => live::pause(&args),
        Command::Resume(args) => live::resume(&args),
        Command::SkipToLive(args) => live::skip_to_live(&args),
        Command::Retry(args) => live::retry(&args),
        Command::DiscardErrors(args) => live::discard_errors(&args),
        Command::Jobs(args) => live::jobs(&args),
        Command::Watch(args) => live::watch(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Tracing to stderr: `RUST_LOG` if set, else by `-v` count (default warn).
fn init_tracing(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
