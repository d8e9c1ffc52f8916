//! Waiting on an event, never on the clock: every test that waits for the
//! daemon polls what it can see until the expected state is there, and
//! fails with what it saw last when a generous deadline passes.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often a wait looks again.
const EVERY: Duration = Duration::from_millis(20);

/// Calls `check` until it returns `Ok`, and returns that value. `Err`
/// carries what was seen: after `within`, the test fails naming `what` and
/// the last of them.
pub async fn wait_until<T, E: Debug>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {seen:?}"
            ),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// [`wait_until`] for code outside the async runtime.
pub fn wait_until_blocking<T, E: Debug>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {seen:?}"
            ),
        }
        std::thread::sleep(EVERY);
    }
}

/// `Ok(value)` when `done`, else `Err(value)`: for checks whose state is
/// also what they return.
pub fn ready<T>(done: bool, value: T) -> Result<T, T> {
    if done { Ok(value) } else { Err(value) }
}
