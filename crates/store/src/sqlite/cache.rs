//! The configuration every request reads (roles and policies, protected
//! resources, settings), kept in memory between the writes that change it.
//!
//! Triggers on those tables give `config_version` a new random value in
//! every transaction that changes one of them, whoever writes (this server,
//! another process on the same file, a restored copy). A cached value is
//! tagged with the version read in the same snapshot as the value itself,
//! and served only to a read whose own snapshot shows that same version: a
//! read never sees configuration older than its snapshot, and a change is
//! seen by the first read that starts after its commit. Reading the version
//! is one indexed row, much cheaper than the rows and JSON it stands for.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use laissez_core::PolicySet;
use laissez_core::credential::Settings;
use laissez_oauth::protected::ProtectedResource;
use rusqlite::Connection;

use crate::Error;

/// Principal lists (and setting keys) remembered at most; past this the
/// map starts again empty.
const MAX_KEYS: usize = 4096;

/// The triggers that move the version (SQLite's dialect, so apart from the
/// portable schema). `random()` rather than a counter: equal versions then
/// mean equal configuration even across a file swapped for another.
pub const TRIGGERS: &str = "
CREATE TABLE IF NOT EXISTS config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT OR IGNORE INTO config_version (id, version) VALUES (1, random());
CREATE TRIGGER IF NOT EXISTS roles_inserted AFTER INSERT ON roles BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS roles_updated AFTER UPDATE ON roles BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS roles_deleted AFTER DELETE ON roles BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS policies_inserted AFTER INSERT ON policies BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS policies_updated AFTER UPDATE ON policies BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS policies_deleted AFTER DELETE ON policies BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS resources_inserted AFTER INSERT ON protected_resources BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS resources_updated AFTER UPDATE ON protected_resources BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS resources_deleted AFTER DELETE ON protected_resources BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS settings_inserted AFTER INSERT ON settings BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS settings_updated AFTER UPDATE ON settings BEGIN UPDATE config_version SET version = random(); END;
CREATE TRIGGER IF NOT EXISTS settings_deleted AFTER DELETE ON settings BEGIN UPDATE config_version SET version = random(); END;
";

/// The configuration version in `conn`'s snapshot.
pub fn version(conn: &Connection) -> Result<i64, Error> {
    let mut stmt = conn.prepare_cached("SELECT version FROM config_version WHERE id = 1")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Values read at one configuration version.
#[derive(Default)]
struct Entries {
    version: Option<i64>,
    policy_sets: HashMap<Vec<String>, PolicySet>,
    resources: Option<Vec<ProtectedResource>>,
    settings: Option<Settings>,
    extra: HashMap<String, Option<String>>,
}

/// The cache. Every method takes the connection of the caller's snapshot.
#[derive(Default)]
pub struct ConfigCache {
    entries: Mutex<Entries>,
}

impl ConfigCache {
    /// The policy set of `principal_ids`.
    pub fn policy_set(
        &self,
        conn: &Connection,
        principal_ids: &[String],
        load: impl FnOnce(&Connection) -> Result<PolicySet, Error>,
    ) -> Result<PolicySet, Error> {
        self.keyed(conn, principal_ids.to_vec(), |e| &mut e.policy_sets, load)
    }

    /// Every protected resource.
    pub fn resources(
        &self,
        conn: &Connection,
        load: impl FnOnce(&Connection) -> Result<Vec<ProtectedResource>, Error>,
    ) -> Result<Vec<ProtectedResource>, Error> {
        self.single(conn, |e| &mut e.resources, load)
    }

    /// The organization's settings.
    pub fn settings(
        &self,
        conn: &Connection,
        load: impl FnOnce(&Connection) -> Result<Settings, Error>,
    ) -> Result<Settings, Error> {
        self.single(conn, |e| &mut e.settings, load)
    }

    /// An extension setting.
    pub fn setting(
        &self,
        conn: &Connection,
        key: &str,
        load: impl FnOnce(&Connection) -> Result<Option<String>, Error>,
    ) -> Result<Option<String>, Error> {
        self.keyed(conn, key.to_owned(), |e| &mut e.extra, load)
    }

    fn single<T: Clone>(
        &self,
        conn: &Connection,
        slot: impl Fn(&mut Entries) -> &mut Option<T>,
        load: impl FnOnce(&Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let version = version(conn)?;
        if let Some(hit) = self.at(version, |e| slot(e).clone()) {
            return Ok(hit);
        }
        let value = load(conn)?;
        self.keep(version, |e| *slot(e) = Some(value.clone()));
        Ok(value)
    }

    fn keyed<K: Hash + Eq, T: Clone>(
        &self,
        conn: &Connection,
        key: K,
        map: impl Fn(&mut Entries) -> &mut HashMap<K, T>,
        load: impl FnOnce(&Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let version = version(conn)?;
        if let Some(hit) = self.at(version, |e| map(e).get(&key).cloned()) {
            return Ok(hit);
        }
        let value = load(conn)?;
        self.keep(version, |e| {
            let map = map(e);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
            map.insert(key, value.clone());
        });
        Ok(value)
    }

    /// What `get` finds among the entries of `version`, if they are current.
    fn at<T>(&self, version: i64, get: impl FnOnce(&mut Entries) -> Option<T>) -> Option<T> {
        let mut entries = self.entries.lock().ok()?;
        if entries.version != Some(version) {
            return None;
        }
        get(&mut entries)
    }

    /// Keeps a value read at `version`; entries of any other version go.
    fn keep(&self, version: i64, put: impl FnOnce(&mut Entries)) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.version != Some(version) {
            *entries = Entries {
                version: Some(version),
                ..Entries::default()
            };
        }
        put(&mut entries);
    }
}
