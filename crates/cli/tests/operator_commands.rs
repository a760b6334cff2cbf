//! The operator commands (docs/rules.md §8, R24) end to end: every command against
//! an engine running in a child process (`pauselog demo --hold`) and
//! against the stopped directory it leaves, `--json` parsed, the documented
//! exit codes, and a peer of another user refused by the admin socket.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Records the held demo leaves queued (`BACKLOG_RECORDS_MAX`).
const BACKLOG_RECORDS: u64 = 1_000;

fn pauselog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pauselog")).args(args).output().expect("the pauselog binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Runs `pauselog args.. --dir D [--json]`, asserts the exit code, and
/// returns the output.
fn run(dir: &str, args: &[&str], code: i32) -> Output {
    let mut all = args.to_vec();
    all.extend(["--dir", dir]);
    let output = pauselog(&all);
    assert_eq!(output.status.code(), Some(code), "pauselog {}:\n{}", all.join(" "), text(&output));
    output
}

fn json(dir: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = run(dir, &all, 0);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?} --json is not JSON ({e}):\n{}", text(&output)))
}

/// `pauselog demo --hold` in a child process, serving its directory.
struct HeldDemo {
    child: Child,
    socket: PathBuf,
    /// What the demo printed up to the socket's line.
    said: Vec<String>,
    rest_of_stdout: mpsc::Receiver<String>,
}

impl HeldDemo {
    fn start(dir: &Path) -> HeldDemo {
        HeldDemo::start_with(dir, &[])
    }

    /// `pauselog demo --records 2000 --hold --dir D` and `extra` arguments.
    fn start_with(dir: &Path, extra: &[&str]) -> HeldDemo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pauselog"))
            .args(["demo", "--records", "2000", "--hold"])
            .args(extra)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the demo starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, rest_of_stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut said = Vec::new();
        let socket = loop {
            let line = rest_of_stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the demo says where its admin socket is");
            assert!(!line.contains("[FAIL]"), "the demo failed a check: {line}");
            if let Some(socket) = line.strip_prefix("admin socket: ") {
                break PathBuf::from(socket);
            }
            said.push(line);
        };
        HeldDemo { child, socket, said, rest_of_stdout }
    }

    /// SIGTERM, as an operator's Ctrl-C would; the demo closes its engine.
    fn stop(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("signal the demo");
        let status = self.child.wait().expect("the demo exits");
        assert!(status.success(), "the held demo exited with {status}");
        let said: Vec<String> = self.rest_of_stdout.try_iter().collect();
        assert!(said.iter().any(|l| l.contains("closing the engine")), "{said:?}");
        assert!(!self.socket.exists(), "the socket is removed when the engine closes");
    }
}

impl Drop for HeldDemo {
    /// A failed test must not leave the demo running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn every_operator_command_steers_a_held_demo_then_the_stopped_directory() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let data = temp.path().join("data");
    let mut demo = HeldDemo::start(&data);
    let dir = data.to_str().expect("UTF-8 path");
    assert_eq!(demo.socket, data.join("admin/admin.sock"));
    let mode = std::fs::metadata(&demo.socket).expect("the socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "R24: socket mode");

    // status, live: the engine's figures.
    let table = run(dir, &["status"], 0);
    assert!(String::from_utf8_lossy(&table.stdout).contains("SIZE LEFT"), "{}", text(&table));
    let status = json(dir, &["status"]);
    assert_eq!(status["source"], "engine");
    let map = &status["maps"][0];
    assert_eq!((map["name"].as_str(), map["state"].as_str()), (Some("customers"), Some("Paused")));
    assert_eq!(map["queued_records"], BACKLOG_RECORDS);
    assert!(map["bytes_left"].as_u64().is_some_and(|left| left > 0), "{map}");
    let error_count = map["error_records"].as_u64().expect("error count");
    assert!(error_count >= 2, "{map}");

    // queued and errors, paged through the API.
    let page = json(dir, &["queued", "--limit", "2", "--show-payload"]);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert!(page["items"][0]["payload"].as_str().is_some_and(|p| p.contains("CustomerAccount")), "{page}");
    let next = page["next"].as_str().expect("more pages");
    let after = json(dir, &["queued", "--limit", "2", "--after", next]);
    assert!(after["items"][0]["seq"].as_u64() > page["items"][1]["seq"].as_u64(), "R10: the next page continues");
    let errors = json(dir, &["errors", "--limit", "1"]);
    assert_eq!(errors["total"], error_count);
    let first_error = errors["items"][0]["record"]["seq"].as_u64().expect("a seq").to_string();
    let errors_cursor = errors["next"].as_str().expect("more errors");
    let wrong_list = run(dir, &["queued", "--after", errors_cursor], 4);
    assert!(
        text(&wrong_list).contains("bad_cursor") || text(&wrong_list).contains("BadCursor"),
        "{}",
        text(&wrong_list)
    );

    // Actions and the states that refuse them (exit 4, nothing changes).
    assert!(text(&run(dir, &["pause"], 0)).contains("Paused"), "R5: pausing a paused map is a no-op");
    assert!(text(&run(dir, &["skip-to-live"], 4)).contains("not allowed"));
    assert!(text(&run(dir, &["pause", "--map", "nope"], 4)).contains("no table map nope"));
    let discarded = json(dir, &["discard-errors", "--seq", &first_error]);
    assert_eq!(discarded["discarded"], 1);
    let resumed = json(dir, &["resume", "--mode", "catch-up"]);
    assert!(matches!(resumed["state"].as_str(), Some("CatchingUp" | "Running")), "{resumed}");
    let watched = run(dir, &["watch", "--count", "2", "--interval-ms", "50", "--json"], 0);
    let lines: Vec<Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per refresh"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&watched));
    assert!(lines.iter().all(|line| line["maps"][0]["name"] == "customers"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while json(dir, &["status"])["maps"][0]["state"] != "Running" {
        assert!(Instant::now() < deadline, "the catch-up did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text(&run(dir, &["resume", "--mode", "skip-discard"], 4)).contains("not allowed"));
    // The catch-up moved the backlog's records of the rejected key behind
    // its errors (R15, Strict), so there are more errors now.
    let errors_now = json(dir, &["status"])["maps"][0]["error_records"].as_u64().expect("error count");
    assert!(errors_now >= error_count - 1);
    let job = json(dir, &["retry", "--wait"]);
    assert_eq!((job["delivered"].as_u64(), job["done"].as_bool()), (Some(errors_now), Some(true)), "{job}");
    let jobs = json(dir, &["jobs"]);
    assert_eq!(jobs["jobs"][0]["id"], job["id"]);
    run(dir, &["jobs", "--cancel", &job["id"].to_string()], 0);
    assert_eq!(json(dir, &["status"])["maps"][0]["error_records"], 0);
    assert_eq!(json(dir, &["pause"])["state"], "Paused");
    assert_eq!(json(dir, &["resume", "--mode", "skip-preserve"])["state"], "Running");

    demo.stop();

    // The stopped directory: the inspection commands read the files, with
    // a note; the actions say no engine serves it (exit 3).
    let status = run(dir, &["status"], 0);
    assert!(String::from_utf8_lossy(&status.stderr).contains("no engine serves"), "{}", text(&status));
    assert_eq!(json(dir, &["status"])["source"], "files");
    assert_eq!(json(dir, &["queued"])["total"], 0);
    assert_eq!(json(dir, &["errors"])["total"], 0);
    for action in [
        vec!["pause"],
        vec!["resume", "--mode", "catch-up"],
        vec!["skip-to-live", "--discard"],
        vec!["retry", "--key", "k"],
        vec!["discard-errors"],
        vec!["jobs"],
        vec!["watch", "--count", "1"],
    ] {
        let refused = run(dir, &action, 3);
        assert!(text(&refused).contains("no engine serves"), "{action:?}: {}", text(&refused));
    }
}

/// R24: the socket refuses a peer of another user. CI runs as root: a
/// child running as `nobody` (uid 65534) first meets the 0700 directory,
/// and once the test loosens the file modes, the server's peer check.
#[test]
fn a_peer_of_another_user_is_refused() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = temp.path().join("data");
    let engine = pauselog::Engine::open(&dir).expect("engine opens");
    let socket = engine.admin_socket_path().expect("a socket");
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: cannot start a process of another user; checked the socket's modes only");
        assert_eq!(std::fs::metadata(&socket).expect("socket").permissions().mode() & 0o777, 0o600);
        return;
    }
    // A copy of the binary that uid 65534 may run, wherever the repository is.
    let bin_dir = tempfile::tempdir().expect("a temporary directory");
    let bin = bin_dir.path().join("pauselog");
    std::fs::copy(env!("CARGO_BIN_EXE_pauselog"), &bin).expect("copy the binary");
    for path in [bin_dir.path(), bin.as_path(), temp.path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let as_nobody = || {
        let output = Command::new(&bin)
            .args(["status", "--json", "--dir"])
            .arg(&dir)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("runs as nobody");
        (output.status.code(), text(&output))
    };

    let (code, said) = as_nobody();
    assert_eq!(code, Some(1), "the 0700 directory keeps nobody out: {said}");
    assert!(said.contains("another user") || said.to_lowercase().contains("permission denied"), "{said}");

    std::fs::set_permissions(socket.parent().expect("admin dir"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let (code, said) = as_nobody();
    assert_eq!(code, Some(4), "the peer check refuses: {said}");
    assert!(said.contains("uid 65534") && said.contains("ForbiddenPeer"), "{said}");
    engine.close().expect("close");
}

/// One raw HTTP/1.1 request; the answer's status line and headers, and body.
fn http(addr: &str, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the page");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn demo_admin_serves_the_page_on_loopback_with_a_fresh_token() {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let data = temp.path().join("data");
    let mut demo = HeldDemo::start_with(&data, &["--admin", "127.0.0.1:0"]);
    let page = demo.said.iter().find_map(|l| l.strip_prefix("admin web page: http://")).expect("the page's address");
    let addr = page.strip_suffix("/ui/").expect("the page's path").to_owned();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");
    let token_line = demo.said.iter().find_map(|l| l.strip_prefix("admin token: ")).expect("the token");
    let token = token_line.split(' ').next().expect("the token").to_owned();
    assert_eq!(token.len(), 32, "128 random bits as hex: {token}");
    let file = data.join("admin-token");
    assert_eq!(std::fs::read_to_string(&file).expect("the token file").trim(), token);
    assert_eq!(std::fs::metadata(&file).expect("the token file").permissions().mode() & 0o777, 0o600);

    let (head, _) = http(&addr, &format!("GET /ui/ HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"));
    assert!(head.starts_with("HTTP/1.1 303") && head.contains("location: login"), "{head}");
    let form = format!("token={token}");
    let (head, _) = http(
        &addr,
        &format!(
            "POST /ui/login HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    assert!(head.starts_with("HTTP/1.1 303") && head.contains("set-cookie: pauselog_session_"), "{head}");
    let (head, body) = http(
        &addr,
        &format!("GET /v1/maps HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"customers\""), "{body}");
    demo.stop();
}
