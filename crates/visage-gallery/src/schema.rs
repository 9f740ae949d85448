//! The SQLite schema.

/// Bumped when the layout changes; a gallery with a newer version is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Tables of a gallery.
pub const CREATE: &str = "
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
