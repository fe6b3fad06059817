//! Sign-in throttling, per account and per client address.
//!
//! Each key may fail a few times within a window for free; every further
//! failure makes the key wait twice as long as the last (1 s, 2 s, 4 s, ...,
//! at most the window), and a caller that tries while it must wait gets 429
//! with `Retry-After`. A success clears the account's count. Counts live in
//! this process only: with several gateways an attacker gets a few more
//! tries, never unlimited ones.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When an entry table grows past this, expired entries are dropped.
const PRUNE_AT: usize = 50_000;

#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub free_per_account: u32,
    pub free_per_address: u32,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_per_account: 5,
            free_per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    first: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
struct Table<K> {
    entries: Mutex<HashMap<K, Failures>>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn wait(&self, key: &K, now: Instant, window: Duration) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        if now.duration_since(entry.first) > window {
            entries.remove(key);
            return None;
        }
        entry
            .blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn fail(&self, key: &K, now: Instant, free: u32, window: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() > PRUNE_AT {
            entries.retain(|_, e| now.duration_since(e.first) <= window);
        }
        let entry = entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            first: now,
            blocked_until: None,
        });
        if now.duration_since(entry.first) > window {
            *entry = Failures {
                count: 0,
                first: now,
                blocked_until: None,
            };
        }
        entry.count += 1;
        if entry.count >= free {
            let doublings = (entry.count - free).min(20);
            let delay = Duration::from_secs(1u64 << doublings).min(window);
            entry.blocked_until = Some(now + delay);
        }
    }

    fn clear(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// The throttle of the sign-in route.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    accounts: Table<String>,
    addresses: Table<IpAddr>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            accounts: Table::new(),
            addresses: Table::new(),
        }
    }

    /// How long this attempt must wait, if at all. The account key is the
    /// normalised email, known or not: unknown accounts are throttled the
    /// same way, so throttling reveals nothing.
    pub fn wait(&self, account: &str, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let window = self.policy.window;
        let by_account = self.accounts.wait(&account.to_owned(), now, window);
        let by_address = self.addresses.wait(&address, now, window);
        by_account.max(by_address)
    }

    pub fn failed(&self, account: &str, address: IpAddr) {
        let now = Instant::now();
        let p = self.policy;
        self.accounts
            .fail(&account.to_owned(), now, p.free_per_account, p.window);
        self.addresses
            .fail(&address, now, p.free_per_address, p.window);
    }

    pub fn succeeded(&self, account: &str) {
        self.accounts.clear(&account.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottlePolicy {
            free_per_account: 3,
            free_per_address: 10,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn free_attempts_then_growing_waits() {
        let t = throttle();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..2 {
            t.failed("ann@x.example", ip);
            assert_eq!(t.wait("ann@x.example", ip), None);
        }
        t.failed("ann@x.example", ip);
        let first = t
            .wait("ann@x.example", ip)
            .expect("blocked after the free attempts");
        assert!(first <= Duration::from_secs(1));
        t.failed("ann@x.example", ip);
        let second = t.wait("ann@x.example", ip).expect("blocked");
        assert!(second > first, "waits grow: {first:?} then {second:?}");
        // Another account from the same address is not blocked yet.
        assert_eq!(t.wait("bob@x.example", ip), None);
    }

    #[test]
    fn success_clears_the_account() {
        let t = throttle();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..3 {
            t.failed("ann@x.example", ip);
        }
        t.succeeded("ann@x.example");
        assert_eq!(t.wait("ann@x.example", [127, 0, 0, 2].into()), None);
    }
}
