-- Revisit core schema on SQLite: the same tables as migrations/postgres, in SQLite's types.
-- Differences: no partitions (consumption tables get the equivalent indexes instead); arrays and
-- JSON are TEXT holding JSON; booleans are 0/1; timestamps are UTC text
-- 'YYYY-MM-DDTHH:MM:SS.sssZ' (they sort as text); dates are 'YYYY-MM-DD'. `revision` counts
-- writes of a row, so an upsert can tell an insert (1) from an update.
-- Never edit this file once it has landed: add a new migration instead.

CREATE TABLE institutions (
    id            INTEGER PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    type          TEXT,
    address       TEXT,
    phone         TEXT,
    email         TEXT,
    status        TEXT NOT NULL DEFAULT 'active',
    content_hash  TEXT NOT NULL,
    revision      INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE doctors (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    institution_id  INTEGER REFERENCES institutions (id),
    name            TEXT NOT NULL,
    title           TEXT,
    specialties     TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL DEFAULT 'active',
    content_hash    TEXT NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE projects (
    id                    INTEGER PRIMARY KEY,
    code                  TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    category              TEXT,
    standard_price_cents  INTEGER,
    cycle_days            INTEGER,
    description           TEXT,
    status                TEXT NOT NULL DEFAULT 'active',
    content_hash          TEXT NOT NULL,
    revision              INTEGER NOT NULL DEFAULT 1,
    created_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE products (
    id             INTEGER PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    category       TEXT,
    brand          TEXT,
    specification  TEXT,
    price_cents    INTEGER,
    status         TEXT NOT NULL DEFAULT 'active',
    content_hash   TEXT NOT NULL,
    revision       INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE persons (
    id            INTEGER PRIMARY KEY,
    phone         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    gender        TEXT,
    birthday      TEXT,
    -- month * 100 + day, written by the application with the birthday.
    birthday_md   INTEGER,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX persons_birthday_md ON persons (birthday_md);

CREATE TABLE customers (
    id              INTEGER PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    institution_id  INTEGER NOT NULL REFERENCES institutions (id),
    person_id       INTEGER NOT NULL REFERENCES persons (id),
    vip_level       TEXT,
    source          TEXT,
    tags            TEXT NOT NULL DEFAULT '[]',
    notes           TEXT,
    opted_out       INTEGER NOT NULL DEFAULT 0,
    content_hash    TEXT NOT NULL,
    revision        INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX customers_institution ON customers (institution_id);
CREATE INDEX customers_person ON customers (person_id);

-- PostgreSQL partitions these by institution; here the primary keys lead with the institution.
CREATE TABLE consumption_records (
    institution_id      INTEGER NOT NULL REFERENCES institutions (id),
    order_number        TEXT NOT NULL,
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    order_date          TEXT NOT NULL,
    total_amount_cents  INTEGER NOT NULL,
    payment_method      TEXT,
    status              TEXT NOT NULL,
    content_hash        TEXT NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 1,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (institution_id, order_number)
);

CREATE INDEX consumption_records_customer ON consumption_records (customer_id, order_date DESC);
CREATE INDEX consumption_records_date ON consumption_records (order_date);

CREATE TABLE consumption_items (
    institution_id      INTEGER NOT NULL,
    order_number        TEXT NOT NULL,
    line_no             INTEGER NOT NULL,
    item_type           TEXT NOT NULL CHECK (item_type IN ('project', 'product')),
    item_code           TEXT NOT NULL,
    item_name           TEXT NOT NULL,
    quantity            INTEGER NOT NULL,
    unit_price_cents    INTEGER NOT NULL,
    discount            REAL,
    actual_price_cents  INTEGER NOT NULL,
    doctor_code         TEXT,
    PRIMARY KEY (institution_id, order_number, line_no),
    FOREIGN KEY (institution_id, order_number)
        REFERENCES consumption_records (institution_id, order_number) ON DELETE CASCADE
);

CREATE TABLE revisits (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL REFERENCES customers (id),
    occasion       TEXT NOT NULL CHECK (occasion IN ('birthday')),
    occasion_date  TEXT NOT NULL,
    test_mode      INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'generated', 'sending', 'sent', 'failed', 'skipped')),
    message        TEXT,
    generated_by   TEXT CHECK (generated_by IN ('llm', 'template')),
    model          TEXT,
    channel        TEXT,
    send_key       TEXT NOT NULL,
    send_attempts  INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    generated_at   TEXT,
    sent_at        TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (customer_id, occasion, occasion_date, test_mode)
);

CREATE INDEX revisits_status ON revisits (status);
CREATE INDEX revisits_created ON revisits (created_at);

CREATE TABLE import_log (
    id              INTEGER PRIMARY KEY,
    batch           TEXT NOT NULL,
    path            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    institution     TEXT,
    file_sha256     TEXT NOT NULL,
    total           INTEGER NOT NULL,
    inserted        INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    unchanged       INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    errors          TEXT NOT NULL DEFAULT '[]',
    finished_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX import_log_batch ON import_log (batch);
CREATE INDEX import_log_path ON import_log (path, file_sha256);

CREATE TABLE cron_ticks (
    schedule     TEXT NOT NULL,
    fire_time    TEXT NOT NULL,
    job_id       TEXT,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (schedule, fire_time)
);

CREATE TABLE daily_reports (
    report_date  TEXT PRIMARY KEY,
    content      TEXT NOT NULL,
    text         TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE health_checks (
    id          INTEGER PRIMARY KEY,
    checked_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    healthy     INTEGER NOT NULL,
    results     TEXT NOT NULL
);
