//! [`PgDestination`]: a pauselog destination that writes into one table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pauselog::{DeliveryError, Destination, Op, QueuedRecord};
use postgres::{Client, NoTls, Statement};

use crate::error::{error_text, PgError};
use crate::sql::{self, Stale, TableShape};

/// Default of [`PgDestinationBuilder::connect_timeout`].
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default of [`PgDestinationBuilder::statement_timeout`].
pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Default of [`PgDestinationBuilder::idle_connections_max`].
pub const IDLE_CONNECTIONS_MAX_DEFAULT: usize = 16;

/// Configures a [`PgDestination`]: `PgDestination::builder(url, table)`.
#[derive(Debug, Clone)]
#[must_use]
pub struct PgDestinationBuilder {
    url: String,
    table: String,
    key_column: String,
    seq_column: String,
    connect_timeout: Duration,
    statement_timeout: Duration,
    idle_connections_max: usize,
}

impl PgDestinationBuilder {
    /// The column holding the integration key (a text type, with a unique
    /// constraint or primary key of its own). Default: `key`.
    pub fn key_column(mut self, column: impl Into<String>) -> Self {
        self.key_column = column.into();
        self
    }

    /// The column holding the seq of the record the row was last written
    /// from (`bigint`). Default: `seq`.
    pub fn seq_column(mut self, column: impl Into<String>) -> Self {
        self.seq_column = column.into();
        self
    }

    /// Longest wait for a new connection, unless the URL sets
    /// `connect_timeout`. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest a batch may run on the server (PostgreSQL's
    /// `statement_timeout`, which counts lock waits too); a batch that runs
    /// out is `Unavailable` and retried. Default: 30 s.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Most idle connections kept for reuse. Calls in flight at once (live
    /// submitters, one per catch-up lane, retry jobs) each hold their own
    /// connection; past this many, a returned connection is closed.
    /// Default: 16.
    pub fn idle_connections_max(mut self, count: usize) -> Self {
        self.idle_connections_max = count;
        self
    }

    /// Checks the configuration; touches no server (the engine can open
    /// its map, and queue, while the server is down). The first delivery
    /// connects, installs the helper schema if missing and reads the table's
    /// columns; [`PgDestination::check`] does that at once.
    pub fn build(self) -> Result<PgDestination, PgError> {
        let mut config: postgres::Config = self.url.parse().map_err(PgError::Config)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("pauselog");
        }
        Ok(PgDestination {
            server: server_text(&config),
            config,
            table: self.table,
            key_column: self.key_column,
            seq_column: self.seq_column,
            statement_timeout: self.statement_timeout,
            idle: Mutex::new(Vec::new()),
            idle_connections_max: self.idle_connections_max,
            installed: AtomicBool::new(false),
        })
    }
}

/// A pauselog [`Destination`] that upserts records into one PostgreSQL
/// table, last writer (highest seq) wins.
///
/// Each `deliver_batch` is one round trip and one transaction; see the
/// crate docs for the table shape, the payload format and how errors map to
/// `Rejected` and `Unavailable`. `Send + Sync`: calls from several threads
/// at once (catch-up lanes, live submitters) each use their own connection.
pub struct PgDestination {
    config: postgres::Config,
    /// `host:port` for messages (never the password).
    server: String,
    table: String,
    key_column: String,
    seq_column: String,
    statement_timeout: Duration,
    /// Connections not in use, ready with their prepared statement.
    idle: Mutex<Vec<Connection>>,
    idle_connections_max: usize,
    /// The helper schema was found or installed by an earlier connection.
    installed: AtomicBool,
}

impl std::fmt::Debug for PgDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgDestination")
            .field("server", &self.server)
            .field("table", &self.table)
            .field("key_column", &self.key_column)
            .field("seq_column", &self.seq_column)
            .finish_non_exhaustive()
    }
}

/// One session, ready to apply batches to the table.
struct Connection {
    client: Client,
    /// `SELECT ... FROM pauselog.apply_batch_v1(...)`, prepared.
    apply: Statement,
    /// The table's statements for a whole batch and for one record
    /// ([`sql::batch_statement`]).
    whole_sql: String,
    one_sql: String,
}

/// One batch in the column-wise form the server function takes. Index `i`
/// of every vector is record `positions[i]` of the delivered batch.
#[derive(Default)]
struct Columns<'a> {
    positions: Vec<usize>,
    keys: Vec<&'a str>,
    seqs: Vec<i64>,
    deletes: Vec<bool>,
    payloads: Vec<Option<&'a str>>,
}

impl PgDestination {
    /// A builder for a destination writing into `table` (optionally
    /// schema-qualified, as SQL would resolve it) of the database at `url`
    /// (`postgres://user:password@host:port/db` or a libpq key=value string).
    pub fn builder(url: impl Into<String>, table: impl Into<String>) -> PgDestinationBuilder {
        PgDestinationBuilder {
            url: url.into(),
            table: table.into(),
            key_column: "key".into(),
            seq_column: "seq".into(),
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT_DEFAULT,
            idle_connections_max: IDLE_CONNECTIONS_MAX_DEFAULT,
        }
    }

    /// Connects now, installs the helper schema if missing and checks the
    /// table's shape: what the first delivery would do, with the error
    /// typed. The connection is kept for the next delivery.
    pub fn check(&self) -> Result<(), PgError> {
        let connection = self.connect()?;
        self.give_back(connection);
        Ok(())
    }

    /// Applies `batch`: one result per record, in order.
    fn apply(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        let mut results: Vec<Result<(), DeliveryError>> = vec![Ok(()); batch.len()];
        let mut columns = Columns::default();
        for (position, record) in batch.iter().enumerate() {
            match columns_of(record) {
                Ok((seq, payload)) => {
                    columns.positions.push(position);
                    columns.keys.push(&record.key);
                    columns.seqs.push(seq);
                    columns.deletes.push(record.op == Op::Delete);
                    columns.payloads.push(payload);
                }
                Err(reason) => results[position] = Err(DeliveryError::Rejected(reason)),
            }
        }
        if columns.positions.is_empty() {
            return results;
        }
        match self.apply_columns(&columns) {
            Ok(rejected) => {
                for (index, reason) in rejected {
                    results[columns.positions[index]] = Err(DeliveryError::Rejected(reason));
                }
            }
            Err(reason) => {
                for &position in &columns.positions {
                    results[position] = Err(DeliveryError::Unavailable(reason.clone()));
                }
            }
        }
        results
    }

    /// Runs one batch on a connection. `Ok` holds the rows the server
    /// rejected (index into `columns`, its message); `Err` says why the
    /// whole batch was not applied.
    fn apply_columns(&self, columns: &Columns<'_>) -> Result<Vec<(usize, String)>, String> {
        let (mut connection, reused) = match self.take_idle() {
            Some(connection) => (connection, true),
            None => (self.connect().map_err(|e| e.to_string())?, false),
        };
        match run_batch(&mut connection, columns) {
            Ok(rejected) => {
                self.give_back(connection);
                Ok(rejected)
            }
            // A connection that sat idle may have been ended by a server
            // restart or a dropped socket: try once more on a fresh one.
            // Applying a batch twice changes nothing (upsert by seq).
            Err(error) if reused && (error.as_db_error().is_none() || connection.client.is_closed()) => {
                tracing::debug!(server = %self.server, "PostgreSQL destination: an idle connection had closed; reconnecting");
                let mut connection = self.connect().map_err(|e| e.to_string())?;
                let rejected = run_batch(&mut connection, columns).map_err(|e| self.batch_failed(&e))?;
                self.give_back(connection);
                Ok(rejected)
            }
            Err(error) => Err(self.batch_failed(&error)),
        }
    }

    /// The text of an `Unavailable` for a batch that failed as a whole. The
    /// connection it ran on is dropped, so the next one reads the table's
    /// shape afresh (a failure may come from a changed table). Logged at
    /// debug: the engine reports what it does about it (a pause by rule,
    /// a stalled replay's `last_error`).
    fn batch_failed(&self, error: &postgres::Error) -> String {
        let text = error_text(error);
        tracing::debug!(server = %self.server, table = %self.table, "PostgreSQL destination: a batch failed: {text}");
        format!("PostgreSQL at {}: {text}", self.server)
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(connection) = idle.pop() {
            if !connection.client.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.idle_connections_max {
            idle.push(connection);
        }
    }

    /// Opens a session: timeouts, the helper schema (once per destination),
    /// the table's shape, the prepared call.
    fn connect(&self) -> Result<Connection, PgError> {
        let failed = |what| move |source| PgError::server(&self.server, what, source);
        let mut client = self.config.connect(NoTls).map_err(failed("connecting"))?;
        let timeout_ms = self.statement_timeout.as_millis().to_string();
        client
            .execute("SELECT set_config('statement_timeout', $1, false)", &[&timeout_ms])
            .map_err(failed("setting statement_timeout"))?;
        if !self.installed.load(Ordering::Acquire) {
            install(&mut client).map_err(failed("installing the pauselog helper schema"))?;
            self.installed.store(true, Ordering::Release);
        }
        let row =
            client.query_one(sql::DESCRIBE_TABLE, &[&self.table]).map_err(failed("reading the table's columns"))?;
        let shape = TableShape { qualified: row.get(0), literal: row.get(1), columns: row.get(2) };
        for column in [&self.key_column, &self.seq_column] {
            if !shape.columns.contains(column) {
                return Err(PgError::MissingColumn { table: shape.qualified.clone(), column: column.clone() });
            }
        }
        let apply = client.prepare(&sql::apply_call()).map_err(failed("preparing the batch call"))?;
        let whole_sql = sql::batch_statement(&shape, &self.key_column, &self.seq_column, Stale::Guard);
        let one_sql = sql::batch_statement(&shape, &self.key_column, &self.seq_column, Stale::Skip);
        tracing::debug!(server = %self.server, table = %shape.qualified, "PostgreSQL destination: connected");
        Ok(Connection { client, apply, whole_sql, one_sql })
    }
}

impl Destination for PgDestination {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.apply(std::slice::from_ref(record)).pop().expect("one result per record")
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        self.apply(batch)
    }
}

/// Installs the helper schema unless its function is already there (a
/// role without CREATE on the database can use a schema an owner installed).
fn install(client: &mut Client) -> Result<(), postgres::Error> {
    let present: bool = client.query_one("SELECT to_regprocedure($1) IS NOT NULL", &[&sql::APPLY_SIGNATURE])?.get(0);
    if !present {
        let mut transaction = client.transaction()?;
        transaction.batch_execute(&sql::install_script())?;
        transaction.commit()?;
    }
    Ok(())
}

/// Sends one batch; returns the rejected rows (index, message).
fn run_batch(connection: &mut Connection, columns: &Columns<'_>) -> Result<Vec<(usize, String)>, postgres::Error> {
    let rows = connection.client.query(
        &connection.apply,
        &[
            &connection.whole_sql,
            &connection.one_sql,
            &columns.keys,
            &columns.seqs,
            &columns.deletes,
            &columns.payloads,
        ],
    )?;
    let mut rejected = Vec::with_capacity(rows.len());
    for row in rows {
        let index: i32 = row.get(0);
        let code: String = row.get(1);
        let message: String = row.get(2);
        let index = usize::try_from(index - 1).expect("the server numbers rows from 1");
        rejected.push((index, format!("{message} (SQLSTATE {code})")));
    }
    Ok(rejected)
}

/// The seq as a `bigint` and the payload as JSON text (`None` for a
/// delete), or why the record cannot be sent: PostgreSQL's text holds
/// no NUL character, and the payload must be UTF-8 JSON.
fn columns_of(record: &QueuedRecord) -> Result<(i64, Option<&str>), String> {
    let seq = i64::try_from(record.seq).map_err(|_| format!("seq {} does not fit a bigint", record.seq))?;
    if record.key.contains('\0') {
        return Err("the key holds a NUL character, which PostgreSQL text cannot store".into());
    }
    if record.op == Op::Delete {
        return Ok((seq, None));
    }
    let payload = std::str::from_utf8(&record.payload)
        .map_err(|e| format!("the payload is not UTF-8 JSON ({e}); the PostgreSQL destination takes a JSON object"))?;
    if payload.contains('\0') {
        return Err("the payload holds a NUL character, which PostgreSQL text cannot store".into());
    }
    Ok((seq, Some(payload)))
}

/// `host:port[,host:port]` of a config, for messages.
fn server_text(config: &postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    if hosts.is_empty() {
        "localhost:5432".into()
    } else {
        hosts.join(",")
    }
}
