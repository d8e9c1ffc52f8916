//! Secrets (the API token, the SMTP password) that should not have to live
//! in the config file itself.

use std::path::Path;

/// A secret given inline (`KEY`), read from a file (`KEY_file`, the way
/// systemd credentials and container secrets are handed over) or taken from
/// an environment variable named by `KEY_env`. At most one of the three.
#[derive(Debug, Clone, Copy)]
pub struct Secret<'a> {
    /// Dotted config key, for messages (`server.token`).
    pub key: &'static str,
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
    pub fn resolve(&self) -> Result<Option<String>, String> {
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
