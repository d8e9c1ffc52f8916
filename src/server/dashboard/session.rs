//! Dashboard sessions: a login (with the API token) gives a random session
//! id in an HttpOnly, SameSite=Strict cookie, and a CSRF token that every
//! form carries. Sessions live in memory: a restart asks to log in again.

use crate::random::{RandomError, hex_id};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub(crate) const COOKIE: &str = "sai_session";
/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept; the oldest go first.
const MAX_SESSIONS: usize = 1000;

#[derive(Clone)]
pub(crate) struct Session {
    pub csrf: String,
    /// Who logged in: a `[[server.users]]` name, or "API token".
    pub user: String,
    last_used: Instant,
}

#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// Random bytes in a session id and in a CSRF token: 256 bits.
const ID_BYTES: usize = 32;

impl Sessions {
    /// Starts a session; returns its id. Fails rather than hand out a
    /// guessable id when the system has no randomness.
    pub(crate) fn create(&self, user: &str) -> Result<String, RandomError> {
        let id = hex_id(ID_BYTES)?;
        let csrf = hex_id(ID_BYTES)?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.last_used.elapsed() < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                user: user.to_owned(),
                csrf,
                last_used: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The live session of `id`, refreshed.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(id)?;
        if s.last_used.elapsed() >= IDLE {
            map.remove(id);
            return None;
        }
        s.last_used = Instant::now();
        Some(s.clone())
    }

    pub(crate) fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

impl Session {
    /// Constant-time check of a form's CSRF token.
    pub(crate) fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// The session id in a `Cookie` header.
pub(crate) fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a new session; `secure` when the dashboard is reached
/// over HTTPS (`server.public_url`), so the browser never sends it in clear.
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        IDLE.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that ends the session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_cookies() {
        let s = Sessions::default();
        let id = s.create("ann").unwrap();
        assert_eq!(id.len(), 64);
        let session = s.get(&id).unwrap();
        assert!(session.csrf_ok(&session.csrf.clone()));
        assert!(!session.csrf_ok("nope"));
        assert_eq!(
            cookie_value(&format!("a=b; {COOKIE}={id}; c=d")),
            Some(id.as_str())
        );
        s.remove(&id);
        assert!(s.get(&id).is_none());
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
        assert!(!set_cookie("x", false).contains("Secure"));
        assert!(set_cookie("x", true).ends_with("; Secure"));
    }
}

/// Whether `password` matches a PHC Argon2 hash (slow on purpose).
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// An Argon2id hash of `password` with a random salt, as a PHC string.
pub(crate) fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A hash of a random password with the algorithm and parameters of
/// `like` (a user's PHC hash): checking it costs what checking that costs.
pub(crate) fn stand_in_hash(like: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let like = argon2::PasswordHash::new(like).map_err(|e| e.to_string())?;
    let algorithm = argon2::Algorithm::try_from(like.algorithm).map_err(|e| e.to_string())?;
    let params = argon2::Params::try_from(&like).map_err(|e| e.to_string())?;
    let version = like
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or_default();
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::new(algorithm, version, params)
        .hash_password(&bytes, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod password_tests {
    #[test]
    fn hashes_verify_only_their_password() {
        let h = super::hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify_password(&h, "correct horse"));
        assert!(!super::verify_password(&h, "correct horse "));
        assert!(!super::verify_password("garbage", "x"));
    }
}
