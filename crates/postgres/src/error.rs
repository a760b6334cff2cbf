//! Errors of setting up the destination.

/// Why the destination could not set up a connection to its table. During
/// delivery every one of these becomes `DeliveryError::Unavailable` (the
/// replay stalls and shows it; nothing moves to the catch-up errors), since
/// each is fixed on the server's side, after which delivery goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL does not parse as a libpq connection string or URL.
    #[error("invalid PostgreSQL connection string: {0}")]
    Config(#[source] postgres::Error),
    /// Connecting, or a statement of the setup, failed.
    #[error("PostgreSQL at {server}: {what}: {message}")]
    Server {
        /// Host and port (never the password).
        server: String,
        /// What the destination was doing.
        what: &'static str,
        /// The server's message and SQLSTATE, or the client's error.
        message: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The target table lacks the key or seq column.
    #[error(
        "table {table} has no column {column:?}: the destination needs a text key column with a unique \
         constraint and a bigint seq column (see the crate docs for the table shape)"
    )]
    MissingColumn {
        /// The table, schema-qualified.
        table: String,
        /// The missing column.
        column: String,
    },
}

impl PgError {
    pub(crate) fn server(server: &str, what: &'static str, source: postgres::Error) -> PgError {
        PgError::Server { server: server.to_owned(), what, message: error_text(&source), source }
    }
}

/// A client error as one line: the server's message and SQLSTATE if it sent
/// one (the client's own `Display` says only "db error"), else the client's
/// error, which names its cause (refused, reset, timed out).
pub(crate) fn error_text(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}
