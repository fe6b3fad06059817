//! Micro-benchmarks of the checks every request passes through before a
//! handler runs: the rate limiter (a request let through, and one refused)
//! and the WAF scoring a typical chat send. Run with `cargo bench -p
//! palisade-gateway`; `cargo test` never starts them.

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_gateway::limits::{Class, LimitSettings, Quota, RateLimiter};
use palisade_gateway::waf::{Inspected, Mode, Waf};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn limiter(quota: Quota) -> RateLimiter {
    let mut settings = LimitSettings::default();
    settings.send.per_address = Some(quota);
    RateLimiter::new(settings)
}

fn rate_limit(c: &mut Criterion) {
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    // One request per nanosecond, a second's worth of burst: no loop here
    // can exhaust it, so every check is let through (and stores its state).
    let roomy = limiter(Quota {
        count: 1_000_000_000,
        period: Duration::from_secs(1),
        burst: 1_000_000_000,
    });
    c.bench_function("rate_limit/allowed", |b| {
        b.iter(|| {
            let decision = roomy.check_address(Class::Send, black_box(ip));
            assert!(decision.is_some_and(|d| d.allowed));
        })
    });

    // One request an hour: the first check spends it, every later one is refused.
    let tight = limiter(Quota {
        count: 1,
        period: Duration::from_secs(3600),
        burst: 1,
    });
    let _ = tight.check_address(Class::Send, ip);
    c.bench_function("rate_limit/refused", |b| {
        b.iter(|| {
            let decision = tight.check_address(Class::Send, black_box(ip));
            assert!(decision.is_some_and(|d| !d.allowed));
        })
    });
}

fn waf(c: &mut Criterion) {
    let waf = Waf::load(Mode::Block, None).expect("the embedded rules load");
    let body = serde_json::json!({
        "client_msg_id": "c-0193a1f2-7b4e-7c3d-9a10-5f2e8d7c6b5a",
        "body": "Hello! I ordered the blue jacket last Tuesday (order 48213) and the \
                 tracking page still says 'label created'. Could you check whether it \
                 has shipped, and if not, when it will? Thanks, Dana",
    });
    let headers = vec![
        ("host", "chat.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "application/json"),
        ("accept-language", "en-GB,en;q=0.8"),
        ("content-type", "application/json"),
        ("content-length", "260"),
        ("origin", "https://shop.example.com"),
        ("referer", "https://shop.example.com/orders/48213"),
    ];
    let request = Inspected {
        route: Some("/v1/visitor/conversations/{id}/messages"),
        raw_path: "/v1/visitor/conversations/0193a1f2-7b4e-7c3d-9a10-5f2e8d7c6b5a/messages",
        raw_query: None,
        headers,
        json: Some(&body),
    };
    let rules = waf.rules();
    assert_eq!(rules.inspect(&request).score, 0, "a clean request scores 0");
    c.bench_function("waf/chat_send_clean", |b| {
        b.iter(|| black_box(waf.rules().inspect(black_box(&request))))
    });
}

criterion_group!(benches, rate_limit, waf);
criterion_main!(benches);
