//! The `pauselog` binary end to end (docs/rules.md §8): the demo runs and checks its
//! invariants, the inspection commands read its directory (also while an
//! engine holds it), and `verify` fails on a damaged sealed segment (R19).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pauselog::{DeliveryError, Destination, Engine, MapConfig, QueuedRecord};

/// Records the demo leaves queued when given `--dir` (`BACKLOG_RECORDS_MAX`).
const BACKLOG_RECORDS: u64 = 1_000;

fn pauselog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pauselog")).args(args).output().expect("the pauselog binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().expect("temporary directories have UTF-8 paths")
}

/// Runs the demo in a fresh directory with small segments, so the backlog it
/// leaves spans several segments and all but the last are sealed.
fn demo_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = temp.path().join("data");
    let output = pauselog(&["demo", "--records", "2000", "--segment-bytes", "65536", "--dir", dir_arg(&dir)]);
    assert!(output.status.success(), "demo failed:\n{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Summary"), "no summary heading:\n{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    assert!(!stdout.contains("[FAIL]"), "{stdout}");
    (temp, dir)
}

struct Accept;
impl Destination for Accept {
    fn deliver(&self, _: &QueuedRecord) -> Result<(), DeliveryError> {
        Ok(())
    }
}

#[test]
fn demo_then_status_queued_and_verify_read_its_directory() {
    let (_temp, dir) = demo_dir();
    let dir = dir_arg(&dir);

    let status = pauselog(&["status", "--dir", dir]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("customers"), "{}", text(&status));

    let status = pauselog(&["status", "--dir", dir, "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json prints JSON");
    let map = &json["maps"][0];
    assert_eq!(map["name"], "customers");
    assert_eq!(map["state"], "Paused");
    assert_eq!(map["pause_reason"], "Manual");
    assert_eq!(map["queued_records"], BACKLOG_RECORDS);
    assert!(map["error_records"].as_u64().is_some_and(|n| n >= 1), "{map}");

    let queued = pauselog(&["queued", "--dir", dir, "--limit", "5"]);
    assert!(queued.status.success(), "{}", text(&queued));
    let stdout = String::from_utf8_lossy(&queued.stdout);
    assert!(stdout.contains("SEQ") && stdout.contains("QUEUED AT"), "{stdout}");
    assert!(stdout.contains(&format!("5 shown; {BACKLOG_RECORDS} queued")), "{stdout}");
    assert!(stdout.contains("--after "), "a next cursor is offered:\n{stdout}");
    let json = pauselog(&["queued", "--dir", dir, "--limit", "2", "--json", "--show-payload"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("queued --json prints JSON");
    assert_eq!(json["items"].as_array().map(Vec::len), Some(2));
    assert!(json["items"][0]["payload"].as_str().is_some_and(|p| p.contains("CustomerAccount")));
    let next = json["next"].as_str().expect("more pages follow");
    let after = pauselog(&["queued", "--dir", dir, "--limit", "2", "--json", "--after", next]);
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).expect("queued --after prints JSON");
    assert!(after["items"][0]["seq"].as_u64() > json["items"][1]["seq"].as_u64(), "R10: the next page continues");
    let bad_cursor = pauselog(&["queued", "--dir", dir, "--after", "not-a-cursor"]);
    assert_eq!(bad_cursor.status.code(), Some(4), "refused, nothing changed: {}", text(&bad_cursor));

    let errors = pauselog(&["errors", "--dir", dir]);
    assert!(errors.status.success(), "{}", text(&errors));
    let stdout = String::from_utf8_lossy(&errors.stdout);
    assert!(stdout.contains("Rejected") && stdout.contains("catch-up errors in map customers"), "{stdout}");

    let verify = pauselog(&["verify", "--dir", dir]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("no problems found"), "{}", text(&verify));

    // The inspection commands take no lock: they work while an engine runs.
    let engine = Engine::open(dir).expect("the demo left the directory closed");
    let _map = engine.table_map("customers", MapConfig::default(), std::sync::Arc::new(Accept)).expect("map opens");
    let status = pauselog(&["status", "--dir", dir]);
    assert!(status.status.success(), "status while an engine runs: {}", text(&status));
    let verify = pauselog(&["verify", "--dir", dir]);
    assert!(verify.status.success(), "verify while an engine runs: {}", text(&verify));
}

/// R19: damage inside a sealed segment is reported with its file, never skipped.
#[test]
fn verify_fails_on_a_corrupt_frame_in_a_sealed_segment() {
    let (_temp, dir) = demo_dir();
    let data = dir.join("maps/customers/data");
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&data)
        .expect("the data log exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 2, "the backlog spans several 64 KiB segments: {segments:?}");

    // The last byte of the first frame of the first (sealed) segment: the
    // segment header is 32 bytes, a frame header 16, then `length` body bytes.
    let sealed = &segments[0];
    let mut bytes = std::fs::read(sealed).expect("segment readable");
    let body_len = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")) as usize;
    let last_byte = 32 + 16 + body_len - 1;
    bytes[last_byte] ^= 0xFF;
    std::fs::write(sealed, &bytes).expect("segment writable");

    let verify = pauselog(&["verify", "--dir", dir_arg(&dir)]);
    assert_eq!(verify.status.code(), Some(1), "verify must fail:\n{}", text(&verify));
    let output = text(&verify);
    assert!(output.contains("corrupt"), "{output}");
    let file_name = sealed.file_name().and_then(|n| n.to_str()).expect("segment name");
    assert!(output.contains(file_name), "the damaged file is named:\n{output}");
}

#[test]
fn bad_usage_exits_2_and_says_what_to_do() {
    let missing = pauselog(&["status", "--dir", "/nonexistent/pauselog-data"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("--dir"), "{}", text(&missing));

    let payload_without_json = pauselog(&["queued", "--dir", "/tmp", "--show-payload"]);
    assert_eq!(payload_without_json.status.code(), Some(2), "{}", text(&payload_without_json));
}

/// R19: one flipped byte in the first frame of the *active* segment. Within
/// the torn-write window the wal's read-only recovery cannot tell it from a
/// torn tail, but `verify` cross-checks the meta log: records the replay
/// already passed are missing from the data log, so it reports damage.
/// Found by the CLI tests (it used to exit 0 and show an empty queue).
#[test]
fn verify_reports_damage_early_in_the_active_segment() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = temp.path().join("data");
    let output = pauselog(&["demo", "--records", "2000", "--dir", dir_arg(&dir)]);
    assert!(output.status.success(), "demo failed:\n{}", text(&output));
    let data = dir.join("maps/customers/data");
    let mut segments: Vec<_> = std::fs::read_dir(&data)
        .expect("the data log")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .collect();
    segments.sort();
    let active = segments.last().expect("an active segment").clone();
    let mut bytes = std::fs::read(&active).expect("the active segment");
    let body_len = u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")) as usize;
    bytes[32 + 16 + body_len - 1] ^= 0xFF;
    std::fs::write(&active, &bytes).expect("segment writable");

    let verify = pauselog(&["verify", "--dir", dir_arg(&dir)]);
    assert_eq!(verify.status.code(), Some(1), "verify must report the damage:\n{}", text(&verify));
    assert!(text(&verify).contains("missing"), "{}", text(&verify));
}
