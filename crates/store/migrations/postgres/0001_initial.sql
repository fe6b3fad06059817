-- Palisade's first schema. Every row of tenant data carries tenant_id, and
-- every query filters on it. Times are milliseconds since the Unix epoch.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE widgets (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    name             TEXT NOT NULL,
    public_key       TEXT NOT NULL UNIQUE,
    allowed_origins  TEXT NOT NULL,
    greeting         TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX widgets_tenant ON widgets (tenant_id);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('operator', 'owner', 'admin', 'agent')),
    password_hash  TEXT NOT NULL,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL
);
CREATE INDEX agents_tenant ON agents (tenant_id);

CREATE TABLE agent_sessions (
    token_hash    TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    agent_id      TEXT NOT NULL REFERENCES agents (id),
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions (tenant_id, agent_id);

CREATE TABLE visitors (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    widget_id   TEXT NOT NULL REFERENCES widgets (id),
    name        TEXT,
    email       TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX visitors_tenant ON visitors (tenant_id);

CREATE TABLE conversations (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    widget_id    TEXT NOT NULL REFERENCES widgets (id),
    visitor_id   TEXT NOT NULL REFERENCES visitors (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'assigned', 'closed')),
    assignee_id  TEXT REFERENCES agents (id),
    last_seq     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX conversations_tenant_updated ON conversations (tenant_id, updated_at);
CREATE INDEX conversations_visitor ON conversations (tenant_id, visitor_id);

CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq            BIGINT NOT NULL,
    client_msg_id  TEXT NOT NULL,
    author_kind    TEXT NOT NULL CHECK (author_kind IN ('visitor', 'agent', 'system')),
    author_id      TEXT,
    body           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (conversation_id, seq),
    -- A sender's own id makes its resends idempotent; two senders may pick
    -- the same id without colliding.
    UNIQUE (conversation_id, author_kind, author_id, client_msg_id)
);
