//! The peers bench's output: a table of medians (with the range over runs),
//! `RATIO` lines of pauselog against the best peer, and a JSON file that a
//! later run can be compared with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pauselog_benches::{quick, report_ratio};
use serde_json::{json, Value};

use crate::workload::Scale;

/// The metrics of one engine in one run.
#[derive(Debug)]
pub struct Sample {
    /// Engine name (`subjects::ENGINES`).
    pub engine: String,
    /// Run number, from 0.
    pub run: usize,
    /// Metric name to value.
    pub metrics: BTreeMap<String, f64>,
}

/// One row of the table.
struct Row {
    metric: &'static str,
    label: &'static str,
    unit: &'static str,
    higher_is_better: bool,
}

const ROWS: [Row; 12] = [
    Row { metric: "bulk_mb_s", label: "bulk append, one sync at the end", unit: "MB/s", higher_is_better: true },
    Row { metric: "durable1_acks_s", label: "durable append, 1 writer", unit: "acks/s", higher_is_better: true },
    Row { metric: "durable8_acks_s", label: "durable append, 8 writers", unit: "acks/s", higher_is_better: true },
    Row { metric: "replay_mb_s", label: "replay of every record, cold", unit: "MB/s", higher_is_better: true },
    Row {
        metric: "drain_mb_s",
        label: "catch-up drain into a destination, cold",
        unit: "MB/s",
        higher_is_better: true,
    },
    Row { metric: "page_p99_us", label: "page of 50 for one key, p99", unit: "µs", higher_is_better: false },
    Row { metric: "reopen_ms", label: "reopen, cold", unit: "ms", higher_is_better: false },
    Row { metric: "lost_on_sigkill", label: "records lost on SIGKILL", unit: "records", higher_is_better: false },
    Row {
        metric: "lost_on_sigkill_interval",
        label: "records lost on SIGKILL, pauselog under SyncPolicy::Interval",
        unit: "records",
        higher_is_better: false,
    },
    Row { metric: "peak_anon_mib", label: "peak anonymous memory (heap)", unit: "MiB", higher_is_better: false },
    Row { metric: "peak_rss_mib", label: "peak RSS, mapped log pages included", unit: "MiB", higher_is_better: false },
    Row { metric: "disk_per_raw", label: "disk used ÷ raw bytes", unit: "×", higher_is_better: false },
];

const OURS: &str = "pauselog";
/// The raw loop is the physical limit, not a peer a user would pick.
const PHYSICAL: &str = "raw-file";

/// The values of `metric` for `engine` over all runs, sorted.
fn values(samples: &[Sample], engine: &str, metric: &str) -> Vec<f64> {
    let mut values: Vec<f64> =
        samples.iter().filter(|s| s.engine == engine).filter_map(|s| s.metrics.get(metric).copied()).collect();
    values.sort_by(f64::total_cmp);
    values
}

fn median(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values[values.len() / 2])
}

/// A figure with as many digits as it needs.
fn figure(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1000.0 {
        let digits = format!("{value:.0}");
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
                grouped.push(',');
            }
            grouped.push(c);
        }
        grouped
    } else if abs >= 100.0 {
        format!("{value:.0}")
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else if abs >= 0.1 || value == 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn cell(values: &[f64]) -> String {
    match (median(values), values.first(), values.last()) {
        (Some(m), Some(lo), Some(hi)) if values.len() > 1 && lo != hi => {
            format!("{} ({}–{})", figure(m), figure(*lo), figure(*hi))
        }
        (Some(m), ..) => figure(m),
        _ => "–".to_owned(),
    }
}

/// How many times pauselog is ahead of `peer` (> 1: ahead, < 1: behind).
fn advantage(row: &Row, ours: f64, peer: f64) -> f64 {
    if row.higher_is_better {
        ours / peer
    } else {
        peer / ours
    }
}

/// Prints the table and the RATIO lines, and writes the JSON file.
pub fn print_and_save(samples: &[Sample], scale: &Scale, runs: usize, engines: &[String]) {
    let mut medians: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    println!();
    println!("| workload | {} | pauselog vs best peer |", engines.join(" | "));
    println!("|---|{}---|", "---|".repeat(engines.len()));
    for row in &ROWS {
        let cells: Vec<String> = engines.iter().map(|e| cell(&values(samples, e, row.metric))).collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        for engine in engines {
            if let Some(m) = median(&values(samples, engine, row.metric)) {
                medians.entry(row.metric).or_default().insert(engine, m);
            }
        }
        let ours = medians.get(row.metric).and_then(|m| m.get(OURS)).copied();
        let best = medians.get(row.metric).and_then(|m| {
            m.iter()
                .filter(|(e, _)| **e != OURS && **e != PHYSICAL)
                .max_by(|a, b| advantage(row, 1.0, *b.1).total_cmp(&advantage(row, 1.0, *a.1)))
                .map(|(e, v)| (*e, *v))
        });
        let verdict = match (ours, best) {
            (Some(ours), Some((peer, theirs))) if ours == theirs => format!("tie with {peer}"),
            (Some(ours), Some((peer, theirs))) if ours == 0.0 || theirs == 0.0 => {
                format!("{} against {peer}'s {}", figure(ours), figure(theirs))
            }
            (Some(ours), Some((peer, theirs))) => {
                let name = format!("peers {} ({}, {}) vs {peer}", row.metric, row.unit, direction(row));
                report_ratio(&name, ours, theirs, row.unit);
                let times = advantage(row, ours, theirs);
                if times >= 1.0 {
                    format!("{}× ahead of {peer}", figure(times))
                } else {
                    format!("{peer} {}× ahead", figure(1.0 / times))
                }
            }
            _ => "–".to_owned(),
        };
        if let (Some(ours), Some(physical)) = (ours, medians.get(row.metric).and_then(|m| m.get(PHYSICAL))) {
            let name = format!("peers {} ({}, {}) vs the raw file loop", row.metric, row.unit, direction(row));
            report_ratio(&name, ours, *physical, row.unit);
        }
        println!("| {} ({}) | {} | {verdict} |", row.label, row.unit, cells.join(" | "));
    }
    println!();
    let path = output_path();
    let document = json!({
        "bench": "peers",
        "scale": if quick() { "quick" } else { "full" },
        "runs": runs,
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "sizes": {
            "bulk_records": scale.bulk_records,
            "key_count": scale.key_count,
            "durable_one_records": scale.durable_one_records,
            "durable_eight_records": scale.durable_eight_records,
            "kill_records": scale.kill_records,
            "page_queries": scale.page_queries,
        },
        "medians": medians,
        "samples": samples.iter().map(|s| json!({"engine": s.engine, "run": s.run, "metrics": s.metrics})).collect::<Vec<_>>(),
    });
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    match std::fs::write(&path, serde_json::to_string_pretty(&document).expect("JSON")) {
        Ok(()) => println!("peers results written to {}", path.display()),
        Err(error) => println!("peers results not written to {}: {error}", path.display()),
    }
    compare_with_baseline(&medians);
}

fn direction(row: &Row) -> &'static str {
    if row.higher_is_better {
        "higher is better"
    } else {
        "lower is better"
    }
}

/// `PAUSELOG_BENCH_JSON`, or `bench-results.json` in the target directory
/// (`bench-results-quick.json` for a quick run, so that a smoke run never
/// replaces a full run's figures).
fn output_path() -> PathBuf {
    if let Ok(path) = std::env::var("PAUSELOG_BENCH_JSON") {
        return PathBuf::from(path);
    }
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").to_owned();
    target.join(if quick() { "bench-results-quick.json" } else { "bench-results.json" })
}

/// Prints how pauselog's medians moved against the file named by
/// `PAUSELOG_BENCH_BASELINE`, when it is set.
fn compare_with_baseline(medians: &BTreeMap<&str, BTreeMap<&str, f64>>) {
    let Ok(path) = std::env::var("PAUSELOG_BENCH_BASELINE") else { return };
    let baseline: Value = match std::fs::read_to_string(&path).map(|text| serde_json::from_str(&text)) {
        Ok(Ok(value)) => value,
        _ => {
            println!("baseline {path} could not be read as JSON");
            return;
        }
    };
    println!("pauselog against the baseline {path}:");
    for row in &ROWS {
        let now = medians.get(row.metric).and_then(|m| m.get(OURS));
        let then = baseline["medians"][row.metric][OURS].as_f64();
        if let (Some(now), Some(then)) = (now, then) {
            let change = advantage(row, *now, then);
            println!("  {}: {} → {} {} ({}× as good)", row.label, figure(then), figure(*now), row.unit, figure(change));
        }
    }
}
