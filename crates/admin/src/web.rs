//! The operator's web page, served by the router beside the API it calls
//! (no separate backend): plain HTML, CSS and JavaScript compiled into the
//! crate (`crates/admin/web/`), nothing fetched from elsewhere.
//!
//! | path | what |
//! |---|---|
//! | `GET /`, `GET /ui` | a redirect to `ui/` |
//! | `GET /ui/` | the page; without a session, a redirect to the login form |
//! | `GET /ui/login`, `POST /ui/login` | the login form: the bearer token in, a session cookie out |
//! | `POST /ui/logout` | ends the session |
//! | `GET /ui/app.js`, `/ui/app.css`, `/ui/favicon.svg` | the page's code and style |
//! | `GET /metrics` | the figures in the Prometheus text format ([`crate::metrics`]) |
//!
//! The session cookie (`pauselog_session_<8 hex digits of the router>`,
//! HttpOnly, SameSite=Strict, path of the router) stands for the token the login form took; the page holds
//! the session's CSRF token and sends it with every POST ([`crate::gate`]).
//! Under [`Auth::Vetted`] the page needs no login: the session starts when
//! the page is first loaded. Every response of the page carries a strict
//! [`CONTENT_SECURITY_POLICY`]: scripts, styles and requests go to this
//! origin only, no inline script runs, and no other site may frame it.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::backend::Answer;
use crate::gate::{refuse_cross_site, Caller};
use crate::router::{blocking, respond, ApiState, Auth};
use crate::schema::{ApiError, ErrorCode};
use crate::session::SESSION_IDLE_MAX;

const INDEX_HTML: &str = include_str!("../web/index.html");
const LOGIN_HTML: &str = include_str!("../web/login.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");
const FAVICON_SVG: &str = include_str!("../web/favicon.svg");

/// The page's Content-Security-Policy: everything from this origin only,
/// no inline script or style, no framing, forms post here only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Longest login form body, in bytes (a token is at most 4096 characters,
/// each at most 3 when percent-encoded).
const LOGIN_BODY_BYTES_MAX: usize = 16 * 1024;

/// The path the router is mounted at (`""` at the root, `"/ops"` when a
/// service nests it there), from the URI before nesting.
fn base(parts: &Parts) -> String {
    let inner = parts.uri.path();
    let Some(OriginalUri(original)) = parts.extensions.get::<OriginalUri>() else { return String::new() };
    let original = original.path();
    match original.strip_suffix(inner) {
        Some(prefix) => prefix.to_owned(),
        // `/ops` nested: the router sees `/`.
        None => original.trim_end_matches('/').to_owned(),
    }
}

/// A response of the page, with the headers every one carries.
fn web_response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect(location: &str) -> Response {
    let mut response = web_response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Sets (or, with `None`, clears) the session cookie of `state`'s router
/// on `response`.
fn set_session_cookie(response: &mut Response, state: &ApiState, parts: &Parts, id: Option<&str>) {
    let path = format!("{}/", base(parts));
    let name = state.gate.sessions.cookie_name();
    let cookie = match id {
        Some(id) => {
            format!("{name}={id}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_IDLE_MAX.as_secs())
        }
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The login form, with a message (static text of ours, never input).
fn login_page(status: StatusCode, message: &'static str) -> Response {
    let notice = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"notice error\" role=\"alert\">{message}</p>")
    };
    web_response(status, "text/html; charset=utf-8", LOGIN_HTML.replace("{{NOTICE}}", &notice))
}

/// `GET /` and `GET /ui`: on to the page.
pub(crate) async fn to_page(request: Request) -> Response {
    let (parts, _) = request.into_parts();
    redirect(&format!("{}/ui/", base(&parts)))
}

/// `GET /ui/`: the page, for a live session (under [`Auth::Vetted`], one
/// starts here).
pub(crate) async fn page(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let (csrf, new_session) = match state.gate.session(&parts.headers) {
        Some((_, csrf)) => (csrf, None),
        None if matches!(state.gate.auth, Auth::Vetted) => {
            let (id, csrf) = state.gate.sessions.create();
            (csrf, Some(id))
        }
        None => return redirect("login"),
    };
    // The token is lowercase hex: nothing in it needs escaping in HTML.
    let mut response = web_response(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML.replace("{{CSRF}}", &csrf));
    if let Some(id) = new_session {
        set_session_cookie(&mut response, &state, &parts, Some(&id));
    }
    response
}

/// `GET /ui/login`: the form (or the page, when there is nothing to log
/// into).
pub(crate) async fn login_form(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    if matches!(state.gate.auth, Auth::Vetted) || state.gate.session(request.headers()).is_some() {
        return redirect("./");
    }
    login_page(StatusCode::OK, "")
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /ui/login`: the token of the form for a session cookie.
pub(crate) async fn login(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    if refuse_cross_site(request.headers()).is_err() {
        return login_page(StatusCode::FORBIDDEN, "This login form was sent from another site, so it was refused.");
    }
    let (parts, body) = request.into_parts();
    let token_matches = match &state.gate.auth {
        Auth::Bearer(token) => {
            let Ok(body) = to_bytes(body, LOGIN_BODY_BYTES_MAX).await else {
                return login_page(StatusCode::BAD_REQUEST, "The login form could not be read.");
            };
            match serde_urlencoded::from_bytes::<LoginForm>(&body) {
                Ok(form) => token.matches(form.token.trim().as_bytes()),
                Err(_) => return login_page(StatusCode::BAD_REQUEST, "The login form could not be read."),
            }
        }
        Auth::Vetted => true,
    };
    if !token_matches {
        tracing::warn!("admin web page: a login with a wrong token was refused");
        return login_page(StatusCode::UNAUTHORIZED, "That is not this engine's admin token.");
    }
    let (id, _) = state.gate.sessions.create();
    let mut response = redirect("./");
    set_session_cookie(&mut response, &state, &parts, Some(&id));
    response
}

/// `POST /ui/logout`: ends the session (a state-changing request: it needs
/// the session's CSRF token like any other).
pub(crate) async fn logout(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    match state.gate.admit(&parts) {
        Ok(caller) => {
            if let Caller::Session { id, .. } = caller {
                state.gate.sessions.remove(&id);
            }
            let mut response = web_response(StatusCode::NO_CONTENT, "text/plain; charset=utf-8", "");
            set_session_cookie(&mut response, &state, &parts, None);
            response
        }
        Err(error) => respond(Answer::error(&error)),
    }
}

/// A page's path with a method it does not take.
pub(crate) async fn wrong_method(request: Request) -> Response {
    let error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not take {}", request.uri().path(), request.method()),
    );
    respond(Answer::error(&error))
}

/// `GET /ui/{asset}`: the page's code, style and icon (public: they hold
/// no secret).
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "favicon.svg" => ("image/svg+xml", FAVICON_SVG),
        _ => {
            let error = ApiError::new(ErrorCode::UnknownRoute, "the web page has no such file; it lives at ui/");
            return respond(Answer::error(&error));
        }
    };
    web_response(StatusCode::OK, content_type, body)
}

/// `GET /metrics`: every open map's figures and counters in the
/// Prometheus text format, for a scraper with the bearer token.
pub(crate) async fn metrics(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let error = ApiError::new(ErrorCode::MethodNotAllowed, "/metrics takes GET only");
        return respond(Answer::error(&error));
    }
    if let Err(error) = state.gate.admit(&parts) {
        return respond(Answer::error(&error));
    }
    let text = blocking(&state, |backend| backend.metrics()).await.and_then(|maps| {
        crate::metrics::encode(maps).map_err(|_| ApiError::new(ErrorCode::Internal, "the metrics could not be encoded"))
    });
    match text {
        Ok(text) => {
            let mut response = Response::new(Body::from(text));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => respond(Answer::error(&error)),
    }
}
