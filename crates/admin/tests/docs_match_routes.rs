//! `docs/admin-api.md` is the API's documentation (R24): it documents every
//! route of [`ROUTES`] and no other, and every JSON example in it decodes
//! into the schema and serialises back unchanged, so the page cannot drift
//! from the code.

use pauselog_admin::request::{decode, ROUTES};
use pauselog_admin::schema::{
    CatchupError, Discarded, ErrorBody, Health, JobList, MapList, MapStatus, Page, QueuedRecord, RetryJob,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/admin-api.md");

/// One fenced example: the route heading above it, its label, its text.
struct Example {
    route: Option<(String, String)>,
    label: String,
    text: String,
}

fn examples() -> (Vec<(String, String)>, Vec<Example>) {
    let (mut routes, mut examples) = (Vec::new(), Vec::new());
    let mut route = None;
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(heading) = line.strip_prefix("### ") {
            let (method, path) = heading.split_once(' ').expect("a route heading is METHOD PATH");
            route = Some((method.to_owned(), path.to_owned()));
            routes.push((method.to_owned(), path.to_owned()));
        } else if let Some(label) = line.strip_prefix("```json ") {
            let text: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            examples.push(Example { route: route.clone(), label: label.to_owned(), text: text.join("\n") });
        }
    }
    (routes, examples)
}

fn round_trips<T: DeserializeOwned + Serialize>(text: &str) {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"));
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("not the schema ({e}):\n{text}"));
    assert_eq!(serde_json::to_value(typed).expect("serialises"), value, "does not round-trip:\n{text}");
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let (documented, _) = examples();
    let mut routes: Vec<(String, String)> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    let mut documented_sorted = documented.clone();
    routes.sort();
    documented_sorted.sort();
    assert_eq!(documented_sorted, routes, "the ### headings of docs/admin-api.md and ROUTES differ");
    for route in ROUTES {
        let row = format!("| {} | `{}` |", route.method, route.path);
        assert!(DOC.contains(&row), "the route table lacks {row}");
    }
}

#[test]
fn every_example_decodes_and_round_trips() {
    let (_, examples) = examples();
    let mut checked = 0;
    for example in examples {
        let text = example.text.as_str();
        match (example.label.as_str(), example.route.as_ref().map(|(m, p)| (m.as_str(), p.as_str()))) {
            ("error", _) => round_trips::<ErrorBody>(text),
            ("request", Some((method, path))) => {
                let path = path.replace("{map}", "customers").replace("{id}", "3");
                decode(method, &path, None, text.as_bytes())
                    .unwrap_or_else(|e| panic!("{method} {path} refuses its documented body ({e}):\n{text}"));
            }
            ("response", Some((_, path))) => match path {
                "/v1" => round_trips::<Health>(text),
                "/v1/maps" => round_trips::<MapList>(text),
                "/v1/maps/{map}/queued" => round_trips::<Page<QueuedRecord>>(text),
                "/v1/maps/{map}/errors" => round_trips::<Page<CatchupError>>(text),
                "/v1/maps/{map}/discard-errors" => round_trips::<Discarded>(text),
                "/v1/jobs" => round_trips::<JobList>(text),
                p if p.starts_with("/v1/jobs/") || p.ends_with("/retry") => round_trips::<RetryJob>(text),
                p if p.starts_with("/v1/maps/{map}") => round_trips::<MapStatus>(text),
                other => panic!("no schema type for the response of {other}"),
            },
            (label, route) => panic!("an example labelled {label:?} under {route:?}"),
        }
        checked += 1;
    }
    assert!(checked >= ROUTES.len(), "only {checked} examples");
}
