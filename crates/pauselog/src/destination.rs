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
/// thread (live sync and pass-through), from the replay's lane threads and
/// from retry jobs: possibly from several threads at once (one call per
/// lane, R22), but never with two calls holding the same integration key at
/// the same time.
///
/// # Versions: last writer wins (R21)
///
/// Every record carries a `seq` from one per-map sequence that strictly
/// increases in submit order and is never reused, across crashes too, live
/// or queued. Delivery is at least once (R18): after a crash a record may
/// come again, and a retry may bring an old record after a newer one was
/// applied. A destination that keeps, per key, the `seq` it last applied
/// and applies a record only when its `seq` is greater gets the source's
/// last write per key whatever the order of arrival. In SQL:
///
/// ```sql
/// INSERT INTO customers AS t (key, seq, body) VALUES ($1, $2, $3)
/// ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, body = EXCLUDED.body
/// WHERE t.seq < EXCLUDED.seq;
/// ```
///
/// A delete is applied the same way, as a tombstone that keeps its `seq`
/// (so that an older upsert arriving later cannot bring the row back).
///
/// Answer `Rejected` for a permanent, record-level failure (a business
/// validation, a constraint), `Unavailable` for a transient one (the app
/// is down, a timeout, throttling): the engine retries those with backoff
/// and never moves them to the catch-up errors.
pub trait Destination: Send + Sync + 'static {
    /// Delivers one record.
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError>;

    /// Delivers a batch; one result per record, in the batch's order. The
    /// records are in seq order; under `KeyOrdering::Strict` a batch never
    /// holds two records with the same integration key, so the destination
    /// may apply them in any order. A wrong number of results reads as
    /// `Unavailable` for the whole batch. Every result counts: accepted
    /// records are not sent again, `Unavailable` ones are (after the
    /// backoff), unless a newer record of the same key in this batch was
    /// accepted; that older one becomes a `Superseded` catch-up error.
    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        batch.iter().map(|record| self.deliver(record)).collect()
    }
}
