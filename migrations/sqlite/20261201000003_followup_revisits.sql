-- Follow-ups beside the birthday greeting: a check-in on set days after a treatment, a
-- maintenance reminder when a treatment's cycle comes round, and a win-back message to a
-- customer who has not come for a long time.
--
-- SQLite cannot change a CHECK constraint, so the revisits table is rebuilt with the wider one
-- (the documented way: new table, copy, drop, rename), then its indexes and change-capture
-- triggers are made again. Nothing references revisits.
CREATE TABLE revisits_new (
    id                  INTEGER PRIMARY KEY,
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    occasion            TEXT NOT NULL CHECK (occasion IN ('birthday', 'checkin', 'cycle', 'winback')),
    occasion_date       TEXT NOT NULL,
    test_mode           INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'generated', 'sending', 'sent', 'failed', 'skipped')),
    message             TEXT,
    generated_by        TEXT CHECK (generated_by IN ('llm', 'template')),
    model               TEXT,
    channel             TEXT,
    send_key            TEXT NOT NULL,
    send_attempts       INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    generated_at        TEXT,
    sent_at             TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    person_id           INTEGER REFERENCES persons (id),
    send_token          TEXT,
    send_lease_until    TEXT,
    delivery_uncertain  INTEGER NOT NULL DEFAULT 0,
    compliance          TEXT,
    approval            TEXT CHECK (approval IN ('pending', 'approved', 'rejected')),
    approved_by         TEXT,
    approved_at         TEXT,
    -- What a follow-up is about: the order and item (project) it follows, and for a check-in
    -- the number of days after the treatment.
    order_number        TEXT,
    item_code           TEXT,
    day_offset          INTEGER,
    UNIQUE (customer_id, occasion, occasion_date, test_mode)
);

INSERT INTO revisits_new (id, customer_id, occasion, occasion_date, test_mode, status, message,
        generated_by, model, channel, send_key, send_attempts, last_error, generated_at, sent_at,
        created_at, updated_at, person_id, send_token, send_lease_until, delivery_uncertain,
        compliance, approval, approved_by, approved_at)
    SELECT id, customer_id, occasion, occasion_date, test_mode, status, message,
        generated_by, model, channel, send_key, send_attempts, last_error, generated_at, sent_at,
        created_at, updated_at, person_id, send_token, send_lease_until, delivery_uncertain,
        compliance, approval, approved_by, approved_at
    FROM revisits;

DROP TABLE revisits;
ALTER TABLE revisits_new RENAME TO revisits;

CREATE INDEX revisits_status ON revisits (status);
CREATE INDEX revisits_created ON revisits (created_at);
CREATE UNIQUE INDEX revisits_person_occasion
    ON revisits (person_id, occasion, occasion_date, test_mode);
CREATE INDEX revisits_awaiting_approval ON revisits (id) WHERE approval = 'pending';
-- The frequency cap counts a person's recent real marketing messages.
CREATE INDEX revisits_person_recent ON revisits (person_id, created_at) WHERE NOT test_mode;

CREATE TRIGGER revisits_changes_insert AFTER INSERT ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER revisits_changes_update AFTER UPDATE ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;

-- Days after a treatment with this project on which its check-ins go out ("1,3,7,30");
-- NULL: the defaults of its category (src/domain/followup.rs, docs/followups.md).
ALTER TABLE projects ADD COLUMN followup_days TEXT;
