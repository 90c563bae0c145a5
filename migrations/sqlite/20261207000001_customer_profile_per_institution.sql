-- What an institution knows about its customer (name, gender, birthday, lunar birthday) is that
-- institution's, kept on its own `customers` row. Before, these lived on `persons`, keyed by the
-- phone and shared by the chain, so one institution's customers file rewrote what another
-- institution knew. The person (the phone) now only joins an institution's customers for
-- once-per-person greetings and consent. See the PostgreSQL migration of the same name.
ALTER TABLE customers ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN gender TEXT;
ALTER TABLE customers ADD COLUMN birthday TEXT;
-- month * 100 + day, written by the application with the birthday.
ALTER TABLE customers ADD COLUMN birthday_md INTEGER;
ALTER TABLE customers ADD COLUMN lunar_birthday INTEGER
    CHECK (lunar_birthday IS NULL OR (lunar_birthday % 10000) BETWEEN 101 AND 1230);
-- The person has another customer row: then the birthday scan asks which of them greets.
ALTER TABLE customers ADD COLUMN person_shared INTEGER NOT NULL DEFAULT 0;

-- The copy writes the values the projections already hold: no change rows for it.
DROP TRIGGER customers_changes_update;
UPDATE customers
SET name = p.name, gender = p.gender, birthday = p.birthday, birthday_md = p.birthday_md,
    lunar_birthday = p.lunar_birthday,
    person_shared = EXISTS (SELECT 1 FROM customers o
                            WHERE o.person_id = customers.person_id AND o.id <> customers.id)
FROM persons p
WHERE p.id = customers.person_id;
CREATE TRIGGER customers_changes_update AFTER UPDATE ON customers
BEGIN INSERT INTO changes (kind, keys) VALUES ('customer', json_array(CAST(NEW.id AS TEXT))); END;

CREATE INDEX customers_birthday_md ON customers (birthday_md);
CREATE INDEX customers_lunar_birthday ON customers (lunar_birthday) WHERE lunar_birthday IS NOT NULL;
CREATE INDEX customers_institution_name ON customers (institution_id, name);

DROP INDEX IF EXISTS persons_birthday_md;
DROP INDEX IF EXISTS persons_lunar_birthday;
DROP INDEX IF EXISTS persons_name;
ALTER TABLE persons DROP COLUMN birthday_md;
ALTER TABLE persons DROP COLUMN name;
ALTER TABLE persons DROP COLUMN gender;
ALTER TABLE persons DROP COLUMN birthday;
ALTER TABLE persons DROP COLUMN lunar_birthday;
