//! Bad input gets a clear 4xx (or a WebSocket error event) naming the
//! problem; nothing panics, and the socket stays usable.

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

async fn raw_post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    bearer: &str,
) -> (u16, Value) {
    let resp = server
        .http
        .post(server.url(path))
        .header("content-type", content_type)
        .bearer_auth(bearer)
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_http_bodies_get_clear_json_errors() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("bad-input").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let path = format!("/v1/visitor/conversations/{conversation}/messages");
    let json_type = "application/json";

    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "malformed JSON",
            json_type,
            b"{\"client_msg_id\": \"a\", \"body\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            json_type,
            br#"{"client_msg_id":"a","body":"hi","colour":"red"}"#.to_vec(),
            400,
            "unknown_field",
        ),
        (
            "missing field",
            json_type,
            br#"{"client_msg_id":"a"}"#.to_vec(),
            400,
            "missing_field",
        ),
        (
            "wrong type",
            json_type,
            br#"{"client_msg_id":"a","body":42}"#.to_vec(),
            400,
            "invalid_field",
        ),
        (
            "invalid UTF-8",
            json_type,
            b"{\"client_msg_id\":\"a\",\"body\":\"\xff\xfe\"}".to_vec(),
            400,
            "invalid_utf8",
        ),
        (
            "empty message",
            json_type,
            br#"{"client_msg_id":"a","body":"   "}"#.to_vec(),
            400,
            "invalid_body",
        ),
        (
            "huge message",
            json_type,
            json!({"client_msg_id": "a", "body": "x".repeat(4001)})
                .to_string()
                .into_bytes(),
            400,
            "invalid_body",
        ),
        (
            "control char",
            json_type,
            json!({"client_msg_id": "a", "body": "a\u{0007}b"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_body",
        ),
        (
            "bad client id",
            json_type,
            br#"{"client_msg_id":"has space","body":"hi"}"#.to_vec(),
            400,
            "invalid_client_msg_id",
        ),
        (
            "oversized body",
            json_type,
            json!({"client_msg_id": "a", "body": "x".repeat(70_000)})
                .to_string()
                .into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "not JSON at all",
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (what, content_type, body, status, code) in cases {
        let (got, answer) = raw_post(&server, &path, content_type, body, &token).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: a message says what is wrong");
        assert!(
            answer["error"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{what}"
        );
    }
    let (status, answer) = server
        .get(&format!("{path}?after_seq=-1"), Some(&token))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, answer) = server
        .get(&format!("{path}?after_seq=abc"), Some(&token))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // Nothing was stored by any of them.
    let (_, history) = server.get(&path, Some(&token)).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(0));
    server.stop().await;
}

#[tokio::test]
async fn invalid_websocket_frames_get_error_events_and_the_socket_stays_usable() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("bad-frames").await;
    let (token, conversation) = server.visitor(&tenant).await;
    let (mut ws, _) = server.visitor_ws(&token, &conversation, 0).await;

    let bad_frames = [
        (Ws::Text("not json".into()), "malformed_json"),
        (
            Ws::Text(r#"{"type":"send","client_msg_id":"a"}"#.into()),
            "missing_field",
        ),
        (
            Ws::Text(r#"{"type":"shout","body":"x"}"#.into()),
            "invalid_field",
        ),
        (
            Ws::Text(r#"{"type":"send","client_msg_id":"a","body":"hi","extra":1}"#.into()),
            "unknown_field",
        ),
        (
            Ws::Text(r#"{"type":"send","client_msg_id":"a","body":""}"#.into()),
            "invalid_body",
        ),
        (Ws::Binary(vec![0xff, 0x00].into()), "binary_frame"),
    ];
    for (frame, code) in bad_frames {
        ws.send(frame).await.expect("sent");
        let error = next_of_type(&mut ws, "error").await;
        assert_eq!(error["code"], code, "{error}");
    }
    // Still usable: a valid message is stored and acknowledged.
    send_json(
        &mut ws,
        json!({"type": "send", "client_msg_id": "ok-1", "body": "still here"}),
    )
    .await;
    assert_eq!(next_of_type(&mut ws, "ack").await["seq"], 1);

    // A stream of invalid frames is closed as abuse (1008).
    for _ in 0..10 {
        ws.send(Ws::Text("{".into())).await.expect("sent");
    }
    let close_code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Ws::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(close_code, Some(1008));

    // An oversized frame closes the socket (1009) instead of buffering it.
    let (mut ws, _) = server.visitor_ws(&token, &conversation, 1).await;
    let _ = ws.send(Ws::Text("x".repeat(64 * 1024).into())).await;
    let ended = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("ended in time")
        {
            Some(Ok(Ws::Close(_))) | Some(Err(_)) | None => break true,
            Some(Ok(_)) => continue,
        }
    };
    assert!(ended);

    // A socket whose first frame is not hello is told so.
    let mut ws = server.ws("/v1/visitor/ws", &[]).await;
    send_json(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(
        next_of_type(&mut ws, "error").await["code"],
        "hello_required"
    );
    send_json(
        &mut ws,
        json!({"type": "hello", "token": "v1.bad.token", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(
        next_of_type(&mut ws, "error").await["code"],
        "unauthenticated"
    );
    server.stop().await;
}
