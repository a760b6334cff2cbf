//! Peers bench: pauselog beside the engines a user would pick instead, on
//! the same workloads in the same run (issue 16; BENCHMARKS.md shows the
//! latest full run).
//!
//! Records of a 16-byte integration key and a 1,000-byte payload over 10,000
//! keys. For each engine: a bulk append of 1,000,000 records with one sync
//! at the end (MB/s of key + payload bytes, then the disk it uses against
//! those bytes); a reopen of that data, a replay of every record and pages
//! of 50 records of one key (p99) in a fresh process, with the engine's
//! files evicted from the page cache first; durable appends from 1 and 8
//! writers (acks/s); 500,000 appends without a sync, then SIGKILL, then a
//! reopen that counts what survived; and the peak RSS of every process.
//!
//! Every engine and workload runs in its own child process: this binary
//! re-executes itself with `PAUSELOG_PEERS_CHILD=engine|workload|dir`.
//! The parent prints a table of medians (with the range over runs), `RATIO`
//! lines of pauselog against the best peer, and writes JSON for a later
//! change to compare against (`PAUSELOG_BENCH_BASELINE=file` prints the
//! change of pauselog's figures against an earlier file).
//!
//! Environment: `PAUSELOG_BENCH_SCALE=quick` (a hundredth of every size,
//! one run), `PAUSELOG_PEERS_RUNS` (default 3 at full scale),
//! `PAUSELOG_PEERS_ENGINES=pauselog,sled,...`, `PAUSELOG_PEERS_WORKLOADS=
//! fill,durable,kill` (a subset), `PAUSELOG_BENCH_JSON` (output path;
//! default `target/bench-results.json`, `-quick.json` for quick runs).
//! Command-line arguments (criterion's, from `cargo bench -- ...`) are
//! ignored.

mod report;
mod subjects;
mod workload;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pauselog_benches::quick;
use rand::{rngs::SmallRng, SeedableRng};

use report::Sample;
use subjects::{Durability, ENGINES};
use workload::{Records, Scale, RECORD_BYTES};

const CHILD_ENV: &str = "PAUSELOG_PEERS_CHILD";
const RESULT_PREFIX: &str = "PEERS-RESULT ";
const READY_LINE: &str = "PEERS-READY";
const PAGE_LIMIT: usize = 50;
const WORKLOADS: [&str; 3] = ["fill", "durable", "kill"];

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let scale = Scale::from_env();
    let engines = selected("PAUSELOG_PEERS_ENGINES", &ENGINES);
    let workloads = selected("PAUSELOG_PEERS_WORKLOADS", &WORKLOADS);
    let runs: usize = std::env::var("PAUSELOG_PEERS_RUNS")
        .ok()
        .map(|v| v.parse().expect("PAUSELOG_PEERS_RUNS is a number"))
        .unwrap_or(if quick() { 1 } else { 3 });
    let root = tempfile::Builder::new().prefix("peers").tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
    println!("peers bench: {scale:?}, {runs} run(s), engines {engines:?}, workloads {workloads:?}");
    let started = Instant::now();
    let mut samples = Vec::new();
    for run in 0..runs {
        // Each run starts with a different engine, so that a noisy minute
        // of this shared machine does not always fall on the same one.
        for offset in 0..engines.len() {
            let engine = &engines[(offset + run) % engines.len()];
            let dir = root.path().join(format!("{engine}-{run}"));
            let metrics = run_engine(engine, &dir, &scale, &workloads);
            std::fs::remove_dir_all(&dir).ok();
            println!("run {run} {engine}: {metrics:?}");
            samples.push(Sample { engine: engine.clone(), run, metrics });
        }
    }
    println!("peers bench took {:.0} s", started.elapsed().as_secs_f64());
    report::print_and_save(&samples, &scale, runs, &engines);
}

fn selected(var: &str, all: &[&str]) -> Vec<String> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|name| {
                assert!(all.contains(&name), "{var}: unknown name {name}; expected some of {all:?}");
                name.to_owned()
            })
            .collect(),
        Err(_) => all.iter().map(|name| (*name).to_owned()).collect(),
    }
}

/// Every workload of one engine, each in its own child process; returns
/// the metrics by name.
fn run_engine(engine: &str, dir: &Path, scale: &Scale, workloads: &[String]) -> BTreeMap<String, f64> {
    let mut metrics = BTreeMap::new();
    let (mut peak_rss_mib, mut peak_anon_mib) = (0f64, 0f64);
    let mut absorb = |metrics: &mut BTreeMap<String, f64>, child: BTreeMap<String, f64>| {
        for (name, value) in child {
            if name == "rss_mib" {
                peak_rss_mib = peak_rss_mib.max(value);
            } else if name == "anon_mib" {
                peak_anon_mib = peak_anon_mib.max(value);
            } else {
                metrics.insert(name, value);
            }
        }
    };
    if workloads.iter().any(|w| w == "fill") {
        let data = dir.join("fill");
        absorb(&mut metrics, run_child(engine, "bulk", &data));
        metrics.insert("disk_per_raw".into(), disk_bytes(&data) as f64 / (scale.bulk_records * RECORD_BYTES) as f64);
        absorb(&mut metrics, run_child(engine, "read", &data));
    }
    if workloads.iter().any(|w| w == "durable") {
        absorb(&mut metrics, run_child(engine, "durable1", &dir.join("durable1")));
        absorb(&mut metrics, run_child(engine, "durable8", &dir.join("durable8")));
    }
    if workloads.iter().any(|w| w == "kill") {
        let mut cases = vec![("kill-append", "lost_on_sigkill")];
        if engine == "pauselog" {
            cases.push(("kill-append-interval", "lost_on_sigkill_interval"));
        }
        for (workload, metric) in cases {
            let data = dir.join(workload);
            kill_after_appends(engine, workload, &data);
            let survived = run_child(engine, "kill-count", &data);
            let count = survived.get("records").copied().expect("kill-count reports records");
            metrics.insert(metric.into(), scale.kill_records as f64 - count);
            absorb(&mut metrics, survived);
            metrics.remove("records");
        }
    }
    metrics.insert("peak_rss_mib".into(), peak_rss_mib);
    metrics.insert("peak_anon_mib".into(), peak_anon_mib);
    metrics
}

fn child_command(engine: &str, workload: &str, dir: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("own executable"));
    command.env(CHILD_ENV, format!("{engine}|{workload}|{}", dir.display())).stdout(Stdio::piped());
    command
}

/// Runs one workload in a child and returns the metrics it printed.
fn run_child(engine: &str, workload: &str, dir: &Path) -> BTreeMap<String, f64> {
    let output = child_command(engine, workload, dir).output().expect("start child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{engine} {workload} failed ({}): {stdout}", output.status);
    let line = stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX)).expect("child printed its result");
    serde_json::from_str(line).expect("child result is JSON")
}

/// Starts a child that appends without a sync, waits until it says the
/// appends returned, and kills it with SIGKILL.
fn kill_after_appends(engine: &str, workload: &str, dir: &Path) {
    let mut child = child_command(engine, workload, dir).spawn().expect("start child");
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == READY_LINE);
    assert!(ready, "{engine} kill-append ended before its appends returned");
    // `Child::kill` sends SIGKILL on Unix.
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
}

/// Bytes allocated on disk under `dir` (what `du` counts).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    walk_files(dir).iter().map(|path| std::fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)).sum()
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(kind) if kind.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files
}

/// Drops the clean cached pages of every file under `dir`, so that the
/// next read comes from the disk (a cold read) without touching the other
/// files of this shared machine.
fn evict_from_page_cache(dir: &Path) {
    use std::os::fd::AsRawFd;
    for path in walk_files(dir) {
        if let Ok(file) = std::fs::File::open(&path) {
            // SAFETY: `posix_fadvise` only reads its integer arguments; the
            // descriptor belongs to `file`, which stays open across the call.
            let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

/// The child side: runs one workload and prints its metrics as one JSON line.
fn child(spec: &str) {
    let mut parts = spec.splitn(3, '|');
    let (engine, workload, dir) = match (parts.next(), parts.next(), parts.next()) {
        (Some(e), Some(w), Some(d)) => (e, w, Path::new(d)),
        _ => panic!("{CHILD_ENV} is engine|workload|dir, got {spec}"),
    };
    let scale = Scale::from_env();
    let records = Records::new(scale.key_count);
    let mut metrics = BTreeMap::new();
    let anon_peak_kib = Arc::new(AtomicU64::new(0));
    sample_anon_memory(anon_peak_kib.clone());
    match workload {
        "bulk" => {
            let subject = subjects::open(engine, dir, Durability::AtEnd);
            let start = Instant::now();
            subject.append(&records, 0, scale.bulk_records);
            subject.sync();
            metrics.insert("bulk_mb_s", mb_per_s(scale.bulk_records, start.elapsed()));
        }
        "read" => {
            evict_from_page_cache(dir);
            let start = Instant::now();
            let subject = subjects::open(engine, dir, Durability::AtEnd);
            metrics.insert("reopen_ms", start.elapsed().as_secs_f64() * 1e3);
            evict_from_page_cache(dir);
            let start = Instant::now();
            let replayed = subject.replay();
            metrics.insert("replay_mb_s", mb_per_s(replayed, start.elapsed()));
            assert_eq!(replayed, scale.bulk_records, "{engine} replayed every record");
            if let Some(p99) = page_p99_us(subject.as_ref(), &records, scale.page_queries) {
                metrics.insert("page_p99_us", p99);
            }
            evict_from_page_cache(dir);
            let start = Instant::now();
            if let Some(drained) = subject.drain() {
                metrics.insert("drain_mb_s", mb_per_s(drained, start.elapsed()));
                assert_eq!(drained, scale.bulk_records, "{engine} drained every record");
            }
        }
        "durable1" | "durable8" => {
            let threads = if workload == "durable1" { 1 } else { 8 };
            let count = if threads == 1 { scale.durable_one_records } else { scale.durable_eight_records };
            let subject = subjects::open(engine, dir, Durability::EachAppend);
            let acks_per_s = durable_appends(subject.as_ref(), &records, threads, count, scale.durable_time_max);
            metrics.insert(if threads == 1 { "durable1_acks_s" } else { "durable8_acks_s" }, acks_per_s);
        }
        "kill-append" | "kill-append-interval" => {
            let durability = if workload == "kill-append" { Durability::AtEnd } else { Durability::Interval };
            let subject = subjects::open(engine, dir, durability);
            subject.append(&records, 0, scale.kill_records);
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{READY_LINE}").and_then(|()| stdout.flush()).expect("tell the parent");
            // Wait for the SIGKILL; the subject is never dropped.
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        "kill-count" => {
            let subject = subjects::open(engine, dir, Durability::AtEnd);
            metrics.insert("records", subject.count() as f64);
        }
        other => panic!("unknown workload {other}"),
    }
    metrics.insert("rss_mib", status_kib("VmHWM:") / 1024.0);
    let anon_kib = (anon_peak_kib.load(Ordering::Relaxed) as f64).max(status_kib("RssAnon:"));
    metrics.insert("anon_mib", anon_kib / 1024.0);
    let json = serde_json::to_string(&metrics).expect("metrics to JSON");
    println!("{RESULT_PREFIX}{json}");
}

/// Durable appends from `threads` threads at once, each returning once
/// its record is durable, until `count` records or `time_max` (an engine
/// with a slow fsync would otherwise take minutes); returns acks per second.
fn durable_appends(
    subject: &dyn subjects::Subject,
    records: &Records,
    threads: u64,
    count: u64,
    time_max: Duration,
) -> f64 {
    let next = AtomicU64::new(0);
    let acks = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || start.elapsed() >= time_max {
                    break;
                }
                subject.append(records, i, 1);
                acks.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    acks.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn mb_per_s(records: u64, elapsed: Duration) -> f64 {
    (records * RECORD_BYTES) as f64 / 1e6 / elapsed.as_secs_f64()
}

/// p99 of a page of [`PAGE_LIMIT`] records of a random key, in µs.
fn page_p99_us(subject: &dyn subjects::Subject, records: &Records, queries: usize) -> Option<f64> {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut times = Vec::with_capacity(queries);
    for _ in 0..queries {
        let key = records.random_key(&mut rng);
        let start = Instant::now();
        let found = subject.page(key, PAGE_LIMIT)?;
        times.push(start.elapsed());
        assert_eq!(found, PAGE_LIMIT, "a key holds more than a page of records");
    }
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    Some(p99.as_secs_f64() * 1e6)
}

/// A field of `/proc/self/status` in KiB: `VmHWM:` is the peak resident
/// set, which counts the pages of mapped files a process reads (the page
/// cache, for an engine that reads its log through memmap2); `RssAnon:` is
/// the anonymous memory resident now (heap, stacks).
fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Samples `RssAnon` every few milliseconds on a thread of its own and
/// keeps the largest value in `peak_kib`: the kernel keeps no peak of
/// anonymous memory alone.
fn sample_anon_memory(peak_kib: Arc<AtomicU64>) {
    std::thread::spawn(move || loop {
        peak_kib.fetch_max(status_kib("RssAnon:") as u64, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
    });
}
