//! Shared helpers of the destination's tests: a schema of the test's own
//! with a `customers` table, records, and reading the table back.
#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::time::SystemTime;

use pauselog::{DeliveryError, Op, QueuedRecord};
use pauselog_postgres::testing::TestSchema;
use pauselog_postgres::PgDestination;

/// The test table: a CHECK, a NOT NULL, a foreign key and a unique
/// constraint besides the key. `{t}` is the qualified table name, `{r}` the
/// regions table's.
pub const CUSTOMERS: &str = "
CREATE TABLE {r} (code text PRIMARY KEY);
INSERT INTO {r} VALUES ('EMEA');
CREATE TABLE {t} (
    key text PRIMARY KEY,
    seq bigint NOT NULL,
    name text NOT NULL,
    credit_limit bigint NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    region text REFERENCES {r} (code),
    email text UNIQUE
);";

/// A schema of the test's own holding `customers` and `regions`.
pub struct Customers {
    pub schema: TestSchema,
    pub table: String,
    pub regions: String,
}

impl Customers {
    /// Creates the tables in a fresh schema on the server at `url`.
    pub fn create(url: &str, test: &str) -> Customers {
        let schema = TestSchema::create(url, test).expect("test schema");
        let (table, regions) = (schema.table("customers"), schema.table("regions"));
        let ddl = CUSTOMERS.replace("{t}", &table).replace("{r}", &regions);
        schema.client().expect("client").batch_execute(&ddl).expect("create tables");
        Customers { schema, table, regions }
    }

    /// A destination writing into the table.
    pub fn destination(&self, url: &str) -> PgDestination {
        PgDestination::builder(url, &self.table).build().expect("destination config")
    }

    /// Every row: key → (seq, name, credit_limit).
    pub fn rows(&self) -> BTreeMap<String, (i64, String, i64)> {
        let mut client = self.schema.client().expect("client");
        let sql = format!("SELECT key, seq, name, credit_limit FROM {}", self.table);
        client
            .query(&sql, &[])
            .expect("read rows")
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
            .collect()
    }

    /// Runs `sql` (with `{t}` for the table) on a new connection.
    pub fn execute(&self, sql: &str) {
        let sql = sql.replace("{t}", &self.table).replace("{r}", &self.regions);
        self.schema.client().expect("client").batch_execute(&sql).expect("statement");
    }
}

/// An upsert of `key` at `seq` with a JSON payload.
pub fn upsert(seq: u64, key: &str, json: &str) -> QueuedRecord {
    QueuedRecord {
        seq,
        key: key.into(),
        op: Op::Update,
        payload: json.as_bytes().to_vec(),
        queued_at: SystemTime::now(),
    }
}

/// A delete of `key` at `seq`.
pub fn delete(seq: u64, key: &str) -> QueuedRecord {
    QueuedRecord { seq, key: key.into(), op: Op::Delete, payload: Vec::new(), queued_at: SystemTime::now() }
}

/// A valid customer payload.
pub fn customer(name: &str, credit_limit: i64) -> String {
    format!(r#"{{"name": "{name}", "credit_limit": {credit_limit}, "region": "EMEA"}}"#)
}

/// The text of a `Rejected`, or a panic naming what came instead.
pub fn rejected(result: &Result<(), DeliveryError>) -> &str {
    match result {
        Err(DeliveryError::Rejected(reason)) => reason,
        other => panic!("expected Rejected, got {other:?}"),
    }
}

/// The text of an `Unavailable`, or a panic naming what came instead.
pub fn unavailable(result: &Result<(), DeliveryError>) -> &str {
    match result {
        Err(DeliveryError::Unavailable(reason)) => reason,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
