//! The `customers` sample that the demo (`pauselog demo --postgres URL`) and
//! the end-to-end tests run against a real server: a table with a CHECK
//! constraint and a foreign key, records that number each key's versions, a
//! model of the last acknowledged write per key, writers, and the checks
//! that the table equals the model and never went back to an older version.
//!
//! Key `i` is `USMF|CUST-{i:05}`. Its version `v` writes the row
//! `name = "CUST-{i} v{v}"`, `credit_limit = 1000 + v`, `region = 'EMEA'`;
//! every fifth version of a good key deletes it instead. The bad keys'
//! version 2 breaks a rule: `credit_limit = -100` for [`breaks_check`] keys,
//! `region = 'APAC'` (a region the destination lacks) for
//! [`breaks_foreign_key`] keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pauselog::{Error, Op, Record, Submitted, TableMap};

use crate::sql::ident;

/// The bad version of a bad key.
pub const BAD_VERSION: u64 = 2;

/// Creates `regions` (holding `EMEA`) and `customers` in `schema`.
pub fn create_tables(client: &mut postgres::Client, schema: &str) -> Result<(), postgres::Error> {
    let schema = ident(schema);
    client.batch_execute(&format!(
        "CREATE TABLE {schema}.regions (code text PRIMARY KEY);
         INSERT INTO {schema}.regions VALUES ('EMEA');
         CREATE TABLE {schema}.customers (
             key text PRIMARY KEY,
             seq bigint NOT NULL,
             name text NOT NULL,
             credit_limit bigint NOT NULL CHECK (credit_limit >= 0),
             region text NOT NULL REFERENCES {schema}.regions (code)
         );"
    ))
}

/// The integration key of key `i`.
pub fn key(i: u64) -> String {
    format!("USMF|CUST-{i:05}")
}

/// `i` of a key made by [`key`].
pub fn key_index(key: &str) -> Option<u64> {
    key.strip_prefix("USMF|CUST-")?.parse().ok()
}

/// Keys whose [`BAD_VERSION`] breaks the CHECK constraint.
pub fn breaks_check(i: u64) -> bool {
    i % 40 == 7
}

/// Keys whose [`BAD_VERSION`] names a region the destination lacks.
pub fn breaks_foreign_key(i: u64) -> bool {
    i % 40 == 23
}

/// Keys that get a bad version.
pub fn is_bad_key(i: u64) -> bool {
    breaks_check(i) || breaks_foreign_key(i)
}

/// Every fifth version of a good key deletes it; the next creates it again.
pub fn op_of(i: u64, version: u64) -> Op {
    if !is_bad_key(i) && version.is_multiple_of(5) {
        Op::Delete
    } else {
        Op::Update
    }
}

/// The row version `version` of key `i` writes: (name, credit_limit, region).
pub fn row_of(i: u64, version: u64) -> (String, i64, String) {
    let bad = version == BAD_VERSION;
    let credit_limit = if bad && breaks_check(i) { -100 } else { 1000 + version as i64 };
    let region = if bad && breaks_foreign_key(i) { "APAC" } else { "EMEA" };
    (format!("CUST-{i:05} v{version}"), credit_limit, region.to_owned())
}

/// The record of version `version` of key `i`.
pub fn record(i: u64, version: u64) -> Record {
    let (name, credit_limit, region) = row_of(i, version);
    let payload = format!(r#"{{"name": "{name}", "credit_limit": {credit_limit}, "region": "{region}"}}"#);
    Record::new(key(i), op_of(i, version), payload.into_bytes())
}

/// The version a row's name carries.
pub fn version_of(name: &str) -> Option<u64> {
    name.rsplit_once(" v")?.1.parse().ok()
}

/// Writes version 1 of every key `0..key_count` from `thread_count` threads
/// and acknowledges it in `model`. Returns how many were delivered live.
pub fn write_first_versions(
    map: &TableMap,
    model: &mut Model,
    key_count: u64,
    thread_count: u64,
) -> Result<u64, Error> {
    let live = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..thread_count)
            .map(|t| {
                let live = &live;
                scope.spawn(move || {
                    for i in (t..key_count).step_by(thread_count as usize) {
                        if !submit_until_taken(map, record(i, 1))? {
                            live.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok::<(), Error>(())
                })
            })
            .collect();
        threads.into_iter().try_for_each(|thread| thread.join().expect("a writer thread does not panic"))
    })?;
    for i in 0..key_count {
        model.ack(i, 1);
    }
    Ok(live.into_inner())
}

/// Submits until the engine takes the record: a live write the destination
/// answered `Unavailable` is submitted again, as a caller would. Returns
/// whether it was queued (else delivered live).
pub fn submit_until_taken(map: &TableMap, record: Record) -> Result<bool, Error> {
    loop {
        match map.submit(record.clone()) {
            Ok(Submitted::Live) => return Ok(false),
            Ok(Submitted::Queued { .. }) => return Ok(true),
            Err(Error::Unavailable { .. }) => std::thread::sleep(Duration::from_millis(2)),
            Err(error) => return Err(error),
        }
    }
}

/// The last acknowledged version per key, and per key the version a killed
/// process was submitting when it died (it may or may not have been taken).
#[derive(Debug, Default, Clone)]
pub struct Model {
    /// Key index → last acknowledged version.
    pub acked: BTreeMap<u64, u64>,
    /// Key index → a version submitted without an answer.
    pub in_flight: HashMap<u64, u64>,
}

impl Model {
    /// A version no write of key `i` used yet.
    pub fn next_version(&self, i: u64) -> u64 {
        let acked = self.acked.get(&i).copied().unwrap_or(0);
        acked.max(self.in_flight.get(&i).copied().unwrap_or(0)) + 1
    }

    /// Version `version` of key `i` was acknowledged.
    pub fn ack(&mut self, i: u64, version: u64) {
        self.acked.insert(i, version);
        self.in_flight.remove(&i);
    }

    /// How `table` differs from the model: every key must hold its last
    /// acknowledged version (no row if that version deleted it) or, for a
    /// key a killed process was writing, that newer version; no other row;
    /// every row's seq above 0 (R21). Empty when they agree.
    pub fn differences(&self, client: &mut postgres::Client, table: &str) -> Result<Vec<String>, postgres::Error> {
        let rows = client.query(&format!("SELECT key, name, credit_limit, region, seq FROM {table}"), &[])?;
        let mut found: HashMap<String, (String, i64, String)> = HashMap::new();
        let mut wrong = Vec::new();
        for row in rows {
            let (key, seq): (String, i64) = (row.get(0), row.get(4));
            if seq <= 0 {
                wrong.push(format!("{key}: seq {seq}, but every delivery carries a seq above 0 (R21)"));
            }
            found.insert(key, (row.get(1), row.get(2), row.get(3)));
        }
        for (&i, &acked) in &self.acked {
            let acceptable: Vec<u64> = std::iter::once(acked).chain(self.in_flight.get(&i).copied()).collect();
            let got = found.remove(&key(i));
            let fits = |version: u64| match op_of(i, version) {
                Op::Delete => got.is_none(),
                _ => got.as_ref() == Some(&row_of(i, version)),
            };
            if !acceptable.iter().any(|&version| fits(version)) {
                wrong.push(format!("{}: {got:?}, expected version {acceptable:?}", key(i)));
            }
        }
        wrong.extend(found.keys().map(|key| format!("{key}: a row no acknowledged write made")));
        Ok(wrong)
    }
}

/// What a writer calls before each submit and after it is taken:
/// `(key index, version)`.
pub type WriteHook = fn(u64, u64);

/// Who writes what: the good keys `0..key_count`, writer `w` of
/// `writer_count` owning the keys `i % writer_count == w`, each writer
/// pausing `pause_between_submits` after each record (a service's writes
/// come at its own pace, not as fast as the engine takes them).
#[derive(Debug, Clone, Copy)]
pub struct WriterPlan {
    /// Keys `0..key_count`.
    pub key_count: u64,
    /// Concurrent writers.
    pub writer_count: u64,
    /// Sleep after each submit.
    pub pause_between_submits: Duration,
}

/// Threads that keep writing new versions of the good keys of a
/// [`WriterPlan`] until stopped; each key gets at least one new version.
#[derive(Debug)]
pub struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<Vec<Write>, Error>>>,
}

/// One acknowledged write: (key index, version).
type Write = (u64, u64);

impl Writers {
    /// Starts the writers of `plan` after the versions of `model`.
    pub fn start(map: &TableMap, model: &Model, plan: WriterPlan, hooks: (WriteHook, WriteHook)) -> Writers {
        let WriterPlan { key_count, writer_count, pause_between_submits } = plan;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..writer_count)
            .map(|w| {
                let (map, stop, model) = (map.clone(), stop.clone(), model.clone());
                std::thread::spawn(move || {
                    let keys: Vec<u64> = (0..key_count).filter(|i| i % writer_count == w && !is_bad_key(*i)).collect();
                    let mut versions: Vec<u64> = keys.iter().map(|&i| model.next_version(i)).collect();
                    let mut acks = Vec::new();
                    let mut first_round = true;
                    while first_round || !stop.load(Ordering::Relaxed) {
                        for (slot, &i) in keys.iter().enumerate() {
                            (hooks.0)(i, versions[slot]);
                            submit_until_taken(&map, record(i, versions[slot]))?;
                            (hooks.1)(i, versions[slot]);
                            acks.push((i, versions[slot]));
                            versions[slot] += 1;
                            if !pause_between_submits.is_zero() {
                                std::thread::sleep(pause_between_submits);
                            }
                        }
                        first_round = false;
                    }
                    Ok(acks)
                })
            })
            .collect();
        Writers { stop, threads }
    }

    /// Stops the writers and adds what they wrote to `model`. Returns the
    /// number of records they wrote.
    pub fn stop_into(self, model: &mut Model) -> Result<u64, Error> {
        self.stop.store(true, Ordering::Relaxed);
        let mut written = 0;
        for thread in self.threads {
            for (i, version) in thread.join().expect("a writer thread does not panic")? {
                model.ack(i, version);
                written += 1;
            }
        }
        Ok(written)
    }
}

/// A no-op [`WriteHook`].
pub fn no_hook(_: u64, _: u64) {}

/// A reader that polls the table and notes every row it sees go back to an
/// older version than one it saw before (R21).
#[derive(Debug)]
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, Vec<String>)>,
}

impl Monitor {
    /// Starts polling `table` on the server at `url` every `poll_interval`
    /// (reconnecting while the server is down).
    pub fn start(url: &str, table: &str, poll_interval: Duration) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, flag, sql) = (url.to_owned(), stop.clone(), format!("SELECT key, name FROM {table}"));
        let thread = std::thread::spawn(move || {
            let mut seen: HashMap<String, u64> = HashMap::new();
            let (mut polls, mut regressions) = (0, Vec::new());
            let mut client: Option<postgres::Client> = None;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(poll_interval);
                if client.as_ref().is_none_or(postgres::Client::is_closed) {
                    client = postgres::Client::connect(&url, postgres::NoTls).ok();
                }
                let Some(Ok(rows)) = client.as_mut().map(|client| client.query(&sql, &[])) else { continue };
                polls += 1;
                for row in rows {
                    let (key, name): (String, String) = (row.get(0), row.get(1));
                    let version = version_of(&name).unwrap_or(0);
                    let highest = seen.entry(key.clone()).or_default();
                    if version < *highest {
                        regressions.push(format!("{key}: v{version} after v{highest}"));
                    }
                    *highest = (*highest).max(version);
                }
            }
            (polls, regressions)
        });
        Monitor { stop, thread }
    }

    /// Stops polling: how many polls read the table, and every regression seen.
    pub fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the monitor thread does not panic")
    }
}

/// Every catch-up error of `map`, page by page.
pub fn all_errors(map: &TableMap) -> Result<Vec<pauselog::CatchupError>, Error> {
    let mut errors = Vec::new();
    let mut query = pauselog::Query::default().limit(pauselog::PAGE_LIMIT_MAX);
    loop {
        let page = map.catchup_errors(&query)?;
        errors.extend(page.items);
        match page.next {
            Some(next) => query = query.after(next),
            None => return Ok(errors),
        }
    }
}

/// How the catch-up errors differ from what the bad keys `0..key_count`
/// should have left (R15, Strict ordering): per bad key, its
/// [`BAD_VERSION`] `Rejected` with the server's message naming the broken
/// constraint, then the next version `BlockedByEarlierFailure`; nothing
/// else. Empty when they agree.
pub fn error_differences(errors: &[pauselog::CatchupError], key_count: u64) -> Vec<String> {
    use pauselog::ErrorReason::{BlockedByEarlierFailure, Rejected};
    let mut by_key: BTreeMap<u64, Vec<&pauselog::CatchupError>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for error in errors {
        match key_index(&error.record.key) {
            Some(i) if is_bad_key(i) => by_key.entry(i).or_default().push(error),
            _ => wrong.push(format!("{}: a catch-up error of a good key ({:?})", error.record.key, error.reason)),
        }
    }
    for i in (0..key_count).filter(|&i| is_bad_key(i)) {
        let reasons: Vec<_> = by_key.get(&i).into_iter().flatten().map(|error| error.reason).collect();
        if reasons != [Rejected, BlockedByEarlierFailure] {
            wrong.push(format!("{}: errors {reasons:?}, expected [Rejected, BlockedByEarlierFailure]", key(i)));
            continue;
        }
        let message = by_key[&i][0].last_error.as_deref().unwrap_or_default();
        let expected = if breaks_check(i) {
            ["violates check constraint \"customers_credit_limit_check\"", "(SQLSTATE 23514)"]
        } else {
            ["violates foreign key constraint \"customers_region_fkey\"", "(SQLSTATE 23503)"]
        };
        if !expected.iter().all(|part| message.contains(part)) {
            wrong.push(format!("{}: {message:?} does not name the broken constraint", key(i)));
        }
    }
    wrong
}

/// Fixes the bad keys `0..key_count` as an operator would: a CHECK key at
/// the source (a newer, valid version, delivered live, which supersedes its
/// errors, R16b), a foreign-key key at the destination (the missing region
/// is added to `schema.regions`) followed by a retry of the errors (R16),
/// which applies its two versions in order. Then the superseded errors are
/// discarded. Returns the retry's progress.
pub fn fix_errors(
    map: &TableMap,
    model: &mut Model,
    client: &mut postgres::Client,
    schema: &str,
    key_count: u64,
) -> Result<pauselog::RetryProgress, String> {
    for i in (0..key_count).filter(|&i| breaks_check(i)) {
        let version = model.next_version(i);
        submit_until_taken(map, record(i, version)).map_err(|e| format!("fix at the source: {e}"))?;
        model.ack(i, version);
    }
    client
        .batch_execute(&format!("INSERT INTO {}.regions VALUES ('APAC')", ident(schema)))
        .map_err(|e| format!("adding the missing region: {}", crate::error::error_text(&e)))?;
    let job = map.retry_errors(pauselog::Selection::All).map_err(|e| format!("retry: {e}"))?;
    let progress = job.wait(Duration::from_secs(600)).map_err(|e| format!("retry: {e}"))?;
    let left = all_errors(map).map_err(|e| format!("errors: {e}"))?;
    if let Some(error) = left.iter().find(|e| e.reason != pauselog::ErrorReason::Superseded) {
        return Err(format!("{}: still {:?} after the fix and the retry", error.record.key, error.reason));
    }
    map.discard_errors(pauselog::Selection::All).map_err(|e| format!("discard: {e}"))?;
    Ok(progress)
}
