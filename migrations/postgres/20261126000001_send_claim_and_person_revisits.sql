-- One delivery per revisit, one greeting per person.
--
-- 1. A send is claimed before it is made: `send_token` names the run that holds the claim and
--    `send_lease_until` says until when. A second run that finds a live lease does nothing; one
--    that finds an expired lease on a `sending` revisit knows an earlier try was cut off mid-send
--    and either resends with the same key (a channel that drops repeats) or flags the revisit
--    `delivery_uncertain` for a person to check.
-- 2. Revisits are unique per person (not per customer): a person who is a customer of two
--    institutions gets one greeting per occasion, whichever institution they visited last.

ALTER TABLE revisits
    ADD COLUMN person_id           BIGINT REFERENCES persons (id),
    ADD COLUMN send_token          TEXT,
    ADD COLUMN send_lease_until    TIMESTAMPTZ,
    ADD COLUMN delivery_uncertain  BOOLEAN NOT NULL DEFAULT false;

UPDATE revisits r SET person_id = c.person_id FROM customers c WHERE c.id = r.customer_id;

ALTER TABLE revisits ALTER COLUMN person_id SET NOT NULL;

CREATE UNIQUE INDEX revisits_person_occasion
    ON revisits (person_id, occasion, occasion_date, test_mode);

CREATE INDEX customers_person_opted_out ON customers (person_id) WHERE opted_out;
