//! The HTTP side on axum: the JSON API (events in, reports and alerts
//! out, report mails ordered), the dashboard, `/healthz` and `/metrics`.
//!
//! - `api`, `reports`, `alerts`: the API's handlers; `auth`: its bearer
//!   token; `error`: its JSON errors; `stream`: large JSON bodies.
//! - `dashboard`: the server-rendered pages.
//! - `config`: `[server]`; `token`: the API token, generated if needed.
//! - `accept`: connections, bounded in number and time; `slots`: which
//!   connection makes room when all are taken (also the policy
//!   service's); `limit`: rate limits for report orders and logins.

pub(crate) mod accept;
mod alerts;
mod api;
mod auth;
mod config;
pub(crate) mod dashboard;
mod deadline;
mod error;
pub(crate) mod holds;
pub(crate) mod limit;
pub(crate) mod reports;
pub(crate) mod slots;
mod stream;
pub(crate) mod token;

pub(crate) use config::{DashboardUser, ServerConfig};
pub(crate) use error::ApiError;
pub(crate) use limit::RateLimit;

use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::reports::mail::Mailer;
use crate::store::Store;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono_tz::Tz;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// What the HTTP side takes from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    /// `[server]`.
    pub server: ServerConfig,
    /// Days a report covers when the request names no start.
    pub(crate) default_days: u32,
    /// Zone in which a date in `since=` (alert list) starts.
    pub tz: Tz,
}

/// Everything a request handler needs.
#[derive(Clone)]
pub(crate) struct AppState {
    pub settings: Arc<ServerSettings>,
    pub store: Store,
    pub(crate) ingester: Ingester,
    pub metrics: Arc<Metrics>,
    /// The bearer token every `/api` call must present.
    pub token: Arc<str>,
    /// Composes and queues ordered report mails.
    pub mailer: Mailer,
    /// Where ordered mails' statuses are looked up.
    pub outbox: Outbox,
    /// How far the alert notifier is behind the alert log.
    pub alerts: crate::notify::Progress,
    /// Report requests per token (one token today).
    pub(crate) report_limit: Arc<RateLimit>,
    /// Dashboard logins.
    pub(crate) sessions: Arc<dashboard::session::Sessions>,
    /// Rate limits of the login form.
    pub login: Arc<dashboard::login::LoginGuard>,
    pub dashboard: Arc<dashboard::DashTemplates>,
    /// The accounts the policy service contains (None: no policy service).
    pub holds: Option<crate::contain::Holds>,
}

impl AppState {
    /// The store, once every event acknowledged so far is counted in it:
    /// a client that posted events and then reads sees them.
    pub(crate) async fn fresh_store(&self) -> Result<Store, crate::ingest::IngestError> {
        self.ingester.sync().await?;
        Ok(self.store.clone())
    }
}

pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/events", post(api::post_events))
        .route("/api/v1/report", get(api::get_report))
        .route("/api/v1/reports", post(reports::post_report))
        .route("/api/v1/reports/{id}", get(reports::get_report_status))
        .route("/api/v1/alerts", get(alerts::get_alerts))
        .route("/api/v1/holds", get(holds::get_holds))
        .route("/api/v1/holds/{sender}", delete(holds::delete_hold))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(api)
        .merge(dashboard::router(state.clone()))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(catch_panics())
        .with_state(state)
}

/// Turns a panic in a handler into a 500 whose body says nothing of the
/// program's insides (the panic message may quote request data), with the
/// message in the log. Without it the connection closes with no answer.
fn catch_panics()
-> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    fn answer(panic: Box<dyn std::any::Any + Send>) -> Response {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        tracing::error!(panic = message, "a request handler panicked");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the daemon's log says more",
        )
        .into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer as fn(_) -> Response)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub(crate) async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let server = &state.settings.server;
    let limits = accept::Limits {
        max_connections: server.max_connections,
        max_connections_per_address: server.max_connections_per_address,
        header_timeout: Duration::from_secs(server.header_timeout_seconds),
    };
    let body_timeout = Duration::from_secs(server.body_timeout_seconds);
    let metrics = state.metrics.clone();
    let app = router(state).layer(middleware::from_fn(move |req, next| {
        deadline::limit(body_timeout, req, next)
    }));
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
    });
    let (refused, evicted, open) = (metrics.clone(), metrics.clone(), metrics);
    let watch = accept::Watch {
        refused: Box::new(move || refused.refused(crate::metrics::Refusal::ConnectionLimit)),
        evicted: Box::new(move || evicted.refused(crate::metrics::Refusal::MadeRoom)),
        open: Arc::new(move |idle, answering| open.http_connections(idle, answering)),
    };
    accept::serve(listener, app, limits, stop, watch).await;
}

/// Records the latency of every request under its route.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.request_served(&route, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_without_its_message() {
        async fn boom() -> &'static str {
            panic!("secret detail from a request");
        }
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(super::catch_panics());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let r = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(r.status(), 500);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("internal error") && !body.contains("secret"),
            "{body}"
        );
        // The server lives on.
        let r = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
        assert_eq!(r.status(), 500);
        server.abort();
    }
}
