//! The HTTP side: the API of DESIGN.md on axum.

mod alerts;
mod api;
mod auth;
pub mod dashboard;
mod error;
pub mod reports;
mod stream;

pub use reports::RateLimit;

pub use error::ApiError;

use crate::config::Config;
use crate::ingest::Ingester;
use crate::metrics::Metrics;
use crate::store::Store;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub ingester: Ingester,
    pub metrics: Arc<Metrics>,
    /// The bearer token every `/api` call must present.
    pub token: Arc<str>,
    pub templates: Arc<crate::report::templates::Templates>,
    pub outbox: crate::notify::outbox::Outbox,
    /// Report requests per token (one token today).
    pub report_limit: Arc<RateLimit>,
    /// Dashboard logins.
    pub sessions: Arc<dashboard::session::Sessions>,
    pub dashboard: Arc<dashboard::DashTemplates>,
}

impl AppState {
    /// The store, once every event acknowledged so far is counted in it:
    /// a client that posted events and then reads sees them.
    pub async fn fresh_store(&self) -> Result<Store, crate::ingest::IngestError> {
        self.ingester.sync().await?;
        Ok(self.store.clone())
    }
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/events", post(api::post_events))
        .route("/api/v1/report", get(api::get_report))
        .route("/api/v1/reports", post(reports::post_report))
        .route("/api/v1/reports/{id}", get(reports::get_report_status))
        .route("/api/v1/alerts", get(alerts::get_alerts))
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
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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
