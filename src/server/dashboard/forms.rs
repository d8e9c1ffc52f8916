//! The dashboard's forms: logout, and the report request with its status
//! page. Every form carries the session's CSRF token (the login, in
//! `login`, is the one form without).

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

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
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
pub(super) struct RequestForm {
    csrf: String,
    start: Option<String>,
    end: Option<String>,
    domain: Option<String>,
    recipients: String,
}

pub(super) async fn request_report(
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

pub(super) async fn request_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
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

/// The Release form: the button of a contained sender's page, or of the
/// main page's card (`next=/`: back there).
#[derive(Deserialize)]
pub(super) struct ReleaseForm {
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// The Release button of a contained sender's page or of the main page.
pub(super) async fn release(
    State(state): State<AppState>,
    Extension(me): Extension<LoggedIn>,
    Path(sender): Path<String>,
    Form(form): Form<ReleaseForm>,
) -> Response {
    if let Some(refused) = me.refuse_stale(&state, &form.csrf) {
        return refused;
    }
    // Only the main page: never a redirect elsewhere.
    let back = match form.next.as_deref() {
        Some("/") => "/".to_owned(),
        _ => crate::report::links::sender_path(&sender),
    };
    let by = format!("{} (dashboard)", me.session.user);
    match crate::server::holds::release(&state, &sender, &by).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => message(&state, e.status, "Not released", &e.error, &back),
    }
}
