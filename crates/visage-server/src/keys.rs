//! API keys: random, shown once, stored as SHA-256, compared in constant time; each bound to
//! one tenant and one scope. Kept with the audit log in `DIR/keys.db` (SQLite).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What a key may do; each scope includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Detect, compare, liveness, identify, verify, list.
    Recognize,
    /// And enroll, rename and forget people.
    Enroll,
    /// And create and delete galleries.
    Admin,
}

impl Scope {
    /// The scope named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recognize" => Some(Scope::Recognize),
            "enroll" => Some(Scope::Enroll),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Recognize => "recognize",
            Scope::Enroll => "enroll",
            Scope::Admin => "admin",
        }
    }
}

/// A key as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Public id (the part of the key before its secret).
    pub id: String,
    /// The tenant it acts for.
    pub tenant: String,
    /// What it may do.
    pub scope: Scope,
    /// A label given at creation.
    pub label: String,
    /// Unix seconds.
    pub created: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// One line of the audit log: (unix seconds, key id, action, gallery, subject).
pub type AuditEntry = (i64, String, String, Option<String>, Option<String>);

/// What can go wrong with the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// SQLite failed.
    #[error("key store {path}: {source}")]
    Db {
        /// The file.
        path: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A tenant name that is not allowed.
    #[error("{0:?} is not a tenant name: 1-64 letters, digits, '-' or '_'")]
    BadTenant(String),
    /// No such key.
    #[error("no key {0}")]
    Unknown(String),
    /// The system's random source failed.
    #[error("no random numbers: {0}")]
    Random(String),
}

/// Whether `s` may name a tenant or a gallery (it becomes a file name).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Equality of two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The key store and audit log.
pub struct KeyStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl KeyStore {
    /// Opens (creating) `DIR/keys.db`.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("keys.db");
        let db = |source| KeyError::Db { path: path.display().to_string(), source };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, hash BLOB NOT NULL, tenant TEXT NOT NULL,
                 scope TEXT NOT NULL, label TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS audit (at INTEGER NOT NULL, key_id TEXT NOT NULL, tenant TEXT NOT NULL,
                 action TEXT NOT NULL, gallery TEXT, subject TEXT, detail TEXT);",
        )
        .map_err(db)?;
        Ok(KeyStore { path, conn: Mutex::new(conn) })
    }

    fn db(&self, source: rusqlite::Error) -> KeyError {
        KeyError::Db { path: self.path.display().to_string(), source }
    }

    /// Creates a key for `tenant` with `scope`; returns its id and the whole key (shown once:
    /// only its hash is kept).
    pub fn create(&self, tenant: &str, scope: Scope, label: &str) -> Result<(String, String), KeyError> {
        if !valid_name(tenant) {
            return Err(KeyError::BadTenant(tenant.into()));
        }
        let mut raw = [0u8; 36];
        getrandom::fill(&mut raw).map_err(|e| KeyError::Random(e.to_string()))?;
        let (id, secret) = (hex(&raw[..4]), hex(&raw[4..]));
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO api_keys (id, hash, tenant, scope, label, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, digest(&secret), tenant, scope.name(), label, now()],
        )
        .map_err(|e| self.db(e))?;
        Ok((id.clone(), format!("vsk_{id}_{secret}")))
    }

    /// Every key, newest first.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = conn
            .prepare("SELECT id, tenant, scope, label, created, revoked FROM api_keys ORDER BY created DESC, id")
            .map_err(|e| self.db(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(KeyInfo {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    scope: Scope::parse(&r.get::<_, String>(2)?).unwrap_or(Scope::Recognize),
                    label: r.get(3)?,
                    created: r.get(4)?,
                    revoked: r.get::<_, i64>(5)? != 0,
                })
            })
            .map_err(|e| self.db(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db(e))
    }

    /// Revokes key `id` (effective for the next request).
    pub fn revoke(&self, id: &str) -> Result<(), KeyError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let n = conn.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?1", [id]).map_err(|e| self.db(e))?;
        if n == 0 {
            return Err(KeyError::Unknown(id.into()));
        }
        Ok(())
    }

    /// The key a bearer token stands for, if it is a live key.
    pub fn authenticate(&self, token: &str) -> Result<Option<KeyInfo>, KeyError> {
        let Some((id, secret)) = token.strip_prefix("vsk_").and_then(|t| t.split_once('_')) else { return Ok(None) };
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let row: Option<(Vec<u8>, String, String, String, i64, i64)> = conn
            .query_row("SELECT hash, tenant, scope, label, created, revoked FROM api_keys WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .optional()
            .map_err(|e| self.db(e))?;
        // Hash anyway when the id is unknown, so that the answer takes the same time.
        let want = digest(secret);
        Ok(match row {
            Some((hash, tenant, scope, label, created, revoked)) if constant_time_eq(&hash, &want) && revoked == 0 => {
                Scope::parse(&scope).map(|scope| KeyInfo { id: id.into(), tenant, scope, label, created, revoked: false })
            }
            _ => None,
        })
    }

    /// Appends to the audit log: which key did what, when.
    pub fn audit(&self, key: &KeyInfo, action: &str, gallery: Option<&str>, subject: Option<&str>, detail: &str) -> Result<(), KeyError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO audit (at, key_id, tenant, action, gallery, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![now(), key.id, key.tenant, action, gallery, subject, detail],
        )
        .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// The audit log of `tenant`, oldest first.
    pub fn audit_log(&self, tenant: &str) -> Result<Vec<AuditEntry>, KeyError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = conn
            .prepare("SELECT at, key_id, action, gallery, subject FROM audit WHERE tenant = ?1 ORDER BY rowid")
            .map_err(|e| self.db(e))?;
        let rows = st.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).map_err(|e| self.db(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.db(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_only_while_live_and_only_whole() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path()).unwrap();
        let (id, key) = ks.create("acme", Scope::Enroll, "door").unwrap();
        let k = ks.authenticate(&key).unwrap().unwrap();
        assert_eq!((k.id.as_str(), k.tenant.as_str(), k.scope), (id.as_str(), "acme", Scope::Enroll));
        // A changed last character, a missing prefix, another id: nobody.
        let mut wrong = key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(ks.authenticate(&wrong).unwrap().is_none());
        assert!(ks.authenticate(key.trim_start_matches("vsk_")).unwrap().is_none());
        assert!(ks.authenticate("vsk_00000000_00").unwrap().is_none());
        // Stored hashed: the secret is nowhere in the file.
        let bytes = std::fs::read(dir.path().join("keys.db")).unwrap();
        let secret = key.rsplit('_').next().unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        ks.revoke(&id).unwrap();
        assert!(ks.authenticate(&key).unwrap().is_none());
        assert!(matches!(ks.revoke("nope"), Err(KeyError::Unknown(_))));
        assert!(matches!(ks.create("../etc", Scope::Admin, ""), Err(KeyError::BadTenant(_))));
        assert!(Scope::Admin > Scope::Enroll && Scope::Enroll > Scope::Recognize);
    }
}
