-- Accounts, issued tokens, failed sign-ins and the audit log.
-- Timestamps are RFC 3339 UTC text with whole seconds, which sorts as time does.

CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'reviewer', 'admin')),
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

-- One row per issued token; the token itself is never stored. A token is accepted only
-- while its row exists and `revoked_at` is NULL.
CREATE TABLE tokens (
    jti        TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kind       TEXT NOT NULL CHECK (kind IN ('session', 'api')),
    name       TEXT,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    issued_by  BIGINT REFERENCES accounts (id),
    revoked_at TEXT
);
CREATE INDEX tokens_kind_expires ON tokens (kind, expires_at);

-- Failed sign-ins inside the rate-limit window; older rows are deleted as new ones come.
CREATE TABLE login_failures (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    account_key TEXT NOT NULL,
    client      TEXT NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account_key, at_ms);
CREATE INDEX login_failures_client ON login_failures (client, at_ms);
CREATE INDEX login_failures_at ON login_failures (at_ms);

-- Append-only: the triggers reject every change to a written row.
CREATE TABLE audit_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT,
    channel      TEXT NOT NULL,
    client       TEXT,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    before_value TEXT,
    after_value  TEXT
);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id);

CREATE FUNCTION audit_log_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
