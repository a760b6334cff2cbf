//! R5, R12, R13, R16 on the page: the Resume dialog explains and runs each
//! mode (catch up, watched until Running; skip to live keeping the queue as
//! catch-up errors; skip to live discarding it), Escape cancels it, Pause
//! stops a catch-up, and Skip to live during a catch-up offers the preserve
//! choice.

use fantoccini::key::Key;
use pauselog::{MapState, ResumeMode};

use super::*;

/// Opens the Resume dialog of `name`, picks `mode` and confirms.
fn resume(browser: &Browser, name: &str, mode: &str) {
    browser.click(&action(name, "resume"));
    browser.click(&format!("#resume-dialog input[value=\"{mode}\"]"));
    browser.click("#resume-confirm");
}

fn dialog_open(browser: &Browser, id: &str) -> bool {
    browser.eval(&format!("return document.getElementById('{id}').open")) == true
}

#[test]
fn resume_catches_up_to_running_or_skips_to_live_keeping_or_discarding() {
    let served = Served::start(&["customers", "sales-orders", "vendors"]);
    served.queue(0, 200, 20);
    served.queue(1, 50, 5);
    served.queue(2, 50, 5);
    let Some(browser) = served.browser() else { return };

    // The dialog explains the three modes; Escape leaves the map as it was.
    browser.keys(&action("customers", "resume"), &Key::Enter);
    browser.wait_until("the resume dialog", || dialog_open(&browser, "resume-dialog"));
    let explained = browser.text("#resume-dialog");
    for words in
        ["Catch up", "200 records", "keep the queue as catch-up errors", "discard the queue", "never delivered"]
    {
        assert!(explained.contains(words), "the dialog lacks {words:?}: {explained}");
    }
    browser.keys("#resume-dialog input[value=\"CatchUp\"]", &Key::Escape);
    browser.wait_until("the dialog to close", || !dialog_open(&browser, "resume-dialog"));
    assert!(matches!(served.map(0).state(), MapState::Paused { .. }), "cancelled: still paused");

    // Catch up against a destination that is down: the page shows the
    // catch-up, then Running once the destination is back.
    served.dest(0).set_unavailable(true);
    resume(&browser, "customers", "CatchUp");
    browser.wait_until("customers catching up", || state_of(&browser, "customers") == "Catching up");
    browser.wait_text(&cell("customers", 7), "the catch-up figures", |t| {
        t.contains("200 remaining")
            && t.contains("lanes busy")
            && t.contains("Stalled")
            && t.contains("destination is down")
    });
    served.dest(0).set_unavailable(false);
    browser.wait_until("customers running", || state_of(&browser, "customers") == "Running");
    assert!(matches!(served.map(0).state(), MapState::Running));
    assert_eq!(served.dest(0).delivered().len(), 200, "every queued record was delivered");

    // From the keyboard: the dialog opens on the first mode; the arrow
    // picks the next one and Enter confirms.
    browser.keys(&action("sales-orders", "resume"), &Key::Enter);
    browser.wait_until("the resume dialog", || dialog_open(&browser, "resume-dialog"));
    browser.keys("#resume-dialog input[value=\"CatchUp\"]", &Key::Down);
    browser.keys("#resume-dialog input[value=\"SkipToLivePreserve\"]", &Key::Enter);
    browser.wait_until("sales-orders live", || state_of(&browser, "sales-orders") == "Running");
    browser.wait_until("the preserved queue", || figure(&browser, "sales-orders", 8) == 50);
    assert_eq!(served.map(1).stats().error_records, 50);

    resume(&browser, "vendors", "SkipToLiveDiscard");
    browser.wait_until("vendors live", || state_of(&browser, "vendors") == "Running");
    browser.wait_until("an empty queue", || figure(&browser, "vendors", 4) == 0);
    assert_eq!(figure(&browser, "vendors", 8), 0);
    assert_eq!((served.map(2).stats().error_records, served.dest(2).delivered().len()), (0, 0), "discarded");
    browser.assert_console_clean();
    drop(browser);
    served.close();
}

#[test]
fn pause_stops_a_catch_up_and_skip_to_live_offers_to_keep_the_rest() {
    let served = Served::start(&["customers", "vendors"]);
    for index in [0, 1] {
        served.queue(index, 100, 10);
        served.dest(index).set_unavailable(true);
        served.map(index).resume(ResumeMode::CatchUp).expect("catch up");
    }
    let Some(browser) = served.browser() else { return };
    browser.wait_until("customers catching up", || state_of(&browser, "customers") == "Catching up");

    // Pause during a catch-up: back to Paused, the rest still queued (R5).
    browser.click(&action("customers", "pause"));
    browser.wait_until("customers paused", || state_of(&browser, "customers") == "Paused");
    assert_eq!(served.map(0).stats().queued_records, 100);
    served.map(0).resume(ResumeMode::CatchUp).expect("catch up again");
    browser.wait_until("customers catching up again", || state_of(&browser, "customers") == "Catching up");

    browser.click(&action("customers", "skip"));
    browser.wait_until("the skip dialog", || dialog_open(&browser, "skip-dialog"));
    assert!(browser.text("#skip-dialog").contains("Keep them as catch-up errors"));
    browser.click("#skip-confirm");
    browser.wait_until("customers live", || state_of(&browser, "customers") == "Running");
    let kept = served.map(0).stats().error_records;
    assert_eq!(kept, 100, "the records not replayed were kept (preserve is the default)");
    browser.wait_until("the kept records", || figure(&browser, "customers", 8) == kept);

    browser.click(&action("vendors", "skip"));
    browser.click("#skip-dialog input[value=\"false\"]");
    browser.click("#skip-confirm");
    browser.wait_until("vendors live", || state_of(&browser, "vendors") == "Running");
    let stats = served.map(1).stats();
    assert_eq!((stats.queued_records, stats.error_records), (0, 0), "the rest was discarded");
    browser.assert_console_clean();
    drop(browser);
    for index in [0, 1] {
        served.dest(index).set_unavailable(false);
    }
    served.close();
}
