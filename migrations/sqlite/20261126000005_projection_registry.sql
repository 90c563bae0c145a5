-- The projections this deployment keeps; see the PostgreSQL migration of the same name.
CREATE TABLE projections (
    name           TEXT PRIMARY KEY,
    registered_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
