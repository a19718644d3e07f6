-- Library: identity (identity/). Owns connectors, API keys, the platform's
-- service-account tokens, the analytics users and the audit log.
-- Apply after: nothing (first module; ingestion, aggregation and billing follow).
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

CREATE TABLE connectors (
    id          VARCHAR(50) PRIMARY KEY,
    name        VARCHAR(200) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API keys: only a SHA-256 of the key is stored (keys are 256-bit random, so a
-- fast hash is enough); key_prefix lets an operator recognise a key in lists.
CREATE TABLE api_keys (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner       VARCHAR(100) NOT NULL,
    key_hash    BYTEA NOT NULL UNIQUE,
    key_prefix  VARCHAR(16) NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX idx_api_keys_owner ON api_keys (owner);

-- Service-account tokens the platform authenticates with when it posts billing
-- facts (`bpmc-exporter platform-token create NAME`; docs/BILLING.md). Only a
-- SHA-256 of the token is stored (tokens carry 256 random bits).
CREATE TABLE platform_tokens (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        VARCHAR(100) NOT NULL,
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);

-- Access control and audit of the analytics API (docs/ACCESS.md).

-- People who read analytics, each with one bearer token. Only a SHA-256 of the
-- token is stored (tokens carry 256 random bits, so a fast hash is enough).
-- A user of role 'user' is bound to one customer (api_keys.owner); the other
-- roles are not. Disabling keeps the row, so audit records keep their author.
CREATE TABLE users (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name         VARCHAR(100) NOT NULL UNIQUE,
    role         VARCHAR(20) NOT NULL
                 CONSTRAINT users_role_check CHECK (role IN ('admin', 'manager', 'support', 'user')),
    customer_id  VARCHAR(100),
    token_hash   BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at  TIMESTAMPTZ,
    CONSTRAINT users_customer_check CHECK ((role = 'user') = (customer_id IS NOT NULL))
);

-- One row per analytics request, allowed or denied, written before the
-- response is sent. user_name and role are copied (not only user_id) so a
-- record stays readable whatever happens to the user later. Anonymous
-- requests (no or unknown token) have NULL user columns.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id    UUID,
    user_name  VARCHAR(100),
    role       VARCHAR(20),
    method     VARCHAR(10),
    endpoint   TEXT NOT NULL,
    params     JSONB NOT NULL,
    ip         TEXT,
    reason     TEXT,
    allowed    BOOLEAN NOT NULL,
    status     INTEGER NOT NULL,
    denial     TEXT
);
CREATE INDEX idx_audit_log_at ON audit_log (at);
CREATE INDEX idx_audit_log_user_at ON audit_log (user_name, at);

-- The audit log is append-only for the application: UPDATE and TRUNCATE fail,
-- and so does DELETE, except of rows older than the retention the deleting
-- transaction declares in the setting bpmc.audit_retention_days (PruneAuditLog
-- sets it with SET LOCAL; docs/ACCESS.md "Retention"). An operator who must
-- prune it otherwise drops the triggers knowingly.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    days int;
BEGIN
    IF TG_OP = 'DELETE' THEN
        days := nullif(current_setting('bpmc.audit_retention_days', true), '')::int;
        IF days IS NOT NULL AND days > 0 AND OLD.at < now() - make_interval(days => days) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
