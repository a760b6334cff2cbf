//! R24: a flood of connections is refused with a clear error (or closed,
//! past a bound), never queued without limit; once it drains, the API
//! answers again, and the engine's submit path never stopped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pauselog::{MapConfig, Submitted};
use pauselog_admin::client::ClientError;
use pauselog_admin::schema::ErrorCode;
use pauselog_admin::server::CONNECTIONS_MAX_DEFAULT;
use pauselog_tests::{rec, Fixture};

use super::client;

#[test]
fn idle_connections_past_the_limit_are_refused_then_serving_resumes() {
    let Fixture { dir, engine, dest: _, map, .. } = Fixture::named("customers", MapConfig::default());
    let socket = engine.admin_socket_path().expect("a socket");
    let client = client(dir.path());
    client.health().expect("serving before the flood");

    // Fill every connection slot with connections that never send a request.
    let mut flood: Vec<UnixStream> =
        (0..CONNECTIONS_MAX_DEFAULT).map(|_| UnixStream::connect(&socket).expect("connect")).collect();
    // A well-formed request past the limit gets 503 too_many_connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        match client.health() {
            Err(ClientError::Api(error)) => break error,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            other => panic!("expected too_many_connections, got {other:?}"),
        }
    };
    assert_eq!(refusal.code, ErrorCode::TooManyConnections, "{refusal:?}");

    // Far more connections: the excess is closed at once, not kept.
    for _ in 0..300 {
        match UnixStream::connect(&socket) {
            Ok(stream) => flood.push(stream),
            Err(error) => panic!("the listener stopped accepting: {error}"),
        }
    }
    let mut last = UnixStream::connect(&socket).expect("connect");
    last.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let _ = last.write_all(b"GET /v1 HTTP/1.1\r\nhost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = last.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "a flooded listener answered: {answer}");

    // The engine's own work never waited on the API.
    assert_eq!(map.submit(rec("k", 1)).expect("submit during the flood"), Submitted::Live);

    drop(flood);
    drop(last);
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.health().is_err() {
        assert!(Instant::now() < deadline, "the API did not recover after the flood");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(map);
    engine.close().expect("close");
}
