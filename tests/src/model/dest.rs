//! The model's destination: it records every call with its answer and can be
//! told to be down or to reject keys.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pauselog::{DeliveryError, Destination, QueuedRecord};

use super::{reject_text, DOWN_TEXT};

/// One call the destination received, with its answer.
#[derive(Debug, Clone)]
pub struct Call {
    /// The record as delivered.
    pub record: QueuedRecord,
    /// What the destination answered.
    pub answer: Result<(), DeliveryError>,
}

/// The model's destination: records every call with its answer; can be
/// told to be down or to reject keys.
#[derive(Debug, Default)]
pub struct ModelDest {
    calls: Mutex<Vec<Call>>,
    rejected: Mutex<HashSet<String>>,
    down: AtomicBool,
}

impl ModelDest {
    pub(super) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub(super) fn set_rejected(&self, key: &str, rejected: bool) {
        let mut keys = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        if rejected {
            keys.insert(key.to_owned());
        } else {
            keys.remove(key);
        }
    }

    pub(super) fn calls_from(&self, from: usize) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())[from..].to_vec()
    }
}

impl Destination for ModelDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        let answer = if self.down.load(Ordering::SeqCst) {
            Err(DeliveryError::Unavailable(DOWN_TEXT.into()))
        } else if self.rejected.lock().unwrap_or_else(|p| p.into_inner()).contains(&record.key) {
            Err(DeliveryError::Rejected(reject_text(&record.key)))
        } else {
            Ok(())
        };
        let call = Call { record: record.clone(), answer: answer.clone() };
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
        answer
    }
}
