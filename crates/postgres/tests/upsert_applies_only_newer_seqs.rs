//! R18, R21: a record is applied only where its seq is greater than the
//! row's and than the key's tombstone, so repeated and late deliveries never
//! overwrite a newer version, and a delete is not undone by an older upsert.

mod common;

use common::{customer, delete, rejected, upsert, Customers};
use pauselog::Destination;
use pauselog_postgres::testing;

#[test]
fn a_newer_seq_overwrites_and_an_older_or_equal_one_changes_nothing() {
    let Some(server) = testing::server_for("a_newer_seq_overwrites_and_an_older_or_equal_one_changes_nothing") else {
        return;
    };
    let customers = Customers::create(&server.url(), "newer_seq");
    let dest = customers.destination(&server.url());
    let results = dest.deliver_batch(&[upsert(10, "a", &customer("a10", 1)), upsert(11, "b", &customer("b11", 1))]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // A repeated delivery, an older one and a newer one, in one batch.
    let results = dest.deliver_batch(&[
        upsert(10, "a", &customer("a10-again", 2)),
        upsert(9, "b", &customer("b9", 2)),
        upsert(12, "c", &customer("c12", 3)),
    ]);
    assert!(results.iter().all(Result::is_ok), "stale records are accepted as already superseded: {results:?}");
    dest.deliver(&upsert(13, "a", &customer("a13", 4))).expect("newer single record");
    let rows = customers.rows();
    assert_eq!(rows["a"], (13, "a13".into(), 4));
    assert_eq!(rows["b"], (11, "b11".into(), 1));
    assert_eq!(rows["c"], (12, "c12".into(), 3));
}

#[test]
fn a_delete_leaves_a_tombstone_that_an_older_upsert_cannot_pass() {
    let Some(server) = testing::server_for("a_delete_leaves_a_tombstone_that_an_older_upsert_cannot_pass") else {
        return;
    };
    let customers = Customers::create(&server.url(), "tombstone");
    let dest = customers.destination(&server.url());
    dest.deliver(&upsert(1, "a", &customer("a1", 1))).expect("create");
    dest.deliver(&delete(5, "a")).expect("delete");
    assert!(!customers.rows().contains_key("a"), "the delete removed the row");
    // Redelivered after a crash (R18) or by a retry: older than the delete.
    dest.deliver(&upsert(3, "a", &customer("a3", 1))).expect("a late upsert is accepted");
    dest.deliver(&delete(2, "a")).expect("a late delete is accepted");
    assert!(!customers.rows().contains_key("a"), "an older upsert did not bring the row back");
    dest.deliver(&upsert(6, "a", &customer("a6", 1))).expect("a newer upsert");
    assert_eq!(customers.rows()["a"], (6, "a6".into(), 1), "a newer upsert creates the row again");
    // A delete of a key that never had a row still blocks older upserts.
    dest.deliver(&delete(8, "z")).expect("delete of an absent key");
    dest.deliver(&upsert(7, "z", &customer("z7", 1))).expect("older upsert");
    assert!(!customers.rows().contains_key("z"));
}

#[test]
fn a_batch_with_several_records_of_one_key_ends_at_the_newest() {
    let Some(server) = testing::server_for("a_batch_with_several_records_of_one_key_ends_at_the_newest") else {
        return;
    };
    let customers = Customers::create(&server.url(), "same_key");
    let dest = customers.destination(&server.url());
    // BestEffort ordering can put two records of one key in a batch.
    let results = dest.deliver_batch(&[
        upsert(1, "a", &customer("a1", 1)),
        upsert(2, "a", &customer("a2", 2)),
        delete(3, "b"),
        upsert(4, "b", &customer("b4", 4)),
        upsert(5, "c", &customer("c5", 5)),
        delete(6, "c"),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let rows = customers.rows();
    assert_eq!(rows.get("a"), Some(&(2, "a2".into(), 2)));
    assert_eq!(rows.get("b"), Some(&(4, "b4".into(), 4)));
    assert_eq!(rows.get("c"), None);
    // The same with a bad row in the batch: row by row, in order.
    let results = dest.deliver_batch(&[
        upsert(7, "a", &customer("a7", 7)),
        upsert(8, "a", &customer("a8", -1)),
        upsert(9, "d", &customer("d9", 9)),
    ]);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(rejected(&results[1]).contains("check constraint"), "{results:?}");
    assert_eq!(customers.rows()["a"], (7, "a7".into(), 7), "the earlier record of the key is applied");
}

#[test]
fn a_stale_record_that_breaks_a_constraint_is_accepted_as_superseded() {
    let Some(server) = testing::server_for("a_stale_record_that_breaks_a_constraint_is_accepted_as_superseded") else {
        return;
    };
    let customers = Customers::create(&server.url(), "stale_bad");
    let dest = customers.destination(&server.url());
    dest.deliver(&upsert(10, "a", &customer("a10", 1))).expect("create");
    // Retried with `retry_errors_forced` after a newer version was applied:
    // older, so it is not applied, and so not checked either.
    dest.deliver(&upsert(4, "a", &customer("a4", -5))).expect("an older bad record changes nothing");
    assert_eq!(customers.rows()["a"], (10, "a10".into(), 1));
}
