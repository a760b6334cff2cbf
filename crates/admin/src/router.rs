//! The API as an axum [`Router`], for the engine's own listeners and for a
//! service that mounts it into its HTTP server:
//!
//! ```no_run
//! # fn demo(backend: std::sync::Arc<dyn pauselog_admin::AdminBackend>, token: pauselog_admin::Token) {
//! use pauselog_admin::router::{router, Auth};
//! let admin = router(backend, Auth::Bearer(token));
//! let app: axum::Router = axum::Router::new().nest("/pauselog", admin);
//! # }
//! ```
//!
//! The router serves, beside each other:
//!
//! - `/v1/…`, the API: every request is answered by
//!   [`crate::backend::handle`] on a blocking thread; the body is read up to
//!   [`REQUEST_BODY_BYTES_MAX`](crate::request::REQUEST_BODY_BYTES_MAX) (and,
//!   on the engine's own listeners, within [`BODY_READ_TIMEOUT`]);
//! - `/ui/`, the web page ([`crate::web`]), and `/`, which leads to it;
//! - `/metrics`, the figures in the Prometheus text format ([`crate::metrics`]).
//!
//! Every request passes one gate first ([`crate::gate`]): the bearer token,
//! or the web page's session cookie with its CSRF token on state-changing
//! requests. Any other path gets a JSON `unknown_route` or
//! `unknown_version` error.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;

use crate::backend::{handle, AdminBackend, Answer};
use crate::gate::Gate;
use crate::request::REQUEST_BODY_BYTES_MAX;
use crate::schema::{ApiError, ErrorCode};
use crate::token::Token;
use crate::web;

/// Longest time a request body may take to arrive.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may call the API through this router.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Auth {
    /// Every request that reaches the router: its connections were vetted
    /// before (the Unix socket checks its peer's uid), or the service that
    /// mounts the router authenticates in front of it.
    Vetted,
    /// Requests with `Authorization: Bearer <token>`.
    Bearer(Token),
}

impl Auth {
    /// `Ok` if `request` may pass by its `Authorization` header alone.
    pub fn check<B>(&self, request: &axum::http::Request<B>) -> Result<(), ApiError> {
        self.check_headers(request.headers())
    }

    /// `Ok` if these request headers may pass by their `Authorization`
    /// header alone.
    pub fn check_headers(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let Auth::Bearer(token) = self else { return Ok(()) };
        let presented = headers.get(header::AUTHORIZATION).and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        match presented {
            Some(candidate) if token.matches(candidate) => Ok(()),
            Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "the bearer token is wrong")),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this listener needs an Authorization: Bearer <token> header, the token from the engine's token file (or a login on the web page at /ui/)",
            )),
        }
    }
}

/// What every handler of one router shares.
pub(crate) struct ApiState {
    pub backend: Arc<dyn AdminBackend>,
    pub gate: Gate,
    body_read_timeout: Option<Duration>,
}

/// The router over `backend` (API, web page, `/metrics`), admitting
/// requests by `auth`. Bodies are read without a deadline of the router's
/// own: the mounting service's server sets its timeouts (the engine's
/// listeners use [`BODY_READ_TIMEOUT`]).
pub fn router(backend: Arc<dyn AdminBackend>, auth: Auth) -> Router {
    router_with_body_timeout(backend, auth, None)
}

/// [`router`] that answers `request_timeout` when a body takes longer than
/// `body_read_timeout`; needs a tokio runtime with its timer enabled.
pub fn router_with_body_timeout(
    backend: Arc<dyn AdminBackend>,
    auth: Auth,
    body_read_timeout: Option<Duration>,
) -> Router {
    let state = Arc::new(ApiState { backend, gate: Gate::new(auth), body_read_timeout });
    Router::new()
        .route("/v1", any(api))
        .route("/v1/", any(api))
        .route("/v1/{*rest}", any(api))
        .route("/metrics", any(web::metrics))
        .route("/", get(web::to_page).fallback(web::wrong_method))
        .route("/ui", get(web::to_page).fallback(web::wrong_method))
        .route("/ui/", get(web::page).fallback(web::wrong_method))
        .route("/ui/login", get(web::login_form).post(web::login).fallback(web::wrong_method))
        .route("/ui/logout", post(web::logout).fallback(web::wrong_method))
        .route("/ui/{asset}", get(web::asset).fallback(web::wrong_method))
        .fallback(api)
        .with_state(state)
}

async fn api(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(error) = state.gate.admit(&parts) {
        return respond(Answer::error(&error));
    }
    let read = to_bytes(body, REQUEST_BODY_BYTES_MAX);
    let read = match state.body_read_timeout {
        Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| limit),
        None => Ok(read.await),
    };
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            let too_large =
                std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            let error = if too_large {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the request body is larger than the limit of {REQUEST_BODY_BYTES_MAX} bytes"),
                )
            } else {
                ApiError::new(ErrorCode::MalformedJson, format!("the request body could not be read: {error}"))
            };
            return respond(Answer::error(&error));
        }
        Err(limit) => {
            let error = ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request body did not arrive within {} s", limit.as_secs_f64()),
            );
            return respond(Answer::error(&error));
        }
    };
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let answer = blocking(&state, move |backend| Ok(handle(backend, &method, &path, query.as_deref(), &body))).await;
    respond(answer.unwrap_or_else(|error| Answer::error(&error)))
}

/// Runs `call` on the backend on a blocking thread (the engine's calls
/// take locks and wait for fsyncs).
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<ApiState>,
    call: impl FnOnce(&dyn AdminBackend) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = state.backend.clone();
    tokio::task::spawn_blocking(move || call(backend.as_ref())).await.unwrap_or_else(|join_error| {
        tracing::error!(error = %join_error, "an admin request's handler panicked");
        Err(ApiError::new(ErrorCode::Internal, "the engine failed while handling the request"))
    })
}

/// The HTTP response of an API answer.
pub(crate) fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
