//! Handlers of the JSON API.

use super::{ApiError, AppState};
use crate::event;
use crate::ingest::IngestError;
use crate::metrics::{self, Rejection, Scrape};
use crate::report::{self, ReportRequest};
use crate::reports::ReportError;
use crate::store::StoreError;
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use std::sync::atomic::Ordering::Relaxed;

/// `POST /api/v1/events`: NDJSON or a JSON array; all or nothing.
pub(super) async fn post_events(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = state.settings.server.max_body_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|e| {
        if super::deadline::expired(&e) {
            state.metrics.request_rejected(Rejection::BadRequest);
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time (server.body_timeout_seconds); nothing was stored",
            );
        }
        state.metrics.request_rejected(Rejection::TooLarge);
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes (server.max_body_bytes); send smaller batches"),
        )
    })?;
    let events = event::parse_body(&bytes, Utc::now()).map_err(|e| {
        state.metrics.request_rejected(Rejection::BadRequest);
        ApiError {
            status: StatusCode::BAD_REQUEST,
            line: e.line(),
            field: e.field(),
            error: format!("{e}; nothing from this request was stored"),
        }
    })?;
    let outcome = state
        .ingester
        .ingest(events, Vec::new())
        .await
        .map_err(|e| {
            state.metrics.request_rejected(Rejection::Unavailable);
            let status = match &e {
                IngestError::Closed | IngestError::Restart(_) => StatusCode::SERVICE_UNAVAILABLE,
                IngestError::Store(s) => match **s {
                    // Nothing of the request was acknowledged; it may be
                    // sent again once the disk (or the store) recovers.
                    StoreError::DiskFull { .. }
                    | StoreError::Behind(_)
                    | StoreError::Journal { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                },
            };
            ApiError::new(status, format!("{e}; nothing from this request was stored"))
        })?;
    Ok((StatusCode::ACCEPTED, Json(outcome)).into_response())
}

/// `GET /api/v1/report?start=&end=&domain=`.
pub(super) async fn get_report(
    State(state): State<AppState>,
    query: Result<Query<ReportRequest>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(request) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let default_days = state.settings.default_days;
    let store = state.fresh_store().await?;
    let report = tokio::task::spawn_blocking(move || {
        crate::reports::build(&store, &request, default_days, Utc::now()).map_err(report_error)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(super::stream::json(report))
}

/// The status and message of a report that cannot be built.
fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Range(r) => {
            let status = match r {
                report::RangeError::BadDate { .. } | report::RangeError::BadDomain(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(status, r.to_string())
        }
        ReportError::Store(s) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, s.to_string()),
    }
}

/// `GET /healthz`: 200 while the daemon takes events, 503 with the
/// reason while it refuses them (the disk nearly full).
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    match state.ingester.degraded() {
        None => Json(serde_json::json!({"status": "ok"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "degraded", "reason": reason})),
        )
            .into_response(),
    }
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let (store, progress) = (state.store.clone(), state.alerts.clone());
    let read = tokio::task::spawn_blocking(move || {
        let backlog = progress
            .backlog()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read the alert backlog"))
            .ok();
        (store.size_on_disk(), backlog)
    });
    let (store_bytes, backlog) = read.await.unwrap_or((0, None));
    let stats = &state.outbox.stats;
    let scrape = Scrape {
        store_bytes,
        outbox_queued: stats.queued.load(Relaxed),
        contained: state.holds.as_ref().map_or(0, |h| {
            h.contained(chrono::Utc::now().timestamp()).len() as u64
        }),
        mails: [&stats.sent, &stats.failed, &stats.temporary_failures].map(|n| n.load(Relaxed)),
        backlog,
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(&scrape),
    )
        .into_response()
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}
