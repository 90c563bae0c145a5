-- What an institution knows about its customer (name, gender, birthday, lunar birthday) is that
-- institution's, kept on its own `customers` row. Before, these lived on `persons`, keyed by the
-- phone and shared by the chain, so one institution's customers file rewrote what another
-- institution knew (a name, a gender, a birthday it never sent). The person (the phone) now only
-- joins an institution's customers for once-per-person greetings and consent.
--
-- The copy below writes the same values the projections already hold, so the change capture
-- trigger is off while it runs (one change row naming every customer would re-sync them all).
ALTER TABLE customers
    ADD COLUMN name           TEXT,
    ADD COLUMN gender         TEXT,
    ADD COLUMN birthday       DATE,
    ADD COLUMN lunar_birthday SMALLINT
        CHECK (lunar_birthday IS NULL OR (lunar_birthday % 10000) BETWEEN 101 AND 1230),
    -- The person has another customer row (at another institution): then the birthday scan
    -- asks which of them greets. Kept by the import; a stale true only costs that question.
    ADD COLUMN person_shared BOOLEAN NOT NULL DEFAULT false;

ALTER TABLE customers DISABLE TRIGGER customers_changes_update;
UPDATE customers c
SET name = p.name, gender = p.gender, birthday = p.birthday, lunar_birthday = p.lunar_birthday,
    person_shared = EXISTS (SELECT 1 FROM customers o WHERE o.person_id = c.person_id AND o.id <> c.id)
FROM persons p
WHERE p.id = c.person_id;
ALTER TABLE customers ENABLE TRIGGER customers_changes_update;

ALTER TABLE customers
    ALTER COLUMN name SET NOT NULL,
    -- month * 100 + day, for the birthday window without a function call per row.
    ADD COLUMN birthday_md SMALLINT GENERATED ALWAYS AS
        ((EXTRACT(MONTH FROM birthday) * 100 + EXTRACT(DAY FROM birthday))::SMALLINT) STORED;

-- The birthday scan reads candidates from the index alone (see 20261204000002_birthday_scan).
CREATE INDEX customers_birthday_md_cover ON customers (birthday_md)
    INCLUDE (id, person_id, institution_id, birthday, lunar_birthday, person_shared);
CREATE INDEX customers_lunar_birthday ON customers (lunar_birthday)
    INCLUDE (id, person_id, institution_id, birthday, person_shared)
    WHERE lunar_birthday IS NOT NULL;
-- The compliance check looks a message's name-like runs up among the institution's customers.
CREATE INDEX customers_institution_name ON customers (institution_id, name);

DROP INDEX IF EXISTS persons_birthday_md_cover;
DROP INDEX IF EXISTS persons_birthday_md;
DROP INDEX IF EXISTS persons_lunar_birthday;
DROP INDEX IF EXISTS persons_name;
ALTER TABLE persons
    DROP COLUMN birthday_md,
    DROP COLUMN name,
    DROP COLUMN gender,
    DROP COLUMN birthday,
    DROP COLUMN lunar_birthday;
