//! Time arithmetic shared by every stage: day numbers (local calendar days
//! of the configured zone) and UTC hour numbers.
//!
//! Day and hour numbers are `u32` counted from 1970-01-01: the store keys
//! counts by them (big-endian, so byte order is time order), the detectors
//! keep their hourly histories by them and reports index days by them. They
//! live here, in the core, so that none of those stages has to ask another
//! for the calendar.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::str::FromStr;

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// Day number of a calendar date (dates before 1970 clamp to day 0).
pub fn day_number(date: NaiveDate) -> u32 {
    u32::try_from((date - EPOCH).num_days()).unwrap_or(0)
}

/// Calendar date of a day number.
pub fn day_date(day: u32) -> NaiveDate {
    EPOCH + chrono::Days::new(u64::from(day))
}

/// Local calendar date of an instant in `tz`.
pub fn local_date(ts: DateTime<Utc>, tz: Tz) -> NaiveDate {
    tz.from_utc_datetime(&ts.naive_utc()).date_naive()
}

/// UTC hour number of an instant.
pub fn hour_number(ts: DateTime<Utc>) -> u32 {
    u32::try_from(ts.timestamp().div_euclid(3600)).unwrap_or(0)
}

/// Latest calendar year a date input may name. Dates are bounded on both
/// sides (1970 and this) so that no arithmetic on them can leave chrono's
/// range, whatever a request asks for.
pub(crate) const MAX_YEAR: i32 = 9999;

/// A `YYYY-MM-DD` date between 1970-01-01 and the end of [`MAX_YEAR`].
pub(crate) fn parse_day(s: &str) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    (EPOCH..=NaiveDate::from_ymd_opt(MAX_YEAR, 12, 31)?)
        .contains(&day)
        .then_some(day)
}

/// `ts` when it lies between 1970 and the end of [`MAX_YEAR`]: log time
/// stamps outside are garbage (the store counts days from 1970).
pub fn bounded(ts: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use chrono::Datelike as _;
    (ts.timestamp() >= 0 && ts.year() <= MAX_YEAR).then_some(ts)
}

/// A point in time given as an RFC 3339 instant or as a `YYYY-MM-DD`
/// date (its first moment in `tz`): how `since=` and `--since` are read.
/// Both are bounded like [`parse_day`].
pub fn parse_since(s: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return bounded(t.with_timezone(&Utc));
    }
    let day = parse_day(s)?;
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// An IANA time zone name, checked while the configuration is parsed so
/// that a typo is reported with its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(Tz::UTC)
    }
}

impl TimeZone {
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<Tz>().map(TimeZone).map_err(|_| {
            format!(
                "unknown time zone {s:?}; use an IANA name such as \"UTC\" or \"Europe/Berlin\""
            )
        })
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_date_follows_time_zone() {
        let ts: DateTime<Utc> = "2026-11-20T23:30:00Z".parse().unwrap();
        let tz: Tz = "Africa/Johannesburg".parse().unwrap();
        assert_eq!(local_date(ts, tz).to_string(), "2026-11-21");
        assert_eq!(local_date(ts, Tz::UTC).to_string(), "2026-11-20");
        let d = local_date(ts, Tz::UTC);
        assert_eq!(day_date(day_number(d)), d);
    }

    #[test]
    fn date_inputs_are_bounded() {
        assert!(parse_day("2026-11-20").is_some());
        for bad in [
            "-262143-01-01",
            "+262142-12-31",
            "1969-12-31",
            "10000-01-01",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
            assert_eq!(parse_since(bad, Tz::UTC), None, "{bad}");
        }
        assert_eq!(parse_since("1969-12-31T23:59:59Z", Tz::UTC), None);
        assert!(parse_since("2026-11-20T09:00:00+02:00", Tz::UTC).is_some());
    }
}
