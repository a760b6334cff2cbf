//! R24: a service that runs its own HTTP server mounts the API's router
//! (here under `/ops`), with its own authentication in front or the API's
//! bearer check; every documented route is served there.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pauselog::MapConfig;
use pauselog_admin::request::ROUTES;
use pauselog_admin::router::{router, Auth};
use pauselog_admin::schema::{ErrorBody, ErrorCode, MapStatus};
use pauselog_admin::Token;
use pauselog_tests::{rec, Fixture};
use tower::ServiceExt;

use super::serving_engine;

fn call(app: &axum::Router, method: &str, uri: &str, body: &str, token: Option<&str>) -> (StatusCode, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Body::from(body.to_owned())).expect("request");
    runtime.block_on(async {
        let response = app.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, body.to_vec())
    })
}

#[test]
fn the_router_serves_every_documented_route_when_nested() {
    let Fixture { dir: _dir, engine, dest: _, map, .. } = Fixture::named("customers", MapConfig::default());
    map.pause().expect("pause");
    map.submit(rec("k", 1)).expect("queued");
    let app = axum::Router::new().nest("/ops", router(engine.admin_backend(), Auth::Vetted));

    for route in ROUTES {
        let path = format!("/ops{}", route.path.replace("{map}", "customers").replace("{id}", "1"));
        let body = match route.path.rsplit('/').next() {
            Some("resume") => r#"{"mode":"SkipToLivePreserve"}"#,
            Some("skip-to-live") => r#"{"preserve":true}"#,
            Some("retry" | "discard-errors") => r#"{"selection":{"kind":"all"}}"#,
            _ => "",
        };
        let (status, answer) = call(&app, route.method, &path, body, None);
        if !status.is_success() {
            let error: ErrorBody = serde_json::from_slice(&answer).expect("an error body");
            let code = error.error.code;
            assert!(
                !matches!(code, ErrorCode::UnknownRoute | ErrorCode::MethodNotAllowed | ErrorCode::MalformedJson),
                "{} {path}: {error:?}",
                route.method
            );
        }
    }
    let (status, answer) = call(&app, "GET", "/ops/v1/maps/customers", "", None);
    assert_eq!(status, StatusCode::OK);
    let status: MapStatus = serde_json::from_slice(&answer).expect("a map status");
    assert_eq!(status.name, "customers");
    drop(map);
    engine.close().expect("close");
}

#[test]
fn a_mounted_router_can_demand_the_bearer_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = serving_engine(dir.path());
    let token = "mounted-router-token-42";
    let app = router(engine.admin_backend(), Auth::Bearer(Token::new(token).expect("token")));
    assert_eq!(call(&app, "GET", "/v1/maps", "", None).0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "GET", "/v1/maps", "", Some("mounted-router-token-41")).0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, "GET", "/v1/maps", "", Some(token)).0, StatusCode::OK);
    engine.close().expect("close");
    // After close the backend answers, and says why.
    let (status, answer) = call(&app, "GET", "/v1/maps", "", Some(token));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&answer).contains("engine_closed"));
}
