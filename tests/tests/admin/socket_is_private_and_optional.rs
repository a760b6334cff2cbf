//! R24: the socket lives in the data directory with mode 0600 inside a
//! 0700 directory, replaces one a killed engine left behind, goes away on
//! close, and is not there at all when the builder turns it off.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use pauselog::{Engine, SyncPolicy};
use pauselog_admin::client::ClientError;
use pauselog_tests::clock;

use super::{client, serving_engine};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn the_socket_is_0600_in_a_0700_directory_and_goes_away_on_close() {
    let dir = tempfile::tempdir().expect("temp dir");
    // What a SIGKILLed engine leaves behind: a socket file nobody serves.
    let stale = pauselog_admin::socket_path(dir.path());
    std::fs::create_dir_all(stale.parent().expect("admin dir")).expect("admin dir");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("a stale socket"));
    assert!(matches!(client(dir.path()).health(), Err(ClientError::NotServing { .. })));

    let engine = serving_engine(dir.path());
    let socket = engine.admin_socket_path().expect("served by default");
    assert_eq!(socket, stale, "the socket is <dir>/admin/admin.sock");
    assert!(std::fs::metadata(&socket).expect("socket").file_type().is_socket());
    assert_eq!(mode(&socket), 0o600, "socket mode");
    assert_eq!(mode(socket.parent().expect("admin dir")), 0o700, "directory mode");
    let health = client(dir.path()).health().expect("the new engine answers");
    assert_eq!(health.pid, std::process::id());
    engine.close().expect("close");
    assert!(!socket.exists(), "close removes the socket");
    assert!(matches!(client(dir.path()).health(), Err(ClientError::NotServing { .. })));
}

#[test]
fn the_builder_turns_the_socket_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Engine::builder(dir.path())
        .sync(SyncPolicy::Never)
        .clock(clock())
        .tick_interval(None)
        .admin_socket(false)
        .open()
        .expect("engine opens");
    assert_eq!(engine.admin_socket_path(), None);
    assert!(!dir.path().join("admin").exists(), "no admin directory is created");
    engine.close().expect("close");
}

/// A data directory whose path is longer than a socket address holds
/// still gets its socket (bound through /proc/self/fd).
#[test]
fn a_long_data_directory_path_still_serves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let long = dir.path().join("d".repeat(60)).join("e".repeat(60));
    let engine = serving_engine(&long);
    let socket = engine.admin_socket_path().expect("served");
    assert!(socket.as_os_str().len() > 108, "{}", socket.display());
    assert!(std::fs::metadata(&socket).expect("socket").file_type().is_socket());
    client(&long).health().expect("answers through the long path");
    engine.close().expect("close");
}
