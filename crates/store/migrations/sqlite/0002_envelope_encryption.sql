-- Envelope encryption at rest. The master key lives outside the database;
-- key_check holds a marker sealed by it, so start-up detects a wrong key
-- before anything is written. data_keys holds each tenant's data keys, wrapped
-- by the master key, one version active at a time. Sealed columns carry the
-- data-key version they were sealed with; NULL marks a row written before
-- this migration, which start-up seals.

CREATE TABLE key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    master_id   TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    version     INTEGER NOT NULL CHECK (version > 0),
    wrapped     TEXT NOT NULL,
    master_id   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    PRIMARY KEY (tenant_id, version)
);
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (tenant_id) WHERE state = 'active';

ALTER TABLE messages ADD COLUMN key_version INTEGER;
ALTER TABLE visitors ADD COLUMN key_version INTEGER;
CREATE INDEX messages_key_version ON messages (tenant_id, key_version);
CREATE INDEX visitors_key_version ON visitors (tenant_id, key_version);
