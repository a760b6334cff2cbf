//! Act one, first half: live sync, the pause, concurrent writers queueing
//! while paused, and the queued view with its pages and key filter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use pauselog::{MapState, Query, Submitted};

use super::summary::{records, stats_table};
use super::workload::{demo_record, key_index, queue_share};
use super::{progress_bar, Demo, POLL_INTERVAL};
use crate::inspect_cmd::{queued_table, state_text};
use crate::table;
use crate::CliError;

impl Demo {
    pub(super) fn live_sync(&mut self) -> Result<(), CliError> {
        self.heading("Live sync (Running)");
        let live_count = 5;
        let mut live = 0;
        for index in 0..live_count {
            if self.map.submit(demo_record(self.key_count, index, 0))? == Submitted::Live {
                live += 1;
            }
        }
        self.figures.live_initial = live;
        self.checks.check(live == live_count, format!("{live}/{live_count} records delivered live"));
        self.checks.check(self.destination.ledger().delivered == live_count, "the destination received them");
        Ok(())
    }

    pub(super) fn pause(&mut self) -> Result<(), CliError> {
        self.heading("Pause for maintenance");
        self.map.pause()?;
        let state = self.map.state();
        println!("  state: {}", state_text(&state));
        self.checks.check(matches!(state, MapState::Paused { .. }), "map is Paused");
        Ok(())
    }

    pub(super) fn queue_records(&mut self) -> Result<(), CliError> {
        let total = self.record_count;
        let writers = self.writer_count;
        self.heading(&format!("Queue {total} records from {writers} concurrent writers over {} keys", self.key_count));
        let submitted = AtomicU64::new(0);
        let started = Instant::now();
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..writers)
                .map(|writer| {
                    let (map, submitted, key_count) = (&self.map, &submitted, self.key_count);
                    scope.spawn(move || queue_share(map, writer, writers, total, key_count, submitted))
                })
                .collect();
            let bar = progress_bar(total, "queueing");
            while !handles.iter().all(|h| h.is_finished()) {
                bar.set_position(submitted.load(Ordering::Relaxed));
                std::thread::sleep(POLL_INTERVAL);
            }
            bar.finish_and_clear();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into())))
                .collect::<Vec<_>>()
        });
        self.figures.queue_elapsed = started.elapsed();
        let mut in_order = true;
        for result in results {
            let acked = result.map_err(CliError::Failed)?;
            in_order &= acked.windows(2).all(|w| w[0].0 < w[1].0);
            for (seq, key_index) in acked {
                self.acked_seqs.insert(seq);
                *self.per_key.entry(key_index).or_default() += 1;
            }
        }
        let stats = self.map.stats();
        self.figures.queued = total;
        self.figures.queued_bytes = stats.queued_bytes;
        let secs = self.figures.queue_elapsed.as_secs_f64();
        println!(
            "  {total} records ({}) queued in {} = {:.0} records/s, {:.1} MB/s",
            table::bytes(stats.queued_bytes),
            table::duration(self.figures.queue_elapsed),
            total as f64 / secs,
            stats.queued_bytes as f64 / secs / 1e6
        );
        self.checks.check(self.acked_seqs.len() as u64 == total, format!("{total} distinct seqs acknowledged"));
        self.checks.check(in_order, "each writer saw strictly increasing seqs");
        self.checks.check(stats.queued_records == total, format!("stats: {} queued records", stats.queued_records));
        self.checks.check(
            self.destination.ledger().delivered == self.figures.live_initial,
            "nothing reached the destination while paused",
        );
        Ok(())
    }

    pub(super) fn show_queued(&mut self) -> Result<(), CliError> {
        self.heading("Queued records, first page (R10)");
        let page = self.map.queued(&Query::default().limit(10))?;
        table::print(&queued_table(&records(&page.items)));
        println!(
            "  {} shown of {}; next cursor: {}",
            page.items.len(),
            page.total,
            page.next.as_deref().unwrap_or("-")
        );
        self.checks.check(page.total == self.record_count, format!("page total = {}", page.total));
        self.checks.check(page.items.windows(2).all(|w| w[0].seq < w[1].seq), "page is in seq order");
        if let (Some(next), Some(last)) = (&page.next, page.items.last()) {
            let second = self.map.queued(&Query::default().limit(10).after(next.clone()))?;
            let first_of_second = second.items.first().map_or(0, |r| r.seq);
            self.checks.check(first_of_second > last.seq, format!("the next page continues after seq {}", last.seq));
        }

        let Some(first) = page.items.first() else { return Ok(()) };
        let key = first.key.clone();
        self.heading(&format!("Key filter: {key} (R11)"));
        let page = self.map.queued(&Query::default().key(key.clone()).limit(10))?;
        table::print(&queued_table(&records(&page.items)));
        let expected = key_index(&key).and_then(|index| self.per_key.get(&index).copied()).unwrap_or(0);
        println!("  {} shown of {} records for this key", page.items.len(), page.total);
        self.checks.check(page.items.iter().all(|r| r.key == key), "every record has that key");
        self.checks.check(page.total == expected, format!("key total {} = records queued for it", page.total));
        Ok(())
    }

    pub(super) fn show_stats(&mut self, title: &str) {
        self.heading(title);
        table::print(&stats_table(&self.map.stats()));
    }
}
