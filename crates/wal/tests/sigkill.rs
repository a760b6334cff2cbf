//! docs/rules.md R17: under `SyncPolicy::Always` and under `SyncPolicy::Interval`
//! every acknowledged record survives a crash of the process. A child
//! process (this test binary, re-executed) appends from several threads and
//! prints each acknowledged seq; the parent kills it with SIGKILL mid-append,
//! several times over the same directory, and checks the log after each kill.
//!
//! Under `Interval` the interval is an hour, so no fsync runs in the child:
//! what survives is what `append` wrote to the OS before it returned.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{body, read_all};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

const CHILD_DIR_ENV: &str = "PAUSELOG_WAL_SIGKILL_CHILD_DIR";
const CHILD_RUN_ENV: &str = "PAUSELOG_WAL_SIGKILL_CHILD_RUN";
const CHILD_POLICY_ENV: &str = "PAUSELOG_WAL_SIGKILL_CHILD_POLICY";
const KILL_COUNT: u64 = 5;
const THREAD_COUNT: u64 = 4;

fn options(policy: &str) -> WalOptions {
    // Under Interval, segments larger than the 1 MiB write buffer: a
    // rotation writes the buffer out, and small segments would hide a
    // commit that does not.
    let (sync, segment_bytes) = match policy {
        "always" => (SyncPolicy::Always, 64 * 1024),
        "interval" => (SyncPolicy::Interval(Duration::from_secs(3600)), 4 * 1024 * 1024),
        other => panic!("unknown policy {other}"),
    };
    WalOptions::default().sync(sync).segment_bytes_max(segment_bytes)
}

/// Acks before the kill: a few write buffers' worth under `Interval`
/// (the buffer holds 1 MiB, these records average about 250 bytes).
fn acks_before_kill(policy: &str) -> usize {
    if policy == "interval" {
        20_000
    } else {
        300
    }
}

fn tag(run: u64, thread: u64, index: u64) -> u64 {
    (run << 40) | (thread << 32) | index
}

fn len_of(index: u64) -> usize {
    32 + (index as usize * 29) % 400
}

/// The child: appends from [`THREAD_COUNT`] threads until killed, printing
/// `ACK seq run thread index` after each acknowledgement. Does nothing when
/// run as an ordinary test.
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let run: u64 = std::env::var(CHILD_RUN_ENV).expect("run number").parse().expect("number");
    let policy = std::env::var(CHILD_POLICY_ENV).expect("policy");
    let wal = Wal::open(Path::new(&dir), options(&policy)).expect("child opens the log");
    std::thread::scope(|scope| {
        for thread in 0..THREAD_COUNT {
            let wal = &wal;
            scope.spawn(move || {
                for index in 0.. {
                    let seq = wal.append(&body(tag(run, thread, index), len_of(index))).expect("child append");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {seq} {run} {thread} {index}").expect("print ack");
                    out.flush().expect("flush ack");
                }
            });
        }
    });
}

/// Parses an `ACK` line into the acknowledged record; `None` for any other
/// line, or one cut short by the kill.
fn parse_ack(line: &str, run: u64) -> Option<(u64, Vec<u8>)> {
    let fields: Vec<u64> = line.strip_prefix("ACK ")?.split(' ').map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let [seq, line_run, thread, index] = fields[..] else { return None };
    assert_eq!(line_run, run);
    Some((seq, body(tag(run, thread, index), len_of(index))))
}

fn acknowledged_records_survive_sigkill(policy: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    for run in 0..KILL_COUNT {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_RUN_ENV, run.to_string())
            .env(CHILD_POLICY_ENV, policy)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
        let mut run_acks = 0;
        while run_acks < acks_before_kill(policy) {
            let line = lines.next().expect("child exited early").expect("read child output");
            if let Some(ack) = parse_ack(&line, run) {
                acknowledged.push(ack);
                run_acks += 1;
            }
        }
        child.kill().expect("SIGKILL the child"); // Child::kill sends SIGKILL on Unix.
                                                  // Acks already printed before the kill are acknowledged too; a line
                                                  // cut by the kill has no newline and may be partial: it is skipped.
        for line in lines {
            let Ok(line) = line else { break };
            acknowledged.extend(parse_ack(&line, run));
        }
        let status = child.wait().expect("reap child");
        assert!(!status.success(), "the child was killed, not finished");

        let wal = Wal::open(dir.path(), options(policy)).expect("reopen after SIGKILL");
        let recovered = read_all(&wal);
        // Consistent: gap-free seqs from 1 (nothing was released), accounting exact.
        let seqs: Vec<u64> = recovered.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=recovered.len() as u64).collect::<Vec<_>>(), "gap-free after kill {run}");
        assert_eq!(wal.stats().next_seq, recovered.len() as u64 + 1);
        let bytes: u64 = recovered.iter().map(|r| pauselog_wal::frame_bytes(r.1.len())).sum();
        assert_eq!(wal.live_bytes(), bytes);
        // Every acknowledged record is there with its body.
        let lost = acknowledged.iter().filter(|(seq, _)| recovered.get(*seq as usize - 1).is_none()).count();
        assert_eq!(lost, 0, "{policy}: {lost} of {} acknowledged records lost after kill {run}", acknowledged.len());
        for (seq, expected) in &acknowledged {
            let found = recovered.get(*seq as usize - 1).map(|r| &r.1);
            assert!(found == Some(expected), "{policy}: acknowledged seq {seq} changed after kill {run}");
        }
        wal.close().expect("close");
    }
    assert!(acknowledged.len() >= KILL_COUNT as usize * acks_before_kill(policy));
}

#[test]
fn always_acknowledged_records_survive_sigkill() {
    acknowledged_records_survive_sigkill("always");
}

#[test]
fn interval_acknowledged_records_survive_sigkill() {
    acknowledged_records_survive_sigkill("interval");
}
