//! Act one, second half: catch-up while tail writers keep submitting, with
//! a progress bar; the catch-up errors of the keys the destination rejects;
//! their retry; and the delivery invariants over the whole act.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pauselog::{ErrorReason, MapState, Query, ResumeMode, Selection, Submitted, TableMap};

use super::summary::errors;
use super::workload::{customer_key, demo_record, mix};
use super::{progress_bar, Demo, POLL_INTERVAL, WAIT_MAX};
use crate::inspect_cmd::errors_table;
use crate::table;
use crate::CliError;

/// Concurrent writers during catch-up (their records go to the tail).
const TAIL_WRITER_COUNT: u64 = 2;
/// Keys the destination rejects during catch-up.
const REJECTED_KEY_COUNT: usize = 3;

impl Demo {
    /// Resumes with catch-up while tail writers keep submitting; some keys
    /// are rejected. Returns the rejected key indices.
    pub(super) fn catch_up(&mut self) -> Result<Vec<u64>, CliError> {
        self.heading(&format!("Resume with CatchUp while {TAIL_WRITER_COUNT} writers keep submitting (R3, R12)"));
        let rejected = self.pick_rejected_keys();
        let rejected_names: Vec<String> = rejected.iter().map(|&i| customer_key(i)).collect();
        println!("  the destination will reject keys {}", rejected_names.join(", "));
        self.destination.reject_keys(rejected_names);
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        self.map.resume(ResumeMode::CatchUp)?;
        let (outcome, tails) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..TAIL_WRITER_COUNT)
                .map(|writer| {
                    let (map, stop, rejected) = (&self.map, &stop, &rejected);
                    let (key_count, limit) = (self.key_count, self.record_count);
                    scope.spawn(move || tail_writer(map, writer, key_count, rejected, limit, stop))
                })
                .collect();
            let outcome = drain_with_progress(&self.map, self.record_count, started);
            // Let the tail writers cross into live sync before stopping them.
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
            let tails: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a tail writer panicked".into())))
                .collect();
            (outcome, tails)
        });
        self.figures.drain_elapsed = outcome?;
        for tail in tails {
            let tail = tail.map_err(CliError::Failed)?;
            self.figures.tail_live += tail.live;
            self.figures.tail_queued += tail.queued_seqs.len() as u64;
            self.acked_seqs.extend(tail.queued_seqs);
        }
        let stats = self.map.stats();
        self.figures.replayed = stats.replayed;
        let secs = self.figures.drain_elapsed.as_secs_f64();
        let drained = self.figures.queued + self.figures.tail_queued;
        let record_bytes_mean = self.figures.queued_bytes as f64 / self.figures.queued.max(1) as f64;
        println!(
            "  caught up in {}: {drained} records = {:.0} records/s, {:.1} MB/s; {} tail records queued behind the backlog, {} delivered live after the switch",
            table::duration(self.figures.drain_elapsed),
            drained as f64 / secs,
            drained as f64 * record_bytes_mean / secs / 1e6,
            self.figures.tail_queued,
            self.figures.tail_live,
        );
        self.checks.check(matches!(stats.state, MapState::Running), "map is Running");
        self.checks.check(stats.queued_records == 0, "the queue is empty");
        Ok(rejected)
    }

    /// The first keys (by index) with at least two queued records, so both
    /// `Rejected` and `BlockedByEarlierFailure` show up.
    fn pick_rejected_keys(&self) -> Vec<u64> {
        let mut candidates: Vec<u64> = self.per_key.iter().filter(|(_, &n)| n >= 2).map(|(&k, _)| k).collect();
        candidates.sort_unstable();
        candidates.truncate(REJECTED_KEY_COUNT);
        candidates
    }

    pub(super) fn show_errors(&mut self, rejected: &[u64]) -> Result<(), CliError> {
        self.heading("Catch-up errors (R15)");
        let expected_total: u64 = rejected.iter().map(|k| self.per_key.get(k).copied().unwrap_or(0)).sum();
        let page = self.map.catchup_errors(&Query::default().limit(12))?;
        table::print(&errors_table(&errors(&page.items)));
        println!("  {} shown of {}", page.items.len(), page.total);
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut query = Query::default().limit(1000);
        loop {
            let page = self.map.catchup_errors(&query)?;
            for entry in &page.items {
                *counts.entry(format!("{:?}", entry.reason)).or_default() += 1;
            }
            match page.next {
                Some(next) => query = Query::default().limit(1000).after(next),
                None => break,
            }
        }
        for (reason, count) in &counts {
            println!("  {reason}: {count}");
        }
        let count = |reason: ErrorReason| counts.get(&format!("{reason:?}")).copied().unwrap_or(0);
        self.figures.errors_before_retry = self.map.stats().error_records;
        self.checks.check(
            page.total == expected_total,
            format!("{expected_total} errors: every queued record of the rejected keys"),
        );
        self.checks.check(count(ErrorReason::Rejected) == rejected.len() as u64, "one Rejected entry per rejected key");
        self.checks.check(
            count(ErrorReason::BlockedByEarlierFailure) == expected_total.saturating_sub(rejected.len() as u64),
            "the rest are BlockedByEarlierFailure (Strict key ordering)",
        );
        Ok(())
    }

    pub(super) fn retry(&mut self) -> Result<(), CliError> {
        self.heading("Destination fixed: retry the errors (R16a)");
        self.destination.accept_all();
        let started = Instant::now();
        let job = self.map.retry_errors(Selection::All)?;
        let progress = job.wait(WAIT_MAX)?;
        self.figures.retry_elapsed = started.elapsed();
        println!(
            "  retry job: {} total, {} delivered, {} failed again, {} skipped, in {}",
            progress.total,
            progress.delivered,
            progress.failed,
            progress.skipped,
            table::duration(self.figures.retry_elapsed)
        );
        let stats = self.map.stats();
        self.figures.errors_after_retry = stats.error_records;
        self.checks.check(progress.delivered == self.figures.errors_before_retry, "every error was delivered");
        self.checks.check(progress.failed == 0 && !progress.cancelled, "nothing failed again");
        self.checks.check(stats.error_records == 0 && stats.error_bytes == 0, "the errors list is empty");
        Ok(())
    }

    /// Every acknowledged seq reached the destination exactly once, in seq
    /// order per key (the ledger checked order and duplicates as they came).
    pub(super) fn check_deliveries(&mut self) {
        self.heading("Delivery invariants (R3, R18)");
        let ledger = self.destination.ledger();
        let missing = self.acked_seqs.iter().filter(|seq| !ledger.delivered_seqs.contains(seq)).count();
        self.checks.check(
            missing == 0,
            format!("all {} acknowledged records delivered ({missing} missing)", self.acked_seqs.len()),
        );
        let live_expected = self.figures.live_initial + self.figures.tail_live;
        let expected = self.acked_seqs.len() as u64 + live_expected;
        self.checks.check(
            ledger.delivered == expected && ledger.delivered_seqs.len() as u64 == expected,
            format!(
                "{} deliveries ({} queued, {live_expected} live), each with its own seq",
                ledger.delivered,
                self.acked_seqs.len()
            ),
        );
        self.checks.check(
            ledger.violation_count == 0,
            format!("per key, seqs strictly increased, live and queued alike ({} violations)", ledger.violation_count),
        );
        for violation in &ledger.violations {
            println!("         {violation}");
        }
    }
}

/// Polls `map.stats()` into a progress bar until the map is Running.
fn drain_with_progress(map: &TableMap, record_count: u64, started: Instant) -> Result<Duration, CliError> {
    let bar = progress_bar(record_count, "draining");
    loop {
        let stats = map.stats();
        if matches!(stats.state, MapState::Running) {
            bar.finish_and_clear();
            return Ok(started.elapsed());
        }
        if started.elapsed() > WAIT_MAX {
            bar.abandon();
            return Err(CliError::Failed(format!(
                "catch-up did not finish within {}; last error: {}",
                table::duration(WAIT_MAX),
                stats.last_error.as_deref().unwrap_or("none")
            )));
        }
        bar.set_length(stats.replayed + stats.remaining);
        bar.set_position(stats.replayed);
        let eta = stats.eta.map_or_else(|| "-".to_owned(), table::duration);
        let stalled = stats.last_error.as_deref().map_or(String::new(), |e| format!(" (last error: {e})"));
        bar.set_message(format!("{:.0} records/s, ETA {eta}{stalled}", stats.drain_rate_per_sec));
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// What a tail writer did.
struct TailOutcome {
    queued_seqs: Vec<u64>,
    live: u64,
}

/// Submits records (never of a `rejected` key) until `stop`, at most `limit`.
fn tail_writer(
    map: &TableMap,
    writer: u64,
    key_count: u64,
    rejected: &[u64],
    limit: u64,
    stop: &AtomicBool,
) -> Result<TailOutcome, String> {
    let mut outcome = TailOutcome { queued_seqs: Vec::new(), live: 0 };
    let mut index = (writer + 1) << 40;
    for _ in 0..limit {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        index += 1;
        if rejected.contains(&(mix(index) % key_count)) {
            continue;
        }
        match map.submit(demo_record(key_count, index, 0)) {
            Ok(Submitted::Queued { seq }) => outcome.queued_seqs.push(seq),
            Ok(Submitted::Live) => outcome.live += 1,
            Err(error) => return Err(format!("tail submit failed: {error}")),
        }
    }
    Ok(outcome)
}
