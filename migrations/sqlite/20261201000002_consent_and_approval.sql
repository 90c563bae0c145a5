-- Consent: numbers that receive nothing more through a channel ('*': through any channel). Kept
-- by phone, not by customer, so that an unsubscribe holds across the chain's institutions and
-- for a number whose customer is not imported yet.
CREATE TABLE suppressions (
    phone       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('reply', 'staff')),
    -- The reply's text, or what staff wrote.
    reason      TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (phone, channel)
);

-- Staff approval: an institution that asks for it has each real message wait, generated, until
-- a person approves it (then its send job is enqueued) or rejects it (then it is skipped).
-- NULL: no approval was asked for.
ALTER TABLE revisits ADD COLUMN approval TEXT CHECK (approval IN ('pending', 'approved', 'rejected'));
ALTER TABLE revisits ADD COLUMN approved_by TEXT;
ALTER TABLE revisits ADD COLUMN approved_at TEXT;

CREATE INDEX revisits_awaiting_approval ON revisits (id) WHERE approval = 'pending';
