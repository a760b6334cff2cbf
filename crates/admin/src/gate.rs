//! Who may pass: every request of the router (API, web page, `/metrics`)
//! goes through one [`Gate`].
//!
//! - A request with `Authorization: Bearer <token>` passes when the token
//!   is right ([`Auth::Bearer`]) or the router's callers are vetted
//!   ([`Auth::Vetted`]). Browsers never add that header on their own, so
//!   such a request cannot be forged by another site.
//! - A request with the web page's session cookie passes while the session
//!   lives; a state-changing one (any method but GET and HEAD) must also
//!   carry the session's CSRF token in [`CSRF_HEADER`], which only the
//!   page knows (a synchronizer token: another site can make a browser send
//!   the cookie, not read the token).
//! - Every state-changing request that a browser marks as coming from
//!   another site (`Sec-Fetch-Site` other than `same-origin` or `none`, or,
//!   from a browser that does not send it, an `Origin` that is not the
//!   request's own host) is refused before anything else.
//! - Under [`Auth::Vetted`] the rest passes, except a state-changing
//!   request from a browser (it sends `Origin` or `Sec-Fetch-Site`)
//!   without a session's CSRF token: the service's own authentication in
//!   front may be a cookie that another site can make the browser send.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};

use crate::router::Auth;
use crate::schema::{ApiError, ErrorCode};
use crate::session::Sessions;

/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-pauselog-csrf";

/// Admission of a router's requests.
#[derive(Debug)]
pub(crate) struct Gate {
    pub auth: Auth,
    pub sessions: Sessions,
}

/// Who passed the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Vetted by whoever runs the router.
    Vetted,
    /// With the right bearer token.
    Bearer,
    /// With a live session of the web page.
    Session {
        /// The session's id (the cookie's value).
        id: String,
        /// Its CSRF token.
        csrf: String,
    },
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The request comes from a browser: browsers send `Origin` with every
/// state-changing request and `Sec-Fetch-Site` with every request.
fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN) || headers.contains_key("sec-fetch-site")
}

/// Refuses a request a browser marks as sent by another site.
pub(crate) fn refuse_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = |why: String| {
        Err(ApiError::new(
            ErrorCode::CrossSiteRefused,
            format!("{why}; state-changing requests are only taken from this engine's own page"),
        ))
    };
    if let Some(site) = header_text(headers, "sec-fetch-site") {
        return match site {
            "same-origin" | "none" => Ok(()),
            other => refused(format!("the browser says this request comes from a page of another origin ({other})")),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = header_text(headers, header::HOST).unwrap_or_default();
    let origin = origin.to_str().unwrap_or_default();
    let own = ["http://", "https://"].iter().any(|scheme| origin.strip_prefix(scheme) == Some(host));
    if own && !host.is_empty() {
        Ok(())
    } else {
        refused(format!("the request's origin {origin:?} is not this host ({host:?})"))
    }
}

impl Gate {
    pub fn new(auth: Auth) -> Gate {
        Gate { auth, sessions: Sessions::default() }
    }

    /// The live session named by the request's cookie: its id and CSRF token.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, String)> {
        let id = cookie(headers, self.sessions.cookie_name())?;
        self.sessions.csrf_of(id).map(|csrf| (id.to_owned(), csrf))
    }

    /// Admits a request or says why not (see the module's rules).
    pub fn admit(&self, parts: &Parts) -> Result<Caller, ApiError> {
        let headers = &parts.headers;
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD);
        if changes_state {
            refuse_cross_site(headers)?;
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return match &self.auth {
                Auth::Bearer(_) => self.auth.check_headers(headers).map(|()| Caller::Bearer),
                Auth::Vetted => Ok(Caller::Bearer),
            };
        }
        if let Some((id, csrf)) = self.session(headers) {
            if changes_state {
                let presented = header_text(headers, CSRF_HEADER).unwrap_or_default();
                if !constant_time_eq::constant_time_eq(presented.as_bytes(), csrf.as_bytes()) {
                    return Err(ApiError::new(
                        ErrorCode::CrossSiteRefused,
                        format!("a state-changing request of the web page must carry its session's {CSRF_HEADER} header; reload the page"),
                    ));
                }
            }
            return Ok(Caller::Session { id, csrf });
        }
        match &self.auth {
            Auth::Vetted if changes_state && from_browser(headers) => Err(ApiError::new(
                ErrorCode::CrossSiteRefused,
                format!("a browser's state-changing request needs the web page's session and its {CSRF_HEADER} header; open the page at ui/"),
            )),
            Auth::Vetted => Ok(Caller::Vetted),
            Auth::Bearer(_) => self.auth.check_headers(headers).map(|()| Caller::Bearer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Token;

    const TOKEN: &str = "gate-test-token-0123456789";

    fn parts(method: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::builder().method(method).uri("/v1/maps/m/pause");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).expect("a request").into_parts().0
    }

    fn code(result: Result<Caller, ApiError>) -> ErrorCode {
        result.expect_err("refused").code
    }

    #[test]
    fn bearer_gate_takes_the_token_or_a_session_with_its_csrf_token_r24() {
        let gate = Gate::new(Auth::Bearer(Token::new(TOKEN).expect("token")));
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(gate.admit(&parts("POST", &[("authorization", &bearer)])), Ok(Caller::Bearer));
        assert_eq!(code(gate.admit(&parts("GET", &[]))), ErrorCode::Unauthorized);
        assert_eq!(
            code(gate.admit(&parts("GET", &[("authorization", "Bearer wrong-token-0123456")]))),
            ErrorCode::Unauthorized
        );

        let (id, csrf) = gate.sessions.create();
        let cookie = format!("other=1; {}={id}", gate.sessions.cookie_name());
        let same = ("sec-fetch-site", "same-origin");
        assert!(matches!(gate.admit(&parts("GET", &[("cookie", &cookie)])), Ok(Caller::Session { .. })));
        assert_eq!(code(gate.admit(&parts("POST", &[("cookie", &cookie), same]))), ErrorCode::CrossSiteRefused);
        let wrong = ("x-pauselog-csrf", "0000");
        assert_eq!(code(gate.admit(&parts("POST", &[("cookie", &cookie), same, wrong]))), ErrorCode::CrossSiteRefused);
        let right = ("x-pauselog-csrf", csrf.as_str());
        assert!(gate.admit(&parts("POST", &[("cookie", &cookie), same, right])).is_ok());
        let forged = ("sec-fetch-site", "cross-site");
        assert_eq!(
            code(gate.admit(&parts("POST", &[("cookie", &cookie), forged, right]))),
            ErrorCode::CrossSiteRefused
        );
        let sibling = ("sec-fetch-site", "same-site");
        assert_eq!(
            code(gate.admit(&parts("POST", &[("cookie", &cookie), sibling, right]))),
            ErrorCode::CrossSiteRefused
        );
        gate.sessions.remove(&id);
        assert_eq!(code(gate.admit(&parts("GET", &[("cookie", &cookie)]))), ErrorCode::Unauthorized);
    }

    #[test]
    fn origin_is_checked_when_the_browser_sends_no_fetch_metadata() {
        let host = ("host", "127.0.0.1:8080");
        assert!(refuse_cross_site(&parts("POST", &[host, ("origin", "http://127.0.0.1:8080")]).headers).is_ok());
        assert!(refuse_cross_site(&parts("POST", &[host, ("origin", "http://127.0.0.1:9090")]).headers).is_err());
        assert!(refuse_cross_site(&parts("POST", &[host, ("origin", "null")]).headers).is_err());
        assert!(refuse_cross_site(&parts("POST", &[("origin", "http://evil.example")]).headers).is_err());
        assert!(refuse_cross_site(&parts("POST", &[host]).headers).is_ok(), "curl and the CLI send neither");
    }

    #[test]
    fn vetted_gate_still_refuses_a_browser_without_the_csrf_token() {
        let gate = Gate::new(Auth::Vetted);
        assert_eq!(gate.admit(&parts("POST", &[])), Ok(Caller::Vetted));
        assert_eq!(gate.admit(&parts("GET", &[("sec-fetch-site", "cross-site")])), Ok(Caller::Vetted));
        let browser = ("sec-fetch-site", "same-origin");
        assert_eq!(code(gate.admit(&parts("POST", &[browser]))), ErrorCode::CrossSiteRefused);
        let (id, csrf) = gate.sessions.create();
        let cookie = format!("{}={id}", gate.sessions.cookie_name());
        assert!(gate.admit(&parts("POST", &[browser, ("cookie", &cookie), ("x-pauselog-csrf", &csrf)])).is_ok());
    }
}
