//! The admin web page in a real browser (docs/rules.md R9–R16, R24; issue 17):
//! headless Chromium, driven through chromedriver, against a running
//! engine that serves its loopback TCP listener. Every action of the page
//! has a test that clicks it; each test ends with an empty browser console.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`,
//! which `.ci/run` installs. When they are missing, these tests fail under
//! CI (`CI=true`) and otherwise pass after printing a `SKIPPED:` line that
//! says what to install: a developer without a browser can still run the
//! rest of the suite, and CI can never skip them silently.
//!
//! Screenshots land in `target/tmp/web/`; `docs/admin-page.png` in the
//! README is `operator_pauses_and_reads_the_queue.png` from there.

mod browser;
mod engine_text_is_shown_as_text;
mod login_guards_the_page_and_the_api;
mod maps_table_shows_the_operator_figures;
mod operator_pauses_and_reads_the_queue;
mod operator_resumes_in_each_mode;
mod operator_retries_and_discards_errors;
mod page_timings;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pauselog::{Engine, MapConfig, Op, Record, SyncPolicy, TableMap};
use pauselog_tests::{clock, TestDest};

use browser::Browser;

/// The admin token of every test engine.
const TOKEN: &str = "web-test-admin-token-0123456789";

/// An engine serving its admin API and page on a loopback port, with open
/// maps that deliver to test destinations.
struct Served {
    maps: Vec<(TableMap, Arc<TestDest>)>,
    engine: Engine,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Served {
    /// An engine with the maps `names` (default configuration).
    fn start(names: &[&str]) -> Served {
        Served::with_config(names, MapConfig::default(), SyncPolicy::Never)
    }

    fn with_config(names: &[&str], config: MapConfig, sync: SyncPolicy) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("admin-token");
        std::fs::write(&token_file, TOKEN).expect("write the token");
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
        let engine = Engine::builder(dir.path().join("data"))
            .sync(sync)
            .clock(clock())
            .tick_interval(None)
            .admin_socket(false)
            .admin_tcp("127.0.0.1:0".parse().expect("an address"), &token_file)
            .open()
            .expect("engine opens");
        let addr = engine.admin_tcp_addr().expect("the TCP listener");
        let maps = names
            .iter()
            .map(|name| {
                let dest = TestDest::new();
                (engine.table_map(name, config.clone(), dest.clone()).expect("map opens"), dest)
            })
            .collect();
        Served { maps, engine, addr, _dir: dir }
    }

    /// Opens one more map, with its own configuration.
    fn add_map(&mut self, name: &str, config: MapConfig) {
        let dest = TestDest::new();
        let map = self.engine.table_map(name, config, dest.clone()).expect("map opens");
        self.maps.push((map, dest));
    }

    fn map(&self, index: usize) -> &TableMap {
        &self.maps[index].0
    }

    fn dest(&self, index: usize) -> &Arc<TestDest> {
        &self.maps[index].1
    }

    /// `http://addr/path`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Pauses map `index` and queues `count` records over `keys` keys
    /// (`key-0` ..), payloads `payload-<n>`.
    fn queue(&self, index: usize, count: u64, keys: u64) {
        let map = self.map(index);
        map.pause().expect("pause");
        for n in 0..count {
            map.submit(record(n, keys)).expect("queued");
        }
    }

    /// Starts a browser and logs in, or `None` when there is no browser
    /// (see the module docs).
    fn browser(&self) -> Option<Browser> {
        let browser = Browser::start()?;
        browser.goto(&self.url("/ui/"));
        browser.wait_until("the login form", || browser.url().ends_with("/ui/login"));
        browser.fill("#token", TOKEN);
        browser.click("#login");
        browser.wait_until("the maps table", || browser.count("#maps tbody tr") == self.maps.len());
        Some(browser)
    }

    fn close(self) {
        let Served { maps, engine, .. } = self;
        drop(maps);
        engine.close().expect("close");
    }
}

/// The `n`-th record over `keys` keys.
fn record(n: u64, keys: u64) -> Record {
    Record::new(format!("key-{}", n % keys), Op::Update, format!("payload-{n}").into_bytes())
}

/// A thread that submits a record to `map` every few milliseconds until
/// stopped (at most `MAX` records).
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    const MAX: u64 = 100_000;

    fn start(map: &TableMap, keys: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let (map, stop_flag) = (map.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for n in 1_000_000..1_000_000 + Writer::MAX {
                if stop_flag.load(Ordering::Relaxed) {
                    break;
                }
                map.submit(record(n, keys)).expect("submit");
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Writer { stop, thread: Some(thread) }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The number in a text such as "1,234" or "Showing 50 of 1,234 …" at
/// `index` among its numbers.
fn number(text: &str, index: usize) -> u64 {
    text.split(|c: char| !(c.is_ascii_digit() || c == ','))
        .filter(|part| part.chars().any(|c| c.is_ascii_digit()))
        .map(|part| part.replace(',', "").parse::<u64>().expect("a number"))
        .nth(index)
        .unwrap_or_else(|| panic!("no number {index} in {text:?}"))
}

/// The CSS selector of map `name`'s row, and of a cell or button in it.
fn row(name: &str) -> String {
    format!("#maps tr[data-map=\"{name}\"]")
}

/// Column `n` (from 1) of map `name`'s row.
fn cell(name: &str, n: usize) -> String {
    format!("{} td:nth-child({n})", row(name))
}

/// A button of map `name`'s row (`open`, `pause`, `resume`, `skip`).
fn action(name: &str, action: &str) -> String {
    format!("{} button[data-action=\"{action}\"]", row(name))
}

/// The main figure (records) of column `n` of map `name`'s row.
fn figure(browser: &Browser, name: &str, n: usize) -> u64 {
    number(&browser.text(&format!("{} .figure", cell(name, n))), 0)
}

/// The state badge text of map `name`.
fn state_of(browser: &Browser, name: &str) -> String {
    browser.text(&format!("{} .badge", cell(name, 2)))
}

/// An answer of [`http`]: status, head (lowercased), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// One raw HTTP/1.1 request to the engine's listener.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {answer}"));
    Answer { status, head: head.to_lowercase(), body: body.to_owned() }
}
