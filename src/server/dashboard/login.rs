//! The login form, and what keeps it from being used against the daemon
//! or its admins.
//!
//! The rule (README, "Dashboard"): each client address may try
//! [`PER_CLIENT_BURST`] logins at once and [`PER_CLIENT_PER_MINUTE`] a
//! minute after (429 beyond); nothing is shared between addresses, so
//! guessing from many addresses never locks out the right token or
//! password from another. A wrong answer takes [`FAILED_PAUSE`], and once
//! an account has had [`PER_ACCOUNT_FAILURES`] wrong passwords in a minute,
//! [`SLOW_FAILURE`] (a right one is answered at once).
//!
//! A password check is an Argon2 computation (19 MiB and tens of
//! milliseconds with the default parameters), asked for by clients that
//! have not authenticated. So they run on [`CHECKS_AT_ONCE`] threads of
//! their own (on the blocking pool each of hundreds of threads would keep
//! its 19 MiB in its own malloc arena), at most [`CHECKS_WAITING`] wait
//! for them (429 beyond: the checks are what is scarce, not a budget a
//! guesser could use up), and a name that is no user is checked against a
//! stand-in hash of the same cost, so that the answer's timing does not
//! tell which names exist. The API token is compared without that cost.

use super::pages::message;
use super::session;
use crate::metrics::Refusal;
use crate::server::AppState;
use crate::server::DashboardUser;
use crate::server::limit::{PerClient, PerKey};
use axum::Extension;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::{Semaphore, oneshot};

/// Password checks running at once (each holds its Argon2 memory).
pub(crate) const CHECKS_AT_ONCE: usize = 2;
/// Password checks waiting for a thread, at most.
pub(crate) const CHECKS_WAITING: usize = 32;
/// Attempts one client address may make at once, and per minute after.
pub(crate) const PER_CLIENT_BURST: u32 = 10;
pub(crate) const PER_CLIENT_PER_MINUTE: f64 = 10.0;
/// Wrong passwords an account takes a minute before its failures slow.
pub(crate) const PER_ACCOUNT_FAILURES: u32 = 20;
/// Pause before a refusal: guessing is slow even within the budget...
const FAILED_PAUSE: Duration = Duration::from_millis(500);
/// ...and slower for an account under attack.
const SLOW_FAILURE: Duration = Duration::from_secs(5);
/// How long a client is asked to wait when every check is taken.
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// Rate limits and the stand-in hash of the login form.
pub(crate) struct LoginGuard {
    per_client: PerClient,
    /// Wrong passwords per account name.
    failures: PerKey<String>,
    /// Places for checks waiting or running.
    places: Arc<Semaphore>,
    checks: Checker,
    /// Checked when the name is no user; none when there are no users.
    stand_in: Option<String>,
}

impl LoginGuard {
    /// Computes the stand-in hash (one Argon2 run: call it off the async
    /// threads) with the parameters of the first user's hash.
    pub(crate) fn new(users: &[DashboardUser]) -> Result<LoginGuard, String> {
        let stand_in = match users.first() {
            Some(u) => Some(session::stand_in_hash(&u.password_hash)?),
            None => None,
        };
        Ok(LoginGuard {
            per_client: PerClient::new(PER_CLIENT_BURST, PER_CLIENT_PER_MINUTE / 60.0),
            failures: PerKey::new(PER_ACCOUNT_FAILURES, f64::from(PER_ACCOUNT_FAILURES) / 60.0),
            places: Arc::new(Semaphore::new(CHECKS_AT_ONCE + CHECKS_WAITING)),
            checks: Checker::start()?,
            stand_in,
        })
    }

    /// The hash a login as `name` is checked against: the user's, or the
    /// stand-in of the same cost.
    fn hash_for(&self, users: &[DashboardUser], name: &str) -> Option<(String, bool)> {
        match users.iter().find(|u| u.name == name) {
            Some(u) => Some((u.password_hash.clone(), true)),
            None => self.stand_in.clone().map(|h| (h, false)),
        }
    }
}

/// A password to check against a hash, and where the answer goes.
type Check = (String, String, oneshot::Sender<bool>);

/// The threads that check passwords. They end when the guard is dropped
/// (with the HTTP side, at shutdown): their queue then closes.
struct Checker {
    queue: mpsc::Sender<Check>,
}

impl Checker {
    fn start() -> Result<Checker, String> {
        let (queue, jobs) = mpsc::channel::<Check>();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..CHECKS_AT_ONCE {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    loop {
                        let job = jobs
                            .lock()
                            .map_err(|_| ())
                            .and_then(|j| j.recv().map_err(|_| ()));
                        let Ok((hash, password, answer)) = job else {
                            return;
                        };
                        let matched = session::verify_password(&hash, &password);
                        // The check's memory goes back to the system at
                        // once: glibc would keep it in this thread's arena.
                        crate::process::release_freed();
                        let _ = answer.send(matched);
                    }
                })
                .map_err(|e| format!("cannot start the password checker: {e}"))?;
        }
        Ok(Checker { queue })
    }

    /// Whether `password` matches `hash`; false if the checker is gone.
    async fn verify(&self, hash: String, password: String) -> bool {
        let (answer, answered) = oneshot::channel();
        if self.queue.send((hash, password, answer)).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

pub(crate) async fn login_form(State(state): State<AppState>) -> Response {
    state
        .dashboard
        .render("login", &json!({"title": "Log in", "error": ""}))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    /// Empty: `token` is the API token.
    #[serde(default)]
    user: String,
    token: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    let guard = &state.login;
    if let Err(wait) = guard.per_client.take(client) {
        tracing::warn!(client = %client, "too many dashboard logins from one address; refused");
        return refused(&state, "Too many login attempts", wait);
    }
    let user = form.user.trim().to_owned();
    let ok = if user.is_empty() {
        form.token
            .trim()
            .as_bytes()
            .ct_eq(state.token.as_bytes())
            .into()
    } else {
        let Ok(_place) = guard.places.clone().try_acquire_owned() else {
            tracing::warn!(client = %client, "every password check is taken; refused");
            return refused(&state, "Too many logins at once", BUSY_RETRY);
        };
        match guard.hash_for(&state.settings.server.users, &user) {
            None => false,
            Some((hash, known)) => {
                let matched = guard.checks.verify(hash, form.token).await;
                known && matched
            }
        }
    };
    if !ok {
        tracing::info!(client = %client, "dashboard login refused");
        let pause = match user.is_empty() || guard.failures.take(user.clone()).is_ok() {
            true => FAILED_PAUSE,
            false => SLOW_FAILURE,
        };
        tokio::time::sleep(pause).await;
        let mut r = state.dashboard.render(
            "login",
            &json!({"title": "Log in", "error": "Wrong user name, password or token."}),
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    let who = if user.is_empty() {
        "API token"
    } else {
        user.as_str()
    };
    let id = match state.sessions.create(who) {
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

/// The login page again with 429, saying why and when to try again.
fn refused(state: &AppState, why: &str, wait: Duration) -> Response {
    state.metrics.refused(Refusal::LoginRate);
    let seconds = wait.as_secs().max(1);
    let mut r = state.dashboard.render(
        "login",
        &json!({"title": "Log in", "error": format!("{why}; try again in {seconds} seconds.")}),
    );
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_is_checked_against_a_hash_of_the_same_cost() {
        let real = session::hash_password("right").unwrap();
        let users = vec![DashboardUser {
            name: "ann".into(),
            password_hash: real.clone(),
        }];
        let guard = LoginGuard::new(&users).unwrap();
        let (hash, known) = guard.hash_for(&users, "ann").unwrap();
        assert!(known && hash == real);
        let (stand_in, known) = guard.hash_for(&users, "bob").unwrap();
        assert!(!known);
        let params = |h: &str| {
            let parsed = argon2::PasswordHash::new(h).unwrap();
            (
                parsed.algorithm.to_string(),
                argon2::Params::try_from(&parsed).unwrap(),
            )
        };
        assert_eq!(params(&stand_in), params(&real));
        assert!(LoginGuard::new(&[]).unwrap().hash_for(&[], "ann").is_none());
    }
}
