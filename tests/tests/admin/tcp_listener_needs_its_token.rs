//! R24: the loopback TCP listener starts only when asked, binds loopback
//! only, takes its token from a file only its owner can read, and refuses
//! requests without that token.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pauselog::{Engine, SyncPolicy};
use pauselog_admin::client::{Client, ClientError};
use pauselog_admin::schema::ErrorCode;
use pauselog_admin::Token;
use pauselog_tests::clock;

const TOKEN: &str = "s3cret-admin-token-0123456789";

fn token_file(dir: &Path, mode: u32) -> std::path::PathBuf {
    let path = dir.join(format!("token-{mode:o}"));
    std::fs::write(&path, format!("{TOKEN}\n")).expect("write token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

fn open(dir: &Path, addr: &str, token_file: &Path) -> pauselog::Result<Engine> {
    Engine::builder(dir.join("data"))
        .sync(SyncPolicy::Never)
        .clock(clock())
        .tick_interval(None)
        .admin_socket(false)
        .admin_tcp(addr.parse().expect("an address"), token_file)
        .open()
}

#[test]
fn requests_need_the_bearer_token_of_a_private_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = open(dir.path(), "127.0.0.1:0", &token_file(dir.path(), 0o600)).expect("engine opens");
    let addr = engine.admin_tcp_addr().expect("a TCP listener");
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let good = Client::tcp(addr, Token::new(TOKEN).expect("token")).expect("client");
    assert_eq!(good.health().expect("the right token passes").api_version, 1);
    let wrong = Client::tcp(addr, Token::new("not-the-admin-token-000").expect("token")).expect("client");
    match wrong.health() {
        Err(ClientError::Api(error)) => assert_eq!(error.code, ErrorCode::Unauthorized),
        other => panic!("a wrong token passed: {other:?}"),
    }
    let mut raw = std::net::TcpStream::connect(addr).expect("connect");
    raw.write_all(
        b"POST /v1/maps/customers/pause HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    )
    .expect("send");
    let mut answer = String::new();
    raw.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains("\"unauthorized\"") && answer.to_lowercase().contains("www-authenticate: bearer"),
        "{answer}"
    );
    engine.close().expect("close");
}

#[test]
fn an_exposed_token_file_or_a_public_address_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let exposed = open(dir.path(), "127.0.0.1:0", &token_file(dir.path(), 0o644)).expect_err("a 0644 token file");
    assert!(exposed.to_string().contains("chmod 600"), "{exposed}");
    let public = open(dir.path(), "0.0.0.0:0", &token_file(dir.path(), 0o600)).expect_err("a public address");
    assert!(public.to_string().contains("loopback"), "{public}");
    let short = dir.path().join("short");
    std::fs::write(&short, "abc").expect("write");
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(open(dir.path(), "127.0.0.1:0", &short).is_err(), "a token too short to be secret");
    // A failed open leaves the directory free.
    let engine = open(dir.path(), "[::1]:0", &token_file(dir.path(), 0o400))
        .or_else(|_| open(dir.path(), "127.0.0.1:0", &token_file(dir.path(), 0o400)))
        .expect("the directory is not left locked");
    engine.close().expect("close");
}
