//! Bearer-token check for every `/api` route.

use super::{ApiError, AppState};
use crate::metrics::Rejection;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub(super) async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let message = match presented {
        None => "missing bearer token (send Authorization: Bearer <token>)",
        // Constant time: the comparison must not tell an attacker how many
        // leading bytes of a guess were right.
        Some(t) if bool::from(t.as_bytes().ct_eq(state.token.as_bytes())) => {
            let mut response = next.run(req).await;
            response.extensions_mut().insert(super::accept::Trusted);
            return response;
        }
        Some(_) => "wrong bearer token",
    };
    state.metrics.request_rejected(Rejection::Unauthorized);
    ApiError::new(StatusCode::UNAUTHORIZED, message).into_response()
}
