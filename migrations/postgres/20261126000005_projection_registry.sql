-- The projections this deployment keeps. A process with a projection configured registers it
-- (worker start, init, sync); the dispatcher makes sync jobs for every registered projection,
-- not only those the dispatching process has settings for, so that a worker started without
-- CLICKHOUSE_URL never drops ClickHouse's changes.
CREATE TABLE projections (
    name           TEXT PRIMARY KEY,
    registered_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
