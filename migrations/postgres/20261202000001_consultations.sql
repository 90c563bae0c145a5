-- Consultation records (咨询记录): what a customer asked about, by visit, call or chat. They
-- import after customers, like orders, and join the context of a greeting.
CREATE TABLE consultations (
    institution_id  BIGINT NOT NULL REFERENCES institutions (id),
    code            TEXT NOT NULL,
    customer_id     BIGINT NOT NULL REFERENCES customers (id),
    consult_date    DATE NOT NULL,
    channel         TEXT,
    consultant      TEXT,
    doctor_code     TEXT,
    project_codes   TEXT[] NOT NULL DEFAULT '{}',
    content         TEXT,
    outcome         TEXT,
    content_hash    TEXT NOT NULL,
    source_seq      INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (institution_id, code)
);

CREATE INDEX consultations_customer ON consultations (customer_id, consult_date DESC);
