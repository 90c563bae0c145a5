-- WeCom customer broadcast (企业微信客户群发). A customer is reached through the staff member who
-- has them as an external contact: `wecom_external_userid` is the customer's id in the chain's
-- WeCom, `wecom_userid` the staff member's. A message goes as a broadcast task that this staff
-- member confirms in their WeCom client (which doubles as approval): the revisit is `submitted`
-- with the task's `channel_ref` (its msgid) until the confirmation is seen.
ALTER TABLE customers ADD COLUMN wecom_external_userid TEXT;
ALTER TABLE customers ADD COLUMN wecom_userid TEXT;

-- SQLite cannot change a CHECK constraint: the revisits table is rebuilt with the wider one, as
-- in 20261201000003 (new table, copy, drop, rename, then its indexes and triggers again).
CREATE TABLE revisits_new (
    id                  INTEGER PRIMARY KEY,
    customer_id         INTEGER NOT NULL REFERENCES customers (id),
    occasion            TEXT NOT NULL CHECK (occasion IN ('birthday', 'checkin', 'cycle', 'winback')),
    occasion_date       TEXT NOT NULL,
    test_mode           INTEGER NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'generated', 'sending', 'submitted', 'sent', 'failed', 'skipped')),
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
    asks_score          INTEGER NOT NULL DEFAULT 0,
    score               INTEGER CHECK (score BETWEEN 1 AND 5),
    scored_at           TEXT,
    -- The broadcast task a WeCom message went as (its msgid), and when it was submitted.
    channel_ref         TEXT,
    submitted_at        TEXT,
    UNIQUE (customer_id, occasion, occasion_date, test_mode)
);

INSERT INTO revisits_new (id, customer_id, occasion, occasion_date, test_mode, status, message,
        generated_by, model, channel, send_key, send_attempts, last_error, generated_at, sent_at,
        created_at, updated_at, person_id, send_token, send_lease_until, delivery_uncertain,
        compliance, approval, approved_by, approved_at, order_number, item_code, day_offset,
        asks_score, score, scored_at)
    SELECT id, customer_id, occasion, occasion_date, test_mode, status, message,
        generated_by, model, channel, send_key, send_attempts, last_error, generated_at, sent_at,
        created_at, updated_at, person_id, send_token, send_lease_until, delivery_uncertain,
        compliance, approval, approved_by, approved_at, order_number, item_code, day_offset,
        asks_score, score, scored_at
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
CREATE INDEX revisits_asking_score ON revisits (person_id, sent_at) WHERE asks_score AND score IS NULL;

CREATE TRIGGER revisits_changes_insert AFTER INSERT ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;
CREATE TRIGGER revisits_changes_update AFTER UPDATE ON revisits
BEGIN INSERT INTO changes (kind, keys) VALUES ('revisit', json_array(CAST(NEW.id AS TEXT))); END;

