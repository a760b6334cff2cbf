//! `pauselog-postgres`: a pauselog [`Destination`](pauselog::Destination)
//! that writes a table map into a PostgreSQL table.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pauselog::{Engine, MapConfig, Op, PauseRule, Record};
//! use pauselog_postgres::PgDestination;
//!
//! // CREATE TABLE customers (key text PRIMARY KEY, seq bigint NOT NULL,
//! //     name text NOT NULL, credit_limit bigint NOT NULL CHECK (credit_limit >= 0));
//! let dest = PgDestination::builder("postgres://app@db.internal/crm", "customers").build()?;
//! dest.check()?; // optional: connect now and check the table's shape
//! let engine = Engine::open("data")?;
//! let config = MapConfig {
//!     rules: vec![PauseRule::DestinationUnavailable { consecutive: 3 }],
//!     ..MapConfig::default()
//! };
//! let map = engine.table_map("customers", config, Arc::new(dest))?;
//! map.submit(Record::new("USMF|CUST-0042", Op::Update, br#"{"name": "Contoso", "credit_limit": 5000}"#.to_vec()))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The table
//!
//! One table per table map, with:
//! - a **key column** (`key` unless [`PgDestinationBuilder::key_column`]) of a
//!   text type, with a primary key or unique constraint of its own: the
//!   record's integration key;
//! - a **seq column** (`seq` unless [`PgDestinationBuilder::seq_column`]),
//!   `bigint`: the seq of the record the row was last written from;
//! - any other columns, with any constraints (CHECK, NOT NULL, foreign keys,
//!   unique). Generated columns and `GENERATED ALWAYS` identities are left
//!   to the server.
//!
//! A record's **payload is a JSON object** whose fields name the other
//! columns (`json_populate_record`): a `Create` or `Update` writes the whole
//! row, a column the object leaves out becomes NULL. A `Delete` removes the
//! row.
//!
//! # Last writer wins, under at-least-once delivery
//!
//! Every record carries a `seq` from one per-map increasing sequence (R21),
//! and the engine may deliver a record again after a crash (R18) or a retry.
//! So a record is applied only where its seq is greater than the row's, and
//! than the key's **tombstone**: a delete leaves the key's seq in
//! `pauselog.tombstones (table_name, key, seq)`, so an older upsert that
//! arrives late cannot bring the row back. Tombstones are kept (one small
//! row per deleted key): any older record of the key could still be
//! delivered by a retry of the catch-up errors.
//!
//! # One round trip per batch
//!
//! `deliver_batch` sends the whole batch to the server function
//! `pauselog.apply_batch_v1` (installed on first use, in the helper schema
//! `pauselog`; a role without CREATE on the database needs an owner to
//! connect once first). It applies the batch with one set-based upsert in
//! one transaction. Only if a row breaks a constraint does it redo the batch
//! in halves, each in a subtransaction, down to the bad rows, so the other
//! rows are applied and the bad ones reported — still in the same call.
//!
//! # Errors
//!
//! - A row that breaks a constraint or holds bad data (SQLSTATE classes 22
//!   and 23: CHECK, NOT NULL, foreign key, unique, invalid JSON) is
//!   `Rejected` with the server's message and SQLSTATE; so is a record the
//!   server cannot take at all (a NUL character, a payload that is not
//!   UTF-8). The engine moves it to the catch-up errors (R15).
//! - Anything else fails the whole batch as `Unavailable`: a refused or
//!   broken connection, a server shutting down, a timeout
//!   ([`PgDestinationBuilder::statement_timeout`], which also bounds lock
//!   waits), a missing table or privilege. The engine retries it with
//!   backoff (R15) and the health rule can pause the map on it (R14); the
//!   replay shows the message in `stats().last_error`.
//!
//! # Connections
//!
//! Each call in flight uses a connection of its own from a small pool of
//! idle ones, so catch-up lanes (R22) and live submitters run in parallel.
//! A connection that fails is dropped and the next call opens a new one,
//! so the destination reconnects by itself once the server is back; an idle
//! connection found dead is replaced within the same call.
//!
//! [`ThrowawayCluster`] and [`testing`] start and find servers for tests;
//! [`sample`] is the `customers` story of the demo and the end-to-end tests.
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

mod cluster;
mod destination;
mod error;
pub mod sample;
mod sql;
pub mod testing;

pub use cluster::{find_bin_dir, ClusterError, ThrowawayCluster, BIN_DIR_ENV};
pub use destination::{
    PgDestination, PgDestinationBuilder, CONNECT_TIMEOUT_DEFAULT, IDLE_CONNECTIONS_MAX_DEFAULT,
    STATEMENT_TIMEOUT_DEFAULT,
};
pub use error::PgError;
