//! The dashboard's forms: login, logout, and the report request with its
//! status page. Every form but the login carries the session's CSRF token.

use super::pages::{LoggedIn, message};
use super::session;
use crate::server::AppState;
use crate::server::reports::{ReportOrder, queue_report};
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

pub async fn login_form(State(state): State<AppState>) -> Response {
    state
        .dashboard
        .render("login", &json!({"title": "Log in", "error": ""}))
}

#[derive(Deserialize)]
pub struct LoginForm {
    /// Empty: `token` is the API token.
    #[serde(default)]
    user: String,
    token: String,
}

pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let user = form.user.trim().to_owned();
    let ok = if user.is_empty() {
        form.token
            .trim()
            .as_bytes()
            .ct_eq(state.token.as_bytes())
            .into()
    } else {
        let hash = state
            .settings
            .server
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.password_hash.clone());
        let password = form.token.clone();
        tokio::task::spawn_blocking(move || {
            hash.is_some_and(|h| session::verify_password(&h, &password))
        })
        .await
        .unwrap_or(false)
    };
    if !ok {
        // A pause makes guessing slow; the message does not say which part
        // was wrong.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut r = state.dashboard.render(
            "login",
            &json!({"title": "Log in", "error": "Wrong user name, password or token."}),
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let id = match state.sessions.create() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a dashboard session");
            return message(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot log in",
                &e.to_string(),
                "/login",
            );
        }
    };
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(
                &id,
                state.settings.server.public_url().starts_with("https://"),
            ),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(me): Extension<LoggedIn>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = me.refuse_stale(&state, &form.csrf) {
        return refused;
    }
    state.sessions.remove(&me.id);
    (
        [(header::SET_COOKIE, session::clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct RequestForm {
    csrf: String,
    start: Option<String>,
    end: Option<String>,
    domain: Option<String>,
    recipients: String,
}

pub async fn request_report(
    State(state): State<AppState>,
    Extension(me): Extension<LoggedIn>,
    Form(form): Form<RequestForm>,
) -> Response {
    if let Some(refused) = me.refuse_stale(&state, &form.csrf) {
        return refused;
    }
    let recipients: Vec<String> = form
        .recipients
        .split([',', ';', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let order = ReportOrder::new(
        nonempty(form.start),
        nonempty(form.end),
        nonempty(form.domain),
        recipients,
    );
    match queue_report(&state, order).await {
        Ok(id) => Redirect::to(&format!("/requests/{id}")).into_response(),
        Err(e) => message(
            &state,
            e.status(),
            "Report not requested",
            &e.to_string(),
            "/",
        ),
    }
}

pub async fn request_status(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(s) = state.outbox.status(&id) else {
        return message(
            &state,
            StatusCode::NOT_FOUND,
            "Unknown request",
            "No report request has this id.",
            "/",
        );
    };
    let status = format!("{:?}", s.status).to_lowercase();
    let text = match &s.last_error {
        Some(e) => format!("Attempts: {}. Last error: {e}", s.attempts),
        None => format!("Attempts: {}.", s.attempts),
    };
    state.dashboard.render(
        "message",
        &json!({
            "title": format!("Report request {status}"),
            "status": status,
            "text": text,
            "back": "/",
            "refresh": status == "queued",
            "csrf": "",
        }),
    )
}
