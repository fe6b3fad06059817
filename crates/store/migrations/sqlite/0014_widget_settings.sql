-- Widget settings: theme colour, position, pre-chat fields, business hours
-- and the away message, as one JSON document checked by
-- palisade_model::WidgetSettings before it is written. NULL means the
-- defaults. The greeting stays in its own column.

ALTER TABLE widgets ADD COLUMN settings TEXT;
ALTER TABLE widgets ADD COLUMN settings_updated_at INTEGER;

-- Private notes agents keep on a conversation. A table of their own, not a
-- kind of message: they take no place in the conversation's sequence, and
-- nothing a visitor can call reads this table. The body is sealed like a
-- message body.
CREATE TABLE notes (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    author_id        TEXT NOT NULL REFERENCES agents (id),
    body             TEXT NOT NULL,
    key_version      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX notes_conversation ON notes (tenant_id, conversation_id, created_at);
CREATE INDEX notes_key_version ON notes (tenant_id, key_version);

-- Canned responses: a tenant's ready-made replies, picked in the reply box by
-- typing /shortcut. Templates written by the tenant's admins, not messages,
-- so kept in clear.
CREATE TABLE canned_responses (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    shortcut    TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, shortcut)
);
