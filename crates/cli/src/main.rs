//! `pauselog`: the operator's command line (SPEC §8).
//!
//! - `pauselog demo` runs the whole pause → queue → catch-up → retry story
//!   against a simulated destination and checks the delivery invariants.
//! - `pauselog status|queued|errors --dir D` inspect a data directory without
//!   taking its lock, so they also work while an engine runs on it.
//! - `pauselog verify --dir D` checks every frame's CRC and the accounting.
//!
//! Exit codes: 0 success, 1 a failure (an error, damage found by `verify`, a
//! broken invariant in `demo`), 2 bad usage.

mod demo;
mod inspect_cmd;
mod sim_destination;
mod table;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Pause table maps for maintenance without losing a record.
#[derive(Debug, Parser)]
#[command(name = "pauselog", version, about)]
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
    /// One row per table map: state, pause, limits, queue and errors.
    Status(StatusArgs),
    /// List queued records, a page at a time.
    Queued(ListArgs),
    /// List catch-up errors, a page at a time.
    Errors(ListArgs),
    /// Check every frame's CRC and the accounting; exit 1 on damage.
    Verify(VerifyArgs),
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
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Why a command failed. `Display` says what to do.
#[derive(Debug)]
pub enum CliError {
    /// The engine (or the inspection API) failed.
    Engine(pauselog::Error),
    /// The arguments do not make sense together or for this directory.
    Usage(String),
    /// A check failed: `verify` found damage or `demo` saw a broken invariant.
    Failed(String),
    /// Writing JSON or a temporary directory failed.
    Io(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Engine(error) => write!(f, "{error}"),
            CliError::Usage(message) | CliError::Failed(message) | CliError::Io(message) => f.write_str(message),
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
        Command::Status(args) => inspect_cmd::status(&args),
        Command::Queued(args) => inspect_cmd::queued(&args),
        Command::Errors(args) => inspect_cmd::errors(&args),
        Command::Verify(args) => inspect_cmd::verify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
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
