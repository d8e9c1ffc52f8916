//! The dashboard: server-rendered pages (handlebars) with inline SVG
//! charts and no script at all, served by the daemon with every asset
//! compiled in.
//!
//! - `session`: login with the API token, session cookie, CSRF token.
//! - `login`: the login form, rate-limited, with equal work for any name.
//! - `pages`: the pages; `forms`: logout, report requests;
//!   `view`: what the templates see.
//! - `svg`: the charts.
//!
//! Every response carries a Content-Security-Policy that allows no script
//! and no inline style, so even a sender name that slipped through
//! escaping could not run anything.

mod forms;
pub(crate) mod login;
mod pages;
pub(crate) mod session;
mod svg;
mod view;

use super::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handlebars::Handlebars;

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
const CSS: &str = include_str!("../../../templates/dashboard/app.css");

/// The dashboard templates, compiled in.
pub(crate) struct DashTemplates(Handlebars<'static>);

impl DashTemplates {
    pub(crate) fn new() -> Result<DashTemplates, handlebars::TemplateError> {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        for (name, text) in [
            (
                "layout",
                include_str!("../../../templates/dashboard/layout.hbs"),
            ),
            (
                "login",
                include_str!("../../../templates/dashboard/login.hbs"),
            ),
            (
                "index",
                include_str!("../../../templates/dashboard/index.hbs"),
            ),
            (
                "sender",
                include_str!("../../../templates/dashboard/sender.hbs"),
            ),
            (
                "message",
                include_str!("../../../templates/dashboard/message.hbs"),
            ),
        ] {
            h.register_template_string(name, text)?;
        }
        Ok(DashTemplates(h))
    }

    fn render(&self, name: &str, data: &impl serde::Serialize) -> Response {
        match self.0.render(name, data) {
            Ok(html) => axum::response::Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "dashboard template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response()
            }
        }
    }
}

pub(crate) fn router(state: AppState) -> Router<AppState> {
    let private = Router::new()
        .route("/", get(pages::index))
        .route("/senders/{sender}", get(pages::sender))
        .route("/senders/{sender}/release", post(forms::release))
        .route("/senders.csv", get(pages::csv))
        .route("/request", post(forms::request_report))
        .route("/requests/{id}", get(forms::request_status))
        .route("/logout", post(forms::logout))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .merge(private)
        .route("/login", get(login::login_form).post(login::login))
        .route("/assets/app.css", get(css))
        // The forms are a few fields: a longer body is refused at once
        // (413), before a byte of it is read when it says its length.
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(security_headers))
}

/// The largest form body, in bytes.
const FORM_LIMIT: usize = 16 * 1024;

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Pages need a session: without one, GETs go to the login page and
/// anything else is refused.
async fn require_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let session = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::cookie_value)
        .and_then(|id| Some((id.to_owned(), state.sessions.get(id)?)));
    match session {
        Some((id, s)) => {
            req.extensions_mut()
                .insert(pages::LoggedIn { id, session: s });
            let mut response = next.run(req).await;
            response
                .extensions_mut()
                .insert(crate::server::accept::Trusted);
            response
        }
        None if req.method() == Method::GET => Redirect::to("/login").into_response(),
        None => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
