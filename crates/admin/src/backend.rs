//! What the API asks of an engine ([`AdminBackend`]), and [`handle`]: one
//! request from bytes to an answer, without any HTTP machinery.
//!
//! The engine crate implements the trait; this crate never depends on the
//! engine, so the dependency runs engine → admin and a service that turns
//! the `admin` feature off compiles no HTTP stack.

use serde::Serialize;

use crate::cursor::{self, List};
use crate::metrics::MapMetrics;
use crate::request::{decode, ApiRequest, PageQuery};
use crate::schema::{
    ApiError, CatchupError, Discarded, Health, JobList, MapList, MapStatus, Page, QueuedRecord, ResumeMode, RetryJob,
    Selection,
};

/// Every operator action of docs/rules.md §7, in the schema's terms. Calls block
/// (they take the engine's locks and wait for fsyncs); the server runs them
/// on a blocking thread.
///
/// Page queries arrive with `after` already unwrapped to the engine's own
/// cursor, and the `next` of a returned page is the engine's own cursor:
/// binding cursors to their map and list is done around the backend
/// ([`crate::cursor`]).
pub trait AdminBackend: Send + Sync + 'static {
    /// Who answers.
    fn health(&self) -> Result<Health, ApiError>;
    /// Every open map's figures, by name.
    fn maps(&self) -> Result<Vec<MapStatus>, ApiError>;
    /// One map's figures.
    fn map(&self, map: &str) -> Result<MapStatus, ApiError>;
    /// A page of queued records.
    fn queued(&self, map: &str, query: &PageQuery) -> Result<Page<QueuedRecord>, ApiError>;
    /// A page of catch-up errors.
    fn errors(&self, map: &str, query: &PageQuery) -> Result<Page<CatchupError>, ApiError>;
    /// Pauses the map (R5); returns its figures after.
    fn pause(&self, map: &str) -> Result<MapStatus, ApiError>;
    /// Resumes the map (R12, R13).
    fn resume(&self, map: &str, mode: ResumeMode) -> Result<MapStatus, ApiError>;
    /// Skips to live during catch-up (R16).
    fn skip_to_live(&self, map: &str, preserve: bool) -> Result<MapStatus, ApiError>;
    /// Starts a retry job (R16a).
    fn retry(&self, map: &str, selection: &Selection, forced: bool) -> Result<RetryJob, ApiError>;
    /// Discards catch-up errors; returns how many.
    fn discard_errors(&self, map: &str, selection: &Selection) -> Result<u64, ApiError>;
    /// The jobs the backend remembers, oldest first.
    fn jobs(&self) -> Result<Vec<RetryJob>, ApiError>;
    /// One job.
    fn job(&self, id: u64) -> Result<RetryJob, ApiError>;
    /// Asks a job to stop; returns its progress.
    fn cancel_job(&self, id: u64) -> Result<RetryJob, ApiError>;
    /// Every open map's figures and counters, for `/metrics`. By default
    /// the figures of [`AdminBackend::maps`] without counters.
    fn metrics(&self) -> Result<Vec<MapMetrics>, ApiError> {
        Ok(self.maps()?.into_iter().map(|status| MapMetrics { status, counters: None }).collect())
    }
}

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The answer for an error.
    pub fn error(error: &ApiError) -> Answer {
        Answer { status: error.code.http_status(), body: error.to_json() }
    }

    fn ok(status: u16, value: &impl Serialize) -> Answer {
        Answer { status, body: serde_json::to_vec(value).expect("schema types always serialise") }
    }
}

/// Decodes and runs one request: the whole API as a function.
pub fn handle(backend: &dyn AdminBackend, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Answer {
    match decode(method, path, query, body).and_then(|request| run(backend, request)) {
        Ok(answer) => answer,
        Err(error) => Answer::error(&error),
    }
}

/// Runs a decoded request against `backend`.
pub fn run(backend: &dyn AdminBackend, request: ApiRequest) -> Result<Answer, ApiError> {
    Ok(match request {
        ApiRequest::Health => Answer::ok(200, &backend.health()?),
        ApiRequest::ListMaps => Answer::ok(200, &MapList { maps: backend.maps()? }),
        ApiRequest::GetMap { map } => Answer::ok(200, &backend.map(&map)?),
        ApiRequest::Queued { map, query } => {
            let page = backend.queued(&map, &unbind_query(List::Queued, &map, query)?)?;
            Answer::ok(200, &bind_page(List::Queued, page))
        }
        ApiRequest::Errors { map, query } => {
            let page = backend.errors(&map, &unbind_query(List::Errors, &map, query)?)?;
            Answer::ok(200, &bind_page(List::Errors, page))
        }
        ApiRequest::Pause { map } => Answer::ok(200, &backend.pause(&map)?),
        ApiRequest::Resume { map, mode } => Answer::ok(200, &backend.resume(&map, mode)?),
        ApiRequest::SkipToLive { map, preserve } => Answer::ok(200, &backend.skip_to_live(&map, preserve)?),
        ApiRequest::Retry { map, selection, forced } => Answer::ok(202, &backend.retry(&map, &selection, forced)?),
        ApiRequest::DiscardErrors { map, selection } => {
            let discarded = backend.discard_errors(&map, &selection)?;
            Answer::ok(200, &Discarded { map, discarded })
        }
        ApiRequest::ListJobs => Answer::ok(200, &JobList { jobs: backend.jobs()? }),
        ApiRequest::GetJob { id } => Answer::ok(200, &backend.job(id)?),
        ApiRequest::CancelJob { id } => Answer::ok(200, &backend.cancel_job(id)?),
    })
}

fn unbind_query(list: List, map: &str, mut query: PageQuery) -> Result<PageQuery, ApiError> {
    if let Some(after) = &query.after {
        query.after = Some(cursor::unbind(list, map, after)?.to_owned());
    }
    Ok(query)
}

fn bind_page<T>(list: List, mut page: Page<T>) -> Page<T> {
    page.next = page.next.map(|next| cursor::bind(list, &page.map, &next));
    page
}
