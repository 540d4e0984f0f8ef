//! Rows of the authorization server's state: user passwords (argon2 PHC
//! strings), browser sessions, authorization codes and refresh tokens, the
//! last three stored by the SHA-256 of their secret only.

use laissez_oauth::grant::{AuthorizationCode, RefreshGrant, RefreshUse};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Error;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

pub fn set_password(conn: &Connection, user_id: &str, phc: &str, at: i64) -> Result<(), Error> {
    conn.execute(
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
    conn.execute(
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
    conn.execute(
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
        conn.execute(
            "UPDATE oauth_codes SET used_at = ?2 WHERE code_hash = ?1",
            params![key, now],
        )?;
    }
    let code = serde_json::from_str(&json).map_err(|e| corrupt("authorization code", e))?;
    Ok(Some((code, used_at.is_some())))
}

pub fn create_refresh(
    conn: &Connection,
    token_hash: &[u8; 32],
    grant: &RefreshGrant,
) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO oauth_refresh_tokens (token_hash, family_id, grant_json, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            hex::encode(token_hash),
            grant.family_id,
            serde_json::to_string(grant).unwrap_or_default(),
            grant.expires_at
        ],
    )?;
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
        conn.execute(
            "UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE family_id = ?1",
            params![grant.family_id, now],
        )?;
        return Ok(RefreshUse::Reused(grant));
    }
    if revoked_at.is_some() || grant.expires_at <= now {
        return Ok(RefreshUse::Invalid);
    }
    conn.execute(
        "UPDATE oauth_refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
        params![key, now],
    )?;
    Ok(RefreshUse::Fresh(grant))
}
