//! R15, R16, R16a on the page: the Catch-up errors tab lists each entry with
//! its reason, last error, attempts and failure times; the operator selects
//! entries and retries them, retries all, discards selected ones (after a
//! confirmation) and all, follows retry jobs' progress and cancels one.

use std::sync::Arc;

use pauselog::ResumeMode;
use pauselog_tests::{all_errors, wait_running, TestDest};

use super::*;

/// Opens the destination's gate when dropped, so that a failing test does
/// not leave the engine's close waiting on a held delivery.
struct OpensGate(Arc<TestDest>);

impl Drop for OpensGate {
    fn drop(&mut self) {
        self.0.open_gate();
    }
}

/// The seqs of the listed catch-up errors whose key is `key`.
fn listed_seqs(browser: &Browser, key: &str) -> Vec<u64> {
    let rows = browser.count("#errors tbody tr");
    (1..=rows)
        .filter(|n| browser.text(&format!("#errors tbody tr:nth-child({n}) td.key")) == key)
        .map(|n| number(&browser.text(&format!("#errors tbody tr:nth-child({n}) td:nth-child(2)")), 0))
        .collect()
}

fn select(browser: &Browser, seqs: &[u64]) {
    for seq in seqs {
        browser.click(&format!("#errors tbody tr[data-seq=\"{seq}\"] input[type=\"checkbox\"]"));
    }
}

fn errors_total(browser: &Browser) -> u64 {
    number(&browser.text("#errors-summary"), 1)
}

/// Waits for the map's `jobs`-th job (the newest, listed first) to say `state`.
fn wait_job(browser: &Browser, jobs: usize, state: &str) {
    browser.wait_until(&format!("job {jobs}"), || browser.count("#jobs tbody tr") == jobs);
    browser.wait_text("#jobs tbody tr:first-child td:nth-child(7)", state, |t| t.starts_with(state));
}

#[test]
fn select_retry_discard_and_follow_jobs() {
    let served = Served::start(&["customers"]);
    let dest = served.dest(0).clone();
    let _gate = OpensGate(dest.clone());
    served.queue(0, 150, 10);
    for key in ["key-1", "key-2", "key-3", "key-4"] {
        dest.reject(key);
    }
    served.map(0).resume(ResumeMode::CatchUp).expect("catch up");
    wait_running(served.map(0));
    assert_eq!(served.map(0).stats().error_records, 60, "15 records of each rejected key");
    let Some(browser) = served.browser() else { return };

    browser.click(&action("customers", "open"));
    browser.click("#tab-errors");
    browser.wait_text("#errors-summary", "the first page", |t| t.starts_with("Showing 50 of 60"));
    let first = browser.text("#errors tbody tr:first-child");
    assert!(first.contains("Rejected") && first.contains("validation failed for key-1"), "{first}");
    assert_eq!(browser.text("#errors tbody tr:first-child td:nth-child(7)"), "1", "one attempt so far");
    assert!(browser.text("#errors tbody").contains("BlockedByEarlierFailure"));
    assert!(browser.text("#errors tbody tr:first-child td:nth-child(8)").starts_with("2026-"), "first failure time");

    // The key filter, then every entry.
    browser.fill("#errors-key", "key-2");
    browser.click("#errors-filter button[type=\"submit\"]");
    browser.wait_text("#errors-summary", "the key's entries", |t| {
        t.starts_with("Showing 15 of 15") && t.contains("key-2")
    });
    assert_eq!(listed_seqs(&browser, "key-2").len(), 15);
    browser.click("#errors-clear");
    browser.wait_text("#errors-summary", "all keys again", |t| t.starts_with("Showing 50 of 60"));
    browser.click("#errors-more");
    browser.wait_text("#errors-summary", "the second page", |t| t.starts_with("Showing 60 of 60"));

    // Retry the entries of key-1, now accepted.
    dest.accept("key-1");
    let key_1 = listed_seqs(&browser, "key-1");
    assert_eq!(key_1.len(), 15);
    select(&browser, &key_1);
    browser.click("#retry-selected");
    wait_job(&browser, 1, "Done");
    browser.wait_until("the key's entries to leave the list", || errors_total(&browser) == 45);
    assert!(listed_seqs(&browser, "key-1").is_empty());
    assert!(browser.text("#jobs tbody tr:first-child").contains("15 of 15"));

    // Retry all, forced: key-2 and key-3 fail again, with one more attempt.
    browser.click("#retry-forced");
    browser.click("#retry-all");
    wait_job(&browser, 2, "Done");
    assert!(browser.text("#jobs tbody tr:first-child td:nth-child(7)").contains("forced"));
    browser.click("#retry-forced");
    browser.wait_text(
        &format!("#errors tbody tr[data-seq=\"{}\"] td:nth-child(7)", listed_seqs(&browser, "key-2")[0]),
        "a second attempt",
        |t| t == "2",
    );
    assert_eq!(errors_total(&browser), 45);

    // Discard the entries of key-2, after the confirmation.
    select(&browser, &listed_seqs(&browser, "key-2"));
    browser.click("#discard-selected");
    browser.wait_text("#confirm-dialog .message", "the question", |t| t.contains("15 selected catch-up errors"));
    browser.click("#confirm-ok");
    browser.wait_until("15 fewer entries", || errors_total(&browser) == 30);
    assert!(all_errors(served.map(0), Some("key-2")).is_empty());

    // A retry job held by the destination, cancelled from the page.
    dest.accept("key-3");
    dest.accept("key-4");
    dest.close_gate();
    browser.click("#errors-select-all");
    browser.wait_until("every entry selected", || {
        !browser.eval("return document.getElementById('retry-selected').disabled").as_bool().unwrap_or(true)
    });
    browser.click("#retry-selected");
    wait_job(&browser, 3, "Running");
    browser.click("#jobs tbody tr:first-child button[data-action=\"cancel\"]");
    // The page says so once the engine has taken the cancel.
    browser.wait_text("#notice", "the cancel taken", |t| t.ends_with("cancelled."));
    dest.open_gate();
    wait_job(&browser, 3, "Cancelled");
    let left = all_errors(served.map(0), None);
    assert!(left.len() >= 28 && left.len() < 30, "cancelled after the records in flight: {} left", left.len());
    browser.wait_until("the list to follow", || errors_total(&browser) == left.len() as u64);

    // Discard all.
    browser.click("#discard-all");
    browser.wait_text("#confirm-dialog .message", "the question", |t| t.contains("all"));
    browser.click("#confirm-ok");
    browser.wait_until("an empty list", || errors_total(&browser) == 0);
    assert_eq!(served.map(0).stats().error_records, 0);
    browser.assert_console_clean();
    drop(browser);
    served.close();
}
