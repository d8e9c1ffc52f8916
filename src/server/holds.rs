//! `GET /api/v1/holds`: the accounts the policy service contains (and
//! those it contained); `DELETE /api/v1/holds/{sender}`: releases one.

use super::{ApiError, AppState};
use crate::contain::{ContainError, Hold, Holds, view};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The containment records, newest first.
pub(crate) async fn get_holds(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let holds = enabled(&state)?;
    let all = tokio::task::spawn_blocking(move || holds.list())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let now = chrono::Utc::now().timestamp();
    let holds: Vec<Value> = all.iter().map(|(s, h)| view(s, h, now)).collect();
    Ok(Json(json!({ "holds": holds })))
}

/// `?by=`: who releases, as the caller says, for the record (the token
/// says only that the caller may); "api" when not given.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseQuery {
    by: Option<String>,
}

/// Releases `sender`; the released record, or 404.
pub(crate) async fn delete_hold(
    State(state): State<AppState>,
    Path(sender): Path<String>,
    query: Result<Query<ReleaseQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let by = match q.by {
        None => "api".to_owned(),
        Some(by) => {
            crate::event::check_text("by", &by, 100)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
            by
        }
    };
    let (sender, released) = release(&state, &sender, &by).await?;
    Ok(Json(view(
        &sender,
        &released,
        chrono::Utc::now().timestamp(),
    )))
}

/// Releases `sender` on behalf of `by` (the API, or a dashboard user):
/// the account as named in the records, and its record.
pub(crate) async fn release(
    state: &AppState,
    sender: &str,
    by: &str,
) -> Result<(String, Hold), ApiError> {
    let holds = enabled(state)?;
    let (who, by) = (sender.to_owned(), by.to_owned());
    tokio::task::spawn_blocking(move || holds.release(&who, &by))
        .await
        .map_err(internal)?
        .map_err(|e| match e {
            ContainError::Name(e) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            e if e.disk_full() => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; nothing changed: the account stays contained until space is back"),
            ),
            e => internal(e),
        })?
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
