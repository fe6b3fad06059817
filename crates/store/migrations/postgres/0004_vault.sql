-- The vault: versioned secrets sealed with the owning scope's data key.
-- A scope is a tenant id, or 'platform' for Palisade's own secrets (a
-- reserved tenant row, so platform secrets get data keys like any tenant).
-- A version is never updated except to mark it superseded; values are never
-- stored unsealed.

INSERT INTO tenants (id, slug, name, created_at)
VALUES ('platform', '_platform', 'Palisade platform secrets (reserved)', 0)
ON CONFLICT DO NOTHING;

CREATE TABLE vault_secrets (
    scope            TEXT NOT NULL REFERENCES tenants (id),
    name             TEXT NOT NULL,
    policy           TEXT NOT NULL,
    current_version  BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (scope, name)
);

CREATE TABLE vault_versions (
    scope          TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        BIGINT NOT NULL,
    sealed         TEXT NOT NULL,
    key_version    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    expires_at     BIGINT,
    superseded_at  BIGINT,
    valid_until    BIGINT,
    PRIMARY KEY (scope, name, version),
    FOREIGN KEY (scope, name) REFERENCES vault_secrets (scope, name)
);
CREATE INDEX vault_versions_key ON vault_versions (scope, key_version);
