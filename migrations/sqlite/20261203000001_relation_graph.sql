-- The relation graph (issue #11).
--
-- `referrer_code`: the code of the customer (at any institution of the chain) who referred this
-- one. It is not a foreign key: the referrer may be imported later, or never; the graph's
-- `referred_by` edge names the referrer's vertex by code and finds it once it exists.
ALTER TABLE customers ADD COLUMN referrer_code TEXT;

-- The embedded graph store: the relation graph as vertex and edge tables of the primary store,
-- written by `projection.sync` jobs like any projection and walked with recursive queries. A
-- deployment with NebulaGraph (`graph.nebula_addr`) keeps these tables empty.
--
-- A vertex's id is `<kind letter>:<key>`: `i:<institution id>`, `p:<person id>`,
-- `c:<customer code>`, `d:<doctor code>`, `j:<project code>`, `g:<product code>` (NebulaGraph uses
-- the same ids). Customers and persons carry no name: the graph holds codes, never personal data.
CREATE TABLE graph_vertices (
    vid             TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    code            TEXT NOT NULL,
    name            TEXT,
    institution_id  INTEGER,
    -- VIP level (customers), title (doctors), category (projects, products), brand (products).
    detail          TEXT
);

-- An edge: `src -kind-> dst`, one per (kind, src, dst, rank). An order's lines are ranked by a
-- hash of the order key and line, so a customer who bought a project twice has two edges.
-- `owner` is the entity whose snapshot wrote it (a customer's vertex id, or `o:<order key>`): a
-- newer snapshot of the owner replaces all of its edges.
CREATE TABLE graph_edges (
    kind            TEXT NOT NULL,
    src             TEXT NOT NULL,
    dst             TEXT NOT NULL,
    rank            INTEGER NOT NULL,
    owner           TEXT NOT NULL,
    -- The order's institution (bought, served_by): "within an institution" reads it.
    institution_id  INTEGER,
    on_date         TEXT,
    amount_cents    INTEGER,
    PRIMARY KEY (kind, src, dst, rank)
);

CREATE INDEX graph_edges_src ON graph_edges (src, kind);
CREATE INDEX graph_edges_dst ON graph_edges (dst, kind, institution_id);
CREATE INDEX graph_edges_owner ON graph_edges (owner);

-- The change sequence each owner was last written with: an older sync job leaves it alone.
CREATE TABLE graph_owners (
    owner           TEXT PRIMARY KEY,
    version         INTEGER NOT NULL
);
