-- See the PostgreSQL migration of this number; `at` is Unix seconds here.
CREATE TABLE queue_activity (
    at         INTEGER NOT NULL,
    queue      TEXT NOT NULL,
    process    TEXT NOT NULL,
    completed  INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    waiting    INTEGER NOT NULL,
    running    INTEGER NOT NULL
);
CREATE INDEX queue_activity_at ON queue_activity (at);
