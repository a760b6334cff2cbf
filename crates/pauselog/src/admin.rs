//! The engine's side of the admin API (docs/rules.md R24, feature `admin`): the
//! [`AdminBackend`] over the open table maps, a bounded registry of retry
//! jobs, and the server that [`EngineBuilder::open`](crate::EngineBuilder::open)
//! starts.
//!
//! The backend holds the engine weakly: the server never keeps an engine
//! alive, and a request that arrives while it closes gets `engine_closed`.
//!
//! The conversions from the engine's types to the schema's are public, so
//! that the `pauselog` command prints the file view of a stopped directory
//! in the same shape as the live one.
//!
//! ```
//! use pauselog::admin::api::client::Client;
//! # use pauselog::*;
//! # struct Accept;
//! # impl Destination for Accept {
//! #     fn deliver(&self, _: &QueuedRecord) -> Result<(), DeliveryError> { Ok(()) }
//! # }
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(dir.path())?;
//! let map = engine.table_map("customers", MapConfig::default(), std::sync::Arc::new(Accept))?;
//! let client = Client::for_data_dir(dir.path())?;
//! client.pause("customers")?;                     // an operator, through the socket
//! assert!(matches!(map.state(), MapState::Paused { .. }));
//! # drop(map);
//! engine.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use pauselog_admin::metrics::{self, MapMetrics};
use pauselog_admin::request::PageQuery;
use pauselog_admin::schema::{self as dto, ApiError, ErrorCode};
use pauselog_admin::{AdminBackend, AdminServer, ServerConfig, Token};

pub use pauselog_admin as api;

use crate::engine::EngineShared;
use crate::retry::RetryJob;
use crate::{
    CatchupError, Error, ErrorReason, Limit, MapCounters, MapState, MapStats, Op, Page, PauseReason, Query,
    QueuedRecord, ResumeMode, Selection, SubmitCounts, SyncLatency, TableMap, SYNC_LATENCY_BOUNDS_US,
};

/// Retry jobs the registry remembers. When it is full, starting a job
/// forgets the oldest finished one; if none has finished, the start is
/// refused with `too_many_jobs`.
pub const RETRY_JOBS_KEPT_MAX: usize = 64;

/// What the builder asked of the admin API.
#[derive(Debug, Clone)]
pub(crate) struct AdminOptions {
    /// Serve `<dir>/admin/admin.sock`. Default: true.
    pub socket: bool,
    /// Also serve this loopback address, with the token in this file.
    pub tcp: Option<(SocketAddr, PathBuf)>,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions { socket: true, tcp: None }
    }
}

/// The engine's admin state: the backend (shared by its own server and by
/// routers a service mounts) and the server, if one runs.
pub(crate) struct AdminState {
    pub backend: Arc<EngineBackend>,
    pub server: Mutex<Option<AdminServer>>,
}

impl AdminState {
    pub fn new(engine: Weak<EngineShared>, dir: PathBuf) -> Self {
        AdminState { backend: Arc::new(EngineBackend::new(engine, dir)), server: Mutex::new(None) }
    }

    /// Starts the listeners `options` ask for, if any.
    pub fn start(&self, options: &AdminOptions) -> crate::Result<()> {
        let mut config = ServerConfig::default();
        if !options.socket && options.tcp.is_none() {
            return Ok(());
        }
        if options.socket {
            config = config.unix_socket(&self.backend.dir);
        }
        if let Some((addr, token_file)) = &options.tcp {
            let token = Token::from_file(token_file).map_err(|e| Error::InvalidInput(e.to_string()))?;
            config = config.tcp(*addr, token);
        }
        let backend: Arc<dyn AdminBackend> = self.backend.clone();
        let server = AdminServer::start(backend, config).map_err(|error| match error {
            pauselog_admin::ServerError::Io { source, path, what } => Error::Io {
                path: PathBuf::from(path),
                source: std::io::Error::new(
                    source.kind(),
                    format!("admin API: {what}: {source}; EngineBuilder::admin_socket(false) turns the socket off"),
                ),
            },
            other => Error::InvalidInput(other.to_string()),
        })?;
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
        Ok(())
    }

    /// Stops the server (before the maps close).
    pub fn stop(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut server) = server {
            server.stop();
        }
    }

    pub fn socket_path(&self) -> Option<PathBuf> {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        server.as_ref().and_then(|s| s.socket_path().map(PathBuf::from))
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(AdminServer::tcp_addr)
    }
}

/// The [`AdminBackend`] of one engine.
pub(crate) struct EngineBackend {
    engine: Weak<EngineShared>,
    dir: PathBuf,
    jobs: Mutex<JobRegistry>,
}

#[derive(Default)]
struct JobRegistry {
    next_id: u64,
    jobs: VecDeque<JobEntry>,
}

struct JobEntry {
    id: u64,
    map: String,
    forced: bool,
    started_at: SystemTime,
    job: RetryJob,
}

impl JobEntry {
    fn to_dto(&self) -> dto::RetryJob {
        let progress = self.job.progress();
        dto::RetryJob {
            id: self.id,
            map: self.map.clone(),
            forced: self.forced,
            started_at: self.started_at.into(),
            total: progress.total,
            delivered: progress.delivered,
            failed: progress.failed,
            skipped: progress.skipped,
            done: progress.done,
            cancelled: progress.cancelled,
        }
    }
}

impl EngineBackend {
    fn new(engine: Weak<EngineShared>, dir: PathBuf) -> Self {
        EngineBackend { engine, dir, jobs: Mutex::new(JobRegistry { next_id: 1, jobs: VecDeque::new() }) }
    }

    fn engine(&self) -> Result<Arc<EngineShared>, ApiError> {
        self.engine
            .upgrade()
            .filter(|engine| !engine.is_closed())
            .ok_or_else(|| ApiError::new(ErrorCode::EngineClosed, "the engine is closing"))
    }

    fn table_map(&self, name: &str) -> Result<TableMap, ApiError> {
        let engine = self.engine()?;
        if let Some(map) = engine.open_map(name) {
            return Ok(map);
        }
        let stored = crate::list_map_names(&self.dir).unwrap_or_default();
        let message = if stored.iter().any(|stored| stored == name) {
            format!(
                "table map {name} is stored in {} but the service has not opened it; only open maps can be steered",
                self.dir.display()
            )
        } else {
            let open: Vec<String> = engine.open_maps().iter().map(|m| m.name().to_owned()).collect();
            format!("no table map {name} is open in this engine; open maps: {}", list_or_none(&open))
        };
        Err(ApiError::new(ErrorCode::UnknownMap, message))
    }

    fn job_entry<T>(&self, id: u64, read: impl FnOnce(&JobEntry) -> T) -> Result<T, ApiError> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.jobs.iter().find(|entry| entry.id == id).map(read).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownJob,
                format!("no retry job {id}; the engine remembers the last {RETRY_JOBS_KEPT_MAX} jobs of this process"),
            )
        })
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl AdminBackend for EngineBackend {
    fn health(&self) -> Result<dto::Health, ApiError> {
        let engine = self.engine()?;
        Ok(dto::Health {
            api_version: dto::API_VERSION,
            dir: self.dir.display().to_string(),
            pid: std::process::id(),
            open_maps: engine.open_maps().len() as u64,
        })
    }

    fn maps(&self) -> Result<Vec<dto::MapStatus>, ApiError> {
        let mut maps = self.engine()?.open_maps();
        maps.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(maps.iter().map(|map| map_status(map.name(), map.stats())).collect())
    }

    fn map(&self, map: &str) -> Result<dto::MapStatus, ApiError> {
        let map = self.table_map(map)?;
        Ok(map_status(map.name(), map.stats()))
    }

    fn queued(&self, map: &str, query: &PageQuery) -> Result<dto::Page<dto::QueuedRecord>, ApiError> {
        let page = self.table_map(map)?.queued(&engine_query(query)).map_err(api_error)?;
        Ok(page_dto(map, page, |record| record_dto(record, query.payload)))
    }

    fn errors(&self, map: &str, query: &PageQuery) -> Result<dto::Page<dto::CatchupError>, ApiError> {
        let page = self.table_map(map)?.catchup_errors(&engine_query(query)).map_err(api_error)?;
        Ok(page_dto(map, page, |entry| error_dto(entry, query.payload)))
    }

    fn pause(&self, map: &str) -> Result<dto::MapStatus, ApiError> {
        let map = self.table_map(map)?;
        map.pause().map_err(api_error)?;
        Ok(map_status(map.name(), map.stats()))
    }

    fn resume(&self, map: &str, mode: dto::ResumeMode) -> Result<dto::MapStatus, ApiError> {
        let map = self.table_map(map)?;
        let mode = match mode {
            dto::ResumeMode::CatchUp => ResumeMode::CatchUp,
            dto::ResumeMode::SkipToLivePreserve => ResumeMode::SkipToLivePreserve,
            dto::ResumeMode::SkipToLiveDiscard => ResumeMode::SkipToLiveDiscard,
        };
        map.resume(mode).map_err(api_error)?;
        Ok(map_status(map.name(), map.stats()))
    }

    fn skip_to_live(&self, map: &str, preserve: bool) -> Result<dto::MapStatus, ApiError> {
        let map = self.table_map(map)?;
        map.skip_to_live(preserve).map_err(api_error)?;
        Ok(map_status(map.name(), map.stats()))
    }

    fn retry(&self, map: &str, selection: &dto::Selection, forced: bool) -> Result<dto::RetryJob, ApiError> {
        let table_map = self.table_map(map)?;
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.jobs.len() >= RETRY_JOBS_KEPT_MAX {
            let Some(finished) = jobs.jobs.iter().position(|entry| entry.job.progress().done) else {
                return Err(ApiError::new(
                    ErrorCode::TooManyJobs,
                    format!("{RETRY_JOBS_KEPT_MAX} retry jobs are running; wait for one to finish or cancel one"),
                ));
            };
            jobs.jobs.remove(finished);
        }
        let selection = engine_selection(selection);
        let started_at = SystemTime::now();
        let job = if forced { table_map.retry_errors_forced(selection) } else { table_map.retry_errors(selection) }
            .map_err(api_error)?;
        let id = jobs.next_id;
        jobs.next_id += 1;
        let entry = JobEntry { id, map: map.to_owned(), forced, started_at, job };
        let answer = entry.to_dto();
        jobs.jobs.push_back(entry);
        Ok(answer)
    }

    fn discard_errors(&self, map: &str, selection: &dto::Selection) -> Result<u64, ApiError> {
        self.table_map(map)?.discard_errors(engine_selection(selection)).map_err(api_error)
    }

    fn jobs(&self) -> Result<Vec<dto::RetryJob>, ApiError> {
        Ok(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).jobs.iter().map(JobEntry::to_dto).collect())
    }

    fn job(&self, id: u64) -> Result<dto::RetryJob, ApiError> {
        self.job_entry(id, JobEntry::to_dto)
    }

    fn cancel_job(&self, id: u64) -> Result<dto::RetryJob, ApiError> {
        self.job_entry(id, |entry| {
            entry.job.cancel();
            entry.to_dto()
        })
    }

    fn metrics(&self) -> Result<Vec<MapMetrics>, ApiError> {
        let mut maps = self.engine()?.open_maps();
        maps.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(maps
            .iter()
            .map(|map| MapMetrics {
                status: map_status(map.name(), map.stats()),
                counters: Some(counters_dto(map.counters())),
            })
            .collect())
    }
}

/// A map's counters in the metrics' terms.
fn counters_dto(counters: MapCounters) -> metrics::MapCounters {
    let SubmitCounts { live, queued, blocked, rejected, unavailable, invalid, failed } = counters.submits;
    metrics::MapCounters {
        submits: metrics::SubmitOutcomes { live, queued, blocked, rejected, unavailable, invalid, failed },
        data_fsync: histogram(counters.data_sync_latency),
        meta_fsync: histogram(counters.meta_sync_latency),
    }
}

fn histogram(latency: SyncLatency) -> metrics::LatencyHistogram {
    metrics::LatencyHistogram {
        bounds_seconds: SYNC_LATENCY_BOUNDS_US.iter().map(|&us| us as f64 / 1e6).collect(),
        counts: latency.counts.to_vec(),
        sum_seconds: latency.sum.as_secs_f64(),
    }
}

/// The engine's error as the API's: the same words, a stable code.
fn api_error(error: Error) -> ApiError {
    let code = match &error {
        Error::InvalidState { .. } => ErrorCode::InvalidState,
        Error::InvalidInput(_) => ErrorCode::InvalidInput,
        Error::BadCursor(_) => ErrorCode::BadCursor,
        Error::ErrorsFull { .. } => ErrorCode::ErrorsFull,
        Error::Closed => ErrorCode::EngineClosed,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, error.to_string())
}

fn engine_query(query: &PageQuery) -> Query {
    Query { key: query.key.clone(), limit: Some(query.limit as usize), after: query.after.clone() }
}

fn engine_selection(selection: &dto::Selection) -> Selection {
    match selection {
        dto::Selection::All => Selection::All,
        dto::Selection::Key { key } => Selection::Key(key.clone()),
        dto::Selection::Seqs { seqs } => Selection::Seqs(seqs.clone()),
    }
}

fn page_dto<T, U>(map: &str, page: Page<T>, item: impl Fn(T) -> U) -> dto::Page<U> {
    dto::Page {
        map: map.to_owned(),
        items: page.items.into_iter().map(item).collect(),
        next: page.next,
        total: page.total,
    }
}

/// A queued record in the schema; the payload only when asked for.
pub fn record_dto(record: QueuedRecord, payload: bool) -> dto::QueuedRecord {
    dto::QueuedRecord {
        seq: record.seq,
        key: record.key,
        op: op_dto(record.op),
        payload_bytes: record.payload.len() as u64,
        payload_base64: payload.then(|| pauselog_admin::payload_base64(&record.payload)),
        queued_at: record.queued_at.into(),
    }
}

/// A catch-up error in the schema.
pub fn error_dto(entry: CatchupError, payload: bool) -> dto::CatchupError {
    dto::CatchupError {
        record: record_dto(entry.record, payload),
        reason: match entry.reason {
            ErrorReason::Rejected => dto::ErrorReason::Rejected,
            ErrorReason::Preserved => dto::ErrorReason::Preserved,
            ErrorReason::BlockedByEarlierFailure => dto::ErrorReason::BlockedByEarlierFailure,
            ErrorReason::Superseded => dto::ErrorReason::Superseded,
        },
        last_error: entry.last_error,
        attempts: entry.attempts,
        first_failed_at: entry.first_failed_at.into(),
        last_failed_at: entry.last_failed_at.into(),
    }
}

fn op_dto(op: Op) -> dto::Op {
    match op {
        Op::Create => dto::Op::Create,
        Op::Update => dto::Op::Update,
        Op::Delete => dto::Op::Delete,
    }
}

/// A limit in the schema.
pub fn limit_dto(limit: Limit) -> dto::Limit {
    match limit {
        Limit::Size => dto::Limit::Size,
        Limit::PauseAge => dto::Limit::PauseAge,
    }
}

/// The state of a map in the schema's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFields {
    /// `Running`, `Paused` or `CatchingUp`.
    pub state: dto::MapStateName,
    /// Start of the pause.
    pub paused_since: Option<dto::Timestamp>,
    /// Why it is paused.
    pub pause_reason: Option<dto::PauseReason>,
    /// The window that paused it.
    pub pause_window: Option<dto::Window>,
}

/// The state's name, pause start, reason and window in the schema.
pub fn state_dto(state: &MapState) -> StateFields {
    let mut fields =
        StateFields { state: dto::MapStateName::Running, paused_since: None, pause_reason: None, pause_window: None };
    match state {
        MapState::Running => {}
        MapState::Paused { since, reason, .. } => {
            fields.state = dto::MapStateName::Paused;
            fields.paused_since = Some((*since).into());
            fields.pause_reason = Some(match reason {
                PauseReason::Manual => dto::PauseReason::Manual,
                PauseReason::Window { start, end } => {
                    fields.pause_window = Some(dto::Window { start: (*start).into(), end: (*end).into() });
                    dto::PauseReason::Window
                }
                PauseReason::DestinationUnavailable => dto::PauseReason::DestinationUnavailable,
            });
        }
        MapState::CatchingUp { .. } => fields.state = dto::MapStateName::CatchingUp,
    }
    fields
}

/// A map's figures in the schema. The destructuring names every field of
/// [`MapStats`], so a field added there fails to compile here until it has
/// its line in the schema.
pub fn map_status(name: &str, stats: MapStats) -> dto::MapStatus {
    let MapStats {
        state,
        queued_records,
        queued_bytes,
        oldest_queued_age,
        bytes_left,
        pause_time_left,
        blocked,
        replayed,
        remaining,
        drain_rate_per_sec,
        eta,
        error_records,
        error_bytes,
        last_error,
        lanes_busy,
        passed_through,
        damage,
    } = stats;
    let StateFields { state, paused_since, pause_reason, pause_window } = state_dto(&state);
    dto::MapStatus {
        name: name.to_owned(),
        state,
        paused_since,
        pause_reason,
        pause_window,
        blocked: blocked.map(limit_dto),
        queued_records,
        queued_bytes,
        oldest_queued_age_ms: oldest_queued_age.map(dto::millis),
        bytes_left,
        pause_time_left_ms: pause_time_left.map(dto::millis),
        replayed,
        remaining,
        drain_rate_per_sec,
        eta_ms: eta.map(dto::millis),
        error_records,
        error_bytes,
        last_error,
        lanes_busy,
        passed_through,
        damage,
    }
}
