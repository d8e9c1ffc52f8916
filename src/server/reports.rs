//! `POST /api/v1/reports` (queue a detailed report mail) and
//! `GET /api/v1/reports/{id}` (its delivery status).

use super::{ApiError, AppState};
use crate::ingest::IngestError;
use crate::random::RandomError;
use crate::report::ReportRequest;
use crate::reports::mail::MailerError;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportOrder {
    start: Option<String>,
    end: Option<String>,
    domain: Option<String>,
    recipients: Vec<String>,
}

/// Why an order was not queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderError {
    /// A recipient outside the allow-list, or a bad range (422).
    #[error(transparent)]
    Refused(MailerError),
    /// Past the hourly limit; retry after this long (429).
    #[error("too many report requests; retry in {} s", .0.as_secs())]
    Limited(Duration),
    /// The counts could not be brought up to date (503).
    #[error(transparent)]
    Unavailable(#[from] IngestError),
    #[error(transparent)]
    Internal(#[from] MailerError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("the report task stopped: {0}")]
    Task(String),
}

impl OrderError {
    /// The HTTP status that tells a client what to do about it.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            OrderError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            OrderError::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            OrderError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OrderError::Internal(_) | OrderError::Random(_) | OrderError::Task(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl ReportOrder {
    pub(crate) fn new(
        start: Option<String>,
        end: Option<String>,
        domain: Option<String>,
        recipients: Vec<String>,
    ) -> ReportOrder {
        ReportOrder {
            start,
            end,
            domain,
            recipients,
        }
    }
}

/// Checks an order (recipients, range, rate limit) and queues its mail;
/// returns the request id. Shared by the webhook and the dashboard form.
pub(crate) async fn queue_report(
    state: &AppState,
    order: ReportOrder,
) -> Result<String, OrderError> {
    let refused = |e: MailerError| OrderError::Refused(e);
    let recipients = state
        .mailer
        .recipients(&order.recipients)
        .map_err(refused)?;
    let request = ReportRequest {
        start: order.start,
        end: order.end,
        domain: order.domain,
    };
    // Refused orders send nothing, so they are checked before the limit.
    let (now, store) = (Utc::now(), &state.store);
    let range = request
        .resolve(
            store.today(now),
            store.oldest_day(now),
            state.settings.default_days,
            store.tz,
        )
        .map_err(|e| refused(e.into()))?;
    state.report_limit.take().map_err(OrderError::Limited)?;
    state.ingester.sync().await?;
    // A request id: 128 random bits.
    let id = crate::random::hex_id(16)?;
    let (mailer, queued_id) = (state.mailer.clone(), id.clone());
    tokio::task::spawn_blocking(move || mailer.queue(&queued_id, &range, &recipients, None, None))
        .await
        .map_err(|e| OrderError::Task(e.to_string()))??;
    Ok(id)
}

/// `POST /api/v1/reports`. The body is read as JSON whatever its
/// Content-Type: webhook senders often say `text/plain`.
pub(crate) async fn post_report(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let order: ReportOrder = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not a report order (a JSON object): {e}"),
        )
    })?;
    match queue_report(&state, order).await {
        Ok(id) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"id": id, "status": "queued"})),
        )
            .into_response()),
        Err(OrderError::Limited(wait)) => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                OrderError::Limited(wait).to_string(),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(resp)
        }
        Err(e) => Err(ApiError::new(e.status(), e.to_string())),
    }
}

pub(crate) async fn get_report_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = state
        .outbox
        .status(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no report request {id:?}")))?;
    Ok(Json(serde_json::json!({
        "id": s.id, "status": s.status, "attempts": s.attempts,
        "last_error": s.last_error, "created": s.created, "finished": s.finished,
    }))
    .into_response())
}
