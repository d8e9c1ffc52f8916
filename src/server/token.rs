//! The API token: configured, or generated once and kept in the data
//! directory, so a fresh install is secure without any setup.

use crate::random::{RandomError, hex_id};
use crate::secret::Secret;
use std::io::Write;
use std::path::{Path, PathBuf};

/// File in the data directory holding a generated token.
pub(crate) const TOKEN_FILE: &str = "api-token";

/// Why there is no API token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The configured source (file, environment variable) cannot be read.
    #[error("{0}")]
    Configured(String),
    #[error("token file {} is empty; delete it to generate a new one", .0.display())]
    Empty(PathBuf),
    #[error("cannot read or create {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate an API token: {0}")]
    Random(#[from] RandomError),
}

/// Where a generated token is kept in `data_dir`.
pub(crate) fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// The `configured` token, or the one generated in `data_dir` (created on
/// first call with mode 0600). Logs where a generated token is, never the
/// token itself.
pub(crate) fn api_token(configured: Secret<'_>, data_dir: &Path) -> Result<String, TokenError> {
    if let Some(token) = configured.resolve().map_err(TokenError::Configured)? {
        return Ok(token);
    }
    let path = token_path(data_dir);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => {
            tracing::info!(path = %path.display(), "using the generated API token");
            return Ok(t.trim().to_owned());
        }
        Ok(_) => return Err(TokenError::Empty(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let token = hex_id(32)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(io)?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    tracing::info!(path = %path.display(), "generated an API token (no server.token configured)");
    Ok(token)
}
