//! The webhook outbox on SQLite and, when PALISADE_TEST_POSTGRES_URL is
//! set, PostgreSQL: leases (a leased row is not handed out twice, and is
//! handed out again once its lease ends), tenant scoping, cancellation.

use palisade_store::testing::{backends, discard, fresh_url, memory_keys};
use palisade_store::{
    DeliveryStatus, NewWebhookDelivery, NewWebhookSubscription, Store, WebhookAttempt,
};

async fn store(backend: palisade_store::Backend) -> (Store, String) {
    let dir = std::env::temp_dir().join(format!("palisade-hooks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = fresh_url(backend, &dir).await.expect("database");
    let store = Store::connect(&url, 4, memory_keys()).await.expect("store");
    (store, url)
}

fn delivery(n: u32, subscription: &str) -> NewWebhookDelivery {
    NewWebhookDelivery {
        id: format!("d{n}-{}", uuid::Uuid::new_v4()),
        subscription_id: subscription.to_owned(),
        event_id: format!("e{n}"),
        event: "message.created".into(),
        payload: format!("{{\"n\":{n},\"body\":\"private words\"}}"),
    }
}

#[tokio::test]
async fn leases_hand_each_due_delivery_out_once_until_they_end() {
    for backend in backends() {
        let (store, url) = store(backend).await;
        let a = store.ensure_tenant("hooks-a", "A").await.expect("tenant");
        let b = store.ensure_tenant("hooks-b", "B").await.expect("tenant");
        let new = |id: &'static str| NewWebhookSubscription {
            id,
            partner: Some("crm"),
            url: "https://hooks.example/in",
            events: &["message.created"],
            secret_name: "webhook.x",
            created_by: "agent:1",
        };
        let sub = store
            .webhook_create(&a, new("sub-a"))
            .await
            .expect("created");
        assert_eq!(sub.partner.as_deref(), Some("crm"));
        store
            .webhook_create(&b, new("sub-b"))
            .await
            .expect("created");
        let rows = [delivery(1, "sub-a"), delivery(2, "sub-a")];
        store.webhook_enqueue(&a, &rows).await.expect("queued");

        let now = palisade_model::now_millis();
        let first = store
            .webhook_claim_due(now, now + 60_000, 10)
            .await
            .expect("claim");
        assert_eq!(first.len(), 2);
        assert!(first[0].payload.contains("private words"), "payload opens");
        assert_eq!(
            first[0].target.as_ref().map(|t| t.0.as_str()),
            Some("https://hooks.example/in")
        );
        // Leased: a second worker gets nothing now, both once the lease ends.
        let again = store
            .webhook_claim_due(now, now + 60_000, 10)
            .await
            .expect("claim");
        assert!(again.is_empty());
        let later = store
            .webhook_claim_due(now + 60_001, now + 120_000, 10)
            .await;
        assert_eq!(later.expect("claim").len(), 2);

        // An attempt moves a delivery on; it shows only to its tenant.
        let attempt = WebhookAttempt {
            delivery_id: &first[0].id,
            tenant_id: &a,
            attempt: 1,
            at: now,
            duration_ms: 3,
            status_code: Some(200),
            error: None,
            next_status: DeliveryStatus::Delivered,
            next_attempt_at: now,
        };
        store
            .webhook_record_attempt(attempt)
            .await
            .expect("recorded");
        let listed = store
            .webhook_deliveries(&a, "sub-a", 10)
            .await
            .expect("list");
        let listed = listed.expect("a's subscription");
        let done = listed.iter().find(|d| d.id == first[0].id).expect("listed");
        assert_eq!(done.status, DeliveryStatus::Delivered);
        assert_eq!(done.tries.len(), 1);
        assert_eq!(
            store
                .webhook_deliveries(&b, "sub-a", 10)
                .await
                .expect("list"),
            None
        );
        assert!(!store.webhook_remove(&b, "sub-a").await.expect("remove"));

        // Removing cancels what is still pending.
        assert!(store.webhook_remove(&a, "sub-a").await.expect("remove"));
        let listed = store
            .webhook_deliveries(&a, "sub-a", 10)
            .await
            .expect("list");
        let statuses: Vec<DeliveryStatus> =
            listed.expect("kept").iter().map(|d| d.status).collect();
        assert!(statuses.contains(&DeliveryStatus::Cancelled));
        assert!(statuses.contains(&DeliveryStatus::Delivered));
        let after = store
            .webhook_claim_due(now + 999_999, now + 1_000_000, 10)
            .await;
        assert!(after.expect("claim").is_empty());
        assert_eq!(store.webhook_subscriptions(&a).await.expect("list"), vec![]);
        assert_eq!(
            store.webhook_all_subscriptions().await.expect("all").len(),
            1
        );
        store.close().await;
        let _ = discard(&url).await;
    }
}
