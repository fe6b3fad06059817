//! Rate limits: a keyed GCRA (generic cell rate algorithm) limiter, the
//! route classes it is applied to, and the quotas of each class.
//!
//! One limiter holds every key (address, tenant, credential or socket, per
//! class) as a single "theoretical arrival time". A quota of `n` per period
//! with burst `b` admits `b` requests at once and then one every
//! `period / n`. Memory is bounded: a key whose arrival time has passed is
//! indistinguishable from an absent one and is swept when its shard fills;
//! a shard still full after sweeping admits the new key without tracking it
//! (counted in metrics), so an address sweep cannot lock out real clients.
//!
//! Refusals carry the IETF draft names of
//! draft-ietf-httpapi-ratelimit-headers-07: `RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and `RateLimit-Policy`,
//! plus `Retry-After`.

use axum::http::{HeaderMap, HeaderValue, Method};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// `n` requests per `period`, at most `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
    pub burst: u32,
}

impl Quota {
    /// Parses `"<n>/<s|min|h> burst <b>"`, e.g. `"60/min burst 20"`; `"off"` is `None`.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(None);
        }
        let bad = || format!("{text:?} is not a rate like \"60/min burst 20\" or \"off\"");
        let (rate, burst) = match text.split_once("burst") {
            Some((rate, burst)) => (rate.trim(), Some(burst.trim())),
            None => (text, None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst: u32 = match burst {
            Some(b) => b.parse().map_err(|_| bad())?,
            None => count,
        };
        if count == 0 || burst == 0 || count > 1_000_000 || burst > 1_000_000 {
            return Err(format!("{text:?}: rate and burst must be 1 to 1000000"));
        }
        Ok(Some(Self {
            count,
            period,
            burst,
        }))
    }

    fn interval_nanos(&self) -> u64 {
        let nanos = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        (nanos / u64::from(self.count)).max(1)
    }
}

/// What a request is, for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Login,
    Session,
    Send,
    Read,
    Write,
}

impl Class {
    /// The class of a request, from its method and matched route.
    pub fn of(method: &Method, route: Option<&str>) -> Self {
        let route = route.unwrap_or("");
        if *method == Method::GET || *method == Method::HEAD {
            return Self::Read;
        }
        match route {
            "/v1/agent/login" => Self::Login,
            "/v1/visitor/sessions" => Self::Session,
            r if r.ends_with("/messages") => Self::Send,
            _ => Self::Write,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Session => "session",
            Self::Send => "send",
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// Who a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Address,
    Tenant,
    Credential,
    Account,
    Socket,
}

/// The quotas of one class; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassQuotas {
    pub per_address: Option<Quota>,
    pub per_credential: Option<Quota>,
    pub per_tenant: Option<Quota>,
}

/// Every quota, already validated by the binary's config loader.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub login: ClassQuotas,
    /// Sign-in attempts per account (email), whatever the address.
    pub login_per_account: Option<Quota>,
    pub session: ClassQuotas,
    pub send: ClassQuotas,
    pub read: ClassQuotas,
    pub write: ClassQuotas,
    /// Frames a client may send on one WebSocket.
    pub ws_messages_per_connection: Option<Quota>,
    /// Per-tenant quotas replacing the defaults, by tenant id and class.
    pub tenant_overrides: HashMap<String, HashMap<Class, Quota>>,
    /// The most keys tracked at once (bounds memory).
    pub max_tracked_keys: usize,
}

fn q(count: u32, period_secs: u64, burst: u32) -> Option<Quota> {
    Some(Quota {
        count,
        period: Duration::from_secs(period_secs),
        burst,
    })
}

impl Default for LimitSettings {
    fn default() -> Self {
        let class = |a, c, t| ClassQuotas {
            per_address: a,
            per_credential: c,
            per_tenant: t,
        };
        Self {
            login: class(q(20, 60, 10), None, None),
            login_per_account: q(10, 60, 5),
            session: class(q(60, 60, 20), None, q(3000, 60, 300)),
            send: class(q(1200, 60, 120), q(60, 60, 20), q(6000, 60, 600)),
            read: class(q(3000, 60, 300), q(600, 60, 100), q(60_000, 60, 3000)),
            write: class(q(600, 60, 60), q(120, 60, 30), q(6000, 60, 600)),
            ws_messages_per_connection: q(120, 60, 30),
            tenant_overrides: HashMap::new(),
            max_tracked_keys: 200_000,
        }
    }
}

impl LimitSettings {
    pub fn class(&self, class: Class) -> &ClassQuotas {
        match class {
            Class::Login => &self.login,
            Class::Session => &self.session,
            Class::Send => &self.send,
            Class::Read => &self.read,
            Class::Write => &self.write,
        }
    }
}

/// The outcome of one check, enough to write the rate-limit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the full burst is available again.
    pub reset_secs: u64,
    /// Seconds to wait before a retry can succeed (0 when allowed).
    pub retry_after_secs: u64,
    /// The window the burst refills over, for `RateLimit-Policy`.
    pub window_secs: u64,
}

impl Decision {
    /// The tighter of two decisions: a refusal, else the fewer remaining.
    pub fn tighter(self, other: Self) -> Self {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put("ratelimit-limit", self.limit.to_string());
        put("ratelimit-remaining", self.remaining.to_string());
        put("ratelimit-reset", self.reset_secs.to_string());
        put(
            "ratelimit-policy",
            format!("{};w={}", self.limit, self.window_secs),
        );
        if !self.allowed {
            put("retry-after", self.retry_after_secs.max(1).to_string());
        }
    }
}

const SHARDS: usize = 16;

type Key = (Scope, Class, Box<str>);

/// The keyed limiter. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RateLimiter {
    epoch: Instant,
    shards: Vec<Mutex<HashMap<Key, u64>>>,
    per_shard: usize,
    pub settings: LimitSettings,
    /// Keys admitted untracked because their shard was full.
    pub untracked: AtomicU64,
    /// Requests refused, all classes.
    pub refused: AtomicU64,
}

/// Addresses are limited per IPv4 address and per IPv6 /64 (one host's
/// usual allocation), so rotating through a prefix does not help.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl RateLimiter {
    pub fn new(settings: LimitSettings) -> Self {
        let per_shard = (settings.max_tracked_keys / SHARDS).max(64);
        Self {
            epoch: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            settings,
            untracked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn check(&self, key: Key, quota: Quota) -> Decision {
        let now = self.now();
        let interval = quota.interval_nanos();
        let tolerance = interval.saturating_mul(u64::from(quota.burst));
        let window_secs = tolerance.div_ceil(1_000_000_000);
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        let mut map = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);

        let tat = map.get(&key).copied().unwrap_or(now).max(now);
        let new_tat = tat.saturating_add(interval);
        let allow_at = new_tat.saturating_sub(tolerance);
        if now < allow_at {
            self.refused.fetch_add(1, Relaxed);
            return Decision {
                allowed: false,
                limit: quota.burst,
                remaining: 0,
                reset_secs: (tat - now).div_ceil(1_000_000_000),
                retry_after_secs: (allow_at - now).div_ceil(1_000_000_000),
                window_secs,
            };
        }
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.per_shard {
                self.untracked.fetch_add(1, Relaxed);
                return Decision {
                    allowed: true,
                    limit: quota.burst,
                    remaining: quota.burst.saturating_sub(1),
                    reset_secs: 0,
                    retry_after_secs: 0,
                    window_secs,
                };
            }
        }
        map.insert(key, new_tat);
        let headroom = now.saturating_add(tolerance).saturating_sub(new_tat);
        Decision {
            allowed: true,
            limit: quota.burst,
            remaining: u32::try_from(headroom / interval).unwrap_or(u32::MAX),
            reset_secs: (new_tat - now).div_ceil(1_000_000_000),
            retry_after_secs: 0,
            window_secs,
        }
    }

    /// The per-address check of a request.
    pub fn check_address(&self, class: Class, ip: IpAddr) -> Option<Decision> {
        let quota = self.settings.class(class).per_address?;
        Some(self.check((Scope::Address, class, address_key(ip).into()), quota))
    }

    /// The per-tenant and per-credential checks of an authenticated caller.
    /// `credential` is a stable, non-secret name of the credential (a
    /// visitor id, a session token's hash).
    pub fn check_caller(&self, class: Class, tenant: &str, credential: &str) -> Option<Decision> {
        let quotas = self.settings.class(class);
        let credential = quotas
            .per_credential
            .map(|quota| self.check((Scope::Credential, class, credential.into()), quota));
        let tenant = self.check_tenant(class, tenant);
        match (credential, tenant) {
            (Some(c), Some(t)) => Some(c.tighter(t)),
            (one, other) => one.or(other),
        }
    }

    /// The per-tenant check alone (session creation knows no credential yet).
    pub fn check_tenant(&self, class: Class, tenant: &str) -> Option<Decision> {
        let quota = self
            .settings
            .tenant_overrides
            .get(tenant)
            .and_then(|classes| classes.get(&class).copied())
            .or(self.settings.class(class).per_tenant)?;
        Some(self.check((Scope::Tenant, class, tenant.into()), quota))
    }

    /// Sign-in attempts against one account.
    pub fn check_account(&self, email: &str) -> Option<Decision> {
        let quota = self.settings.login_per_account?;
        let key = email.to_ascii_lowercase().into_boxed_str();
        Some(self.check((Scope::Account, Class::Login, key), quota))
    }

    /// One frame on one WebSocket (`socket` is unique per connection).
    pub fn check_socket(&self, socket: &str) -> Option<Decision> {
        let quota = self.settings.ws_messages_per_connection?;
        Some(self.check((Scope::Socket, Class::Send, socket.into()), quota))
    }

    /// Forgets a socket's key when it closes.
    pub fn forget_socket(&self, socket: &str) {
        let key: Key = (Scope::Socket, Class::Send, socket.into());
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
    }

    /// Keys currently tracked, for metrics.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(quota: &str) -> (RateLimiter, Quota) {
        let quota = Quota::parse(quota).expect("parses").expect("on");
        let mut settings = LimitSettings::default();
        settings.read.per_address = Some(quota);
        (RateLimiter::new(settings), quota)
    }

    #[test]
    fn quota_text_is_parsed_and_bad_text_refused() {
        let quota = Quota::parse("60/min burst 20").expect("ok").expect("on");
        assert_eq!(quota.count, 60);
        assert_eq!(quota.burst, 20);
        assert_eq!(quota.period, Duration::from_secs(60));
        assert_eq!(Quota::parse("off").expect("ok"), None);
        assert_eq!(Quota::parse("5/s").expect("ok").expect("on").burst, 5);
        for bad in [
            "",
            "60",
            "60/day",
            "0/s",
            "x/s burst 2",
            "5/s burst",
            "5/s burst 0",
        ] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn burst_is_admitted_then_refused_with_retry_after() {
        let (limiter, _) = limiter("1/min burst 3");
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        for left in [2, 1, 0] {
            let d = limiter.check_address(Class::Read, ip).expect("limited");
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = limiter.check_address(Class::Read, ip).expect("limited");
        assert!(!refused.allowed);
        assert!((1..=60).contains(&refused.retry_after_secs), "{refused:?}");
        let mut headers = HeaderMap::new();
        refused.write_headers(&mut headers);
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert!(headers.contains_key("retry-after"));
        // Another address is unaffected.
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(
            limiter
                .check_address(Class::Read, other)
                .expect("on")
                .allowed
        );
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(address_key(mapped), "192.0.2.7");
    }

    #[test]
    fn tenants_and_credentials_are_counted_apart() {
        let mut settings = LimitSettings::default();
        settings.send.per_tenant = Quota::parse("1/min burst 2").expect("ok");
        settings.send.per_credential = Quota::parse("1/min burst 5").expect("ok");
        let big = Quota::parse("1/min burst 100").expect("ok").expect("on");
        settings
            .tenant_overrides
            .insert("t-big".into(), HashMap::from([(Class::Send, big)]));
        let limiter = RateLimiter::new(settings);
        let allowed =
            |t: &str, c: &str| limiter.check_caller(Class::Send, t, c).expect("on").allowed;
        assert!(allowed("t-a", "v1"));
        assert!(allowed("t-a", "v2"));
        assert!(!allowed("t-a", "v3"), "tenant A is over its quota");
        assert!(allowed("t-b", "v4"), "tenant B is not");
        for n in 0..5 {
            assert!(allowed("t-big", &format!("v{n}")), "override applies");
        }
    }

    #[test]
    fn a_full_table_sweeps_idle_keys_and_never_grows_past_its_bound() {
        let mut settings = LimitSettings {
            max_tracked_keys: SHARDS * 64,
            ..LimitSettings::default()
        };
        settings.read.per_address = Quota::parse("1000000/s burst 1").expect("ok");
        let limiter = RateLimiter::new(settings);
        for n in 0..20_000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            assert!(limiter.check_address(Class::Read, ip).expect("on").allowed);
        }
        assert!(limiter.tracked() <= SHARDS * 64);
    }

    #[test]
    fn route_classes() {
        assert_eq!(
            Class::of(&Method::POST, Some("/v1/agent/login")),
            Class::Login
        );
        assert_eq!(
            Class::of(&Method::POST, Some("/v1/visitor/sessions")),
            Class::Session
        );
        let send = "/v1/visitor/conversations/{id}/messages";
        assert_eq!(Class::of(&Method::POST, Some(send)), Class::Send);
        assert_eq!(Class::of(&Method::GET, Some(send)), Class::Read);
        assert_eq!(Class::of(&Method::POST, None), Class::Write);
    }
}
