//! The wire schema of API version 1: every request body and response body
//! under `/v1/`, as serde types. This is the stable contract that scripts,
//! the `pauselog` command and the web page code against; `docs/admin-api.md`
//! shows each one and a test keeps the two in step.
//!
//! Conventions: field names are `snake_case` and carry their unit
//! (`_bytes`, `_ms`, `_per_sec`); enum values are the engine's names
//! (`"Paused"`, `"CatchUp"`); times are RFC 3339 strings in UTC with
//! milliseconds; a figure that does not apply is `null`. Request bodies
//! refuse unknown fields, so a typo is an error rather than a silent default.
//! New response fields may appear within version 1; clients ignore fields
//! they do not know.
//!
//! The types are not `#[non_exhaustive]`: the `pauselog` command builds the
//! same responses from a stopped directory's files, which the attribute
//! would forbid outside this crate. Compatibility is the wire's rule above,
//! not the Rust types': a client compiled against a newer schema still
//! reads an older server's answers.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The API version this build serves, the `1` of `/v1/`.
pub const API_VERSION: u32 = 1;

/// A wall-clock instant, written as RFC 3339 in UTC with milliseconds
/// (`2026-01-01T00:00:00.000Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        Timestamp(time)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text).map(Timestamp).map_err(serde::de::Error::custom)
    }
}

/// Milliseconds of a duration, saturating (the unit of every `_ms` field).
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The state of a table map (docs/rules.md R1–R4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapStateName {
    /// Live sync.
    Running,
    /// Queueing.
    Paused,
    /// Replaying the queue; new records go to its tail.
    CatchingUp,
}

/// Why a map is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PauseReason {
    /// An operator paused it.
    Manual,
    /// A maintenance window rule.
    Window,
    /// The destination-health rule.
    DestinationUnavailable,
}

/// Which cap blocks new records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    /// `max_queue_bytes` reached.
    Size,
    /// `max_pause` reached.
    PauseAge,
}

/// How to resume a paused map (docs/rules.md R12, R13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResumeMode {
    /// Replay the queue, then go live.
    CatchUp,
    /// Live at once; the queue becomes catch-up errors (`Preserved`).
    SkipToLivePreserve,
    /// Live at once; the queue is discarded.
    SkipToLiveDiscard,
}

/// A record's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// A row was created.
    Create,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
}

/// Why a record is in the catch-up errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorReason {
    /// The destination rejected it.
    Rejected,
    /// A skip to live preserved it.
    Preserved,
    /// An earlier record of its key failed (Strict ordering).
    BlockedByEarlierFailure,
    /// A newer record of its key was delivered live since (R16b).
    Superseded,
}

/// `GET /v1`: who answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// [`API_VERSION`].
    pub api_version: u32,
    /// The engine's data directory, as the engine spelled it.
    pub dir: String,
    /// The engine's process id.
    pub pid: u32,
    /// Table maps open in the engine.
    pub open_maps: u64,
}

/// `GET /v1/maps`: every open table map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapList {
    /// One entry per open map, by name.
    pub maps: Vec<MapStatus>,
}

/// A map's operator figures (docs/rules.md R9). Also the answer to every action on a
/// map (pause, resume, skip to live): the figures right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapStatus {
    /// The map's name.
    pub name: String,
    /// The state.
    pub state: MapStateName,
    /// Start of the pause (while paused).
    pub paused_since: Option<Timestamp>,
    /// Why it is paused (while paused).
    pub pause_reason: Option<PauseReason>,
    /// The maintenance window that paused it (`pause_reason` `Window`).
    pub pause_window: Option<Window>,
    /// The cap that blocks new records, if any.
    pub blocked: Option<Limit>,
    /// Queued records.
    pub queued_records: u64,
    /// Queued bytes, encoded as stored.
    pub queued_bytes: u64,
    /// Age of the oldest queued record, on the engine's clock.
    pub oldest_queued_age_ms: Option<u64>,
    /// Bytes left before the size cap.
    pub bytes_left: u64,
    /// Time left before the pause-age cap (while paused).
    pub pause_time_left_ms: Option<u64>,
    /// Records replayed in this catch-up.
    pub replayed: u64,
    /// Records left to replay (while catching up).
    pub remaining: u64,
    /// Recent drain rate (while catching up).
    pub drain_rate_per_sec: f64,
    /// Estimated time to drain at that rate.
    pub eta_ms: Option<u64>,
    /// Catch-up error entries.
    pub error_records: u64,
    /// Catch-up error bytes.
    pub error_bytes: u64,
    /// The last delivery error of the replay, if it is stalled.
    pub last_error: Option<String>,
    /// Key lanes with a delivery in flight (while catching up, R22).
    pub lanes_busy: u32,
    /// Records delivered live during catch-up instead of queued (R23),
    /// since the map was opened.
    pub passed_through: u64,
    /// Damage to durable data found in the map's logs (file, offset, what;
    /// R19): restore the file from a backup. Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
}

/// A maintenance window (docs/rules.md R14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// It opens (and pauses the map).
    pub start: Timestamp,
    /// It closes.
    pub end: Timestamp,
}

/// A page of a listing (docs/rules.md R10): at most `limit` items in seq order and
/// the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The map listed.
    pub map: String,
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `null` on the last page. Bound to
    /// this map, list and key filter.
    pub next: Option<String>,
    /// Total count of the list (or of the key, with a key filter).
    pub total: u64,
}

/// A queued record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecord {
    /// The record's seq.
    pub seq: u64,
    /// Its integration key.
    pub key: String,
    /// Its operation.
    pub op: Op,
    /// Payload size.
    pub payload_bytes: u64,
    /// The payload, base64 (standard alphabet, padded); only when asked
    /// for with `payload=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// When it was queued, on the engine's clock.
    pub queued_at: Timestamp,
}

/// A catch-up error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupError {
    /// The record.
    pub record: QueuedRecord,
    /// Why it is there.
    pub reason: ErrorReason,
    /// The destination's last error text.
    pub last_error: Option<String>,
    /// Failed delivery attempts.
    pub attempts: u32,
    /// When it first failed.
    pub first_failed_at: Timestamp,
    /// When it last failed.
    pub last_failed_at: Timestamp,
}

/// Which catch-up errors to retry or discard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// Every entry: `{"kind": "all"}`.
    All,
    /// The entries of one key: `{"kind": "key", "key": "USMF|CUST-1"}`.
    Key {
        /// The integration key.
        key: String,
    },
    /// These seqs: `{"kind": "seqs", "seqs": [4, 9]}`.
    Seqs {
        /// The seqs.
        seqs: Vec<u64>,
    },
}

/// Body of `POST /v1/maps/{map}/resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// How to resume.
    pub mode: ResumeMode,
}

/// Body of `POST /v1/maps/{map}/skip-to-live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipToLiveRequest {
    /// `true` keeps the records not replayed as catch-up errors
    /// (`Preserved`); `false` discards them.
    pub preserve: bool,
}

/// Body of `POST /v1/maps/{map}/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Which entries.
    pub selection: Selection,
    /// Also deliver `Superseded` entries (R16b). Default: false.
    #[serde(default)]
    pub forced: bool,
}

/// Body of `POST /v1/maps/{map}/discard-errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardRequest {
    /// Which entries.
    pub selection: Selection,
}

/// Answer of `POST /v1/maps/{map}/discard-errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded {
    /// The map.
    pub map: String,
    /// Entries discarded.
    pub discarded: u64,
}

/// A retry job (docs/rules.md R16a): `POST /v1/maps/{map}/retry` starts one,
/// `GET /v1/jobs/{id}` polls it, `POST /v1/jobs/{id}/cancel` stops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryJob {
    /// The job's id, unique within the engine's process.
    pub id: u64,
    /// The map whose errors it retries.
    pub map: String,
    /// Whether `Superseded` entries are delivered too.
    pub forced: bool,
    /// When it started.
    pub started_at: Timestamp,
    /// Entries selected when it started.
    pub total: u64,
    /// Delivered and removed from the errors.
    pub delivered: u64,
    /// Failed again (or held back behind an earlier failure of their key).
    pub failed: u64,
    /// Not attempted: `Superseded` without force, or gone meanwhile.
    pub skipped: u64,
    /// It has finished (or was cancelled).
    pub done: bool,
    /// It was cancelled before it finished.
    pub cancelled: bool,
}

/// `GET /v1/jobs`: the retry jobs the engine remembers, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs.
    pub jobs: Vec<RetryJob>,
}

/// The body of every error answer: `{"error": {"code": .., "message": ..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ApiError,
}

/// What went wrong with a request. Nothing changed unless the code says
/// so (only `internal` may leave an action half done, as the engine's own
/// error would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct ApiError {
    /// A stable code a script can match on.
    pub code: ErrorCode,
    /// What happened and what to do, in words.
    pub message: String,
}

/// The stable error codes, with the HTTP status each is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not the JSON the route takes.
    MalformedJson,
    /// 400: a value is out of range or not allowed (map name, key, limit, query).
    InvalidInput,
    /// 400: a page cursor that is damaged, or made for another map, list or key filter.
    BadCursor,
    /// 401: the TCP listener needs `Authorization: Bearer <token>`.
    Unauthorized,
    /// 403: the Unix socket's peer runs as another user.
    ForbiddenPeer,
    /// 403: a state-changing request from another site, or from a browser
    /// without the web page's CSRF token.
    CrossSiteRefused,
    /// 404: no such route under this version.
    UnknownRoute,
    /// 404: the path names an API version this engine does not serve.
    UnknownVersion,
    /// 404: no open table map of that name.
    UnknownMap,
    /// 404: no retry job of that id (it never was, or was forgotten).
    UnknownJob,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 408: the request did not arrive in time.
    RequestTimeout,
    /// 409: the map's state does not allow the action.
    InvalidState,
    /// 409: preserving the queue would pass the errors' byte cap.
    ErrorsFull,
    /// 413: the request body is larger than the limit.
    PayloadTooLarge,
    /// 429: too many retry jobs are running.
    TooManyJobs,
    /// 503: the engine is closing.
    EngineClosed,
    /// 503: the server holds its most connections; try again.
    TooManyConnections,
    /// 500: the engine failed (I/O, corruption); see the message.
    Internal,
}

impl ErrorCode {
    /// The HTTP status sent with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidInput | ErrorCode::BadCursor => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::ForbiddenPeer | ErrorCode::CrossSiteRefused => 403,
            ErrorCode::UnknownRoute | ErrorCode::UnknownVersion | ErrorCode::UnknownMap | ErrorCode::UnknownJob => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::InvalidState | ErrorCode::ErrorsFull => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyJobs => 429,
            ErrorCode::EngineClosed | ErrorCode::TooManyConnections => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    /// `{"error": {..}}` as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody { error: self.clone() }).expect("an error body always serialises")
    }
}
