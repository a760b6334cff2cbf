//! R1: while Running, `submit` delivers at once and returns the
//! destination's answer; nothing is queued.

use pauselog::{Error, MapConfig, Query, Submitted};
use pauselog_tests::*;

#[test]
fn running_map_delivers_live_and_queues_nothing() {
    let Fixture { map, dest, .. } = &Fixture::named("customers", MapConfig::default());
    assert_eq!(map.submit(rec("USMF|CUST-1", 1)).unwrap(), Submitted::Live);
    assert_eq!(dest.delivered_payloads(), ["payload-1"]);
    assert_eq!(map.queued(&Query::default()).unwrap().total, 0);
    assert_eq!(map.stats().queued_records, 0);
}

#[test]
fn running_map_returns_the_destinations_answer() {
    let Fixture { map, dest, .. } = &Fixture::named("customers", MapConfig::default());
    dest.reject("USMF|CUST-2");
    assert!(matches!(map.submit(rec("USMF|CUST-2", 1)), Err(Error::Rejected { .. })));
    dest.set_unavailable(true);
    assert!(matches!(map.submit(rec("USMF|CUST-3", 1)), Err(Error::Unavailable { .. })));
    assert_eq!(map.stats().queued_records, 0, "without a rule, a failed live write is not queued");
}
