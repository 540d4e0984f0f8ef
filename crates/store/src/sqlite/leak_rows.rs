//! Rows for leaked credentials: finding a reported token by its hash in the
//! table its kind lives in, revoking it there, incidents, replay protection
//! of signed reports, the notification outbox, and people's email addresses.

use laissez_core::UnixTime;
use laissez_core::leak::{Incident, LeakAction, LeakReport};
use laissez_oauth::grant::RefreshGrant;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::exec;

use crate::{Error, Notification, TokenStatus};

/// A reported token found in the store.
struct Target {
    credential_id: String,
    principal_id: String,
    owner_id: String,
    live: bool,
    revoke: Revoke,
}

/// How to revoke what was found.
enum Revoke {
    Credential(String),
    /// A refresh token: its family, and the grant of (user, client), so the
    /// access tokens issued from it are refused by every gate.
    Refresh {
        family_id: String,
        user_id: String,
        client_id: String,
    },
    /// A client secret: the client can no longer authenticate with it.
    ClientSecret(String),
}

/// Records one report; returns what was done and the incident, if the
/// token is real. `notify` lists the channels to queue notifications on.
pub fn record(
    conn: &Connection,
    report: &LeakReport,
    incident_id: &str,
    revoke_private: bool,
    notify: &[String],
    now: UnixTime,
) -> Result<(LeakAction, Option<Incident>), Error> {
    let target = find(conn, &report.kind, &report.token_hash, now)?;
    let action = LeakAction::decide(
        target.is_some(),
        target.as_ref().is_some_and(|t| t.live),
        report.public,
        revoke_private,
    );
    let Some(target) = target else {
        return Ok((action, None));
    };
    if action == LeakAction::Revoked {
        match &target.revoke {
            Revoke::Credential(id) => super::rows::revoke_credential(conn, id, now)?,
            Revoke::Refresh {
                family_id,
                user_id,
                client_id,
            } => {
                exec(
                    conn,
                    "UPDATE oauth_refresh_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE family_id = ?1",
                    params![family_id, now],
                )?;
                super::oauth_rows::disconnect(conn, user_id, client_id, end_of_second(now))?;
            }
            Revoke::ClientSecret(client_id) => {
                exec(
                    conn,
                    "UPDATE oauth_clients SET secret_hash = NULL WHERE client_id = ?1",
                    [client_id],
                )?;
                // Tokens the client minted with the secret (client
                // credentials, for the principal behind it) die with it.
                super::oauth_rows::disconnect_alone(conn, client_id, end_of_second(now))?;
            }
        }
    }
    let incident = Incident {
        id: incident_id.to_owned(),
        kind: report.kind.clone(),
        token_hint: format!("{}…{}", report.prefix, report.last4),
        credential_id: Some(target.credential_id),
        principal_id: Some(target.principal_id),
        owner_id: Some(target.owner_id),
        reporter: report.reporter.clone(),
        source: report.source.clone(),
        url: report.url.clone(),
        public: report.public,
        action,
        reported_at: now,
    };
    exec(
        conn,
        "INSERT INTO leak_incidents (id, token_hash, kind, token_hint, credential_id, principal_id, owner_id, reporter, source, url, public, action, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            incident.id,
            hex::encode(report.token_hash),
            incident.kind,
            incident.token_hint,
            incident.credential_id,
            incident.principal_id,
            incident.owner_id,
            incident.reporter,
            incident.source,
            incident.url,
            i64::from(incident.public),
            action.as_str(),
            now
        ],
    )?;
    queue_notifications(conn, incident_id, incident.owner_id.as_deref(), notify, now)?;
    Ok((action, Some(incident)))
}

/// Remembers the hash of a signed report's signature; false if seen before.
pub fn remember_signature(
    conn: &Connection,
    hash: &[u8; 32],
    now: UnixTime,
) -> Result<bool, Error> {
    let inserted = exec(
        conn,
        "INSERT INTO leak_signatures (signature_hash, received_at) VALUES (?1, ?2) ON CONFLICT (signature_hash) DO NOTHING",
        params![hex::encode(hash), now],
    )?;
    Ok(inserted == 1)
}

/// Whether a token (by hash, of any kind) is live, revoked, expired or unknown.
pub fn status(conn: &Connection, hash: &[u8; 32], now: UnixTime) -> Result<TokenStatus, Error> {
    {
        let row: Option<(Option<i64>, Option<i64>)> = conn
            .query_row(
                "SELECT expires_at, revoked_at FROM credentials WHERE secret_hash = ?1",
                [hex::encode(hash)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => {}
            Some((_, Some(_))) => return Ok(TokenStatus::Revoked),
            Some((Some(expires), None)) if expires <= now => return Ok(TokenStatus::Expired),
            Some(_) => return Ok(TokenStatus::Live),
        }
    }
    for kind in ["rt", "cs"] {
        match find(conn, kind, hash, now)? {
            None => {}
            Some(target) if target.live => return Ok(TokenStatus::Live),
            Some(_) => return Ok(TokenStatus::Revoked),
        }
    }
    Ok(TokenStatus::Unknown)
}

fn find(
    conn: &Connection,
    kind: &str,
    hash: &[u8; 32],
    now: UnixTime,
) -> Result<Option<Target>, Error> {
    let hash = hex::encode(hash);
    match kind {
        "ut" | "at" | "tt" => {
            let row: Option<(String, String, Option<i64>, Option<i64>)> = conn
                .query_row(
                    "SELECT id, principal_id, expires_at, revoked_at FROM credentials WHERE secret_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((id, principal_id, expires_at, revoked_at)) = row else {
                return Ok(None);
            };
            let owner_id = owner_of(conn, &principal_id)?;
            Ok(Some(Target {
                live: revoked_at.is_none() && expires_at.is_none_or(|e| e > now),
                revoke: Revoke::Credential(id.clone()),
                credential_id: id,
                principal_id,
                owner_id,
            }))
        }
        "rt" => {
            // (family, grant, expires_at, used_at, revoked_at)
            type RefreshRow = (String, String, i64, Option<i64>, Option<i64>);
            let row: Option<RefreshRow> = conn
                .query_row(
                    "SELECT family_id, grant_json, expires_at, used_at, revoked_at FROM oauth_refresh_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let Some((family_id, grant, expires_at, used_at, revoked_at)) = row else {
                return Ok(None);
            };
            let grant: RefreshGrant = serde_json::from_str(&grant)
                .map_err(|e| Error::Corrupt(format!("refresh token: {e}")))?;
            Ok(Some(Target {
                live: revoked_at.is_none() && used_at.is_none() && expires_at > now,
                credential_id: format!("grant:{}:{}", grant.user_id, grant.client_id),
                principal_id: grant.user_id.clone(),
                owner_id: grant.user_id.clone(),
                revoke: Revoke::Refresh {
                    family_id,
                    user_id: grant.user_id,
                    client_id: grant.client_id,
                },
            }))
        }
        "cs" => {
            let row: Option<(String, Option<String>)> = conn
                .query_row(
                    "SELECT client_id, owner_id FROM oauth_clients WHERE secret_hash = ?1",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((client_id, owner_id)) = row else {
                return Ok(None);
            };
            let owner_id = owner_id.unwrap_or_default();
            Ok(Some(Target {
                live: true,
                credential_id: client_id.clone(),
                principal_id: owner_id.clone(),
                owner_id,
                revoke: Revoke::ClientSecret(client_id),
            }))
        }
        _ => Ok(None),
    }
}

/// The human who answers for a principal: its owner, or itself for a user.
fn owner_of(conn: &Connection, principal_id: &str) -> Result<String, Error> {
    let owner: Option<Option<String>> = conn
        .query_row(
            "SELECT owner_id FROM principals WHERE id = ?1",
            [principal_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owner.flatten().unwrap_or_else(|| principal_id.to_owned()))
}

const INCIDENT_COLUMNS: &str = "id, kind, token_hint, credential_id, principal_id, owner_id, reporter, source, url, public, action, reported_at";

/// The newest incidents first.
/// Up to `limit` incidents, newest first, reported before `before` (a
/// `(reported_at, id)` the previous page ended with).
pub fn incidents(
    conn: &Connection,
    limit: usize,
    before: Option<(i64, String)>,
) -> Result<Vec<Incident>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM leak_incidents
         WHERE ?2 IS NULL OR reported_at < ?2 OR (reported_at = ?2 AND id < ?3)
         ORDER BY reported_at DESC, id DESC LIMIT ?1"
    ))?;
    let (at, id) = match before {
        Some((at, id)) => (Some(at), Some(id)),
        None => (None, None),
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![limit, at, id], incident_row)?;
    rows.map(|r| r?).collect()
}

/// One incident.
pub fn incident(conn: &Connection, id: &str) -> Result<Option<Incident>, Error> {
    conn.query_row(
        &format!("SELECT {INCIDENT_COLUMNS} FROM leak_incidents WHERE id = ?1"),
        [id],
        incident_row,
    )
    .optional()?
    .transpose()
}

fn incident_row(row: &Row<'_>) -> rusqlite::Result<Result<Incident, Error>> {
    let action: String = row.get(10)?;
    let public: i64 = row.get(9)?;
    Ok(match LeakAction::parse(&action) {
        None => Err(Error::Corrupt(format!("leak incident action '{action}'"))),
        Some(action) => Ok(Incident {
            id: row.get(0)?,
            kind: row.get(1)?,
            token_hint: row.get(2)?,
            credential_id: row.get(3)?,
            principal_id: row.get(4)?,
            owner_id: row.get(5)?,
            reporter: row.get(6)?,
            source: row.get(7)?,
            url: row.get(8)?,
            public: public != 0,
            action,
            reported_at: row.get(11)?,
        }),
    })
}

/// Notifications due for (another) attempt.
pub fn due_notifications(
    conn: &Connection,
    now: UnixTime,
    limit: usize,
) -> Result<Vec<Notification>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, channel, incident_id, attempts FROM notifications
         WHERE delivered_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= ?1
         ORDER BY next_attempt_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit as i64], |r| {
        Ok(Notification {
            id: r.get(0)?,
            channel: r.get(1)?,
            incident_id: r.get(2)?,
            attempts: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Records the outcome of one delivery attempt. Failures back off
/// exponentially (1 s doubling, at most an hour) and are abandoned after
/// `max_attempts`.
pub fn finish_notification(
    conn: &Connection,
    id: &str,
    error: Option<&str>,
    max_attempts: i64,
    now: UnixTime,
) -> Result<(), Error> {
    match error {
        None => exec(
            conn,
            "UPDATE notifications SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now],
        )?,
        Some(error) => exec(
            conn,
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?2,
                 next_attempt_at = ?3 + MIN(3600, 1 << MIN(attempts, 12)),
                 abandoned_at = CASE WHEN attempts + 1 >= ?4 THEN ?3 ELSE NULL END
             WHERE id = ?1",
            params![id, error, now, max_attempts],
        )?,
    };
    Ok(())
}

/// Sets or clears a principal's email address.
pub fn set_email(conn: &Connection, principal_id: &str, email: Option<&str>) -> Result<(), Error> {
    match email {
        Some(email) => exec(
            conn,
            "INSERT INTO principal_emails (principal_id, email) VALUES (?1, ?2)
             ON CONFLICT (principal_id) DO UPDATE SET email = excluded.email",
            params![principal_id, email],
        )?,
        None => exec(
            conn,
            "DELETE FROM principal_emails WHERE principal_id = ?1",
            [principal_id],
        )?,
    };
    Ok(())
}

/// A principal's email address, if known.
pub fn email(conn: &Connection, principal_id: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .query_row(
            "SELECT email FROM principal_emails WHERE principal_id = ?1",
            [principal_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Queues one notification of `subject` (an incident, a digest, an
/// approval) per channel, due at once; mail only when `owner` has an address.
pub fn queue_notifications(
    conn: &Connection,
    subject: &str,
    owner: Option<&str>,
    channels: &[String],
    at: UnixTime,
) -> Result<(), Error> {
    for channel in channels {
        if channel == "email" && email(conn, owner.unwrap_or(""))?.is_none() {
            continue;
        }
        conn.prepare_cached(
            "INSERT INTO notifications (id, channel, incident_id, attempts, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?4)",
        )?
        .execute(params![format!("{subject}.{channel}"), channel, subject, at])?;
    }
    Ok(())
}

/// Disconnect times are milliseconds: everything up to the end of `now`'s second.
fn end_of_second(now: i64) -> i64 {
    now.saturating_mul(1000).saturating_add(999)
}

/// Queues digests and their notifications; records when.
pub fn queue_digests(
    conn: &Connection,
    digests: &[crate::Digest],
    channels: &[String],
    at: i64,
) -> Result<(), Error> {
    for digest in digests {
        conn.prepare_cached(
            "INSERT INTO digests (id, owner_id, findings, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            digest.id,
            digest.owner_id,
            digest.findings.to_string(),
            digest.created_at
        ])?;
        queue_notifications(conn, &digest.id, Some(&digest.owner_id), channels, at)?;
    }
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('hygiene.last_digest', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([at.to_string()])?;
    Ok(())
}

/// One digest.
pub fn digest(conn: &Connection, id: &str) -> Result<Option<crate::Digest>, Error> {
    let row = conn
        .prepare_cached("SELECT id, owner_id, findings, created_at FROM digests WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    row.map(|(id, owner_id, findings, created_at)| {
        Ok(crate::Digest {
            id,
            owner_id,
            findings: serde_json::from_str(&findings)
                .map_err(|_| Error::Corrupt("digests.findings".into()))?,
            created_at,
        })
    })
    .transpose()
}

/// When the last digest was queued.
pub fn last_digest_at(conn: &Connection) -> Result<Option<i64>, Error> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'hygiene.last_digest'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    value
        .map(|v| {
            v.parse()
                .map_err(|_| Error::Corrupt("meta.hygiene.last_digest".into()))
        })
        .transpose()
}
