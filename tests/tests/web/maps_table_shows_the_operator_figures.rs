//! R9 on the page: the maps table names why a map is paused (for a
//! maintenance window, which window), the cap that blocks it, and what is
//! left before each cap.

use std::time::Duration;

use pauselog::{Error, Limit, MapConfig, PauseRule};
use pauselog_tests::epoch;

use super::*;

#[test]
fn window_pause_blocking_cap_and_what_is_left() {
    let mut served = Served::start(&["customers"]);
    let window = PauseRule::Window {
        start: epoch() - Duration::from_secs(3600),
        end: epoch() + Duration::from_secs(7200),
        resume: None,
    };
    served.add_map("invoices", MapConfig { rules: vec![window], ..MapConfig::default() });
    served.add_map("vendors", MapConfig { max_queue_bytes: 4096, ..MapConfig::default() });
    served.engine.tick();
    served.map(2).pause().expect("pause");
    let blocked = loop {
        match served.map(2).submit(record(0, 1)) {
            Ok(_) => continue,
            Err(error) => break error,
        }
    };
    assert!(matches!(blocked, Error::Blocked { limit: Limit::Size, .. }), "{blocked}");
    let Some(browser) = served.browser() else { return };

    let paused = browser.wait_text(&cell("invoices", 3), "the window", |t| t.contains("Maintenance window"));
    assert!(paused.contains("2025-12-31") || paused.contains("2026-01-01"), "the window's times: {paused}");
    assert_eq!(state_of(&browser, "invoices"), "Paused");
    assert!(browser.text(&cell("invoices", 6)).contains("1 d 0 h of pause"), "{}", browser.text(&cell("invoices", 6)));

    assert_eq!(browser.text(&format!("{} .badge.blocked", cell("vendors", 2))), "Blocked: size cap");
    let left = browser.text(&cell("vendors", 6));
    assert!(left.contains(" B of queue") && !left.contains("GiB"), "{left}");
    let running = browser.text(&cell("customers", 6));
    assert!(running.contains("1.00 GiB of queue") && !running.contains("of pause"), "{running}");
    browser.assert_console_clean();
    drop(browser);
    served.close();
}
