//! The admin API of a running engine (docs/rules.md R24), through real sockets: one
//! module per behaviour. Its own binary, so its engines' admin servers and
//! connection floods do not share a process with the other end-to-end tests.

mod bad_requests_change_nothing;
mod connection_flood_is_refused_and_serving_goes_on;
mod operator_pause_races_writers;
mod retry_jobs_are_polled_and_bounded;
mod router_mounts_in_a_service;
mod socket_is_private_and_optional;
mod tcp_listener_needs_its_token;
mod web_page_follows_the_mount_prefix;

use std::path::Path;

use pauselog::{Engine, SyncPolicy};
use pauselog_admin::client::Client;
use pauselog_admin::schema::{ApiError, ErrorCode};
use pauselog_tests::clock;

/// An engine on `dir` with the admin socket on (the default).
fn serving_engine(dir: &Path) -> Engine {
    Engine::builder(dir).sync(SyncPolicy::Always).clock(clock()).tick_interval(None).open().expect("engine opens")
}

/// A client of the engine serving `dir`.
fn client(dir: &Path) -> Client {
    Client::for_data_dir(dir).expect("a client")
}

/// The error code and JSON message of a raw answer.
fn error_of(status: u16, body: &[u8]) -> ApiError {
    let body: pauselog_admin::schema::ErrorBody =
        serde_json::from_slice(body).unwrap_or_else(|e| panic!("status {status}: not an error body ({e}): {body:?}"));
    assert_eq!(status, body.error.code.http_status(), "{body:?}");
    body.error
}

/// Sends a raw request and returns its error code.
fn refused(client: &Client, method: &str, path: &str, body: &[u8]) -> ErrorCode {
    let (status, answer) = client.send(method, path, body).expect("an answer");
    error_of(status, &answer).code
}
