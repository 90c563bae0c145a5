-- The daily birthday scan reads, for each person whose birthday falls in the window, their
-- customers: both look-ups answered from the index alone (no heap visit per candidate; 22,000
-- candidates a day in a chain of 1,000,000 customers). They replace the plain indexes on the
-- same keys.
CREATE INDEX persons_birthday_md_cover ON persons (birthday_md) INCLUDE (id, birthday, lunar_birthday);
DROP INDEX IF EXISTS persons_birthday_md;
CREATE INDEX customers_person_cover ON customers (person_id) INCLUDE (id, institution_id);
DROP INDEX IF EXISTS customers_person;
