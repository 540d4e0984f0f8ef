//! Reading and writing domain values as rows. Every query the backend runs is
//! here, as a function over a plain connection, so reads and the writer
//! thread share them.

use std::collections::BTreeSet;

use laissez_core::audit::{AuditEvent, AuditRecord, GENESIS_HASH, Head, Outcome};
use laissez_core::credential::{Credential, Settings};
use laissez_core::{
    Name, Permission, Policy, PolicySet, Principal, PrincipalKind, Restriction, Role, Scope,
    Status, Ttl,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::exec;

use crate::{Caller, Error, StoredCredential};

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {detail}"))
}

const PRINCIPAL_COLUMNS: &str =
    "id, kind, name, owner_id, parent_id, status, description, created_at";

fn principal_row(row: &Row<'_>) -> rusqlite::Result<Result<Principal, Error>> {
    let kind: String = row.get(1)?;
    let name: String = row.get(2)?;
    let status: String = row.get(5)?;
    let build = || -> Result<Principal, Error> {
        Ok(Principal {
            id: row.get(0)?,
            kind: PrincipalKind::parse(&kind).map_err(|e| corrupt("principal kind", e))?,
            name: Name::parse(&name, "principal name").map_err(|e| corrupt("principal name", e))?,
            owner_id: row.get(3)?,
            parent_id: row.get(4)?,
            status: Status::parse(&status).ok_or_else(|| corrupt("principal status", &status))?,
            description: row.get(6)?,
            created_at: row.get(7)?,
        })
    };
    Ok(build())
}

pub fn insert_principal(conn: &Connection, p: &Principal) -> Result<(), Error> {
    exec(
        conn,
        &format!(
            "INSERT INTO principals ({PRINCIPAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ),
        params![
            p.id,
            p.kind.as_str(),
            p.name.as_str(),
            p.owner_id,
            p.parent_id,
            p.status.as_str(),
            p.description,
            p.created_at
        ],
    )
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => {
            Error::Conflict(format!("a principal named '{}' already exists", p.name))
        }
        other => other,
    })?;
    Ok(())
}

/// The principal with this id or, failing that, this name. Ids and names share
/// an alphabet, so one principal's name may equal another's id: the id wins.
pub fn principal(conn: &Connection, id_or_name: &str) -> Result<Option<Principal>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = ?1 OR name = ?1 ORDER BY id = ?1 DESC LIMIT 1"
    ))?;
    stmt.query_row([id_or_name], principal_row)
        .optional()?
        .transpose()
}

fn principal_by_id(conn: &Connection, id: &str) -> Result<Option<Principal>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE id = ?1"
    ))?;
    stmt.query_row([id], principal_row).optional()?.transpose()
}

pub fn principals(conn: &Connection) -> Result<Vec<Principal>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], principal_row)?;
    rows.map(|r| r?).collect()
}

/// Walks `parent_id` links up to the human, then returns them human first.
pub fn chain(conn: &Connection, id: &str) -> Result<Vec<Principal>, Error> {
    let mut chain = Vec::new();
    let mut next = Some(id.to_owned());
    while let Some(id) = next {
        if chain.len() > 16 {
            return Err(corrupt(
                "delegation chain",
                "longer than 16 links (a cycle?)",
            ));
        }
        let p = principal_by_id(conn, &id)?.ok_or_else(|| Error::NotFound {
            what: "principal",
            key: id.clone(),
        })?;
        next = p.parent_id.clone();
        chain.push(p);
    }
    chain.reverse();
    Ok(chain)
}

/// Moves a service or agent (and the tasks it runs) to a new owner.
pub fn set_owner(conn: &Connection, id: &str, owner_id: &str) -> Result<(), Error> {
    let n = exec(
        conn,
        "UPDATE principals SET owner_id = ?2, parent_id = ?2 \
         WHERE id = ?1 AND kind IN ('service', 'agent')",
        params![id, owner_id],
    )?;
    if n == 0 {
        return Err(Error::NotFound {
            what: "service or agent",
            key: id.to_owned(),
        });
    }
    exec(
        conn,
        "UPDATE principals SET owner_id = ?2 WHERE parent_id = ?1 AND kind = 'task'",
        params![id, owner_id],
    )?;
    Ok(())
}

pub fn set_status(conn: &Connection, id: &str, status: Status) -> Result<(), Error> {
    let n = exec(
        conn,
        "UPDATE principals SET status = ?2 WHERE id = ?1",
        params![id, status.as_str()],
    )?;
    if n == 0 {
        return Err(Error::NotFound {
            what: "principal",
            key: id.to_owned(),
        });
    }
    Ok(())
}

const CREDENTIAL_COLUMNS: &str = "id, secret_hash, kind, prefix, last4, principal_id, role, scope, allowed_ips, \
     description, created_at, expires_at, last_used_at, revoked_at, permissions";

fn credential_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredCredential, Error>> {
    let hash: String = row.get(1)?;
    let role: Option<String> = row.get(6)?;
    let scope: Option<String> = row.get(7)?;
    let ips: String = row.get(8)?;
    let permissions: Option<String> = row.get(14)?;
    let build = || -> Result<StoredCredential, Error> {
        let mut secret_hash = [0u8; 32];
        hex::decode_to_slice(&hash, &mut secret_hash).map_err(|e| corrupt("credential hash", e))?;
        Ok(StoredCredential {
            secret_hash,
            credential: Credential {
                id: row.get(0)?,
                kind: row.get(2)?,
                prefix: row.get(3)?,
                last4: row.get(4)?,
                principal_id: row.get(5)?,
                restriction: Restriction {
                    role: role
                        .map(|r| Name::parse(&r, "role"))
                        .transpose()
                        .map_err(|e| corrupt("credential role", e))?,
                    scope: scope
                        .map(|s| Scope::parse(&s))
                        .transpose()
                        .map_err(|e| corrupt("credential scope", e))?,
                    permissions: permissions
                        .map(|text| listed_permissions(&text))
                        .transpose()?,
                },
                allowed_ips: serde_json::from_str(&ips)
                    .map_err(|e| corrupt("credential allowed_ips", e))?,
                description: row.get(9)?,
                created_at: row.get(10)?,
                expires_at: row.get(11)?,
                last_used_at: row.get(12)?,
                revoked_at: row.get(13)?,
            },
        })
    };
    Ok(build())
}

/// The permissions a credential is limited to, as stored: a JSON array of names.
fn listed_permissions(text: &str) -> Result<BTreeSet<Permission>, Error> {
    let names: Vec<String> =
        serde_json::from_str(text).map_err(|e| corrupt("credential permissions", e))?;
    names
        .iter()
        .map(|name| Permission::parse(name).map_err(|e| corrupt("credential permissions", e)))
        .collect()
}

pub fn insert_credential(
    conn: &Connection,
    c: &Credential,
    secret_hash: &[u8; 32],
) -> Result<(), Error> {
    exec(
        conn,
        &format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            c.id,
            hex::encode(secret_hash),
            c.kind,
            c.prefix,
            c.last4,
            c.principal_id,
            c.restriction.role.as_ref().map(|r| r.as_str()),
            c.restriction.scope.as_ref().map(|s| s.to_string()),
            serde_json::to_string(&c.allowed_ips).unwrap_or_else(|_| "[]".into()),
            c.description,
            c.created_at,
            c.expires_at,
            c.last_used_at,
            c.revoked_at,
            c.restriction.permissions.as_ref().map(|listed| {
                serde_json::to_string(&listed.iter().map(Permission::as_str).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into())
            })
        ],
    )?;
    Ok(())
}

pub fn credential_by_hash(
    conn: &Connection,
    secret_hash: &[u8; 32],
) -> Result<Option<StoredCredential>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE secret_hash = ?1"
    ))?;
    stmt.query_row([hex::encode(secret_hash)], credential_row)
        .optional()?
        .transpose()
}

pub fn caller(conn: &Connection, secret_hash: &[u8; 32]) -> Result<Option<Caller>, Error> {
    let Some(stored) = credential_by_hash(conn, secret_hash)? else {
        return Ok(None);
    };
    let chain = chain(conn, &stored.credential.principal_id)?;
    Ok(Some(Caller { stored, chain }))
}

pub fn credential(conn: &Connection, id: &str) -> Result<Option<Credential>, Error> {
    Ok(stored_credential(conn, id)?.map(|s| s.credential))
}

pub fn stored_credential(conn: &Connection, id: &str) -> Result<Option<StoredCredential>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?1"
    ))?;
    stmt.query_row([id], credential_row).optional()?.transpose()
}

pub fn credentials(
    conn: &Connection,
    principal_id: Option<&str>,
) -> Result<Vec<Credential>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE ?1 IS NULL OR principal_id = ?1 ORDER BY created_at DESC, id"
    ))?;
    let rows = stmt.query_map([principal_id], credential_row)?;
    rows.map(|r| Ok(r??.credential)).collect()
}

fn must_change(n: usize, id: &str) -> Result<(), Error> {
    if n == 0 {
        return Err(Error::NotFound {
            what: "credential",
            key: id.to_owned(),
        });
    }
    Ok(())
}

pub fn roll_credential(conn: &Connection, id: &str, rolled: &crate::Rolled) -> Result<(), Error> {
    let existing = credential(conn, id)?.ok_or_else(|| Error::NotFound {
        what: "credential",
        key: id.to_owned(),
    })?;
    if existing.revoked_at.is_some() {
        return Err(Error::Conflict(format!(
            "credential '{id}' is revoked; create a new one instead"
        )));
    }
    // Compare and swap: only the secret the caller saw is replaced, so of
    // concurrent rolls exactly one wins (the writer runs them one by one).
    let n = exec(
        conn,
        "UPDATE credentials SET secret_hash = ?2, last4 = ?3, created_at = ?4, expires_at = ?5, last_used_at = NULL
         WHERE id = ?1 AND revoked_at IS NULL AND secret_hash = ?6",
        params![
            id,
            hex::encode(rolled.secret_hash),
            rolled.last4,
            rolled.created_at,
            rolled.expires_at,
            hex::encode(rolled.replaces)
        ],
    )?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "credential '{id}' was rolled by another request at the same time; use the secret that request returned, or roll again"
        )));
    }
    Ok(())
}

pub fn revoke_credential(conn: &Connection, id: &str, at: i64) -> Result<(), Error> {
    let n = exec(
        conn,
        "UPDATE credentials SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
        params![id, at],
    )?;
    must_change(n, id)
}

pub fn touch_credential(conn: &Connection, id: &str, at: i64) -> Result<(), Error> {
    exec(
        conn,
        "UPDATE credentials SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
        params![id, at],
    )?;
    Ok(())
}

fn role_row(row: &Row<'_>) -> rusqlite::Result<Result<Role, Error>> {
    let name: String = row.get(0)?;
    let permissions: String = row.get(1)?;
    let builtin: i64 = row.get(2)?;
    let description: String = row.get(3)?;
    let build = || -> Result<Role, Error> {
        let names: Vec<String> =
            serde_json::from_str(&permissions).map_err(|e| corrupt("role permissions", e))?;
        let permissions = names
            .iter()
            .map(|p| Permission::parse(p))
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|e| corrupt("role permission", e))?;
        Ok(Role {
            name: Name::parse(&name, "role").map_err(|e| corrupt("role name", e))?,
            permissions,
            builtin: builtin != 0,
            description,
        })
    };
    Ok(build())
}

pub fn insert_role(conn: &Connection, role: &Role) -> Result<(), Error> {
    let permissions: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
    exec(
        conn,
        "INSERT INTO roles (name, permissions, builtin, description) VALUES (?1, ?2, 0, ?3)",
        params![
            role.name.as_str(),
            serde_json::to_string(&permissions).unwrap_or_default(),
            role.description
        ],
    )
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => {
            Error::Conflict(format!("a role named '{}' already exists", role.name))
        }
        other => other,
    })?;
    Ok(())
}

pub fn roles(conn: &Connection) -> Result<Vec<Role>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, permissions, builtin, description FROM roles ORDER BY name",
    )?;
    let rows = stmt.query_map([], role_row)?;
    rows.map(|r| r?).collect()
}

pub fn role(conn: &Connection, name: &str) -> Result<Option<Role>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, permissions, builtin, description FROM roles WHERE name = ?1",
    )?;
    stmt.query_row([name], role_row).optional()?.transpose()
}

fn policy_row(row: &Row<'_>) -> rusqlite::Result<Result<Policy, Error>> {
    let role: String = row.get(2)?;
    let scope: String = row.get(3)?;
    let build = || -> Result<Policy, Error> {
        Ok(Policy {
            id: row.get(0)?,
            principal_id: row.get(1)?,
            role: Name::parse(&role, "role").map_err(|e| corrupt("policy role", e))?,
            scope: Scope::parse(&scope).map_err(|e| corrupt("policy scope", e))?,
            created_at: row.get(4)?,
        })
    };
    Ok(build())
}

pub fn insert_policy(conn: &Connection, p: &Policy) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO policies (id, principal_id, role, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![p.id, p.principal_id, p.role.as_str(), p.scope.to_string(), p.created_at],
    )
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(format!(
            "the principal already holds role '{}' on '{}', or the principal or role does not exist",
            p.role, p.scope
        )),
        other => other,
    })?;
    Ok(())
}

pub fn delete_policy(conn: &Connection, id: &str) -> Result<(), Error> {
    let n = exec(conn, "DELETE FROM policies WHERE id = ?1", [id])?;
    if n == 0 {
        return Err(Error::NotFound {
            what: "policy",
            key: id.to_owned(),
        });
    }
    Ok(())
}

pub fn policies(conn: &Connection, principal_id: Option<&str>) -> Result<Vec<Policy>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, principal_id, role, scope, created_at FROM policies
         WHERE ?1 IS NULL OR principal_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([principal_id], policy_row)?;
    rows.map(|r| r?).collect()
}

pub fn policy_set(conn: &Connection, principal_ids: &[String]) -> Result<PolicySet, Error> {
    let mut all = Vec::new();
    for id in principal_ids {
        all.extend(policies(conn, Some(id))?);
    }
    Ok(PolicySet::new(roles(conn)?, all))
}

pub fn settings(conn: &Connection) -> Result<Settings, Error> {
    let mut settings = Settings::default();
    let mut stmt = conn.prepare_cached("SELECT key, value FROM settings")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (key, value) = row?;
        let ttl = || Ttl::parse(&value).map_err(|e| corrupt("setting", e));
        match key.as_str() {
            "default_ttl" => settings.default_ttl = ttl()?,
            "max_ttl" => settings.max_ttl = ttl()?,
            "require_federated_login" => settings.require_federated_login = value == "true",
            "revoke_private_leaks" => settings.revoke_private_leaks = value == "true",
            _ => {}
        }
    }
    Ok(settings)
}

pub fn set_settings(conn: &Connection, settings: &Settings) -> Result<(), Error> {
    for (key, value) in [
        ("default_ttl", settings.default_ttl.to_string()),
        ("max_ttl", settings.max_ttl.to_string()),
        (
            "require_federated_login",
            settings.require_federated_login.to_string(),
        ),
        (
            "revoke_private_leaks",
            settings.revoke_private_leaks.to_string(),
        ),
    ] {
        exec(
            conn,
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
    }
    Ok(())
}

fn head(conn: &Connection) -> Result<Option<Head>, Error> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| {
            Ok(Head {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        })
        .optional()?)
}

/// Seals `event` after the current head and appends it. Must run inside the
/// transaction of the change it records.
pub fn append_audit(conn: &Connection, event: AuditEvent, at: i64) -> Result<(), Error> {
    let (seq, prev) = match head(conn)? {
        Some(h) => (h.seq + 1, h.hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let record = event.seal(seq, at, &prev);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, chain, action, target, outcome, client_ip, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
            record.seq,
            record.at,
            serde_json::to_string(&record.chain).unwrap_or_default(),
            record.action,
            record.target,
            record.outcome.as_str(),
            record.client_ip,
            serde_json::to_string(&record.detail).unwrap_or_default(),
            record.prev_hash,
        record.hash
    ])?;
    conn.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![record.seq, record.hash])?;
    Ok(())
}

fn audit_row(row: &Row<'_>) -> rusqlite::Result<Result<AuditRecord, Error>> {
    let chain: String = row.get(2)?;
    let outcome: String = row.get(5)?;
    let detail: String = row.get(7)?;
    let build = || -> Result<AuditRecord, Error> {
        Ok(AuditRecord {
            seq: row.get(0)?,
            at: row.get(1)?,
            chain: serde_json::from_str(&chain).map_err(|e| corrupt("audit chain", e))?,
            action: row.get(3)?,
            target: row.get(4)?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("audit outcome", &outcome))?,
            client_ip: row.get(6)?,
            detail: serde_json::from_str(&detail).map_err(|e| corrupt("audit detail", e))?,
            prev_hash: row.get(8)?,
            hash: row.get(9)?,
        })
    };
    Ok(build())
}

const AUDIT_COLUMNS: &str =
    "seq, at, chain, action, target, outcome, client_ip, detail, prev_hash, hash";

pub fn audit_records(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<AuditRecord>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit as i64], audit_row)?;
    rows.map(|r| r?).collect()
}

/// Checks the whole chain. A record that cannot even be read back is reported
/// as the break rather than as an error: that is what tampering looks like.
pub fn verify_audit(conn: &Connection) -> Result<laissez_core::audit::Verification, Error> {
    use laissez_core::audit::{ChainBreak, Verification, verify};
    let head = head(conn)?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"
    ))?;
    let mut records = Vec::new();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        match audit_row(row)? {
            Ok(record) => records.push(record),
            Err(e) => {
                let seq: i64 = row.get(0)?;
                // Check the records before it on their own: they end where
                // they end, not where the stored head says the log does.
                let end = records.last().map(|r| Head {
                    seq: r.seq,
                    hash: r.hash.clone(),
                });
                let mut v = verify(records, end.as_ref());
                if v.first_break.is_none() {
                    v.first_break = Some(ChainBreak {
                        seq,
                        why: format!("it cannot be read ({e})"),
                    });
                }
                return Ok(Verification {
                    records: v.records + 1,
                    ..v
                });
            }
        }
    }
    Ok(verify(records, head.as_ref()))
}

fn decode_hash(text: &str, what: &str) -> Result<[u8; 32], Error> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).map_err(|e| corrupt(what, e))?;
    Ok(hash)
}

pub fn insert_client(
    conn: &Connection,
    client: &laissez_oauth::client::Client,
    secret_hash: Option<&[u8; 32]>,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO oauth_clients (client_id, kind, metadata, secret_hash, owner_id, created_at, principal_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            client.client_id,
            client.kind.as_str(),
            serde_json::to_string(&client.metadata).unwrap_or_default(),
            secret_hash.map(hex::encode),
            client.owner_id,
            client.created_at,
            client.principal_id
        ],
    )?;
    Ok(())
}

pub type ClientRow = (laissez_oauth::client::Client, Option<[u8; 32]>);

pub fn client(conn: &Connection, client_id: &str) -> Result<Option<ClientRow>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT client_id, kind, metadata, secret_hash, owner_id, created_at, principal_id FROM oauth_clients WHERE client_id = ?1",
    )?;
    let row = stmt
        .query_row([client_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .optional()?;
    let Some((client_id, kind, metadata, secret_hash, owner_id, created_at, principal_id)) = row
    else {
        return Ok(None);
    };
    let client = laissez_oauth::client::Client {
        client_id,
        kind: laissez_oauth::client::ClientKind::parse(&kind)
            .ok_or_else(|| corrupt("client kind", &kind))?,
        metadata: serde_json::from_str(&metadata).map_err(|e| corrupt("client metadata", e))?,
        owner_id,
        principal_id,
        created_at,
    };
    let secret_hash = secret_hash
        .map(|h| decode_hash(&h, "client secret hash"))
        .transpose()?;
    Ok(Some((client, secret_hash)))
}

pub fn revoke_access_token(
    conn: &Connection,
    jti: &str,
    expires_at: i64,
    at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (jti) DO NOTHING",
        params![jti, expires_at, at],
    )?;
    // Entries past their token's expiry protect nothing; drop them as we go.
    exec(
        conn,
        "DELETE FROM revoked_access_tokens WHERE expires_at < ?1",
        [at - 3600],
    )?;
    Ok(())
}

pub fn is_access_token_revoked(conn: &Connection, jti: &str) -> Result<bool, Error> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM revoked_access_tokens WHERE jti = ?1")?;
    Ok(stmt.exists([jti])?)
}

pub fn revoked_access_tokens(conn: &Connection, now: i64) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT jti FROM revoked_access_tokens WHERE expires_at >= ?1 ORDER BY jti",
    )?;
    let rows = stmt.query_map([now], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

/// Up to `limit` clients, oldest first, registered after `after` (the
/// `(created_at, client_id)` the previous page ended with).
pub fn clients_page(
    conn: &Connection,
    after: Option<(i64, String)>,
    limit: usize,
) -> Result<Vec<laissez_oauth::client::Client>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT client_id FROM oauth_clients
         WHERE ?1 IS NULL OR created_at > ?1 OR (created_at = ?1 AND client_id > ?2)
         ORDER BY created_at, client_id LIMIT ?3",
    )?;
    let (at, id) = match after {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids = stmt
        .query_map(params![at, id, limit], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((c, _)) = client(conn, &id)? {
            out.push(c);
        }
    }
    Ok(out)
}

pub fn clients(conn: &Connection) -> Result<Vec<laissez_oauth::client::Client>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT client_id FROM oauth_clients ORDER BY created_at, client_id")?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((c, _)) = client(conn, &id)? {
            out.push(c);
        }
    }
    Ok(out)
}

pub fn put_resource(
    conn: &Connection,
    resource: &laissez_oauth::protected::ProtectedResource,
    at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO protected_resources (resource, definition, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (resource) DO UPDATE SET definition = excluded.definition",
        params![
            resource.resource,
            serde_json::to_string(resource).unwrap_or_default(),
            at
        ],
    )?;
    Ok(())
}

pub fn resources(
    conn: &Connection,
) -> Result<Vec<laissez_oauth::protected::ProtectedResource>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT definition FROM protected_resources ORDER BY resource")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| serde_json::from_str(&r?).map_err(|e| corrupt("protected resource", e)))
        .collect()
}

pub fn set_registration(
    conn: &Connection,
    client_id: &str,
    token_hash: &[u8; 32],
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO client_registrations (client_id, token_hash) VALUES (?1, ?2)",
        params![client_id, hex::encode(token_hash)],
    )?;
    Ok(())
}

pub fn registration(conn: &Connection, client_id: &str) -> Result<Option<[u8; 32]>, Error> {
    let hash: Option<String> = conn
        .query_row(
            "SELECT token_hash FROM client_registrations WHERE client_id = ?1",
            [client_id],
            |r| r.get(0),
        )
        .optional()?;
    hash.map(|h| decode_hash(&h, "registration token hash"))
        .transpose()
}

pub fn update_client(
    conn: &Connection,
    client: &laissez_oauth::client::Client,
) -> Result<(), Error> {
    let n = exec(
        conn,
        "UPDATE oauth_clients SET metadata = ?2 WHERE client_id = ?1",
        params![
            client.client_id,
            serde_json::to_string(&client.metadata).unwrap_or_default()
        ],
    )?;
    if n == 0 {
        return Err(Error::NotFound {
            what: "client",
            key: client.client_id.clone(),
        });
    }
    Ok(())
}

pub fn delete_client(conn: &Connection, client_id: &str, now: i64) -> Result<(), Error> {
    // Disconnect times are milliseconds; the deletion itself ends every
    // token the client minted, whoever it spoke for.
    exec(
        conn,
        "INSERT INTO revoked_grants (user_id, client_id, revoked_at)
         SELECT user_id, client_id, ?2 FROM oauth_grants WHERE client_id = ?1
         ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = excluded.revoked_at",
        params![client_id, now.saturating_mul(1000).saturating_add(999)],
    )?;
    super::oauth_rows::remember_deleted_client(conn, client_id, now)?;
    exec(
        conn,
        "UPDATE oauth_grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        params![client_id, now],
    )?;
    exec(
        conn,
        "DELETE FROM client_registrations WHERE client_id = ?1",
        [client_id],
    )?;
    let n = exec(
        conn,
        "DELETE FROM oauth_clients WHERE client_id = ?1",
        [client_id],
    )?;
    if n == 0 {
        return Err(Error::NotFound {
            what: "client",
            key: client_id.to_owned(),
        });
    }
    Ok(())
}

/// Ends the oldest live sessions of `user_id` beyond `keep`, and every
/// expired one of theirs. Sessions all last as long, so the soonest to
/// expire is the oldest; within one second, the order of insertion (SQLite's
/// rowid) decides.
pub fn cap_sessions(
    conn: &Connection,
    user_id: &str,
    keep: usize,
    now: i64,
) -> Result<usize, Error> {
    let expired = exec(
        conn,
        "DELETE FROM web_sessions WHERE user_id = ?1 AND expires_at <= ?2",
        params![user_id, now],
    )?;
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let evicted = exec(
        conn,
        "DELETE FROM web_sessions WHERE user_id = ?1 AND id_hash IN (
             SELECT id_hash FROM web_sessions WHERE user_id = ?1
             ORDER BY expires_at DESC, rowid DESC LIMIT -1 OFFSET ?2)",
        params![user_id, keep],
    )?;
    Ok(expired + evicted)
}

/// The live sessions of `user_id`, newest first, as (handle, expiry); the
/// handle is the start of the cookie's hash (it names, never opens, a session).
pub fn sessions(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<(String, i64)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(id_hash, 1, 16), expires_at FROM web_sessions
         WHERE user_id = ?1 AND expires_at > ?2 ORDER BY expires_at DESC, rowid DESC",
    )?;
    let rows = stmt.query_map(params![user_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Ends the session of `user_id` named by `handle`; whether there was one.
pub fn end_session(conn: &Connection, user_id: &str, handle: &str) -> Result<bool, Error> {
    if handle.len() != 16 || !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(false);
    }
    let n = exec(
        conn,
        "DELETE FROM web_sessions WHERE user_id = ?1 AND substr(id_hash, 1, 16) = ?2",
        params![user_id, handle.to_ascii_lowercase()],
    )?;
    Ok(n > 0)
}

/// The `meta` key holding an audit stream's cursor.
pub fn stream_key(sink: &str) -> String {
    format!("audit_stream.{sink}")
}

/// An audit stream's cursor (0 when never set).
pub fn stream_cursor(conn: &Connection, key: &str) -> Result<i64, Error> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match value {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| Error::Corrupt(format!("meta.{key}"))),
    }
}

/// Sets an audit stream's cursor.
pub fn set_stream_cursor(conn: &Connection, key: &str, seq: i64) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, seq.to_string()])?;
    Ok(())
}
