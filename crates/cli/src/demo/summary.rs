//! The demo's tables: the closing summary of figures, and the engine's
//! records, errors and stats in the admin API's shape.

use std::time::Duration;

use pauselog::admin::{error_dto, record_dto};
use pauselog::{CatchupError, MapStats, QueuedRecord};

use super::Demo;
use crate::inspect_cmd::state_text;
use crate::table::{self, Align};

impl Demo {
    pub(super) fn summary(&mut self) {
        self.heading("Summary");
        let f = &self.figures;
        let per_sec = |records: u64, elapsed: Duration| records as f64 / elapsed.as_secs_f64().max(1e-9);
        let record_bytes_mean = f.queued_bytes as f64 / f.queued.max(1) as f64;
        let drained = f.queued + f.tail_queued;
        let mut rows = table::new(&[("", Align::Left), ("VALUE", Align::Right)]);
        let mut row = |name: &str, value: String| {
            rows.add_row(vec![name.to_owned(), value]);
        };
        row("records queued while paused", f.queued.to_string());
        row("bytes queued (encoded, framed)", table::bytes(f.queued_bytes));
        row("records queued at the tail during catch-up", f.tail_queued.to_string());
        row("records replayed", f.replayed.to_string());
        row("records delivered live", (f.live_initial + f.tail_live).to_string());
        row("catch-up errors before retry", f.errors_before_retry.to_string());
        row("catch-up errors after retry", f.errors_after_retry.to_string());
        row("act two: preserved / discarded", format!("{} / {}", f.act_two_preserved, f.act_two_discarded));
        row("queueing time", table::duration(f.queue_elapsed));
        row("queueing throughput", format!("{:.0} records/s", per_sec(f.queued, f.queue_elapsed)));
        row("", format!("{:.1} MB/s", f.queued_bytes as f64 / f.queue_elapsed.as_secs_f64().max(1e-9) / 1e6));
        row("catch-up time", table::duration(f.drain_elapsed));
        row("draining throughput", format!("{:.0} records/s", per_sec(drained, f.drain_elapsed)));
        row(
            "",
            format!("{:.1} MB/s", drained as f64 * record_bytes_mean / f.drain_elapsed.as_secs_f64().max(1e-9) / 1e6),
        );
        row("retry time", table::duration(f.retry_elapsed));
        row("total time", table::duration(self.started.elapsed()));
        table::print(&rows);
    }
}

/// Queued records in the admin API's schema, as the tables take them.
pub(super) fn records(items: &[QueuedRecord]) -> Vec<pauselog_admin::schema::QueuedRecord> {
    items.iter().cloned().map(|record| record_dto(record, false)).collect()
}

/// Catch-up errors in the admin API's schema.
pub(super) fn errors(items: &[CatchupError]) -> Vec<pauselog_admin::schema::CatchupError> {
    items.iter().cloned().map(|entry| error_dto(entry, false)).collect()
}

/// `map.stats()` as a key/value table (R9).
pub(super) fn stats_table(stats: &MapStats) -> comfy_table::Table {
    let optional = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), table::duration);
    table::key_values(&[
        ("state", state_text(&stats.state)),
        ("queued records", stats.queued_records.to_string()),
        ("queued bytes", format!("{} ({})", stats.queued_bytes, table::bytes(stats.queued_bytes))),
        ("oldest queued age", optional(stats.oldest_queued_age)),
        ("bytes left before the size cap", table::bytes(stats.bytes_left)),
        ("time left before the pause cap", optional(stats.pause_time_left)),
        ("blocked", stats.blocked.map_or_else(|| "-".to_owned(), |limit| format!("{limit:?}"))),
        ("replayed", stats.replayed.to_string()),
        ("remaining", stats.remaining.to_string()),
        ("drain rate", format!("{:.0} records/s", stats.drain_rate_per_sec)),
        ("eta", optional(stats.eta)),
        ("error records", stats.error_records.to_string()),
        ("error bytes", stats.error_bytes.to_string()),
        ("last error", stats.last_error.clone().unwrap_or_else(|| "-".to_owned())),
    ])
}
