//! The report model (the JSON of `GET /api/v1/report`), built from daily
//! aggregates. Pure: the store feeds rows in, renderers and the API read
//! the result.

use crate::event::TlsCounts;
use crate::event::sender_domain;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Sender-domain filter, `null` for all domains.
    pub domain: Option<String>,
    pub timezone: String,
    pub summary: Summary,
    /// One row per day of the range, empty days included.
    pub daily: Vec<DayRow>,
    /// Senders with at least one message, most messages first.
    pub senders: Vec<SenderRow>,
    /// Usernames with failed logins in the range, most first, including
    /// usernames that never sent a message (guessed ones among them).
    pub auth_failures: Vec<FailureRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Distinct SMTP AUTH identities that sent at least one message.
    pub senders: u64,
    pub messages: u64,
    pub tls: TlsCounts,
    /// Failed logins in the range (they are not messages).
    pub auth_failures: u64,
    /// Messages the policy service put in Postfix's hold queue (counted
    /// in `messages` too: Postfix accepted them).
    #[serde(default)]
    pub held: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DayRow {
    pub date: NaiveDate,
    pub messages: u64,
    pub tls: TlsCounts,
    /// Failed logins that day.
    pub auth_failures: u64,
}

/// Failed logins of one username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRow {
    pub sender: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SenderRow {
    pub sender: String,
    /// Text after the last `@`; empty when the identity has none.
    pub domain: String,
    pub messages: u64,
    pub tls: TlsCounts,
    /// Of `messages`, those put in Postfix's hold queue.
    #[serde(default)]
    pub held: u64,
}

/// Accumulates daily rows of a range into a [`Report`].
pub struct ReportBuilder {
    start: NaiveDate,
    end: NaiveDate,
    first_day: u32,
    domain: Option<String>,
    daily: Vec<TlsCounts>,
    senders: HashMap<Box<str>, TlsCounts>,
    failures: Failures,
}

/// Failed logins of a range, per day (index from its first day) and per
/// username.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    pub daily: Vec<u64>,
    pub users: HashMap<String, u64>,
}

impl Failures {
    /// Empty, for a range of `days` days.
    pub fn new(days: usize) -> Failures {
        Failures {
            daily: vec![0; days],
            users: HashMap::new(),
        }
    }

    /// Adds `n` failed logins of `user` on day `index` of the range.
    pub fn add(&mut self, index: usize, user: &str, n: u64) {
        let Some(day) = self.daily.get_mut(index) else {
            return;
        };
        *day += n;
        match self.users.get_mut(user) {
            Some(count) => *count += n,
            None => {
                self.users.insert(user.to_owned(), n);
            }
        }
    }
}

impl ReportBuilder {
    /// `domain`: `Some("")` selects senders without a domain.
    pub fn new(start: NaiveDate, end: NaiveDate, domain: Option<String>) -> ReportBuilder {
        let days = (end - start).num_days().max(0) as usize + 1;
        ReportBuilder {
            start,
            end,
            first_day: crate::event::time::day_number(start),
            domain,
            daily: vec![TlsCounts::default(); days],
            senders: HashMap::new(),
            failures: Failures::new(days),
        }
    }

    /// Adds `n` failed logins of `user` on `day`; outside the range or the
    /// domain filter, ignored.
    pub fn add_failures(&mut self, day: u32, user: &str, n: u64) {
        if self
            .domain
            .as_deref()
            .is_some_and(|d| sender_domain(user) != d)
        {
            return;
        }
        if let Some(index) = day.checked_sub(self.first_day) {
            self.failures.add(index as usize, user, n);
        }
    }

    /// Adds one (day, sender) aggregate; rows outside the range or the domain
    /// filter are ignored.
    pub fn add(&mut self, day: u32, sender: &str, counts: &TlsCounts) {
        if self
            .domain
            .as_deref()
            .is_some_and(|d| sender_domain(sender) != d)
        {
            return;
        }
        let Some(slot) = day
            .checked_sub(self.first_day)
            .and_then(|i| self.daily.get_mut(i as usize))
        else {
            return;
        };
        slot.add(counts);
        match self.senders.get_mut(sender) {
            Some(total) => total.add(counts),
            None => {
                self.senders.insert(sender.into(), *counts);
            }
        }
    }

    /// Adds what `other` (a builder of the same range and filter, fed other
    /// days) collected.
    pub fn merge(&mut self, other: ReportBuilder) {
        for (mine, theirs) in self.daily.iter_mut().zip(&other.daily) {
            mine.add(theirs);
        }
        for (i, n) in other.failures.daily.iter().enumerate() {
            if let Some(day) = self.failures.daily.get_mut(i) {
                *day += n;
            }
        }
        for (user, n) in other.failures.users {
            *self.failures.users.entry(user).or_default() += n;
        }
        if self.senders.len() < other.senders.len() {
            let mine = std::mem::replace(&mut self.senders, other.senders);
            self.merge_senders(mine);
        } else {
            self.merge_senders(other.senders);
        }
    }

    fn merge_senders(&mut self, from: HashMap<Box<str>, TlsCounts>) {
        for (sender, counts) in from {
            self.senders.entry(sender).or_default().add(&counts);
        }
    }

    pub fn finish(self, timezone: &str) -> Report {
        let senders = self
            .senders
            .into_iter()
            .map(|(sender, tls)| (String::from(sender), tls))
            .collect();
        Report::assemble(
            (self.start, self.end, self.domain),
            timezone,
            self.daily,
            senders,
        )
        .with_failures(self.failures)
    }
}

impl Report {
    /// The report of a range (`start`, `end`, domain filter) from its
    /// per-day counts and per-sender totals (in any order; senders without
    /// messages are left out).
    pub fn assemble(
        (start, end, domain): (NaiveDate, NaiveDate, Option<String>),
        timezone: &str,
        days: Vec<TlsCounts>,
        senders: Vec<(String, TlsCounts)>,
    ) -> Report {
        let first_day = crate::event::time::day_number(start);
        let mut total = TlsCounts::default();
        let daily: Vec<DayRow> = days
            .iter()
            .enumerate()
            .map(|(i, tls)| {
                total.add(tls);
                DayRow {
                    date: crate::event::time::day_date(first_day + i as u32),
                    messages: tls.total(),
                    tls: *tls,
                    auth_failures: 0,
                }
            })
            .collect();
        let mut senders: Vec<SenderRow> = senders
            .into_iter()
            .filter(|(_, c)| c.total() > 0)
            .map(|(sender, tls)| SenderRow {
                domain: sender_domain(&sender).to_owned(),
                sender,
                messages: tls.total(),
                tls,
                held: 0,
            })
            .collect();
        senders.sort_unstable_by(|a, b| {
            b.messages
                .cmp(&a.messages)
                .then_with(|| a.sender.cmp(&b.sender))
        });
        Report {
            start,
            end,
            domain,
            timezone: timezone.to_owned(),
            summary: Summary {
                senders: senders.len() as u64,
                messages: total.total(),
                tls: total,
                auth_failures: 0,
                held: 0,
            },
            daily,
            senders,
            auth_failures: Vec::new(),
        }
    }

    /// The report with the failed logins of its range (days and usernames
    /// already restricted to its domain filter).
    /// Sets the messages held per sender (`held`: account to count; the
    /// accounts not in the report are left out, as the domain filter
    /// wants), and their total.
    pub fn with_held(mut self, held: &HashMap<String, u64>) -> Report {
        if held.is_empty() {
            return self;
        }
        let mut total = 0;
        for row in &mut self.senders {
            row.held = held.get(&row.sender).copied().unwrap_or(0);
            total += row.held;
        }
        self.summary.held = total;
        self
    }

    pub fn with_failures(mut self, failures: Failures) -> Report {
        for (row, n) in self.daily.iter_mut().zip(&failures.daily) {
            row.auth_failures = *n;
        }
        self.summary.auth_failures = failures.daily.iter().sum();
        let mut users: Vec<FailureRow> = failures
            .users
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(sender, count)| FailureRow { sender, count })
            .collect();
        users.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.sender.cmp(&b.sender)));
        self.auth_failures = users;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Tls;

    fn counts(pairs: &[(Tls, u64)]) -> TlsCounts {
        let mut c = TlsCounts::default();
        for (t, n) in pairs {
            c.0[t.index()] = *n;
        }
        c
    }

    #[test]
    fn builds_daily_rows_with_zeros_and_sorted_senders() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let end = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();
        let d0 = crate::event::time::day_number(start);
        let mut b = ReportBuilder::new(start, end, None);
        b.add(d0, "b@y", &counts(&[(Tls::V1_3, 5)]));
        b.add(d0 + 2, "a@x", &counts(&[(Tls::V1_0, 2), (Tls::None, 1)]));
        b.add(d0 + 2, "b@y", &counts(&[(Tls::V1_2, 1)]));
        b.add(d0 + 9, "z@z", &counts(&[(Tls::V1_2, 100)]));
        let r = b.finish("UTC");
        assert_eq!(r.daily.len(), 4);
        let per_day: Vec<u64> = r.daily.iter().map(|d| d.messages).collect();
        assert_eq!(per_day, [5, 0, 4, 0]);
        assert_eq!(r.summary.messages, 9);
        assert_eq!(r.summary.senders, 2);
        assert_eq!(r.senders[0].sender, "b@y");
        assert_eq!(r.senders[0].messages, 6);
        assert_eq!(r.senders[1].tls.legacy(), 3);
    }

    #[test]
    fn domain_filter_keeps_only_that_domain() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let d0 = crate::event::time::day_number(start);
        let mut b = ReportBuilder::new(start, start, Some(String::new()));
        b.add(d0, "scanner", &counts(&[(Tls::None, 3)]));
        b.add(d0, "a@x", &counts(&[(Tls::V1_3, 5)]));
        let r = b.finish("UTC");
        assert_eq!(r.summary.messages, 3);
        assert_eq!(r.senders[0].domain, "");
    }
}
