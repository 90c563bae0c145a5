-- How far the file an import is writing has got, for `revisit import --wait` (a 100 MB file
-- takes a while). Written outside the file's transaction, so that it is seen while the file is
-- imported; deleted when the file is logged.
CREATE TABLE import_file_progress (
    batch       TEXT NOT NULL,
    path        TEXT NOT NULL,
    done        BIGINT NOT NULL,
    total       BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (batch, path)
);
