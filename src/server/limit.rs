//! Rate limits: token buckets, one shared or one per client address.
//!
//! Report orders are limited per token; logins per client and overall,
//! because each password check costs an Argon2 computation (about 19 MiB
//! and tens of milliseconds) that an unauthenticated client could
//! otherwise ask for without end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: up to `capacity` at once, refilled at `per_second`.
#[derive(Debug)]
pub struct RateLimit {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64) -> Bucket {
        Bucket {
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is there.
    fn take(&mut self, capacity: f64, per_second: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let refilled = (now - self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + refilled).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - self.tokens) / per_second).ceil(),
            ))
        }
    }

    /// Whether it would be full by now (and so can be forgotten).
    fn is_full(&self, capacity: f64, per_second: f64) -> bool {
        self.tokens + self.at.elapsed().as_secs_f64() * per_second >= capacity
    }
}

impl RateLimit {
    /// `capacity` at once, refilled at `per_second` (both at least tiny,
    /// so that no configuration divides by zero).
    pub fn new(capacity: u32, per_second: f64) -> RateLimit {
        let capacity = f64::from(capacity.max(1));
        RateLimit {
            capacity,
            per_second: per_second.max(1e-6),
            state: Mutex::new(Bucket::full(capacity)),
        }
    }

    /// `per_hour` an hour, up to `per_hour` at once.
    pub fn per_hour(per_hour: u32) -> RateLimit {
        RateLimit::new(per_hour, f64::from(per_hour.max(1)) / 3600.0)
    }

    /// Takes one request, or says how long until one is allowed.
    pub fn take(&self) -> Result<(), Duration> {
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        bucket.take(self.capacity, self.per_second)
    }
}

/// Most client addresses remembered; beyond it, those whose buckets have
/// refilled are forgotten, then (a flood of addresses) all of them.
const MAX_CLIENTS: usize = 4096;

/// One token bucket per client address.
#[derive(Debug)]
pub struct PerClient {
    capacity: f64,
    per_second: f64,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl PerClient {
    pub fn new(capacity: u32, per_second: f64) -> PerClient {
        PerClient {
            capacity: f64::from(capacity.max(1)),
            per_second: per_second.max(1e-6),
            clients: Mutex::default(),
        }
    }

    /// Takes one request of `client`, or says how long until one is allowed.
    pub fn take(&self, client: IpAddr) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            let (capacity, rate) = (self.capacity, self.per_second);
            clients.retain(|_, b| !b.is_full(capacity, rate));
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        clients
            .entry(client)
            .or_insert_with(|| Bucket::full(self.capacity))
            .take(self.capacity, self.per_second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_capacity_then_says_when() {
        let limit = RateLimit::new(3, 1.0 / 60.0);
        assert!((0..3).all(|_| limit.take().is_ok()));
        let wait = limit.take().unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Zero would divide by zero; it is read as the least allowed.
        assert!(RateLimit::per_hour(0).take().is_ok());
    }

    #[test]
    fn clients_have_their_own_buckets_and_memory_is_bounded() {
        let limit = PerClient::new(2, 1.0 / 60.0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limit.take(a).is_ok() && limit.take(a).is_ok());
        assert!(limit.take(a).is_err());
        assert!(limit.take(b).is_ok());
        for i in 0..(MAX_CLIENTS as u32 * 2) {
            let _ = limit.take(IpAddr::from(i.to_be_bytes()));
        }
        assert!(limit.clients.lock().unwrap().len() <= MAX_CLIENTS);
    }
}
