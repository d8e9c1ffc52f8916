//! Report ranges: inclusive calendar days in the configured time zone,
//! defaulting to the last `default_days` days and bounded by retention.

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use serde::Deserialize;

/// What a caller asks for; every part optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub start: Option<String>,
    pub end: Option<String>,
    /// Sender domain; `(none)` selects identities without a domain.
    pub domain: Option<String>,
}

/// A checked range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("{field} {value:?} is not a date from 1970 to 9999; expected YYYY-MM-DD")]
    BadDate { field: &'static str, value: String },
    #[error("start {start} is after end {end}")]
    Reversed { start: NaiveDate, end: NaiveDate },
    #[error("start {start} is before the oldest day kept ({oldest}); data is kept for {days} days")]
    TooOld {
        start: NaiveDate,
        oldest: NaiveDate,
        days: i64,
    },
    #[error("domain {0:?} is not a domain name (letters, digits, '.', '-', '_'), nor (none)")]
    BadDomain(String),
    #[error("end {end} is in the future (today is {today} in {tz})")]
    Future {
        end: NaiveDate,
        today: NaiveDate,
        tz: &'static str,
    },
}

fn parse_date(field: &'static str, value: Option<&str>) -> Result<Option<NaiveDate>, RangeError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => crate::event::time::parse_day(v)
            .map(Some)
            .ok_or_else(|| RangeError::BadDate {
                field,
                value: v.to_owned(),
            }),
    }
}

/// Normalises a domain filter: lower case, no leading `@`, empty = all,
/// `(none)` = identities without a domain. Anything but domain characters
/// is refused: the filter ends up in mail subjects and file names.
pub fn normalize_domain(raw: Option<&str>) -> Result<Option<String>, RangeError> {
    let Some(raw) = raw else { return Ok(None) };
    let d = raw.trim().trim_start_matches('@').to_lowercase();
    match d.as_str() {
        "" => Ok(None),
        "(none)" => Ok(Some(String::new())),
        _ if d.len() <= 253
            && d.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
        {
            Ok(Some(d))
        }
        _ => Err(RangeError::BadDomain(raw.to_owned())),
    }
}

impl ReportRequest {
    pub fn resolve(
        &self,
        today: NaiveDate,
        oldest: NaiveDate,
        default_days: u32,
        tz: Tz,
    ) -> Result<ResolvedRange, RangeError> {
        let span = Days::new(u64::from(default_days.max(1) - 1));
        let start = parse_date("start", self.start.as_deref())?;
        let end = parse_date("end", self.end.as_deref())?;
        let (start, end) = match (start, end) {
            (Some(s), Some(e)) => (s, e),
            // Saturating: the dates are bounded, but a span near the
            // calendar's ends must not panic either.
            (Some(s), None) => (s, s.checked_add_days(span).unwrap_or(today).min(today)),
            (None, Some(e)) => (e.checked_sub_days(span).unwrap_or(oldest).max(oldest), e),
            (None, None) => (
                today.checked_sub_days(span).unwrap_or(oldest).max(oldest),
                today,
            ),
        };
        if start > end {
            return Err(RangeError::Reversed { start, end });
        }
        if end > today {
            return Err(RangeError::Future {
                end,
                today,
                tz: tz.name(),
            });
        }
        if start < oldest {
            let days = (today - oldest).num_days() + 1;
            return Err(RangeError::TooOld {
                start,
                oldest,
                days,
            });
        }
        Ok(ResolvedRange {
            start,
            end,
            domain: normalize_domain(self.domain.as_deref())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn req(start: Option<&str>, end: Option<&str>) -> ReportRequest {
        ReportRequest {
            start: start.map(Into::into),
            end: end.map(Into::into),
            domain: None,
        }
    }

    #[test]
    fn defaults_to_last_days_ending_today() {
        let r = req(None, None)
            .resolve(d("2026-11-27"), d("2026-08-30"), 7, Tz::UTC)
            .unwrap();
        assert_eq!((r.start, r.end), (d("2026-11-21"), d("2026-11-27")));
        let r = req(Some("2026-11-01"), None)
            .resolve(d("2026-11-27"), d("2026-08-30"), 7, Tz::UTC)
            .unwrap();
        assert_eq!(r.end, d("2026-11-07"));
    }

    #[test]
    fn refuses_bad_ranges_with_reasons() {
        let (today, oldest) = (d("2026-11-27"), d("2026-08-30"));
        let e = req(Some("2026-11-10"), Some("2026-11-01"))
            .resolve(today, oldest, 7, Tz::UTC)
            .unwrap_err();
        assert_eq!(e.to_string(), "start 2026-11-10 is after end 2026-11-01");
        let e = req(Some("2026-08-01"), Some("2026-08-02"))
            .resolve(today, oldest, 7, Tz::UTC)
            .unwrap_err();
        assert!(e.to_string().contains("kept for 90 days"), "{e}");
        let e = req(None, Some("2026-12-01"))
            .resolve(today, oldest, 7, Tz::UTC)
            .unwrap_err();
        assert!(matches!(e, RangeError::Future { .. }));
        let e = req(Some("yesterday"), None)
            .resolve(today, oldest, 7, Tz::UTC)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("start \"yesterday\" is not a date")
        );
    }

    #[test]
    fn dates_at_the_ends_of_the_calendar_are_refused_not_panicked_on() {
        let (today, oldest) = (d("2026-11-27"), d("2026-08-30"));
        for (start, end) in [
            (None, Some("-262143-01-01")),
            (Some("+262142-12-31"), None),
            (Some("1969-12-31"), None),
            (None, Some("10000-01-01")),
        ] {
            let e = req(start, end)
                .resolve(today, oldest, 90, Tz::UTC)
                .unwrap_err();
            assert!(matches!(e, RangeError::BadDate { .. }), "{e}");
        }
        // The largest default span ending at the first day allowed.
        let r = req(None, Some("1970-01-01")).resolve(
            d("1970-01-01"),
            d("1970-01-01"),
            u32::MAX,
            Tz::UTC,
        );
        assert_eq!(r.map(|r| r.start), Ok(d("1970-01-01")));
    }

    #[test]
    fn domain_filter_is_normalised() {
        assert_eq!(
            normalize_domain(Some(" @Example.COM ")),
            Ok(Some("example.com".into()))
        );
        assert_eq!(normalize_domain(Some("(none)")), Ok(Some(String::new())));
        assert_eq!(normalize_domain(Some("")), Ok(None));
        assert!(normalize_domain(Some("x.example\r\nBcc: evil@x")).is_err());
        assert!(normalize_domain(Some("<b>")).is_err());
    }
}
