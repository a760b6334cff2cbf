//! R24, R20: malformed JSON, an unknown version, an oversized body, an
//! unknown map, a cursor of another map or list, a wrong method or state:
//! each gets its typed JSON error, nothing changes, and the engine keeps
//! serving.

use pauselog::MapConfig;
use pauselog_admin::request::{PageQuery, REQUEST_BODY_BYTES_MAX};
use pauselog_admin::schema::{ErrorCode, MapStateName};
use pauselog_tests::{all_queued, open_map, rec, Fixture};

use super::{client, refused};

#[test]
fn each_bad_request_gets_its_error_and_changes_nothing() {
    let Fixture { dir, engine, dest, map: customers, .. } = Fixture::named("customers", MapConfig::default());
    let vendors = open_map(&engine, "vendors", MapConfig::default(), &dest);
    for map in [&customers, &vendors] {
        map.pause().expect("pause");
        for n in 0..6 {
            map.submit(rec(&format!("k{}", n % 2), n)).expect("queued");
        }
    }
    let client = client(dir.path());
    let before = client.map("customers").expect("status");
    let queue_before = all_queued(&customers, None);
    let page = PageQuery { limit: 2, ..PageQuery::default() };
    let vendors_cursor = client.queued("vendors", &page).expect("page").next.expect("more pages");
    let errors_cursor = format!("e{}", &vendors_cursor[1..]);
    let customers_cursor = client.queued("customers", &page).expect("page").next.expect("more pages");
    let customers_errors_cursor = format!("e{}", &customers_cursor[1..]);
    let oversized = vec![b' '; REQUEST_BODY_BYTES_MAX + 1];

    let cases: Vec<(&str, String, Vec<u8>, ErrorCode)> = vec![
        ("POST", "/v1/maps/customers/resume".into(), b"{\"mode\":".to_vec(), ErrorCode::MalformedJson),
        ("POST", "/v1/maps/customers/resume".into(), br#"{"mode":"Sideways"}"#.to_vec(), ErrorCode::MalformedJson),
        (
            "POST",
            "/v1/maps/customers/resume".into(),
            br#"{"mode":"CatchUp","now":true}"#.to_vec(),
            ErrorCode::MalformedJson,
        ),
        ("POST", "/v1/maps/customers/resume".into(), Vec::new(), ErrorCode::MalformedJson),
        ("POST", "/v2/maps/customers/pause".into(), Vec::new(), ErrorCode::UnknownVersion),
        ("POST", "/v1/maps/customers/resume".into(), oversized, ErrorCode::PayloadTooLarge),
        ("POST", "/v1/maps/nope/resume".into(), br#"{"mode":"CatchUp"}"#.to_vec(), ErrorCode::UnknownMap),
        ("POST", "/v1/maps/bad%20name/pause".into(), Vec::new(), ErrorCode::InvalidInput),
        ("GET", format!("/v1/maps/customers/queued?after={vendors_cursor}"), Vec::new(), ErrorCode::BadCursor),
        ("GET", format!("/v1/maps/customers/errors?after={errors_cursor}"), Vec::new(), ErrorCode::BadCursor),
        ("GET", format!("/v1/maps/customers/errors?after={customers_errors_cursor}"), Vec::new(), ErrorCode::BadCursor),
        ("GET", "/v1/maps/customers/queued?after=q00000000-zz".into(), Vec::new(), ErrorCode::BadCursor),
        ("GET", "/v1/maps/customers/queued?limit=0".into(), Vec::new(), ErrorCode::InvalidInput),
        ("GET", "/v1/maps/customers/resume".into(), Vec::new(), ErrorCode::MethodNotAllowed),
        ("POST", "/v1/maps/customers/skip-to-live".into(), br#"{"preserve":true}"#.to_vec(), ErrorCode::InvalidState),
        (
            "POST",
            "/v1/maps/customers/retry".into(),
            br#"{"selection":{"kind":"seqs","seqs":[]}}"#.to_vec(),
            ErrorCode::InvalidInput,
        ),
        ("GET", "/v1/jobs/77".into(), Vec::new(), ErrorCode::UnknownJob),
        ("GET", "/status".into(), Vec::new(), ErrorCode::UnknownRoute),
    ];
    for (method, path, body, expected) in cases {
        assert_eq!(refused(&client, method, &path, &body), expected, "{method} {path}");
        assert_eq!(client.map("customers").expect("still serving"), before, "{method} {path} changed the map");
    }
    assert_eq!(all_queued(&customers, None), queue_before, "the queue is unchanged");

    // The engine keeps serving good requests.
    let status = client.resume("customers", pauselog_admin::schema::ResumeMode::SkipToLiveDiscard).expect("resume");
    assert_eq!(status.state, MapStateName::Running);
    drop((customers, vendors));
    engine.close().expect("close");
}
