//! Scheduled reports: `[[schedules]]`, each a cron expression in a time zone,
//! a report range relative to the run, recipients.
//!
//! tokio-cron-scheduler ticks every second; which slot is due is decided here
//! with croner in the schedule's IANA zone, because the scheduler's own zone
//! support fixes the UTC offset when a job is created (so a job would run an
//! hour off after a DST change). The last slot run is stored in the same
//! transaction as the queued mail: a slot never runs twice, also across
//! restarts, and slots missed while the daemon was down collapse into one
//! run at start-up.

pub(crate) mod runner;

pub(crate) use runner::start;

use crate::event::time::TimeZone;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Deserializer};

/// `[[schedules]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Unique name; it keys the schedule's state in the store.
    pub name: String,
    /// Cron expression: `min hour day month weekday`, or with seconds in
    /// front (`0 0 7 * * Mon` is Mondays at 07:00).
    pub cron: String,
    /// Zone of the cron expression; default: the top-level `timezone`.
    #[serde(default)]
    pub timezone: Option<TimeZone>,
    /// `last_7_days` (any N: complete days before the run),
    /// `previous_week` (Monday to Sunday) or `previous_month`.
    pub range: RangeSpec,
    /// Only senders of this domain.
    #[serde(default)]
    pub domain: Option<String>,
    pub recipients: Vec<String>,
    /// Subject instead of the generated one.
    #[serde(default)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    LastDays(u32),
    PreviousWeek,
    PreviousMonth,
}

impl<'de> Deserialize<'de> for RangeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let days = s
            .strip_prefix("last_")
            .and_then(|r| r.strip_suffix("_days"))
            .and_then(|n| n.parse().ok());
        match (s.as_str(), days) {
            ("previous_week", _) => Ok(RangeSpec::PreviousWeek),
            ("previous_month", _) => Ok(RangeSpec::PreviousMonth),
            (_, Some(n)) if n >= 1 => Ok(RangeSpec::LastDays(n)),
            _ => Err(serde::de::Error::custom(format!(
                "unknown range {s:?}; expected last_N_days (e.g. last_7_days), previous_week or previous_month"
            ))),
        }
    }
}

impl RangeSpec {
    /// The inclusive day range a run on local date `today` reports.
    pub fn days(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let yesterday = today - Days::new(1);
        match self {
            // Saturating: the configuration bounds n by retention, but a
            // date near the calendar's start must not panic either.
            RangeSpec::LastDays(n) => (
                today
                    .checked_sub_days(Days::new(u64::from(n)))
                    .unwrap_or(yesterday),
                yesterday,
            ),
            RangeSpec::PreviousWeek => {
                let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
                (monday - Days::new(7), monday - Days::new(1))
            }
            RangeSpec::PreviousMonth => {
                let first = today.with_day(1).unwrap_or(today);
                (first - Months::new(1), first - Days::new(1))
            }
        }
    }
}

/// Parses a cron expression with optional seconds.
pub(crate) fn parse_cron(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a cron expression: {e}"))
}

/// The first slot after `now`, for `check-config`.
pub(crate) fn next_slot(
    cron: &Cron,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The slot to run now, if any: the latest slot at or before `now` that is
/// later than `last` (the last slot run). Several missed slots give one.
pub(crate) fn due_slot(
    cron: &Cron,
    tz: chrono_tz::Tz,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // croner keeps the sub-second part of the time it searches from: from
    // 07:00:00.3 it finds the slot "07:00:00.3", a tick later "07:00:00.8",
    // a different slot. Slots are whole seconds.
    let now = now.with_nanosecond(0)?;
    let slot = cron
        .find_previous_occurrence(&now.with_timezone(&tz), true)
        .ok()?
        .with_timezone(&Utc)
        .with_nanosecond(0)?;
    (slot > last).then_some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_are_relative_to_the_run_day() {
        // Monday 2026-11-23.
        assert_eq!(
            RangeSpec::LastDays(7).days(d("2026-11-23")),
            (d("2026-11-16"), d("2026-11-22"))
        );
        assert_eq!(
            RangeSpec::PreviousWeek.days(d("2026-11-23")),
            (d("2026-11-16"), d("2026-11-22"))
        );
        assert_eq!(
            RangeSpec::PreviousWeek.days(d("2026-11-26")),
            (d("2026-11-16"), d("2026-11-22"))
        );
        assert_eq!(
            RangeSpec::PreviousMonth.days(d("2026-03-01")),
            (d("2026-02-01"), d("2026-02-28"))
        );
    }

    #[test]
    fn missed_slots_collapse_into_the_latest_one() {
        let cron = parse_cron("0 7 * * *").unwrap();
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let last: DateTime<Utc> = "2026-11-20T06:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        // 07:00 in Berlin is 06:00 UTC in winter.
        assert_eq!(
            due_slot(&cron, tz, last, now).unwrap().to_rfc3339(),
            "2026-11-23T06:00:00+00:00"
        );
        let ran: DateTime<Utc> = "2026-11-23T06:00:00Z".parse().unwrap();
        assert_eq!(due_slot(&cron, tz, ran, now), None);
    }

    #[test]
    fn ticks_at_fractions_of_a_second_run_each_slot_once() {
        let cron = parse_cron("*/6 * * * * *").unwrap();
        let mut last: DateTime<Utc> = "2026-11-27T03:00:00Z".parse().unwrap();
        let mut runs = 0;
        // A tick every 1.013 s for a minute: ten slots.
        for i in 1..=59 {
            let now = "2026-11-27T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
                + chrono::TimeDelta::milliseconds(i * 1013);
            if let Some(slot) = due_slot(&cron, chrono_tz::Tz::UTC, last, now) {
                assert_eq!(slot.nanosecond(), 0);
                runs += 1;
                last = slot;
            }
        }
        assert_eq!(runs, 9);
    }

    #[test]
    fn local_time_survives_dst() {
        // 07:00 Berlin is 05:00 UTC in summer, 06:00 UTC in winter.
        let cron = parse_cron("0 7 * * *").unwrap();
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let last: DateTime<Utc> = "2026-10-20T05:00:00Z".parse().unwrap();
        let summer = due_slot(&cron, tz, last, "2026-10-21T09:00:00Z".parse().unwrap()).unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-10-21T05:00:00+00:00");
        let winter = due_slot(&cron, tz, summer, "2026-10-26T09:00:00Z".parse().unwrap()).unwrap();
        assert_eq!(winter.to_rfc3339(), "2026-10-26T06:00:00+00:00");
        // Ticking every 5 minutes through both changes of 2026: the 02:30
        // slot runs once on the day the hour repeats, at most once on the
        // day it does not exist, and once on ordinary days.
        let cron = parse_cron("30 2 * * *").unwrap();
        for (from, day, max, min) in [
            ("2026-10-24T20:00:00Z", "2026-10-25", 1, 1),
            ("2026-03-28T20:00:00Z", "2026-03-29", 1, 0),
            ("2026-11-10T20:00:00Z", "2026-11-11", 1, 1),
        ] {
            let mut last: DateTime<Utc> = from.parse().unwrap();
            let mut now = last;
            let mut runs = Vec::new();
            for _ in 0..(12 * 12) {
                now += chrono::TimeDelta::minutes(5);
                if let Some(slot) = due_slot(&cron, tz, last, now) {
                    runs.push(slot);
                    last = slot;
                }
            }
            let on_day = runs
                .iter()
                .filter(|r| r.with_timezone(&tz).date_naive().to_string() == day)
                .count();
            assert!((min..=max).contains(&on_day), "{day}: {runs:?}");
        }
    }

    #[test]
    fn bad_ranges_and_crons_are_named() {
        assert!(
            parse_cron("every monday")
                .unwrap_err()
                .contains("not a cron expression")
        );
        let err = toml::from_str::<ScheduleConfig>(
            "name='x'\ncron='0 7 * * 1'\nrange='fortnight'\nrecipients=[]",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown range \"fortnight\""),
            "{err}"
        );
    }
}
