//! R5, R9, R10, R11 on the page: the operator pauses a map with its button,
//! watches the queued total grow as the page refreshes by itself, opens the
//! Queued records tab, loads more, filters by integration key, and reads a
//! payload as text and as hex, partly from the keyboard.

use std::time::Duration;

use fantoccini::key::Key;
use pauselog::{MapState, Query, ResumeMode};

use super::*;

#[test]
fn pause_watch_the_total_grow_page_filter_and_read_payloads() {
    let served = Served::start(&["customers", "sales-orders", "vendors"]);
    // A map in each state for the screenshot: vendors catches up until its
    // destination goes down, and stalls there.
    served.queue(2, 3_000, 300);
    served.dest(2).unavailable_after(1_000);
    served.map(2).resume(ResumeMode::CatchUp).expect("catch up");
    let Some(browser) = served.browser() else { return };
    browser.wait_until("vendors catching up", || state_of(&browser, "vendors") == "Catching up");

    browser.click(&action("customers", "pause"));
    browser.wait_until("customers paused", || state_of(&browser, "customers") == "Paused");
    assert!(matches!(served.map(0).state(), MapState::Paused { .. }), "the click paused the map");
    assert!(browser.text(&cell("customers", 3)).contains("Paused by an operator"));

    // The page refreshes by itself: the queued total grows with no click.
    let writer = Writer::start(served.map(0), 10);
    let queued = |browser: &Browser| figure(browser, "customers", 4);
    let first = browser.poll("a first queued record", || match queued(&browser) {
        0 => Err("0".into()),
        n => Ok(n),
    });
    let second = browser.poll("the total to grow", || match queued(&browser) {
        n if n > first => Ok(n),
        n => Err(n.to_string()),
    });
    browser.poll("the total to grow again", || match queued(&browser) {
        n if n > second => Ok(n),
        n => Err(n.to_string()),
    });
    drop(writer);

    // With the refresh off the page stands still until Refresh now.
    let settled = served.map(0).stats().queued_records;
    browser.wait_until("the writer's last record", || queued(&browser) == settled);
    browser.click("#auto-refresh");
    let shown = queued(&browser);
    served.queue(0, 120, 10);
    let total = served.map(0).stats().queued_records;
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(queued(&browser), shown, "no refresh while it is off");
    browser.click("#refresh-now");
    browser.wait_until("the final total", || queued(&browser) == total);
    browser.click("#auto-refresh");

    // Open the map from the keyboard.
    browser.keys(&action("customers", "open"), &Key::Enter);
    browser.wait_text("#queued-summary", "the first page", |t| t.starts_with("Showing 50 of"));
    assert_eq!(number(&browser.text("#queued-summary"), 1), total);
    assert_eq!(browser.count("#queued tbody tr"), 50);
    browser.eval("window.scrollTo(0, 0); document.activeElement.blur();");
    browser.screenshot("operator_pauses_and_reads_the_queue");
    browser.click("#queued-more");
    browser.wait_until("a second page", || browser.count("#queued tbody tr") == 100);
    let seqs: Vec<u64> =
        (1..=100).map(|n| number(&browser.text(&format!("#queued tbody tr:nth-child({n}) td")), 0)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order, each once: {seqs:?}");

    browser.fill("#queued-key", "key-3");
    browser.keys("#queued-key", &Key::Enter);
    let key_total = served.map(0).queued(&Query::default().key("key-3")).expect("page").total;
    browser.wait_text("#queued-summary", "the key's total", |t| t.contains("key-3") && number(t, 1) == key_total);
    let keys: Vec<String> = (1..=browser.count("#queued tbody tr"))
        .map(|n| browser.text(&format!("#queued tbody tr:nth-child({n}) td.key")))
        .collect();
    assert_eq!(keys.len() as u64, key_total.min(50));
    assert!(keys.iter().all(|k| k == "key-3"), "{keys:?}");
    browser.click("#queued-clear");
    browser.wait_text("#queued-summary", "all keys again", |t| !t.contains("key-3") && number(t, 1) == total);

    let first_seq = browser.text("#queued tbody tr:first-child td");
    let first = served.map(0).queued(&Query::default().limit(1)).expect("page").items.remove(0);
    assert_eq!(first_seq, first.seq.to_string());
    browser.click("#queued tbody tr:first-child button[data-action=\"text\"]");
    let expected = String::from_utf8(first.payload.clone()).expect("text");
    browser.wait_text("#payload-body", "the payload as text", |t| t == expected);
    browser.click("#payload-hex");
    let hex: Vec<String> = first.payload.iter().map(|b| format!("{b:02x}")).collect();
    browser
        .wait_text("#payload-body", "the payload as hex", |t| t.starts_with(&format!("00000000  {}", hex.join(" "))));
    browser.screenshot("payload_as_hex");
    browser.keys("#payload-body", &Key::Escape);
    browser.wait_until("the dialog to close", || {
        browser.eval("return document.querySelector('#payload-dialog').open") == false
    });

    // The Hex button opens the dialog as hex; the payload is not read again.
    browser.click("#queued tbody tr:first-child button[data-action=\"hex\"]");
    browser.wait_text("#payload-body", "the cached payload as hex", |t| t.starts_with("00000000  "));
    browser.click("#payload-dialog button[value=\"close\"]");
    browser.assert_console_clean();
    drop(browser);
    served.close();
}
