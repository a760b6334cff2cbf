//! Arbitrary requests into the admin API's decoder (R24, R20): never a
//! panic; a refusal is a client error (4xx) with a message; an accepted
//! listing's query encodes and decodes back to itself; an accepted map name
//! is one the engine accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pauselog_admin::request::{decode, encode_page_query, validate_map_name, ApiRequest, PAGE_LIMIT_MAX};

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let method = METHODS[usize::from(first) % METHODS.len()];
    // The target line, then a newline, then the body.
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let Ok(target) = std::str::from_utf8(&rest[..split]) else { return };
    let body = rest.get(split + 1..).unwrap_or(&[]);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    match decode(method, path, query, body) {
        Err(error) => {
            let status = error.code.http_status();
            assert!((400..500).contains(&status), "{error:?}");
            assert!(!error.message.is_empty());
        }
        Ok(request) => match &request {
            ApiRequest::Queued { map, query } | ApiRequest::Errors { map, query } => {
                assert!(validate_map_name(map).is_ok());
                assert!((1..=PAGE_LIMIT_MAX).contains(&query.limit));
                let again = decode(method, path, Some(&encode_page_query(query)), b"").expect("re-encoded query");
                assert_eq!(again, request);
            }
            ApiRequest::GetMap { map }
            | ApiRequest::Pause { map }
            | ApiRequest::Resume { map, .. }
            | ApiRequest::SkipToLive { map, .. }
            | ApiRequest::Retry { map, .. }
            | ApiRequest::DiscardErrors { map, .. } => assert!(validate_map_name(map).is_ok()),
            ApiRequest::Health | ApiRequest::ListMaps | ApiRequest::ListJobs => {}
            ApiRequest::GetJob { .. } | ApiRequest::CancelJob { .. } => {}
        },
    }
});
