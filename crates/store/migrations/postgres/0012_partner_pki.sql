-- The partner PKI: the public certificates of the root and intermediate CAs
-- (their keys live in the vault), and every partner client certificate the
-- intermediate issued, with its identity, validity and revocation. The CRL
-- is built from the revoked rows.

CREATE TABLE pki_authorities (
    name        TEXT PRIMARY KEY CHECK (name IN ('root', 'intermediate')),
    cert_pem    TEXT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE partner_certificates (
    serial       TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    partner      TEXT NOT NULL,
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    revoked_at   BIGINT,
    -- The certificate this one renewed, if it came from a renewal.
    renewed_from TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX partner_certificates_tenant ON partner_certificates (tenant_id, not_after);
CREATE INDEX partner_certificates_revoked ON partner_certificates (revoked_at);
