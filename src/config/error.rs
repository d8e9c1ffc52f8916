//! Configuration errors that say file, line and key.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}{}key `{key}`: {message}", file_prefix(.path), line_prefix(*.line))]
    Invalid {
        path: Option<PathBuf>,
        /// 1-based; `None` when the key is not written in the file.
        line: Option<usize>,
        key: String,
        message: String,
    },
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn file_prefix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl ConfigError {
    pub(crate) fn in_file(mut self, file: &Path) -> Self {
        if let ConfigError::Invalid { path, .. } = &mut self {
            *path = Some(file.to_owned());
        }
        self
    }

    /// Turns a toml error into one naming line and key, found from its span.
    pub(crate) fn from_toml(text: &str, e: &toml::de::Error) -> Self {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, key) = key_at(text, offset);
        ConfigError::Invalid {
            path: None,
            line: Some(line),
            key,
            message: e.message().trim().to_owned(),
        }
    }

    /// An error about a dotted key (`store.retention_days`) found after parsing.
    pub(crate) fn at_key(text: &str, key: &str, message: String) -> Self {
        let line = line_of_key(text, key);
        ConfigError::Invalid {
            path: None,
            line,
            key: key.to_owned(),
            message,
        }
    }
}

/// 1-based line of `offset` and the dotted key written on that line.
fn key_at(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut table = String::new();
    let mut key = String::new();
    for (i, line) in text.lines().enumerate() {
        if i + 1 > line_no {
            break;
        }
        let trimmed = line.trim();
        if let Some(header) = table_header(trimmed) {
            table = header;
            key.clear();
        } else if i + 1 == line_no {
            key = trimmed
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_owned())
                .unwrap_or_default();
        }
    }
    let full = match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    (
        line_no,
        if full.is_empty() {
            "(top level)".into()
        } else {
            full
        },
    )
}

fn table_header(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?.split(']').next()?;
    Some(inner.trim_start_matches('[').trim().to_owned())
}

/// Line on which a dotted key is set (under its table header or written
/// dotted), if it is set in the text at all.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let mut table = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = table_header(trimmed) {
            table = header;
        } else if let Some((k, _)) = trimmed.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if table.is_empty() {
                k.to_owned()
            } else {
                format!("{table}.{k}")
            };
            if full == dotted {
                return Some(i + 1);
            }
        }
    }
    None
}
