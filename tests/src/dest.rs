//! [`TestDest`]: the scriptable destination most end-to-end tests deliver to.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pauselog::{DeliveryError, Destination, QueuedRecord};

/// An open flag and its condvar: deliveries wait while it is false.
type Gate = (Mutex<bool>, std::sync::Condvar);

/// Which records a partial gate holds.
type RecordFilter = Arc<dyn Fn(&QueuedRecord) -> bool + Send + Sync>;

/// A destination that records what it is given and can be told to reject
/// keys, be unavailable, or block until released.
#[derive(Default)]
pub struct TestDest {
    delivered: Mutex<Vec<QueuedRecord>>,
    reject_keys: Mutex<HashSet<String>>,
    unavailable: AtomicBool,
    /// Accepted deliveries after which the destination answers Unavailable.
    unavailable_after: AtomicU64,
    calls: AtomicU64,
    gate: Mutex<Option<Arc<Gate>>>,
    /// Only records this accepts wait at the gate (all, when unset).
    gate_filter: Mutex<Option<RecordFilter>>,
    /// The keys of each `deliver_batch` call, in call order.
    batch_keys: Mutex<Vec<Vec<String>>>,
    /// How long each `deliver_batch` call waits first (a round trip).
    round_trip_micros: AtomicU64,
}

impl TestDest {
    /// A destination that accepts everything.
    pub fn new() -> Arc<TestDest> {
        Arc::new(TestDest::default())
    }

    /// Rejects every record of `key` from now on.
    pub fn reject(&self, key: &str) {
        self.reject_keys.lock().unwrap().insert(key.to_owned());
    }

    /// Accepts `key` again.
    pub fn accept(&self, key: &str) {
        self.reject_keys.lock().unwrap().remove(key);
    }

    /// Answers `Unavailable` to everything while `down`.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    /// Accepts `n` more records, then answers `Unavailable` until
    /// `set_unavailable(false)`.
    pub fn unavailable_after(&self, n: u64) {
        self.unavailable_after.store(self.delivered.lock().unwrap().len() as u64 + n + 1, Ordering::SeqCst);
    }

    /// Makes every `deliver_batch` call wait `round_trip` first, as a call
    /// over a network does: the catch-up then opens its lanes (R22).
    pub fn round_trip(&self, round_trip: std::time::Duration) {
        self.round_trip_micros.store(u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Makes deliveries wait until [`TestDest::open_gate`].
    pub fn close_gate(&self) {
        *self.gate.lock().unwrap() = Some(Arc::new((Mutex::new(false), std::sync::Condvar::new())));
    }

    /// Makes deliveries of the records `filter` accepts wait until
    /// [`TestDest::open_gate`]; the others go through.
    pub fn close_gate_for(&self, filter: impl Fn(&QueuedRecord) -> bool + Send + Sync + 'static) {
        *self.gate_filter.lock().unwrap() = Some(Arc::new(filter));
        self.close_gate();
    }

    /// Lets waiting deliveries through.
    pub fn open_gate(&self) {
        self.gate_filter.lock().unwrap().take();
        if let Some(gate) = self.gate.lock().unwrap().take() {
            *gate.0.lock().unwrap() = true;
            gate.1.notify_all();
        }
    }

    /// Everything accepted so far, in delivery order.
    pub fn delivered(&self) -> Vec<QueuedRecord> {
        self.delivered.lock().unwrap().clone()
    }

    /// Seqs accepted so far, in delivery order (live records carry theirs too, R21).
    pub fn delivered_seqs(&self) -> Vec<u64> {
        self.delivered().iter().map(|r| r.seq).collect()
    }

    /// Payloads accepted so far, in delivery order.
    pub fn delivered_payloads(&self) -> Vec<String> {
        self.delivered().iter().map(|r| String::from_utf8_lossy(&r.payload).into_owned()).collect()
    }

    /// Calls to `deliver` (accepted or not).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The keys of each `deliver_batch` call so far, in call order.
    pub fn batch_keys(&self) -> Vec<Vec<String>> {
        self.batch_keys.lock().unwrap().clone()
    }

    /// Asserts that no `deliver_batch` call so far held two records of one
    /// key (what Strict ordering promises, R15).
    pub fn assert_no_call_repeats_a_key(&self) {
        for keys in self.batch_keys() {
            let distinct: HashSet<&String> = keys.iter().collect();
            assert_eq!(distinct.len(), keys.len(), "a deliver_batch call repeated a key: {keys:?}");
        }
    }
}

impl std::fmt::Debug for TestDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDest").field("delivered", &self.delivered.lock().unwrap().len()).finish()
    }
}

impl Destination for TestDest {
    fn deliver(&self, record: &QueuedRecord) -> Result<(), DeliveryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let filter = self.gate_filter.lock().unwrap().clone();
        let gated = filter.is_none_or(|filter| filter(record));
        let gate = self.gate.lock().unwrap().clone().filter(|_| gated);
        if let Some(gate) = gate {
            let mut open = gate.0.lock().unwrap();
            while !*open {
                open = gate.1.wait(open).unwrap();
            }
        }
        // Counted and taken under one lock: with several lanes calling at
        // once, `unavailable_after(n)` still accepts exactly n records.
        let mut delivered = self.delivered.lock().unwrap();
        let limit = self.unavailable_after.load(Ordering::SeqCst);
        if limit > 0 && delivered.len() as u64 + 1 >= limit {
            self.unavailable.store(true, Ordering::SeqCst);
            self.unavailable_after.store(0, Ordering::SeqCst);
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(DeliveryError::Unavailable("destination is down".into()));
        }
        if self.reject_keys.lock().unwrap().contains(&record.key) {
            return Err(DeliveryError::Rejected(format!("validation failed for {}", record.key)));
        }
        delivered.push(record.clone());
        Ok(())
    }

    fn deliver_batch(&self, batch: &[QueuedRecord]) -> Vec<Result<(), DeliveryError>> {
        let round_trip = self.round_trip_micros.load(Ordering::SeqCst);
        if round_trip > 0 {
            std::thread::sleep(std::time::Duration::from_micros(round_trip));
        }
        self.batch_keys.lock().unwrap().push(batch.iter().map(|r| r.key.clone()).collect());
        batch.iter().map(|record| self.deliver(record)).collect()
    }
}
