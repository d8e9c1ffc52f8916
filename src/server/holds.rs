//! `GET /api/v1/holds`: the accounts the policy service contains (and
//! those it contained); `DELETE /api/v1/holds/{sender}`: releases one.

use super::{ApiError, AppState};
use crate::contain::{Hold, Holds};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The containment records, newest first.
pub async fn get_holds(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let holds = enabled(&state)?;
    let all = tokio::task::spawn_blocking(move || holds.list())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let now = chrono::Utc::now().timestamp();
    let holds: Vec<Value> = all.iter().map(|(s, h)| view(s, h, now)).collect();
    Ok(Json(json!({ "holds": holds })))
}

/// Releases `sender`; the released record, or 404.
pub async fn delete_hold(
    State(state): State<AppState>,
    Path(sender): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let released = release(&state, &sender, "api").await?;
    Ok(Json(view(
        &sender,
        &released,
        chrono::Utc::now().timestamp(),
    )))
}

/// Releases `sender` on behalf of `by` (the API, or a dashboard user).
pub async fn release(state: &AppState, sender: &str, by: &str) -> Result<Hold, ApiError> {
    let holds = enabled(state)?;
    let sender = crate::event::normalize_sender(sender)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let by = by.to_owned();
    let who = sender.clone();
    tokio::task::spawn_blocking(move || holds.release(&who, &by))
        .await
        .map_err(internal)?
        .map_err(internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("{sender} is not contained")))
}

fn enabled(state: &AppState) -> Result<Holds, ApiError> {
    state.holds.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "the policy service is off: no account is ever contained (set [policy] listen)",
        )
    })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A record as the API shows it.
fn view(sender: &str, h: &Hold, now: i64) -> Value {
    json!({
        "sender": sender,
        "in_force": h.in_force(now),
        "since": time(h.since),
        "until": time(h.until),
        "alert": { "kind": h.kind, "seq": h.alert_seq, "at": h.alert_at, "detail": h.why },
        "held": h.held,
        "deferred": h.deferred,
        "rejected": h.rejected,
        "monitored": h.monitored,
        "released": h.released.as_ref().map(|r| json!({ "by": r.by, "at": time(r.at) })),
    })
}
