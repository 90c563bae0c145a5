-- A birthday kept by the Chinese calendar (农历生日), as `leap * 10000 + month * 100 + day`
-- (闰六月十五 is 10615; see src/domain/lunar.rs). When set, the birthday greeting follows it
-- instead of the solar birthday. NULL: the person keeps the solar birthday.
ALTER TABLE persons ADD COLUMN lunar_birthday SMALLINT
    CHECK (lunar_birthday IS NULL OR (lunar_birthday % 10000) BETWEEN 101 AND 1230);

CREATE INDEX persons_lunar_birthday ON persons (lunar_birthday) WHERE lunar_birthday IS NOT NULL;
