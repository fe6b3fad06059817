-- Identity and access: the second factor, recovery codes, the stage of a
-- session (password only, second factor pending, enrolment pending, full),
-- when it last proved the second factor (for step-up), and the tenant's
-- policy for agents.

CREATE TABLE mfa_totp (
    agent_id      TEXT PRIMARY KEY REFERENCES agents (id),
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    -- Sealed with the tenant's data key (version in key_version).
    secret        TEXT NOT NULL,
    key_version   INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE mfa_recovery_codes (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    code_hash   TEXT NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (agent_id, code_hash)
);

ALTER TABLE agent_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full'
    CHECK (stage IN ('full', 'mfa', 'enroll'));
ALTER TABLE agent_sessions ADD COLUMN mfa_at INTEGER;

ALTER TABLE tenants ADD COLUMN require_agent_mfa INTEGER NOT NULL DEFAULT 0;
