//! A headless Chromium driven through chromedriver (one of each per test), with the few
//! user-level helpers the flows need: go to a page, click what is labelled X, type into a field,
//! choose an option, wait for something to show, save a screenshot.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

const WAIT: Duration = Duration::from_secs(15);

fn required() -> bool {
    std::env::var("SVYAZKA_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Browser {
    pub client: Client,
    pub base: String,
    /// Clicks and form fields the user touched (for the effort count in flow 2).
    pub clicks: usize,
    pub fields: usize,
    driver: Child,
    port: u16,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` (test skipped) when chromedriver is
    /// not installed, unless SVYAZKA_REQUIRE_BROWSER=1.
    pub async fn start(base: &str) -> Option<Browser> {
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome_bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if !Path::new(&driver_bin).exists() || !Path::new(&chrome_bin).exists() {
            if required() {
                panic!("SVYAZKA_REQUIRE_BROWSER=1 but {driver_bin} or {chrome_bin} is missing");
            }
            eprintln!("skipping browser test: {driver_bin} or {chrome_bin} not found");
            return None;
        }
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--window-size=1280,1000".into(),
            "--lang=ru-RU".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chrome_bin, "args": args}),
        );
        let mut browser = Browser {
            client: connect(port, caps).await,
            base: base.to_string(),
            clicks: 0,
            fields: 0,
            driver,
            port,
            session: None,
            _profile: profile,
        };
        browser.session = browser.client.session_id().await.ok().flatten();
        Some(browser)
    }

    /// Ends the browser session (Chromium exits) and chromedriver.
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.session = None;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&self.url(path))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.unwrap();
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let path = self.path().await;
                self.screenshot(&format!("failure-{}", sanitize(css))).await;
                panic!("no element {css} on {path}: {e}");
            }
        }
    }

    pub async fn find_xpath(&self, xpath: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                let path = self.path().await;
                self.screenshot(&format!("failure-{}", sanitize(xpath)))
                    .await;
                panic!("no element {xpath} on {path}: {e}");
            }
        }
    }

    /// Clicks the element found by `css`.
    pub async fn click(&mut self, css: &str) {
        let e = self.find(css).await;
        self.clicks += 1;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Clicks the button, link or label whose visible text is exactly `text`.
    pub async fn click_text(&mut self, text: &str) {
        let xpath = format!(
            "//*[self::button or self::a or self::label or self::summary][normalize-space()={}]",
            xpath_literal(text)
        );
        let e = self.find_xpath(&xpath).await;
        self.clicks += 1;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {text:?}: {err}"));
    }

    /// Clicks the button or link with `text` inside the element found by `scope` (a CSS selector).
    pub async fn click_text_in(&mut self, scope: &str, text: &str) {
        let root = self.find(scope).await;
        let xpath = format!(
            ".//*[self::button or self::a or self::label][normalize-space()={}]",
            xpath_literal(text)
        );
        let e = root
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|err| panic!("no {text:?} in {scope}: {err}"));
        self.clicks += 1;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {text:?}: {err}"));
    }

    /// Clicks into a field and types `text` (after clearing it).
    pub async fn fill(&mut self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.fields += 1;
        self.clicks += 1;
        e.clear().await.unwrap();
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Types into whatever has the focus now (no click, no clearing).
    pub async fn type_keys(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("type into {css}: {err}"));
    }

    /// Opens the select found by `css` and picks the option labelled `label`
    /// (inside `group` when given: an `<optgroup>` label).
    pub async fn choose(&mut self, css: &str, group: Option<&str>, label: &str) {
        let select = self.find(css).await;
        self.fields += 1;
        self.clicks += 2;
        let xpath = match group {
            Some(g) => {
                format!(
                    ".//optgroup[@label={}]/option[normalize-space()={}]",
                    xpath_literal(g),
                    xpath_literal(label)
                )
            }
            None => format!(".//option[normalize-space()={}]", xpath_literal(label)),
        };
        let option = select
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|err| panic!("no option {label:?} (group {group:?}) in {css}: {err}"));
        option
            .click()
            .await
            .unwrap_or_else(|err| panic!("choose {label:?}: {err}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element's visible text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if t.contains(needle) {
                return t;
            }
            if Instant::now() > deadline {
                let path = self.path().await;
                self.screenshot(&format!("failure-{}", sanitize(css))).await;
                panic!("{css} on {path} never contained {needle:?}; last text: {t:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page path starts with `prefix`.
    pub async fn wait_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let p = self.path().await;
            if p.starts_with(prefix) {
                return p;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("failure-path-{}", sanitize(prefix)))
                    .await;
                panic!("expected to arrive at {prefix}, still at {p}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page is `prefix<id>` (a page of a just-created thing); returns the id.
    pub async fn wait_id(&self, prefix: &str) -> i64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let p = self.path().await;
            if let Some(id) = p.strip_prefix(prefix).and_then(|rest| rest.parse().ok()) {
                return id;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("failure-path-{}", sanitize(prefix)))
                    .await;
                panic!("expected to arrive at {prefix}<id>, still at {p}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the whole page as target/test-artifacts/<name>.png.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let height = self
            .client
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000)
            .clamp(600, 6000) as u32;
        let _ = self.client.set_window_size(1280, height + 120).await;
        let _ = self.client.execute("window.scrollTo(0, 0);", vec![]).await;
        let png = self.client.screenshot().await.unwrap_or_default();
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        let _ = self.client.set_window_size(1280, 1000).await;
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked did not close the session: ask chromedriver to end it, so
        // Chromium exits too, then stop chromedriver.
        if let Some(id) = self.session.take()
            && let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!(
                "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, caps: serde_json::Map<String, serde_json::Value>) -> Client {
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..3 {
        match ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(c) => return c,
            Err(e) => {
                last = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    panic!(
        "cannot open a Chromium session through chromedriver: {}",
        last.unwrap_or_default()
    );
}

pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("test-artifacts")
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_alphanumeric() { c } else { '_' })
        .take(40)
        .collect()
}

/// `text` as an XPath string literal (handles both quote kinds).
pub fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}
