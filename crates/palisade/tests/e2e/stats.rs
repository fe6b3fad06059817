//! The admin overview's numbers: conversations and the median first
//! response per UTC day, and the open backlog, over a known set of
//! conversations whose times are set in the database.

use crate::notes::colleague;
use crate::support::*;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection};

const DAY: i64 = 86_400_000;

async fn raw(server: &TestServer) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&server.database_url)
        .await
        .expect("raw connection")
}

/// Moves a conversation's start, and its agent replies to `reply_after`
/// milliseconds later.
async fn set_times(conn: &mut AnyConnection, id: &str, created: i64, reply_after: i64) {
    sqlx::query("UPDATE conversations SET created_at = $1 WHERE id = $2")
        .bind(created)
        .bind(id)
        .execute(&mut *conn)
        .await
        .expect("move conversation");
    sqlx::query(
        "UPDATE messages SET created_at = $1 WHERE conversation_id = $2 AND author_kind = 'agent'",
    )
    .bind(created + reply_after)
    .bind(id)
    .execute(&mut *conn)
    .await
    .expect("move replies");
}

async fn reply(agent: &Agent<'_>, conversation: &str) {
    let path = format!("/v1/agent/conversations/{conversation}/messages");
    let body = json!({"client_msg_id": format!("r-{conversation}"), "body": "Hello!"});
    let (status, ack) = agent.post(&path, body).await;
    assert_eq!(status, 201, "{ack}");
}

fn day(stats: &Value, index: usize) -> (i64, i64, Value) {
    let day = &stats["days"][index];
    (
        day["day_start"].as_i64().expect("day_start"),
        day["conversations"].as_i64().expect("count"),
        day["median_first_response_ms"].clone(),
    )
}

#[tokio::test]
async fn stats_count_conversations_and_median_first_reply_per_day() {
    on_each_backend(|backend| async move {
        let server = TestServer::start(backend).await;
        let tenant = server.seed_tenant("stats").await;
        let owner = server.agent(&tenant).await;

        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(server.visitor(&tenant).await.1);
        }
        let [answered_claimed, answered, waiting, closed, old] =
            <[String; 5]>::try_from(ids).expect("five");
        reply(&owner, &answered_claimed).await;
        reply(&owner, &answered).await;
        let claim = format!("/v1/agent/conversations/{answered_claimed}/claim");
        assert_eq!(owner.post(&claim, json!({})).await.0, 200);
        let close = format!("/v1/agent/conversations/{closed}/close");
        assert_eq!(owner.post(&close, json!({})).await.0, 200);

        // Another tenant's conversation counts only for that tenant.
        let other = server.seed_tenant("stats-other").await;
        server.visitor(&other).await;

        let today = palisade_model::now_millis() / DAY * DAY;
        let mut conn = raw(&server).await;
        set_times(&mut conn, &answered_claimed, today - DAY + 1_000, 60_000).await;
        set_times(&mut conn, &answered, today - DAY + 5_000, 180_000).await;
        set_times(&mut conn, &waiting, today + 1, 0).await;
        set_times(&mut conn, &closed, today - 3 * DAY + 1, 0).await;
        set_times(&mut conn, &old, today - 20 * DAY, 0).await;
        conn.close().await.expect("closed");

        let (status, stats) = owner.get("/v1/admin/stats?days=7").await;
        assert_eq!(status, 200, "{stats}");
        assert_eq!(stats["days"].as_array().map(Vec::len), Some(7));
        assert_eq!(day(&stats, 6), (today, 1, Value::Null), "today: {stats}");
        assert_eq!(
            day(&stats, 5),
            (today - DAY, 2, json!(120_000)),
            "yesterday"
        );
        assert_eq!(day(&stats, 4).1, 0);
        assert_eq!(day(&stats, 3), (today - 3 * DAY, 1, Value::Null));
        assert_eq!(day(&stats, 0).0, today - 6 * DAY);
        let total: i64 = (0..7).map(|i| day(&stats, i).1).sum();
        assert_eq!(total, 4, "the 20-day-old one is outside the window");
        assert_eq!(
            stats["backlog"],
            json!({"open_unassigned": 3, "open_assigned": 1}),
            "waiting, answered and old are open; one is claimed; one closed"
        );

        let (status, wide) = owner.get("/v1/admin/stats?days=30").await;
        assert_eq!(status, 200);
        let total: i64 = (0..30).map(|i| day(&wide, i).1).sum();
        assert_eq!(total, 5);
        let (status, default) = owner.get("/v1/admin/stats").await;
        assert_eq!(
            (status, default["days"].as_array().map(Vec::len)),
            (200, Some(14))
        );

        for bad in ["days=0", "days=91", "days=two", "window=7"] {
            let (status, answer) = owner.get(&format!("/v1/admin/stats?{bad}")).await;
            assert_eq!(status, 400, "{bad}: {answer}");
        }

        let outsider = server.agent(&other).await;
        let (status, theirs) = outsider.get("/v1/admin/stats?days=1").await;
        assert_eq!(status, 200);
        assert_eq!(day(&theirs, 0).1, 1, "only their own conversation");

        let agent = colleague(&server, "stats").await;
        assert_eq!(agent.get("/v1/admin/stats").await.0, 403);
        server.stop().await;
    })
    .await;
}
