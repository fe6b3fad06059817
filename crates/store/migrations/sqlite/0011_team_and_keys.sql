-- Identity and access, second part: invitations to join a tenant, tenant
-- API keys, and visitor identity verification. Tokens of invitations and
-- API keys are kept only as their SHA-256.

CREATE TABLE agent_invitations (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    email        TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    invited_by   TEXT NOT NULL REFERENCES agents (id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER
);
CREATE INDEX agent_invitations_tenant ON agent_invitations (tenant_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    created_by    TEXT NOT NULL REFERENCES agents (id),
    name          TEXT NOT NULL,
    -- The token's first characters, shown so people can tell keys apart.
    prefix        TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    -- Space-separated permission names.
    permissions   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

ALTER TABLE tenants ADD COLUMN identity_verification_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visitors ADD COLUMN verified_user_id TEXT;
