//! Act two: pause, queue, skip to live preserving the backlog as catch-up
//! errors, then discard them; and, when the directory is kept, the backlog
//! left behind for `pauselog status` to show.

use std::sync::atomic::AtomicU64;

use pauselog::{ErrorReason, MapState, Query, ResumeMode, Selection, Submitted};

use super::summary::{errors, stats_table};
use super::workload::{customer_key, demo_record, queue_share};
use super::{Demo, WAIT_MAX};
use crate::inspect_cmd::{errors_table, state_text};
use crate::table;
use crate::CliError;

/// Records queued in the second act.
const ACT_TWO_RECORDS_MAX: u64 = 3_000;
/// Records left queued at the end when the directory is kept.
const BACKLOG_RECORDS_MAX: u64 = 1_000;

impl Demo {
    pub(super) fn act_two(&mut self) -> Result<(), CliError> {
        let count = self.record_count.min(ACT_TWO_RECORDS_MAX);
        self.heading(&format!("Act two: pause, queue {count}, skip to live preserving them (R13)"));
        self.map.pause()?;
        let delivered_before = self.destination.ledger().delivered;
        let submitted = AtomicU64::new(0);
        let writers = 4;
        let (map, key_count) = (&self.map, self.key_count);
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    scope.spawn({
                        let submitted = &submitted;
                        move || queue_share(map, w, writers, count, key_count, submitted)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into()))).collect()
        });
        for result in results {
            result.map_err(CliError::Failed)?;
        }
        println!("  queued {count}; stats:");
        table::print(&stats_table(&self.map.stats()));
        self.map.resume(ResumeMode::SkipToLivePreserve)?;
        let stats = self.map.stats();
        self.figures.act_two_preserved = stats.error_records;
        println!(
            "  after resume(SkipToLivePreserve): state {}, {} catch-up errors",
            state_text(&stats.state),
            stats.error_records
        );
        let page = self.map.catchup_errors(&Query::default().limit(5))?;
        table::print(&errors_table(&errors(&page.items)));
        self.checks.check(matches!(stats.state, MapState::Running), "live at once");
        self.checks.check(
            stats.queued_records == 0 && stats.error_records == count,
            format!("all {count} moved to the errors"),
        );
        self.checks.check(page.items.iter().all(|e| e.reason == ErrorReason::Preserved), "reason Preserved");
        let live = self.map.submit(demo_record(key_count, 0, 1))?;
        self.checks.check(live == Submitted::Live, "a new record goes live");
        let discarded = self.map.discard_errors(Selection::All)?;
        self.figures.act_two_discarded = discarded;
        let stats = self.map.stats();
        println!("  discard_errors(All) discarded {discarded}");
        self.checks.check(discarded == count, format!("{discarded} discarded"));
        self.checks.check(stats.error_records == 0 && stats.error_bytes == 0, "the errors list is empty");
        let delivered_after = self.destination.ledger().delivered;
        self.checks.check(delivered_after == delivered_before + 1, "no preserved record was delivered");
        Ok(())
    }

    /// With `--dir`, leaves the map paused with a backlog and a few
    /// catch-up errors, so `pauselog status|queued|errors --dir` have
    /// something to show.
    pub(super) fn leave_backlog(&mut self) -> Result<(), CliError> {
        let count = self.record_count.min(BACKLOG_RECORDS_MAX);
        self.heading(&format!("Leave {count} queued records and a few errors, to inspect with `pauselog status`"));
        let submitted = AtomicU64::new(0);
        self.map.pause()?;
        let acked = queue_share(&self.map, 0, 1, count, self.key_count, &submitted).map_err(CliError::Failed)?;
        let rejected_key = acked.first().map_or(0, |&(_, key_index)| key_index);
        let expected_errors = acked.iter().filter(|&&(_, key_index)| key_index == rejected_key).count() as u64;
        self.destination.reject_keys([customer_key(rejected_key)]);
        self.map.resume(ResumeMode::CatchUp)?;
        self.map.wait_for(|state| matches!(state, MapState::Running), WAIT_MAX)?;
        self.destination.accept_all();
        self.map.pause()?;
        let acked = queue_share(&self.map, 0, 1, count, self.key_count, &submitted).map_err(CliError::Failed)?;
        let stats = self.map.stats();
        println!(
            "  {} records queued ({}), {} catch-up errors for {}",
            stats.queued_records,
            table::bytes(stats.queued_bytes),
            stats.error_records,
            customer_key(rejected_key)
        );
        self.checks
            .check(acked.len() as u64 == count && stats.queued_records == count, format!("{count} records queued"));
        self.checks.check(stats.error_records == expected_errors, format!("{expected_errors} catch-up errors"));
        Ok(())
    }
}
