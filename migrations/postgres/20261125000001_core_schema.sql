-- Revisit core schema: the chain's master data, consumption history, revisits and bookkeeping.
-- PostgreSQL is the source of truth; the graph, vector and analytics stores are projections of it.
-- Never edit this file once it has landed: add a new migration instead.

-- ---------------------------------------------------------------------------------------------
-- Master data
-- ---------------------------------------------------------------------------------------------

CREATE TABLE institutions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    type          TEXT,
    address       TEXT,
    phone         TEXT,
    email         TEXT,
    status        TEXT NOT NULL DEFAULT 'active',
    content_hash  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE doctors (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    institution_id  BIGINT REFERENCES institutions (id),
    name            TEXT NOT NULL,
    title           TEXT,
    specialties     TEXT[] NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'active',
    content_hash    TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                  TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    category              TEXT,
    standard_price_cents  BIGINT,
    -- Days until the treatment is usually repeated; drives cycle reminders.
    cycle_days            INTEGER,
    description           TEXT,
    status                TEXT NOT NULL DEFAULT 'active',
    content_hash          TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    category       TEXT,
    brand          TEXT,
    specification  TEXT,
    price_cents    BIGINT,
    status         TEXT NOT NULL DEFAULT 'active',
    content_hash   TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One natural person, who may be a customer of several institutions of the chain.
-- Identified by the normalised mobile number.
CREATE TABLE persons (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    gender        TEXT,
    birthday      DATE,
    -- month * 100 + day, for the birthday window without a function call per row.
    birthday_md   SMALLINT GENERATED ALWAYS AS
                  ((EXTRACT(MONTH FROM birthday) * 100 + EXTRACT(DAY FROM birthday))::SMALLINT) STORED,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX persons_birthday_md ON persons (birthday_md);

CREATE TABLE customers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    institution_id  BIGINT NOT NULL REFERENCES institutions (id),
    person_id       BIGINT NOT NULL REFERENCES persons (id),
    vip_level       TEXT,
    source          TEXT,
    tags            TEXT[] NOT NULL DEFAULT '{}',
    notes           TEXT,
    -- A customer who asked not to be contacted is never sent a message.
    opted_out       BOOLEAN NOT NULL DEFAULT false,
    content_hash    TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX customers_institution ON customers (institution_id);
CREATE INDEX customers_person ON customers (person_id);

-- ---------------------------------------------------------------------------------------------
-- Consumption history, partitioned by institution (one partition per institution, created by the
-- trigger below when the institution is first inserted).
-- ---------------------------------------------------------------------------------------------

CREATE TABLE consumption_records (
    institution_id      BIGINT NOT NULL REFERENCES institutions (id),
    order_number        TEXT NOT NULL,
    customer_id         BIGINT NOT NULL REFERENCES customers (id),
    order_date          DATE NOT NULL,
    total_amount_cents  BIGINT NOT NULL,
    payment_method      TEXT,
    status              TEXT NOT NULL,
    content_hash        TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (institution_id, order_number)
) PARTITION BY LIST (institution_id);

CREATE INDEX consumption_records_customer ON consumption_records (customer_id, order_date DESC);
CREATE INDEX consumption_records_date ON consumption_records (order_date);

CREATE TABLE consumption_items (
    institution_id      BIGINT NOT NULL,
    order_number        TEXT NOT NULL,
    line_no             INTEGER NOT NULL,
    item_type           TEXT NOT NULL CHECK (item_type IN ('project', 'product')),
    item_code           TEXT NOT NULL,
    item_name           TEXT NOT NULL,
    quantity            INTEGER NOT NULL,
    unit_price_cents    BIGINT NOT NULL,
    discount            DOUBLE PRECISION,
    actual_price_cents  BIGINT NOT NULL,
    doctor_code         TEXT,
    PRIMARY KEY (institution_id, order_number, line_no),
    FOREIGN KEY (institution_id, order_number)
        REFERENCES consumption_records (institution_id, order_number) ON DELETE CASCADE
) PARTITION BY LIST (institution_id);

CREATE FUNCTION revisit_create_institution_partitions() RETURNS TRIGGER AS $$
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF consumption_records FOR VALUES IN (%s)',
        'consumption_records_i' || NEW.id, NEW.id);
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF consumption_items FOR VALUES IN (%s)',
        'consumption_items_i' || NEW.id, NEW.id);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER institutions_partitions
    AFTER INSERT ON institutions
    FOR EACH ROW EXECUTE FUNCTION revisit_create_institution_partitions();

-- ---------------------------------------------------------------------------------------------
-- Revisits: one row per customer, occasion and date; the guard against greeting anyone twice.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE revisits (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    BIGINT NOT NULL REFERENCES customers (id),
    occasion       TEXT NOT NULL CHECK (occasion IN ('birthday')),
    occasion_date  DATE NOT NULL,
    -- A test-mode revisit is generated and shown, never sent; it does not block a real one.
    test_mode      BOOLEAN NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'generated', 'sending', 'sent', 'failed', 'skipped')),
    message        TEXT,
    generated_by   TEXT CHECK (generated_by IN ('llm', 'template')),
    model          TEXT,
    channel        TEXT,
    -- Sent with every delivery attempt so that the receiver can drop a repeat.
    send_key       TEXT NOT NULL,
    send_attempts  INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    generated_at   TIMESTAMPTZ,
    sent_at        TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (customer_id, occasion, occasion_date, test_mode)
);

CREATE INDEX revisits_status ON revisits (status);
CREATE INDEX revisits_created ON revisits (created_at);

-- ---------------------------------------------------------------------------------------------
-- Bookkeeping
-- ---------------------------------------------------------------------------------------------

CREATE TABLE import_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    -- [{"record": 3, "field": "person.birthday", "message": "..."}]
    errors          JSONB NOT NULL DEFAULT '[]',
    finished_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX import_log_batch ON import_log (batch);
CREATE INDEX import_log_path ON import_log (path, file_sha256);

-- One row per cron schedule and fire time: whichever daemon inserts it enqueues the tick's job,
-- in the same transaction, so a tick is enqueued exactly once however many daemons run.
CREATE TABLE cron_ticks (
    schedule     TEXT NOT NULL,
    fire_time    TIMESTAMPTZ NOT NULL,
    job_id       TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, fire_time)
);

CREATE TABLE daily_reports (
    report_date  DATE PRIMARY KEY,
    content      JSONB NOT NULL,
    text         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE health_checks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    healthy     BOOLEAN NOT NULL,
    results     JSONB NOT NULL
);
