//! The request decoder: method, path, query string and body in, a typed
//! [`ApiRequest`] or an [`ApiError`] out. Pure (no I/O, no engine), so the
//! router, the tests and the fuzz target all run the same code, and a
//! request that does not decode never reaches the engine.
//!
//! ```
//! use pauselog_admin::request::{decode, ApiRequest};
//! use pauselog_admin::schema::ResumeMode;
//! let request = decode("POST", "/v1/maps/customers/resume", None, br#"{"mode": "CatchUp"}"#).unwrap();
//! assert_eq!(request, ApiRequest::Resume { map: "customers".into(), mode: ResumeMode::CatchUp });
//! assert!(decode("POST", "/v2/maps/customers/pause", None, b"").is_err());
//! ```

use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::schema::{
    ApiError, DiscardRequest, ErrorCode, ResumeMode, ResumeRequest, RetryRequest, Selection, SkipToLiveRequest,
    API_VERSION,
};

/// Longest request body the server reads, in bytes. The largest legitimate
/// body is a retry or discard of a selected page of seqs (1000 seqs are
/// under 25 KiB of JSON).
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;
/// Longest integration key, in bytes (the engine's limit).
pub const KEY_BYTES_MAX: usize = 1024;
/// Default page size.
pub const PAGE_LIMIT_DEFAULT: u32 = 50;
/// Largest page size.
pub const PAGE_LIMIT_MAX: u32 = 1000;
/// Most seqs in one `Selection::Seqs`.
pub const SELECTION_SEQS_MAX: usize = 10_000;

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path, with `{map}` and `{id}` for its parameters.
    pub path: &'static str,
    /// What it does.
    pub summary: &'static str,
}

/// Every route of version 1. `docs/admin-api.md` documents each (a test
/// checks both ways).
pub const ROUTES: &[Route] = &[
    Route { method: "GET", path: "/v1", summary: "who answers: API version, data directory, pid" },
    Route { method: "GET", path: "/v1/maps", summary: "every open table map with its R9 figures" },
    Route { method: "GET", path: "/v1/maps/{map}", summary: "one map's R9 figures" },
    Route { method: "GET", path: "/v1/maps/{map}/queued", summary: "a page of queued records" },
    Route { method: "GET", path: "/v1/maps/{map}/errors", summary: "a page of catch-up errors" },
    Route { method: "POST", path: "/v1/maps/{map}/pause", summary: "pause the map" },
    Route { method: "POST", path: "/v1/maps/{map}/resume", summary: "resume a paused map in a mode" },
    Route { method: "POST", path: "/v1/maps/{map}/skip-to-live", summary: "skip to live during catch-up" },
    Route { method: "POST", path: "/v1/maps/{map}/retry", summary: "start a retry job of catch-up errors" },
    Route { method: "POST", path: "/v1/maps/{map}/discard-errors", summary: "discard catch-up errors" },
    Route { method: "GET", path: "/v1/jobs", summary: "the retry jobs the engine remembers" },
    Route { method: "GET", path: "/v1/jobs/{id}", summary: "one retry job's progress" },
    Route { method: "POST", path: "/v1/jobs/{id}/cancel", summary: "cancel a retry job" },
];

/// The query of a listing (`?key=K&after=CURSOR&limit=N&payload=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// Only this integration key.
    pub key: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Page size, 1..=1000. Default: 50.
    pub limit: u32,
    /// Include each record's payload (base64).
    pub payload: bool,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRequest {
    /// `GET /v1`.
    Health,
    /// `GET /v1/maps`.
    ListMaps,
    /// `GET /v1/maps/{map}`.
    GetMap {
        /// The map.
        map: String,
    },
    /// `GET /v1/maps/{map}/queued`.
    Queued {
        /// The map.
        map: String,
        /// The page asked for.
        query: PageQuery,
    },
    /// `GET /v1/maps/{map}/errors`.
    Errors {
        /// The map.
        map: String,
        /// The page asked for.
        query: PageQuery,
    },
    /// `POST /v1/maps/{map}/pause`.
    Pause {
        /// The map.
        map: String,
    },
    /// `POST /v1/maps/{map}/resume`.
    Resume {
        /// The map.
        map: String,
        /// How.
        mode: ResumeMode,
    },
    /// `POST /v1/maps/{map}/skip-to-live`.
    SkipToLive {
        /// The map.
        map: String,
        /// Keep the records not replayed as catch-up errors.
        preserve: bool,
    },
    /// `POST /v1/maps/{map}/retry`.
    Retry {
        /// The map.
        map: String,
        /// Which errors.
        selection: Selection,
        /// Also `Superseded` ones.
        forced: bool,
    },
    /// `POST /v1/maps/{map}/discard-errors`.
    DiscardErrors {
        /// The map.
        map: String,
        /// Which errors.
        selection: Selection,
    },
    /// `GET /v1/jobs`.
    ListJobs,
    /// `GET /v1/jobs/{id}`.
    GetJob {
        /// The job.
        id: u64,
    },
    /// `POST /v1/jobs/{id}/cancel`.
    CancelJob {
        /// The job.
        id: u64,
    },
}

fn error(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// Decodes one request. `path` is the path alone (no query string);
/// `query` the part after `?`, if any.
pub fn decode(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Result<ApiRequest, ApiError> {
    if body.len() > REQUEST_BODY_BYTES_MAX {
        return Err(error(
            ErrorCode::PayloadTooLarge,
            format!("the request body has {} bytes; the limit is {REQUEST_BODY_BYTES_MAX}", body.len()),
        ));
    }
    let rest = version_rest(path)?;
    let segments: Vec<&str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
    let (expected_method, request) = match segments.as_slice() {
        [] => ("GET", Shape::Health),
        ["maps"] => ("GET", Shape::ListMaps),
        ["maps", map] => ("GET", Shape::Map(map, Action::Get)),
        ["maps", map, "queued"] => ("GET", Shape::Map(map, Action::Queued)),
        ["maps", map, "errors"] => ("GET", Shape::Map(map, Action::Errors)),
        ["maps", map, "pause"] => ("POST", Shape::Map(map, Action::Pause)),
        ["maps", map, "resume"] => ("POST", Shape::Map(map, Action::Resume)),
        ["maps", map, "skip-to-live"] => ("POST", Shape::Map(map, Action::SkipToLive)),
        ["maps", map, "retry"] => ("POST", Shape::Map(map, Action::Retry)),
        ["maps", map, "discard-errors"] => ("POST", Shape::Map(map, Action::Discard)),
        ["jobs"] => ("GET", Shape::ListJobs),
        ["jobs", id] => ("GET", Shape::Job(id, false)),
        ["jobs", id, "cancel"] => ("POST", Shape::Job(id, true)),
        _ => {
            return Err(error(
                ErrorCode::UnknownRoute,
                format!(
                "no route {path} in API version {API_VERSION}; GET /v1 answers, the routes are in docs/admin-api.md"
            ),
            ))
        }
    };
    if method != expected_method {
        return Err(error(
            ErrorCode::MethodNotAllowed,
            format!("{path} takes {expected_method}, not {}", printable(method)),
        ));
    }
    let takes_query = matches!(request, Shape::Map(_, Action::Queued | Action::Errors));
    if !takes_query && query.is_some_and(|q| !q.is_empty()) {
        return Err(error(ErrorCode::InvalidInput, format!("{path} takes no query string")));
    }
    if method == "GET" && !body.is_empty() {
        return Err(error(ErrorCode::InvalidInput, format!("GET {path} takes no body")));
    }
    Ok(match request {
        Shape::Health => ApiRequest::Health,
        Shape::ListMaps => ApiRequest::ListMaps,
        Shape::ListJobs => ApiRequest::ListJobs,
        Shape::Job(id, cancel) => {
            let id = id
                .parse::<u64>()
                .map_err(|_| error(ErrorCode::InvalidInput, format!("job id {:?} is not a number", printable(id))))?;
            require_empty_object(path, body)?;
            if cancel {
                ApiRequest::CancelJob { id }
            } else {
                ApiRequest::GetJob { id }
            }
        }
        Shape::Map(map, action) => {
            validate_map_name(map)?;
            let map = map.to_owned();
            match action {
                Action::Get => ApiRequest::GetMap { map },
                Action::Queued => ApiRequest::Queued { map, query: page_query(query.unwrap_or(""))? },
                Action::Errors => ApiRequest::Errors { map, query: page_query(query.unwrap_or(""))? },
                Action::Pause => {
                    require_empty_object(path, body)?;
                    ApiRequest::Pause { map }
                }
                Action::Resume => ApiRequest::Resume { map, mode: json::<ResumeRequest>(path, body)?.mode },
                Action::SkipToLive => {
                    ApiRequest::SkipToLive { map, preserve: json::<SkipToLiveRequest>(path, body)?.preserve }
                }
                Action::Retry => {
                    let RetryRequest { selection, forced } = json(path, body)?;
                    validate_selection(&selection)?;
                    ApiRequest::Retry { map, selection, forced }
                }
                Action::Discard => {
                    let DiscardRequest { selection } = json(path, body)?;
                    validate_selection(&selection)?;
                    ApiRequest::DiscardErrors { map, selection }
                }
            }
        }
    })
}

/// The route shapes before their parameters are checked.
enum Shape<'a> {
    Health,
    ListMaps,
    ListJobs,
    Map(&'a str, Action),
    Job(&'a str, bool),
}

enum Action {
    Get,
    Queued,
    Errors,
    Pause,
    Resume,
    SkipToLive,
    Retry,
    Discard,
}

/// The path after `/v1`, without its slashes at either end.
fn version_rest(path: &str) -> Result<&str, ApiError> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let (version, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if version == format!("v{API_VERSION}") {
        return Ok(rest.strip_suffix('/').unwrap_or(rest));
    }
    let looks_versioned =
        version.len() > 1 && version.starts_with('v') && version[1..].bytes().all(|b| b.is_ascii_digit());
    if looks_versioned {
        return Err(error(
            ErrorCode::UnknownVersion,
            format!("API version {} is not served here; this engine serves /v{API_VERSION}/", &version[1..]),
        ));
    }
    Err(error(ErrorCode::UnknownRoute, format!("no route {}; the API lives under /v{API_VERSION}/", printable(path))))
}

/// At most 200 characters of untrusted text, for messages.
fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn json<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if body.iter().all(u8::is_ascii_whitespace) { "an empty body".to_owned() } else { e.to_string() };
        error(ErrorCode::MalformedJson, format!("POST {path} takes a JSON body (see docs/admin-api.md): {what}"))
    })
}

/// A body that is empty or `{}`.
fn require_empty_object(path: &str, body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}
    json::<Empty>(path, body).map(|_| ())
}

/// Checks a table map name as the engine does (docs/rules.md §1).
pub fn validate_map_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(error(
            ErrorCode::InvalidInput,
            format!(
                "table map name {:?} must be 1-64 characters of [A-Za-z0-9._-] and not \".\" or \"..\"",
                printable(name)
            ),
        ))
    }
}

fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("an integration key is 1-{KEY_BYTES_MAX} bytes of UTF-8, this one has {}", key.len()),
        ));
    }
    Ok(())
}

fn validate_selection(selection: &Selection) -> Result<(), ApiError> {
    match selection {
        Selection::All => Ok(()),
        Selection::Key { key } => validate_key(key),
        Selection::Seqs { seqs } if seqs.is_empty() || seqs.len() > SELECTION_SEQS_MAX => Err(error(
            ErrorCode::InvalidInput,
            format!("a selection of seqs holds 1-{SELECTION_SEQS_MAX} seqs, this one {}", seqs.len()),
        )),
        Selection::Seqs { .. } => Ok(()),
    }
}

/// Parses `key=K&after=C&limit=N&payload=true`: each at most once, nothing
/// else, values percent-decoded (`+` is a space) and valid UTF-8.
fn page_query(query: &str) -> Result<PageQuery, ApiError> {
    let invalid = |message: String| error(ErrorCode::InvalidInput, message);
    let mut page = PageQuery { limit: PAGE_LIMIT_DEFAULT, ..PageQuery::default() };
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&name) {
            return Err(invalid(format!("query parameter {} is given twice", printable(name))));
        }
        let plus_as_space = raw.replace('+', " ");
        let value = percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map_err(|_| invalid(format!("query parameter {} is not percent-encoded UTF-8", printable(name))))?;
        match name {
            "key" => {
                validate_key(&value)?;
                page.key = Some(value.into_owned());
            }
            "after" => page.after = Some(value.into_owned()),
            "limit" => {
                page.limit =
                    value.parse::<u32>().ok().filter(|limit| (1..=PAGE_LIMIT_MAX).contains(limit)).ok_or_else(
                        || invalid(format!("limit {} must be a number from 1 to {PAGE_LIMIT_MAX}", printable(&value))),
                    )?;
            }
            "payload" => {
                page.payload = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => return Err(invalid(format!("payload {} must be true or false", printable(other)))),
                };
            }
            other => {
                return Err(invalid(format!(
                    "unknown query parameter {}; a listing takes key, after, limit and payload",
                    printable(other)
                )))
            }
        }
        seen.push(name);
    }
    Ok(page)
}

/// The query string of `query`, percent-encoded, for clients.
pub fn encode_page_query(query: &PageQuery) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let mut parts = vec![format!("limit={}", query.limit)];
    if let Some(key) = &query.key {
        parts.push(format!("key={}", utf8_percent_encode(key, NON_ALPHANUMERIC)));
    }
    if let Some(after) = &query.after {
        parts.push(format!("after={}", utf8_percent_encode(after, NON_ALPHANUMERIC)));
    }
    if query.payload {
        parts.push("payload=true".to_owned());
    }
    parts.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<ApiRequest, ApiError>) -> ErrorCode {
        result.expect_err("the request is refused").code
    }

    #[test]
    fn every_route_decodes_with_its_method_and_refuses_the_other() {
        for route in ROUTES {
            let path = route.path.replace("{map}", "customers").replace("{id}", "7");
            let body: &[u8] = match route.path.rsplit('/').next() {
                Some("resume") => br#"{"mode":"SkipToLiveDiscard"}"#,
                Some("skip-to-live") => br#"{"preserve":false}"#,
                Some("retry" | "discard-errors") => br#"{"selection":{"kind":"key","key":"k"}}"#,
                _ => b"",
            };
            assert!(decode(route.method, &path, None, body).is_ok(), "{route:?}");
            let other = if route.method == "GET" { "POST" } else { "GET" };
            let other_body: &[u8] = if other == "GET" { b"" } else { body };
            assert_eq!(code(decode(other, &path, None, other_body)), ErrorCode::MethodNotAllowed, "{route:?}");
        }
    }

    #[test]
    fn versions_routes_and_names_are_checked_r20() {
        assert_eq!(code(decode("GET", "/v2/maps", None, b"")), ErrorCode::UnknownVersion);
        assert_eq!(code(decode("GET", "/maps", None, b"")), ErrorCode::UnknownRoute);
        assert_eq!(code(decode("GET", "/v1/mapz", None, b"")), ErrorCode::UnknownRoute);
        assert_eq!(code(decode("GET", "/v1/maps/..", None, b"")), ErrorCode::InvalidInput);
        assert_eq!(code(decode("GET", "/v1/maps/a%2Fb", None, b"")), ErrorCode::InvalidInput);
        assert_eq!(code(decode("GET", "/v1/jobs/x", None, b"")), ErrorCode::InvalidInput);
        assert_eq!(decode("GET", "/v1/", None, b""), Ok(ApiRequest::Health));
    }

    #[test]
    fn bodies_are_strict_json_r20() {
        let resume = |body: &[u8]| decode("POST", "/v1/maps/m/resume", None, body);
        assert_eq!(code(resume(b"")), ErrorCode::MalformedJson);
        assert_eq!(code(resume(b"{\"mode\":")), ErrorCode::MalformedJson);
        assert_eq!(code(resume(br#"{"mode":"Later"}"#)), ErrorCode::MalformedJson);
        assert_eq!(code(resume(br#"{"mode":"CatchUp","extra":1}"#)), ErrorCode::MalformedJson);
        assert_eq!(code(decode("POST", "/v1/maps/m/pause", None, b"{\"x\":1}")), ErrorCode::MalformedJson);
        assert!(decode("POST", "/v1/maps/m/pause", None, b" {} ").is_ok());
        let big = vec![b' '; REQUEST_BODY_BYTES_MAX + 1];
        assert_eq!(code(decode("POST", "/v1/maps/m/pause", None, &big)), ErrorCode::PayloadTooLarge);
        let empty_seqs = br#"{"selection":{"kind":"seqs","seqs":[]}}"#;
        assert_eq!(code(decode("POST", "/v1/maps/m/retry", None, empty_seqs)), ErrorCode::InvalidInput);
    }

    #[test]
    fn page_queries_round_trip_and_refuse_strangers() {
        let query =
            PageQuery { key: Some("USMF|CUST 1/ü&=".into()), after: Some("q-1".into()), limit: 7, payload: true };
        let decoded = decode("GET", "/v1/maps/m/queued", Some(&encode_page_query(&query)), b"");
        assert_eq!(decoded, Ok(ApiRequest::Queued { map: "m".into(), query }));
        for bad in ["limit=0", "limit=1001", "limit=x", "key=", "color=red", "limit=1&limit=2", "key=%ff", "payload=1"]
        {
            assert_eq!(code(decode("GET", "/v1/maps/m/errors", Some(bad), b"")), ErrorCode::InvalidInput, "{bad}");
        }
        assert_eq!(code(decode("GET", "/v1/maps", Some("limit=1"), b"")), ErrorCode::InvalidInput);
    }
}
