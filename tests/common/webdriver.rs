//! A small W3C WebDriver client over reqwest, driving Debian's `chromium`
//! headless through `chromedriver` (package chromium-driver).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{ready, wait_until};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct Element(String);

impl Driver {
    /// Starts chromedriver on a loopback port it picks itself (it says
    /// which on stdout) and a headless session. A chromedriver that exits
    /// before it listens is started again (twice at most), and what it
    /// printed is shown.
    pub async fn start() -> Driver {
        let mut printed = Vec::new();
        for _ in 0..3 {
            match Driver::listening().await {
                Ok((child, port)) => return Driver::session(child, port).await,
                Err(out) => {
                    eprintln!("chromedriver exited before it listened: {out:?}");
                    printed.push(out);
                }
            }
        }
        panic!("chromedriver did not say on which port it listens: {printed:?}");
    }

    /// A chromedriver and its port, or what it printed before it exited.
    async fn listening() -> Result<(Child, String), Vec<String>> {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver)");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads both pipes to their end, so chromedriver never blocks on a
        // full one.
        let stderr = child.stderr.take().expect("stderr");
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx_err.send(Err(line));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                match line.split("started successfully on port ").nth(1) {
                    Some(rest) => {
                        let _ = tx.send(Ok(rest.trim_end_matches('.').trim().to_owned()));
                    }
                    None => {
                        let _ = tx.send(Err(line));
                    }
                }
            }
        });
        tokio::task::spawn_blocking(move || {
            let mut printed = Vec::new();
            // Both pipes closed (chromedriver exited), or 20 s: no port.
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
                match line {
                    Ok(port) => return Ok((child, port)),
                    Err(text) => printed.push(text),
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            Err(printed)
        })
        .await
        .expect("waiting for chromedriver")
    }

    async fn session(child: Child, port: String) -> Driver {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1100"]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Driver {
            child,
            base,
            session,
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching a CSS selector now, or what the driver
    /// said instead.
    async fn try_find(&self, css: &str) -> Result<Element, Value> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        match v[ELEMENT].as_str() {
            Some(id) => Ok(Element(id.to_owned())),
            None => Err(v),
        }
    }

    /// The first element matching a CSS selector, waiting up to 10 s.
    pub async fn find(&self, css: &str) -> Element {
        wait_until(
            &format!("element {css}"),
            Duration::from_secs(10),
            async || self.try_find(css).await,
        )
        .await
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await;
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
            .await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", e.0))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// Runs a script in the page (WebDriver's, not subject to the page's CSP).
    pub async fn script(&self, js: &str) -> Value {
        self.post("/execute/sync", json!({"script": js, "args": []}))
            .await
    }

    /// Resizes the browser window (a phone: 390 × 844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Whether a JavaScript dialog (alert, confirm) is open.
    pub async fn dialog_open(&self) -> bool {
        self.get("/alert/text").await.get("error").is_none()
    }

    /// Saves a PNG screenshot to target/dashboard-screenshots/NAME.png.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot base64");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Waits until `pred` holds for the text of the element `css`.
    pub async fn wait_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        wait_until(
            &format!("text of {css}"),
            Duration::from_secs(30),
            async || {
                let e = self.try_find(css).await.map_err(|v| v.to_string())?;
                let t = self.text(&e).await;
                ready(pred(&t), t)
            },
        )
        .await
    }
}

impl Driver {
    /// Ends the browser session (closes chromium).
    pub async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

impl Drop for Driver {
    /// Ends the session before chromedriver, also when a test panics or
    /// never called [`Driver::quit`]: killing chromedriver alone left its
    /// chromium running, one browser per test binary run.
    fn drop(&mut self) {
        let _ = self.end_session();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// `DELETE /session/{id}` over a plain socket (no runtime in `drop`),
    /// waiting for chromedriver's answer: it closes chromium first.
    fn end_session(&self) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            conn,
            "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session
        )?;
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)?;
        Ok(())
    }
}
