//! R24 (issue 17, security): the page and the API need the bearer token; the
//! login form trades it for an HttpOnly, SameSite=Strict session cookie; a
//! state-changing request needs the session's CSRF token and is refused
//! from another site; the page loads nothing from another origin; logging
//! out ends the session. Refused requests change nothing.

use pauselog::MapState;

use super::*;

#[test]
fn requests_without_the_token_are_refused_and_change_nothing() {
    let served = Served::start(&["customers"]);
    let bearer = format!("Bearer {TOKEN}");
    let refused = http(served.addr, "GET", "/v1/maps", &[], "");
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("unauthorized"), "{}", refused.body);
    assert_eq!(http(served.addr, "GET", "/metrics", &[], "").status, 401);
    assert_eq!(http(served.addr, "POST", "/v1/maps/customers/pause", &[], "").status, 401);
    assert_eq!(http(served.addr, "POST", "/ui/logout", &[], "").status, 401);
    assert!(matches!(served.map(0).state(), MapState::Running), "nothing changed");

    let page = http(served.addr, "GET", "/ui/", &[], "");
    assert_eq!(page.status, 303, "the page without a session leads to the login form");
    assert!(page.head.contains("\r\nlocation: login"), "{}", page.head);
    let assets = http(served.addr, "GET", "/ui/app.js", &[], "");
    assert_eq!(assets.status, 200, "the page's code holds no secret");
    assert!(!assets.body.contains("innerHTML") && !assets.body.contains("insertAdjacentHTML"));

    // The bearer token opens the API and the metrics.
    let metrics = http(served.addr, "GET", "/metrics", &[("authorization", &bearer)], "");
    assert_eq!(metrics.status, 200);
    assert!(metrics.head.contains("content-type: text/plain; version=0.0.4"), "{}", metrics.head);
    assert!(metrics.body.contains("pauselog_map_state{map=\"customers\",state=\"Running\"} 1"), "{}", metrics.body);
    served.close();
}

#[test]
fn a_session_cookie_needs_its_csrf_token_and_the_same_site() {
    let served = Served::start(&["customers"]);
    let wrong = http(
        served.addr,
        "POST",
        "/ui/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        "token=not-the-token-0000000",
    );
    assert_eq!(wrong.status, 401);
    assert!(!wrong.head.contains("set-cookie"), "no session for a wrong token");
    let login = http(
        served.addr,
        "POST",
        "/ui/login",
        &[("content-type", "application/x-www-form-urlencoded"), ("origin", &served.url(""))],
        &format!("token={TOKEN}"),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let set_cookie =
        login.head.lines().find_map(|line| line.strip_prefix("set-cookie: ")).expect("a session cookie").to_owned();
    assert!(set_cookie.contains("; httponly") && set_cookie.contains("; samesite=strict"), "{set_cookie}");
    let from_login =
        http(served.addr, "POST", "/ui/login", &[("sec-fetch-site", "cross-site")], &format!("token={TOKEN}"));
    assert_eq!(from_login.status, 403, "a login form posted from another site");

    // Name and id are lowercase, so the lowercased head shows them as sent.
    assert!(set_cookie.starts_with("pauselog_session_"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let page = http(served.addr, "GET", "/ui/", &[("cookie", &cookie)], "");
    assert_eq!(page.status, 200);
    assert!(page.head.contains("content-security-policy: default-src 'none'; script-src 'self'"), "{}", page.head);
    let csrf = page.body.split("name=\"pauselog-csrf\" content=\"").nth(1).and_then(|rest| rest.split('"').next());
    let csrf = csrf.expect("the page holds its CSRF token").to_owned();
    assert_eq!(
        http(served.addr, "GET", "/v1/maps", &[("cookie", &cookie)], "").status,
        200,
        "reads need no CSRF token"
    );

    let same_site = ("sec-fetch-site", "same-origin");
    let no_token = http(served.addr, "POST", "/v1/maps/customers/pause", &[("cookie", &cookie), same_site], "{}");
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(no_token.body.contains("cross_site_refused"), "{}", no_token.body);
    let forged = [("cookie", cookie.as_str()), ("sec-fetch-site", "cross-site"), ("x-pauselog-csrf", csrf.as_str())];
    assert_eq!(http(served.addr, "POST", "/v1/maps/customers/pause", &forged, "{}").status, 403);
    let other_port = format!("http://127.0.0.1:{}", served.addr.port() + 1);
    let other_origin =
        [("cookie", cookie.as_str()), ("origin", other_port.as_str()), ("x-pauselog-csrf", csrf.as_str())];
    assert_eq!(http(served.addr, "POST", "/v1/maps/customers/pause", &other_origin, "{}").status, 403);
    assert!(matches!(served.map(0).state(), MapState::Running), "refused requests changed nothing");

    let allowed = [("cookie", cookie.as_str()), same_site, ("x-pauselog-csrf", csrf.as_str())];
    assert_eq!(http(served.addr, "POST", "/v1/maps/customers/pause", &allowed, "{}").status, 200);
    assert!(matches!(served.map(0).state(), MapState::Paused { .. }));
    assert_eq!(http(served.addr, "POST", "/ui/logout", &allowed, "").status, 204);
    assert_eq!(http(served.addr, "GET", "/v1/maps", &[("cookie", &cookie)], "").status, 401, "the session ended");
    served.close();
}

#[test]
fn the_browser_logs_in_keeps_the_cookie_from_scripts_and_logs_out() {
    let served = Served::start(&["customers", "vendors"]);
    let Some(browser) = Browser::start() else { return };
    browser.goto(&served.url("/"));
    browser.wait_until("the login form", || browser.url().ends_with("/ui/login"));
    browser.fill("#token", "not-the-admin-token-0000");
    browser.click("#login");
    browser.wait_text(".notice.error", "the refusal", |t| t.contains("not this engine's admin token"));
    assert_eq!(browser.console_errors(&["401 (Unauthorized)"]), Vec::<String>::new());

    browser.fill("#token", TOKEN);
    browser.click("#login");
    browser.wait_until("both maps", || browser.count("#maps tbody tr") == 2);
    assert_eq!(browser.eval("return document.cookie;"), "", "the session cookie is HttpOnly");
    let foreign = browser.eval(
        "return [...document.querySelectorAll('script[src], link[href]')].map(e => new URL(e.src || e.href).origin)\
         .filter(o => o !== location.origin);",
    );
    assert_eq!(foreign, serde_json::json!([]), "everything loads from the engine's own origin");

    browser.click("#logout");
    browser.wait_until("the login form again", || browser.url().ends_with("/ui/login"));
    let status = browser.eval("return fetch('../v1/maps').then(r => r.status);");
    assert_eq!(status, 401, "the API refuses the ended session");
    assert_eq!(browser.console_errors(&["401 (Unauthorized)"]), Vec::<String>::new());
    drop(browser);
    served.close();
}
