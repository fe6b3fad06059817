//! Identity and access end to end: second-factor enrolment and sign-in,
//! codes accepted once, recovery codes single-use, step-up expiry, new
//! session ids at sign-in and privilege change, sign out everywhere, and
//! sign-in throttling.

use crate::support::*;
use palisade_identity::{Totp, sha256_hex};
use palisade_model::now_millis;
use serde_json::{Value, json};

fn now_secs() -> u64 {
    u64::try_from(now_millis() / 1000).expect("time")
}

/// Signs in by password only and returns the pending agent and body.
async fn password_only<'a>(server: &'a TestServer, tenant: &Tenant) -> (Agent<'a>, Value) {
    let (status, body, cookie) = server.login_raw(&tenant.email, &tenant.password).await;
    assert_eq!(status, 200, "{body}");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_owned();
    (
        Agent {
            server,
            cookie,
            csrf,
        },
        body,
    )
}

#[tokio::test]
async fn mfa_enrolment_sign_in_replay_and_recovery_codes() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("mfa").await;

    // An owner must set up a second factor: until then only enrolment is open.
    let (pending, body) = password_only(&server, &tenant).await;
    assert_eq!(body["stage"], "enroll");
    let (status, refused) = pending.get("/v1/agent/conversations").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required"))
    );
    let (status, enrolment) = pending.post("/v1/agent/mfa/enroll", json!({})).await;
    assert_eq!(status, 200, "{enrolment}");
    assert!(
        enrolment["qr_svg"]
            .as_str()
            .is_some_and(|s| s.starts_with("<svg"))
    );
    assert!(
        enrolment["otpauth_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/"))
    );
    let totp = Totp::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");

    let (status, wrong, _) = pending
        .post_raw("/v1/agent/mfa/confirm", json!({"code": "000000"}))
        .await;
    assert_eq!(status, 401, "{wrong}");
    let code = totp.code_at(now_secs());
    let (status, confirmed, cookie) = pending
        .post_raw("/v1/agent/mfa/confirm", json!({"code": code}))
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert_eq!(recovery.len(), 10);
    // The pre-enrolment session is gone; the new one has a new id.
    let new_cookie = cookie.expect("new session");
    assert_ne!(new_cookie, pending.cookie);
    let (status, _) = pending.get("/v1/agent/me").await;
    assert_eq!(status, 401, "the old session id no longer works");

    // Sign-in now needs the second factor; the code just used is refused (replay).
    let (second, body) = password_only(&server, &tenant).await;
    assert_eq!(body["stage"], "mfa");
    let (status, blocked) = second.get("/v1/agent/me").await;
    assert_eq!(
        (status, blocked["error"]["code"].as_str()),
        (401, Some("mfa_required"))
    );
    let (status, replay, _) = second
        .post_raw("/v1/agent/login/mfa", json!({"code": code}))
        .await;
    assert_eq!(status, 401, "a code works once: {replay}");

    // A recovery code works once.
    let (status, done, cookie) = second
        .post_raw("/v1/agent/login/mfa", json!({"recovery_code": recovery[0]}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert!(
        cookie.is_some_and(|c| c != second.cookie),
        "a new session id after the second factor"
    );
    let (third, _) = password_only(&server, &tenant).await;
    let (status, _, _) = third
        .post_raw("/v1/agent/login/mfa", json!({"recovery_code": recovery[0]}))
        .await;
    assert_eq!(status, 401, "a recovery code is single-use");
    let (status, _, _) = third
        .post_raw("/v1/agent/login/mfa", json!({"recovery_code": recovery[1]}))
        .await;
    assert_eq!(status, 200);

    // Every step is in the audit log, failures included.
    let store = server.running.state.chat.store();
    let entries = store.audit_records(0, 1000).await.expect("audit");
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.action.clone(), e.outcome.clone()))
        .collect();
    for expected in [
        ("mfa.enroll", "started"),
        ("mfa.confirm", "failure"),
        ("mfa.confirm", "success"),
        ("mfa.login", "failure"),
        ("mfa.login.recovery_code", "success"),
    ] {
        let found = seen
            .iter()
            .any(|(a, o)| (a.as_str(), o.as_str()) == expected);
        assert!(found, "{expected:?} is audited: {seen:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn step_up_expires_and_a_fresh_code_renews_it() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("stepup").await;
    let (pending, _) = password_only(&server, &tenant).await;
    let (_, enrolment) = pending.post("/v1/agent/mfa/enroll", json!({})).await;
    let totp = Totp::from_base32(enrolment["secret"].as_str().expect("secret")).expect("base32");
    let first_step_time = now_secs();
    let (status, confirmed, cookie) = pending
        .post_raw(
            "/v1/agent/mfa/confirm",
            json!({"code": totp.code_at(first_step_time)}),
        )
        .await;
    assert_eq!(status, 200);
    let agent = Agent {
        server: &server,
        cookie: cookie.expect("session"),
        csrf: confirmed["session"]["csrf_token"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    };
    let new_agent = |n: u32| json!({"email": format!("hire{n}@stepup.example"), "name": "Hire", "password": "a long enough password", "role": "agent"});

    // Fresh from confirming: the sensitive operation is allowed.
    let (status, body) = agent.post("/v1/admin/agents", new_agent(1)).await;
    assert_eq!(status, 201, "{body}");

    // Six minutes later it needs a step-up.
    let hash = sha256_hex(agent.cookie.trim_start_matches("palisade_session="));
    let store = server.running.state.chat.store();
    store
        .mark_session_mfa(&hash, now_millis() - 6 * 60 * 1000)
        .await
        .expect("age the proof");
    let (status, body) = agent.post("/v1/admin/agents", new_agent(2)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("step_up_required"))
    );

    // A code of a later step renews it (the confirming step cannot be reused).
    let later = first_step_time + 30;
    let (status, refused) = agent
        .post(
            "/v1/agent/mfa/step-up",
            json!({"code": totp.code_at(first_step_time)}),
        )
        .await;
    assert_eq!(status, 401, "{refused}");
    let (status, body) = agent
        .post(
            "/v1/agent/mfa/step-up",
            json!({"code": totp.code_at(later)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = agent.post("/v1/admin/agents", new_agent(3)).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("everywhere").await;
    let laptop = server.agent(&tenant).await;
    let phone = server.agent(&tenant).await;
    assert_ne!(laptop.cookie, phone.cookie);
    let (status, _) = laptop.post("/v1/agent/sessions/end-all", json!({})).await;
    assert_eq!(status, 204);
    for device in [&laptop, &phone] {
        let (status, _) = device.get("/v1/agent/me").await;
        assert_eq!(status, 401);
    }
    server.stop().await;
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_the_owner_gets_back_in_after_the_window() {
    let server = TestServer::start_with_env(
        palisade_store::Backend::Sqlite,
        &[
            // The request-rate limit on sign-in is another test's subject.
            ("PALISADE_LIMITS__LOGIN_PER_ACCOUNT", "off"),
            ("PALISADE_LIMITS__LOGIN_PER_ADDRESS", "off"),
            ("PALISADE_SESSIONS__LOGIN_FREE_ATTEMPTS_PER_ACCOUNT", "5"),
            ("PALISADE_SESSIONS__LOGIN_WINDOW_SECS", "2"),
        ],
    )
    .await;
    let tenant = server.seed_tenant("throttle").await;
    for attempt in 1..=5 {
        let (status, body, _) = server
            .login_raw(&tenant.email, "a wrong password here")
            .await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let (status, body, _) = server
        .login_raw(&tenant.email, "a wrong password here")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("too_many_requests"))
    );
    // Even the right password waits: the account is throttled, not the guess.
    let (status, _, _) = server.login_raw(&tenant.email, &tenant.password).await;
    assert_eq!(status, 429);
    // An unknown account is throttled the same way (no enumeration).
    for _ in 0..6 {
        server
            .login_raw("ghost@nowhere.example", "a wrong password here")
            .await;
    }
    let (status, _, _) = server
        .login_raw("ghost@nowhere.example", "a wrong password here")
        .await;
    assert_eq!(status, 429);

    // After the window, the owner signs in from another loopback address.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let other = reqwest::Client::builder()
        .tls_backend_preconfigured({
            let mut tls = server.client_tls();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            tls
        })
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let resp = other
        .post(server.url("/v1/agent/login"))
        .json(&json!({"email": tenant.email, "password": tenant.password}))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    server.stop().await;
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_account_and_pending_sessions_are_short() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("guess").await;
    // Set the factor up once, through the helper.
    drop(server.agent(&tenant).await);

    let (pending, body) = password_only(&server, &tenant).await;
    assert_eq!(body["stage"], "mfa");
    assert!(
        body.get("agent").is_none(),
        "no account details before the code: {body}"
    );
    let mut statuses = Vec::new();
    for guess in 0..8 {
        let code = format!("{:06}", 100_000 + guess);
        let (status, _, _) = pending
            .post_raw("/v1/agent/login/mfa", json!({"code": code}))
            .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(
        statuses[5..].iter().all(|s| *s == 429),
        "guessing is throttled: {statuses:?}"
    );
    // A second password-only session of the same account is throttled too.
    let (other, _) = password_only(&server, &tenant).await;
    let (status, _, _) = other
        .post_raw("/v1/agent/login/mfa", json!({"code": "123456"}))
        .await;
    assert_eq!(status, 429);

    // The pending session's cookie lives minutes, not the full session time.
    let (_, _, cookie) = server.login_raw(&tenant.email, &tenant.password).await;
    assert!(!cookie.is_empty());
    let resp = server
        .http
        .post(server.url("/v1/agent/login"))
        .json(&json!({"email": tenant.email, "password": tenant.password}))
        .send()
        .await
        .expect("sent");
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(set_cookie.contains("Max-Age=300"), "{set_cookie}");
    server.stop().await;
}

#[tokio::test]
async fn setting_up_the_factor_ends_every_password_only_session() {
    let server = TestServer::start(palisade_store::Backend::Sqlite).await;
    let tenant = server.seed_tenant("takeover").await;
    let (victim, _) = password_only(&server, &tenant).await;
    let (intruder, _) = password_only(&server, &tenant).await;
    // A password-only session may not sign the account out everywhere.
    let (status, _) = intruder.post("/v1/agent/sessions/end-all", json!({})).await;
    assert_eq!(status, 403);

    let (_, enrolment) = victim.post("/v1/agent/mfa/enroll", json!({})).await;
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    let totp = Totp::from_base32(&secret).expect("base32");
    let (status, confirmed, _) = victim
        .post_raw(
            "/v1/agent/mfa/confirm",
            json!({"code": totp.code_at(now_secs())}),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let (status, _) = intruder.get("/v1/agent/me").await;
    assert_eq!(status, 401, "the other password-only session is gone");

    // The secret is stored sealed, never as the base32 the app was shown.
    let url = server.database_url.clone();
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("db");
    let rows = sqlx::query("SELECT secret FROM mfa_totp")
        .fetch_all(&mut conn)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let stored: String = sqlx::Row::get(&rows[0], "secret");
    assert!(
        !stored.contains(&secret),
        "the second-factor secret is sealed at rest"
    );
    server.stop().await;
}
