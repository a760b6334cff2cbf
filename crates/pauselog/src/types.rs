//! The public data types of the engine (docs/rules.md §7).

use std::time::{Duration, SystemTime};

use pauselog_wal::SyncLatency;
use serde::{Deserialize, Serialize};

/// Longest integration key, in bytes (UTF-8).
pub const KEY_BYTES_MAX: usize = 1024;
/// Largest payload, in bytes (16 MiB).
pub const PAYLOAD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Default page size of [`Query`].
pub const PAGE_LIMIT_DEFAULT: usize = 50;
/// Largest page size of [`Query`].
pub const PAGE_LIMIT_MAX: usize = 1000;

/// What happened to the source row.
///
/// Exhaustive on purpose: a destination matches on it to apply the record,
/// and a new operation would need every destination to handle it, which a
/// compile error is the right way to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// A row was created.
    Create,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
}

impl Op {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Op::Create => 1,
            Op::Update => 2,
            Op::Delete => 3,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Op> {
        match byte {
            1 => Some(Op::Create),
            2 => Some(Op::Update),
            3 => Some(Op::Delete),
            _ => None,
        }
    }
}

/// A record as the service submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The business key the destination uses, e.g. `USMF|CUST-0042`; 1–1024 bytes.
    pub key: String,
    /// The operation.
    pub op: Op,
    /// Opaque payload, 0–16 MiB. Never logged.
    pub payload: Vec<u8>,
}

impl Record {
    /// A record for `key`.
    pub fn new(key: impl Into<String>, op: Op, payload: impl Into<Vec<u8>>) -> Self {
        Record { key: key.into(), op, payload: payload.into() }
    }
}

/// A record as the destination receives it (and as the queue stores it):
/// with its sequence number and queue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecord {
    /// The record's version (R21): every record a map delivers, live or
    /// queued, gets one from a single per-map sequence that strictly
    /// increases in submit order and is never reused, across crashes too.
    /// It is the idempotency key the destination may dedupe on, and the
    /// version for last-writer-wins: apply a record only when its seq is
    /// greater than the one stored for its key.
    pub seq: u64,
    /// The integration key.
    pub key: String,
    /// The operation.
    pub op: Op,
    /// The payload.
    pub payload: Vec<u8>,
    /// When it was submitted (queued, or delivered live), on the engine's clock.
    pub queued_at: SystemTime,
}

/// What `submit` did with a record.
///
/// Exhaustive on purpose: callers match on it, and its two outcomes are
/// those of the rules (R1, R2): delivered, or queued with a seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Delivered to the destination right away (Running).
    Live,
    /// Queued durably with this seq (Paused, CatchingUp, or tripped a rule).
    Queued {
        /// The record's seq.
        seq: u64,
    },
}

/// Why a map is paused. Non-exhaustive: a new kind of rule brings a new
/// reason; a `match` needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PauseReason {
    /// An operator called `pause`.
    Manual,
    /// The maintenance window rule with this start and end. A map paused by
    /// a window before the window was recorded (an older data directory)
    /// shows the Unix epoch for both.
    Window {
        /// The window's start (engine clock).
        start: SystemTime,
        /// The window's end.
        end: SystemTime,
    },
    /// The destination-health rule.
    DestinationUnavailable,
}

/// Which cap blocked a paused map. Non-exhaustive: a new cap (e.g. on the
/// record count) would add a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Limit {
    /// `max_queue_bytes` reached.
    Size,
    /// `max_pause` reached.
    PauseAge,
}

/// The state of a table map (R1–R4).
///
/// Exhaustive on purpose: users match on it (`wait_for` predicates, status
/// displays), and the three states are the rules' state machine; a fourth
/// would change what every caller may assume, so it should not compile
/// silently. Details grow inside the variants' fields instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapState {
    /// Live sync.
    Running,
    /// Queueing.
    Paused {
        /// Start of this pause, on the engine clock.
        since: SystemTime,
        /// Why.
        reason: PauseReason,
        /// The cap that blocks new records, if any.
        blocked: Option<Limit>,
    },
    /// Replaying the queue; new records go to its tail.
    CatchingUp {
        /// Records replayed since this catch-up started.
        replayed: u64,
        /// Records still queued.
        remaining: u64,
    },
}

/// How to resume a paused map. Non-exhaustive: users pass it in, so a new
/// mode costs them nothing; code that matches on it needs a `_` arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResumeMode {
    /// Replay the queue, new writes to its tail, then live (R12).
    CatchUp,
    /// Live at once; the queue becomes catch-up errors (`Preserved`) (R13).
    SkipToLivePreserve,
    /// Live at once; the queue is discarded (R13).
    SkipToLiveDiscard,
}

/// A rule that pauses a map automatically (R14). Non-exhaustive: new kinds
/// of rules will come.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseRule {
    /// Pause at `start`; at `end`, resume with `resume` if set.
    Window {
        /// Window start (engine clock).
        start: SystemTime,
        /// Window end.
        end: SystemTime,
        /// How to resume at `end`; `None` leaves the map paused.
        resume: Option<ResumeMode>,
    },
    /// Pause when this many consecutive live writes answer `Unavailable`.
    /// A map takes at most one such rule (a second is refused when the map
    /// is opened): two thresholds on one count would only mean the smaller.
    DestinationUnavailable {
        /// How many in a row.
        consecutive: u32,
    },
}

/// Per-key order during catch-up (R15). Non-exhaustive: users pass it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyOrdering {
    /// After a rejection, later records of the same key also move to the
    /// errors (`BlockedByEarlierFailure`), so a retry applies them in order.
    #[default]
    Strict,
    /// Only the rejected record moves.
    BestEffort,
}

/// Why a record is in the catch-up errors. Non-exhaustive: reasons have
/// grown with the rules (`Superseded`, R16b) and may again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorReason {
    /// The destination rejected it.
    Rejected,
    /// A skip to live preserved it.
    Preserved,
    /// An earlier record with the same key failed (Strict ordering).
    BlockedByEarlierFailure,
    /// A newer record of its key was delivered live since; a plain retry
    /// will not overwrite it (R16b).
    Superseded,
}

/// A queued record that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchupError {
    /// The record.
    pub record: QueuedRecord,
    /// Why it is here.
    pub reason: ErrorReason,
    /// The destination's last error text.
    pub last_error: Option<String>,
    /// Delivery attempts that failed (0 for a preserved record).
    pub attempts: u32,
    /// When it first landed here.
    pub first_failed_at: SystemTime,
    /// When it last failed.
    pub last_failed_at: SystemTime,
}

/// One page of a listing (R10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// At most `limit` items, in seq order.
    pub items: Vec<T>,
    /// Cursor for the next page, if more matched.
    pub next: Option<String>,
    /// Total count of the list (or of the key, with a key filter).
    pub total: u64,
}

/// A listing query: `Query::default().key(k).limit(n).after(cursor)`.
/// Non-exhaustive: new filters will come; build it with its methods (or
/// set its public fields on a `Query::default()`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct Query {
    /// Only this integration key.
    pub key: Option<String>,
    /// Page size; default 50, max 1000.
    pub limit: Option<usize>,
    /// A previous page's `next`.
    pub after: Option<String>,
}

impl Query {
    /// Filter by integration key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Page size (1..=1000).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Continue after this cursor.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.after = Some(cursor.into());
        self
    }
}

/// Which catch-up errors to retry or discard. Non-exhaustive: users pass it
/// in, and new selections (by reason, by time) may come.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Every entry.
    All,
    /// Entries of one integration key.
    Key(String),
    /// Entries with these seqs.
    Seqs(Vec<u64>),
}

/// Per-map configuration. `MapConfig::default()` gives the defaults of docs/rules.md.
///
/// Build it as `MapConfig { lanes: 4, ..MapConfig::default() }`. It is not
/// `#[non_exhaustive]` on purpose: that attribute forbids this
/// struct-update syntax outside the crate, which is how every caller sets
/// one or two knobs, and a builder would repeat every field as a method.
/// A new field always comes with a default, so code that ends its literal
/// with `..MapConfig::default()` keeps compiling; only a literal naming
/// every field would break.
#[derive(Debug, Clone)]
pub struct MapConfig {
    /// Cap on queued bytes (encoded, framing included). Default: 1 GiB.
    pub max_queue_bytes: u64,
    /// Longest pause before the map blocks. Default: 24 h.
    pub max_pause: Duration,
    /// Cap on catch-up error bytes. Default: 1 GiB.
    pub max_error_bytes: u64,
    /// Per-key order during catch-up. Default: Strict.
    pub key_ordering: KeyOrdering,
    /// Automatic pause rules. Default: none.
    pub rules: Vec<PauseRule>,
    /// Most records per `deliver_batch` call of the catch-up and of retry
    /// jobs (per lane). Default: 1024.
    pub replay_batch_records: usize,
    /// Most record bytes (key and payload) per `deliver_batch` call; a
    /// single larger record still goes alone. Default: 4 MiB.
    pub replay_batch_bytes: usize,
    /// Parallel key lanes of the catch-up and of retry jobs (R22): records
    /// are split by a hash of their integration key; each lane delivers its
    /// records in seq order with one call in flight, so up to `lanes` calls
    /// are in flight per map. A catch-up starts in one lane, delivering from
    /// the replay thread itself, and opens all `lanes` (on threads of their
    /// own) once its calls are seen to wait (a round trip, a busy server)
    /// longer than the replay works between two calls: lanes overlap
    /// waiting, and against a destination that answers at once they would
    /// only add hand-overs. 1 never opens more. Default: 8 (BENCHMARKS.md:
    /// against a destination that costs a round trip per call, the drain
    /// grows with the lanes).
    pub lanes: usize,
    /// During catch-up, deliver a new record live at once when its key has
    /// nothing queued, nothing in flight and no catch-up errors, instead of
    /// queueing it behind the backlog (R23). Per-key order holds either
    /// way. Default: false.
    pub live_pass_through: bool,
    /// First and largest backoff after an `Unavailable` answer during replay.
    /// Default: 10 ms and 5 s.
    pub backoff_min: Duration,
    /// See `backoff_min`.
    pub backoff_max: Duration,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            max_queue_bytes: 1 << 30,
            max_pause: Duration::from_secs(24 * 60 * 60),
            max_error_bytes: 1 << 30,
            key_ordering: KeyOrdering::Strict,
            rules: Vec::new(),
            replay_batch_records: 1024,
            replay_batch_bytes: 4 << 20,
            lanes: 8,
            live_pass_through: false,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Counters of a map for monitoring, since it was opened in this process
/// ([`TableMap::counters`](crate::TableMap::counters)). Non-exhaustive: the
/// engine builds it and may count more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MapCounters {
    /// Calls to `submit`, by outcome.
    pub submits: SubmitCounts,
    /// The fsyncs that made queued records durable (the data log's).
    pub data_sync_latency: SyncLatency,
    /// The fsyncs of state changes and replay commits (the meta log's).
    pub meta_sync_latency: SyncLatency,
}

/// Calls to `submit` by outcome. Every call counts once, in the first
/// field that applies.
///
/// Exhaustive on purpose: its fields partition the calls, so a caller (the
/// e2e test among them) compares a whole value, and a new outcome should
/// fail such a comparison at compile time rather than count nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitCounts {
    /// Delivered live: `Submitted::Live` (Running, or passed through a
    /// catch-up, R23).
    pub live: u64,
    /// Queued: `Submitted::Queued`.
    pub queued: u64,
    /// Refused by a cap: `Error::Blocked` (R8).
    pub blocked: u64,
    /// Rejected by the destination: `Error::Rejected`.
    pub rejected: u64,
    /// The destination was unavailable and the record was not queued:
    /// `Error::Unavailable`.
    pub unavailable: u64,
    /// Bad input: `Error::InvalidInput` (R20).
    pub invalid: u64,
    /// Any other error (I/O, a poisoned log, a closed engine).
    pub failed: u64,
}

/// The operator's figures for a map (R9). Non-exhaustive: the engine builds
/// it and new figures join it (they have: busy lanes, records passed
/// through); read its fields, do not build or destructure it whole.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MapStats {
    /// The state.
    pub state: MapState,
    /// Queued records.
    pub queued_records: u64,
    /// Queued bytes (encoded).
    pub queued_bytes: u64,
    /// Age of the oldest queued record, on the engine clock.
    pub oldest_queued_age: Option<Duration>,
    /// Bytes left before the size cap.
    pub bytes_left: u64,
    /// Time left before the pause-age cap (while paused).
    pub pause_time_left: Option<Duration>,
    /// The blocking cap, if any (also while catching up after a block).
    pub blocked: Option<Limit>,
    /// Records replayed by the current catch-up, or by the last one once the
    /// map is live again; 0 from a pause on.
    pub replayed: u64,
    /// Records left to replay (while catching up).
    pub remaining: u64,
    /// Recent drain rate, records per second (while catching up).
    pub drain_rate_per_sec: f64,
    /// Estimated time to drain at that rate.
    pub eta: Option<Duration>,
    /// Catch-up error entries.
    pub error_records: u64,
    /// Catch-up error bytes.
    pub error_bytes: u64,
    /// Last delivery error seen by the replay, if it is stalled or failed.
    pub last_error: Option<String>,
    /// Lanes with a `deliver_batch` call in flight (while catching up).
    pub lanes_busy: u32,
    /// Records delivered live during catch-up instead of queued (R23),
    /// since the map was opened.
    pub passed_through: u64,
    /// Damage to durable data found in the map's logs since they were
    /// opened (by the check of sealed segments that runs right after open,
    /// or by a read): the file, the byte offset and what is wrong (R19).
    /// Restore the file from a backup; pauselog never skips it silently.
    pub damage: Option<String>,
}
