//! Partners over mutual TLS with certificates from Palisade's own PKI: the
//! S2S API with a valid certificate; refusals of no certificate, an expired
//! one, a revoked one (new handshake and an open connection), a foreign CA's
//! and another tenant's ids, each audited with the serial; renewal with a
//! CSR; the admin routes; server certificate hot reload under traffic.

use crate::support::{TestServer, next_of_type, on_each_backend};
use palisade::pkicmd::{self, PkiCommand};
use palisade_pki::partner::{IssuingCa, PartnerIdentity};
use palisade_store::Backend;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server looks for revocations and replaced files this often in tests.
const FAST_WATCH: &[(&str, &str)] = &[("PALISADE_PKI__WATCH_INTERVAL_MS", "100")];

fn config(server: &TestServer) -> palisade::config::Config {
    crate::support::test_config(&server.data_dir, &server.database_url, FAST_WATCH)
}

async fn pki(server: &TestServer, command: PkiCommand) -> String {
    let init = matches!(command, PkiCommand::Init);
    let printed = pkicmd::run(&config(server), command)
        .await
        .expect("pki command succeeds");
    if init {
        // The running server finds the new PKI at its next watch tick; clients that
        // connect after that are asked for a certificate.
        for _ in 0..100 {
            if server.running.state.partners.ca().is_some() {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return printed;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server never loaded the new partner PKI");
    }
    printed
}

/// A partner's certificate and key files, as `palisade pki issue-partner` wrote them.
struct PartnerFiles {
    cert: PathBuf,
    key: PathBuf,
    serial: String,
}

async fn issue(server: &TestServer, tenant: &str, partner: &str) -> PartnerFiles {
    let out_dir = crate::support::temp_dir("partner");
    let command = PkiCommand::IssuePartner {
        tenant: tenant.into(),
        partner: partner.into(),
        days: None,
        out_dir: out_dir.clone(),
    };
    let printed = pki(server, command).await;
    let serial = printed
        .split_whitespace()
        .nth(2)
        .expect("the serial is printed")
        .to_owned();
    PartnerFiles {
        cert: out_dir.join(format!("{partner}.pem")),
        key: out_dir.join(format!("{partner}-key.pem")),
        serial,
    }
}

/// A TLS client configuration presenting `cert_pem` (leaf, intermediate) and `key_pem`.
fn identity_tls(server: &TestServer, cert_pem: &str, key_pem: &str) -> rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
    let base = server.client_tls();
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&server.running.ca_cert_path).expect("server CA");
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA")).expect("root");
    }
    drop(base);
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client identity")
}

fn client(tls: rustls::ClientConfig) -> reqwest::Client {
    let mut tls = tls;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn partner_client(server: &TestServer, files: &PartnerFiles) -> reqwest::Client {
    let cert = std::fs::read_to_string(&files.cert).expect("cert file");
    let key = std::fs::read_to_string(&files.key).expect("key file");
    client(identity_tls(server, &cert, &key))
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let url = server.url(path);
    let req = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url).json(&body.unwrap_or(json!({}))),
    };
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// Waits until the listener accepts `client`'s certificate on an S2S route.
async fn until_accepted(client: &reqwest::Client, server: &TestServer) {
    for _ in 0..100 {
        if let Ok((200, _)) = call(client, server, "GET", "/s2s/v1/conversations", None).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = call(client, server, "GET", "/s2s/v1/conversations", None).await;
    panic!("the partner certificate was never accepted: {last:?}");
}

/// Waits until a request with `client` fails its handshake.
async fn until_refused(client: &reqwest::Client, server: &TestServer) {
    for _ in 0..100 {
        if call(client, server, "GET", "/s2s/v1/conversations", None)
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = call(client, server, "GET", "/s2s/v1/conversations", None).await;
    panic!("the certificate was still accepted after 10 s: {last:?}");
}

/// Waits for an audit entry of `action` whose target names `serial`.
async fn until_audited(server: &TestServer, action: &str, serial: &str) -> String {
    let store = server.running.state.chat.store();
    for _ in 0..100 {
        let records = store.audit_records(0, 100_000).await.expect("audit");
        if let Some(found) = records
            .iter()
            .find(|r| r.action == action && (r.target.contains(serial) || r.actor_id == serial))
        {
            return found.target.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {action} audit entry for {serial}");
}

async fn issuing_ca(server: &TestServer) -> IssuingCa {
    let store = server.running.state.chat.store().clone();
    let (_, vault) = palisade::app::open_auditor(&config(server), store.clone(), "test")
        .await
        .expect("vault");
    let access = palisade::app::system_access("pki", "test issues an odd certificate", "test");
    pkicmd::load_issuing(&store, &vault, &access)
        .await
        .expect("loaded")
        .expect("the PKI exists")
}

async fn tenant_id(server: &TestServer, slug: &str) -> String {
    let store = server.running.state.chat.store();
    let found = store.tenant_by_slug(slug).await.expect("lookup");
    found.expect("tenant").as_str().to_owned()
}

#[tokio::test]
async fn partner_certificate_opens_the_s2s_api_of_its_tenant_only() {
    on_each_backend(|backend| async move { s2s_flow(backend).await }).await;
}

async fn s2s_flow(backend: Backend) {
    let server = TestServer::start_with_env(backend, FAST_WATCH).await;
    let acme = server.seed_tenant("acme").await;
    let other = server.seed_tenant("other").await;
    pki(&server, PkiCommand::Init).await;
    let files = issue(&server, "acme", "crm").await;
    let partner = partner_client(&server, &files);
    until_accepted(&partner, &server).await;

    // No certificate: a clear 401 on S2S routes.
    let (status, body) = server.get("/s2s/v1/conversations", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("client certificate"), "{body}");

    // A partner certificate is no credential anywhere else.
    for path in ["/v1/agent/conversations", "/v1/admin/partners/certificates"] {
        let (status, _) = call(&partner, &server, "GET", path, None)
            .await
            .expect("sent");
        assert_eq!(status, 401, "{path}");
    }

    // Operations on its own tenant, fanned out live to the tenant's agents.
    let (_, acme_conversation) = server.visitor(&acme).await;
    let agent = server.agent(&acme).await;
    let mut agent_ws = agent.ws().await;
    let path = format!("/s2s/v1/conversations/{acme_conversation}/messages");
    let send = json!({"client_msg_id": "m-1", "body": "Your order shipped", "author": "bot", "name": "Shop Bot"});
    let (status, ack) = call(&partner, &server, "POST", &path, Some(send))
        .await
        .expect("sent");
    assert_eq!(status, 201, "{ack}");
    let frame = next_of_type(&mut agent_ws, "message").await;
    assert_eq!(frame["message"]["author_name"], "Shop Bot", "{frame}");
    let note = json!({"client_msg_id": "m-2", "body": "Ticket 12 opened", "author": "system"});
    let (status, _) = call(&partner, &server, "POST", &path, Some(note))
        .await
        .expect("sent");
    assert_eq!(status, 201);
    let (status, transcript) = call(&partner, &server, "GET", &path, None)
        .await
        .expect("sent");
    assert_eq!(status, 200, "{transcript}");
    let messages = transcript["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{transcript}");
    assert_eq!(messages[1]["author_id"], "system:crm");

    let (status, listed) = call(&partner, &server, "GET", "/s2s/v1/conversations", None)
        .await
        .expect("sent");
    assert_eq!(status, 200);
    let visitor_id = listed["conversations"][0]["visitor_id"]
        .as_str()
        .expect("visitor")
        .to_owned();
    let (status, visitor) = call(
        &partner,
        &server,
        "GET",
        &format!("/s2s/v1/visitors/{visitor_id}"),
        None,
    )
    .await
    .expect("sent");
    assert_eq!(status, 200, "{visitor}");
    assert_eq!(visitor["name"], "Ann");
    let (status, created) = call(
        &partner,
        &server,
        "POST",
        "/s2s/v1/conversations",
        Some(json!({"visitor_id": visitor_id})),
    )
    .await
    .expect("sent");
    assert_eq!(status, 201, "{created}");
    let (_, me) = agent.get("/v1/agent/me").await;
    let agent_id = me["id"]
        .as_str()
        .or(me["agent"]["id"].as_str())
        .expect("agent id")
        .to_owned();
    let assign = format!("/s2s/v1/conversations/{acme_conversation}/assign");
    let (status, assigned) = call(
        &partner,
        &server,
        "POST",
        &assign,
        Some(json!({"agent_id": agent_id})),
    )
    .await
    .expect("sent");
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["status"], "assigned");
    let close = format!("/s2s/v1/conversations/{acme_conversation}/close");
    let (status, closed) = call(&partner, &server, "POST", &close, None)
        .await
        .expect("sent");
    assert_eq!((status, closed["status"].as_str()), (200, Some("closed")));

    // The change feed pages with a cursor and ends empty.
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/s2s/v1/changes?limit=1&cursor={c}"),
            None => "/s2s/v1/changes?limit=1".into(),
        };
        let (status, page) = call(&partner, &server, "GET", &path, None)
            .await
            .expect("sent");
        assert_eq!(status, 200, "{page}");
        let n = page["conversations"].as_array().expect("list").len();
        if n == 0 {
            break;
        }
        seen += n;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 2, "both conversations of acme, none of other");

    // Another tenant's conversation is not found, and the refusal is audited.
    let (_, foreign) = server.visitor(&other).await;
    let path = format!("/s2s/v1/conversations/{foreign}/messages");
    let (status, _) = call(&partner, &server, "GET", &path, None)
        .await
        .expect("sent");
    assert_eq!(status, 404);
    let target = until_audited(&server, "partner.refused", &files.serial).await;
    assert!(target.contains(&foreign), "{target}");

    // The access log names the serial (checked through the metric-free path: the
    // connection info carries it; see the log test for the field itself).
    server.stop().await;
}

#[tokio::test]
async fn expired_foreign_and_revoked_certificates_fail_the_handshake_and_are_audited() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let acme = tenant_id(&server, "acme").await;
    let identity = PartnerIdentity::new(&acme, "crm").expect("identity");

    // Expired: issued by the right CA, but its days are over.
    let ca = issuing_ca(&server).await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    let expired = ca
        .issue(&identity, time::Duration::days(1), past)
        .expect("issued");
    let key = expired.key_pem.as_ref().expect("key").expose().to_owned();
    let valid = partner_client(&server, &issue(&server, "acme", "crm").await);
    until_accepted(&valid, &server).await;
    let expired_client = client(identity_tls(&server, &expired.cert_pem, &key));
    assert!(
        call(
            &expired_client,
            &server,
            "GET",
            "/s2s/v1/conversations",
            None
        )
        .await
        .is_err()
    );
    let target = until_audited(&server, "partner.tls_refused", &expired.serial).await;
    assert!(target.to_lowercase().contains("expired"), "{target}");

    // A foreign CA with the same identity.
    let foreign = palisade_pki::partner::create_hierarchy(time::OffsetDateTime::now_utc())
        .expect("foreign CA");
    let foreign_ca = IssuingCa::load(
        &foreign.intermediate.cert_pem,
        &foreign.intermediate.key_pem,
    )
    .expect("load");
    let forged = foreign_ca
        .issue(
            &identity,
            time::Duration::days(5),
            time::OffsetDateTime::now_utc(),
        )
        .expect("issued");
    let forged_key = forged.key_pem.as_ref().expect("key").expose().to_owned();
    let forged_client = client(identity_tls(&server, &forged.cert_pem, &forged_key));
    assert!(
        call(
            &forged_client,
            &server,
            "GET",
            "/s2s/v1/conversations",
            None
        )
        .await
        .is_err()
    );
    until_audited(&server, "partner.tls_refused", &forged.serial).await;

    // Revoked with the CLI: an open connection is closed, a new handshake fails.
    let files = issue(&server, "acme", "billing").await;
    let cert = std::fs::read_to_string(&files.cert).expect("cert");
    let key = std::fs::read_to_string(&files.key).expect("key");
    let tls = Arc::new(identity_tls(&server, &cert, &key));
    let mut open = raw_connection(&server, tls.clone()).await;
    assert_eq!(raw_get(&mut open, "/s2s/v1/conversations").await, Some(200));
    let live = &server.running.state.partners.live;
    assert_eq!(
        live.count(&files.serial),
        1,
        "the open connection is registered"
    );
    pki(
        &server,
        PkiCommand::Revoke {
            serial: files.serial.clone(),
        },
    )
    .await;

    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), open.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the open connection was closed: {closed:?}"
    );
    until_refused(&client((*tls).clone()), &server).await;
    let target = until_audited(&server, "partner.tls_refused", &files.serial).await;
    assert!(target.to_lowercase().contains("revoked"), "{target}");
    // The other partner certificate still works.
    let (status, _) = call(&valid, &server, "GET", "/s2s/v1/conversations", None)
        .await
        .expect("sent");
    assert_eq!(status, 200);
    server.stop().await;
}

type RawTls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn raw_connection(server: &TestServer, tls: Arc<rustls::ClientConfig>) -> RawTls {
    let tcp = tokio::net::TcpStream::connect(server.running.public_addr())
        .await
        .expect("tcp");
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .expect("handshake")
}

/// One HTTP/1.1 keep-alive GET on an open connection: the status, or `None` when it broke.
async fn raw_get(stream: &mut RawTls, path: &str) -> Option<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let head = &text[..head_end];
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if got.len() >= head_end + 4 + length {
                return head.split_whitespace().nth(1)?.parse().ok();
            }
        }
    }
}

#[tokio::test]
async fn renewal_with_a_csr_keeps_the_identity_and_survives_revoking_the_old_certificate() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let files = issue(&server, "acme", "crm").await;
    let old = partner_client(&server, &files);
    until_accepted(&old, &server).await;

    // The CSR asks for another identity; it is ignored.
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(vec!["evil.example".to_owned()]).expect("params");
    params.subject_alt_names.push(rcgen::SanType::URI(
        "urn:palisade:partner:other:x".try_into().expect("uri"),
    ));
    let csr = params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem");
    let (status, bad) = call(
        &old,
        &server,
        "POST",
        "/s2s/v1/certificate/renew",
        Some(json!({"csr_pem": "not a csr"})),
    )
    .await
    .expect("sent");
    assert_eq!(status, 400, "{bad}");
    let (status, renewed) = call(
        &old,
        &server,
        "POST",
        "/s2s/v1/certificate/renew",
        Some(json!({"csr_pem": csr})),
    )
    .await
    .expect("sent");
    assert_eq!(status, 201, "{renewed}");
    let new_serial = renewed["serial"].as_str().expect("serial").to_owned();
    let new_pem = renewed["certificate_pem"].as_str().expect("pem").to_owned();
    let presented = {
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(new_pem.as_bytes()).expect("der");
        palisade_pki::partner::presented(&der).expect("an identity")
    };
    assert_eq!(presented.identity.partner(), "crm");
    assert_eq!(
        presented.identity.tenant_id(),
        tenant_id(&server, "acme").await
    );
    until_audited(&server, "partner.certificate.renew", &new_serial).await;

    let new = client(identity_tls(&server, &new_pem, &key.serialize_pem()));
    until_accepted(&new, &server).await;
    pki(
        &server,
        PkiCommand::Revoke {
            serial: files.serial.clone(),
        },
    )
    .await;
    until_refused(&old, &server).await;
    let (status, _) = call(&new, &server, "GET", "/s2s/v1/conversations", None)
        .await
        .expect("sent");
    assert_eq!(status, 200, "the renewed certificate still works");
    server.stop().await;
}

#[tokio::test]
async fn root_key_is_exported_then_removed_and_partner_list_shows_expiry() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let again = pki(&server, PkiCommand::Init).await;
    assert!(again.contains("already exists"), "{again}");
    let dir = crate::support::temp_dir("rootkey");
    let out = dir.join("root-key.pem");
    pki(&server, PkiCommand::ExportRootKey { out: out.clone() }).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let wrong = dir.join("wrong.pem");
    std::fs::write(
        &wrong,
        rcgen::KeyPair::generate().expect("key").serialize_pem(),
    )
    .expect("write");
    let refused = pkicmd::run(
        &config(&server),
        PkiCommand::RemoveRootKey { exported: wrong },
    )
    .await;
    assert!(refused.is_err(), "a file without the root key is refused");
    pki(
        &server,
        PkiCommand::RemoveRootKey {
            exported: out.clone(),
        },
    )
    .await;
    let gone = pkicmd::run(
        &config(&server),
        PkiCommand::ExportRootKey {
            out: dir.join("again.pem"),
        },
    )
    .await;
    assert!(gone.is_err(), "the vault no longer holds the root key");
    let no_plain_key = std::fs::read_dir(server.data_dir.join("tls"))
        .expect("dir")
        .count();
    assert_eq!(
        no_plain_key, 4,
        "only the server's own four TLS files are on disk"
    );

    // Issuing still works without the root key.
    let files = issue(&server, "acme", "crm").await;
    let listed = pki(
        &server,
        PkiCommand::List {
            tenant: Some("acme".into()),
        },
    )
    .await;
    assert!(
        listed.contains(&files.serial) && listed.contains("valid"),
        "{listed}"
    );
    assert!(listed.contains("(intermediate CA)"), "{listed}");
    server.stop().await;
}

#[tokio::test]
async fn admin_routes_issue_list_and_revoke_partner_certificates() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    let acme = server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let admin = server.agent(&acme).await;
    let (status, issued) = admin
        .post(
            "/v1/admin/partners/certificates",
            json!({"partner": "erp", "days": 3}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let (status, bad) = admin
        .post(
            "/v1/admin/partners/certificates",
            json!({"partner": "Bad Name"}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    let serial = issued["serial"].as_str().expect("serial").to_owned();
    let cert = issued["certificate_pem"].as_str().expect("cert");
    let key = issued["private_key_pem"].as_str().expect("key");
    assert!(
        issued["chain_pem"]
            .as_str()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    let partner = client(identity_tls(&server, cert, key));
    until_accepted(&partner, &server).await;

    let (status, listed) = admin.get("/v1/admin/partners/certificates").await;
    assert_eq!(status, 200, "{listed}");
    let entry = listed["certificates"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["serial"] == serial.as_str()))
        .expect("listed");
    assert_eq!(
        entry["expiring_soon"], true,
        "3 days is within the 7-day window"
    );

    let (status, _) = admin
        .post(
            &format!("/v1/admin/partners/certificates/{serial}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    until_refused(&partner, &server).await;
    let (status, _) = admin
        .post("/v1/admin/partners/certificates/00ff/revoke", json!({}))
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn server_certificate_is_reloaded_under_live_traffic_without_a_failed_request() {
    let env = [FAST_WATCH[0], ("PALISADE_LIMITS__READ_PER_ADDRESS", "off")];
    let server = TestServer::start_with_env(Backend::Sqlite, &env).await;
    let before =
        std::fs::read_to_string(server.data_dir.join("tls").join("server.pem")).expect("pem");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keep_alive = server.http.clone();
    let url = server.url("/widget/loader.js");
    let tls = server.client_tls();

    let looping = |fresh: bool| {
        let (stop, keep_alive, url, tls) =
            (stop.clone(), keep_alive.clone(), url.clone(), tls.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let http = if fresh {
                    client(tls.clone())
                } else {
                    keep_alive.clone()
                };
                match http.get(&url).send().await {
                    Ok(resp) if resp.status() == 200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let reused = looping(false);
    let fresh = looping(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pki(&server, PkiCommand::ReissueServer).await;
    let after =
        std::fs::read_to_string(server.data_dir.join("tls").join("server.pem")).expect("pem");
    assert_ne!(before, after);

    let served = leaf_serial(&after);
    let mut seen_new = false;
    for _ in 0..50 {
        if presented_serial(&server).await == served {
            seen_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok_a, failed_a) = reused.await.expect("loop");
    let (ok_b, failed_b) = fresh.await.expect("loop");
    assert!(seen_new, "new handshakes see the new certificate");
    assert_eq!(
        (failed_a, failed_b),
        (0, 0),
        "no request failed ({ok_a} + {ok_b} succeeded)"
    );
    assert!(
        ok_a > 10 && ok_b > 3,
        "traffic ran during the swap: {ok_a}, {ok_b}"
    );
    server.stop().await;
}

fn leaf_serial(pem: &str) -> String {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
    palisade_pki::partner::serial_of(&der).expect("serial")
}

async fn presented_serial(server: &TestServer) -> String {
    let tls = Arc::new(server.client_tls());
    let stream = raw_connection(server, tls).await;
    let der = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("server cert")
        .clone();
    palisade_pki::partner::serial_of(&der).expect("serial")
}

/// The `curl` examples of docs/S2S.md, run as written against a test server. Only the
/// placeholders the document names are replaced: `HOST:PORT`, `partner.pem`,
/// `partner-key.pem`, `palisade-ca.pem`, `CONVERSATION_ID`, `VISITOR_ID`.
#[tokio::test]
async fn curl_examples_in_the_s2s_doc_work_as_written() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    let acme = server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let files = issue(&server, "acme", "crm").await;
    until_accepted(&partner_client(&server, &files), &server).await;
    let (_, conversation) = server.visitor(&acme).await;
    let (_, listed) = call(
        &partner_client(&server, &files),
        &server,
        "GET",
        "/s2s/v1/conversations",
        None,
    )
    .await
    .expect("sent");
    let visitor = listed["conversations"][0]["visitor_id"]
        .as_str()
        .expect("visitor")
        .to_owned();

    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/S2S.md"))
            .expect("docs/S2S.md");
    let examples = curl_examples(&doc);
    assert!(
        examples.len() >= 6,
        "the doc has its examples: {}",
        examples.len()
    );
    let dir = files.cert.parent().expect("dir").to_path_buf();
    let host = format!("127.0.0.1:{}", server.running.public_addr().port());
    // Each block runs as a script in a scratch directory; curl fails on an HTTP error
    // through its configuration file, so the examples stay as written.
    let work = crate::support::temp_dir("curl");
    std::fs::write(work.join(".curlrc"), "silent\nshow-error\nfail-with-body\n").expect("curlrc");
    for block in &examples {
        let script = block
            .replace("HOST:PORT", &host)
            .replace("partner-key.pem", &files.key.display().to_string())
            .replace("partner.pem", &files.cert.display().to_string())
            .replace(
                "palisade-ca.pem",
                &dir.join("palisade-ca.pem").display().to_string(),
            )
            .replace("CONVERSATION_ID", &conversation)
            .replace("VISITOR_ID", &visitor);
        let cwd = work.clone();
        // curl blocks; the server runs on this test's runtime meanwhile.
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .arg("-ec")
                .arg(script)
                .current_dir(&cwd)
                .env("CURL_HOME", &cwd)
                .output()
        })
        .await
        .expect("joined")
        .expect("sh runs");
        assert!(
            output.status.success(),
            "{block}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    server.stop().await;
}

/// The text of every `sh` block of the document that runs curl.
fn curl_examples(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match (&mut block, line.trim_start()) {
            (None, "```sh") => block = Some(String::new()),
            (Some(text), "```") => {
                if text.contains("curl ") {
                    out.push(text.clone());
                }
                block = None;
            }
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[tokio::test]
async fn access_log_names_the_client_certificate_serial_and_never_the_key() {
    let sink = crate::waf::Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(move || writer.clone())
        .finish();
    // As in the WAF log test: this runtime runs the server on this thread, and a second,
    // silent dispatcher makes every callsite ask each event.
    let _guard = tracing::subscriber::set_default(subscriber);
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let files = issue(&server, "acme", "crm").await;
    let partner = partner_client(&server, &files);
    until_accepted(&partner, &server).await;
    let (status, _) = server.get("/s2s/v1/conversations", None).await;
    assert_eq!(status, 401);

    let logs = String::from_utf8_lossy(&sink.0.lock().expect("logs")).into_owned();
    let key = std::fs::read_to_string(&files.key).expect("key");
    let key_body = key.lines().nth(1).expect("a base64 line");
    assert!(
        logs.contains(&format!("\"client_cert\":\"{}\"", files.serial)),
        "{logs}"
    );
    assert!(
        logs.contains("\"client_cert\":\"null\""),
        "requests without one say null"
    );
    assert!(!logs.contains(key_body), "no key material in the logs");
    server.stop().await;
}

#[tokio::test]
async fn certificates_near_expiry_are_counted_and_alerted_at_start() {
    let server = TestServer::start_with_env(Backend::Sqlite, FAST_WATCH).await;
    server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let soon = PkiCommand::IssuePartner {
        tenant: "acme".into(),
        partner: "short".into(),
        days: Some(2),
        out_dir: crate::support::temp_dir("short"),
    };
    pki(&server, soon).await;
    issue(&server, "acme", "long").await;
    let (data_dir, database_url) = server.stop_keeping_data().await;

    // The expiry watch looks once at start, then every ten minutes.
    let server = TestServer::start_with(data_dir, database_url).await;
    let ops = server.running.ops_addr;
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = reqwest::Client::new()
            .get(format!("http://{ops}/metrics"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text");
        if metrics.contains("palisade_certificates_expiring 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("palisade_certificates_expiring 1"),
        "only the two-day certificate is within the seven-day window:\n{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_partner_subscribes_webhooks_over_s2s_and_sees_only_its_own() {
    let receiver = crate::webhooks::Receiver::start(&[]).await;
    let env: Vec<(&str, &str)> = FAST_WATCH
        .iter()
        .chain(crate::webhooks::LOOPBACK_RECEIVER)
        .copied()
        .collect();
    let server = TestServer::start_with_env(Backend::Sqlite, &env).await;
    let acme = server.seed_tenant("acme").await;
    pki(&server, PkiCommand::Init).await;
    let crm = partner_client(&server, &issue(&server, "acme", "crm").await);
    let billing = partner_client(&server, &issue(&server, "acme", "billing").await);
    until_accepted(&crm, &server).await;
    until_accepted(&billing, &server).await;

    // Without a certificate: refused like every S2S route.
    let (status, _) = server.get("/s2s/v1/webhooks", None).await;
    assert_eq!(status, 401);
    // A refused target is refused here as on the admin route.
    let refused = json!({"url": "https://10.0.0.1/hook", "events": ["message.created"]});
    let (status, body) = call(&crm, &server, "POST", "/s2s/v1/webhooks", Some(refused))
        .await
        .expect("sent");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "refused_target", "{body}");

    let hook = json!({"url": receiver.url, "events": ["message.created"]});
    let (status, created) = call(&crm, &server, "POST", "/s2s/v1/webhooks", Some(hook))
        .await
        .expect("sent");
    assert_eq!(status, 201, "{created}");
    let id = created["webhook"]["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert_eq!(created["webhook"]["partner"], "crm", "{created}");

    // Its own list has it; the other partner of the same tenant sees
    // nothing, and can neither read its deliveries nor remove it.
    let (_, listed) = call(&crm, &server, "GET", "/s2s/v1/webhooks", None)
        .await
        .expect("sent");
    assert_eq!(listed["webhooks"][0]["id"], id.as_str(), "{listed}");
    assert!(!listed.to_string().contains(&secret));
    let (_, theirs) = call(&billing, &server, "GET", "/s2s/v1/webhooks", None)
        .await
        .expect("sent");
    assert_eq!(theirs["webhooks"], json!([]), "{theirs}");
    let own = format!("/s2s/v1/webhooks/{id}");
    let deliveries = format!("{own}/deliveries");
    for (method, path) in [("GET", &deliveries), ("DELETE", &own)] {
        let (status, _) = call(&billing, &server, method, path, None)
            .await
            .expect("sent");
        assert_eq!(status, 404, "{method} {path}");
    }

    // A message the partner posts is delivered to its hook, signed.
    let (_, conversation) = server.visitor(&acme).await;
    let path = format!("/s2s/v1/conversations/{conversation}/messages");
    let send = json!({"client_msg_id": "hook-1", "body": "Order shipped", "author": "system"});
    let (status, _) = call(&crm, &server, "POST", &path, Some(send))
        .await
        .expect("sent");
    assert_eq!(status, 201);
    let hits = receiver.wait_for(1).await;
    assert!(crate::webhooks::python_verifies(&secret, &hits[0]));
    let (status, listed) = call(&crm, &server, "GET", &deliveries, None)
        .await
        .expect("sent");
    assert_eq!(status, 200, "{listed}");
    assert!(!listed["deliveries"].as_array().expect("list").is_empty());

    // Removal by its owner is audited with the certificate's serial.
    let (status, _) = call(&crm, &server, "DELETE", &own, None)
        .await
        .expect("sent");
    assert_eq!(status, 204);
    let (_, listed) = call(&crm, &server, "GET", "/s2s/v1/webhooks", None)
        .await
        .expect("sent");
    assert_eq!(listed["webhooks"], json!([]), "{listed}");
    let store = server.running.state.chat.store();
    let records = store.audit_records(0, 100_000).await.expect("audit");
    let removal = records
        .iter()
        .find(|r| r.action == "webhook.remove" && r.target == id)
        .expect("the removal is on record");
    assert_eq!(removal.actor_kind, "partner");
    receiver.stop();
}
