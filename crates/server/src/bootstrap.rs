//! The first start of a data folder: the first admin user, their policy
//! (`laissez-admin` on `/`) and a bootstrap token written to a file only the
//! server's user can read. Later starts find the admin and change nothing.
//!
//! [`reset_admin_token`] is the way back in when that token has expired or
//! been lost: whoever can write the data folder (and so could read the token
//! anyway) gets a new one in the same file, audited like any issuance.

use std::io::Write;
use std::path::{Path, PathBuf};

use laissez_core::audit::AuditEvent;
use laissez_core::credential::{Credential, hash_secret};
use laissez_core::{Name, Policy, Principal, PrincipalKind, Scope, Status};
use laissez_store::Store;
use laissez_token::{Kind, Namespace, Token};

use crate::{new_id, now};

/// Name of the first admin user.
pub const ADMIN_NAME: &str = "admin";
/// File, inside the data folder, holding the bootstrap token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// What the first start did.
#[derive(Debug)]
pub enum Bootstrapped {
    /// The admin was created and its token written here.
    Created(PathBuf),
    /// The store already had its admin; nothing was changed.
    Existing,
}

/// Why bootstrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store refused.
    #[error(transparent)]
    Store(#[from] laissez_store::Error),
    /// The token file could not be written.
    #[error("cannot write {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There is no active first admin to give a token to.
    #[error("{0}")]
    NoAdmin(String),
    /// No randomness.
    #[error("cannot generate the admin token: {0}")]
    Random(String),
}

/// Creates the first admin once. The token file is written before the store
/// commits, so a crash between the two leaves a token file that works after
/// the next start rather than an admin nobody can reach.
pub async fn bootstrap(
    store: &dyn Store,
    namespace: &Namespace,
    data_dir: &Path,
) -> Result<Bootstrapped, BootstrapError> {
    if store.is_bootstrapped().await? {
        return Ok(Bootstrapped::Existing);
    }
    let random = |e: crate::problem::ApiError| BootstrapError::Random(e.to_string());
    let now = now();
    let admin = Principal {
        id: new_id("usr").map_err(random)?,
        kind: PrincipalKind::User,
        name: Name::parse(ADMIN_NAME, "user name").unwrap_or_else(|_| unreachable!("valid name")),
        owner_id: None,
        parent_id: None,
        status: Status::Active,
        description: "First administrator, created on first start".into(),
        created_at: now,
    };
    let policy = Policy {
        id: new_id("pol").map_err(random)?,
        principal_id: admin.id.clone(),
        role: Name::parse(laissez_core::admin::ADMIN_ROLE, "role")
            .unwrap_or_else(|_| unreachable!("valid name")),
        scope: Scope::root(),
        created_at: now,
    };
    let (token, credential) =
        admin_token(store, namespace, &admin, now, "Bootstrap admin token").await?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_secret_file(&path, token.expose()).map_err(|source| BootstrapError::TokenFile {
        path: path.clone(),
        source,
    })?;
    let audit = AuditEvent::success(&[admin.reference()], "bootstrap", admin.id.clone())
        .with_detail(serde_json::json!({"credential": credential.id, "policy": policy.id}));
    let hash = hash_secret(token.expose());
    if store
        .bootstrap(admin, policy, credential, hash, audit)
        .await?
    {
        Ok(Bootstrapped::Created(path))
    } else {
        Ok(Bootstrapped::Existing)
    }
}

/// Issues a new token for the first admin and writes it to
/// `DATA/admin-token` (mode 0600), with an audit record naming how. Existing
/// tokens are left as they are. Refused when the admin is gone or inactive,
/// since its token would open nothing.
pub async fn reset_admin_token(
    store: &dyn Store,
    namespace: &Namespace,
    data_dir: &Path,
) -> Result<PathBuf, BootstrapError> {
    let admin = store
        .principal(ADMIN_NAME)
        .await?
        .filter(|p| p.kind == PrincipalKind::User)
        .ok_or_else(|| {
            BootstrapError::NoAdmin(format!(
                "{} has no user '{ADMIN_NAME}' (start `laissez serve` once to create it)",
                data_dir.display()
            ))
        })?;
    if admin.status != Status::Active {
        return Err(BootstrapError::NoAdmin(format!(
            "the user '{ADMIN_NAME}' is deactivated; a token for it would open nothing"
        )));
    }
    let (token, credential) = admin_token(
        store,
        namespace,
        &admin,
        now(),
        "Admin token reset with `laissez serve --reset-admin-token`",
    )
    .await?;
    let audit = AuditEvent::success(&[admin.reference()], "token.create", credential.id.clone())
        .with_detail(serde_json::json!({
            "credential": credential.id,
            "via": "laissez serve --reset-admin-token",
            "file": ADMIN_TOKEN_FILE,
        }));
    let hash = hash_secret(token.expose());
    // Stored first: a file holding a token the store never saw would lock
    // the next reader out with a valid-looking secret.
    store.create_credential(credential, hash, audit).await?;
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    write_secret_file(&path, token.expose()).map_err(|source| BootstrapError::TokenFile {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// A new user token for `admin`, living the organization's maximum lifetime.
async fn admin_token(
    store: &dyn Store,
    namespace: &Namespace,
    admin: &Principal,
    now: i64,
    description: &str,
) -> Result<(Token, Credential), BootstrapError> {
    let random = |e: String| BootstrapError::Random(e);
    let lifetime = store.settings().await?.max_ttl;
    let token = Token::generate(namespace, Kind::User).map_err(|e| random(e.to_string()))?;
    let id = new_id("tok").map_err(|e| random(e.to_string()))?;
    let credential = Credential::issued(id, &token, &admin.id, lifetime, now, description);
    Ok((token, credential))
}

/// Writes `secret` to a new file readable and writable by its owner only.
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
