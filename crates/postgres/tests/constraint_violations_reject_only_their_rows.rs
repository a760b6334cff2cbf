//! R15: a row that breaks a constraint or holds bad data is `Rejected` with
//! the server's message, and every other row of its batch is applied, in the
//! same call.

mod common;

use common::{customer, rejected, upsert, Customers};
use pauselog::{Destination, Op, QueuedRecord};
use pauselog_postgres::testing;

#[test]
fn each_bad_row_is_rejected_with_the_servers_message_and_the_rest_is_applied() {
    let Some(server) = testing::server_for("each_bad_row_is_rejected_with_the_servers_message_and_the_rest_is_applied")
    else {
        return;
    };
    let customers = Customers::create(&server.url(), "bad_rows");
    customers.execute(r#"INSERT INTO {t} (key, seq, name, email) VALUES ('taken', 1, 'taken', 'x@example.com')"#);
    let dest = customers.destination(&server.url());
    let not_utf8 = QueuedRecord { payload: vec![0xff, 0xfe], ..upsert(9, "not-utf8", "") };
    let batch = [
        upsert(1, "ok-1", &customer("ok-1", 10)),
        upsert(2, "check", &customer("check", -1)),
        upsert(3, "not-null", r#"{"credit_limit": 1}"#),
        upsert(4, "foreign-key", r#"{"name": "fk", "credit_limit": 1, "region": "APAC"}"#),
        upsert(5, "unique", r#"{"name": "u", "credit_limit": 1, "email": "x@example.com"}"#),
        upsert(6, "not-json", "credit_limit=1"),
        upsert(7, "not-an-object", "[1, 2]"),
        upsert(8, "nul", "{\"name\": \"a\u{0}b\"}"),
        not_utf8,
        upsert(10, "bad-type", r#"{"name": "t", "credit_limit": "lots"}"#),
        upsert(11, "ok-2", &customer("ok-2", 20)),
    ];
    let results = dest.deliver_batch(&batch);
    assert_eq!(results.len(), batch.len(), "one result per record");
    let expect = [
        ("check", "violates check constraint \"customers_credit_limit_check\" (SQLSTATE 23514)"),
        ("not-null", "null value in column \"name\""),
        ("foreign-key", "violates foreign key constraint \"customers_region_fkey\" (SQLSTATE 23503)"),
        ("unique", "duplicate key value violates unique constraint \"customers_email_key\" (SQLSTATE 23505)"),
        ("not-json", "invalid input syntax for type json (SQLSTATE 22P02)"),
        ("not-an-object", "SQLSTATE 22023"),
        ("nul", "NUL character"),
        ("not-utf8", "not UTF-8 JSON"),
        ("bad-type", "invalid input syntax for type bigint"),
    ];
    for (record, result) in batch.iter().zip(&results) {
        match expect.iter().find(|(key, _)| *key == record.key) {
            Some((key, message)) => {
                let reason = rejected(result);
                assert!(reason.contains(message), "{key}: {reason:?} does not say {message:?}");
            }
            None => assert!(result.is_ok(), "{}: {result:?}", record.key),
        }
    }
    let rows = customers.rows();
    let keys: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ok-1", "ok-2", "taken"], "only the good rows were applied");
    assert_eq!(rows["ok-2"], (11, "ok-2".into(), 20));
}

#[test]
fn a_clean_batch_is_applied_whole_and_deletes_need_no_payload() {
    let Some(server) = testing::server_for("a_clean_batch_is_applied_whole_and_deletes_need_no_payload") else {
        return;
    };
    let customers = Customers::create(&server.url(), "clean");
    let dest = customers.destination(&server.url());
    let batch: Vec<QueuedRecord> = (1..=1000).map(|n| upsert(n, &format!("k{n}"), &customer("c", n as i64))).collect();
    assert!(dest.deliver_batch(&batch).iter().all(Result::is_ok));
    let deletes: Vec<QueuedRecord> = (1..=500)
        .map(|n| QueuedRecord {
            op: Op::Delete,
            payload: b"\xff not json".to_vec(),
            ..upsert(1000 + n, &format!("k{n}"), "")
        })
        .collect();
    assert!(dest.deliver_batch(&deletes).iter().all(Result::is_ok));
    assert_eq!(customers.rows().len(), 500);
}

#[test]
fn bad_rows_scattered_through_a_large_batch_are_found_and_only_they_are_rejected() {
    let Some(server) =
        testing::server_for("bad_rows_scattered_through_a_large_batch_are_found_and_only_they_are_rejected")
    else {
        return;
    };
    let customers = Customers::create(&server.url(), "scattered");
    let dest = customers.destination(&server.url());
    let bad = |n: u64| n % 97 == 5 || n == 1 || n == 1024;
    let batch: Vec<QueuedRecord> =
        (1..=1024).map(|n| upsert(n, &format!("k{n}"), &customer("c", if bad(n) { -1 } else { n as i64 }))).collect();
    let results = dest.deliver_batch(&batch);
    for (n, result) in (1..=1024).zip(&results) {
        if bad(n) {
            assert!(rejected(result).contains("customers_credit_limit_check"), "k{n}: {result:?}");
        } else {
            assert!(result.is_ok(), "k{n}: {result:?}");
        }
    }
    let rows = customers.rows();
    assert_eq!(rows.len() as u64, (1..=1024).filter(|&n| !bad(n)).count() as u64);
    assert!(rows.values().all(|(seq, _, credit_limit)| seq == credit_limit), "each row is its own record");
}
