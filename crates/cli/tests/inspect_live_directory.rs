//! docs/rules.md §8, R19: the inspection commands read a directory while an engine
//! writes and drains it, without a failure and without a false alarm.
//!
//! A child process (this test binary, re-executed) runs an engine on small
//! segments: pause, queue from two writers, catch up (segments are sealed,
//! drained and deleted all the time) while a third writer submits new keys
//! (delivered live past the backlog: seq markers in the data log), then
//! submit live while Running (seqs the data log later skips, by markers or
//! a rotation), with a key the destination rejects so that catch-up errors
//! come and go. Meanwhile the parent runs `status`,
//! `queued` (a page, and a key filter), `errors` and `verify` in a loop and
//! asserts that every run succeeds and that `verify` finds no problem.
//!
//! CI runs 30 rounds; `PAUSELOG_INSPECT_ROUNDS=2000` runs a long mode.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pauselog::{
    DeliveryError, Destination, Engine, MapConfig, MapState, Op, QueuedRecord, Record, ResumeMode, Selection,
    SyncPolicy,
};

const CHILD_DIR_ENV: &str = "PAUSELOG_INSPECT_LIVE_CHILD_DIR";
const ROUNDS_ENV: &str = "PAUSELOG_INSPECT_ROUNDS";
const MAP: &str = "live";
/// Small segments: a rotation every few dozen records.
const SEGMENT_BYTES: u64 = 16 * 1024;
const PAYLOAD_BYTES: usize = 300;
/// Records each of the two writers queues per pause.
const RECORDS_PER_PAUSE: u64 = 400;
/// The key the destination rejects (its records become catch-up errors).
const REJECTED_KEY: &str = "K-REJECTED";

fn rounds() -> usize {
    std::env::var(ROUNDS_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(30)
}

/// Rejects one key, accepts the others.
struct RejectOneKey;

impl Destination for RejectOneKey {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        if record.key == REJECTED_KEY {
            return Err(DeliveryError::Rejected("rejected by the test".into()));
        }
        Ok(())
    }
}

fn record(writer: u64, n: u64) -> Record {
    let key = if n.is_multiple_of(97) { REJECTED_KEY.to_owned() } else { format!("K-{writer}-{}", n % 50) };
    Record::new(key, Op::Update, vec![b'a' + (n % 26) as u8; PAYLOAD_BYTES])
}

/// The child: pauses, queues, catches up, and every few rounds discards the
/// catch-up errors, until it is killed. Returns at once in a normal test run.
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let engine = Engine::builder(&dir)
        .sync(SyncPolicy::Always)
        .segment_bytes_max(SEGMENT_BYTES)
        .open()
        .expect("child engine opens");
    let config = MapConfig { live_pass_through: true, ..MapConfig::default() };
    let map = engine.table_map(MAP, config, Arc::new(RejectOneKey)).expect("map opens");
    println!("READY");
    for round in 0u64.. {
        map.pause().expect("pause");
        std::thread::scope(|scope| {
            for writer in 0..2 {
                let map = map.clone();
                scope.spawn(move || {
                    for n in 0..RECORDS_PER_PAUSE {
                        map.submit(record(writer, round * RECORDS_PER_PAUSE + n)).expect("submit");
                    }
                });
            }
        });
        map.resume(ResumeMode::CatchUp).expect("resume");
        // New keys during the catch-up: delivered live past the backlog.
        for n in 0..50 {
            let key = format!("NEW-{round}-{n}");
            map.submit(Record::new(key, Op::Create, vec![b'n'; PAYLOAD_BYTES])).expect("submit during catch-up");
        }
        map.wait_for(|state| matches!(state, MapState::Running), Duration::from_secs(60)).expect("catch-up ends");
        // Live seqs the data log skips at the next append: a short gap
        // (markers) or a long one (a rotation).
        let live = if round % 2 == 0 { 40 } else { 400 };
        for n in 0..live {
            let key = format!("LIVE-{}", n % 50);
            map.submit(Record::new(key, Op::Update, vec![b'l'; PAYLOAD_BYTES])).expect("live submit");
        }
        if round % 4 == 3 {
            map.discard_errors(Selection::All).expect("discard errors");
        }
    }
}

fn pauselog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pauselog")).args(args).output().expect("the pauselog binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Kills the child when dropped, so a failing assertion leaves no engine running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child(dir: &Path) -> KillOnDrop {
    use std::io::BufRead;
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("READY") => break,
            Some(Ok(_)) => {}
            other => panic!("the child stopped before it was ready: {other:?}"),
        }
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    KillOnDrop(child)
}

#[test]
fn status_queued_errors_and_verify_never_fail_on_a_directory_an_engine_is_changing() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = temp.path().join("data");
    let mut child = start_child(&dir);
    let dir = dir.to_str().expect("temporary directories have UTF-8 paths");
    let commands: [&[&str]; 5] = [
        &["status", "--dir", dir, "--json"],
        &["queued", "--dir", dir, "--limit", "20", "--json"],
        &["queued", "--dir", dir, "--key", REJECTED_KEY, "--json"],
        &["errors", "--dir", dir, "--limit", "20", "--json"],
        &["verify", "--dir", dir],
    ];
    let mut failures = Vec::new();
    let mut runs = 0;
    for round in 0..rounds() {
        for args in commands {
            let output = pauselog(args);
            runs += 1;
            let verify_clean =
                args[0] != "verify" || String::from_utf8_lossy(&output.stdout).contains("no problems found");
            if !output.status.success() || !verify_clean {
                failures.push(format!("round {round}, `pauselog {}`: {:?}\n{}", args[0], output.status, text(&output)));
            }
        }
        assert!(child.0.try_wait().expect("child status").is_none(), "the engine child died");
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed or raised an alarm:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
