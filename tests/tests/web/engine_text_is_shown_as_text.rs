//! Issue 17 (security): keys, payloads and error texts come from the
//! service's data and are shown as text: markup in them is neither parsed
//! nor run.

use pauselog::{Op, Record, ResumeMode};
use pauselog_tests::wait_running;

use super::*;

const KEY: &str = "<img src=x onerror=\"window.pwned=1\">";
const PAYLOAD: &str = "<script>window.pwned=2</script>&amp;";

#[test]
fn markup_in_keys_payloads_and_errors_stays_text() {
    let served = Served::start(&["customers"]);
    let map = served.map(0);
    // A catch-up error whose key and error text carry markup (the
    // destination's answer names the key), then a queued record with
    // markup in its key and payload.
    served.dest(0).reject("<b>rejected</b>");
    map.pause().expect("pause");
    map.submit(Record::new("<b>rejected</b>", Op::Update, b"x".to_vec())).expect("queued");
    map.resume(ResumeMode::CatchUp).expect("catch up");
    wait_running(map);
    map.pause().expect("pause");
    map.submit(Record::new(KEY, Op::Create, PAYLOAD.as_bytes().to_vec())).expect("queued");
    let Some(browser) = served.browser() else { return };

    browser.click(&action("customers", "open"));
    browser.wait_text("#queued tbody td.key", "the key as text", |t| t == KEY);
    browser.click("#queued tbody tr:first-child button[data-action=\"text\"]");
    browser.wait_text("#payload-body", "the payload as text", |t| t == PAYLOAD);
    browser.click("#payload-dialog button[value=\"close\"]");
    browser.click("#tab-errors");
    browser.wait_text("#errors tbody td.error-text", "the error as text", |t| {
        t == "validation failed for <b>rejected</b>"
    });
    assert_eq!(browser.text("#errors tbody td.key"), "<b>rejected</b>");

    assert_eq!(browser.count("main img, main script, main b, dialog img, dialog script"), 0, "no markup was parsed");
    assert_eq!(browser.eval("return typeof window.pwned"), "undefined", "nothing ran");
    browser.assert_console_clean();
    drop(browser);
    served.close();
}
