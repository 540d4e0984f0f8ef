//! Rows of the authorization server's state: user passwords (argon2 PHC
//! strings), browser sessions, authorization codes and refresh tokens, the
//! last three stored by the SHA-256 of their secret only.
//!
//! Codes and refresh tokens are redeemed in two steps so that a failed
//! redemption changes nothing: the server reads the row ([`peek_code`],
//! [`peek_refresh`]), checks everything it must, then spends it
//! ([`redeem_code`], [`rotate_refresh`]) with a conditional update that
//! only the first of two racing requests wins. Disconnect times are kept in
//! milliseconds, so a grant made in the same second after a disconnect lives.

use laissez_oauth::grant::{AuthorizationCode, ConnectedApp, RefreshGrant, RefreshUse};
use rusqlite::{Connection, OptionalExtension, params};

use super::exec;

use crate::Error;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

pub fn set_password(conn: &Connection, user_id: &str, phc: &str, at: i64) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO user_passwords (user_id, phc, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
        params![user_id, phc, at],
    )?;
    Ok(())
}

pub fn password(conn: &Connection, user_id: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row(
            "SELECT phc FROM user_passwords WHERE user_id = ?1",
            [user_id],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn create_session(
    conn: &Connection,
    id_hash: &[u8; 32],
    user_id: &str,
    expires_at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO web_sessions (id_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![hex::encode(id_hash), user_id, expires_at],
    )?;
    Ok(())
}

pub fn session(conn: &Connection, id_hash: &[u8; 32]) -> Result<Option<(String, i64)>, Error> {
    Ok(conn
        .query_row(
            "SELECT user_id, expires_at FROM web_sessions WHERE id_hash = ?1",
            [hex::encode(id_hash)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn create_code(
    conn: &Connection,
    code_hash: &[u8; 32],
    code: &AuthorizationCode,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO oauth_codes (code_hash, grant_json, expires_at) VALUES (?1, ?2, ?3)",
        params![
            hex::encode(code_hash),
            serde_json::to_string(code).unwrap_or_default(),
            code.expires_at
        ],
    )?;
    Ok(())
}

pub fn take_code(
    conn: &Connection,
    code_hash: &[u8; 32],
    now: i64,
) -> Result<Option<(AuthorizationCode, bool)>, Error> {
    let key = hex::encode(code_hash);
    let row: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT grant_json, used_at FROM oauth_codes WHERE code_hash = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((json, used_at)) = row else {
        return Ok(None);
    };
    if used_at.is_none() {
        exec(
            conn,
            "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1",
            params![key, now],
        )?;
    }
    let code = serde_json::from_str(&json).map_err(|e| corrupt("authorization code", e))?;
    Ok(Some((code, used_at.is_some())))
}

/// The code and whether it was spent, changing nothing.
pub fn peek_code(
    conn: &Connection,
    code_hash: &[u8; 32],
) -> Result<Option<(AuthorizationCode, bool)>, Error> {
    let row: Option<(String, Option<i64>)> = conn
        .query_row(
            "SELECT grant_json, used_at FROM oauth_codes WHERE code_hash = ?1",
            [hex::encode(code_hash)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((json, used_at)) = row else {
        return Ok(None);
    };
    let code = serde_json::from_str(&json).map_err(|e| corrupt("authorization code", e))?;
    Ok(Some((code, used_at.is_some())))
}

/// Spends a code if no one has: returns whether this call spent it.
pub fn redeem_code(conn: &Connection, code_hash: &[u8; 32], now: i64) -> Result<bool, Error> {
    let changed = exec(
        conn,
        "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1 AND used_at IS NULL",
        params![hex::encode(code_hash), now],
    )?;
    Ok(changed == 1)
}

/// What a refresh token is, changing nothing: live ([`RefreshUse::Fresh`]),
/// spent ([`RefreshUse::Reused`]) or unusable.
pub fn peek_refresh(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<RefreshUse, Error> {
    let row: Option<(String, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT grant_json, used_at, revoked_at FROM oauth_refresh_tokens WHERE token_hash = ?1",
            [hex::encode(token_hash)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((json, used_at, revoked_at)) = row else {
        return Ok(RefreshUse::Invalid);
    };
    let grant: RefreshGrant =
        serde_json::from_str(&json).map_err(|e| corrupt("refresh token", e))?;
    if used_at.is_some() {
        return Ok(RefreshUse::Reused(grant));
    }
    if revoked_at.is_some()
        || grant.expires_at <= now
        || disconnected_since(conn, &grant.user_id, &grant.client_id, grant.issued_ms())?
    {
        return Ok(RefreshUse::Invalid);
    }
    Ok(RefreshUse::Fresh(grant))
}

/// Spends a live refresh token and stores its successor, if no one spent it
/// first: returns whether this call did.
pub fn rotate_refresh(
    conn: &Connection,
    old_hash: &[u8; 32],
    new_hash: &[u8; 32],
    next: &RefreshGrant,
    now: i64,
) -> Result<bool, Error> {
    let changed = exec(
        conn,
        "UPDATE oauth_refresh_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL",
        params![hex::encode(old_hash), now],
    )?;
    if changed != 1 {
        return Ok(false);
    }
    create_refresh(conn, new_hash, next)?;
    Ok(true)
}

pub fn create_refresh(
    conn: &Connection,
    token_hash: &[u8; 32],
    grant: &RefreshGrant,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO oauth_refresh_tokens (token_hash, family_id, grant_json, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            hex::encode(token_hash),
            grant.family_id,
            serde_json::to_string(grant).unwrap_or_default(),
            grant.expires_at
        ],
    )?;
    // A new refresh token means the grant was just used.
    touch_grant(conn, &grant.user_id, &grant.client_id, grant.issued_at)?;
    Ok(())
}

pub fn use_refresh(
    conn: &Connection,
    token_hash: &[u8; 32],
    now: i64,
) -> Result<RefreshUse, Error> {
    let key = hex::encode(token_hash);
    let row: Option<(String, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT grant_json, used_at, revoked_at FROM oauth_refresh_tokens WHERE token_hash = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((json, used_at, revoked_at)) = row else {
        return Ok(RefreshUse::Invalid);
    };
    let grant: RefreshGrant =
        serde_json::from_str(&json).map_err(|e| corrupt("refresh token", e))?;
    if used_at.is_some() {
        exec(
            conn,
            "UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE family_id = ?1",
            params![grant.family_id, now],
        )?;
        return Ok(RefreshUse::Reused(grant));
    }
    if revoked_at.is_some()
        || grant.expires_at <= now
        || disconnected_since(conn, &grant.user_id, &grant.client_id, grant.issued_ms())?
    {
        return Ok(RefreshUse::Invalid);
    }
    exec(
        conn,
        "UPDATE oauth_refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
        params![key, now],
    )?;
    Ok(RefreshUse::Fresh(grant))
}

/// Whether the user disconnected the client (or the client was deleted) at
/// or after `issued_ms` (milliseconds since the epoch).
pub fn disconnected_since(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    issued_ms: i64,
) -> Result<bool, Error> {
    if is_client_deleted(conn, client_id)? {
        return Ok(true);
    }
    let revoked: Option<i64> = conn
        .query_row(
            "SELECT revoked_at FROM revoked_grants WHERE user_id = ?1 AND client_id = ?2",
            params![user_id, client_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(revoked.is_some_and(|at| at >= issued_ms))
}

/// Whether the client was deleted (or expired unused).
pub fn is_client_deleted(conn: &Connection, client_id: &str) -> Result<bool, Error> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM deleted_clients WHERE client_id = ?1")?;
    Ok(stmt.exists([client_id])?)
}

/// Clients deleted since `since`, for the revocation feed: gates refuse
/// every token they minted (older deletions only outlived tokens that expired).
pub fn deleted_clients(conn: &Connection, since: i64) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT client_id FROM deleted_clients WHERE deleted_at >= ?1 ORDER BY client_id",
    )?;
    let rows = stmt.query_map([since], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Records a client's deletion, for the revocation feed.
pub fn remember_deleted_client(conn: &Connection, client_id: &str, at: i64) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO deleted_clients (client_id, deleted_at) VALUES (?1, ?2) ON CONFLICT (client_id) DO NOTHING",
        params![client_id, at],
    )?;
    Ok(())
}

/// Notes that a client obtained a token.
pub fn touch_client(conn: &Connection, client_id: &str, at: i64) -> Result<(), Error> {
    exec(
        conn,
        "UPDATE oauth_clients SET last_used_at = ?2 WHERE client_id = ?1",
        params![client_id, at],
    )?;
    Ok(())
}

/// Dynamically registered clients that never obtained a token, were
/// registered before `before` and are owned by no one (a gate's own
/// sign-in client is owned by the gate's principal).
pub fn unused_dynamic_clients(conn: &Connection, before: i64) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT client_id FROM oauth_clients WHERE kind = 'dynamic' AND owner_id IS NULL AND last_used_at IS NULL AND created_at < ?1
         ORDER BY created_at LIMIT 1000",
    )?;
    let rows = stmt.query_map([before], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Principals that may not act: inactive ones, and every principal whose
/// owner or parent (at any depth) is inactive. A deactivated owner
/// suspends everything they own, on the revocation feed too.
pub fn suspended_principal_ids(conn: &Connection) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE suspended(id) AS (
             SELECT id FROM principals WHERE status <> 'active'
             UNION
             SELECT p.id FROM principals p JOIN suspended s ON p.owner_id = s.id OR p.parent_id = s.id
         )
         SELECT id FROM suspended ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Records (or refreshes) a user's consent to a client.
pub fn record_grant(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    scope: &str,
    resource: Option<&str>,
    accounts: &[String],
    at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO oauth_grants (user_id, client_id, scope, resource, accounts, granted_at) VALUES (?1, ?2, ?3, ?4, ?6, ?5)
         ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, resource = excluded.resource, accounts = excluded.accounts,
             granted_at = CASE WHEN oauth_grants.revoked_at IS NULL THEN oauth_grants.granted_at ELSE excluded.granted_at END,
             revoked_at = NULL",
        params![user_id, client_id, scope, resource, at, accounts.join(" ")],
    )?;
    Ok(())
}

/// Notes that a grant obtained tokens.
pub fn touch_grant(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "UPDATE oauth_grants SET last_used_at = ?3 WHERE user_id = ?1 AND client_id = ?2",
        params![user_id, client_id, at],
    )?;
    Ok(())
}

/// The live grants of one user, or of everyone.
pub fn connected_apps(
    conn: &Connection,
    user_id: Option<&str>,
) -> Result<Vec<ConnectedApp>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.user_id, g.client_id, c.metadata, g.scope, g.resource, g.granted_at, g.last_used_at, g.accounts
         FROM oauth_grants g LEFT JOIN oauth_clients c ON c.client_id = g.client_id
         WHERE g.revoked_at IS NULL AND (?1 IS NULL OR g.user_id = ?1) ORDER BY g.granted_at, g.client_id",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        let metadata: Option<String> = r.get(2)?;
        Ok(ConnectedApp {
            user_id: r.get(0)?,
            client_id: r.get(1)?,
            client_name: metadata
                .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
                .and_then(|m| m["client_name"].as_str().map(str::to_owned)),
            scope: r.get(3)?,
            resource: r.get(4)?,
            granted_at: r.get(5)?,
            last_used_at: r.get(6)?,
            accounts: r
                .get::<_, String>(7)?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Disconnects a client from a user: the grant ends, every refresh token of
/// the pair is revoked, and access tokens issued until now are listed in the
/// revocation feed. Returns whether there was a live grant.
pub fn disconnect(
    conn: &Connection,
    user_id: &str,
    client_id: &str,
    at_ms: i64,
) -> Result<bool, Error> {
    let changed = exec(
        conn,
        "UPDATE oauth_grants SET revoked_at = ?3 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL",
        params![user_id, client_id, at_ms.div_euclid(1000)],
    )?;
    exec(
        conn,
        "INSERT INTO revoked_grants (user_id, client_id, revoked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = excluded.revoked_at",
        params![user_id, client_id, at_ms],
    )?;
    Ok(changed > 0)
}

/// Ends the tokens a client minted with no person present (client
/// credentials): those for the principal behind it, and (from before
/// clients had one) those whose subject was the client itself.
pub fn disconnect_alone(conn: &Connection, client_id: &str, at_ms: i64) -> Result<(), Error> {
    let principal: Option<String> = conn
        .query_row(
            "SELECT principal_id FROM oauth_clients WHERE client_id = ?1",
            [client_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    for subject in std::iter::once(client_id.to_owned()).chain(principal) {
        exec(
            conn,
            "INSERT INTO revoked_grants (user_id, client_id, revoked_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = excluded.revoked_at",
            params![subject, client_id, at_ms],
        )?;
    }
    Ok(())
}

/// Every disconnect: (user, client, time in milliseconds); access tokens of
/// the pair issued at or before the time are refused.
pub fn revoked_grants(conn: &Connection) -> Result<Vec<(String, String, i64)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, client_id, revoked_at FROM revoked_grants ORDER BY user_id, client_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Revokes the whole family of a refresh token, if it belongs to `client_id`.
pub fn revoke_refresh(
    conn: &Connection,
    token_hash: &[u8; 32],
    client_id: &str,
    now: i64,
) -> Result<bool, Error> {
    let row: Option<String> = conn
        .query_row(
            "SELECT grant_json FROM oauth_refresh_tokens WHERE token_hash = ?1",
            [hex::encode(token_hash)],
            |r| r.get(0),
        )
        .optional()?;
    let Some(json) = row else { return Ok(false) };
    let grant: RefreshGrant =
        serde_json::from_str(&json).map_err(|e| corrupt("refresh token", e))?;
    if grant.client_id != client_id {
        return Ok(false);
    }
    exec(
        conn,
        "UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE family_id = ?1",
        params![grant.family_id, now],
    )?;
    Ok(true)
}

pub fn federated_user(
    conn: &Connection,
    issuer: &str,
    subject: &str,
) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row(
            "SELECT user_id FROM federated_identities WHERE issuer = ?1 AND subject = ?2",
            params![issuer, subject],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn link_federated(
    conn: &Connection,
    issuer: &str,
    subject: &str,
    user_id: &str,
    at: i64,
) -> Result<(), Error> {
    exec(
        conn,
        "INSERT INTO federated_identities (issuer, subject, user_id, linked_at) VALUES (?1, ?2, ?3, ?4)",
        params![issuer, subject, user_id, at],
    )?;
    Ok(())
}

pub fn create_login_state(
    conn: &Connection,
    state_hash: &[u8; 32],
    data: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), Error> {
    // Abandoned sign-ins are swept as new ones start.
    exec(
        conn,
        "DELETE FROM login_states WHERE expires_at <= ?1",
        [now],
    )?;
    exec(
        conn,
        "INSERT INTO login_states (state_hash, data, expires_at) VALUES (?1, ?2, ?3)",
        params![hex::encode(state_hash), data, expires_at],
    )?;
    Ok(())
}

pub fn take_login_state(
    conn: &Connection,
    state_hash: &[u8; 32],
    now: i64,
) -> Result<Option<String>, Error> {
    let key = hex::encode(state_hash);
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT data, expires_at FROM login_states WHERE state_hash = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    exec(
        conn,
        "DELETE FROM login_states WHERE state_hash = ?1",
        [&key],
    )?;
    Ok(row
        .filter(|(_, expires_at)| *expires_at > now)
        .map(|(data, _)| data))
}
