-- Re-importing an older file never undoes newer data: every imported row keeps the source
-- sequence of the file that last wrote it (the date of its dated folder as YYYYMMDD; 0 for files
-- outside dated folders, such as the initial load), and an upsert from an older file is skipped.
-- import_log holds one row per file of a batch: a retried file replaces its row.

ALTER TABLE institutions ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE doctors ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE projects ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE persons ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consumption_records ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;

DELETE FROM import_log a USING import_log b WHERE a.batch = b.batch AND a.path = b.path AND a.id < b.id;
CREATE UNIQUE INDEX import_log_batch_path ON import_log (batch, path);
