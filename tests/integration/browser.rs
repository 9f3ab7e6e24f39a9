//! A headless Chromium driven over the DevTools protocol (CDP), for the
//! console tests: launch with every host but loopback unreachable, open
//! pages, run JavaScript in them, press keys, take screenshots, and record
//! every request each page makes so a test can prove none left the origin.
//!
//! Chromium is required, not optional: without it the tests fail and say
//! how to install it (`apt-get install -y chromium`), so CI never skips them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// Longest wait for anything in a page (a condition, a command's answer):
/// only reached when something is broken, and then the test fails saying what.
const PATIENCE: Duration = Duration::from_secs(30);

/// The Chromium binary: `WXNOTIFY_TEST_CHROMIUM`, else the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("WXNOTIFY_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the console tests need Chromium and found none on PATH ({}). Install it with \
         `sudo apt-get install -y chromium` (Debian/Ubuntu; `.ci/run` does this in CI), \
         or point WXNOTIFY_TEST_CHROMIUM at a Chromium or Chrome binary",
        names.join(", ")
    );
}

/// A running headless Chromium and one DevTools connection to it.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    sink: tokio::sync::Mutex<Sink>,
    waiters: Waiters,
    /// Every request a page sent: (CDP session, URL).
    requests: Arc<Mutex<Vec<(String, String)>>>,
    next_id: AtomicU64,
}

/// One tab, attached to the browser's connection.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Browser {
    /// Starts Chromium with `accept_language` as the browser's language
    /// (what `navigator.language` and `Accept-Language` say).
    pub async fn launch(accept_language: &str) -> Browser {
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let lang = accept_language.split(',').next().unwrap_or("en-US").to_string();
        let child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--metrics-recording-only",
                "--mute-audio",
                "--hide-scrollbars",
                "--window-size=1400,900",
                // Every host but loopback is unreachable: names do not
                // resolve, and anything that tries a proxy finds a dead port.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--lang={lang}"))
            .arg(format!("--accept-lang={accept_language}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting Chromium failed: {e}; install it with `sudo apt-get install -y chromium`"));
        let url = devtools_url(profile.path()).await;
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connecting to Chromium's DevTools");
        let (sink, mut stream) = socket.split();
        let waiters: Waiters = Arc::default();
        let requests: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (w, r) = (waiters.clone(), requests.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                dispatch(value, &w, &r);
            }
        });
        Browser { child, _profile: profile, sink: tokio::sync::Mutex::new(sink), waiters, requests, next_id: AtomicU64::new(1) }
    }

    /// Sends one CDP command (to a page when `session` is set) and returns its result.
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().expect("the waiters").insert(id, tx);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.sink.lock().await.send(Message::Text(command.to_string().into())).await.expect("sending a DevTools command");
        let answer = tokio::time::timeout(PATIENCE, rx)
            .await
            .unwrap_or_else(|_| panic!("Chromium did not answer {method} within {PATIENCE:?}"))
            .expect("the DevTools connection closed");
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    /// A new tab with network, page and runtime events on.
    pub async fn page(&self) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached = self.call(None, "Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        let session = attached["sessionId"].as_str().expect("a session id").to_string();
        for domain in ["Network.enable", "Page.enable", "Runtime.enable"] {
            self.call(Some(&session), domain, json!({})).await;
        }
        Page { browser: self, session }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium writes its DevTools port and path into the profile once it listens.
async fn devtools_url(profile: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "Chromium did not open its DevTools port within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn dispatch(value: Value, waiters: &Waiters, requests: &Arc<Mutex<Vec<(String, String)>>>) {
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        if let Some(tx) = waiters.lock().expect("the waiters").remove(&id) {
            let _ = tx.send(value);
        }
        return;
    }
    if value["method"] == "Network.requestWillBeSent" {
        let session = value["sessionId"].as_str().unwrap_or_default().to_string();
        let url = value["params"]["request"]["url"].as_str().unwrap_or_default().to_string();
        requests.lock().expect("the request log").push((session, url));
    }
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    pub async fn goto(&self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// Runs `expression` (awaited when it is a promise) and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let answer = self.call("Runtime.evaluate", json!({ "expression": expression, "awaitPromise": true, "returnByValue": true })).await;
        if let Some(details) = answer.get("exceptionDetails") {
            panic!("the page threw on `{expression}`: {details}");
        }
        answer["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is truthy in the
    /// page and returns its value; fails naming `what` when it never is.
    pub async fn until(&self, condition: &str, what: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self.eval(&format!("(() => {{ try {{ return {condition}; }} catch (_) {{ return null; }} }})()")).await;
            if !(value.is_null() || value == json!(false) || value == json!("") || value == json!(0)) {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''").await;
                panic!("{what}: `{condition}` never held within {PATIENCE:?}; the page shows:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `selector` names (as a user's click does: events, focus).
    pub async fn click(&self, selector: &str) {
        let found = self
            .eval(&format!("(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"))
            .await;
        assert_eq!(found, json!(true), "nothing matches {selector}");
    }

    /// Sets an input's value and fires `input` and `change`, as typing would.
    pub async fn fill(&self, selector: &str, value: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.focus(); e.value = {value};
               e.dispatchEvent(new Event('input', {{ bubbles: true }})); e.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()",
            value = serde_json::to_string(value).expect("a JSON string")
        );
        assert_eq!(self.eval(&script).await, json!(true), "nothing matches {selector}");
    }

    /// Presses a key with modifiers (CDP: 1 Alt, 2 Ctrl, 4 Meta, 8 Shift) in the focused element.
    pub async fn press(&self, key: &str, code: &str, key_code: u32, modifiers: u32) {
        for kind in ["rawKeyDown", "keyUp"] {
            let event = json!({ "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers });
            self.call("Input.dispatchKeyEvent", event).await;
        }
    }

    /// Types text into the focused element, key by key (so key handlers run).
    pub async fn type_text(&self, text: &str) {
        for c in text.chars() {
            let key = c.to_string();
            self.call("Input.dispatchKeyEvent", json!({ "type": "keyDown", "key": key, "text": key })).await;
            self.call("Input.dispatchKeyEvent", json!({ "type": "keyUp", "key": key })).await;
        }
    }

    /// A PNG of the page as it is shown now, as tall as the visible view's
    /// content (the console scrolls inside its views, not the document).
    pub async fn screenshot(&self) -> Vec<u8> {
        let height = self
            .eval("Math.max(900, ...[...document.querySelectorAll('header, main .view:not([hidden])')].map(e => e.scrollHeight))")
            .await;
        let height = height.as_u64().unwrap_or(900) + 60;
        let metrics = json!({ "width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": false });
        self.call("Emulation.setDeviceMetricsOverride", metrics).await;
        self.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))").await;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        self.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap_or_default()).expect("a base64 PNG")
    }

    /// Every URL this page requested so far.
    pub fn requests(&self) -> Vec<String> {
        let log = self.browser.requests.lock().expect("the request log");
        log.iter().filter(|(s, _)| *s == self.session).map(|(_, url)| url.clone()).collect()
    }
}
