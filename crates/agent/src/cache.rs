//! The agent's token cache: registered clients per authorization server and
//! tokens per resource, in one JSON file only its owner can read (0600),
//! replaced atomically on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Tokens for one resource.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CachedTokens {
    /// The authorization server that issued them.
    pub issuer: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token, if any.
    pub refresh_token: Option<String>,
    /// Granted scopes.
    pub scope: String,
    /// When the access token expires (Unix seconds).
    pub expires_at: i64,
}

/// The whole cache file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Cache {
    /// Client id per authorization server issuer.
    pub clients: BTreeMap<String, String>,
    /// Tokens per resource URL.
    pub tokens: BTreeMap<String, CachedTokens>,
    #[serde(skip)]
    path: PathBuf,
}

impl Cache {
    /// Loads the cache at `path` (empty if it does not exist).
    pub fn load(path: &Path) -> Result<Cache, String> {
        let mut cache = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Cache>(&bytes)
                .map_err(|e| format!("{}: not a token cache: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cache::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        cache.path = path.to_owned();
        Ok(cache)
    }

    /// The cached tokens whose resource is the longest prefix of `url`.
    pub fn tokens_for(&self, url: &str) -> Option<(&String, &CachedTokens)> {
        self.tokens
            .iter()
            .filter(|(resource, _)| {
                url == resource.as_str()
                    || url.starts_with(&format!("{}/", resource.trim_end_matches('/')))
            })
            .max_by_key(|(resource, _)| resource.len())
    }

    /// Writes the cache: a new file with mode 0600, renamed over the old one.
    pub fn save(&self) -> Result<(), String> {
        use std::io::Write;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
