//! The gateway holds under abuse: rate limits per address, tenant,
//! credential and socket; connection, body and time limits; HTTP/2 rapid
//! reset; cross-origin preflights. Every load loop here is bounded in count
//! and time and aims only at the test's own loopback server.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Ws;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the server speaking `alpn`.
async fn tls_connect(server: &TestServer, alpn: &[u8]) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(server.running.public_addr()).await?;
    let mut tls = server.client_tls();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = connector.connect(name, tcp).await?;
    conn.flush().await?;
    Ok(conn)
}

/// Reads what the server sends until it closes or `limit` passes.
async fn read_until_closed(conn: &mut Tls, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after_and_ratelimit_headers() {
    let env = [("PALISADE_LIMITS__LOGIN_PER_ADDRESS", "3/min burst 3")];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let login = json!({"email": "nobody@example.com", "password": "wrong password here"});
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let resp = server
            .http
            .post(server.url("/v1/agent/login"))
            .json(&login)
            .send()
            .await
            .expect("sent");
        statuses.push(resp.status().as_u16());
        last = Some(resp);
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    let resp = last.expect("a response");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry: u64 = header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(header("ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(header("ratelimit-remaining").as_deref(), Some("0"));
    assert!(header("ratelimit-reset").is_some());
    assert_eq!(header("ratelimit-policy").as_deref(), Some("3;w=60"));
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");

    // Reads are another class, with their own budget.
    let (status, _) = server.get("/v1/agent/me", None).await;
    assert_eq!(status, 401);
    server.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_per_account_are_limited_across_addresses() {
    let env = [("PALISADE_LIMITS__LOGIN_PER_ACCOUNT", "2/min burst 2")];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("acct").await;
    let wrong = json!({"email": tenant.email, "password": "not the password at all"});
    let (first, _) = server.post("/v1/agent/login", wrong.clone(), None).await;
    let (second, _) = server.post("/v1/agent/login", wrong.clone(), None).await;
    let (third, body) = server.post("/v1/agent/login", wrong, None).await;
    assert_eq!((first, second, third), (401, 401, 429), "{body}");
    // Another account is not affected.
    let other = json!({"email": "else@acct.example", "password": "whatever it may be"});
    assert_eq!(server.post("/v1/agent/login", other, None).await.0, 401);
    server.stop().await;
}

#[tokio::test]
async fn one_tenants_flood_does_not_starve_another() {
    // Everything comes from 127.0.0.1 here, so the per-address limit is
    // lifted: the per-tenant limit is what this test is about.
    let env = [
        ("PALISADE_LIMITS__SEND_PER_ADDRESS", "off"),
        ("PALISADE_LIMITS__SEND_PER_CREDENTIAL", "off"),
        ("PALISADE_LIMITS__SEND_PER_TENANT", "120/min burst 30"),
        ("PALISADE_LIMITS__SESSION_PER_ADDRESS", "off"),
        ("PALISADE_LIMITS__WRITE_PER_ADDRESS", "off"),
    ];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let a = server.seed_tenant("flooder").await;
    let b = server.seed_tenant("quiet").await;
    let mut flooders = Vec::new();
    for _ in 0..4 {
        flooders.push(server.visitor(&a).await);
    }
    let (b_token, b_conversation) = server.visitor(&b).await;

    // Tenant A: 4 visitors, 100 sends each, 16 at a time (400 in all).
    let flood = async {
        let mut statuses = Vec::new();
        let jobs = flooders.iter().flat_map(|(token, conversation)| {
            (0..100).map(move |n| (token.clone(), conversation.clone(), n))
        });
        let mut results = futures_util::stream::iter(jobs)
            .map(|(token, conversation, n)| {
                let server = &server;
                async move {
                    let path = format!("/v1/visitor/conversations/{conversation}/messages");
                    let body = json!({"client_msg_id": format!("f-{n}"), "body": "flood"});
                    server.post(&path, body, Some(&token)).await.0
                }
            })
            .buffer_unordered(16);
        while let Some(status) = results.next().await {
            statuses.push(status);
        }
        statuses
    };
    // Tenant B meanwhile: 20 sends, one after another.
    let quiet = async {
        let mut latencies = Vec::new();
        let path = format!("/v1/visitor/conversations/{b_conversation}/messages");
        for n in 0..20 {
            let started = Instant::now();
            let body = json!({"client_msg_id": format!("q-{n}"), "body": "hello"});
            let (status, ack) = server.post(&path, body, Some(&b_token)).await;
            latencies.push(started.elapsed());
            assert_eq!(status, 201, "tenant B is served during A's flood: {ack}");
        }
        latencies
    };
    let (statuses, mut latencies) = tokio::join!(flood, quiet);
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let stored = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(
        refused + stored,
        statuses.len(),
        "only 201 or 429: {statuses:?}"
    );
    assert!(
        refused >= 300,
        "tenant A is held to its quota: {refused} refused"
    );
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "tenant flood: A sent {} (stored {stored}, refused {refused}); B 20/20 stored, \
         latency p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        statuses.len(),
        ms(latencies[10]),
        ms(latencies[18]),
        ms(latencies[19]),
    );
    assert!(latencies[19] < Duration::from_secs(10), "sanity bound only");
    server.stop().await;
}

#[tokio::test]
async fn websocket_message_flood_is_rate_limited_then_closed_with_1008() {
    let env = [(
        "PALISADE_LIMITS__WS_MESSAGES_PER_CONNECTION",
        "60/min burst 5",
    )];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let tenant = server.seed_tenant("wsflood").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let (mut ws, _) = server.visitor_ws(&token, &conversation, 0).await;
    // The hello used one frame of the burst; 60 pings follow at once.
    for _ in 0..60 {
        if ws
            .send(Ws::Text(json!({"type": "ping"}).to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (mut pongs, mut limited, mut close_code) = (0, 0, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Ws::Text(text)))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).expect("json");
                match frame["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("error") if frame["code"] == "rate_limited" => limited += 1,
                    _ => {}
                }
            }
            Ok(Some(Ok(Ws::Close(frame)))) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            _ => break,
        }
    }
    println!("websocket flood: {pongs} pongs, {limited} rate_limited errors, close {close_code:?}");
    assert!((3..=6).contains(&pongs), "the burst is served: {pongs}");
    assert!(limited >= 1, "refusals are explained");
    assert_eq!(close_code, Some(1008), "sustained abuse closes the socket");
    server.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let env = [("PALISADE_SERVER__MAX_CONNECTIONS_PER_ADDRESS", "3")];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            tls_connect(&server, b"http/1.1")
                .await
                .expect("within the cap"),
        );
    }
    let fourth = tls_connect(&server, b"http/1.1").await;
    let refused = match fourth {
        Err(_) => true,
        Ok(mut conn) => read_until_closed(&mut conn, Duration::from_secs(3)).await.1,
    };
    assert!(refused, "a fourth connection from the address is refused");
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = tls_connect(&server, b"http/1.1")
        .await
        .expect("a slot is free");
    again
        .write_all(
            b"GET /widget/loader.js HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("sent");
    let (reply, _) = read_until_closed(&mut again, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn slow_bodies_get_408_and_slow_headers_are_dropped() {
    let env = [
        ("PALISADE_SERVER__BODY_READ_TIMEOUT_SECS", "1"),
        ("PALISADE_SERVER__HEADER_READ_TIMEOUT_SECS", "1"),
    ];
    let server = TestServer::start_with_env(palisade_store::Backend::Sqlite, &env).await;
    // A body promised at 100 bytes that stops after 10.
    let mut conn = tls_connect(&server, b"http/1.1").await.expect("connect");
    let head = "POST /v1/visitor/sessions HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"widget_";
    conn.write_all(head.as_bytes()).await.expect("sent");
    let started = Instant::now();
    let (reply, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("request_timeout"), "{reply}");
    println!("slow body: 408 after {:?}", started.elapsed());

    // Slow-loris: headers trickled a few bytes at a time never finish.
    let mut conn = tls_connect(&server, b"http/1.1").await.expect("connect");
    let started = Instant::now();
    let mut closed = false;
    for chunk in [
        "GET / HTTP/1.1\r\n",
        "host: 127",
        ".0.0.1\r\n",
        "x-a: 1\r\n",
        "x-b: 2\r\n",
    ]
    .iter()
    .cycle()
    .take(40)
    {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // A 408 answer before the close is fine too.
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    println!("slow-loris: cut off after {:?}", started.elapsed());
    assert!(closed, "a trickling client is cut off");
    assert!(started.elapsed() < Duration::from_secs(10));
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_per_route() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("big").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let path = format!("/v1/visitor/conversations/{conversation}/messages");
    let big = json!({"client_msg_id": "x", "body": "a".repeat(70 * 1024)});
    let (status, body) = server.post(&path, big, Some(&token)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Sign-in takes at most 8 KiB.
    let login = json!({"email": "a@b.example", "password": "p".repeat(9 * 1024)});
    let (status, _) = server.post("/v1/agent/login", login, None).await;
    assert_eq!(status, 413);
    server.stop().await;
}

#[tokio::test]
async fn http2_rapid_reset_is_cut_off_and_the_server_keeps_serving() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let conn = tls_connect(&server, b"h2").await.expect("connect");
    let (client, connection) = h2::client::handshake(conn).await.expect("h2 handshake");
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let uri = format!("{}/widget/loader.js", server.base);
    let (started, limit) = (Instant::now(), Duration::from_secs(15));
    let mut sent = 0u32;
    while sent < 20_000 && started.elapsed() < limit {
        let request = http::Request::get(uri.as_str()).body(()).expect("request");
        match client.send_request(request, false) {
            Ok((_response, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        sent += 1;
        client = match client.ready().await {
            Ok(client) => client,
            Err(_) => break,
        };
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), driver).await;
    let outcome = match &ended {
        Ok(Ok(Err(err))) => format!("{err}"),
        other => format!("{other:?}"),
    };
    // The client queues frames without waiting for the network, so `sent`
    // counts what it wrote, not what the server handled.
    let metrics = &server.running.state.metrics;
    let handled: u64 = [
        &metrics.requests_2xx,
        &metrics.requests_4xx,
        &metrics.requests_5xx,
    ]
    .iter()
    .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    .sum();
    println!(
        "rapid reset: {sent} HEADERS+RST_STREAM pairs written in {:?}; server answered \
         {handled} requests; connection ended: {outcome}",
        started.elapsed()
    );
    let calm =
        matches!(&ended, Ok(Ok(Err(err))) if err.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM));
    assert!(
        calm,
        "the server ends the connection with ENHANCE_YOUR_CALM"
    );
    assert!(
        handled < u64::from(sent),
        "cut off before the attack finished"
    );
    let resp = server
        .http
        .get(server.url("/widget/loader.js"))
        .send()
        .await
        .expect("served");
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test]
async fn cross_origin_preflights_are_refused_and_headers_are_set() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let resp = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/v1/visitor/sessions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "cross_origin");

    let resp = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    for (name, want) in [
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(resp.headers()[name], want, "{name}");
    }
    let permissions = resp.headers()["permissions-policy"]
        .to_str()
        .expect("ascii");
    assert!(permissions.contains("camera=()"), "{permissions}");
    let doc: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(doc["openapi"], "3.1.0");

    // API answers are never cached; the widget frame may still be framed.
    let (token_status, _) = server.get("/v1/visitor/conversations", None).await;
    assert_eq!(token_status, 401);
    let resp = server
        .http
        .get(server.url("/v1/visitor/conversations"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let frame = server
        .http
        .get(server.url("/widget/frame.html"))
        .send()
        .await
        .expect("sent");
    assert!(frame.headers().get("x-frame-options").is_none());
    server.stop().await;
}
