//! What the dashboard templates see, and the links between pages. Pure:
//! the report model goes in, formatted rows and URLs come out.

use crate::event::{Tls, TlsCounts};
use crate::report::{Report, SenderRow, links};
use serde::{Deserialize, Serialize};

/// Table rows per page.
pub(super) const PAGE: usize = 50;

/// The filters of the main page, as query parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct Filter {
    pub start: Option<String>,
    pub end: Option<String>,
    pub domain: Option<String>,
    /// `volume` (default) or `tls`.
    pub chart: Option<String>,
    /// `volume` (default) or `tls`.
    pub view: Option<String>,
    /// `messages` (default), `sender`, `domain` or a TLS key.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub dir: Option<String>,
    pub page: Option<usize>,
}

impl Filter {
    fn get(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.is_empty())
    }

    pub(super) fn chart(&self) -> &str {
        if Self::get(&self.chart) == Some("tls") {
            "tls"
        } else {
            "volume"
        }
    }

    pub(super) fn view(&self) -> &str {
        if Self::get(&self.view) == Some("tls") {
            "tls"
        } else {
            "volume"
        }
    }

    pub(super) fn sort(&self) -> &str {
        Self::get(&self.sort).unwrap_or("messages")
    }

    pub(super) fn ascending(&self) -> bool {
        Self::get(&self.dir) == Some("asc")
    }

    /// The link to this page with `f` applied to a copy of the filter.
    pub(super) fn link(&self, f: impl FnOnce(&mut Filter)) -> String {
        let mut c = self.clone();
        f(&mut c);
        let mut parts = Vec::new();
        for (k, v) in [
            ("start", &c.start),
            ("end", &c.end),
            ("domain", &c.domain),
            ("chart", &c.chart),
            ("view", &c.view),
            ("sort", &c.sort),
            ("dir", &c.dir),
        ] {
            if let Some(v) = Self::get(v) {
                parts.push(format!("{k}={}", links::encode(v)));
            }
        }
        if let Some(p) = c.page.filter(|p| *p > 1) {
            parts.push(format!("page={p}"));
        }
        format!("/?{}", parts.join("&"))
    }
}

#[derive(Debug, Serialize)]
pub(super) struct TlsCell {
    pub key: &'static str,
    pub count: u64,
    pub(crate) percent: String,
    pub legacy: bool,
    pub(crate) colour: String,
}

pub(super) fn cells(c: &TlsCounts) -> Vec<TlsCell> {
    Tls::ALL
        .iter()
        .map(|t| TlsCell {
            key: t.key(),
            count: c.get(*t),
            percent: format!("{:.1}", c.percent(*t)),
            legacy: t.is_legacy() && c.get(*t) > 0,
            colour: crate::report::chart::tls_css(*t),
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub(super) struct Column {
    pub label: String,
    pub link: String,
    /// "▲" / "▼" on the sorted column.
    pub mark: &'static str,
    pub numeric: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct TableRow {
    pub sender: String,
    pub link: String,
    pub domain: String,
    pub messages: u64,
    pub(crate) cells: Vec<TlsCell>,
    pub legacy: bool,
    /// Of `messages`, put in Postfix's hold queue by the policy service.
    pub held: u64,
}

#[derive(Debug, Serialize)]
pub(super) struct Table {
    pub(crate) columns: Vec<Column>,
    pub rows: Vec<TableRow>,
    pub(crate) tls_view: bool,
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub(crate) prev: Option<String>,
    pub next: Option<String>,
}

/// The details table of `report`, sorted and paged as `filter` says.
pub(super) fn table(report: &Report, filter: &Filter, range_query: &str) -> Table {
    let sort = filter.sort();
    let asc = filter.ascending();
    let mut rows: Vec<&SenderRow> = report.senders.iter().collect();
    let tls_key = Tls::ALL.iter().copied().find(|t| t.key() == sort);
    rows.sort_by(|a, b| {
        let ord = match (sort, tls_key) {
            ("sender", _) => a.sender.cmp(&b.sender),
            ("domain", _) => a.domain.cmp(&b.domain).then(a.sender.cmp(&b.sender)),
            (_, Some(t)) => a.tls.get(t).cmp(&b.tls.get(t)),
            _ => a.messages.cmp(&b.messages),
        };
        let ord = if asc { ord } else { ord.reverse() };
        ord.then_with(|| a.sender.cmp(&b.sender))
    });
    let total = rows.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = filter.page.unwrap_or(1).clamp(1, pages);
    let tls_view = filter.view() == "tls";
    let column = |key: &str, label: &str, numeric: bool| {
        let sorted = sort == key;
        // Text columns start ascending, counts descending.
        let next_asc = if sorted { !asc } else { !numeric };
        Column {
            label: label.to_owned(),
            link: filter.link(|f| {
                f.sort = Some(key.to_owned());
                f.dir = Some(if next_asc { "asc" } else { "desc" }.to_owned());
                f.page = None;
            }),
            mark: match (sorted, asc) {
                (false, _) => "",
                (true, true) => "▲",
                (true, false) => "▼",
            },
            numeric,
        }
    };
    let mut columns = vec![
        column("sender", "Sender", false),
        column("domain", "Domain", false),
    ];
    if tls_view {
        columns.extend(Tls::ALL.iter().map(|t| column(t.key(), t.key(), true)));
    }
    columns.push(column("messages", "Messages", true));
    let rows = rows
        .into_iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|r| TableRow {
            sender: r.sender.clone(),
            link: format!("{}?{range_query}", links::sender_path(&r.sender)),
            domain: if r.domain.is_empty() {
                "(none)".into()
            } else {
                r.domain.clone()
            },
            messages: r.messages,
            cells: cells(&r.tls),
            legacy: r.tls.legacy() > 0,
            held: r.held,
        })
        .collect();
    Table {
        columns,
        rows,
        tls_view,
        page,
        pages,
        total,
        prev: (page > 1).then(|| filter.link(|f| f.page = Some(page - 1))),
        next: (page < pages).then(|| filter.link(|f| f.page = Some(page + 1))),
    }
}

/// The main page's failed-login card: the total and the usernames with the
/// most failed logins (at most `top`), each linked to its page.
pub(super) fn failures(report: &Report, range_query: &str, top: usize) -> serde_json::Value {
    let users: Vec<_> = report
        .auth_failures
        .iter()
        .take(top)
        .map(|f| {
            let sent = report.senders.iter().any(|s| s.sender == f.sender);
            serde_json::json!({
                "sender": f.sender,
                "count": f.count,
                "sent": sent,
                "link": format!("{}?{range_query}", links::sender_path(&f.sender)),
            })
        })
        .collect();
    serde_json::json!({
        "total": report.summary.auth_failures,
        "usernames": report.auth_failures.len(),
        "users": users,
        "more": report.auth_failures.len().saturating_sub(top),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages of every order, ascending and descending, show every
    /// account once and in that order: by count with ties by sender, by
    /// sender, or by domain and sender; a page past the last shows the last.
    #[test]
    fn the_pages_of_every_order_show_every_row_once_in_that_order() {
        let senders: Vec<(String, TlsCounts)> = (0..237u64)
            .map(|i| {
                let mut c = TlsCounts::default();
                c.0[(i % 5) as usize] = i * 7919 % 13 + 1;
                c.0[((i + 2) % 5) as usize] += i % 3;
                (format!("u{:03}@d{}.example", i * 31 % 237, i % 4), c)
            })
            .collect();
        let range = (
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 7).unwrap(),
            None,
        );
        let report = Report::assemble(range, "UTC", vec![TlsCounts::default(); 7], senders);
        let row = |name: &str| report.senders.iter().find(|r| r.sender == name).unwrap();
        let keys = ["sender", "domain", "messages", "bogus"]
            .into_iter()
            .chain(Tls::ALL.iter().map(|t| t.key()));
        for sort in keys {
            let tls_key = Tls::ALL.iter().copied().find(|t| t.key() == sort);
            let count = |r: &SenderRow| tls_key.map_or(r.messages, |t| r.tls.get(t));
            for asc in [false, true] {
                let page = |page| {
                    let filter = Filter {
                        sort: Some(sort.to_owned()),
                        dir: Some(if asc { "asc" } else { "desc" }.to_owned()),
                        page: Some(page),
                        ..Filter::default()
                    };
                    let shown = table(&report, &filter, "").rows;
                    shown.into_iter().map(|r| r.sender).collect::<Vec<_>>()
                };
                let shown: Vec<String> = (1..=5).flat_map(page).collect();
                assert_eq!(page(6), page(5), "{sort}: past the last page");
                let mut once = shown.clone();
                once.sort_unstable();
                once.dedup();
                assert_eq!(once.len(), report.senders.len(), "{sort} asc={asc}");
                for pair in shown.windows(2) {
                    let (a, b) = (row(&pair[0]), row(&pair[1]));
                    let ordered = match sort {
                        "sender" => (a.sender < b.sender) == asc,
                        "domain" => ((&a.domain, &a.sender) < (&b.domain, &b.sender)) == asc,
                        _ if count(a) == count(b) => a.sender < b.sender,
                        _ => (count(a) < count(b)) == asc,
                    };
                    assert!(ordered, "{sort} asc={asc}: {} then {}", a.sender, b.sender);
                }
            }
        }
    }

    #[test]
    fn links_encode_every_hostile_character() {
        let f = Filter {
            domain: Some("a&b=c d<".into()),
            ..Filter::default()
        };
        assert_eq!(
            f.link(|f| f.page = Some(2)),
            "/?domain=a%26b%3Dc%20d%3C&page=2"
        );
    }
}
