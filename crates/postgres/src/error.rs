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
    #[error("PostgreSQL at {server}: {what}: {source}")]
    Server {
        /// Host and port (never the password).
        server: String,
        /// What the destination was doing.
        what: &'static str,
        /// The client's error, with the server's message if it sent one.
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
