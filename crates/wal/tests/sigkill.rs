//! SPEC R17: under `SyncPolicy::Always` every acknowledged record survives a
//! process crash. A child process (this test binary, re-executed) appends and
//! prints each acknowledged seq; the parent kills it with SIGKILL mid-append,
//! several times over the same directory, and checks the log after each kill.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{body, read_all};
use pauselog_wal::{SyncPolicy, Wal, WalOptions};

const CHILD_DIR_ENV: &str = "PAUSELOG_WAL_SIGKILL_CHILD_DIR";
const CHILD_RUN_ENV: &str = "PAUSELOG_WAL_SIGKILL_CHILD_RUN";
const KILL_COUNT: u64 = 5;
const ACKS_BEFORE_KILL: usize = 300;

fn options() -> WalOptions {
    WalOptions::default().sync(SyncPolicy::Always).segment_bytes_max(64 * 1024)
}

fn tag(run: u64, index: u64) -> u64 {
    run * 1_000_000 + index
}

fn len_of(index: u64) -> usize {
    32 + (index as usize * 29) % 400
}

/// The child: appends until killed, printing `ACK seq run index` after each
/// acknowledgement. Does nothing when run as an ordinary test.
#[test]
fn child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let run: u64 = std::env::var(CHILD_RUN_ENV).expect("run number").parse().expect("number");
    let wal = Wal::open(Path::new(&dir), options()).expect("child opens the log");
    let stdout = std::io::stdout();
    for index in 0.. {
        let seq = wal.append(&body(tag(run, index), len_of(index))).expect("child append");
        let mut out = stdout.lock();
        writeln!(out, "ACK {seq} {run} {index}").expect("print ack");
        out.flush().expect("flush ack");
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    for run in 0..KILL_COUNT {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_RUN_ENV, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();
        let mut run_acks = 0;
        let parse = |line: &str, acknowledged: &mut Vec<(u64, Vec<u8>)>| {
            let Some(rest) = line.strip_prefix("ACK ") else { return false };
            let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().expect("number")).collect();
            let [seq, line_run, index] = fields[..] else { panic!("bad ack line {line}") };
            assert_eq!(line_run, run);
            acknowledged.push((seq, body(tag(run, index), len_of(index))));
            true
        };
        while run_acks < ACKS_BEFORE_KILL {
            let line = lines.next().expect("child exited early").expect("read child output");
            run_acks += usize::from(parse(&line, &mut acknowledged));
        }
        child.kill().expect("SIGKILL the child"); // Child::kill sends SIGKILL on Unix.
                                                  // Acks already printed before the kill are acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            // A line cut by the kill has no newline and may be partial: skip it.
            if line.split(' ').count() == 4 {
                parse(&line, &mut acknowledged);
            }
        }
        let status = child.wait().expect("reap child");
        assert!(!status.success(), "the child was killed, not finished");

        let wal = Wal::open(dir.path(), options()).expect("reopen after SIGKILL");
        let recovered = read_all(&wal);
        // Consistent: gap-free seqs from 1 (nothing was released), accounting exact.
        let seqs: Vec<u64> = recovered.iter().map(|r| r.0).collect();
        assert_eq!(seqs, (1..=recovered.len() as u64).collect::<Vec<_>>(), "gap-free after kill {run}");
        assert_eq!(wal.stats().next_seq, recovered.len() as u64 + 1);
        let bytes: u64 = recovered.iter().map(|r| pauselog_wal::frame_bytes(r.1.len())).sum();
        assert_eq!(wal.live_bytes(), bytes);
        // Every acknowledged record is there with its body.
        for (seq, expected) in &acknowledged {
            let found = recovered.get(*seq as usize - 1).map(|r| &r.1);
            assert!(found == Some(expected), "acknowledged seq {seq} lost or changed after kill {run}");
        }
        wal.close().expect("close");
    }
    assert!(acknowledged.len() >= KILL_COUNT as usize * ACKS_BEFORE_KILL);
}
