//! Encryption at rest through the real server: message text and visitor
//! details never reach the database files; the keys CLI rotates while the
//! server runs; a wrong or missing master key stops start-up.

use crate::support::*;
use palisade::keycmd::KeyCommand;
use palisade_store::Backend;
use serde_json::json;
use std::path::Path;

/// A visitor session with a distinctive name, its conversation and socket.
async fn visitor_with_name(server: &TestServer, tenant: &Tenant, name: &str) -> (String, WsStream) {
    let (status, session) = server
        .post(
            "/v1/visitor/sessions",
            json!({"widget_key": tenant.widget_key, "name": name}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let token = session["token"].as_str().expect("token").to_owned();
    let (status, conversation) = server
        .post("/v1/visitor/conversations", json!({}), Some(&token))
        .await;
    assert_eq!(status, 201, "{conversation}");
    let conversation = conversation["id"].as_str().expect("id").to_owned();
    let (ws, _) = server.visitor_ws(&token, &conversation, 0).await;
    (conversation, ws)
}

async fn send_acked(ws: &mut WsStream, client_id: &str, body: &str) {
    send_json(
        ws,
        json!({"type": "send", "client_msg_id": client_id, "body": body}),
    )
    .await;
    let ack = next_of_type(ws, "ack").await;
    assert_eq!(ack["client_msg_id"], client_id, "{ack}");
}

/// Every byte of the SQLite database, its WAL and shared-memory files.
fn sqlite_bytes(data_dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(data_dir).expect("data dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".db") {
            all.extend(std::fs::read(entry.path()).expect("database file readable"));
        }
    }
    assert!(
        !all.is_empty(),
        "no SQLite files found in {}",
        data_dir.display()
    );
    all
}

/// A plain SQL dump of the test's PostgreSQL schema, or, where `pg_dump` is
/// not installed, the raw sealed columns read with SQL.
async fn postgres_dump(database_url: &str) -> Vec<u8> {
    let (base, options) = database_url.split_once('?').expect("test url has options");
    let schema = options
        .rsplit("search_path%3D")
        .next()
        .expect("schema in url");
    let out = match std::process::Command::new("pg_dump")
        .args(["--no-owner", "--schema", schema, "--dbname", base])
        .output()
    {
        Ok(out) => out,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return raw_sealed_columns(database_url).await;
        }
        Err(err) => panic!("pg_dump did not run: {err}"),
    };
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("messages"),
        "dump holds the schema"
    );
    out.stdout
}

async fn raw_sealed_columns(database_url: &str) -> Vec<u8> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("raw connection");
    let mut all = Vec::new();
    let sql = "SELECT body AS v FROM messages UNION ALL SELECT name FROM visitors \
               UNION ALL SELECT email FROM visitors";
    for row in sqlx::query(sql)
        .fetch_all(&mut conn)
        .await
        .expect("raw columns")
    {
        let value: Option<String> = row.get("v");
        all.extend(value.unwrap_or_default().into_bytes());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn message_text_and_visitor_details_never_reach_the_database_files() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("rest").await;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let secret_text = format!("canary message {unique}");
        let secret_name = format!("Visitor{}", &unique[..12]);
        let (conversation, mut ws) = visitor_with_name(&server, &tenant, &secret_name).await;
        send_acked(&mut ws, "c-1", &secret_text).await;

        // Readers still see plaintext.
        let agent = server.agent(&tenant).await;
        let (status, history) = agent
            .get(&format!("/v1/agent/conversations/{conversation}/messages"))
            .await;
        assert_eq!(status, 200, "{history}");
        assert!(history.to_string().contains(&secret_text), "{history}");

        let stored = match backend {
            Backend::Sqlite => sqlite_bytes(&server.data_dir),
            Backend::Postgres => postgres_dump(&server.database_url).await,
        };
        assert!(
            !contains(&stored, &unique),
            "{backend:?}: message text found at rest"
        );
        assert!(
            !contains(&stored, &secret_name),
            "{backend:?}: visitor name found at rest"
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn keys_cli_rotates_while_the_server_runs_and_every_message_stays_readable() {
    on_each_backend(|backend| async move {
        let server = TestServer::start_with_env(backend, BULK_SENDS).await;
        let tenant = server.seed_tenant("rotor").await;
        let (conversation, mut ws) = visitor_with_name(&server, &tenant, "Rota").await;
        let sender = tokio::spawn(async move {
            for i in 0..60 {
                send_acked(&mut ws, &format!("c-{i}"), &format!("message number {i}")).await;
            }
        });
        // The operator commands, run in-process on the same data dir and
        // database: what `palisade keys ...` runs. (Not the binary: the
        // shared target directory's binary may belong to another checkout.)
        let config = test_config(&server.data_dir, &server.database_url, &[]);
        let cli = |command| {
            let config = config.clone();
            async move {
                palisade::keycmd::run(&config, command)
                    .await
                    .expect("keys command succeeds")
            }
        };
        let slug = || "rotor".to_owned();
        let rotated = (
            cli(KeyCommand::RotateData { tenant: slug() }).await,
            cli(KeyCommand::RotateMaster).await,
            cli(KeyCommand::RotateData { tenant: slug() }).await,
            cli(KeyCommand::Status { tenant: slug() }).await,
        );
        assert!(
            rotated.0.contains("version 2 is now active"),
            "{}",
            rotated.0
        );
        assert!(rotated.1.contains("master key rotated"), "{}", rotated.1);
        assert!(
            rotated.2.contains("version 3 is now active"),
            "{}",
            rotated.2
        );
        assert!(rotated.3.contains("version 3: active"), "{}", rotated.3);
        let store = server.running.state.audit.store();
        let actions: Vec<String> = store
            .audit_records(0, 100)
            .await
            .expect("audit readable")
            .into_iter()
            .filter(|r| r.action.starts_with("keys."))
            .map(|r| format!("{} {}", r.action, r.outcome))
            .collect();
        assert_eq!(
            actions.len(),
            6,
            "each rotation is audited before and after: {actions:?}"
        );
        sender
            .await
            .expect("every send acknowledged during rotations");

        let agent = server.agent(&tenant).await;
        let check = |history: serde_json::Value| {
            let text = history.to_string();
            for i in 0..60 {
                assert!(
                    text.contains(&format!("\"message number {i}\"")),
                    "{backend:?}: message {i} lost"
                );
            }
        };
        let path = format!("/v1/agent/conversations/{conversation}/messages?limit=100");
        let (status, history) = agent.get(&path).await;
        assert_eq!(status, 200, "{history}");
        check(history);

        // A restart reads the rotated master key from the key file.
        let (data_dir, url) = server.stop_keeping_data().await;
        let server = TestServer::start_with(data_dir, url).await;
        let agent = server.agent(&tenant).await;
        let (status, history) = agent.get(&path).await;
        assert_eq!(status, 200, "{history}");
        check(history);
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_or_missing_master_key_stops_start_up_and_no_key_is_created() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("locked").await;
        let (_, mut ws) = visitor_with_name(&server, &tenant, "Lock").await;
        send_acked(&mut ws, "c-1", "kept safe").await;
        let (data_dir, url) = server.stop_keeping_data().await;
        let key_file = data_dir.join("keys").join("master.key");
        let original = std::fs::read(&key_file).expect("master key file created at first start");

        let wrong_env = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let config = test_config(&data_dir, &url, &[("PALISADE_MASTER_KEY", wrong_env)]);
        let err = palisade::app::start(&config, None)
            .await
            .expect_err("wrong env key refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("wrong key") && text.contains("PALISADE_MASTER_KEY"),
            "{text}"
        );

        std::fs::remove_file(&key_file).expect("remove key");
        let config = test_config(&data_dir, &url, &[]);
        let err = palisade::app::start(&config, None)
            .await
            .expect_err("missing key refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("master.key") && text.contains("does not exist"),
            "{text}"
        );
        assert!(
            !key_file.exists(),
            "a new key must not be created over existing data"
        );

        std::fs::write(&key_file, [9u8; 32]).expect("write wrong key");
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        let err = palisade::app::start(&config, None)
            .await
            .expect_err("wrong key file refused");
        assert!(format!("{err:#}").contains("wrong key"), "{err:#}");

        std::fs::remove_file(&key_file).expect("remove wrong key");
        std::fs::write(&key_file, &original).expect("restore key");
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        let server = TestServer::start_with(data_dir, url).await;
        server.stop().await;
    })
    .await;
}
