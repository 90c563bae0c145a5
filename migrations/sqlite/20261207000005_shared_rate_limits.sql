-- Rate limits every worker process obeys together (store::rate_limits); times are Unix
-- seconds (REAL). See the PostgreSQL migration of this number.
CREATE TABLE rate_limits (
    name  TEXT PRIMARY KEY,
    tat   REAL NOT NULL
);

CREATE TABLE rate_slots (
    name    TEXT NOT NULL,
    slot    INTEGER NOT NULL,
    holder  TEXT,
    until   REAL,
    PRIMARY KEY (name, slot)
);
