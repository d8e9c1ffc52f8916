//! `GET /api/v1/alerts?since=&limit=`: the alert log, newest first.

use super::{ApiError, AppState};
use crate::event::time::parse_since;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;

/// Alerts returned when no limit is given, and the most ever returned.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// RFC 3339 instant or a date (its start in the configured time zone);
    /// 7 days ago by default.
    since: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn get_alerts(
    State(state): State<AppState>,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let since = match q.since.as_deref() {
        None => Utc::now() - chrono::TimeDelta::days(7),
        Some(s) => parse_since(s, state.settings.tz).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("since: {s:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"),
            )
        })?,
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let store = state.fresh_store().await?;
    let alerts = tokio::task::spawn_blocking(move || store.alerts_since(since, limit))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // Each with where its incident stands now (newer alerts are all in
    // the list: it is read newest first).
    let incidents = crate::detect::incidents(alerts.iter().map(|r| &r.alert));
    let alerts: Vec<serde_json::Value> = alerts
        .iter()
        .zip(incidents)
        .map(|(r, incident)| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["incident"] = serde_json::json!(incident);
            v
        })
        .collect();
    Ok(Json(serde_json::json!({
        "since": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "alerts": alerts,
    })))
}
