//! The values every numeric key takes. The file's numbers are checked
//! against this table before they reach their types, so a value out of
//! range is an error naming the key and its range, never an overflow, a
//! wrapped multiplication or a panic later (a cache of 2^44 MiB overflowed
//! to 0 bytes; a semaphore of 2^61 permits panicked at start).
//!
//! Ranges are what a mail server could sensibly want, with room to spare;
//! their ends are tested together (`tests/config_bounds.rs` runs the daemon
//! with every key at its minimum, then at its maximum). Keys whose range
//! depends on another key (`hourly_retention_days` at most
//! `retention_days`, ...) are checked again by their section.

/// A numeric key and the values it takes (both ends included).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Dotted, as the file writes it (`server.max_connections`).
    pub key: &'static str,
    pub min: f64,
    pub max: f64,
    /// Whether the key takes whole numbers only.
    pub whole: bool,
}

const fn whole(key: &'static str, min: u64, max: u64) -> Bound {
    Bound {
        key,
        min: min as f64,
        max: max as f64,
        whole: true,
    }
}

const fn real(key: &'static str, min: f64, max: f64) -> Bound {
    Bound {
        key,
        min,
        max,
        whole: false,
    }
}

const DAY: u64 = 86_400;

/// Every numeric key. `detect.volume.p_value` and `p_value_new_ip` are
/// left to their section: their range is open at both ends.
pub const BOUNDS: &[Bound] = &[
    whole("server.report_requests_per_hour", 1, 100_000),
    whole("server.max_body_bytes", 1024, 1 << 30),
    whole("server.max_connections", 1, 1_000_000),
    whole("server.max_connections_per_address", 1, 1_000_000),
    whole("server.header_timeout_seconds", 1, 3600),
    whole("server.body_timeout_seconds", 1, 3600),
    whole("store.retention_days", 1, 3650),
    whole("store.hourly_retention_days", 1, 3650),
    whole("store.cache_mb", 1, 65_536),
    whole("store.min_free_mb", 0, 1 << 20),
    whole("report.top_senders", 1, 100_000),
    whole("report.default_days", 1, 3650),
    whole("mail.port", 1, 65_535),
    whole("mail.timeout_seconds", 1, 3600),
    whole("mail.retry_initial_seconds", 1, DAY),
    whole("mail.retry_max_seconds", 1, 7 * DAY),
    whole("mail.give_up_hours", 1, 90 * 24),
    whole("detect.group_seconds", 0, 3600),
    whole("detect.max_age_minutes", 0, 30 * 24 * 60),
    whole("detect.volume.min_count", 1, 1_000_000),
    whole("detect.volume.min_count_active", 1, 1_000_000),
    whole("detect.volume.min_count_new_ip", 1, 1_000_000),
    real("detect.volume.min_ratio", 1.0, 1000.0),
    real("detect.volume.floor", 0.01, 1_000_000.0),
    real("detect.volume.activity_share", 0.0, 1.0),
    real("detect.volume.repeat_margin", 1.0, 100.0),
    whole("detect.volume.renotify_minutes", 1, 7 * 24 * 60),
    whole("detect.volume.renotify_max_hours", 1, 30 * 24),
    whole("detect.new_sender.age_hours", 0, 365 * 24),
    real("detect.new_sender.expected", 0.01, 1_000_000.0),
    whole("detect.new_sender.min_count", 1, 1_000_000),
    whole("detect.legacy_tls.digest_hour", 0, 23),
    whole("detect.auth_failures.per_user", 1, 1_000_000),
    whole("detect.auth_failures.per_ip", 1, 1_000_000),
    whole("detect.auth_failures.ip_distinct_users", 1, 1_000_000),
    whole("detect.auth_failures.cooldown_hours", 0, 30 * 24),
    // More accounts than an address's window remembers (64) never alert.
    whole("detect.shared_ip.min_accounts", 2, 64),
    whole("detect.shared_ip.window_minutes", 1, 24 * 60),
    real("detect.shared_ip.max_known_share", 0.0, 1.0),
    real("detect.shared_ip.min_spread", 0.0, 1.0),
    whole("detect.shared_ip.cooldown_hours", 0, 30 * 24),
    whole("policy.max_connections", 1, 100_000),
    whole("policy.max_connections_per_peer", 1, 100_000),
    whole("policy.idle_timeout_seconds", 1, DAY),
    whole("policy.hold_hours", 1, 90 * 24),
    real("policy.remind_hours", 0.0, 7.0 * 24.0),
];

/// `x` as the file would write it.
fn show(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Bound {
    /// What the key takes, for messages: "must be 1 to 3600".
    pub fn says(&self) -> String {
        let whole = if self.whole { ", a whole number" } else { "" };
        format!("must be {} to {}{whole}", show(self.min), show(self.max))
    }
}

/// The first number in `table` (a configuration file as parsed) out of its
/// key's range: the key and what it takes.
pub(super) fn check(table: &toml::Table) -> Result<(), (&'static str, String)> {
    walk(table, &mut String::new())
}

fn walk(table: &toml::Table, path: &mut String) -> Result<(), (&'static str, String)> {
    for (name, value) in table {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(name);
        let number = match value {
            toml::Value::Integer(i) => Some(*i as f64),
            toml::Value::Float(f) => Some(*f),
            toml::Value::Table(t) => {
                walk(t, path)?;
                None
            }
            toml::Value::Array(items) => {
                for t in items.iter().filter_map(toml::Value::as_table) {
                    walk(t, path)?;
                }
                None
            }
            _ => None,
        };
        if let (Some(x), Some(b)) = (number, BOUNDS.iter().find(|b| b.key == path.as_str())) {
            let whole_ok = !b.whole || matches!(value, toml::Value::Integer(_));
            if !(x >= b.min && x <= b.max && whole_ok) {
                return Err((b.key, b.says()));
            }
        }
        path.truncate(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), (&'static str, String)> {
        check(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn numbers_out_of_range_name_their_key_and_range() {
        assert_eq!(
            parse("[store]\ncache_mb = 17592186044416\n"),
            Err((
                "store.cache_mb",
                "must be 1 to 65536, a whole number".into()
            ))
        );
        assert_eq!(
            parse("policy.max_connections = 2305843009213693952\n"),
            Err((
                "policy.max_connections",
                "must be 1 to 100000, a whole number".into()
            ))
        );
        assert_eq!(
            parse("[detect]\nmax_age_minutes = 200000000000000\n"),
            Err((
                "detect.max_age_minutes",
                "must be 0 to 43200, a whole number".into()
            ))
        );
        assert_eq!(
            parse("[detect.volume]\nmin_ratio = 1e308\n"),
            Err(("detect.volume.min_ratio", "must be 1 to 1000".into()))
        );
        assert_eq!(
            parse("[detect.volume]\nfloor = nan\n"),
            Err(("detect.volume.floor", "must be 0.01 to 1000000".into()))
        );
        assert!(parse("[server]\nmax_connections = -1\n").is_err());
        assert!(parse("[server]\nmax_connections = 2.5\n").is_err(), "whole");
    }

    #[test]
    fn the_ends_of_every_range_pass() {
        for b in BOUNDS {
            for x in [b.min, b.max] {
                let value = if b.whole { show(x) } else { format!("{x:?}") };
                let text = format!("{} = {value}\n", b.key);
                assert_eq!(parse(&text), Ok(()), "{text}");
            }
        }
    }
}
