-- Follow-ups beside the birthday greeting: a check-in on set days after a treatment, a
-- maintenance reminder when a treatment's cycle comes round, and a win-back message to a
-- customer who has not come for a long time.
ALTER TABLE revisits DROP CONSTRAINT revisits_occasion_check;
ALTER TABLE revisits ADD CONSTRAINT revisits_occasion_check
    CHECK (occasion IN ('birthday', 'checkin', 'cycle', 'winback'));

-- What a follow-up is about: the order and item (project) it follows, and for a check-in the
-- number of days after the treatment.
ALTER TABLE revisits
    ADD COLUMN order_number  TEXT,
    ADD COLUMN item_code     TEXT,
    ADD COLUMN day_offset    INTEGER;

-- The frequency cap counts a person's recent real marketing messages.
CREATE INDEX revisits_person_recent ON revisits (person_id, created_at) WHERE NOT test_mode;

-- Days after a treatment with this project on which its check-ins go out ("1,3,7,30");
-- NULL: the defaults of its category (src/domain/followup.rs, docs/followups.md).
ALTER TABLE projects ADD COLUMN followup_days TEXT;
