-- How far the file an import is writing has got, for `revisit import --wait` (see the
-- PostgreSQL migration of the same name).
CREATE TABLE import_file_progress (
    batch       TEXT NOT NULL,
    path        TEXT NOT NULL,
    done        INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (batch, path)
);
