-- Webhooks: subscriptions, the delivery outbox and every delivery attempt.
-- A subscription's signing secret lives in the vault (scope = tenant,
-- name = secret_name), never here. An outbox payload holds message text, so
-- it is sealed with the tenant's data key (version in key_version).

CREATE TABLE webhook_subscriptions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    partner      TEXT,
    url          TEXT NOT NULL,
    -- Comma-separated event names, e.g. "message.created,conversation.closed".
    events       TEXT NOT NULL,
    secret_name  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    removed_at   BIGINT
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id, removed_at);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    subscription_id  TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    event_id         TEXT NOT NULL,
    event            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    key_version      BIGINT NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt      BIGINT NOT NULL,
    tenant_id    TEXT NOT NULL,
    at           BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
