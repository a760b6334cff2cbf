//! Crash tests through child processes: the parent re-executes its own test
//! binary to run one child `#[test]` fn, reads the `@@TAG ...` event lines
//! the child prints, and kills it with SIGKILL when it has seen enough.

use std::path::Path;
use std::time::Duration;

use pauselog::{DeliveryError, Destination, Op, QueuedRecord, Record, Submitted, TableMap};

use crate::WAIT;

/// Crash tests: the parent re-executes this test binary, running one child
/// `#[test]` fn that does the scenario named by this variable.
pub const CRASH_CHILD_ENV: &str = "PAUSELOG_CRASH_CHILD";
/// Crash tests: the data directory of the child.
pub const CRASH_DIR_ENV: &str = "PAUSELOG_CRASH_DIR";
/// Crash tests: how many kills per scenario (default 3; raise it for a long run).
pub const CRASH_ROUNDS_ENV: &str = "PAUSELOG_CRASH_ROUNDS";

/// Inside a crash child: its scenario and data directory. `None` in a normal
/// test run, where a child entry fn returns at once.
pub fn crash_child_args() -> Option<(String, std::path::PathBuf)> {
    let scenario = std::env::var(CRASH_CHILD_ENV).ok()?;
    let dir = std::env::var_os(CRASH_DIR_ENV).expect("a crash child gets its directory");
    Some((scenario, dir.into()))
}

/// Kills per crash scenario: `PAUSELOG_CRASH_ROUNDS`, default 3.
pub fn crash_rounds() -> usize {
    std::env::var(CRASH_ROUNDS_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// In a crash child: prints one event line (`@@TAG field ...`) and flushes it,
/// so the parent knows about it before any kill.
pub fn say(tag: &str, fields: &[&dyn std::fmt::Display]) {
    use std::io::Write;
    let mut line = format!("@@{tag}");
    for field in fields {
        line.push(' ');
        line.push_str(&field.to_string());
    }
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).expect("stdout");
    out.flush().expect("stdout flush");
}

/// One `@@TAG field ...` line a crash child printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The tag, e.g. `ACK`.
    pub tag: String,
    /// The fields after it.
    pub fields: Vec<String>,
}

impl Event {
    /// Field `index` parsed as a number.
    pub fn num(&self, index: usize) -> u64 {
        self.fields[index].parse().expect("numeric field")
    }
}

/// The end of a crash child whose scenario finished before the parent's
/// kill came (a late round's kill condition may ask for more than the
/// scenario does): says `@@DONE`, on which the parent kills it at once, so
/// that every round still ends in a SIGKILL. A child whose parent is gone
/// exits after ten times [`WAIT`].
pub fn wait_for_the_kill() {
    say("DONE", &[]);
    std::thread::sleep(WAIT * 10);
    std::process::exit(3);
}

/// Runs the child test fn `child_test` (its path in this test binary, e.g.
/// `crash_loses_no_acknowledged_record::crash_child`) with `scenario` on
/// `dir`, kills it with SIGKILL as soon as `enough(events so far)` holds
/// or the child says `DONE` (see [`wait_for_the_kill`]), and
/// returns every event it printed before it died. Panics (with the child's
/// stderr) if the child exits on its own or prints nothing for [`WAIT`].
pub fn run_and_kill(child_test: &str, scenario: &str, dir: &Path, enough: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let stderr_path = dir.with_extension("child-stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("child stderr file");
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CRASH_CHILD_ENV, scenario)
        .env(CRASH_DIR_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let parse = |line: &str| {
        let (_, tagged) = line.split_once("@@")?;
        let mut parts = tagged.split_whitespace().map(str::to_owned);
        Some(Event { tag: parts.next()?, fields: parts.collect() })
    };
    let mut events = Vec::new();
    let mut killed = false;
    while !killed {
        match receive.recv_timeout(WAIT) {
            Ok(line) => {
                events.extend(parse(&line));
                if enough(&events) || events.last().is_some_and(|event| event.tag == "DONE") {
                    child.kill().expect("SIGKILL the child");
                    killed = true;
                }
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "crash child {scenario} stopped before the kill ({error:?}); {} events; stderr:\n{stderr}",
                    events.len()
                );
            }
        }
    }
    // What the child printed before it died still counts: it was acknowledged.
    events.extend(receive.iter().filter_map(|line| parse(&line)));
    reader.join().expect("reader thread");
    let status = child.wait().expect("child reaped");
    assert!(!status.success(), "the child was killed, not finished: {status:?}");
    events
}

/// Crash tests: distinct integration keys per writer of [`crash_record`]
/// (keys repeat, so per-key order matters).
pub const CRASH_KEYS_PER_WRITER: u64 = 7;

/// Crash tests: the `n`-th record of writer `writer`, whose key and payload
/// the parent recomputes from the ACK line.
pub fn crash_record(writer: u64, n: u64) -> Record {
    Record::new(format!("W{writer}|K{}", n % CRASH_KEYS_PER_WRITER), Op::Update, format!("w{writer}-n{n}"))
}

/// In a crash child: prints `@@ACK seq key payload` for an acknowledged record.
pub fn say_ack(seq: u64, record: &Record) {
    say("ACK", &[&seq, &record.key, &String::from_utf8_lossy(&record.payload)]);
}

/// In a crash child: submits `record` and prints `@@ACK seq key payload` if
/// it was queued, `@@LIVE key` if it went live.
pub fn submit_and_say(map: &TableMap, record: Record) -> Submitted {
    let submitted = map.submit(record.clone()).expect("submit");
    match submitted {
        Submitted::Queued { seq } => say_ack(seq, &record),
        Submitted::Live => say("LIVE", &[&record.key]),
    }
    submitted
}

/// In a crash child: one thread per writer in `writers` submits
/// `crash_record(writer, n)` for `n` in `0..records_per_writer` with
/// [`submit_and_say`]; returns when all are done (a crash child is killed
/// long before).
pub fn submit_from_threads(map: &TableMap, writers: std::ops::Range<u64>, records_per_writer: u64) {
    std::thread::scope(|scope| {
        for writer in writers {
            let map = map.clone();
            scope.spawn(move || {
                for n in 0..records_per_writer {
                    submit_and_say(&map, crash_record(writer, n));
                }
            });
        }
    });
}

/// In a crash child: pauses `map`, queues `backlog` records of writer 0,
/// resumes with catch-up (printing `@@RESUMED`), and keeps the writers in
/// `writers` submitting while the replay runs.
pub fn catch_up_under_writers(map: &TableMap, backlog: u64, writers: std::ops::Range<u64>, records_per_writer: u64) {
    map.pause().expect("pause");
    for n in 0..backlog {
        submit_and_say(map, crash_record(0, n));
    }
    map.resume(pauselog::ResumeMode::CatchUp).expect("resume");
    say("RESUMED", &[]);
    submit_from_threads(map, writers, records_per_writer);
}

/// The records a crash child acknowledged (`ACK` events), by seq, as (key,
/// payload); panics if a seq was acknowledged twice.
pub fn acked_records(events: &[Event]) -> std::collections::BTreeMap<u64, (String, String)> {
    let mut acked = std::collections::BTreeMap::new();
    for event in events.iter().filter(|e| e.tag == "ACK") {
        let previous = acked.insert(event.num(0), (event.fields[1].clone(), event.fields[2].clone()));
        assert!(previous.is_none(), "seq {} acknowledged twice", event.num(0));
    }
    acked
}

/// A record's key and payload (as lossy UTF-8), to compare with an ACK line.
pub fn key_payload(record: &QueuedRecord) -> (String, String) {
    (record.key.clone(), String::from_utf8_lossy(&record.payload).into_owned())
}

/// Counts the events of one tag as they arrive. [`run_and_kill`] calls its
/// predicate after every line, so a child that prints many lines needs a
/// count that does not start over each time.
#[derive(Debug)]
pub struct Tally {
    tag: &'static str,
    /// Events looked at so far, and how many of them had the tag.
    seen: std::cell::Cell<(usize, usize)>,
}

impl Tally {
    /// Counts events tagged `tag`.
    pub fn of(tag: &'static str) -> Tally {
        Tally { tag, seen: std::cell::Cell::new((0, 0)) }
    }

    /// How many of `events` (the same list, grown since the last call) have the tag.
    pub fn count(&self, events: &[Event]) -> usize {
        let (looked_at, count) = self.seen.get();
        let count = count + events[looked_at..].iter().filter(|e| e.tag == self.tag).count();
        self.seen.set((events.len(), count));
        count
    }
}

/// Crash tests: a destination that accepts every record after a delay and
/// prints `@@DELIVERED seq` (slow, so a replay is still running at the kill).
#[derive(Debug)]
pub struct SlowPrintingDest(pub Duration);

impl Destination for SlowPrintingDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        std::thread::sleep(self.0);
        say("DELIVERED", &[&record.seq]);
        Ok(())
    }
}

/// The name of a child entry fn as the test harness knows it: `path` is
/// `module_path!()` of its module (crate name dropped) plus `::name`.
pub fn child_test_name(module_path: &str, name: &str) -> String {
    let module = module_path.split_once("::").map_or("", |(_, rest)| rest);
    if module.is_empty() {
        name.to_owned()
    } else {
        format!("{module}::{name}")
    }
}
