//! `status`, `queued`, `errors` and `verify`: read-only looks at a data
//! directory. They go through the engine's inspection API, which opens the
//! logs read-only and takes no lock, so they work while an engine runs.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pauselog::{self as api, CatchupError, ErrorReason, Limit, MapState, Op, PauseReason, Query, QueuedRecord};
use serde_json::{json, Value};

use crate::table::{self, Align, Table};
use crate::{CliError, ListArgs, StatusArgs, VerifyArgs};

/// `pauselog status`.
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
        return print_json(&json!({ "dir": args.dir.display().to_string(), "maps": maps }));
    }
    if reports.is_empty() {
        println!("no table maps in {}", args.dir.display());
        return Ok(());
    }
    let mut rows = Table::new(&[
        ("MAP", Align::Left),
        ("STATE", Align::Left),
        ("PAUSED SINCE", Align::Left),
        ("REASON", Align::Left),
        ("BLOCKED", Align::Left),
        ("QUEUED", Align::Right),
        ("QUEUED BYTES", Align::Right),
        ("OLDEST", Align::Right),
        ("ERRORS", Align::Right),
        ("ERROR BYTES", Align::Right),
    ]);
    for report in &reports {
        let (since, reason) = match &report.state {
            MapState::Paused { since, reason, .. } => {
                (format!("{} ({} ago)", table::rfc3339(*since), table::age(*since)), pause_reason(*reason).to_owned())
            }
            _ => ("-".to_owned(), "-".to_owned()),
        };
        rows.row(vec![
            report.name.clone(),
            state_text(&report.state),
            since,
            reason,
            report.blocked.map_or("-", limit).to_owned(),
            report.queued_records.to_string(),
            table::bytes(report.queued_bytes),
            report.oldest_queued_at.map_or_else(|| "-".to_owned(), table::age),
            report.error_records.to_string(),
            table::bytes(report.error_bytes),
        ]);
    }
    print!("{}", rows.render());
    Ok(())
}

/// `pauselog queued`.
pub fn queued(args: &ListArgs) -> Result<(), CliError> {
    let (map, query) = list_target(args)?;
    let page = api::inspect_map(&args.dir, &map)?.queued(&query)?;
    if args.json {
        let items: Vec<Value> = page.items.iter().map(|r| record_json(r, args.show_payload)).collect();
        return print_json(&json!({ "map": map, "items": items, "total": page.total, "next": page.next }));
    }
    print!("{}", queued_table(&page.items).render());
    print_page_footer(&map, "queued", page.items.len(), page.total, page.next.as_deref(), args.key.as_deref());
    Ok(())
}

/// `pauselog errors`.
pub fn errors(args: &ListArgs) -> Result<(), CliError> {
    let (map, query) = list_target(args)?;
    let page = api::inspect_map(&args.dir, &map)?.catchup_errors(&query)?;
    if args.json {
        let items: Vec<Value> = page.items.iter().map(|e| error_json(e, args.show_payload)).collect();
        return print_json(&json!({ "map": map, "items": items, "total": page.total, "next": page.next }));
    }
    print!("{}", errors_table(&page.items).render());
    print_page_footer(&map, "catch-up errors", page.items.len(), page.total, page.next.as_deref(), args.key.as_deref());
    Ok(())
}

/// `pauselog verify`: exit 1 (via `CliError::Failed`) on any problem.
pub fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    require_dir(&args.dir)?;
    let report = api::verify(&args.dir)?;
    println!("verified {}", args.dir.display());
    let mut rows = Table::new(&[("MAP", Align::Left), ("FRAMES", Align::Right), ("BYTES", Align::Right)]);
    for (name, frames, bytes) in &report.maps {
        rows.row(vec![name.clone(), frames.to_string(), bytes.to_string()]);
    }
    if rows.is_empty() {
        println!("  no table maps");
    } else {
        print!("{}", rows.render());
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
pub fn queued_table(records: &[QueuedRecord]) -> Table {
    let mut rows = Table::new(&[
        ("SEQ", Align::Right),
        ("KEY", Align::Left),
        ("OP", Align::Left),
        ("BYTES", Align::Right),
        ("QUEUED AT", Align::Left),
    ]);
    for record in records {
        rows.row(vec![
            record.seq.to_string(),
            record.key.clone(),
            op(record.op).to_owned(),
            record.payload.len().to_string(),
            table::rfc3339(record.queued_at),
        ]);
    }
    rows
}

/// The table the `errors` listing and the demo print.
pub fn errors_table(entries: &[CatchupError]) -> Table {
    let mut rows = Table::new(&[
        ("SEQ", Align::Right),
        ("KEY", Align::Left),
        ("OP", Align::Left),
        ("REASON", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("LAST FAILED", Align::Left),
        ("LAST ERROR", Align::Left),
    ]);
    for entry in entries {
        rows.row(vec![
            entry.record.seq.to_string(),
            entry.record.key.clone(),
            op(entry.record.op).to_owned(),
            error_reason(entry.reason).to_owned(),
            entry.attempts.to_string(),
            table::rfc3339(entry.last_failed_at),
            entry.last_error.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    rows
}

fn print_page_footer(map: &str, what: &str, shown: usize, total: u64, next: Option<&str>, key: Option<&str>) {
    let scope = key.map_or_else(|| format!("map {map}"), |key| format!("key {key} in map {map}"));
    println!("{shown} shown; {total} {what} in {scope}");
    if let Some(next) = next {
        println!("more: --after {next}");
    }
}

/// The map and query of a listing. Without `--map`, the only map of the
/// directory is meant; with several, the user must choose.
fn list_target(args: &ListArgs) -> Result<(String, Query), CliError> {
    require_dir(&args.dir)?;
    let map = match &args.map {
        Some(map) => map.clone(),
        None => {
            let names = pauselog::list_map_names(&args.dir)?;
            match names.as_slice() {
                [only] => only.clone(),
                [] => return Err(CliError::Usage(format!("no table maps in {}", args.dir.display()))),
                _ => {
                    return Err(CliError::Usage(format!(
                        "{} holds several table maps ({}); choose one with --map",
                        args.dir.display(),
                        names.join(", ")
                    )))
                }
            }
        }
    };
    let mut query = Query::default();
    if let Some(key) = &args.key {
        query = query.key(key.clone());
    }
    if let Some(limit) = args.limit {
        query = query.limit(limit);
    }
    if let Some(after) = &args.after {
        query = query.after(after.clone());
    }
    Ok((map, query))
}

fn require_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "{} is not a directory; pass the engine's data directory with --dir",
            dir.display()
        )))
    }
}

fn no_such_map(dir: &Path, map: &str) -> Result<CliError, CliError> {
    let names = pauselog::list_map_names(dir)?;
    Ok(CliError::Usage(format!("no table map {map} in {}; it holds: {}", dir.display(), names.join(", "))))
}

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Io(format!("cannot format JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn report_json(report: &api::MapReport) -> Value {
    let mut value = json!({
        "name": report.name,
        "state": state_name(&report.state),
        "blocked": report.blocked.map(limit),
        "head": report.head,
        "tail": report.tail,
        "queued_records": report.queued_records,
        "queued_bytes": report.queued_bytes,
        "error_records": report.error_records,
        "error_bytes": report.error_bytes,
        "oldest_queued_at": report.oldest_queued_at.map(table::rfc3339),
        "oldest_queued_age_ms": report.oldest_queued_at.and_then(age_ms),
        "data_segments": report.data_segments,
    });
    match &report.state {
        MapState::Paused { since, reason, .. } => {
            value["paused_since"] = json!(table::rfc3339(*since));
            value["pause_reason"] = json!(pause_reason(*reason));
        }
        MapState::CatchingUp { replayed, remaining } => {
            value["replayed"] = json!(replayed);
            value["remaining"] = json!(remaining);
        }
        MapState::Running => {}
    }
    value
}

fn record_json(record: &QueuedRecord, show_payload: bool) -> Value {
    let mut value = json!({
        "seq": record.seq,
        "key": record.key,
        "op": op(record.op),
        "payload_bytes": record.payload.len(),
        "queued_at": table::rfc3339(record.queued_at),
        "queued_at_unix_ns": unix_ns(record.queued_at),
    });
    if show_payload {
        value["payload"] = json!(String::from_utf8_lossy(&record.payload));
    }
    value
}

fn error_json(entry: &CatchupError, show_payload: bool) -> Value {
    json!({
        "record": record_json(&entry.record, show_payload),
        "reason": error_reason(entry.reason),
        "last_error": entry.last_error,
        "attempts": entry.attempts,
        "first_failed_at": table::rfc3339(entry.first_failed_at),
        "last_failed_at": table::rfc3339(entry.last_failed_at),
    })
}

fn age_ms(time: SystemTime) -> Option<u64> {
    SystemTime::now().duration_since(time).ok().map(|d| d.as_millis() as u64)
}

fn unix_ns(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// `Running`, `Paused`, `CatchingUp`.
pub fn state_name(state: &MapState) -> &'static str {
    match state {
        MapState::Running => "Running",
        MapState::Paused { .. } => "Paused",
        MapState::CatchingUp { .. } => "CatchingUp",
    }
}

/// The state with its figures, for tables.
pub fn state_text(state: &MapState) -> String {
    match state {
        MapState::Running => "Running".to_owned(),
        MapState::Paused { blocked: Some(cap), .. } => format!("Paused+Blocked({})", limit(*cap)),
        MapState::Paused { .. } => "Paused".to_owned(),
        MapState::CatchingUp { replayed, remaining } => format!("CatchingUp ({replayed} replayed, {remaining} left)"),
    }
}

/// A pause reason's name.
pub fn pause_reason(reason: PauseReason) -> &'static str {
    match reason {
        PauseReason::Manual => "Manual",
        PauseReason::Window { .. } => "Window",
        PauseReason::DestinationUnavailable => "DestinationUnavailable",
    }
}

/// A limit's name.
pub fn limit(limit: Limit) -> &'static str {
    match limit {
        Limit::Size => "Size",
        Limit::PauseAge => "PauseAge",
    }
}

/// An operation's name.
pub fn op(op: Op) -> &'static str {
    match op {
        Op::Create => "Create",
        Op::Update => "Update",
        Op::Delete => "Delete",
    }
}

/// An error reason's name.
pub fn error_reason(reason: ErrorReason) -> &'static str {
    match reason {
        ErrorReason::Rejected => "Rejected",
        ErrorReason::Preserved => "Preserved",
        ErrorReason::BlockedByEarlierFailure => "BlockedByEarlierFailure",
        ErrorReason::Superseded => "Superseded",
    }
}
