//! The file view of a data directory, for when no engine serves it: the
//! engine's inspection API opens the logs read-only and takes no lock.
//! Pages come out in the admin API's schema (cursors included), so
//! `queued` and `errors` print and page the same way in both views.
//! Also `verify`, and the tables both views print.

use std::path::Path;
use std::time::SystemTime;

use pauselog::admin::{error_dto, limit_dto, record_dto, state_dto, StateFields};
use pauselog::{self as api, MapState, Query};
use pauselog_admin::cursor::{self, List};
use pauselog_admin::schema as dto;
use serde_json::{json, Value};

use crate::table::{self, Align};
use crate::{CliError, StatusArgs, VerifyArgs};

/// What the file view cannot show, said once per command.
pub const FILES_NOTE: &str = "showing the durable state read from its files: no drain rate, ETA or caps, a catch-up shows 0 replayed, and records an engine buffers under SyncPolicy::Interval are not in it yet";

/// `pauselog status` from the files.
pub fn status(args: &StatusArgs) -> Result<(), CliError> {
    require_dir(&args.dir)?;
    let mut reports = api::inspect(&args.dir)?;
    if let Some(map) = &args.map {
        reports.retain(|report| &report.name == map);
        if reports.is_empty() {
            return Err(no_such_map(&args.dir, map)?);
        }
    }
    if args.json {
        let maps: Vec<Value> = reports.iter().map(report_json).collect();
        return print_json(&json!({ "source": "files", "dir": args.dir.display().to_string(), "maps": maps }));
    }
    if reports.is_empty() {
        println!("no table maps in {}", args.dir.display());
        return Ok(());
    }
    let mut rows = table::new(&[
        ("MAP", Align::Left),
        ("STATE", Align::Left),
        ("PAUSED SINCE", Align::Left),
        ("REASON", Align::Left),
        ("QUEUED", Align::Right),
        ("QUEUED BYTES", Align::Right),
        ("OLDEST", Align::Right),
        ("ERRORS", Align::Right),
        ("ERROR BYTES", Align::Right),
    ]);
    for report in &reports {
        let StateFields { paused_since: since, pause_reason: reason, .. } = state_dto(&report.state);
        rows.add_row(vec![
            report.name.clone(),
            state_text(&report.state),
            since.map_or_else(|| "-".to_owned(), |since| format!("{since} ({} ago)", table::age(since.0))),
            reason.map_or_else(|| "-".to_owned(), |reason| format!("{reason:?}")),
            report.queued_records.to_string(),
            table::bytes(report.queued_bytes),
            report.oldest_queued_at.map_or_else(|| "-".to_owned(), table::age),
            report.error_records.to_string(),
            table::bytes(report.error_bytes),
        ]);
    }
    table::print(&rows);
    Ok(())
}

/// A page of queued records from the files.
pub fn queued_page(
    dir: &Path,
    map: &str,
    query: &Query,
    payload: bool,
) -> Result<dto::Page<dto::QueuedRecord>, CliError> {
    let query = unbind_after(List::Queued, map, query)?;
    let page = api::inspect_map(dir, map)?.queued(&query)?;
    Ok(dto::Page {
        map: map.to_owned(),
        items: page.items.into_iter().map(|record| record_dto(record, payload)).collect(),
        next: page.next.map(|next| cursor::bind(List::Queued, map, &next)),
        total: page.total,
    })
}

/// A page of catch-up errors from the files.
pub fn errors_page(
    dir: &Path,
    map: &str,
    query: &Query,
    payload: bool,
) -> Result<dto::Page<dto::CatchupError>, CliError> {
    let query = unbind_after(List::Errors, map, query)?;
    let page = api::inspect_map(dir, map)?.catchup_errors(&query)?;
    Ok(dto::Page {
        map: map.to_owned(),
        items: page.items.into_iter().map(|entry| error_dto(entry, payload)).collect(),
        next: page.next.map(|next| cursor::bind(List::Errors, map, &next)),
        total: page.total,
    })
}

/// The engine's cursor inside an API cursor; a cursor of another map or
/// list is refused as the API refuses it.
fn unbind_after(list: List, map: &str, query: &Query) -> Result<Query, CliError> {
    let mut query = query.clone();
    if let Some(after) = &query.after {
        query.after = Some(cursor::unbind(list, map, after).map_err(CliError::Refused)?.to_owned());
    }
    Ok(query)
}

/// `pauselog verify`: exit 1 (via `CliError::Failed`) on any problem.
pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    require_dir(&args.dir)?;
    let report = api::verify(&args.dir)?;
    println!("verified {}", args.dir.display());
    let mut rows = table::new(&[("MAP", Align::Left), ("FRAMES", Align::Right), ("BYTES", Align::Right)]);
    for (name, frames, bytes) in &report.maps {
        rows.add_row(vec![name.clone(), frames.to_string(), bytes.to_string()]);
    }
    if rows.row_count() == 0 {
        println!("  no table maps");
    } else {
        table::print(&rows);
    }
    if report.problems.is_empty() {
        println!("no problems found");
        return Ok(());
    }
    println!("{} problem(s):", report.problems.len());
    for problem in &report.problems {
        println!("  - {problem}");
    }
    Err(CliError::Failed(format!(
        "{} problem(s) found in {}; keep a copy of the directory before opening it with an engine, which truncates a damaged tail of the active segment",
        report.problems.len(),
        args.dir.display()
    )))
}

/// The table the `queued` listing and the demo print.
pub fn queued_table(records: &[dto::QueuedRecord]) -> comfy_table::Table {
    let mut rows = table::new(&[
        ("SEQ", Align::Right),
        ("KEY", Align::Left),
        ("OP", Align::Left),
        ("BYTES", Align::Right),
        ("QUEUED AT", Align::Left),
    ]);
    for record in records {
        rows.add_row(vec![
            record.seq.to_string(),
            record.key.clone(),
            format!("{:?}", record.op),
            record.payload_bytes.to_string(),
            record.queued_at.to_string(),
        ]);
    }
    rows
}

/// The table the `errors` listing and the demo print.
pub fn errors_table(entries: &[dto::CatchupError]) -> comfy_table::Table {
    let mut rows = table::new(&[
        ("SEQ", Align::Right),
        ("KEY", Align::Left),
        ("OP", Align::Left),
        ("REASON", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("LAST FAILED", Align::Left),
        ("LAST ERROR", Align::Left),
    ]);
    for entry in entries {
        rows.add_row(vec![
            entry.record.seq.to_string(),
            entry.record.key.clone(),
            format!("{:?}", entry.record.op),
            format!("{:?}", entry.reason),
            entry.attempts.to_string(),
            entry.last_failed_at.to_string(),
            entry.last_error.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    rows
}

/// `N shown; T <what> in map M` and the `--after` of the next page.
pub fn print_page_footer(map: &str, what: &str, shown: usize, total: u64, next: Option<&str>, key: Option<&str>) {
    let scope = key.map_or_else(|| format!("map {map}"), |key| format!("key {key} in map {map}"));
    println!("{shown} shown; {total} {what} in {scope}");
    if let Some(next) = next {
        println!("more: --after {next}");
    }
}

/// Fails with a usage error unless `dir` is a directory.
pub fn require_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{} is not a directory; pass the engine's data directory with --dir",
            dir.display()
        )))
    }
}

/// The only map stored in `dir`, or a usage error naming the choices.
pub fn only_stored_map(dir: &Path) -> Result<String, CliError> {
    let names = pauselog::list_map_names(dir)?;
    only_one(dir, names)
}

/// The only name of `names`, or a usage error naming the choices.
pub fn only_one(dir: &Path, names: Vec<String>) -> Result<String, CliError> {
    match names.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(CliError::Usage(format!("no table maps in {}", dir.display()))),
        _ => Err(CliError::Usage(format!(
            "{} holds several table maps ({}); choose one with --map",
            dir.display(),
            names.join(", ")
        ))),
    }
}

fn no_such_map(dir: &Path, map: &str) -> Result<CliError, CliError> {
    let names = pauselog::list_map_names(dir)?;
    Ok(CliError::Usage(format!("no table map {map} in {}; it holds: {}", dir.display(), names.join(", "))))
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Io(format!("cannot format JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn report_json(report: &api::MapReport) -> Value {
    let StateFields { state, paused_since, pause_reason, pause_window } = state_dto(&report.state);
    let mut value = json!({
        "name": report.name,
        "state": state,
        "paused_since": paused_since,
        "pause_reason": pause_reason,
        "pause_window": pause_window,
        "blocked": report.blocked.map(limit_dto),
        "head": report.head,
        "tail": report.tail,
        "queued_records": report.queued_records,
        "queued_bytes": report.queued_bytes,
        "error_records": report.error_records,
        "error_bytes": report.error_bytes,
        "oldest_queued_at": report.oldest_queued_at.map(dto::Timestamp),
        "oldest_queued_age_ms": report.oldest_queued_at.and_then(age_ms),
        "data_segments": report.data_segments,
    });
    if let MapState::CatchingUp { replayed, remaining } = &report.state {
        value["replayed"] = json!(replayed);
        value["remaining"] = json!(remaining);
    }
    value
}

fn age_ms(time: SystemTime) -> Option<u64> {
    SystemTime::now().duration_since(time).ok().map(dto::millis)
}

/// The engine's state with its figures, for tables.
pub fn state_text(state: &MapState) -> String {
    match state {
        MapState::Running => "Running".to_owned(),
        MapState::Paused { blocked: Some(cap), .. } => format!("Paused+Blocked({cap:?})"),
        MapState::Paused { .. } => "Paused".to_owned(),
        MapState::CatchingUp { replayed, remaining } => format!("CatchingUp ({replayed} replayed, {remaining} left)"),
    }
}
