//! The SQLite schema and its migrations.
//!
//! A gallery records its schema version in the `meta` table (`schema_version`, also mirrored in
//! `PRAGMA user_version`). Opening a gallery for writing applies the migrations it lacks, in
//! order, inside one transaction; a gallery newer than this code is refused.

use rusqlite::Transaction;

/// One step of the schema.
pub struct Migration {
    /// The version the gallery has after this step.
    pub version: i64,
    /// What it does (for messages).
    pub what: &'static str,
    /// The change.
    pub apply: fn(&Transaction) -> rusqlite::Result<()>,
}

/// Version 1: the first layout (kept verbatim: galleries created by it must open).
pub const V1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subjects (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    metadata   TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id           INTEGER PRIMARY KEY,
    subject_id   INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    embedding    BLOB NOT NULL,
    photo_sha256 TEXT NOT NULL,
    face_box     TEXT NOT NULL,
    source       TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (subject_id, photo_sha256, face_box)
);
CREATE INDEX IF NOT EXISTS templates_by_subject ON templates(subject_id);
CREATE INDEX IF NOT EXISTS templates_by_photo ON templates(photo_sha256);
";

/// Version 2: template ids are never reused (AUTOINCREMENT), so that an id names one template
/// for ever and in-memory indexes can follow the file by id; names are stored in Unicode NFC.
const V2: &str = "
CREATE TABLE templates_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id   INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    embedding    BLOB NOT NULL,
    photo_sha256 TEXT NOT NULL,
    face_box     TEXT NOT NULL,
    source       TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (subject_id, photo_sha256, face_box)
);
INSERT INTO templates_v2 (id, subject_id, embedding, photo_sha256, face_box, source, created_at)
    SELECT id, subject_id, embedding, photo_sha256, face_box, source, created_at FROM templates;
DROP TABLE templates;
ALTER TABLE templates_v2 RENAME TO templates;
CREATE INDEX templates_by_subject ON templates(subject_id);
CREATE INDEX templates_by_photo ON templates(photo_sha256);
";

fn v1(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(V1)
}

fn v2(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(V2)?;
    // Names to NFC; a name whose NFC spelling is already taken is left as it is.
    let names: Vec<(i64, String)> =
        tx.prepare("SELECT id, name FROM subjects")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    for (id, name) in names {
        let nfc = crate::store::nfc(&name);
        if nfc != name {
            tx.execute("UPDATE OR IGNORE subjects SET name = ?2 WHERE id = ?1", rusqlite::params![id, nfc])?;
        }
    }
    Ok(())
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, what: "the first layout", apply: v1 },
    Migration { version: 2, what: "template ids never reused, names in NFC", apply: v2 },
];

/// The version this code writes; a gallery with a newer version is refused.
pub const SCHEMA_VERSION: i64 = 2;

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_in_order_and_end_at_the_current_version() {
        let v: Vec<i64> = super::MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(v, (1..=super::SCHEMA_VERSION).collect::<Vec<_>>());
    }
}
