//! The commands that talk to a running engine through its admin API
//! (docs/rules.md R24): `status`, `queued` and `errors` (falling back to the file
//! view when no engine serves the directory), and `pause`, `resume`,
//! `skip-to-live`, `retry`, `discard-errors`, `jobs` and `watch`, which
//! need one.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pauselog::Query;
use pauselog_admin::client::{Client, ClientError};
use pauselog_admin::request::{PageQuery, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use pauselog_admin::schema::{self as dto, MapStatus, ResumeMode, RetryJob, Selection};
use serde_json::Value;

use crate::inspect_cmd::{self, print_json, print_page_footer, require_dir, FILES_NOTE};
use crate::table::{self, Align};
use crate::{ActionArgs, CliError, JobsArgs, ListArgs, ModeArg, ResumeArgs, RetryArgs, SelectionArgs, SkipArgs};
use crate::{StatusArgs, WatchArgs};

/// How often `retry --wait` polls its job.
const JOB_POLL_INTERVAL: Duration = Duration::from_millis(100);

fn from_client(dir: &Path, error: ClientError) -> CliError {
    match error {
        ClientError::NotServing { socket, reason } => CliError::NotServing(format!(
            "no engine serves {} (its admin socket {} answers: {reason}); start the service, or `pauselog demo --dir {} --hold`, and try again. `status`, `queued` and `errors` read the files without one",
            dir.display(),
            socket.display(),
            dir.display()
        )),
        ClientError::Api(error) => CliError::Refused(error),
        other => CliError::Failed(other.to_string()),
    }
}

/// A client of the engine serving `dir`, or `None` when none does.
fn connect(dir: &Path) -> Result<Option<Client>, CliError> {
    require_dir(dir)?;
    let client = Client::for_data_dir(dir).map_err(|e| from_client(dir, e))?;
    match client.health() {
        Ok(_) => Ok(Some(client)),
        Err(ClientError::NotServing { .. }) => Ok(None),
        Err(error) => Err(from_client(dir, error)),
    }
}

/// A client of the engine serving `dir`; an error saying so when none does.
fn require_engine(dir: &Path) -> Result<Client, CliError> {
    require_dir(dir)?;
    let client = Client::for_data_dir(dir).map_err(|e| from_client(dir, e))?;
    client.health().map_err(|e| from_client(dir, e))?;
    Ok(client)
}

/// `--map`, or the engine's only open map.
fn resolve_map(client: &Client, dir: &Path, map: Option<&str>) -> Result<String, CliError> {
    if let Some(map) = map {
        return Ok(map.to_owned());
    }
    let names = client.maps().map_err(|e| from_client(dir, e))?.into_iter().map(|m| m.name).collect();
    inspect_cmd::only_one(dir, names)
}

fn note_files(dir: &Path) {
    eprintln!("note: no engine serves {}; {FILES_NOTE}", dir.display());
}

/// `pauselog status`.
pub fn status(args: &StatusArgs) -> Result<(), CliError> {
    let client = if args.files { None } else { connect(&args.dir)? };
    let Some(client) = client else {
        if !args.files {
            note_files(&args.dir);
        }
        return inspect_cmd::status(args);
    };
    let maps = match &args.map {
        Some(map) => vec![client.map(map).map_err(|e| from_client(&args.dir, e))?],
        None => client.maps().map_err(|e| from_client(&args.dir, e))?,
    };
    if args.json {
        return print_json(&LiveStatus { source: "engine", dir: args.dir.display().to_string(), maps: &maps });
    }
    print_status(&args.dir, &maps);
    Ok(())
}

/// `status --json` of a live engine: the API's figures, and where from.
#[derive(serde::Serialize)]
struct LiveStatus<'a> {
    /// `engine` (the file view says `files`).
    source: &'static str,
    dir: String,
    maps: &'a [MapStatus],
}

/// One line of `watch --json`.
#[derive(serde::Serialize)]
struct WatchLine<'a> {
    at: dto::Timestamp,
    maps: &'a [MapStatus],
}

fn print_status(dir: &Path, maps: &[MapStatus]) {
    if maps.is_empty() {
        println!("no table maps open in the engine serving {}", dir.display());
        return;
    }
    table::print(&status_table(maps));
    for map in maps {
        if let Some(error) = &map.last_error {
            println!("{}: last delivery error: {error}", map.name);
        }
    }
}

/// One row per map with every R9 figure.
fn status_table(maps: &[MapStatus]) -> comfy_table::Table {
    let mut rows = table::new(&[
        ("MAP", Align::Left),
        ("STATE", Align::Left),
        ("PAUSED FOR", Align::Right),
        ("REASON", Align::Left),
        ("QUEUED", Align::Right),
        ("BYTES", Align::Right),
        ("OLDEST", Align::Right),
        ("SIZE LEFT", Align::Right),
        ("TIME LEFT", Align::Right),
        ("REPLAYED", Align::Right),
        ("REMAINING", Align::Right),
        ("RATE/S", Align::Right),
        ("ETA", Align::Right),
        ("ERRORS", Align::Right),
    ]);
    for map in maps {
        let state = match (map.state, map.blocked) {
            (dto::MapStateName::Paused, Some(limit)) => format!("Paused+Blocked({limit:?})"),
            (state, Some(limit)) => format!("{state:?} (blocked: {limit:?})"),
            (state, None) => format!("{state:?}"),
        };
        let catching_up = map.state == dto::MapStateName::CatchingUp;
        let dash_unless = |shown: bool, text: String| if shown { text } else { "-".to_owned() };
        rows.add_row(vec![
            map.name.clone(),
            state,
            map.paused_since.map_or_else(|| "-".to_owned(), |since| table::age(since.0)),
            map.pause_reason.map_or_else(|| "-".to_owned(), |reason| format!("{reason:?}")),
            map.queued_records.to_string(),
            table::bytes(map.queued_bytes),
            table::millis(map.oldest_queued_age_ms),
            table::bytes(map.bytes_left),
            table::millis(map.pause_time_left_ms),
            dash_unless(catching_up, map.replayed.to_string()),
            dash_unless(catching_up, map.remaining.to_string()),
            dash_unless(catching_up, format!("{:.0}", map.drain_rate_per_sec)),
            table::millis(map.eta_ms),
            format!("{} ({})", map.error_records, table::bytes(map.error_bytes)),
        ]);
    }
    rows
}

/// The page query of `queued` / `errors`, checked here so both views
/// refuse the same inputs the same way.
fn page_query(args: &ListArgs) -> Result<PageQuery, CliError> {
    let limit = match args.limit {
        None => PAGE_LIMIT_DEFAULT,
        Some(limit) => u32::try_from(limit)
            .ok()
            .filter(|limit| (1..=PAGE_LIMIT_MAX).contains(limit))
            .ok_or_else(|| CliError::Usage(format!("--limit {limit} must be from 1 to {PAGE_LIMIT_MAX}")))?,
    };
    Ok(PageQuery { key: args.key.clone(), after: args.after.clone(), limit, payload: args.show_payload })
}

fn engine_query(query: &PageQuery) -> Query {
    let mut engine_query = Query::default().limit(query.limit as usize);
    engine_query.key = query.key.clone();
    engine_query.after = query.after.clone();
    engine_query
}

/// Where a listing reads from.
enum Source {
    Engine(Client, String),
    Files(String),
}

fn list_source(args: &ListArgs) -> Result<Source, CliError> {
    let client = if args.files { None } else { connect(&args.dir)? };
    match client {
        Some(client) => {
            let map = resolve_map(&client, &args.dir, args.map.as_deref())?;
            Ok(Source::Engine(client, map))
        }
        None => {
            if !args.files {
                note_files(&args.dir);
            }
            let map = match &args.map {
                Some(map) => map.clone(),
                None => inspect_cmd::only_stored_map(&args.dir)?,
            };
            Ok(Source::Files(map))
        }
    }
}

/// `pauselog queued`.
pub fn queued(args: &ListArgs) -> Result<(), CliError> {
    let query = page_query(args)?;
    let page = match list_source(args)? {
        Source::Engine(client, map) => client.queued(&map, &query).map_err(|e| from_client(&args.dir, e))?,
        Source::Files(map) => inspect_cmd::queued_page(&args.dir, &map, &engine_query(&query), query.payload)?,
    };
    if args.json {
        return print_json(&with_payload_text(&page, args.show_payload));
    }
    table::print(&inspect_cmd::queued_table(&page.items));
    print_page_footer(&page.map, "queued", page.items.len(), page.total, page.next.as_deref(), args.key.as_deref());
    Ok(())
}

/// `pauselog errors`.
pub fn errors(args: &ListArgs) -> Result<(), CliError> {
    let query = page_query(args)?;
    let page = match list_source(args)? {
        Source::Engine(client, map) => client.errors(&map, &query).map_err(|e| from_client(&args.dir, e))?,
        Source::Files(map) => inspect_cmd::errors_page(&args.dir, &map, &engine_query(&query), query.payload)?,
    };
    if args.json {
        return print_json(&with_payload_text(&page, args.show_payload));
    }
    table::print(&inspect_cmd::errors_table(&page.items));
    print_page_footer(
        &page.map,
        "catch-up errors",
        page.items.len(),
        page.total,
        page.next.as_deref(),
        args.key.as_deref(),
    );
    Ok(())
}

/// The page as JSON; with `--show-payload`, each record also gets
/// `payload`: its bytes as lossy UTF-8, for reading.
fn with_payload_text<T: serde::Serialize>(page: &dto::Page<T>, show_payload: bool) -> Value {
    let mut value = serde_json::to_value(page).expect("pages always serialise");
    let Some(items) = value["items"].as_array_mut().filter(|_| show_payload) else { return value };
    for item in items {
        let record = if item.get("record").is_some() { &mut item["record"] } else { item };
        let text = record["payload_base64"]
            .as_str()
            .and_then(pauselog_admin::payload_from_base64)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        if let (Some(text), Some(record)) = (text, record.as_object_mut()) {
            record.insert("payload".to_owned(), Value::String(text));
        }
    }
    value
}

fn print_map_after(action: &str, args: &ActionArgs, status: &MapStatus) -> Result<(), CliError> {
    if args.json {
        return print_json(status);
    }
    println!("{action}: {}", status.name);
    print_status(&args.dir, std::slice::from_ref(status));
    Ok(())
}

/// `pauselog pause`.
pub fn pause(args: &ActionArgs) -> Result<(), CliError> {
    let client = require_engine(&args.dir)?;
    let map = resolve_map(&client, &args.dir, args.map.as_deref())?;
    let status = client.pause(&map).map_err(|e| from_client(&args.dir, e))?;
    print_map_after("paused", args, &status)
}

/// `pauselog resume`.
pub fn resume(args: &ResumeArgs) -> Result<(), CliError> {
    let client = require_engine(&args.action.dir)?;
    let map = resolve_map(&client, &args.action.dir, args.action.map.as_deref())?;
    let mode = match args.mode {
        ModeArg::CatchUp => ResumeMode::CatchUp,
        ModeArg::SkipPreserve => ResumeMode::SkipToLivePreserve,
        ModeArg::SkipDiscard => ResumeMode::SkipToLiveDiscard,
    };
    let status = client.resume(&map, mode).map_err(|e| from_client(&args.action.dir, e))?;
    print_map_after(&format!("resumed ({mode:?})"), &args.action, &status)
}

/// `pauselog skip-to-live`.
pub fn skip_to_live(args: &SkipArgs) -> Result<(), CliError> {
    let client = require_engine(&args.action.dir)?;
    let map = resolve_map(&client, &args.action.dir, args.action.map.as_deref())?;
    let status = client.skip_to_live(&map, !args.discard).map_err(|e| from_client(&args.action.dir, e))?;
    let what = if args.discard { "skipped to live, rest discarded" } else { "skipped to live, rest preserved" };
    print_map_after(what, &args.action, &status)
}

fn selection(args: &SelectionArgs) -> Selection {
    match (&args.key, args.seq.is_empty()) {
        (Some(key), _) => Selection::Key { key: key.clone() },
        (None, false) => Selection::Seqs { seqs: args.seq.clone() },
        (None, true) => Selection::All,
    }
}

/// `pauselog retry`.
pub fn retry(args: &RetryArgs) -> Result<(), CliError> {
    let action = &args.selection.action;
    let client = require_engine(&action.dir)?;
    let map = resolve_map(&client, &action.dir, action.map.as_deref())?;
    let job = client.retry(&map, selection(&args.selection), args.forced).map_err(|e| from_client(&action.dir, e))?;
    if !args.wait {
        if action.json {
            return print_json(&job);
        }
        println!(
            "retry job {} started for {}: {} catch-up errors selected; follow it with `pauselog jobs --dir {}`",
            job.id,
            job.map,
            job.total,
            action.dir.display()
        );
        return Ok(());
    }
    let job = wait_for_job(&client, &action.dir, job, action.json)?;
    if action.json {
        print_json(&job)?;
    } else {
        println!(
            "retry job {}: {} delivered, {} failed again, {} skipped of {}{}",
            job.id,
            job.delivered,
            job.failed,
            job.skipped,
            job.total,
            if job.cancelled { " (cancelled)" } else { "" }
        );
    }
    if job.failed > 0 || job.cancelled {
        return Err(CliError::RetryIncomplete(format!(
            "retry job {} left {} records failing{}; see `pauselog errors --dir {}`",
            job.id,
            job.failed,
            if job.cancelled { " and was cancelled" } else { "" },
            action.dir.display()
        )));
    }
    Ok(())
}

/// Polls `job` until it is done, drawing a progress bar unless `quiet`.
fn wait_for_job(client: &Client, dir: &Path, mut job: RetryJob, quiet: bool) -> Result<RetryJob, CliError> {
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(job.total) };
    let style = ProgressStyle::with_template("  retrying [{bar:40}] {pos}/{len} {msg}")
        .expect("the template is a valid constant")
        .progress_chars("=> ");
    bar.set_style(style);
    while !job.done {
        bar.set_position(job.delivered + job.failed + job.skipped);
        bar.set_message(format!("{} delivered, {} failed", job.delivered, job.failed));
        std::thread::sleep(JOB_POLL_INTERVAL);
        job = client.job(job.id).map_err(|e| from_client(dir, e))?;
    }
    bar.finish_and_clear();
    Ok(job)
}

/// `pauselog discard-errors`.
pub fn discard_errors(args: &SelectionArgs) -> Result<(), CliError> {
    let client = require_engine(&args.action.dir)?;
    let map = resolve_map(&client, &args.action.dir, args.action.map.as_deref())?;
    let discarded = client.discard_errors(&map, selection(args)).map_err(|e| from_client(&args.action.dir, e))?;
    if args.action.json {
        return print_json(&discarded);
    }
    println!("discarded {} catch-up errors of {}", discarded.discarded, discarded.map);
    Ok(())
}

/// `pauselog jobs`.
pub fn jobs(args: &JobsArgs) -> Result<(), CliError> {
    let client = require_engine(&args.dir)?;
    let jobs = match args.cancel {
        Some(id) => vec![client.cancel_job(id).map_err(|e| from_client(&args.dir, e))?],
        None => client.jobs().map_err(|e| from_client(&args.dir, e))?,
    };
    if args.json {
        return print_json(&dto::JobList { jobs });
    }
    if jobs.is_empty() {
        println!("no retry jobs in the engine serving {}", args.dir.display());
        return Ok(());
    }
    let mut rows = table::new(&[
        ("JOB", Align::Right),
        ("MAP", Align::Left),
        ("STARTED", Align::Left),
        ("TOTAL", Align::Right),
        ("DELIVERED", Align::Right),
        ("FAILED", Align::Right),
        ("SKIPPED", Align::Right),
        ("STATE", Align::Left),
    ]);
    for job in &jobs {
        let state = match (job.done, job.cancelled) {
            (_, true) => "cancelled",
            (true, false) => "done",
            (false, false) => "running",
        };
        rows.add_row(vec![
            job.id.to_string(),
            job.map.clone(),
            job.started_at.to_string(),
            job.total.to_string(),
            job.delivered.to_string(),
            job.failed.to_string(),
            job.skipped.to_string(),
            format!("{state}{}", if job.forced { " (forced)" } else { "" }),
        ]);
    }
    table::print(&rows);
    Ok(())
}

/// `pauselog watch`: redraws the status table every interval until
/// interrupted (or `--count` refreshes).
pub fn watch(args: &WatchArgs) -> Result<(), CliError> {
    let client = require_engine(&args.dir)?;
    let term = console::Term::stdout();
    let interval = Duration::from_millis(args.interval_ms);
    let mut refreshes = 0u64;
    loop {
        let maps = match &args.map {
            Some(map) => vec![client.map(map).map_err(|e| from_client(&args.dir, e))?],
            None => client.maps().map_err(|e| from_client(&args.dir, e))?,
        };
        if args.json {
            let line =
                serde_json::to_string(&WatchLine { at: dto::Timestamp(std::time::SystemTime::now()), maps: &maps })
                    .map_err(|e| CliError::Io(format!("cannot format JSON: {e}")))?;
            println!("{line}");
        } else {
            if term.is_term() {
                let _ = term.clear_screen();
            }
            println!(
                "pauselog watch {} at {} (every {}; Ctrl-C to stop)\n",
                args.dir.display(),
                table::rfc3339(std::time::SystemTime::now()),
                table::duration(interval)
            );
            print_status(&args.dir, &maps);
        }
        refreshes += 1;
        if args.count.is_some_and(|count| refreshes >= count) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}
