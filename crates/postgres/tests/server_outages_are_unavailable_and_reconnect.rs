//! R14, R15: a stopped server, a timeout or a missing table make the whole
//! batch `Unavailable` (retried, never moved to the errors), and the same
//! destination reconnects by itself once the server is back.

mod common;

use std::time::{Duration, Instant};

use common::{customer, unavailable, upsert, Customers};
use pauselog::Destination;
use pauselog_postgres::{testing, PgDestination, PgError};

#[test]
fn a_stopped_server_is_unavailable_and_the_destination_reconnects_when_it_is_back() {
    let Some(cluster) =
        testing::own_cluster_for("a_stopped_server_is_unavailable_and_the_destination_reconnects_when_it_is_back")
    else {
        return;
    };
    let customers = Customers::create(&cluster.url(), "outage");
    let dest = customers.destination(&cluster.url());
    dest.deliver(&upsert(1, "a", &customer("a1", 1))).expect("server up");
    cluster.stop().expect("pg_ctl stop");
    // The idle connection was ended by the shutdown; new ones are refused.
    for seq in 2..=4 {
        let results =
            dest.deliver_batch(&[upsert(seq, "a", &customer("down", 1)), upsert(seq, "b", &customer("down", 1))]);
        for result in &results {
            let reason = unavailable(result);
            assert!(reason.contains(&format!("127.0.0.1:{}", cluster.port())), "names the server: {reason}");
        }
    }
    cluster.start_again().expect("pg_ctl start");
    dest.deliver(&upsert(5, "a", &customer("a5", 5))).expect("the same destination reconnects");
    assert_eq!(customers.rows()["a"], (5, "a5".into(), 5));
    assert!(!customers.rows().contains_key("b"), "nothing of the failed batches was applied");
}

#[test]
fn a_restart_between_two_batches_costs_no_failure() {
    let Some(cluster) = testing::own_cluster_for("a_restart_between_two_batches_costs_no_failure") else { return };
    let customers = Customers::create(&cluster.url(), "restart");
    let dest = customers.destination(&cluster.url());
    dest.deliver(&upsert(1, "a", &customer("a1", 1))).expect("server up");
    cluster.stop().expect("pg_ctl stop");
    cluster.start_again().expect("pg_ctl start");
    dest.deliver(&upsert(2, "a", &customer("a2", 2))).expect("a dead idle connection is replaced in the same call");
    assert_eq!(customers.rows()["a"], (2, "a2".into(), 2));
}

#[test]
fn a_batch_that_outlasts_the_statement_timeout_is_unavailable() {
    let Some(server) = testing::server_for("a_batch_that_outlasts_the_statement_timeout_is_unavailable") else {
        return;
    };
    let customers = Customers::create(&server.url(), "timeout");
    let dest = PgDestination::builder(server.url(), &customers.table)
        .statement_timeout(Duration::from_millis(300))
        .build()
        .expect("config");
    dest.check().expect("connects");
    // A migration holds the table's lock for its maintenance.
    let mut migration = customers.schema.client().expect("client");
    let mut transaction = migration.transaction().expect("begin");
    transaction.batch_execute(&format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", customers.table)).expect("lock");
    let started = Instant::now();
    let result = dest.deliver(&upsert(1, "a", &customer("a1", 1)));
    let reason = unavailable(&result);
    assert!(reason.contains("statement timeout") && reason.contains("57014"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the timeout: {:?}", started.elapsed());
    transaction.rollback().expect("end of maintenance");
    dest.deliver(&upsert(1, "a", &customer("a1", 1))).expect("applied once the lock is gone");
}

#[test]
fn a_missing_table_is_unavailable_with_the_servers_message_and_check_says_why() {
    let Some(server) =
        testing::server_for("a_missing_table_is_unavailable_with_the_servers_message_and_check_says_why")
    else {
        return;
    };
    let customers = Customers::create(&server.url(), "missing");
    let dest = PgDestination::builder(server.url(), customers.schema.table("nowhere")).build().expect("config");
    let reason = unavailable(&dest.deliver(&upsert(1, "a", "{}"))).to_owned();
    assert!(reason.contains("does not exist") && reason.contains("nowhere"), "{reason}");
    assert!(matches!(dest.check(), Err(PgError::Server { .. })));

    let no_seq = PgDestination::builder(server.url(), &customers.table).seq_column("version").build().expect("config");
    match no_seq.check() {
        Err(PgError::MissingColumn { column, .. }) => assert_eq!(column, "version"),
        other => panic!("expected MissingColumn, got {other:?}"),
    }
    assert!(matches!(PgDestination::builder("postgres://[bad", "t").build(), Err(PgError::Config(_))));
}
