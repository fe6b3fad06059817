-- Row-level security: the second wall behind the application's tenant
-- filters (PostgreSQL only; SQLite keeps the application's scoping).
--
-- Tenant-scoped queries run as the NOLOGIN role palisade_tenant (the store's
-- tenant pool does SET ROLE after connecting) inside a transaction that set
-- palisade.tenant_id. Every tenant table enables and forces RLS with a policy
-- that admits only rows of that tenant, for reading and for writing; with no
-- tenant set, current_setting(..., true) is NULL and no row matches.
--
-- The role that runs the migrations (the login role of the platform pool)
-- keeps seeing every row through a second policy naming it alone: the few
-- platform paths that span tenants (sign-in, session lookup, keyring, audit
-- chain, operator listing) run there. A superuser bypasses RLS anyway.
--
-- A later migration that adds a tenant table calls palisade_tenant_rls on it.

DO $$
BEGIN
    CREATE ROLE palisade_tenant NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- SET ROLE needs membership; a superuser has it implicitly.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
        AND NOT pg_has_role(current_user, 'palisade_tenant', 'MEMBER') THEN
        GRANT palisade_tenant TO CURRENT_USER;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO palisade_tenant', current_schema());
END
$$;

CREATE FUNCTION palisade_tenant_rls(target regclass, tenant_column name, privileges text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s '
        'USING (%I = current_setting(''palisade.tenant_id'', true)) '
        'WITH CHECK (%I = current_setting(''palisade.tenant_id'', true))',
        target, tenant_column, tenant_column);
    EXECUTE format(
        'CREATE POLICY platform_paths ON %s TO %I USING (true) WITH CHECK (true)',
        target, current_user);
    IF privileges IS NOT NULL THEN
        EXECUTE format('GRANT %s ON %s TO palisade_tenant', privileges, target);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION palisade_tenant_rls(regclass, name, text) FROM PUBLIC;

-- Tenants see and update their own row (settings); creating tenants is the
-- operator's platform path.
SELECT palisade_tenant_rls('tenants', 'id', 'SELECT, UPDATE');

SELECT palisade_tenant_rls('widgets', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('agents', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('agent_sessions', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('agent_invitations', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('api_keys', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('mfa_totp', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('mfa_recovery_codes', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('visitors', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('conversations', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('messages', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('webhook_subscriptions', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('webhook_deliveries', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('webhook_attempts', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('notes', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('canned_responses', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');
SELECT palisade_tenant_rls('partner_certificates', 'tenant_id', 'SELECT, INSERT, UPDATE, DELETE');

-- The tenant's own audit entries are readable; appending (the global hash
-- chain) is a platform path.
SELECT palisade_tenant_rls('audit_log', 'tenant_id', 'SELECT');

-- The partner PKI's CA certificates (pki_authorities) belong to no tenant:
-- nothing is granted on them. Data keys and the vault are reached only
-- through the keyring and the vault (platform paths): RLS on, nothing
-- granted to the tenant role.
SELECT palisade_tenant_rls('data_keys', 'tenant_id', NULL);
SELECT palisade_tenant_rls('vault_secrets', 'scope', NULL);
SELECT palisade_tenant_rls('vault_versions', 'scope', NULL);
