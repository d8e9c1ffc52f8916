//! The command line beside a running daemon. sled lets one process open the
//! store, so while the daemon runs, `report`, `alerts` and `import` go
//! through its HTTP API instead, with the API token the daemon uses (from
//! the configuration, a credential or its data directory), and print what
//! they print when it is stopped.

use crate::config::Config;
use crate::daemon::ADDRESS_FILE;
use crate::report::{Report, ReportRequest, links};
use crate::store::{IngestOutcome, Recorded};
use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A running daemon's API.
pub(super) struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// The daemon of `config`: its listen address (loopback when it
    /// listens on every address) and its token.
    pub(super) fn connect(config: &Config) -> anyhow::Result<Remote> {
        let token = match config
            .server
            .token()
            .resolve()
            .map_err(anyhow::Error::msg)?
        {
            Some(token) => token,
            None => {
                let path = crate::server::token::token_path(&config.store.data_dir);
                std::fs::read_to_string(&path)
                    .with_context(|| {
                        format!(
                            "the daemon runs; its API token should be in {}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned()
            }
        };
        // The address the daemon wrote when it bound its listener, else
        // the configured one.
        let written = std::fs::read_to_string(config.store.data_dir.join(ADDRESS_FILE));
        let listen = written
            .ok()
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .unwrap_or(config.server.listen.0);
        let ip = match listen.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Remote {
            base: format!("http://{}", SocketAddr::new(ip, listen.port())),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// Sends `request` and reads its JSON answer; an error answer's
    /// message becomes the error.
    fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        self.send_unless(request, None)?
            .context("the daemon answered without a body")
    }

    /// [`Remote::send`], with `None` when the daemon answers `unless`.
    fn send_unless<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        unless: Option<reqwest::StatusCode>,
    ) -> anyhow::Result<Option<T>> {
        self.runtime.block_on(async {
            let resp = request
                .bearer_auth(&self.token)
                .send()
                .await
                .with_context(|| {
                    format!(
                        "the store is in use, and the daemon's API at {} does not answer",
                        self.base
                    )
                })?;
            let status = resp.status();
            let body = resp.bytes().await?;
            if Some(status) == unless {
                return Ok(None);
            }
            if !status.is_success() {
                let message = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                bail!("the daemon answered {status}: {message}");
            }
            Ok(Some(serde_json::from_slice(&body)?))
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }

    /// `GET /api/v1/report`.
    pub(super) fn report(&self, request: &ReportRequest) -> anyhow::Result<Report> {
        let query: Vec<String> = [
            ("start", &request.start),
            ("end", &request.end),
            ("domain", &request.domain),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", links::encode(v))))
        .collect();
        self.get(&format!("/api/v1/report?{}", query.join("&")))
    }

    /// `GET /api/v1/alerts`, newest first.
    pub(super) fn alerts(
        &self,
        since: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<Recorded>> {
        let mut path = format!("/api/v1/alerts?limit={limit}");
        if let Some(since) = since {
            path.push_str(&format!("&since={}", links::encode(since)));
        }
        let v: serde_json::Value = self.get(&path)?;
        Ok(serde_json::from_value(v["alerts"].clone())?)
    }

    /// `GET /api/v1/holds`.
    pub(super) fn holds(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let v: serde_json::Value = self.get("/api/v1/holds")?;
        Ok(v["holds"].as_array().cloned().unwrap_or_default())
    }

    /// `DELETE /api/v1/holds/{sender}?by=`: the released record, `None`
    /// when the account is not contained.
    pub(super) fn release(
        &self,
        sender: &str,
        by: &str,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let url = format!(
            "{}/api/v1/holds/{}?by={}",
            self.base,
            links::encode(sender),
            links::encode(by)
        );
        self.send_unless(self.http.delete(url), Some(reqwest::StatusCode::NOT_FOUND))
    }

    /// `POST /api/v1/events` with an NDJSON body.
    pub(super) fn post_events(&self, ndjson: Vec<u8>) -> anyhow::Result<IngestOutcome> {
        let request = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .header("content-type", "application/x-ndjson")
            .body(ndjson);
        self.send(request)
    }

    /// Orders the report mail of `request` to `to` and waits until the
    /// daemon has sent it (or given up); returns the request's id.
    pub(super) fn mail_report(
        &self,
        request: &ReportRequest,
        to: &[String],
    ) -> anyhow::Result<String> {
        let order = serde_json::json!({
            "start": request.start, "end": request.end,
            "domain": request.domain, "recipients": to,
        });
        let queued: serde_json::Value = self.send(
            self.http
                .post(format!("{}/api/v1/reports", self.base))
                .json(&order),
        )?;
        Ok(queued["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Waits until report request `id` is sent, or the daemon gave up on
    /// it (its `mail.give_up_hours`); says why meanwhile when a try fails.
    pub(super) fn wait_sent(&self, id: &str) -> anyhow::Result<()> {
        let mut said = String::new();
        loop {
            let status: serde_json::Value = self.get(&format!("/api/v1/reports/{id}"))?;
            let why = status["last_error"].as_str().unwrap_or_default();
            match status["status"].as_str() {
                Some("sent") => return Ok(()),
                Some("failed") => bail!(
                    "the daemon could not send the report: {}",
                    if why.is_empty() {
                        "no reason given"
                    } else {
                        why
                    }
                ),
                _ => {
                    if !why.is_empty() && why != said {
                        eprintln!("not sent yet (request {id}): {why}; still trying");
                        said = why.to_owned();
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}
