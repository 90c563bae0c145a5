-- One delivery per revisit, one greeting per person (see the PostgreSQL migration of the same
-- name for the rules). SQLite cannot add NOT NULL to an existing column: person_id is filled
-- here and always written by the application.

ALTER TABLE revisits ADD COLUMN person_id INTEGER REFERENCES persons (id);
ALTER TABLE revisits ADD COLUMN send_token TEXT;
ALTER TABLE revisits ADD COLUMN send_lease_until TEXT;
ALTER TABLE revisits ADD COLUMN delivery_uncertain INTEGER NOT NULL DEFAULT 0;

UPDATE revisits SET person_id = (SELECT c.person_id FROM customers c WHERE c.id = revisits.customer_id);

CREATE UNIQUE INDEX revisits_person_occasion
    ON revisits (person_id, occasion, occasion_date, test_mode);

CREATE INDEX customers_person_opted_out ON customers (person_id) WHERE opted_out;
