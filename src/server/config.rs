//! `[server]`: the HTTP API and the dashboard's logins.

use crate::secret::Secret;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[server]`: the HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: put a TLS proxy in front
    /// before exposing it.
    pub listen: Listen,
    /// Bearer token for `/api`, inline, from a file (`token_file`) or from an
    /// environment variable (`token_env`). When none is configured the daemon
    /// generates one on first start and keeps it in the data directory.
    pub token: Option<String>,
    pub(crate) token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// `POST /api/v1/reports` requests allowed per hour (429 beyond).
    pub report_requests_per_hour: u32,
    /// Largest accepted request body, in bytes; larger ones get 413. A
    /// request is stored atomically, so this also bounds the memory one
    /// request can take while it is committed.
    pub max_body_bytes: usize,
    /// Base URL under which admins reach the dashboard (behind a TLS proxy,
    /// say); links in alert mails start with it. Default: `http://` and
    /// the listen address.
    pub public_url: Option<String>,
    /// Most connections served at once. When all are open, the one
    /// waiting the longest for its request (or for the rest of it) is
    /// closed to make room; connections that presented the API token or a
    /// dashboard session are never closed for another. Keep it below the
    /// unit's `LimitNOFILE=`.
    pub max_connections: usize,
    /// Most connections from one client address; beyond, its own longest
    /// waiting one makes room.
    pub(crate) max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers, and that an idle
    /// connection is kept open between requests.
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's whole body, from the
    /// request's start.
    pub body_timeout_seconds: u64,
    /// `[[server.users]]`: dashboard logins besides the API token, each
    /// with an Argon2 password hash (`smtp-auth-insight hash-password`).
    pub users: Vec<DashboardUser>,
}

/// A dashboard login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardUser {
    pub name: String,
    /// PHC string, `$argon2id$v=19$...`.
    pub password_hash: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Listen::default(),
            token: None,
            token_file: None,
            token_env: None,
            max_body_bytes: 2 * 1024 * 1024,
            report_requests_per_hour: 30,
            max_connections: 512,
            max_connections_per_address: 64,
            header_timeout_seconds: 10,
            body_timeout_seconds: 60,
            users: Vec::new(),
            public_url: None,
        }
    }
}

impl ServerConfig {
    /// The API token's configured source.
    pub fn token(&self) -> Secret<'_> {
        Secret {
            key: "server.token",
            credential: "api-token",
            inline: self.token.as_deref(),
            file: self.token_file.as_deref(),
            env: self.token_env.as_deref(),
        }
    }
}

/// A socket address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub SocketAddr);

impl Default for Listen {
    fn default() -> Self {
        Listen(SocketAddr::from(([127, 0, 0, 1], 8587)))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Listen).map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not an address and port such as \"127.0.0.1:8587\" or \"[::1]:8587\""
            ))
        })
    }
}

impl ServerConfig {
    /// Checks values that need more than their type and range (see
    /// `config::bounds`); returns the key at fault.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        self.token().check().map_err(|m| ("server.token", m))?;
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    "server.public_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        check_users(&self.users)?;
        Ok(())
    }

    /// The dashboard logins: `[[server.users]]` and, under systemd, the
    /// lines `NAME:HASH` of the credential `dashboard-users` (so password
    /// hashes need not be in the world-readable config).
    pub(crate) fn dashboard_users(&self) -> Result<Vec<DashboardUser>, String> {
        let mut users = self.users.clone();
        if let Some(text) = crate::secret::credential(USERS_CREDENTIAL)? {
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let (name, hash) = line.trim().split_once(':').ok_or_else(|| {
                    format!(
                        "credential {USERS_CREDENTIAL}, line {}: expected NAME:HASH",
                        n + 1
                    )
                })?;
                users.push(DashboardUser {
                    name: name.to_owned(),
                    password_hash: hash.to_owned(),
                });
            }
        }
        check_users(&users).map_err(|(key, message)| format!("{key}: {message}"))?;
        Ok(users)
    }

    /// Base URL of the dashboard for links in mails, without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen.0),
        }
    }
}

/// The systemd credential holding dashboard logins, `NAME:HASH` a line.
pub(super) const USERS_CREDENTIAL: &str = "dashboard-users";

/// Names unique and not empty, hashes that parse; the key at fault.
fn check_users(list: &[DashboardUser]) -> Result<(), (&'static str, String)> {
    let mut users = std::collections::HashSet::new();
    for u in list {
        if u.name.is_empty() || !users.insert(&u.name) {
            return Err((
                "server.users.name",
                format!("{:?} is empty or used twice", u.name),
            ));
        }
        argon2::PasswordHash::new(&u.password_hash).map_err(|e| {
            (
                "server.users.password_hash",
                format!(
                    "not a password hash ({e}); make one with `smtp-auth-insight hash-password`"
                ),
            )
        })?;
    }
    Ok(())
}
