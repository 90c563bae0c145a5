-- Change capture for the projections (ClickHouse now; Qdrant and the graph later).
--
-- Every write to master data and every change of a revisit records, in the same transaction,
-- what changed: one row per statement and kind, with the keys of the rows it wrote (statement
-- triggers over transition tables, so a 5,000-row import chunk adds one row here, not 5,000).
-- `seq` only grows; a sync job carries the largest `seq` of its changes as the version of what
-- it writes, so a late or repeated job never overwrites newer data in a projection.
--
-- The dispatcher (`projection.dispatch`) deletes changes as it turns them into sync jobs, in
-- the same transaction, so a change is either here or in a job, never lost or doubled.

CREATE TABLE changes (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL,
    keys        TEXT[] NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What the dispatcher handed to sync jobs and they have not finished: a projection's lag is
-- this plus the changes not dispatched yet.
CREATE TABLE projection_backlog (
    batch       TEXT PRIMARY KEY,
    projection  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    keys        INTEGER NOT NULL,
    oldest      TIMESTAMPTZ NOT NULL
);

CREATE INDEX projection_backlog_projection ON projection_backlog (projection, oldest);

-- TG_ARGV[0]: the kind; TG_ARGV[1]: the key of a row of `new_rows`, as SQL.
CREATE FUNCTION revisit_capture_changes() RETURNS TRIGGER AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO changes (kind, keys) SELECT %L, array_agg(%s) FROM new_rows HAVING count(*) > 0',
        TG_ARGV[0], TG_ARGV[1]);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DO $$
DECLARE
    t RECORD;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('institutions', 'institution', 'id::text'),
        ('doctors', 'doctor', 'id::text'),
        ('projects', 'project', 'id::text'),
        ('products', 'product', 'id::text'),
        ('persons', 'person', 'id::text'),
        ('customers', 'customer', 'id::text'),
        ('consumption_records', 'order', 'institution_id::text || ''/'' || order_number'),
        ('revisits', 'revisit', 'id::text')
    ) AS v(tbl, kind, key)
    LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION revisit_capture_changes(%L, %L)',
            t.tbl || '_changes_insert', t.tbl, t.kind, t.key);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION revisit_capture_changes(%L, %L)',
            t.tbl || '_changes_update', t.tbl, t.kind, t.key);
    END LOOP;
END;
$$;
