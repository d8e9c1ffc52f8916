//! `POST /api/v1/reports` (queue a detailed report mail) and
//! `GET /api/v1/reports/{id}` (its delivery status).

use super::{ApiError, AppState};
use crate::notify::message::{self, DEFAULT_TOP, ReportMail};
use crate::report::ReportRequest;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportOrder {
    start: Option<String>,
    end: Option<String>,
    domain: Option<String>,
    recipients: Vec<String>,
}

/// A token bucket: `per_hour` requests an hour, up to `per_hour` at once.
pub struct RateLimit {
    per_hour: u32,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(per_hour: u32) -> RateLimit {
        RateLimit {
            per_hour,
            state: Mutex::new((f64::from(per_hour), Instant::now())),
        }
    }

    /// Takes one request, or says how long until one is allowed.
    pub fn take(&self) -> Result<(), Duration> {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = &mut *guard;
        let rate = f64::from(self.per_hour) / 3600.0;
        *tokens = (*tokens + at.elapsed().as_secs_f64() * rate).min(f64::from(self.per_hour));
        *at = Instant::now();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - *tokens) / rate).ceil()))
        }
    }
}

/// Why an order was not queued.
#[derive(Debug)]
pub enum OrderError {
    /// A recipient outside the allow-list, or a bad range (422).
    Refused(String),
    /// Past the hourly limit; retry after this long (429).
    Limited(Duration),
    Internal(String),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::Refused(m) | OrderError::Internal(m) => f.write_str(m),
            OrderError::Limited(wait) => {
                write!(f, "too many report requests; retry in {} s", wait.as_secs())
            }
        }
    }
}

impl ReportOrder {
    pub fn new(
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
pub async fn queue_report(state: &AppState, order: ReportOrder) -> Result<String, OrderError> {
    let recipients = state
        .config
        .mail
        .check_recipients(&order.recipients)
        .map_err(OrderError::Refused)?;
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
            state.config.default_days(),
            store.tz,
        )
        .map_err(|e| OrderError::Refused(e.to_string()))?;
    state.report_limit.take().map_err(OrderError::Limited)?;
    let (store, config, templates, outbox) = (
        state
            .fresh_store()
            .await
            .map_err(|e| OrderError::Internal(e.to_string()))?,
        state.config.clone(),
        state.templates.clone(),
        state.outbox.clone(),
    );
    // A request id: 128 random bits.
    let id = crate::random::hex_id(16).map_err(|e| OrderError::Internal(e.to_string()))?;
    let queued_id = id.clone();
    tokio::task::spawn_blocking(move || -> Result<(), OrderError> {
        let internal = |e: String| OrderError::Internal(e);
        let report = store
            .report_range(&range)
            .map_err(|e| internal(e.to_string()))?;
        let top = config.report.top_senders.unwrap_or(DEFAULT_TOP);
        let mail =
            ReportMail::new(&report, &templates, top).map_err(|e| internal(e.to_string()))?;
        let from = config.mail.from_mailbox().map_err(internal)?;
        let msg = message::build(from, &recipients, mail).map_err(|e| internal(e.to_string()))?;
        outbox.enqueue(&queued_id, &msg).map_err(internal)
    })
    .await
    .map_err(|e| OrderError::Internal(e.to_string()))??;
    Ok(id)
}

pub async fn post_report(
    State(state): State<AppState>,
    body: Result<Json<ReportOrder>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(order) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
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
        Err(e @ OrderError::Refused(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

pub async fn get_report_status(
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
