//! The schema, created on first open. Plain, portable SQL: TEXT and BIGINT
//! columns, no SQLite-only types, so the PostgreSQL backend can share it.

use rusqlite::Connection;

use crate::Error;

/// The schema version this build writes.
pub const VERSION: i64 = 11;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS principals (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    owner_id TEXT REFERENCES principals(id),
    parent_id TEXT REFERENCES principals(id),
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS principals_owner ON principals(owner_id);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last4 TEXT NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals(id),
    role TEXT,
    scope TEXT,
    allowed_ips TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT,
    permissions TEXT
);
CREATE INDEX IF NOT EXISTS credentials_principal ON credentials(principal_id);
CREATE TABLE IF NOT EXISTS roles (
    name TEXT PRIMARY KEY,
    permissions TEXT NOT NULL,
    builtin BIGINT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    id TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL REFERENCES principals(id),
    role TEXT NOT NULL REFERENCES roles(name),
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (principal_id, role, scope)
);
CREATE INDEX IF NOT EXISTS policies_principal ON policies(principal_id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    chain TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    client_ip TEXT,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    metadata TEXT NOT NULL,
    secret_hash TEXT,
    owner_id TEXT REFERENCES principals(id),
    created_at BIGINT NOT NULL,
    principal_id TEXT REFERENCES principals(id),
    last_used_at BIGINT
);
CREATE TABLE IF NOT EXISTS deleted_clients (
    client_id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS user_passwords (
    user_id TEXT PRIMARY KEY REFERENCES principals(id),
    phc TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES principals(id),
    expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS federated_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES principals(id),
    linked_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE TABLE IF NOT EXISTS login_states (
    state_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash TEXT PRIMARY KEY,
    grant_json TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    grant_json TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS oauth_refresh_family ON oauth_refresh_tokens(family_id);
CREATE TABLE IF NOT EXISTS oauth_grants (
    user_id TEXT NOT NULL REFERENCES principals(id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT,
    accounts TEXT NOT NULL DEFAULT '',
    granted_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT,
    PRIMARY KEY (user_id, client_id)
);
CREATE TABLE IF NOT EXISTS revoked_grants (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE TABLE IF NOT EXISTS protected_resources (
    resource TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS client_registrations (
    client_id TEXT PRIMARY KEY REFERENCES oauth_clients(client_id),
    token_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leak_incidents (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    token_hint TEXT NOT NULL,
    credential_id TEXT,
    principal_id TEXT,
    owner_id TEXT,
    reporter TEXT NOT NULL,
    source TEXT NOT NULL,
    url TEXT NOT NULL,
    public BIGINT NOT NULL,
    action TEXT NOT NULL,
    reported_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS leak_incidents_time ON leak_incidents(reported_at);
CREATE TABLE IF NOT EXISTS leak_signatures (
    signature_hash TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    abandoned_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(delivered_at, next_attempt_at);
CREATE TABLE IF NOT EXISTS principal_emails (
    principal_id TEXT PRIMARY KEY REFERENCES principals(id),
    email TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_shapes (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    grants TEXT NOT NULL,
    allowed_ips TEXT NOT NULL,
    UNIQUE (agent_id, client_id, grants, allowed_ips)
);
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,
    token_hash BYTEA,
    shape BIGINT NOT NULL,
    subject_id TEXT,
    parent BIGINT,
    key_thumbprint BYTEA,
    state BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    certificate_thumbprint BYTEA
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_token ON tasks(token_hash);
CREATE INDEX IF NOT EXISTS tasks_children ON tasks(parent) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks(expires_at) WHERE state >= 2;
CREATE TABLE IF NOT EXISTS digests (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    findings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS task_approvals (
    task_seq INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    reasons TEXT NOT NULL,
    ttl BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    last_poll_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
";

/// Whether `table` has `column`.
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, Error> {
    let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates missing tables and the built-in roles; refuses a newer schema.
pub fn migrate(conn: &Connection) -> Result<(), Error> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(super::cache::TRIGGERS)?;
    let stored: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .ok();
    match stored.as_deref().map(str::parse::<i64>) {
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [VERSION.to_string()],
            )?;
        }
        Some(Ok(v)) if v == VERSION => {}
        // Versions 2 to 4, 6 and 11 only added tables (and 11 the triggers
        // that version the configuration), which the batches above created; version 5 added the accounts of a grant; version 7 the
        // principal behind a client-credentials client, a client's last
        // use, and disconnect times in milliseconds.
        Some(Ok(v)) if v < VERSION => {
            if v < 5 {
                tx.execute_batch(
                    "ALTER TABLE oauth_grants ADD COLUMN accounts TEXT NOT NULL DEFAULT ''",
                )?;
            }
            if v < 7 {
                // Added only where missing, so a folder that got part of the way is still upgraded.
                for (column, definition) in [
                    ("principal_id", "TEXT REFERENCES principals(id)"),
                    ("last_used_at", "BIGINT"),
                ] {
                    if !has_column(&tx, "oauth_clients", column)? {
                        tx.execute_batch(&format!(
                            "ALTER TABLE oauth_clients ADD COLUMN {column} {definition};"
                        ))?;
                    }
                }
                tx.execute_batch(
                    "UPDATE oauth_clients SET last_used_at = created_at WHERE last_used_at IS NULL;
                     UPDATE revoked_grants SET revoked_at = revoked_at * 1000 + 999;",
                )?;
            }
            if v < 8 {
                // The outbox now also tells owners of tasks waiting for
                // their approval: what a notification is about is an
                // incident's id or a task's, so it no longer refers to incidents alone.
                tx.execute_batch(
                    "CREATE TABLE notifications_v8 (
                        id TEXT PRIMARY KEY,
                        channel TEXT NOT NULL,
                        incident_id TEXT NOT NULL,
                        attempts BIGINT NOT NULL,
                        next_attempt_at BIGINT NOT NULL,
                        delivered_at BIGINT,
                        abandoned_at BIGINT,
                        last_error TEXT,
                        created_at BIGINT NOT NULL
                    );
                    INSERT INTO notifications_v8 SELECT id, channel, incident_id, attempts, next_attempt_at,
                        delivered_at, abandoned_at, last_error, created_at FROM notifications;
                    DROP TABLE notifications;
                    ALTER TABLE notifications_v8 RENAME TO notifications;
                    CREATE INDEX IF NOT EXISTS notifications_due ON notifications(delivered_at, next_attempt_at);",
                )?;
            }
            if v < 9 && !has_column(&tx, "tasks", "certificate_thumbprint")? {
                // Tasks may be bound to a TLS client certificate (RFC 8705).
                tx.execute_batch("ALTER TABLE tasks ADD COLUMN certificate_thumbprint BYTEA;")?;
            }
            if v < 10 && !has_column(&tx, "credentials", "permissions")? {
                // Credentials may be limited to individual permissions.
                tx.execute_batch("ALTER TABLE credentials ADD COLUMN permissions TEXT;")?;
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                [VERSION.to_string()],
            )?;
        }
        Some(Ok(v)) if v > VERSION => {
            return Err(Error::Unavailable(format!(
                "the data folder was written by a newer Laissez (schema {v}, this build knows {VERSION})"
            )));
        }
        Some(_) => return Err(Error::Corrupt("meta.schema_version".into())),
    }
    for role in laissez_core::admin::builtin_roles() {
        let permissions: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
        tx.execute(
            "INSERT INTO roles (name, permissions, builtin, description) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions, description = excluded.description",
            (role.name.as_str(), serde_json::to_string(&permissions).unwrap_or_default(), &role.description),
        )?;
    }
    tx.commit()?;
    Ok(())
}
