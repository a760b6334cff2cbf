//! R22: catch-up lanes call `deliver_batch` from several threads at once;
//! each call runs on a connection of its own and every batch is applied.

mod common;

use std::sync::Arc;

use common::{customer, upsert, Customers};
use pauselog::{Destination, QueuedRecord};
use pauselog_postgres::{testing, PgDestination};

const LANE_COUNT: u64 = 8;
const BATCHES_PER_LANE: u64 = 20;
const RECORDS_PER_BATCH: u64 = 100;

#[test]
fn batches_from_eight_threads_at_once_are_all_applied() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<PgDestination>();
    let Some(server) = testing::server_for("batches_from_eight_threads_at_once_are_all_applied") else { return };
    let customers = Customers::create(&server.url(), "lanes");
    let dest: Arc<dyn Destination> = Arc::new(customers.destination(&server.url()));
    std::thread::scope(|scope| {
        for lane in 0..LANE_COUNT {
            let dest = dest.clone();
            scope.spawn(move || {
                for round in 0..BATCHES_PER_LANE {
                    // Each lane owns its keys; every round rewrites them with a newer seq.
                    let batch: Vec<QueuedRecord> = (0..RECORDS_PER_BATCH)
                        .map(|n| {
                            let seq = 1 + round * LANE_COUNT * RECORDS_PER_BATCH + lane * RECORDS_PER_BATCH + n;
                            upsert(seq, &format!("lane{lane}-{n}"), &customer(&format!("r{round}"), seq as i64))
                        })
                        .collect();
                    let results = dest.deliver_batch(&batch);
                    assert!(results.iter().all(Result::is_ok), "lane {lane} round {round}: {results:?}");
                }
            });
        }
    });
    let rows = customers.rows();
    assert_eq!(rows.len() as u64, LANE_COUNT * RECORDS_PER_BATCH);
    let last = format!("r{}", BATCHES_PER_LANE - 1);
    assert!(rows.values().all(|(_, name, _)| *name == last), "every key holds its last round");
}
