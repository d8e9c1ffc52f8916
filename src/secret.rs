//! Secrets (the API token, the SMTP password, dashboard password hashes)
//! that should not have to live in the config file itself.
//!
//! Under systemd they come as credentials: the unit's `LoadCredential=`
//! copies root-only files into `$CREDENTIALS_DIRECTORY`, readable by the
//! service's dynamic user and nobody else, so a secret never sits in the
//! world-readable config. The packaged unit loads the directory
//! `/etc/smtp-auth-insight/credentials`, whose file `NAME` becomes the
//! credential `smtp-auth-insight_NAME`; a drop-in may load one as `NAME`.
//! A credential, when present, wins over the config.

use std::path::Path;

/// The environment variable systemd names the credentials directory in.
pub(crate) const CREDENTIALS_ENV: &str = "CREDENTIALS_DIRECTORY";

/// A secret given inline (`KEY`), read from a file (`KEY_file`, the way
/// container secrets are handed over) or taken from an environment variable
/// named by `KEY_env`, at most one of the three; or as the systemd
/// credential `credential`, which wins over all three.
#[derive(Debug, Clone, Copy)]
pub struct Secret<'a> {
    /// Dotted config key, for messages (`server.token`).
    pub key: &'static str,
    /// Name of the systemd credential (`api-token`, `smtp-password`).
    pub credential: &'static str,
    pub inline: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
}

impl Secret<'_> {
    /// Refuses more than one source, and an empty inline value, at load time.
    pub(crate) fn check(&self) -> Result<(), String> {
        let given = [
            self.inline.is_some(),
            self.file.is_some(),
            self.env.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            let k = self.key;
            return Err(format!("set only one of {k}, {k}_file and {k}_env"));
        }
        if self.inline.is_some_and(|t| t.trim().is_empty()) {
            return Err("must not be empty".into());
        }
        Ok(())
    }

    /// The secret's value, or `None` when none is configured.
    pub(crate) fn resolve(&self) -> Result<Option<String>, String> {
        if let Some(value) = credential(self.credential)? {
            return Ok(Some(value));
        }
        let k = self.key;
        let value = if let Some(v) = self.inline {
            v.to_owned()
        } else if let Some(path) = self.file {
            std::fs::read_to_string(path)
                .map_err(|e| format!("{k}_file {}: {e}", path.display()))?
        } else if let Some(var) = self.env {
            std::env::var(var)
                .map_err(|_| format!("environment variable {var} (named by {k}_env) is not set"))?
        } else {
            return Ok(None);
        };
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(format!("{k} is empty"));
        }
        Ok(Some(value))
    }
}

/// Prefix systemd gives the files of a credentials directory loaded as
/// `LoadCredential=smtp-auth-insight:DIR`.
const DIRECTORY_PREFIX: &str = "smtp-auth-insight_";

/// The systemd credential `name` (`NAME` or `smtp-auth-insight_NAME`),
/// trimmed; `None` when the daemon runs without credentials, or this one
/// is missing or empty.
pub(crate) fn credential(name: &str) -> Result<Option<String>, String> {
    let Some(dir) = std::env::var_os(CREDENTIALS_ENV).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = Path::new(&dir);
    for path in [
        dir.join(name),
        dir.join(format!("{DIRECTORY_PREFIX}{name}")),
    ] {
        match std::fs::read_to_string(&path) {
            Ok(v) if v.trim().is_empty() => {}
            Ok(v) => return Ok(Some(v.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("credential {name} ({}): {e}", path.display())),
        }
    }
    Ok(None)
}
