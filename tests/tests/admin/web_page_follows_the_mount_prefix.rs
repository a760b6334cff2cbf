//! R24, issue 17: a service that mounts the router under a prefix gets the
//! web page and `/metrics` there too; with its own authentication in front
//! (`Auth::Vetted`) the page needs no login, its session cookie is scoped
//! to the prefix, and a browser's state-changing request still needs the
//! page's CSRF token while a tool's passes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pauselog::{MapConfig, MapState};
use pauselog_admin::router::{router, Auth};
use pauselog_tests::Fixture;
use tower::ServiceExt;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

fn call(app: &axum::Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = if method == "POST" { "{}" } else { "" };
    let request = request.body(Body::from(body)).expect("request");
    runtime.block_on(async {
        let response = app.clone().oneshot(request).await.expect("the router answers");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&body).into_owned() }
    })
}

#[test]
fn page_session_and_metrics_under_a_prefix() {
    let Fixture { dir: _, engine, dest: _, map, .. } = Fixture::named("customers", MapConfig::default());
    let app = axum::Router::new().nest("/ops", router(engine.admin_backend(), Auth::Vetted));

    let root = call(&app, "GET", "/ops", &[]);
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.headers["location"], "/ops/ui/");
    let page = call(&app, "GET", "/ops/ui/", &[]);
    assert_eq!(page.status, StatusCode::OK, "a vetted router needs no login");
    let cookie = page.headers["set-cookie"].to_str().expect("ascii").to_owned();
    assert!(cookie.contains("; Path=/ops/; HttpOnly; SameSite=Strict"), "{cookie}");
    assert!(page.headers["content-security-policy"].to_str().expect("ascii").starts_with("default-src 'none'"));
    let session = cookie.split(';').next().expect("name=value").to_owned();
    let csrf = page.body.split("name=\"pauselog-csrf\" content=\"").nth(1).and_then(|r| r.split('"').next());
    let csrf = csrf.expect("the page's CSRF token").to_owned();
    assert_eq!(call(&app, "GET", "/ops/ui/login", &[]).status, StatusCode::SEE_OTHER, "nothing to log into");

    let browser = [("cookie", session.as_str()), ("sec-fetch-site", "same-origin")];
    let refused = call(&app, "POST", "/ops/v1/maps/customers/pause", &browser);
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(matches!(map.state(), MapState::Running), "nothing changed");
    let with_token = [browser[0], browser[1], ("x-pauselog-csrf", csrf.as_str())];
    assert_eq!(call(&app, "POST", "/ops/v1/maps/customers/pause", &with_token).status, StatusCode::OK);
    assert!(matches!(map.state(), MapState::Paused { .. }));
    let tool = call(&app, "POST", "/ops/v1/maps/customers/resume", &[]);
    assert_eq!(tool.status, StatusCode::BAD_REQUEST, "a tool passes the gate (and then needs a mode): {}", tool.body);

    let metrics = call(&app, "GET", "/ops/metrics", &[]);
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.body.contains("pauselog_map_state{map=\"customers\",state=\"Paused\"} 1"), "{}", metrics.body);
    assert!(
        metrics.body.contains("pauselog_submits_total{map=\"customers\",outcome=\"queued\"} 0"),
        "{}",
        metrics.body
    );
    assert_eq!(call(&app, "POST", "/ops/metrics", &[]).status, StatusCode::METHOD_NOT_ALLOWED);
    let wrong = call(&app, "DELETE", "/ops/ui/", &[]);
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong.body.contains("method_not_allowed"), "a JSON error like the API's: {}", wrong.body);
    assert_eq!(call(&app, "GET", "/ops/ui/nothing.js", &[]).status, StatusCode::NOT_FOUND);
    drop(map);
    engine.close().expect("close");
}
