//! The demo's simulated destination app: it takes a few microseconds per
//! record, can reject chosen integration keys, and keeps a ledger that checks
//! the engine's delivery promises as records arrive (R3, R18, R21): every
//! record, live or queued, carries a seq from one sequence, so per key the
//! seqs arrive strictly increasing and no seq is delivered twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use pauselog::{DeliveryError, Destination, QueuedRecord};

/// Violations kept verbatim; more are only counted.
const VIOLATIONS_KEPT_MAX: usize = 20;

/// The destination. Shared with the demo through an `Arc`.
#[derive(Debug)]
pub struct SimDestination {
    /// Simulated work per record.
    cost_per_record: Duration,
    rejected_keys: RwLock<HashSet<String>>,
    ledger: Mutex<Ledger>,
}

/// What the destination has seen.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Records accepted, live or queued.
    pub delivered: u64,
    /// Records answered with `Rejected`.
    pub rejected: u64,
    /// Seqs of the records accepted.
    pub delivered_seqs: HashSet<u64>,
    /// Per key, the last seq accepted.
    last_seq_by_key: HashMap<String, u64>,
    /// Broken promises, first few.
    pub violations: Vec<String>,
    /// Broken promises, all.
    pub violation_count: u64,
}

impl Ledger {
    fn accept(&mut self, record: &QueuedRecord) {
        self.delivered += 1;
        if !self.delivered_seqs.insert(record.seq) {
            self.violation(format!("seq {} (key {}) delivered twice", record.seq, record.key));
        }
        let last = self.last_seq_by_key.entry(record.key.clone()).or_insert(0);
        if record.seq <= *last {
            let message = format!("key {}: seq {} delivered after seq {}", record.key, record.seq, *last);
            *last = record.seq.max(*last);
            self.violation(message);
        } else {
            *last = record.seq;
        }
    }

    fn violation(&mut self, message: String) {
        self.violation_count += 1;
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(message);
        }
    }
}

impl SimDestination {
    /// A destination that spends `cost_per_record` on each record.
    pub fn new(cost_per_record: Duration) -> Self {
        SimDestination {
            cost_per_record,
            rejected_keys: RwLock::new(HashSet::new()),
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// From now on, records with these keys are answered `Rejected`.
    pub fn reject_keys(&self, keys: impl IntoIterator<Item = String>) {
        self.rejected_keys.write().unwrap_or_else(|p| p.into_inner()).extend(keys);
    }

    /// From now on, every record is accepted.
    pub fn accept_all(&self) {
        self.rejected_keys.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// A copy of the ledger.
    pub fn ledger(&self) -> Ledger {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn answer(
        &self,
        rejected: &HashSet<String>,
        ledger: &mut Ledger,
        record: &QueuedRecord,
    ) -> Result<(), DeliveryError> {
        if rejected.contains(&record.key) {
            ledger.rejected += 1;
            return Err(DeliveryError::Rejected(format!(
                "customer {} failed validation: credit limit above the group maximum (simulated)",
                record.key
            )));
        }
        ledger.accept(record);
        Ok(())
    }
}

impl Destination for SimDestination {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        std::thread::sleep(self.cost_per_record);
        let rejected = self.rejected_keys.read().unwrap_or_else(|p| p.into_inner());
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        self.answer(&rejected, &mut ledger, record)
    }

    /// One sleep for the whole batch: a per-record sleep of a few µs would
    /// really take the OS timer's granularity (~50 µs) each.
    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        std::thread::sleep(self.cost_per_record * batch.len() as u32);
        let rejected = self.rejected_keys.read().unwrap_or_else(|p| p.into_inner());
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        batch.iter().map(|record| self.answer(&rejected, &mut ledger, record)).collect()
    }
}
