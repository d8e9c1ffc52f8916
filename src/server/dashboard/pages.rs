//! The dashboard's pages and forms.

use super::session::Session;
use super::svg;
use super::view::{self, Filter};
use crate::report::{self, ReportRequest, links, render};
use crate::server::AppState;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

/// The session of a logged-in request (set by `require_session`).
#[derive(Clone)]
pub(super) struct LoggedIn {
    pub id: String,
    pub session: Session,
}

impl LoggedIn {
    /// The refusal of a form whose CSRF token is not this session's.
    pub(super) fn refuse_stale(&self, state: &AppState, csrf: &str) -> Option<Response> {
        if self.session.csrf_ok(csrf) {
            return None;
        }
        Some(message(
            state,
            StatusCode::FORBIDDEN,
            "Refused",
            "The form was stale; reload the page.",
            "/",
        ))
    }
}

/// A time as the dashboard shows it, to the minute.
fn utc_minute(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An alert as the templates list it.
/// An alert as the dashboard lists it: with where its incident stands
/// now, for the kinds that have one (`incident`, from
/// [`crate::detect::incidents`]), else its own status.
fn alert_json(r: &crate::store::Recorded, incident: Option<crate::detect::Incident>) -> Value {
    json!({
        "kind": r.alert.kind.title(),
        "status": incident.map_or(r.alert.status.label(), |i| i.name()),
        "sender": r.alert.sender,
        "at": utc_minute(r.alert.at),
        "detail": r.alert.detail,
    })
}

/// Alerts read back newest first, as the dashboard lists them.
fn alerts_json(alerts: &[crate::store::Recorded]) -> Vec<Value> {
    let incidents = crate::detect::incidents(alerts.iter().map(|r| &r.alert));
    alerts
        .iter()
        .zip(incidents)
        .map(|(r, i)| alert_json(r, i))
        .collect()
}

/// Alerts shown on the main page, and on a sender's page.
const RECENT_ALERTS: usize = 20;
const SENDER_ALERTS: usize = 1000;
/// Usernames listed in the main page's failed-login card.
const FAILED_USERS: usize = 10;

pub(super) fn message(
    state: &AppState,
    status: StatusCode,
    title: &str,
    text: &str,
    back: &str,
) -> Response {
    let mut r = state.dashboard.render(
        "message",
        &json!({"title": title, "text": text, "back": back, "refresh": false, "csrf": ""}),
    );
    *r.status_mut() = status;
    r
}

/// Builds the report of `request` on a blocking thread.
async fn build(state: &AppState, request: ReportRequest) -> Result<report::Report, String> {
    let store = state.fresh_store().await.map_err(|e| e.to_string())?;
    let days = state.settings.default_days;
    tokio::task::spawn_blocking(move || crate::reports::build(&store, &request, days, Utc::now()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Gives freed heap back to the system when dropped: declared first in a
/// handler, it is dropped last, after the reports the page was built from
/// (tens of megabytes at 100,000 senders), which glibc would otherwise
/// keep until the next periodic release, as the JSON reports do not.
struct ReleaseAfter;

impl Drop for ReleaseAfter {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(crate::process::release_freed);
        }
    }
}

pub(super) async fn index(
    State(state): State<AppState>,
    Extension(me): Extension<LoggedIn>,
    Query(mut filter): Query<Filter>,
) -> Response {
    let _release = ReleaseAfter;
    let range = |f: &Filter, domain: Option<String>| ReportRequest {
        start: f.start.clone().filter(|s| !s.is_empty()),
        end: f.end.clone().filter(|s| !s.is_empty()),
        domain,
    };
    // A bad range falls back to the default one, with the reason shown.
    let (all, error) = match build(&state, range(&filter, None)).await {
        Ok(r) => (r, String::new()),
        Err(e) => {
            filter.start = None;
            filter.end = None;
            match build(&state, range(&filter, None)).await {
                Ok(r) => (r, e),
                Err(e) => {
                    return message(&state, StatusCode::INTERNAL_SERVER_ERROR, "Error", &e, "/");
                }
            }
        }
    };
    // The insight tile always shows the default range (the last 7 days).
    let custom = filter.start.as_deref().is_some_and(|s| !s.is_empty())
        || filter.end.as_deref().is_some_and(|s| !s.is_empty());
    let tile = if custom {
        build(&state, range(&Filter::default(), None)).await.ok()
    } else {
        None
    };
    let tile = tile.as_ref().unwrap_or(&all);
    let domain = filter.domain.clone().filter(|d| !d.is_empty());
    let filtered = match &domain {
        None => None,
        Some(d) => match build(&state, range(&filter, Some(d.clone()))).await {
            Ok(r) => Some(r),
            Err(e) => return message(&state, StatusCode::BAD_REQUEST, "Bad filter", &e, "/"),
        },
    };
    let report = filtered.as_ref().unwrap_or(&all);
    let mut domains: Vec<String> = all
        .senders
        .iter()
        .map(|s| {
            if s.domain.is_empty() {
                "(none)".to_owned()
            } else {
                s.domain.clone()
            }
        })
        .collect();
    domains.sort();
    domains.dedup();
    let domains: Vec<_> = domains
        .into_iter()
        .map(|d| json!({"value": d, "selected": Some(&d) == domain.as_ref()}))
        .collect();
    let range_query = format!("start={}&end={}", report.start, report.end);
    let chart = filter.chart();
    let chart_svg = if chart == "tls" {
        svg::tls(&report.daily)
    } else {
        svg::volume(&report.daily)
    };
    let table = view::table(report, &filter, &range_query);
    let store = state.store.clone();
    let now = Utc::now();
    let since = now - chrono::TimeDelta::days(7);
    let alerts = tokio::task::spawn_blocking(move || store.alerts_since(since, RECENT_ALERTS))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let alerts = alerts_json(&alerts);
    // The accounts the policy service stops now, each with its Release.
    let contained: Vec<Value> = state
        .holds
        .as_ref()
        .map(|h| h.contained(now.timestamp()))
        .unwrap_or_default()
        .iter()
        .map(|(key, hold)| {
            let mut v = crate::contain::view(key, hold, now.timestamp());
            // An address's containment releases through the same form (the
            // release takes an address); it has no page of its own.
            let subject = crate::contain::subject(key);
            let page = links::sender_path(&subject.name());
            v["release"] = json!(format!("{page}/release"));
            v["name"] = json!(subject.name());
            if matches!(subject, crate::contain::Subject::Account(_)) {
                v["link"] = json!(page);
            }
            v
        })
        .collect();
    let data = json!({
        "title": "SMTP AUTH clients",
        "contained": contained,
        "csrf": me.session.csrf,
        "error": error,
        "start": report.start.to_string(),
        "end": report.end.to_string(),
        "min_date": state.store.oldest_day(now).to_string(),
        "max_date": state.store.today(now).to_string(),
        "timezone": report.timezone,
        "domain": domain.clone().unwrap_or_default(),
        "domains": domains,
        "tile": {"senders": tile.summary.senders, "start": tile.start.to_string(), "end": tile.end.to_string()},
        "summary": {
            "senders": report.summary.senders,
            "messages": report.summary.messages,
            "auth_failures": report.summary.auth_failures,
            "held": report.summary.held,
            "tls": view::cells(&report.summary.tls),
        },
        "chart": chart,
        "chart_tls": chart == "tls",
        "chart_svg": chart_svg,
        "volume_link": filter.link(|f| f.chart = None),
        "tls_link": filter.link(|f| f.chart = Some("tls".into())),
        "view_volume_link": filter.link(|f| { f.view = None; f.page = None; }),
        "view_tls_link": filter.link(|f| { f.view = Some("tls".into()); f.page = None; }),
        "table": table,
        "csv_link": format!(
            "/senders.csv?{range_query}{}",
            domain.as_deref().map(|d| format!("&domain={}", links::encode(d))).unwrap_or_default()
        ),
        "alerts": alerts,
        "failures": view::failures(report, &range_query, FAILED_USERS),
        "chart_name": if chart == "tls" { "TLS usage" } else { "Sending volume" },
    });
    state.dashboard.render("index", &data)
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    start: Option<String>,
    end: Option<String>,
    domain: Option<String>,
}

pub(super) async fn csv(State(state): State<AppState>, Query(q): Query<RangeQuery>) -> Response {
    let request = ReportRequest {
        start: q.start,
        end: q.end,
        domain: q.domain.filter(|d| !d.is_empty()),
    };
    match build(&state, request).await {
        Ok(r) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"smtp-auth-senders-{}-{}.csv\"",
                        r.start, r.end
                    ),
                ),
            ],
            render::csv(&r),
        )
            .into_response(),
        Err(e) => message(&state, StatusCode::BAD_REQUEST, "Bad range", &e, "/"),
    }
}

pub(super) async fn sender(
    State(state): State<AppState>,
    Extension(me): Extension<LoggedIn>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let request = ReportRequest {
        start: q.start,
        end: q.end,
        domain: None,
    };
    let store = match state.fresh_store().await {
        Ok(store) => store,
        Err(e) => {
            let status = StatusCode::SERVICE_UNAVAILABLE;
            return message(&state, status, "Error", &e.to_string(), "/");
        }
    };
    let days = state.settings.default_days;
    let who = name.clone();
    let holds = state.holds.clone();
    let built = tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        let range = request
            .resolve(store.today(now), store.oldest_day(now), days, store.tz)
            .map_err(|e| e.to_string())?;
        let mut b = report::ReportBuilder::new(range.start, range.end, None);
        store
            .daily_of(&who, range.start, range.end, |day, c| b.add(day, &who, c))
            .map_err(|e| e.to_string())?;
        store
            .failures_of(&who, range.start, range.end, |day, n| {
                b.add_failures(day, &who, n);
            })
            .map_err(|e| e.to_string())?;
        let info = store.sender_info(&who).map_err(|e| e.to_string())?;
        let alerts = store
            .alerts_of(&who, SENDER_ALERTS)
            .map_err(|e| e.to_string())?;
        let hold = match &holds {
            Some(h) => h.of(&who).map_err(|e| e.to_string())?,
            None => None,
        };
        Ok::<_, String>((b.finish(store.tz.name()), info, alerts, hold))
    })
    .await;
    let (report, info, alerts, hold) = match built {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return message(&state, StatusCode::BAD_REQUEST, "Bad range", &e, "/"),
        Err(e) => {
            return message(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                &e.to_string(),
                "/",
            );
        }
    };
    let fmt = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(utc_minute)
            .unwrap_or_default()
    };
    let ips: Vec<_> = info
        .as_ref()
        .map(|i| {
            i.ips
                .iter()
                .map(|(ip, seen)| json!({"ip": ip.to_string(), "seen": fmt(*seen)}))
                .collect()
        })
        .unwrap_or_default();
    let envelopes: Vec<_> = info
        .as_ref()
        .map(|i| {
            i.envelopes
                .iter()
                .map(|(from, seen)| json!({"from": from, "seen": fmt(*seen)}))
                .collect()
        })
        .unwrap_or_default();
    let failed_days: Vec<_> = report
        .daily
        .iter()
        .filter(|d| d.auth_failures > 0)
        .map(|d| json!({"date": d.date.to_string(), "count": d.auth_failures}))
        .collect();
    let alerts = alerts_json(&alerts);
    let data = json!({
        "title": format!("Sender {name}"),
        "csrf": me.session.csrf,
        "sender": name,
        "start": report.start.to_string(),
        "end": report.end.to_string(),
        "messages": report.summary.messages,
        "tls": view::cells(&report.summary.tls),
        "volume_svg": svg::volume(&report.daily),
        "tls_svg": svg::tls(&report.daily),
        "first_seen": info.as_ref().map(|i| fmt(i.first_seen)).unwrap_or_default(),
        "last_seen": info.as_ref().map(|i| fmt(i.last_seen)).unwrap_or_default(),
        "ips": ips,
        "envelopes": envelopes,
        "sent": report.summary.messages > 0,
        "auth_failures": report.summary.auth_failures,
        "failed_days": failed_days,
        "alerts": alerts,
        "hold": hold.map(|h| crate::contain::view(&name, &h, Utc::now().timestamp())),
        "release": format!("{}/release", crate::report::links::sender_path(&name)),
        "back": format!("/?start={}&end={}", report.start, report.end),
    });
    state.dashboard.render("sender", &data)
}
