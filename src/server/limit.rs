//! Rate limits: token buckets, one shared or one per key (a client
//! address, an account name).
//!
//! Report orders are limited per token; logins per client address, and
//! failed ones per account (see `dashboard::login`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a bucket fills: up to `capacity` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy)]
struct Rate {
    capacity: f64,
    per_second: f64,
}

impl Rate {
    /// Both at least tiny, so that no configuration divides by zero.
    fn new(capacity: u32, per_second: f64) -> Rate {
        Rate {
            capacity: f64::from(capacity.max(1)),
            per_second: per_second.max(1e-6),
        }
    }

    fn full(self) -> Bucket {
        Bucket {
            tokens: self.capacity,
            at: Instant::now(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes one token, or says how long until one is there.
    fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let refilled = (now - self.at).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + refilled).min(rate.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - self.tokens) / rate.per_second).ceil(),
            ))
        }
    }

    /// Whether it would be full by now (and so can be forgotten).
    fn is_full(&self, rate: Rate) -> bool {
        self.tokens + self.at.elapsed().as_secs_f64() * rate.per_second >= rate.capacity
    }
}

/// A token bucket: up to `capacity` at once, refilled at `per_second`.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: Rate,
    state: Mutex<Bucket>,
}

impl RateLimit {
    pub(crate) fn new(capacity: u32, per_second: f64) -> RateLimit {
        let rate = Rate::new(capacity, per_second);
        RateLimit {
            rate,
            state: Mutex::new(rate.full()),
        }
    }

    /// `per_hour` an hour, up to `per_hour` at once.
    pub(crate) fn per_hour(per_hour: u32) -> RateLimit {
        RateLimit::new(per_hour, f64::from(per_hour.max(1)) / 3600.0)
    }

    /// Takes one request, or says how long until one is allowed.
    pub(crate) fn take(&self) -> Result<(), Duration> {
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        bucket.take(self.rate)
    }
}

/// Most client addresses remembered; beyond it, those whose buckets have
/// refilled are forgotten, then (a flood of addresses) all of them.
const MAX_CLIENTS: usize = 4096;

/// One token bucket per client address.
pub(crate) type PerClient = PerKey<IpAddr>;

/// One token bucket per key (a client address, an account name).
#[derive(Debug)]
pub(crate) struct PerKey<K> {
    rate: Rate,
    clients: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq> PerKey<K> {
    pub(crate) fn new(capacity: u32, per_second: f64) -> PerKey<K> {
        PerKey {
            rate: Rate::new(capacity, per_second),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `client`, or says how long until one is allowed.
    pub(crate) fn take(&self, client: K) -> Result<(), Duration> {
        let rate = self.rate;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, b| !b.is_full(rate));
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        clients
            .entry(client)
            .or_insert_with(|| rate.full())
            .take(rate)
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
