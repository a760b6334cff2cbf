//! Headless Chromium driven through chromedriver (WebDriver, with the
//! `fantoccini` client), one browser per test, one test at a time.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a page may take to show what a test waits for.
pub const UI_WAIT: Duration = Duration::from_secs(30);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// A laptop screen.
const WINDOW: (u32, u32) = (1366, 900);

/// One browser at a time: two Chromiums on this project's two cores would
/// slow each other's pages and timings down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn program(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// A headless Chromium session.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// The console log endpoint of chromedriver (`goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or, when they are not
    /// installed, fails under CI (`CI=true`: `.ci/run` installs them) and
    /// otherwise returns `None` after saying so (the caller skips).
    pub fn start() -> Option<Browser> {
        let chromium = program("PAUSELOG_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("PAUSELOG_CHROMEDRIVER", "/usr/bin/chromedriver");
        if !chromium.exists() || !chromedriver.exists() {
            let missing = format!(
                "the browser tests need Chromium and chromedriver ({} and {}; `apt-get install chromium chromium-driver`, \
                 or PAUSELOG_CHROMIUM and PAUSELOG_CHROMEDRIVER)",
                chromium.display(),
                chromedriver.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}: CI must install them");
            eprintln!("SKIPPED: {missing}");
            return None;
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile directory");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                ],
            },
        });
        let capabilities = capabilities.as_object().expect("an object").clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + UI_WAIT;
        let client = runtime.block_on(async {
            loop {
                match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => break client,
                    Err(error) if Instant::now() > deadline => {
                        panic!("chromedriver on {url} answers no session: {error}")
                    }
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
        });
        Some(Browser { runtime, client: Some(client), driver, _profile: profile, _turn: turn })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open until drop")
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The page's URL now.
    pub fn url(&self) -> String {
        self.runtime.block_on(self.client().current_url()).expect("current url").to_string()
    }

    /// Runs `script` in the page and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.runtime.block_on(self.client().execute(script, Vec::new())).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    fn find(&self, css: &str) -> Element {
        self.runtime.block_on(self.client().find(Locator::Css(css))).unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// Waits until `css` matches a visible element, then clicks it.
    pub fn click(&self, css: &str) {
        self.wait_until(&format!("{css} is visible"), || {
            self.eval(&format!(
                "const e = document.querySelector({}); return !!e && e.offsetParent !== null && !e.disabled;",
                json!(css)
            )) == json!(true)
        });
        self.runtime.block_on(self.find(css).click()).unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `keys` into the element `css` (focusing it first); special
    /// keys are `fantoccini::key::Key` characters.
    pub fn keys(&self, css: &str, keys: &str) {
        self.runtime.block_on(self.find(css).send_keys(keys)).unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Clears the input `css` and types `text`.
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.runtime.block_on(element.clear()).unwrap_or_else(|e| panic!("clear {css}: {e}"));
        self.keys(css, text);
    }

    /// The text of the first element `css` matches ("" when none does).
    pub fn text(&self, css: &str) -> String {
        let value =
            self.eval(&format!("const e = document.querySelector({}); return e ? e.textContent : '';", json!(css)));
        value.as_str().unwrap_or_default().to_owned()
    }

    /// How many elements `css` matches.
    pub fn count(&self, css: &str) -> usize {
        let value = self.eval(&format!("return document.querySelectorAll({}).length;", json!(css)));
        value.as_u64().expect("a count") as usize
    }

    /// Polls `attempt` until it gives a value, or fails naming `what`
    /// (and what the last attempt saw) with a screenshot.
    pub fn poll<T>(&self, what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let seen = match attempt() {
                Ok(value) => return value,
                Err(seen) => seen,
            };
            if Instant::now() > deadline {
                let shot = self.screenshot("timeout");
                panic!(
                    "waited {UI_WAIT:?} for {what}; last seen {seen}; page {} (screenshot {})",
                    self.url(),
                    shot.display()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `ready` holds.
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut() -> bool) {
        self.poll(what, || if ready() { Ok(()) } else { Err("false".to_owned()) });
    }

    /// Waits until the text of `css` satisfies `ready`; returns it.
    pub fn wait_text(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        self.poll(&format!("{css} to show {what}"), || {
            let text = self.text(css);
            if ready(&text) {
                Ok(text)
            } else {
                Err(format!("{text:?}"))
            }
        })
    }

    /// Saves a screenshot of the window to `target/tmp/web/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client().screenshot()).expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// The console messages logged at error level since the last call,
    /// other than those containing one of `expected`.
    pub fn console_errors(&self, expected: &[&str]) -> Vec<String> {
        let log = self.runtime.block_on(self.client().issue_cmd(BrowserLog)).expect("the browser log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .filter(|message| !expected.iter().any(|e| message.contains(e)))
            .collect()
    }

    /// Asserts that the console holds no error (R24 page target).
    pub fn assert_console_clean(&self) {
        let errors = self.console_errors(&[]);
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
