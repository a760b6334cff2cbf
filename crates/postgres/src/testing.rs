//! Finding a PostgreSQL server for tests and benches, and what a missing one
//! means.
//!
//! A test asks [`server_for`] (any server will do) or [`own_cluster_for`]
//! (it will stop and start the server, so it needs one of its own):
//!
//! 1. `PAUSELOG_PG_URL` set: `server_for` uses that server (CI starts one).
//! 2. Else, or for `own_cluster_for`: a [`ThrowawayCluster`] when
//!    `initdb` and `pg_ctl` are installed.
//! 3. Else the test cannot run. Under `CI=true` that is a failure (the
//!    helper panics); elsewhere it prints `SKIPPED <test>: <why>` to stderr,
//!    past the test harness's capture, and the test returns early, so
//!    `cargo test --workspace` passes on a machine without PostgreSQL.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::{ClusterError, ThrowawayCluster};

/// Environment variable with the URL of a server the tests may use.
pub const URL_ENV: &str = "PAUSELOG_PG_URL";

/// A server for one test: a shared one or a cluster of its own.
#[derive(Debug)]
pub enum TestServer {
    /// The server of `PAUSELOG_PG_URL`.
    Shared(String),
    /// A throwaway cluster, stopped when this is dropped.
    Own(ThrowawayCluster),
}

impl TestServer {
    /// The server's URL.
    pub fn url(&self) -> String {
        match self {
            TestServer::Shared(url) => url.clone(),
            TestServer::Own(cluster) => cluster.url(),
        }
    }
}

/// A server for `test`: `PAUSELOG_PG_URL`, else a throwaway cluster; `None`
/// (after a `SKIPPED` line) when there is neither. Panics under `CI=true`
/// when there is neither.
pub fn server_for(test: &str) -> Option<TestServer> {
    if let Ok(url) = std::env::var(URL_ENV) {
        return Some(TestServer::Shared(url));
    }
    own_cluster_for(test).map(TestServer::Own)
}

/// A throwaway cluster for `test`, which may stop and start it; `None`
/// (after a `SKIPPED` line) when PostgreSQL's server programs are not
/// installed. Panics under `CI=true` when they are not, and whenever they
/// are but the cluster does not start.
pub fn own_cluster_for(test: &str) -> Option<ThrowawayCluster> {
    match ThrowawayCluster::start() {
        Ok(cluster) => Some(cluster),
        Err(error @ (ClusterError::NoBinaries | ClusterError::NoServerUser)) => missing(test, &error.to_string()),
        Err(error) => panic!("{test}: a throwaway PostgreSQL cluster did not start: {error}"),
    }
}

/// Whether a missing server is a failure here: under `CI=true`.
pub fn server_required() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

fn missing<T>(test: &str, why: &str) -> Option<T> {
    assert!(!server_required(), "{test}: CI=true needs a PostgreSQL server: {why}");
    let line = format!("SKIPPED {test}: no PostgreSQL server: set {URL_ENV} or install PostgreSQL ({why})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

/// A schema of its own for one test on a shared server, dropped (with its
/// tables and their tombstones) on drop. Tests on one server stay apart by
/// naming their tables [`TestSchema::table`].
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// Creates `<hint>_<pid>_<n>` on the server at `url`.
    pub fn create(url: &str, hint: &str) -> Result<TestSchema, postgres::Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("{hint}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        client.batch_execute(&format!("CREATE SCHEMA {}", crate::sql::ident(&name)))?;
        Ok(TestSchema { url: url.to_owned(), name })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `table` qualified by this schema, for SQL and for
    /// [`PgDestination::builder`](crate::PgDestination::builder).
    pub fn table(&self, table: &str) -> String {
        format!("{}.{}", crate::sql::ident(&self.name), crate::sql::ident(table))
    }

    /// A client on the schema's server.
    pub fn client(&self) -> Result<postgres::Client, postgres::Error> {
        postgres::Client::connect(&self.url, postgres::NoTls)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let Ok(mut client) = self.client() else { return };
        let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", crate::sql::ident(&self.name)));
        let _ = client.execute(
            "DELETE FROM pauselog.tombstones WHERE starts_with(table_name, format('%I.', $1::text))",
            &[&self.name],
        );
    }
}
