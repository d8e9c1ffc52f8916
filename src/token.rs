//! The API token: configured, or generated once and kept in the data
//! directory, so a fresh install is secure without any setup.

use crate::config::Config;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

/// File in the data directory holding a generated token.
pub const TOKEN_FILE: &str = "api-token";

pub fn token_path(config: &Config) -> PathBuf {
    config.store.data_dir.join(TOKEN_FILE)
}

/// The configured token, or the generated one (created on first call with
/// mode 0600). Logs where a generated token is, never the token itself.
pub fn api_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = config
        .server
        .token()
        .resolve()
        .map_err(anyhow::Error::msg)?
    {
        return Ok(token);
    }
    let path = token_path(config);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            tracing::info!(path = %path.display(), "using the generated API token");
            return Ok(t.trim().to_owned());
        }
        Ok(_) => anyhow::bail!(
            "token file {} is empty; delete it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = crate::random::hex_id(32).context("cannot generate an API token")?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated an API token (no server.token configured)");
    Ok(token)
}
