-- Consultation records (咨询记录): what a customer asked about, by visit, call or chat. They
-- import after customers, like orders, and join the context of a greeting.
CREATE TABLE consultations (
    institution_id  INTEGER NOT NULL REFERENCES institutions (id),
    code            TEXT NOT NULL,
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    consult_date    TEXT NOT NULL,
    channel         TEXT,
    consultant      TEXT,
    doctor_code     TEXT,
    -- A JSON array of project codes.
    project_codes   TEXT NOT NULL DEFAULT '[]',
    content         TEXT,
    outcome         TEXT,
    content_hash    TEXT NOT NULL,
    source_seq      INTEGER NOT NULL DEFAULT 0,
    revision        INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (institution_id, code)
);

CREATE INDEX consultations_customer ON consultations (customer_id, consult_date DESC);
