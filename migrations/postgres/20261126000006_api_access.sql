-- Access to the REST API and the console: bearer tokens, stored as SHA-256 digests only.
-- A staff token belongs to one institution and sees only it; an admin token sees the chain.
CREATE TABLE api_tokens (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Hex SHA-256 of the secret; the secret itself is shown once, when the token is created.
    token_hash      TEXT NOT NULL UNIQUE,
    -- The secret's first characters, so that staff can tell their tokens apart in a list.
    prefix          TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('staff', 'admin')),
    institution_id  BIGINT REFERENCES institutions (id),
    label           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    CHECK (role = 'admin' OR institution_id IS NOT NULL)
);

-- The customers list pages through an institution's customers by code.
CREATE INDEX customers_institution_code ON customers (institution_id, code);
