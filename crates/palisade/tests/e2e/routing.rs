//! Strict routing, request ids, the ops listener and the embedded pages.

use crate::support::*;

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_in_json() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    for path in [
        "/nope",
        "/v1/visitor/nope",
        "/v1/agent/conversations/x/nope",
        "/s2s/v1/nope",
        "/widget/../Cargo.toml",
    ] {
        let resp = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        assert!(resp.headers().contains_key("x-request-id"));
        let body: serde_json::Value = resp.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let resp = server
        .http
        .delete(server.url("/v1/agent/login"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    server.stop().await;
}

#[tokio::test]
async fn every_response_has_a_fresh_request_id_and_security_headers() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let first = server
        .http
        .get(server.url("/app/"))
        .send()
        .await
        .expect("sent");
    let second = server
        .http
        .get(server.url("/app/"))
        .send()
        .await
        .expect("sent");
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    assert!(id(&first).is_some_and(|v| v.len() >= 16));
    assert_ne!(id(&first), id(&second));
    let csp = first
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        first
            .headers()
            .get("x-content-type-options")
            .and_then(|v| v.to_str().ok()),
        Some("nosniff")
    );
    assert!(first.headers().contains_key("strict-transport-security"));
    assert!(first.text().await.expect("page").contains("<html"));
    server.stop().await;
}

#[tokio::test]
async fn https_serves_http2_and_http1() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let resp = server
        .http
        .get(server.url("/widget/loader.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status().as_u16(), 200);
    let h1 = reqwest::Client::builder()
        .tls_backend_preconfigured(server.client_tls())
        .http1_only()
        .build()
        .expect("client");
    let resp = h1
        .get(server.url("/widget/loader.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    server.stop().await;
}

#[tokio::test]
async fn ops_listener_serves_health_readiness_and_metrics_on_loopback() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let ops = server.running.ops_addr;
    assert!(ops.ip().is_loopback());
    let plain = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let resp = plain
            .get(format!("http://{ops}{path}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let tenant = server.seed_tenant("metrics").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let (status, _) = server
        .post(
            &format!("/v1/visitor/conversations/{conversation}/messages"),
            serde_json::json!({"client_msg_id": "m1", "body": "count me"}),
            Some(&token),
        )
        .await;
    assert_eq!(status, 201);
    let metrics = plain
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("palisade_messages_stored_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("palisade_http_requests_total{class=\"2xx\"}"));
    // The ops routes do not exist on the public listener.
    let resp = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 404);
    server.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_after_the_handshake_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with_env(
        palisade_store::Backend::Sqlite,
        &[
            ("PALISADE_SERVER__HEADER_READ_TIMEOUT_SECS", "1"),
            ("PALISADE_SERVER__MAX_CONNECTIONS", "4"),
        ],
    )
    .await;
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(server.running.public_addr())
            .await
            .expect("connect");
        let mut tls = server.client_tls();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut conn = connector.connect(name, tcp).await.expect("handshake");
        // Make sure the client's last handshake message has left, so the
        // server's handshake is complete and only request bytes are missing.
        conn.flush().await.expect("flush");
        conn
    };
    // Four silent connections fill every slot, and each is closed soon after.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(connect().await);
    }
    for mut conn in silent {
        let mut buf = [0u8; 64];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a silent connection is closed: {read:?}"
        );
    }
    // Then the server serves again.
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
async fn oversized_request_headers_are_refused_on_both_protocols() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let huge = "x".repeat(40 * 1024);
    let h1 = reqwest::Client::builder()
        .tls_backend_preconfigured(server.client_tls())
        .http1_only()
        .build()
        .expect("client");
    let resp = h1
        .get(server.url("/widget/loader.js"))
        .header("x-filler", &huge)
        .send()
        .await;
    assert_eq!(resp.map(|r| r.status().as_u16()).ok(), Some(431));
    // HTTP/2 refuses the header block (a stream or connection error, or 431).
    let resp = server
        .http
        .get(server.url("/widget/loader.js"))
        .header("x-filler", &huge)
        .send()
        .await;
    assert!(
        resp.as_ref().map_or(true, |r| r.status().as_u16() == 431),
        "{resp:?}"
    );
    // And the server still serves.
    let ok = server
        .http
        .get(server.url("/widget/loader.js"))
        .send()
        .await
        .expect("served");
    assert_eq!(ok.status().as_u16(), 200);
    server.stop().await;
}
