//! The destination: the service's code that writes records into the
//! destination app.

use crate::QueuedRecord;

/// Why the destination did not take a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// A permanent, record-level failure (e.g. a business validation). During
    /// catch-up the record moves to the catch-up errors.
    Rejected(String),
    /// A transient failure (the app is down or throttling). Retried with
    /// capped exponential backoff; nothing moves to the errors list.
    Unavailable(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Rejected(reason) => write!(f, "rejected: {reason}"),
            DeliveryError::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Writes records into the destination app. Called from the submitting
/// thread (live sync) and from the engine's replay and retry threads.
///
/// Live deliveries carry `seq == 0`: only queued records get a sequence
/// number, and a live record is never replayed, so it needs no dedupe key.
pub trait Destination: Send + Sync + 'static {
    /// Delivers one record.
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError>;

    /// Delivers a batch in order; one result per record. A batch never holds
    /// two records with the same integration key under `KeyOrdering::Strict`.
    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        batch.iter().map(|record| self.deliver(record)).collect()
    }
}
